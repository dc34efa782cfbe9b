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

/// An agreement's on-chain lifecycle status (`IAgreementEscrow.Status`; the ABI carries it as a
/// `uint8`). Transitions only move forward: `None → Active → Closing → (SellerClaimed →) Settled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AgreementStatus {
    /// Never activated.
    None,
    /// Funded; usage vouchers accrue off-chain.
    Active,
    /// Close initiated; the seller may claim until the close deadline.
    Closing,
    /// The seller's entitlement is recorded; its payout (if deferred) or the buyer's remainder, or
    /// both, are still in escrow.
    SellerClaimed,
    /// Nothing of the agreement remains in escrow.
    Settled,
}

/// A status value the escrow never produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown agreement status {0}")]
pub struct UnknownStatus(pub u8);

impl TryFrom<u8> for AgreementStatus {
    type Error = UnknownStatus;

    fn try_from(raw: u8) -> Result<Self, UnknownStatus> {
        Ok(match raw {
            0 => Self::None,
            1 => Self::Active,
            2 => Self::Closing,
            3 => Self::SellerClaimed,
            4 => Self::Settled,
            other => return Err(UnknownStatus(other)),
        })
    }
}

impl TryFrom<contracts::agreement_escrow::IAgreementEscrow::Status> for AgreementStatus {
    type Error = UnknownStatus;

    fn try_from(
        raw: contracts::agreement_escrow::IAgreementEscrow::Status,
    ) -> Result<Self, UnknownStatus> {
        Self::try_from(raw.into_underlying())
    }
}

/// The name of an `IAgreementEscrow.DeferralReason` (events carry it as a `uint8`), as the
/// indexer stores it and the API shows it.
pub fn deferral_reason(reason: u8) -> &'static str {
    match reason {
        0 => "sanctioned",
        1 => "screening_unavailable",
        2 => "transfer_failed",
        _ => "unknown",
    }
}
