//! pactum's HTTP API.
//!
//! - Authentication ([`auth`]): agent API keys and owner JWTs as `Authorization: Bearer`.
//! - Errors ([`problem`]): RFC 9457 problem details with a stable `code`.
//! - Idempotent writes ([`idempotency`]): one middleware for every write endpoint.
//! - `GET /usage-agreements/{agreement_id}/escrow-status` from the indexer's tables.
//! - The settlement paths ([`routes::settlement`]): options, direct-path calldata, and sponsored
//!   actions through the relayer.
//! - `/health`, `/ready`, `/metrics` (Prometheus), `/openapi.json` (generated from the handlers).

pub mod agreements;
pub mod approvals;
pub mod auth;
mod dashboard;
pub mod idempotency;
pub mod identity;
mod input;
pub mod metrics;
pub mod operational;
mod paging;
pub mod policies;
pub mod problem;
pub mod receipts;
pub mod routes;
mod services;
mod views;
pub mod webhooks;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::DefaultBodyLimit,
    middleware::{from_fn, from_fn_with_state},
    routing::{MethodRouter, get, post, put},
};
use pactum_db::Db;
use tokio::{
    net::TcpListener,
    sync::{Semaphore, watch},
};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

pub use input::parse_agreement_id;
/// The wire types (shared with `pactum-client`).
pub use pactum_api_types as types;
pub use pactum_api_types::{
    EscrowStatus, IndexedHead, RevocationView, RevokeRequest, TransitionView, Transitions,
};

/// Everything a handler needs.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// The chain whose index is served.
    pub chain_id: u64,
    /// Owner JWT verification (owner JWTs are refused when absent).
    pub owner_tokens: Option<auth::OwnerTokens>,
    /// The in-process webhook worker's counters, when the API and a worker share a process.
    pub webhook_metrics: Option<Arc<pactum_webhooks::Metrics>>,
    /// The in-process indexer's counters, when the API and the indexer share a process.
    pub indexer_metrics: Option<pactum_indexer::Metrics>,
    /// `/ready` fails when the index trails the node by more blocks than this.
    pub max_lag_blocks: u64,
    /// Request metrics.
    pub http_metrics: metrics::HttpMetrics,
    /// The sponsored-action relayer (settlement endpoints answer 503 without one).
    pub relayer: Option<pactum_relayer::Relayer>,
    /// Whether [`router`] serves `/metrics` (false when [`serve_metrics`] serves it on an
    /// address of its own).
    pub metrics_on_api: bool,
    /// How long an idempotency key stays taken by a request whose process died (renewed every
    /// third of it while the request runs); [`idempotency::LEASE`] by default.
    pub idempotency_lease: std::time::Duration,
    /// Permits of the duplicates waiting for their original ([`idempotency::MAX_WAITING`]).
    pub idempotency_waiters: Arc<Semaphore>,
    /// The tokens the operator vouches for; every agreement view says whether its token is one.
    pub trusted_tokens: pactum_core::TrustedTokens,
    /// The last readiness verdict and when it was reached (see [`routes::health::ready`]).
    pub readiness: routes::health::Readiness,
    /// What usage agreements are made in (the lifecycle endpoints answer 503 without it).
    pub agreements: Option<agreements::AgreementSettings>,
    /// Where the operator lets webhook deliveries go (default: public `https` only).
    pub webhook_destinations: webhooks::Destinations,
    /// The receipt signer and the deployment (the receipt endpoints answer 503 without it).
    pub receipts: Option<receipts::ReceiptSettings>,
}

