//! The demo's webhook receiver and receipts: the owner registers an endpoint for each agent (a
//! receiver in the demo's own process), and at the end the demo prints what it received, each
//! delivery's signature checked with the secret the API showed once; then the receipts of the
//! buyer's agreements, each verified through the API, and written to files for
//! `pactum receipts verify` (which `script/run.sh` runs against the node).

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, routing::post};
use eyre::{WrapErr, bail};
use pactum_client::{
    Client,
    types::{CreateWebhook, ListReceipts},
};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Got {
    id: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
}

type Inbox = Arc<Mutex<Vec<Got>>>;

/// The receiver and the endpoints registered at it.
#[derive(Debug)]
pub(crate) struct Receiver {
    inbox: Inbox,
    /// (agent, secret) of each endpoint.
    secrets: Vec<(String, String)>,
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn receive(State(inbox): State<Inbox>, headers: HeaderMap, body: Bytes) -> &'static str {
    inbox
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(Got {
            id: header(&headers, "webhook-id"),
            timestamp: header(&headers, "webhook-timestamp"),
            signature: header(&headers, "webhook-signature"),
            body: body.to_vec(),
        });
    "ok"
}

/// Starts a receiver on loopback and registers an endpoint at it for each of `agents` (as their
/// owner, `owner`).
pub(crate) async fn listen(owner: &Client, agents: &[&str]) -> eyre::Result<Receiver> {
    let inbox: Inbox = Arc::default();
    let app = Router::new()
        .route("/webhooks", post(receive))
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/webhooks", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    println!("\n== the owner registers a webhook receiver for its agents ({url}) ==");
    let mut secrets = Vec::new();
    for agent in agents {
        let body = CreateWebhook {
            url: url.clone(),
            event_types: None,
            description: format!("the demo's receiver for {agent}"),
        };
        let created = owner
            .create_webhook(
                agent,
                &body,
                &format!("demo-webhook-{agent}-{}", pactum_db::random_id(8)),
            )
            .await
            .wrap_err("POST /agents/{agent_id}/webhooks")?;
        println!(
            "  {:<58} -> {}  {} (secret {}…, shown once)",
            format!("POST /agents/{agent}/webhooks"),
            created.status,
            created.body.webhook.webhook_id,
            &created.body.secret[..12]
        );
        secrets.push(((*agent).to_owned(), created.body.secret));
    }
    Ok(Receiver { inbox, secrets })
}

impl Receiver {
    /// Prints every delivery received, with its signature checked; fails if one does not verify.
    pub(crate) async fn report(&self, owner: &Client) -> eyre::Result<()> {
        // Let the last events arrive.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let got = self
            .inbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        println!(
            "\n== webhook deliveries received: {} (Standard Webhooks signatures checked) ==",
            got.len()
        );
        let keys: Vec<Vec<u8>> = self
            .secrets
            .iter()
            .filter_map(|(_, s)| pactum_core::webhook::parse_secret(s))
            .collect();
        let mut bad = 0;
        for g in &got {
            let timestamp: u64 = g.timestamp.parse().unwrap_or_default();
            let verified = keys.iter().any(|key| {
                let expected = pactum_core::webhook::signature(key, &g.id, timestamp, &g.body);
                g.signature.split(' ').any(|s| s == expected)
            });
            bad += usize::from(!verified);
            let body: serde_json::Value = serde_json::from_slice(&g.body).unwrap_or_default();
            let what = body["data"]["agreement_id"]
                .as_str()
                .or_else(|| body["data"]["receipt_id"].as_str())
                .unwrap_or_default();
            println!(
                "  {:<30} {} {:<24} signature {}",
                body["type"].as_str().unwrap_or("?"),
                g.id,
                what,
                if verified {
                    "verified"
                } else {
                    "DOES NOT VERIFY"
                }
            );
        }
        for (agent, _) in &self.secrets {
            let page = owner
                .webhook_deliveries(agent, &pactum_client::types::ListDeliveries::default())
                .await?;
            let failed = page
                .deliveries
                .iter()
                .filter(|d| d.status == pactum_client::types::DeliveryStatus::Failed)
                .count();
            println!(
                "  {:<58} -> 200  {} deliveries listed, {failed} failed",
                format!("GET /agents/{agent}/webhooks/deliveries"),
                page.deliveries.len()
            );
        }
        if bad > 0 {
            bail!("{bad} webhook deliveries did not verify");
        }
        Ok(())
    }
}

/// Waits for the receipts of `agent`'s agreements (at least `expected`), verifies each through
/// the API, and writes each document to `dir` for `pactum receipts verify`.
pub(crate) async fn receipts(
    api: &Client,
    agent: &str,
    expected: usize,
    dir: &Path,
) -> eyre::Result<()> {
    println!("\n== receipts of {agent}'s agreements (signed by the service, final on chain) ==");
    let started = Instant::now();
    let page = loop {
        let page = api
            .receipts(&ListReceipts {
                agent_id: agent.to_owned(),
                limit: Some(100),
                cursor: None,
            })
            .await
            .wrap_err("GET /receipts")?;
        if page.receipts.len() >= expected {
            break page;
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!(
                "{} receipts after a minute, {expected} expected",
                page.receipts.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    std::fs::create_dir_all(dir)?;
    for r in &page.receipts {
        let check = api
            .verify_receipt(&r.receipt_id)
            .await
            .wrap_err("GET /receipts/verify")?;
        println!(
            "  {} {:<16} {:>12} {} -> {}  {}",
            r.receipt_id,
            r.kind,
            r.amount,
            r.payer,
            r.payee,
            if check.valid {
                "valid".to_owned()
            } else {
                format!("INVALID: {:?}", check.reasons)
            }
        );
        if !check.valid {
            bail!("receipt {} does not verify", r.receipt_id);
        }
        std::fs::write(
            dir.join(format!("{}.json", r.receipt_id)),
            serde_json::to_vec_pretty(r)?,
        )?;
    }
    println!(
        "  written to {} for `pactum receipts verify`",
        dir.display()
    );
    Ok(())
}
