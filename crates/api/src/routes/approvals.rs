//! Approvals: `GET /agents/{agent_id}/approvals`, `POST .../{request_id}/approve` and
//! `POST .../{request_id}/reject?reason=...`.

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
};
use pactum_api_types::{ApprovalPage, ApprovalView, Decision, ListApprovals, RejectApproval};

use crate::{AppState, approvals, auth::Principal, problem::Problem};

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, Problem> {
    q.map(|Query(q)| q)
        .map_err(|e| crate::input::bad_request("invalid_query", e.body_text()))
}

/// The agent's approval requests, newest first: the owner, or the agent itself. Filter by
/// `status` (`pending`: still decidable; `expired` includes pending ones past their expiry);
/// page with `limit` (at most 100) and the previous page's `next_cursor`.
#[utoipa::path(
    get,
    path = "/agents/{agent_id}/approvals",
    params(("agent_id" = String, Path, description = "The agent"), ListApprovals),
    responses(
        (status = 200, body = ApprovalPage),
        (status = 400, description = "Bad `limit`, `cursor` or `status` (`invalid_parameter`, `invalid_cursor`, `invalid_query`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid credentials (`unauthenticated`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown agent, or not the caller's (`agent_not_found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("owner_jwt" = []), ("api_key" = [])),
    tag = "approvals"
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent_id): Path<String>,
    q: Result<Query<ListApprovals>, QueryRejection>,
) -> Result<Json<ApprovalPage>, Problem> {
    let q = query(q)?;
    Ok(Json(
        approvals::list(&state, &principal, &agent_id, &q).await?,
    ))
}

/// Approve a request (the agent's owner): the agreement leaves `pending_approval` for
/// `proposed` and goes to the seller. Approving again answers the request as it is; after a
/// rejection or the expiry, `409`. `Idempotency-Key` honoured.
#[utoipa::path(
    post,
    path = "/agents/{agent_id}/approvals/{request_id}/approve",
    params(
        ("agent_id" = String, Path, description = "The agent"),
        ("request_id" = String, Path, description = "The request (`apr_…`)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe"),
    ),
    responses(
        (status = 200, description = "Approved (now or before)", body = ApprovalView),
        (status = 401, description = "Missing or invalid credentials (`unauthenticated`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an owner JWT (`owner_only`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent of this owner (`agent_not_found`) or request (`approval_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Rejected already (`approval_already_decided`) or expired (`approval_expired`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("owner_jwt" = [])),
    tag = "approvals"
)]
pub async fn approve(
    State(state): State<AppState>,
    principal: Principal,
    Path((agent_id, request_id)): Path<(String, String)>,
) -> Result<Json<ApprovalView>, Problem> {
    Ok(Json(
        approvals::decide(
            &state,
            &principal,
            &agent_id,
            &request_id,
            Decision::Approve,
            None,
        )
        .await?,
    ))
}

/// Reject a request with a reason (the agent's owner): the agreement ends `rejected` with it.
/// Rejecting again answers the request as it is; after an approval or the expiry, `409`.
/// `Idempotency-Key` honoured.
#[utoipa::path(
    post,
    path = "/agents/{agent_id}/approvals/{request_id}/reject",
    params(
        ("agent_id" = String, Path, description = "The agent"),
        ("request_id" = String, Path, description = "The request (`apr_…`)"),
        RejectApproval,
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe"),
    ),
    responses(
        (status = 200, description = "Rejected (now or before)", body = ApprovalView),
        (status = 400, description = "Malformed query (`invalid_query`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid credentials (`unauthenticated`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an owner JWT (`owner_only`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent of this owner (`agent_not_found`) or request (`approval_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Approved already (`approval_already_decided`) or expired (`approval_expired`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No reason, or one over 500 characters (`invalid_reason`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("owner_jwt" = [])),
    tag = "approvals"
)]
pub async fn reject(
    State(state): State<AppState>,
    principal: Principal,
    Path((agent_id, request_id)): Path<(String, String)>,
    q: Result<Query<RejectApproval>, QueryRejection>,
) -> Result<Json<ApprovalView>, Problem> {
    let q = query(q)?;
    Ok(Json(
        approvals::decide(
            &state,
            &principal,
            &agent_id,
            &request_id,
            Decision::Reject,
            q.reason.as_deref(),
        )
        .await?,
    ))
}
