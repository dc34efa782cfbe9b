//! Signing the protocol's messages, and assembling a buyer's activation package.

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    signers::Signer,
    sol_types::{Eip712Domain, SolStruct},
};

use crate::{
    Agreement, ReceiveAuthorization,
    eip712::{self, ReceiveWithAuthorization},
};

/// Errors from signing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The signer failed (key unavailable, remote signer error, ...).
    #[error("signing failed: {0}")]
    Signer(#[from] alloy::signers::Error),
    /// The signer is not the account the message must be signed by.
    #[error("message must be signed by {expected}, but the signer is {actual}")]
    WrongSigner {
        /// The account the contract will verify against.
        expected: Address,
        /// The signer's address.
        actual: Address,
    },
}

/// Result alias for this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Signs `message` under `domain` and returns the 65-byte `r ‖ s ‖ v` signature (v = 27/28) that
/// the contracts (and USDC) accept.
pub async fn sign_typed<S>(
    signer: &(impl Signer + ?Sized),
    message: &S,
    domain: &Eip712Domain,
) -> Result<Bytes>
where
    S: SolStruct + Sync,
{
    let digest = message.eip712_signing_hash(domain);
    sign_digest(signer, digest).await
}

/// Signs a precomputed EIP-712 digest.
pub async fn sign_digest(signer: &(impl Signer + ?Sized), digest: B256) -> Result<Bytes> {
    let signature = signer.sign_hash(&digest).await?;
    Ok(Bytes::copy_from_slice(&signature.as_bytes()))
}

/// Where an agreement lives: what a buyer needs to sign its activation package.
#[derive(Debug, Clone, Copy)]
pub struct ActivationContext {
    /// Chain id the escrow is deployed on.
    pub chain_id: u64,
    /// The escrow.
    pub escrow: Address,
    /// The fee collector bound to it.
    pub fee_collector: Address,
    /// The agreement token's own EIP-712 domain name and version (USDC: "USD Coin", "2").
    pub token_domain_name: &'static str,
    /// See `token_domain_name`.
    pub token_domain_version: &'static str,
}

/// A buyer's signed activation package for `activateWithAuthorization`.
#[derive(Debug, Clone)]
pub struct ActivationPackage {
    /// The agreement id the deposit authorization's nonce commits to.
    pub agreement_id: B256,
    /// `maxAmount` from the buyer to the escrow.
    pub deposit: ReceiveAuthorization,
    /// `infraFee` from the buyer to the fee collector (empty when the fee is waived).
    pub fee: ReceiveAuthorization,
}

/// Signs the buyer's activation package: an EIP-3009 `ReceiveWithAuthorization` of `maxAmount`
/// to the escrow with the agreement id as nonce, and, when `infraFee > 0`, one of `infraFee` to
/// the fee collector with the fee nonce. Both are valid until `valid_before`.
pub async fn activation_package(
    buyer: &(impl Signer + ?Sized),
    agreement: &Agreement,
    ctx: &ActivationContext,
    valid_before: u64,
) -> Result<ActivationPackage> {
    if buyer.address() != agreement.buyer {
        return Err(Error::WrongSigner {
            expected: agreement.buyer,
            actual: buyer.address(),
        });
    }
    let token_domain = alloy::sol_types::eip712_domain! {
        name: ctx.token_domain_name,
        version: ctx.token_domain_version,
        chain_id: ctx.chain_id,
        verifying_contract: agreement.token,
    };
    let agreement_id =
        eip712::agreement_id(agreement, &eip712::escrow_domain(ctx.chain_id, ctx.escrow));
    let valid_before = U256::from(valid_before);

    let deposit_message = ReceiveWithAuthorization {
        from: agreement.buyer,
        to: ctx.escrow,
        value: agreement.maxAmount,
        validAfter: U256::ZERO,
        validBefore: valid_before,
        nonce: agreement_id,
    };
    let deposit = ReceiveAuthorization {
        validAfter: U256::ZERO,
        validBefore: valid_before,
        signature: sign_typed(buyer, &deposit_message, &token_domain).await?,
    };

    let fee = if agreement.infraFee.is_zero() {
        ReceiveAuthorization {
            validAfter: U256::ZERO,
            validBefore: U256::ZERO,
            signature: Bytes::new(),
        }
    } else {
        let nonce = eip712::fee_authorization_nonce(
            agreement_id,
            agreement.infraFee,
            &eip712::fee_collector_domain(ctx.chain_id, ctx.fee_collector),
        );
        let fee_message = ReceiveWithAuthorization {
            from: agreement.buyer,
            to: ctx.fee_collector,
            value: agreement.infraFee,
            validAfter: U256::ZERO,
            validBefore: valid_before,
            nonce,
        };
        ReceiveAuthorization {
            validAfter: U256::ZERO,
            validBefore: valid_before,
            signature: sign_typed(buyer, &fee_message, &token_domain).await?,
        }
    };
    Ok(ActivationPackage {
        agreement_id,
        deposit,
        fee,
    })
}
