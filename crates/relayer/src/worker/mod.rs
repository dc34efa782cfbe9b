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
//!
//! The modules follow a round: [`reconcile`] (used nonces, gaps, pending nonces), [`revert`]
//! (why a mined action reverted), [`replace`] (re-check, re-broadcast, fee bump, cancel, fill),
//! [`submit`] (a batch of accepted jobs), and [`send`], the one path every transaction takes:
//! signed, stored, then broadcast.

mod reconcile;
mod replace;
mod revert;
mod send;
mod submit;

use std::{
    collections::HashMap,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use alloy::{primitives::Address, providers::Provider, signers::local::PrivateKeySigner};
use pactum_db::relay::{self, Attempt, Job};
use tokio::sync::watch;

use crate::{Error, Relayer, chain};

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
                let mut conn = self.relayer.worker_db().pool().acquire().await?.detach();
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
        let pool = self.relayer.worker_db().pool();
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

    async fn job(&self, attempt: &Attempt) -> Result<Option<Job>, Error> {
        match &attempt.job_id {
            Some(id) => Ok(relay::job_by_id(self.relayer.worker_db().pool(), id).await?),
            None => Ok(None),
        }
    }
}
