//! The relayer's storage: its signer keys and their next nonce, the jobs (one per accepted
//! authorization) and every signed transaction (attempt) made for them.
//!
//! The invariant the relayer relies on: a nonce is handed out only in the transaction that also
//! stores the signed bytes using it ([`reserve_nonces`] + [`insert_attempt`] in one
//! transaction), so every nonce the relayer ever used has its bytes here, and a crash between
//! commit and broadcast loses nothing (the bytes are broadcast again).

use alloy::primitives::{Address, B256, Bytes, U256};
use sqlx::{PgConnection, PgPool};

use crate::{
    Result,
    chain::{address, amount, b256, corrupt, int, uint},
};

const JOBS: &str = "relay_jobs";
const ATTEMPTS: &str = "relay_attempts";

pub use pactum_core::{
    ActionKind, AttemptKind, AttemptOutcome, JobFailure, JobState, RefusalCode, sponsor::Usage,
};

/// A job to insert.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    /// `rel_` + 20 characters.
    pub id: &'a str,
    /// Chain.
    pub chain_id: u64,
    /// Agreement.
    pub agreement_id: B256,
    /// Action.
    pub action: ActionKind,
    /// The signed digest identifying the authorization.
    pub authorization: B256,
    /// Whose signature.
    pub signer: Address,
    /// The agreement's buyer.
    pub buyer: Address,
    /// The agreement's seller.
    pub seller: Address,
    /// Contract called.
    pub target: Address,
    /// Call data.
    pub calldata: &'a [u8],
    /// The authorization's deadline (unix seconds).
    pub deadline: u64,
    /// Gas reserved.
    pub gas_limit: u64,
    /// The principal that asked (API scope).
    pub requested_by: &'a str,
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Relay id.
    pub id: String,
    /// Chain.
    pub chain_id: u64,
    /// Agreement.
    pub agreement_id: B256,
    /// Action.
    pub action: ActionKind,
    /// The signed digest.
    pub authorization: B256,
    /// Whose signature.
    pub signer: Address,
    /// The agreement's buyer.
    pub buyer: Address,
    /// The agreement's seller.
    pub seller: Address,
    /// Contract called.
    pub target: Address,
    /// Call data.
    pub calldata: Bytes,
    /// Deadline (unix seconds).
    pub deadline: u64,
    /// Gas reserved.
    pub gas_limit: u64,
    /// State.
    pub state: JobState,
    /// Why it failed, once failing.
    pub failure_code: Option<JobFailure>,
    /// Details of the failure.
    pub failure_detail: Option<String>,
    /// The key submitting it, once a nonce is reserved.
    pub relayer: Option<Address>,
    /// Its nonce.
    pub nonce: Option<u64>,
    /// The mined transaction.
    pub tx_hash: Option<B256>,
    /// Its block.
    pub block_number: Option<u64>,
    /// Gas it used.
    pub gas_used: Option<u64>,
    /// Its effective gas price (wei).
    pub gas_price: Option<U256>,
    /// Who asked.
    pub requested_by: String,
    /// Milliseconds since the epoch: created, first submitted, finished.
    pub created_ms: i64,
    /// See `created_ms`.
    pub submitted_ms: Option<i64>,
    /// See `created_ms`.
    pub finished_ms: Option<i64>,
}

impl Job {
    /// Failed before it ever held a nonce (refused at submission): no transaction was sent, and
    /// the same authorization may be accepted again.
    pub fn refused_unsubmitted(&self) -> bool {
        self.state == JobState::Failed && self.nonce.is_none()
    }
}

/// A signed transaction made for a job (or to fill a nonce).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Its hash.
    pub tx_hash: B256,
    /// The job it belongs to (none for fills).
    pub job_id: Option<String>,
    /// What it is.
    pub kind: AttemptKind,
    /// Sending key.
    pub relayer: Address,
    /// Nonce.
    pub nonce: u64,
    /// EIP-1559 fee cap (wei).
    pub max_fee_per_gas: u128,
    /// EIP-1559 tip (wei).
    pub max_priority_fee_per_gas: u128,
    /// Gas limit.
    pub gas_limit: u64,
    /// The signed EIP-2718 bytes.
    pub raw: Bytes,
    /// Milliseconds since the epoch it was created.
    pub created_ms: i64,
    /// Last time the node took it, if ever.
    pub broadcast_ms: Option<i64>,
    /// The head block when the node last took it.
    pub broadcast_block: Option<u64>,
    /// What became of it, once its nonce is used on chain.
    pub outcome: Option<AttemptOutcome>,
    /// Its job's authorization deadline (unix seconds), for actions and cancels.
    pub deadline: Option<u64>,
}

