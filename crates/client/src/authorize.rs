//! The signed bodies of the sponsored path.
//!
//! The API hands out EIP-712 typed data and its digest; an agent that signed that digest as is
//! would sign whatever the server (or anyone between) put there. An [`Authorizer`] instead
//! rebuilds the message from what the agent itself means to authorize (its agreement, its party,
//! its recipient and amount), takes only the deadline from the options, and signs only if its own
//! message hashes to the digest the API handed out, under the domain the agent expects.

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    signers::Signer,
    sol_types::{Eip712Domain, SolStruct},
};
use pactum_api_types::{
    ActionOptions, BuyerWithdrawBody, InitiateCloseBody, SellerClaimBody, SettlementAction,
};
use pactum_bindings::{
    eip712::{self, BuyerWithdraw, InitiateClose, SellerClaim, Voucher},
    sign,
};

use crate::{Error, Result};

/// Signs one party's authorizations for one agreement.
#[derive(Debug)]
pub struct Authorizer<'a, S: ?Sized> {
    signer: &'a S,
    party: Address,
    domain: Eip712Domain,
    agreement_id: B256,
}

impl<'a, S: Signer + Sync + ?Sized> Authorizer<'a, S> {
    /// Authorizations of `signer`'s own address for agreement `agreement_id` of the escrow at
    /// `escrow` on `chain_id` (what the agent knows from its deployment, not from the API).
    pub fn new(signer: &'a S, chain_id: u64, escrow: Address, agreement_id: B256) -> Self {
        Self {
            signer,
            party: signer.address(),
            domain: eip712::escrow_domain(chain_id, escrow),
            agreement_id,
        }
    }

    /// Authorizations of `party`, a contract wallet (ERC-1271) that accepts `signer`'s
    /// signatures.
    pub fn for_party(mut self, party: Address) -> Self {
        self.party = party;
        self
    }

    /// The party the authorizations are for.
    pub fn party(&self) -> Address {
        self.party
    }

    /// The EIP-712 domain signed under.
    pub fn domain(&self) -> &Eip712Domain {
        &self.domain
    }

    /// `InitiateClose` for the party, with the deadline of `options` (checked against their
    /// digest).
    pub async fn initiate_close(&self, options: &ActionOptions) -> Result<InitiateCloseBody> {
        let deadline = handed_deadline(options, SettlementAction::InitiateClose)?;
        let message = self.close_message(deadline);
        same_digest(options, &message, &self.domain)?;
        self.initiate_close_at(deadline).await
    }

    /// `InitiateClose` for the party with any deadline, unchecked (to test what the API refuses).
    pub async fn initiate_close_at(&self, deadline: u64) -> Result<InitiateCloseBody> {
        let signature = self.sign(&self.close_message(deadline)).await?;
        Ok(InitiateCloseBody {
            party: self.party.to_string(),
            deadline,
            signature: signature.to_string(),
            domain: None,
        })
    }

    /// The buyer's voucher for a cumulative `amount` (the seller's claim carries it).
    pub async fn voucher(&self, amount: U256) -> Result<Bytes> {
        self.sign(&Voucher {
            agreementId: self.agreement_id,
            cumulativeAmount: amount,
        })
        .await
    }

    /// The seller's `SellerClaim` of `amount` (the buyer's `voucher` for it) to `recipient`,
    /// with the deadline of `options` (checked against their digest).
    pub async fn seller_claim(
        &self,
        options: &ActionOptions,
        amount: U256,
        voucher: &Bytes,
        recipient: Address,
    ) -> Result<SellerClaimBody> {
        let deadline = handed_deadline(options, SettlementAction::SellerClaim)?;
        let message = self.claim_message(amount, recipient, deadline);
        same_digest(options, &message, &self.domain)?;
        self.seller_claim_at(amount, voucher, recipient, deadline)
            .await
    }

    /// `SellerClaim` with any deadline, unchecked.
    pub async fn seller_claim_at(
        &self,
        amount: U256,
        voucher: &Bytes,
        recipient: Address,
        deadline: u64,
    ) -> Result<SellerClaimBody> {
        let signature = self
            .sign(&self.claim_message(amount, recipient, deadline))
            .await?;
        Ok(SellerClaimBody {
            amount: amount.to_string(),
            voucher_signature: voucher.to_string(),
            recipient: recipient.to_string(),
            deadline,
            signature: signature.to_string(),
            domain: None,
        })
    }

    /// The buyer's `BuyerWithdraw` to `recipient`, with the deadline of `options` (checked
    /// against their digest).
    pub async fn buyer_withdraw(
        &self,
        options: &ActionOptions,
        recipient: Address,
    ) -> Result<BuyerWithdrawBody> {
        let deadline = handed_deadline(options, SettlementAction::BuyerWithdraw)?;
        let message = self.withdraw_message(recipient, deadline);
        same_digest(options, &message, &self.domain)?;
        self.buyer_withdraw_at(recipient, deadline).await
    }

    /// `BuyerWithdraw` with any deadline, unchecked.
    pub async fn buyer_withdraw_at(
        &self,
        recipient: Address,
        deadline: u64,
    ) -> Result<BuyerWithdrawBody> {
        let signature = self
            .sign(&self.withdraw_message(recipient, deadline))
            .await?;
        Ok(BuyerWithdrawBody {
            recipient: recipient.to_string(),
            deadline,
            signature: signature.to_string(),
            domain: None,
        })
    }

