//! An agreement's state as a pure function of its events, applied in chain order.
//!
//! The rules mirror `AgreementEscrow` exactly (docs/design.md, "State machine"): the derived
//! status, amounts and flags equal the contract's own `agreementState` after the same events.
//! The indexer applies events incrementally; after a reorg it recomputes the affected agreements
//! from their remaining events with the same function, and `verify` recomputes everything.

use std::collections::BTreeMap;

use alloy::primitives::{Address, B256, U256};
use pactum_bindings::{
    AgreementEscrow::AgreementEscrowEvents, InfraFeeCollector::InfraFeeCollectorEvents,
};

use crate::{AgreementStatus, DeferralReason, escrow::events::PactumEvent};

/// Where a transition happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// Block number.
    pub block: u64,
    /// Transaction hash.
    pub tx: B256,
}

/// The state of one agreement derived from its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgreementRecord {
    /// The agreement id.
    pub agreement_id: B256,
    /// Terms: buyer.
    pub buyer: Address,
    /// Terms: seller.
    pub seller: Address,
    /// Terms: token.
    pub token: Address,
    /// Terms: maximum amount (escrowed at activation).
    pub max_amount: U256,
    /// Terms: infra fee.
    pub infra_fee: U256,
    /// Terms: expiry (unix seconds).
    pub expiry: u64,
    /// Terms: close window (seconds).
    pub close_window: u64,
    /// Terms: salt.
    pub salt: B256,
    /// Status (never `none`: an agreement has a record from its activation on).
    pub status: AgreementStatus,
    /// Amount moved into escrow at activation.
    pub deposited: U256,
    /// Infra fee collected for this agreement.
    pub fee_collected: U256,
    /// The seller's recorded entitlement.
    pub settled_amount: U256,
    /// Paid out to the seller side.
    pub seller_paid_amount: U256,
    /// Paid out to the buyer side.
    pub buyer_paid_amount: U256,
    /// The seller's entitlement has been paid.
    pub seller_paid: bool,
    /// The buyer's remainder has been paid (or was zero).
    pub buyer_withdrawn: bool,
    /// End of the close window, once a close was initiated.
    pub close_deadline: Option<u64>,
    /// Who initiated the close.
    pub close_initiator: Option<Address>,
    /// Why the seller's payout is deferred, while it is.
    pub deferral_reason: Option<DeferralReason>,
    /// Activation.
    pub activated: Transition,
    /// Close initiated.
    pub closed: Option<Transition>,
    /// Seller's entitlement recorded.
    pub claimed: Option<Transition>,
    /// Seller paid.
    pub seller_paid_at: Option<Transition>,
    /// Buyer paid its remainder.
    pub withdrawn: Option<Transition>,
    /// Everything paid out.
    pub settled: Option<Transition>,
    /// The block of the last event applied.
    pub last_block: u64,
}

/// An event that cannot follow the agreement's current state: the stored events are not a
/// history the contract could have produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("agreement {agreement_id}: {event} does not apply in state {state}")]
pub struct DeriveError {
    /// The agreement.
    pub agreement_id: B256,
    /// The event's name.
    pub event: &'static str,
    /// The state it met (`none` before activation).
    pub state: AgreementStatus,
}

