//! The buyer's activation package: the EIP-3009 authorizations it signs, exactly as the token
//! will verify them when the escrow activates. The deposit moves `maxAmount` to the escrow with
//! the on-chain agreement id as its nonce (so it can be used once, for this agreement only); the
//! fee, when there is one, moves `infraFee` to the fee collector with the nonce the collector
//! derives from the agreement id and the amount. The permit variant has the buyer sign the
//! escrow's `Activation` of the terms and EIP-2612 permits of both amounts instead.

use alloy::{
    primitives::{Address, B256, U256},
    sol_types::Eip712Domain,
};
use pactum_bindings::{
    Agreement,
    eip712::{self, Permit, ReceiveWithAuthorization},
};

use super::{LifecycleCode, LifecycleError};

/// The shortest validity accepted for an activation package: the relayer needs time to submit.
pub const MIN_VALIDITY: u64 = 120;
/// The longest validity: a day.
pub const MAX_VALIDITY: u64 = 86_400;
/// The validity when none is asked for.
pub const DEFAULT_VALIDITY: u64 = 3_600;

/// Where the package's messages are verified.
#[derive(Debug, Clone, Copy)]
pub struct Contracts {
    /// Chain id.
    pub chain_id: u64,
    /// The escrow (receives the deposit).
    pub escrow: Address,
    /// The fee collector (receives the fee).
    pub fee_collector: Address,
}

/// The messages of an EIP-3009 activation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationMessages {
    /// The token's EIP-712 domain (USDC's: "USD Coin", version "2").
    pub token_domain: Eip712Domain,
    /// `maxAmount` to the escrow, nonce the on-chain id.
    pub deposit: ReceiveWithAuthorization,
    /// `infraFee` to the fee collector (none when the fee is waived).
    pub fee: Option<ReceiveWithAuthorization>,
}

/// The messages the buyer signs to activate `terms` (whose on-chain id is `onchain_id`), valid
/// until `valid_before` (unix seconds).
pub fn authorization_messages(
    terms: &Agreement,
    onchain_id: B256,
    contracts: Contracts,
    valid_before: u64,
) -> AuthorizationMessages {
    let message = |to: Address, value: U256, nonce: B256| ReceiveWithAuthorization {
        from: terms.buyer,
        to,
        value,
        validAfter: U256::ZERO,
        validBefore: U256::from(valid_before),
        nonce,
    };
    let fee = (!terms.infraFee.is_zero()).then(|| {
        let collector = eip712::fee_collector_domain(contracts.chain_id, contracts.fee_collector);
        let nonce = eip712::fee_authorization_nonce(onchain_id, terms.infraFee, &collector);
        message(contracts.fee_collector, terms.infraFee, nonce)
    });
    AuthorizationMessages {
        token_domain: eip712::usdc_domain(contracts.chain_id, terms.token),
        deposit: message(contracts.escrow, terms.maxAmount, onchain_id),
        fee,
    }
}

/// The messages of the permit variant: the buyer's `Activation` consent under the escrow's
/// domain, and EIP-2612 permits under the token's, for the deposit (to the escrow) and the fee
/// (to the fee collector), with consecutive token nonces from `nonce`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermitMessages {
    /// The token's EIP-712 domain.
    pub token_domain: Eip712Domain,
    /// `maxAmount` for the escrow, nonce `nonce`.
    pub deposit: Permit,
    /// `infraFee` for the fee collector, nonce `nonce + 1` (none when the fee is waived).
    pub fee: Option<Permit>,
}

/// The permits the buyer signs to activate `terms` with permits, valid until `deadline`, from
/// the token nonce `nonce` (the buyer's next one, read from the token).
pub fn permit_messages(
    terms: &Agreement,
    contracts: Contracts,
    deadline: u64,
    nonce: U256,
) -> PermitMessages {
    let permit = |spender: Address, value: U256, nonce: U256| Permit {
        owner: terms.buyer,
        spender,
        value,
        nonce,
        deadline: U256::from(deadline),
    };
    PermitMessages {
        token_domain: eip712::usdc_domain(contracts.chain_id, terms.token),
        deposit: permit(contracts.escrow, terms.maxAmount, nonce),
        fee: (!terms.infraFee.is_zero()).then(|| {
            permit(
                contracts.fee_collector,
                terms.infraFee,
                nonce + U256::from(1),
            )
        }),
    }
}

/// The package's `valid_before` for a validity of `seconds` from `now`, checked against its
/// bounds and the terms' expiry (a package valid past the expiry could not be used then anyway).
pub fn valid_before(now: u64, seconds: Option<u64>, expiry: u64) -> Result<u64, LifecycleError> {
    let seconds = seconds.unwrap_or(DEFAULT_VALIDITY);
    if !(MIN_VALIDITY..=MAX_VALIDITY).contains(&seconds) {
        return Err(LifecycleError::new(
            LifecycleCode::InvalidField,
            format!(
                "valid_for_seconds must be between {MIN_VALIDITY} and {MAX_VALIDITY}, not {seconds}"
            ),
        ));
    }
    Ok(now.saturating_add(seconds).min(expiry))
}

