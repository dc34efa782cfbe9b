//! Webhooks as stored: owners' endpoints (`webhook_endpoints`), the messages announcing events
//! (`webhook_messages`, written by triggers in the transaction of the change they announce: see
//! migration 0016), their deliveries (`webhook_deliveries`) and every attempt
//! (`webhook_attempts`). The delivery workers take due deliveries with [`claim`] (`FOR UPDATE
//! SKIP LOCKED`, safe with several processes; a few per endpoint at a time) and write what
//! happened with [`complete`] (only for deliveries still in the claim the attempt was made
//! under), then [`disable_failing`].
//!
//! Lock order, everywhere: deliveries before their endpoint.

use std::time::Duration;

use pactum_core::webhook::{DeliveryStatus, EndpointStatus, EventType};
use sqlx::{PgConnection, PgExecutor};

use crate::{
    Result,
    convert::{corrupt, int},
};

const ENDPOINTS: &str = "webhook_endpoints";
const DELIVERIES: &str = "webhook_deliveries";

/// An endpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `whk_...`.
    pub id: String,
    /// Creation order.
    pub seq: i64,
    /// The agent whose events it receives.
    pub agent_id: String,
    /// Where deliveries go.
    pub url: String,
    /// The owner's note.
    pub description: String,
    /// The types delivered (`None`: every type).
    pub event_types: Option<Vec<EventType>>,
    /// Whether deliveries are made.
    pub status: EndpointStatus,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// When (RFC 3339, UTC).
    pub disabled_at: Option<String>,
    /// When a rotated secret stops signing (RFC 3339, UTC), while one overlaps.
    pub previous_expires_at: Option<String>,
    /// Since when every attempt failed (RFC 3339, UTC).
    pub failing_since: Option<String>,
    /// `owner:<id>`.
    pub created_by: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub updated_at: String,
}

struct EndpointRow {
    id: String,
    seq: i64,
    agent_id: String,
    url: String,
    description: String,
    event_types: Option<Vec<String>>,
    status: String,
    disabled_reason: Option<String>,
    disabled_at: Option<String>,
    previous_expires_at: Option<String>,
    failing_since: Option<String>,
    created_by: String,
    created_at: String,
    updated_at: String,
}

impl TryFrom<EndpointRow> for Endpoint {
    type Error = crate::Error;

