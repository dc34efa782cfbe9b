//! The usage-agreement service: proposals, the seller's answer, one agreement with its escrow
//! and history, an agent's list. The rules are the domain's (`pactum_core::agreement`); this
//! reads what they need, calls them, and writes what they decided in one transaction with its
//! history event.
//!
//! Visibility: the buyer's and the seller's agents and their owners see an agreement; anyone
//! else gets the same `404 agreement_not_found` as for an unknown id.

use alloy::primitives::{Address, B256};
use pactum_api_types::{
    ActivateEscrow, ActivationPackage, AgreementEventView, AgreementPage, EscrowPhase,
    InfraFeeBlock, ListAgreements, OnChainTermsView, PackageParams, PaymentMethod, PermitPackage,
    ProposeAgreement, RecordUsage, TypedMessage, UsageAgreementView, UsageView, UsageVoucher,
    VoucherParams,
};
use pactum_core::{
    AgreementStatus, Clock, SystemClock,
    agreement::{
        EventKind, LifecycleCode, LifecycleError, LifecycleStatus, Request, Role, activation,
        proposal::{self, Draft, Parties},
        repeats_answer,
        terms::{self, FeeSchedule, OnChainTerms},
        transition, usage,
    },
    escrow::typed_data,
    policy::{Policy, Terms as PolicyTerms, Verdict},
};
use pactum_db::{
    agreements::{self, Cause, Fixes, ListQuery, NewAgreement, UsageAgreement},
    identity,
    index::AgreementRecord,
};
use sqlx::Acquire;

use crate::{
    AppState,
    auth::Principal,
    problem::Problem,
    services::{self, Viewer},
};

/// What proposals are made in, fixed by the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgreementSettings {
    /// The escrow (its EIP-712 domain makes the on-chain id).
    pub escrow: Address,
    /// The fee collector (the platform fee's recipient).
    pub fee_collector: Address,
    /// The token agreements are paid in.
    pub token: Address,
    /// Its decimals (USDC: 6).
    pub decimals: u8,
    /// The platform fee.
    pub fees: FeeSchedule,
}

/// The longest rejection reason, in characters.
pub const MAX_REASON: usize = 500;

fn settings(state: &AppState) -> Result<AgreementSettings, Problem> {
    state.agreements.ok_or_else(|| {
        Problem::unavailable("this server does not take usage agreements (no token configured)")
    })
}

fn now() -> u64 {
    SystemClock.now_secs()
}

/// The caller's roles in `a`: its agent's, or as the owner of either agent.
fn roles(principal: &Principal, a: &UsageAgreement) -> Vec<Role> {
    let (buyer, seller) = match principal {
        Principal::Agent { agent_id, .. } => (
            *agent_id == a.buyer_agent_id,
            *agent_id == a.seller_agent_id,
        ),
        Principal::Owner { owner_id } => (
            *owner_id == a.buyer_owner_id,
            *owner_id == a.seller_owner_id,
        ),
    };
    [(buyer, Role::Buyer), (seller, Role::Seller)]
        .into_iter()
        .filter_map(|(is, role)| is.then_some(role))
        .collect()
}

fn not_found(id: &str) -> Problem {
    Problem::agreement_not_found(id)
}

