//! Usage agreements before and around the chain: the proposal, the seller's answer, the buyer's
//! activation, usage, and the on-chain phases the indexer reports. One state machine
//! ([`LifecycleStatus`], [`transition`]) with the activation's own status beside it; the
//! arithmetic of the terms ([`terms`]); the validation of a proposal ([`proposal`]). Who may
//! cause each transition and every code are listed in `docs/agreements.md`.
//!
//! ```text
//! (buyer proposes)                           proposed, or pending_approval when the buyer's
//!                                            owner's policy asks for approval
//! pending_approval --approve (buyer's owner)--> proposed
//! pending_approval --reject (buyer's owner)-->  rejected     (final)
//! pending_approval --expiry passes-->           expired      (final)
//! proposed   --accept (seller)-->            accepted
//! proposed   --reject (seller)-->            rejected        (final)
//! proposed   --expiry passes-->              expired         (final)
//! accepted   --expiry passes-->              expired         (final)
//! accepted   --activate-escrow (buyer)-->    activating
//! activating --activation indexed-->         active          (the chain from here on)
//! active     --close (either party)-->       closing
//! closing    --seller claims-->              seller_claimed
//! closing    --buyer withdraws after window-> settled        (final)
//! seller_claimed --both paid out-->          settled         (final)
//! active..   --reorg removes the activation-> activating
//! ```
//!
//! A failed activation leaves the agreement `activating` with `activation_status: failed`; the
//! buyer may submit a new one (never while one is in flight).

pub mod activation;
pub mod proposal;
pub mod terms;
pub mod usage;

use std::fmt;

use crate::AgreementStatus;

named_enum! {
    /// A usage agreement's status over its whole life. The off-chain part (`proposed`,
    /// `accepted`, `rejected`, `expired`, `activating`) is decided here; from `active` on it is
    /// the escrow's on-chain status as indexed, never contradicted.
    pub enum LifecycleStatus {
        /// The buyer's owner must approve the proposal before it goes to the seller.
        PendingApproval = "pending_approval",
        /// The buyer proposed; the seller has not answered.
        Proposed = "proposed",
        /// The seller accepted: the on-chain terms and id are fixed; the buyer may activate.
        Accepted = "accepted",
        /// The seller rejected the proposal (final).
        Rejected = "rejected",
        /// Not accepted, or not activated, before the terms' expiry (final).
        Expired = "expired",
        /// The buyer's signed activation is with the relayer.
        Activating = "activating",
        /// Funded on chain; usage accrues.
        Active = "active",
        /// A party initiated the close; the seller may claim until the close deadline.
        Closing = "closing",
        /// The seller's entitlement is recorded; something is still in escrow.
        SellerClaimed = "seller_claimed",
        /// Nothing remains in escrow (final).
        Settled = "settled",
    }
}

impl LifecycleStatus {
    /// The status of an agreement whose escrow the index holds in `on_chain`.
    pub const fn on_chain(on_chain: AgreementStatus) -> Self {
        match on_chain {
            AgreementStatus::None => Self::Activating,
            AgreementStatus::Active => Self::Active,
            AgreementStatus::Closing => Self::Closing,
            AgreementStatus::SellerClaimed => Self::SellerClaimed,
            AgreementStatus::Settled => Self::Settled,
        }
    }

    /// Whether nothing can happen to the agreement any more.
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Rejected | Self::Expired | Self::Settled)
    }

    /// Whether the escrow exists on chain (the index has its activation).
    pub const fn is_on_chain(self) -> bool {
        matches!(
            self,
            Self::Active | Self::Closing | Self::SellerClaimed | Self::Settled
        )
    }

    /// Whether the status is shown as `expired` at `now` (unix seconds) for terms expiring at
    /// `expiry`: a proposal (approved or waiting for approval) or an accepted agreement that was
    /// not activated in time. An activation in flight is left to the chain (the escrow refuses
    /// it after the expiry).
    pub const fn expired_at(self, now: u64, expiry: u64) -> bool {
        self.expires() && now >= expiry
    }

    /// Whether the status ends `expired` once the terms' expiry passes.
    pub const fn expires(self) -> bool {
        matches!(
            self,
            Self::PendingApproval | Self::Proposed | Self::Accepted
        )
    }
}

named_enum! {
    /// A party of a usage agreement.
    pub enum Role {
        /// Pays into the escrow and signs the usage vouchers.
        Buyer = "buyer",
        /// Provides the service and is paid against the vouchers.
        Seller = "seller",
    }
}

