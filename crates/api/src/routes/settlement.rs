//! The settlement paths: what is possible now and on which path
//! (`settlement-action-options`), the unsigned calls of the direct path
//! (`initiate-close-calldata`, `claim-instructions`), and the sponsored path
//! (`sponsored-actions/...`: a party's signed authorization, submitted by the relayer).
//!
//! Every endpoint reads the agreement's terms from the index and answers `404
//! agreement_not_found` for agreements the caller is not a party to (agents) or none of whose
//! agents is a party (owners).

use std::str::FromStr;

use alloy::primitives::{Address, B256, Bytes, U256};
use axum::{
    Json,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use pactum_bindings::Agreement;
use pactum_db::{
    chain::{self, AgreementRecord},
    relay::{ActionKind, Attempt, AttemptKind, AttemptOutcome, Job, JobState},
};
use pactum_relayer::{
    AcceptError, ActionOptions, Authorization, DirectCall, OptionsQuery, Relayer, SettlementAction,
    options,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    AppState, auth::Principal, idempotency, problem::Problem, routes::status::parse_agreement_id,
};

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

fn bad_request(code: &'static str, detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, code, "Invalid request", detail)
}

/// The agreement's indexed record if the caller may see it.
async fn visible(
    state: &AppState,
    principal: &Principal,
    raw: &str,
) -> Result<(B256, AgreementRecord, Vec<Address>), Problem> {
    let id = parse_agreement_id(raw)?;
    let wallets = principal.visible_wallets(state.db.pool()).await?;
    let mut conn = state
        .db
        .pool()
        .acquire()
        .await
        .map_err(pactum_db::Error::from)?;
    let record = chain::load_agreements(&mut conn, state.chain_id, &[id])
        .await?
        .pop()
        .filter(|a| wallets.contains(&a.buyer) || wallets.contains(&a.seller))
        .ok_or_else(|| Problem::agreement_not_found(raw))?;
    Ok((id, record, wallets))
}

fn terms(a: &AgreementRecord) -> Agreement {
    Agreement {
        buyer: a.buyer,
        seller: a.seller,
        token: a.token,
        maxAmount: a.max_amount,
        infraFee: a.infra_fee,
        expiry: a.expiry,
        closeWindow: u32::try_from(a.close_window).unwrap_or(u32::MAX),
        salt: a.salt,
    }
}

fn parse_address(name: &str, raw: &str) -> Result<Address, Problem> {
    Address::from_str(raw).map_err(|_| {
        bad_request(
            "invalid_parameter",
            format!("{name}: {raw:?} is not an address"),
        )
    })
}

fn parse_amount(name: &str, raw: &str) -> Result<U256, Problem> {
    U256::from_str(raw).map_err(|_| {
        bad_request(
            "invalid_parameter",
            format!("{name}: {raw:?} is not a token amount (decimal or 0x hex base units)"),
        )
    })
}

fn parse_bytes(name: &str, raw: &str) -> Result<Bytes, Problem> {
    Bytes::from_str(raw).map_err(|_| {
        bad_request(
            "invalid_parameter",
            format!("{name}: {raw:?} is not 0x hex"),
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

/// Query of the settlement-options endpoint.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OptionsParams {
    /// `initiate_close`, `seller_claim` or `buyer_withdraw`.
    pub action: String,
    /// `initiate_close`: the signing party (default: the caller's wallet if a party, else the buyer).
    pub party: Option<String>,
    /// Where the payout goes (default: the party itself).
    pub recipient: Option<String>,
    /// `seller_claim`: the voucher amount to sign for (default: the recorded entitlement on a
    /// retry, else the maximum as a placeholder).
    pub amount: Option<String>,
    /// The authorization's deadline, unix seconds (default: block time + 15 minutes).
    pub deadline: Option<u64>,
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
    let (id, record, wallets) = visible(&state, &principal, &raw).await?;
    let relayer = relayer(&state)?;
    let terms = terms(&record);
    let default_party = wallets
        .iter()
        .copied()
        .find(|w| *w == terms.buyer || *w == terms.seller)
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
    Ok(Json(options))
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
    let escrow = escrow_address(&state).await?;
    Ok(Json(options::initiate_close_call(
        state.chain_id,
        escrow,
        &terms(&record),
    )))
}

async fn escrow_address(state: &AppState) -> Result<Address, Problem> {
    if let Some(relayer) = &state.relayer {
        return Ok(relayer.settings().escrow);
    }
    let mut conn = state
        .db
        .pool()
        .acquire()
        .await
        .map_err(pactum_db::Error::from)?;
    let cursor = chain::load_cursor(&mut conn, state.chain_id)
        .await?
        .ok_or_else(|| Problem::unavailable("the indexer has not started on this chain"))?;
    Ok(cursor.escrow)
}

/// Query of the claim-instructions endpoint.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ClaimParams {
    /// `seller_claim` or `buyer_withdraw` (default: by the caller's role).
    pub action: Option<String>,
    /// `seller_claim`: the voucher's cumulative amount (not needed to retry a deferred payout).
    pub amount: Option<String>,
    /// `seller_claim`: the buyer's voucher signature (not needed to retry a deferred payout).
    pub voucher_signature: Option<String>,
    /// Where to pay (default: the party itself).
    pub recipient: Option<String>,
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
    let (_, record, wallets) = visible(&state, &principal, &raw).await?;
    let terms = terms(&record);
    let action = match params.action.as_deref() {
        Some("seller_claim") => SettlementAction::SellerClaim,
        Some("buyer_withdraw") => SettlementAction::BuyerWithdraw,
        Some(other) => {
            return Err(bad_request(
                "invalid_action",
                format!("action {other:?}: expected seller_claim or buyer_withdraw"),
            ));
        }
        None if wallets.contains(&terms.seller) => SettlementAction::SellerClaim,
        None => SettlementAction::BuyerWithdraw,
    };
    let escrow = escrow_address(&state).await?;
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
            options::seller_claim_call(
                state.chain_id,
                escrow,
                &terms,
                amount,
                voucher,
                recipient.unwrap_or(terms.seller),
            )
        }
        _ => options::buyer_withdraw_call(
            state.chain_id,
            escrow,
            &terms,
            recipient.unwrap_or(terms.buyer),
        ),
    };
    Ok(Json(call))
}

/// The EIP-712 domain the client signed under, if it says (checked against the escrow's).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainBody {
    /// Domain name.
    pub name: Option<String>,
    /// Domain version.
    pub version: Option<String>,
    /// Chain id.
    pub chain_id: Option<u64>,
    /// The verifying contract.
    pub verifying_contract: Option<String>,
}

