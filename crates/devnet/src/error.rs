use std::path::PathBuf;

use alloy::{
    primitives::TxHash,
    providers::PendingTransactionError,
    transports::{RpcError, TransportErrorKind},
};

/// Errors from setting up or driving a local chain.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The anvil binary is not where the project's setup installs it.
    #[error("anvil not found at {0}; run script/setup.sh (or set PACTUM_ANVIL to an anvil binary)")]
    AnvilNotFound(PathBuf),
    /// Anvil failed to start.
    #[error("anvil failed to start: {0}")]
    AnvilSpawn(#[from] alloy::node_bindings::NodeError),
    /// A JSON-RPC request failed.
    #[error("rpc request failed: {0}")]
    Rpc(#[from] RpcError<TransportErrorKind>),
    /// A contract call or transaction failed (including reverts, decoded where possible).
    #[error("contract call failed: {0}")]
    Contract(#[from] alloy::contract::Error),
    /// Waiting for a transaction failed.
    #[error("transaction did not complete: {0}")]
    Pending(#[from] PendingTransactionError),
    /// A transaction was mined but reverted.
    #[error("transaction {0} reverted")]
    Reverted(TxHash),
    /// A deployment receipt carried no contract address.
    #[error("deployment of {0} produced no contract address")]
    NoContractAddress(&'static str),
    /// Signing a message failed.
    #[error(transparent)]
    Signing(#[from] pactum_bindings::sign::Error),
    /// The seller's claim was recorded but its payout deferred (sanctions, oracle, token).
    #[error("seller payout for agreement {agreement_id} deferred in {tx}: {reason}")]
    PayoutDeferred {
        /// The agreement.
        agreement_id: alloy::primitives::B256,
        /// The claim transaction.
        tx: TxHash,
        /// The escrow's `DeferralReason`.
        reason: pactum_core::DeferralReason,
    },
    /// A voucher did not verify off-chain.
    #[error("voucher for {amount} does not carry the buyer's signature")]
    BadVoucher {
        /// The voucher's cumulative amount.
        amount: alloy::primitives::U256,
    },
    /// The chain returned no latest block.
    #[error("the node returned no latest block")]
    NoLatestBlock,
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
