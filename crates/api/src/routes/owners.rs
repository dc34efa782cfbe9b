//! `GET /owners/me`: the owner a token signs in, as pactum knows them (provisioned on first
//! sight when the token comes from the identity provider).

use axum::{Json, extract::State};
use pactum_api_types::OwnerView;

use crate::{AppState, auth::Principal, problem::Problem};

/// The signed-in owner. Owner JWT only.
#[utoipa::path(
    get,
    path = "/owners/me",
    responses(
        (status = 200, description = "The owner", body = OwnerView),
        (status = 401, description = "Missing or invalid credentials (`unauthenticated`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "An agent's API key, not an owner JWT (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The identity provider's keys could not be fetched (`identity_provider_unavailable`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("owner_jwt" = [])),
    tag = "owners"
)]
pub async fn me(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<OwnerView>, Problem> {
    let Principal::Owner { owner_id } = principal else {
        return Err(Problem::forbidden(
            "this is an owner's endpoint: send the owner's JWT",
        ));
    };
    let owner = pactum_db::identity::owner(state.db.pool(), &owner_id)
        .await?
        .ok_or_else(|| Problem::unauthenticated("unknown owner"))?;
    Ok(Json(OwnerView {
        owner_id: owner.id,
        name: owner.name,
        email: owner.email,
        issuer: owner.issuer,
        created_at: owner.created_at,
    }))
}
