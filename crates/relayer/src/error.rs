//! Errors: a [`Refusal`] is the client's (a request the relayer will not sponsor, with a stable
//! [`pactum_core::RefusalCode`]); an [`Error`] is the relayer's (database or node trouble; the
//! request can be retried).

use std::fmt;

use pactum_core::Refusal;

/// The relayer's own failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] pactum_db::Error),
    /// The node failed or answered something unusable.
    #[error("node error during {during}: {detail}")]
    Node {
        /// What the relayer was doing.
        during: &'static str,
        /// The node's error.
        detail: String,
    },
    /// The node is on another chain than configured.
    #[error("node is on chain {actual}, configured for {expected}")]
    WrongChain {
        /// Configured.
        expected: u64,
        /// Reported by the node.
        actual: u64,
    },
    /// Signing a transaction failed.
    #[error("signing failed: {0}")]
    Sign(#[from] alloy::signers::Error),
}

impl Error {
    pub(crate) fn node(during: &'static str, err: impl fmt::Display) -> Self {
        Self::Node {
            during,
            detail: err.to_string(),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        Self::Db(pactum_db::Error::from(err))
    }
}

/// A request's outcome: refused (the client's problem) or failed (ours).
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// Not sponsored, no gas spent.
    #[error("refused: {0}")]
    Refused(Refusal),
    /// The relayer could not decide; retry.
    #[error(transparent)]
    Failed(Error),
}

impl From<Refusal> for AcceptError {
    fn from(r: Refusal) -> Self {
        Self::Refused(r)
    }
}

impl From<Error> for AcceptError {
    fn from(e: Error) -> Self {
        Self::Failed(e)
    }
}

impl From<pactum_db::Error> for AcceptError {
    fn from(e: pactum_db::Error) -> Self {
        Self::Failed(e.into())
    }
}

impl From<sqlx::Error> for AcceptError {
    fn from(e: sqlx::Error) -> Self {
        Self::Failed(e.into())
    }
}
