//! The delivery worker: takes due deliveries, attempts them concurrently, and writes the
//! outcomes in batches.
//!
//! - **Taking**: `pactum_db::webhooks::claim` with `FOR UPDATE SKIP LOCKED`, so workers in
//!   several processes each take their own; a taken delivery is leased (due again only when the
//!   lease ends) and counted as attempted, so a worker killed mid-attempt loses nothing. Each
//!   claim takes a few deliveries per endpoint, and none of an endpoint that already has
//!   `per_endpoint` attempts in flight here: a slow or hanging receiver cannot take every slot.
//! - **Waking**: the worker claims again at once after a claim that took something, and when an
//!   attempt finishes (its endpoint may have room again); otherwise it polls the queue every
//!   `poll_interval`. The announcing transactions do not `NOTIFY`: that would serialise their
//!   commits.
//! - **Attempting**: at most `concurrency` at once; each POSTs the message's exact body with
//!   `webhook-id`, `webhook-timestamp` and `webhook-signature` (one entry per secret in force),
//!   through the guarded client: no proxy, no redirects followed, connect and overall timeouts,
//!   private destinations refused unless allowed. The answer's body is read up to
//!   `max_response_bytes`.
//! - **Writing**: outcomes are written in batches (one statement each): the attempt, the
//!   delivery's new status (succeeded, pending with the schedule's next pause, or failed), the
//!   endpoint's failing streak, for deliveries still in the claim the attempt was made under;
//!   then endpoints failing for `disable_after` are disabled. A batch the database refuses is
//!   retried, then written one outcome at a time; an outcome that still cannot be written is
//!   dropped (logged): its lease brings the delivery back.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use alloy::transports::http::reqwest::{self, header, redirect};
use pactum_core::webhook::{self, DISABLE_AFTER};
use pactum_db::{
    Db,
    webhooks::{self as store, ClaimLimits, Claimed, Outcome},
};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::guard::{GuardedResolver, check_literal};

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Deliveries attempted at once.
    pub concurrency: usize,
    /// The most deliveries taken per claim.
    pub batch: u32,
    /// The most attempts in flight to one endpoint, in this worker.
    pub per_endpoint: usize,
    /// How long a taken delivery is leased before another worker may take it again. Longer
    /// than `timeout` plus the time to write the outcome.
    pub lease: Duration,
    /// How often the queue is looked at while it has nothing due.
    pub poll_interval: Duration,
    /// Connecting to the endpoint.
    pub connect_timeout: Duration,
    /// The whole attempt: connecting, sending, and the answer's status and body.
    pub timeout: Duration,
    /// Bytes of the answer's body kept.
    pub max_response_bytes: usize,
    /// Private, loopback and link-local destinations allowed (the local stack, tests).
    pub allow_private: bool,
    /// An endpoint failing every attempt this long is disabled.
    pub disable_after: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            concurrency: 64,
            batch: 100,
            per_endpoint: 16,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_millis(100),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            max_response_bytes: 4096,
            allow_private: false,
            disable_after: DISABLE_AFTER,
        }
    }
}

/// What a worker has done (for `/metrics` and the benchmarks).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Attempts answered 2xx.
    pub delivered: AtomicU64,
    /// Attempts that failed (any other answer, or none).
    pub failed_attempts: AtomicU64,
    /// Deliveries whose schedule was spent.
    pub given_up: AtomicU64,
    /// Endpoints disabled for failing.
    pub endpoints_disabled: AtomicU64,
    /// Outcomes the database would not take (their deliveries come back when their lease ends).
    pub outcomes_dropped: AtomicU64,
}

/// Errors that stop a worker.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// The database.
    #[error(transparent)]
    Db(#[from] pactum_db::Error),
}

/// A delivery worker over `db`.
#[derive(Debug, Clone)]
pub struct Worker {
    db: Db,
    http: reqwest::Client,
    settings: Settings,
    metrics: Arc<Metrics>,
    /// Attempts in flight, by endpoint.
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
    /// Signalled when an attempt finishes (an endpoint may have room again).
    finished: Arc<tokio::sync::Notify>,
}

