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
//! 3. **submits** a batch of accepted jobs: simulates them (an `eth_call` with the acceptance
//!    estimate's gas, the reserved limit without its margin; a fresh estimate only if that
//!    fails), and in one database
//!    transaction reserves their nonces, signs them and stores the signed bytes; then broadcasts
//!    them in nonce order and records that.
//!
//! The receipts of a round's used nonces are read in one JSON-RPC batch, and the nonces are
//! settled in one database transaction.
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
    rpc::types::TransactionReceipt,
    signers::local::PrivateKeySigner,
    transports::{RpcError, TransportErrorKind},
};
use pactum_core::{
    AttemptOutcome, JobFailure, Refusal, RefusalCode, RevertKind,
    escrow::{authorization, rules},
    sponsor,
};
use pactum_db::relay::{self, Attempt, AttemptKind, Job, JobState, Mined, NewAttempt};
use tokio::{sync::watch, task::JoinSet};

use crate::{
    Error, Relayer,
    chain::{self, Head, Simulation},
    failpoint,
    metrics::Sent,
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
    /// Nonces the chain used with none of our attempts mined: in how many rounds, since which
    /// head block and when.
    foreign: HashMap<u64, (u32, u64, std::time::Instant)>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
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

    /// Takes the key's writer lock on a connection of its own, waiting while another process
    /// holds it; `None` on shutdown.
    async fn lock(
        &self,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Option<sqlx::PgConnection>, Error> {
        let chain_id = self.relayer.settings().chain_id;
        loop {
            let attempt = async {
                let mut conn = self.relayer.db().pool().acquire().await?.detach();
                let locked = relay::try_lock_signer(&mut conn, chain_id, self.address).await?;
                Ok::<_, Error>(locked.then_some(conn))
            };
            match attempt.await {
                Ok(Some(conn)) => return Ok(Some(conn)),
                Ok(None) => {
                    tracing::warn!(signer = %self.address, "another relayer process writes for this key; waiting")
                }
                Err(err) => {
                    tracing::warn!(signer = %self.address, %err, "cannot take the key's writer lock; retrying")
                }
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                return Ok(None);
            }
        }
    }

    /// Runs until `shutdown` turns true. Node and database errors are logged and retried with
    /// backoff; they never lose a job. If the connection holding the key's lock is lost, the
    /// worker stops writing until it holds the lock again.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), Error> {
        let settings = self.relayer.settings().clone();
        let Some(mut lock) = self.lock(&mut shutdown).await? else {
            return Ok(());
        };
        tracing::info!(signer = %self.address, "relayer worker started");
        let mut failures = 0u32;
        while !*shutdown.borrow() {
            if sqlx::query("SELECT 1").execute(&mut lock).await.is_err() {
                tracing::warn!(signer = %self.address, "lost the connection holding the key's lock");
                match self.lock(&mut shutdown).await? {
                    Some(conn) => lock = conn,
                    None => return Ok(()),
                }
            }
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
        let chain_nonce = self.chain_nonce().await?;
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

        let blocked = self.reconcile(&head, chain_nonce, next).await?;
        if balance < settings.policy.min_signer_balance {
            tracing::warn!(signer = %self.address, %balance, "balance below the minimum: not submitting");
            return Ok(false);
        }
        if blocked {
            // Behind a nonce that cannot be mined at an acceptable fee, new jobs would only
            // queue up; other keys take them.
            return Ok(false);
        }
        self.submit(&head).await
    }

    async fn chain_nonce(&self) -> Result<u64, Error> {
        self.relayer
            .provider()
            .get_transaction_count(self.address)
            .await
            .map_err(|e| Error::node("reading the relayer's nonce", e))
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
        classify(
            self.relayer
                .provider()
                .send_raw_transaction(raw)
                .await
                .map(|pending| *pending.tx_hash()),
        )
    }

    /// Broadcasts a stored attempt and records what the node said.
    async fn send_stored(
        &self,
        attempt: &Attempt,
        what: Sent,
        head: &Head,
    ) -> Result<Broadcast, Error> {
        let pool = self.relayer.db().pool();
        let outcome = self.broadcast(&attempt.raw).await?;
        match &outcome {
            Broadcast::Taken => {
                if what == Sent::First || what == Sent::Rebroadcast {
                    self.relayer.metrics().sent(what, 1);
                }
                relay::mark_broadcast(pool, &[attempt.tx_hash], head.number).await?;
            }
            Broadcast::Underpriced => {
                // Another transaction holds the nonce in the pool with at least this fee; look
                // again after `stuck_after`.
                tracing::warn!(tx = %attempt.tx_hash, nonce = attempt.nonce, "node holds another transaction at this nonce");
                relay::mark_broadcast(pool, &[attempt.tx_hash], head.number).await?;
            }
            Broadcast::NonceUsed => {}
            Broadcast::Refused(reason) => {
                tracing::warn!(tx = %attempt.tx_hash, nonce = attempt.nonce, reason, "node refused a transaction");
            }
        }
        Ok(outcome)
    }

    async fn job(&self, attempt: &Attempt) -> Result<Option<Job>, Error> {
        match &attempt.job_id {
            Some(id) => Ok(relay::job_by_id(self.relayer.db().pool(), id).await?),
            None => Ok(None),
        }
    }

    /// Why a mined action reverted, with a detail: `out_of_gas` when it used its whole gas
    /// limit (the relayer's estimate fell short), `preempted` when the agreement no longer allows
    /// the action (another transaction changed it first, e.g. the same action sent directly), and
    /// `reverted` when it still does: the call behaved differently on chain than in simulation.
    /// Only `reverted` counts against the signer (`max_reverts_per_party_per_day`).
    ///
    /// It is judged at the block that mined it: its timestamp against the authorization's
    /// deadline (`authorization_expired`: mined too late, the relayer's delay), and the
    /// agreement's state as that block left it.
    async fn why_reverted(
        &self,
        attempt: &Attempt,
        gas_used: u64,
        block: u64,
    ) -> Result<(JobFailure, String), Error> {
        if gas_used >= attempt.gas_limit {
            return Ok((
                JobFailure::Reverted(RevertKind::OutOfGas),
                format!("the transaction used all of its {} gas", attempt.gas_limit),
            ));
        }
        let Some(job) = self.job(attempt).await? else {
            return Ok((
                JobFailure::Reverted(RevertKind::Reverted),
                "the transaction was mined but reverted".into(),
            ));
        };
        let provider = self.relayer.provider();
        let mined_at = chain::block_timestamp(provider, block).await?;
        if job.deadline < mined_at {
            return Ok((
                JobFailure::Refused(RefusalCode::AuthorizationExpired),
                format!(
                    "mined at {mined_at}, after the authorization's deadline {}",
                    job.deadline
                ),
            ));
        }
        let state = chain::agreement_state_at(
            provider,
            self.relayer.settings().escrow,
            job.agreement_id,
            block,
        )
        .await?;
        let allowed = authorization::terms_of(&job.calldata)
            .map(|terms| rules::eligibility(job.action, &terms, &state, mined_at));
        Ok(match allowed {
            Some(Err(then)) => (
                JobFailure::Reverted(RevertKind::Preempted),
                format!(
                    "the agreement no longer allowed the action when it was mined ({}: {})",
                    then.code, then.detail
                ),
            ),
            _ => (
                JobFailure::Reverted(RevertKind::Reverted),
                "the transaction was mined but reverted, and the agreement still allows the \
                 action: the call behaved differently on chain than in simulation"
                    .into(),
            ),
        })
    }

    /// Settles, re-sends, replaces, cancels and fills the key's open nonces. True if the head
    /// of the queue is held back by the fee cap.
    async fn reconcile(&mut self, head: &Head, chain_nonce: u64, next: u64) -> Result<bool, Error> {
        let settings = self.relayer.settings().clone();
        let pool = self.relayer.db().pool().clone();
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
            let outcome = Mined {
                tx_hash: attempt.tx_hash,
                success: receipt.status(),
                block_number: block,
                gas_used: receipt.gas_used,
                gas_price: receipt.effective_gas_price,
                revert,
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

    /// Re-checks a pending action: `Some(job)` if it can still succeed, or `None` after
    /// cancelling it (or when it has no job: a cancel or a fill).
    async fn recheck(&self, attempts: &[Attempt], head: &Head) -> Result<Option<Job>, Error> {
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
    async fn resend(&self, attempts: &[Attempt], head: &Head, what: Sent) -> Result<bool, Error> {
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
        match self.send_stored(latest, what, head).await? {
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
    async fn bump(&self, attempts: &[Attempt], head: &Head) -> Result<bool, Error> {
        let Some(latest) = attempts.last() else {
            return Ok(false);
        };
        let settings = self.relayer.settings();
        let percent = settings.bump_percent();
        let sent = (latest.max_fee_per_gas, latest.max_priority_fee_per_gas);
        let (to, input, job, (max_fee, tip)) = match latest.kind {
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
                    relay::mark_broadcast(self.relayer.db().pool(), &[latest.tx_hash], head.number)
                        .await?;
                    return Ok(true);
                };
                (job.target, job.calldata.clone(), Some(job), fees)
            }
            AttemptKind::Cancel | AttemptKind::Fill => (
                self.address,
                Bytes::new(),
                None,
                sponsor::replacement_fees(sent, head.base_fee, percent, settings.priority_fee),
            ),
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
        self.send_stored(&stored, Sent::Replacement, head).await?;
        Ok(false)
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
            broadcast_block: None,
            outcome: None,
            deadline: like.deadline,
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
        let (max_fee, tip) = sponsor::replacement_fees(
            (latest.max_fee_per_gas, latest.max_priority_fee_per_gas),
            head.base_fee,
            percent,
            settings.priority_fee,
        );
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
        tracing::warn!(relay_id = %job.id, nonce = latest.nonce, code = why.code.as_str(), detail = %why.detail, "job can no longer succeed; cancelling its nonce");
        self.relayer.metrics().sent(Sent::Cancel, 1);
        let mut stored = self.stored(signed, latest, max_fee, tip);
        stored.kind = AttemptKind::Cancel;
        stored.gas_limit = TRANSFER_GAS;
        stored.job_id = Some(job.id.clone());
        self.send_stored(&stored, Sent::Cancel, head).await?;
        Ok(())
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
            broadcast_block: None,
            outcome: None,
            deadline: None,
        };
        self.send_stored(&stored, Sent::Fill, head).await?;
        Ok(())
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
        let (max_fee, tip) = settings.fees(head.base_fee);
        let pool = self.relayer.db().pool().clone();
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
            simulations.spawn(async move {
                (
                    i,
                    chain::simulate_within(&provider, from, to, &input, fees, limit).await,
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
                    Some(Some(Simulation::Ok(gas))) => {
                        let limit =
                            sponsor::gas_limit(gas, settings.gas_margin_percent).max(job.gas_limit);
                        if limit > policy.max_gas_per_action {
                            Some(gas_ceiling(gas))
                        } else {
                            ready.push((job, limit));
                            None
                        }
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

/// What the node's answer to a broadcast means.
fn classify(answer: Result<B256, RpcError<TransportErrorKind>>) -> Result<Broadcast, Error> {
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

/// The policy's contract and function allowlist.
fn allowed(settings: &crate::Settings, target: Address, calldata: &[u8]) -> bool {
    authorization::is_sponsored_call(settings.escrow, target, calldata)
}

fn not_sponsored() -> Refusal {
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