/// A party's signed `InitiateClose`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InitiateCloseBody {
    /// The signing party (buyer or seller).
    pub party: String,
    /// The signed deadline (unix seconds).
    pub deadline: u64,
    /// The party's signature (65-byte ECDSA, or anything its ERC-1271 wallet accepts).
    pub signature: String,
    /// The domain the client signed under (optional; a mismatch is refused as `wrong_domain`).
    pub domain: Option<DomainBody>,
}

/// The seller's signed `SellerClaim`, with the buyer's voucher.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SellerClaimBody {
    /// The voucher's cumulative amount (token base units, decimal).
    pub amount: String,
    /// The buyer's voucher signature (ignored on chain when retrying a deferred payout).
    pub voucher_signature: String,
    /// Where to pay.
    pub recipient: String,
    /// The signed deadline.
    pub deadline: u64,
    /// The seller's signature.
    pub signature: String,
    /// See [`InitiateCloseBody::domain`].
    pub domain: Option<DomainBody>,
}

/// The buyer's signed `BuyerWithdraw`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuyerWithdrawBody {
    /// Where to pay.
    pub recipient: String,
    /// The signed deadline.
    pub deadline: u64,
    /// The buyer's signature.
    pub signature: String,
    /// See [`InitiateCloseBody::domain`].
    pub domain: Option<DomainBody>,
}

fn check_domain(relayer: &Relayer, domain: Option<&DomainBody>) -> Result<(), Problem> {
    let Some(d) = domain else { return Ok(()) };
    let expected = relayer.escrow_domain();
    let mut wrong = Vec::new();
    if let Some(name) = &d.name
        && Some(name.as_str()) != expected.name.as_deref()
    {
        wrong.push(format!("name {name:?}"));
    }
    if let Some(version) = &d.version
        && Some(version.as_str()) != expected.version.as_deref()
    {
        wrong.push(format!("version {version:?}"));
    }
    if let Some(chain_id) = d.chain_id
        && chain_id != relayer.settings().chain_id
    {
        wrong.push(format!("chain id {chain_id}"));
    }
    if let Some(contract) = &d.verifying_contract
        && Address::from_str(contract).ok() != Some(relayer.settings().escrow)
    {
        wrong.push(format!("verifying contract {contract}"));
    }
    if wrong.is_empty() {
        return Ok(());
    }
    Err(Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "wrong_domain",
        "Wrong signing domain",
        format!(
            "signed under {}; the escrow's domain is {:?} version {:?} on chain {} at {}",
            wrong.join(", "),
            expected.name.as_deref().unwrap_or_default(),
            expected.version.as_deref().unwrap_or_default(),
            relayer.settings().chain_id,
            relayer.settings().escrow
        ),
    ))
}

/// One signed transaction of a relay job.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttemptView {
    /// Its hash.
    pub tx_hash: String,
    /// `action`, `cancel` (a no-op replacing it) or `fill`.
    pub kind: AttemptKind,
    /// Nonce of the relayer key.
    pub nonce: u64,
    /// Fee cap (wei per gas).
    pub max_fee_per_gas: String,
    /// Tip (wei per gas).
    pub max_priority_fee_per_gas: String,
    /// Whether the node took it.
    pub broadcast: bool,
    /// `mined`, `replaced`, or none while pending.
    pub outcome: Option<AttemptOutcome>,
}

/// Why a job failed.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FailureView {
    /// Stable code (the same codes as the refusals, or `reverted`).
    pub code: String,
    /// Details.
    pub detail: String,
}

