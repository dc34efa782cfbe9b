//! Webhook delivery, measured and printed as a table (PostgreSQL, the delivery worker and a
//! receiver on loopback, all on this machine's two cores):
//! - throughput: deliveries queued while no worker runs, then drained by one worker until every
//!   one succeeded, to one endpoint and to eight (each event fanned out to all);
//! - latency from an event's commit to its arrival at the receiver, at 200 events a second for
//!   30 seconds (open loop: each event is committed at its scheduled time), after a 2 s warm-up.
//!
//! Events are written through `webhook_enqueue`, the function the triggers on the agreement
//! history and the relayer's jobs call in the transaction of the change they announce.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Router, body::Bytes, extract::State, routing::post};
use pactum_bench::{latency_row, thousands};
use pactum_db::testing::TestDatabase;
use pactum_webhooks::{Settings, Worker};
use tokio::sync::watch;

const THROUGHPUT_DELIVERIES: usize = 20_000;
const RATE: u64 = 200;
const RATE_SECONDS: u64 = 30;
const WARM_UP_SECONDS: u64 = 2;

/// When each event (by its `n`) arrived.
type Arrivals = Arc<Mutex<HashMap<u64, Instant>>>;

async fn receive(State(arrivals): State<Arrivals>, body: Bytes) -> &'static str {
    let at = Instant::now();
    let n = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["data"]["n"].as_u64());
    if let Some(n) = n {
        arrivals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(n)
            .or_insert(at);
    }
    "ok"
}

fn payload(n: u64) -> String {
    serde_json::json!({
        "type": "agreement.usage_recorded",
        "timestamp": "2026-12-06T00:00:00.000000Z",
        "data": { "n": n, "agreement_id": "agr_benchbenchbenchbench" },
    })
    .to_string()
}

async fn enqueue(pool: &sqlx::PgPool, n: u64) -> eyre::Result<()> {
    sqlx::query("SELECT webhook_enqueue(ARRAY['bench-agent'], 'agreement.usage_recorded', $1)")
        .bind(payload(n))
        .execute(pool)
        .await?;
    Ok(())
}

async fn pending(pool: &sqlx::PgPool) -> eyre::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE status <> 'succeeded'")
            .fetch_one(pool)
            .await?,
    )
}

fn worker(db: &pactum_db::Db, concurrency: usize) -> eyre::Result<(Worker, watch::Sender<bool>)> {
    let settings = Settings {
        concurrency,
        batch: 200,
        allow_private: true,
        ..Settings::default()
    };
    Ok((Worker::new(db.clone(), settings)?, watch::channel(false).0))
}

#[tokio::main]
async fn main() -> eyre::Result<()> {
    let arrivals: Arrivals = Arc::default();
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(arrivals.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let test_db = TestDatabase::create().await?;
    let db = test_db.db().clone();
    let pool = db.pool().clone();
    sqlx::query(
        "INSERT INTO owners (id, name, email) VALUES ('bench', 'Bench', 'bench@pactum.test')",
    )
    .execute(&pool)
    .await?;
    sqlx::query(
        "INSERT INTO agents (id, owner_id, name, wallet_address)
         VALUES ('bench-agent', 'bench', 'bench', decode(repeat('22', 20), 'hex'))",
    )
    .execute(&pool)
    .await?;
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, agent_id, url, secret, created_by)
         VALUES ('whk_benchbenchbenchbench', 'bench-agent', $1,
                 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'owner:bench')",
    )
    .bind(&url)
    .execute(&pool)
    .await?;

    println!("| measurement | result | notes |");
    println!("|---|---|---|");
    let mut next = 0u64;
    for endpoints in [1usize, 8] {
        // More endpoints of the same agent: each event is delivered to each.
        let existing: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_endpoints")
            .fetch_one(&pool)
            .await?;
        for i in existing..i64::try_from(endpoints)? {
            sqlx::query(
                "INSERT INTO webhook_endpoints (id, agent_id, url, secret, created_by)
                 VALUES ($1, 'bench-agent', $2, 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'owner:bench')",
            )
            .bind(format!("whk_{}{}", "q".repeat(19), char::from(b'a' + u8::try_from(i)?)))
            .bind(&url)
            .execute(&pool)
            .await?;
        }
        // Queue the deliveries with no worker running, a hundred events per transaction.
        for _ in 0..THROUGHPUT_DELIVERIES / 100 / endpoints {
            let mut tx = pool.begin().await?;
            for _ in 0..100 {
                sqlx::query(
                    "SELECT webhook_enqueue(ARRAY['bench-agent'], 'agreement.usage_recorded', $1)",
                )
                .bind(payload(next))
                .execute(&mut *tx)
                .await?;
                next += 1;
            }
            tx.commit().await?;
        }
        let (w, stop) = worker(&db, 64)?;
        let started = Instant::now();
        let running = tokio::spawn(w.run(stop.subscribe()));
        while pending(&pool).await? > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let elapsed = started.elapsed();
        let _ = stop.send(true);
        running.await??;
        println!(
            "| deliveries drained by one worker (64 slots, 16 per endpoint), {endpoints} endpoint(s) | {} /s | {} queued deliveries, each signed, POSTed to a loopback receiver and recorded with its attempt, in {:.1} s |",
            thousands(THROUGHPUT_DELIVERIES as f64 / elapsed.as_secs_f64()),
            thousands(THROUGHPUT_DELIVERIES as f64),
            elapsed.as_secs_f64()
        );
    }

    // Latency at a fixed rate, to one endpoint: each event committed at its scheduled time.
    sqlx::query(
        "UPDATE webhook_endpoints SET deleted_at = now() WHERE id <> 'whk_benchbenchbenchbench'",
    )
    .execute(&pool)
    .await?;
    let (w, stop) = worker(&db, 64)?;
    let running = tokio::spawn(w.run(stop.subscribe()));
    let committed: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let interval = Duration::from_secs(1) / u32::try_from(RATE)?;
    let total = RATE * (WARM_UP_SECONDS + RATE_SECONDS);
    let first = next;
    let start = Instant::now();
    let mut producers = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = start + interval * u32::try_from(i)?;
        tokio::time::sleep_until(due.into()).await;
        let (pool, committed, n) = (pool.clone(), committed.clone(), first + i);
        producers.spawn(async move {
            enqueue(&pool, n).await?;
            committed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(n, Instant::now());
            Ok::<_, eyre::Report>(())
        });
    }
    for produced in producers.join_all().await {
        produced?;
    }
    while pending(&pool).await? > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(true);
    running.await??;
    let (committed, arrivals) = (
        committed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone(),
        arrivals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone(),
    );
    let measured_from = first + RATE * WARM_UP_SECONDS;
    let mut samples: Vec<f64> = (measured_from..first + total)
        .filter_map(|n| {
            let (c, a) = (committed.get(&n)?, arrivals.get(&n)?);
            Some(a.saturating_duration_since(*c).as_secs_f64() * 1_000.0)
        })
        .collect();
    let expected = (RATE * RATE_SECONDS) as usize;
    eyre::ensure!(
        samples.len() == expected,
        "{} of {expected} events arrived",
        samples.len()
    );
    println!();
    println!("| event committed → delivered | p50 | p99 | max | events |");
    println!("|---|---|---|---|---|");
    println!(
        "{}",
        latency_row(
            &format!("{RATE} events/s for {RATE_SECONDS} s"),
            &mut samples,
            &format!("{expected}, all delivered"),
        )
    );
    Ok(())
}