named_enum! {
    /// Something that happened to a usage agreement: its history, one row per event, written
    /// in the same transaction as the change it records.
    pub enum EventKind {
        /// The buyer proposed.
        Proposed = "proposed",
        /// The buyer's owner's policy sent the proposal for approval (the request in the detail).
        ApprovalRequested = "approval_requested",
        /// The buyer's owner approved the proposal: it goes to the seller.
        Approved = "approved",
        /// The buyer's owner rejected the proposal (the reason in the detail).
        ApprovalRejected = "approval_rejected",
        /// The seller accepted.
        Accepted = "accepted",
        /// The seller rejected.
        Rejected = "rejected",
        /// The terms expired before acceptance or activation.
        Expired = "expired",
        /// The buyer's activation was handed to the relayer.
        ActivationSubmitted = "activation_submitted",
        /// The activation will not happen (its reason in the detail).
        ActivationFailed = "activation_failed",
        /// The escrow's activation was indexed.
        Activated = "activated",
        /// A reorg removed an indexed on-chain event (the correction of an earlier event).
        Reorged = "reorged",
        /// A party recorded cumulative usage with the buyer's voucher.
        UsageRecorded = "usage_recorded",
        /// A party initiated the close.
        CloseInitiated = "close_initiated",
        /// The seller claimed its entitlement.
        SellerClaimed = "seller_claimed",
        /// The seller's payout was deferred (the token refused the transfer).
        PayoutDeferred = "payout_deferred",
        /// The seller's deferred payout went through.
        SellerPaid = "seller_paid",
        /// The buyer withdrew its remainder.
        BuyerWithdrawn = "buyer_withdrawn",
        /// Nothing remains in escrow.
        Settled = "settled",
    }
}

named_enum! {
    /// Why a lifecycle request is refused. Each maps to one HTTP status in the API; clients
    /// branch on these, never on the text.
    pub enum LifecycleCode {
        // The proposal's fields.
        /// No agent with the seller id exists (or it is not visible).
        UnknownSeller = "unknown_seller",
        /// The seller agent is the buyer agent, or has the buyer's wallet.
        SellerIsBuyer = "seller_is_buyer",
        /// The quantity is zero, negative, or too large.
        InvalidQuantity = "invalid_quantity",
        /// The unit price is zero, negative, or too large.
        InvalidPrice = "invalid_price",
        /// Quantity × unit price does not fit the escrow's amounts.
        AmountOverflow = "amount_overflow",
        /// The payment rail is not supported.
        UnsupportedRail = "unsupported_rail",
        /// The payment provider is not supported.
        UnsupportedProvider = "unsupported_provider",
        /// The settlement model is not supported.
        UnsupportedSettlementModel = "unsupported_settlement_model",
        /// The activation version is not supported.
        UnsupportedActivationVersion = "unsupported_activation_version",
        /// `buyer_wallet_address` is not the buyer agent's registered wallet.
        BuyerWalletMismatch = "buyer_wallet_mismatch",
        /// A text field is empty, too long, or has characters it may not have.
        InvalidField = "invalid_field",
        /// The close window is out of bounds.
        InvalidCloseWindow = "invalid_close_window",
        /// The lifetime is out of bounds.
        InvalidExpiry = "invalid_expiry",
        /// The metadata is not a JSON object, or too large.
        InvalidMetadata = "invalid_metadata",
        // Who may act.
        /// Only the seller's agent (or its owner) may do this.
        NotSeller = "not_seller",
        /// Only the buyer's agent (or its owner) may do this.
        NotBuyer = "not_buyer",
        // The agreement's status.
        /// The agreement is not in a status that allows this.
        InvalidTransition = "invalid_transition",
        /// The terms expired.
        ProposalExpired = "proposal_expired",
        // The activation.
        /// An activation of the agreement is already being submitted or in flight.
        ActivationInFlight = "activation_in_flight",
        /// The package's validity has passed, or leaves the relayer too little time.
        ActivationExpired = "activation_expired",
        /// The fee is pending and the package lacks its authorization.
        FeeAuthorizationRequired = "fee_authorization_required",
        /// The fee is waived and the package carries a fee authorization.
        UnexpectedFeeAuthorization = "unexpected_fee_authorization",
        /// A signature of the package is not the buyer wallet's.
        InvalidSignature = "invalid_signature",
        // Usage.
        /// The cumulative usage is below what was recorded.
        UsageNotIncreasing = "usage_not_increasing",
        /// The escrow cannot be claimed any more (or is not active yet).
        NotClaimable = "not_claimable",
        /// The voucher is not the buyer wallet's signature for the amount.
        InvalidVoucher = "invalid_voucher",
    }
}

