//! The issuer: a receipt for each money movement the index holds in a final block, signed with
//! the service's receipt key and stored in one insert (which also announces it as
//! `receipt.issued`). One per log, however often it looks (the id is the log's place); safe to
//! run in several processes (a second insert of the same receipt does nothing).
//!
//! A log it will never issue a receipt for (nothing moved, it does not decode, its agreement's
//! token is unknown) is recorded as a skip with its reason, and counted: it holds nothing up and
//! goes unnoticed by nobody. A log it cannot finish now (the node does not answer for its block)
//! is left for the next round, and keeps the checkpoint below it.

use std::{collections::HashMap, time::Duration};

use alloy::{
    primitives::{Address, B256, Bytes, LogData},
    providers::{DynProvider, Provider},
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::SolStruct,
};
use pactum_bindings::eip712::receipts_domain;
use pactum_core::{
    escrow::events::Contracts,
    receipt::{self, ReceiptKind},
};
use pactum_db::{
    Db,
    receipts::{self as store, StoredReceipt, Unreceipted},
};
use tokio::sync::watch;

use crate::document;

/// Why a round of issuing stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database.
    #[error(transparent)]
    Db(#[from] pactum_db::Error),
    /// The node (for a block's time).
    #[error("reading block {block} from the node: {detail}")]
    Node {
        /// The block.
        block: B256,
        /// What went wrong.
        detail: String,
    },
    /// Signing.
    #[error("signing a receipt: {0}")]
    Sign(String),
    /// The node serves another chain than the one configured.
    #[error("the node serves chain {node}, the issuer is configured for chain {configured}")]
    WrongChain {
        /// The node's.
        node: u64,
        /// The configuration's.
        configured: u64,
    },
}

/// Issues receipts for chain `chain_id`'s deployment.
#[derive(Debug, Clone)]
pub struct Issuer {
    db: Db,
    provider: DynProvider,
    key: PrivateKeySigner,
    chain_id: u64,
    contracts: Contracts,
    /// How often the index is looked at.
    pub poll_interval: Duration,
}

/// The most logs looked at per round.
const BATCH: u32 = 500;

impl Issuer {
    /// An issuer signing with `key`.
    pub fn new(
        db: Db,
        provider: DynProvider,
        key: PrivateKeySigner,
        chain_id: u64,
        contracts: Contracts,
    ) -> Self {
        Self {
            db,
            provider,
            key,
            chain_id,
            contracts,
            poll_interval: Duration::from_secs(1),
        }
    }

    /// The address receipts are signed by.
    pub fn signer(&self) -> Address {
        self.key.address()
    }

