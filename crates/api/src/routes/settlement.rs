//! The settlement paths: what is possible now and on which path
//! (`settlement-action-options`), the unsigned calls of the direct path
//! (`initiate-close-calldata`, `claim-instructions`), and the sponsored path
//! (`sponsored-actions/...`: a party's signed authorization, submitted by the relayer).
//!
//! Every endpoint reads the agreement's terms from the index and answers `404
//! agreement_not_found` for agreements the caller is not a party to (agents) or none of whose
//! agents is a party (owners).

use alloy::primitives::{B256, Bytes};
use axum::{
    Json,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use pactum_api_types::{
    ActionOptions, BuyerWithdrawBody, ClaimParams, DirectCall, DomainBody, InitiateCloseBody,
    OptionsParams, RelayView, SellerClaimBody,
};
use pactum_core::escrow::{
    calls,
    options::OptionsQuery,
    rules::{self, ClaimedDomain},
};
use pactum_db::index::AgreementRecord;
use pactum_relayer::{AcceptError, Authorization, Relayer, SettlementAction};

use crate::{
    AppState,
    auth::Principal,
    idempotency,
    input::{
        bad_request, parse_address, parse_agreement_id, parse_amount, parse_body, parse_bytes,
    },
    problem::Problem,
    services::{self, Viewer},
    views::{self, terms},
};

/// The indexed agreement of the path's id, if the caller may see it.
async fn visible(
    state: &AppState,
    principal: &Principal,
    raw: &str,
) -> Result<(B256, AgreementRecord, Viewer), Problem> {
    let id = parse_agreement_id(raw)?;
    let viewer = Viewer::of(state, principal).await?;
    let record = services::visible_agreement(state, &viewer, id)
        .await?
        .ok_or_else(|| Problem::agreement_not_found(raw))?;
    Ok((id, record, viewer))
}

fn relayer(state: &AppState) -> Result<&Relayer, Problem> {
    state.relayer.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "relayer_unavailable",
            "Relayer unavailable",
            "this API runs without a relayer (no node configured); use the direct path",
        )
    })
}

fn node_problem(err: pactum_relayer::Error) -> Problem {
    match err {
        pactum_relayer::Error::Db(db) => Problem::from(db),
        other => {
            tracing::warn!(%other, "relayer could not reach a decision");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "node_unavailable",
                "Node unavailable",
                "the chain node did not answer; retry",
            )
        }
    }
}

/// Whether `action` is possible now, on which path, and the typed data to sign for the
/// sponsored path.
#[utoipa::path(
    get,
    path = "/usage-agreements/{agreement_id}/settlement-action-options",
    params(("agreement_id" = String, Path, description = "On-chain agreement id"), OptionsParams),
    responses(
        (status = 200, description = "Options for the current on-chain state", body = ActionOptions),
        (status = 400, description = "Bad id or parameter (`invalid_agreement_id`, `invalid_action`, `invalid_parameter`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or not visible (`agreement_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No relayer or node (`relayer_unavailable`, `node_unavailable`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("owner_jwt" = [])),
    tag = "settlement"
)]
pub async fn settlement_action_options(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
    Query(params): Query<OptionsParams>,
) -> Result<Json<ActionOptions>, Problem> {
    let action = params.action.parse::<SettlementAction>().map_err(|_| {
        bad_request(
            "invalid_action",
            format!(
                "action {:?}: expected initiate_close, seller_claim or buyer_withdraw",
                params.action
            ),
        )
    })?;
    let (id, record, viewer) = visible(&state, &principal, &raw).await?;
    let relayer = relayer(&state)?;
    let terms = terms(&record);
    let default_party = viewer
        .first_of(&[terms.buyer, terms.seller])
        .unwrap_or(terms.buyer);
    let query = OptionsQuery {
        party: Some(match &params.party {
            Some(p) => parse_address("party", p)?,
            None => default_party,
        }),
        recipient: params
            .recipient
            .as_deref()
            .map(|r| parse_address("recipient", r))
            .transpose()?,
        amount: params
            .amount
            .as_deref()
            .map(|a| parse_amount("amount", a))
            .transpose()?,
        deadline: params.deadline,
    };
    let options = relayer
        .options(&terms, id, action, &query)
        .await
        .map_err(node_problem)?;
    Ok(Json(views::action_options(&options)))
}

