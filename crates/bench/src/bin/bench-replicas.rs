//! Several `pactum serve` processes over one PostgreSQL, printed as two tables:
//! - the lifecycle endpoints' throughput with one and with three API processes: 32 clients in a
//!   closed loop for 10 s (after a 2 s warm-up), each proposing an agreement as the buyer,
//!   accepting it as the seller and reading it back, spread round-robin over the processes;
//! - the indexer's failover: the process holding the index lock is SIGKILLed, and the time is
//!   taken until another process reports that it writes the index and until a block mined right
//!   after the kill is indexed (five rounds; the killed process is restarted between them).
//!
//! Runs the `pactum` binary next to this one (`cargo build --release -p pactum -p pactum-bench`).

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use alloy::{
    network::EthereumWallet,
    primitives::U256,
    signers::local::PrivateKeySigner,
    transports::http::reqwest::{Client, StatusCode},
};
use pactum_api_types::{PaymentMethod, ProposeAgreement};
use pactum_bench::{percentile, thousands};
use pactum_db::{Db, identity, testing::TestDatabase};
use pactum_devnet::{Deployment, dev_signer};
use serde_json::Value;

const CLIENTS: usize = 32;
const WARM: Duration = Duration::from_secs(2);
const MEASURED: Duration = Duration::from_secs(10);
const FAILOVERS: usize = 5;

struct Stack {
    binary: PathBuf,
    deployment: Deployment,
    rpc_url: String,
    db_url: String,
    log: PathBuf,
}

impl Stack {
    fn spawn(&self, port: u16) -> eyre::Result<Child> {
        let d = &self.deployment;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        Ok(Command::new(&self.binary)
            .arg("serve")
            .envs(d.process_env(&self.rpc_url, &self.db_url))
            // Three processes' pools within the server's 100 connections.
            .env("PACTUM_DATABASE_API_CONNECTIONS", "16")
            .env("PACTUM_DATABASE_INDEXER_CONNECTIONS", "3")
            .env("PACTUM_DATABASE_RELAYER_CONNECTIONS", "3")
            .env("PACTUM_DATABASE_WEBHOOKS_CONNECTIONS", "3")
            .env("PACTUM_API_LISTEN", format!("127.0.0.1:{port}"))
            .env("PACTUM_INDEXER_CONFIRMATIONS", "0")
            .env("PACTUM_INDEXER_USE_FINALIZED_TAG", "false")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()?)
    }
}

/// A `pactum serve` process and its port, killed when dropped (also when the benchmark fails).
struct Process(u16, Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.1.kill();
        let _ = self.1.wait();
    }
}

async fn healthy(http: &Client, port: u16) -> eyre::Result<()> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if http
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eyre::bail!("pactum serve on port {port} did not start")
}

/// Whether the process on `port` reports that it writes the index.
async fn writes_index(http: &Client, port: u16) -> bool {
    match http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
    {
        Ok(r) => r
            .text()
            .await
            .is_ok_and(|t| t.lines().any(|l| l == "pactum_indexer_leader 1")),
        Err(_) => false,
    }
}

/// The server process (backend pid) holding chain `chain_id`'s index lock, if any: how the
/// takeover is timed (the processes' `/metrics` are paced at 10 a second).
async fn lock_holder(db: &Db, chain_id: u64) -> eyre::Result<Option<i32>> {
    Ok(sqlx::query_scalar(
        "SELECT pid FROM pg_locks
         WHERE locktype = 'advisory' AND granted AND objsubid = 1
           AND ((classid::bigint << 32) | objid::bigint) = hashtextextended($1, 0)",
    )
    .bind(pactum_db::locks::Lock::Indexer { chain_id }.name())
    .fetch_optional(db.pool())
    .await?)
}

struct Keys {
    buyer: String,
    seller: String,
    buyer_wallet: String,
}

async fn register(db: &Db, d: &Deployment) -> eyre::Result<Keys> {
    let mut conn = db.pool().acquire().await?;
    identity::create_owner(&mut conn, "bench-owner", "bench", "bench@pactum.local").await?;
    let deployment = pactum_api::identity::Deployment {
        chain_id: d.chain_id,
        escrow: d.escrow,
    };
    let (buyer, seller) = (PrivateKeySigner::random(), PrivateKeySigner::random());
    let mut keys = Vec::new();
    for (agent, wallet) in [("rp-buyer", &buyer), ("rp-seller", &seller)] {
        pactum_api::identity::register_with_key(
            db,
            deployment,
            "bench-owner",
            agent,
            agent,
            wallet,
        )
        .await
        .map_err(|p| eyre::eyre!("registering {agent}: {p:?}"))?;
        let (id, key, hash) = pactum_api::auth::generate_api_key();
        identity::create_api_key(&mut conn, &id, agent, &hash, "bench").await?;
        keys.push(key);
    }
    Ok(Keys {
        seller: keys.pop().unwrap_or_default(),
        buyer: keys.pop().unwrap_or_default(),
        buyer_wallet: buyer.address().to_string(),
    })
}

