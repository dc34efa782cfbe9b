//! Every state and kind of the domain, each with one spelling: the one stored in PostgreSQL,
//! written to logs and metrics, and shown by the API.

use pactum_bindings::contracts::agreement_escrow::IAgreementEscrow;

use crate::RefusalCode;

/// A name that is not one of an enum's spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a {kind}")]
pub struct UnknownName {
    /// The enum.
    pub kind: &'static str,
    /// What was given.
    pub value: String,
}

named_enum! {
    /// An agreement's on-chain status (`IAgreementEscrow.Status`; the ABI carries it as a
    /// `uint8`). It only moves forward: `none → active → closing → (seller_claimed →) settled`.
    pub enum AgreementStatus {
        /// Never activated.
        None = "none",
        /// Funded; usage vouchers accrue off-chain.
        Active = "active",
        /// Close initiated; the seller may claim until the close deadline.
        Closing = "closing",
        /// The seller's entitlement is recorded; its payout (if deferred) or the buyer's
        /// remainder, or both, are still in escrow.
        SellerClaimed = "seller_claimed",
        /// Nothing of the agreement remains in escrow.
        Settled = "settled",
    }
}

/// A status value the escrow never produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown agreement status {0}")]
pub struct UnknownStatus(pub u8);

impl TryFrom<u8> for AgreementStatus {
    type Error = UnknownStatus;

    fn try_from(raw: u8) -> Result<Self, UnknownStatus> {
        Self::ALL
            .get(usize::from(raw))
            .copied()
            .ok_or(UnknownStatus(raw))
    }
}

impl TryFrom<IAgreementEscrow::Status> for AgreementStatus {
    type Error = UnknownStatus;

    fn try_from(raw: IAgreementEscrow::Status) -> Result<Self, UnknownStatus> {
        Self::try_from(raw.into_underlying())
    }
}

named_enum! {
    /// Where an agreement's escrow is, as `escrow-status` shows it: the on-chain status once
    /// indexed, or `pending_activation` while the relayer holds the buyer's activation.
    pub enum EscrowPhase {
        /// The relayer holds the buyer's activation package; nothing is on chain yet.
        PendingActivation = "pending_activation",
        /// Funded.
        Active = "active",
        /// Close window running.
        Closing = "closing",
        /// The seller's entitlement is recorded; something is still held.
        SellerClaimed = "seller_claimed",
        /// Nothing remains in escrow.
        Settled = "settled",
    }
}

impl EscrowPhase {
    /// The phase of an indexed agreement (`none` is never indexed: it has no events).
    pub const fn indexed(status: AgreementStatus) -> Self {
        match status {
            AgreementStatus::None => Self::PendingActivation,
            AgreementStatus::Active => Self::Active,
            AgreementStatus::Closing => Self::Closing,
            AgreementStatus::SellerClaimed => Self::SellerClaimed,
            AgreementStatus::Settled => Self::Settled,
        }
    }
}

named_enum! {
    /// How far an agreement's activation is.
    pub enum ActivationStatus {
        /// Accepted by the relayer, not yet signed.
        Pending = "pending",
        /// Its transaction is signed and stored, not yet broadcast.
        Submitting = "submitting",
        /// Broadcast or mined, not yet final in the index.
        Submitted = "submitted",
        /// Final in the index.
        Confirmed = "confirmed",
        /// It can no longer succeed and a no-op is replacing it.
        Cancelling = "cancelling",
        /// It will not happen; nothing moved.
        Failed = "failed",
    }
}

impl ActivationStatus {
    /// An indexed activation: confirmed once its block is final.
    pub const fn indexed(finalized: bool) -> Self {
        if finalized {
            Self::Confirmed
        } else {
            Self::Submitted
        }
    }

    /// An activation the relayer holds, not yet indexed. A mined one is still `submitted`:
    /// `confirmed` means final in the index.
    pub const fn relayed(job: JobState) -> Self {
        match job {
            JobState::Accepted => Self::Pending,
            JobState::Submitting => Self::Submitting,
            JobState::Submitted | JobState::Confirmed => Self::Submitted,
            JobState::Cancelling => Self::Cancelling,
            JobState::Failed => Self::Failed,
        }
    }
}

named_enum! {
    /// What a relay job does.
    pub enum ActionKind {
        /// `activateWithAuthorization` / `activateWithPermit`.
        Activate = "activate",
        /// `initiateCloseWithSig`.
        InitiateClose = "initiate_close",
        /// `sellerClaimWithSig`.
        SellerClaim = "seller_claim",
        /// `buyerWithdrawWithSig`.
        BuyerWithdraw = "buyer_withdraw",
    }
}

named_enum! {
    /// A settlement step, offered on the direct and the sponsored path.
    pub enum SettlementAction {
        /// Start the close window (buyer or seller).
        InitiateClose = "initiate_close",
        /// The seller claims (or retries the payout of) its entitlement.
        SellerClaim = "seller_claim",
        /// The buyer withdraws its remainder.
        BuyerWithdraw = "buyer_withdraw",
    }
}

