//! A signer key's writer: submits accepted jobs and drives every nonce it used to an outcome.
//!
//! Each round ([`Worker::run`]):
//! 1. reads the head, the key's mined nonce and balance;
//! 2. **reconciles** the open nonces (those with attempts whose outcome is unknown): a nonce the
//!    chain has used is resolved from the receipt of whichever attempt was mined; one used by a
//!    transaction the relayer did not sign (seen twice) puts its job back in the queue for a new
//!    nonce; a nonce the chain skipped back to (a gap) is filled with a no-op; an attempt never
//!    broadcast (crash, node down) is broadcast; one the node forgot is broadcast again, byte for
//!    byte; one stuck at the head of the queue, or priced under the base fee, is replaced with a
//!    higher fee. Every action is simulated again before it is (re)broadcast, and one that can no
//!    longer succeed is replaced by a cancelling no-op at its nonce;
//! 3. **submits** a batch of accepted jobs: simulates them, and in one database transaction
//!    reserves their nonces, signs them and stores the signed bytes; then broadcasts them in
//!    nonce order and records that.
//!
//! The database is the truth; the worker keeps nothing in memory that a restart would miss.

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use alloy::{
    consensus::{SignableTransaction, TxEip1559, TxEnvelope},
    eips::Encodable2718,
    network::TxSignerSync,
    primitives::{Address, B256, Bytes, TxKind, U256},
    providers::Provider,
    signers::local::PrivateKeySigner,
};
use pactum_db::relay::{self, Attempt, AttemptKind, Job, JobState, Mined, NewAttempt};
use tokio::{sync::watch, task::JoinSet};

use crate::{
    Error, Refusal, Relayer,
    chain::{self, Head, Simulation},
    failpoint,
    metrics::Sent,
    request::SPONSORED_SELECTORS,
};

/// Gas of a plain transfer (the cancelling and gap-filling no-ops).
const TRANSFER_GAS: u64 = 21_000;
/// Nonces a worker fills per round at most (a chain whose nonce went far back).
const MAX_FILL: u64 = 256;

struct Signed {
    hash: B256,
    raw: Bytes,
}

enum Broadcast {
    /// The node has it.
    Taken,
    /// The nonce is already used on chain.
    NonceUsed,
    /// The node keeps another transaction at this nonce with a fee at least as high.
    Underpriced,
    /// The node refused it for another reason (funds, limits).
    Refused(String),
}

/// The writer for one signer key. Only one runs per key at a time, across processes (a
/// PostgreSQL advisory lock; a second one waits).
#[derive(Debug)]
pub struct Worker {
    relayer: Relayer,
    signer: PrivateKeySigner,
    address: Address,
    /// Nonces the chain used with none of our attempts mined: how many rounds in a row.
    foreign: HashMap<u64, u32>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn bumped(value: u128, percent: u128) -> u128 {
    value.saturating_mul(100 + percent) / 100 + 1
}

impl Worker {
    /// A worker submitting with `signer` (whose address must be among the relayer's signers).
    pub fn new(relayer: Relayer, signer: PrivateKeySigner) -> Self {
        let address = signer.address();
        Self {
            relayer,
            signer,
            address,
            foreign: HashMap::new(),
        }
    }