    fn try_from(r: EndpointRow) -> Result<Self> {
        let bad = |e: pactum_core::UnknownName| corrupt(ENDPOINTS, e.to_string());
        Ok(Self {
            event_types: r
                .event_types
                .map(|ts| ts.iter().map(|t| t.parse().map_err(bad)).collect())
                .transpose()?,
            status: r.status.parse().map_err(bad)?,
            id: r.id,
            seq: r.seq,
            agent_id: r.agent_id,
            url: r.url,
            description: r.description,
            disabled_reason: r.disabled_reason,
            disabled_at: r.disabled_at,
            previous_expires_at: r.previous_expires_at,
            failing_since: r.failing_since,
            created_by: r.created_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

macro_rules! select_endpoints {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            EndpointRow,
            r#"SELECT id, seq, agent_id, url, description, event_types, status, disabled_reason,
                      to_char(disabled_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS disabled_at,
                      to_char(previous_expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS previous_expires_at,
                      to_char(failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS failing_since,
                      created_by,
                      to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS "created_at!",
                      to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS "updated_at!"
               FROM webhook_endpoints "# + $rest
            $(, $arg)*
        )
    };
}

fn names(types: Option<&[EventType]>) -> Option<Vec<String>> {
    types.map(|ts| ts.iter().map(|t| t.as_str().to_owned()).collect())
}

/// A new endpoint.
#[derive(Debug, Clone, Copy)]
pub struct NewEndpoint<'a> {
    /// `whk_...`.
    pub id: &'a str,
    /// The agent.
    pub agent_id: &'a str,
    /// Where deliveries go (checked).
    pub url: &'a str,
    /// The owner's note.
    pub description: &'a str,
    /// The types delivered (`None`: every type).
    pub event_types: Option<&'a [EventType]>,
    /// `whsec_...`.
    pub secret: &'a str,
    /// `owner:<id>`.
    pub created_by: &'a str,
}

/// Stores `new` unless its agent already has `max` endpoints; `false` then (nothing stored).
/// Counted under a lock on the agent's row, so concurrent creations cannot pass `max`.
pub async fn insert(conn: &mut PgConnection, new: NewEndpoint<'_>, max: u64) -> Result<bool> {
    sqlx::query!(
        "SELECT id FROM agents WHERE id = $1 FOR NO KEY UPDATE",
        new.agent_id
    )
    .fetch_optional(&mut *conn)
    .await?;
    let count = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM webhook_endpoints WHERE agent_id = $1 AND deleted_at IS NULL"#,
        new.agent_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if count >= int(max) {
        return Ok(false);
    }
    let types = names(new.event_types);
    sqlx::query!(
        "INSERT INTO webhook_endpoints (id, agent_id, url, description, event_types, secret, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        new.id,
        new.agent_id,
        new.url,
        new.description,
        types.as_deref(),
        new.secret,
        new.created_by,
    )
    .execute(conn)
    .await?;
    Ok(true)
}

/// Agent `agent_id`'s endpoint `id`.
pub async fn endpoint(
    conn: impl PgExecutor<'_>,
    agent_id: &str,
    id: &str,
) -> Result<Option<Endpoint>> {
    select_endpoints!(
        "WHERE id = $1 AND agent_id = $2 AND deleted_at IS NULL",
        id,
        agent_id
    )
    .fetch_optional(conn)
    .await?
    .map(Endpoint::try_from)
    .transpose()
}

/// Agent `agent_id`'s endpoints, oldest first.
pub async fn endpoints(conn: impl PgExecutor<'_>, agent_id: &str) -> Result<Vec<Endpoint>> {
    select_endpoints!(
        "WHERE agent_id = $1 AND deleted_at IS NULL ORDER BY seq",
        agent_id
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(Endpoint::try_from)
    .collect()
}

/// What an update changes (`None`: unchanged).
#[derive(Debug, Clone, Copy, Default)]
pub struct EndpointChange<'a> {
    /// A new URL (checked).
    pub url: Option<&'a str>,
    /// A new note.
    pub description: Option<&'a str>,
    /// New types: `Some(None)` every type.
    pub event_types: Option<Option<&'a [EventType]>>,
    /// Enable (`true`: clears the disabled reason and the failing streak) or disable.
    pub enabled: Option<bool>,
}

/// Why an endpoint the owner disables is disabled.
pub const DISABLED_BY_OWNER: &str = "disabled by its owner";
/// The error recorded on deliveries a disabled endpoint will not get.
pub const ENDPOINT_DISABLED: &str = "the endpoint was disabled before this delivery succeeded";

/// Applies `change` to agent `agent_id`'s endpoint `id`; `false` if there is none. Disabling
/// fails its pending deliveries first (replay them once it is enabled again).
pub async fn update(
    conn: &mut PgConnection,
    agent_id: &str,
    id: &str,
    change: EndpointChange<'_>,
) -> Result<bool> {
    if change.enabled == Some(false) {
        fail_pending(&mut *conn, agent_id, &[id.to_owned()], ENDPOINT_DISABLED).await?;
    }
    let (set_types, types) = match change.event_types {
        None => (false, None),
        Some(types) => (true, names(types)),
    };
    let updated = sqlx::query!(
        r#"UPDATE webhook_endpoints
              SET url = coalesce($3, url),
                  description = coalesce($4, description),
                  event_types = CASE WHEN $5 THEN $6 ELSE event_types END,
                  status = CASE WHEN $7::bool IS NULL THEN status
                                WHEN $7 THEN 'enabled' ELSE 'disabled' END,
                  disabled_reason = CASE WHEN $7::bool IS NULL THEN disabled_reason
                                         WHEN $7 THEN NULL
                                         ELSE coalesce(disabled_reason, $8) END,
                  disabled_at = CASE WHEN $7::bool IS NULL THEN disabled_at
                                     WHEN $7 THEN NULL
                                     ELSE coalesce(disabled_at, now()) END,
                  failing_since = CASE WHEN $7 THEN NULL ELSE failing_since END,
                  updated_at = now()
            WHERE id = $1 AND agent_id = $2 AND deleted_at IS NULL"#,
        id,
        agent_id,
        change.url,
        change.description,
        set_types,
        types.as_deref(),
        change.enabled,
        DISABLED_BY_OWNER,
    )
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Fails agent `agent_id`'s pending deliveries to `endpoints` with `error` (moving their claim
/// on, so that an attempt in flight records nothing).
async fn fail_pending(
    conn: &mut PgConnection,
    agent_id: &str,
    endpoints: &[String],
    error: &str,
) -> Result<()> {
    sqlx::query!(
        "UPDATE webhook_deliveries
            SET status = 'failed', next_attempt_at = NULL, last_error = $3, claim = claim + 1,
                updated_at = now()
          WHERE agent_id = $1 AND endpoint_id = ANY($2) AND status = 'pending'",
        agent_id,
        endpoints,
        error,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes agent `agent_id`'s endpoint `id`: its pending deliveries fail, and it is no longer
/// listed, counted or delivered to (the row stays: removing it would lock it against the
/// transactions that announce events). `false` if there is none.
pub async fn delete(conn: &mut PgConnection, agent_id: &str, id: &str) -> Result<bool> {
    fail_pending(
        &mut *conn,
        agent_id,
        &[id.to_owned()],
        "the endpoint was deleted",
    )
    .await?;
    Ok(sqlx::query!(
        "UPDATE webhook_endpoints
            SET deleted_at = now(), status = 'disabled',
                disabled_reason = coalesce(disabled_reason, 'deleted by its owner'),
                disabled_at = coalesce(disabled_at, now()), updated_at = now()
          WHERE id = $1 AND agent_id = $2 AND deleted_at IS NULL",
        id,
        agent_id
    )
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Replaces endpoint `id`'s secret with `secret`; the current one keeps signing beside it for
/// `overlap` (not at all when zero). `false` if there is no such endpoint.
pub async fn rotate_secret(
    conn: &mut PgConnection,
    agent_id: &str,
    id: &str,
    secret: &str,
    overlap: Duration,
) -> Result<bool> {
    let keep = !overlap.is_zero();
    Ok(sqlx::query!(
        "UPDATE webhook_endpoints
            SET previous_secret = CASE WHEN $4 THEN secret END,
                previous_expires_at = CASE WHEN $4 THEN now() + make_interval(secs => $5) END,
                secret = $3,
                updated_at = now()
          WHERE id = $1 AND agent_id = $2 AND deleted_at IS NULL",
        id,
        agent_id,
        secret,
        keep,
        overlap.as_secs_f64(),
    )
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// RFC 3339, UTC.
    pub started_at: String,
    /// How long it took.
    pub duration_ms: u32,
    /// The answer's status, if one came.
    pub status_code: Option<u16>,
    /// Why there was no answer, or why it did not count.
    pub error: Option<String>,
    /// The start of the answer's body.
    pub response: Option<String>,
}

/// A delivery as stored, with its message's type and its attempts (newest last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// `dlv_...`.
    pub id: String,
    /// Creation order (the list's cursor).
    pub seq: i64,
    /// The message (`webhook-id`).
    pub message_id: String,
    /// Its event type.
    pub event_type: String,
    /// The endpoint.
    pub endpoint_id: String,
    /// Where it goes.
    pub url: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// When the next is due (RFC 3339, UTC), while pending.
    pub next_attempt_at: Option<String>,
    /// RFC 3339, UTC.
    pub delivered_at: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// Every attempt, oldest first.
    pub attempt_log: Vec<Attempt>,
}

struct DeliveryRow {
    id: String,
    seq: i64,
    message_id: String,
    event_type: String,
    endpoint_id: String,
    url: String,
    status: String,
    attempts: i32,
    next_attempt_at: Option<String>,
    delivered_at: Option<String>,
    created_at: String,
}

/// `SELECT` of [`DeliveryRow`]'s columns, followed by `$rest`.
macro_rules! select_deliveries {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            DeliveryRow,
            r#"SELECT d.id, d.seq, d.message_id, m.event_type, d.endpoint_id, e.url, d.status,
                      d.attempts,
                      to_char(d.next_attempt_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS next_attempt_at,
                      to_char(d.delivered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS delivered_at,
                      to_char(d.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS "created_at!"
               FROM webhook_deliveries d
               JOIN webhook_messages m ON m.id = d.message_id
               JOIN webhook_endpoints e ON e.id = d.endpoint_id "# + $rest
            $(, $arg)*
        )
    };
}

/// Which of an agent's deliveries to list.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryQuery<'a> {
    /// The agent.
    pub agent_id: &'a str,
    /// Only those with this status.
    pub status: Option<DeliveryStatus>,
    /// Only those to this endpoint.
    pub endpoint_id: Option<&'a str>,
    /// Only those older than this `seq` (the previous page's last).
    pub before: Option<i64>,
    /// Page size.
    pub limit: u32,
}

/// A page of an agent's deliveries, newest first, each with its attempts.
pub async fn deliveries(conn: &mut PgConnection, q: DeliveryQuery<'_>) -> Result<Vec<Delivery>> {
    let rows = select_deliveries!(
        r#"WHERE d.agent_id = $1 AND d.seq < $2 AND e.deleted_at IS NULL
              AND ($3::text IS NULL OR d.status = $3)
              AND ($4::text IS NULL OR d.endpoint_id = $4)
            ORDER BY d.seq DESC LIMIT $5"#,
        q.agent_id,
        q.before.unwrap_or(i64::MAX),
        q.status.map(DeliveryStatus::as_str),
        q.endpoint_id,
        i64::from(q.limit),
    )
    .fetch_all(&mut *conn)
    .await?;
    with_attempts(conn, rows).await
}

/// Agent `agent_id`'s delivery `id`, with its attempts.
pub async fn delivery(
    conn: &mut PgConnection,
    agent_id: &str,
    id: &str,
) -> Result<Option<Delivery>> {
    let rows = select_deliveries!("WHERE d.id = $1 AND d.agent_id = $2", id, agent_id,)
        .fetch_all(&mut *conn)
        .await?;
    Ok(with_attempts(conn, rows).await?.pop())
}

async fn with_attempts(conn: &mut PgConnection, rows: Vec<DeliveryRow>) -> Result<Vec<Delivery>> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let attempts = sqlx::query!(
        r#"SELECT delivery_id, duration_ms, status_code, error, response,
                  to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS "started_at!"
             FROM webhook_attempts WHERE delivery_id = ANY($1) ORDER BY id"#,
        &ids,
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            let log = attempts
                .iter()
                .filter(|a| a.delivery_id == r.id)
                .map(|a| Attempt {
                    started_at: a.started_at.clone(),
                    duration_ms: u32::try_from(a.duration_ms).unwrap_or(0),
                    status_code: a.status_code.and_then(|c| u16::try_from(c).ok()),
                    error: a.error.clone(),
                    response: a.response.clone(),
                })
                .collect();
            Ok(Delivery {
                status: r
                    .status
                    .parse()
                    .map_err(|e: pactum_core::UnknownName| corrupt(DELIVERIES, e.to_string()))?,
                attempts: u32::try_from(r.attempts).unwrap_or(0),
                id: r.id,
                seq: r.seq,
                message_id: r.message_id,
                event_type: r.event_type,
                endpoint_id: r.endpoint_id,
                url: r.url,
                next_attempt_at: r.next_attempt_at,
                delivered_at: r.delivered_at,
                created_at: r.created_at,
                attempt_log: log,
            })
        })
        .collect()
}

/// Why a replay was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayRefused {
    /// No such delivery of the agent.
    NotFound,
    /// It is still pending.
    InProgress,
    /// Its endpoint is disabled.
    Disabled,
}

/// Queues one more attempt of agent `agent_id`'s finished delivery `id` (same message, same
/// `webhook-id`), due at once and the last of its schedule (`last_step`). The endpoint is
/// share-locked meanwhile, so it cannot be disabled between the check and the write (and if it
/// is disabled later, the workers fail the delivery instead of sending it).
pub async fn replay(
    conn: &mut PgConnection,
    agent_id: &str,
    id: &str,
    last_step: u32,
) -> Result<std::result::Result<(), ReplayRefused>> {
    let row = sqlx::query!(
        r#"SELECT d.status, e.status AS endpoint_status
             FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
            WHERE d.id = $1 AND d.agent_id = $2 AND e.deleted_at IS NULL
            FOR UPDATE OF d FOR SHARE OF e"#,
        id,
        agent_id,
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(Err(ReplayRefused::NotFound));
    };
    if row.status == "pending" {
        return Ok(Err(ReplayRefused::InProgress));
    }
    if row.endpoint_status != "enabled" {
        return Ok(Err(ReplayRefused::Disabled));
    }
    sqlx::query!(
        "UPDATE webhook_deliveries
            SET status = 'pending', next_attempt_at = now(), schedule_step = $2,
                claim = claim + 1, updated_at = now()
          WHERE id = $1",
        id,
        i32::try_from(last_step).unwrap_or(i32::MAX),
    )
    .execute(conn)
    .await?;
    Ok(Ok(()))
}

/// A delivery a worker took: what to send where, signed with which secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// `dlv_...`.
    pub id: String,
    /// The claim it was taken under (its outcome is recorded only in this claim).
    pub claim: i64,
    /// The `webhook-id`.
    pub message_id: String,
    /// The exact body.
    pub payload: String,
    /// The endpoint.
    pub endpoint_id: String,
    /// Where.
    pub url: String,
    /// The secrets signing it: the current one, and a rotated one still overlapping.
    pub secrets: Vec<String>,
    /// Attempts of the current schedule before this one.
    pub schedule_step: u32,
}

/// What a claim may take.
#[derive(Debug, Clone, Copy)]
pub struct ClaimLimits<'a> {
    /// Deliveries in all.
    pub total: u32,
    /// Deliveries of one endpoint.
    pub per_endpoint: u32,
    /// Endpoints to leave alone (those with as many attempts in flight as they may have).
    pub busy: &'a [String],
    /// How long each taken delivery is leased.
    pub lease: Duration,
}

/// Takes due deliveries for a worker: of each enabled endpoint with some due (the `busy` ones
/// aside), up to `per_endpoint`, the oldest due first; up to `total` in all. Each becomes due
/// again only when `lease` has passed (so that a worker killed mid-attempt loses nothing), is
/// counted as attempted, and moves to a new claim. Rows other workers hold are skipped, so
/// several workers in several processes each take their own. Pending deliveries of endpoints
/// disabled or deleted meanwhile are failed instead.
pub async fn claim(conn: &mut PgConnection, limits: ClaimLimits<'_>) -> Result<Vec<Claimed>> {
    sqlx::query!(
        "UPDATE webhook_deliveries d
            SET status = 'failed', next_attempt_at = NULL, last_error = $1, claim = d.claim + 1,
                updated_at = now()
           FROM webhook_endpoints e
          WHERE e.id = d.endpoint_id AND d.status = 'pending' AND d.next_attempt_at <= now()
            AND (e.status <> 'enabled' OR e.deleted_at IS NOT NULL)",
        ENDPOINT_DISABLED,
    )
    .execute(&mut *conn)
    .await?;
    let rows = sqlx::query!(
        r#"WITH ready AS (
             SELECT e.id FROM webhook_endpoints e
              WHERE e.status = 'enabled' AND e.deleted_at IS NULL AND e.id <> ALL($4)
                AND EXISTS (SELECT 1 FROM webhook_deliveries d
                             WHERE d.endpoint_id = e.id AND d.status = 'pending'
                               AND d.next_attempt_at <= now())
           ), due AS (
             SELECT t.id, t.next_attempt_at FROM ready r CROSS JOIN LATERAL (
               SELECT d.id, d.next_attempt_at FROM webhook_deliveries d
                WHERE d.endpoint_id = r.id AND d.status = 'pending' AND d.next_attempt_at <= now()
                ORDER BY d.next_attempt_at
                LIMIT $3
                FOR UPDATE SKIP LOCKED) t
             ORDER BY t.next_attempt_at
             LIMIT $1
           ), taken AS (
             UPDATE webhook_deliveries d
                SET next_attempt_at = now() + make_interval(secs => $2), attempts = d.attempts + 1,
                    claim = d.claim + 1, updated_at = now()
               FROM due WHERE d.id = due.id
             RETURNING d.id, d.claim, d.message_id, d.endpoint_id, d.schedule_step
           )
           SELECT t.id AS "id!", t.claim AS "claim!", t.message_id AS "message_id!", m.payload,
                  t.endpoint_id AS "endpoint_id!", e.url, e.secret,
                  CASE WHEN e.previous_expires_at > now() THEN e.previous_secret END AS previous_secret,
                  t.schedule_step AS "schedule_step!"
             FROM taken t
             JOIN webhook_messages m ON m.id = t.message_id
             JOIN webhook_endpoints e ON e.id = t.endpoint_id"#,
        i64::from(limits.total),
        limits.lease.as_secs_f64(),
        i64::from(limits.per_endpoint),
        limits.busy,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Claimed {
            id: r.id,
            claim: r.claim,
            message_id: r.message_id,
            payload: r.payload,
            endpoint_id: r.endpoint_id,
            url: r.url,
            secrets: std::iter::once(r.secret).chain(r.previous_secret).collect(),
            schedule_step: u32::try_from(r.schedule_step).unwrap_or(0),
        })
        .collect())
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The delivery.
    pub delivery_id: String,
    /// The claim the attempt was made under.
    pub claim: i64,
    /// Its endpoint.
    pub endpoint_id: String,
    /// When the attempt started (unix seconds, fractional).
    pub started_at: f64,
    /// How long it took.
    pub duration_ms: u32,
    /// The answer's status, if one came.
    pub status_code: Option<u16>,
    /// Why there was no answer, or why it did not count.
    pub error: Option<String>,
    /// The start of the answer's body.
    pub response: Option<String>,
    /// Whether it counts as delivered (2xx).
    pub delivered: bool,
    /// For a failure: the pause before the next attempt, or `None` when the schedule is spent
    /// (the delivery is failed).
    pub retry_in: Option<Duration>,
}

/// Text PostgreSQL stores: without NUL characters (a receiver's binary answer has them).
fn storable(text: Option<&str>) -> Option<String> {
    text.map(|t| t.replace('\0', "\u{fffd}"))
}

/// A failure more than this long after the last one starts a new failing streak.
pub const STREAK_GAP: Duration = Duration::from_secs(24 * 3600);

/// Records `outcomes` in one statement: each attempt, and the delivery's new status (succeeded,
/// pending with its next pause, or failed), only for deliveries still pending in the claim the
/// attempt was made under (a late outcome, after a replay, a disabling or a lease that ran out,
/// records nothing); then each endpoint's failing streak (a success ends it; a failure starts
/// one, or continues it if the last failure was less than [`STREAK_GAP`] ago). Returns how many
/// were recorded.
pub async fn complete(conn: &mut PgConnection, outcomes: &[Outcome]) -> Result<u64> {
    if outcomes.is_empty() {
        return Ok(0);
    }
    let ids: Vec<&str> = outcomes.iter().map(|o| o.delivery_id.as_str()).collect();
    let claims: Vec<i64> = outcomes.iter().map(|o| o.claim).collect();
    let started: Vec<f64> = outcomes.iter().map(|o| o.started_at).collect();
    let durations: Vec<i32> = outcomes
        .iter()
        .map(|o| i32::try_from(o.duration_ms).unwrap_or(i32::MAX))
        .collect();
    let codes: Vec<Option<i32>> = outcomes
        .iter()
        .map(|o| o.status_code.map(i32::from))
        .collect();
    let errors: Vec<Option<String>> = outcomes
        .iter()
        .map(|o| storable(o.error.as_deref()))
        .collect();
    let responses: Vec<Option<String>> = outcomes
        .iter()
        .map(|o| storable(o.response.as_deref()))
        .collect();
    let delivered: Vec<bool> = outcomes.iter().map(|o| o.delivered).collect();
    let retry: Vec<Option<f64>> = outcomes
        .iter()
        .map(|o| o.retry_in.map(|d| d.as_secs_f64()))
        .collect();
    let recorded = sqlx::query_scalar!(
        r#"WITH r AS (
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::float8[], $4::int[], $5::int[],
                                  $6::text[], $7::text[], $8::bool[], $9::float8[])
                    AS r (id, claim, started, duration, code, error, response, delivered, retry)
           ), updated AS (
             UPDATE webhook_deliveries d
                SET status = CASE WHEN r.delivered THEN 'succeeded'
                                  WHEN r.retry IS NULL THEN 'failed' ELSE 'pending' END,
                    next_attempt_at = CASE WHEN r.delivered OR r.retry IS NULL THEN NULL
                                           ELSE now() + make_interval(secs => r.retry) END,
                    schedule_step = d.schedule_step + (NOT r.delivered)::int,
                    last_status_code = r.code,
                    last_error = r.error,
                    delivered_at = CASE WHEN r.delivered THEN now() ELSE d.delivered_at END,
                    updated_at = now()
               FROM r WHERE d.id = r.id AND d.claim = r.claim AND d.status = 'pending'
             RETURNING d.id, d.endpoint_id, r.delivered
           ), attempts AS (
             INSERT INTO webhook_attempts (delivery_id, started_at, duration_ms, status_code, error, response)
             SELECT r.id, to_timestamp(r.started), r.duration, r.code, r.error, r.response
               FROM r JOIN updated u ON u.id = r.id
           ), streaks AS (
             SELECT endpoint_id, bool_or(delivered) AS any_delivered FROM updated GROUP BY endpoint_id
           ), endpoints AS (
             UPDATE webhook_endpoints e
                SET failing_since = CASE
                        WHEN s.any_delivered THEN NULL
                        WHEN e.failing_since IS NULL
                          OR e.last_failed_at < now() - make_interval(secs => $10) THEN now()
                        ELSE e.failing_since END,
                    last_failed_at = CASE WHEN s.any_delivered THEN e.last_failed_at ELSE now() END
               FROM streaks s
              WHERE e.id = s.endpoint_id
           )
           SELECT count(*) AS "n!" FROM updated"#,
        &ids as &[&str],
        &claims,
        &started,
        &durations,
        &codes as &[Option<i32>],
        &errors as &[Option<String>],
        &responses as &[Option<String>],
        &delivered,
        &retry as &[Option<f64>],
        STREAK_GAP.as_secs_f64(),
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(u64::try_from(recorded).unwrap_or(0))
}

/// The delivery queue at a glance, for monitoring (over the pending deliveries' index).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QueueStats {
    /// Deliveries still to be made (due or waiting for a retry).
    pub pending: u64,
    /// Pending deliveries due now (not waiting for a retry or a lease).
    pub due: u64,
    /// How long the oldest due delivery has been due, in seconds (0 when none is).
    pub oldest_due_secs: f64,
}

