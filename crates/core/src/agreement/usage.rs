//! Usage records: the cumulative quantity consumed, with the buyer's voucher for the amount it
//! comes to. Usage only grows, never passes the agreed quantity, and is recorded only while the
//! seller can still claim with it.

use crate::AgreementStatus;

use super::{LifecycleCode, LifecycleError};

/// What a usage record does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// It raises the recorded usage.
    Grows,
    /// It repeats the recorded usage (answered as it is, nothing written).
    Repeat,
}

/// A record of `cumulative` units against `recorded` so far, of `quantity` agreed.
pub fn step(recorded: u64, cumulative: u64, quantity: u64) -> Result<Step, LifecycleError> {
    if cumulative > quantity {
        return Err(LifecycleError::new(
            LifecycleCode::InvalidQuantity,
            format!("cumulative usage {cumulative} is above the agreed quantity {quantity}"),
        ));
    }
    match cumulative.cmp(&recorded) {
        std::cmp::Ordering::Greater => Ok(Step::Grows),
        std::cmp::Ordering::Equal => Ok(Step::Repeat),
        std::cmp::Ordering::Less => Err(LifecycleError::new(
            LifecycleCode::UsageNotIncreasing,
            format!("cumulative usage only grows: {recorded} is recorded, {cumulative} was sent"),
        )),
    }
}

/// Whether the seller can still claim with a voucher at `now`: the escrow is active, or closing
/// with its close window still open (`close_deadline`, unix seconds) and nothing claimed yet.
pub fn claimable(
    status: Option<AgreementStatus>,
    close_deadline: Option<u64>,
    now: u64,
) -> Result<(), LifecycleError> {
    let open = match status {
        Some(AgreementStatus::Active) => true,
        Some(AgreementStatus::Closing) => close_deadline.is_some_and(|d| now < d),
        _ => false,
    };
    if open {
        return Ok(());
    }
    Err(LifecycleError::new(
        LifecycleCode::NotClaimable,
        match status {
            None | Some(AgreementStatus::None) => {
                "the escrow is not active yet: usage is recorded once it is".to_owned()
            }
            Some(s) => format!("the escrow is {s}: the seller can no longer claim with new usage"),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_grows_repeats_or_is_refused() {
        assert_eq!(step(0, 10, 100), Ok(Step::Grows));
        assert_eq!(step(10, 10, 100), Ok(Step::Repeat));
        assert_eq!(step(10, 100, 100), Ok(Step::Grows));
        assert_eq!(
            step(10, 9, 100).unwrap_err().code,
            LifecycleCode::UsageNotIncreasing
        );
        assert_eq!(
            step(10, 101, 100).unwrap_err().code,
            LifecycleCode::InvalidQuantity
        );
    }

    #[test]
    fn usage_is_recorded_only_while_a_claim_is_possible() {
        use AgreementStatus as S;
        assert!(claimable(Some(S::Active), None, 5).is_ok());
        assert!(claimable(Some(S::Closing), Some(10), 9).is_ok());
        assert!(claimable(Some(S::Closing), Some(10), 10).is_err());
        for s in [
            None,
            Some(S::None),
            Some(S::SellerClaimed),
            Some(S::Settled),
        ] {
            assert_eq!(
                claimable(s, Some(10), 5).unwrap_err().code,
                LifecycleCode::NotClaimable
            );
        }
    }
}