impl LifecycleCode {
    /// A short human summary of the code.
    pub const fn title(self) -> &'static str {
        match self {
            Self::UnknownSeller => "Unknown seller",
            Self::SellerIsBuyer => "Seller is the buyer",
            Self::InvalidQuantity => "Invalid quantity",
            Self::InvalidPrice => "Invalid price",
            Self::AmountOverflow => "Amount too large",
            Self::UnsupportedRail => "Unsupported rail",
            Self::UnsupportedProvider => "Unsupported provider",
            Self::UnsupportedSettlementModel => "Unsupported settlement model",
            Self::UnsupportedActivationVersion => "Unsupported activation version",
            Self::BuyerWalletMismatch => "Not the buyer's wallet",
            Self::InvalidField => "Invalid field",
            Self::InvalidCloseWindow => "Invalid close window",
            Self::InvalidExpiry => "Invalid expiry",
            Self::InvalidMetadata => "Invalid metadata",
            Self::NotSeller => "Not the seller",
            Self::NotBuyer => "Not the buyer",
            Self::InvalidTransition => "Not allowed in this status",
            Self::ProposalExpired => "Proposal expired",
            Self::ActivationInFlight => "Activation in flight",
            Self::ActivationExpired => "Activation package expired",
            Self::FeeAuthorizationRequired => "Fee authorization required",
            Self::UnexpectedFeeAuthorization => "Unexpected fee authorization",
            Self::InvalidSignature => "Invalid signature",
            Self::UsageNotIncreasing => "Usage below what was recorded",
            Self::NotClaimable => "Not claimable",
            Self::InvalidVoucher => "Invalid voucher",
        }
    }
}

/// A refused lifecycle request: nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct LifecycleError {
    /// The stable code.
    pub code: LifecycleCode,
    /// What exactly was wrong.
    pub detail: String,
}

impl LifecycleError {
    /// An error with `code` and `detail`.
    pub fn new(code: LifecycleCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }
}

impl EventKind {
    /// The history event of an indexed contract event (by its name, as stored), if it is one an
    /// agreement's history records.
    pub fn of_chain_event(kind: &str) -> Option<Self> {
        Some(match kind {
            "AgreementActivated" => Self::Activated,
            "CloseInitiated" => Self::CloseInitiated,
            "SellerClaimed" => Self::SellerClaimed,
            "SellerPayoutDeferred" => Self::PayoutDeferred,
            "SellerPaid" => Self::SellerPaid,
            "BuyerWithdrew" => Self::BuyerWithdrawn,
            _ => return None,
        })
    }
}

/// A transition a party asks for (the chain's own transitions come from the indexer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// The seller accepts the proposal.
    Accept,
    /// The seller rejects the proposal.
    Reject,
    /// The buyer hands its signed activation to the relayer.
    SubmitActivation,
}

impl Request {
    /// The party that may ask.
    pub const fn party(self) -> Role {
        match self {
            Self::Accept | Self::Reject => Role::Seller,
            Self::SubmitActivation => Role::Buyer,
        }
    }

    const fn verb(self) -> &'static str {
        match self {
            Self::Accept => "accepted",
            Self::Reject => "rejected",
            Self::SubmitActivation => "activated",
        }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Accept => "accept",
            Self::Reject => "reject",
            Self::SubmitActivation => "activate",
        })
    }
}

