//! Signing the buyer's activation package.
//!
//! The package is typed data the API hands out; a buyer that signed its digests as they are
//! would move whatever amount to whatever address the server (or anyone between) put there.
//! [`sign_activation`] instead rebuilds every authorization from what the buyer expects (its
//! wallet, its deployment's escrow, fee collector and token, the amount it agreed to and the
//! most it pays as a fee), checks that the package's terms hash to the on-chain id it names, and
//! signs only if its own messages hash to the digests handed out.

use alloy::{
    primitives::{Address, B256, U256},
    signers::Signer,
    sol_types::SolStruct,
};
use pactum_api_types::{ActivateEscrow, ActivationPackage, OnChainTermsView, TypedMessage};
use pactum_bindings::{
    Agreement,
    eip712::{self, ReceiveWithAuthorization},
    sign,
};

use crate::{Error, Result};

/// What the buyer expects of its activation, from its own knowledge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// The chain.
    pub chain_id: u64,
    /// The escrow of its deployment.
    pub escrow: Address,
    /// The fee collector of its deployment.
    pub fee_collector: Address,
    /// The token it pays in.
    pub token: Address,
    /// The amount it agreed to escrow.
    pub max_amount: U256,
    /// The most it pays as the platform fee.
    pub max_fee: U256,
}

fn mismatch(what: &str) -> Error {
    Error::NothingToSign(format!(
        "the activation package's {what} is not what the buyer expects"
    ))
}

fn terms(view: &OnChainTermsView) -> Result<Agreement> {
    let parse =
        |what: &str, raw: &str| -> Result<Address> { raw.parse().map_err(|_| mismatch(what)) };
    let amount =
        |what: &str, raw: &str| -> Result<U256> { raw.parse().map_err(|_| mismatch(what)) };
    Ok(Agreement {
        buyer: parse("buyer", &view.buyer)?,
        seller: parse("seller", &view.seller)?,
        token: parse("token", &view.token)?,
        maxAmount: amount("maxAmount", &view.max_amount)?,
        infraFee: amount("infraFee", &view.infra_fee)?,
        expiry: view.expiry,
        closeWindow: view.close_window,
        salt: view
            .salt
            .as_deref()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| mismatch("salt"))?,
    })
}

fn same(
    message: &ReceiveWithAuthorization,
    domain: &alloy::sol_types::Eip712Domain,
    handed: &TypedMessage,
) -> Result<B256> {
    let ours = message.eip712_signing_hash(domain);
    if handed.digest.parse::<B256>().ok() != Some(ours) {
        return Err(Error::DigestMismatch {
            ours,
            theirs: handed.digest.clone(),
        });
    }
    Ok(ours)
}

/// Signs `package` for `buyer` (the agreement's buyer wallet; `signer` is its key, or a key its
/// ERC-1271 wallet accepts) after checking it against `expected`.
pub async fn sign_activation<S: Signer + Sync + ?Sized>(
    signer: &S,
    buyer: Address,
    package: &ActivationPackage,
    expected: &Expected,
) -> Result<ActivateEscrow> {
    let terms = terms(&package.terms)?;
    if terms.buyer != buyer {
        return Err(mismatch("buyer"));
    }
    if terms.token != expected.token {
        return Err(mismatch("token"));
    }
    if terms.maxAmount != expected.max_amount {
        return Err(mismatch("amount"));
    }
    if terms.infraFee > expected.max_fee {
        return Err(mismatch("fee"));
    }
    let id = eip712::agreement_id(
        &terms,
        &eip712::escrow_domain(expected.chain_id, expected.escrow),
    );
    if package.onchain_agreement_id.parse::<B256>().ok() != Some(id) {
        return Err(mismatch("on-chain id"));
    }
    let token_domain = eip712::usdc_domain(expected.chain_id, expected.token);
    let message = |to: Address, value: U256, nonce: B256| ReceiveWithAuthorization {
        from: buyer,
        to,
        value,
        validAfter: U256::ZERO,
        validBefore: U256::from(package.valid_before),
        nonce,
    };
    let deposit = message(expected.escrow, terms.maxAmount, id);
    let deposit_digest = same(&deposit, &token_domain, &package.deposit)?;
    let fee_signature = match (&package.infra_fee.authorization, terms.infraFee.is_zero()) {
        (None, true) => None,
        (Some(handed), false) => {
            let collector = eip712::fee_collector_domain(expected.chain_id, expected.fee_collector);
            let nonce = eip712::fee_authorization_nonce(id, terms.infraFee, &collector);
            let fee = message(expected.fee_collector, terms.infraFee, nonce);
            let digest = same(&fee, &token_domain, handed)?;
            Some(sign::sign_digest(signer, digest).await?.to_string())
        }
        _ => return Err(mismatch("fee authorization")),
    };
    Ok(ActivateEscrow {
        valid_before: Some(package.valid_before),
        deposit_signature: Some(sign::sign_digest(signer, deposit_digest).await?.to_string()),
        fee_signature,
        permit: None,
    })
}