    /// Issues receipts until `stop` turns true (after checking that the node serves the
    /// configured chain).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        match self.provider.get_chain_id().await {
            Ok(node) if node != self.chain_id => {
                tracing::error!(err = %Error::WrongChain { node, configured: self.chain_id }, "receipt issuer not started");
                return;
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(%err, "could not read the node's chain id; going on"),
        }
        tracing::info!(signer = %self.signer(), "receipt issuer started");
        while !*stop.borrow() {
            match self.issue_pending().await {
                Ok(n) if n > 0 => tracing::info!(issued = n, "receipts issued"),
                Ok(_) => {}
                Err(err) => tracing::warn!(%err, "issuing receipts failed; retrying"),
            }
            tokio::select! {
                () = tokio::time::sleep(self.poll_interval) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// One round: a receipt for each final log that states a movement and has neither a
    /// receipt nor a skip (up to 500); then the checkpoint moves up to the last block whose
    /// logs are all handled. Returns how many receipts were issued.
    pub async fn issue_pending(&self) -> Result<usize, Error> {
        let mut conn = self.db.acquire().await?;
        let Some(finalized) = store::finalized_block(&mut conn, self.chain_id).await? else {
            return Ok(0);
        };
        let logs =
            store::unreceipted(&mut conn, self.chain_id, &ReceiptKind::EVENTS, BATCH).await?;
        let full = logs.len() == BATCH as usize;
        let mut times: HashMap<B256, u64> = HashMap::new();
        let mut issued = 0;
        // The first block with a log left for later, if any.
        let mut held: Option<u64> = None;
        let last = logs.last().map(|l| l.block_number);
        for log in logs {
            let mut r = match self.receipt_of(&log) {
                Ok(r) => r,
                Err(reason) => {
                    tracing::warn!(block = %log.block_hash, log = log.log_index, tx = %log.tx_hash, reason, "no receipt for a movement log");
                    store::skip(
                        &mut conn,
                        self.chain_id,
                        log.block_hash,
                        log.log_index,
                        &reason,
                    )
                    .await?;
                    continue;
                }
            };
            r.block_time = match times.get(&log.block_hash) {
                Some(t) => *t,
                None => match self.provider.get_block_by_hash(log.block_hash).await {
                    Ok(Some(block)) => {
                        times.insert(log.block_hash, block.header.timestamp);
                        block.header.timestamp
                    }
                    // The node cannot say now: try again next round.
                    Ok(None) | Err(_) => {
                        tracing::warn!(block = %log.block_hash, "the node did not return a block; its receipts wait");
                        held = Some(held.map_or(log.block_number, |h| h.min(log.block_number)));
                        continue;
                    }
                },
            };
            let domain = receipts_domain(self.chain_id, self.contracts.escrow);
            let digest = document::message(&r).eip712_signing_hash(&domain);
            let signature = self
                .key
                .sign_hash_sync(&digest)
                .map_err(|e| Error::Sign(e.to_string()))?;
            r.signature = Bytes::copy_from_slice(&signature.as_bytes());
            if store::insert(&mut conn, &r).await? {
                issued += 1;
            }
        }
        // Handled up to: the block before the first one held back; else, on a full page, the
        // block before the page's last (more of it may follow); else the index's final block.
        let upto = match (held, full, last) {
            (Some(h), _, _) => h.saturating_sub(1),
            (None, true, Some(last)) => last.saturating_sub(1),
            _ => finalized,
        };
        store::advance_checkpoint(&mut conn, self.chain_id, upto).await?;
        Ok(issued)
    }

    /// The receipt (unsigned, without its block's time) of `log`, or why it gets none.
    fn receipt_of(&self, log: &Unreceipted) -> Result<StoredReceipt, String> {
        let topics = log.topics.chunks_exact(32).map(B256::from_slice).collect();
        let data = LogData::new(topics, log.data.clone().into())
            .ok_or_else(|| "the log has more than four topics".to_owned())?;
        let event = self
            .contracts
            .decode(log.contract, &data)
            .map_err(|e| format!("the log does not decode: {e}"))?;
        let m = receipt::movement(&event, self.contracts)
            .ok_or_else(|| "nothing moved (an amount of zero)".to_owned())?;
        let token = m.token.or(log.agreement_token).ok_or_else(|| {
            format!(
                "the token of agreement {} is unknown (its activation is not indexed)",
                m.agreement_id
            )
        })?;
        Ok(StoredReceipt {
            id: receipt::receipt_id(self.chain_id, log.block_hash, log.log_index),
            seq: 0,
            chain_id: self.chain_id,
            kind: m.kind,
            onchain_agreement_id: m.agreement_id,
            agreement_id: log.agreement_id.clone(),
            buyer_agent_id: log.buyer_agent_id.clone(),
            seller_agent_id: log.seller_agent_id.clone(),
            payer: m.payer,
            payee: m.payee,
            token,
            amount: m.amount,
            emitter: log.contract,
            tx_hash: log.tx_hash,
            log_index: log.log_index,
            block_number: log.block_number,
            block_hash: log.block_hash,
            block_time: 0,
            verifying_contract: self.contracts.escrow,
            signer: self.key.address(),
            signature: Bytes::new(),
            issued_at: String::new(),
        })
    }
}