/// Applies one event to an agreement's state (`None` before activation). Events without an
/// agreement leave it unchanged.
pub fn apply(
    state: Option<AgreementRecord>,
    event: &PactumEvent,
    at: Transition,
) -> Result<Option<AgreementRecord>, DeriveError> {
    use AgreementEscrowEvents as E;
    use AgreementStatus as S;
    let Some(agreement_id) = event.agreement_id() else {
        return Ok(state);
    };
    let fail = |state: Option<&AgreementRecord>| DeriveError {
        agreement_id,
        event: event.kind(),
        state: state.map_or(S::None, |s| s.status),
    };

    if let PactumEvent::Escrow(E::AgreementActivated(e)) = event {
        if state.is_some() {
            return Err(fail(state.as_ref()));
        }
        return Ok(Some(AgreementRecord {
            agreement_id,
            buyer: e.buyer,
            seller: e.seller,
            token: e.token,
            max_amount: e.amount,
            infra_fee: e.infraFee,
            expiry: e.expiry,
            close_window: u64::from(e.closeWindow),
            salt: e.salt,
            status: S::Active,
            deposited: e.amount,
            fee_collected: U256::ZERO,
            settled_amount: U256::ZERO,
            seller_paid_amount: U256::ZERO,
            buyer_paid_amount: U256::ZERO,
            seller_paid: false,
            buyer_withdrawn: false,
            close_deadline: None,
            close_initiator: None,
            deferral_reason: None,
            activated: at,
            closed: None,
            claimed: None,
            seller_paid_at: None,
            withdrawn: None,
            settled: None,
            last_block: at.block,
        }));
    }

    let Some(mut s) = state else {
        return Err(fail(None));
    };
    let ok = match event {
        PactumEvent::FeeCollector(InfraFeeCollectorEvents::InfraFeeCollected(e)) => {
            // Only the fee of the activation's own transaction belongs to the agreement.
            let first = s.fee_collected.is_zero() && s.activated.tx == at.tx;
            if first {
                s.fee_collected = e.amount;
            }
            first
        }
        PactumEvent::Escrow(E::CloseInitiated(e)) if s.status == S::Active => {
            s.status = S::Closing;
            s.close_deadline = Some(u64::try_from(e.closeDeadline).unwrap_or(u64::MAX));
            s.close_initiator = Some(e.initiator);
            s.closed = Some(at);
            true
        }
        PactumEvent::Escrow(E::SellerClaimed(e)) if s.status == S::Closing => {
            s.status = S::SellerClaimed;
            s.settled_amount = e.amount;
            s.buyer_withdrawn = e.buyerRemainder.is_zero();
            s.claimed = Some(at);
            true
        }
        PactumEvent::Escrow(E::SellerPaid(e)) if s.status == S::SellerClaimed && !s.seller_paid => {
            s.seller_paid = true;
            s.seller_paid_amount = e.amount;
            s.deferral_reason = None;
            s.seller_paid_at = Some(at);
            if s.buyer_withdrawn {
                settle(&mut s, at);
            }
            true
        }
        PactumEvent::Escrow(E::SellerPayoutDeferred(e))
            if s.status == S::SellerClaimed && !s.seller_paid =>
        {
            s.deferral_reason = Some(DeferralReason::from(e.reason));
            true
        }
        PactumEvent::Escrow(E::BuyerWithdrew(e)) => match s.status {
            S::Closing => {
                s.buyer_withdrawn = true;
                s.buyer_paid_amount = e.amount;
                s.withdrawn = Some(at);
                settle(&mut s, at);
                true
            }
            S::SellerClaimed if !s.buyer_withdrawn => {
                s.buyer_withdrawn = true;
                s.buyer_paid_amount = e.amount;
                s.withdrawn = Some(at);
                if s.seller_paid {
                    settle(&mut s, at);
                }
                true
            }
            _ => false,
        },
        _ => false,
    };
    if !ok {
        return Err(fail(Some(&s)));
    }
    s.last_block = at.block;
    Ok(Some(s))
}

fn settle(s: &mut AgreementRecord, at: Transition) {
    s.status = AgreementStatus::Settled;
    s.settled = Some(at);
}

/// Derives every agreement's state from events in chain order.
pub fn derive_all<'a>(
    events: impl IntoIterator<Item = (&'a PactumEvent, Transition)>,
) -> Result<BTreeMap<B256, AgreementRecord>, DeriveError> {
    let mut states: BTreeMap<B256, AgreementRecord> = BTreeMap::new();
    for (event, at) in events {
        let Some(id) = event.agreement_id() else {
            continue;
        };
        let current = states.remove(&id);
        if let Some(next) = apply(current, event, at)? {
            states.insert(id, next);
        }
    }
    Ok(states)
}

#[cfg(test)]
mod tests {
    use pactum_bindings::{AgreementEscrow as Escrow, InfraFeeCollector as Fees};

