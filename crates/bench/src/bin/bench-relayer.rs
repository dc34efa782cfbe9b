//! The sponsored-action relayer, measured and printed as a table:
//! - throughput: jobs queued, then drained by the workers until every one is confirmed, next to
//!   a plain alloy send loop (gas estimation, cached nonces) of the same calls from one key, in
//!   the same run; with automine, with 2 s interval mining, and with several signer keys;
//! - accept latency through the HTTP API at a fixed rate, from a separate load process (open
//!   loop, measured from each request's scheduled start), and the latency of idempotent replays;
//! - gas of each sponsored action next to its direct twin (EOA parties).
//!
//! The agreements are the load driver's (an ERC-1271 buyer), created 100 per transaction; the
//! sponsored action is `initiateCloseWithSig`, signed by the driver.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use alloy::{
    network::EthereumWallet,
    primitives::{Bytes, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::{Filter, TransactionRequest},
    signers::local::PrivateKeySigner,
    sol_types::{SolCall, SolEvent},
};
use pactum_api::{AppState, types::InitiateCloseBody};
use pactum_bench::{Flood, LoadChain, Planned, latency_row, open_loop_process, thousands};
use pactum_bindings::{
    Agreement, AgreementEscrow, LocalUSDC,
    eip712::{BuyerWithdraw, InitiateClose, SellerClaim, Voucher},
    sign,
};
use pactum_db::{
    relay::{self, JobState},
    testing::TestDatabase,
};
use pactum_devnet::{dev_signer, scenario};
use pactum_relayer::{Authorization, Relayer, Settings, Worker};
use tokio::{net::TcpListener, sync::watch};

/// Jobs per throughput run: on automine, and on 2 s blocks (enough to span several blocks, so
/// that the result is not one block's timing).
const THROUGHPUT_JOBS: u64 = 1_000;
const THROUGHPUT_JOBS_INTERVAL: u64 = 4_000;
/// How long the jobs of one run may take to confirm.
const CONFIRM_WITHIN: Duration = Duration::from_secs(120);
const RATE: u64 = 200;
const RATE_SECONDS: u64 = 10;

/// The driver's agreements created since `from_block`, from their activation events.
async fn agreements(chain: &LoadChain, from_block: u64) -> eyre::Result<Vec<Agreement>> {
    let logs = chain
        .provider
        .get_logs(
            &Filter::new()
                .address(chain.deployment.escrow)
                .event_signature(AgreementEscrow::AgreementActivated::SIGNATURE_HASH)
                .from_block(from_block),
        )
        .await?;
    logs.iter()
        .map(|log| {
            let e = AgreementEscrow::AgreementActivated::decode_log_data(log.data())?;
            Ok(Agreement {
                buyer: e.buyer,
                seller: e.seller,
                token: e.token,
                maxAmount: e.amount,
                infraFee: e.infraFee,
                expiry: e.expiry,
                closeWindow: e.closeWindow,
                salt: e.salt,
            })
        })
        .collect()
}

/// `count` fresh active agreements of the driver.
async fn fresh(chain: &mut LoadChain, count: u64) -> eyre::Result<Vec<Agreement>> {
    let from = chain.provider.get_block_number().await? + 1;
    let mut left = count;
    while left > 0 {
        let n = left.min(100);
        chain.drive(n, 0, true).await?;
        left -= n;
    }
    agreements(chain, from).await
}

/// The driver's (ERC-1271, accepts anything) close authorization.
fn close(terms: &Agreement, deadline: u64) -> Authorization {
    Authorization::InitiateClose {
        party: terms.buyer,
        deadline,
        signature: Bytes::from(vec![0u8; 65]),
    }
}

async fn now(provider: &DynProvider) -> eyre::Result<u64> {
    Ok(scenario::latest_timestamp(provider).await?)
}

