//! An agreement's on-chain escrow (`GET /usage-agreements/{agreement_id}/escrow-status`).

use pactum_core::{ActivationStatus, DeferralReason, EscrowPhase};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::FailureView;

/// Where one transition happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
    /// Whether the operator vouches for the token (`chain.tokens`). `false`: the escrow may
    /// hold something worthless, whatever its amounts say, and the relayer does not sponsor it.
    pub token_trusted: bool,
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
