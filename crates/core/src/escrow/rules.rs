//! When each action is possible: the escrow's own rules (`AgreementEscrow`, docs/design.md "State
//! machine"), read against its stored state at a block time, and the checks of a signed message's
//! fields the escrow would otherwise only make by reverting.

use alloy::{
    primitives::{Address, U256},
    sol_types::Eip712Domain,
};
use pactum_bindings::{Agreement, AgreementState};

use crate::{ActionKind, AgreementStatus, Refusal, RefusalCode, escrow::Authorization};

/// The close deadline of `state` (unix seconds; zero until a close is initiated).
pub fn close_deadline(state: &AgreementState) -> u64 {
    u64::try_from(state.closeDeadline).unwrap_or(u64::MAX)
}

/// The status of `state` (an unknown value reads as `none`: the escrow never stores one).
pub fn status(state: &AgreementState) -> AgreementStatus {
    AgreementStatus::try_from(state.status).unwrap_or(AgreementStatus::None)
}

/// Whether the escrow allows `action` on the agreement with `terms` in `state` at block time
/// `now`, and if not, why (with the time it becomes possible when only time stands in the way).
pub fn eligibility(
    action: ActionKind,
    terms: &Agreement,
    state: &AgreementState,
    now: u64,
) -> Result<(), Refusal> {
    use AgreementStatus as S;
    use RefusalCode as C;
    let deadline = close_deadline(state);
    let taken = |what: &str| {
        Refusal::new(
            C::ActionAlreadyTaken,
            format!("{what} already happened on chain"),
        )
    };
    let not_active = || {
        Refusal::new(
            C::AgreementNotActive,
            "the agreement was never activated on chain",
        )
    };
    let not_closing = || {
        Refusal::new(
            C::CloseNotInitiated,
            "the agreement is active: a party must initiate the close first",
        )
    };
    match action {
        ActionKind::Activate => match status(state) {
            S::None if now >= terms.expiry => Err(Refusal::new(
                C::AgreementExpired,
                format!("the terms expired at {}", terms.expiry),
            )),
            S::None => Ok(()),
            _ => Err(taken("the activation")),
        },
        ActionKind::InitiateClose => match status(state) {
            S::None => Err(not_active()),
            S::Active => Ok(()),
            _ => Err(taken("the close")),
        },
        ActionKind::SellerClaim => match status(state) {
            S::None => Err(not_active()),
            S::Active => Err(not_closing()),
            S::Closing if now < deadline => Ok(()),
            S::Closing => Err(Refusal::new(
                C::CloseWindowElapsed,
                format!("the seller could claim until {deadline}"),
            )),
            S::SellerClaimed if !state.sellerPaid => Ok(()),
            S::Settled if state.settledAmount == 0 => Err(Refusal::new(
                C::CloseWindowElapsed,
                "the seller did not claim in time and the buyer withdrew everything",
            )),
            _ => Err(taken("the seller's payout")),
        },
        ActionKind::BuyerWithdraw => match status(state) {
            S::None => Err(not_active()),
            S::Active => Err(not_closing()),
            _ if state.buyerWithdrawn => Err(taken("the buyer's withdrawal")),
            S::Closing if now < deadline => Err(Refusal::new(
                C::CloseWindowOpen,
                format!("the buyer can withdraw once the seller claimed or at {deadline}"),
            )
            .at(deadline)),
            _ => Ok(()),
        },
    }
}

/// Whether `signer` is the buyer or the seller of `terms`.
pub fn check_party(terms: &Agreement, signer: Address) -> Result<(), Refusal> {
    if signer == terms.buyer || signer == terms.seller {
        Ok(())
    } else {
        Err(Refusal::new(
            RefusalCode::NotAParty,
            format!("{signer} is neither the buyer nor the seller"),
        ))
    }
}