/// The outcome of [`insert_job`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// A new job.
    New(Job),
    /// The same authorization was already a job: that one.
    Existing(Job),
    /// Another job of the agreement is in flight.
    Competing(Job),
}

type JobRow = (
    String,
    i64,
    Vec<u8>,
    String,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    i64,
    i64,
    String,
);

/// `sqlx::query!` over every job column, the rest of the query (`WHERE ...`) appended.
macro_rules! select_jobs {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query!(
            r#"SELECT id, chain_id, agreement_id, action, auth_digest, signer, buyer, seller, target,
                      calldata, deadline, gas_limit, state, failure_code, failure_detail, relayer, nonce,
                      tx_hash, block_number, gas_used, gas_price::text AS gas_price, requested_by,
                      (extract(epoch FROM created_at) * 1000)::bigint AS "created_ms!",
                      (extract(epoch FROM submitted_at) * 1000)::bigint AS submitted_ms,
                      (extract(epoch FROM finished_at) * 1000)::bigint AS finished_ms
                 FROM relay_jobs "# + $rest $(, $arg)*
        )
    };
}

macro_rules! job_from_row {
    ($r:expr) => {{
        let r = $r;
        let base: JobRow = (
            r.id,
            r.chain_id,
            r.agreement_id,
            r.action,
            r.auth_digest,
            r.signer,
            r.buyer,
            r.seller,
            r.target,
            r.calldata,
            r.deadline,
            r.gas_limit,
            r.state,
        );
        job(
            base,
            r.failure_code,
            r.failure_detail,
            r.relayer,
            r.nonce,
            r.tx_hash,
            (r.block_number, r.gas_used, r.gas_price),
            r.requested_by,
            (r.created_ms, r.submitted_ms, r.finished_ms),
        )
    }};
}

#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn job(
    base: JobRow,
    failure_code: Option<String>,
    failure_detail: Option<String>,
    relayer: Option<Vec<u8>>,
    nonce: Option<i64>,
    tx_hash: Option<Vec<u8>>,
    mined: (Option<i64>, Option<i64>, Option<String>),
    requested_by: String,
    times: (i64, Option<i64>, Option<i64>),
) -> Result<Job> {
    let (id, chain_id, agreement_id, action, authorization, signer, buyer, seller, target) = (
        base.0, base.1, base.2, base.3, base.4, base.5, base.6, base.7, base.8,
    );
    Ok(Job {
        chain_id: uint(JOBS, chain_id)?,
        agreement_id: b256(JOBS, &agreement_id)?,
        action: action
            .parse::<ActionKind>()
            .map_err(|_| corrupt(JOBS, format!("action {action:?}")))?,
        authorization: b256(JOBS, &authorization)?,
        signer: address(JOBS, &signer)?,
        buyer: address(JOBS, &buyer)?,
        seller: address(JOBS, &seller)?,
        target: address(JOBS, &target)?,
        calldata: Bytes::from(base.9),
        deadline: uint(JOBS, base.10)?,
        gas_limit: uint(JOBS, base.11)?,
        state: base
            .12
            .parse::<JobState>()
            .map_err(|_| corrupt(JOBS, format!("state {:?}", base.12)))?,
        failure_code: failure_code
            .map(|c| {
                c.parse::<JobFailure>()
                    .map_err(|_| corrupt(JOBS, format!("failure code {c:?}")))
            })
            .transpose()?,
        failure_detail,
        relayer: relayer.map(|r| address(JOBS, &r)).transpose()?,
        nonce: nonce.map(|n| uint(JOBS, n)).transpose()?,
        tx_hash: tx_hash.map(|h| b256(JOBS, &h)).transpose()?,
        block_number: mined.0.map(|n| uint(JOBS, n)).transpose()?,
        gas_used: mined.1.map(|n| uint(JOBS, n)).transpose()?,
        gas_price: mined.2.map(|p| amount(JOBS, &p)).transpose()?,
        requested_by,
        created_ms: times.0,
        submitted_ms: times.1,
        finished_ms: times.2,
        id,
    })
}

/// The job with relay id `id`.
pub async fn job_by_id(pool: &PgPool, id: &str) -> Result<Option<Job>> {
    select_jobs!("WHERE id = $1", id)
        .fetch_optional(pool)
        .await?
        .map(|r| job_from_row!(r))
        .transpose()
}

