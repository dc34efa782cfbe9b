//! The arithmetic of an agreement's terms, exact and in integers: prices in cents become token
//! base units, the platform fee comes from basis points and a minimum, and the on-chain salt
//! comes from the agreement's API id.

use alloy::primitives::{Address, B256, U256, keccak256};
use pactum_bindings::Agreement;

use super::{LifecycleCode, LifecycleError};

/// Token base units per cent for a token with `decimals` decimals (USDC: 6, so 10,000), or
/// `None` for a token too coarse to express a cent.
pub fn units_per_cent(decimals: u8) -> Option<u128> {
    10u128.checked_pow(u32::from(decimals.checked_sub(2)?))
}

/// The largest amount an agreement may escrow: the escrow records entitlements as `uint128`,
/// so the arithmetic is done in `u128` and anything that does not fit is refused.
pub const MAX_AMOUNT: u128 = u128::MAX;

/// `quantity × price_per_unit_cents` in base units of a token with `decimals` decimals, or
/// `amount_overflow` if it does not fit the escrow's `uint128` amounts.
pub fn amount(
    quantity: u64,
    price_per_unit_cents: u64,
    decimals: u8,
) -> Result<U256, LifecycleError> {
    let per_cent = units_per_cent(decimals).ok_or_else(|| {
        LifecycleError::new(
            LifecycleCode::AmountOverflow,
            format!("a token with {decimals} decimals cannot express a cent"),
        )
    })?;
    u128::from(quantity)
        .checked_mul(u128::from(price_per_unit_cents))
        .and_then(|cents| cents.checked_mul(per_cent))
        .map(U256::from)
        .ok_or_else(|| {
            LifecycleError::new(
                LifecycleCode::AmountOverflow,
                format!(
                    "{quantity} × {price_per_unit_cents} cents does not fit the escrow's amounts \
                     (at most {MAX_AMOUNT} base units)"
                ),
            )
        })
}

/// The platform fee: `bps` basis points of the escrowed amount, rounded up, and at least
/// `minimum` base units; zero when both are zero (waived). Paid by the buyer at activation, on
/// top of the escrowed amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeSchedule {
    /// Basis points of the escrowed amount (at most [`FeeSchedule::MAX_BPS`]).
    pub bps: u16,
    /// The least fee, in token base units.
    pub minimum: u128,
}

impl FeeSchedule {
    /// The highest fee rate accepted: 10 %.
    pub const MAX_BPS: u16 = 1_000;

    /// The local stack's schedule: 1 %, no minimum.
    pub const LOCAL: Self = Self {
        bps: 100,
        minimum: 0,
    };

    /// Checks the schedule is one an operator may configure.
    pub fn validate(self) -> Result<Self, String> {
        if self.bps > Self::MAX_BPS {
            return Err(format!(
                "the fee rate {} bps is above the highest accepted, {} bps (10 %)",
                self.bps,
                Self::MAX_BPS
            ));
        }
        Ok(self)
    }

    /// The fee on `amount`.
    pub fn fee(self, amount: U256) -> U256 {
        let bps = U256::from(self.bps);
        let proportional = (amount * bps).div_ceil(U256::from(10_000u64));
        proportional.max(U256::from(self.minimum))
    }
}

/// The on-chain salt of the agreement with API id `id`: every agreement's on-chain id is then
/// distinct and traceable to its API record.
pub fn salt(id: &str) -> B256 {
    keccak256([b"pactum.usage-agreement:".as_slice(), id.as_bytes()].concat())
}

/// The escrow's terms, fixed when the seller accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnChainTerms {
    /// The buyer's wallet.
    pub buyer: Address,
    /// The seller's wallet.
    pub seller: Address,
    /// The token.
    pub token: Address,
    /// The escrowed amount.
    pub max_amount: U256,
    /// The platform fee.
    pub infra_fee: U256,
    /// Unix seconds after which it cannot be activated.
    pub expiry: u64,
    /// Seconds the seller has to claim after a close.
    pub close_window: u32,
}

impl OnChainTerms {
    /// The escrow's `Agreement` for the agreement with API id `id`.
    pub fn agreement(&self, id: &str) -> Agreement {
        Agreement {
            buyer: self.buyer,
            seller: self.seller,
            token: self.token,
            maxAmount: self.max_amount,
            infraFee: self.infra_fee,
            expiry: self.expiry,
            closeWindow: self.close_window,
            salt: salt(id),
        }
    }
}

