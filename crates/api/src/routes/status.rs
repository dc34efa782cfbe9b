//! `GET /usage-agreements/{agreement_id}/escrow-status`: an agreement's on-chain escrow, from
//! indexed state, or, before its activation is indexed, the relayer's progress with it.

use axum::{
    Json,
    extract::{Path, State},
};
use pactum_api_types::EscrowStatus;

use crate::{
    AppState,
    auth::Principal,
    problem::Problem,
    services::{self, Viewer},
};

/// The escrow status of an agreement.
///
/// Agents see agreements whose buyer or seller is their wallet; owners see their agents'.
/// An activation handed to the relayer shows as `pending_activation` with its
/// `activation_status` until the index has the agreement. Unknown ids and ids of agreements
/// the caller may not see are both `404 agreement_not_found`.
#[utoipa::path(
    get,
    path = "/usage-agreements/{agreement_id}/escrow-status",
    params(("agreement_id" = String, Path, description = "The agreement's id (`agr_...`) or its escrow's on-chain id (0x + 64 hex digits)")),
    responses(
        (status = 200, description = "Indexed escrow state, or the relayer's progress with its activation", body = EscrowStatus),
        (status = 400, description = "Malformed id (`invalid_agreement_id`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or invalid credentials (`unauthenticated`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or not visible (`agreement_not_found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("owner_jwt" = [])),
    tag = "usage-agreements"
)]
pub async fn escrow_status(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
) -> Result<Json<EscrowStatus>, Problem> {
    let id = crate::agreements::escrow_id(&state, &principal, &raw).await?;
    let viewer = Viewer::of(&state, &principal).await?;
    services::escrow_status(&state, &viewer, id)
        .await?
        .map(Json)
        .ok_or_else(|| Problem::agreement_not_found(&raw))
}
