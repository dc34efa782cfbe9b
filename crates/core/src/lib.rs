//! pactum's domain, without I/O.
//!
//! Everything here is a pure function of its arguments: no database, no node, no clock but the
//! one passed in. The services (`pactum-indexer`, `pactum-relayer`, `pactum-api`) read the world,
//! call these rules, and write down what they decided; the rules are unit-tested beside their
//! code.
//!
//! - [`status`]: every state and kind as an enum, with one spelling (the stored and API one).
//! - [`refusal`]: why an action is refused, as a [`RefusalCode`] (the HTTP mapping is the API's).
//! - [`ids`]: parsing the ids clients send.
//! - [`escrow`]: the escrow's rules: when each action is possible ([`escrow::rules`]), the
//!   calls of the direct and sponsored paths ([`escrow::calls`], [`escrow::Authorization`]),
//!   the typed data a party signs ([`escrow::typed_data`]), what a revert means
//!   ([`escrow::revert`]) and the state derived from the contract's events ([`escrow::derive`]).
//! - [`signature`]: ECDSA recovery exactly as the escrow does it.
//! - [`sponsor`]: the sponsor policy, its quotas, and the fee arithmetic of submissions.
//! - [`agreement`]: the usage agreement's lifecycle before and around the chain: its state
//!   machine, the validation of a proposal and the exact arithmetic of its terms.
//! - [`identity`]: owners' agents: ids, names and labels, and when a wallet's proof may be used.
//! - [`policy`]: owner policies: the rules, their validation and where each applies.
//! - [`approval`]: the owner's decisions on requests a policy sends for approval.
//! - [`receipt`]: receipts of money movements: which logs state one, ids, and how a receipt is
//!   compared with its log.
//! - [`webhook`]: webhook event types, destinations, Standard Webhooks signatures, the retry
//!   schedule.
//! - [`clock`]: the time, as a value that tests can set.

#[macro_use]
mod macros;

pub mod agreement;
pub mod approval;
pub mod clock;
pub mod escrow;
pub mod identity;
pub mod ids;
pub mod policy;
pub mod receipt;
pub mod refusal;
pub mod signature;
pub mod sponsor;
pub mod status;
pub mod tokens;
pub mod webhook;

pub use clock::{Clock, FixedClock, SystemClock};
pub use refusal::{Refusal, RefusalCode};
pub use status::{
    ActionKind, ActivationStatus, AgreementStatus, AttemptKind, AttemptOutcome, DeferralReason,
    EscrowPhase, JobFailure, JobState, RevertKind, SettlementAction, UnknownName,
};
pub use tokens::TrustedTokens;