impl Worker {
    /// A worker with `settings`.
    pub fn new(db: Db, settings: Settings) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(redirect::Policy::none())
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .user_agent(concat!("pactum-webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(GuardedResolver {
                allow_private: settings.allow_private,
            })
            .build()?;
        Ok(Self {
            db,
            http,
            settings,
            metrics: Arc::new(Metrics::default()),
            in_flight: Arc::default(),
            finished: Arc::default(),
        })
    }

    /// Its counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Delivers until `stop` turns true; attempts in flight then finish and are written.
    pub async fn run(self, mut stop: watch::Receiver<bool>) -> Result<(), Error> {
        let (tx, rx) = mpsc::channel::<Outcome>(4 * self.settings.concurrency.max(1));
        let writer = tokio::spawn(write_outcomes(self.db.clone(), rx, self.clone()));
        let permits = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        tracing::info!(
            concurrency = self.settings.concurrency,
            per_endpoint = self.settings.per_endpoint,
            allow_private = self.settings.allow_private,
            "webhook worker started"
        );
        while !*stop.borrow() {
            // Wait for room before taking more.
            let first = tokio::select! {
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                _ = stop.changed() => break,
            };
            let room = 1 + permits.available_permits();
            let asked = u32::try_from(room)
                .unwrap_or(u32::MAX)
                .min(self.settings.batch);
            let claimed = match self.claim(asked).await {
                Ok(claimed) => claimed,
                Err(err) => {
                    tracing::warn!(%err, "taking due webhook deliveries failed; retrying");
                    drop(first);
                    pause(&mut stop, self.settings.poll_interval).await;
                    continue;
                }
            };
            let idle = claimed.is_empty();
            let mut first = Some(first);
            for c in claimed {
                let permit = match first.take() {
                    Some(permit) => permit,
                    None => match permits.clone().acquire_owned().await {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                };
                self.track(&c.endpoint_id, true);
                let (worker, tx) = (self.clone(), tx.clone());
                tokio::spawn(async move {
                    let endpoint = c.endpoint_id.clone();
                    let outcome = worker.attempt(c).await;
                    worker.track(&endpoint, false);
                    worker.finished.notify_one();
                    // The writer outlives every attempt; a send fails only if it died, and
                    // then the lease brings the delivery back.
                    let _ = tx.send(outcome).await;
                    drop(permit);
                });
            }
            drop(first);
            if idle {
                // Nothing due, or every endpoint with something due has its share in flight:
                // wait for an attempt to finish, the poll interval, or stop.
                tokio::select! {
                    // A few milliseconds more, so that one claim serves several completions.
                    () = self.finished.notified() => tokio::time::sleep(Duration::from_millis(5)).await,
                    () = tokio::time::sleep(self.settings.poll_interval) => {}
                    _ = stop.changed() => {}
                }
            }
        }
        // Let the attempts in flight finish, then the writer drain.
        let _ = permits
            .acquire_many(u32::try_from(self.settings.concurrency.max(1)).unwrap_or(u32::MAX))
            .await;
        drop(tx);
        let _ = writer.await;
        tracing::info!("webhook worker stopped");
        Ok(())
    }

    /// Counts an attempt to `endpoint` starting (`true`) or ending.
    fn track(&self, endpoint: &str, starting: bool) {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if starting {
            *in_flight.entry(endpoint.to_owned()).or_default() += 1;
        } else if let Some(n) = in_flight.get_mut(endpoint) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                in_flight.remove(endpoint);
            }
        }
    }

    async fn claim(&self, total: u32) -> Result<Vec<Claimed>, pactum_db::Error> {
        let per_endpoint = self.settings.per_endpoint.max(1);
        let busy: Vec<String> = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|(_, n)| **n >= per_endpoint)
            .map(|(e, _)| e.clone())
            .collect();
        let mut conn = self.db.acquire().await?;
        store::claim(
            &mut conn,
            ClaimLimits {
                total,
                per_endpoint: u32::try_from(per_endpoint).unwrap_or(u32::MAX),
                busy: &busy,
                lease: self.settings.lease,
            },
        )
        .await
    }

    /// One attempt of `c`: what happened and what comes next.
    pub async fn attempt(&self, c: Claimed) -> Outcome {
        let started_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let clock = Instant::now();
        let (status_code, error, response) = self.send(&c, started_at.as_secs()).await;
        let delivered = status_code.is_some_and(|code| (200..300).contains(&code));
        let retry_in = if delivered {
            None
        } else {
            webhook::next_pause(c.schedule_step.saturating_add(1))
                .map(|pause| webhook::jittered(pause, unit_random()))
        };
        if delivered {
            self.metrics.delivered.fetch_add(1, Ordering::Relaxed);
        } else {
            self.metrics.failed_attempts.fetch_add(1, Ordering::Relaxed);
            if retry_in.is_none() {
                self.metrics.given_up.fetch_add(1, Ordering::Relaxed);
            }
            tracing::debug!(delivery = %c.id, status_code, error, "webhook attempt failed");
        }
        Outcome {
            delivery_id: c.id,
            claim: c.claim,
            endpoint_id: c.endpoint_id,
            started_at: started_at.as_secs_f64(),
            duration_ms: u32::try_from(clock.elapsed().as_millis()).unwrap_or(u32::MAX),
            status_code,
            error: error
                .or_else(|| (!delivered).then(|| "the endpoint did not answer 2xx".to_owned())),
            response,
            delivered,
            retry_in,
        }
    }

    /// Sends `c` signed at `timestamp`: the answer's status and the start of its body, or why
    /// there was none.
    async fn send(
        &self,
        c: &Claimed,
        timestamp: u64,
    ) -> (Option<u16>, Option<String>, Option<String>) {
        let url = match reqwest::Url::parse(&c.url) {
            Ok(url) => url,
            Err(e) => return (None, Some(format!("invalid URL: {e}")), None),
        };
        if let Err(e) = check_literal(&url, self.settings.allow_private) {
            return (None, Some(e), None);
        }
        let keys: Vec<Vec<u8>> = c
            .secrets
            .iter()
            .filter_map(|s| webhook::parse_secret(s))
            .collect();
        let key_refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        let signature =
            webhook::signature_header(&key_refs, &c.message_id, timestamp, c.payload.as_bytes());
        let request = self
            .http
            .post(url)
            .header(header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &c.message_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(c.payload.clone());
        let mut answer = match request.send().await {
            Ok(answer) => answer,
            Err(e) => return (None, Some(describe(&e)), None),
        };
        let status = answer.status().as_u16();
        let mut body = Vec::new();
        let mut error = None;
        while body.len() < self.settings.max_response_bytes {
            match answer.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => {
                    error = Some(format!("reading the answer: {}", describe(&e)));
                    break;
                }
            }
        }
        body.truncate(self.settings.max_response_bytes);
        let response = (!body.is_empty()).then(|| String::from_utf8_lossy(&body).into_owned());
        (Some(status), error, response)
    }
}