    fn close_message(&self, deadline: u64) -> InitiateClose {
        InitiateClose {
            agreementId: self.agreement_id,
            party: self.party,
            deadline: U256::from(deadline),
        }
    }

    fn claim_message(&self, amount: U256, recipient: Address, deadline: u64) -> SellerClaim {
        SellerClaim {
            agreementId: self.agreement_id,
            amount,
            recipient,
            deadline: U256::from(deadline),
        }
    }

    fn withdraw_message(&self, recipient: Address, deadline: u64) -> BuyerWithdraw {
        BuyerWithdraw {
            agreementId: self.agreement_id,
            recipient,
            deadline: U256::from(deadline),
        }
    }

    async fn sign<M: SolStruct + Sync>(&self, message: &M) -> Result<Bytes> {
        Ok(sign::sign_typed(self.signer, message, &self.domain).await?)
    }
}

/// The deadline the options hand out for `action`.
fn handed_deadline(options: &ActionOptions, action: SettlementAction) -> Result<u64> {
    if options.action != action {
        return Err(Error::NothingToSign(format!(
            "the options are for {}, not {action}",
            options.action
        )));
    }
    options.deadline().ok_or_else(|| {
        Error::NothingToSign(format!(
            "the options for {action} carry no typed data ({})",
            options
                .sponsored
                .detail
                .as_deref()
                .unwrap_or("sponsored path closed")
        ))
    })
}

/// Refuses to go on unless `message` hashes to the digest the options handed out.
fn same_digest<M: SolStruct>(
    options: &ActionOptions,
    message: &M,
    domain: &Eip712Domain,
) -> Result<()> {
    let ours = message.eip712_signing_hash(domain);
    if options.digest() == Some(ours) {
        return Ok(());
    }
    Err(Error::DigestMismatch {
        ours,
        theirs: options.digest.clone().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use alloy::signers::local::PrivateKeySigner;
    use pactum_api_types::{AgreementStatus, PathOption};

    use super::*;

    const ESCROW: Address = Address::repeat_byte(0xEE);
    const ID: B256 = B256::repeat_byte(0x11);

    fn options(action: SettlementAction, digest: B256, deadline: u64) -> ActionOptions {
        let open = PathOption {
            open: true,
            reason: None,
            detail: None,
        };
        ActionOptions {
            agreement_id: ID.to_string(),
            action,
            possible_now: true,
            reason: None,
            detail: None,
            earliest_at: None,
            block_timestamp: 1,
            onchain_status: AgreementStatus::Active,
            signer: Address::ZERO.to_string(),
            token_trusted: true,
            direct: open.clone(),
            sponsored: open,
            typed_data: Some(
                serde_json::json!({ "message": { "deadline": deadline.to_string() } }),
            ),
            digest: Some(digest.to_string()),
        }
    }

    #[tokio::test]
    async fn it_signs_what_hashes_to_the_handed_out_digest() {
        let signer = PrivateKeySigner::random();
        let auth = Authorizer::new(&signer, 31337, ESCROW, ID);
        let digest = auth.close_message(500).eip712_signing_hash(auth.domain());
        let body = auth
            .initiate_close(&options(SettlementAction::InitiateClose, digest, 500))
            .await
            .unwrap();
        assert_eq!(body.deadline, 500);
        assert_eq!(body.party, signer.address().to_string());
        let signature: Bytes = body.signature.parse().unwrap();
        let recovered = alloy::primitives::Signature::try_from(signature.as_ref())
            .unwrap()
            .recover_address_from_prehash(&digest)
            .unwrap();
        assert_eq!(recovered, signer.address());
    }

    #[tokio::test]
    async fn it_refuses_a_digest_of_another_message() {
        let signer = PrivateKeySigner::random();
        let auth = Authorizer::new(&signer, 31337, ESCROW, ID);
        // The options name another recipient than the agent's: their digest differs.
        let theirs = auth
            .withdraw_message(Address::repeat_byte(0x66), 500)
            .eip712_signing_hash(auth.domain());
        let err = auth
            .buyer_withdraw(
                &options(SettlementAction::BuyerWithdraw, theirs, 500),
                signer.address(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        // Another chain's domain gives another digest for the same message.
        let other_chain = Authorizer::new(&signer, 1, ESCROW, ID);
        let ours = auth.close_message(500).eip712_signing_hash(auth.domain());
        let err = other_chain
            .initiate_close(&options(SettlementAction::InitiateClose, ours, 500))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    }

    #[tokio::test]
    async fn it_refuses_options_of_another_action_or_without_typed_data() {
        let signer = PrivateKeySigner::random();
        let auth = Authorizer::new(&signer, 31337, ESCROW, ID);
        let mut wrong = options(SettlementAction::BuyerWithdraw, B256::ZERO, 500);
        let err = auth.initiate_close(&wrong).await.unwrap_err();
        assert!(matches!(err, Error::NothingToSign(_)), "{err}");
        wrong.action = SettlementAction::InitiateClose;
        wrong.typed_data = None;
        let err = auth.initiate_close(&wrong).await.unwrap_err();
        assert!(matches!(err, Error::NothingToSign(_)), "{err}");
    }
}
