//! The sponsored-action relayer.
//!
//! A party signs an authorization (`InitiateClose`, `SellerClaim`, `BuyerWithdraw`, or its
//! activation package); the relayer checks it and submits the matching `...WithSig` call from one
//! of its own funded keys, paying the gas. It cannot change what the party signed: the escrow
//! verifies the signature on chain, and the relayer only ever calls the escrow and the fee
//! collector with calldata built from the signed message.
//!
//! - [`Relayer::accept`] ([`accept`]): checks a request without spending gas: the signature
//!   off-chain (ECDSA, or ERC-1271 through `eth_call`), the message against the agreement's
//!   on-chain state, the deadline, the sponsor policy ([`Policy`]), and a simulation of the call.
//!   An accepted request is a job in PostgreSQL; the same authorization is always the same job.
//! - [`Worker`] ([`worker`]): one per signer key, the only writer for that key. It reserves a
//!   nonce, signs and stores the transaction in one database transaction, then broadcasts it;
//!   it follows every open nonce to its receipt, re-broadcasts what a node forgot, replaces what
//!   is stuck with a higher fee, cancels what can no longer succeed, and fills nonce gaps.
//! - [`options`]: whether an action is possible now, on which path, and what to sign.
//!
//! See `docs/relayer.md` for the state machine and the failure analysis.

pub mod accept;
mod chain;
mod config;
mod error;
pub mod failpoint;
pub mod metrics;
pub mod options;
pub mod worker;

pub use accept::{Accepted, Relayer, wallet_signature_is_valid};
pub use config::{Policy, Settings};
pub use error::{AcceptError, Error};
pub use metrics::Metrics;
pub use options::ActionOptions;
pub use pactum_core::{
    Refusal, RefusalCode, SettlementAction,
    escrow::{Authorization, authorization::activation_terms, options::OptionsQuery, typed_data},
};
pub use worker::Worker;
