//! `GET /usage-agreements/{agreement_id}/escrow-status`: an agreement's on-chain escrow, from
//! indexed state, or, before its activation is indexed, the relayer's progress with it.

use alloy::primitives::B256;
use axum::{
    Json,
    extract::{Path, State},
};
use pactum_core::{ActivationStatus, DeferralReason, EscrowPhase};
use pactum_db::{
    chain::{self, AgreementRecord, Cursor, Transition},
    relay::{self, ActionKind, Job, JobState},
};
use serde::Serialize;
use sqlx::Acquire;
use utoipa::ToSchema;

use crate::{AppState, auth::Principal, problem::Problem, routes::settlement::FailureView};

/// Where one transition happened.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct TransitionView {
    /// Transaction hash.
    pub tx_hash: String,
    /// Block number.
    pub block_number: u64,
    /// Blocks on top of it, counting its own, as far as indexed.
    pub confirmations: u64,
    /// Whether the block is at or below the final block.
    pub finalized: bool,
}

/// Every transition of the agreement that happened so far.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct Transitions {
    /// Funded (absent while the activation is still with the relayer).
    pub activation: Option<TransitionView>,
    /// Close window started.
    pub close: Option<TransitionView>,
    /// The seller's entitlement recorded.
    pub seller_claim: Option<TransitionView>,
    /// The seller paid.
    pub seller_payout: Option<TransitionView>,
    /// The buyer paid its remainder.
    pub buyer_withdrawal: Option<TransitionView>,
    /// Nothing left in escrow.
    pub settlement: Option<TransitionView>,
}

/// The indexer's position when this answer was read.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct IndexedHead {
    /// Last block fully indexed.
    pub block_number: u64,
    /// The node's head when that block was indexed.
    pub node_head: u64,
    /// Highest block known final.
    pub finalized_block: u64,
}

/// An agreement's escrow, as indexed from the chain. Amounts are token base units, as decimal
/// strings (they are uint256 on chain).
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct EscrowStatus {
    /// The on-chain agreement id.
    pub agreement_id: String,
    /// Chain id.
    pub chain_id: u64,
    /// The escrow contract.
    pub escrow_address: String,
    /// `pending_activation` (the relayer holds the buyer's activation package; nothing is on
    /// chain yet), then `active`, `closing`, `seller_claimed` or `settled`.
    pub status: EscrowPhase,
    /// `pending` (accepted by the relayer), `submitting` (its transaction signed and stored,
    /// not yet broadcast), `submitted` (broadcast or mined, not yet final in the index),
    /// `confirmed` (final), `cancelling` (it can no longer succeed and is being replaced by a
    /// no-op; see `activation_error`), or `failed` (see `activation_error`; nothing moved).
    pub activation_status: ActivationStatus,
    /// The activation transaction: once broadcast, the latest one sent; once mined, the mined one.
    pub activation_tx_hash: Option<String>,
    /// The relayer job submitting the activation, when it went through the relayer
    /// (`GET .../sponsored-actions/{relay_id}` lists every attempt).
    pub activation_relay_id: Option<String>,
    /// Why a relayed activation failed.
    pub activation_error: Option<FailureView>,
    /// Buyer.
    pub buyer: String,
    /// Seller.
    pub seller: String,
    /// Token.
    pub token: String,
    /// Escrowed at activation (the agreement's maximum).
    pub max_amount: String,
    /// Infra fee of the terms.
    pub infra_fee: String,
    /// Infra fee collected.
    pub fee_collected: String,
    /// Amount deposited.
    pub deposited: String,
    /// The seller's recorded entitlement (its claimed voucher).
    pub settled_amount: String,
    /// Paid to the seller side.
    pub seller_paid_amount: String,
    /// Paid to the buyer side.
    pub buyer_paid_amount: String,
    /// Still held in escrow for this agreement.
    pub held_in_escrow: String,
    /// The seller's entitlement was paid.
    pub seller_paid: bool,
    /// The buyer's remainder was paid (or was zero).
    pub buyer_withdrawn: bool,
    /// Why the seller's payout is deferred, while it is.
    pub payout_deferral_reason: Option<DeferralReason>,
    /// Unix time after which the terms can no longer be activated.
    pub expiry: u64,
    /// Seconds the seller has to claim after a close.
    pub close_window: u64,
    /// Unix time the close window ends, once started.
    pub close_deadline: Option<u64>,
    /// Who started the close.
    pub close_initiator: Option<String>,
    /// Where each transition happened.
    pub transitions: Transitions,
    /// The indexer's position.
    pub indexed: IndexedHead,
}