/// The unsigned `initiateClose` call, for the buyer or the seller to send from its own wallet.
#[utoipa::path(
    get,
    path = "/usage-agreements/{agreement_id}/initiate-close-calldata",
    params(("agreement_id" = String, Path, description = "On-chain agreement id")),
    responses(
        (status = 200, description = "Target and calldata", body = DirectCall),
        (status = 404, description = "Unknown or not visible (`agreement_not_found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("owner_jwt" = [])),
    tag = "settlement"
)]
pub async fn initiate_close_calldata(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
) -> Result<Json<DirectCall>, Problem> {
    let (_, record, _) = visible(&state, &principal, &raw).await?;
    let escrow = services::escrow_address(&state).await?;
    Ok(Json(
        calls::initiate_close(state.chain_id, escrow, &terms(&record)).into(),
    ))
}

/// The unsigned `sellerClaim` or `buyerWithdraw` call, for the party to send itself.
#[utoipa::path(
    get,
    path = "/usage-agreements/{agreement_id}/claim-instructions",
    params(("agreement_id" = String, Path, description = "On-chain agreement id"), ClaimParams),
    responses(
        (status = 200, description = "Target and calldata", body = DirectCall),
        (status = 400, description = "Bad or missing parameter (`invalid_action`, `invalid_parameter`, `missing_parameter`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or not visible (`agreement_not_found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("owner_jwt" = [])),
    tag = "settlement"
)]
pub async fn claim_instructions(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
    Query(params): Query<ClaimParams>,
) -> Result<Json<DirectCall>, Problem> {
    let (_, record, viewer) = visible(&state, &principal, &raw).await?;
    let terms = terms(&record);
    let action = match params.action.as_deref().map(str::parse::<SettlementAction>) {
        Some(Ok(action @ (SettlementAction::SellerClaim | SettlementAction::BuyerWithdraw))) => {
            action
        }
        Some(_) => {
            return Err(bad_request(
                "invalid_action",
                format!(
                    "action {:?}: expected seller_claim or buyer_withdraw",
                    params.action.as_deref().unwrap_or_default()
                ),
            ));
        }
        None if viewer.owns(terms.seller) => SettlementAction::SellerClaim,
        None => SettlementAction::BuyerWithdraw,
    };
    let escrow = services::escrow_address(&state).await?;
    let recipient = params
        .recipient
        .as_deref()
        .map(|r| parse_address("recipient", r))
        .transpose()?;
    let call = match action {
        SettlementAction::SellerClaim => {
            let retry = !record.settled_amount.is_zero() && !record.seller_paid;
            let amount = match params.amount.as_deref() {
                Some(a) => parse_amount("amount", a)?,
                None if retry => record.settled_amount,
                None => {
                    return Err(bad_request(
                        "missing_parameter",
                        "amount: the voucher's cumulative amount is required",
                    ));
                }
            };
            let voucher = match params.voucher_signature.as_deref() {
                Some(v) => parse_bytes("voucher_signature", v)?,
                None if retry => Bytes::new(),
                None => {
                    return Err(bad_request(
                        "missing_parameter",
                        "voucher_signature: the buyer's voucher signature is required",
                    ));
                }
            };
            calls::seller_claim(
                state.chain_id,
                escrow,
                &terms,
                amount,
                voucher,
                recipient.unwrap_or(terms.seller),
            )
        }
        _ => calls::buyer_withdraw(
            state.chain_id,
            escrow,
            &terms,
            recipient.unwrap_or(terms.buyer),
        ),
    };
    Ok(Json(call.into()))
}

