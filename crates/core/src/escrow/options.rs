//! Whether a settlement action is possible now, who must sign it and what: the plan behind the
//! settlement-options endpoint, as a pure function of the terms, the escrow's state and the
//! block time. Whether the sponsor can take it is the relayer's to add.

use alloy::{
    primitives::{Address, B256, U256},
    sol_types::Eip712Domain,
};
use pactum_bindings::{Agreement, AgreementState};
use serde_json::Value;

use crate::{
    AgreementStatus, Refusal, SettlementAction,
    escrow::{rules, typed_data},
};

/// How long an authorization the caller did not date stays valid (seconds after block time).
pub const DEFAULT_VALIDITY: u64 = 900;

/// What the caller wants to sign (query parameters of the options endpoint).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptionsQuery {
    /// For `initiate_close`: which party signs (default: the buyer).
    pub party: Option<Address>,
    /// Where to pay (default: the party itself).
    pub recipient: Option<Address>,
    /// For `seller_claim`: the voucher amount (default: the recorded entitlement on a retry,
    /// else the agreement's maximum as a placeholder to replace).
    pub amount: Option<U256>,
    /// The authorization's deadline (default: block time + [`DEFAULT_VALIDITY`]).
    pub deadline: Option<u64>,
}

/// The plan for one action.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionPlan {
    /// The agreement.
    pub agreement_id: B256,
    /// The action.
    pub action: SettlementAction,
    /// The block time it was computed at.
    pub block_timestamp: u64,
    /// The escrow's status of the agreement.
    pub status: AgreementStatus,
    /// Who must sign (or send) it.
    pub signer: Address,
    /// Whether the agreement's state allows it now (and if not, when it will, if only time
    /// stands in the way).
    pub possible: Result<(), Refusal>,
    /// Whether the signer can send it directly now: possible, and the signer is a party.
    pub direct: Result<(), Refusal>,
    /// The EIP-712 typed data to sign for the sponsored path (`eth_signTypedData_v4`).
    pub typed_data: Value,
    /// Its digest.
    pub digest: B256,
}

/// The plan for `action` on the agreement `id` with `terms` in `state` at block time `now`,
/// under the escrow's signing `domain`.
pub fn plan(
    domain: &Eip712Domain,
    id: B256,
    terms: &Agreement,
    state: &AgreementState,
    now: u64,
    action: SettlementAction,
    query: &OptionsQuery,
) -> ActionPlan {
    let deadline = query
        .deadline
        .unwrap_or(now.saturating_add(DEFAULT_VALIDITY));
    let (signer, (typed_data, digest)) = match action {
        SettlementAction::InitiateClose => {
            let party = query.party.unwrap_or(terms.buyer);
            (
                party,
                typed_data::initiate_close(domain, id, party, deadline),
            )
        }
        SettlementAction::SellerClaim => {
            let amount = query.amount.unwrap_or(if state.settledAmount > 0 {
                U256::from(state.settledAmount)
            } else {
                terms.maxAmount
            });
            let recipient = query.recipient.unwrap_or(terms.seller);
            (
                terms.seller,
                typed_data::seller_claim(domain, id, amount, recipient, deadline),
            )
        }
        SettlementAction::BuyerWithdraw => {
            let recipient = query.recipient.unwrap_or(terms.buyer);
            (
                terms.buyer,
                typed_data::buyer_withdraw(domain, id, recipient, deadline),
            )
        }
    };
    let possible = rules::eligibility(action.kind(), terms, state, now);
    let direct = possible
        .clone()
        .and_then(|()| rules::check_party(terms, signer));
    ActionPlan {
        agreement_id: id,
        action,
        block_timestamp: now,
        status: rules::status(state),
        signer,
        possible,
        direct,
        typed_data,
        digest,
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::Address;
    use pactum_bindings::eip712;

    use super::*;
    use crate::{
        RefusalCode,
        escrow::rules::tests::{BUYER, ESCROW, SELLER, closing, state, terms},
    };

    fn domain() -> Eip712Domain {
        eip712::escrow_domain(31337, ESCROW)
    }

    const NOW: u64 = 1_700_000_000;

    /// The plan for the test terms in state `s` at `NOW`.
    fn plan_for(s: &AgreementState, action: SettlementAction, query: &OptionsQuery) -> ActionPlan {
        plan(&domain(), B256::ZERO, &terms(), s, NOW, action, query)
    }

    #[test]
    fn an_active_agreement_can_be_closed_by_either_party() {
        let s = state(AgreementStatus::Active);
        let by_seller = OptionsQuery {
            party: Some(SELLER),
            ..OptionsQuery::default()
        };
        let p = plan_for(&s, SettlementAction::InitiateClose, &by_seller);
        assert_eq!(p.signer, SELLER);
        assert_eq!((p.possible.clone(), p.direct.clone()), (Ok(()), Ok(())));
        assert_eq!(p.status, AgreementStatus::Active);
        assert_eq!(p.typed_data["primaryType"], "InitiateClose");
        assert_eq!(
            p.typed_data["message"]["deadline"],
            (NOW + DEFAULT_VALIDITY).to_string()
        );
        let default = plan_for(
            &s,
            SettlementAction::InitiateClose,
            &OptionsQuery::default(),
        );
        assert_eq!(default.signer, BUYER);
        assert_ne!(default.digest, p.digest);
    }

    #[test]
    fn a_stranger_may_not_send_what_the_state_allows() {
        let stranger = OptionsQuery {
            party: Some(Address::repeat_byte(0x77)),
            ..OptionsQuery::default()
        };
        let p = plan_for(
            &state(AgreementStatus::Active),
            SettlementAction::InitiateClose,
            &stranger,
        );
        assert_eq!(p.possible, Ok(()));
        assert_eq!(p.direct.unwrap_err().code, RefusalCode::NotAParty);
    }

    #[test]
    fn a_withdrawal_before_the_deadline_says_when() {
        let s = closing(NOW + 100);
        let p = plan_for(
            &s,
            SettlementAction::BuyerWithdraw,
            &OptionsQuery::default(),
        );
        let refusal = p.possible.unwrap_err();
        assert_eq!(refusal.code, RefusalCode::CloseWindowOpen);
        assert_eq!(refusal.earliest_at, Some(rules::close_deadline(&s)));
        assert_eq!(p.direct.unwrap_err().code, RefusalCode::CloseWindowOpen);
        assert_eq!(p.signer, BUYER);
    }

    #[test]
    fn a_retried_claim_defaults_to_the_recorded_entitlement() {
        let mut s = state(AgreementStatus::SellerClaimed);
        s.settledAmount = 123;
        let p = plan_for(&s, SettlementAction::SellerClaim, &OptionsQuery::default());
        assert_eq!(p.signer, SELLER);
        assert_eq!(p.typed_data["message"]["amount"], "123");
        assert_eq!(p.direct, Ok(()));
    }
}
