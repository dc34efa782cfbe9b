//! Webhooks: the owner's endpoints for an agent, and their deliveries.

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
};
use pactum_api_types::{
    CreateWebhook, DeliveryPage, DeliveryView, ListDeliveries, RotateSecret, UpdateWebhook,
    WebhookList, WebhookView, WebhookWithSecret,
};

use crate::{AppState, auth::Principal, input::parse_body, problem::Problem, webhooks};

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, Problem> {
    q.map(|Query(q)| q)
        .map_err(|e| crate::input::bad_request("invalid_query", e.body_text()))
}

/// Registers an endpoint for the agent's events. Owner JWT; the answer carries the signing
/// secret, shown this once. `Idempotency-Key` honoured (a replay shows the same secret).
#[utoipa::path(
    post,
    path = "/agents/{agent_id}/webhooks",
    params(
        ("agent_id" = String, Path, description = "The agent"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe"),
    ),
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "Created; `secret` is shown only here", body = WebhookWithSecret),
        (status = 400, description = "Malformed body (`invalid_body`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an owner JWT (`owner_only`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent of this owner (`agent_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The agent has 20 webhooks (`too_many_webhooks`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_webhook_url`, `forbidden_webhook_destination`, `invalid_event_types` or `invalid_description`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("owner_jwt" = [])),
    tag = "webhooks"
)]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent_id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<WebhookWithSecret>), Problem> {
    let body: CreateWebhook = parse_body(&body)?;
    Ok((
        StatusCode::CREATED,
        Json(webhooks::create(&state, &principal, &agent_id, &body).await?),
    ))
}

/// The agent's endpoints (never their secrets). Owner JWT.
#[utoipa::path(
    get,
    path = "/agents/{agent_id}/webhooks",
    params(("agent_id" = String, Path, description = "The agent")),
    responses(
        (status = 200, body = WebhookList),
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an owner JWT (`owner_only`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent of this owner (`agent_not_found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("owner_jwt" = [])),
    tag = "webhooks"
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent_id): Path<String>,
) -> Result<Json<WebhookList>, Problem> {
    Ok(Json(webhooks::list(&state, &principal, &agent_id).await?))
}

/// One endpoint: its status, and why it is disabled if it is. Owner JWT.
#[utoipa::path(
    get,
    path = "/agents/{agent_id}/webhooks/{webhook_id}",
    params(
        ("agent_id" = String, Path, description = "The agent"),
        ("webhook_id" = String, Path, description = "The endpoint (`whk_…`)"),
    ),
    responses(
        (status = 200, body = WebhookView),
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an owner JWT (`owner_only`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`agent_not_found` or `webhook_not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("owner_jwt" = [])),
    tag = "webhooks"
)]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path((agent_id, webhook_id)): Path<(String, String)>,
) -> Result<Json<WebhookView>, Problem> {
    Ok(Json(
        webhooks::get(&state, &principal, &agent_id, &webhook_id).await?,
    ))
}