impl FailureView {
    /// The job's failure, if it failed.
    pub fn of(job: &Job) -> Option<Self> {
        job.failure_code.map(|code| Self {
            code: code.as_str().to_owned(),
            detail: job.failure_detail.clone().unwrap_or_default(),
        })
    }
}

/// A sponsored action and where it is.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RelayView {
    /// The relay id.
    pub relay_id: String,
    /// The agreement.
    pub agreement_id: String,
    /// What it does.
    pub action: ActionKind,
    /// Where it is.
    pub status: JobState,
    /// The party whose signature it carries.
    pub signer: String,
    /// The authorization's deadline (unix seconds).
    pub deadline: u64,
    /// Why it failed (or is being cancelled).
    pub failure: Option<FailureView>,
    /// The relayer key submitting it.
    pub relayer: Option<String>,
    /// The key's nonce it holds.
    pub nonce: Option<u64>,
    /// The mined transaction.
    pub tx_hash: Option<String>,
    /// Its block.
    pub block_number: Option<u64>,
    /// Gas it used.
    pub gas_used: Option<u64>,
    /// Every transaction attempted, oldest first.
    pub attempts: Vec<AttemptView>,
    /// Milliseconds since the epoch: accepted, first submitted, finished.
    pub created_at_ms: i64,
    /// See `created_at_ms`.
    pub submitted_at_ms: Option<i64>,
    /// See `created_at_ms`.
    pub finished_at_ms: Option<i64>,
    /// Where to poll.
    pub status_url: String,
}

fn relay_view(job: &Job, attempts: &[Attempt]) -> RelayView {
    RelayView {
        relay_id: job.id.clone(),
        agreement_id: job.agreement_id.to_string(),
        action: job.action,
        status: job.state,
        signer: job.signer.to_string(),
        deadline: job.deadline,
        failure: FailureView::of(job),
        relayer: job.relayer.map(|r| r.to_string()),
        nonce: job.nonce,
        tx_hash: job.tx_hash.map(|h| h.to_string()),
        block_number: job.block_number,
        gas_used: job.gas_used,
        attempts: attempts
            .iter()
            .map(|a| AttemptView {
                tx_hash: a.tx_hash.to_string(),
                kind: a.kind,
                nonce: a.nonce,
                max_fee_per_gas: a.max_fee_per_gas.to_string(),
                max_priority_fee_per_gas: a.max_priority_fee_per_gas.to_string(),
                broadcast: a.broadcast_ms.is_some(),
                outcome: a.outcome,
            })
            .collect(),
        created_at_ms: job.created_ms,
        submitted_at_ms: job.submitted_ms,
        finished_at_ms: job.finished_ms,
        status_url: format!(
            "/usage-agreements/{}/sponsored-actions/{}",
            job.agreement_id, job.id
        ),
    }
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(body).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "Invalid request body",
            e.to_string(),
        )
    })
}

impl InitiateCloseBody {
    /// The authorization it carries (its fields parsed).
    fn authorization(&self) -> Result<Authorization, Problem> {
        Ok(Authorization::InitiateClose {
            party: parse_address("party", &self.party)?,
            deadline: self.deadline,
            signature: parse_bytes("signature", &self.signature)?,
        })
    }
}

impl SellerClaimBody {
    /// The authorization it carries (its fields parsed).
    fn authorization(&self) -> Result<Authorization, Problem> {
        Ok(Authorization::SellerClaim {
            amount: parse_amount("amount", &self.amount)?,
            voucher_signature: parse_bytes("voucher_signature", &self.voucher_signature)?,
            recipient: parse_address("recipient", &self.recipient)?,
            deadline: self.deadline,
            signature: parse_bytes("signature", &self.signature)?,
        })
    }
}

impl BuyerWithdrawBody {
    /// The authorization it carries (its fields parsed).
    fn authorization(&self) -> Result<Authorization, Problem> {
        Ok(Authorization::BuyerWithdraw {
            recipient: parse_address("recipient", &self.recipient)?,
            deadline: self.deadline,
            signature: parse_bytes("signature", &self.signature)?,
        })
    }
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
    let view = relay_view(&accepted.job, &attempts);
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
        body.authorization(),
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
        body.authorization(),
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
        body.authorization(),
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
    let wallets = principal.visible_wallets(state.db.pool()).await?;
    let relayer = relayer(&state)?;
    // Unknown, of another agreement, or not the caller's: the same answer.
    let (job, attempts) = relayer
        .job(&relay_id)
        .await
        .map_err(node_problem)?
        .filter(|(job, _)| {
            job.agreement_id == id
                && (wallets.contains(&job.buyer) || wallets.contains(&job.seller))
        })
        .ok_or_else(|| {
            Problem::new(
                StatusCode::NOT_FOUND,
                "relay_not_found",
                "Relay not found",
                format!("agreement {raw} has no sponsored action {relay_id} visible to these credentials"),
            )
        })?;
    Ok(Json(relay_view(&job, &attempts)))
}