/// The status `request` by a caller acting as `caller` (none: neither party) leads to from
/// `from`, at `now` for terms expiring at `expiry` (unix seconds); `activation_in_flight` tells
/// whether an earlier activation is still with the relayer.
pub fn transition(
    from: LifecycleStatus,
    request: Request,
    caller: Option<Role>,
    now: u64,
    expiry: u64,
    activation_in_flight: bool,
) -> Result<LifecycleStatus, LifecycleError> {
    use LifecycleCode as C;
    use LifecycleStatus as S;
    let party = request.party();
    if caller != Some(party) {
        let code = match party {
            Role::Seller => C::NotSeller,
            Role::Buyer => C::NotBuyer,
        };
        return Err(LifecycleError::new(
            code,
            format!("only the {party}'s agent or its owner may {request} this agreement"),
        ));
    }
    let allowed_from = match request {
        Request::Accept | Request::Reject => S::Proposed,
        Request::SubmitActivation => S::Accepted,
    };
    // A failed activation leaves the agreement `activating` until a new one is submitted, so
    // `activating` without one in flight allows a new submission.
    let resubmission = request == Request::SubmitActivation && from == S::Activating;
    if resubmission && activation_in_flight {
        return Err(LifecycleError::new(
            C::ActivationInFlight,
            "an activation of this agreement is already in flight; follow it with GET, and \
             submit again only if it fails",
        ));
    }
    if from != allowed_from && !resubmission {
        return Err(LifecycleError::new(
            C::InvalidTransition,
            format!(
                "the agreement is {from}; it can be {} only while {allowed_from}",
                request.verb()
            ),
        ));
    }
    if now >= expiry {
        return Err(LifecycleError::new(
            C::ProposalExpired,
            format!("the terms expired at {expiry} (unix seconds); propose again"),
        ));
    }
    Ok(match request {
        Request::Accept => S::Accepted,
        Request::Reject => S::Rejected,
        Request::SubmitActivation => S::Activating,
    })
}