fn view(t: Transition, cursor: &Cursor) -> TransitionView {
    let indexed = u64::try_from(cursor.block_number).unwrap_or(0);
    TransitionView {
        tx_hash: t.tx.to_string(),
        block_number: t.block,
        confirmations: (indexed + 1).saturating_sub(t.block),
        finalized: t.block <= cursor.finalized_block,
    }
}

fn indexed_head(cursor: &Cursor) -> IndexedHead {
    IndexedHead {
        block_number: u64::try_from(cursor.block_number).unwrap_or(0),
        node_head: cursor.node_head,
        finalized_block: cursor.finalized_block,
    }
}

fn status_of(
    a: &AgreementRecord,
    cursor: &Cursor,
    chain_id: u64,
    relay_id: Option<String>,
) -> EscrowStatus {
    let v = |t: Option<Transition>| t.map(|t| view(t, cursor));
    let held = a.deposited - a.seller_paid_amount - a.buyer_paid_amount;
    let activation = view(a.activated, cursor);
    EscrowStatus {
        agreement_id: a.agreement_id.to_string(),
        chain_id,
        escrow_address: cursor.escrow.to_string(),
        status: EscrowPhase::indexed(a.status),
        activation_status: ActivationStatus::indexed(activation.finalized),
        activation_tx_hash: Some(a.activated.tx.to_string()),
        activation_relay_id: relay_id,
        activation_error: None,
        buyer: a.buyer.to_string(),
        seller: a.seller.to_string(),
        token: a.token.to_string(),
        max_amount: a.max_amount.to_string(),
        infra_fee: a.infra_fee.to_string(),
        fee_collected: a.fee_collected.to_string(),
        deposited: a.deposited.to_string(),
        settled_amount: a.settled_amount.to_string(),
        seller_paid_amount: a.seller_paid_amount.to_string(),
        buyer_paid_amount: a.buyer_paid_amount.to_string(),
        held_in_escrow: held.to_string(),
        seller_paid: a.seller_paid,
        buyer_withdrawn: a.buyer_withdrawn,
        payout_deferral_reason: a.deferral_reason,
        expiry: a.expiry,
        close_window: a.close_window,
        close_deadline: a.close_deadline,
        close_initiator: a.close_initiator.map(|x| x.to_string()),
        transitions: Transitions {
            activation: Some(activation),
            close: v(a.closed),
            seller_claim: v(a.claimed),
            seller_payout: v(a.seller_paid_at),
            buyer_withdrawal: v(a.withdrawn),
            settlement: v(a.settled),
        },
        indexed: indexed_head(cursor),
    }
}

/// An activation the relayer holds for an agreement that is not (yet) indexed: its terms from
/// the job's calldata, nothing deposited.
fn pending_activation(
    job: &Job,
    broadcast: Option<B256>,
    cursor: &Cursor,
    chain_id: u64,
) -> Option<EscrowStatus> {
    let terms = pactum_relayer::activation_terms(&job.calldata)?;
    let tx = job
        .tx_hash
        .or(broadcast)
        .filter(|_| job.state != JobState::Failed);
    Some(EscrowStatus {
        agreement_id: job.agreement_id.to_string(),
        chain_id,
        escrow_address: cursor.escrow.to_string(),
        status: EscrowPhase::PendingActivation,
        activation_status: ActivationStatus::relayed(job.state),
        activation_tx_hash: tx.map(|t| t.to_string()),
        activation_relay_id: Some(job.id.clone()),
        activation_error: FailureView::of(job),
        buyer: terms.buyer.to_string(),
        seller: terms.seller.to_string(),
        token: terms.token.to_string(),
        max_amount: terms.maxAmount.to_string(),
        infra_fee: terms.infraFee.to_string(),
        fee_collected: "0".to_owned(),
        deposited: "0".to_owned(),
        settled_amount: "0".to_owned(),
        seller_paid_amount: "0".to_owned(),
        buyer_paid_amount: "0".to_owned(),
        held_in_escrow: "0".to_owned(),
        seller_paid: false,
        buyer_withdrawn: false,
        payout_deferral_reason: None,
        expiry: terms.expiry,
        close_window: terms.closeWindow.into(),
        close_deadline: None,
        close_initiator: None,
        transitions: Transitions {
            activation: None,
            close: None,
            seller_claim: None,
            seller_payout: None,
            buyer_withdrawal: None,
            settlement: None,
        },
        indexed: indexed_head(cursor),
    })
}