/// A sponsored authorization's deadline at block time `now`: it must be after `now` by at least
/// `margin` seconds, or the job might not be mined in time.
pub fn check_deadline(deadline: u64, now: u64, margin: u64) -> Result<(), Refusal> {
    if deadline <= now {
        return Err(Refusal::new(
            RefusalCode::AuthorizationExpired,
            format!("deadline {deadline} is not after block time {now}"),
        ));
    }
    if deadline < now.saturating_add(margin) {
        return Err(Refusal::new(
            RefusalCode::DeadlineTooSoon,
            format!(
                "deadline {deadline} leaves less than {margin} s after block time {now}: sign a later one"
            ),
        ));
    }
    Ok(())
}

/// A first sponsored claim needs the close window to stay open for `margin` more seconds: a claim
/// mined after the window ends reverts, and the buyer may then take everything. (A retried payout,
/// with the entitlement already recorded, has no window.)
pub fn check_claim_window(state: &AgreementState, now: u64, margin: u64) -> Result<(), Refusal> {
    let deadline = close_deadline(state);
    if state.settledAmount == 0 && deadline < now.saturating_add(margin) {
        return Err(Refusal::new(
            RefusalCode::CloseWindowEnding,
            format!(
                "the close window ends at {deadline}, less than {margin} s after block time {now}: \
                 send the claim directly"
            ),
        ));
    }
    Ok(())
}

/// The checks of a signed message's own fields against the terms and the recorded entitlement
/// (`settled`): the party, the recipient (neither zero nor the escrow), the claimed amount.
pub fn check_message(
    terms: &Agreement,
    authorization: &Authorization,
    settled: u128,
    escrow: Address,
) -> Result<(), Refusal> {
    let recipient_ok = |r: Address| {
        if r.is_zero() || r == escrow {
            Err(Refusal::new(
                RefusalCode::InvalidRecipient,
                format!("{r} cannot receive the payout (zero address or the escrow)"),
            ))
        } else {
            Ok(())
        }
    };
    match authorization {
        Authorization::InitiateClose { party, .. } => check_party(terms, *party),
        Authorization::SellerClaim {
            amount, recipient, ..
        } => {
            recipient_ok(*recipient)?;
            if settled > 0 && *amount != U256::from(settled) {
                return Err(Refusal::new(
                    RefusalCode::ClaimAmountMismatch,
                    format!("the recorded entitlement is {settled}, not {amount}"),
                ));
            }
            if amount.is_zero() || *amount > terms.maxAmount {
                return Err(Refusal::new(
                    RefusalCode::InvalidAmount,
                    format!("{amount} is zero or above the maximum {}", terms.maxAmount),
                ));
            }
            Ok(())
        }
        Authorization::BuyerWithdraw { recipient, .. } => recipient_ok(*recipient),
        Authorization::ActivateWithAuthorization { .. }
        | Authorization::ActivateWithPermit { .. } => {
            if terms.infraFee.is_zero() && authorization.has_fee_authorization() {
                return Err(Refusal::new(
                    RefusalCode::UnexpectedFeeAuthorization,
                    "the agreement has no infra fee: send the fee authorization's signature empty",
                ));
            }
            Ok(())
        }
    }
}

/// The EIP-712 domain a client says it signed under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimedDomain {
    /// Domain name.
    pub name: Option<String>,
    /// Domain version.
    pub version: Option<String>,
    /// Chain id.
    pub chain_id: Option<u64>,
    /// The verifying contract, as given (it may not even be an address).
    pub verifying_contract: Option<String>,
}