impl AppState {
    /// State for `chain_id` over `db`, with local-stack owner JWTs (HS256) if `jwt` is given
    /// (set [`AppState::owner_tokens`] for an identity provider).
    pub fn new(db: Db, chain_id: u64, jwt: Option<auth::JwtConfig>) -> Self {
        Self {
            db,
            chain_id,
            owner_tokens: jwt.map(auth::OwnerTokens::Local),
            indexer_metrics: None,
            webhook_metrics: None,
            max_lag_blocks: 64,
            http_metrics: metrics::HttpMetrics::default(),
            relayer: None,
            metrics_on_api: true,
            idempotency_lease: idempotency::LEASE,
            idempotency_waiters: Arc::new(Semaphore::new(idempotency::MAX_WAITING)),
            trusted_tokens: pactum_core::TrustedTokens::Any,
            readiness: routes::health::Readiness::default(),
            agreements: None,
            webhook_destinations: webhooks::Destinations::default(),
            receipts: None,
        }
    }
}

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("pk_<id>_<secret>")
                    .description(Some("Agent API key"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "owner_jwt",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "Owner JWT from the identity provider (RS256 or ES256; HS256 on the local stack)",
                    ))
                    .build(),
            ),
        );
        idempotency_key_schema(openapi);
        common_responses(openapi);
    }
}

/// The answers every operation of a kind can give, documented where its handler's own list
/// leaves them out: `401` on every operation that needs credentials, `422` on every one that
/// takes text (a NUL in it, see [`problem::uniform_errors`]), and on every write that
/// takes an `Idempotency-Key` the key's own refusals (`400` malformed, `409` its original still
/// running, `422` reused for another request).
fn common_responses(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{
        ContentBuilder, Ref, ResponseBuilder,
        path::{Operation, ParameterIn},
    };
    let problem = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build()
    };
    let complete = |op: &mut Option<Operation>| {
        let Some(op) = op else { return };
        let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
        let idempotent = op.parameters.iter().flatten().any(|p| {
            p.parameter_in == ParameterIn::Header
                && p.name.eq_ignore_ascii_case(idempotency::HEADER)
        });
        // A status the operation documents already gets the new reason appended.
        let mut add = |status: &str, description: &str| {
            use utoipa::openapi::RefOr;
            match op.responses.responses.get_mut(status) {
                Some(RefOr::T(response)) if !response.description.contains(description) => {
                    response.description = format!("{}; or {description}", response.description);
                }
                Some(_) => {}
                None => {
                    op.responses
                        .responses
                        .insert(status.to_owned(), problem(description).into());
                }
            }
        };
        if secured {
            add("401", "Missing or invalid credentials (`unauthenticated`)");
        }
        if op.parameters.as_ref().is_some_and(|p| !p.is_empty()) || op.request_body.is_some() {
            add(
                "422",
                "Text carrying the NUL character, which nothing can store (`invalid_text`)",
            );
        }
        if idempotent {
            add(
                "400",
                "Malformed Idempotency-Key (`invalid_idempotency_key`)",
            );
            add(
                "409",
                "The request first sent with this Idempotency-Key is still running (`idempotency_request_in_progress`)",
            );
            add(
                "422",
                "The Idempotency-Key was used for another request (`idempotency_key_reused`)",
            );
        }
    };
    for item in openapi.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ] {
            complete(op);
        }
    }
}

/// Every `Idempotency-Key` header parameter documented with what the server accepts: 1 to 255
/// visible ASCII characters.
fn idempotency_key_schema(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{
        ObjectBuilder, Type,
        path::{Operation, ParameterIn},
    };
    let schema: utoipa::openapi::RefOr<utoipa::openapi::Schema> = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(255))
        .pattern(Some("^[!-~]+$"))
        .into();
    let constrain = |op: &mut Option<Operation>| {
        for p in op
            .iter_mut()
            .flat_map(|o| o.parameters.iter_mut().flatten())
        {
            if p.parameter_in == ParameterIn::Header
                && p.name.eq_ignore_ascii_case(idempotency::HEADER)
            {
                p.schema = Some(schema.clone());
            }
        }
    };
    for item in openapi.paths.paths.values_mut() {
        for op in [
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ] {
            constrain(op);
        }
    }
}