/// Parses `0x` + 64 hex digits.
pub fn parse_agreement_id(raw: &str) -> Result<B256, Problem> {
    let hex = raw.strip_prefix("0x").or_else(|| raw.strip_prefix("0X"));
    match hex {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            raw.parse().map_err(|_| Problem::invalid_agreement_id(raw))
        }
        _ => Err(Problem::invalid_agreement_id(raw)),
    }
}

/// The escrow status of an agreement.
///
/// Agents see agreements whose buyer or seller is their wallet; owners see their agents'.
/// An activation handed to the relayer shows as `pending_activation` with its
/// `activation_status` until the index has the agreement. Unknown ids and ids of agreements
/// the caller may not see are both `404 agreement_not_found`.
#[utoipa::path(
    get,
    path = "/usage-agreements/{agreement_id}/escrow-status",
    params(("agreement_id" = String, Path, description = "On-chain agreement id (0x + 64 hex digits)")),
    responses(
        (status = 200, description = "Indexed escrow state, or the relayer's progress with its activation", body = EscrowStatus),
        (status = 400, description = "Malformed id (`invalid_agreement_id`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid credentials (`unauthenticated`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or not visible (`agreement_not_found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("owner_jwt" = [])),
    tag = "usage-agreements"
)]
pub async fn escrow_status(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
) -> Result<Json<EscrowStatus>, Problem> {
    let id = parse_agreement_id(&raw)?;
    // Whom the caller may see is settled before the agreement is looked up, so that an existing
    // and a missing id cost the same.
    let wallets = principal.visible_wallets(state.db.pool()).await?;
    let mut conn = state
        .db
        .pool()
        .acquire()
        .await
        .map_err(pactum_db::Error::from)?;
    // One snapshot for the checkpoint and the agreement: a rollback committed in between cannot
    // show a transition above the indexed block.
    let mut tx = conn.begin().await.map_err(pactum_db::Error::from)?;
    chain::read_only_snapshot(&mut tx).await?;
    let cursor = chain::load_cursor(&mut tx, state.chain_id)
        .await?
        .ok_or_else(|| Problem::unavailable("the indexer has not started on this chain"))?;
    let agreement = chain::load_agreements(&mut tx, state.chain_id, &[id])
        .await?
        .pop();
    // An activation submitted through the relayer: its job, and what it last broadcast.
    let job = relay::latest_job(&mut tx, state.chain_id, id, ActionKind::Activate)
        .await?
        .filter(|j| wallets.contains(&j.buyer) || wallets.contains(&j.seller));
    let broadcast = match &job {
        Some(j) if agreement.is_none() => relay::latest_broadcast(&mut tx, &j.id).await?,
        _ => None,
    };
    tx.commit().await.map_err(pactum_db::Error::from)?;
    let visible = |a: &AgreementRecord| wallets.contains(&a.buyer) || wallets.contains(&a.seller);
    match (agreement, job) {
        (Some(a), job) if visible(&a) => {
            // The relay id only when the relayer's job is the one that activated it.
            let relay_id = job
                .filter(|j| j.tx_hash == Some(a.activated.tx))
                .map(|j| j.id);
            Ok(Json(status_of(&a, &cursor, state.chain_id, relay_id)))
        }
        (None, Some(job)) => pending_activation(&job, broadcast, &cursor, state.chain_id)
            .map(Json)
            .ok_or_else(|| Problem::agreement_not_found(&raw)),
        _ => Err(Problem::agreement_not_found(&raw)),
    }
}