fn check_domain(relayer: &Relayer, domain: Option<&DomainBody>) -> Result<(), Problem> {
    let Some(d) = domain else { return Ok(()) };
    let claimed = ClaimedDomain {
        name: d.name.clone(),
        version: d.version.clone(),
        chain_id: d.chain_id,
        verifying_contract: d.verifying_contract.clone(),
    };
    Ok(rules::check_domain(&claimed, &relayer.escrow_domain())?)
}

/// The authorization a body carries (its fields parsed).
fn close_authorization(b: &InitiateCloseBody) -> Result<Authorization, Problem> {
    Ok(Authorization::InitiateClose {
        party: parse_address("party", &b.party)?,
        deadline: b.deadline,
        signature: parse_bytes("signature", &b.signature)?,
    })
}

/// See [`close_authorization`].
fn claim_authorization(b: &SellerClaimBody) -> Result<Authorization, Problem> {
    Ok(Authorization::SellerClaim {
        amount: parse_amount("amount", &b.amount)?,
        voucher_signature: parse_bytes("voucher_signature", &b.voucher_signature)?,
        recipient: parse_address("recipient", &b.recipient)?,
        deadline: b.deadline,
        signature: parse_bytes("signature", &b.signature)?,
    })
}

/// See [`close_authorization`].
fn withdraw_authorization(b: &BuyerWithdrawBody) -> Result<Authorization, Problem> {
    Ok(Authorization::BuyerWithdraw {
        recipient: parse_address("recipient", &b.recipient)?,
        deadline: b.deadline,
        signature: parse_bytes("signature", &b.signature)?,
    })
}