impl SettlementAction {
    /// The job kind submitting it.
    pub const fn kind(self) -> ActionKind {
        match self {
            Self::InitiateClose => ActionKind::InitiateClose,
            Self::SellerClaim => ActionKind::SellerClaim,
            Self::BuyerWithdraw => ActionKind::BuyerWithdraw,
        }
    }
}

named_enum! {
    /// Where a relay job is.
    pub enum JobState {
        /// Checked and queued; no nonce yet.
        Accepted = "accepted",
        /// A nonce is reserved and the signed transaction stored; not yet known to the node.
        Submitting = "submitting",
        /// Broadcast; waiting to be mined.
        Submitted = "submitted",
        /// It can no longer succeed (its simulation failed before a re-broadcast); a no-op is
        /// replacing it at its nonce. Ends `failed`, or `confirmed` if the action was mined first.
        Cancelling = "cancelling",
        /// Mined and succeeded.
        Confirmed = "confirmed",
        /// Will not take effect (refused at submission, reverted, or cancelled).
        Failed = "failed",
    }
}

impl JobState {
    /// Whether the job still holds its agreement's in-flight slot.
    pub const fn in_flight(self) -> bool {
        matches!(self, Self::Accepted | Self::Submitting | Self::Submitted)
    }
}

named_enum! {
    /// What kind of transaction an attempt is.
    pub enum AttemptKind {
        /// The job's action (first submission or a fee-bumped replacement).
        Action = "action",
        /// A zero-value transfer to itself replacing the job's action at its nonce.
        Cancel = "cancel",
        /// A zero-value transfer filling a nonce no job holds (after the chain's nonce went back).
        Fill = "fill",
    }
}

named_enum! {
    /// What became of an attempt whose nonce the chain used.
    pub enum AttemptOutcome {
        /// It took the nonce.
        Mined = "mined",
        /// Another transaction took the nonce.
        Replaced = "replaced",
    }
}

named_enum! {
    /// How a mined action that reverted is judged (see the relayer's worker). Only `reverted`
    /// counts against its signer; a revert mined after the authorization's deadline is
    /// [`RefusalCode::AuthorizationExpired`].
    pub enum RevertKind {
        /// It used its whole gas limit: the relayer's estimate fell short.
        OutOfGas = "out_of_gas",
        /// The agreement no longer allowed the action when it was mined.
        Preempted = "preempted",
        /// The agreement still allowed it: the call behaved differently on chain than in
        /// simulation.
        Reverted = "reverted",
    }
}

/// Why a relay job failed (or is being cancelled): a refusal, or how its mined action reverted.
/// On the wire it is the code alone (the two sets of spellings do not overlap).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(untagged)]
pub enum JobFailure {
    /// Refused at submission, or cancelled because it could no longer succeed.
    Refused(RefusalCode),
    /// Mined and reverted.
    Reverted(RevertKind),
}

impl JobFailure {
    /// The stored code.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Refused(code) => code.as_str(),
            Self::Reverted(kind) => kind.as_str(),
        }
    }

    /// Whether it counts against the signer (`max_reverts_per_party_per_day`).
    pub const fn is_strike(self) -> bool {
        matches!(self, Self::Reverted(RevertKind::Reverted))
    }
}

impl std::str::FromStr for JobFailure {
    type Err = UnknownName;

    fn from_str(raw: &str) -> Result<Self, UnknownName> {
        raw.parse::<RevertKind>()
            .map(Self::Reverted)
            .or_else(|_| raw.parse::<RefusalCode>().map(Self::Refused))
            .map_err(|_| UnknownName {
                kind: "JobFailure",
                value: raw.to_owned(),
            })
    }
}

impl std::fmt::Display for JobFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

named_enum! {
    /// Why the seller's payout is deferred (`IAgreementEscrow.DeferralReason`; events carry it as
    /// a `uint8`).
    pub enum DeferralReason {
        /// Screening flagged the buyer, the seller or the recipient.
        Sanctioned = "sanctioned",
        /// The sanctions oracle could not be read.
        ScreeningUnavailable = "screening_unavailable",
        /// The token refused the transfer.
        TransferFailed = "transfer_failed",
        /// A value this build does not know.
        Unknown = "unknown",
    }
}

