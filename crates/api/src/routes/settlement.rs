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
use pactum_core::{
    escrow::{
        calls,
        options::OptionsQuery,
        rules::{self, ClaimedDomain},
    },
    sponsor::Requester,
};
use pactum_db::index::AgreementRecord;
use pactum_relayer::{AcceptError, Authorization, Relayer, SettlementAction};

use crate::{
    AppState,
    auth::Principal,
    idempotency,
    input::{bad_request, parse_address, parse_amount, parse_body, parse_bytes},
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
    let id = crate::agreements::escrow_id(state, principal, raw).await?;
    let viewer = Viewer::of(state, principal).await?;
    let record = services::visible_agreement(state, &viewer, id)
        .await?
        .ok_or_else(|| Problem::agreement_not_found(raw))?;
    Ok((id, record, viewer))
}

/// The relayer, or `503 relayer_unavailable` when this API runs without one.
pub(crate) fn relayer(state: &AppState) -> Result<&Relayer, Problem> {
    state.relayer.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "relayer_unavailable",
            "Relayer unavailable",
            "this API runs without a relayer (no node configured); use the direct path (for an \
             activation, the escrow's activate call from the buyer's own wallet)",
        )
    })
}

pub(crate) fn node_problem(err: pactum_relayer::Error) -> Problem {
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
    params(("agreement_id" = String, Path, description = "The agreement's id (`agr_...`) or its escrow's on-chain id"), OptionsParams),
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
        amount: match params.amount.as_deref() {
            Some(a) => Some(parse_amount("amount", a)?),
            // A seller's claim defaults to the highest usage recorded through the API.
            None if action == SettlementAction::SellerClaim => {
                crate::agreements::recorded_voucher(&state, id)
                    .await?
                    .map(|(amount, _)| amount)
            }
            None => None,
        },
        deadline: params.deadline,
    };
    let mut options = relayer
        .options(&terms, id, action, &query)
        .await
        .map_err(node_problem)?;
    // The sponsored path is open only to the signer's own agent (or its owner).
    if options.sponsored.is_ok() && !viewer.owns(options.plan.signer) {
        options.sponsored = Err(not_signers_agent(options.plan.signer));
    }
    let token_trusted = state.trusted_tokens.trusts(terms.token);
    Ok(Json(views::action_options(&options, token_trusted)))
}

/// The unsigned `initiateClose` call, for the buyer or the seller to send from its own wallet.
#[utoipa::path(
    get,
    path = "/usage-agreements/{agreement_id}/initiate-close-calldata",
    params(("agreement_id" = String, Path, description = "The agreement's id (`agr_...`) or its escrow's on-chain id")),
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
    params(("agreement_id" = String, Path, description = "The agreement's id (`agr_...`) or its escrow's on-chain id"), ClaimParams),
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
            // Without an amount and voucher, the highest usage recorded through the API.
            let recorded = match (&params.amount, &params.voucher_signature, retry) {
                (None, None, false) => {
                    crate::agreements::recorded_voucher(&state, record.agreement_id).await?
                }
                _ => None,
            };
            let (recorded_amount, recorded_voucher) = recorded.unzip();
            let params = ClaimParams {
                amount: params.amount.or(recorded_amount.map(|a| a.to_string())),
                voucher_signature: params
                    .voucher_signature
                    .or(recorded_voucher.map(|v| v.to_string())),
                ..params
            };
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

/// The refusal of a sponsored action posted (or asked about) by someone other than the signing
/// party's own agent or its owner.
fn not_signers_agent(signer: alloy::primitives::Address) -> pactum_core::Refusal {
    pactum_core::Refusal::new(
        pactum_core::RefusalCode::NotSignersAgent,
        format!(
            "the authorization is {signer}'s, which is not these credentials' wallet (nor one of \
             their agents'): the signing party's own agent or its owner posts it"
        ),
    )
}

/// A sponsored action's request body: the authorization it carries (its fields parsed) and the
/// signing domain the client claims, if any.
trait SponsoredBody: serde::de::DeserializeOwned {
    fn authorization(&self) -> Result<Authorization, Problem>;
    fn domain(&self) -> Option<&DomainBody>;
}

impl SponsoredBody for InitiateCloseBody {
    fn authorization(&self) -> Result<Authorization, Problem> {
        Ok(Authorization::InitiateClose {
            party: parse_address("party", &self.party)?,
            deadline: self.deadline,
            signature: parse_bytes("signature", &self.signature)?,
        })
    }

    fn domain(&self) -> Option<&DomainBody> {
        self.domain.as_ref()
    }
}

impl SponsoredBody for SellerClaimBody {
    fn authorization(&self) -> Result<Authorization, Problem> {
        Ok(Authorization::SellerClaim {
            amount: parse_amount("amount", &self.amount)?,
            voucher_signature: parse_bytes("voucher_signature", &self.voucher_signature)?,
            recipient: parse_address("recipient", &self.recipient)?,
            deadline: self.deadline,
            signature: parse_bytes("signature", &self.signature)?,
        })
    }

    fn domain(&self) -> Option<&DomainBody> {
        self.domain.as_ref()
    }
}

impl SponsoredBody for BuyerWithdrawBody {
    fn authorization(&self) -> Result<Authorization, Problem> {
        Ok(Authorization::BuyerWithdraw {
            recipient: parse_address("recipient", &self.recipient)?,
            deadline: self.deadline,
            signature: parse_bytes("signature", &self.signature)?,
        })
    }