/// [`QueueStats`] now.
pub async fn queue_stats(pool: &sqlx::PgPool) -> Result<QueueStats> {
    let row = sqlx::query!(
        r#"SELECT count(*) AS "pending!",
                  count(*) FILTER (WHERE next_attempt_at <= now()) AS "due!",
                  COALESCE(EXTRACT(EPOCH FROM now() - min(next_attempt_at)
                                   FILTER (WHERE next_attempt_at <= now()))::float8, 0) AS "oldest!"
           FROM webhook_deliveries WHERE status = 'pending'"#
    )
    .fetch_one(pool)
    .await?;
    Ok(QueueStats {
        pending: u64::try_from(row.pending).unwrap_or(0),
        due: u64::try_from(row.due).unwrap_or(0),
        oldest_due_secs: row.oldest,
    })
}

/// Disables those of `endpoints` whose every attempt has failed for `after` (a streak without a
/// day's gap) and fails their pending deliveries, in one statement; returns the ids disabled.
/// (Should a pending delivery escape, the next claim fails it rather than sending it.)
pub async fn disable_failing(
    conn: &mut PgConnection,
    endpoints: &[String],
    after: Duration,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar!(
        r#"WITH disabled AS (
             UPDATE webhook_endpoints
                SET status = 'disabled', disabled_at = now(), updated_at = now(),
                    disabled_reason = 'every delivery failed since ' ||
                        to_char(failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') ||
                        '; fix the receiver, enable the endpoint and replay the failed deliveries'
              WHERE id = ANY($1) AND status = 'enabled' AND deleted_at IS NULL
                AND failing_since <= now() - make_interval(secs => $2)
             RETURNING id
           ), failed AS (
             UPDATE webhook_deliveries d
                SET status = 'failed', next_attempt_at = NULL, last_error = $3,
                    claim = d.claim + 1, updated_at = now()
               FROM disabled WHERE d.endpoint_id = disabled.id AND d.status = 'pending'
           )
           SELECT id AS "id!" FROM disabled"#,
        endpoints,
        after.as_secs_f64(),
        ENDPOINT_DISABLED,
    )
    .fetch_all(conn)
    .await?)
}