/// A reqwest error in words, with its causes (the guard's refusal among them).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_redirect() {
        "redirect"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Uniform in `[0, 1)`, from the operating system's CSPRNG.
fn unit_random() -> f64 {
    let bytes = pactum_db::random_bytes();
    let n = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    f64::from(n) / (f64::from(u32::MAX) + 1.0)
}

async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) {
    tokio::select! {
        () = tokio::time::sleep(d) => {}
        _ = stop.changed() => {}
    }
}

/// Writes outcomes as they come, in batches of whatever is waiting (one statement each). A batch
/// the database refuses is tried again twice, then outcome by outcome; one that still fails is
/// dropped (logged and counted): its delivery's lease brings it back, and a later claim makes
/// its outcome stale anyway. Then the endpoints that failed in the batch are checked for
/// disabling.
async fn write_outcomes(db: Db, mut rx: mpsc::Receiver<Outcome>, worker: Worker) {
    const MAX_BATCH: usize = 500;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        if !write_with_retries(&db, &batch).await {
            for outcome in &batch {
                if !write_with_retries(&db, std::slice::from_ref(outcome)).await {
                    worker
                        .metrics
                        .outcomes_dropped
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::error!(delivery = %outcome.delivery_id, "a webhook outcome could not be written; the delivery will be attempted again when its lease ends");
                }
            }
        }
        let mut failing: Vec<String> = batch
            .iter()
            .filter(|o| !o.delivered)
            .map(|o| o.endpoint_id.clone())
            .collect();
        failing.sort();
        failing.dedup();
        if !failing.is_empty() {
            match disable(&db, &failing, worker.settings.disable_after).await {
                Ok(disabled) if !disabled.is_empty() => {
                    worker
                        .metrics
                        .endpoints_disabled
                        .fetch_add(disabled.len() as u64, Ordering::Relaxed);
                    tracing::warn!(
                        endpoints = ?disabled,
                        "webhook endpoints disabled: every delivery failed for days"
                    );
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(%err, "checking failing webhook endpoints failed"),
            }
        }
        batch.clear();
    }
}

/// Writes `outcomes`, trying three times; whether it succeeded.
async fn write_with_retries(db: &Db, outcomes: &[Outcome]) -> bool {
    for attempt in 1..=3 {
        match write_batch(db, outcomes).await {
            Ok(_) => return true,
            Err(err) => {
                tracing::warn!(%err, outcomes = outcomes.len(), attempt, "writing webhook outcomes failed");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
        }
    }
    false
}

async fn write_batch(db: &Db, batch: &[Outcome]) -> Result<u64, pactum_db::Error> {
    let mut conn = db.acquire().await?;
    store::complete(&mut conn, batch).await
}

async fn disable(
    db: &Db,
    endpoints: &[String],
    after: Duration,
) -> Result<Vec<String>, pactum_db::Error> {
    let mut conn = db.acquire().await?;
    store::disable_failing(&mut conn, endpoints, after).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_units_are_in_range() {
        for _ in 0..1000 {
            let u = unit_random();
            assert!((0.0..1.0).contains(&u), "{u}");
        }
    }
}
