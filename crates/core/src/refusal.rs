//! Why an action is refused: a stable [`RefusalCode`] with a human title, and the detail of this
//! occurrence. Refusals spend no gas and change nothing. How a code maps to an HTTP status is the
//! API's business, not the domain's.

use std::fmt;

named_enum! {
    /// Every reason the domain refuses an action. Clients branch on these, never on the text.
    pub enum RefusalCode {
        // The agreement's state.
        /// The action already happened on chain.
        ActionAlreadyTaken = "action_already_taken",
        /// The agreement was never activated.
        AgreementNotActive = "agreement_not_active",
        /// The terms expired before activation.
        AgreementExpired = "agreement_expired",
        /// The agreement is active: a party must initiate the close first.
        CloseNotInitiated = "close_not_initiated",
        /// The seller's close window is over.
        CloseWindowElapsed = "close_window_elapsed",
        /// The buyer must wait for the seller's claim or the end of the close window.
        CloseWindowOpen = "close_window_open",
        /// The close window ends too soon for a sponsored claim to be mined in time.
        CloseWindowEnding = "close_window_ending",
        /// The escrow reported another status than the action needs.
        WrongState = "wrong_state",
        /// Another sponsored action for the agreement is still in flight.
        CompetingActionInFlight = "competing_action_in_flight",
        // The signed message.
        /// The signer is neither the buyer nor the seller.
        NotAParty = "not_a_party",
        /// The signer is a contract without ERC-1271: it can only send the call itself.
        SignerUnsupported = "signer_unsupported",
        /// The signature does not verify for the signer.
        InvalidSignature = "invalid_signature",
        /// The buyer's voucher does not verify.
        InvalidVoucher = "invalid_voucher",
        /// The amount is zero or above the agreement's maximum.
        InvalidAmount = "invalid_amount",
        /// The recipient cannot receive the payout.
        InvalidRecipient = "invalid_recipient",
        /// A retried claim names another amount than the recorded entitlement.
        ClaimAmountMismatch = "claim_amount_mismatch",
        /// The activation package carries a fee authorization for an agreement without a fee.
        UnexpectedFeeAuthorization = "unexpected_fee_authorization",
        /// The authorization's deadline has passed.
        AuthorizationExpired = "authorization_expired",
        /// The deadline leaves the relayer too little time.
        DeadlineTooSoon = "deadline_too_soon",
        /// The message was signed under another EIP-712 domain than the escrow's.
        WrongDomain = "wrong_domain",
        /// A party or the recipient is on the sanctions list.
        Sanctioned = "sanctioned",
        /// The call reverts for another reason (the token or the oracle refused, or it runs
        /// out of gas).
        SimulationFailed = "simulation_failed",
        // The sponsor's policy.
        /// The relayer does not sponsor agreements in this token.
        TokenNotSponsored = "token_not_sponsored",
        /// The agreement's token is not one the operator vouches for.
        UntrustedToken = "untrusted_token",
        /// The caller is neither the signing party's own agent nor that agent's owner.
        NotSignersAgent = "not_signers_agent",
        /// The call is not to a sponsored contract and function.
        PolicyViolation = "policy_violation",
        /// The call needs more gas than the sponsor pays for one action.
        GasCeilingExceeded = "gas_ceiling_exceeded",
        /// A per-agreement or per-party quota is used up.
        QuotaExceeded = "quota_exceeded",
        /// Too many of the signer's sponsored actions were mined and reverted today.
        TooManyReverts = "too_many_reverts",
        /// Today's gas budget is spent or reserved.
        SponsorBudgetExhausted = "sponsor_budget_exhausted",
        /// No relayer key holds the minimum balance.
        SponsorPaused = "sponsor_paused",
    }
}

impl RefusalCode {
    /// A short human summary of the code.
    pub const fn title(self) -> &'static str {
        match self {
            Self::ActionAlreadyTaken => "Already done",
            Self::AgreementNotActive => "Agreement not active",
            Self::AgreementExpired => "Agreement expired",
            Self::CloseNotInitiated => "Close not initiated",
            Self::CloseWindowElapsed => "Close window elapsed",
            Self::CloseWindowOpen => "Close window still open",
            Self::CloseWindowEnding => "Close window ending",
            Self::WrongState => "Wrong agreement state",
            Self::CompetingActionInFlight => "Another action in flight",
            Self::NotAParty => "Not a party",
            Self::SignerUnsupported => "Signer unsupported",
            Self::InvalidSignature => "Invalid signature",
            Self::InvalidVoucher => "Invalid voucher",
            Self::InvalidAmount => "Invalid amount",
            Self::InvalidRecipient => "Invalid recipient",
            Self::ClaimAmountMismatch => "Claim amount mismatch",
            Self::AuthorizationExpired => "Authorization expired",
            Self::DeadlineTooSoon => "Deadline too soon",
            Self::WrongDomain => "Wrong signing domain",
            Self::Sanctioned => "Sanctioned address",
            Self::SimulationFailed => "Simulation failed",
            Self::TokenNotSponsored => "Token not sponsored",
            Self::PolicyViolation => "Not sponsored",
            Self::GasCeilingExceeded => "Gas ceiling exceeded",
            Self::QuotaExceeded => "Sponsor quota exceeded",
            Self::TooManyReverts => "Too many reverted actions",
            Self::SponsorBudgetExhausted => "Sponsor budget exhausted",
            Self::SponsorPaused => "Sponsoring paused",
            Self::UnexpectedFeeAuthorization => "Unexpected fee authorization",
            Self::UntrustedToken => "Untrusted token",
            Self::NotSignersAgent => "Not the signer's agent",
        }
    }
}

/// Why a request was refused. No transaction was sent and no gas spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The stable code.
    pub code: RefusalCode,
    /// What exactly was wrong.
    pub detail: String,
    /// When the action becomes possible, if it is only a matter of time (unix seconds).
    pub earliest_at: Option<u64>,
}

impl Refusal {
    /// A refusal with `code` and `detail`.
    pub fn new(code: RefusalCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            earliest_at: None,
        }
    }

    /// With the time the action becomes possible.
    #[must_use]
    pub fn at(mut self, earliest_at: u64) -> Self {
        self.earliest_at = Some(earliest_at);
        self
    }

    /// The code's title.
    pub const fn title(&self) -> &'static str {
        self.code.title()
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl std::error::Error for Refusal {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_snake_case_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for code in RefusalCode::ALL {
            let text = code.as_str();
            assert!(
                text.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{text}"
            );
            assert!(seen.insert(text), "{text} twice");
            assert!(!code.title().is_empty());
            assert_eq!(text.parse::<RefusalCode>().unwrap(), *code);
        }
    }

    #[test]
    fn a_refusal_displays_its_code_and_carries_its_time() {
        let r = Refusal::new(RefusalCode::CloseWindowOpen, "wait").at(42);
        assert_eq!(r.to_string(), "close_window_open: wait");
        assert_eq!(r.earliest_at, Some(42));
        assert_eq!(r.title(), "Close window still open");
    }
}
