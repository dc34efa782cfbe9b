//! Relay jobs (`relay_jobs`): one per accepted authorization, from acceptance to its outcome.

use alloy::primitives::{Address, B256, Bytes, U256};
use pactum_core::{
    ActionKind, JobFailure, JobState, RefusalCode,
    sponsor::{Requester, Usage},
};
use sqlx::{PgConnection, PgPool};

use crate::{
    Error, Result,
    convert::{address, amount, b256, corrupt, int, uint},
};

const JOBS: &str = "relay_jobs";

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
    /// That principal's owner (none for the operator's own tools).
    pub owner_id: Option<&'a str>,
}

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
    /// Its owner, if it has one.
    pub owner_id: Option<String>,
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

/// A `relay_jobs` row as read (see [`select_jobs`]).
struct JobRow {
    id: String,
    chain_id: i64,
    agreement_id: Vec<u8>,
    action: String,
    auth_digest: Vec<u8>,
    signer: Vec<u8>,
    buyer: Vec<u8>,
    seller: Vec<u8>,
    target: Vec<u8>,
    calldata: Vec<u8>,
    deadline: i64,
    gas_limit: i64,
    state: String,
    failure_code: Option<String>,
    failure_detail: Option<String>,
    relayer: Option<Vec<u8>>,
    nonce: Option<i64>,
    tx_hash: Option<Vec<u8>>,
    block_number: Option<i64>,
    gas_used: Option<i64>,
    gas_price: Option<String>,
    requested_by: String,
    owner_id: Option<String>,
    created_ms: i64,
    submitted_ms: Option<i64>,
    finished_ms: Option<i64>,
}

impl TryFrom<JobRow> for Job {
    type Error = Error;

    fn try_from(r: JobRow) -> Result<Self> {
        let opt_uint = |n: Option<i64>| n.map(|n| uint(JOBS, n)).transpose();
        Ok(Self {
            chain_id: uint(JOBS, r.chain_id)?,
            agreement_id: b256(JOBS, &r.agreement_id)?,
            action: r
                .action
                .parse::<ActionKind>()
                .map_err(|_| corrupt(JOBS, format!("action {:?}", r.action)))?,
            authorization: b256(JOBS, &r.auth_digest)?,
            signer: address(JOBS, &r.signer)?,
            buyer: address(JOBS, &r.buyer)?,
            seller: address(JOBS, &r.seller)?,
            target: address(JOBS, &r.target)?,
            calldata: Bytes::from(r.calldata),
            deadline: uint(JOBS, r.deadline)?,
            gas_limit: uint(JOBS, r.gas_limit)?,
            state: r
                .state
                .parse::<JobState>()
                .map_err(|_| corrupt(JOBS, format!("state {:?}", r.state)))?,
            failure_code: r
                .failure_code
                .map(|c| {
                    c.parse::<JobFailure>()
                        .map_err(|_| corrupt(JOBS, format!("failure code {c:?}")))
                })
                .transpose()?,
            failure_detail: r.failure_detail,
            relayer: r.relayer.map(|a| address(JOBS, &a)).transpose()?,
            nonce: opt_uint(r.nonce)?,
            tx_hash: r.tx_hash.map(|h| b256(JOBS, &h)).transpose()?,
            block_number: opt_uint(r.block_number)?,
            gas_used: opt_uint(r.gas_used)?,
            gas_price: r.gas_price.map(|p| amount(JOBS, &p)).transpose()?,
            requested_by: r.requested_by,
            owner_id: r.owner_id,
            created_ms: r.created_ms,
            submitted_ms: r.submitted_ms,
            finished_ms: r.finished_ms,
            id: r.id,
        })
    }
}

/// `sqlx::query_as!` into [`JobRow`] over every column, the rest of the query (`WHERE ...`)
/// appended: the one place the column list is written (sqlx's macros take only literals).
macro_rules! select_jobs {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            JobRow,
            r#"SELECT id, chain_id, agreement_id, action, auth_digest, signer, buyer, seller, target,
                      calldata, deadline, gas_limit, state, failure_code, failure_detail, relayer, nonce,
                      tx_hash, block_number, gas_used, gas_price::text AS gas_price, requested_by, owner_id,
                      (extract(epoch FROM created_at) * 1000)::bigint AS "created_ms!",
                      (extract(epoch FROM submitted_at) * 1000)::bigint AS submitted_ms,
                      (extract(epoch FROM finished_at) * 1000)::bigint AS finished_ms
                 FROM relay_jobs "# + $rest $(, $arg)*
        )
    };
}

