//! Shared pieces of the benchmark binaries: a local chain with pactum deployed and a load driver
//! that produces genuine escrow events in bulk, percentiles, and peak memory.

pub mod lifecycle;

use std::path::Path;

use alloy::{
    network::{EthereumWallet, TransactionBuilder},
    node_bindings::AnvilInstance,
    primitives::{Address, Bytes, U256},
    providers::{DynProvider, Provider},
    rpc::types::TransactionRequest,
    sol,
    sol_types::{SolCall, SolValue},
};
use eyre::{WrapErr, eyre};
use pactum_bindings::LocalUSDC;
use pactum_devnet::{Deployment, dev_signer};

sol! {
    /// tests/forge/bench/LoadDriver.sol
    function run(uint256 count, uint256 firstSalt, uint256 settle, uint256 used) external;
}

/// A chain with pactum and the load driver deployed.
#[derive(Debug)]
pub struct LoadChain {
    /// Keeps anvil alive.
    pub anvil: AnvilInstance,
    /// Provider signing as the deployer.
    pub provider: DynProvider,
    /// The contracts.
    pub deployment: Deployment,
    /// The load driver (the buyer of every generated agreement).
    pub driver: Address,
    salt: u64,
}

/// Latency samples (milliseconds) as a table row: `| label | p50 | p99 | max | answers |`.
pub fn latency_row(label: &str, samples: &mut [f64], answers: &str) -> String {
    let max = samples.iter().copied().fold(0.0, f64::max);
    format!(
        "| {label} | {:.1} ms | {:.1} ms | {max:.1} ms | {answers} |",
        percentile(samples, 0.5),
        percentile(samples, 0.99),
    )
}

impl LoadChain {
    /// Indexes everything the chain holds so far into `db` (up to the head, no finality wait).
    pub async fn index_into(&self, db: &pactum_db::Db) -> eyre::Result<()> {
        let d = &self.deployment;
        let mut config =
            pactum_indexer::Config::new(d.chain_id, d.escrow, d.fee_collector, d.start_block);
        config.use_finalized_tag = false;
        pactum_indexer::Indexer::new(
            config,
            db.clone(),
            self.provider.clone(),
            pactum_indexer::Metrics::default(),
        )
        .await?
        .catch_up()
        .await?;
        Ok(())
    }