/// The OpenAPI document, generated from the handlers and their types.
#[derive(OpenApi)]
#[openapi(
    info(title = "pactum API", description = "Usage agreements between AI agents, settled through an on-chain escrow."),
    paths(
        routes::agreements::propose,
        routes::agreements::get,
        routes::agreements::list,
        routes::agreements::accept,
        routes::agreements::reject,
        routes::agreements::activation_package,
        routes::agreements::activate_escrow,
        routes::agreements::usage_voucher,
        routes::agreements::record_usage,
        routes::status::escrow_status,
        routes::settlement::settlement_action_options,
        routes::settlement::initiate_close_calldata,
        routes::settlement::claim_instructions,
        routes::settlement::sponsor_initiate_close,
        routes::settlement::sponsor_seller_claim,
        routes::settlement::sponsor_buyer_withdraw,
        routes::settlement::sponsored_action_status,
        routes::keys::revoke,
        routes::owners::me,
        routes::agents::registration_message,
        routes::agents::register,
        routes::agents::list,
        routes::agents::get,
        routes::agents::create_key,
        routes::agents::keys,
        routes::agents::get_policy,
        routes::agents::put_policy,
        routes::approvals::list,
        routes::approvals::approve,
        routes::approvals::reject,
        routes::webhooks::create,
        routes::webhooks::list,
        routes::webhooks::get,
        routes::webhooks::update,
        routes::webhooks::delete,
        routes::webhooks::rotate_secret,
        routes::webhooks::deliveries,
        routes::webhooks::delivery,
        routes::webhooks::replay,
        routes::receipts::list,
        routes::receipts::get,
        routes::receipts::verify,
        routes::receipts::signer,
        routes::health::health,
        routes::health::ready,
        routes::health::metrics,
        routes::health::openapi,
    ),
    components(schemas(
        pactum_api_types::Problem,
        pactum_api_types::OwnerView,
        pactum_api_types::RegistrationMessage,
        pactum_api_types::RegisterAgent,
        pactum_api_types::AgentView,
        pactum_api_types::AgentPage,
        pactum_api_types::CreateApiKey,
        pactum_api_types::NewApiKey,
        pactum_api_types::ApiKeyView,
        pactum_api_types::ApiKeyList,
        pactum_api_types::PolicyView,
        pactum_api_types::Policy,
        pactum_api_types::ApprovalView,
        pactum_api_types::ApprovalPage,
        pactum_api_types::ApprovalStatus,
        pactum_api_types::CreateWebhook,
        pactum_api_types::UpdateWebhook,
        pactum_api_types::WebhookView,
        pactum_api_types::WebhookWithSecret,
        pactum_api_types::WebhookList,
        pactum_api_types::DeliveryView,
        pactum_api_types::DeliveryPage,
        pactum_api_types::AttemptLog,
        pactum_api_types::AgreementEventPayload,
        pactum_api_types::AgreementEventData,
        pactum_api_types::SponsoredActionPayload,
        pactum_api_types::SponsoredActionData,
        pactum_api_types::EventType,
        pactum_api_types::ReceiptView,
        pactum_api_types::ReceiptPage,
        pactum_api_types::ReceiptVerification,
        pactum_api_types::ReceiptSigner,
        pactum_api_types::ReceiptKind,
        pactum_api_types::ReceiptIssuedPayload,
        pactum_api_types::ReceiptIssuedData,
        pactum_api_types::ProposeAgreement,
        pactum_api_types::RejectAgreement,
        pactum_api_types::UsageAgreementView,
        pactum_api_types::AgreementPage,
        pactum_api_types::AgreementEventView,
        pactum_api_types::OnChainTermsView,
        pactum_api_types::PaymentMethod,
        pactum_api_types::UsageView,
        pactum_api_types::ActivationPackage,
        pactum_api_types::ActivateEscrow,
        pactum_api_types::TypedMessage,
        pactum_api_types::InfraFeeBlock,
        pactum_api_types::PermitPackage,
        pactum_api_types::PermitSignatures,
        pactum_api_types::UsageVoucher,
        pactum_api_types::RecordUsage,
        pactum_api_types::EscrowStatus,
        pactum_api_types::Transitions,
        pactum_api_types::TransitionView,
        pactum_api_types::IndexedHead,
        pactum_api_types::InitiateCloseBody,
        pactum_api_types::SellerClaimBody,
        pactum_api_types::BuyerWithdrawBody,
        pactum_api_types::DomainBody,
        pactum_api_types::RelayView,
        pactum_api_types::AttemptView,
        pactum_api_types::FailureView,
        pactum_api_types::ActionOptions,
        pactum_api_types::PathOption,
        pactum_api_types::DirectCall,
        pactum_api_types::RevokeRequest,
        pactum_api_types::RevocationView,
        pactum_api_types::Health,
        pactum_api_types::Ready,
    )),
    modifiers(&SecuritySchemes)
)]
#[derive(Debug)]
pub struct ApiDoc;

