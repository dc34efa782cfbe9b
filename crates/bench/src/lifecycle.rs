//! The usage-agreement endpoints under open-loop load from a separate process (`bench-api`):
//! proposals, usage records with ECDSA vouchers, one agreement's view, a page of 50 from an
//! agent with 100,000 agreements, and a receipt's verification.
//!
//! The records need escrows the index shows active: their index rows are written directly (the
//! benchmark measures the API's path, not the indexer's), with the usage agreements' buyer a
//! local key so that each voucher is a real ECDSA signature the API recovers.

use alloy::{
    primitives::{Address, B256, U256},
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::SolStruct,
};
use pactum_api::{AppState, agreements::AgreementSettings};
use pactum_api_types::{PaymentMethod, ProposeAgreement, RecordUsage};
use pactum_bindings::eip712::{self, Voucher};
use pactum_core::{
    AgreementStatus,
    agreement::terms::{FeeSchedule, OnChainTerms},
    escrow::{AgreementRecord, Transition},
};
use pactum_db::{Db, identity};
use tokio::{net::TcpListener, sync::watch};

use crate::{Planned, latency_row, open_loop_process};

/// One benchmark row: its label, its samples and the answers by status.
pub type Row = (String, Vec<f64>, String);

const SECONDS: u64 = 10;

