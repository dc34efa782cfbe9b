//! `pactum serve` (indexer, relayer worker and API in one process) while its database goes away:
//! every connection terminated again and again (`pg_terminate_backend`), and a PostgreSQL server
//! stopped and started under it. The process never exits, sponsored actions accepted meanwhile
//! are all confirmed, and the index ends equal to a fresh index of the chain.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use alloy::{
    network::EthereumWallet,
    node_bindings::AnvilInstance,
    primitives::{U256, keccak256},
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use pactum_bindings::{Agreement, LocalUSDC, eip712::InitiateClose, sign};
use pactum_db::{Db, index, testing::TestDatabase};
use pactum_devnet::{
    DEV_PRIVATE_KEYS, Deployment, dev_signer,
    scenario::{self, SettlementPath},
};
use pactum_indexer::{Config, Indexer, Metrics};
use pactum_relayer::{Authorization, Relayer, Settings};

const USDC: u64 = 1_000_000;

/// A chain with pactum deployed and the buyer (development account 1) funded.
struct Chain {
    _anvil: AnvilInstance,
    url: String,
    provider: DynProvider,
    deployment: Deployment,
    buyer: PrivateKeySigner,
    seller: PrivateKeySigner,
    salt: u64,
}

impl Chain {
    async fn start() -> eyre::Result<Self> {
        let anvil = pactum_devnet::spawn_anvil()?;
        let (deployer, buyer, seller) = (dev_signer(0), dev_signer(1), dev_signer(2));
        let mut wallet = EthereumWallet::new(deployer.clone());
        wallet.register_signer(buyer.clone());
        wallet.register_signer(seller.clone());
        let provider = pactum_devnet::connect(anvil.endpoint_url(), wallet);
        let deployment = pactum_devnet::deploy(
            &provider,
            deployer.address(),
            deployer.address(),
            dev_signer(4).address(),
        )
        .await?;
        pactum_devnet::confirm(
            LocalUSDC::new(deployment.token, &provider)
                .mint(buyer.address(), U256::from(1_000_000 * USDC))
                .from(deployer.address()),
        )
        .await?;
        Ok(Self {
            url: anvil.endpoint(),
            _anvil: anvil,
            provider,
            deployment,
            buyer,
            seller,
            salt: 0,
        })
    }

    fn terms(&mut self, now: u64) -> Agreement {
        self.salt += 1;
        Agreement {
            buyer: self.buyer.address(),
            seller: self.seller.address(),
            token: self.deployment.token,
            maxAmount: U256::from(10 * USDC),
            infraFee: U256::ZERO,
            expiry: now + 86_400,
            closeWindow: 3_600,
            salt: keccak256(self.salt.to_be_bytes()),
        }
    }

    /// A whole lifecycle on the direct path (events for the indexer).
    async fn lifecycle(&mut self) -> eyre::Result<()> {
        let now = scenario::latest_timestamp(&self.provider).await?;
        let terms = self.terms(now);
        let usage = [U256::from(USDC), U256::from(2 * USDC)];
        scenario::run(
            &self.provider,
            &self.deployment,
            &terms,
            &self.buyer,
            &self.seller,
            SettlementPath::Direct,
            &usage,
            |_| {},
        )
        .await?;
        Ok(())
    }

    /// An active agreement and the buyer's signed close of it.
    async fn close_to_sponsor(
        &mut self,
        relayer: &Relayer,
    ) -> eyre::Result<(Agreement, Authorization)> {
        let now = scenario::latest_timestamp(&self.provider).await?;
        let terms = self.terms(now);
        let (id, _) = scenario::activate(
            &self.provider,
            &self.deployment,
            &terms,
            &self.buyer,
            dev_signer(0).address(),
        )
        .await?;
        let deadline = now + 7_200;
        let message = InitiateClose {
            agreementId: id,
            party: self.buyer.address(),
            deadline: U256::from(deadline),
        };
        let signature = sign::sign_typed(&self.buyer, &message, &relayer.escrow_domain()).await?;
        let authorization = Authorization::InitiateClose {
            party: self.buyer.address(),
            deadline,
            signature,
        };
        Ok((terms, authorization))
    }

    fn serve(&self, database_url: &str, log: &Path) -> eyre::Result<Child> {
        let d = &self.deployment;
        let port = pactum_devnet::free_port()?;
        let file = std::fs::File::create(log)?;
        Ok(Command::new(env!("CARGO_BIN_EXE_pactum"))
            .arg("serve")
            .envs(d.process_env(&self.url, database_url))
            .env("PACTUM_INDEXER_CONFIRMATIONS", "0")
            .env("PACTUM_INDEXER_USE_FINALIZED_TAG", "false")
            .env("PACTUM_INDEXER_POLL_INTERVAL_MS", "50")
            .env("PACTUM_API_LISTEN", format!("127.0.0.1:{port}"))
            .env("PACTUM_RELAYER_KEYS", DEV_PRIVATE_KEYS[5])
            .env("PACTUM_RELAYER_POLL_INTERVAL_MS", "50")
            .env("PACTUM_RELAYER_MIN_DEADLINE_MARGIN_SECS", "0")
            .env("RUST_LOG", "warn")
            // The log (on standard output) and any panic, in one file.
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::from(file))
            .spawn()?)
    }
}