/// The job of an authorization, if it was ever accepted: the live one if there is one, else the
/// latest refused before submission (see [`Job::refused_unsubmitted`]).
pub async fn job_by_authorization(
    conn: &mut PgConnection,
    chain_id: u64,
    authorization: B256,
) -> Result<Option<Job>> {
    select_jobs!(
        "WHERE chain_id = $1 AND auth_digest = $2
         ORDER BY (state = 'failed' AND nonce IS NULL), created_at DESC LIMIT 1",
        int(chain_id),
        authorization.as_slice()
    )
    .fetch_optional(conn)
    .await?
    .map(|r| job_from_row!(r))
    .transpose()
}

/// The latest job of an agreement for `action`, if any (for an activation: its status). A job
/// refused before it held a nonce counts only when there is no other.
pub async fn latest_job(
    conn: &mut PgConnection,
    chain_id: u64,
    agreement_id: B256,
    action: ActionKind,
) -> Result<Option<Job>> {
    select_jobs!(
        "WHERE chain_id = $1 AND agreement_id = $2 AND action = $3
         ORDER BY (state = 'failed' AND nonce IS NULL), created_at DESC LIMIT 1",
        int(chain_id),
        agreement_id.as_slice(),
        action.as_str()
    )
    .fetch_optional(conn)
    .await?
    .map(|r| job_from_row!(r))
    .transpose()
}

/// The hash of the job's latest broadcast action transaction (its original or a fee-bumped
/// replacement), if any was broadcast.
pub async fn latest_broadcast(conn: &mut PgConnection, job_id: &str) -> Result<Option<B256>> {
    sqlx::query_scalar!(
        "SELECT tx_hash FROM relay_attempts
         WHERE job_id = $1 AND kind = 'action' AND broadcast_at IS NOT NULL
         ORDER BY created_at DESC LIMIT 1",
        job_id
    )
    .fetch_optional(conn)
    .await?
    .map(|h| b256(ATTEMPTS, &h))
    .transpose()
}

/// The agreement's job holding its in-flight slot, if any.
pub async fn in_flight_job(
    conn: &mut PgConnection,
    chain_id: u64,
    agreement_id: B256,
) -> Result<Option<Job>> {
    select_jobs!(
        "WHERE chain_id = $1 AND agreement_id = $2
           AND state IN ('accepted', 'submitting', 'submitted')",
        int(chain_id),
        agreement_id.as_slice()
    )
    .fetch_optional(conn)
    .await?
    .map(|r| job_from_row!(r))
    .transpose()
}

/// Serialises, until the end of the current transaction, the acceptances of one agreement (its
/// quota and in-flight checks and the insert they guard).
pub async fn lock_agreement(
    conn: &mut PgConnection,
    chain_id: u64,
    agreement_id: B256,
) -> Result<()> {
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended('pactum.relay.agreement:' || encode($2, 'hex'), $1))",
        int(chain_id),
        agreement_id.as_slice()
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Serialises, until the end of the current transaction, all acceptances of the chain: taken when
/// a party quota or the daily budget is close, so that concurrent acceptances cannot together
/// overshoot it.
pub async fn lock_acceptance(conn: &mut PgConnection, chain_id: u64) -> Result<()> {
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended('pactum.relay.accept', $1))",
        int(chain_id)
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// What the sponsor policy counts (see [`Usage`]).
pub async fn usage(
    conn: &mut PgConnection,
    chain_id: u64,
    agreement_id: B256,
    signer: Address,
) -> Result<Usage> {
    let r = sqlx::query!(
        r#"SELECT
             (SELECT count(*) FROM relay_jobs
               WHERE chain_id = $1 AND agreement_id = $2
                 AND NOT (state = 'failed' AND nonce IS NULL)) AS "agreement_jobs!",
             (SELECT count(*) FROM relay_jobs
               WHERE chain_id = $1 AND signer = $3 AND created_at > now() - interval '24 hours'
                 AND NOT (state = 'failed' AND nonce IS NULL)) AS "signer_jobs!",
             (SELECT count(*) FROM relay_jobs
               WHERE chain_id = $1 AND signer = $3 AND created_at > now() - interval '24 hours'
                 AND state = 'failed' AND failure_code = 'reverted') AS "signer_reverts!",
             (SELECT coalesce(sum(CASE WHEN gas_used IS NOT NULL THEN gas_used
                                       WHEN state IN ('accepted', 'submitting', 'submitted', 'cancelling') THEN gas_limit
                                       ELSE 0 END), 0)::bigint
                FROM relay_jobs
               WHERE chain_id = $1 AND created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')
               AS "gas_today!""#,
        int(chain_id),
        agreement_id.as_slice(),
        signer.as_slice()
    )
    .fetch_one(conn)
    .await?;
    Ok(Usage {
        agreement_jobs: uint(JOBS, r.agreement_jobs)?,
        signer_jobs_24h: uint(JOBS, r.signer_jobs)?,
        signer_reverts_24h: uint(JOBS, r.signer_reverts)?,
        gas_today: uint(JOBS, r.gas_today)?,
    })
}

/// Inserts `new` unless its authorization is already a job (that one is returned) or another job
/// of the agreement is in flight (that one is returned). Run it under [`lock_acceptance`] when the
/// policy checks must hold at insert time.
pub async fn insert_job(conn: &mut PgConnection, new: &NewJob<'_>) -> Result<Inserted> {
    let inserted = sqlx::query!(
        "INSERT INTO relay_jobs (id, chain_id, agreement_id, action, auth_digest, signer, buyer, seller,
                                 target, calldata, deadline, gas_limit, state, requested_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'accepted', $13)
         ON CONFLICT DO NOTHING
         RETURNING id",
        new.id,
        int(new.chain_id),
        new.agreement_id.as_slice(),
        new.action.as_str(),
        new.authorization.as_slice(),
        new.signer.as_slice(),
        new.buyer.as_slice(),
        new.seller.as_slice(),
        new.target.as_slice(),
        new.calldata,
        int(new.deadline),
        int(new.gas_limit),
        new.requested_by
    )
    .fetch_optional(&mut *conn)
    .await?;
    if inserted.is_some() {
        let job = job_by_authorization(conn, new.chain_id, new.authorization).await?;
        return job
            .filter(|j| j.id == new.id)
            .map(Inserted::New)
            .ok_or_else(|| corrupt(JOBS, "inserted job vanished".into()));
    }
    if let Some(existing) = job_by_authorization(conn, new.chain_id, new.authorization).await?
        && !existing.refused_unsubmitted()
    {
        return Ok(Inserted::Existing(existing));
    }
    match in_flight_job(conn, new.chain_id, new.agreement_id).await? {
        Some(other) => Ok(Inserted::Competing(other)),
        // The conflicting row finished between the insert and this read: the caller retries.
        None => Err(corrupt(
            JOBS,
            "conflict on insert with no conflicting job".into(),
        )),
    }
}

