//! Webhooks on a real PostgreSQL, Anvil and a receiver over loopback: every event announced in
//! the transaction of its change reaches the parties' endpoints, signed per Standard Webhooks
//! (checked by the reference Python library); failures are retried on the schedule, then given
//! up and replayable with the same `webhook-id`; timeouts, redirects and private destinations
//! are failures; an endpoint failing for days is disabled; a rotated secret signs beside its
//! successor; several workers deliver each message once.

mod deliveries;
mod endpoints;
mod events;
pub(crate) mod receiver;

use std::time::Duration;

use pactum_client::{
    Client,
    types::{CreateWebhook, DeliveryView, ListDeliveries, WebhookWithSecret},
};
use pactum_db::Db;
use pactum_webhooks::{Settings, Worker};
use tokio::{sync::watch, task::JoinHandle};

/// Delivery workers in the test's process, stopped when dropped.
pub(crate) struct Workers {
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
}

impl Workers {
    /// `n` workers over `db`, allowed to deliver to loopback, polling every 100 ms; `tune`
    /// adjusts their settings.
    pub(crate) fn start(db: &Db, n: usize, tune: impl Fn(&mut Settings)) -> eyre::Result<Self> {
        let (stop, rx) = watch::channel(false);
        let mut handles = Vec::new();
        for _ in 0..n {
            let mut settings = Settings {
                allow_private: true,
                poll_interval: Duration::from_millis(100),
                timeout: Duration::from_secs(5),
                lease: Duration::from_secs(30),
                ..Settings::default()
            };
            tune(&mut settings);
            let worker = Worker::new(db.clone(), settings)?;
            let rx = rx.clone();
            handles.push(tokio::spawn(async move {
                if let Err(err) = worker.run(rx).await {
                    eprintln!("webhook worker stopped: {err}");
                }
            }));
        }
        Ok(Self { stop, handles })
    }

    /// Stops them, letting attempts in flight finish.
    pub(crate) async fn stop(mut self) {
        let _ = self.stop.send(true);
        for handle in self.handles.drain(..) {
            let _ = handle.await;
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for handle in &self.handles {
            handle.abort();
        }
    }
}

/// Registers an endpoint at `url` for `agent` as its owner `acme`.
pub(crate) async fn hook(
    owner: &Client,
    agent: &str,
    url: &str,
    types: Option<&[&str]>,
) -> eyre::Result<WebhookWithSecret> {
    let body = CreateWebhook {
        url: url.to_owned(),
        event_types: types.map(|ts| ts.iter().map(|t| (*t).to_owned()).collect()),
        description: format!("{agent}'s receiver"),
    };
    let written = owner
        .create_webhook(agent, &body, &format!("hook-{}", pactum_db::random_id(8)))
        .await?;
    eyre::ensure!(written.status == 201, "status {}", written.status);
    Ok(written.body)
}

/// Makes every pending delivery due now (time passing), and wakes the workers.
pub(crate) async fn make_due(db: &Db) -> eyre::Result<()> {
    sqlx::query("UPDATE webhook_deliveries SET next_attempt_at = now() WHERE status = 'pending'")
        .execute(db.pool())
        .await?;
    sqlx::query("SELECT pg_notify('pactum_webhooks', '')")
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Polls agent `agent`'s deliveries until `done` holds for them (fails after 30 s).
pub(crate) async fn wait_deliveries(
    owner: &Client,
    agent: &str,
    done: impl Fn(&[DeliveryView]) -> bool,
) -> eyre::Result<Vec<DeliveryView>> {
    let started = std::time::Instant::now();
    loop {
        let page = owner
            .webhook_deliveries(
                agent,
                &ListDeliveries {
                    limit: Some(100),
                    ..ListDeliveries::default()
                },
            )
            .await?;
        if done(&page.deliveries) {
            return Ok(page.deliveries);
        }
        eyre::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "deliveries not as awaited: {:?}",
            page.deliveries
                .iter()
                .map(|d| (d.status, d.attempts, &d.attempt_log))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
