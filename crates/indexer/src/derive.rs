//! Per-agreement state as a pure function of the agreement's events, applied in chain order.
//!
//! The rules mirror `AgreementEscrow` exactly (docs/design.md, "State machine"): the derived
//! status, amounts and flags equal the contract's own `agreementState` after the same events.
//! The indexer applies events incrementally; after a reorg it recomputes the affected agreements
//! from their remaining events with the same function, and `verify` recomputes everything.

use std::collections::BTreeMap;

use alloy::primitives::{B256, U256};
use pactum_bindings::{
    AgreementEscrow::AgreementEscrowEvents, InfraFeeCollector::InfraFeeCollectorEvents,
};
use pactum_db::chain::{AgreementRecord, AgreementStatus, Transition};

use crate::events::PactumEvent;

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
    pub state: String,
}

/// Applies one event to an agreement's state (`None` before activation). Events without an
/// agreement leave it unchanged.
pub fn apply(
    state: Option<AgreementRecord>,
    event: &PactumEvent,
    at: Transition,
) -> Result<Option<AgreementRecord>, DeriveError> {
    use AgreementEscrowEvents as E;
    let Some(agreement_id) = event.agreement_id() else {
        return Ok(state);
    };
    let fail = |state: &Option<AgreementRecord>| DeriveError {
        agreement_id,
        event: event.kind(),
        state: state
            .as_ref()
            .map_or_else(|| "none".to_owned(), |s| s.status.as_str().to_owned()),
    };

    if let PactumEvent::Escrow(E::AgreementActivated(e)) = event {
        if state.is_some() {
            return Err(fail(&state));
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
            status: AgreementStatus::Active,
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
        return Err(fail(&None));
    };
    let ok = match event {
        PactumEvent::FeeCollector(InfraFeeCollectorEvents::InfraFeeCollected(e)) => {
            let first = s.fee_collected.is_zero() && s.activated.tx == at.tx;
            if first {
                s.fee_collected = e.amount;
            }
            first
        }
        PactumEvent::Escrow(E::CloseInitiated(e)) if s.status == AgreementStatus::Active => {
            s.status = AgreementStatus::Closing;
            s.close_deadline = Some(u64::try_from(e.closeDeadline).unwrap_or(u64::MAX));
            s.close_initiator = Some(e.initiator);
            s.closed = Some(at);
            true
        }
        PactumEvent::Escrow(E::SellerClaimed(e)) if s.status == AgreementStatus::Closing => {
            s.status = AgreementStatus::SellerClaimed;
            s.settled_amount = e.amount;
            s.buyer_withdrawn = e.buyerRemainder.is_zero();
            s.claimed = Some(at);
            true
        }
        PactumEvent::Escrow(E::SellerPaid(e))
            if s.status == AgreementStatus::SellerClaimed && !s.seller_paid =>
        {
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
            if s.status == AgreementStatus::SellerClaimed && !s.seller_paid =>
        {
            s.deferral_reason = Some(pactum_bindings::deferral_reason(e.reason).to_owned());
            true
        }
        PactumEvent::Escrow(E::BuyerWithdrew(e)) => match s.status {
            AgreementStatus::Closing => {
                s.buyer_withdrawn = true;
                s.buyer_paid_amount = e.amount;
                s.withdrawn = Some(at);
                settle(&mut s, at);
                true
            }
            AgreementStatus::SellerClaimed if !s.buyer_withdrawn => {
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
        return Err(fail(&Some(s)));
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
