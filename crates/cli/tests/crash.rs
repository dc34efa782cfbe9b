//! Crash safety of `pactum indexer`, as a real process: SIGKILLed at random moments dozens of
//! times while backfilling and while following a chain that keeps producing blocks, and once
//! stopped while the chain reorganises. After it catches up, the database must equal a fresh
//! index of the chain exactly: no duplicate, no gap.

mod common;

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use alloy::{
    network::EthereumWallet,
    primitives::{U256, keccak256},
    providers::{DynProvider, Provider},
};
use pactum_bindings::{Agreement, LocalUSDC};
use pactum_db::{Db, index, testing::TestDatabase};
use pactum_devnet::{
    Deployment, dev_signer,
    scenario::{self, SettlementPath},
};
use pactum_indexer::{Config, Indexer, Metrics};

const USDC: u64 = 1_000_000;

struct Env {
    provider: DynProvider,
    deployment: Deployment,
    url: String,
    salt: u64,
}

impl Env {
    async fn agreements(&mut self, count: u64) -> eyre::Result<()> {
        let (buyer, seller) = (dev_signer(1), dev_signer(2));
        for _ in 0..count {
            self.salt += 1;
            let now = scenario::latest_timestamp(&self.provider).await?;
            let agreement = Agreement {
                buyer: buyer.address(),
                seller: seller.address(),
                token: self.deployment.token,
                maxAmount: U256::from(10 * USDC),
                infraFee: U256::from(USDC / 10),
                expiry: now + 86_400,
                closeWindow: 3_600,
                salt: keccak256(self.salt.to_be_bytes()),
            };
            let usage = [U256::from(USDC), U256::from(3 * USDC)];
            scenario::run(
                &self.provider,
                &self.deployment,
                &agreement,
                &buyer,
                &seller,
                SettlementPath::Direct,
                &usage,
                |_| {},
            )
            .await?;
        }
        Ok(())
    }

    fn spawn_indexer(&self, db_url: &str) -> eyre::Result<Child> {
        let d = &self.deployment;
        Ok(Command::new(env!("CARGO_BIN_EXE_pactum"))
            .arg("indexer")
            .env("PACTUM_DATABASE_URL", db_url)
            .env("PACTUM_CHAIN_RPC_URL", &self.url)
            .env("PACTUM_CHAIN_ID", d.chain_id.to_string())
            .env("PACTUM_CHAIN_ESCROW", d.escrow.to_string())
            .env("PACTUM_CHAIN_FEE_COLLECTOR", d.fee_collector.to_string())
            .env("PACTUM_CHAIN_START_BLOCK", d.start_block.to_string())
            .env("PACTUM_INDEXER_BATCH_BLOCKS", "1")
            .env("PACTUM_INDEXER_CONFIRMATIONS", "16")
            .env("PACTUM_INDEXER_USE_FINALIZED_TAG", "false")
            .env("PACTUM_INDEXER_POLL_INTERVAL_MS", "20")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?)
    }
}

async fn indexed(db: &Db, chain_id: u64) -> eyre::Result<i64> {
    let mut conn = db.pool().acquire().await?;
    Ok(index::load_cursor(&mut conn, chain_id)
        .await?
        .map_or(-1, |c| c.block_number))
}

