//! A node that refuses large log ranges, fails requests, or goes away for a while: the indexer
//! splits, retries and carries on, and ends with the same rows as a fresh index. The faults are
//! injected by a JSON-RPC proxy in front of the real Anvil.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use alloy::{
    providers::{Provider, ProviderBuilder},
    transports::http::reqwest::Client,
};
use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::post};
use pactum_db::testing::TestDatabase;
use pactum_indexer::{Config, Indexer, Metrics};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::{assert_equals_fresh_index, assert_matches_chain, lifecycle::populate};
use crate::chain::Chain;

#[derive(Clone)]
struct Proxy {
    upstream: String,
    http: Client,
    /// eth_getLogs spanning more blocks than this is refused like a hosted provider does.
    max_log_span: u64,
    /// Every n-th request fails with a 503 (0: never).
    fail_every: u64,
    /// While set, every request fails (the node is down).
    down: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
}

fn block_number(v: &Value) -> Option<u64> {
    v.as_str()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
}

async fn relay(State(p): State<Proxy>, Json(body): Json<Value>) -> impl IntoResponse {
    let n = p.requests.fetch_add(1, Ordering::Relaxed) + 1;
    if p.down.load(Ordering::Relaxed) || (p.fail_every != 0 && n % p.fail_every == 0) {
        return (StatusCode::SERVICE_UNAVAILABLE, "node unavailable").into_response();
    }
    if body["method"] == "eth_getLogs" {
        let filter = &body["params"][0];
        if let (Some(from), Some(to)) = (
            block_number(&filter["fromBlock"]),
            block_number(&filter["toBlock"]),
        ) && to.saturating_sub(from) + 1 > p.max_log_span
        {
            p.refused.fetch_add(1, Ordering::Relaxed);
            return Json(json!({
                "jsonrpc": "2.0",
                "id": body["id"],
                "error": {"code": -32005, "message": "query returned more than 10000 results"},
            }))
            .into_response();
        }
    }
    match p
        .http
        .post(&p.upstream)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
    {
        Ok(r) => match r.bytes().await {
            Ok(bytes) => ([("content-type", "application/json")], bytes.to_vec()).into_response(),
            Err(_) => StatusCode::BAD_GATEWAY.into_response(),
        },
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

async fn start_proxy(
    chain: &Chain,
    max_log_span: u64,
    fail_every: u64,
) -> eyre::Result<(String, Proxy)> {
    let proxy = Proxy {
        upstream: chain.anvil_url(),
        http: Client::new(),
        max_log_span,
        fail_every,
        down: Arc::default(),
        requests: Arc::default(),
        refused: Arc::default(),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let app = Router::new()
        .route("/", post(relay))
        .with_state(proxy.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, proxy))
}

fn config(chain: &Chain) -> Config {
    let d = &chain.deployment;
    let mut config = Config::new(d.chain_id, d.escrow, d.fee_collector, d.start_block);
    config.use_finalized_tag = false;
    config.confirmations = 0;
    config.backoff.initial = std::time::Duration::from_millis(10);
    config.backoff.max = std::time::Duration::from_millis(100);
    config
}

/// The node refuses any `eth_getLogs` over more than 3 blocks; the indexer splits its ranges
/// until the node accepts them.
#[tokio::test]
async fn splits_log_ranges_the_node_refuses() -> eyre::Result<()> {
    let chain = Chain::start().await?;
    populate(&chain, "split").await?;
    let (url, proxy) = start_proxy(&chain, 3, 0).await?;
    let test_db = TestDatabase::create().await?;
    let metrics = Metrics::default();
    let provider = ProviderBuilder::new().connect_http(url.parse()?).erased();
    let mut indexer = Indexer::new(
        config(&chain),
        test_db.db().clone(),
        provider,
        metrics.clone(),
    )
    .await?;
    indexer.catch_up().await?;
    assert!(
        proxy.refused.load(Ordering::Relaxed) > 0,
        "the node refused ranges"
    );
    assert!(
        metrics.snapshot().range_splits > 0,
        "and the indexer split them"
    );
    assert_matches_chain(&chain, test_db.db()).await?;
    assert_equals_fresh_index(&chain, test_db.db()).await?;
    test_db.drop_database().await?;
    Ok(())
}

/// One request in three fails, and then the node is down for half a second (a restart): the
/// indexer retries with backoff, never stops, and ends with exactly the fresh index's rows.
#[tokio::test]
async fn rides_out_failing_requests_and_a_node_restart() -> eyre::Result<()> {
    let chain = Chain::start().await?;
    populate(&chain, "flaky").await?;
    let (url, proxy) = start_proxy(&chain, u64::MAX, 3).await?;
    let test_db = TestDatabase::create().await?;
    let metrics = Metrics::default();
    let provider = ProviderBuilder::new().connect_http(url.parse()?).erased();
    let mut config = config(&chain);
    config.batch_blocks = 3;
    // Construction reads the chain id and the start block through the flaky node too.
    let mut indexer = Indexer::new(config, test_db.db().clone(), provider, metrics.clone())
        .await
        .map_err(|err| eyre::eyre!("construction must retry transient failures: {err}"))?;
    indexer.step().await?;
    proxy.down.store(true, Ordering::Relaxed);
    let down = proxy.down.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        down.store(false, Ordering::Relaxed);
    });
    indexer.catch_up().await?;
    assert!(
        metrics.snapshot().rpc_retries > 5,
        "{:?}",
        metrics.snapshot()
    );
    assert_matches_chain(&chain, test_db.db()).await?;
    assert_equals_fresh_index(&chain, test_db.db()).await?;
    test_db.drop_database().await?;
    Ok(())
}