/// The job with relay id `id`.
pub async fn job_by_id(pool: &PgPool, id: &str) -> Result<Option<Job>> {
    select_jobs!("WHERE id = $1", id)
        .fetch_optional(pool)
        .await?
        .map(Job::try_from)
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
    .map(Job::try_from)
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
    .map(Job::try_from)
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
    .map(Job::try_from)
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

/// How many acceptances may count at once in shared mode over every process sharing the
/// database (see [`take_acceptance_slot`]): what a near-limit check assumes may run beside it.
/// The default API pool's size, as the bound was when it was one process's pool: quotas switch
/// to the exclusive path at the same point as before (e.g. a principal's gas quota of 25 M with
/// 400 k per action: past 18.6 M used), and acceptances take milliseconds, so 16 at once are
/// thousands a second.
pub const ACCEPTANCE_SLOTS: u64 = 16;

/// Takes one of the chain's [`ACCEPTANCE_SLOTS`] acceptance slots until the end of the current
/// transaction, trying them from `start` on and waiting for slot `start` if every one is taken.
/// Whatever the number of API processes, at most that many acceptances hold a slot at once, so
/// that their quota checks can be exact across processes. Take it before any other acceptance
/// lock (a slot holder may wait for the others; nothing waits for a slot while holding them).
pub async fn take_acceptance_slot(
    conn: &mut PgConnection,
    chain_id: u64,
    start: u64,
) -> Result<()> {
    for i in 0..ACCEPTANCE_SLOTS {
        let slot = int((start + i) % ACCEPTANCE_SLOTS);
        let taken = sqlx::query_scalar!(
            r#"SELECT pg_try_advisory_xact_lock(hashtextextended('pactum.relay.accept.slot:' || $2::bigint, $1)) AS "taken!""#,
            int(chain_id),
            slot
        )
        .fetch_one(&mut *conn)
        .await?;
        if taken {
            return Ok(());
        }
    }
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended('pactum.relay.accept.slot:' || $2::bigint, $1))",
        int(chain_id),
        int(start % ACCEPTANCE_SLOTS)
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes the chain's acceptance lock until the end of the current transaction: shared by the
/// acceptances far from every quota, exclusive (alone, after every shared holder committed) for
/// one close to a quota or the daily budget, so that concurrent acceptances cannot together
/// overshoot it.
pub async fn lock_acceptance(
    conn: &mut PgConnection,
    chain_id: u64,
    exclusive: bool,
) -> Result<()> {
    if exclusive {
        sqlx::query!(
            "SELECT pg_advisory_xact_lock(hashtextextended('pactum.relay.accept', $1))",
            int(chain_id)
        )
        .execute(conn)
        .await?;
    } else {
        sqlx::query!(
            "SELECT pg_advisory_xact_lock_shared(hashtextextended('pactum.relay.accept', $1))",
            int(chain_id)
        )
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// What the sponsor policy counts (see [`Usage`]) for a job of `signer` on `agreement_id`
/// posted by `requester`.
pub async fn usage(
    conn: &mut PgConnection,
    chain_id: u64,
    agreement_id: B256,
    signer: Address,
    requester: Requester<'_>,
) -> Result<Usage> {
    // One pass over the last day's jobs of the signer, the principal and the owner (a bitmap
    // OR of their indexes), counting each quota with a filter; the agreement's jobs and the
    // chain's gas of the UTC day are counted apart.
    let r = sqlx::query!(
        r#"WITH recent AS (
             SELECT signer, requested_by, owner_id, strike_party, strike_scope, agreement_id,
                    NOT (state = 'failed' AND nonce IS NULL) AS counted,
                    CASE WHEN gas_used IS NOT NULL THEN gas_used
                         WHEN state IN ('accepted', 'submitting', 'submitted', 'cancelling') THEN gas_limit
                         ELSE 0 END AS gas
               FROM relay_jobs
              WHERE chain_id = $1 AND created_at > now() - interval '24 hours'
                AND (signer = $3 OR strike_party = $3 OR requested_by = $4 OR owner_id = $5)
           ), day AS (
             SELECT count(*) FILTER (WHERE signer = $3 AND counted) AS signer_jobs,
                    count(*) FILTER (WHERE strike_party = $3
                                       AND (strike_scope = 'party' OR agreement_id = $2)) AS signer_reverts,
                    count(*) FILTER (WHERE requested_by = $4 AND counted) AS principal_jobs,
                    coalesce(sum(gas) FILTER (WHERE requested_by = $4), 0) AS principal_gas,
                    count(*) FILTER (WHERE owner_id = $5 AND counted) AS owner_jobs,
                    coalesce(sum(gas) FILTER (WHERE owner_id = $5), 0) AS owner_gas
               FROM recent
           )
           SELECT
             (SELECT count(*) FROM relay_jobs
               WHERE chain_id = $1 AND agreement_id = $2 AND signer = $3
                 AND NOT (state = 'failed' AND nonce IS NULL)) AS "agreement_jobs!",
             day.signer_jobs AS "signer_jobs!",
             day.signer_reverts AS "signer_reverts!",
             (SELECT coalesce(sum(CASE WHEN gas_used IS NOT NULL THEN gas_used
                                       WHEN state IN ('accepted', 'submitting', 'submitted', 'cancelling') THEN gas_limit
                                       ELSE 0 END), 0)::bigint
                FROM relay_jobs
               WHERE chain_id = $1 AND created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')
               AS "gas_today!",
             day.principal_jobs AS "principal_jobs!",
             day.principal_gas::bigint AS "principal_gas!",
             day.owner_jobs AS "owner_jobs!",
             day.owner_gas::bigint AS "owner_gas!"
           FROM day"#,
        int(chain_id),
        agreement_id.as_slice(),
        signer.as_slice(),
        requester.principal,
        requester.owner
    )
    .fetch_one(conn)
    .await?;
    Ok(Usage {
        agreement_jobs: uint(JOBS, r.agreement_jobs)?,
        signer_jobs_24h: uint(JOBS, r.signer_jobs)?,
        signer_reverts_24h: uint(JOBS, r.signer_reverts)?,
        gas_today: uint(JOBS, r.gas_today)?,
        principal_jobs_24h: uint(JOBS, r.principal_jobs)?,
        principal_gas_24h: uint(JOBS, r.principal_gas)?,
        owner_jobs_24h: uint(JOBS, r.owner_jobs)?,
        owner_gas_24h: uint(JOBS, r.owner_gas)?,
    })
}

/// Inserts `new` unless its authorization is already a job (that one is returned) or another job
/// of the agreement is in flight (that one is returned). Run it under [`lock_acceptance`] when the
/// policy checks must hold at insert time.
pub async fn insert_job(conn: &mut PgConnection, new: &NewJob<'_>) -> Result<Inserted> {
    let inserted = sqlx::query!(
        "INSERT INTO relay_jobs (id, chain_id, agreement_id, action, auth_digest, signer, buyer, seller,
                                 target, calldata, deadline, gas_limit, state, requested_by, owner_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'accepted', $13, $14)
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
        new.requested_by,
        new.owner_id
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
    .map(Job::try_from)
    .collect()
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

/// Jobs per state on the chain (for metrics).
pub async fn jobs_by_state(pool: &PgPool, chain_id: u64) -> Result<Vec<(JobState, u64)>> {
    sqlx::query!(
        r#"SELECT state, count(*) AS "n!" FROM relay_jobs WHERE chain_id = $1 GROUP BY state"#,
        int(chain_id)
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| {
        let state = r
            .state
            .parse::<JobState>()
            .map_err(|_| corrupt(JOBS, format!("state {:?}", r.state)))?;
        Ok((state, uint(JOBS, r.n)?))
    })
    .collect()
}
