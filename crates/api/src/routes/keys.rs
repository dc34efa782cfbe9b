//! `POST /agents/{agent_id}/api-keys/{key_id}/revoke`: an owner revokes one of its agents' API
//! keys (idempotent with `Idempotency-Key`).

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
};
use pactum_api_types::{RevocationView, RevokeRequest};

use crate::{
    AppState, auth::Principal, idempotency, input::parse_body, problem::Problem, services,
};

fn revocation_id() -> String {
    format!("rev_{}", crate::auth::random_id(16))
}

/// Revokes an agent's API key. Owner JWT only; `Idempotency-Key` required.
#[utoipa::path(
    post,
    path = "/agents/{agent_id}/api-keys/{key_id}/revoke",
    params(
        ("agent_id" = String, Path, description = "The agent"),
        ("key_id" = String, Path, description = "The key id (the part after `pk_`)"),
        ("Idempotency-Key" = String, Header, description = "Makes retries safe: same key and body replay the response"),
    ),
    request_body = RevokeRequest,
    responses(
        (status = 200, description = "Revoked", body = RevocationView),
        (status = 400, description = "Bad body or missing/invalid Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an owner JWT (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent of this owner, including another owner's (`agent_not_found`), or no such key of this agent (`api_key_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already revoked (`api_key_already_revoked`), or the same Idempotency-Key still in progress", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Idempotency-Key reused for another request (`idempotency_key_reused`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("owner_jwt" = [])),
    tag = "agents"
)]
pub async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    Path((agent_id, key_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<RevocationView>, Problem> {
    idempotency::require_key(&headers)?;
    let Principal::Owner { owner_id } = principal else {
        return Err(Problem::forbidden(
            "revoking API keys needs the owner's JWT",
        ));
    };
    let request: RevokeRequest = parse_body(&body)?;
    let reason = request.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "Invalid request body",
            "reason must be 1 to 500 characters",
        ));
    }
    // Another owner's agent is answered as if it did not exist: ids of other owners' agents
    // are not confirmed to anyone.
    let agent = pactum_db::identity::agent(state.db.pool(), &agent_id).await?;
    if agent.is_none_or(|a| a.owner_id != owner_id) {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "agent_not_found",
            "Agent not found",
            format!("you own no agent {agent_id}"),
        ));
    }
    let not_found = || {
        Problem::new(
            StatusCode::NOT_FOUND,
            "api_key_not_found",
            "API key not found",
            format!("agent {agent_id} has no API key {key_id}"),
        )
    };
    let key = pactum_db::identity::api_key(state.db.pool(), &key_id).await?;
    match key {
        Some(k) if k.agent.id == agent_id => {
            if k.revoked {
                return Err(Problem::new(
                    StatusCode::CONFLICT,
                    "api_key_already_revoked",
                    "API key already revoked",
                    format!("API key {key_id} was revoked before"),
                ));
            }
        }
        _ => return Err(not_found()),
    }
    let revocation =
        services::revoke_api_key(&state, &revocation_id(), &key_id, &owner_id, reason).await?;
    let Some(r) = revocation else {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "api_key_already_revoked",
            "API key already revoked",
            format!("API key {key_id} was revoked concurrently"),
        ));
    };
    tracing::info!(key_id = %r.key_id, agent_id, owner_id, "API key revoked");
    Ok(Json(RevocationView {
        revocation_id: r.id,
        key_id: r.key_id,
        agent_id,
        revoked_by: r.revoked_by,
        reason: r.reason,
        revoked_at: r.revoked_at,
    }))
}