    /// Registers an owner and the driver as its agent `agent_id` in `db`, with an API key;
    /// returns the key.
    pub async fn register_driver(
        &self,
        db: &pactum_db::Db,
        agent_id: &str,
    ) -> eyre::Result<String> {
        use pactum_api::identity::{self as agents, ContractWallets, Deployment, NewAgent};
        use pactum_db::identity;
        let mut conn = db.pool().acquire().await?;
        identity::create_owner(&mut conn, "bench", "bench", "bench@pactum.local").await?;
        // The driver is a contract wallet that approves any signature (ERC-1271): registered
        // through the service, which asks it.
        let deployment = Deployment {
            chain_id: self.deployment.chain_id,
            escrow: self.deployment.escrow,
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        agents::register_agent(
            db,
            deployment,
            ContractWallets::Node(&self.provider),
            &NewAgent {
                owner_id: "bench",
                agent_id,
                name: "driver",
                wallet: self.driver,
                signature: &[0u8; 65],
                deadline: now + 600,
            },
            now,
        )
        .await
        .map_err(|p| eyre::eyre!("registering the driver: {p:?}"))?;
        let (key_id, key, hash) = pactum_api::auth::generate_api_key();
        identity::create_api_key(&mut conn, &key_id, agent_id, &hash, "bench").await?;
        Ok(key)
    }

    /// Spawns anvil with `args`, deploys pactum and the driver (from forge's `out/`, built by
    /// `forge build`), and funds the driver.
    pub async fn start(args: &[&str]) -> eyre::Result<Self> {
        let anvil = pactum_devnet::spawn_anvil_with(args)?;
        let deployer = dev_signer(0);
        let provider =
            pactum_devnet::connect(anvil.endpoint_url(), EthereumWallet::new(deployer.clone()));
        let deployment = pactum_devnet::deploy(
            &provider,
            deployer.address(),
            deployer.address(),
            dev_signer(4).address(),
        )
        .await?;

        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let artifact = root.join("out/LoadDriver.sol/LoadDriver.json");
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&artifact).wrap_err_with(|| {
                format!("{} missing: run `forge build` first", artifact.display())
            })?)?;
        let code: Bytes = json["bytecode"]["object"]
            .as_str()
            .ok_or_else(|| eyre!("no bytecode in {}", artifact.display()))?
            .parse()?;
        let args = (
            deployment.escrow,
            deployment.token,
            deployment.fee_collector,
        )
            .abi_encode_params();
        let mut init = code.to_vec();
        init.extend(args);
        let tx = TransactionRequest::default()
            .with_from(deployer.address())
            .with_deploy_code(init);
        let receipt = provider.send_transaction(tx).await?.get_receipt().await?;
        let driver = receipt
            .contract_address
            .ok_or_else(|| eyre!("driver deployment failed"))?;
        let token = LocalUSDC::new(deployment.token, &provider);
        pactum_devnet::confirm(
            token
                .mint(driver, U256::from(10u64).pow(U256::from(15)))
                .from(deployer.address()),
        )
        .await?;
        Ok(Self {
            anvil,
            provider,
            deployment,
            driver,
            salt: 0,
        })
    }

    /// Drives `count` lifecycles in one transaction (`settle` of them to the end): 6 events per
    /// settled agreement, 2 per one left active. Sent without waiting when `wait` is false.
    pub async fn drive(&mut self, count: u64, settle: u64, wait: bool) -> eyre::Result<()> {
        let data = runCall {
            count: U256::from(count),
            firstSalt: U256::from(self.salt),
            settle: U256::from(settle),
            used: U256::from(4_000_000u64),
        }
        .abi_encode();
        self.salt += count;
        let tx = TransactionRequest::default()
            .with_from(dev_signer(0).address())
            .with_to(self.driver)
            .with_input(data)
            .with_gas_limit(count * 400_000 + 100_000);
        let pending = self.provider.send_transaction(tx).await?;
        if wait {
            let receipt = pending.get_receipt().await?;
            eyre::ensure!(receipt.status(), "driver transaction reverted");
        }
        Ok(())
    }
}

/// The `q`-quantile (0..=1) of `values` (sorted in place).
pub fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() - 1) as f64 * q).round() as usize;
    values[rank.min(values.len() - 1)]
}

/// Peak resident memory of this process (VmHWM), in MiB.
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Resets the peak-memory mark (Linux `clear_refs` 5), so that a phase is measured on its own.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Thousands separators.
pub fn thousands(n: f64) -> String {
    let s = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One HTTP request of an open-loop run (see [`open_loop`]).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Planned {
    /// `GET` or `POST`.
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// JSON body, if any.
    pub body: Option<String>,
}

/// What one pass of [`open_loop`] measured.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Pass {
    /// Milliseconds from each request's scheduled start to its full answer.
    pub latencies_ms: Vec<f64>,
    /// Answers by HTTP status (0: no answer).
    pub statuses: std::collections::BTreeMap<u16, u64>,
}