/// Every attempt of a job, oldest first.
pub async fn attempts_of(pool: &PgPool, job_id: &str) -> Result<Vec<Attempt>> {
    sqlx::query!(
        r#"SELECT a.tx_hash, a.job_id, a.kind, a.relayer, a.nonce, a.max_fee_per_gas::text AS "max_fee!",
                  a.max_priority_fee_per_gas::text AS "tip!", a.gas_limit, a.raw,
                  (extract(epoch FROM a.created_at) * 1000)::bigint AS "created_ms!",
                  (extract(epoch FROM a.broadcast_at) * 1000)::bigint AS broadcast_ms,
                  a.broadcast_block, a.outcome, j.deadline AS "deadline?"
             FROM relay_attempts a LEFT JOIN relay_jobs j ON j.id = a.job_id
            WHERE a.job_id = $1 ORDER BY a.created_at, a.nonce"#,
        job_id
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| {
        attempt(
            (r.tx_hash, r.job_id, r.kind, r.relayer, r.nonce),
            (&r.max_fee, &r.tip, r.gas_limit),
            r.raw,
            (r.created_ms, r.broadcast_ms, r.broadcast_block),
            (r.outcome, r.deadline),
        )
    })
    .collect()
}

/// Attempts whose nonce is not known to be used yet, for `relayer`, by nonce then age.
pub async fn open_attempts(pool: &PgPool, chain_id: u64, relayer: Address) -> Result<Vec<Attempt>> {
    sqlx::query!(
        r#"SELECT a.tx_hash, a.job_id, a.kind, a.relayer, a.nonce, a.max_fee_per_gas::text AS "max_fee!",
                  a.max_priority_fee_per_gas::text AS "tip!", a.gas_limit, a.raw,
                  (extract(epoch FROM a.created_at) * 1000)::bigint AS "created_ms!",
                  (extract(epoch FROM a.broadcast_at) * 1000)::bigint AS broadcast_ms,
                  a.broadcast_block, a.outcome, j.deadline AS "deadline?"
             FROM relay_attempts a LEFT JOIN relay_jobs j ON j.id = a.job_id
            WHERE a.chain_id = $1 AND a.relayer = $2 AND a.outcome IS NULL
            ORDER BY a.nonce, a.created_at"#,
        int(chain_id),
        relayer.as_slice()
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| {
        attempt(
            (r.tx_hash, r.job_id, r.kind, r.relayer, r.nonce),
            (&r.max_fee, &r.tip, r.gas_limit),
            r.raw,
            (r.created_ms, r.broadcast_ms, r.broadcast_block),
            (r.outcome, r.deadline),
        )
    })
    .collect()
}

