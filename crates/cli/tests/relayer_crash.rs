//! Crash safety of the relayer, as a real `pactum relayer` process: with hundreds of accepted
//! authorizations in flight on a chain mining a block a second, the process is SIGKILLed at
//! random moments and aborted at injected crash points (after the nonce reservation inside the
//! database transaction, after the commit before the broadcast, after the broadcast before the
//! database records it, and in the middle of a fee bump), again and again. Afterwards every
//! accepted authorization took effect on chain exactly once, none is lost, and the key's nonces
//! have no gap.

mod common;

use std::{
    collections::{BTreeSet, HashMap},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use alloy::{
    network::EthereumWallet,
    primitives::{B256, U256, keccak256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::Filter,
    sol_types::SolEvent,
};
use pactum_bindings::{Agreement, AgreementEscrow, LocalUSDC, eip712::InitiateClose, sign};
use pactum_core::{AgreementStatus, JobState};
use pactum_db::{relay, testing::TestDatabase};
use pactum_devnet::{DEV_PRIVATE_KEYS, Deployment, dev_signer, scenario};
use pactum_relayer::{Authorization, Relayer, Settings, Worker};

const USDC: u64 = 1_000_000;
const JOBS: usize = 240;

fn spawn_relayer(
    d: &Deployment,
    url: &str,
    db_url: &str,
    failpoints: &str,
    log: &std::path::Path,
) -> eyre::Result<Child> {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    Ok(Command::new(env!("CARGO_BIN_EXE_pactum"))
        .arg("relayer")
        .env("PACTUM_DATABASE_URL", db_url)
        .env("PACTUM_CHAIN_RPC_URL", url)
        .env("PACTUM_CHAIN_ID", d.chain_id.to_string())
        .env("PACTUM_CHAIN_ESCROW", d.escrow.to_string())
        .env("PACTUM_CHAIN_FEE_COLLECTOR", d.fee_collector.to_string())
        .env("PACTUM_RELAYER_KEYS", DEV_PRIVATE_KEYS[5])
        .env("PACTUM_RELAYER_POLL_INTERVAL_MS", "20")
        .env("PACTUM_RELAYER_STUCK_AFTER_MS", "400")
        .env("PACTUM_RELAYER_BATCH_SIZE", "12")
        .env("PACTUM_RELAYER_FAILPOINTS", failpoints)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr))
        .spawn()?)
}