    use super::*;

    const ID: B256 = B256::repeat_byte(0x1d);
    const BUYER: Address = Address::repeat_byte(0xb1);
    const SELLER: Address = Address::repeat_byte(0x5e);
    const MAX: u64 = 1_000;

    fn at(block: u64) -> Transition {
        Transition {
            block,
            tx: B256::with_last_byte(u8::try_from(block).unwrap()),
        }
    }

    fn escrow(e: AgreementEscrowEvents) -> PactumEvent {
        PactumEvent::Escrow(e)
    }

    fn activated() -> PactumEvent {
        escrow(AgreementEscrowEvents::AgreementActivated(
            Escrow::AgreementActivated {
                agreementId: ID,
                buyer: BUYER,
                seller: SELLER,
                token: Address::repeat_byte(0x70),
                amount: U256::from(MAX),
                infraFee: U256::from(10u64),
                expiry: 2_000_000_000,
                closeWindow: 3_600,
                salt: B256::repeat_byte(0x5a),
            },
        ))
    }

    fn fee(amount: u64) -> PactumEvent {
        PactumEvent::FeeCollector(InfraFeeCollectorEvents::InfraFeeCollected(
            Fees::InfraFeeCollected {
                agreementId: ID,
                buyer: BUYER,
                token: Address::repeat_byte(0x70),
                amount: U256::from(amount),
            },
        ))
    }

    fn close() -> PactumEvent {
        escrow(AgreementEscrowEvents::CloseInitiated(
            Escrow::CloseInitiated {
                agreementId: ID,
                initiator: BUYER,
                closeDeadline: U256::from(1_700_003_600u64),
            },
        ))
    }

    fn claimed(amount: u64) -> PactumEvent {
        escrow(AgreementEscrowEvents::SellerClaimed(
            Escrow::SellerClaimed {
                agreementId: ID,
                amount: U256::from(amount),
                buyerRemainder: U256::from(MAX - amount),
            },
        ))
    }

    fn paid(amount: u64) -> PactumEvent {
        escrow(AgreementEscrowEvents::SellerPaid(Escrow::SellerPaid {
            agreementId: ID,
            recipient: SELLER,
            amount: U256::from(amount),
        }))
    }

    fn deferred(reason: u8) -> PactumEvent {
        escrow(AgreementEscrowEvents::SellerPayoutDeferred(
            Escrow::SellerPayoutDeferred {
                agreementId: ID,
                recipient: SELLER,
                amount: U256::from(1u64),
                reason,
                account: SELLER,
            },
        ))
    }

    fn withdrew(amount: u64) -> PactumEvent {
        escrow(AgreementEscrowEvents::BuyerWithdrew(
            Escrow::BuyerWithdrew {
                agreementId: ID,
                recipient: BUYER,
                amount: U256::from(amount),
            },
        ))
    }

    /// The state after `events`, each in its own block from 1 on.
    fn run(events: &[PactumEvent]) -> Result<AgreementRecord, DeriveError> {
        let numbered: Vec<_> = events.iter().zip(1..).map(|(e, b)| (e, at(b))).collect();
        derive_all(numbered).map(|mut all| all.remove(&ID).unwrap())
    }

    #[test]
    fn activation_records_the_terms_and_the_deposit() {
        let s = run(&[activated()]).unwrap();
        assert_eq!(s.status, AgreementStatus::Active);
        assert_eq!((s.buyer, s.seller), (BUYER, SELLER));
        assert_eq!(s.deposited, U256::from(MAX));
        assert_eq!(s.close_window, 3_600);
        assert_eq!(s.activated, at(1));
        assert_eq!(s.last_block, 1);
    }

    #[test]
    fn only_the_activations_own_fee_counts() {
        let mut s = apply(None, &activated(), at(1)).unwrap();
        s = apply(s, &fee(10), at(1)).unwrap();
        assert_eq!(s.as_ref().unwrap().fee_collected, U256::from(10u64));
        let err = apply(s, &fee(10), at(2)).unwrap_err();
        assert_eq!(err.event, "InfraFeeCollected");
    }

