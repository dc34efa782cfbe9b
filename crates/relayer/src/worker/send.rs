//! The one path every transaction of a worker takes: signed with the key, stored (with the
//! nonce it uses, in the same database transaction as any state change it stands for), then
//! broadcast, and what the node said recorded. A crash anywhere leaves the signed bytes in the
//! database, and the next round broadcasts them again.

use alloy::{
    consensus::{SignableTransaction, TxEip1559, TxEnvelope},
    eips::Encodable2718,
    network::TxSignerSync,
    primitives::{Address, B256, Bytes, TxKind, U256},
    providers::Provider,
    transports::{RpcError, TransportErrorKind},
};
use pactum_core::Refusal;
use pactum_db::relay::{self, AttemptKind, NewAttempt};

use super::Worker;
use crate::{Error, chain::Head, failpoint, metrics::Sent};

/// A signed transaction: its hash and EIP-2718 bytes.
#[derive(Debug, Clone)]
pub(super) struct Signed {
    pub(super) hash: B256,
    pub(super) raw: Bytes,
}

/// What the node said to a broadcast.
#[derive(Debug)]
pub(super) enum Broadcast {
    /// The node has it.
    Taken,
    /// The nonce is already used on chain.
    NonceUsed,
    /// The node keeps another transaction at this nonce with a fee at least as high.
    Underpriced,
    /// The node refused it for another reason (funds, limits).
    Refused(String),
}

/// A single transaction to sign at a nonce the key already holds (a replacement, a cancel or a
/// fill; a batch of new actions takes [`Worker::sign`] and `relay::insert_actions`).
#[derive(Debug)]
pub(super) struct Draft<'a> {
    pub(super) kind: AttemptKind,
    /// The job it belongs to (none for a fill).
    pub(super) job_id: Option<&'a str>,
    pub(super) to: Address,
    pub(super) input: Bytes,
    pub(super) nonce: u64,
    pub(super) gas_limit: u64,
    /// `(max_fee_per_gas, max_priority_fee_per_gas)`.
    pub(super) fees: (u128, u128),
}

impl Worker {
    pub(super) fn sign(
        &self,
        to: Address,
        input: Bytes,
        nonce: u64,
        gas_limit: u64,
        max_fee: u128,
        tip: u128,
    ) -> Result<Signed, Error> {
        let mut tx = TxEip1559 {
            chain_id: self.relayer.settings().chain_id,
            nonce,
            gas_limit,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: tip.min(max_fee),
            to: TxKind::Call(to),
            value: U256::ZERO,
            access_list: Default::default(),
            input,
        };
        let signature = self.signer.sign_transaction_sync(&mut tx)?;
        let signed = tx.into_signed(signature);
        let hash = *signed.hash();
        let raw = TxEnvelope::from(signed).encoded_2718();
        Ok(Signed {
            hash,
            raw: raw.into(),
        })
    }

    /// Signs `draft`, stores it (and, for a cancel, marks its job `cancelling` for `why`, in the
    /// same transaction), then broadcasts it.
    pub(super) async fn sign_store_send(
        &self,
        draft: Draft<'_>,
        why: Option<&Refusal>,
        what: Sent,
        head: &Head,
    ) -> Result<Signed, Error> {
        let (max_fee, tip) = draft.fees;
        let signed = self.sign(
            draft.to,
            draft.input,
            draft.nonce,
            draft.gas_limit,
            max_fee,
            tip,
        )?;
        let mut tx = self.relayer.worker_db().pool().begin().await?;
        relay::insert_attempt(
            &mut tx,
            &NewAttempt {
                tx_hash: signed.hash,
                chain_id: self.relayer.settings().chain_id,
                job_id: draft.job_id,
                kind: draft.kind,
                relayer: self.address,
                nonce: draft.nonce,
                max_fee_per_gas: max_fee,
                max_priority_fee_per_gas: tip,
                gas_limit: draft.gas_limit,
                raw: &signed.raw,
            },
        )
        .await?;
        if let (Some(job_id), Some(why)) = (draft.job_id, why) {
            relay::set_cancelling(&mut tx, job_id, why.code, &why.detail).await?;
        }
        tx.commit().await?;
        if what == Sent::Replacement {
            failpoint::hit("mid_fee_bump");
        }
        self.relayer.metrics().sent(what, 1);
        self.send_stored(&signed, draft.nonce, what, head).await?;
        Ok(signed)
    }