/// The cumulative amount `cumulative_quantity` units at `price_per_unit_cents` come to (what
/// the buyer's voucher must say), bounded by the agreed quantity.
pub fn usage_amount(
    cumulative_quantity: u64,
    quantity: u64,
    price_per_unit_cents: u64,
    decimals: u8,
) -> Result<U256, LifecycleError> {
    if cumulative_quantity > quantity {
        return Err(LifecycleError::new(
            LifecycleCode::InvalidQuantity,
            format!(
                "cumulative usage {cumulative_quantity} is above the agreed quantity {quantity}"
            ),
        ));
    }
    amount(cumulative_quantity, price_per_unit_cents, decimals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_become_base_units_exactly() {
        assert_eq!(units_per_cent(6), Some(10_000));
        assert_eq!(units_per_cent(2), Some(1));
        assert_eq!(units_per_cent(1), None);
        // The reference's example: 100 calls at 10 cents is $10, 10,000,000 USDC base units.
        assert_eq!(amount(100, 10, 6), Ok(U256::from(10_000_000u64)));
        assert_eq!(amount(1, 1, 6), Ok(U256::from(10_000u64)));
        assert_eq!(amount(0, 1, 6), Ok(U256::ZERO));
        // 18 decimals: a cent is 10^16.
        assert_eq!(
            amount(3, 7, 18),
            Ok(U256::from(21u64) * U256::from(10u64).pow(U256::from(16u64)))
        );
    }

    #[test]
    fn an_amount_that_does_not_fit_is_refused_not_wrapped() {
        let max = u64::MAX;
        // u64 × u64 fits u128, but not once multiplied by 10^4.
        assert_eq!(
            amount(max, max, 6).unwrap_err().code,
            LifecycleCode::AmountOverflow
        );
        assert_eq!(amount(max, max, 2).map(|a| a > U256::ZERO), Ok(true));
        assert_eq!(
            amount(1, 1, 60).unwrap_err().code,
            LifecycleCode::AmountOverflow
        );
        assert_eq!(
            amount(1, 1, 1).unwrap_err().code,
            LifecycleCode::AmountOverflow
        );
    }

    #[test]
    fn the_fee_rounds_up_and_respects_its_minimum() {
        let one_percent = FeeSchedule::LOCAL;
        assert_eq!(
            one_percent.fee(U256::from(10_000_000u64)),
            U256::from(100_000u64)
        );
        assert_eq!(one_percent.fee(U256::from(101u64)), U256::from(2u64));
        assert_eq!(one_percent.fee(U256::ZERO), U256::ZERO);
        let with_minimum = FeeSchedule {
            bps: 100,
            minimum: 50_000,
        };
        assert_eq!(
            with_minimum.fee(U256::from(1_000_000u64)),
            U256::from(50_000u64)
        );
        assert_eq!(
            with_minimum.fee(U256::from(10_000_000u64)),
            U256::from(100_000u64)
        );
        let waived = FeeSchedule { bps: 0, minimum: 0 };
        assert_eq!(waived.fee(U256::from(10_000_000u64)), U256::ZERO);
        // No overflow at the largest amount.
        assert!(one_percent.fee(U256::from(MAX_AMOUNT)) > U256::ZERO);
    }

    #[test]
    fn a_fee_rate_above_ten_percent_is_refused() {
        assert!(
            FeeSchedule {
                bps: 1_000,
                minimum: 0
            }
            .validate()
            .is_ok()
        );
        assert!(
            FeeSchedule {
                bps: 1_001,
                minimum: 0
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn the_salt_is_the_ids_and_only_its() {
        assert_eq!(salt("agr_a"), salt("agr_a"));
        assert_ne!(salt("agr_a"), salt("agr_b"));
        let terms = OnChainTerms {
            buyer: Address::repeat_byte(1),
            seller: Address::repeat_byte(2),
            token: Address::repeat_byte(3),
            max_amount: U256::from(10u64),
            infra_fee: U256::from(1u64),
            expiry: 99,
            close_window: 60,
        };
        let a = terms.agreement("agr_a");
        assert_eq!(a.salt, salt("agr_a"));
        assert_eq!(
            (a.buyer, a.seller, a.expiry, a.closeWindow),
            (terms.buyer, terms.seller, 99, 60)
        );
    }

    #[test]
    fn usage_never_passes_the_agreed_quantity() {
        assert_eq!(usage_amount(40, 100, 10, 6), Ok(U256::from(4_000_000u64)));
        assert_eq!(usage_amount(100, 100, 10, 6), Ok(U256::from(10_000_000u64)));
        assert_eq!(
            usage_amount(101, 100, 10, 6).unwrap_err().code,
            LifecycleCode::InvalidQuantity
        );
    }
}
