//! Three `pactum serve` processes over one PostgreSQL and one chain, each running the API, an
//! indexer, the relayer's worker for the same key, a webhook worker, the receipt issuer and the
//! expiry sweep. Agreements run through their whole lifecycle through the three APIs (the
//! parties' client retries a failed request on another replica with the same idempotency key,
//! as a load balancer and a careful client would), while one process after another is SIGKILLed
//! and restarted, the index writer more often than not.
//!
//! Afterwards: the index equals the chain (the same logs, and derived state that recomputes
//! from them), every agreement is settled on chain and in the API, every sponsored action was
//! mined exactly once (one event each, and the relayer's nonce equals the jobs it confirmed),
//! every webhook message was delivered, and every money movement has its receipt.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    future::Future,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::Filter,
    signers::local::PrivateKeySigner,
    sol_types::SolStruct,
};
use pactum_bindings::eip712::{self, Voucher};
use pactum_client::{
    Authorizer, Client, Expected, sign_activation,
    types::{
        JobState, LifecycleStatus, OptionsParams, PackageParams, PaymentMethod, ProposeAgreement,
        RecordUsage, RelayView, SettlementAction,
    },
};
use pactum_core::escrow::events::Contracts;
use pactum_db::testing::TestDatabase;
use pactum_devnet::{DEV_PRIVATE_KEYS, Deployment, dev_signer};

const AGREEMENTS: usize = 20;
const REPLICAS: usize = 3;
const QUANTITY: i64 = 10;
const PRICE_CENTS: i64 = 100;
const RECEIPT_KEY: &str = "0x7777777777777777777777777777777777777777777777777777777777777777";
const JWT_SECRET: &str = "replicas-test-secret-of-at-least-32-bytes";
/// How long any one step may take, retries included.
const STEP: Duration = Duration::from_secs(120);

/// One `pactum serve` process, killed when dropped (also when the test fails).
struct Replica {
    port: u16,
    child: Option<Child>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

struct Stack {
    deployment: Deployment,
    rpc_url: String,
    db_url: String,
    log: std::path::PathBuf,
}

impl Stack {
    fn spawn(&self, port: u16) -> eyre::Result<Child> {
        let d = &self.deployment;
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        Ok(Command::new(env!("CARGO_BIN_EXE_pactum"))
            .arg("serve")
            .envs(d.process_env(&self.rpc_url, &self.db_url))
            .env("PACTUM_DATABASE_API_CONNECTIONS", "6")
            .env("PACTUM_DATABASE_INDEXER_CONNECTIONS", "3")
            .env("PACTUM_DATABASE_RELAYER_CONNECTIONS", "3")
            .env("PACTUM_DATABASE_WEBHOOKS_CONNECTIONS", "3")
            .env("PACTUM_API_LISTEN", format!("127.0.0.1:{port}"))
            .env("PACTUM_API_JWT_SECRET", JWT_SECRET)
            // A request killed with its process frees its idempotency key soon.
            .env("PACTUM_API_IDEMPOTENCY_LEASE_SECS", "3")
            .env("PACTUM_INDEXER_CONFIRMATIONS", "0")
            .env("PACTUM_INDEXER_USE_FINALIZED_TAG", "false")
            .env("PACTUM_INDEXER_POLL_INTERVAL_MS", "100")
            // Every process is configured with the same relayer key: one signs at a time.
            .env("PACTUM_RELAYER_KEYS", DEV_PRIVATE_KEYS[5])
            .env("PACTUM_RELAYER_POLL_INTERVAL_MS", "50")
            .env("PACTUM_RELAYER_STUCK_AFTER_MS", "2000")
            // Any key signs receipts; it needs no funds.
            .env("PACTUM_RECEIPTS_KEY", RECEIPT_KEY)
            .env("PACTUM_WEBHOOKS_ALLOW_HTTP", "true")
            .env("PACTUM_WEBHOOKS_ALLOW_PRIVATE_DESTINATIONS", "true")
            .env("PACTUM_WEBHOOKS_CONCURRENCY", "4")
            .env("PACTUM_WEBHOOKS_TIMEOUT_MS", "1000")
            .env("PACTUM_WEBHOOKS_LEASE_SECS", "6")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .spawn()?)
    }
}

/// The parties' view of the replicas: each call goes to the next one, and a call that gets no
/// answer (its process died), a 5xx or "still in progress" is sent again to the next replica
/// with the same idempotency key.
struct Replicas {
    clients: Vec<Client>,
    next: AtomicUsize,
}

fn retryable(err: &pactum_client::Error) -> bool {
    match err {
        pactum_client::Error::Transport(_) => true,
        _ => match err.status() {
            // "Not now" answers: the same key still running elsewhere, or another sponsored
            // action of the agreement (its activation, whose worker may just have died) still
            // in flight.
            Some(status) => {
                status >= 500
                    || matches!(
                        err.code(),
                        Some("idempotency_request_in_progress" | "competing_action_in_flight")
                    )
            }
            None => false,
        },
    }
}

impl Replicas {
    fn new(ports: &[u16], token: &str) -> eyre::Result<Self> {
        let http = alloy::transports::http::reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let clients = ports
            .iter()
            .map(|port| {
                Ok(Client::new(&format!("http://127.0.0.1:{port}"))?
                    .with_http(http.clone())
                    .authenticated(token))
            })
            .collect::<eyre::Result<_>>()?;
        Ok(Self {
            clients,
            next: AtomicUsize::new(0),
        })
    }