    pub(super) async fn broadcast(&self, raw: &Bytes) -> Result<Broadcast, Error> {
        classify(
            self.relayer
                .provider()
                .send_raw_transaction(raw)
                .await
                .map(|pending| *pending.tx_hash()),
        )
    }

    /// Broadcasts a stored transaction at `nonce` and records what the node said.
    pub(super) async fn send_stored(
        &self,
        signed: &Signed,
        nonce: u64,
        what: Sent,
        head: &Head,
    ) -> Result<Broadcast, Error> {
        let pool = self.relayer.worker_db().pool();
        let outcome = self.broadcast(&signed.raw).await?;
        match &outcome {
            Broadcast::Taken => {
                if what == Sent::First || what == Sent::Rebroadcast {
                    self.relayer.metrics().sent(what, 1);
                }
                relay::mark_broadcast(pool, &[signed.hash], head.number).await?;
            }
            Broadcast::Underpriced => {
                // Another transaction holds the nonce in the pool with at least this fee; look
                // again after `stuck_after`.
                tracing::warn!(tx = %signed.hash, nonce, "node holds another transaction at this nonce");
                relay::mark_broadcast(pool, &[signed.hash], head.number).await?;
            }
            Broadcast::NonceUsed => {}
            Broadcast::Refused(reason) => {
                tracing::warn!(tx = %signed.hash, nonce, reason, "node refused a transaction");
            }
        }
        Ok(outcome)
    }
}

/// What the node's answer to a broadcast means.
pub(super) fn classify(
    answer: Result<B256, RpcError<TransportErrorKind>>,
) -> Result<Broadcast, Error> {
    let Err(err) = answer else {
        return Ok(Broadcast::Taken);
    };
    let message = err.to_string().to_lowercase();
    if message.contains("already known")
        || message.contains("known transaction")
        || message.contains("already imported")
    {
        Ok(Broadcast::Taken)
    } else if message.contains("nonce too low") {
        Ok(Broadcast::NonceUsed)
    } else if message.contains("replacement transaction underpriced") {
        Ok(Broadcast::Underpriced)
    } else if err.as_error_resp().is_some() {
        // Including a plain "underpriced" (under the node's price floor): the node does not
        // have it.
        Ok(Broadcast::Refused(message))
    } else {
        Err(Error::node("broadcasting a transaction", err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(message: &'static str) -> Result<B256, RpcError<TransportErrorKind>> {
        // The payload type is not re-exported with the features this crate uses; it
        // deserialises from a node's JSON like any error response.
        let payload = serde_json::json!({ "code": -32000, "message": message });
        Err(RpcError::ErrorResp(
            serde_json::from_value(payload).unwrap(),
        ))
    }

    fn kind(answer: Result<B256, RpcError<TransportErrorKind>>) -> &'static str {
        match classify(answer) {
            Ok(Broadcast::Taken) => "taken",
            Ok(Broadcast::NonceUsed) => "nonce_used",
            Ok(Broadcast::Underpriced) => "underpriced",
            Ok(Broadcast::Refused(_)) => "refused",
            Err(_) => "error",
        }
    }

    #[test]
    fn a_node_that_has_the_transaction_took_it() {
        assert_eq!(kind(Ok(B256::ZERO)), "taken");
        assert_eq!(kind(refused("already known")), "taken");
        assert_eq!(kind(refused("Known transaction: 0xab")), "taken");
        assert_eq!(kind(refused("transaction already imported")), "taken");
    }

    #[test]
    fn a_used_nonce_and_a_low_replacement_fee_are_told_apart() {
        assert_eq!(
            kind(refused("nonce too low: next nonce 5, tx nonce 4")),
            "nonce_used"
        );
        assert_eq!(
            kind(refused("replacement transaction underpriced")),
            "underpriced"
        );
        // Under the node's price floor: the node does not have it.
        assert_eq!(kind(refused("transaction underpriced")), "refused");
        assert_eq!(
            kind(refused("insufficient funds for gas * price + value")),
            "refused"
        );
    }

    #[test]
    fn a_transport_failure_is_the_relayers_not_a_verdict() {
        let answer = Err(RpcError::local_usage_str("connection reset"));
        assert_eq!(kind(answer), "error");
    }
}
