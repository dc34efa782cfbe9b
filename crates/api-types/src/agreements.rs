//! Usage agreements: the proposal (`POST /usage-agreements`), the seller's answer
//! (`PUT .../accept`, `PUT .../reject`), one agreement (`GET /usage-agreements/{agreement_id}`)
//! and an agent's list (`GET /usage-agreements/agents/{agent_id}/agreements`).

use pactum_core::{
    ActivationStatus,
    agreement::{EventKind, LifecycleStatus, Role},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::EscrowStatus;

/// How the buyer pays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PaymentMethod {
    /// `stablecoin`.
    pub rail: String,
    /// `x402`.
    pub provider: String,
}

/// A buyer's proposal (its agent's API key). Quantities and prices are whole numbers; the
/// escrowed amount is `quantity × price_per_unit_cents` converted exactly into the token's base
/// units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProposeAgreement {
    /// The seller's agent.
    pub seller_agent_id: String,
    /// The service bought (1 to 128 letters, digits or `_ . : / -`).
    pub service_id: String,
    /// Units bought (positive).
    pub quantity: i64,
    /// What a unit is (1 to 64 letters, digits or `_ . : / -`).
    pub unit: String,
    /// Price of one unit, in cents (positive).
    pub price_per_unit_cents: i64,
    /// `{ "rail": "stablecoin", "provider": "x402" }`.
    pub payment_method: PaymentMethod,
    /// `bilateral_escrow`.
    pub settlement_model: String,
    /// `v2`.
    pub activation_version: String,
    /// The buyer agent's registered wallet.
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub buyer_wallet_address: String,
    /// Seconds the seller has to claim after a close (60 to 2,592,000; default 3,600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_window_seconds: Option<i64>,
    /// Seconds until the terms expire: the proposal must be accepted and activated before then
    /// (300 to 31,536,000; default 604,800, a week).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_seconds: Option<i64>,
    /// The buyer's own data, kept with the agreement (a JSON object, at most 4 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

/// The seller's rejection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RejectAgreement {
    /// Why (1 to 500 characters), shown to the buyer.
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// The escrow's `Agreement` struct, as the buyer's activation signs it. Amounts in token base
/// units (decimal strings), times in unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnChainTermsView {
    /// The buyer's wallet.
    pub buyer: String,
    /// The seller's wallet.
    pub seller: String,
    /// The token.
    pub token: String,
    /// Escrowed at activation; the most the seller can be paid.
    pub max_amount: String,
    /// Paid by the buyer to the fee collector at activation (`0`: waived).
    pub infra_fee: String,
    /// Unix seconds at and after which the agreement cannot be activated.
    pub expiry: u64,
    /// Seconds the seller has to claim after a close.
    pub close_window: u32,
    /// Fixed by the seller's acceptance (absent before): derived from the agreement's id.
    pub salt: Option<String>,
}

/// Usage recorded so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UsageView {
    /// Highest cumulative quantity recorded with the buyer's voucher.
    pub cumulative_quantity: u64,
    /// What it comes to, in token base units (the voucher's amount).
    pub cumulative_amount: String,
}