async fn wait_for_head(env: &Env, db: &Db, child: &mut Child) -> eyre::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let head = env.provider.get_block_number().await?;
        if indexed(db, env.deployment.chain_id).await? == i64::try_from(head)? {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            eyre::bail!("indexer exited with {status}");
        }
        eyre::ensure!(
            Instant::now() < deadline,
            "indexer did not reach head {head}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn kill_after(child: &mut Child, ms: u64) -> eyre::Result<()> {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    child.kill()?; // SIGKILL
    child.wait()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_and_repeats_nothing() -> eyre::Result<()> {
    let (seed, mut rng) = common::seeded("crash test");

    let anvil = pactum_devnet::spawn_anvil()?;
    let deployer = dev_signer(0);
    let mut wallet = EthereumWallet::new(deployer.clone());
    for signer in [dev_signer(1), dev_signer(2)] {
        wallet.register_signer(signer);
    }
    let provider = pactum_devnet::connect(anvil.endpoint_url(), wallet);
    let deployment = pactum_devnet::deploy(
        &provider,
        deployer.address(),
        deployer.address(),
        dev_signer(4).address(),
    )
    .await?;
    let token = LocalUSDC::new(deployment.token, &provider);
    pactum_devnet::confirm(
        token
            .mint(dev_signer(1).address(), U256::from(1_000_000 * USDC))
            .from(deployer.address()),
    )
    .await?;
    let mut env = Env {
        provider: provider.clone(),
        deployment,
        url: anvil.endpoint(),
        salt: 0,
    };
    env.agreements(80).await?; // about 400 blocks to backfill, one block per batch

    let test_db = TestDatabase::create().await?;
    let db = test_db.db();
    let chain_id = env.deployment.chain_id;
    let mut kills = 0;

    // 1. Backfill, killed again and again.
    loop {
        let mut child = env.spawn_indexer(test_db.url())?;
        kill_after(&mut child, 15 + rng.below(60)).await?;
        kills += 1;
        let head = env.provider.get_block_number().await?;
        if indexed(db, chain_id).await? >= i64::try_from(head)? || kills >= 30 {
            break;
        }
    }
    let backfill_kills = kills;

    // 2. Following the head while the chain grows, killed again and again.
    for _ in 0..15 {
        let mut child = env.spawn_indexer(test_db.url())?;
        let grow = env.agreements(1 + rng.below(2));
        let kill = kill_after(&mut child, 20 + rng.below(200));
        let (grown, killed) = tokio::join!(grow, kill);
        grown?;
        killed?;
        kills += 1;
    }

    // 3. Stopped while the chain reorganises below what it indexed.
    let mut child = env.spawn_indexer(test_db.url())?;
    wait_for_head(&env, db, &mut child).await?;
    child.kill()?;
    child.wait()?;
    let _: serde_json::Value = env
        .provider
        .raw_request(
            "anvil_reorg".into(),
            (4_u64, Vec::<serde_json::Value>::new()),
        )
        .await?;
    env.agreements(1).await?;

    // Catch up for good, then compare with a fresh in-process index.
    let mut child = env.spawn_indexer(test_db.url())?;
    wait_for_head(&env, db, &mut child).await?;
    child.kill()?;
    child.wait()?;

    let fresh = TestDatabase::create().await?;
    let d = &env.deployment;
    let mut config = Config::new(d.chain_id, d.escrow, d.fee_collector, d.start_block);
    config.use_finalized_tag = false;
    let mut reference = Indexer::new(
        config,
        fresh.db().clone(),
        env.provider.clone(),
        Metrics::default(),
    )
    .await?;
    reference.catch_up().await?;
    let (mut a, mut b) = (
        db.pool().acquire().await?,
        fresh.db().pool().acquire().await?,
    );
    let events = index::all_events(&mut a, chain_id).await?;
    assert_eq!(
        events,
        index::all_events(&mut b, chain_id).await?,
        "events: no duplicate, no gap"
    );
    assert_eq!(
        index::all_agreements(&mut a, chain_id).await?,
        index::all_agreements(&mut b, chain_id).await?,
        "derived rows"
    );
    eprintln!(
        "crash test: {kills} SIGKILLs ({backfill_kills} during backfill), {} events, seed {seed}",
        events.len()
    );
    assert!(kills >= 24, "dozens of kills");
    assert!(backfill_kills >= 8, "killed during the backfill");
    drop((a, b));
    fresh.drop_database().await?;
    test_db.drop_database().await?;
    drop(anvil);
    Ok(())
}