/// `POST /usage-agreements`: the caller's agent proposes to buy from `body.seller_agent_id`.
pub(crate) async fn propose(
    state: &AppState,
    principal: &Principal,
    body: &ProposeAgreement,
    idempotency_key: Option<&str>,
) -> Result<UsageAgreementView, Problem> {
    let settings = settings(state)?;
    let Principal::Agent {
        agent_id: buyer_id,
        wallet: buyer_wallet,
        ..
    } = principal
    else {
        return Err(Problem::forbidden(
            "a proposal is made by the buyer's agent, with its API key",
        ));
    };
    let seller = identity::agent(state.db.pool(), &body.seller_agent_id).await?;
    let draft = Draft {
        seller_agent_id: &body.seller_agent_id,
        service_id: &body.service_id,
        quantity: body.quantity,
        unit: &body.unit,
        price_per_unit_cents: body.price_per_unit_cents,
        rail: &body.payment_method.rail,
        provider: &body.payment_method.provider,
        settlement_model: &body.settlement_model,
        activation_version: &body.activation_version,
        buyer_wallet_address: &body.buyer_wallet_address,
        close_window_seconds: body.close_window_seconds,
        expires_in_seconds: body.expires_in_seconds,
        metadata: body.metadata.as_ref(),
    };
    let parties = Parties {
        buyer: (buyer_id, *buyer_wallet),
        seller: seller.as_ref().map(|s| (s.id.as_str(), s.wallet)),
    };
    let p = proposal::validate(&draft, parties, settings.decimals, settings.fees)?;
    let id = format!("agr_{}", pactum_db::random_id(20));
    let metadata = p.metadata.to_string();
    let mut new = NewAgreement {
        id: &id,
        chain_id: state.chain_id,
        buyer_agent_id: buyer_id,
        seller_agent_id: &body.seller_agent_id,
        buyer_wallet: p.buyer_wallet,
        seller_wallet: p.seller_wallet,
        service_id: &p.service_id,
        quantity: p.quantity,
        unit: &p.unit,
        price_per_unit_cents: p.price_per_unit_cents,
        rail: p.rail.as_str(),
        provider: p.provider.as_str(),
        settlement_model: p.settlement_model.as_str(),
        activation_version: p.activation_version.as_str(),
        token: settings.token,
        max_amount: p.max_amount,
        infra_fee: p.infra_fee,
        expiry: now().saturating_add(p.expires_in),
        close_window: p.close_window,
        metadata: &metadata,
        status: LifecycleStatus::Proposed,
        proposal_key: None,
    };
    let actor = principal.scope();
    // Kept with the proposal: a retry whose first attempt committed but lost its answer (the
    // process died before the idempotency record was written) finds it.
    let proposal_key = idempotency_key.map(|key| format!("{actor} {key}"));
    new.proposal_key = proposal_key.as_deref();
    let mut tx = state
        .db
        .pool()
        .begin()
        .await
        .map_err(pactum_db::Error::from)?;
    if let Some(key) = &proposal_key
        && let Some(existing) = agreements::by_proposal_key(&mut tx, key).await?
    {
        let written = agreements::load(&mut tx, &existing)
            .await?
            .ok_or_else(|| not_found(&existing))?;
        let view = view_on(&mut tx, state, &written, vec![Role::Buyer]).await?;
        tx.commit().await.map_err(pactum_db::Error::from)?;
        tracing::info!(agreement = %existing, "proposal retried under its key: answered as made");
        return Ok(view);
    }
    // The buyer's owner's policy, on the transaction's connection.
    let terms = PolicyTerms {
        counterparty: &body.seller_agent_id,
        service: &p.service_id,
        unit: &p.unit,
        rail: p.rail.as_str(),
        quantity: p.quantity,
        price_per_unit_cents: p.price_per_unit_cents,
    };
    let policy = crate::policies::in_force(&mut tx, buyer_id).await?;
    let open = open_agreements(&mut tx, &policy, buyer_id).await?;
    let verdict = policy.check_proposal(&terms, open)?;
    if let Verdict::NeedsApproval { .. } = verdict {
        new.status = LifecycleStatus::PendingApproval;
    }
    agreements::insert(
        &mut tx,
        &new,
        Cause {
            actor: &actor,
            detail: "{}",
        },
    )
    .await?;
    if let Verdict::NeedsApproval {
        threshold_cents,
        total_cents,
    } = verdict
    {
        // The owner decides before the seller sees a decision to make; the request expires
        // with the terms.
        let request = crate::approvals::request(
            &mut tx,
            buyer_id,
            &id,
            threshold_cents,
            total_cents,
            new.expiry,
        )
        .await?;
        tracing::info!(agreement = %id, %request, total_cents, threshold_cents, "proposal waits for the owner's approval");
    }
    // Answered from the write transaction itself (a proposal has no escrow yet).
    let written = agreements::load(&mut tx, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let view = view_on(&mut tx, state, &written, vec![Role::Buyer]).await?;
    tx.commit().await.map_err(pactum_db::Error::from)?;
    tracing::info!(agreement = %id, buyer = %buyer_id, seller = %body.seller_agent_id, "usage agreement proposed");
    Ok(view)
}

/// Agent `agent_id`'s open agreements, counted only when `policy` limits them.
async fn open_agreements(
    conn: &mut sqlx::PgConnection,
    policy: &Policy,
    agent_id: &str,
) -> Result<u64, Problem> {
    Ok(match policy.max_open_agreements {
        Some(_) => agreements::open_count(conn, agent_id).await?,
        None => 0,
    })
}

/// The seller's answer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Answer<'a> {
    /// Accept the proposal.
    Accept,
    /// Reject it, with a reason.
    Reject(&'a str),
}

/// `PUT .../accept` and `PUT .../reject`: decided under the agreement's row lock, so of an
/// acceptance and a rejection racing exactly one wins and the other finds it answered (409).
pub(crate) async fn answer(
    state: &AppState,
    principal: &Principal,
    id: &str,
    answer: Answer<'_>,
) -> Result<UsageAgreementView, Problem> {
    let settings = settings(state)?;
    if let Answer::Reject(reason) = answer
        && (reason.trim().is_empty() || reason.chars().count() > MAX_REASON)
    {
        return Err(Problem::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "Invalid field",
            format!("reason must be 1 to {MAX_REASON} characters"),
        ));
    }
    let actor = principal.scope();
    let mut conn = state.db.acquire().await?;
    let mut tx = conn.begin().await.map_err(pactum_db::Error::from)?;
    let a = agreements::lock(&mut tx, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    let mine = roles(principal, &a);
    if mine.is_empty() {
        return Err(not_found(id));
    }
    let request = match answer {
        Answer::Accept => Request::Accept,
        Answer::Reject(_) => Request::Reject,
    };
    let caller = mine
        .contains(&request.party())
        .then_some(request.party())
        .or(mine.first().copied());
    let reason = match answer {
        Answer::Reject(reason) => Some(reason),
        Answer::Accept => None,
    };
    if caller == Some(request.party())
        && repeats_answer(a.status, request, a.rejection_reason.as_deref(), reason)
    {
        drop(tx);
        drop(conn);
        return view(state, principal, id)
            .await?
            .ok_or_else(|| not_found(id));
    }
    let to = transition(a.status, request, caller, now(), a.expiry, false)?;
    let cause = Cause {
        actor: &actor,
        detail: "{}",
    };
    match answer {
        Answer::Accept => {
            // The seller's wallet as registered now: the escrow pays it. Read on the locked
            // transaction's own connection (never hold one connection while taking another).
            let seller = identity::agent(&mut *tx, &a.seller_agent_id)
                .await?
                .ok_or_else(|| not_found(id))?;
            // The seller's owner's policy.
            let policy = crate::policies::in_force(&mut tx, &a.seller_agent_id).await?;
            let open = open_agreements(&mut tx, &policy, &a.seller_agent_id).await?;
            policy.check_acceptance(
                &PolicyTerms {
                    counterparty: &a.buyer_agent_id,
                    service: &a.service_id,
                    unit: &a.unit,
                    rail: &a.rail,
                    quantity: a.quantity,
                    price_per_unit_cents: a.price_per_unit_cents,
                },
                // The proposal being accepted does not count yet: a seller's open agreements
                // are those it accepted.
                open,
            )?;
            let terms = OnChainTerms {
                buyer: a.buyer_wallet,
                seller: seller.wallet,
                token: a.token,
                max_amount: a.max_amount,
                infra_fee: a.infra_fee,
                expiry: a.expiry,
                close_window: a.close_window,
            };
            let domain = pactum_bindings::eip712::escrow_domain(state.chain_id, settings.escrow);
            let onchain_id =
                pactum_bindings::eip712::agreement_id(&terms.agreement(&a.id), &domain);
            let detail =
                serde_json::json!({ "onchain_agreement_id": onchain_id.to_string() }).to_string();
            agreements::transition(
                &mut tx,
                id,
                to,
                EventKind::Accepted,
                Fixes {
                    onchain_id: Some(onchain_id),
                    seller_wallet: Some(seller.wallet),
                    ..Fixes::default()
                },
                Cause {
                    detail: &detail,
                    ..cause
                },
            )
            .await?;
        }
        Answer::Reject(reason) => {
            let detail = serde_json::json!({ "reason": reason }).to_string();
            agreements::transition(
                &mut tx,
                id,
                to,
                EventKind::Rejected,
                Fixes {
                    rejection_reason: Some(reason),
                    ..Fixes::default()
                },
                Cause {
                    detail: &detail,
                    ..cause
                },
            )
            .await?;
        }
    }
    tx.commit().await.map_err(pactum_db::Error::from)?;
    tracing::info!(agreement = %id, status = %to, by = %actor, "usage agreement answered");
    drop(conn);
    view(state, principal, id)
        .await?
        .ok_or_else(|| not_found(id))
}

/// `GET /usage-agreements/{agreement_id}`.
pub(crate) async fn get(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<UsageAgreementView, Problem> {
    view(state, principal, id)
        .await?
        .ok_or_else(|| not_found(id))
}

async fn view(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<Option<UsageAgreementView>, Problem> {
    // One connection and one snapshot: the record, its escrow and its history agree (the
    // indexer writes the escrow and the history in one transaction).
    let mut conn = state.db.acquire().await?;
    let mut tx = conn.begin().await.map_err(pactum_db::Error::from)?;
    pactum_db::index::read_only_snapshot(&mut tx).await?;
    let Some(a) = agreements::load(&mut tx, id).await? else {
        return Ok(None);
    };
    let mine = roles(principal, &a);
    if mine.is_empty() {
        return Ok(None);
    }
    let view = view_on(&mut tx, state, &a, mine).await?;
    tx.commit().await.map_err(pactum_db::Error::from)?;
    Ok(Some(view))
}

/// The view of `a` (for a caller with roles `mine`), its escrow and history read on `conn`.
async fn view_on(
    conn: &mut sqlx::PgConnection,
    state: &AppState,
    a: &UsageAgreement,
    mine: Vec<Role>,
) -> Result<UsageAgreementView, Problem> {
    view_with(conn, state, a, mine, None).await
}

/// [`view_on`], with the escrow's index row when the caller already read it on `conn` in the
/// same snapshot (`Some(row)`; `None` reads it here).
async fn view_with(
    conn: &mut sqlx::PgConnection,
    state: &AppState,
    a: &UsageAgreement,
    mine: Vec<Role>,
    indexed: Option<Option<AgreementRecord>>,
) -> Result<UsageAgreementView, Problem> {
    let escrow = match a.onchain_id {
        // Before the indexer has started, nothing on chain is known yet.
        Some(onchain) => match pactum_db::index::load_cursor(&mut *conn, state.chain_id).await? {
            Some(cursor) => {
                let parties = Viewer::parties(a.buyer_wallet, a.seller_wallet);
                match indexed {
                    Some(row) => {
                        services::escrow_status_with(
                            &mut *conn, state, &cursor, &parties, onchain, row,
                        )
                        .await?
                    }
                    None => {
                        services::escrow_status_on(&mut *conn, state, &cursor, &parties, onchain)
                            .await?
                    }
                }
            }
            None => None,
        },
        None => None,
    };
    let history = agreements::events(&mut *conn, &a.id).await?;
    let mut v = summary(a, mine, now());
    if let Some(e) = &escrow {
        v.activation_status = Some(e.activation_status);
        v.activation_tx_hash = e.activation_tx_hash.clone();
        // From its activation on, the chain decides.
        if e.status != EscrowPhase::PendingActivation {
            v.status = LifecycleStatus::on_chain(on_chain_status(e.status));
        }
    }
    v.escrow = escrow;
    v.history = history
        .into_iter()
        .map(|e| AgreementEventView {
            kind: e.kind,
            status: e.status,
            actor: e.actor,
            at: e.at,
            tx_hash: e.tx_hash.map(|h| h.to_string()),
            block_number: e.block_number,
            detail: serde_json::from_str(&e.detail).unwrap_or_default(),
        })
        .collect();
    Ok(v)
}

const fn on_chain_status(phase: EscrowPhase) -> AgreementStatus {
    match phase {
        EscrowPhase::PendingActivation => AgreementStatus::None,
        EscrowPhase::Active => AgreementStatus::Active,
        EscrowPhase::Closing => AgreementStatus::Closing,
        EscrowPhase::SellerClaimed => AgreementStatus::SellerClaimed,
        EscrowPhase::Settled => AgreementStatus::Settled,
    }
}

/// The record alone, as a list shows it (no history, no escrow).
fn summary(a: &UsageAgreement, your_roles: Vec<Role>, now: u64) -> UsageAgreementView {
    UsageAgreementView {
        agreement_id: a.id.clone(),
        status: a.status_at(now),
        activation_status: None,
        activation_tx_hash: None,
        activation_relay_id: a.activation_relay_id.clone(),
        your_roles,
        buyer_agent_id: a.buyer_agent_id.clone(),
        seller_agent_id: a.seller_agent_id.clone(),
        service_id: a.service_id.clone(),
        quantity: a.quantity,
        unit: a.unit.clone(),
        price_per_unit_cents: a.price_per_unit_cents,
        payment_method: PaymentMethod {
            rail: a.rail.clone(),
            provider: a.provider.clone(),
        },
        settlement_model: a.settlement_model.clone(),
        activation_version: a.activation_version.clone(),
        chain_id: a.chain_id,
        onchain_agreement_id: a.onchain_id.map(|id| id.to_string()),
        terms: OnChainTermsView {
            buyer: a.buyer_wallet.to_string(),
            seller: a.seller_wallet.to_string(),
            token: a.token.to_string(),
            max_amount: a.max_amount.to_string(),
            infra_fee: a.infra_fee.to_string(),
            expiry: a.expiry,
            close_window: a.close_window,
            salt: a
                .onchain_id
                .map(|_| pactum_core::agreement::terms::salt(&a.id).to_string()),
        },
        expires_at: a.expiry,
        rejection_reason: a.rejection_reason.clone(),
        usage: UsageView {
            cumulative_quantity: a.usage_quantity,
            cumulative_amount: a.voucher_amount.to_string(),
        },
        metadata: serde_json::from_str(&a.metadata).unwrap_or_default(),
        escrow: None,
        history: Vec::new(),
        created_at: a.created_at.clone(),
        updated_at: a.updated_at.clone(),
    }
}

/// `GET /usage-agreements/agents/{agent_id}/agreements`: the agent itself or its owner.
pub(crate) async fn list(
    state: &AppState,
    principal: &Principal,
    agent_id: &str,
    q: &ListAgreements,
) -> Result<AgreementPage, Problem> {
    let allowed = match principal {
        Principal::Agent { agent_id: me, .. } => me == agent_id,
        Principal::Owner { owner_id } => identity::agent(state.db.pool(), agent_id)
            .await?
            .is_some_and(|a| a.owner_id == *owner_id),
    };
    if !allowed {
        return Err(Problem::new(
            axum::http::StatusCode::NOT_FOUND,
            "agent_not_found",
            "Agent not found",
            format!("no agent {agent_id:?} is visible to these credentials"),
        ));
    }
    let (limit, before) = crate::paging::page(q.limit, q.cursor.as_deref())?;
    let now = now();
    let mut conn = state.db.acquire().await?;
    let rows = agreements::list(
        &mut conn,
        ListQuery {
            agent_id,
            as_buyer: q.role.map(|r| r == Role::Buyer),
            status: q.status,
            now,
            before,
            limit,
        },
    )
    .await?;
    let next_cursor = crate::paging::next_cursor(&rows, limit, |a| a.seq);
    Ok(AgreementPage {
        agreements: rows
            .iter()
            .map(|a| summary(a, roles(principal, a), now))
            .collect(),
        next_cursor,
    })
}

/// Whether `raw` has the shape of an agreement id of the API (`agr_` and 20 base-32 characters).
pub(crate) fn is_api_id(raw: &str) -> bool {
    raw.len() == 24
        && raw.starts_with("agr_")
        && raw[4..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

/// The escrow a path names: an on-chain id as it is, or the API id (`agr_...`) of an accepted
/// agreement the caller sees (`404 agreement_not_found` otherwise, as for an unknown id).
pub(crate) async fn escrow_id(
    state: &AppState,
    principal: &Principal,
    raw: &str,
) -> Result<B256, Problem> {
    if !is_api_id(raw) {
        return crate::input::parse_agreement_id(raw);
    }
    onchain_id_of(state, principal, raw)
        .await?
        .ok_or_else(|| not_found(raw))
}

/// The escrow id of `raw` when it is an API id of an accepted agreement the caller sees.
async fn onchain_id_of(
    state: &AppState,
    principal: &Principal,
    raw: &str,
) -> Result<Option<B256>, Problem> {
    let mut conn = state.db.acquire().await?;
    Ok(agreements::load(&mut conn, raw)
        .await?
        .filter(|a| !roles(principal, a).is_empty())
        .and_then(|a| a.onchain_id))
}

/// The escrow's `Agreement` of an accepted agreement.
fn escrow_terms(a: &UsageAgreement) -> pactum_bindings::Agreement {
    OnChainTerms {
        buyer: a.buyer_wallet,
        seller: a.seller_wallet,
        token: a.token,
        max_amount: a.max_amount,
        infra_fee: a.infra_fee,
        expiry: a.expiry,
        close_window: a.close_window,
    }
    .agreement(&a.id)
}

fn contracts(state: &AppState, settings: AgreementSettings) -> activation::Contracts {
    activation::Contracts {
        chain_id: state.chain_id,
        escrow: settings.escrow,
        fee_collector: settings.fee_collector,
    }
}

fn typed(
    domain: &alloy::sol_types::Eip712Domain,
    message: &pactum_bindings::eip712::ReceiveWithAuthorization,
) -> TypedMessage {
    let (typed_data, digest) = typed_data::receive_with_authorization(domain, message);
    TypedMessage {
        typed_data,
        digest: digest.to_string(),
    }
}

/// The agreement `id` for a buyer's activation step: visible, the caller the buyer, the status
/// one the step is allowed from (`in_flight`: an earlier activation is still with the relayer).
fn for_activation(
    principal: &Principal,
    a: &UsageAgreement,
    in_flight: bool,
) -> Result<B256, Problem> {
    let mine = roles(principal, a);
    if mine.is_empty() {
        return Err(not_found(&a.id));
    }
    let caller = mine
        .contains(&Role::Buyer)
        .then_some(Role::Buyer)
        .or(mine.first().copied());
    let now = now();
    transition(
        a.status_at(now),
        Request::SubmitActivation,
        caller,
        now,
        a.expiry,
        in_flight,
    )?;
    a.onchain_id
        .ok_or_else(|| Problem::internal_because("an accepted agreement has no on-chain id"))
}

/// `GET .../activation-package`: the EIP-3009 authorizations the buyer signs.
pub(crate) async fn activation_package(
    state: &AppState,
    principal: &Principal,
    id: &str,
    params: &PackageParams,
) -> Result<ActivationPackage, Problem> {
    let settings = settings(state)?;
    let mut conn = state.db.acquire().await?;
    let a = agreements::load(&mut conn, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    drop(conn);
    let onchain_id = for_activation(principal, &a, false)?;
    let valid_before = activation::valid_before(now(), params.valid_for_seconds, a.expiry)?;
    let terms = escrow_terms(&a);
    let m = activation::authorization_messages(
        &terms,
        onchain_id,
        contracts(state, settings),
        valid_before,
    );
    let view = summary(&a, Vec::new(), now());
    let permit = match &state.relayer {
        Some(relayer) => {
            let nonce = pactum_bindings::LocalUSDC::new(terms.token, relayer.provider())
                .nonces(terms.buyer)
                .call()
                .await
                .map_err(|e| {
                    tracing::warn!(%e, "reading the buyer's permit nonce");
                    Problem::unavailable("the node does not answer; retry shortly")
                })?;
            let p = activation::permit_messages(
                &terms,
                contracts(state, settings),
                valid_before,
                nonce,
            );
            let escrow_domain =
                pactum_bindings::eip712::escrow_domain(state.chain_id, settings.escrow);
            let (typed_data, digest) = typed_data::activation(&escrow_domain, &terms, valid_before);
            let permit_message = |message: &pactum_bindings::eip712::Permit| {
                let (typed_data, digest) = typed_data::permit(&p.token_domain, message);
                TypedMessage {
                    typed_data,
                    digest: digest.to_string(),
                }
            };
            Some(PermitPackage {
                deadline: valid_before,
                nonce: nonce.to_string(),
                activation: TypedMessage {
                    typed_data,
                    digest: digest.to_string(),
                },
                deposit: permit_message(&p.deposit),
                fee: p.fee.as_ref().map(permit_message),
            })
        }
        None => None,
    };
    Ok(ActivationPackage {
        permit,
        agreement_id: a.id.clone(),
        onchain_agreement_id: onchain_id.to_string(),
        terms: view.terms,
        escrow_address: settings.escrow.to_string(),
        valid_before,
        deposit: typed(&m.token_domain, &m.deposit),
        infra_fee: InfraFeeBlock {
            status: if m.fee.is_some() { "pending" } else { "waived" }.to_owned(),
            amount: terms.infraFee.to_string(),
            collector: settings.fee_collector.to_string(),
            authorization: m.fee.as_ref().map(|fee| typed(&m.token_domain, fee)),
        },
    })
}

/// `POST .../activate-escrow`: the buyer's signed package, checked here and handed to the
/// relayer. The agreement is claimed first (a short transaction under its row lock), so a second
/// submission meanwhile gets `409 activation_in_flight`; the relayer is asked without holding
/// that lock or its connection; its job is then linked and the agreement moves to `activating`.
/// A refusal releases the claim and changes nothing.
pub(crate) async fn activate_escrow(
    state: &AppState,
    principal: &Principal,
    id: &str,
    body: &ActivateEscrow,
) -> Result<UsageAgreementView, Problem> {
    let settings = settings(state)?;
    let relayer = crate::routes::settlement::relayer(state)?;
    let claim = pactum_db::random_id(16);
    let a = {
        let mut conn = state.db.acquire().await?;
        let mut tx = conn.begin().await.map_err(pactum_db::Error::from)?;
        let a = agreements::lock(&mut tx, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        let in_flight = match a.onchain_id {
            Some(onchain) => pactum_db::relay::latest_job(
                &mut tx,
                state.chain_id,
                onchain,
                pactum_core::ActionKind::Activate,
            )
            .await?
            .is_some_and(|job| job.state != pactum_core::JobState::Failed),
            None => false,
        };
        for_activation(principal, &a, in_flight)?;
        if !agreements::claim_activation(&mut tx, id, &claim).await? {
            return Err(LifecycleError::new(
                LifecycleCode::ActivationInFlight,
                "another activation of this agreement is being submitted; follow it with GET",
            )
            .into());
        }
        // The buyer's spending limits, counted under a lock on its agent: concurrent
        // activations are counted one at a time, so together they cannot pass a limit.
        let policy = crate::policies::in_force(&mut tx, &a.buyer_agent_id).await?;
        let cents = a.quantity.saturating_mul(a.price_per_unit_cents);
        if policy.daily_limit_cents.is_some() || policy.monthly_limit_cents.is_some() {
            pactum_db::policies::lock_agent(&mut tx, &a.buyer_agent_id).await?;
            let (today, month) = pactum_db::policies::spent(&mut tx, &a.buyer_agent_id, id).await?;
            policy.check_activation(cents, today, month)?;
        }
        pactum_db::policies::count(&mut tx, id, &a.buyer_agent_id, cents).await?;
        tx.commit().await.map_err(pactum_db::Error::from)?;
        a
    };
    let submitted = submit_activation(state, settings, relayer, principal, &a, body).await;
    let mut conn = state.db.acquire().await?;
    let relay_id = match submitted {
        Ok(relay_id) => relay_id,
        Err(problem) => {
            // Uncounted while the claim is still held (no other submission can count meanwhile).
            pactum_db::policies::uncount(&mut conn, id, &claim).await?;
            agreements::release_claim(&mut conn, id, &claim).await?;
            return Err(problem);
        }
    };
    let actor = principal.scope();
    let detail = serde_json::json!({ "relay_id": relay_id }).to_string();
    let mut tx = conn.begin().await.map_err(pactum_db::Error::from)?;
    let cause = Cause {
        actor: &actor,
        detail: &detail,
    };
    if !agreements::link_activation(&mut tx, id, &claim, &relay_id, cause).await? {
        return Err(LifecycleError::new(
            LifecycleCode::ActivationInFlight,
            "another submission took this agreement over; follow it with GET",
        )
        .into());
    }
    tx.commit().await.map_err(pactum_db::Error::from)?;
    drop(conn);
    tracing::info!(agreement = %id, %relay_id, "activation submitted");
    view(state, principal, id)
        .await?
        .ok_or_else(|| not_found(id))
}

/// The fee's signature as the fee requires: present when pending, absent when waived.
fn fee_signature(
    pending: bool,
    raw: Option<&str>,
    name: &str,
) -> Result<Option<alloy::primitives::Bytes>, Problem> {
    use LifecycleCode as C;
    match (pending, raw) {
        (true, None) => Err(LifecycleError::new(
            C::FeeAuthorizationRequired,
            format!("the platform fee is pending: sign its authorization and send it as {name}"),
        )
        .into()),
        (false, Some(_)) => Err(LifecycleError::new(
            C::UnexpectedFeeAuthorization,
            format!("the platform fee is waived: send no {name}"),
        )
        .into()),
        (true, Some(raw)) => Ok(Some(crate::input::parse_bytes(name, raw)?)),
        (false, None) => Ok(None),
    }
}

/// A signature the buyer's wallet must have made, over `digest`.
type Check = (&'static str, B256, alloy::primitives::Bytes);

/// Checks the signed package against the messages it must sign and hands it to the relayer;
/// returns the relay job's id.
async fn submit_activation(
    state: &AppState,
    settings: AgreementSettings,
    relayer: &pactum_relayer::Relayer,
    principal: &Principal,
    a: &UsageAgreement,
    body: &ActivateEscrow,
) -> Result<String, Problem> {
    use LifecycleCode as C;
    use alloy::{primitives::U256, sol_types::SolStruct};
    let onchain_id = a
        .onchain_id
        .ok_or_else(|| Problem::internal_because("an accepted agreement has no on-chain id"))?;
    let terms = escrow_terms(a);
    let contracts = contracts(state, settings);
    let (package, checks): (pactum_relayer::Authorization, Vec<Check>) = match (
        body.permit.as_ref(),
        body.valid_before,
        body.deposit_signature.as_deref(),
    ) {
        (None, Some(valid_before), Some(deposit)) => {
            activation::check_valid_before(now(), valid_before)?;
            let m = activation::authorization_messages(&terms, onchain_id, contracts, valid_before);
            let deposit = crate::input::parse_bytes("deposit_signature", deposit)?;
            let fee = fee_signature(
                m.fee.is_some(),
                body.fee_signature.as_deref(),
                "fee_signature",
            )?;
            let mut checks = vec![(
                "deposit",
                m.deposit.eip712_signing_hash(&m.token_domain),
                deposit.clone(),
            )];
            if let (Some(message), Some(signature)) = (&m.fee, &fee) {
                checks.push((
                    "fee",
                    message.eip712_signing_hash(&m.token_domain),
                    signature.clone(),
                ));
            }
            let authorization = |signature: Option<alloy::primitives::Bytes>| {
                pactum_bindings::ReceiveAuthorization {
                    validAfter: U256::ZERO,
                    validBefore: if signature.is_some() {
                        U256::from(valid_before)
                    } else {
                        U256::ZERO
                    },
                    signature: signature.unwrap_or_default(),
                }
            };
            let package = pactum_relayer::Authorization::ActivateWithAuthorization {
                deposit: authorization(Some(deposit)),
                fee: authorization(fee),
            };
            (package, checks)
        }
        (Some(p), None, None) if body.fee_signature.is_none() => {
            activation::check_valid_before(now(), p.deadline)?;
            let nonce: U256 = p.nonce.parse().map_err(|_| {
                crate::input::bad_request(
                    "invalid_parameter",
                    format!("permit.nonce {:?} is not a number", p.nonce),
                )
            })?;
            let m = activation::permit_messages(&terms, contracts, p.deadline, nonce);
            let consent =
                crate::input::parse_bytes("permit.activation_signature", &p.activation_signature)?;
            let deposit =
                crate::input::parse_bytes("permit.deposit_signature", &p.deposit_signature)?;
            let fee = fee_signature(
                m.fee.is_some(),
                p.fee_signature.as_deref(),
                "permit.fee_signature",
            )?;
            let escrow_domain =
                pactum_bindings::eip712::escrow_domain(state.chain_id, settings.escrow);
            let (_, consent_digest) = typed_data::activation(&escrow_domain, &terms, p.deadline);
            let mut checks = vec![
                ("activation", consent_digest, consent.clone()),
                (
                    "deposit permit",
                    m.deposit.eip712_signing_hash(&m.token_domain),
                    deposit.clone(),
                ),
            ];
            if let (Some(message), Some(signature)) = (&m.fee, &fee) {
                checks.push((
                    "fee permit",
                    message.eip712_signing_hash(&m.token_domain),
                    signature.clone(),
                ));
            }
            let permit =
                |signature: Option<alloy::primitives::Bytes>| pactum_bindings::PermitSignature {
                    deadline: if signature.is_some() {
                        U256::from(p.deadline)
                    } else {
                        U256::ZERO
                    },
                    signature: signature.unwrap_or_default(),
                };
            let package = pactum_relayer::Authorization::ActivateWithPermit {
                deadline: p.deadline,
                signature: consent,
                deposit: permit(Some(deposit)),
                fee: permit(fee),
            };
            (package, checks)
        }
        _ => {
            return Err(LifecycleError::new(
                C::InvalidField,
                "send either valid_before, deposit_signature (and fee_signature) for the \
                     EIP-3009 package, or permit for the permit variant",
            )
            .into());
        }
    };
    for (what, digest, signature) in &checks {
        let valid = relayer
            .signature_is_valid(terms.buyer, *digest, signature)
            .await
            .map_err(crate::routes::settlement::node_problem)?;
        if !valid {
            return Err(LifecycleError::new(
                C::InvalidSignature,
                format!(
                    "the {what} signature is not the buyer wallet {}'s over digest {digest}",
                    terms.buyer
                ),
            )
            .into());
        }
    }
    let scope = principal.scope();
    let requester = pactum_core::sponsor::Requester {
        principal: &scope,
        owner: Some(principal.owner_id()),
    };
    match relayer.accept(&terms, package, requester).await {
        Ok(accepted) => Ok(accepted.job.id),
        Err(pactum_relayer::AcceptError::Refused(refusal)) => Err(refusal.into()),
        Err(pactum_relayer::AcceptError::Failed(err)) => {
            Err(crate::routes::settlement::node_problem(err))
        }
    }
}

/// A visible, accepted agreement and the caller's roles in it.
async fn visible_accepted(
    conn: &mut sqlx::PgConnection,
    principal: &Principal,
    id: &str,
) -> Result<(UsageAgreement, B256), Problem> {
    let a = agreements::load(conn, id)
        .await?
        .filter(|a| !roles(principal, a).is_empty())
        .ok_or_else(|| not_found(id))?;
    let onchain = a.onchain_id.ok_or_else(|| {
        LifecycleError::new(
            LifecycleCode::InvalidTransition,
            format!(
                "the agreement is {}: usage is recorded once it is active",
                a.status
            ),
        )
    })?;
    Ok((a, onchain))
}

/// `GET .../usage-voucher?cumulative_quantity=N`: the `Voucher` the buyer signs for `N` units.
pub(crate) async fn usage_voucher(
    state: &AppState,
    principal: &Principal,
    id: &str,
    params: &VoucherParams,
) -> Result<UsageVoucher, Problem> {
    let settings = settings(state)?;
    let mut conn = state.db.acquire().await?;
    let (a, onchain) = visible_accepted(&mut conn, principal, id).await?;
    drop(conn);
    let amount = terms::usage_amount(
        params.cumulative_quantity,
        a.quantity,
        a.price_per_unit_cents,
        settings.decimals,
    )?;
    let domain = pactum_bindings::eip712::escrow_domain(state.chain_id, settings.escrow);
    let (typed_data, digest) = typed_data::voucher(&domain, onchain, amount);
    Ok(UsageVoucher {
        agreement_id: a.id,
        onchain_agreement_id: onchain.to_string(),
        cumulative_quantity: params.cumulative_quantity,
        cumulative_amount: amount.to_string(),
        voucher: TypedMessage {
            typed_data,
            digest: digest.to_string(),
        },
    })
}

/// `POST .../record-usage`: either party records cumulative usage with the buyer's voucher for
/// the amount it comes to. The escrow as indexed must still be claimable (active, or closing with
/// the window open) and the voucher the buyer wallet's (ECDSA, recovered locally; for a contract
/// wallet its ERC-1271 approval). Usage only grows: the write is conditional on the recorded
/// usage being below the new one when it runs, so of concurrent records the lower loses (as if
/// it came second), and an equal record is answered as it is. No row lock is held meanwhile.
pub(crate) async fn record_usage(
    state: &AppState,
    principal: &Principal,
    id: &str,
    body: &RecordUsage,
) -> Result<UsageAgreementView, Problem> {
    let settings = settings(state)?;
    let signature = crate::input::parse_bytes("voucher_signature", &body.voucher_signature)?;
    let mut conn = state.db.acquire().await?;
    let (a, onchain) = visible_accepted(&mut conn, principal, id).await?;
    let amount = terms::usage_amount(
        body.cumulative_quantity,
        a.quantity,
        a.price_per_unit_cents,
        settings.decimals,
    )?;
    let step = usage::step(a.usage_quantity, body.cumulative_quantity, a.quantity)?;
    let indexed = pactum_db::index::load_agreements(&mut conn, state.chain_id, &[onchain])
        .await?
        .pop();
    usage::claimable(
        indexed.as_ref().map(|r| r.status),
        indexed.as_ref().and_then(|r| r.close_deadline),
        now(),
    )?;
    let domain = pactum_bindings::eip712::escrow_domain(state.chain_id, settings.escrow);
    let (_, digest) = typed_data::voucher(&domain, onchain, amount);
    let valid = pactum_core::signature::recover(digest, &signature) == Some(a.buyer_wallet)
        || match &state.relayer {
            // Not the wallet's own ECDSA signature: a contract wallet may approve it.
            Some(relayer) => relayer
                .signature_is_valid(a.buyer_wallet, digest, &signature)
                .await
                .map_err(crate::routes::settlement::node_problem)?,
            None => false,
        };
    if !valid {
        return Err(LifecycleError::new(
            LifecycleCode::InvalidVoucher,
            format!(
                "the voucher is not the buyer wallet {}'s signature of {amount} (digest {digest})",
                a.buyer_wallet
            ),
        )
        .into());
    }
    // Answered with the record as written (patched here rather than read again), the escrow
    // row read above, and the history.
    let mut written = a;
    if step == usage::Step::Grows {
        let actor = principal.scope();
        let detail = serde_json::json!({
            "cumulative_quantity": body.cumulative_quantity,
            "cumulative_amount": amount.to_string(),
        })
        .to_string();
        let cause = Cause {
            actor: &actor,
            detail: &detail,
        };
        match agreements::record_usage(
            &mut conn,
            id,
            body.cumulative_quantity,
            amount,
            &signature,
            cause,
        )
        .await?
        {
            Some((status, updated_at)) => {
                written.status = status;
                written.updated_at = updated_at;
                written.usage_quantity = body.cumulative_quantity;
                written.voucher_amount = amount;
                written.voucher_signature = Some(signature);
            }
            // A concurrent record reached this usage first: judged against it, as if this one
            // had come second (an equal one is answered as it is, a lower one refused).
            None => {
                written = agreements::load(&mut conn, id)
                    .await?
                    .ok_or_else(|| not_found(id))?;
                usage::step(
                    written.usage_quantity,
                    body.cumulative_quantity,
                    written.quantity,
                )?;
            }
        }
    }
    let mine = roles(principal, &written);
    view_with(&mut conn, state, &written, mine, Some(indexed)).await
}

/// The highest recorded voucher of the usage agreement whose escrow is `onchain_id`, if any:
/// `(cumulative amount, signature)`.
pub(crate) async fn recorded_voucher(
    state: &AppState,
    onchain_id: B256,
) -> Result<Option<(alloy::primitives::U256, alloy::primitives::Bytes)>, Problem> {
    let mut conn = state.db.acquire().await?;
    Ok(
        agreements::by_onchain_id(&mut conn, state.chain_id, onchain_id)
            .await?
            .and_then(|a| a.voucher_signature.map(|s| (a.voucher_amount, s))),
    )
}

/// How often [`sweep_expired`] looks for expired terms.
pub const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Records the expiry of proposals and accepted agreements whose terms expired (each with its
/// `expired` event), every [`SWEEP_INTERVAL`], until `shutdown` turns true. Views show the
/// expiry at once; this writes it down for the history. Safe to run in several processes: each
/// row is taken by one (`SKIP LOCKED`). A database error is logged and retried next time.
pub async fn sweep_expired(db: pactum_db::Db, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    loop {
        match db.pool().acquire().await {
            Ok(mut conn) => match agreements::expire_due(&mut conn, now(), 500).await {
                Ok(expired) if !expired.is_empty() => {
                    tracing::info!(count = expired.len(), ids = ?expired, "usage agreements expired");
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(%err, "expiry sweep failed; retrying"),
            },
            Err(err) => tracing::warn!(%err, "expiry sweep: no connection; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_ids_are_told_from_onchain_ids() {
        assert!(is_api_id("agr_abcdefghijklmnop2345"));
        assert!(!is_api_id("agr_abcdefghijklmnop234"));
        assert!(!is_api_id("agr_ABCDEFGHIJKLMNOP2345"));
        assert!(!is_api_id("agr_abcdefghijklmnop2341"));
        assert!(!is_api_id(&format!("0x{}", "ab".repeat(32))));
    }
}