#[derive(Default)]
struct Tally {
    propose: Vec<f64>,
    accept: Vec<f64>,
    get: Vec<f64>,
    errors: u64,
}

/// One client's loop: propose, accept, read back, on the next process each time, until `end`;
/// only what starts after `from` is recorded.
async fn client(
    http: Client,
    ports: Arc<Vec<u16>>,
    keys: Arc<Keys>,
    n: usize,
    from: Instant,
    end: Instant,
    tally: Arc<Mutex<Tally>>,
) {
    let body = ProposeAgreement {
        seller_agent_id: "rp-seller".into(),
        service_id: "svc_bench".into(),
        quantity: 100,
        unit: "api_calls".into(),
        price_per_unit_cents: 10,
        payment_method: PaymentMethod {
            rail: "stablecoin".into(),
            provider: "x402".into(),
        },
        settlement_model: "bilateral_escrow".into(),
        activation_version: "v2".into(),
        buyer_wallet_address: keys.buyer_wallet.clone(),
        close_window_seconds: None,
        expires_in_seconds: None,
        metadata: None,
    };
    let mut i = n;
    let mut round = 0u64;
    while Instant::now() < end {
        round += 1;
        let base = |i: usize| format!("http://127.0.0.1:{}", ports[i % ports.len()]);
        let started = Instant::now();
        let recorded = started >= from;
        let timed = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
        let proposed = http
            .post(format!("{}/usage-agreements", base(i)))
            .bearer_auth(&keys.buyer)
            .header("idempotency-key", format!("rp-{n}-{round}-p"))
            .json(&body)
            .send()
            .await;
        let Ok(proposed) = proposed else {
            tally.lock().map(|mut t| t.errors += 1).ok();
            continue;
        };
        let ok = proposed.status() == StatusCode::CREATED;
        let Ok(view) = proposed.json::<Value>().await else {
            tally.lock().map(|mut t| t.errors += 1).ok();
            continue;
        };
        let propose_ms = timed(started);
        let id = view["agreement_id"].as_str().unwrap_or_default().to_owned();
        i += 1;
        let t = Instant::now();
        let accepted = http
            .put(format!("{}/usage-agreements/{id}/accept", base(i)))
            .bearer_auth(&keys.seller)
            .header("idempotency-key", format!("rp-{n}-{round}-a"))
            .send()
            .await
            .map(|r| r.status());
        let accept_ms = timed(t);
        i += 1;
        let t = Instant::now();
        let read = http
            .get(format!("{}/usage-agreements/{id}", base(i)))
            .bearer_auth(&keys.buyer)
            .send()
            .await;
        let read_ok = match read {
            Ok(r) => r.status() == StatusCode::OK && r.bytes().await.is_ok(),
            Err(_) => false,
        };
        let get_ms = timed(t);
        i += 1;
        if let Ok(mut tally) = tally.lock() {
            if !(ok && accepted.is_ok_and(|s| s == StatusCode::OK) && read_ok) {
                tally.errors += 1;
            } else if recorded {
                tally.propose.push(propose_ms);
                tally.accept.push(accept_ms);
                tally.get.push(get_ms);
            }
        }
    }
}

async fn throughput(http: &Client, ports: &[u16], keys: &Arc<Keys>) -> eyre::Result<Tally> {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let ports = Arc::new(ports.to_vec());
    let from = Instant::now() + WARM;
    let end = from + MEASURED;
    let mut tasks = Vec::new();
    for n in 0..CLIENTS {
        tasks.push(tokio::spawn(client(
            http.clone(),
            ports.clone(),
            keys.clone(),
            n,
            from,
            end,
            tally.clone(),
        )));
    }
    for task in tasks {
        task.await?;
    }
    let tally = std::mem::take(&mut *tally.lock().map_err(|_| eyre::eyre!("poisoned"))?);
    Ok(tally)
}

