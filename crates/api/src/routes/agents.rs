//! Owners' agents: `GET /agents/registration-message`, `POST /agents`, `GET /agents`,
//! `GET /agents/{agent_id}`, `POST` and `GET /agents/{agent_id}/api-keys`.

use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
};
use pactum_api_types::{
    AgentPage, AgentView, ApiKeyList, CreateApiKey, ListAgents, NewApiKey, RegisterAgent,
    RegistrationMessage, RegistrationParams,
};

use crate::{AppState, auth::Principal, identity, input::parse_body, problem::Problem};

/// The `AgentRegistration` an agent's wallet signs to prove it acts for the agent. Owner JWT.
#[utoipa::path(
    get,
    path = "/agents/registration-message",
    params(RegistrationParams),
    responses(
        (status = 200, description = "The typed data to sign and its digest", body = RegistrationMessage),
        (status = 400, description = "Malformed wallet (`invalid_parameter`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an owner JWT (`owner_only`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad agent id (`invalid_agent_id`) or deadline (`wallet_proof_expired`, `wallet_proof_deadline_too_far`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("owner_jwt" = [])),
    tag = "agents"
)]
pub async fn registration_message(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<RegistrationParams>,
) -> Result<Json<RegistrationMessage>, Problem> {
    Ok(Json(identity::registration_message(
        &state, &principal, &params,
    )?))
}

/// Registers an agent acting from a wallet, with the wallet's signature of its
/// `AgentRegistration`. Owner JWT; `Idempotency-Key` honoured.
#[utoipa::path(
    post,
    path = "/agents",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    request_body = RegisterAgent,
    responses(
        (status = 201, description = "Registered", body = AgentView),
        (status = 400, description = "Malformed body (`invalid_body`, `invalid_parameter`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an owner JWT (`owner_only`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The id (`agent_id_taken`) or the wallet (`wallet_already_registered`) is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_agent_id`, `invalid_name`, `wallet_proof_expired`, `wallet_proof_deadline_too_far`, or `invalid_wallet_proof`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("owner_jwt" = [])),
    tag = "agents"
)]
pub async fn register(
    State(state): State<AppState>,
    principal: Principal,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<AgentView>), Problem> {
    let body: RegisterAgent = parse_body(&body)?;
    Ok((
        StatusCode::CREATED,
        Json(identity::register(&state, &principal, &body).await?),
    ))
}

/// The owner's agents, by id, a page at a time. Owner JWT.
#[utoipa::path(
    get,
    path = "/agents",
    params(ListAgents),
    responses(
        (status = 200, description = "A page of agents", body = AgentPage),
        (status = 400, description = "Bad `limit` (`invalid_parameter`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an owner JWT (`owner_only`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("owner_jwt" = [])),
    tag = "agents"
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<ListAgents>,
) -> Result<Json<AgentPage>, Problem> {
    Ok(Json(
        identity::list(&state, &principal, q.limit, q.cursor.as_deref()).await?,
    ))
}

/// One agent: its owner, or the agent itself.
#[utoipa::path(
    get,
    path = "/agents/{agent_id}",
    params(("agent_id" = String, Path, description = "The agent")),
    responses(
        (status = 200, description = "The agent", body = AgentView),
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent visible to these credentials (`agent_not_found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("owner_jwt" = []), ("api_key" = [])),
    tag = "agents"
)]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent_id): Path<String>,
) -> Result<Json<AgentView>, Problem> {
    Ok(Json(
        identity::agent_view(&state, &principal, &agent_id).await?,
    ))
}

/// A new API key for the agent, shown once. Owner JWT; `Idempotency-Key` honoured (a replay
/// answers the same key).
#[utoipa::path(
    post,
    path = "/agents/{agent_id}/api-keys",
    params(
        ("agent_id" = String, Path, description = "The agent"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe"),
    ),
    request_body(content = Option<CreateApiKey>, description = "Optional: without a body the key has no label"),
    responses(
        (status = 201, description = "The key (its secret shown this once)", body = NewApiKey),
        (status = 400, description = "Malformed body (`invalid_body`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an owner JWT (`owner_only`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent of this owner (`agent_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad label (`invalid_label`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("owner_jwt" = [])),
    tag = "agents"
)]
pub async fn create_key(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<NewApiKey>), Problem> {
    // No body, or `null`, is a key without a label.
    let body: CreateApiKey = if body.is_empty() {
        CreateApiKey::default()
    } else {
        parse_body::<Option<CreateApiKey>>(&body)?.unwrap_or_default()
    };
    Ok((
        StatusCode::CREATED,
        Json(identity::create_key(&state, &principal, &agent_id, &body.label).await?),
    ))
}

/// The agent's API keys (metadata only). Owner JWT.
#[utoipa::path(
    get,
    path = "/agents/{agent_id}/api-keys",
    params(("agent_id" = String, Path, description = "The agent")),
    responses(
        (status = 200, description = "The keys, newest first", body = ApiKeyList),
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an owner JWT (`owner_only`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent of this owner (`agent_not_found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("owner_jwt" = [])),
    tag = "agents"
)]
pub async fn keys(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent_id): Path<String>,
) -> Result<Json<ApiKeyList>, Problem> {
    Ok(Json(identity::keys(&state, &principal, &agent_id).await?))
}

fn with_etag(view: pactum_api_types::PolicyView) -> impl axum::response::IntoResponse {
    let etag = view.etag.clone();
    ([(axum::http::header::ETAG, etag)], Json(view))
}

/// The agent's policy in force (the default, version 0, when none is set), with its `ETag`.
/// The owner, or the agent itself.
#[utoipa::path(
    get,
    path = "/agents/{agent_id}/policies",
    params(("agent_id" = String, Path, description = "The agent")),
    responses(
        (status = 200, description = "The policy; `ETag` is its version", body = pactum_api_types::PolicyView,
            headers(("ETag" = String, description = "\"p<version>\", for If-Match"))),
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent visible to these credentials (`agent_not_found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("owner_jwt" = []), ("api_key" = [])),
    tag = "agents"
)]
pub async fn get_policy(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent_id): Path<String>,
) -> Result<impl axum::response::IntoResponse, Problem> {
    Ok(with_etag(
        crate::policies::get(&state, &principal, &agent_id).await?,
    ))
}

/// Replaces the agent's policy. Owner JWT; `If-Match` must carry the `ETag` of the version
/// replaced (`"p0"` when none is set). Unknown rules and impossible values are refused, naming
/// the rule.
#[utoipa::path(
    put,
    path = "/agents/{agent_id}/policies",
    params(
        ("agent_id" = String, Path, description = "The agent"),
        ("If-Match" = String, Header, description = "The ETag of the policy replaced", pattern = r#"^"p[0-9]{1,18}"$"#),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe"),
    ),
    request_body = pactum_api_types::Policy,
    responses(
        (status = 200, description = "The new version; `ETag` is its version", body = pactum_api_types::PolicyView,
            headers(("ETag" = String, description = "\"p<version>\""))),
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an owner JWT (`owner_only`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent of this owner (`agent_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The policy changed since that version (`precondition_failed`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown rule or an impossible value (`invalid_policy`, naming the rule)", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "No `If-Match` (`precondition_required`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("owner_jwt" = [])),
    tag = "agents"
)]
pub async fn put_policy(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent_id): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<impl axum::response::IntoResponse, Problem> {
    let if_match = headers
        .get(axum::http::header::IF_MATCH)
        .map(|v| v.to_str().unwrap_or("(not text)"));
    Ok(with_etag(
        crate::policies::put(&state, &principal, &agent_id, if_match, &body).await?,
    ))
}
