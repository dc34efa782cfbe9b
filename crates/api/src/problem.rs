//! Errors as RFC 9457 problem details: a standard status code, a stable machine-readable `code`,
//! a human `title` and `detail`. Clients branch on `code`, never on the text.

use axum::{
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use pactum_core::{
    Refusal, RefusalCode,
    agreement::{LifecycleCode, LifecycleError},
    approval::{ApprovalCode, ApprovalError},
    identity::{IdentityCode, IdentityError},
    policy::{InvalidPolicy, PolicyCode, Violation},
    webhook::{WebhookCode, WebhookError},
};
use utoipa::ToSchema;

pub use pactum_api_types::problem::PROBLEM_JSON;

/// A problem response: the wire [`pactum_api_types::Problem`], answered with its status.
#[derive(Debug, Clone)]
pub struct Problem(pub pactum_api_types::Problem);

/// Marks a response that describes the moment rather than the request (see
/// [`Problem::is_transient`]): the idempotency middleware releases the key instead of storing
/// it, so that a retry under the same `Idempotency-Key` runs again.
#[derive(Debug, Clone, Copy)]
pub struct Transient;

/// Codes whose answer may change for the same request without anything the caller does: the
/// agreement may be indexed in a moment, the chain may let a simulation pass later.
const TRANSIENT_CODES: [&str; 2] = ["agreement_not_found", "simulation_failed"];

// The OpenAPI schema is the wire type's.
impl utoipa::PartialSchema for Problem {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <pactum_api_types::Problem as utoipa::PartialSchema>::schema()
    }
}

impl ToSchema for Problem {
    fn name() -> std::borrow::Cow<'static, str> {
        <pactum_api_types::Problem as ToSchema>::name()
    }
}

impl Problem {
    /// A problem with `status`, stable `code`, `title` and `detail`.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self(pactum_api_types::Problem {
            kind: format!("urn:pactum:problem:{code}"),
            title: title.to_owned(),
            status: status.as_u16(),
            code: code.to_owned(),
            detail: detail.into(),
            earliest_at: None,
        })
    }

    /// Whether this answer describes the moment rather than the request: a server error (5xx),
    /// a conflict with the current state (409), a rate limit (429), an agreement not (yet)
    /// indexed, a simulation that failed against the chain as it is now.
    pub fn is_transient(&self) -> bool {
        self.0.status >= 500
            || self.0.status == 409
            || self.0.status == 429
            || TRANSIENT_CODES.contains(&self.0.code.as_str())
    }

    /// 400 `invalid_agreement_id`.
    pub fn invalid_agreement_id(raw: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_agreement_id",
            "Invalid agreement id",
            format!(
                "{raw:?} is neither an agreement id (agr_ and 20 characters) nor an on-chain \
                 agreement id (0x followed by 64 hex digits)"
            ),
        )
    }

    /// 404 `agreement_not_found`: unknown, or not visible to the caller (the two are not told
    /// apart, so that ids of other parties' agreements cannot be probed).
    pub fn agreement_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "agreement_not_found",
            "Agreement not found",
            format!("no agreement {id} is visible to these credentials"),
        )
    }

    /// 401 `unauthenticated`.
    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Authentication required",
            detail,
        )
    }

    /// 403 `forbidden`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Not allowed", detail)
    }

    /// 500 `internal_error` (details go to the log, not to the client).
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal error",
            "the server failed to handle the request; it was logged",
        )
    }

    /// 500 `internal_error` for a state that cannot happen, with `why` in the log.
    pub fn internal_because(why: &str) -> Self {
        tracing::error!(why, "internal error");
        Self::internal()
    }

    /// 503 `unavailable`.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            detail,
        )
    }
}

/// The HTTP status of a refusal: the only place a [`RefusalCode`] meets HTTP.
///
/// - 409 Conflict: the agreement's state, or another job, is in the way; the same request may
///   succeed later.
/// - 422 Unprocessable Content: the request is well-formed but cannot succeed as it is.
/// - 429 Too Many Requests: a quota or the day's budget is used up.
/// - 503 Service Unavailable: the sponsor is paused until a key is topped up.
pub const fn refusal_status(code: RefusalCode) -> StatusCode {
    use RefusalCode as C;
    match code {
        C::ActionAlreadyTaken
        | C::AgreementNotActive
        | C::CloseNotInitiated
        | C::CloseWindowElapsed
        | C::CloseWindowOpen
        | C::CloseWindowEnding
        | C::WrongState
        | C::CompetingActionInFlight => StatusCode::CONFLICT,
        C::AgreementExpired
        | C::NotAParty
        | C::SignerUnsupported
        | C::InvalidSignature
        | C::InvalidVoucher
        | C::InvalidAmount
        | C::InvalidRecipient
        | C::ClaimAmountMismatch
        | C::UnexpectedFeeAuthorization
        | C::AuthorizationExpired
        | C::DeadlineTooSoon
        | C::WrongDomain
        | C::Sanctioned
        | C::SimulationFailed
        | C::TokenNotSponsored
        | C::UntrustedToken
        | C::PolicyViolation
        | C::GasCeilingExceeded => StatusCode::UNPROCESSABLE_ENTITY,
        C::QuotaExceeded | C::TooManyReverts | C::SponsorBudgetExhausted => {
            StatusCode::TOO_MANY_REQUESTS
        }
        C::SponsorPaused => StatusCode::SERVICE_UNAVAILABLE,
        C::NotSignersAgent => StatusCode::FORBIDDEN,
    }
}