/// Every attempt ever made at `relayer`'s `nonce`, oldest first.
pub async fn attempts_at(
    pool: &PgPool,
    chain_id: u64,
    relayer: Address,
    nonce: u64,
) -> Result<Vec<Attempt>> {
    sqlx::query!(
        r#"SELECT a.tx_hash, a.job_id, a.kind, a.relayer, a.nonce, a.max_fee_per_gas::text AS "max_fee!",
                  a.max_priority_fee_per_gas::text AS "tip!", a.gas_limit, a.raw,
                  (extract(epoch FROM a.created_at) * 1000)::bigint AS "created_ms!",
                  (extract(epoch FROM a.broadcast_at) * 1000)::bigint AS broadcast_ms,
                  a.broadcast_block, a.outcome, j.deadline AS "deadline?"
             FROM relay_attempts a LEFT JOIN relay_jobs j ON j.id = a.job_id
            WHERE a.chain_id = $1 AND a.relayer = $2 AND a.nonce = $3
            ORDER BY a.created_at"#,
        int(chain_id),
        relayer.as_slice(),
        int(nonce)
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| {
        attempt(
            (r.tx_hash, r.job_id, r.kind, r.relayer, r.nonce),
            (&r.max_fee, &r.tip, r.gas_limit),
            r.raw,
            (r.created_ms, r.broadcast_ms, r.broadcast_block),
            (r.outcome, r.deadline),
        )
    })
    .collect()
}

#[allow(clippy::type_complexity)]
fn attempt(
    ids: (Vec<u8>, Option<String>, String, Vec<u8>, i64),
    fees: (&str, &str, i64),
    raw: Vec<u8>,
    times: (i64, Option<i64>, Option<i64>),
    (outcome, deadline): (Option<String>, Option<i64>),
) -> Result<Attempt> {
    let fee = |text: &str| -> Result<u128> {
        let value = amount(ATTEMPTS, text)?;
        u128::try_from(value).map_err(|_| corrupt(ATTEMPTS, format!("fee {value} above u128")))
    };
    Ok(Attempt {
        tx_hash: b256(ATTEMPTS, &ids.0)?,
        job_id: ids.1,
        kind: ids
            .2
            .parse::<AttemptKind>()
            .map_err(|_| corrupt(ATTEMPTS, format!("attempt kind {:?}", ids.2)))?,
        relayer: address(ATTEMPTS, &ids.3)?,
        nonce: uint(ATTEMPTS, ids.4)?,
        max_fee_per_gas: fee(fees.0)?,
        max_priority_fee_per_gas: fee(fees.1)?,
        gas_limit: uint(ATTEMPTS, fees.2)?,
        raw: Bytes::from(raw),
        created_ms: times.0,
        broadcast_ms: times.1,
        broadcast_block: times.2.map(|b| uint(ATTEMPTS, b)).transpose()?,
        outcome: outcome
            .map(|o| {
                o.parse::<AttemptOutcome>()
                    .map_err(|_| corrupt(ATTEMPTS, format!("outcome {o:?}")))
            })
            .transpose()?,
        deadline: deadline.map(|d| uint(ATTEMPTS, d)).transpose()?,
    })
}

/// Registers a signer key (starting at `chain_nonce`) or, if known, moves its next nonce up to
/// `chain_nonce` when the chain is ahead (the key was used elsewhere). Returns the next nonce.
pub async fn sync_signer(
    conn: &mut PgConnection,
    chain_id: u64,
    relayer: Address,
    chain_nonce: u64,
) -> Result<u64> {
    let next = sqlx::query_scalar!(
        "INSERT INTO relay_signers (chain_id, address, next_nonce) VALUES ($1, $2, $3)
         ON CONFLICT (chain_id, address)
         DO UPDATE SET next_nonce = GREATEST(relay_signers.next_nonce, EXCLUDED.next_nonce)
         RETURNING next_nonce",
        int(chain_id),
        relayer.as_slice(),
        int(chain_nonce)
    )
    .fetch_one(conn)
    .await?;
    uint("relay_signers", next)
}