async fn submit(
    state: &AppState,
    principal: &Principal,
    raw: &str,
    headers: &HeaderMap,
    authorization: Result<Authorization, Problem>,
    domain: Option<DomainBody>,
) -> Result<Response, Problem> {
    idempotency::require_key(headers)?;
    let (_, record, _) = visible(state, principal, raw).await?;
    let relayer = relayer(state)?;
    let terms = terms(&record);
    // Parsed only now: an agreement the caller cannot see answers 404 whatever the body.
    let authorization = authorization?;
    check_domain(relayer, domain.as_ref())?;
    let accepted = match relayer
        .accept(&terms, authorization, &principal.scope())
        .await
    {
        Ok(accepted) => accepted,
        Err(AcceptError::Refused(refusal)) => return Err(refusal.into()),
        Err(AcceptError::Failed(err)) => return Err(node_problem(err)),
    };
    // A new job has no attempts yet; one accepted before may have some.
    let attempts = if accepted.existing {
        match relayer.job(&accepted.job.id).await {
            Ok(Some((_, attempts))) => attempts,
            Ok(None) => Vec::new(),
            Err(err) => return Err(node_problem(err)),
        }
    } else {
        Vec::new()
    };
    let view = views::relay_view(&accepted.job, &attempts);
    let mut response = (StatusCode::ACCEPTED, Json(&view)).into_response();
    if let Ok(location) = HeaderValue::from_str(&view.status_url) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Submits a party's signed `InitiateClose` through the relayer.
#[utoipa::path(
    post,
    path = "/usage-agreements/{agreement_id}/sponsored-actions/initiate-close",
    params(
        ("agreement_id" = String, Path, description = "On-chain agreement id"),
        ("Idempotency-Key" = String, Header, description = "Required"),
    ),
    request_body = InitiateCloseBody,
    responses(
        (status = 202, description = "Accepted (or the same authorization accepted before): the relay job", body = RelayView),
        (status = 400, description = "Bad body or missing Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or not visible (`agreement_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Wrong state, already done, or another action in flight", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused: signature, domain, deadline, simulation (see `code`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Sponsor quota or budget exhausted", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Sponsoring paused, or no node", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("owner_jwt" = [])),
    tag = "settlement"
)]
pub async fn sponsor_initiate_close(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    let body: InitiateCloseBody = parse_body(&body)?;
    submit(
        &state,
        &principal,
        &raw,
        &headers,
        close_authorization(&body),
        body.domain,
    )
    .await
}

/// Submits the seller's signed `SellerClaim` (with the buyer's voucher) through the relayer.
#[utoipa::path(
    post,
    path = "/usage-agreements/{agreement_id}/sponsored-actions/seller-claim",
    params(
        ("agreement_id" = String, Path, description = "On-chain agreement id"),
        ("Idempotency-Key" = String, Header, description = "Required"),
    ),
    request_body = SellerClaimBody,
    responses(
        (status = 202, description = "Accepted: the relay job", body = RelayView),
        (status = 400, description = "Bad body or missing Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or not visible", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Wrong state, already done, or another action in flight", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused (see `code`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Sponsor quota or budget exhausted", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Sponsoring paused, or no node", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("owner_jwt" = [])),
    tag = "settlement"
)]
pub async fn sponsor_seller_claim(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    let body: SellerClaimBody = parse_body(&body)?;
    submit(
        &state,
        &principal,
        &raw,
        &headers,
        claim_authorization(&body),
        body.domain,
    )
    .await
}

/// Submits the buyer's signed `BuyerWithdraw` through the relayer.
#[utoipa::path(
    post,
    path = "/usage-agreements/{agreement_id}/sponsored-actions/buyer-withdraw",
    params(
        ("agreement_id" = String, Path, description = "On-chain agreement id"),
        ("Idempotency-Key" = String, Header, description = "Required"),
    ),
    request_body = BuyerWithdrawBody,
    responses(
        (status = 202, description = "Accepted: the relay job", body = RelayView),
        (status = 400, description = "Bad body or missing Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or not visible", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Wrong state, already done, or another action in flight", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused (see `code`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Sponsor quota or budget exhausted", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Sponsoring paused, or no node", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("owner_jwt" = [])),
    tag = "settlement"
)]
pub async fn sponsor_buyer_withdraw(
    State(state): State<AppState>,
    principal: Principal,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, Problem> {
    let body: BuyerWithdrawBody = parse_body(&body)?;
    submit(
        &state,
        &principal,
        &raw,
        &headers,
        withdraw_authorization(&body),
        body.domain,
    )
    .await
}

/// A sponsored action's status, with every transaction attempted.
#[utoipa::path(
    get,
    path = "/usage-agreements/{agreement_id}/sponsored-actions/{relay_id}",
    params(
        ("agreement_id" = String, Path, description = "On-chain agreement id"),
        ("relay_id" = String, Path, description = "The relay id returned on submission"),
    ),
    responses(
        (status = 200, description = "The relay job", body = RelayView),
        (status = 404, description = "Unknown, of another agreement, or not visible (`relay_not_found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []), ("owner_jwt" = [])),
    tag = "settlement"
)]
pub async fn sponsored_action_status(
    State(state): State<AppState>,
    principal: Principal,
    Path((raw, relay_id)): Path<(String, String)>,
) -> Result<Json<RelayView>, Problem> {
    // Visibility follows the job's parties (the agreement's), so that an activation can be
    // followed before the index has the agreement.
    let id = parse_agreement_id(&raw)?;
    let viewer = Viewer::of(&state, &principal).await?;
    let relayer = relayer(&state)?;
    // Unknown, of another agreement, or not the caller's: the same answer.
    let (job, attempts) = services::visible_job(relayer, &viewer, id, &relay_id)
        .await
        .map_err(node_problem)?
        .ok_or_else(|| {
            Problem::new(
                StatusCode::NOT_FOUND,
                "relay_not_found",
                "Relay not found",
                format!("agreement {raw} has no sponsored action {relay_id} visible to these credentials"),
            )
        })?;
    Ok(Json(views::relay_view(&job, &attempts)))
}
