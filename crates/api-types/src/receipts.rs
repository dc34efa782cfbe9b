//! Receipts: the service's signed statements of money movements final on chain.

use pactum_core::receipt::ReceiptKind;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A receipt, signed: the document `pactum receipts verify` takes. Addresses and hashes are `0x`
/// hex; `amount` is token base units. `typed_data` is the EIP-712 message the service signed
/// (any EIP-712 library hashes it to `digest`); `signature` is the signer's over `digest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReceiptView {
    /// `rcp_…`: a hash of the log's place, so one log has one receipt.
    pub receipt_id: String,
    /// What moved.
    pub kind: ReceiptKind,
    /// The chain.
    pub chain_id: u64,
    /// The usage agreement's id, when the escrow is one of the API's.
    pub agreement_id: Option<String>,
    /// The escrow's agreement id.
    pub onchain_agreement_id: String,
    /// From.
    pub payer: String,
    /// To.
    pub payee: String,
    /// The token.
    pub token: String,
    /// How much (token base units).
    pub amount: String,
    /// The contract whose log states it (the escrow, or the fee collector for the fee).
    pub emitter: String,
    /// The transaction.
    pub tx_hash: String,
    /// The log's index in its block.
    pub log_index: u64,
    /// The block.
    pub block_number: u64,
    /// Its hash.
    pub block_hash: String,
    /// Its time (unix seconds).
    pub block_time: u64,
    /// The EIP-712 domain's verifying contract (the escrow of the deployment).
    pub verifying_contract: String,
    /// The address that signed it (check it against the one the operator publishes).
    pub signer: String,
    /// The 65-byte signature over `digest`.
    pub signature: String,
    /// The EIP-712 digest.
    pub digest: String,
    /// The signed message, as `eth_signTypedData_v4` typed data.
    #[schema(value_type = Object)]
    pub typed_data: serde_json::Value,
    /// When it was issued (RFC 3339, UTC).
    pub issued_at: String,
}

/// A page of receipts, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReceiptPage {
    /// This page.
    pub receipts: Vec<ReceiptView>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// `GET /receipts`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListReceipts {
    /// The agent whose agreements' receipts to list (the agent itself, or its owner).
    pub agent_id: String,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    #[schema(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    #[schema(pattern = "^c[1-9a-f][0-9a-f]{0,14}$")]
    #[param(pattern = "^c[1-9a-f][0-9a-f]{0,14}$")]
    pub cursor: Option<String>,
}

/// What `GET /receipts/verify/{receipt_id}` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReceiptVerification {
    /// The receipt.
    pub receipt_id: String,
    /// Whether it is the service's signature of a movement the index holds in a final block,
    /// exactly as the receipt states it.
    pub valid: bool,
    /// Why not (empty when valid).
    pub reasons: Vec<String>,
    /// The service's receipt signer now (retired ones are accepted too; see `GET
    /// /receipts/signer`).
    pub expected_signer: String,
    /// The address the signature recovers to.
    pub recovered_signer: Option<String>,
    /// The index's final block when checked.
    pub finalized_block: Option<u64>,
    /// The receipt as stored.
    pub receipt: ReceiptView,
}

/// The service's receipt signer and the domain its receipts are signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReceiptSigner {
    /// The address that signs receipts.
    pub address: String,
    /// Addresses of retired receipt keys, whose receipts still verify.
    pub retired: Vec<String>,
    /// The EIP-712 domain's name (`Pactum Receipts`).
    pub domain_name: String,
    /// Its version.
    pub domain_version: String,
    /// Its chain id.
    pub chain_id: u64,
    /// Its verifying contract (the escrow).
    pub verifying_contract: String,
}
