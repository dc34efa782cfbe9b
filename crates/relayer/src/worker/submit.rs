//! Submits a batch of accepted jobs (step 3 of a round): simulated concurrently, then nonces
//! reserved, signed and stored in one database transaction, then broadcast in one JSON-RPC
//! batch in nonce order.

use alloy::primitives::{Address, Bytes};
use pactum_core::{Refusal, RefusalCode, escrow::authorization, sponsor};
use pactum_db::relay::{self, AttemptKind, NewAttempt};
use tokio::task::JoinSet;

use super::{
    Worker, now_ms,
    send::{Broadcast, classify},
};
use crate::{
    Error,
    chain::{self, Head, Simulation},
    failpoint,
    metrics::Sent,
};

impl Worker {
    /// Takes a batch of accepted jobs and submits them. True if the batch was full.
    pub(super) async fn submit(&self, head: &Head) -> Result<bool, Error> {
        let settings = self.relayer.settings().clone();
        let policy = &settings.policy;
        let tip = settings.priority_fee;
        if head.base_fee.saturating_add(tip) > policy.max_fee_per_gas {
            tracing::warn!(
                base_fee = head.base_fee,
                cap = policy.max_fee_per_gas,
                "base fee above the fee cap; holding submissions"
            );
            return Ok(false);
        }
        let (max_fee, tip) = settings.fees(head.base_fee);
        let pool = self.relayer.worker_db().pool().clone();
        let mut tx = pool.begin().await?;
        let jobs = relay::claim_accepted(&mut tx, settings.chain_id, settings.batch_size).await?;
        if jobs.is_empty() {
            return Ok(false);
        }
        let full = jobs.len() >= settings.batch_size as usize;

        // Simulate every job, concurrently, before anything is signed: with the gas of the
        // acceptance estimate (the reserved limit without its margin, so that the margin is
        // still there when it is mined), and estimated afresh only if that no longer suffices.
        let mut simulations = JoinSet::new();
        for (i, job) in jobs.iter().enumerate() {
            let provider = self.relayer.provider().clone();
            let (from, to, input) = (self.address, job.target, job.calldata.clone());
            let fees = (max_fee, tip);
            let limit = sponsor::estimate_of(job.gas_limit, settings.gas_margin_percent);
            let cap = policy.max_gas_per_action;
            simulations.spawn(async move {
                (
                    i,
                    chain::simulate_within(&provider, from, to, &input, fees, limit, cap).await,
                )
            });
        }
        // Per job: `None` while unknown, `Some(None)` if it fits without its margin.
        let mut results: Vec<Option<Option<Simulation>>> = (0..jobs.len()).map(|_| None).collect();
        while let Some(joined) = simulations.join_next().await {
            let (i, simulation) = joined.map_err(|e| Error::node("simulating", e))?;
            results[i] = Some(simulation?);
        }

        let mut ready = Vec::new();
        for (job, simulation) in jobs.iter().zip(results) {
            let refusal = if job.deadline <= head.timestamp {
                Some(Refusal::new(
                    RefusalCode::AuthorizationExpired,
                    format!("the deadline {} passed before submission", job.deadline),
                ))
            } else if !allowed(&settings, job.target, &job.calldata) {
                Some(not_sponsored())
            } else {
                match simulation {
                    Some(None) => {
                        ready.push((job, job.gas_limit));
                        None
                    }
                    Some(Some(Simulation::Reverts(refusal))) => Some(refusal),
                    Some(Some(Simulation::Ok(gas))) if gas > policy.max_gas_per_action => {
                        Some(gas_ceiling(gas))
                    }
                    // The call needs more than the acceptance estimate. It is signed with no more
                    // gas than was reserved (and charged to the quotas and the budget) at
                    // acceptance; one that now needs more is refused, and the party may post it
                    // again to reserve anew under today's quotas.
                    Some(Some(Simulation::Ok(gas))) if gas > job.gas_limit => Some(Refusal::new(
                        RefusalCode::GasCeilingExceeded,
                        format!(
                            "the call now needs about {gas} gas, more than the {} reserved at \
                                 acceptance; post it again to reserve anew",
                            job.gas_limit
                        ),
                    )),
                    Some(Some(Simulation::Ok(_))) => {
                        ready.push((job, job.gas_limit));
                        None
                    }
                    None => None,
                }
            };
            if let Some(refusal) = refusal {
                tracing::info!(relay_id = %job.id, code = refusal.code.as_str(), detail = %refusal.detail, "job refused at submission (no transaction)");
                relay::fail_unsubmitted(&mut tx, &job.id, refusal.code, &refusal.detail).await?;
            }
        }

        let mut signed = Vec::with_capacity(ready.len());
        if !ready.is_empty() {
            let first =
                relay::reserve_nonces(&mut tx, settings.chain_id, self.address, ready.len() as u64)
                    .await?;
            failpoint::hit("after_nonce_reservation");
            for (i, (job, gas_limit)) in ready.iter().enumerate() {
                let nonce = first + i as u64;
                let s = self.sign(
                    job.target,
                    job.calldata.clone(),
                    nonce,
                    *gas_limit,
                    max_fee,
                    tip,
                )?;
                signed.push((s, job.created_ms, nonce));
            }
            let attempts: Vec<NewAttempt<'_>> = ready
                .iter()
                .zip(&signed)
                .map(|((job, gas_limit), (s, _, nonce))| NewAttempt {
                    tx_hash: s.hash,
                    chain_id: settings.chain_id,
                    job_id: Some(&job.id),
                    kind: AttemptKind::Action,
                    relayer: self.address,
                    nonce: *nonce,
                    max_fee_per_gas: max_fee,
                    max_priority_fee_per_gas: tip,
                    gas_limit: *gas_limit,
                    raw: &s.raw,
                })
                .collect();
            relay::insert_actions(&mut tx, settings.chain_id, self.address, &attempts).await?;
        }
        tx.commit().await?;
        failpoint::hit("after_commit");

        // One JSON-RPC batch, in nonce order (a node that mines on arrival can then put several
        // in one block).
        let raws: Vec<&Bytes> = signed.iter().map(|(s, _, _)| &s.raw).collect();
        let answers: Vec<Result<Broadcast, Error>> =
            chain::send_raw_batch(self.relayer.provider(), &raws)
                .await
                .into_iter()
                .map(classify)
                .collect();
        let mut taken = Vec::with_capacity(signed.len());
        for ((s, created_ms, nonce), answer) in signed.iter().zip(answers) {
            match answer {
                Ok(Broadcast::Taken) => {
                    taken.push(s.hash);
                    self.relayer
                        .metrics()
                        .submitted_after((now_ms() - created_ms).max(0) as f64 / 1000.0);
                }
                Ok(Broadcast::NonceUsed) => {}
                Ok(Broadcast::Underpriced) => taken.push(s.hash),
                Ok(Broadcast::Refused(reason)) => {
                    // Those the node took after it wait behind this nonce; the next round
                    // broadcasts it again (and any it did not take).
                    tracing::warn!(
                        nonce,
                        reason,
                        "node refused a submission; retrying next round"
                    );
                }
                Err(err) => {
                    tracing::warn!(nonce, %err, "broadcast failed; retrying next round");
                    break;
                }
            }
        }
        failpoint::hit("after_broadcast");
        relay::mark_broadcast(&pool, &taken, head.number).await?;
        self.relayer.metrics().sent(Sent::First, taken.len() as u64);
        if !taken.is_empty() {
            tracing::debug!(signer = %self.address, submitted = taken.len(), "batch broadcast");
        }
        Ok(full)
    }
}

/// The policy's contract and function allowlist.
pub(super) fn allowed(settings: &crate::Settings, target: Address, calldata: &[u8]) -> bool {
    authorization::is_sponsored_call(settings.escrow, target, calldata)
}

pub(super) fn not_sponsored() -> Refusal {
    Refusal::new(
        RefusalCode::PolicyViolation,
        "the call is not to a sponsored contract and function",
    )
}

fn gas_ceiling(gas: u64) -> Refusal {
    Refusal::new(
        RefusalCode::GasCeilingExceeded,
        format!("the call now needs about {gas} gas"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_escrows_sponsored_functions_are_allowed() {
        let settings = crate::Settings::new(1, Address::repeat_byte(0xe5), Address::repeat_byte(2));
        use alloy::sol_types::SolCall;
        let close = pactum_bindings::AgreementEscrow::initiateCloseWithSigCall::SELECTOR;
        assert!(allowed(&settings, settings.escrow, &close));
        assert!(!allowed(&settings, settings.fee_collector, &close));
        let direct = pactum_bindings::AgreementEscrow::initiateCloseCall::SELECTOR;
        assert!(!allowed(&settings, settings.escrow, &direct));
        assert!(!allowed(&settings, settings.escrow, &close[..3]));
    }
}