    fn domain(&self) -> Option<&DomainBody> {
        self.domain.as_ref()
    }
}

/// Submits a sponsored action's signed body through the relayer: the one path of the three
/// endpoints below.
async fn submit<B: SponsoredBody>(
    state: &AppState,
    principal: &Principal,
    raw: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, Problem> {
    let body: B = parse_body(body)?;
    idempotency::require_key(headers)?;
    let authorization = body.authorization();
    let domain = body.domain();
    let (_, record, viewer) = visible(state, principal, raw).await?;
    let relayer = relayer(state)?;
    crate::policies::check_sponsored(state, principal).await?;
    let terms = terms(&record);
    // Parsed only now: an agreement the caller cannot see answers 404 whatever the body.
    let authorization = authorization?;
    // The sponsor pays for what a party asked through its own agent (or that agent's owner),
    // never for another party's authorization relayed by its counterparty.
    // (A signer who is no party at all is the relayer's `not_a_party`.)
    let signer = authorization.signer(&terms);
    if (signer == terms.buyer || signer == terms.seller) && !viewer.owns(signer) {
        return Err(not_signers_agent(signer).into());
    }
    check_domain(relayer, domain)?;
    let scope = principal.scope();
    let requester = Requester {
        principal: &scope,
        owner: Some(principal.owner_id()),
    };
    let accepted = match relayer.accept(&terms, authorization, requester).await {
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

/// The answers of the three sponsored endpoints (for the OpenAPI document).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum SponsoredAnswers {
    /// Accepted (or the same authorization accepted before): the relay job.
    #[response(status = 202)]
    Accepted(RelayView),
    /// Bad body or missing Idempotency-Key.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// The signing party is not the caller's wallet nor one of its agents' (`not_signers_agent`).
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// Unknown or not visible (`agreement_not_found`).
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// Wrong state, already done, or another action in flight.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
    /// Refused: signature, domain, deadline, simulation (see `code`).
    #[response(status = 422, content_type = "application/problem+json")]
    Refused(Problem),
    /// Sponsor quota or budget exhausted.
    #[response(status = 429, content_type = "application/problem+json")]
    Quota(Problem),
    /// Sponsoring paused, or no node.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// Submits a party's signed `InitiateClose` through the relayer.
#[utoipa::path(
    post,
    path = "/usage-agreements/{agreement_id}/sponsored-actions/initiate-close",
    params(
        ("agreement_id" = String, Path, description = "The agreement's id (`agr_...`) or its escrow's on-chain id"),
        ("Idempotency-Key" = String, Header, description = "Required"),
    ),
    request_body = InitiateCloseBody,
    responses(SponsoredAnswers),
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
    submit::<InitiateCloseBody>(&state, &principal, &raw, &headers, &body).await
}

/// Submits the seller's signed `SellerClaim` (with the buyer's voucher) through the relayer.
#[utoipa::path(
    post,
    path = "/usage-agreements/{agreement_id}/sponsored-actions/seller-claim",
    params(
        ("agreement_id" = String, Path, description = "The agreement's id (`agr_...`) or its escrow's on-chain id"),
        ("Idempotency-Key" = String, Header, description = "Required"),
    ),
    request_body = SellerClaimBody,
    responses(SponsoredAnswers),
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
    submit::<SellerClaimBody>(&state, &principal, &raw, &headers, &body).await
}

/// Submits the buyer's signed `BuyerWithdraw` through the relayer.
#[utoipa::path(
    post,
    path = "/usage-agreements/{agreement_id}/sponsored-actions/buyer-withdraw",
    params(
        ("agreement_id" = String, Path, description = "The agreement's id (`agr_...`) or its escrow's on-chain id"),
        ("Idempotency-Key" = String, Header, description = "Required"),
    ),
    request_body = BuyerWithdrawBody,
    responses(SponsoredAnswers),
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
    submit::<BuyerWithdrawBody>(&state, &principal, &raw, &headers, &body).await
}

/// A sponsored action's status, with every transaction attempted.
#[utoipa::path(
    get,
    path = "/usage-agreements/{agreement_id}/sponsored-actions/{relay_id}",
    params(
        ("agreement_id" = String, Path, description = "The agreement's id (`agr_...`) or its escrow's on-chain id"),
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
    let id = crate::agreements::escrow_id(&state, &principal, &raw).await?;
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

#[cfg(test)]
mod tests {
    use utoipa::OpenApi;

    #[test]
    fn every_sponsored_endpoint_documents_each_answer_with_its_body() {
        let doc = serde_json::to_value(crate::ApiDoc::openapi()).unwrap();
        for action in ["initiate-close", "seller-claim", "buyer-withdraw"] {
            let path = format!("/usage-agreements/{{agreement_id}}/sponsored-actions/{action}");
            let responses = &doc["paths"][&path]["post"]["responses"];
            let accepted = &responses["202"]["content"]["application/json"]["schema"]["$ref"];
            assert_eq!(accepted, "#/components/schemas/RelayView", "{path}");
            for status in ["400", "403", "404", "409", "422", "429", "503"] {
                let problem =
                    &responses[status]["content"]["application/problem+json"]["schema"]["$ref"];
                assert_eq!(problem, "#/components/schemas/Problem", "{path} {status}");
                assert!(
                    responses[status]["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty())
                );
            }
        }
    }
}