/// The relayer's acceptance, in this process, over `db` (the process under test submits).
async fn relayer(chain: &Chain, db: &Db) -> eyre::Result<Relayer> {
    let d = &chain.deployment;
    let mut settings = Settings::new(d.chain_id, d.escrow, d.fee_collector);
    settings.policy.min_deadline_margin = 0;
    let plain = ProviderBuilder::new()
        .connect_http(chain.url.parse()?)
        .erased();
    Ok(Relayer::new(db.clone(), plain, settings, vec![dev_signer(5).address()]).await?)
}

/// Accepts `authorization`, retrying while the database is away (the API's clients would retry
/// the same way, under their `Idempotency-Key`).
async fn accept(relayer: &Relayer, terms: &Agreement, auth: Authorization) -> eyre::Result<()> {
    let started = Instant::now();
    loop {
        match relayer.accept(terms, auth.clone(), "outage-test").await {
            Ok(_) => return Ok(()),
            Err(err) if started.elapsed() < Duration::from_secs(60) => {
                eprintln!("acceptance retried: {err:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => eyre::bail!("acceptance kept failing: {err:?}"),
        }
    }
}

fn alive(child: &mut Child, log: &Path) -> eyre::Result<()> {
    if let Some(status) = child.try_wait()? {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        eyre::bail!("pactum serve exited with {status}:\n{text}");
    }
    Ok(())
}

/// Waits (the process staying alive) until the index is at the head and no job is open.
async fn settled(chain: &Chain, db_url: &str, child: &mut Child, log: &Path) -> eyre::Result<()> {
    let db = Db::connect(db_url, 2).await?;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        alive(child, log)?;
        let head = chain.provider.get_block_number().await?;
        let state = async {
            let mut conn = db.pool().acquire().await?;
            let indexed = index::load_cursor(&mut conn, chain.deployment.chain_id)
                .await?
                .map_or(-1, |c| c.block_number);
            let open: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM relay_jobs WHERE state NOT IN ('confirmed', 'failed')",
            )
            .fetch_one(&mut *conn)
            .await?;
            Ok::<_, eyre::Report>((indexed, open))
        };
        if let Ok((indexed, 0)) = state.await
            && indexed == i64::try_from(head)?
        {
            let failed: i64 =
                sqlx::query_scalar("SELECT count(*) FROM relay_jobs WHERE state <> 'confirmed'")
                    .fetch_one(db.pool())
                    .await?;
            eyre::ensure!(failed == 0, "{failed} sponsored actions did not confirm");
            return Ok(());
        }
        eyre::ensure!(
            Instant::now() < deadline,
            "pactum serve did not catch up with head {head}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The index in `db_url` equals a fresh index of the chain, row for row.
async fn equals_a_fresh_index(chain: &Chain, db_url: &str) -> eyre::Result<usize> {
    let db = Db::connect(db_url, 2).await?;
    let fresh = TestDatabase::create().await?;
    let d = &chain.deployment;
    let mut config = Config::new(d.chain_id, d.escrow, d.fee_collector, d.start_block);
    config.use_finalized_tag = false;
    config.confirmations = 0;
    Indexer::new(
        config,
        fresh.db().clone(),
        chain.provider.clone(),
        Metrics::default(),
    )
    .await?
    .catch_up()
    .await?;
    let (mut a, mut b) = (
        db.pool().acquire().await?,
        fresh.db().pool().acquire().await?,
    );
    let events = index::all_events(&mut a, d.chain_id).await?;
    assert_eq!(
        events,
        index::all_events(&mut b, d.chain_id).await?,
        "events"
    );
    assert_eq!(
        index::all_agreements(&mut a, d.chain_id).await?,
        index::all_agreements(&mut b, d.chain_id).await?,
        "derived rows"
    );
    drop((a, b));
    fresh.drop_database().await?;
    Ok(events.len())
}

/// Waits until the process's worker has reported its key's balance (sponsoring is open).
async fn sponsoring(relayer: &Relayer, child: &mut Child, log: &Path) -> eyre::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while relayer.sponsor_unavailable().await?.is_some() {
        alive(child, log)?;
        eyre::ensure!(Instant::now() < deadline, "the worker never reported");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_rides_out_terminated_connections() -> eyre::Result<()> {
    let mut chain = Chain::start().await?;
    let test_db = TestDatabase::create().await?;
    let log = std::env::temp_dir().join(format!("pactum-outage-{}.log", std::process::id()));
    let mut child = chain.serve(test_db.url(), &log)?;
    let relayer = relayer(&chain, test_db.db()).await?;
    sponsoring(&relayer, &mut child, &log).await?;

    // An admin connection to the server's maintenance database terminates every connection to
    // the test database, five times a second, while lifecycles and sponsored closes go on.
    let name = test_db
        .url()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    // A plain connection: `Db::connect` would apply pactum's migrations to the maintenance
    // database.
    let admin =
        sqlx::PgPool::connect(&format!("{}/postgres", pactum_db::testing::server_url())).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let terminator = tokio::spawn(async move {
        let (mut rounds, mut terminated) = (0u32, 0i64);
        // At least 15 rounds (3 s), however fast the work below goes.
        while rounds < 15 || !*stopped.borrow() {
            terminated += sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                  WHERE datname = $1 AND pid <> pg_backend_pid()) t",
            )
            .bind(&name)
            .fetch_one(&admin)
            .await?;
            rounds += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok::<_, eyre::Report>(terminated)
    });
    for _ in 0..6 {
        chain.lifecycle().await?;
        let (terms, close) = chain.close_to_sponsor(&relayer).await?;
        accept(&relayer, &terms, close).await?;
        alive(&mut child, &log)?;
    }
    stop.send(true)?;
    let terminated = terminator.await??;
    assert!(terminated > 0, "no connection was terminated");
    alive(&mut child, &log)?;

    settled(&chain, test_db.url(), &mut child, &log).await?;
    let events = equals_a_fresh_index(&chain, test_db.url()).await?;
    eprintln!("{terminated} connections terminated; {events} events indexed");
    child.kill()?;
    child.wait()?;
    test_db.drop_database().await?;
    Ok(())
}

/// A PostgreSQL server of this test's own (trust auth, a free port), so that it can be stopped
/// and started without disturbing anyone else.
struct PrivateServer {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
}

impl PrivateServer {
    fn pg(&self, tool: &str) -> Command {
        let tool = self.bin.join(tool);
        // The server refuses to run as root.
        if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(tool);
            command
        } else {
            Command::new(tool)
        }
    }

    fn start_new() -> eyre::Result<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|e| {
                eyre::eyre!("PostgreSQL's server binaries are needed (/usr/lib/postgresql): {e}")
            })?
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .filter(|p| p.join("initdb").exists())
            .max()
            .ok_or_else(|| eyre::eyre!("no initdb under /usr/lib/postgresql/*/bin"))?;
        let data = std::env::temp_dir().join(format!("pactum-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data)?;
        if is_root() {
            run(Command::new("chown").arg("postgres").arg(&data))?;
        }
        let port = pactum_devnet::free_port()?;
        let server = Self { bin, data, port };
        run(server.pg("initdb").arg("-D").arg(&server.data).args([
            "-U",
            "postgres",
            "--auth=trust",
        ]))?;
        server.start()?;
        Ok(server)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn start(&self) -> eyre::Result<()> {
        let options = format!("-h 127.0.0.1 -p {} -k {}", self.port, self.data.display());
        run(self
            .pg("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.data.join("server.log"))
            .args(["-o", &options, "-w", "start"]))
    }

    fn stop(&self) -> eyre::Result<()> {
        run(self
            .pg("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"]))
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = self
            .pg("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn run(command: &mut Command) -> eyre::Result<()> {
    let output = command.output()?;
    eyre::ensure!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_rides_out_a_database_restart() -> eyre::Result<()> {
    let mut chain = Chain::start().await?;
    let server = PrivateServer::start_new()?;
    let log = std::env::temp_dir().join(format!("pactum-restart-{}.log", std::process::id()));
    let mut child = chain.serve(&server.url(), &log)?;
    let db = Db::connect(&server.url(), 2).await?;
    let relayer = relayer(&chain, &db).await?;
    sponsoring(&relayer, &mut child, &log).await?;

    // A short outage (requests wait in the pool) and one longer than the pool's 10 s acquire
    // timeout (they fail, and the indexer must wait it out).
    for (round, outage) in [(0, 2), (1, 12)] {
        // Work accepted and events emitted right before the server goes away; more events
        // while it is away.
        let (terms, close) = chain.close_to_sponsor(&relayer).await?;
        accept(&relayer, &terms, close).await?;
        chain.lifecycle().await?;
        server.stop()?;
        chain.lifecycle().await?;
        tokio::time::sleep(Duration::from_secs(outage)).await;
        alive(&mut child, &log)?;
        server.start()?;
        eprintln!("database restart {round} done");
    }
    settled(&chain, &server.url(), &mut child, &log).await?;
    equals_a_fresh_index(&chain, &server.url()).await?;
    let text = std::fs::read_to_string(&log)?;
    assert!(
        text.contains("the database is unreachable; the indexer waits and retries"),
        "the indexer saw the outage:\n{text}"
    );
    child.kill()?;
    child.wait()?;
    Ok(())
}
