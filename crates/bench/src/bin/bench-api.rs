//! Status API under load from a second process on loopback, printed as a table.
//!
//! The parent indexes a chain with genuine agreements, registers an agent whose wallet is their
//! buyer, and serves the API. It then runs itself again as the load generator (`--load`):
//! - open loop at a fixed rate (default 1,000 requests/s for 10 s), latency measured from each
//!   request's scheduled start, so a stall counts against the server (no coordinated omission);
//! - closed loop with 32 concurrent clients for 5 s, for the throughput ceiling;
//! - then the usage-agreement endpoints, open loop ([`pactum_bench::lifecycle`]).

use std::{
    process::Command,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use alloy::transports::http::reqwest::Client;
use pactum_api::AppState;
use pactum_bench::{LoadChain, percentile, thousands};
use pactum_db::{index, testing::TestDatabase};
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::watch};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> eyre::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--load") {
        return load(&args[2..]).await;
    }
    if pactum_bench::serve_open_loop().await? {
        return Ok(());
    }

    let mut chain = LoadChain::start(&[]).await?;
    for _ in 0..5 {
        chain.drive(20, 10, true).await?;
    }
    let d = chain.deployment.clone();
    let db = TestDatabase::create().await?;
    chain.index_into(db.db()).await?;
    let key = chain.register_driver(db.db(), "bench-buyer").await?;
    let mut conn = db.db().pool().acquire().await?;
    let ids: Vec<String> = index::all_agreements(&mut conn, d.chain_id)
        .await?
        .iter()
        .map(|a| a.agreement_id.to_string())
        .collect();
    drop(conn);

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (_stop, stopped) = watch::channel(false);
    tokio::spawn(pactum_api::serve(
        listener,
        AppState::new(db.db().clone(), d.chain_id, None),
        stopped,
    ));

    let exe = std::env::current_exe()?;
    let ids = ids.join(",");
    // The load generator is another process; wait for it off the runtime, which serves the API.
    let run = |mode: &'static str| {
        let (exe, url, key, ids) = (exe.clone(), url.clone(), key.clone(), ids.clone());
        tokio::task::spawn_blocking(move || -> eyre::Result<Value> {
            let output = Command::new(&exe)
                .args(["--load", mode, &url, &key, &ids])
                .output()?;
            eyre::ensure!(
                output.status.success(),
                "load generator failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            Ok(serde_json::from_slice(&output.stdout)?)
        })
    };
    // PACTUM_BENCH_ROWS=propose,usage,get,page runs only those lifecycle rows.
    if !pactum_bench::lifecycle::narrowed() {
        let open = run("open").await??;
        let closed = run("closed").await??;

        println!(
            "\n| status API benchmark (GET escrow-status, loopback, separate load process) | measured | goal |\n|---|---|---|"
        );
        println!(
            "| open loop at {} requests/s for {} s ({} requests, {} errors) | p50 {:.2} ms / p99 {:.2} ms / max {:.1} ms | p99 ≤ 10 ms at 1,000/s |",
            thousands(open["rate"].as_f64().unwrap_or_default()),
            open["seconds"],
            thousands(open["sent"].as_f64().unwrap_or_default()),
            open["errors"],
            open["p50_ms"].as_f64().unwrap_or(f64::NAN),
            open["p99_ms"].as_f64().unwrap_or(f64::NAN),
            open["max_ms"].as_f64().unwrap_or(f64::NAN),
        );
        println!(
            "| closed loop, 32 clients, {} s ({} errors) | {} requests/s, p50 {:.2} ms / p99 {:.2} ms | — |",
            closed["seconds"],
            closed["errors"],
            thousands(closed["throughput"].as_f64().unwrap_or_default()),
            closed["p50_ms"].as_f64().unwrap_or(f64::NAN),
            closed["p99_ms"].as_f64().unwrap_or(f64::NAN),
        );
    }
    let mut rows = pactum_bench::lifecycle::run(db.db(), &d).await?;
    pactum_bench::lifecycle::print(&mut rows);
    db.drop_database().await?;
    Ok(())
}

/// The load generator process: `--load open|closed <url> <key> <id,id,...>`; prints JSON.
async fn load(args: &[String]) -> eyre::Result<()> {
    let [mode, url, key, ids] = args else {
        eyre::bail!("usage: --load open|closed <url> <key> <ids>");
    };
    let ids: Vec<String> = ids.split(',').map(str::to_owned).collect();
    let client = Client::builder().pool_max_idle_per_host(256).build()?;
    let urls: Arc<Vec<String>> = Arc::new(
        ids.iter()
            .map(|id| format!("{url}/usage-agreements/{id}/escrow-status"))
            .collect(),
    );
    let auth = format!("Bearer {key}");
    // Warm the connection pool.
    for u in urls.iter().take(64) {
        client
            .get(u)
            .header("authorization", &auth)
            .send()
            .await?
            .bytes()
            .await?;
    }
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let request = {
        let (client, urls, auth, latencies, errors) = (
            client.clone(),
            urls.clone(),
            auth.clone(),
            latencies.clone(),
            errors.clone(),
        );
        move |i: usize, scheduled: Instant| {
            let (client, urls, auth, latencies, errors) = (
                client.clone(),
                urls.clone(),
                auth.clone(),
                latencies.clone(),
                errors.clone(),
            );
            async move {
                let ok = match client
                    .get(&urls[i % urls.len()])
                    .header("authorization", auth)
                    .send()
                    .await
                {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if !ok {
                    errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                let ms = scheduled.elapsed().as_secs_f64() * 1e3;
                if let Ok(mut l) = latencies.lock() {
                    l.push(ms);
                }
            }
        }
    };

    let result = if mode == "open" {
        let (rate, seconds) = (1_000u64, 10u64);
        let period = Duration::from_nanos(1_000_000_000 / rate);
        let start = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..(rate * seconds) as usize {
            let scheduled = start + period * u32::try_from(i)?;
            tokio::time::sleep_until(scheduled.into()).await;
            tasks.push(tokio::spawn(request(i, scheduled)));
        }
        for t in tasks {
            t.await?;
        }
        let mut l = latencies.lock().map(|l| l.clone()).unwrap_or_default();
        json!({
            "rate": rate, "seconds": seconds, "sent": l.len(),
            "errors": errors.load(std::sync::atomic::Ordering::Relaxed),
            "p50_ms": percentile(&mut l, 0.5), "p99_ms": percentile(&mut l, 0.99), "max_ms": percentile(&mut l, 1.0),
        })
    } else {
        let seconds = 5u64;
        let end = Instant::now() + Duration::from_secs(seconds);
        let mut workers = Vec::new();
        for w in 0..32usize {
            let request = request.clone();
            workers.push(tokio::spawn(async move {
                let mut i = w;
                while Instant::now() < end {
                    request(i, Instant::now()).await;
                    i += 32;
                }
            }));
        }
        for w in workers {
            w.await?;
        }
        let mut l = latencies.lock().map(|l| l.clone()).unwrap_or_default();
        json!({
            "seconds": seconds, "throughput": l.len() as f64 / seconds as f64,
            "errors": errors.load(std::sync::atomic::Ordering::Relaxed),
            "p50_ms": percentile(&mut l, 0.5), "p99_ms": percentile(&mut l, 0.99),
        })
    };
    println!("{result}");
    Ok(())
}