/// A node that refuses even a single block's logs: the indexer stops with the node's error
/// instead of retrying forever.
#[tokio::test]
async fn single_block_refusal_stops_with_the_nodes_error() -> eyre::Result<()> {
    let chain = Chain::start().await?;
    populate(&chain, "refuse").await?;
    let (url, _proxy) = start_proxy(&chain, 0, 0).await?;
    let test_db = TestDatabase::create().await?;
    let provider = ProviderBuilder::new().connect_http(url.parse()?).erased();
    let mut indexer = Indexer::new(
        config(&chain),
        test_db.db().clone(),
        provider,
        Metrics::default(),
    )
    .await?;
    let outcome =
        tokio::time::timeout(std::time::Duration::from_secs(20), indexer.catch_up()).await;
    let err = outcome
        .map_err(|_| eyre::eyre!("the indexer kept retrying a permanent refusal"))?
        .err()
        .ok_or_else(|| eyre::eyre!("must stop"))?;
    assert!(
        err.to_string().contains("query returned more than"),
        "{err}"
    );
    test_db.drop_database().await?;
    Ok(())
}

/// A write that fails in the middle of a pipelined backfill (here: another writer moved the
/// checkpoint) stops the backfill with that error; the reader does not wait forever.
#[tokio::test]
async fn a_failed_write_stops_the_backfill() -> eyre::Result<()> {
    let chain = Chain::start().await?;
    populate(&chain, "stall").await?;
    let test_db = TestDatabase::create().await?;
    let mut config = config(&chain);
    config.batch_blocks = 1;
    let mut indexer = Indexer::new(
        config,
        test_db.db().clone(),
        chain.provider.clone(),
        Metrics::default(),
    )
    .await?;
    sqlx::query("UPDATE indexer_cursor SET block_number = block_number - 7")
        .execute(test_db.db().pool())
        .await?;
    let outcome =
        tokio::time::timeout(std::time::Duration::from_secs(20), indexer.backfill()).await;
    let err = outcome
        .map_err(|_| eyre::eyre!("the backfill hung after a failed write"))?
        .err()
        .ok_or_else(|| eyre::eyre!("must fail"))?;
    assert!(
        err.to_string().contains("is another indexer running"),
        "{err}"
    );
    test_db.drop_database().await?;
    Ok(())
}