    /// The key's address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// Runs until `shutdown` turns true. Node and database errors are logged and retried with
    /// backoff; they never lose a job.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), Error> {
        let settings = self.relayer.settings().clone();
        let mut lock = self.relayer.db().pool().acquire().await?.detach();
        while !relay::try_lock_signer(&mut lock, settings.chain_id, self.address).await? {
            tracing::warn!(signer = %self.address, "another relayer process writes for this key; waiting");
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return Ok(());
            }
        }
        tracing::info!(signer = %self.address, "relayer worker started");
        let mut failures = 0u32;
        while !*shutdown.borrow() {
            let relayer = self.relayer.clone();
            let woken = relayer.woken();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let busy = match self.round().await {
                Ok(busy) => {
                    failures = 0;
                    busy
                }
                Err(err) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(signer = %self.address, %err, failures, "relayer round failed; retrying");
                    false
                }
            };
            if busy {
                continue;
            }
            let delay = if failures == 0 {
                settings.poll_interval
            } else {
                settings.poll_interval * 2u32.saturating_pow(failures.min(5))
            };
            tokio::select! {
                () = &mut woken => {}
                () = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => {}
            }
        }
        drop(lock);
        Ok(())
    }

    /// One round; true if it submitted a full batch (more may be waiting).
    pub async fn round(&mut self) -> Result<bool, Error> {
        let provider = self.relayer.provider().clone();
        let settings = self.relayer.settings().clone();
        let head = chain::head(&provider).await?;
        let chain_nonce = provider
            .get_transaction_count(self.address)
            .await
            .map_err(|e| Error::node("reading the relayer's nonce", e))?;
        let balance = chain::balance(&provider, self.address).await?;
        let pool = self.relayer.db().pool();
        let mut conn = pool.acquire().await?;
        let next =
            relay::sync_signer(&mut conn, settings.chain_id, self.address, chain_nonce).await?;
        drop(conn);
        relay::record_balance(pool, settings.chain_id, self.address, balance).await?;
        self.relayer
            .metrics()
            .balance(self.address, f64::from(balance));

        self.reconcile(&head, chain_nonce, next).await?;
        if balance < settings.policy.min_signer_balance {
            tracing::warn!(signer = %self.address, %balance, "balance below the minimum: not submitting");
            return Ok(false);
        }
        self.submit(&head).await
    }

    fn sign(
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

    async fn broadcast(&self, raw: &Bytes) -> Result<Broadcast, Error> {
        match self.relayer.provider().send_raw_transaction(raw).await {
            Ok(_) => Ok(Broadcast::Taken),
            Err(err) => {
                let message = err.to_string().to_lowercase();
                if message.contains("already known")
                    || message.contains("known transaction")
                    || message.contains("already imported")
                {
                    Ok(Broadcast::Taken)
                } else if message.contains("nonce too low") {
                    Ok(Broadcast::NonceUsed)
                } else if message.contains("underpriced") {
                    Ok(Broadcast::Underpriced)
                } else if err.as_error_resp().is_some() {
                    Ok(Broadcast::Refused(message))
                } else {
                    Err(Error::node("broadcasting a transaction", err))
                }
            }
        }
    }

    /// Broadcasts a stored attempt and records what the node said.
    async fn send_stored(&self, attempt: &Attempt, what: Sent) -> Result<(), Error> {
        let pool = self.relayer.db().pool();
        match self.broadcast(&attempt.raw).await? {
            Broadcast::Taken => {
                if what == Sent::First || what == Sent::Rebroadcast {
                    self.relayer.metrics().sent(what, 1);
                }
                relay::mark_broadcast(pool, &[attempt.tx_hash]).await?;
            }
            Broadcast::Underpriced => {
                // Something else holds the nonce in the pool; look again after `stuck_after`.
                tracing::warn!(tx = %attempt.tx_hash, nonce = attempt.nonce, "node holds another transaction at this nonce");
                relay::mark_broadcast(pool, &[attempt.tx_hash]).await?;
            }
            Broadcast::NonceUsed => {}
            Broadcast::Refused(reason) => {
                tracing::warn!(tx = %attempt.tx_hash, nonce = attempt.nonce, reason, "node refused a transaction");
            }
        }
        Ok(())
    }

    async fn job(&self, attempt: &Attempt) -> Result<Option<Job>, Error> {
        match &attempt.job_id {
            Some(id) => Ok(relay::job_by_id(self.relayer.db().pool(), id).await?),
            None => Ok(None),
        }
    }

    async fn reconcile(&mut self, head: &Head, chain_nonce: u64, next: u64) -> Result<(), Error> {
        let settings = self.relayer.settings().clone();
        let pool = self.relayer.db().pool().clone();
        let provider = self.relayer.provider().clone();
        let mut slots: BTreeMap<u64, Vec<Attempt>> = BTreeMap::new();
        for attempt in relay::open_attempts(&pool, settings.chain_id, self.address).await? {
            slots.entry(attempt.nonce).or_default().push(attempt);
        }

        // Nonces the chain has used.
        for (&nonce, attempts) in slots.range(..chain_nonce) {
            let mut mined = None;
            for attempt in attempts.iter().rev() {
                let receipt = provider
                    .get_transaction_receipt(attempt.tx_hash)
                    .await
                    .map_err(|e| Error::node("reading a receipt", e))?;
                if let Some(receipt) = receipt {
                    mined = Some((attempt, receipt));
                    break;
                }
            }
            let Some((attempt, receipt)) = mined else {
                let seen = self.foreign.entry(nonce).or_default();
                *seen += 1;
                if *seen >= 2 {
                    tracing::warn!(signer = %self.address, nonce, "nonce used on chain by a transaction the relayer did not sign; re-queueing its job");
                    let mut conn = pool.acquire().await?;
                    relay::release_foreign_nonce(&mut conn, settings.chain_id, self.address, nonce)
                        .await?;
                    self.foreign.remove(&nonce);
                }
                continue;
            };
            let block = receipt.block_number.unwrap_or(head.number);
            if block + settings.confirmations > head.number + 1 {
                continue;
            }
            let outcome = Mined {
                tx_hash: attempt.tx_hash,
                success: receipt.status(),
                block_number: block,
                gas_used: receipt.gas_used,
                gas_price: receipt.effective_gas_price,
            };
            let mut conn = pool.acquire().await?;
            relay::resolve_mined(&mut conn, settings.chain_id, self.address, nonce, &outcome)
                .await?;
            drop(conn);
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
                tracing::info!(relay_id = %job.id, tx = %outcome.tx_hash, block, state = job.state.as_str(), "relay job finished");
            }
        }

        // Nonces the chain went back to that no open attempt holds: fill them, or the ones
        // above can never be mined.
        for nonce in chain_nonce..next.min(chain_nonce + MAX_FILL) {
            if !slots.contains_key(&nonce) {
                tracing::warn!(signer = %self.address, nonce, chain_nonce, "nonce gap; filling it with a no-op");
                self.fill(nonce, head).await?;
            }
        }

        // Nonces still pending.
        let stuck_after = i64::try_from(settings.stuck_after.as_millis()).unwrap_or(i64::MAX);
        for (&nonce, attempts) in slots.range(chain_nonce..) {
            let Some(latest) = attempts.last() else {
                continue;
            };
            match latest.broadcast_ms {
                None => self.resend(attempts, head, Sent::First).await?,
                Some(at) if now_ms() - at > stuck_after => {
                    let known = provider
                        .get_transaction_by_hash(latest.tx_hash)
                        .await
                        .map_err(|e| Error::node("looking up a pending transaction", e))?
                        .is_some();
                    if !known {
                        tracing::warn!(tx = %latest.tx_hash, nonce, "the node forgot a pending transaction; broadcasting it again");
                        self.resend(attempts, head, Sent::Rebroadcast).await?;
                    } else if nonce == chain_nonce || latest.max_fee_per_gas < head.base_fee {
                        self.bump(attempts, head).await?;
                    } else {
                        relay::mark_broadcast(&pool, &[latest.tx_hash]).await?;
                    }
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// (Re)broadcasts the latest attempt at a nonce, simulating an action first.
    async fn resend(&self, attempts: &[Attempt], head: &Head, what: Sent) -> Result<(), Error> {
        let Some(latest) = attempts.last() else {
            return Ok(());
        };
        // Priced under the base fee, the stored bytes would be refused (a node evicts such
        // transactions, too): replace them instead.
        if latest.max_fee_per_gas < head.base_fee {
            return self.bump(attempts, head).await;
        }
        if latest.kind == AttemptKind::Action
            && let Some(job) = self.job(latest).await?
        {
            let simulation = chain::simulate(
                self.relayer.provider(),
                self.address,
                job.target,
                &job.calldata,
            )
            .await?;
            if let Simulation::Reverts(refusal) = simulation {
                return self.cancel(attempts, &job, &refusal, head).await;
            }
        }
        self.send_stored(latest, what).await
    }

    /// Replaces the latest attempt at a nonce with the same transaction at a higher fee.
    async fn bump(&self, attempts: &[Attempt], head: &Head) -> Result<(), Error> {
        let Some(latest) = attempts.last() else {
            return Ok(());
        };
        let settings = self.relayer.settings();
        let percent = settings.bump_percent();
        let tip = bumped(latest.max_priority_fee_per_gas, percent).max(settings.priority_fee);
        let max_fee = bumped(latest.max_fee_per_gas, percent).max(head.base_fee * 2 + tip);
        let (to, input, job) = match latest.kind {
            AttemptKind::Action => {
                let Some(job) = self.job(latest).await? else {
                    return Ok(());
                };
                if max_fee > settings.policy.max_fee_per_gas {
                    tracing::warn!(relay_id = %job.id, max_fee, cap = settings.policy.max_fee_per_gas, "fee cap reached; not bumping");
                    relay::mark_broadcast(self.relayer.db().pool(), &[latest.tx_hash]).await?;
                    return Ok(());
                }
                let simulation = chain::simulate(
                    self.relayer.provider(),
                    self.address,
                    job.target,
                    &job.calldata,
                )
                .await?;
                if let Simulation::Reverts(refusal) = simulation {
                    return self.cancel(attempts, &job, &refusal, head).await;
                }
                (job.target, job.calldata.clone(), Some(job))
            }
            AttemptKind::Cancel | AttemptKind::Fill => (self.address, Bytes::new(), None),
        };
        let signed = self.sign(to, input, latest.nonce, latest.gas_limit, max_fee, tip)?;
        let mut conn = self.relayer.db().pool().acquire().await?;
        relay::insert_attempt(
            &mut conn,
            &NewAttempt {
                tx_hash: signed.hash,
                chain_id: settings.chain_id,
                job_id: job
                    .as_ref()
                    .map(|j| j.id.as_str())
                    .or(latest.job_id.as_deref()),
                kind: latest.kind,
                relayer: self.address,
                nonce: latest.nonce,
                max_fee_per_gas: max_fee,
                max_priority_fee_per_gas: tip,
                gas_limit: latest.gas_limit,
                raw: &signed.raw,
            },
        )
        .await?;
        drop(conn);
        failpoint::hit("mid_fee_bump");
        tracing::info!(nonce = latest.nonce, old = %latest.tx_hash, new = %signed.hash, max_fee, tip, "fee-bumped replacement");
        self.relayer.metrics().sent(Sent::Replacement, 1);
        let stored = self.stored(signed, latest, max_fee, tip);
        self.send_stored(&stored, Sent::Replacement).await
    }

    fn stored(&self, signed: Signed, like: &Attempt, max_fee: u128, tip: u128) -> Attempt {
        Attempt {
            tx_hash: signed.hash,
            job_id: like.job_id.clone(),
            kind: like.kind,
            relayer: self.address,
            nonce: like.nonce,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: tip,
            gas_limit: like.gas_limit,
            raw: signed.raw,
            created_ms: now_ms(),
            broadcast_ms: None,
            outcome: None,
        }
    }

    /// Replaces a job that can no longer succeed with a no-op at its nonce. No fee cap applies:
    /// the nonce must be freed, or every later one waits behind it.
    async fn cancel(
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
        let used = self
            .relayer
            .provider()
            .get_transaction_count(self.address)
            .await
            .map_err(|e| Error::node("reading the relayer's nonce", e))?;
        if used > latest.nonce {
            return Ok(());
        }
        let settings = self.relayer.settings();
        let percent = settings.bump_percent();
        let tip = bumped(latest.max_priority_fee_per_gas, percent).max(settings.priority_fee);
        let max_fee = bumped(latest.max_fee_per_gas, percent).max(head.base_fee * 2 + tip);
        let signed = self.sign(
            self.address,
            Bytes::new(),
            latest.nonce,
            TRANSFER_GAS,
            max_fee,
            tip,
        )?;
        let mut tx = self.relayer.db().pool().begin().await?;
        relay::insert_attempt(
            &mut tx,
            &NewAttempt {
                tx_hash: signed.hash,
                chain_id: settings.chain_id,
                job_id: Some(&job.id),
                kind: AttemptKind::Cancel,
                relayer: self.address,
                nonce: latest.nonce,
                max_fee_per_gas: max_fee,
                max_priority_fee_per_gas: tip,
                gas_limit: TRANSFER_GAS,
                raw: &signed.raw,
            },
        )
        .await?;
        relay::set_cancelling(&mut tx, &job.id, why.code, &why.detail).await?;
        tx.commit().await?;
        tracing::warn!(relay_id = %job.id, nonce = latest.nonce, code = why.code, detail = %why.detail, "job can no longer succeed; cancelling its nonce");
        self.relayer.metrics().sent(Sent::Cancel, 1);
        let mut stored = self.stored(signed, latest, max_fee, tip);
        stored.kind = AttemptKind::Cancel;
        stored.gas_limit = TRANSFER_GAS;
        stored.job_id = Some(job.id.clone());
        self.send_stored(&stored, Sent::Cancel).await
    }

    /// A no-op at a nonce no job holds.
    async fn fill(&self, nonce: u64, head: &Head) -> Result<(), Error> {
        let settings = self.relayer.settings();
        let tip = settings.priority_fee;
        let max_fee = head.base_fee * 2 + tip;
        let signed = self.sign(
            self.address,
            Bytes::new(),
            nonce,
            TRANSFER_GAS,
            max_fee,
            tip,
        )?;
        let mut conn = self.relayer.db().pool().acquire().await?;
        relay::insert_attempt(
            &mut conn,
            &NewAttempt {
                tx_hash: signed.hash,
                chain_id: settings.chain_id,
                job_id: None,
                kind: AttemptKind::Fill,
                relayer: self.address,
                nonce,
                max_fee_per_gas: max_fee,
                max_priority_fee_per_gas: tip,
                gas_limit: TRANSFER_GAS,
                raw: &signed.raw,
            },
        )
        .await?;
        drop(conn);
        self.relayer.metrics().sent(Sent::Fill, 1);
        let stored = Attempt {
            tx_hash: signed.hash,
            job_id: None,
            kind: AttemptKind::Fill,
            relayer: self.address,
            nonce,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: tip,
            gas_limit: TRANSFER_GAS,
            raw: signed.raw,
            created_ms: now_ms(),
            broadcast_ms: None,
            outcome: None,
        };
        self.send_stored(&stored, Sent::Fill).await
    }

    /// Takes a batch of accepted jobs and submits them. True if the batch was full.
    async fn submit(&self, head: &Head) -> Result<bool, Error> {
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
        let max_fee = (head.base_fee * 2 + tip).min(policy.max_fee_per_gas);
        let pool = self.relayer.db().pool().clone();
        let mut tx = pool.begin().await?;
        let jobs = relay::claim_accepted(&mut tx, settings.chain_id, settings.batch_size).await?;
        if jobs.is_empty() {
            return Ok(false);
        }
        let full = jobs.len() >= settings.batch_size as usize;

        // Simulate every job, concurrently, before anything is signed.
        let mut simulations = JoinSet::new();
        for (i, job) in jobs.iter().enumerate() {
            let provider = self.relayer.provider().clone();
            let (from, to, input) = (self.address, job.target, job.calldata.clone());
            simulations
                .spawn(async move { (i, chain::simulate(&provider, from, to, &input).await) });
        }
        let mut results: Vec<Option<Simulation>> = (0..jobs.len()).map(|_| None).collect();
        while let Some(joined) = simulations.join_next().await {
            let (i, simulation) = joined.map_err(|e| Error::node("simulating", e))?;
            results[i] = Some(simulation?);
        }

        let mut ready = Vec::new();
        for (job, simulation) in jobs.iter().zip(results) {
            let refusal = if job.deadline <= head.timestamp {
                Some(Refusal::invalid(
                    "authorization_expired",
                    "Authorization expired",
                    format!("the deadline {} passed before submission", job.deadline),
                ))
            } else if !allowed(&settings, job.target, &job.calldata) {
                Some(Refusal::invalid(
                    "policy_violation",
                    "Not sponsored",
                    "the call is not to a sponsored contract and function",
                ))
            } else {
                match simulation {
                    Some(Simulation::Reverts(refusal)) => Some(refusal),
                    Some(Simulation::Ok(gas)) if gas > policy.max_gas_per_action => {
                        Some(Refusal::invalid(
                            "gas_ceiling_exceeded",
                            "Gas ceiling exceeded",
                            format!("the call now needs about {gas} gas"),
                        ))
                    }
                    Some(Simulation::Ok(gas)) => {
                        let limit = (gas.saturating_mul(100 + settings.gas_margin_percent) / 100)
                            .max(job.gas_limit)
                            .min(policy.max_gas_per_action);
                        ready.push((job, limit));
                        None
                    }
                    None => None,
                }
            };
            if let Some(refusal) = refusal {
                tracing::info!(relay_id = %job.id, code = refusal.code, detail = %refusal.detail, "job refused at submission (no transaction)");
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
                relay::insert_attempt(
                    &mut tx,
                    &NewAttempt {
                        tx_hash: s.hash,
                        chain_id: settings.chain_id,
                        job_id: Some(&job.id),
                        kind: AttemptKind::Action,
                        relayer: self.address,
                        nonce,
                        max_fee_per_gas: max_fee,
                        max_priority_fee_per_gas: tip,
                        gas_limit: *gas_limit,
                        raw: &s.raw,
                    },
                )
                .await?;
                relay::set_submitting(&mut tx, &job.id, self.address, nonce).await?;
                signed.push((s, job.created_ms, nonce));
            }
        }
        tx.commit().await?;
        failpoint::hit("after_commit");

        let mut taken = Vec::with_capacity(signed.len());
        for (s, created_ms, nonce) in &signed {
            match self.broadcast(&s.raw).await {
                Ok(Broadcast::Taken) => {
                    taken.push(s.hash);
                    self.relayer
                        .metrics()
                        .submitted_after((now_ms() - created_ms).max(0) as f64 / 1000.0);
                }
                Ok(Broadcast::NonceUsed) => {}
                Ok(Broadcast::Underpriced) => taken.push(s.hash),
                Ok(Broadcast::Refused(reason)) => {
                    // The rest wait behind this nonce; the next round broadcasts them again.
                    tracing::warn!(
                        nonce,
                        reason,
                        "node refused a submission; retrying next round"
                    );
                    break;
                }
                Err(err) => {
                    tracing::warn!(nonce, %err, "broadcast failed; retrying next round");
                    break;
                }
            }
        }
        failpoint::hit("after_broadcast");
        relay::mark_broadcast(&pool, &taken).await?;
        self.relayer.metrics().sent(Sent::First, taken.len() as u64);
        if !taken.is_empty() {
            tracing::debug!(signer = %self.address, submitted = taken.len(), "batch broadcast");
        }
        Ok(full)
    }
}

/// The policy's contract and function allowlist.
fn allowed(settings: &crate::Settings, target: Address, calldata: &[u8]) -> bool {
    target == settings.escrow
        && calldata.len() >= 4
        && SPONSORED_SELECTORS.iter().any(|s| s[..] == calldata[..4])
}