fn p(values: &mut [f64], q: f64) -> String {
    format!("{:.1}", percentile(values, q))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> eyre::Result<()> {
    let binary = std::env::current_exe()?.with_file_name("pactum");
    eyre::ensure!(
        binary.exists(),
        "{} is missing: cargo build --release -p pactum",
        binary.display()
    );
    let anvil = pactum_devnet::spawn_anvil()?;
    let deployer = dev_signer(0);
    let provider = pactum_devnet::connect(anvil.endpoint_url(), EthereumWallet::new(deployer));
    let d = pactum_devnet::deploy_funded(&provider, &[]).await?;
    let db = TestDatabase::create().await?;
    let keys = Arc::new(register(db.db(), &d).await?);
    let stack = Stack {
        binary,
        deployment: d.clone(),
        rpc_url: anvil.endpoint_url().to_string(),
        db_url: db.url().to_owned(),
        log: std::env::temp_dir().join(format!("pactum-bench-replicas-{}.log", std::process::id())),
    };
    let http = Client::builder().timeout(Duration::from_secs(10)).build()?;

    let mut children: Vec<Process> = Vec::new();
    let mut rows = Vec::new();
    for processes in [1usize, 3] {
        while children.len() < processes {
            let port = pactum_devnet::free_port()?;
            children.push(Process(port, stack.spawn(port)?));
            healthy(&http, port).await?;
        }
        let ports: Vec<u16> = children.iter().map(|c| c.0).collect();
        let mut t = throughput(&http, &ports, &keys).await?;
        let secs = MEASURED.as_secs_f64();
        let lifecycles = t.propose.len() as f64 / secs;
        rows.push(format!(
            "| {processes} | {} | {} | {} / {} | {} / {} | {} / {} | {} |",
            thousands(lifecycles),
            thousands(lifecycles * 3.0),
            p(&mut t.propose, 0.5),
            p(&mut t.propose, 0.99),
            p(&mut t.accept, 0.5),
            p(&mut t.accept, 0.99),
            p(&mut t.get, 0.5),
            p(&mut t.get, 0.99),
            t.errors
        ));
    }
    println!(
        "\nLifecycle endpoints over one PostgreSQL, {CLIENTS} clients in a closed loop for {} s (propose, accept, read back; round-robin over the processes)\n",
        MEASURED.as_secs()
    );
    println!(
        "| API processes | lifecycles/s | requests/s | propose p50 / p99 ms | accept p50 / p99 ms | GET p50 / p99 ms | errors |"
    );
    println!("|---|---|---|---|---|---|---|");
    for row in &rows {
        println!("{row}");
    }

    // Failover of the index writer.
    let minter = pactum_devnet::connect(anvil.endpoint_url(), EthereumWallet::new(dev_signer(0)));
    let mut takeovers = Vec::new();
    let mut indexed_after = Vec::new();
    for _ in 0..FAILOVERS {
        let started = Instant::now();
        let writer = loop {
            let mut found = None;
            for (i, c) in children.iter().enumerate() {
                if writes_index(&http, c.0).await {
                    found = Some(i);
                }
            }
            if let Some(i) = found {
                break i;
            }
            eyre::ensure!(
                started.elapsed() < Duration::from_secs(30),
                "no process writes the index"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let holder = lock_holder(db.db(), d.chain_id).await?;
        let mut victim = children.remove(writer);
        let port = victim.0;
        victim.1.kill()?; // SIGKILL
        let killed = Instant::now();
        victim.1.wait()?;
        // A block right after the kill, for the next writer to index.
        let block = pactum_devnet::confirm(
            pactum_bindings::LocalUSDC::new(d.token, &minter)
                .mint(dev_signer(1).address(), U256::from(1u64))
                .from(dev_signer(0).address()),
        )
        .await?
        .block_number
        .unwrap_or_default();
        let mut took_over = None;
        loop {
            if took_over.is_none() {
                let now = lock_holder(db.db(), d.chain_id).await?;
                if now.is_some() && now != holder {
                    took_over = Some(killed.elapsed());
                }
            }
            let cursor: i64 =
                sqlx::query_scalar("SELECT block_number FROM indexer_cursor WHERE chain_id = $1")
                    .bind(i64::try_from(d.chain_id)?)
                    .fetch_one(db.db().pool())
                    .await?;
            if let Some(t) = took_over
                && cursor >= i64::try_from(block)?
            {
                takeovers.push(t.as_secs_f64() * 1e3);
                indexed_after.push(killed.elapsed().as_secs_f64() * 1e3);
                break;
            }
            eyre::ensure!(
                killed.elapsed() < Duration::from_secs(30),
                "no takeover within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        children.push(Process(port, stack.spawn(port)?));
        healthy(&http, port).await?;
    }
    println!(
        "\nIndex writer failover, {FAILOVERS} rounds over 3 processes (the writer SIGKILLed; standbys try the lock every {} ms; the takeover seen in pg_locks)\n",
        pactum_indexer::STANDBY_POLL.as_millis()
    );
    println!("| measure | min | median | max |");
    println!("|---|---|---|---|");
    for (label, values) in [
        (
            "kill → another process writes the index (ms)",
            &mut takeovers,
        ),
        (
            "kill → a block mined after the kill is indexed (ms)",
            &mut indexed_after,
        ),
    ] {
        println!(
            "| {label} | {} | {} | {} |",
            p(values, 0.0),
            p(values, 0.5),
            p(values, 1.0)
        );
    }
    drop(children);
    Ok(())
}