    async fn call<T, F, Fut>(&self, what: &str, f: F) -> eyre::Result<T>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = pactum_client::Result<T>>,
    {
        let started = Instant::now();
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len();
            match f(self.clients[i].clone()).await {
                Ok(value) => return Ok(value),
                Err(err) if retryable(&err) && started.elapsed() < STEP => {
                    tokio::time::sleep(Duration::from_millis(150)).await;
                }
                Err(err) => eyre::bail!("{what}: {err}"),
            }
        }
    }

    /// Reads `read` (on any replica) until `done` holds.
    async fn wait<T, F, Fut>(
        &self,
        what: &str,
        read: F,
        done: impl Fn(&T) -> bool,
    ) -> eyre::Result<T>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = pactum_client::Result<T>>,
        T: std::fmt::Debug,
    {
        let started = Instant::now();
        loop {
            let value = self.call(what, &read).await?;
            if done(&value) {
                return Ok(value);
            }
            eyre::ensure!(
                started.elapsed() < STEP,
                "{what}: still {value:?} after {STEP:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

struct Party {
    agent: String,
    signer: PrivateKeySigner,
    api: Replicas,
}

fn key(step: &str, n: usize) -> String {
    format!("replicas-{step}-{n}-{}", pactum_db::random_id(8))
}

/// One agreement from proposal to settlement through the sponsored endpoints; its on-chain id.
async fn lifecycle(n: usize, d: &Deployment, buyer: &Party, seller: &Party) -> eyre::Result<B256> {
    let body = ProposeAgreement {
        seller_agent_id: seller.agent.clone(),
        service_id: format!("svc_replica_{n}"),
        quantity: QUANTITY,
        unit: "api_calls".into(),
        price_per_unit_cents: PRICE_CENTS,
        payment_method: PaymentMethod {
            rail: "stablecoin".into(),
            provider: "x402".into(),
        },
        settlement_model: "bilateral_escrow".into(),
        activation_version: "v2".into(),
        buyer_wallet_address: buyer.signer.address().to_string(),
        close_window_seconds: None,
        expires_in_seconds: None,
        metadata: None,
    };
    let k = key("propose", n);
    let proposed = buyer
        .api
        .call("propose", |c| {
            let (body, k) = (body.clone(), k.clone());
            async move { c.propose(&body, &k).await }
        })
        .await?
        .body;
    let id = proposed.agreement_id.clone();
    let k = key("accept", n);
    let accepted = seller
        .api
        .call("accept", |c| {
            let (id, k) = (id.clone(), k.clone());
            async move { c.accept(&id, &k).await }
        })
        .await?
        .body;
    let onchain: B256 = accepted
        .onchain_agreement_id
        .as_deref()
        .ok_or_else(|| eyre::eyre!("accepted without an on-chain id"))?
        .parse()?;

    let package = buyer
        .api
        .call("activation package", |c| {
            let id = id.clone();
            async move { c.activation_package(&id, &PackageParams::default()).await }
        })
        .await?;
    let expected = Expected {
        chain_id: d.chain_id,
        escrow: d.escrow,
        fee_collector: d.fee_collector,
        token: d.token,
        max_amount: package.terms.max_amount.parse()?,
        max_fee: U256::from(QUANTITY as u64 * PRICE_CENTS as u64 * 10_000 / 100),
    };
    let signed =
        sign_activation(&buyer.signer, buyer.signer.address(), &package, &expected).await?;
    // An attempt whose process died after it submitted (or while it held the agreement's
    // activation claim) is answered 409 on retry: the activation is in flight, or the agreement
    // has moved on. The client then follows the agreement, as the API tells it to.
    let k = key("activate", n);
    let started = Instant::now();
    loop {
        let tried = buyer
            .api
            .call("activate", |c| {
                let (id, k, signed) = (id.clone(), k.clone(), signed.clone());
                async move { c.activate_escrow(&id, &signed, &k).await }
            })
            .await;
        let Err(err) = tried else { break };
        let moved_on = buyer
            .api
            .call("agreement", |c| {
                let id = id.clone();
                async move { c.usage_agreement(&id).await.map(|v| v.status) }
            })
            .await?;
        if matches!(
            moved_on,
            LifecycleStatus::Activating | LifecycleStatus::Active
        ) {
            break;
        }
        eyre::ensure!(started.elapsed() < STEP, "activate: {err}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    buyer
        .api
        .wait(
            "activation indexed",
            |c| {
                let id = id.clone();
                async move { c.usage_agreement(&id).await.map(|v| v.status) }
            },
            |s| *s == LifecycleStatus::Active,
        )
        .await?;

    // Usage, with the buyer's vouchers.
    let buyer_signs = Authorizer::new(&buyer.signer, d.chain_id, d.escrow, onchain);
    let domain = eip712::escrow_domain(d.chain_id, d.escrow);
    let mut highest = U256::ZERO;
    for units in [3u64, 7] {
        let handed = seller
            .api
            .call("usage voucher", |c| {
                let id = id.clone();
                async move { c.usage_voucher(&id, units).await }
            })
            .await?;
        let amount: U256 = handed.cumulative_amount.parse()?;
        let ours = Voucher {
            agreementId: onchain,
            cumulativeAmount: amount,
        }
        .eip712_signing_hash(&domain);
        eyre::ensure!(handed.voucher.digest == ours.to_string(), "foreign voucher");
        let record = RecordUsage {
            cumulative_quantity: units,
            voucher_signature: buyer_signs.voucher(amount).await?.to_string(),
        };
        let k = key("usage", n);
        seller
            .api
            .call("record usage", |c| {
                let (id, k, record) = (id.clone(), k.clone(), record.clone());
                async move { c.record_usage(&id, &record, &k).await }
            })
            .await?;
        highest = amount;
    }

    // Settlement through the relayer: the seller closes and claims, the buyer withdraws.
    let seller_signs = Authorizer::new(&seller.signer, d.chain_id, d.escrow, onchain);
    let options = seller
        .api
        .call("close options", |c| async move {
            c.settlement_action_options(
                onchain,
                &OptionsParams::of(SettlementAction::InitiateClose),
            )
            .await
        })
        .await?;
    let close = seller_signs.initiate_close(&options).await?;
    let k = key("close", n);
    let relay = seller
        .api
        .call("sponsor close", |c| {
            let (k, close) = (k.clone(), close.clone());
            async move { c.sponsor_initiate_close(onchain, &close, &k).await }
        })
        .await?
        .body;
    confirmed(seller, onchain, relay).await?;

    let voucher = buyer_signs.voucher(highest).await?;
    let params = OptionsParams {
        amount: Some(highest.to_string()),
        ..OptionsParams::of(SettlementAction::SellerClaim)
    };
    let options = seller
        .api
        .call("claim options", |c| {
            let params = params.clone();
            async move { c.settlement_action_options(onchain, &params).await }
        })
        .await?;
    let claim = seller_signs
        .seller_claim(&options, highest, &voucher, seller.signer.address())
        .await?;
    let k = key("claim", n);
    let relay = seller
        .api
        .call("sponsor claim", |c| {
            let (k, claim) = (k.clone(), claim.clone());
            async move { c.sponsor_seller_claim(onchain, &claim, &k).await }
        })
        .await?
        .body;
    confirmed(seller, onchain, relay).await?;

    let options = buyer
        .api
        .call("withdraw options", |c| async move {
            c.settlement_action_options(
                onchain,
                &OptionsParams::of(SettlementAction::BuyerWithdraw),
            )
            .await
        })
        .await?;
    let withdraw = buyer_signs
        .buyer_withdraw(&options, buyer.signer.address())
        .await?;
    let k = key("withdraw", n);
    let relay = buyer
        .api
        .call("sponsor withdraw", |c| {
            let (k, withdraw) = (k.clone(), withdraw.clone());
            async move { c.sponsor_buyer_withdraw(onchain, &withdraw, &k).await }
        })
        .await?
        .body;
    confirmed(buyer, onchain, relay).await?;
    buyer
        .api
        .wait(
            "settlement indexed",
            |c| {
                let id = id.clone();
                async move { c.usage_agreement(&id).await.map(|v| v.status) }
            },
            |s| *s == LifecycleStatus::Settled,
        )
        .await?;
    Ok(onchain)
}

async fn confirmed(party: &Party, onchain: B256, relay: RelayView) -> eyre::Result<()> {
    let done = party
        .api
        .wait(
            "sponsored action",
            |c| {
                let relay_id = relay.relay_id.clone();
                async move {
                    c.sponsored_action(onchain, &relay_id)
                        .await
                        .map(|r| r.status)
                }
            },
            |s| matches!(s, JobState::Confirmed | JobState::Failed),
        )
        .await?;
    eyre::ensure!(
        done == JobState::Confirmed,
        "relay {} failed",
        relay.relay_id
    );
    Ok(())
}

/// The replica whose `/metrics` says it writes the index, if any answers so.
async fn index_writer(replicas: &[Replica]) -> Option<usize> {
    for (i, r) in replicas.iter().enumerate() {
        let url = format!("http://127.0.0.1:{}/metrics", r.port);
        let Ok(answer) = alloy::transports::http::reqwest::get(&url).await else {
            continue;
        };
        if answer
            .text()
            .await
            .is_ok_and(|t| t.lines().any(|l| l == "pactum_indexer_leader 1"))
        {
            return Some(i);
        }
    }
    None
}

async fn wait_healthy(replica: &mut Replica, log: &std::path::Path) -> eyre::Result<()> {
    let port = replica.port;
    let url = format!("http://127.0.0.1:{port}/health");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if let Some(status) = replica
            .child
            .as_mut()
            .map(Child::try_wait)
            .transpose()?
            .flatten()
        {
            eyre::bail!(
                "replica on port {port} exited with {status} (log: {})",
                log.display()
            );
        }
        if alloy::transports::http::reqwest::get(&url)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eyre::bail!("replica on port {port} did not start")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_with_one_killed_again_and_again_agree_with_the_chain() -> eyre::Result<()>
{
    let (seed, mut rng) = common::seeded("replicas test");

    let anvil = pactum_devnet::spawn_anvil()?;
    let (deployer, buyer, seller) = (dev_signer(0), dev_signer(1), dev_signer(2));
    let provider =
        pactum_devnet::connect(anvil.endpoint_url(), EthereumWallet::new(deployer.clone()));
    let d = pactum_devnet::deploy_funded(
        &provider,
        &[(buyer.address(), U256::from(1_000_000_000_000u64))],
    )
    .await?;

    // From now on a block a second, as on a real chain: actions wait for their block.
    let plain = ProviderBuilder::new()
        .connect_http(anvil.endpoint_url())
        .erased();
    let _: serde_json::Value = plain
        .raw_request("evm_setAutomine".into(), serde_json::json!([false]))
        .await?;
    let _: serde_json::Value = plain
        .raw_request("evm_setIntervalMining".into(), serde_json::json!([1]))
        .await?;

    let test_db = TestDatabase::create().await?;
    let db = test_db.db().clone();
    let pool = db.pool().clone();
    let deployment = pactum_api::identity::Deployment {
        chain_id: d.chain_id,
        escrow: d.escrow,
    };
    let mut conn = pool.acquire().await?;
    pactum_db::identity::create_owner(&mut conn, "acme", "Acme", "ops@acme.test").await?;
    let party = |name: &str, signer: PrivateKeySigner| {
        let (db, deployment) = (db.clone(), deployment);
        let name = name.to_owned();
        async move {
            pactum_api::identity::register_with_key(&db, deployment, "acme", &name, &name, &signer)
                .await
                .map_err(|p| eyre::eyre!("registering {name}: {}", p.0.detail))?;
            let (key_id, secret, hash) = pactum_api::auth::generate_api_key();
            let mut conn = db.pool().acquire().await?;
            pactum_db::identity::create_api_key(&mut conn, &key_id, &name, &hash, "replicas")
                .await?;
            Ok::<_, eyre::Report>((name, signer, secret))
        }
    };
    let (buyer_agent, buyer_signer, buyer_key) = party("buyer", buyer.clone()).await?;
    let (seller_agent, seller_signer, seller_key) = party("seller", seller.clone()).await?;

    // A webhook receiver, subscribed for both agents.
    let (hook, seen) = common::webhook_receiver(Duration::ZERO).await?;
    for (id, agent) in [
        ("whk_aaaaaaaaaaaaaaaaaaaa", &buyer_agent),
        ("whk_bbbbbbbbbbbbbbbbbbbb", &seller_agent),
    ] {
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, agent_id, url, secret, created_by)
             VALUES ($1, $2, $3, 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'owner:acme')",
        )
        .bind(id)
        .bind(agent)
        .bind(&hook)
        .execute(&pool)
        .await?;
    }

    let stack = Stack {
        deployment: d.clone(),
        rpc_url: anvil.endpoint_url().to_string(),
        db_url: test_db.url().to_owned(),
        log: std::env::temp_dir().join(format!("pactum-replicas-{seed}.log")),
    };
    let mut replicas = Vec::new();
    for _ in 0..REPLICAS {
        let port = pactum_devnet::free_port()?;
        replicas.push(Replica {
            port,
            child: Some(stack.spawn(port)?),
        });
    }
    for r in &mut replicas {
        wait_healthy(r, &stack.log).await?;
    }
    let ports: Vec<u16> = replicas.iter().map(|r| r.port).collect();
    let buyer = Arc::new(Party {
        agent: buyer_agent,
        signer: buyer_signer,
        api: Replicas::new(&ports, &buyer_key)?,
    });
    let seller = Arc::new(Party {
        agent: seller_agent,
        signer: seller_signer,
        api: Replicas::new(&ports, &seller_key)?,
    });

    // The agreements run while replicas die.
    let mut running = tokio::task::JoinSet::new();
    for n in 0..AGREEMENTS {
        let (d, buyer, seller) = (d.clone(), buyer.clone(), seller.clone());
        running.spawn(async move {
            // Staggered, so that the kills find agreements in every phase.
            tokio::time::sleep(Duration::from_millis(1_500 * n as u64)).await;
            lifecycle(n, &d, &buyer, &seller).await
        });
    }
    let driven = async move {
        let mut ids = Vec::new();
        while let Some(done) = running.join_next().await {
            ids.push(done?);
        }
        Ok::<_, eyre::Report>(ids)
    };
    tokio::pin!(driven);
    let (mut kills, mut writer_kills) = (0, 0);
    let started = Instant::now();
    let ids = loop {
        let pause = Duration::from_millis(1_000 + rng.below(2_000));
        tokio::select! {
            ids = &mut driven => break ids,
            () = tokio::time::sleep(pause) => {}
        }
        // Two kills in three hit the index writer.
        let victim = match (rng.below(3), index_writer(&replicas).await) {
            (0, _) | (_, None) => usize::try_from(rng.below(REPLICAS as u64))?,
            (_, Some(writer)) => {
                writer_kills += 1;
                writer
            }
        };
        let r = &mut replicas[victim];
        if let Some(mut child) = r.child.take() {
            child.kill()?; // SIGKILL
            child.wait()?;
            kills += 1;
        }
        // Back after a moment (the others carry on meanwhile).
        tokio::time::sleep(Duration::from_millis(300 + rng.below(1_000))).await;
        r.child = Some(stack.spawn(r.port)?);
        eyre::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "the agreements did not settle within 10 minutes (log: {})",
            stack.log.display()
        );
    };
    let ids: Vec<B256> = ids?.into_iter().collect::<eyre::Result<_>>()?;
    eprintln!(
        "{AGREEMENTS} agreements settled in {:?} through {kills} kills ({writer_kills} of the index writer)",
        started.elapsed()
    );
    eyre::ensure!(
        kills >= 6 && writer_kills >= 2,
        "too few kills ({kills}, {writer_kills} of the writer) to mean anything"
    );

    // Quiesce: every webhook delivered, every receipt issued (the killed processes' leases
    // expire), then the checks.
    let head = plain.get_block_number().await?;
    let settle = Instant::now();
    loop {
        let pending: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM webhook_deliveries WHERE status <> 'succeeded'",
        )
        .fetch_one(&pool)
        .await?;
        let indexed: i64 =
            sqlx::query_scalar("SELECT block_number FROM indexer_cursor WHERE chain_id = $1")
                .bind(i64::try_from(d.chain_id)?)
                .fetch_one(&pool)
                .await?;
        let receipts: i64 = sqlx::query_scalar("SELECT count(*) FROM receipts")
            .fetch_one(&pool)
            .await?;
        if pending == 0 && indexed >= i64::try_from(head)? && receipts >= 4 * AGREEMENTS as i64 {
            break;
        }
        eyre::ensure!(
            settle.elapsed() < Duration::from_secs(90),
            "not quiet after 90 s: {pending} deliveries pending, indexed {indexed} of {head}, {receipts} receipts"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    check_index_equals_chain(&plain, &d, &db, head).await?;
    check_actions_mined_once(&plain, &pool, &ids, dev_signer(5).address()).await?;
    check_webhooks(&pool, &seen).await?;

    drop(replicas);
    Ok(())
}

/// The same logs in the index as on the chain, and derived state that recomputes from them.
async fn check_index_equals_chain(
    provider: &DynProvider,
    d: &Deployment,
    db: &pactum_db::Db,
    head: u64,
) -> eyre::Result<()> {
    let logs = provider
        .get_logs(
            &Filter::new()
                .address(vec![d.escrow, d.fee_collector])
                .from_block(d.start_block)
                .to_block(head),
        )
        .await?;
    let on_chain: BTreeSet<(Vec<u8>, i64)> = logs
        .iter()
        .map(|l| {
            (
                l.block_hash.unwrap_or_default().to_vec(),
                i64::try_from(l.log_index.unwrap_or_default()).unwrap_or(-1),
            )
        })
        .collect();
    let rows: Vec<(Vec<u8>, i32)> = sqlx::query_as(
        "SELECT block_hash, log_index FROM chain_events WHERE chain_id = $1 AND block_number <= $2",
    )
    .bind(i64::try_from(d.chain_id)?)
    .bind(i64::try_from(head)?)
    .fetch_all(db.pool())
    .await?;
    let indexed: BTreeSet<(Vec<u8>, i64)> =
        rows.into_iter().map(|(h, i)| (h, i64::from(i))).collect();
    eyre::ensure!(
        on_chain == indexed,
        "the index differs from the chain: {} logs on chain, {} indexed",
        on_chain.len(),
        indexed.len()
    );
    let report = pactum_indexer::verify::verify(
        db,
        d.chain_id,
        Contracts {
            escrow: d.escrow,
            fee_collector: d.fee_collector,
        },
    )
    .await?;
    eyre::ensure!(
        report.mismatches.is_empty(),
        "derived state differs from the events: {:?}",
        report.mismatches
    );
    Ok(())
}

/// Four sponsored actions per agreement, each confirmed, each one event on chain, and the
/// relayer's key used exactly once per confirmed job.
async fn check_actions_mined_once(
    provider: &DynProvider,
    pool: &sqlx::PgPool,
    ids: &[B256],
    relayer: Address,
) -> eyre::Result<()> {
    let jobs: Vec<(Vec<u8>, String, String)> =
        sqlx::query_as("SELECT agreement_id, action, state FROM relay_jobs")
            .fetch_all(pool)
            .await?;
    let mut per_agreement: BTreeMap<Vec<u8>, Vec<String>> = BTreeMap::new();
    for (agreement, action, state) in &jobs {
        eyre::ensure!(state == "confirmed", "a {action} job ended {state}");
        per_agreement
            .entry(agreement.clone())
            .or_default()
            .push(action.clone());
    }
    for id in ids {
        let mut actions = per_agreement.remove(id.as_slice()).unwrap_or_default();
        actions.sort();
        eyre::ensure!(
            actions
                == [
                    "activate",
                    "buyer_withdraw",
                    "initiate_close",
                    "seller_claim"
                ],
            "agreement {id}: jobs {actions:?}"
        );
        // One event of each kind on chain (in the index, which equals the chain).
        let kinds: Vec<(String, i64)> = sqlx::query_as(
            "SELECT kind, count(*) FROM chain_events WHERE agreement_id = $1 GROUP BY kind",
        )
        .bind(id.as_slice())
        .fetch_all(pool)
        .await?;
        for (kind, count) in kinds {
            eyre::ensure!(count == 1, "agreement {id}: {count} {kind} events");
        }
    }
    let nonce = provider.get_transaction_count(relayer).await?;
    eyre::ensure!(
        nonce == jobs.len() as u64,
        "the relayer sent {nonce} transactions for {} jobs",
        jobs.len()
    );
    Ok(())
}

/// Every message has its deliveries succeeded, and the receiver got each of them.
async fn check_webhooks(pool: &sqlx::PgPool, seen: &common::Seen) -> eyre::Result<()> {
    let messages: Vec<String> = sqlx::query_scalar("SELECT id FROM webhook_messages")
        .fetch_all(pool)
        .await?;
    eyre::ensure!(!messages.is_empty(), "no webhook messages");
    let seen = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let missing: Vec<&String> = messages.iter().filter(|m| !seen.contains_key(*m)).collect();
    eyre::ensure!(
        missing.is_empty(),
        "{} of {} messages never reached the receiver",
        missing.len(),
        messages.len()
    );
    let twice = seen.values().filter(|n| **n > 1).count();
    eprintln!(
        "{} webhook messages delivered ({twice} more than once, after a kill)",
        messages.len()
    );
    Ok(())
}