impl From<u8> for DeferralReason {
    fn from(raw: u8) -> Self {
        match raw {
            0 => Self::Sanctioned,
            1 => Self::ScreeningUnavailable,
            2 => Self::TransferFailed,
            _ => Self::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value of every enum parses from its own spelling, and serde uses the same one.
    fn round_trips<T>(all: &[T])
    where
        T: Copy
            + PartialEq
            + std::fmt::Debug
            + std::fmt::Display
            + std::str::FromStr
            + serde::Serialize
            + serde::de::DeserializeOwned,
        <T as std::str::FromStr>::Err: std::fmt::Debug,
    {
        for value in all {
            let text = value.to_string();
            assert_eq!(text.parse::<T>().unwrap(), *value);
            assert_eq!(serde_json::to_value(value).unwrap(), text.as_str());
            assert_eq!(
                serde_json::from_value::<T>(serde_json::Value::from(text.clone())).unwrap(),
                *value
            );
        }
    }

    #[test]
    fn spellings_round_trip() {
        round_trips(AgreementStatus::ALL);
        round_trips(EscrowPhase::ALL);
        round_trips(ActivationStatus::ALL);
        round_trips(ActionKind::ALL);
        round_trips(SettlementAction::ALL);
        round_trips(JobState::ALL);
        round_trips(AttemptKind::ALL);
        round_trips(AttemptOutcome::ALL);
        round_trips(RevertKind::ALL);
        round_trips(DeferralReason::ALL);
    }

    #[test]
    fn unknown_spellings_are_refused() {
        let err = "Active".parse::<AgreementStatus>().unwrap_err();
        assert_eq!(err.kind, "AgreementStatus");
        assert!("".parse::<JobState>().is_err());
        assert!(serde_json::from_str::<ActionKind>("\"close\"").is_err());
    }

    #[test]
    fn onchain_status_follows_the_abi_order() {
        assert_eq!(AgreementStatus::try_from(0).unwrap(), AgreementStatus::None);
        assert_eq!(
            AgreementStatus::try_from(1).unwrap(),
            AgreementStatus::Active
        );
        assert_eq!(
            AgreementStatus::try_from(3).unwrap(),
            AgreementStatus::SellerClaimed
        );
        assert_eq!(
            AgreementStatus::try_from(4).unwrap(),
            AgreementStatus::Settled
        );
        assert_eq!(AgreementStatus::try_from(5), Err(UnknownStatus(5)));
    }

    #[test]
    fn deferral_reasons_follow_the_abi_order() {
        assert_eq!(DeferralReason::from(0), DeferralReason::Sanctioned);
        assert_eq!(
            DeferralReason::from(1),
            DeferralReason::ScreeningUnavailable
        );
        assert_eq!(DeferralReason::from(2), DeferralReason::TransferFailed);
        assert_eq!(DeferralReason::from(9), DeferralReason::Unknown);
    }

    #[test]
    fn only_live_jobs_hold_the_in_flight_slot() {
        let live: Vec<_> = JobState::ALL.iter().filter(|s| s.in_flight()).collect();
        assert_eq!(
            live,
            [
                &JobState::Accepted,
                &JobState::Submitting,
                &JobState::Submitted
            ]
        );
    }

    #[test]
    fn a_relayed_activation_is_confirmed_only_by_the_index() {
        assert_eq!(
            ActivationStatus::relayed(JobState::Confirmed),
            ActivationStatus::Submitted
        );
        assert_eq!(
            ActivationStatus::relayed(JobState::Accepted),
            ActivationStatus::Pending
        );
        assert_eq!(ActivationStatus::indexed(true), ActivationStatus::Confirmed);
        assert_eq!(
            ActivationStatus::indexed(false),
            ActivationStatus::Submitted
        );
    }

    #[test]
    fn job_failures_parse_both_kinds_and_only_reverted_is_a_strike() {
        let reverted: JobFailure = "reverted".parse().unwrap();
        assert!(reverted.is_strike());
        let expired: JobFailure = "authorization_expired".parse().unwrap();
        assert_eq!(
            expired,
            JobFailure::Refused(RefusalCode::AuthorizationExpired)
        );
        assert!(!expired.is_strike());
        assert!(!JobFailure::Reverted(RevertKind::Preempted).is_strike());
        assert!("nope".parse::<JobFailure>().is_err());
        assert_eq!(
            JobFailure::Reverted(RevertKind::OutOfGas).as_str(),
            "out_of_gas"
        );
    }

    #[test]
    fn a_job_failure_is_its_bare_code_on_the_wire() {
        for kind in RevertKind::ALL {
            assert!(kind.as_str().parse::<RefusalCode>().is_err(), "{kind}");
        }
        for failure in RevertKind::ALL
            .iter()
            .map(|k| JobFailure::Reverted(*k))
            .chain(RefusalCode::ALL.iter().map(|c| JobFailure::Refused(*c)))
        {
            let wire = serde_json::to_value(failure).unwrap();
            assert_eq!(wire, serde_json::json!(failure.as_str()));
            assert_eq!(serde_json::from_value::<JobFailure>(wire).unwrap(), failure);
        }
    }

    #[test]
    fn each_settlement_action_has_its_job_kind() {
        for action in SettlementAction::ALL {
            assert_eq!(action.kind().as_str(), action.as_str());
        }
    }
}