/// Sends `requests` at `rate` per second, open loop: each is scheduled in advance and timed from
/// its scheduled start, so a stalled server is charged for the requests that queue behind it (no
/// coordinated omission).
pub async fn open_loop(
    client: &alloy::transports::http::reqwest::Client,
    requests: &[Planned],
    rate: u64,
) -> eyre::Result<Pass> {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    let pass = Arc::new(Mutex::new(Pass::default()));
    let period = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(requests.len());
    for (i, planned) in requests.iter().enumerate() {
        let scheduled = start + period * u32::try_from(i)?;
        tokio::time::sleep_until(scheduled.into()).await;
        let method = planned.method.parse()?;
        let mut request = client.request(method, &planned.url);
        for (name, value) in &planned.headers {
            request = request.header(name, value);
        }
        if let Some(body) = &planned.body {
            request = request
                .header("content-type", "application/json")
                .body(body.clone());
        }
        let pass = pass.clone();
        tasks.push(tokio::spawn(async move {
            let status = match request.send().await {
                Ok(r) => {
                    let s = r.status().as_u16();
                    if r.bytes().await.is_ok() { s } else { 0 }
                }
                Err(_) => 0,
            };
            let ms = scheduled.elapsed().as_secs_f64() * 1e3;
            if let Ok(mut p) = pass.lock() {
                p.latencies_ms.push(ms);
                *p.statuses.entry(status).or_default() += 1;
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    let pass = pass.lock().map(|p| p.clone()).unwrap_or_default();
    Ok(pass)
}

/// Runs [`open_loop`] in a **separate process** (this executable again, with `--open-loop` and a
/// plan file), so that the load generator does not share the server's runtime: `passes` times
/// over the same requests, one after the other. Pair with [`serve_open_loop`] in `main`.
pub async fn open_loop_process(
    requests: &[Planned],
    rate: u64,
    passes: usize,
) -> eyre::Result<Vec<Pass>> {
    let plan = std::env::temp_dir().join(format!(
        "pactum-bench-plan-{}-{}.json",
        std::process::id(),
        pactum_db::random_id(8)
    ));
    std::fs::write(
        &plan,
        serde_json::to_vec(
            &serde_json::json!({ "rate": rate, "passes": passes, "requests": requests }),
        )?,
    )?;
    let exe = std::env::current_exe()?;
    let output = tokio::task::spawn_blocking(move || {
        let output = std::process::Command::new(exe)
            .arg("--open-loop")
            .arg(&plan)
            .output();
        let _ = std::fs::remove_file(&plan);
        output
    })
    .await??;
    eyre::ensure!(
        output.status.success(),
        "load generator failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// The load process's side of [`open_loop_process`]: if this process was started with
/// `--open-loop <plan>`, runs the plan, prints the passes as JSON and returns `true`.
pub async fn serve_open_loop() -> eyre::Result<bool> {
    let args: Vec<String> = std::env::args().collect();
    let (Some("--open-loop"), Some(plan)) = (args.get(1).map(String::as_str), args.get(2)) else {
        return Ok(false);
    };
    let plan: serde_json::Value = serde_json::from_slice(&std::fs::read(plan)?)?;
    let requests: Vec<Planned> = serde_json::from_value(plan["requests"].clone())?;
    let rate = plan["rate"].as_u64().unwrap_or(1);
    let passes = plan["passes"].as_u64().unwrap_or(1);
    let client = alloy::transports::http::reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()?;
    let mut out = Vec::new();
    for _ in 0..passes {
        out.push(open_loop(&client, &requests, rate).await?);
    }
    println!("{}", serde_json::to_string(&out)?);
    Ok(true)
}

/// A flood of `clients` concurrent clients sending `GET url` back to back, in a **separate
/// process** (this executable again, with `--flood`), until it is dropped. Pair with
/// [`serve_flood`] in `main`.
#[derive(Debug)]
pub struct Flood(std::process::Child);

impl Flood {
    /// Starts the flood.
    pub fn start(url: &str, clients: usize) -> eyre::Result<Self> {
        let child = std::process::Command::new(std::env::current_exe()?)
            .arg("--flood")
            .arg(url)
            .arg(clients.to_string())
            .stdout(std::process::Stdio::null())
            .spawn()?;
        Ok(Self(child))
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The flooding process's side of [`Flood`]: if this process was started with
/// `--flood <url> <clients>`, floods until killed and never returns; otherwise returns.
pub async fn serve_flood() -> eyre::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some("--flood"), Some(url), Some(clients)) =
        (args.get(1).map(String::as_str), args.get(2), args.get(3))
    else {
        return Ok(());
    };
    let client = alloy::transports::http::reqwest::Client::new();
    for _ in 0..clients.parse::<usize>()? {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            loop {
                if let Ok(answer) = client.get(&url).send().await {
                    let _ = answer.bytes().await;
                }
            }
        });
    }
    // The clients run until the process is killed.
    std::future::pending::<()>().await;
    Ok(())
}
