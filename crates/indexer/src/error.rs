use alloy::{
    primitives::B256,
    transports::{RpcError, TransportErrorKind},
};

use pactum_core::escrow::{DeriveError, events::DecodeError};

/// Why the indexer stopped. Transient node failures never surface here: they are retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The node answered a request with an error it will keep giving.
    #[error("node refused {0}: {1}")]
    Rpc(String, #[source] RpcError<TransportErrorKind>),
    /// The node returned something inconsistent (a log without its block, a missing block).
    #[error("node returned inconsistent data: {0}")]
    Node(String),
    /// The node serves another chain than the configured one.
    #[error("node is on chain {actual}, configuration says {configured}")]
    WrongChain {
        /// Configured chain id.
        configured: u64,
        /// The node's chain id.
        actual: u64,
    },
    /// A log did not decode as an event of the indexed contracts.
    #[error("cannot decode event: {0}")]
    Decode(String),
    /// The stored events are not a history the contracts could produce.
    #[error(transparent)]
    Derive(#[from] DeriveError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] pactum_db::Error),
    /// A reorg reaches below what the indexer may roll back (the reorg window or the finalized
    /// block). Nothing was written.
    #[error(
        "reorg deeper than the rollback window: no stored block between {lowest} and {indexed} is on the node's chain (window {window} blocks, finalized {finalized}); nothing was rolled back"
    )]
    ReorgTooDeep {
        /// The last indexed block.
        indexed: u64,
        /// The lowest block checked.
        lowest: u64,
        /// The configured window.
        window: u64,
        /// The finalized block.
        finalized: u64,
    },
    /// The node's head is below the indexed block while the blocks it has still match: the node is
    /// behind (or was reset), not reorganised. Nothing was written.
    #[error(
        "node head {head} is below the indexed block {indexed} without a hash mismatch (block {head} is {hash} on both): the node went backwards; nothing was rolled back"
    )]
    NodeWentBackwards {
        /// The node's head.
        head: u64,
        /// The last indexed block.
        indexed: u64,
        /// The matching hash at the node's head.
        hash: B256,
    },
    /// Configuration is invalid.
    #[error("invalid indexer configuration: {0}")]
    Config(String),
}

impl Error {
    /// Whether the indexer should wait and try again rather than stop: the database is
    /// unreachable for now (see [`pactum_db::Error::is_transient`]). Everything else that
    /// reaches the run loop is permanent (the node's transient failures are retried below it).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Db(err) if err.is_transient())
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Self::Decode(e.0)
    }
}