/// One event of an agreement's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgreementEventView {
    /// What happened.
    pub kind: EventKind,
    /// The agreement's status after it.
    pub status: LifecycleStatus,
    /// Who caused it: `agent:<id>`, `owner:<id>`, `chain` (the indexer) or `system`.
    pub actor: String,
    /// RFC 3339, UTC.
    pub at: String,
    /// The transaction, for on-chain events.
    pub tx_hash: Option<String>,
    /// Its block, for on-chain events.
    pub block_number: Option<u64>,
    /// Details (a reason, an expiry, a relay id).
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// A usage agreement: the off-chain record and, once activated, its escrow on chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UsageAgreementView {
    /// `agr_...`.
    pub agreement_id: String,
    /// Where it is in its lifecycle.
    pub status: LifecycleStatus,
    /// The activation's progress (absent until the buyer submits one).
    pub activation_status: Option<ActivationStatus>,
    /// The activation's transaction, once broadcast.
    pub activation_tx_hash: Option<String>,
    /// The relay job of the latest activation submitted through the API (follow it at
    /// `GET .../sponsored-actions/{relay_id}`).
    pub activation_relay_id: Option<String>,
    /// The caller's role(s) in it (an owner of both agents has both).
    pub your_roles: Vec<Role>,
    /// The buyer's agent.
    pub buyer_agent_id: String,
    /// The seller's agent.
    pub seller_agent_id: String,
    /// The service.
    pub service_id: String,
    /// Units bought.
    pub quantity: u64,
    /// What a unit is.
    pub unit: String,
    /// Price of one unit, in cents.
    pub price_per_unit_cents: u64,
    /// How the buyer pays.
    pub payment_method: PaymentMethod,
    /// `bilateral_escrow`.
    pub settlement_model: String,
    /// `v2`.
    pub activation_version: String,
    /// Chain id of the escrow.
    pub chain_id: u64,
    /// The escrow's id (absent until the seller accepts).
    pub onchain_agreement_id: Option<String>,
    /// The escrow's terms (the salt once accepted).
    pub terms: OnChainTermsView,
    /// Unix seconds: accept and activate before this.
    pub expires_at: u64,
    /// Why the seller rejected it.
    pub rejection_reason: Option<String>,
    /// Usage recorded so far.
    pub usage: UsageView,
    /// The buyer's metadata.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// The escrow as indexed (absent until the activation is indexed).
    pub escrow: Option<EscrowStatus>,
    /// Every transition, oldest first.
    pub history: Vec<AgreementEventView>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub updated_at: String,
}

/// A page of an agent's agreements, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgreementPage {
    /// This page (without histories or escrow state: fetch one agreement for those).
    pub agreements: Vec<UsageAgreementView>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// Filters and paging of `GET /usage-agreements/agents/{agent_id}/agreements`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListAgreements {
    /// Only agreements where the agent is the `buyer` or the `seller`.
    pub role: Option<Role>,
    /// Only agreements with this status.
    pub status: Option<LifecycleStatus>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    #[schema(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    #[schema(pattern = "^c[1-9a-f][0-9a-f]{0,14}$")]
    #[param(pattern = "^c[1-9a-f][0-9a-f]{0,14}$")]
    pub cursor: Option<String>,
}

/// One message to sign with `eth_signTypedData_v4`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TypedMessage {
    /// The EIP-712 typed data, as `eth_signTypedData_v4` takes it.
    #[schema(value_type = Object)]
    pub typed_data: serde_json::Value,
    /// The digest it hashes to (what an ERC-1271 wallet is asked about).
    pub digest: String,
}

/// The platform fee of an activation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InfraFeeBlock {
    /// `pending`: sign `authorization` and submit it with the deposit; `waived`: nothing to sign.
    pub status: String,
    /// In token base units.
    pub amount: String,
    /// The fee collector it is paid to.
    pub collector: String,
    /// The EIP-3009 authorization of the fee (absent when waived).
    pub authorization: Option<TypedMessage>,
}

/// `GET /usage-agreements/{agreement_id}/activation-package`: what the buyer signs to activate
/// the escrow, and how to submit it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ActivationPackage {
    /// `agr_...`.
    pub agreement_id: String,
    /// The escrow's id (the deposit authorization's nonce).
    pub onchain_agreement_id: String,
    /// The escrow's terms the activation creates.
    pub terms: OnChainTermsView,
    /// The escrow.
    pub escrow_address: String,
    /// Unix seconds: both authorizations are valid until then; submit `valid_before` as given.
    pub valid_before: u64,
    /// The EIP-3009 authorization of the deposit (`maxAmount` to the escrow).
    pub deposit: TypedMessage,
    /// The platform fee.
    pub infra_fee: InfraFeeBlock,
    /// The permit variant (absent when the server has no node to read the token's nonce from).
    pub permit: Option<PermitPackage>,
}