fn answers(statuses: &std::collections::BTreeMap<u16, u64>) -> String {
    statuses
        .iter()
        .map(|(s, n)| format!("{s}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn key_for(db: &Db, agent: &str) -> eyre::Result<String> {
    let (id, key, hash) = pactum_api::auth::generate_api_key();
    let mut conn = db.pool().acquire().await?;
    identity::create_api_key(&mut conn, &id, agent, &hash, "bench").await?;
    Ok(key)
}

/// Runs `warm` (one second's worth of requests of the same kind, discarded: the pool's
/// connections and the statements on them are made there, as in any process that has been up
/// a while) and then `plan`, both open loop at `rate` from a separate process; the latter's pass.
async fn measured(warm: &[Planned], plan: &[Planned], rate: u64) -> eyre::Result<crate::Pass> {
    open_loop_process(warm, rate, 1).await?;
    Ok(open_loop_process(plan, rate, 1)
        .await?
        .pop()
        .unwrap_or_default())
}

/// Whether row `name` (`propose`, `usage`, `get`, `page`) is to run: all of them unless
/// `PACTUM_BENCH_ROWS` lists some (comma-separated).
fn wanted(name: &str) -> bool {
    std::env::var("PACTUM_BENCH_ROWS")
        .map(|rows| rows.split(',').any(|r| r.trim() == name))
        .unwrap_or(true)
}

/// Whether `PACTUM_BENCH_ROWS` narrows `bench-api` to some of these rows (the status rows are
/// then skipped).
pub fn narrowed() -> bool {
    std::env::var_os("PACTUM_BENCH_ROWS").is_some()
}

/// Runs the four rows (or those `PACTUM_BENCH_ROWS` names) against a fresh API over `db`
/// (indexed, with its cursor) for `deployment`'s chain.
pub async fn run(db: &Db, deployment: &pactum_devnet::Deployment) -> eyre::Result<Vec<Row>> {
    let d = deployment;
    let buyer = PrivateKeySigner::random();
    let seller_key_pair = PrivateKeySigner::random();
    let seller = seller_key_pair.address();
    let mut conn = db.pool().acquire().await?;
    identity::create_owner(&mut conn, "bench-owner", "bench", "bench@pactum.local").await?;
    drop(conn);
    let deployment = pactum_api::identity::Deployment {
        chain_id: d.chain_id,
        escrow: d.escrow,
    };
    for (agent, key) in [("lc-buyer", &buyer), ("lc-seller", &seller_key_pair)] {
        pactum_api::identity::register_with_key(db, deployment, "bench-owner", agent, agent, key)
            .await
            .map_err(|p| eyre::eyre!("registering {agent}: {p:?}"))?;
    }

    let (buyer_key, seller_key) = (
        key_for(db, "lc-buyer").await?,
        key_for(db, "lc-seller").await?,
    );

    let receipt_key = PrivateKeySigner::random();
    let contracts = pactum_core::escrow::events::Contracts {
        escrow: d.escrow,
        fee_collector: d.fee_collector,
    };
    let mut state = AppState::new(db.clone(), d.chain_id, None);
    state.receipts = Some(pactum_api::receipts::ReceiptSettings {
        signer: receipt_key.address(),
        retired: Vec::new(),
        contracts,
    });
    state.agreements = Some(AgreementSettings {
        escrow: d.escrow,
        fee_collector: d.fee_collector,
        token: d.token,
        decimals: 6,
        fees: FeeSchedule::LOCAL,
    });
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (_stop, stopped) = watch::channel(false);
    tokio::spawn(pactum_api::serve(listener, state, stopped));
    let auth = |key: &str| ("authorization".to_owned(), format!("Bearer {key}"));
    let mut rows = Vec::new();

    if wanted("propose") {
        // 1. Proposals at 500/s.
        let propose = ProposeAgreement {
            seller_agent_id: "lc-seller".into(),
            service_id: "svc_bench".into(),
            quantity: 1_000,
            unit: "api_calls".into(),
            price_per_unit_cents: 10,
            payment_method: PaymentMethod {
                rail: "stablecoin".into(),
                provider: "x402".into(),
            },
            settlement_model: "bilateral_escrow".into(),
            activation_version: "v2".into(),
            buyer_wallet_address: buyer.address().to_string(),
            close_window_seconds: None,
            expires_in_seconds: None,
            metadata: None,
        };
        let body = serde_json::to_string(&propose)?;
        let plan = |prefix: &str, count: u64| -> Vec<Planned> {
            (0..count)
                .map(|i| Planned {
                    method: "POST".into(),
                    url: format!("{base}/usage-agreements"),
                    headers: vec![
                        auth(&buyer_key),
                        ("idempotency-key".into(), format!("{prefix}-{i}")),
                    ],
                    body: Some(body.clone()),
                })
                .collect()
        };
        let pass = measured(&plan("w", 500), &plan("p", 500 * SECONDS), 500).await?;
        rows.push((
            "`POST /usage-agreements` at 500/s (goal p99 ≤ 15 ms)".to_owned(),
            pass.latencies_ms,
            answers(&pass.statuses),
        ));

        // 1b. The same with a policy holding every proposal rule (the open agreements, 5,500
        // and growing, counted on each): what policy evaluation costs.
        let policy = pactum_core::policy::Policy {
            max_per_agreement_cents: Some(1_000_000_000),
            max_price_per_unit_cents: Some(1_000),
            allowed_counterparties: Some(vec!["lc-seller".into()]),
            blocked_counterparties: Some(vec!["mallory".into()]),
            allowed_services: Some(vec!["svc_bench".into()]),
            blocked_services: Some(vec!["svc_other".into()]),
            allowed_units: Some(vec!["api_calls".into()]),
            allowed_rails: Some(vec!["stablecoin".into()]),
            max_open_agreements: Some(1_000_000),
            ..pactum_core::policy::Policy::default()
        };
        let mut conn = db.pool().acquire().await?;
        pactum_db::policies::replace(
            &mut conn,
            "lc-buyer",
            0,
            &serde_json::to_string(&policy)?,
            "owner:bench-owner",
        )
        .await?
        .ok_or_else(|| eyre::eyre!("the bench policy was not written"))?;
        drop(conn);
        let pass = measured(&plan("wq", 500), &plan("q", 500 * SECONDS), 500).await?;
        rows.push((
            "`POST /usage-agreements` with a policy of every proposal rule, at 500/s (goal: p99 at most 2 ms above the row before)"
                .to_owned(),
            pass.latencies_ms,
            answers(&pass.statuses),
        ));
    }
    // Escrows for the usage records: 1,000 accepted agreements whose escrow the index shows
    // active, written directly
    // (and 500 more for the warm-up second).
    let mut accepted = activate_directly(db, d, buyer.address(), seller, 1_500).await?;
    let warm_escrows = accepted.split_off(1_000);

    if wanted("usage") {
        // 2. Usage records with the buyer's ECDSA vouchers at 500/s: five rounds over the 1,000
        // agreements, each raising its usage by one unit.
        let domain = eip712::escrow_domain(d.chain_id, d.escrow);
        let record = |escrows: &[(String, B256)], rounds: u64, prefix: &str| {
            let mut plan = Vec::new();
            for units in 1..=rounds {
                for (n, (id, onchain)) in escrows.iter().enumerate() {
                    let amount = U256::from(units * 100_000);
                    let digest = Voucher {
                        agreementId: *onchain,
                        cumulativeAmount: amount,
                    }
                    .eip712_signing_hash(&domain);
                    let signature = buyer.sign_hash_sync(&digest)?;
                    let body = RecordUsage {
                        cumulative_quantity: units,
                        voucher_signature: alloy::primitives::Bytes::from(
                            signature.as_bytes().to_vec(),
                        )
                        .to_string(),
                    };
                    plan.push(Planned {
                        method: "POST".into(),
                        url: format!("{base}/usage-agreements/{id}/record-usage"),
                        headers: vec![
                            auth(&seller_key),
                            ("idempotency-key".into(), format!("{prefix}-{units}-{n}")),
                        ],
                        body: Some(serde_json::to_string(&body)?),
                    });
                }
            }
            eyre::Ok(plan)
        };
        let pass = measured(
            &record(&warm_escrows, 1, "w")?,
            &record(&accepted, 5, "u")?,
            500,
        )
        .await?;
        rows.push((
            "`POST .../record-usage`, ECDSA vouchers, at 500/s (goal p99 ≤ 15 ms)".to_owned(),
            pass.latencies_ms,
            answers(&pass.statuses),
        ));
    }
    if wanted("get") {
        // 3. One agreement (with its escrow and history) at 1,000/s.
        let plan = |count: usize| -> Vec<Planned> {
            (0..count)
                .map(|i| Planned {
                    method: "GET".into(),
                    url: format!("{base}/usage-agreements/{}", accepted[i % accepted.len()].0),
                    headers: vec![auth(&buyer_key)],
                    body: None,
                })
                .collect()
        };
        let pass = measured(&plan(1_000), &plan(1_000 * SECONDS as usize), 1_000).await?;
        rows.push((
        "`GET /usage-agreements/{id}` (escrow and history merged) at 1,000/s (goal p99 ≤ 10 ms)"
            .to_owned(),
        pass.latencies_ms,
        answers(&pass.statuses),
    ));
    }
    if wanted("verify") {
        // 5. A receipt's verification (signature recovered, its log read from the index and
        // compared) at 1,000/s, over the deposits of the 1,000 escrows above.
        let ids = receipts_directly(db, d, &receipt_key, buyer.address(), &accepted).await?;
        let plan = |count: usize| -> Vec<Planned> {
            (0..count)
                .map(|i| Planned {
                    method: "GET".into(),
                    url: format!("{base}/receipts/verify/{}", ids[i % ids.len()]),
                    headers: vec![auth(&buyer_key)],
                    body: None,
                })
                .collect()
        };
        let pass = measured(&plan(1_000), &plan(1_000 * SECONDS as usize), 1_000).await?;
        rows.push((
            "`GET /receipts/verify/{id}` at 1,000/s (goal p99 ≤ 10 ms)".to_owned(),
            pass.latencies_ms,
            answers(&pass.statuses),
        ));
    }
    if wanted("page") {
        // 4. Pages of 50 from an agent with 100,000 agreements, from cursors all over its history.
        let seqs = bulk_proposals(db, d.chain_id, buyer.address(), seller, 100_000).await?;
        let plan = |count: usize| -> Vec<Planned> {
            (0..count)
                .map(|i| {
                    // A spread of positions: the first page, then cursors deep into the history.
                    let cursor = if i % 10 == 0 {
                        String::new()
                    } else {
                        format!("&cursor=c{:x}", seqs[(i * 7_919) % seqs.len()])
                    };
                    Planned {
                        method: "GET".into(),
                        url: format!(
                            "{base}/usage-agreements/agents/lc-buyer/agreements?limit=50{cursor}"
                        ),
                        headers: vec![auth(&buyer_key)],
                        body: None,
                    }
                })
                .collect()
        };
        let pass = measured(&plan(200), &plan(200 * SECONDS as usize), 200).await?;
        rows.push((
            "a page of 50 from an agent with 100,000 agreements, at 200/s (goal p99 ≤ 20 ms)"
                .to_owned(),
            pass.latencies_ms,
            answers(&pass.statuses),
        ));
    }
    Ok(rows)
}

/// `count` accepted usage agreements whose escrows the index shows active; their API and
/// on-chain ids.
async fn activate_directly(
    db: &Db,
    d: &pactum_devnet::Deployment,
    buyer: Address,
    seller: Address,
    count: usize,
) -> eyre::Result<Vec<(String, B256)>> {
    let domain = eip712::escrow_domain(d.chain_id, d.escrow);
    let mut conn = db.pool().acquire().await?;
    let mut out = Vec::with_capacity(count);
    let mut records = Vec::with_capacity(count);
    for _ in 0..count {
        let id = format!("agr_{}", pactum_db::random_id(20));
        let terms = OnChainTerms {
            buyer,
            seller,
            token: d.token,
            max_amount: U256::from(100_000_000u64),
            infra_fee: U256::from(1_000_000u64),
            expiry: u64::MAX / 4,
            close_window: 3_600,
        };
        let agreement = terms.agreement(&id);
        let onchain = eip712::agreement_id(&agreement, &domain);
        sqlx::query(
            "INSERT INTO usage_agreements
               (id, chain_id, buyer_agent_id, seller_agent_id, buyer_wallet, seller_wallet,
                service_id, quantity, unit, price_per_unit_cents, rail, provider, settlement_model,
                activation_version, token, max_amount, infra_fee, expiry, close_window, status,
                onchain_id)
             VALUES ($1, $2, 'lc-buyer', 'lc-seller', $3, $4, 'svc_bench', 1000, 'api_calls', 10,
                     'stablecoin', 'x402', 'bilateral_escrow', 'v2', $5, 100000000, 1000000, $6,
                     3600, 'active', $7)",
        )
        .bind(&id)
        .bind(i64::try_from(d.chain_id)?)
        .bind(buyer.as_slice())
        .bind(seller.as_slice())
        .bind(d.token.as_slice())
        .bind(i64::try_from(agreement.expiry)?)
        .bind(onchain.as_slice())
        .execute(&mut *conn)
        .await?;
        let at = Transition {
            block: 1,
            tx: B256::repeat_byte(1),
        };
        records.push(AgreementRecord {
            agreement_id: onchain,
            buyer,
            seller,
            token: d.token,
            max_amount: agreement.maxAmount,
            infra_fee: agreement.infraFee,
            expiry: agreement.expiry,
            close_window: 3_600,
            salt: agreement.salt,
            status: AgreementStatus::Active,
            deposited: agreement.maxAmount,
            fee_collected: agreement.infraFee,
            settled_amount: U256::ZERO,
            seller_paid_amount: U256::ZERO,
            buyer_paid_amount: U256::ZERO,
            seller_paid: false,
            buyer_withdrawn: false,
            close_deadline: None,
            close_initiator: None,
            deferral_reason: None,
            activated: at,
            closed: None,
            claimed: None,
            seller_paid_at: None,
            withdrawn: None,
            settled: None,
            last_block: 1,
        });
        out.push((id, onchain));
    }
    pactum_db::index::upsert_agreements(&mut conn, d.chain_id, &records).await?;
    Ok(out)
}

/// A deposit receipt for each of `escrows` (their `AgreementActivated` logs written to the index
/// as the indexer would, in block 1, final), signed with `key`; their ids.
async fn receipts_directly(
    db: &Db,
    d: &pactum_devnet::Deployment,
    key: &PrivateKeySigner,
    buyer: Address,
    escrows: &[(String, B256)],
) -> eyre::Result<Vec<String>> {
    use alloy::sol_types::SolEvent;
    let mut conn = db.pool().acquire().await?;
    sqlx::query("UPDATE indexer_cursor SET finalized_block = greatest(finalized_block, 1)")
        .execute(&mut *conn)
        .await?;
    let block_hash = B256::repeat_byte(0xb1);
    let domain = eip712::receipts_domain(d.chain_id, d.escrow);
    let mut ids = Vec::with_capacity(escrows.len());
    for (i, (id, onchain)) in escrows.iter().enumerate() {
        let event = pactum_bindings::AgreementEscrow::AgreementActivated {
            agreementId: *onchain,
            buyer,
            seller: Address::repeat_byte(0x5e),
            token: d.token,
            amount: U256::from(100_000_000u64),
            infraFee: U256::from(1_000_000u64),
            expiry: u64::MAX / 4,
            closeWindow: 3_600,
            salt: B256::ZERO,
        };
        let log = event.encode_log_data();
        let topics: Vec<u8> = log.topics().iter().flat_map(|t| t.0).collect();
        let tx_hash = alloy::primitives::keccak256(id.as_bytes());
        sqlx::query(
            "INSERT INTO chain_events (chain_id, block_number, block_hash, log_index, tx_hash,
                                       contract, kind, agreement_id, topics, data)
             VALUES ($1, 1, $2, $3, $4, $5, 'AgreementActivated', $6, $7, $8)",
        )
        .bind(i64::try_from(d.chain_id)?)
        .bind(block_hash.as_slice())
        .bind(i32::try_from(i)?)
        .bind(tx_hash.as_slice())
        .bind(d.escrow.as_slice())
        .bind(onchain.as_slice())
        .bind(&topics)
        .bind(log.data.as_ref())
        .execute(&mut *conn)
        .await?;
        let mut r = pactum_db::receipts::StoredReceipt {
            id: pactum_core::receipt::receipt_id(d.chain_id, block_hash, i as u64),
            seq: 0,
            chain_id: d.chain_id,
            kind: pactum_core::receipt::ReceiptKind::Deposit,
            onchain_agreement_id: *onchain,
            agreement_id: Some(id.clone()),
            buyer_agent_id: Some("lc-buyer".into()),
            seller_agent_id: Some("lc-seller".into()),
            payer: buyer,
            payee: d.escrow,
            token: d.token,
            amount: U256::from(100_000_000u64),
            emitter: d.escrow,
            tx_hash,
            log_index: i as u64,
            block_number: 1,
            block_hash,
            block_time: 0,
            verifying_contract: d.escrow,
            signer: key.address(),
            signature: alloy::primitives::Bytes::new(),
            issued_at: String::new(),
        };
        let digest = pactum_receipts::document::message(&r).eip712_signing_hash(&domain);
        r.signature =
            alloy::primitives::Bytes::copy_from_slice(&key.sign_hash_sync(&digest)?.as_bytes());
        pactum_db::receipts::insert(&mut conn, &r).await?;
        ids.push(r.id);
    }
    Ok(ids)
}

/// `count` proposals of `buyer`'s agent, inserted in one statement; their creation sequence
/// numbers (the list's cursors).
async fn bulk_proposals(
    db: &Db,
    chain_id: u64,
    buyer: Address,
    seller: Address,
    count: i64,
) -> eyre::Result<Vec<i64>> {
    // Ids in the API's alphabet: the counter in hex, with 0, 1, 8, 9 mapped to letters.
    sqlx::query(
        "INSERT INTO usage_agreements
           (id, chain_id, buyer_agent_id, seller_agent_id, buyer_wallet, seller_wallet,
            service_id, quantity, unit, price_per_unit_cents, rail, provider, settlement_model,
            activation_version, token, max_amount, infra_fee, expiry, close_window, status)
         SELECT 'agr_' || lpad(translate(to_hex(i), '0189', 'wxyz'), 20, 'q'), $1,
                'lc-buyer', 'lc-seller', $2, $3, 'svc_bulk', 1000, 'api_calls', 10, 'stablecoin',
                'x402', 'bilateral_escrow', 'v2', $2, 10000000, 100000, 4102444800, 3600,
                'proposed'
           FROM generate_series(1, $4) AS i",
    )
    .bind(i64::try_from(chain_id)?)
    .bind(buyer.as_slice())
    .bind(seller.as_slice())
    .bind(count)
    .execute(db.pool())
    .await?;
    sqlx::query("ANALYZE usage_agreements")
        .execute(db.pool())
        .await?;
    Ok(
        sqlx::query_scalar("SELECT seq FROM usage_agreements WHERE buyer_agent_id = 'lc-buyer'")
            .fetch_all(db.pool())
            .await?,
    )
}

/// Prints the rows as a table.
pub fn print(rows: &mut [Row]) {
    println!(
        "\n| usage-agreement endpoints (open loop, separate load process) | p50 | p99 | max | answers |\n|---|---|---|---|---|"
    );
    for (label, samples, answers) in rows.iter_mut() {
        println!("{}", latency_row(label, samples, answers));
    }
}
