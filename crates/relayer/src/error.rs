//! Errors: a [`Refusal`] is the client's (a request the relayer will not sponsor, with a stable
//! code); an [`Error`] is the relayer's (database or node trouble; the request can be retried).

use std::fmt;

/// Why a request was refused. No transaction was sent and no gas spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Stable machine-readable code (e.g. `invalid_signature`).
    pub code: &'static str,
    /// HTTP status the API answers with.
    pub status: u16,
    /// Short summary of the code.
    pub title: &'static str,
    /// What exactly was wrong.
    pub detail: String,
    /// When the action becomes possible, if it is only a matter of time (unix seconds).
    pub earliest_at: Option<u64>,
}

impl Refusal {
    /// A refusal.
    pub fn new(
        status: u16,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            code,
            status,
            title,
            detail: detail.into(),
            earliest_at: None,
        }
    }

    /// 422: the request is well-formed but cannot be sponsored as it is.
    pub fn invalid(code: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self::new(422, code, title, detail)
    }

    /// 409: the agreement's state (or another job) is in the way.
    pub fn conflict(code: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self::new(409, code, title, detail)
    }

    /// With the time the action becomes possible.
    pub fn at(mut self, earliest_at: u64) -> Self {
        self.earliest_at = Some(earliest_at);
        self
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl std::error::Error for Refusal {}

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
