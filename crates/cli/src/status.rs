//! Reading an agreement's escrow status back through the pactum API (used by the demo).

use std::time::{Duration, Instant};

use alloy::{
    primitives::{B256, TxHash},
    transports::http::reqwest::Client,
};
use eyre::{WrapErr, bail};
use serde_json::Value;

/// Polls `GET /usage-agreements/{id}/escrow-status` until the index shows the agreement settled
/// by `settled_tx` (the indexer runs in another process), then prints it.
pub(crate) async fn show(
    api: &str,
    key: &str,
    id: B256,
    settled_tx: Option<TxHash>,
) -> eyre::Result<()> {
    let url = format!(
        "{}/usage-agreements/{id}/escrow-status",
        api.trim_end_matches('/')
    );
    let client = Client::new();
    let started = Instant::now();
    let body = loop {
        let response = client
            .get(&url)
            .bearer_auth(key)
            .send()
            .await
            .wrap_err_with(|| format!("cannot reach the pactum API at {api}"))?;
        let status = response.status();
        let body: Value = serde_json::from_slice(&response.bytes().await?).unwrap_or(Value::Null);
        let settled = body["transitions"]["settlement"]["tx_hash"]
            .as_str()
            .map(str::to_owned);
        if status.is_success() && settled == settled_tx.map(|t| t.to_string()) {
            break body;
        }
        if !status.is_success() && status.as_u16() != 404 {
            bail!("escrow-status answered {status}: {body}");
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!(
                "the index did not show the settlement within 30 s (last answer {status}: {body})"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let waited = started.elapsed().as_millis();
    println!("  escrow status read back through the API (indexed after {waited} ms): GET {url}");
    let s = |k: &str| body[k].as_str().unwrap_or("-").to_owned();
    println!(
        "    status {}  activation_status {}  deposited {}  seller paid {}  buyer paid {}  held {}",
        s("status"),
        s("activation_status"),
        s("deposited"),
        s("seller_paid_amount"),
        s("buyer_paid_amount"),
        s("held_in_escrow")
    );
    for step in [
        "activation",
        "close",
        "seller_claim",
        "seller_payout",
        "buyer_withdrawal",
        "settlement",
    ] {
        let t = &body["transitions"][step];
        if let Some(tx) = t["tx_hash"].as_str() {
            println!(
                "    {step:<16} tx {tx}  block {}  confirmations {}",
                t["block_number"], t["confirmations"]
            );
        }
    }
    println!(
        "    indexed head: block {}  (node head {}, finalized {})",
        body["indexed"]["block_number"],
        body["indexed"]["node_head"],
        body["indexed"]["finalized_block"]
    );
    Ok(())
}
