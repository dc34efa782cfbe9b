//! Receipts: listed, fetched as signed documents, verified against the index, and the signer.

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
};
use pactum_api_types::{
    ListReceipts, ReceiptPage, ReceiptSigner, ReceiptVerification, ReceiptView,
};

use crate::{AppState, auth::Principal, problem::Problem, receipts};

/// The receipts of an agent's agreements (as buyer or seller), newest first: the agent itself,
/// or its owner.
#[utoipa::path(
    get,
    path = "/receipts",
    params(ListReceipts),
    responses(
        (status = 200, body = ReceiptPage),
        (status = 400, description = "Bad `agent_id`, `limit` or `cursor` (`invalid_parameter`, `invalid_cursor`, `invalid_query`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such agent visible to these credentials (`agent_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No receipt key configured (`unavailable`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("owner_jwt" = [])),
    tag = "receipts"
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    q: Result<Query<ListReceipts>, QueryRejection>,
) -> Result<Json<ReceiptPage>, Problem> {
    let Query(q) = q.map_err(|e| crate::input::bad_request("invalid_query", e.body_text()))?;
    Ok(Json(receipts::list(&state, &principal, &q).await?))
}

/// One receipt as a signed document: its fields, the EIP-712 typed data, digest and signature
/// (what `pactum receipts verify` takes).
#[utoipa::path(
    get,
    path = "/receipts/{receipt_id}",
    params(("receipt_id" = String, Path, description = "The receipt (`rcp_…`)")),
    responses(
        (status = 200, body = ReceiptView),
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown, or not a party's (`receipt_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No receipt key configured (`unavailable`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("owner_jwt" = [])),
    tag = "receipts"
)]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<ReceiptView>, Problem> {
    Ok(Json(receipts::get(&state, &principal, &id).await?))
}

/// Verifies a receipt: the signature is the service's receipt key's, and the log it cites is
/// still indexed, in a final block, stating exactly the receipt's movement. Answers `valid`, or
/// why not.
#[utoipa::path(
    get,
    path = "/receipts/verify/{receipt_id}",
    params(("receipt_id" = String, Path, description = "The receipt (`rcp_…`)")),
    responses(
        (status = 200, description = "Checked (see `valid` and `reasons`)", body = ReceiptVerification),
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown, or not a party's (`receipt_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No receipt key configured (`unavailable`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("owner_jwt" = [])),
    tag = "receipts"
)]
pub async fn verify(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<ReceiptVerification>, Problem> {
    Ok(Json(receipts::verify(&state, &principal, &id).await?))
}

/// The address receipts are signed by, and their EIP-712 domain.
#[utoipa::path(
    get,
    path = "/receipts/signer",
    responses(
        (status = 200, body = ReceiptSigner),
        (status = 401, description = "Missing or invalid credentials", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No receipt key configured (`unavailable`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("owner_jwt" = [])),
    tag = "receipts"
)]
pub async fn signer(
    State(state): State<AppState>,
    _principal: Principal,
) -> Result<Json<ReceiptSigner>, Problem> {
    Ok(Json(receipts::signer(&state)?))
}