/// Checks a submitted `valid_before` is still usable at `now`: at least [`MIN_VALIDITY`] left,
/// at most [`MAX_VALIDITY`] ahead.
pub fn check_valid_before(now: u64, valid_before: u64) -> Result<(), LifecycleError> {
    if valid_before < now.saturating_add(MIN_VALIDITY) {
        return Err(LifecycleError::new(
            LifecycleCode::ActivationExpired,
            format!(
                "the package is valid until {valid_before}; it must leave the relayer at least \
                 {MIN_VALIDITY} s (now {now}): fetch a new package and sign it"
            ),
        ));
    }
    if valid_before > now.saturating_add(MAX_VALIDITY) {
        return Err(LifecycleError::new(
            LifecycleCode::InvalidField,
            format!("valid_before {valid_before} is more than {MAX_VALIDITY} s ahead"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::sol_types::SolStruct;

    fn terms(fee: u64) -> Agreement {
        Agreement {
            buyer: Address::repeat_byte(0xb1),
            seller: Address::repeat_byte(0x5e),
            token: Address::repeat_byte(0x70),
            maxAmount: U256::from(10_000_000u64),
            infraFee: U256::from(fee),
            expiry: 10_000,
            closeWindow: 3_600,
            salt: B256::repeat_byte(7),
        }
    }

    const CONTRACTS: Contracts = Contracts {
        chain_id: 31_337,
        escrow: Address::repeat_byte(0xe5),
        fee_collector: Address::repeat_byte(0xfc),
    };

    #[test]
    fn the_deposit_is_the_agreements_once_and_the_fee_the_collectors() {
        let id = B256::repeat_byte(0x1d);
        let m = authorization_messages(&terms(100_000), id, CONTRACTS, 5_000);
        assert_eq!(m.deposit.nonce, id);
        assert_eq!(
            (m.deposit.to, m.deposit.value),
            (CONTRACTS.escrow, U256::from(10_000_000u64))
        );
        assert_eq!(m.deposit.validBefore, U256::from(5_000u64));
        let fee = m.fee.unwrap();
        assert_eq!(
            (fee.to, fee.value),
            (CONTRACTS.fee_collector, U256::from(100_000u64))
        );
        let collector = eip712::fee_collector_domain(31_337, CONTRACTS.fee_collector);
        assert_eq!(
            fee.nonce,
            eip712::fee_authorization_nonce(id, U256::from(100_000u64), &collector)
        );
        // Signed under the token's own domain.
        assert_eq!(
            m.token_domain,
            eip712::usdc_domain(31_337, Address::repeat_byte(0x70))
        );
        assert_ne!(
            m.deposit.eip712_signing_hash(&m.token_domain),
            fee.eip712_signing_hash(&m.token_domain)
        );
    }

    #[test]
    fn the_permits_take_consecutive_nonces_and_the_fee_none_when_waived() {
        let m = permit_messages(&terms(100_000), CONTRACTS, 5_000, U256::from(7u64));
        assert_eq!(
            (m.deposit.spender, m.deposit.nonce),
            (CONTRACTS.escrow, U256::from(7u64))
        );
        let fee = m.fee.unwrap();
        assert_eq!(
            (fee.spender, fee.nonce, fee.value),
            (
                CONTRACTS.fee_collector,
                U256::from(8u64),
                U256::from(100_000u64)
            )
        );
        assert!(
            permit_messages(&terms(0), CONTRACTS, 5_000, U256::ZERO)
                .fee
                .is_none()
        );
    }

    #[test]
    fn a_waived_fee_has_no_authorization() {
        assert!(
            authorization_messages(&terms(0), B256::ZERO, CONTRACTS, 5_000)
                .fee
                .is_none()
        );
    }

    #[test]
    fn validity_is_bounded_and_never_past_the_expiry() {
        assert_eq!(
            valid_before(1_000, None, 100_000),
            Ok(1_000 + DEFAULT_VALIDITY)
        );
        assert_eq!(valid_before(1_000, Some(600), 1_300), Ok(1_300));
        assert!(valid_before(1_000, Some(10), 100_000).is_err());
        assert!(valid_before(1_000, Some(MAX_VALIDITY + 1), 1_000_000).is_err());
        assert_eq!(check_valid_before(1_000, 1_000 + MIN_VALIDITY), Ok(()));
        assert_eq!(
            check_valid_before(1_000, 1_000 + MIN_VALIDITY - 1)
                .unwrap_err()
                .code,
            LifecycleCode::ActivationExpired
        );
        assert!(check_valid_before(1_000, 1_000 + MAX_VALIDITY + 1).is_err());
    }
}
