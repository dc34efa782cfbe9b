//! Signed transactions (`relay_attempts`): each job's action, its fee-bumped replacements and
//! cancelling no-op, and the no-ops that fill a nonce gap; and the settlement of a used nonce,
//! which also moves its job to its outcome.

use alloy::primitives::{Address, B256, Bytes};
use pactum_core::{AttemptKind, AttemptOutcome, JobFailure, sponsor::Strike};
use sqlx::{PgConnection, PgPool};

use crate::{
    Error, Result,
    convert::{address, amount, b256, corrupt, int, uint},
};

const ATTEMPTS: &str = "relay_attempts";
const JOBS: &str = "relay_jobs";

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

/// A `relay_attempts` row as read, with its job's deadline (see [`select_attempts`]).
struct AttemptRow {
    tx_hash: Vec<u8>,
    job_id: Option<String>,
    kind: String,
    relayer: Vec<u8>,
    nonce: i64,
    max_fee: String,
    tip: String,
    gas_limit: i64,
    raw: Vec<u8>,
    created_ms: i64,
    broadcast_ms: Option<i64>,
    broadcast_block: Option<i64>,
    outcome: Option<String>,
    deadline: Option<i64>,
}

impl TryFrom<AttemptRow> for Attempt {
    type Error = Error;

    fn try_from(r: AttemptRow) -> Result<Self> {
        let fee = |text: &str| -> Result<u128> {
            let value = amount(ATTEMPTS, text)?;
            u128::try_from(value).map_err(|_| corrupt(ATTEMPTS, format!("fee {value} above u128")))
        };
        Ok(Self {
            tx_hash: b256(ATTEMPTS, &r.tx_hash)?,
            job_id: r.job_id,
            kind: r
                .kind
                .parse::<AttemptKind>()
                .map_err(|_| corrupt(ATTEMPTS, format!("attempt kind {:?}", r.kind)))?,
            relayer: address(ATTEMPTS, &r.relayer)?,
            nonce: uint(ATTEMPTS, r.nonce)?,
            max_fee_per_gas: fee(&r.max_fee)?,
            max_priority_fee_per_gas: fee(&r.tip)?,
            gas_limit: uint(ATTEMPTS, r.gas_limit)?,
            raw: Bytes::from(r.raw),
            created_ms: r.created_ms,
            broadcast_ms: r.broadcast_ms,
            broadcast_block: r.broadcast_block.map(|b| uint(ATTEMPTS, b)).transpose()?,
            outcome: r
                .outcome
                .map(|o| {
                    o.parse::<AttemptOutcome>()
                        .map_err(|_| corrupt(ATTEMPTS, format!("outcome {o:?}")))
                })
                .transpose()?,
            deadline: r.deadline.map(|d| uint(ATTEMPTS, d)).transpose()?,
        })
    }
}

/// `sqlx::query_as!` into [`AttemptRow`] (attempt `a` joined to its job `j`), the rest of the
/// query (`WHERE ...`) appended.
macro_rules! select_attempts {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            AttemptRow,
            r#"SELECT a.tx_hash, a.job_id, a.kind, a.relayer, a.nonce, a.max_fee_per_gas::text AS "max_fee!",
                      a.max_priority_fee_per_gas::text AS "tip!", a.gas_limit, a.raw,
                      (extract(epoch FROM a.created_at) * 1000)::bigint AS "created_ms!",
                      (extract(epoch FROM a.broadcast_at) * 1000)::bigint AS broadcast_ms,
                      a.broadcast_block, a.outcome, j.deadline AS "deadline?"
                 FROM relay_attempts a LEFT JOIN relay_jobs j ON j.id = a.job_id "# + $rest $(, $arg)*
        )
    };
}

/// Every attempt of a job, oldest first.
pub async fn attempts_of(pool: &PgPool, job_id: &str) -> Result<Vec<Attempt>> {
    select_attempts!("WHERE a.job_id = $1 ORDER BY a.created_at, a.nonce", job_id)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(Attempt::try_from)
        .collect()
}

/// Attempts whose nonce is not known to be used yet, for `relayer`, by nonce then age.
pub async fn open_attempts(pool: &PgPool, chain_id: u64, relayer: Address) -> Result<Vec<Attempt>> {
    select_attempts!(
        "WHERE a.chain_id = $1 AND a.relayer = $2 AND a.outcome IS NULL
         ORDER BY a.nonce, a.created_at",
        int(chain_id),
        relayer.as_slice()
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(Attempt::try_from)
    .collect()
}

/// Every attempt ever made at `relayer`'s `nonce`, oldest first.
pub async fn attempts_at(
    pool: &PgPool,
    chain_id: u64,
    relayer: Address,
    nonce: u64,
) -> Result<Vec<Attempt>> {
    select_attempts!(
        "WHERE a.chain_id = $1 AND a.relayer = $2 AND a.nonce = $3
         ORDER BY a.created_at",
        int(chain_id),
        relayer.as_slice(),
        int(nonce)
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(Attempt::try_from)
    .collect()
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
    /// For a `reverted` action (a strike): whom it is charged to, and how far it reaches.
    pub strike: Option<Strike>,
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
                strike_party = CASE WHEN $10 = 'reverted' THEN $12::bytea END,
                strike_scope = CASE WHEN $10 = 'reverted' THEN $13::text END,
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
        detail,
        mined.strike.map(|s| s.party.to_vec()),
        mined.strike.map(|s| s.scope.as_str())
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