/// Records a signer's observed balance.
pub async fn record_balance(
    pool: &PgPool,
    chain_id: u64,
    relayer: Address,
    balance: U256,
) -> Result<()> {
    sqlx::query!(
        "UPDATE relay_signers SET balance = $3::text::numeric, balance_at = now()
          WHERE chain_id = $1 AND address = $2",
        int(chain_id),
        relayer.as_slice(),
        balance.to_string()
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Every signer key of the chain with its last observed balance (wei) and that reading's age in
/// seconds.
pub async fn signer_balances(
    pool: &PgPool,
    chain_id: u64,
) -> Result<Vec<(Address, Option<U256>, Option<f64>)>> {
    sqlx::query!(
        r#"SELECT address, balance::text AS balance,
                  extract(epoch FROM now() - balance_at)::float8 AS age
             FROM relay_signers WHERE chain_id = $1 ORDER BY address"#,
        int(chain_id)
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| {
        Ok((
            address("relay_signers", &r.address)?,
            r.balance.map(|b| amount("relay_signers", &b)).transpose()?,
            r.age,
        ))
    })
    .collect()
}

/// Locks up to `limit` accepted jobs of the chain, oldest first, skipping those another
/// transaction holds (another signer's writer).
pub async fn claim_accepted(
    conn: &mut PgConnection,
    chain_id: u64,
    limit: u32,
) -> Result<Vec<Job>> {
    select_jobs!(
        "WHERE chain_id = $1 AND state = 'accepted'
         ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        int(chain_id),
        i64::from(limit)
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(|r| job_from_row!(r))
    .collect()
}

/// Hands out `count` consecutive nonces of `relayer`; returns the first.
pub async fn reserve_nonces(
    conn: &mut PgConnection,
    chain_id: u64,
    relayer: Address,
    count: u64,
) -> Result<u64> {
    let first = sqlx::query_scalar!(
        r#"UPDATE relay_signers SET next_nonce = next_nonce + $3
            WHERE chain_id = $1 AND address = $2
        RETURNING next_nonce - $3 AS "first!""#,
        int(chain_id),
        relayer.as_slice(),
        int(count)
    )
    .fetch_one(conn)
    .await?;
    uint("relay_signers", first)
}

/// A signed transaction to store before it is broadcast.
#[derive(Debug, Clone)]
pub struct NewAttempt<'a> {
    /// Its hash.
    pub tx_hash: B256,
    /// Chain.
    pub chain_id: u64,
    /// Job (none for fills).
    pub job_id: Option<&'a str>,
    /// Kind.
    pub kind: AttemptKind,
    /// Sending key.
    pub relayer: Address,
    /// Nonce.
    pub nonce: u64,
    /// Fee cap.
    pub max_fee_per_gas: u128,
    /// Tip.
    pub max_priority_fee_per_gas: u128,
    /// Gas limit.
    pub gas_limit: u64,
    /// Signed bytes.
    pub raw: &'a [u8],
}

/// Stores an attempt.
pub async fn insert_attempt(conn: &mut PgConnection, a: &NewAttempt<'_>) -> Result<()> {
    sqlx::query!(
        "INSERT INTO relay_attempts (tx_hash, chain_id, job_id, kind, relayer, nonce, max_fee_per_gas,
                                     max_priority_fee_per_gas, gas_limit, raw)
         VALUES ($1, $2, $3, $4, $5, $6, $7::text::numeric, $8::text::numeric, $9, $10)
         ON CONFLICT (tx_hash) DO UPDATE SET outcome = NULL, broadcast_at = NULL, broadcast_block = NULL",
        a.tx_hash.as_slice(),
        int(a.chain_id),
        a.job_id,
        a.kind.as_str(),
        a.relayer.as_slice(),
        int(a.nonce),
        a.max_fee_per_gas.to_string(),
        a.max_priority_fee_per_gas.to_string(),
        int(a.gas_limit),
        a.raw
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores a worker's batch in one statement: each job's first action attempt (signed by
/// `relayer`, as [`insert_attempt`] stores one), and the job now `submitting` with that
/// attempt's key and nonce.
pub async fn insert_actions(
    conn: &mut PgConnection,
    chain_id: u64,
    relayer: Address,
    attempts: &[NewAttempt<'_>],
) -> Result<()> {
    if attempts.is_empty() {
        return Ok(());
    }
    let hashes: Vec<Vec<u8>> = attempts.iter().map(|a| a.tx_hash.to_vec()).collect();
    let jobs: Vec<String> = attempts
        .iter()
        .map(|a| a.job_id.unwrap_or_default().to_owned())
        .collect();
    let nonces: Vec<i64> = attempts.iter().map(|a| int(a.nonce)).collect();
    let fees: Vec<String> = attempts
        .iter()
        .map(|a| a.max_fee_per_gas.to_string())
        .collect();
    let tips: Vec<String> = attempts
        .iter()
        .map(|a| a.max_priority_fee_per_gas.to_string())
        .collect();
    let limits: Vec<i64> = attempts.iter().map(|a| int(a.gas_limit)).collect();
    let raws: Vec<Vec<u8>> = attempts.iter().map(|a| a.raw.to_vec()).collect();
    let updated = sqlx::query!(
        "WITH new AS (
           SELECT * FROM UNNEST($3::bytea[], $4::text[], $5::bigint[], $6::text[], $7::text[],
                                $8::bigint[], $9::bytea[])
             AS t(tx_hash, job_id, nonce, max_fee, tip, gas_limit, raw)
         ), stored AS (
           INSERT INTO relay_attempts (tx_hash, chain_id, job_id, kind, relayer, nonce,
                                       max_fee_per_gas, max_priority_fee_per_gas, gas_limit, raw)
           SELECT tx_hash, $1, job_id, 'action', $2, nonce, max_fee::numeric, tip::numeric,
                  gas_limit, raw
             FROM new
           ON CONFLICT (tx_hash) DO UPDATE SET outcome = NULL, broadcast_at = NULL,
                                               broadcast_block = NULL
           RETURNING tx_hash
         )
         UPDATE relay_jobs j SET state = 'submitting', relayer = $2, nonce = n.nonce,
                updated_at = now(), submitted_at = coalesce(j.submitted_at, now())
           FROM new n JOIN stored s ON s.tx_hash = n.tx_hash WHERE j.id = n.job_id",
        int(chain_id),
        relayer.as_slice(),
        &hashes,
        &jobs,
        &nonces,
        &fees,
        &tips,
        &limits,
        &raws
    )
    .execute(conn)
    .await?
    .rows_affected();
    if updated != attempts.len() as u64 {
        return Err(corrupt(
            JOBS,
            format!("{updated} of {} jobs moved to submitting", attempts.len()),
        ));
    }
    Ok(())
}

/// Marks attempts as taken by the node now, at head block `head`; their `submitting` jobs become
/// `submitted`.
pub async fn mark_broadcast(pool: &PgPool, tx_hashes: &[B256], head: u64) -> Result<()> {
    if tx_hashes.is_empty() {
        return Ok(());
    }
    let hashes: Vec<Vec<u8>> = tx_hashes.iter().map(|h| h.to_vec()).collect();
    sqlx::query!(
        "WITH a AS (UPDATE relay_attempts SET broadcast_at = now(), broadcast_block = $2
                     WHERE tx_hash = ANY($1) RETURNING job_id)
         UPDATE relay_jobs SET state = 'submitted', updated_at = now()
          WHERE id IN (SELECT job_id FROM a) AND state = 'submitting'",
        &hashes,
        int(head)
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Fails a job that holds no nonce (refused at submission).
pub async fn fail_unsubmitted(
    conn: &mut PgConnection,
    job_id: &str,
    code: RefusalCode,
    detail: &str,
) -> Result<()> {
    sqlx::query!(
        "UPDATE relay_jobs SET state = 'failed', failure_code = $2, failure_detail = $3,
                updated_at = now(), finished_at = now()
          WHERE id = $1 AND state = 'accepted'",
        job_id,
        code.as_str(),
        detail
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks a job as being cancelled (its cancel attempt is stored in the same transaction).
pub async fn set_cancelling(
    conn: &mut PgConnection,
    job_id: &str,
    code: RefusalCode,
    detail: &str,
) -> Result<()> {
    sqlx::query!(
        "UPDATE relay_jobs SET state = 'cancelling', failure_code = $2, failure_detail = $3, updated_at = now()
          WHERE id = $1 AND state IN ('submitting', 'submitted')",
        job_id,
        code.as_str(),
        detail
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// What the chain says about a used nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mined {
    /// The attempt that was mined.
    pub tx_hash: B256,
    /// Whether it succeeded.
    pub success: bool,
    /// Its block.
    pub block_number: u64,
    /// Gas used.
    pub gas_used: u64,
    /// Effective gas price.
    pub gas_price: u128,
    /// For an action that reverted: why, as (stable code, detail). See the worker.
    pub revert: Option<(JobFailure, String)>,
}

/// Settles a used nonce: `mined` is the attempt that took it, the others at that nonce are
/// `replaced`; its job becomes `confirmed` (its action succeeded) or `failed` (it reverted, or
/// the cancel took the nonce).
pub async fn resolve_mined(
    conn: &mut PgConnection,
    chain_id: u64,
    relayer: Address,
    nonce: u64,
    mined: &Mined,
) -> Result<()> {
    let kind = sqlx::query_scalar!(
        "UPDATE relay_attempts SET outcome = CASE WHEN tx_hash = $4 THEN 'mined' ELSE 'replaced' END
          WHERE chain_id = $1 AND relayer = $2 AND nonce = $3 AND outcome IS NULL
         RETURNING CASE WHEN tx_hash = $4 THEN kind END",
        int(chain_id),
        relayer.as_slice(),
        int(nonce),
        mined.tx_hash.as_slice()
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .flatten()
    .next();
    let (state, code, detail) = match (kind.as_deref(), mined.success) {
        (Some("action"), true) => ("confirmed", None, None),
        (Some("action"), false) => (
            "failed",
            Some(mined.revert.as_ref().map_or("reverted", |r| r.0.as_str())),
            Some(
                mined
                    .revert
                    .as_ref()
                    .map_or("the transaction was mined but reverted", |r| r.1.as_str()),
            ),
        ),
        _ => ("failed", None, None),
    };
    sqlx::query!(
        "UPDATE relay_jobs SET state = $5, tx_hash = $6, block_number = $7, gas_used = $8,
                gas_price = $9::text::numeric,
                failure_code = CASE WHEN $5 = 'confirmed' THEN NULL WHEN $10 = 'reverted' THEN $10
                                    ELSE coalesce(failure_code, $10) END,
                failure_detail = CASE WHEN $5 = 'confirmed' THEN NULL WHEN $10 = 'reverted' THEN $11
                                      ELSE coalesce(failure_detail, $11) END,
                updated_at = now(), finished_at = now()
          WHERE chain_id = $1 AND relayer = $2 AND nonce = $3 AND state IN ('submitting', 'submitted', 'cancelling')
            AND $4",
        int(chain_id),
        relayer.as_slice(),
        int(nonce),
        kind.is_some(),
        state,
        mined.tx_hash.as_slice(),
        int(mined.block_number),
        int(mined.gas_used),
        mined.gas_price.to_string(),
        code,
        detail
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A nonce was used on chain by none of the relayer's attempts (the key was used elsewhere, or the
/// chain's nonce was moved): its attempts can never be mined. A job still wanting to run goes
/// back to the queue for a new nonce; a cancelling one fails; fills are closed.
pub async fn release_foreign_nonce(
    conn: &mut PgConnection,
    chain_id: u64,
    relayer: Address,
    nonce: u64,
) -> Result<()> {
    sqlx::query!(
        "UPDATE relay_attempts SET outcome = 'replaced'
          WHERE chain_id = $1 AND relayer = $2 AND nonce = $3 AND outcome IS NULL",
        int(chain_id),
        relayer.as_slice(),
        int(nonce)
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE relay_jobs
            SET state = CASE WHEN state = 'cancelling' THEN 'failed' ELSE 'accepted' END,
                finished_at = CASE WHEN state = 'cancelling' THEN now() END,
                relayer = CASE WHEN state = 'cancelling' THEN relayer END,
                nonce = CASE WHEN state = 'cancelling' THEN nonce END,
                updated_at = now()
          WHERE chain_id = $1 AND relayer = $2 AND nonce = $3 AND state IN ('submitting', 'submitted', 'cancelling')",
        int(chain_id),
        relayer.as_slice(),
        int(nonce)
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Jobs per state on the chain (for metrics).
pub async fn jobs_by_state(pool: &PgPool, chain_id: u64) -> Result<Vec<(String, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT state, count(*) AS "n!" FROM relay_jobs WHERE chain_id = $1 GROUP BY state"#,
        int(chain_id)
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.state, r.n)).collect())
}

/// The highest nonce the relayer holds open for `relayer` plus one, i.e. its next nonce.
pub async fn next_nonce(pool: &PgPool, chain_id: u64, relayer: Address) -> Result<Option<u64>> {
    sqlx::query_scalar!(
        "SELECT next_nonce FROM relay_signers WHERE chain_id = $1 AND address = $2",
        int(chain_id),
        relayer.as_slice()
    )
    .fetch_optional(pool)
    .await?
    .map(|n| uint("relay_signers", n))
    .transpose()
}

/// Tries to become the one writer for `relayer` on `chain_id`: a session-level advisory lock,
/// held until `conn` closes (a crashed writer's lock goes with its connection). `conn` must not
/// go back to a pool while held.
pub async fn try_lock_signer(
    conn: &mut PgConnection,
    chain_id: u64,
    relayer: Address,
) -> Result<bool> {
    let key = format!("pactum.relay.signer:{chain_id}:{relayer:#x}");
    let locked = sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS "locked!""#,
        key
    )
    .fetch_one(conn)
    .await?;
    Ok(locked)
}
