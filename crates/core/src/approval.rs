//! Approvals: when an owner's policy asks for a human decision before its agent commits (today:
//! a proposal whose total is above `approval_threshold_cents`), the agreement waits in
//! `pending_approval` and an approval request records the agent, the agreement, the amount, the
//! rule and an expiry. The agent's owner approves (the lifecycle continues: the proposal goes to
//! the seller) or rejects it with a reason (the agreement ends `rejected`). Once the expiry has
//! passed, the request can no longer be decided and the agreement is `expired`.
//!
//! ```text
//! pending --approve (owner)--> approved   agreement: pending_approval -> proposed
//! pending --reject (owner)-->  rejected   agreement: pending_approval -> rejected (final)
//! pending --expiry passes-->   expired    agreement: pending_approval -> expired  (final)
//! ```
//!
//! Each decision is idempotent: the same decision again is answered as the first was and changes
//! nothing; the other decision after one was made is refused ([`ApprovalCode::AlreadyDecided`]),
//! so of an approval and a rejection racing, exactly one takes effect.

use crate::agreement::LifecycleStatus;

named_enum! {
    /// Where an approval request stands.
    pub enum ApprovalStatus {
        /// Waiting for the owner.
        Pending = "pending",
        /// The owner approved: the proposal went on to the seller.
        Approved = "approved",
        /// The owner rejected it: the agreement ended with the reason.
        Rejected = "rejected",
        /// Nobody decided before the expiry.
        Expired = "expired",
    }
}

impl ApprovalStatus {
    /// The status shown at `now` (unix seconds) for a request expiring at `expires_at`: a
    /// pending request whose expiry passed is `expired` even before the sweep records it.
    pub const fn at(self, now: u64, expires_at: u64) -> Self {
        match self {
            Self::Pending if now >= expires_at => Self::Expired,
            other => other,
        }
    }
}

named_enum! {
    /// The owner's decision on a request.
    pub enum Decision {
        /// Let the agent go ahead.
        Approve = "approve",
        /// Stop it, with a reason.
        Reject = "reject",
    }
}

impl Decision {
    /// The request's status once decided so.
    pub const fn status(self) -> ApprovalStatus {
        match self {
            Self::Approve => ApprovalStatus::Approved,
            Self::Reject => ApprovalStatus::Rejected,
        }
    }

    /// The agreement's status once decided so (it waited in `pending_approval`).
    pub const fn agreement_status(self) -> LifecycleStatus {
        match self {
            Self::Approve => LifecycleStatus::Proposed,
            Self::Reject => LifecycleStatus::Rejected,
        }
    }
}

named_enum! {
    /// Why a decision (or a read of approvals) is refused.
    pub enum ApprovalCode {
        /// No such request of this agent visible to the caller.
        NotFound = "approval_not_found",
        /// The request was already decided the other way.
        AlreadyDecided = "approval_already_decided",
        /// The request's expiry has passed: it can no longer be decided.
        Expired = "approval_expired",
        /// The rejection's reason is missing, blank or too long.
        InvalidReason = "invalid_reason",
    }
}

impl ApprovalCode {
    /// A short human title (the problem's `title`).
    pub const fn title(self) -> &'static str {
        match self {
            Self::NotFound => "Approval request not found",
            Self::AlreadyDecided => "Already decided",
            Self::Expired => "Approval request expired",
            Self::InvalidReason => "Invalid reason",
        }
    }
}

/// A refused decision: nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct ApprovalError {
    /// The stable code.
    pub code: ApprovalCode,
    /// What exactly was wrong.
    pub detail: String,
}

impl ApprovalError {
    /// An error with `code` and `detail`.
    pub fn new(code: ApprovalCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }
}

/// The longest rejection reason, in characters.
pub const MAX_REASON: usize = 500;

/// A rejection's reason, trimmed: 1 to [`MAX_REASON`] characters, no control characters.
pub fn reason(raw: Option<&str>) -> Result<&str, ApprovalError> {
    let reason = raw.map(str::trim).unwrap_or_default();
    if reason.is_empty() || reason.chars().count() > MAX_REASON {
        return Err(ApprovalError::new(
            ApprovalCode::InvalidReason,
            format!("a rejection needs a reason of 1 to {MAX_REASON} characters (?reason=...)"),
        ));
    }
    if reason.chars().any(char::is_control) {
        return Err(ApprovalError::new(
            ApprovalCode::InvalidReason,
            "the reason may not contain control characters",
        ));
    }
    Ok(reason)
}

