//! Crash safety of webhook delivery, as real `pactum webhooks` processes: with hundreds of
//! deliveries queued and a receiver answering slowly, the worker process is SIGKILLed at random
//! moments mid-batch, again and again, while a second worker process keeps running beside it.
//! Afterwards every message was received (at least once, always with its own `webhook-id`),
//! every delivery is recorded as succeeded, and nothing is left pending.

mod common;

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use pactum_db::testing::TestDatabase;

const MESSAGES: usize = 600;

fn spawn_worker(db_url: &str, log: &std::path::Path) -> eyre::Result<Child> {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    Ok(Command::new(env!("CARGO_BIN_EXE_pactum"))
        .arg("webhooks")
        .env("PACTUM_DATABASE_URL", db_url)
        .env("PACTUM_WEBHOOKS_ALLOW_PRIVATE_DESTINATIONS", "true")
        .env("PACTUM_WEBHOOKS_CONCURRENCY", "4")
        .env("PACTUM_WEBHOOKS_TIMEOUT_MS", "1000")
        // Short leases, so that deliveries a killed worker held come back within the test.
        .env("PACTUM_WEBHOOKS_LEASE_SECS", "6")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr))
        .spawn()?)
}

async fn count(pool: &sqlx::PgPool, sql: &'static str) -> eyre::Result<i64> {
    Ok(sqlx::query_scalar(sql).fetch_one(pool).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_is_delivered_through_worker_crashes() -> eyre::Result<()> {
    let (seed, mut rng) = common::seeded("webhook crash test");

    // Answers after 100 ms: a batch is in flight whenever the worker dies.
    let (url, seen) = common::webhook_receiver(Duration::from_millis(100)).await?;

    let test_db = TestDatabase::create().await?;
    let pool = test_db.db().pool().clone();
    sqlx::query("INSERT INTO owners (id, name, email) VALUES ('acme', 'Acme', 'ops@acme.test')")
        .execute(&pool)
        .await?;
    sqlx::query(
        "INSERT INTO agents (id, owner_id, name, wallet_address)
         VALUES ('buyer', 'acme', 'buyer', decode(repeat('11', 20), 'hex'))",
    )
    .execute(&pool)
    .await?;
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, agent_id, url, secret, created_by)
         VALUES ('whk_aaaaaaaaaaaaaaaaaaaa', 'buyer', $1, 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'owner:acme')",
    )
    .bind(&url)
    .execute(&pool)
    .await?;
    // The messages, through the function the triggers call.
    for i in 0..MESSAGES {
        sqlx::query("SELECT webhook_enqueue(ARRAY['buyer'], 'agreement.proposed', $1)")
            .bind(serde_json::json!({ "type": "agreement.proposed", "n": i }).to_string())
            .execute(&pool)
            .await?;
    }

    let log = std::env::temp_dir().join(format!("pactum-webhooks-crash-{seed}.log"));
    // A steady worker beside the one that keeps dying.
    let mut steady = spawn_worker(test_db.url(), &log)?;
    let mut kills = 0;
    let started = Instant::now();
    while count(
        &pool,
        "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'",
    )
    .await?
        > 0
    {
        eyre::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "deliveries still pending after two minutes ({kills} kills); log: {}",
            log.display()
        );
        if kills < 12 {
            let mut victim = spawn_worker(test_db.url(), &log)?;
            tokio::time::sleep(Duration::from_millis(300 + rng.below(700))).await;
            victim.kill()?; // SIGKILL
            victim.wait()?;
            kills += 1;
        } else {
            // Enough crashes: the steady worker (and the leases ending) finish the rest.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    steady.kill()?;
    steady.wait()?;

    let seen = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let messages: Vec<String> = sqlx::query_scalar("SELECT id FROM webhook_messages")
        .fetch_all(&pool)
        .await?;
    assert_eq!(messages.len(), MESSAGES);
    let missing: Vec<&String> = messages.iter().filter(|m| !seen.contains_key(*m)).collect();
    assert!(missing.is_empty(), "never received: {missing:?}");
    assert_eq!(
        seen.len(),
        MESSAGES,
        "a request carried an unknown webhook-id"
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded'"
        )
        .await?,
        MESSAGES as i64
    );
    let repeats: usize = seen.values().map(|n| n - 1).sum();
    eprintln!(
        "{kills} workers killed; {MESSAGES} messages delivered, {repeats} of them more than once \
         (at-least-once: the same webhook-id each time)"
    );
    assert!(kills >= 3, "the worker was barely killed ({kills})");
    Ok(())
}