/// Whether every field the client gave matches the escrow's domain `expected`.
pub fn check_domain(claimed: &ClaimedDomain, expected: &Eip712Domain) -> Result<(), Refusal> {
    let name = expected.name.as_deref().unwrap_or_default();
    let version = expected.version.as_deref().unwrap_or_default();
    let chain_id = expected.chain_id.map(|c| c.to::<u64>());
    let contract = expected.verifying_contract;
    let mut wrong = Vec::new();
    if let Some(n) = &claimed.name
        && n != name
    {
        wrong.push(format!("name {n:?}"));
    }
    if let Some(v) = &claimed.version
        && v != version
    {
        wrong.push(format!("version {v:?}"));
    }
    if let Some(c) = claimed.chain_id
        && Some(c) != chain_id
    {
        wrong.push(format!("chain id {c}"));
    }
    if let Some(raw) = &claimed.verifying_contract
        && raw.parse::<Address>().ok() != contract
    {
        wrong.push(format!("verifying contract {raw}"));
    }
    if wrong.is_empty() {
        return Ok(());
    }
    Err(Refusal::new(
        RefusalCode::WrongDomain,
        format!(
            "signed under {}; the escrow's domain is {name:?} version {version:?} on chain {} at {}",
            wrong.join(", "),
            chain_id.unwrap_or_default(),
            contract.unwrap_or_default(),
        ),
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use alloy::primitives::{B256, Bytes, address};

    use super::*;

    pub(crate) const BUYER: Address = address!("00000000000000000000000000000000000000b1");
    pub(crate) const SELLER: Address = address!("00000000000000000000000000000000000000c2");
    pub(crate) const ESCROW: Address = address!("00000000000000000000000000000000000000e5");
    pub(crate) const MAX: u64 = 40_000_000;

    pub(crate) fn terms() -> Agreement {
        Agreement {
            buyer: BUYER,
            seller: SELLER,
            token: address!("00000000000000000000000000000000000000d3"),
            maxAmount: U256::from(MAX),
            infraFee: U256::from(100_000),
            expiry: 2_000,
            closeWindow: 600,
            salt: B256::repeat_byte(1),
        }
    }

    pub(crate) fn state(status: AgreementStatus) -> AgreementState {
        AgreementState {
            status: status as u8,
            closeDeadline: Default::default(),
            settledAmount: 0,
            sellerPaid: false,
            buyerWithdrawn: false,
        }
    }

    pub(crate) fn closing(deadline: u64) -> AgreementState {
        AgreementState {
            closeDeadline: alloy::primitives::aliases::U40::from(deadline),
            ..state(AgreementStatus::Closing)
        }
    }

    fn code(r: Result<(), Refusal>) -> Option<RefusalCode> {
        r.err().map(|r| r.code)
    }

    use ActionKind as A;
    use AgreementStatus as S;
    use RefusalCode as C;

    #[test]
    fn activation_only_before_expiry_and_once() {
        let t = terms();
        assert_eq!(
            code(eligibility(A::Activate, &t, &state(S::None), 1_999)),
            None
        );
        assert_eq!(
            code(eligibility(A::Activate, &t, &state(S::None), 2_000)),
            Some(C::AgreementExpired)
        );
        for s in [S::Active, S::Closing, S::SellerClaimed, S::Settled] {
            assert_eq!(
                code(eligibility(A::Activate, &t, &state(s), 0)),
                Some(C::ActionAlreadyTaken),
                "{s}"
            );
        }
    }

    #[test]
    fn close_only_while_active() {
        let t = terms();
        assert_eq!(
            code(eligibility(A::InitiateClose, &t, &state(S::None), 0)),
            Some(C::AgreementNotActive)
        );
        assert_eq!(
            code(eligibility(A::InitiateClose, &t, &state(S::Active), 0)),
            None
        );
        // After the expiry too: expiry ends activation, not an active agreement.
        assert_eq!(
            code(eligibility(A::InitiateClose, &t, &state(S::Active), 9_999)),
            None
        );
        for s in [S::Closing, S::SellerClaimed, S::Settled] {
            assert_eq!(
                code(eligibility(A::InitiateClose, &t, &state(s), 0)),
                Some(C::ActionAlreadyTaken)
            );
        }
    }

    #[test]
    fn seller_claims_strictly_before_the_close_deadline() {
        let t = terms();
        assert_eq!(
            code(eligibility(A::SellerClaim, &t, &state(S::Active), 0)),
            Some(C::CloseNotInitiated)
        );
        assert_eq!(
            code(eligibility(A::SellerClaim, &t, &closing(1_000), 999)),
            None
        );
        assert_eq!(
            code(eligibility(A::SellerClaim, &t, &closing(1_000), 1_000)),
            Some(C::CloseWindowElapsed)
        );
    }

    #[test]
    fn a_deferred_payout_can_be_retried_until_paid() {
        let t = terms();
        let mut s = state(S::SellerClaimed);
        s.settledAmount = 5;
        assert_eq!(code(eligibility(A::SellerClaim, &t, &s, 99_999)), None);
        s.sellerPaid = true;
        assert_eq!(
            code(eligibility(A::SellerClaim, &t, &s, 0)),
            Some(C::ActionAlreadyTaken)
        );
        // Settled without a claim: the seller missed its window.
        assert_eq!(
            code(eligibility(A::SellerClaim, &t, &state(S::Settled), 0)),
            Some(C::CloseWindowElapsed)
        );
        let mut paid = state(S::Settled);
        paid.settledAmount = 5;
        assert_eq!(
            code(eligibility(A::SellerClaim, &t, &paid, 0)),
            Some(C::ActionAlreadyTaken)
        );
    }

    #[test]
    fn buyer_withdraws_after_the_claim_or_the_deadline_and_once() {
        let t = terms();
        assert_eq!(
            code(eligibility(A::BuyerWithdraw, &t, &state(S::None), 0)),
            Some(C::AgreementNotActive)
        );
        assert_eq!(
            code(eligibility(A::BuyerWithdraw, &t, &state(S::Active), 0)),
            Some(C::CloseNotInitiated)
        );
        let open = eligibility(A::BuyerWithdraw, &t, &closing(1_000), 999).unwrap_err();
        assert_eq!(
            (open.code, open.earliest_at),
            (C::CloseWindowOpen, Some(1_000))
        );
        assert_eq!(
            code(eligibility(A::BuyerWithdraw, &t, &closing(1_000), 1_000)),
            None
        );
        assert_eq!(
            code(eligibility(
                A::BuyerWithdraw,
                &t,
                &state(S::SellerClaimed),
                0
            )),
            None
        );
        let mut done = state(S::SellerClaimed);
        done.buyerWithdrawn = true;
        assert_eq!(
            code(eligibility(A::BuyerWithdraw, &t, &done, 0)),
            Some(C::ActionAlreadyTaken)
        );
    }

    #[test]
    fn deadlines_need_the_margin() {
        assert_eq!(
            code(check_deadline(100, 100, 60)),
            Some(C::AuthorizationExpired)
        );
        assert_eq!(
            code(check_deadline(99, 100, 0)),
            Some(C::AuthorizationExpired)
        );
        assert_eq!(code(check_deadline(159, 100, 60)), Some(C::DeadlineTooSoon));
        assert_eq!(code(check_deadline(160, 100, 60)), None);
        assert_eq!(code(check_deadline(u64::MAX, u64::MAX - 1, 60)), None);
    }

    #[test]
    fn a_first_claim_needs_the_window_to_stay_open() {
        assert_eq!(
            code(check_claim_window(&closing(1_059), 1_000, 60)),
            Some(C::CloseWindowEnding)
        );
        assert_eq!(code(check_claim_window(&closing(1_060), 1_000, 60)), None);
        let mut retry = state(S::SellerClaimed);
        retry.settledAmount = 1;
        assert_eq!(code(check_claim_window(&retry, 1_000, 60)), None);
    }

    fn claim(amount: u64, recipient: Address) -> Authorization {
        Authorization::SellerClaim {
            amount: U256::from(amount),
            voucher_signature: Bytes::new(),
            recipient,
            deadline: 0,
            signature: Bytes::new(),
        }
    }

    #[test]
    fn messages_are_checked_against_the_terms() {
        let t = terms();
        let close = |party| Authorization::InitiateClose {
            party,
            deadline: 0,
            signature: Bytes::new(),
        };
        assert_eq!(code(check_message(&t, &close(BUYER), 0, ESCROW)), None);
        assert_eq!(code(check_message(&t, &close(SELLER), 0, ESCROW)), None);
        assert_eq!(
            code(check_message(&t, &close(ESCROW), 0, ESCROW)),
            Some(C::NotAParty)
        );
        assert_eq!(
            code(check_message(&t, &claim(MAX, SELLER), 0, ESCROW)),
            None
        );
        assert_eq!(
            code(check_message(&t, &claim(MAX + 1, SELLER), 0, ESCROW)),
            Some(C::InvalidAmount)
        );
        assert_eq!(
            code(check_message(&t, &claim(0, SELLER), 0, ESCROW)),
            Some(C::InvalidAmount)
        );
        assert_eq!(
            code(check_message(&t, &claim(5, ESCROW), 0, ESCROW)),
            Some(C::InvalidRecipient)
        );
        assert_eq!(
            code(check_message(&t, &claim(5, Address::ZERO), 0, ESCROW)),
            Some(C::InvalidRecipient)
        );
        // A retry must name the recorded entitlement.
        assert_eq!(code(check_message(&t, &claim(7, SELLER), 7, ESCROW)), None);
        assert_eq!(
            code(check_message(&t, &claim(8, SELLER), 7, ESCROW)),
            Some(C::ClaimAmountMismatch)
        );
        let withdraw = |recipient| Authorization::BuyerWithdraw {
            recipient,
            deadline: 0,
            signature: Bytes::new(),
        };
        assert_eq!(code(check_message(&t, &withdraw(BUYER), 0, ESCROW)), None);
        assert_eq!(
            code(check_message(&t, &withdraw(ESCROW), 0, ESCROW)),
            Some(C::InvalidRecipient)
        );
    }

    #[test]
    fn a_claimed_domain_must_match_every_field_it_gives() {
        let expected = pactum_bindings::eip712::escrow_domain(31_337, ESCROW);
        assert!(check_domain(&ClaimedDomain::default(), &expected).is_ok());
        let right = ClaimedDomain {
            name: Some(pactum_bindings::eip712::ESCROW_DOMAIN_NAME.into()),
            version: Some("1".into()),
            chain_id: Some(31_337),
            verifying_contract: Some(ESCROW.to_string().to_lowercase()),
        };
        assert!(check_domain(&right, &expected).is_ok());
        let wrong = ClaimedDomain {
            chain_id: Some(1),
            verifying_contract: Some("nonsense".into()),
            ..right
        };
        let refusal = check_domain(&wrong, &expected).unwrap_err();
        assert_eq!(refusal.code, C::WrongDomain);
        assert!(refusal.detail.contains("chain id 1"), "{}", refusal.detail);
        assert!(refusal.detail.contains("verifying contract nonsense"));
    }

    #[test]
    fn a_fee_authorization_without_a_fee_is_refused() {
        let package = |fee_signature: Bytes| Authorization::ActivateWithAuthorization {
            deposit: pactum_bindings::ReceiveAuthorization {
                validAfter: U256::ZERO,
                validBefore: U256::from(2_000),
                signature: Bytes::from(vec![1; 65]),
            },
            fee: pactum_bindings::ReceiveAuthorization {
                validAfter: U256::ZERO,
                validBefore: U256::from(2_000),
                signature: fee_signature,
            },
        };
        let mut free = terms();
        free.infraFee = U256::ZERO;
        let signed = Bytes::from(vec![2; 65]);
        assert_eq!(
            code(check_message(&free, &package(signed.clone()), 0, ESCROW)),
            Some(C::UnexpectedFeeAuthorization)
        );
        assert_eq!(
            code(check_message(&free, &package(Bytes::new()), 0, ESCROW)),
            None
        );
        assert_eq!(
            code(check_message(&terms(), &package(signed), 0, ESCROW)),
            None
        );
    }
}