    #[test]
    fn a_full_claim_settles_once_the_seller_is_paid() {
        let s = run(&[activated(), close(), claimed(MAX)]).unwrap();
        assert_eq!(s.status, AgreementStatus::SellerClaimed);
        assert!(s.buyer_withdrawn, "nothing is left for the buyer");
        let s = run(&[activated(), close(), claimed(MAX), paid(MAX)]).unwrap();
        assert_eq!(s.status, AgreementStatus::Settled);
        assert_eq!(s.settled, Some(at(4)));
        assert_eq!(s.close_deadline, Some(1_700_003_600));
        assert_eq!(s.close_initiator, Some(BUYER));
    }

    #[test]
    fn a_partial_claim_settles_after_both_payouts_in_either_order() {
        let s = run(&[activated(), close(), claimed(400), paid(400), withdrew(600)]).unwrap();
        assert_eq!(s.status, AgreementStatus::Settled);
        assert_eq!(
            (s.seller_paid_amount, s.buyer_paid_amount),
            (U256::from(400u64), U256::from(600u64))
        );
        let s = run(&[activated(), close(), claimed(400), withdrew(600)]).unwrap();
        assert_eq!(s.status, AgreementStatus::SellerClaimed);
        let s = run(&[activated(), close(), claimed(400), withdrew(600), paid(400)]).unwrap();
        assert_eq!(s.status, AgreementStatus::Settled);
    }

    #[test]
    fn a_withdrawal_without_a_claim_settles_at_once() {
        let s = run(&[activated(), close(), withdrew(MAX)]).unwrap();
        assert_eq!(s.status, AgreementStatus::Settled);
        assert_eq!(s.settled_amount, U256::ZERO);
        assert_eq!(s.withdrawn, Some(at(3)));
    }

    #[test]
    fn a_deferral_is_recorded_until_the_retry_pays() {
        let s = run(&[activated(), close(), claimed(MAX), deferred(1)]).unwrap();
        assert_eq!(
            s.deferral_reason,
            Some(DeferralReason::ScreeningUnavailable)
        );
        let s = run(&[activated(), close(), claimed(MAX), deferred(0), paid(MAX)]).unwrap();
        assert_eq!(s.deferral_reason, None);
        assert_eq!(s.status, AgreementStatus::Settled);
    }

    #[test]
    fn events_out_of_order_are_refused_with_the_state_they_met() {
        let err = run(&[close()]).unwrap_err();
        assert_eq!(
            (err.event, err.state),
            ("CloseInitiated", AgreementStatus::None)
        );
        let err = run(&[activated(), activated()]).unwrap_err();
        assert_eq!(err.state, AgreementStatus::Active);
        let err = run(&[activated(), claimed(1)]).unwrap_err();
        assert_eq!(err.state, AgreementStatus::Active);
        let err = run(&[activated(), close(), close()]).unwrap_err();
        assert_eq!(err.state, AgreementStatus::Closing);
        let err = run(&[activated(), close(), claimed(MAX), paid(MAX), paid(MAX)]).unwrap_err();
        assert_eq!(err.state, AgreementStatus::Settled);
        let err = run(&[
            activated(),
            close(),
            claimed(400),
            withdrew(600),
            withdrew(600),
        ])
        .unwrap_err();
        assert_eq!(
            (err.event, err.state),
            ("BuyerWithdrew", AgreementStatus::SellerClaimed)
        );
        assert_eq!(
            err.to_string(),
            format!("agreement {ID}: BuyerWithdrew does not apply in state seller_claimed")
        );
    }

    #[test]
    fn events_without_an_agreement_change_nothing() {
        let swept =
            PactumEvent::FeeCollector(InfraFeeCollectorEvents::FeesSwept(Fees::FeesSwept {
                token: Address::ZERO,
                treasury: Address::ZERO,
                amount: U256::ZERO,
            }));
        assert_eq!(apply(None, &swept, at(1)).unwrap(), None);
        assert!(derive_all([(&swept, at(1))]).unwrap().is_empty());
    }
}
