//! Approval requests (`approval_requests`): one per agreement that waits for its buyer's owner.
//! Written with the proposal ([`insert`]), decided under the agreement's row lock ([`decide`]),
//! expired with the agreement by the expiry sweep (`agreements::expire_due`).

use pactum_core::approval::{ApprovalStatus, Decision};
use sqlx::PgConnection;

use crate::{
    Result,
    convert::{corrupt, int, uint},
};

const TABLE: &str = "approval_requests";

/// An approval request as stored, with the terms of the agreement it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequest {
    /// `apr_...`.
    pub id: String,
    /// Creation order (the list's cursor).
    pub seq: i64,
    /// The agent whose owner decides.
    pub agent_id: String,
    /// The agreement waiting.
    pub agreement_id: String,
    /// The policy rule that asked.
    pub rule: String,
    /// Its figure, in cents.
    pub threshold_cents: u64,
    /// The amount asked about, in cents.
    pub amount_cents: u64,
    /// As stored (see [`ApprovalStatus::at`] for the one shown).
    pub status: ApprovalStatus,
    /// Unix seconds.
    pub expires_at: u64,
    /// Why it was rejected.
    pub reason: Option<String>,
    /// `owner:<id>` of the decision.
    pub decided_by: Option<String>,
    /// RFC 3339, UTC.
    pub decided_at: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// The agreement's seller agent.
    pub seller_agent_id: String,
    /// Its service.
    pub service_id: String,
    /// Units.
    pub quantity: u64,
    /// What a unit is.
    pub unit: String,
    /// Cents per unit.
    pub price_per_unit_cents: u64,
}

struct Row {
    id: String,
    seq: i64,
    agent_id: String,
    agreement_id: String,
    rule: String,
    threshold_cents: i64,
    amount_cents: i64,
    status: String,
    expires_at: i64,
    reason: Option<String>,
    decided_by: Option<String>,
    decided_at: Option<String>,
    created_at: String,
    seller_agent_id: String,
    service_id: String,
    quantity: i64,
    unit: String,
    price_per_unit_cents: i64,
}

impl TryFrom<Row> for ApprovalRequest {
    type Error = crate::Error;

    fn try_from(r: Row) -> Result<Self> {
        Ok(Self {
            status: r
                .status
                .parse()
                .map_err(|e| corrupt(TABLE, format!("{e}")))?,
            threshold_cents: uint(TABLE, r.threshold_cents)?,
            amount_cents: uint(TABLE, r.amount_cents)?,
            expires_at: uint(TABLE, r.expires_at)?,
            quantity: uint(TABLE, r.quantity)?,
            price_per_unit_cents: uint(TABLE, r.price_per_unit_cents)?,
            id: r.id,
            seq: r.seq,
            agent_id: r.agent_id,
            agreement_id: r.agreement_id,
            rule: r.rule,
            reason: r.reason,
            decided_by: r.decided_by,
            decided_at: r.decided_at,
            created_at: r.created_at,
            seller_agent_id: r.seller_agent_id,
            service_id: r.service_id,
            unit: r.unit,
        })
    }
}

/// `SELECT` of [`Row`]'s columns, followed by `$rest`.
macro_rules! select_requests {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            Row,
            r#"SELECT r.id, r.seq, r.agent_id, r.agreement_id, r.rule, r.threshold_cents,
                      r.amount_cents, r.status, r.expires_at, r.reason, r.decided_by,
                      to_char(r.decided_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS decided_at,
                      to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS "created_at!",
                      u.seller_agent_id, u.service_id, u.quantity, u.unit, u.price_per_unit_cents
               FROM approval_requests r
               JOIN usage_agreements u ON u.id = r.agreement_id "# + $rest
            $(, $arg)*
        )
    };
}

/// A new request, pending.
#[derive(Debug, Clone, Copy)]
pub struct NewRequest<'a> {
    /// `apr_...`.
    pub id: &'a str,
    /// The agent whose owner decides.
    pub agent_id: &'a str,
    /// The agreement waiting (inserted in the same transaction).
    pub agreement_id: &'a str,
    /// The rule that asked.
    pub rule: &'a str,
    /// Its figure, in cents.
    pub threshold_cents: u64,
    /// The amount, in cents.
    pub amount_cents: u64,
    /// Unix seconds.
    pub expires_at: u64,
}

/// Records a pending request.
pub async fn insert(conn: &mut PgConnection, new: NewRequest<'_>) -> Result<()> {
    sqlx::query!(
        "INSERT INTO approval_requests
           (id, agent_id, agreement_id, rule, threshold_cents, amount_cents, status, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7)",
        new.id,
        new.agent_id,
        new.agreement_id,
        new.rule,
        int(new.threshold_cents),
        int(new.amount_cents),
        int(new.expires_at),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Agent `agent_id`'s request `id`.
pub async fn load(
    conn: &mut PgConnection,
    agent_id: &str,
    id: &str,
) -> Result<Option<ApprovalRequest>> {
    select_requests!("WHERE r.id = $1 AND r.agent_id = $2", id, agent_id)
        .fetch_optional(conn)
        .await?
        .map(ApprovalRequest::try_from)
        .transpose()
}

/// Records `decision` on request `id` (its agreement locked by the caller, the request still
/// pending), by `by` with `reason` (rejections).
pub async fn decide(
    conn: &mut PgConnection,
    id: &str,
    decision: Decision,
    by: &str,
    reason: Option<&str>,
) -> Result<()> {
    sqlx::query!(
        "UPDATE approval_requests
            SET status = $2, reason = $3, decided_by = $4, decided_at = now()
          WHERE id = $1 AND status = 'pending'",
        id,
        decision.status().as_str(),
        reason,
        by,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Which of an agent's requests to list.
#[derive(Debug, Clone, Copy)]
pub struct ListQuery<'a> {
    /// The agent.
    pub agent_id: &'a str,
    /// Only those with this status as shown at `now`.
    pub status: Option<ApprovalStatus>,
    /// Unix seconds (what counts as expired).
    pub now: u64,
    /// Only those older than this `seq` (the previous page's last).
    pub before: Option<i64>,
    /// Page size.
    pub limit: u32,
}

/// A page of an agent's requests, newest first. A status filter uses the status as shown:
/// `expired` includes pending requests whose expiry passed before the sweep recorded it, and
/// `pending` excludes them.
pub async fn list(conn: &mut PgConnection, q: ListQuery<'_>) -> Result<Vec<ApprovalRequest>> {
    let (stored, expiring): (Vec<&str>, Option<bool>) = match q.status {
        None => (Vec::new(), None),
        Some(ApprovalStatus::Expired) => (vec!["expired", "pending"], Some(true)),
        Some(ApprovalStatus::Pending) => (vec!["pending"], Some(false)),
        Some(s) => (vec![s.as_str()], None),
    };
    let stored: Vec<String> = stored.into_iter().map(str::to_owned).collect();
    select_requests!(
        r#"WHERE r.agent_id = $1 AND r.seq < $2 AND (NOT $3 OR r.status = ANY($4))
             AND ($5::bool IS NULL OR ($5 AND (r.status = 'expired' OR r.expires_at <= $6))
                  OR (NOT $5 AND r.expires_at > $6))
           ORDER BY r.seq DESC LIMIT $7"#,
        q.agent_id,
        q.before.unwrap_or(i64::MAX),
        q.status.is_some(),
        &stored,
        expiring,
        int(q.now),
        i64::from(q.limit),
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(ApprovalRequest::try_from)
    .collect()
}