/// The router: every route, with authentication, idempotency and metrics layered on. The
/// operational endpoints and the fallback sit outside authentication: they need no credentials,
/// and a made-up key sent to them costs no database lookup.
pub fn router(state: AppState) -> Router {
    // Authentication, then idempotency, then the handler, layered on each route's methods: a
    // method the path does not have is a 405 (and an unknown path a 404) whatever the
    // credentials and headers.
    let guard = |methods: MethodRouter<AppState>| {
        methods
            .route_layer(from_fn_with_state(state.clone(), idempotency::idempotency))
            .route_layer(from_fn_with_state(state.clone(), auth::authenticate))
    };
    let authenticated = Router::new()
        .route("/owners/me", guard(get(routes::owners::me)))
        .route(
            "/agents",
            guard(get(routes::agents::list).post(routes::agents::register)),
        )
        .route(
            "/agents/registration-message",
            guard(get(routes::agents::registration_message)),
        )
        .route("/agents/{agent_id}", guard(get(routes::agents::get)))
        .route(
            "/agents/{agent_id}/api-keys",
            guard(get(routes::agents::keys).post(routes::agents::create_key)),
        )
        .route(
            "/agents/{agent_id}/policies",
            guard(get(routes::agents::get_policy).put(routes::agents::put_policy)),
        )
        .route(
            "/agents/{agent_id}/approvals",
            guard(get(routes::approvals::list)),
        )
        .route(
            "/agents/{agent_id}/approvals/{request_id}/approve",
            guard(post(routes::approvals::approve)),
        )
        .route(
            "/agents/{agent_id}/approvals/{request_id}/reject",
            guard(post(routes::approvals::reject)),
        )
        .route(
            "/agents/{agent_id}/webhooks",
            guard(get(routes::webhooks::list).post(routes::webhooks::create)),
        )
        .route(
            "/agents/{agent_id}/webhooks/deliveries",
            guard(get(routes::webhooks::deliveries)),
        )
        .route(
            "/agents/{agent_id}/webhooks/deliveries/{delivery_id}",
            guard(get(routes::webhooks::delivery)),
        )
        .route(
            "/agents/{agent_id}/webhooks/deliveries/{delivery_id}/replay",
            guard(post(routes::webhooks::replay)),
        )
        .route(
            "/agents/{agent_id}/webhooks/{webhook_id}",
            guard(
                get(routes::webhooks::get)
                    .patch(routes::webhooks::update)
                    .delete(routes::webhooks::delete),
            ),
        )
        .route(
            "/agents/{agent_id}/webhooks/{webhook_id}/rotate-secret",
            guard(post(routes::webhooks::rotate_secret)),
        )
        .route("/receipts", guard(get(routes::receipts::list)))
        .route("/receipts/signer", guard(get(routes::receipts::signer)))
        .route(
            "/receipts/verify/{receipt_id}",
            guard(get(routes::receipts::verify)),
        )
        .route("/receipts/{receipt_id}", guard(get(routes::receipts::get)))
        .route(
            "/usage-agreements",
            guard(post(routes::agreements::propose)),
        )
        .route(
            "/usage-agreements/{agreement_id}",
            guard(get(routes::agreements::get)),
        )
        .route(
            "/usage-agreements/agents/{agent_id}/agreements",
            guard(get(routes::agreements::list)),
        )
        .route(
            "/usage-agreements/{agreement_id}/accept",
            guard(put(routes::agreements::accept)),
        )
        .route(
            "/usage-agreements/{agreement_id}/reject",
            guard(put(routes::agreements::reject)),
        )
        .route(
            "/usage-agreements/{agreement_id}/activation-package",
            guard(get(routes::agreements::activation_package)),
        )
        .route(
            "/usage-agreements/{agreement_id}/activate-escrow",
            guard(post(routes::agreements::activate_escrow)),
        )
        .route(
            "/usage-agreements/{agreement_id}/usage-voucher",
            guard(get(routes::agreements::usage_voucher)),
        )
        .route(
            "/usage-agreements/{agreement_id}/record-usage",
            guard(post(routes::agreements::record_usage)),
        )
        .route(
            "/usage-agreements/{agreement_id}/escrow-status",
            guard(get(routes::status::escrow_status)),
        )
        .route(
            "/usage-agreements/{agreement_id}/settlement-action-options",
            guard(get(routes::settlement::settlement_action_options)),
        )
        .route(
            "/usage-agreements/{agreement_id}/initiate-close-calldata",
            guard(get(routes::settlement::initiate_close_calldata)),
        )
        .route(
            "/usage-agreements/{agreement_id}/claim-instructions",
            guard(get(routes::settlement::claim_instructions)),
        )
        .route(
            "/usage-agreements/{agreement_id}/sponsored-actions/initiate-close",
            guard(post(routes::settlement::sponsor_initiate_close)),
        )
        .route(
            "/usage-agreements/{agreement_id}/sponsored-actions/seller-claim",
            guard(post(routes::settlement::sponsor_seller_claim)),
        )
        .route(
            "/usage-agreements/{agreement_id}/sponsored-actions/buyer-withdraw",
            guard(post(routes::settlement::sponsor_buyer_withdraw)),
        )
        .route(
            "/usage-agreements/{agreement_id}/sponsored-actions/{relay_id}",
            guard(get(routes::settlement::sponsored_action_status)),
        )
        .route(
            "/agents/{agent_id}/api-keys/{key_id}/revoke",
            guard(post(routes::keys::revoke)),
        );

    let mut operations = Router::new()
        .route(
            "/health",
            operational::route(routes::health::health, operational::HEALTH),
        )
        .route(
            "/ready",
            operational::route(routes::health::ready, operational::READY),
        )
        .route(
            "/openapi.json",
            operational::route(routes::health::openapi, operational::OPENAPI),
        );
    if state.metrics_on_api {
        operations = operations.route(
            "/metrics",
            operational::route(routes::health::metrics, operational::METRICS),
        );
    }
    authenticated
        .merge(operations)
        .merge(dashboard::routes())
        .fallback(|| async {
            problem::Problem::new(
                axum::http::StatusCode::NOT_FOUND,
                "route_not_found",
                "No such endpoint",
                "see /openapi.json for the endpoints",
            )
        })
        .layer(from_fn_with_state(state.clone(), metrics::track))
        .layer(DefaultBodyLimit::max(idempotency::MAX_BODY))
        .layer(from_fn(problem::uniform_errors))
        .layer(from_fn(trace))
        .with_state(state)
}

