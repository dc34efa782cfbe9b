//! Alloy bindings for pactum's contracts, generated at build time from `contracts/`, and the
//! EIP-712 messages the parties sign, so that no other crate ever encodes a call or a signed
//! message by hand.
//!
//! - [`contracts`]: one module per deployable contract (`sol!` over the compiled artifact:
//!   calls, events, errors, `deploy`, bytecode).
//! - [`eip712`]: the signed message types, their domains, and the agreement id.
//! - [`sign`]: signing any of them with an alloy signer into the 65-byte form the contracts take.

/// Generated contract bindings (see `build.rs`).
#[allow(
    clippy::all,
    unreachable_pub,
    missing_debug_implementations,
    rust_2018_idioms
)]
pub mod contracts {
    include!(concat!(env!("OUT_DIR"), "/contracts.rs"));
}

pub mod eip712;
pub mod sign;

pub use contracts::{
    agreement_escrow::AgreementEscrow, infra_fee_collector::InfraFeeCollector,
    local_sanctions_oracle::LocalSanctionsOracle, local_usdc::LocalUSDC,
};

/// The terms of an agreement, exactly as the escrow hashes them into the agreement id.
pub type Agreement = contracts::agreement_escrow::IAgreementEscrow::Agreement;
/// The escrow's per-agreement stored state.
pub type AgreementState = contracts::agreement_escrow::IAgreementEscrow::AgreementState;
/// A buyer's EIP-3009 authorization as the escrow takes it.
pub type ReceiveAuthorization = AgreementEscrow::ReceiveAuthorization;
/// A buyer's EIP-2612 permit as the escrow takes it.
pub type PermitSignature = AgreementEscrow::PermitSignature;
