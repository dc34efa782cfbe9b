//! What a revert of the escrow means, as a [`Refusal`]: the escrow's custom errors decoded and
//! mapped to the refusal code a client can act on.

use alloy::sol_types::SolInterface;
use pactum_bindings::AgreementEscrow::AgreementEscrowErrors;

use crate::{AgreementStatus, Refusal, RefusalCode};

/// The refusal a call reverting with `data` amounts to. Data that is not one of the escrow's
/// errors (the token or the oracle refused, or the call ran out of gas) is `simulation_failed`
/// with the raw data in the detail.
pub fn explain_revert(data: &[u8]) -> Refusal {
    use AgreementEscrowErrors as E;
    use RefusalCode as C;
    let Ok(error) = AgreementEscrowErrors::abi_decode(data) else {
        return Refusal::new(
            C::SimulationFailed,
            format!(
                "the call reverts with data 0x{} (not an escrow error: the token or the oracle refused)",
                alloy::hex::encode(data)
            ),
        );
    };
    let status =
        |raw: u8| AgreementStatus::try_from(raw).map_or_else(|e| e.to_string(), |s| s.to_string());
    match error {
        E::UnexpectedStatus(e) => Refusal::new(
            C::WrongState,
            format!(
                "the agreement is {} on chain, the action needs {}",
                status(e.actual),
                status(e.expected)
            ),
        ),
        E::SanctionedAddress(e) => Refusal::new(
            C::Sanctioned,
            format!("{} is on the sanctions list", e.account),
        ),
        E::NotParty(e) => Refusal::new(C::NotAParty, format!("{} is not {}", e.caller, e.expected)),
        E::NotBuyerOrSeller(e) => Refusal::new(
            C::NotAParty,
            format!("{} is neither the buyer nor the seller", e.account),
        ),
        E::AuthorizationExpired(e) => Refusal::new(
            C::AuthorizationExpired,
            format!(
                "deadline {} is before block time {}",
                e.deadline, e.timestamp
            ),
        ),
        E::InvalidSignature(e) => Refusal::new(
            C::InvalidSignature,
            format!("the signature does not verify for {}", e.signer),
        ),
        E::InvalidVoucher(e) => Refusal::new(
            C::InvalidVoucher,
            format!("the buyer's voucher for {} does not verify", e.amount),
        ),
        E::InvalidVoucherAmount(e) => Refusal::new(
            C::InvalidAmount,
            format!(
                "voucher amount {} is zero or above the maximum {}",
                e.amount, e.maxAmount
            ),
        ),
        E::CloseWindowElapsed(e) => Refusal::new(
            C::CloseWindowElapsed,
            format!("the close window ended at {}", e.closeDeadline),
        ),
        E::CloseWindowOpen(e) => Refusal::new(
            C::CloseWindowOpen,
            format!("the buyer can withdraw from {}", e.closeDeadline),
        )
        .at(u64::try_from(e.closeDeadline).unwrap_or(u64::MAX)),
        E::ClaimAmountMismatch(e) => Refusal::new(
            C::ClaimAmountMismatch,
            format!(
                "the recorded entitlement is {}, not {}",
                e.recorded, e.given
            ),
        ),
        E::SellerAlreadyPaid(_) => {
            Refusal::new(C::ActionAlreadyTaken, "the seller was already paid")
        }
        E::BuyerAlreadyWithdrawn(_) => Refusal::new(
            C::ActionAlreadyTaken,
            "the buyer already withdrew its remainder",
        ),
        E::InvalidRecipient(e) => Refusal::new(
            C::InvalidRecipient,
            format!("{} cannot receive the payout", e.recipient),
        ),
        E::AgreementExpired(e) => Refusal::new(
            C::AgreementExpired,
            format!("the terms expired at {}", e.expiry),
        ),
        other => Refusal::new(
            C::SimulationFailed,
            format!("the escrow refuses the call: {other:?}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use alloy::{
        primitives::{Address, B256, U256},
        sol_types::SolError,
    };
    use pactum_bindings::AgreementEscrow as Escrow;

    use super::*;

    fn explain(error: impl SolError) -> Refusal {
        explain_revert(&error.abi_encode())
    }

    #[test]
    fn the_escrow_errors_map_to_their_codes() {
        let id = B256::repeat_byte(7);
        let who = Address::repeat_byte(1);
        let n = U256::from(5);
        let cases: Vec<(Refusal, RefusalCode)> = vec![
            (
                explain(Escrow::SanctionedAddress { account: who }),
                RefusalCode::Sanctioned,
            ),
            (
                explain(Escrow::NotParty {
                    caller: who,
                    expected: Address::ZERO,
                }),
                RefusalCode::NotAParty,
            ),
            (
                explain(Escrow::NotBuyerOrSeller { account: who }),
                RefusalCode::NotAParty,
            ),
            (
                explain(Escrow::AuthorizationExpired {
                    deadline: n,
                    timestamp: n,
                }),
                RefusalCode::AuthorizationExpired,
            ),
            (
                explain(Escrow::InvalidSignature { signer: who }),
                RefusalCode::InvalidSignature,
            ),
            (
                explain(Escrow::InvalidVoucher {
                    agreementId: id,
                    amount: n,
                }),
                RefusalCode::InvalidVoucher,
            ),
            (
                explain(Escrow::InvalidVoucherAmount {
                    amount: n,
                    maxAmount: n,
                }),
                RefusalCode::InvalidAmount,
            ),
            (
                explain(Escrow::CloseWindowElapsed {
                    agreementId: id,
                    closeDeadline: n,
                    timestamp: n,
                }),
                RefusalCode::CloseWindowElapsed,
            ),
            (
                explain(Escrow::ClaimAmountMismatch {
                    agreementId: id,
                    recorded: n,
                    given: U256::from(6),
                }),
                RefusalCode::ClaimAmountMismatch,
            ),
            (
                explain(Escrow::SellerAlreadyPaid { agreementId: id }),
                RefusalCode::ActionAlreadyTaken,
            ),
            (
                explain(Escrow::BuyerAlreadyWithdrawn { agreementId: id }),
                RefusalCode::ActionAlreadyTaken,
            ),
            (
                explain(Escrow::InvalidRecipient { recipient: who }),
                RefusalCode::InvalidRecipient,
            ),
            (
                explain(Escrow::AgreementExpired {
                    expiry: n,
                    timestamp: n,
                }),
                RefusalCode::AgreementExpired,
            ),
            (
                explain(Escrow::PayoutGasTooLow { agreementId: id }),
                RefusalCode::SimulationFailed,
            ),
        ];
        for (refusal, code) in cases {
            assert_eq!(refusal.code, code, "{refusal}");
            assert_eq!(refusal.earliest_at, None, "{refusal}");
        }
    }

    #[test]
    fn an_open_close_window_says_when_it_ends() {
        let r = explain(Escrow::CloseWindowOpen {
            agreementId: B256::ZERO,
            closeDeadline: U256::from(1_700_000_000u64),
            timestamp: U256::from(1_699_999_000u64),
        });
        assert_eq!(r.code, RefusalCode::CloseWindowOpen);
        assert_eq!(r.earliest_at, Some(1_700_000_000));
    }

    #[test]
    fn a_wrong_state_names_both_states() {
        let r = explain(Escrow::UnexpectedStatus {
            agreementId: B256::ZERO,
            expected: AgreementStatus::Active as u8,
            actual: AgreementStatus::Settled as u8,
        });
        assert_eq!(r.code, RefusalCode::WrongState);
        assert_eq!(
            r.detail,
            "the agreement is settled on chain, the action needs active"
        );
    }

    #[test]
    fn foreign_revert_data_is_a_failed_simulation_with_the_data() {
        let r = explain_revert(&[0x08, 0xc3, 0x79, 0xa0]);
        assert_eq!(r.code, RefusalCode::SimulationFailed);
        assert!(r.detail.contains("0x08c379a0"), "{}", r.detail);
        assert_eq!(explain_revert(&[]).code, RefusalCode::SimulationFailed);
    }
}
