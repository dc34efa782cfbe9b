//! What a worker does with a pending nonce: re-check the action against the chain, broadcast it
//! again, replace it with a higher fee, cancel it with a no-op when it can no longer succeed,
//! and fill a nonce no job holds. Each new transaction takes [`Worker::sign_store_send`].

use alloy::primitives::Bytes;
use pactum_core::{Refusal, RefusalCode, sponsor};
use pactum_db::relay::{self, Attempt, AttemptKind, Job};

use super::{
    Worker,
    send::{Broadcast, Draft, Signed},
    submit::{allowed, not_sponsored},
};
use crate::{
    Error,
    chain::{self, Head, Simulation},
    metrics::Sent,
};

/// Gas of a plain transfer (the cancelling and gap-filling no-ops).
const TRANSFER_GAS: u64 = 21_000;

impl Worker {
    /// Re-checks a pending action: `Some(job)` if it can still succeed, or `None` after
    /// cancelling it (or when it has no job: a cancel or a fill).
    pub(super) async fn recheck(
        &self,
        attempts: &[Attempt],
        head: &Head,
    ) -> Result<Option<Job>, Error> {
        let Some(latest) = attempts.last() else {
            return Ok(None);
        };
        if latest.kind != AttemptKind::Action {
            return Ok(None);
        }
        let Some(job) = self.job(latest).await? else {
            return Ok(None);
        };
        let settings = self.relayer.settings();
        let why = if job.deadline <= head.timestamp {
            Some(Refusal::new(
                RefusalCode::AuthorizationExpired,
                format!(
                    "the deadline {} passed before the transaction was mined",
                    job.deadline
                ),
            ))
        } else if !allowed(settings, job.target, &job.calldata) {
            Some(not_sponsored())
        } else {
            let fees = settings.fees(head.base_fee);
            match chain::simulate(
                self.relayer.provider(),
                self.address,
                job.target,
                &job.calldata,
                fees,
                settings.policy.max_gas_per_action,
            )
            .await?
            {
                Simulation::Reverts(refusal) => Some(refusal),
                Simulation::Ok(_) => None,
            }
        };
        match why {
            Some(why) => {
                self.cancel(attempts, &job, &why, head).await?;
                Ok(None)
            }
            None => Ok(Some(job)),
        }
    }

    /// (Re)broadcasts the latest attempt at a nonce, re-checking an action first. True if it is
    /// held back by the fee cap.
    pub(super) async fn resend(
        &self,
        attempts: &[Attempt],
        head: &Head,
        what: Sent,
    ) -> Result<bool, Error> {
        let Some(latest) = attempts.last() else {
            return Ok(false);
        };
        // Priced under the base fee, the stored bytes would be refused (a node evicts such
        // transactions, too): replace them instead.
        if latest.max_fee_per_gas < head.base_fee {
            return self.bump(attempts, head).await;
        }
        if latest.kind == AttemptKind::Action && self.recheck(attempts, head).await?.is_none() {
            return Ok(false);
        }
        let stored = Signed {
            hash: latest.tx_hash,
            raw: latest.raw.clone(),
        };
        match self.send_stored(&stored, latest.nonce, what, head).await? {
            // The node will not take these bytes as they are (its price floor, or its own
            // replacement rule): replace them.
            Broadcast::Refused(_) if latest.broadcast_ms.is_some() => {
                self.bump(attempts, head).await
            }
            _ => Ok(false),
        }
    }

    /// Replaces the latest attempt at a nonce with the same transaction at a higher fee: at least
    /// `fee_bump_percent` more on both fees, and at least `2 × base fee + tip`, but for an action
    /// never above the fee cap (a cancel or a fill has none). An action that can no longer
    /// succeed is cancelled instead. True if the fee cap holds it back.
    pub(super) async fn bump(&self, attempts: &[Attempt], head: &Head) -> Result<bool, Error> {
        let Some(latest) = attempts.last() else {
            return Ok(false);
        };
        let settings = self.relayer.settings();
        let percent = settings.bump_percent();
        let sent = (latest.max_fee_per_gas, latest.max_priority_fee_per_gas);
        let (to, input, fees) = match latest.kind {
            AttemptKind::Action => {
                let Some(job) = self.recheck(attempts, head).await? else {
                    return Ok(false);
                };
                let cap = settings.policy.max_fee_per_gas;
                let Some(fees) = sponsor::capped_replacement_fees(
                    sent,
                    head.base_fee,
                    percent,
                    settings.priority_fee,
                    cap,
                ) else {
                    tracing::warn!(relay_id = %job.id, base_fee = head.base_fee, cap, "fee cap reached; holding the transaction");
                    relay::mark_broadcast(
                        self.relayer.worker_db().pool(),
                        &[latest.tx_hash],
                        head.number,
                    )
                    .await?;
                    return Ok(true);
                };
                (job.target, job.calldata, fees)
            }
            AttemptKind::Cancel | AttemptKind::Fill => (
                self.address,
                Bytes::new(),
                sponsor::replacement_fees(sent, head.base_fee, percent, settings.priority_fee),
            ),
        };
        let draft = Draft {
            kind: latest.kind,
            job_id: latest.job_id.as_deref(),
            to,
            input,
            nonce: latest.nonce,
            gas_limit: latest.gas_limit,
            fees,
        };
        let signed = self
            .sign_store_send(draft, None, Sent::Replacement, head)
            .await?;
        let (max_fee, tip) = fees;
        tracing::info!(nonce = latest.nonce, old = %latest.tx_hash, new = %signed.hash, max_fee, tip, "fee-bumped replacement");
        Ok(false)
    }

    /// Replaces a job that can no longer succeed with a no-op at its nonce. No fee cap applies:
    /// the nonce must be freed, or every later one waits behind it.
    pub(super) async fn cancel(
        &self,
        attempts: &[Attempt],
        job: &Job,
        why: &Refusal,
        head: &Head,
    ) -> Result<(), Error> {
        let Some(latest) = attempts.last() else {
            return Ok(());
        };
        // The simulation fails too when the action itself was mined since the round began:
        // then there is nothing to cancel, and the next round resolves the nonce.
        if self.chain_nonce().await? > latest.nonce {
            return Ok(());
        }
        let settings = self.relayer.settings();
        let fees = sponsor::replacement_fees(
            (latest.max_fee_per_gas, latest.max_priority_fee_per_gas),
            head.base_fee,
            settings.bump_percent(),
            settings.priority_fee,
        );
        tracing::warn!(relay_id = %job.id, nonce = latest.nonce, code = why.code.as_str(), detail = %why.detail, "job can no longer succeed; cancelling its nonce");
        let draft = Draft {
            kind: AttemptKind::Cancel,
            job_id: Some(&job.id),
            to: self.address,
            input: Bytes::new(),
            nonce: latest.nonce,
            gas_limit: TRANSFER_GAS,
            fees,
        };
        self.sign_store_send(draft, Some(why), Sent::Cancel, head)
            .await?;
        Ok(())
    }

    /// A no-op at a nonce no job holds.
    pub(super) async fn fill(&self, nonce: u64, head: &Head) -> Result<(), Error> {
        let tip = self.relayer.settings().priority_fee;
        let draft = Draft {
            kind: AttemptKind::Fill,
            job_id: None,
            to: self.address,
            input: Bytes::new(),
            nonce,
            gas_limit: TRANSFER_GAS,
            fees: (head.base_fee * 2 + tip, tip),
        };
        self.sign_store_send(draft, None, Sent::Fill, head).await?;
        Ok(())
    }
}