/// A relayer over a fresh database with `keys` (funded), its workers not started.
async fn relayer(
    chain: &LoadChain,
    keys: &[PrivateKeySigner],
    tune: impl FnOnce(&mut Settings),
) -> eyre::Result<(Relayer, TestDatabase)> {
    let db = TestDatabase::create().await?;
    let d = &chain.deployment;
    let mut settings = Settings::new(d.chain_id, d.escrow, d.fee_collector);
    settings.poll_interval = Duration::from_millis(50);
    settings.policy.daily_gas_budget = u64::MAX / 2;
    settings.policy.max_actions_per_party_per_day = u64::MAX / 2;
    // One principal (the driver's key) posts every action of a run: a load test, not a policy.
    let p = &mut settings.policy;
    p.max_actions_per_principal_per_day = u64::MAX / 2;
    p.max_gas_per_principal_per_day = u64::MAX / 2;
    p.max_actions_per_owner_per_day = u64::MAX / 2;
    p.max_gas_per_owner_per_day = u64::MAX / 2;
    tune(&mut settings);
    let plain = ProviderBuilder::new()
        .connect_http(chain.anvil.endpoint_url())
        .erased();
    for key in keys {
        let _: serde_json::Value = plain
            .raw_request(
                "anvil_setBalance".into(),
                (key.address(), U256::from(10u64).pow(U256::from(22))),
            )
            .await?;
    }
    let relayer = Relayer::new(
        db.db().clone(),
        plain,
        settings,
        keys.iter().map(PrivateKeySigner::address).collect(),
    )
    .await?;
    for key in keys {
        Worker::new(relayer.clone(), key.clone()).round().await?;
    }
    Ok((relayer, db))
}

fn start_workers(relayer: &Relayer, keys: &[PrivateKeySigner]) -> watch::Sender<bool> {
    let (stop, rx) = watch::channel(false);
    for key in keys {
        let worker = Worker::new(relayer.clone(), key.clone());
        let rx = rx.clone();
        tokio::spawn(async move {
            if let Err(err) = worker.run(rx).await {
                eprintln!("worker stopped: {err}");
            }
        });
    }
    stop
}