/// Validity of the package asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PackageParams {
    /// Seconds the authorizations stay valid (120 to 86,400; default 3,600; never past the
    /// terms' expiry).
    pub valid_for_seconds: Option<u64>,
}

/// `POST /usage-agreements/{agreement_id}/activate-escrow`: the buyer's signed package, either
/// the EIP-3009 authorizations (`valid_before`, `deposit_signature`, `fee_signature`) or the
/// permit variant (`permit`), not both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ActivateEscrow {
    /// EIP-3009: the package's `valid_before`, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_before: Option<u64>,
    /// EIP-3009: the buyer wallet's signature of the deposit authorization (65-byte ECDSA, or
    /// what its ERC-1271 wallet accepts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^0x([0-9a-fA-F]{2})+$")]
    pub deposit_signature: Option<String>,
    /// EIP-3009: its signature of the fee authorization: required when `infra_fee.status` is
    /// `pending`, refused when `waived`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^0x([0-9a-fA-F]{2})+$")]
    pub fee_signature: Option<String>,
    /// The permit variant's signatures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permit: Option<PermitSignatures>,
}

/// The permit variant of an activation: the buyer's `Activation` consent and its permits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PermitSignatures {
    /// The package's `permit.deadline`, as given.
    pub deadline: u64,
    /// The package's `permit.nonce` (the deposit permit's token nonce; the fee's is the next).
    #[schema(pattern = "^0x[0-9a-fA-F]{64}$")]
    pub nonce: String,
    /// The buyer wallet's signature of the `Activation`.
    #[schema(pattern = "^0x([0-9a-fA-F]{2})+$")]
    pub activation_signature: String,
    /// Its signature of the deposit permit.
    #[schema(pattern = "^0x([0-9a-fA-F]{2})+$")]
    pub deposit_signature: String,
    /// Its signature of the fee permit (required when the fee is pending, refused when waived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^0x([0-9a-fA-F]{2})+$")]
    pub fee_signature: Option<String>,
}

/// The permit variant of the package, for tokens or wallets that need it: the escrow's
/// `Activation` of the terms and EIP-2612 permits of the deposit and the fee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PermitPackage {
    /// Unix seconds: the activation and both permits are valid until then.
    pub deadline: u64,
    /// The deposit permit's token nonce (the buyer's next); the fee permit's is the one after.
    pub nonce: String,
    /// The escrow's `Activation(Agreement agreement, uint256 deadline)`.
    pub activation: TypedMessage,
    /// The permit of `maxAmount` to the escrow.
    pub deposit: TypedMessage,
    /// The permit of `infraFee` to the fee collector (absent when waived).
    pub fee: Option<TypedMessage>,
}

/// `GET /usage-agreements/{agreement_id}/usage-voucher`: the cumulative quantity asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VoucherParams {
    /// Cumulative units consumed (at most the agreed quantity).
    pub cumulative_quantity: u64,
}

/// The buyer's voucher for a cumulative quantity: the typed data it signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UsageVoucher {
    /// `agr_...`.
    pub agreement_id: String,
    /// The escrow's id (the voucher's `agreementId`).
    pub onchain_agreement_id: String,
    /// Cumulative units.
    pub cumulative_quantity: u64,
    /// What they come to, in token base units (the voucher's `cumulativeAmount`).
    pub cumulative_amount: String,
    /// The escrow's `Voucher`, to sign with `eth_signTypedData_v4`.
    pub voucher: TypedMessage,
}

/// `POST /usage-agreements/{agreement_id}/record-usage`: cumulative usage with the buyer's
/// voucher for the amount it comes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecordUsage {
    /// Cumulative units consumed so far (never less than recorded, at most the agreed quantity).
    pub cumulative_quantity: u64,
    /// The buyer wallet's signature of the `Voucher` for `cumulative_quantity × price`.
    #[schema(pattern = "^0x([0-9a-fA-F]{2})+$")]
    pub voucher_signature: String,
}
