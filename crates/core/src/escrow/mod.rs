//! The escrow's rules, as pure functions of its terms, its state and the time.

pub mod authorization;
pub mod calls;
pub mod derive;
pub mod events;
pub mod options;
pub mod revert;
pub mod rules;
pub mod typed_data;

pub use authorization::Authorization;
pub use calls::DirectCall;
pub use derive::{AgreementRecord, DeriveError, Transition};
pub use events::{Contracts, PactumEvent};
pub use revert::explain_revert;
