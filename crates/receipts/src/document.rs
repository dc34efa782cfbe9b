//! A receipt as the API serves it ([`ReceiptView`]: the fields, the EIP-712 typed data and the
//! signature), built from a stored receipt, and read back into the signed message.

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    sol_types::{Eip712Domain, SolStruct},
};
use pactum_api_types::ReceiptView;
use pactum_bindings::eip712::{Receipt, receipts_domain};
use pactum_core::escrow::typed_data;
use pactum_db::receipts::StoredReceipt;

/// A document that is not a receipt: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {detail}")]
pub struct DocumentError {
    /// The field.
    pub field: &'static str,
    /// What is wrong with it.
    pub detail: String,
}

/// The message the service signs for `r`.
pub fn message(r: &StoredReceipt) -> Receipt {
    Receipt {
        receiptId: r.id.clone(),
        agreementId: r.onchain_agreement_id,
        apiAgreementId: r.agreement_id.clone().unwrap_or_default(),
        kind: r.kind.as_str().to_owned(),
        payer: r.payer,
        payee: r.payee,
        token: r.token,
        amount: r.amount,
        chainId: U256::from(r.chain_id),
        emitter: r.emitter,
        txHash: r.tx_hash,
        logIndex: U256::from(r.log_index),
        blockNumber: U256::from(r.block_number),
        blockHash: r.block_hash,
        blockTime: U256::from(r.block_time),
    }
}

/// `r` as the API serves it (in the domain it was signed in).
pub fn view(r: &StoredReceipt) -> ReceiptView {
    let escrow = r.verifying_contract;
    let domain = receipts_domain(r.chain_id, escrow);
    let (typed, digest) = typed_data::receipt(&domain, &message(r));
    ReceiptView {
        receipt_id: r.id.clone(),
        kind: r.kind,
        chain_id: r.chain_id,
        agreement_id: r.agreement_id.clone(),
        onchain_agreement_id: r.onchain_agreement_id.to_string(),
        payer: r.payer.to_string(),
        payee: r.payee.to_string(),
        token: r.token.to_string(),
        amount: r.amount.to_string(),
        emitter: r.emitter.to_string(),
        tx_hash: r.tx_hash.to_string(),
        log_index: r.log_index,
        block_number: r.block_number,
        block_hash: r.block_hash.to_string(),
        block_time: r.block_time,
        verifying_contract: escrow.to_string(),
        signer: r.signer.to_string(),
        signature: r.signature.to_string(),
        digest: digest.to_string(),
        typed_data: typed,
        issued_at: r.issued_at.clone(),
    }
}

fn parsed<T: std::str::FromStr>(field: &'static str, raw: &str) -> Result<T, DocumentError>
where
    T::Err: std::fmt::Display,
{
    raw.parse().map_err(|e: T::Err| DocumentError {
        field,
        detail: format!("{raw:?}: {e}"),
    })
}

/// A document read back: the signed message, its domain, the signature, and the signer it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The message.
    pub message: Receipt,
    /// Its domain.
    pub domain: Eip712Domain,
    /// The signature.
    pub signature: Bytes,
    /// The signer the document names (trust the one the operator publishes instead).
    pub named_signer: Address,
}

impl Signed {
    /// The EIP-712 digest of the message.
    pub fn digest(&self) -> B256 {
        self.message.eip712_signing_hash(&self.domain)
    }

    /// The address the signature recovers to, if it is a well-formed one.
    pub fn recovered(&self) -> Option<Address> {
        pactum_core::signature::recover(self.digest(), &self.signature)
    }
}

/// The signed message a document states, from its fields (not from its `typed_data` or
/// `digest`, which are conveniences: a verifier recomputes them).
pub fn signed(v: &ReceiptView) -> Result<Signed, DocumentError> {
    let escrow: Address = parsed("verifying_contract", &v.verifying_contract)?;
    Ok(Signed {
        message: Receipt {
            receiptId: v.receipt_id.clone(),
            agreementId: parsed("onchain_agreement_id", &v.onchain_agreement_id)?,
            apiAgreementId: v.agreement_id.clone().unwrap_or_default(),
            kind: v.kind.as_str().to_owned(),
            payer: parsed("payer", &v.payer)?,
            payee: parsed("payee", &v.payee)?,
            token: parsed("token", &v.token)?,
            amount: parsed("amount", &v.amount)?,
            chainId: U256::from(v.chain_id),
            emitter: parsed("emitter", &v.emitter)?,
            txHash: parsed("tx_hash", &v.tx_hash)?,
            logIndex: U256::from(v.log_index),
            blockNumber: U256::from(v.block_number),
            blockHash: parsed("block_hash", &v.block_hash)?,
            blockTime: U256::from(v.block_time),
        },
        domain: receipts_domain(v.chain_id, escrow),
        signature: parsed("signature", &v.signature)?,
        named_signer: parsed("signer", &v.signer)?,
    })
}
