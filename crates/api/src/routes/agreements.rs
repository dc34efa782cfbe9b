//! The usage-agreement lifecycle: propose, answer, read, list. Each handler extracts, calls
//! the service (`crate::agreements`), and maps its answer.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
};
use pactum_api_types::{
    ActivateEscrow, ActivationPackage, AgreementPage, ListAgreements, PackageParams,
    ProposeAgreement, RecordUsage, RejectAgreement, UsageAgreementView, UsageVoucher,
    VoucherParams,
};

use crate::{
    AppState,
    agreements::{self, Answer},
    auth::Principal,
    input::parse_body,
    problem::Problem,
};

/// Propose a usage agreement (the buyer's agent).
///
/// The escrowed amount is `quantity × price_per_unit_cents` in the token's base units, exactly;
/// the platform fee is added on top (see `terms.infraFee`). The proposal must be accepted and
/// activated before `expires_at`. Send an `Idempotency-Key`: a retry returns the same agreement.
#[utoipa::path(
    post,
    path = "/usage-agreements",
    request_body = ProposeAgreement,
    responses(
        (status = 201, description = "Proposed", body = UsageAgreementView),
        (status = 400, description = "Malformed body (`invalid_body`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid credentials (`unauthenticated`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an agent's API key (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field cannot be accepted: `unknown_seller`, `seller_is_buyer`, `invalid_quantity`, `invalid_price`, `amount_overflow`, `unsupported_rail`, `unsupported_provider`, `unsupported_settlement_model`, `unsupported_activation_version`, `buyer_wallet_mismatch`, `invalid_field`, `invalid_close_window`, `invalid_expiry`, `invalid_metadata`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No token configured (`unavailable`)", body = Problem, content_type = "application/problem+json"),
    ),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    security(("api_key" = [])),
    tag = "usage-agreements"
)]
pub async fn propose(
    State(state): State<AppState>,
    principal: Principal,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<UsageAgreementView>), Problem> {
    let body: ProposeAgreement = parse_body(&body)?;
    let key = crate::idempotency::key_of(&headers)?;
    let view = agreements::propose(&state, &principal, &body, key.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// One usage agreement: its terms (with the escrow's `Agreement` values and, once accepted, its
/// on-chain id), status, activation, usage, the escrow as indexed and the history of every
/// transition. The buyer's and the seller's agents and their owners see it.
#[utoipa::path(
    get,
    path = "/usage-agreements/{agreement_id}",
    params(("agreement_id" = String, Path, description = "The agreement's id (`agr_...`)")),
    responses(
        (status = 200, body = UsageAgreementView),
        (status = 401, description = "Missing or invalid credentials (`unauthenticated`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or not visible (`agreement_not_found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("owner_jwt" = [])),
    tag = "usage-agreements"
)]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<UsageAgreementView>, Problem> {
    Ok(Json(agreements::get(&state, &principal, &id).await?))
}

/// An agent's agreements, newest first (the agent itself or its owner). Filter by `role` and
/// `status`; page with `limit` (at most 100) and the previous page's `next_cursor`.
#[utoipa::path(
    get,
    path = "/usage-agreements/agents/{agent_id}/agreements",
    params(("agent_id" = String, Path, description = "The agent"), ListAgreements),
    responses(
        (status = 200, body = AgreementPage),
        (status = 400, description = "Bad `limit`, `cursor`, `role` or `status` (`invalid_parameter`, `invalid_cursor`, `invalid_query`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid credentials (`unauthenticated`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown agent, or not the caller's (`agent_not_found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("owner_jwt" = [])),
    tag = "usage-agreements"
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent_id): Path<String>,
    query: Result<Query<ListAgreements>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AgreementPage>, Problem> {
    let Query(query) =
        query.map_err(|e| crate::input::bad_request("invalid_query", e.body_text()))?;
    Ok(Json(
        agreements::list(&state, &principal, &agent_id, &query).await?,
    ))
}

/// Accept a proposal (the seller's agent or its owner): the escrow's terms, salt and on-chain
/// id are fixed, and the buyer may activate. Only from `proposed`, before `expires_at`; of an
/// acceptance and a rejection racing, one wins and the other gets `409`.
#[utoipa::path(
    put,
    path = "/usage-agreements/{agreement_id}/accept",
    params(
        ("agreement_id" = String, Path, description = "The agreement's id (`agr_...`)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe"),
    ),
    responses(
        (status = 200, description = "Accepted", body = UsageAgreementView),
        (status = 401, description = "Missing or invalid credentials (`unauthenticated`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the seller (`not_seller`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or not visible (`agreement_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not `proposed` (`invalid_transition`), or expired (`proposal_expired`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("owner_jwt" = [])),
    tag = "usage-agreements"
)]
pub async fn accept(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<UsageAgreementView>, Problem> {
    Ok(Json(
        agreements::answer(&state, &principal, &id, Answer::Accept).await?,
    ))
}

/// Reject a proposal with a reason (the seller's agent or its owner). Only from `proposed`,
/// before `expires_at`.
#[utoipa::path(
    put,
    path = "/usage-agreements/{agreement_id}/reject",
    request_body = RejectAgreement,
    params(
        ("agreement_id" = String, Path, description = "The agreement's id (`agr_...`)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe"),
    ),
    responses(
        (status = 200, description = "Rejected", body = UsageAgreementView),
        (status = 400, description = "Malformed body (`invalid_body`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid credentials (`unauthenticated`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the seller (`not_seller`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or not visible (`agreement_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not `proposed` (`invalid_transition`), or expired (`proposal_expired`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Empty or overlong reason (`invalid_field`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("owner_jwt" = [])),
    tag = "usage-agreements"
)]
pub async fn reject(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<UsageAgreementView>, Problem> {
    let body: RejectAgreement = parse_body(&body)?;
    Ok(Json(
        agreements::answer(&state, &principal, &id, Answer::Reject(&body.reason)).await?,
    ))
}

/// The buyer's activation package: the EIP-3009 authorizations of the deposit and, when the
/// platform fee is pending, of the fee, as `eth_signTypedData_v4` typed data with their digests.
/// Only once the seller accepted, before `expires_at`.
#[utoipa::path(
    get,
    path = "/usage-agreements/{agreement_id}/activation-package",
    params(("agreement_id" = String, Path, description = "The agreement's id (`agr_...`)"), PackageParams),
    responses(
        (status = 200, body = ActivationPackage),
        (status = 400, description = "Bad `valid_for_seconds` (`invalid_query`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid credentials (`unauthenticated`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the buyer (`not_buyer`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or not visible (`agreement_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not accepted (`invalid_transition`), or expired (`proposal_expired`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Validity out of bounds (`invalid_field`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("owner_jwt" = [])),
    tag = "usage-agreements"
)]
pub async fn activation_package(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    query: Result<Query<PackageParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ActivationPackage>, Problem> {
    let Query(params) =
        query.map_err(|e| crate::input::bad_request("invalid_query", e.body_text()))?;
    Ok(Json(
        agreements::activation_package(&state, &principal, &id, &params).await?,
    ))
}

/// Submit the buyer's signed activation package. The signatures are checked against the package
/// (ECDSA, or the buyer wallet's ERC-1271 approval) before anything is queued; the relayer then
/// submits the activation and pays its gas. `202`: poll `GET /usage-agreements/{agreement_id}`
/// until `status: active` and `activation_status: confirmed`. A failed activation may be
/// submitted again with new signatures; a second one while one is in flight is `409`.
#[utoipa::path(
    post,
    path = "/usage-agreements/{agreement_id}/activate-escrow",
    request_body = ActivateEscrow,
    params(
        ("agreement_id" = String, Path, description = "The agreement's id (`agr_...`)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe"),
    ),
    responses(
        (status = 202, description = "Handed to the relayer: `activating`, `activation_status: pending`", body = UsageAgreementView),
        (status = 400, description = "Malformed body (`invalid_body`, `invalid_parameter`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid credentials (`unauthenticated`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the buyer (`not_buyer`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or not visible (`agreement_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not accepted (`invalid_transition`), expired (`proposal_expired`), or an activation in flight (`activation_in_flight`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_signature`, `fee_authorization_required`, `unexpected_fee_authorization`, `activation_expired`, or a relayer refusal (`sanctioned`, `simulation_failed`, ...)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Sponsor quota or budget exhausted", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No relayer, or sponsoring paused", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("owner_jwt" = [])),
    tag = "usage-agreements"
)]
pub async fn activate_escrow(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<UsageAgreementView>), Problem> {
    let body: ActivateEscrow = parse_body(&body)?;
    let view = agreements::activate_escrow(&state, &principal, &id, &body).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// The `Voucher` the buyer signs for a cumulative quantity (either party may fetch it): the
/// escrow pays the seller up to its `cumulativeAmount`, `quantity × price` in base units.
#[utoipa::path(
    get,
    path = "/usage-agreements/{agreement_id}/usage-voucher",
    params(("agreement_id" = String, Path, description = "The agreement's id (`agr_...`)"), VoucherParams),
    responses(
        (status = 200, body = UsageVoucher),
        (status = 400, description = "Missing or bad `cumulative_quantity` (`invalid_query`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid credentials (`unauthenticated`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or not visible (`agreement_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not accepted yet (`invalid_transition`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Above the agreed quantity (`invalid_quantity`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("owner_jwt" = [])),
    tag = "usage-agreements"
)]
pub async fn usage_voucher(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    query: Result<Query<VoucherParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<UsageVoucher>, Problem> {
    let Query(params) =
        query.map_err(|e| crate::input::bad_request("invalid_query", e.body_text()))?;
    Ok(Json(
        agreements::usage_voucher(&state, &principal, &id, &params).await?,
    ))
}

/// Record cumulative usage with the buyer's voucher (either party). Usage only grows (an equal
/// record is answered as it is) and never passes the agreed quantity; it is recorded while the
/// seller can still claim (escrow active, or closing with its window open). The highest voucher
/// becomes the default of `claim-instructions` and of the seller's claim options.
#[utoipa::path(
    post,
    path = "/usage-agreements/{agreement_id}/record-usage",
    request_body = RecordUsage,
    params(
        ("agreement_id" = String, Path, description = "The agreement's id (`agr_...`)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe"),
    ),
    responses(
        (status = 200, description = "Recorded (or the same usage, already recorded)", body = UsageAgreementView),
        (status = 400, description = "Malformed body (`invalid_body`, `invalid_parameter`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid credentials (`unauthenticated`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or not visible (`agreement_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Below the recorded usage (`usage_not_increasing`), or not claimable (`not_claimable`, `invalid_transition`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Above the agreed quantity (`invalid_quantity`), or not the buyer's voucher (`invalid_voucher`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("owner_jwt" = [])),
    tag = "usage-agreements"
)]
pub async fn record_usage(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<UsageAgreementView>, Problem> {
    let body: RecordUsage = parse_body(&body)?;
    Ok(Json(
        agreements::record_usage(&state, &principal, &id, &body).await?,
    ))
}