async fn wait_confirmed(relayer: &Relayer, jobs: u64) -> eyre::Result<()> {
    let chain_id = relayer.settings().chain_id;
    let deadline = Instant::now() + CONFIRM_WITHIN;
    loop {
        let states = relay::jobs_by_state(relayer.db().pool(), chain_id).await?;
        let confirmed = states
            .iter()
            .find(|(s, _)| *s == JobState::Confirmed)
            .map_or(0, |(_, n)| *n);
        let failed = states
            .iter()
            .find(|(s, _)| *s == JobState::Failed)
            .map_or(0, |(_, n)| *n);
        eyre::ensure!(failed == 0, "{failed} jobs failed: {states:?}");
        if confirmed >= jobs {
            return Ok(());
        }
        if Instant::now() >= deadline {
            type Open = (String, String, Option<i64>, Option<String>, Option<i64>);
            let open: Vec<Open> = sqlx::query_as(
                "SELECT j.id, j.state, j.nonce, a.outcome, (extract(epoch FROM now() - a.broadcast_at))::bigint
                   FROM relay_jobs j LEFT JOIN relay_attempts a ON a.job_id = j.id
                  WHERE j.state NOT IN ('confirmed', 'failed') ORDER BY j.nonce",
            )
            .fetch_all(relayer.db().pool())
            .await?;
            let mut nonces = Vec::new();
            for signer in relayer.signers() {
                nonces.push(relayer.provider().get_transaction_count(*signer).await?);
            }
            eyre::bail!("jobs not confirmed: {states:?}; open {open:?}; chain nonces {nonces:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Queues `terms.len()` sponsored closes, then drains them with one worker per key; returns
/// confirmed actions per second (from the workers' start to the last confirmation).
async fn relayed(
    chain: &LoadChain,
    keys: &[PrivateKeySigner],
    terms: &[Agreement],
) -> eyre::Result<(f64, f64)> {
    let (relayer, _db) = relayer(chain, keys, |_| {}).await?;
    let deadline = now(&chain.provider).await? + 3_600;
    let started = Instant::now();
    for t in terms {
        relayer
            .accept(t, close(t, deadline), "bench")
            .await
            .map_err(|e| eyre::eyre!("{e:?}"))?;
    }
    let accept_rate = terms.len() as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let stop = start_workers(&relayer, keys);
    wait_confirmed(&relayer, terms.len() as u64).await?;
    let rate = terms.len() as f64 / started.elapsed().as_secs_f64();
    let _ = stop.send(true);
    Ok((rate, accept_rate))
}

/// The same calls sent by a plain alloy loop from one key (gas estimated per transaction,
/// nonces cached), until the last receipt.
async fn plain_loop(
    chain: &LoadChain,
    key: &PrivateKeySigner,
    terms: &[Agreement],
) -> eyre::Result<f64> {
    let _: serde_json::Value = chain
        .provider
        .raw_request(
            "anvil_setBalance".into(),
            (key.address(), U256::from(10u64).pow(U256::from(22))),
        )
        .await?;
    let provider = ProviderBuilder::new()
        .with_cached_nonce_management()
        .wallet(EthereumWallet::new(key.clone()))
        .connect_http(chain.anvil.endpoint_url());
    let deadline = now(&chain.provider).await? + 3_600;
    let started = Instant::now();
    let mut last = None;
    for t in terms {
        let Authorization::InitiateClose {
            party, signature, ..
        } = close(t, deadline)
        else {
            unreachable!()
        };
        let call = AgreementEscrow::initiateCloseWithSigCall {
            agreement: t.clone(),
            party,
            deadline: U256::from(deadline),
            signature,
        };
        let tx = TransactionRequest::default()
            .to(chain.deployment.escrow)
            .input(call.abi_encode().into());
        last = Some(provider.send_transaction(tx).await?);
    }
    if let Some(pending) = last {
        let receipt = pending.get_receipt().await?;
        eyre::ensure!(receipt.status(), "plain loop transaction reverted");
    }
    Ok(terms.len() as f64 / started.elapsed().as_secs_f64())
}

async fn set_mining(chain: &LoadChain, interval: Option<u64>) -> eyre::Result<()> {
    let p = &chain.provider;
    match interval {
        Some(seconds) => {
            let _: serde_json::Value = p.raw_request("evm_setAutomine".into(), (false,)).await?;
            let _: serde_json::Value = p
                .raw_request("evm_setIntervalMining".into(), (seconds,))
                .await?;
        }
        None => {
            let _: serde_json::Value = p.raw_request("evm_setIntervalMining".into(), (0,)).await?;
            let _: serde_json::Value = p.raw_request("evm_setAutomine".into(), (true,)).await?;
        }
    }
    Ok(())
}

/// Accept latency over HTTP at `RATE` requests/s, then the same requests replayed.
async fn accept_latency(
    chain: &mut LoadChain,
    workers_during: bool,
    metrics_flood: bool,
) -> eyre::Result<(Vec<f64>, Vec<f64>, HashMap<u16, u64>)> {
    let total = RATE * RATE_SECONDS;
    let terms = fresh(chain, total).await?;
    let keys = [dev_signer(5)];
    let (relayer, db) = relayer(chain, &keys, |_| {}).await?;
    let d = &chain.deployment;
    chain.index_into(db.db()).await?;
    let api_key = chain.register_driver(db.db(), "driver").await?;
    let mut state = AppState::new(db.db().clone(), d.chain_id, None);
    state.relayer = Some(relayer.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (_stop_api, stopped) = watch::channel(false);
    tokio::spawn(pactum_api::serve(listener, state, stopped));
    let mut stop_workers = workers_during.then(|| start_workers(&relayer, &keys));
    // 64 anonymous clients hammering /metrics from another process, for the whole measurement.
    let flood = metrics_flood
        .then(|| Flood::start(&format!("{base}/metrics"), 64))
        .transpose()?;

    let deadline = now(&chain.provider).await? + 3_600;
    let plan = terms
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let id = pactum_bindings::eip712::agreement_id(t, &relayer.escrow_domain());
            Ok(Planned {
                method: "POST".into(),
                url: format!("{base}/usage-agreements/{id}/sponsored-actions/initiate-close"),
                headers: vec![
                    ("authorization".into(), format!("Bearer {api_key}")),
                    ("idempotency-key".into(), format!("bench-{i}")),
                ],
                body: Some(serde_json::to_string(&InitiateCloseBody {
                    party: t.buyer.to_string(),
                    deadline,
                    signature: Bytes::from(vec![0u8; 65]).to_string(),
                    domain: None,
                })?),
            })
        })
        .collect::<Result<Vec<Planned>, serde_json::Error>>()?;
    // The same requests twice: first submissions, then their idempotent replays.
    let mut passes = open_loop_process(&plan, RATE, 2).await?.into_iter();
    drop(flood);
    let (first, replayed) = (
        passes.next().unwrap_or_default(),
        passes.next().unwrap_or_default(),
    );
    eyre::ensure!(
        replayed.statuses.get(&202).copied().unwrap_or(0) == total,
        "replays: {:?}",
        replayed.statuses
    );
    if stop_workers.is_none() {
        stop_workers = Some(start_workers(&relayer, &keys));
    }
    wait_confirmed(&relayer, total).await?;
    drop(stop_workers);
    Ok((
        first.latencies_ms,
        replayed.latencies_ms,
        first.statuses.into_iter().collect(),
    ))
}

/// Gas of each action, direct and sponsored, for EOA parties (dev accounts 1 and 2).
async fn gas_table(chain: &LoadChain) -> eyre::Result<Vec<(&'static str, u64, u64)>> {
    let (buyer, seller) = (dev_signer(1), dev_signer(2));
    let d = &chain.deployment;
    let mut wallet = EthereumWallet::new(dev_signer(0));
    wallet.register_signer(buyer.clone());
    wallet.register_signer(seller.clone());
    let provider = pactum_devnet::connect(chain.anvil.endpoint_url(), wallet);
    pactum_devnet::confirm(
        LocalUSDC::new(d.token, &provider)
            .mint(buyer.address(), U256::from(1_000_000_000u64))
            .from(dev_signer(0).address()),
    )
    .await?;
    // The seller already holds the token, so that neither path pays for a first balance slot.
    pactum_devnet::confirm(
        LocalUSDC::new(d.token, &provider)
            .mint(seller.address(), U256::from(1u64))
            .from(dev_signer(0).address()),
    )
    .await?;
    let terms = |salt: &str, t: u64| Agreement {
        buyer: buyer.address(),
        seller: seller.address(),
        token: d.token,
        maxAmount: U256::from(100_000_000u64),
        infraFee: U256::ZERO,
        expiry: t + 86_400,
        closeWindow: 3_600,
        salt: alloy::primitives::keccak256(salt),
    };
    let t = now(&chain.provider).await?;
    let amount = U256::from(40_000_000u64);

    // Direct.
    let direct = terms("gas-direct", t);
    let (id, _) =
        scenario::activate(&provider, d, &direct, &buyer, dev_signer(0).address()).await?;
    let escrow = AgreementEscrow::new(d.escrow, &provider);
    let domain = pactum_bindings::eip712::escrow_domain(d.chain_id, d.escrow);
    let voucher = sign::sign_typed(
        &buyer,
        &Voucher {
            agreementId: id,
            cumulativeAmount: amount,
        },
        &domain,
    )
    .await?;
    let g1 = pactum_devnet::confirm(escrow.initiateClose(direct.clone()).from(buyer.address()))
        .await?
        .gas_used;
    let g2 = pactum_devnet::confirm(
        escrow
            .sellerClaim(direct.clone(), amount, voucher, seller.address())
            .from(seller.address())
            .gas(300_000),
    )
    .await?
    .gas_used;
    let g3 = pactum_devnet::confirm(
        escrow
            .buyerWithdraw(direct.clone(), buyer.address())
            .from(buyer.address()),
    )
    .await?
    .gas_used;

    // Sponsored, through the relayer.
    let keys = [dev_signer(5)];
    let (relayer, _db) = relayer(chain, &keys, |_| {}).await?;
    let _stop = start_workers(&relayer, &keys);
    let sponsored = terms("gas-sponsored", t);
    let (id, _) =
        scenario::activate(&provider, d, &sponsored, &buyer, dev_signer(0).address()).await?;
    let deadline = now(&chain.provider).await? + 3_600;
    let voucher = sign::sign_typed(
        &buyer,
        &Voucher {
            agreementId: id,
            cumulativeAmount: amount,
        },
        &domain,
    )
    .await?;
    let dl = U256::from(deadline);
    let steps = [
        Authorization::InitiateClose {
            party: buyer.address(),
            deadline,
            signature: sign::sign_typed(
                &buyer,
                &InitiateClose {
                    agreementId: id,
                    party: buyer.address(),
                    deadline: dl,
                },
                &domain,
            )
            .await?,
        },
        Authorization::SellerClaim {
            amount,
            voucher_signature: voucher,
            recipient: seller.address(),
            deadline,
            signature: sign::sign_typed(
                &seller,
                &SellerClaim {
                    agreementId: id,
                    amount,
                    recipient: seller.address(),
                    deadline: dl,
                },
                &domain,
            )
            .await?,
        },
        Authorization::BuyerWithdraw {
            recipient: buyer.address(),
            deadline,
            signature: sign::sign_typed(
                &buyer,
                &BuyerWithdraw {
                    agreementId: id,
                    recipient: buyer.address(),
                    deadline: dl,
                },
                &domain,
            )
            .await?,
        },
    ];
    let mut sponsored_gas = Vec::new();
    for step in steps {
        let job = relayer
            .accept(&sponsored, step, "bench")
            .await
            .map_err(|e| eyre::eyre!("{e:?}"))?
            .job;
        let started = Instant::now();
        let gas = loop {
            if let Some((j, _)) = relayer.job(&job.id).await?
                && let Some(gas) = j.gas_used
            {
                break gas;
            }
            eyre::ensure!(
                started.elapsed() < Duration::from_secs(30),
                "job {} stuck",
                job.id
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        sponsored_gas.push(gas);
    }
    Ok(vec![
        ("initiate close", g1, sponsored_gas[0]),
        ("seller claim (paid at once)", g2, sponsored_gas[1]),
        ("buyer withdraw", g3, sponsored_gas[2]),
    ])
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> eyre::Result<()> {
    if pactum_bench::serve_open_loop().await? {
        return Ok(());
    }
    pactum_bench::serve_flood().await?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    // Every measurement on a fresh chain: no pool or nonce left over from the one before.
    let start = || LoadChain::start(&["--gas-limit", "100000000"]);
    let extra: Vec<PrivateKeySigner> = (0..3).map(|_| PrivateKeySigner::random()).collect();
    let one = vec![dev_signer(5)];
    let four: Vec<PrivateKeySigner> = one.iter().cloned().chain(extra.iter().cloned()).collect();
    let mut rows = Vec::new();

    // PACTUM_BENCH_PHASES=latency (or throughput, gas, alone, flood) runs a part only.
    let phases =
        std::env::var("PACTUM_BENCH_PHASES").unwrap_or_else(|_| "throughput,latency,gas".into());
    let runs: &[(&str, Option<u64>, u64)] = if phases.contains("throughput") {
        &[
            ("automine", None, THROUGHPUT_JOBS),
            ("2 s blocks", Some(2), THROUGHPUT_JOBS_INTERVAL),
        ]
    } else {
        &[]
    };
    for &(label, interval, jobs) in runs {
        let mut chain = start().await?;
        let plain_terms = fresh(&mut chain, jobs).await?;
        let relay_terms = fresh(&mut chain, jobs).await?;
        let multi_terms = fresh(&mut chain, jobs).await?;
        set_mining(&chain, interval).await?;
        let ceiling = plain_loop(&chain, &one[0], &plain_terms).await?;
        let (single, accept_rate) = relayed(&chain, &one, &relay_terms).await?;
        let (multi, _) = relayed(&chain, &four, &multi_terms).await?;
        eprintln!("{label}: plain {ceiling:.0}/s, relayer {single:.0}/s, 4 keys {multi:.0}/s");
        rows.push((label, jobs, ceiling, single, multi, accept_rate));
    }

    // `alone` runs only the first latency measurement (workers idle), for quick comparisons.
    let (mut alone, _, alone_statuses) = if phases.contains("latency") || phases.contains("alone") {
        accept_latency(&mut start().await?, false, false).await?
    } else {
        Default::default()
    };
    let (mut first, mut replayed, statuses) = if phases.contains("latency") {
        accept_latency(&mut start().await?, true, false).await?
    } else {
        Default::default()
    };
    let (mut flooded, _, flooded_statuses) =
        if phases.contains("latency") || phases.contains("flood") {
            accept_latency(&mut start().await?, false, true).await?
        } else {
            Default::default()
        };
    let gas = if phases.contains("gas") {
        gas_table(&start().await?).await?
    } else {
        Vec::new()
    };

    println!(
        "\n## Relayer throughput (sponsored initiateCloseWithSig, drained until all confirmed)\n"
    );
    println!(
        "| mining | jobs per run | plain alloy send loop, 1 key | relayer, 1 key | relayer / plain | relayer, 4 keys | queued by `accept` |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (label, jobs, ceiling, single, multi, accept_rate) in &rows {
        println!(
            "| {label} | {} | {} tx/s | {} actions/s | {:.0} % | {} actions/s | {} /s |",
            thousands(*jobs as f64),
            thousands(*ceiling),
            thousands(*single),
            100.0 * single / ceiling,
            thousands(*multi),
            thousands(*accept_rate),
        );
    }
    let total = RATE * RATE_SECONDS;
    println!("\n## Accept latency over HTTP ({total} sponsored closes at {RATE}/s, open loop)\n");
    println!("| requests | p50 | p99 | max | answers |");
    println!("|---|---|---|---|---|");
    let rows = [
        (
            "first submission, workers idle (acceptance alone)",
            &mut alone,
            format!("{alone_statuses:?}"),
        ),
        (
            "first submission, workers submitting meanwhile",
            &mut first,
            format!("{statuses:?}"),
        ),
        (
            "idempotent replay (same key and body)",
            &mut replayed,
            "all 202, replayed".to_owned(),
        ),
        (
            "first submission, workers idle, 64 clients hammering /metrics",
            &mut flooded,
            format!("{flooded_statuses:?}"),
        ),
    ];
    for (label, samples, answers) in rows {
        println!("{}", latency_row(label, samples, &answers));
    }
    println!("\n## Gas per action (whole transaction, EOA parties)\n");
    println!("| action | direct call | sponsored (`...WithSig` via the relayer) | difference |");
    println!("|---|---|---|---|");
    for (label, direct, sponsored) in gas {
        println!(
            "| {label} | {} | {} | +{} |",
            thousands(direct as f64),
            thousands(sponsored as f64),
            thousands(sponsored.saturating_sub(direct) as f64)
        );
    }
    Ok(())
}