/// Changes an endpoint: URL, event types, description, or `enabled` (disabling fails its
/// pending deliveries; enabling clears the failing streak). Owner JWT.
#[utoipa::path(
    patch,
    path = "/agents/{agent_id}/webhooks/{webhook_id}",
    params(
        ("agent_id" = String, Path, description = "The agent"),
        ("webhook_id" = String, Path, description = "The endpoint (`whk_…`)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe"),
    ),
    request_body = UpdateWebhook,
    responses(
        (status = 200, body = WebhookView),
        (status = 400, description = "Malformed body (`invalid_body`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an owner JWT (`owner_only`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`agent_not_found` or `webhook_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_webhook_url`, `forbidden_webhook_destination`, `invalid_event_types` or `invalid_description`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("owner_jwt" = [])),
    tag = "webhooks"
)]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path((agent_id, webhook_id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<WebhookView>, Problem> {
    let body: UpdateWebhook = parse_body(&body)?;
    Ok(Json(
        webhooks::update(&state, &principal, &agent_id, &webhook_id, &body).await?,
    ))
}

/// Deletes an endpoint with its deliveries. Owner JWT.
#[utoipa::path(
    delete,
    path = "/agents/{agent_id}/webhooks/{webhook_id}",
    params(
        ("agent_id" = String, Path, description = "The agent"),
        ("webhook_id" = String, Path, description = "The endpoint (`whk_…`)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an owner JWT (`owner_only`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`agent_not_found` or `webhook_not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("owner_jwt" = [])),
    tag = "webhooks"
)]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path((agent_id, webhook_id)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    webhooks::delete(&state, &principal, &agent_id, &webhook_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new signing secret, shown once. The current one keeps signing beside it for
/// `overlap_seconds` (default a day), so receivers can switch without losing a delivery.
/// Owner JWT.
#[utoipa::path(
    post,
    path = "/agents/{agent_id}/webhooks/{webhook_id}/rotate-secret",
    params(
        ("agent_id" = String, Path, description = "The agent"),
        ("webhook_id" = String, Path, description = "The endpoint (`whk_…`)"),
        RotateSecret,
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe"),
    ),
    responses(
        (status = 200, description = "Rotated; `secret` is shown only here", body = WebhookWithSecret),
        (status = 400, description = "Malformed query (`invalid_query`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an owner JWT (`owner_only`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`agent_not_found` or `webhook_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`overlap_seconds` above 604800 (`invalid_overlap`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("owner_jwt" = [])),
    tag = "webhooks"
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    principal: Principal,
    Path((agent_id, webhook_id)): Path<(String, String)>,
    q: Result<Query<RotateSecret>, QueryRejection>,
) -> Result<Json<WebhookWithSecret>, Problem> {
    let q = query(q)?;
    Ok(Json(
        webhooks::rotate_secret(
            &state,
            &principal,
            &agent_id,
            &webhook_id,
            q.overlap_seconds,
        )
        .await?,
    ))
}

/// The deliveries to the agent's endpoints, newest first, each with its attempts (response
/// codes and timing). Filter by `status` (`failed` first) and `webhook_id`; page with `limit`
/// and `cursor`. Owner JWT.
#[utoipa::path(
    get,
    path = "/agents/{agent_id}/webhooks/deliveries",
    params(("agent_id" = String, Path, description = "The agent"), ListDeliveries),
    responses(
        (status = 200, body = DeliveryPage),
        (status = 400, description = "Bad `limit`, `cursor` or `status` (`invalid_parameter`, `invalid_cursor`, `invalid_query`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an owner JWT (`owner_only`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent of this owner (`agent_not_found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("owner_jwt" = [])),
    tag = "webhooks"
)]
pub async fn deliveries(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent_id): Path<String>,
    q: Result<Query<ListDeliveries>, QueryRejection>,
) -> Result<Json<DeliveryPage>, Problem> {
    let q = query(q)?;
    Ok(Json(
        webhooks::deliveries(&state, &principal, &agent_id, &q).await?,
    ))
}

/// One delivery with its attempts. Owner JWT.
#[utoipa::path(
    get,
    path = "/agents/{agent_id}/webhooks/deliveries/{delivery_id}",
    params(
        ("agent_id" = String, Path, description = "The agent"),
        ("delivery_id" = String, Path, description = "The delivery (`dlv_…`)"),
    ),
    responses(
        (status = 200, body = DeliveryView),
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an owner JWT (`owner_only`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`agent_not_found` or `delivery_not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("owner_jwt" = [])),
    tag = "webhooks"
)]
pub async fn delivery(
    State(state): State<AppState>,
    principal: Principal,
    Path((agent_id, delivery_id)): Path<(String, String)>,
) -> Result<Json<DeliveryView>, Problem> {
    Ok(Json(
        webhooks::delivery(&state, &principal, &agent_id, &delivery_id).await?,
    ))
}

/// One more attempt of a finished delivery: the same message, the same `webhook-id` (a
/// receiver that already processed it deduplicates it). Owner JWT.
#[utoipa::path(
    post,
    path = "/agents/{agent_id}/webhooks/deliveries/{delivery_id}/replay",
    params(
        ("agent_id" = String, Path, description = "The agent"),
        ("delivery_id" = String, Path, description = "The delivery (`dlv_…`)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe"),
    ),
    responses(
        (status = 202, description = "Queued: due at once", body = DeliveryView),
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an owner JWT (`owner_only`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`agent_not_found` or `delivery_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Still pending (`delivery_in_progress`), or the webhook is disabled (`webhook_disabled`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("owner_jwt" = [])),
    tag = "webhooks"
)]
pub async fn replay(
    State(state): State<AppState>,
    principal: Principal,
    Path((agent_id, delivery_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<DeliveryView>), Problem> {
    Ok((
        StatusCode::ACCEPTED,
        Json(webhooks::replay(&state, &principal, &agent_id, &delivery_id).await?),
    ))
}
