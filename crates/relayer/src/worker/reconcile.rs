//! Settles, re-sends, replaces, cancels and fills a key's open nonces (step 2 of a round).

use std::collections::{BTreeMap, HashMap};

use alloy::{primitives::B256, providers::Provider, rpc::types::TransactionReceipt};
use pactum_core::{AttemptOutcome, Refusal, RefusalCode};
use pactum_db::relay::{self, Attempt, AttemptKind, JobState, Mined};

use super::{Worker, now_ms};
use crate::{
    Error,
    chain::{self, Head},
    metrics::Sent,
};

/// Nonces a worker fills per round at most (a chain whose nonce went far back).
const MAX_FILL: u64 = 256;

impl Worker {
    /// Settles, re-sends, replaces, cancels and fills the key's open nonces. True if the head
    /// of the queue is held back by the fee cap.
    pub(super) async fn reconcile(
        &mut self,
        head: &Head,
        chain_nonce: u64,
        next: u64,
    ) -> Result<bool, Error> {
        let settings = self.relayer.settings().clone();
        let pool = self.relayer.worker_db().pool().clone();
        let provider = self.relayer.provider().clone();
        let mut slots: BTreeMap<u64, Vec<Attempt>> = BTreeMap::new();
        for attempt in relay::open_attempts(&pool, settings.chain_id, self.address).await? {
            slots.entry(attempt.nonce).or_default().push(attempt);
        }
        self.foreign.retain(|nonce, _| slots.contains_key(nonce));

        // Nonces the chain has used: the receipts of every attempt at them, in one batch.
        let used: Vec<&Attempt> = slots.range(..chain_nonce).flat_map(|(_, a)| a).collect();
        let hashes: Vec<B256> = used.iter().map(|a| a.tx_hash).collect();
        let mut receipts: HashMap<B256, TransactionReceipt> = HashMap::new();
        for (hash, receipt) in hashes
            .iter()
            .zip(chain::receipts(&provider, &hashes).await?)
        {
            if let Some(receipt) = receipt {
                receipts.insert(*hash, receipt);
            }
        }
        let mut finished = Vec::new();
        for (&nonce, attempts) in slots.range(..chain_nonce) {
            let mut mined = None;
            let mut known = false;
            for attempt in attempts.iter().rev() {
                if let Some(receipt) = receipts.get(&attempt.tx_hash) {
                    mined = Some((attempt, receipt));
                    break;
                }
                // Known as mined (by a node whose receipts lag): not foreign.
                known |= provider
                    .get_transaction_by_hash(attempt.tx_hash)
                    .await
                    .map_err(|e| Error::node("looking up a transaction", e))?
                    .is_some_and(|tx| tx.block_number.is_some());
            }
            let Some((attempt, receipt)) = mined else {
                // No receipt for any of ours. Only after several rounds and blocks, and while
                // the node knows none of them, is the nonce taken to be used by someone else (a
                // lagging node behind a load balancer must not re-queue a mined job).
                let (rounds, since, at) = self.foreign.entry(nonce).or_insert((
                    0,
                    head.number,
                    std::time::Instant::now(),
                ));
                *rounds += 1;
                // Two blocks later, or (a chain that only mines on demand) after `stuck_after`.
                let settled = head.number >= *since + 2 || at.elapsed() >= settings.stuck_after;
                if !known && *rounds >= 3 && settled {
                    tracing::warn!(signer = %self.address, nonce, "nonce used on chain by a transaction the relayer did not sign; re-queueing its job");
                    let mut tx = pool.begin().await?;
                    relay::release_foreign_nonce(&mut tx, settings.chain_id, self.address, nonce)
                        .await?;
                    tx.commit().await?;
                    self.foreign.remove(&nonce);
                }
                continue;
            };
            let block = receipt.block_number.unwrap_or(head.number);
            if block + settings.confirmations > head.number + 1 {
                continue;
            }
            let revert = if !receipt.status() && attempt.kind == AttemptKind::Action {
                Some(self.why_reverted(attempt, receipt.gas_used, block).await?)
            } else {
                None
            };
            let (revert, strike) = match revert {
                Some((failure, detail, strike)) => (Some((failure, detail)), strike),
                None => (None, None),
            };
            let outcome = Mined {
                tx_hash: attempt.tx_hash,
                success: receipt.status(),
                block_number: block,
                gas_used: receipt.gas_used,
                gas_price: receipt.effective_gas_price,
                revert,
                strike,
            };
            finished.push((nonce, attempt, outcome));
        }
        // Every nonce settled this round, in one transaction.
        if !finished.is_empty() {
            let mut tx = pool.begin().await?;
            for (nonce, _, outcome) in &finished {
                relay::resolve_mined(&mut tx, settings.chain_id, self.address, *nonce, outcome)
                    .await?;
            }
            tx.commit().await?;
        }
        for (nonce, attempt, outcome) in finished {
            self.foreign.remove(&nonce);
            if let Some(job) = self.job(attempt).await? {
                let latency =
                    (job.created_ms > 0).then(|| (now_ms() - job.created_ms) as f64 / 1000.0);
                self.relayer.metrics().finished(
                    job.action.as_str(),
                    job.state == JobState::Confirmed,
                    outcome.gas_used,
                    outcome.gas_used as f64 * outcome.gas_price as f64,
                    latency,
                );
                tracing::info!(relay_id = %job.id, tx = %outcome.tx_hash, block = outcome.block_number, state = job.state.as_str(), "relay job finished");
            }
        }

        // Nonces the chain went back to that no open attempt holds. One of ours mined there
        // before (a reorg took it out) is broadcast again; any other is filled with a no-op, or
        // the nonces above could never be mined.
        for nonce in chain_nonce..next.min(chain_nonce + MAX_FILL) {
            if slots.contains_key(&nonce) {
                continue;
            }
            let earlier = relay::attempts_at(&pool, settings.chain_id, self.address, nonce).await?;
            if let Some(mined) = earlier
                .iter()
                .find(|a| a.outcome == Some(AttemptOutcome::Mined))
            {
                tracing::warn!(signer = %self.address, nonce, tx = %mined.tx_hash, "a mined transaction left the chain (reorg?); broadcasting it again");
                self.broadcast(&mined.raw).await?;
                continue;
            }
            tracing::warn!(signer = %self.address, nonce, chain_nonce, "nonce gap; filling it with a no-op");
            self.fill(nonce, head).await?;
        }

        // Nonces still pending.
        let stuck_after = i64::try_from(settings.stuck_after.as_millis()).unwrap_or(i64::MAX);
        let mut blocked = false;
        for (&nonce, attempts) in slots.range(chain_nonce..) {
            let Some(latest) = attempts.last() else {
                continue;
            };
            // An action whose authorization has expired can only revert: cancel it now, not
            // when it reaches the head of the queue.
            if latest.kind == AttemptKind::Action
                && latest.deadline.is_some_and(|d| d <= head.timestamp)
                && let Some(job) = self.job(latest).await?
            {
                let why = Refusal::new(
                    RefusalCode::AuthorizationExpired,
                    format!(
                        "the deadline {} passed before the transaction was mined",
                        job.deadline
                    ),
                );
                self.cancel(attempts, &job, &why, head).await?;
                continue;
            }
            match latest.broadcast_ms {
                None => blocked |= self.resend(attempts, head, Sent::First).await?,
                Some(at) if now_ms() - at > stuck_after => {
                    let known = provider
                        .get_transaction_by_hash(latest.tx_hash)
                        .await
                        .map_err(|e| Error::node("looking up a pending transaction", e))?
                        .is_some();
                    // Replaced only when blocks were mined without it (a halted chain is no
                    // reason to pay more) or it is priced under the base fee.
                    let passed_over = latest.broadcast_block.is_some_and(|b| head.number > b);
                    if !known {
                        tracing::warn!(tx = %latest.tx_hash, nonce, "the node forgot a pending transaction; broadcasting it again");
                        blocked |= self.resend(attempts, head, Sent::Rebroadcast).await?;
                    } else if latest.max_fee_per_gas < head.base_fee
                        || (nonce == chain_nonce && passed_over)
                    {
                        blocked |= self.bump(attempts, head).await?;
                    } else {
                        relay::mark_broadcast(&pool, &[latest.tx_hash], head.number).await?;
                    }
                }
                Some(_) => {}
            }
        }
        Ok(blocked)
    }
}
