//! The arithmetic of sponsored submissions: the fees of a first submission and of a
//! replacement, and the gas limit an estimate gets. Everything saturates: no fee or limit
//! computed here wraps around.

/// The least fee increase a node accepts for a replacement at the same nonce, in percent.
pub const MIN_BUMP_PERCENT: u64 = 10;

/// The fees of a first submission: `(max_fee_per_gas, max_priority_fee_per_gas)`. The fee cap
/// allows two doublings of the base fee plus the tip, never above `cap`; the tip never exceeds
/// the fee cap.
pub fn first_fees(base_fee: u128, tip: u128, cap: u128) -> (u128, u128) {
    let max_fee = base_fee.saturating_mul(2).saturating_add(tip).min(cap);
    (max_fee, tip.min(max_fee))
}

/// The fee bump actually applied for a configured `percent` (never below [`MIN_BUMP_PERCENT`]).
pub fn bump_percent(percent: u64) -> u128 {
    u128::from(percent.max(MIN_BUMP_PERCENT))
}

/// `value` raised by `percent`, strictly above the exact increase (nodes compare with `>=` on a
/// rounded-down figure; one wei more always clears it).
pub fn bumped(value: u128, percent: u128) -> u128 {
    value.saturating_mul(100 + percent) / 100 + 1
}

/// The fees of a replacement of a transaction sent with `(max_fee, tip)`: both raised by
/// `percent`, the tip at least `min_tip`, the fee cap at least `2 × base fee + tip`. `cap` bounds
/// it for an action (`None` for a cancelling or filling no-op, which must never be held back);
/// `None` when the cap leaves no room for a valid replacement.
pub fn replacement_fees(
    sent: (u128, u128),
    base_fee: u128,
    percent: u128,
    min_tip: u128,
    cap: Option<u128>,
) -> Option<(u128, u128)> {
    let (max_fee, tip) = sent;
    let tip = bumped(tip, percent).max(min_tip);
    let floor = bumped(max_fee, percent);
    let wanted = base_fee.saturating_mul(2).saturating_add(tip);
    let max_fee = match cap {
        Some(cap) if floor > cap || base_fee >= cap => return None,
        Some(cap) => floor.max(wanted.min(cap)),
        None => floor.max(wanted),
    };
    Some((max_fee, tip.min(max_fee)))
}

/// The gas limit given to a call estimated at `estimate`: the estimate plus `margin_percent`.
pub fn gas_limit(estimate: u64, margin_percent: u64) -> u64 {
    estimate.saturating_mul(100 + margin_percent) / 100
}

/// The estimate a gas limit was made from (the inverse of [`gas_limit`], rounded up so that a
/// call fitting in it still gets at least `limit` back).
pub fn estimate_of(limit: u64, margin_percent: u64) -> u64 {
    limit.saturating_mul(100).div_ceil(100 + margin_percent)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GWEI: u128 = 1_000_000_000;

    #[test]
    fn first_fees_double_the_base_fee_under_the_cap() {
        assert_eq!(first_fees(10 * GWEI, GWEI, 100 * GWEI), (21 * GWEI, GWEI));
        assert_eq!(first_fees(80 * GWEI, GWEI, 100 * GWEI), (100 * GWEI, GWEI));
        // A tip above the cap is cut to it.
        assert_eq!(first_fees(0, 5 * GWEI, 2 * GWEI), (2 * GWEI, 2 * GWEI));
        assert_eq!(first_fees(u128::MAX, 1, u128::MAX), (u128::MAX, 1));
    }

    #[test]
    fn a_bump_clears_the_nodes_ten_percent() {
        assert_eq!(bump_percent(0), 10);
        assert_eq!(bump_percent(25), 25);
        assert_eq!(bumped(100, 10), 111);
        assert_eq!(bumped(0, 10), 1);
        for value in [1u128, 7, 99, 1_000_000_007, 30 * GWEI] {
            assert!(bumped(value, 10) * 10 >= value * 11, "{value}");
            assert!(bumped(value, 10) > value);
        }
        assert_eq!(bumped(u128::MAX, 10), u128::MAX / 100 + 1);
    }

    #[test]
    fn a_replacement_raises_both_fees_and_follows_the_base_fee() {
        let (max_fee, tip) = replacement_fees((20 * GWEI, GWEI), 5 * GWEI, 10, GWEI, None).unwrap();
        assert_eq!(tip, GWEI + GWEI / 10 + 1);
        assert_eq!(max_fee, 22 * GWEI + 1);
        // A risen base fee sets the floor.
        let (max_fee, _) = replacement_fees((20 * GWEI, GWEI), 50 * GWEI, 10, GWEI, None).unwrap();
        assert_eq!(max_fee, 100 * GWEI + GWEI + GWEI / 10 + 1);
        // The configured tip is a floor.
        let (_, tip) = replacement_fees((20 * GWEI, 1), GWEI, 10, 3 * GWEI, None).unwrap();
        assert_eq!(tip, 3 * GWEI);
    }

    #[test]
    fn the_cap_bounds_an_action_but_never_a_no_op() {
        let sent = (20 * GWEI, GWEI);
        let capped = replacement_fees(sent, 50 * GWEI, 10, GWEI, Some(60 * GWEI)).unwrap();
        assert_eq!(capped.0, 60 * GWEI);
        assert_eq!(
            replacement_fees(sent, 5 * GWEI, 10, GWEI, Some(21 * GWEI)),
            None
        );
        assert_eq!(
            replacement_fees(sent, 60 * GWEI, 10, GWEI, Some(60 * GWEI)),
            None
        );
        assert!(replacement_fees(sent, 60 * GWEI, 10, GWEI, None).is_some());
    }

    #[test]
    fn the_gas_margin_round_trips() {
        assert_eq!(gas_limit(100_000, 25), 125_000);
        assert_eq!(estimate_of(125_000, 25), 100_000);
        for estimate in [21_000u64, 99_999, 123_457] {
            assert!(
                gas_limit(estimate_of(gas_limit(estimate, 25), 25), 25)
                    >= gas_limit(estimate, 25) - 1
            );
        }
        assert_eq!(gas_limit(u64::MAX, 25), u64::MAX / 100);
    }
}