async fn trace(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    tracing::debug!(%method, path, status = response.status().as_u16(), micros = started.elapsed().as_micros() as u64, "request");
    response
}

/// Serves `/metrics` alone on `listener` (`api.metrics_listen`), until `shutdown` turns true.
pub async fn serve_metrics(
    listener: TcpListener,
    state: AppState,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(?addr, "metrics listening");
    let router = Router::new()
        .route(
            "/metrics",
            operational::route(routes::health::metrics, operational::METRICS),
        )
        .with_state(state);
    axum::serve(listener, router)
        .with_graceful_shutdown(until(shutdown))
        .await
}

/// Resolves once `shutdown` turns true (never, if its sender is gone).
async fn until(mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// Serves `router(state)` on `listener` until `shutdown` turns true (in-flight requests finish).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(?addr, "API listening");
    // Expired idempotency records are swept every ten minutes.
    let db = state.db.clone();
    let sweeper = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(600));
        loop {
            every.tick().await;
            match pactum_db::idempotency::purge_expired(db.pool()).await {
                Ok(n) if n > 0 => tracing::info!(purged = n, "expired idempotency records deleted"),
                Ok(_) => {}
                Err(err) => tracing::warn!(%err, "sweeping idempotency records failed"),
            }
        }
    });
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(until(shutdown))
        .await;
    sweeper.abort();
    served
}