async fn rpc(
    provider: &DynProvider,
    method: &'static str,
    params: serde_json::Value,
) -> eyre::Result<()> {
    let _: serde_json::Value = provider.raw_request(method.into(), params).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_authorization_lands_exactly_once_through_crashes() -> eyre::Result<()> {
    let (seed, mut rng) = common::seeded("relayer crash test");

    // A chain with JOBS active agreements (activated while automining, quickly).
    let anvil = pactum_devnet::spawn_anvil()?;
    let (deployer, buyer, seller) = (dev_signer(0), dev_signer(1), dev_signer(2));
    let mut wallet = EthereumWallet::new(deployer.clone());
    wallet.register_signer(buyer.clone());
    let provider = pactum_devnet::connect(anvil.endpoint_url(), wallet);
    let d = pactum_devnet::deploy(
        &provider,
        deployer.address(),
        deployer.address(),
        dev_signer(4).address(),
    )
    .await?;
    pactum_devnet::confirm(
        LocalUSDC::new(d.token, &provider)
            .mint(buyer.address(), U256::from(1_000 * USDC * JOBS as u64))
            .from(deployer.address()),
    )
    .await?;
    let now = scenario::latest_timestamp(&provider).await?;
    let mut agreements = Vec::new();
    for i in 0..JOBS {
        let terms = Agreement {
            buyer: buyer.address(),
            seller: seller.address(),
            token: d.token,
            maxAmount: U256::from(10 * USDC),
            infraFee: U256::ZERO,
            expiry: now + 86_400,
            closeWindow: 3_600,
            salt: keccak256(format!("crash-{i}")),
        };
        let (id, _) = scenario::activate(&provider, &d, &terms, &buyer, deployer.address()).await?;
        agreements.push((terms, id));
    }

    // Every close accepted up front (the acceptance path is the library's, as in the API).
    let test_db = TestDatabase::create().await?;
    let plain = ProviderBuilder::new()
        .connect_http(anvil.endpoint_url())
        .erased();
    let key = dev_signer(5);
    let mut settings = Settings::new(d.chain_id, d.escrow, d.fee_collector);
    settings.policy.min_deadline_margin = 0;
    let relayer = Relayer::new(
        test_db.db().clone(),
        plain.clone(),
        settings,
        vec![key.address()],
    )
    .await?;
    Worker::new(relayer.clone(), key.clone()).round().await?; // registers the key and its balance
    let domain = relayer.escrow_domain();
    let deadline = now + 7_200;
    // The buyer's signed closes, accepted in waves while the relayer process is being killed,
    // so that submissions (and their crash points) keep happening.
    let mut pending = Vec::new();
    for (terms, id) in &agreements {
        let message = InitiateClose {
            agreementId: *id,
            party: buyer.address(),
            deadline: U256::from(deadline),
        };
        let signature = sign::sign_typed(&buyer, &message, &domain).await?;
        pending.push((
            terms.clone(),
            Authorization::InitiateClose {
                party: buyer.address(),
                deadline,
                signature,
            },
        ));
    }
    let accept = |batch: Vec<(Agreement, Authorization)>| {
        let relayer = relayer.clone();
        async move {
            for (terms, authorization) in batch {
                relayer
                    .accept(&terms, authorization, "crash-test")
                    .await
                    .map_err(|e| eyre::eyre!("acceptance failed: {e:?}"))?;
            }
            Ok::<_, eyre::Report>(())
        }
    };
    accept(pending.drain(..40).collect()).await?;

    // From now on a block a second: transactions wait in the pool, the head of the queue gets
    // fee-bumped.
    rpc(&plain, "evm_setAutomine", serde_json::json!([false])).await?;
    rpc(&plain, "evm_setIntervalMining", serde_json::json!([1])).await?;

    let log = std::env::temp_dir().join(format!("pactum-relayer-crash-{seed}.log"));
    let (mut kills, mut aborts) = (0, 0);
    let chain_id = d.chain_id;
    let done = |pool: sqlx::PgPool| async move {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM relay_jobs WHERE state NOT IN ('confirmed', 'failed')",
        )
        .fetch_one(&pool)
        .await?;
        Ok::<_, eyre::Report>(open == 0)
    };
    let started = Instant::now();
    for round in 0..60 {
        // Five rounds in six arm one crash point (the process aborts the first time it gets
        // there); the others, and those that never get there, end in a SIGKILL.
        // The fee bump gets two slots: it is only reached while a transaction is pending.
        let points = pactum_relayer::failpoint::POINTS;
        let failpoints = match round % (points.len() + 2) {
            i if i < points.len() => format!("{}=1", points[i]),
            i if i == points.len() => "mid_fee_bump=1".to_owned(),
            _ => String::new(),
        };
        if failpoints.starts_with("mid_fee_bump") {
            // Whatever the last process left pending is priced out of the next block.
            rpc(
                &plain,
                "anvil_setNextBlockBaseFeePerGas",
                serde_json::json!([U256::from(100_000_000_000u64)]),
            )
            .await?;
        }
        let mut child = spawn_relayer(&d, &anvil.endpoint(), test_db.url(), &failpoints, &log)?;
        let wave: Vec<_> = pending.drain(..pending.len().min(6)).collect();
        // In a fee-bump round, a base-fee spike shortly after the submissions prices the
        // pending transactions out of the next block: the worker must replace them.
        let spike = async {
            if !failpoints.starts_with("mid_fee_bump") {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            // 100 gwei: far above what the pending transactions offer (about the 1 gwei tip).
            rpc(
                &plain,
                "anvil_setNextBlockBaseFeePerGas",
                serde_json::json!([U256::from(100_000_000_000u64)]),
            )
            .await
        };
        let (accepted, spiked, ()) = tokio::join!(
            accept(wave),
            spike,
            // A fee bump needs a transaction pending for `stuck_after` first: give it time.
            tokio::time::sleep(Duration::from_millis(
                if failpoints.starts_with("mid_fee_bump") {
                    900
                } else {
                    150
                } + rng.below(900)
            ))
        );
        spiked?;
        accepted?;
        match child.try_wait()? {
            Some(_) => aborts += 1,
            None => {
                child.kill()?; // SIGKILL
                child.wait()?;
                kills += 1;
            }
        }
        if pending.is_empty() && done(test_db.db().pool().clone()).await? && round >= 30 {
            break;
        }
    }
    let crashed_for = started.elapsed();

    eyre::ensure!(
        pending.is_empty(),
        "{} closes never accepted",
        pending.len()
    );
    // A last, undisturbed run finishes whatever is open.
    rpc(&plain, "evm_setAutomine", serde_json::json!([true])).await?;
    let mut child = spawn_relayer(&d, &anvil.endpoint(), test_db.url(), "", &log)?;
    let deadline_at = Instant::now() + Duration::from_secs(120);
    while !done(test_db.db().pool().clone()).await? {
        eyre::ensure!(Instant::now() < deadline_at, "jobs still open after 120 s");
        if let Some(status) = child.try_wait()? {
            eyre::bail!("the relayer exited with {status}; see {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let it resolve every open nonce (fills, cancels), then stop it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    child.kill()?;
    child.wait()?;

    // Every job confirmed, with exactly one mined attempt.
    let pool = test_db.db().pool();
    let states = relay::jobs_by_state(pool, chain_id).await?;
    assert_eq!(
        states,
        vec![(JobState::Confirmed, JOBS as u64)],
        "every job confirmed"
    );
    let mined_per_job: Vec<(String, i64)> = sqlx::query_as(
        "SELECT j.id, count(a.tx_hash) FROM relay_jobs j
           LEFT JOIN relay_attempts a ON a.job_id = j.id AND a.outcome = 'mined'
          GROUP BY j.id",
    )
    .fetch_all(pool)
    .await?;
    assert!(
        mined_per_job.iter().all(|(_, n)| *n == 1),
        "one mined attempt per job"
    );

    // On chain: each agreement closed exactly once.
    let logs = plain
        .get_logs(
            &Filter::new()
                .address(d.escrow)
                .event_signature(AgreementEscrow::CloseInitiated::SIGNATURE_HASH)
                .from_block(0u64),
        )
        .await?;
    let mut closes: HashMap<B256, usize> = HashMap::new();
    for log in &logs {
        let event = AgreementEscrow::CloseInitiated::decode_log_data(log.data())?;
        *closes.entry(event.agreementId).or_default() += 1;
    }
    assert_eq!(closes.len(), JOBS, "every agreement closed");
    assert!(
        closes.values().all(|n| *n == 1),
        "no agreement closed twice"
    );
    let escrow = AgreementEscrow::new(d.escrow, &plain);
    for (_, id) in agreements.iter().take(5) {
        let state = escrow.agreementState(*id).call().await?;
        assert_eq!(
            AgreementStatus::try_from(state.status)?,
            AgreementStatus::Closing
        );
    }

    // No nonce gap: every nonce below the chain's was taken by exactly one mined attempt of
    // ours, and the database's next nonce is the chain's.
    let chain_nonce = plain.get_transaction_count(key.address()).await?;
    let mined: Vec<i64> = sqlx::query_scalar(
        "SELECT nonce FROM relay_attempts WHERE outcome = 'mined' ORDER BY nonce",
    )
    .fetch_all(pool)
    .await?;
    let distinct: BTreeSet<i64> = mined.iter().copied().collect();
    assert_eq!(mined.len(), distinct.len(), "one mined attempt per nonce");
    assert_eq!(
        distinct,
        (0..i64::try_from(chain_nonce)?).collect::<BTreeSet<_>>(),
        "nonces 0..{chain_nonce} without a gap"
    );
    assert_eq!(
        relay::next_nonce(pool, chain_id, key.address()).await?,
        Some(chain_nonce)
    );
    let open: i64 = sqlx::query_scalar("SELECT count(*) FROM relay_attempts WHERE outcome IS NULL")
        .fetch_one(pool)
        .await?;
    assert_eq!(open, 0, "no attempt left open");

    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    let hits: Vec<(&str, usize)> = pactum_relayer::failpoint::POINTS
        .iter()
        .map(|p| {
            (
                *p,
                stderr.matches(&format!("failpoint {p}: aborting")).count(),
            )
        })
        .collect();
    let kinds: Vec<(String, i64)> =
        sqlx::query_as("SELECT kind, count(*) FROM relay_attempts GROUP BY kind ORDER BY kind")
            .fetch_all(pool)
            .await?;
    eprintln!(
        "relayer crash test: {JOBS} jobs, {kills} SIGKILLs, {aborts} crash-point aborts {hits:?} over {:.1} s; attempts by kind {kinds:?}; {chain_nonce} nonces; seed {seed}",
        crashed_for.as_secs_f64()
    );
    assert!(kills >= 5, "SIGKILLed");
    assert!(kills + aborts >= 30, "crashed dozens of times");
    assert!(
        hits.iter().all(|(_, n)| *n > 0),
        "every crash point hit: {hits:?}"
    );
    drop(anvil);
    test_db.drop_database().await?;
    let _ = std::fs::remove_file(&log);
    Ok(())
}