/// What a decision does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Record it: the request and the agreement move on.
    Apply,
    /// The same decision was made before: answer as then, change nothing.
    Repeat,
}

/// What `decision` does to a request stored as `stored`, expiring at `expires_at`, at `now`
/// (unix seconds).
pub fn decide(
    stored: ApprovalStatus,
    decision: Decision,
    now: u64,
    expires_at: u64,
) -> Result<Outcome, ApprovalError> {
    use ApprovalStatus as S;
    match stored.at(now, expires_at) {
        S::Pending => Ok(Outcome::Apply),
        s if s == decision.status() => Ok(Outcome::Repeat),
        S::Expired => Err(ApprovalError::new(
            ApprovalCode::Expired,
            format!(
                "the request expired at {expires_at} (unix seconds) and can no longer be decided; \
                 the agent may propose again"
            ),
        )),
        decided => Err(ApprovalError::new(
            ApprovalCode::AlreadyDecided,
            format!("the request was already {decided}; a decision cannot be changed"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_000;
    const LATER: u64 = 2_000;

    #[test]
    fn a_pending_request_takes_either_decision_once() {
        for d in Decision::ALL {
            assert_eq!(
                decide(ApprovalStatus::Pending, *d, NOW, LATER),
                Ok(Outcome::Apply)
            );
            assert_eq!(decide(d.status(), *d, NOW, LATER), Ok(Outcome::Repeat));
        }
    }

    #[test]
    fn the_other_decision_after_one_is_refused() {
        let err = |stored, d| decide(stored, d, NOW, LATER).unwrap_err().code;
        assert_eq!(
            err(ApprovalStatus::Approved, Decision::Reject),
            ApprovalCode::AlreadyDecided
        );
        assert_eq!(
            err(ApprovalStatus::Rejected, Decision::Approve),
            ApprovalCode::AlreadyDecided
        );
    }

    #[test]
    fn nothing_is_decided_after_the_expiry() {
        for d in Decision::ALL {
            for stored in [ApprovalStatus::Pending, ApprovalStatus::Expired] {
                assert_eq!(
                    decide(stored, *d, LATER, LATER).unwrap_err().code,
                    ApprovalCode::Expired
                );
            }
        }
        // A decision made in time stays what it was (a repeat is still answered).
        assert_eq!(
            decide(ApprovalStatus::Approved, Decision::Approve, LATER, LATER),
            Ok(Outcome::Repeat)
        );
        assert_eq!(
            ApprovalStatus::Pending.at(LATER - 1, LATER),
            ApprovalStatus::Pending
        );
        assert_eq!(
            ApprovalStatus::Pending.at(LATER, LATER),
            ApprovalStatus::Expired
        );
        assert_eq!(
            ApprovalStatus::Rejected.at(LATER, LATER),
            ApprovalStatus::Rejected
        );
    }

    #[test]
    fn the_agreement_continues_or_ends() {
        assert_eq!(
            Decision::Approve.agreement_status(),
            LifecycleStatus::Proposed
        );
        assert_eq!(
            Decision::Reject.agreement_status(),
            LifecycleStatus::Rejected
        );
    }

    #[test]
    fn a_reason_is_required_and_bounded() {
        assert_eq!(reason(Some("  over budget ")), Ok("over budget"));
        for bad in [None, Some(""), Some("   "), Some("a\u{0}b")] {
            assert_eq!(reason(bad).unwrap_err().code, ApprovalCode::InvalidReason);
        }
        let long = "x".repeat(MAX_REASON + 1);
        assert!(reason(Some(&long)).is_err());
        assert!(reason(Some(&long[1..])).is_ok());
    }

    #[test]
    fn codes_are_snake_case_and_titled() {
        for code in ApprovalCode::ALL {
            assert!(!code.title().is_empty());
            assert!(
                code.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
        }
    }
}
