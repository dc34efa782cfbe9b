//! Approvals: `GET /agents/{agent_id}/approvals`, `POST .../{request_id}/approve` and
//! `POST .../{request_id}/reject?reason=...`. The rules are the domain's
//! (`pactum_core::approval`); a decision is taken under the agreement's row lock, so it and the
//! agreement's transition are one, and of two racing decisions the second sees the first.
//!
//! The agent's owner decides; the agent may read its own requests (to know why its proposal
//! waits); anyone else gets `404 agent_not_found`.

use pactum_api_types::{ApprovalPage, ApprovalView, ListApprovals};
use pactum_core::{
    Clock, SystemClock,
    agreement::{EventKind, LifecycleStatus},
    approval::{self, ApprovalCode, ApprovalError, Decision, Outcome},
};
use pactum_db::{
    agreements::{self, Cause, Fixes},
    approvals::{self, ApprovalRequest, NewRequest},
};
use sqlx::Acquire;

use crate::{
    AppState,
    auth::Principal,
    identity::{owner_of, visible_agent},
    problem::Problem,
};

/// The rule whose requests these are.
pub const THRESHOLD_RULE: &str = "approval_threshold_cents";

fn now() -> u64 {
    SystemClock.now_secs()
}

fn not_found(agent_id: &str, request_id: &str) -> Problem {
    ApprovalError::new(
        ApprovalCode::NotFound,
        format!("agent {agent_id:?} has no approval request {request_id:?}"),
    )
    .into()
}

/// The view of `r` at `now`.
pub(crate) fn view(r: ApprovalRequest, now: u64) -> ApprovalView {
    ApprovalView {
        status: r.status.at(now, r.expires_at),
        request_id: r.id,
        agent_id: r.agent_id,
        agreement_id: r.agreement_id,
        rule: r.rule,
        threshold_cents: r.threshold_cents,
        amount_cents: r.amount_cents,
        counterparty_agent_id: r.seller_agent_id,
        service_id: r.service_id,
        quantity: r.quantity,
        unit: r.unit,
        price_per_unit_cents: r.price_per_unit_cents,
        expires_at: r.expires_at,
        reason: r.reason,
        decided_by: r.decided_by,
        decided_at: r.decided_at,
        created_at: r.created_at,
    }
}

/// Records, in the proposal's transaction, that agreement `agreement_id` of `agent_id` waits for
/// the owner's approval of `amount_cents` (above `threshold_cents`) until `expires_at`, with its
/// `approval_requested` event; returns the request's id.
pub(crate) async fn request(
    conn: &mut sqlx::PgConnection,
    agent_id: &str,
    agreement_id: &str,
    threshold_cents: u64,
    amount_cents: u64,
    expires_at: u64,
) -> Result<String, Problem> {
    let id = format!("apr_{}", pactum_db::random_id(20));
    approvals::insert(
        &mut *conn,
        NewRequest {
            id: &id,
            agent_id,
            agreement_id,
            rule: THRESHOLD_RULE,
            threshold_cents,
            amount_cents,
            expires_at,
        },
    )
    .await?;
    let detail = serde_json::json!({
        "request_id": id,
        "rule": THRESHOLD_RULE,
        "threshold_cents": threshold_cents,
        "amount_cents": amount_cents,
        "expires_at": expires_at,
    })
    .to_string();
    agreements::record(
        conn,
        agreement_id,
        EventKind::ApprovalRequested,
        LifecycleStatus::PendingApproval,
        Cause {
            actor: "system",
            detail: &detail,
        },
        None,
    )
    .await?;
    Ok(id)
}

/// `GET /agents/{agent_id}/approvals`: the owner, or the agent itself.
pub(crate) async fn list(
    state: &AppState,
    principal: &Principal,
    agent_id: &str,
    q: &ListApprovals,
) -> Result<ApprovalPage, Problem> {
    let agent = visible_agent(state, principal, agent_id).await?;
    let (limit, before) = crate::paging::page(q.limit, q.cursor.as_deref())?;
    let now = now();
    let mut conn = state.db.acquire().await?;
    let rows = approvals::list(
        &mut conn,
        approvals::ListQuery {
            agent_id: &agent.agent.id,
            status: q.status,
            now,
            before,
            limit,
        },
    )
    .await?;
    let next_cursor = crate::paging::next_cursor(&rows, limit, |r| r.seq);
    Ok(ApprovalPage {
        approvals: rows.into_iter().map(|r| view(r, now)).collect(),
        next_cursor,
    })
}

/// `POST .../approve` and `POST .../reject`: the agent's owner decides request `request_id`.
/// The same decision again answers the request as it is; the other one is `409
/// approval_already_decided`; after the expiry, `409 approval_expired`.
pub(crate) async fn decide(
    state: &AppState,
    principal: &Principal,
    agent_id: &str,
    request_id: &str,
    decision: Decision,
    reason: Option<&str>,
) -> Result<ApprovalView, Problem> {
    let owner = owner_of(principal)?;
    let agent = visible_agent(state, principal, agent_id).await?;
    let reason = match decision {
        Decision::Approve => None,
        Decision::Reject => Some(approval::reason(reason)?),
    };
    let by = format!("owner:{owner}");
    let mut conn = state.db.acquire().await?;
    let found = approvals::load(&mut conn, &agent.agent.id, request_id)
        .await?
        .ok_or_else(|| not_found(agent_id, request_id))?;
    let mut tx = conn.begin().await.map_err(pactum_db::Error::from)?;
    // Requests change only under their agreement's lock: read again under it.
    let a = agreements::lock(&mut tx, &found.agreement_id)
        .await?
        .ok_or_else(|| Problem::internal_because("an approval request's agreement is gone"))?;
    let r = approvals::load(&mut tx, &agent.agent.id, request_id)
        .await?
        .ok_or_else(|| not_found(agent_id, request_id))?;
    let now = now();
    match approval::decide(r.status, decision, now, r.expires_at)? {
        Outcome::Repeat => {
            tx.commit().await.map_err(pactum_db::Error::from)?;
            return Ok(view(r, now));
        }
        Outcome::Apply => {}
    }
    if a.status != LifecycleStatus::PendingApproval {
        tracing::error!(agreement = %a.id, status = %a.status, request = request_id, "a pending approval request's agreement is not pending_approval");
        return Err(Problem::internal_because(
            "the agreement of a pending request is not waiting for approval",
        ));
    }
    approvals::decide(&mut tx, request_id, decision, &by, reason).await?;
    let to = decision.agreement_status();
    let (kind, detail) = match reason {
        None => (
            EventKind::Approved,
            serde_json::json!({ "request_id": request_id }),
        ),
        Some(reason) => (
            EventKind::ApprovalRejected,
            serde_json::json!({ "request_id": request_id, "reason": reason }),
        ),
    };
    agreements::transition(
        &mut tx,
        &a.id,
        to,
        kind,
        Fixes {
            rejection_reason: reason,
            ..Fixes::default()
        },
        Cause {
            actor: &by,
            detail: &detail.to_string(),
        },
    )
    .await?;
    let decided = approvals::load(&mut tx, &agent.agent.id, request_id)
        .await?
        .ok_or_else(|| not_found(agent_id, request_id))?;
    tx.commit().await.map_err(pactum_db::Error::from)?;
    tracing::info!(agreement = %a.id, request = request_id, %decision, by, "approval decided");
    Ok(view(decided, now))
}