/// Whether `request` repeats the answer the agreement already carries: accepting an agreement
/// that was accepted (whatever it became since), or rejecting again with the reason it was
/// rejected with. The seller's answers are `PUT`s: a repeat (a retry whose first attempt took
/// effect but whose answer was lost with its process) is answered with the agreement as it is
/// and changes nothing. A different answer is still refused by [`transition`].
pub fn repeats_answer(
    from: LifecycleStatus,
    request: Request,
    rejected_with: Option<&str>,
    reason: Option<&str>,
) -> bool {
    use LifecycleStatus as S;
    match request {
        Request::Accept => matches!(
            from,
            S::Accepted | S::Activating | S::Active | S::Closing | S::SellerClaimed | S::Settled
        ),
        Request::Reject => {
            from == S::Rejected && rejected_with.is_some() && rejected_with == reason
        }
        Request::SubmitActivation => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_000;

    #[test]
    fn a_repeated_answer_is_recognised_and_a_different_one_is_not() {
        use LifecycleStatus as S;
        for from in [
            S::Accepted,
            S::Activating,
            S::Active,
            S::Closing,
            S::SellerClaimed,
            S::Settled,
        ] {
            assert!(repeats_answer(from, Request::Accept, None, None), "{from}");
            assert!(
                !repeats_answer(from, Request::Reject, None, Some("no")),
                "{from}"
            );
        }
        for from in [S::PendingApproval, S::Proposed, S::Rejected, S::Expired] {
            assert!(
                !repeats_answer(from, Request::Accept, Some("no"), None),
                "{from}"
            );
        }
        assert!(repeats_answer(
            S::Rejected,
            Request::Reject,
            Some("busy"),
            Some("busy")
        ));
        assert!(!repeats_answer(
            S::Rejected,
            Request::Reject,
            Some("busy"),
            Some("other")
        ));
        assert!(!repeats_answer(
            S::Rejected,
            Request::Reject,
            None,
            Some("busy")
        ));
        assert!(!repeats_answer(
            S::Accepted,
            Request::SubmitActivation,
            None,
            None
        ));
    }
    const LATER: u64 = 2_000;

    fn go(
        from: LifecycleStatus,
        r: Request,
        who: Option<Role>,
    ) -> Result<LifecycleStatus, LifecycleCode> {
        transition(from, r, who, NOW, LATER, false).map_err(|e| e.code)
    }

    #[test]
    fn the_seller_answers_a_proposal_once() {
        use LifecycleStatus as S;
        assert_eq!(
            go(S::Proposed, Request::Accept, Some(Role::Seller)),
            Ok(S::Accepted)
        );
        assert_eq!(
            go(S::Proposed, Request::Reject, Some(Role::Seller)),
            Ok(S::Rejected)
        );
        for from in [
            S::PendingApproval,
            S::Accepted,
            S::Rejected,
            S::Expired,
            S::Active,
            S::Settled,
        ] {
            for r in [Request::Accept, Request::Reject] {
                assert_eq!(
                    go(from, r, Some(Role::Seller)),
                    Err(LifecycleCode::InvalidTransition),
                    "{from} {r}"
                );
            }
        }
    }

    #[test]
    fn only_the_right_party_may_ask() {
        use LifecycleStatus as S;
        for who in [Some(Role::Buyer), None] {
            assert_eq!(
                go(S::Proposed, Request::Accept, who),
                Err(LifecycleCode::NotSeller)
            );
            assert_eq!(
                go(S::Proposed, Request::Reject, who),
                Err(LifecycleCode::NotSeller)
            );
        }
        for who in [Some(Role::Seller), None] {
            assert_eq!(
                go(S::Accepted, Request::SubmitActivation, who),
                Err(LifecycleCode::NotBuyer)
            );
        }
    }

    #[test]
    fn nothing_is_answered_or_activated_after_the_expiry() {
        use LifecycleStatus as S;
        let late =
            |from, r, who| transition(from, r, Some(who), LATER, LATER, false).map_err(|e| e.code);
        assert_eq!(
            late(S::Proposed, Request::Accept, Role::Seller),
            Err(LifecycleCode::ProposalExpired)
        );
        assert_eq!(
            late(S::Proposed, Request::Reject, Role::Seller),
            Err(LifecycleCode::ProposalExpired)
        );
        assert_eq!(
            late(S::Accepted, Request::SubmitActivation, Role::Buyer),
            Err(LifecycleCode::ProposalExpired)
        );
        assert!(S::Proposed.expired_at(LATER, LATER));
        assert!(S::PendingApproval.expired_at(LATER, LATER));
        assert!(S::Accepted.expired_at(LATER, LATER));
        assert!(!S::Proposed.expired_at(LATER - 1, LATER));
        assert!(!S::Activating.expired_at(LATER, LATER));
        assert!(!S::Active.expired_at(LATER, LATER));
    }

    #[test]
    fn an_activation_is_submitted_again_only_after_the_last_one_failed() {
        use LifecycleStatus as S;
        let buyer = Some(Role::Buyer);
        assert_eq!(
            go(S::Accepted, Request::SubmitActivation, buyer),
            Ok(S::Activating)
        );
        assert_eq!(
            go(S::Activating, Request::SubmitActivation, buyer),
            Ok(S::Activating)
        );
        assert_eq!(
            transition(
                S::Activating,
                Request::SubmitActivation,
                buyer,
                NOW,
                LATER,
                true
            )
            .map_err(|e| e.code),
            Err(LifecycleCode::ActivationInFlight)
        );
        for from in [
            S::PendingApproval,
            S::Proposed,
            S::Rejected,
            S::Active,
            S::Closing,
        ] {
            assert_eq!(
                go(from, Request::SubmitActivation, buyer),
                Err(LifecycleCode::InvalidTransition),
                "{from}"
            );
        }
    }

    #[test]
    fn the_chain_decides_from_active_on() {
        use LifecycleStatus as S;
        assert_eq!(S::on_chain(AgreementStatus::Active), S::Active);
        assert_eq!(S::on_chain(AgreementStatus::Closing), S::Closing);
        assert_eq!(
            S::on_chain(AgreementStatus::SellerClaimed),
            S::SellerClaimed
        );
        assert_eq!(S::on_chain(AgreementStatus::Settled), S::Settled);
        assert_eq!(S::on_chain(AgreementStatus::None), S::Activating);
        assert!(S::Settled.is_final() && S::Settled.is_on_chain());
        assert!(!S::Activating.is_on_chain());
    }

    #[test]
    fn the_escrows_events_become_history_events() {
        assert_eq!(
            EventKind::of_chain_event("AgreementActivated"),
            Some(EventKind::Activated)
        );
        assert_eq!(
            EventKind::of_chain_event("SellerPayoutDeferred"),
            Some(EventKind::PayoutDeferred)
        );
        assert_eq!(
            EventKind::of_chain_event("BuyerWithdrew"),
            Some(EventKind::BuyerWithdrawn)
        );
        // The fee collector's events are the platform's, not the agreement's.
        assert_eq!(EventKind::of_chain_event("InfraFeeCollected"), None);
        assert_eq!(EventKind::of_chain_event("FeesSwept"), None);
    }

    #[test]
    fn codes_are_snake_case_distinct_and_titled() {
        let mut seen = std::collections::HashSet::new();
        for code in LifecycleCode::ALL {
            assert!(seen.insert(code.as_str()));
            assert!(!code.title().is_empty());
            assert!(
                code.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
        }
    }
}