impl From<Refusal> for Problem {
    fn from(r: Refusal) -> Self {
        let mut problem = Self::new(
            refusal_status(r.code),
            r.code.as_str(),
            r.code.title(),
            r.detail,
        );
        problem.0.earliest_at = r.earliest_at;
        problem
    }
}

/// The HTTP status of a lifecycle refusal: the only place a [`LifecycleCode`] meets HTTP.
///
/// - 403 Forbidden: the caller is not the party the transition belongs to.
/// - 409 Conflict: the agreement's status does not allow it (now, or any more).
/// - 422 Unprocessable Content: a field of the request cannot be accepted as it is.
pub const fn lifecycle_status(code: LifecycleCode) -> StatusCode {
    use LifecycleCode as C;
    match code {
        C::NotSeller | C::NotBuyer => StatusCode::FORBIDDEN,
        C::InvalidTransition
        | C::ProposalExpired
        | C::ActivationInFlight
        | C::UsageNotIncreasing
        | C::NotClaimable => StatusCode::CONFLICT,
        C::UnknownSeller
        | C::SellerIsBuyer
        | C::InvalidQuantity
        | C::InvalidPrice
        | C::AmountOverflow
        | C::UnsupportedRail
        | C::UnsupportedProvider
        | C::UnsupportedSettlementModel
        | C::UnsupportedActivationVersion
        | C::BuyerWalletMismatch
        | C::InvalidField
        | C::InvalidCloseWindow
        | C::InvalidExpiry
        | C::InvalidMetadata
        | C::ActivationExpired
        | C::FeeAuthorizationRequired
        | C::UnexpectedFeeAuthorization
        | C::InvalidSignature
        | C::InvalidVoucher => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// The HTTP status of an identity refusal: the only place an [`IdentityCode`] meets HTTP.
pub const fn identity_status(code: IdentityCode) -> StatusCode {
    use IdentityCode as C;
    match code {
        C::OwnerOnly => StatusCode::FORBIDDEN,
        C::AgentNotFound => StatusCode::NOT_FOUND,
        C::AgentIdTaken | C::WalletAlreadyRegistered => StatusCode::CONFLICT,
        C::InvalidAgentId
        | C::InvalidName
        | C::InvalidLabel
        | C::WalletProofExpired
        | C::WalletProofDeadlineTooFar
        | C::InvalidWalletProof => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl From<IdentityError> for Problem {
    fn from(e: IdentityError) -> Self {
        Self::new(
            identity_status(e.code),
            e.code.as_str(),
            e.code.title(),
            e.detail,
        )
    }
}

/// The HTTP status of an approval refusal: the only place an [`ApprovalCode`] meets HTTP.
pub const fn approval_status(code: ApprovalCode) -> StatusCode {
    match code {
        ApprovalCode::NotFound => StatusCode::NOT_FOUND,
        ApprovalCode::AlreadyDecided | ApprovalCode::Expired => StatusCode::CONFLICT,
        ApprovalCode::InvalidReason => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl From<ApprovalError> for Problem {
    fn from(e: ApprovalError) -> Self {
        Self::new(
            approval_status(e.code),
            e.code.as_str(),
            e.code.title(),
            e.detail,
        )
    }
}

/// The HTTP status of a webhook refusal: the only place a [`WebhookCode`] meets HTTP.
pub const fn webhook_status(code: WebhookCode) -> StatusCode {
    use WebhookCode as C;
    match code {
        C::WebhookNotFound | C::DeliveryNotFound => StatusCode::NOT_FOUND,
        C::TooManyWebhooks | C::DeliveryInProgress | C::WebhookDisabled => StatusCode::CONFLICT,
        C::InvalidUrl
        | C::ForbiddenDestination
        | C::InvalidEventTypes
        | C::InvalidDescription
        | C::InvalidOverlap => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl From<WebhookError> for Problem {
    fn from(e: WebhookError) -> Self {
        Self::new(
            webhook_status(e.code),
            e.code.as_str(),
            e.code.title(),
            e.detail,
        )
    }
}

/// The HTTP status of a policy refusal: the only place a [`PolicyCode`] meets HTTP.
pub const fn policy_status(code: PolicyCode) -> StatusCode {
    match code {
        PolicyCode::InvalidPolicy => StatusCode::UNPROCESSABLE_ENTITY,
        PolicyCode::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
        PolicyCode::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        PolicyCode::PolicyViolation => StatusCode::FORBIDDEN,
    }
}

impl Problem {
    /// A policy refusal with `code` and `detail`.
    pub fn policy(code: PolicyCode, detail: impl Into<String>) -> Self {
        Self::new(policy_status(code), code.as_str(), code.title(), detail)
    }
}

impl From<InvalidPolicy> for Problem {
    fn from(e: InvalidPolicy) -> Self {
        Self::policy(PolicyCode::InvalidPolicy, e.to_string())
    }
}

impl From<Violation> for Problem {
    fn from(v: Violation) -> Self {
        Self::policy(PolicyCode::PolicyViolation, v.to_string())
    }
}

impl From<LifecycleError> for Problem {
    fn from(e: LifecycleError) -> Self {
        Self::new(
            lifecycle_status(e.code),
            e.code.as_str(),
            e.code.title(),
            e.detail,
        )
    }
}

/// Middleware: an error answer that is not already JSON (axum's own rejections of a path, query
/// or body it cannot extract, `405` for a method a path does not have, `413` and `415`) becomes a
/// problem with a stable code, keeping its status and headers (`Allow` on a `405`); and a path or
/// query carrying an encoded NUL, which no text column can hold, is refused before routing.
pub async fn uniform_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let uri = request.uri();
    let nul = |s: &str| {
        s.as_bytes()
            .windows(3)
            .any(|w| w.eq_ignore_ascii_case(b"%00"))
    };
    if nul(uri.path()) || uri.query().is_some_and(nul) {
        return Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_text",
            "Invalid text",
            "the path and query may not contain the NUL character (%00)",
        )
        .into_response();
    }
    let response = next.run(request).await;
    let status = response.status();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with(PROBLEM_JSON));
    if !(status.is_client_error() || status.is_server_error()) || json {
        return response;
    }
    let (code, title) = match status {
        StatusCode::NOT_FOUND => ("route_not_found", "No such endpoint"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "Method not allowed"),
        StatusCode::PAYLOAD_TOO_LARGE => ("body_too_large", "Request body too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "Unsupported media type"),
        s if s.is_server_error() => ("internal_error", "Internal error"),
        _ => ("invalid_request", "Invalid request"),
    };
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let detail = match std::str::from_utf8(&text).map(str::trim) {
        Ok(t) if !t.is_empty() && !status.is_server_error() => t.to_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let problem = Problem::new(status, code, title, detail).into_response();
    let (problem_parts, problem_body) = problem.into_parts();
    for (name, value) in &problem_parts.headers {
        parts.headers.insert(name.clone(), value.clone());
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, problem_body)
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.0).unwrap_or_default();
        let transient = self.is_transient();
        let mut response = (status, body).into_response();
        if transient {
            response.extensions_mut().insert(Transient);
        }
        if let Ok(value) = PROBLEM_JSON.parse() {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        if status == StatusCode::UNAUTHORIZED
            && let Ok(value) = "Bearer".parse()
        {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

impl From<pactum_db::Error> for Problem {
    fn from(err: pactum_db::Error) -> Self {
        tracing::error!(%err, "database error");
        Self::internal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_answers_about_the_moment_are_transient() {
        let transient = [
            Problem::internal(),
            Problem::unavailable("down"),
            Problem::agreement_not_found("0x01"),
            Refusal::new(RefusalCode::SimulationFailed, "reverts now").into(),
            Refusal::new(RefusalCode::CompetingActionInFlight, "busy").into(),
            Refusal::new(RefusalCode::QuotaExceeded, "today").into(),
        ];
        for p in transient {
            assert!(p.is_transient(), "{}", p.0.code);
            let response = p.into_response();
            assert!(response.extensions().get::<Transient>().is_some());
        }
        let settled = [
            Problem::invalid_agreement_id("x"),
            Problem::forbidden("no"),
            Refusal::new(RefusalCode::InvalidSignature, "bad").into(),
            Refusal::new(RefusalCode::UnexpectedFeeAuthorization, "no fee").into(),
        ];
        for p in settled {
            assert!(!p.is_transient(), "{}", p.0.code);
            assert!(p.into_response().extensions().get::<Transient>().is_none());
        }
    }
}
