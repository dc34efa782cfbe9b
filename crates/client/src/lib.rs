//! A typed client of the pactum API.
//!
//! Every endpoint is one method taking and returning the [`pactum_api_types`] the server serves,
//! so a field the server stops sending fails where it is decoded, not three calls later. A
//! problem answer (RFC 9457) becomes [`Error::Problem`], whose [`Error::code`] is the stable code
//! to branch on. [`Client::send_raw`] is the escape hatch for requests the typed methods cannot
//! express (malformed ids, bodies with unknown fields), which is how the API's input checks are
//! tested.
//!
//! [`Authorizer`] builds the signed bodies of the sponsored path: it rebuilds each EIP-712 message
//! from the agent's own inputs and signs it only if it hashes to the digest the API handed out.
//!
//! ```no_run
//! # async fn demo(id: alloy::primitives::B256) -> Result<(), pactum_client::Error> {
//! use pactum_client::{Client, types::OptionsParams};
//! use pactum_client::types::SettlementAction;
//!
//! let api = Client::new("http://127.0.0.1:8080")?.authenticated("pk_...");
//! let status = api.escrow_status(id).await?;
//! let options = api
//!     .settlement_action_options(id, &OptionsParams::of(SettlementAction::InitiateClose))
//!     .await?;
//! println!("{} is {}; close possible now: {}", status.agreement_id, status.status, options.possible_now);
//! # Ok(()) }
//! ```

pub mod activate;
mod authorize;
mod register;

use std::time::{Duration, Instant};

pub use activate::{Expected, sign_activation};
use alloy::{
    primitives::B256,
    transports::http::reqwest::{
        self, Method, StatusCode, Url,
        header::{self, HeaderMap, HeaderValue},
    },
};
pub use authorize::Authorizer;
pub use pactum_api_types as types;
use pactum_api_types::{
    ActionOptions, ActivateEscrow, ActivationPackage, AgreementPage, ApprovalPage, ApprovalView,
    BuyerWithdrawBody, ClaimParams, CreateWebhook, DeliveryPage, DeliveryView, DirectCall,
    EscrowStatus, Health, InitiateCloseBody, ListAgreements, ListApprovals, ListDeliveries,
    ListReceipts, OptionsParams, PackageParams, Problem, ProposeAgreement, Ready, ReceiptPage,
    ReceiptSigner, ReceiptVerification, ReceiptView, RecordUsage, RejectAgreement, RejectApproval,
    RelayView, RevocationView, RevokeRequest, RotateSecret, SellerClaimBody, SettlementAction,
    UpdateWebhook, UsageAgreementView, UsageVoucher, VoucherParams, WebhookList, WebhookView,
    WebhookWithSecret,
    identity::{
        AgentPage, AgentView, ApiKeyList, CreateApiKey, ListAgents, NewApiKey, OwnerView,
        PolicyView, RegisterAgent, RegistrationMessage, RegistrationParams,
    },
};
pub use register::{Registration, sign_registration};
use serde::{Serialize, de::DeserializeOwned};

/// Header carrying the idempotency key of a write.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Header marking an answer replayed for a repeated idempotency key.
pub const IDEMPOTENCY_REPLAYED: &str = "idempotency-replayed";

/// What can go wrong talking to the API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The base URL does not parse, or a path cannot be joined to it.
    #[error("invalid API URL {0}")]
    Url(String),
    /// The request did not get an answer (connection refused, timeout, TLS).
    #[error("cannot reach the pactum API: {0}")]
    Transport(#[from] reqwest::Error),
    /// The API answered with a problem: `code` says why.
    #[error("the API answered {0}")]
    Problem(Box<Problem>),
    /// The answer is not what the endpoint documents (not JSON, a field missing or mistyped).
    #[error("unexpected answer {status} to {request}: {detail}")]
    Unexpected {
        /// The request, as `METHOD path`.
        request: String,
        /// The answer's status.
        status: u16,
        /// What did not decode, with the start of the body.
        detail: String,
    },
    /// Signing an authorization failed.
    #[error(transparent)]
    Signing(#[from] pactum_bindings::sign::Error),
    /// The options handed out something to sign that the agent's own message does not hash to:
    /// signing it could authorize something else, so nothing is signed.
    #[error("the API's typed data hashes to {theirs}, the agent's own message to {ours}")]
    DigestMismatch {
        /// The digest of the message the agent built.
        ours: B256,
        /// The digest the API handed out.
        theirs: String,
    },
    /// The options carry no typed data (the sponsored path is closed, or the action differs).
    #[error("nothing to sign: {0}")]
    NothingToSign(String),
    /// A wait ran out of time; the last state seen is in the message.
    #[error("gave up waiting after {waited:?}: {last}")]
    Timeout {
        /// How long it waited.
        waited: Duration,
        /// The last state seen.
        last: String,
    },
}

impl Error {
    /// The problem, if the API answered with one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Self::Problem(problem) => Some(problem),
            _ => None,
        }
    }

    /// The problem's stable code, if the API answered with one.
    pub fn code(&self) -> Option<&str> {
        self.problem().map(|p| p.code.as_str())
    }

    /// The HTTP status of a problem answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Problem(problem) => Some(problem.status),
            Self::Unexpected { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The answer to a write: its body, its status and whether it was replayed from an earlier
/// request with the same idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub struct Written<T> {
    /// The answer's status (`202` for an accepted sponsored action).
    pub status: u16,
    /// Replayed from the first request with this idempotency key.
    pub replayed: bool,
    /// The decoded body.
    pub body: T,
}

/// A party's signed authorization of any sponsored action: what [`Client::sponsor`] submits,
/// for callers that hold a signed body without caring which of the three it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedAction {
    /// A party's `InitiateClose`.
    InitiateClose(InitiateCloseBody),
    /// The seller's `SellerClaim`, with the buyer's voucher.
    SellerClaim(SellerClaimBody),
    /// The buyer's `BuyerWithdraw`.
    BuyerWithdraw(BuyerWithdrawBody),
}

impl SignedAction {
    /// The action it authorizes.
    pub const fn action(&self) -> SettlementAction {
        match self {
            Self::InitiateClose(_) => SettlementAction::InitiateClose,
            Self::SellerClaim(_) => SettlementAction::SellerClaim,
            Self::BuyerWithdraw(_) => SettlementAction::BuyerWithdraw,
        }
    }
}

impl From<InitiateCloseBody> for SignedAction {
    fn from(body: InitiateCloseBody) -> Self {
        Self::InitiateClose(body)
    }
}

impl From<SellerClaimBody> for SignedAction {
    fn from(body: SellerClaimBody) -> Self {
        Self::SellerClaim(body)
    }
}

impl From<BuyerWithdrawBody> for SignedAction {
    fn from(body: BuyerWithdrawBody) -> Self {
        Self::BuyerWithdraw(body)
    }
}

/// An answer as received, for requests outside the typed methods.
#[derive(Debug, Clone)]
pub struct RawAnswer {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Vec<u8>,
}

impl RawAnswer {
    /// The body decoded as `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|err| Error::Unexpected {
            request: "raw request".to_owned(),
            status: self.status.as_u16(),
            detail: format!("{err}: {}", preview(&self.body)),
        })
    }

    /// The problem this answer carries (an error if it carries none).
    pub fn problem(&self) -> Result<Problem> {
        self.json()
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A client of one pactum API, optionally holding a bearer token (an agent's API key or an
/// owner's JWT). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

impl Client {
    /// A client of the API at `base` (e.g. `http://127.0.0.1:8080`), without credentials.
    pub fn new(base: &str) -> Result<Self> {
        let mut base = Url::parse(base).map_err(|err| Error::Url(format!("{base}: {err}")))?;
        if base.cannot_be_a_base() {
            return Err(Error::Url(format!("{base}: not a base URL")));
        }
        // Paths are joined below the base's own path.
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(Self {
            http: reqwest::Client::new(),
            base,
            token: None,
        })
    }

    /// The same API, sending `token` as its bearer credential.
    pub fn authenticated(&self, token: impl Into<String>) -> Self {
        Self {
            token: Some(token.into()),
            ..self.clone()
        }
    }

    /// The same API through `http` (timeouts, proxies).
    pub fn with_http(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    /// The base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    // ---- the lifecycle ---------------------------------------------------------------------

    /// `POST /usage-agreements` under `idempotency_key` (the buyer agent's API key).
    pub async fn propose(
        &self,
        body: &ProposeAgreement,
        idempotency_key: &str,
    ) -> Result<Written<UsageAgreementView>> {
        self.post("usage-agreements", body, idempotency_key).await
    }

    /// `GET /usage-agreements/{agreement_id}` (`agr_...`).
    pub async fn usage_agreement(&self, agreement_id: &str) -> Result<UsageAgreementView> {
        self.get(&format!("usage-agreements/{agreement_id}"), &())
            .await
    }

    /// `GET /usage-agreements/agents/{agent_id}/agreements`: one page.
    pub async fn agent_agreements(
        &self,
        agent_id: &str,
        query: &ListAgreements,
    ) -> Result<AgreementPage> {
        self.get(
            &format!("usage-agreements/agents/{agent_id}/agreements"),
            query,
        )
        .await
    }

    /// `PUT /usage-agreements/{agreement_id}/accept` under `idempotency_key` (the seller).
    pub async fn accept(
        &self,
        agreement_id: &str,
        idempotency_key: &str,
    ) -> Result<Written<UsageAgreementView>> {
        let path = format!("usage-agreements/{agreement_id}/accept");
        self.write(Method::PUT, &path, &serde_json::json!({}), idempotency_key)
            .await
    }

    /// `PUT /usage-agreements/{agreement_id}/reject` with `reason` under `idempotency_key`.
    pub async fn reject(
        &self,
        agreement_id: &str,
        reason: &str,
        idempotency_key: &str,
    ) -> Result<Written<UsageAgreementView>> {
        let path = format!("usage-agreements/{agreement_id}/reject");
        let body = RejectAgreement {
            reason: reason.to_owned(),
        };
        self.write(Method::PUT, &path, &body, idempotency_key).await
    }

    /// `GET /usage-agreements/{agreement_id}/activation-package` (the buyer).
    pub async fn activation_package(
        &self,
        agreement_id: &str,
        params: &PackageParams,
    ) -> Result<ActivationPackage> {
        let path = format!("usage-agreements/{agreement_id}/activation-package");
        self.get(&path, params).await
    }

    /// `POST /usage-agreements/{agreement_id}/activate-escrow` under `idempotency_key`.
    pub async fn activate_escrow(
        &self,
        agreement_id: &str,
        body: &ActivateEscrow,
        idempotency_key: &str,
    ) -> Result<Written<UsageAgreementView>> {
        let path = format!("usage-agreements/{agreement_id}/activate-escrow");
        self.post(&path, body, idempotency_key).await
    }

    /// `GET /usage-agreements/{agreement_id}/usage-voucher?cumulative_quantity=N`.
    pub async fn usage_voucher(
        &self,
        agreement_id: &str,
        cumulative_quantity: u64,
    ) -> Result<UsageVoucher> {
        let path = format!("usage-agreements/{agreement_id}/usage-voucher");
        self.get(
            &path,
            &VoucherParams {
                cumulative_quantity,
            },
        )
        .await
    }

    /// `POST /usage-agreements/{agreement_id}/record-usage` under `idempotency_key`.
    pub async fn record_usage(
        &self,
        agreement_id: &str,
        body: &RecordUsage,
        idempotency_key: &str,
    ) -> Result<Written<UsageAgreementView>> {
        let path = format!("usage-agreements/{agreement_id}/record-usage");
        self.post(&path, body, idempotency_key).await
    }

    /// `GET /owners/me` (an owner's JWT).
    pub async fn me(&self) -> Result<OwnerView> {
        self.get("owners/me", &()).await
    }

    /// `GET /agents/registration-message`: what the wallet signs (an owner's JWT).
    pub async fn registration_message(
        &self,
        params: &RegistrationParams,
    ) -> Result<RegistrationMessage> {
        self.get("agents/registration-message", params).await
    }

    /// `POST /agents` under `idempotency_key` (an owner's JWT).
    pub async fn register_agent(
        &self,
        body: &RegisterAgent,
        idempotency_key: &str,
    ) -> Result<Written<AgentView>> {
        self.post("agents", body, idempotency_key).await
    }

    /// `GET /agents` (an owner's JWT).
    pub async fn agents(&self, query: &ListAgents) -> Result<AgentPage> {
        self.get("agents", query).await
    }

    /// `GET /agents/{agent_id}`.
    pub async fn agent(&self, agent_id: &str) -> Result<AgentView> {
        self.get(&format!("agents/{agent_id}"), &()).await
    }

    /// `POST /agents/{agent_id}/api-keys` under `idempotency_key` (an owner's JWT).
    pub async fn create_api_key(
        &self,
        agent_id: &str,
        label: &str,
        idempotency_key: &str,
    ) -> Result<Written<NewApiKey>> {
        let body = CreateApiKey {
            label: label.to_owned(),
        };
        self.post(
            &format!("agents/{agent_id}/api-keys"),
            &body,
            idempotency_key,
        )
        .await
    }

    /// `GET /agents/{agent_id}/api-keys` (an owner's JWT).
    pub async fn api_keys(&self, agent_id: &str) -> Result<ApiKeyList> {
        self.get(&format!("agents/{agent_id}/api-keys"), &()).await
    }

    /// `GET /agents/{agent_id}/policies`: the policy in force (its `etag` is the version to
    /// send as `If-Match` when replacing it).
    pub async fn policy(&self, agent_id: &str) -> Result<PolicyView> {
        self.get(&format!("agents/{agent_id}/policies"), &()).await
    }

    /// `PUT /agents/{agent_id}/policies` replacing the version `if_match` (an owner's JWT).
    pub async fn put_policy(
        &self,
        agent_id: &str,
        if_match: &str,
        policy: &pactum_api_types::Policy,
        idempotency_key: &str,
    ) -> Result<Written<PolicyView>> {
        let path = format!("agents/{agent_id}/policies");
        let request = format!("PUT {path}");
        let body = serde_json::to_vec(policy).map_err(|err| Error::Unexpected {
            request: request.clone(),
            status: 0,
            detail: format!("the body does not serialize: {err}"),
        })?;
        let headers = [(IDEMPOTENCY_KEY, idempotency_key), ("if-match", if_match)];
        let answer = self
            .send_raw(Method::PUT, &path, &headers, Some(body))
            .await?;
        Ok(Written {
            status: answer.status.as_u16(),
            replayed: answer.header(IDEMPOTENCY_REPLAYED) == Some("true"),
            body: decode(&request, &answer)?,
        })
    }

    /// `GET /agents/{agent_id}/approvals`: one page (the owner, or the agent itself).
    pub async fn approvals(&self, agent_id: &str, query: &ListApprovals) -> Result<ApprovalPage> {
        self.get(&format!("agents/{agent_id}/approvals"), query)
            .await
    }

    /// `POST /agents/{agent_id}/approvals/{request_id}/approve` under `idempotency_key` (the
    /// agent's owner).
    pub async fn approve(
        &self,
        agent_id: &str,
        request_id: &str,
        idempotency_key: &str,
    ) -> Result<Written<ApprovalView>> {
        let path = format!("agents/{agent_id}/approvals/{request_id}/approve");
        self.post(&path, &serde_json::json!({}), idempotency_key)
            .await
    }

    /// `POST /agents/{agent_id}/approvals/{request_id}/reject?reason=...` under
    /// `idempotency_key` (the agent's owner).
    pub async fn reject_approval(
        &self,
        agent_id: &str,
        request_id: &str,
        reason: &str,
        idempotency_key: &str,
    ) -> Result<Written<ApprovalView>> {
        let path = with_query(
            &format!("agents/{agent_id}/approvals/{request_id}/reject"),
            &RejectApproval {
                reason: Some(reason.to_owned()),
            },
        )?;
        self.post(&path, &serde_json::json!({}), idempotency_key)
            .await
    }

    /// `POST /agents/{agent_id}/webhooks` under `idempotency_key` (the agent's owner): the
    /// endpoint with its secret, shown this once.
    pub async fn create_webhook(
        &self,
        agent_id: &str,
        body: &CreateWebhook,
        idempotency_key: &str,
    ) -> Result<Written<WebhookWithSecret>> {
        self.post(
            &format!("agents/{agent_id}/webhooks"),
            body,
            idempotency_key,
        )
        .await
    }

    /// `GET /agents/{agent_id}/webhooks`.
    pub async fn webhooks(&self, agent_id: &str) -> Result<WebhookList> {
        self.get(&format!("agents/{agent_id}/webhooks"), &()).await
    }

    /// `GET /agents/{agent_id}/webhooks/{webhook_id}`.
    pub async fn webhook(&self, agent_id: &str, webhook_id: &str) -> Result<WebhookView> {
        self.get(&format!("agents/{agent_id}/webhooks/{webhook_id}"), &())
            .await
    }

    /// `PATCH /agents/{agent_id}/webhooks/{webhook_id}` under `idempotency_key`.
    pub async fn update_webhook(
        &self,
        agent_id: &str,
        webhook_id: &str,
        body: &UpdateWebhook,
        idempotency_key: &str,
    ) -> Result<Written<WebhookView>> {
        let path = format!("agents/{agent_id}/webhooks/{webhook_id}");
        self.write(Method::PATCH, &path, body, idempotency_key)
            .await
    }

    /// `DELETE /agents/{agent_id}/webhooks/{webhook_id}` under `idempotency_key`.
    pub async fn delete_webhook(
        &self,
        agent_id: &str,
        webhook_id: &str,
        idempotency_key: &str,
    ) -> Result<()> {
        let path = format!("agents/{agent_id}/webhooks/{webhook_id}");
        let answer = self
            .send_raw(
                Method::DELETE,
                &path,
                &[(IDEMPOTENCY_KEY, idempotency_key)],
                None,
            )
            .await?;
        check(&format!("DELETE {path}"), &answer)
    }

    /// `POST /agents/{agent_id}/webhooks/{webhook_id}/rotate-secret` under `idempotency_key`:
    /// the new secret; the current one signs beside it for `overlap_seconds`.
    pub async fn rotate_webhook_secret(
        &self,
        agent_id: &str,
        webhook_id: &str,
        overlap_seconds: Option<u64>,
        idempotency_key: &str,
    ) -> Result<Written<WebhookWithSecret>> {
        let path = with_query(
            &format!("agents/{agent_id}/webhooks/{webhook_id}/rotate-secret"),
            &RotateSecret { overlap_seconds },
        )?;
        self.post(&path, &serde_json::json!({}), idempotency_key)
            .await
    }

    /// `GET /agents/{agent_id}/webhooks/deliveries`: one page.
    pub async fn webhook_deliveries(
        &self,
        agent_id: &str,
        query: &ListDeliveries,
    ) -> Result<DeliveryPage> {
        self.get(&format!("agents/{agent_id}/webhooks/deliveries"), query)
            .await
    }

    /// `GET /agents/{agent_id}/webhooks/deliveries/{delivery_id}`.
    pub async fn webhook_delivery(
        &self,
        agent_id: &str,
        delivery_id: &str,
    ) -> Result<DeliveryView> {
        self.get(
            &format!("agents/{agent_id}/webhooks/deliveries/{delivery_id}"),
            &(),
        )
        .await
    }

    /// `POST /agents/{agent_id}/webhooks/deliveries/{delivery_id}/replay` under
    /// `idempotency_key`.
    pub async fn replay_delivery(
        &self,
        agent_id: &str,
        delivery_id: &str,
        idempotency_key: &str,
    ) -> Result<Written<DeliveryView>> {
        let path = format!("agents/{agent_id}/webhooks/deliveries/{delivery_id}/replay");
        self.post(&path, &serde_json::json!({}), idempotency_key)
            .await
    }

    /// `GET /receipts?agent_id=`: one page of the receipts of an agent's agreements.
    pub async fn receipts(&self, query: &ListReceipts) -> Result<ReceiptPage> {
        self.get("receipts", query).await
    }

    /// `GET /receipts/{receipt_id}`: the signed document.
    pub async fn receipt(&self, receipt_id: &str) -> Result<ReceiptView> {
        self.get(&format!("receipts/{receipt_id}"), &()).await
    }

    /// `GET /receipts/verify/{receipt_id}`.
    pub async fn verify_receipt(&self, receipt_id: &str) -> Result<ReceiptVerification> {
        self.get(&format!("receipts/verify/{receipt_id}"), &())
            .await
    }

    /// `GET /receipts/signer`.
    pub async fn receipt_signer(&self) -> Result<ReceiptSigner> {
        self.get("receipts/signer", &()).await
    }

    /// Polls `GET /usage-agreements/{agreement_id}` until `done` holds for it.
    pub async fn wait_usage_agreement(
        &self,
        agreement_id: &str,
        timeout: Duration,
        done: impl Fn(&UsageAgreementView) -> bool,
    ) -> Result<UsageAgreementView> {
        let started = Instant::now();
        loop {
            let view = self.usage_agreement(agreement_id).await?;
            if done(&view) {
                return Ok(view);
            }
            let last = format!("{} (activation {:?})", view.status, view.activation_status);
            pause(started, timeout, last).await?;
        }
    }

    // ---- agreements ------------------------------------------------------------------------

    /// `GET /usage-agreements/{id}/escrow-status`.
    pub async fn escrow_status(&self, id: B256) -> Result<EscrowStatus> {
        self.get(&agreement(id, "escrow-status"), &()).await
    }

    /// Polls the escrow status until `done` holds for it; a `404` (not indexed yet) is waited
    /// out like any other state.
    pub async fn wait_escrow_status(
        &self,
        id: B256,
        timeout: Duration,
        done: impl Fn(&EscrowStatus) -> bool,
    ) -> Result<EscrowStatus> {
        let started = Instant::now();
        loop {
            let last = match self.escrow_status(id).await {
                Ok(status) if done(&status) => return Ok(status),
                Ok(status) => format!(
                    "{} (activation {})",
                    status.status, status.activation_status
                ),
                Err(err) if err.status() == Some(404) => err.to_string(),
                Err(err) => return Err(err),
            };
            pause(started, timeout, last).await?;
        }
    }

    // ---- settlement ------------------------------------------------------------------------

    /// `GET /usage-agreements/{id}/settlement-action-options`.
    pub async fn settlement_action_options(
        &self,
        id: B256,
        params: &OptionsParams,
    ) -> Result<ActionOptions> {
        self.get(&agreement(id, "settlement-action-options"), params)
            .await
    }

    /// `GET /usage-agreements/{id}/initiate-close-calldata`.
    pub async fn initiate_close_calldata(&self, id: B256) -> Result<DirectCall> {
        self.get(&agreement(id, "initiate-close-calldata"), &())
            .await
    }

    /// `GET /usage-agreements/{id}/claim-instructions`.
    pub async fn claim_instructions(&self, id: B256, params: &ClaimParams) -> Result<DirectCall> {
        self.get(&agreement(id, "claim-instructions"), params).await
    }

    /// `POST /usage-agreements/{id}/sponsored-actions/initiate-close` under `idempotency_key`.
    pub async fn sponsor_initiate_close(
        &self,
        id: B256,
        body: &InitiateCloseBody,
        idempotency_key: &str,
    ) -> Result<Written<RelayView>> {
        let path = agreement(id, "sponsored-actions/initiate-close");
        self.post(&path, body, idempotency_key).await
    }

    /// `POST /usage-agreements/{id}/sponsored-actions/seller-claim` under `idempotency_key`.
    pub async fn sponsor_seller_claim(
        &self,
        id: B256,
        body: &SellerClaimBody,
        idempotency_key: &str,
    ) -> Result<Written<RelayView>> {
        let path = agreement(id, "sponsored-actions/seller-claim");
        self.post(&path, body, idempotency_key).await
    }

    /// `POST /usage-agreements/{id}/sponsored-actions/buyer-withdraw` under `idempotency_key`.
    pub async fn sponsor_buyer_withdraw(
        &self,
        id: B256,
        body: &BuyerWithdrawBody,
        idempotency_key: &str,
    ) -> Result<Written<RelayView>> {
        let path = agreement(id, "sponsored-actions/buyer-withdraw");
        self.post(&path, body, idempotency_key).await
    }

    /// Submits any signed authorization to its sponsored endpoint under `idempotency_key`.
    pub async fn sponsor(
        &self,
        id: B256,
        signed: &SignedAction,
        idempotency_key: &str,
    ) -> Result<Written<RelayView>> {
        match signed {
            SignedAction::InitiateClose(body) => {
                self.sponsor_initiate_close(id, body, idempotency_key).await
            }
            SignedAction::SellerClaim(body) => {
                self.sponsor_seller_claim(id, body, idempotency_key).await
            }
            SignedAction::BuyerWithdraw(body) => {
                self.sponsor_buyer_withdraw(id, body, idempotency_key).await
            }
        }
    }

    /// `GET /usage-agreements/{id}/sponsored-actions/{relay_id}`.
    pub async fn sponsored_action(&self, id: B256, relay_id: &str) -> Result<RelayView> {
        let path = agreement(id, &format!("sponsored-actions/{relay_id}"));
        self.get(&path, &()).await
    }

    /// Polls a sponsored action until `done` holds for it.
    pub async fn wait_sponsored_action(
        &self,
        id: B256,
        relay_id: &str,
        timeout: Duration,
        done: impl Fn(&RelayView) -> bool,
    ) -> Result<RelayView> {
        let started = Instant::now();
        loop {
            let view = self.sponsored_action(id, relay_id).await?;
            if done(&view) {
                return Ok(view);
            }
            let last = format!("relay {relay_id} is {}", view.status);
            pause(started, timeout, last).await?;
        }
    }

    // ---- keys ------------------------------------------------------------------------------

    /// `POST /agents/{agent_id}/api-keys/{key_id}/revoke` under `idempotency_key` (an owner's
    /// JWT as the token).
    pub async fn revoke_api_key(
        &self,
        agent_id: &str,
        key_id: &str,
        body: &RevokeRequest,
        idempotency_key: &str,
    ) -> Result<Written<RevocationView>> {
        let path = format!("agents/{agent_id}/api-keys/{key_id}/revoke");
        self.post(&path, body, idempotency_key).await
    }

    // ---- operations ------------------------------------------------------------------------

    /// `GET /health`.
    pub async fn health(&self) -> Result<Health> {
        self.get("health", &()).await
    }

    /// `GET /ready` (a problem while the index is not ready).
    pub async fn ready(&self) -> Result<Ready> {
        self.get("ready", &()).await
    }

    /// `GET /metrics`, the Prometheus text.
    pub async fn metrics(&self) -> Result<String> {
        let answer = self.send_raw(Method::GET, "metrics", &[], None).await?;
        check("GET metrics", &answer)?;
        Ok(answer.text())
    }

    /// `GET /openapi.json`, the OpenAPI document.
    pub async fn openapi(&self) -> Result<serde_json::Value> {
        self.get("openapi.json", &()).await
    }

    // ---- the plumbing ----------------------------------------------------------------------

    /// Sends any request: `path` is relative to the base (a leading `/` is allowed, a query
    /// string too), `headers` are added as given, `body` is sent as JSON. The answer comes back
    /// as received, whatever its status.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<RawAnswer> {
        let url = self.url(path)?;
        let mut request = self.http.request(method, url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )
                .body(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await?.to_vec();
        Ok(RawAnswer {
            status,
            headers,
            body,
        })
    }

    fn url(&self, path: &str) -> Result<Url> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|err| Error::Url(format!("{path}: {err}")))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, query: &impl Serialize) -> Result<T> {
        let path = with_query(path, query)?;
        let answer = self.send_raw(Method::GET, &path, &[], None).await?;
        decode(&format!("GET {path}"), &answer)
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
        idempotency_key: &str,
    ) -> Result<Written<T>> {
        self.write(Method::POST, path, body, idempotency_key).await
    }

    async fn write<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &impl Serialize,
        idempotency_key: &str,
    ) -> Result<Written<T>> {
        let request = format!("{method} {path}");
        let body = serde_json::to_vec(body).map_err(|err| Error::Unexpected {
            request: request.clone(),
            status: 0,
            detail: format!("the body does not serialize: {err}"),
        })?;
        let headers = [(IDEMPOTENCY_KEY, idempotency_key)];
        let answer = self.send_raw(method, path, &headers, Some(body)).await?;
        let body = decode(&request, &answer)?;
        Ok(Written {
            status: answer.status.as_u16(),
            replayed: answer.header(IDEMPOTENCY_REPLAYED) == Some("true"),
            body,
        })
    }
}

fn agreement(id: B256, rest: &str) -> String {
    format!("usage-agreements/{id}/{rest}")
}

/// `path` with `query`'s fields (a struct of strings, numbers and options) as its query string.
fn with_query(path: &str, query: &impl Serialize) -> Result<String> {
    let fields = match serde_json::to_value(query) {
        Ok(serde_json::Value::Object(fields)) => fields,
        Ok(serde_json::Value::Null) => return Ok(path.to_owned()),
        Ok(other) => return Err(Error::Url(format!("a query must be a struct, not {other}"))),
        Err(err) => return Err(Error::Url(format!("the query does not serialize: {err}"))),
    };
    let mut url = Url::parse("pactum:/").map_err(|err| Error::Url(err.to_string()))?;
    {
        let mut pairs = url.query_pairs_mut();
        for (name, value) in &fields {
            match value {
                serde_json::Value::Null => {}
                serde_json::Value::String(s) => {
                    pairs.append_pair(name, s);
                }
                other => {
                    pairs.append_pair(name, &other.to_string());
                }
            }
        }
    }
    Ok(match url.query() {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path.to_owned(),
    })
}

/// The problem of a failed answer, or the answer itself if it succeeded.
fn check(request: &str, answer: &RawAnswer) -> Result<()> {
    if answer.status.is_success() {
        return Ok(());
    }
    match serde_json::from_slice::<Problem>(&answer.body) {
        Ok(problem) => Err(Error::Problem(Box::new(problem))),
        Err(_) => Err(Error::Unexpected {
            request: request.to_owned(),
            status: answer.status.as_u16(),
            detail: format!("not a problem document: {}", preview(&answer.body)),
        }),
    }
}

fn decode<T: DeserializeOwned>(request: &str, answer: &RawAnswer) -> Result<T> {
    check(request, answer)?;
    serde_json::from_slice(&answer.body).map_err(|err| Error::Unexpected {
        request: request.to_owned(),
        status: answer.status.as_u16(),
        detail: format!("{err}: {}", preview(&answer.body)),
    })
}

fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

async fn pause(started: Instant, timeout: Duration, last: String) -> Result<()> {
    if started.elapsed() >= timeout {
        return Err(Error::Timeout {
            waited: started.elapsed(),
            last,
        });
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_carries_the_given_fields_encoded_and_skips_the_rest() {
        let params = OptionsParams {
            recipient: Some("0xAb&c=d".into()),
            deadline: Some(77),
            ..OptionsParams::of(pactum_api_types::SettlementAction::SellerClaim)
        };
        assert_eq!(
            with_query("usage-agreements/x/settlement-action-options", &params).unwrap(),
            "usage-agreements/x/settlement-action-options?action=seller_claim&deadline=77&recipient=0xAb%26c%3Dd"
        );
        assert_eq!(with_query("health", &()).unwrap(), "health");
        assert_eq!(
            with_query("x", &ClaimParams::default()).unwrap(),
            "x",
            "an all-default query adds nothing"
        );
    }

    #[test]
    fn paths_join_below_the_base_path() {
        let api = Client::new("http://127.0.0.1:9/prefix").unwrap();
        assert_eq!(
            api.url("/health").unwrap().as_str(),
            "http://127.0.0.1:9/prefix/health"
        );
        let api = Client::new("http://127.0.0.1:9").unwrap();
        assert_eq!(
            api.url(&agreement(B256::ZERO, "escrow-status"))
                .unwrap()
                .path(),
            format!("/usage-agreements/{}/escrow-status", B256::ZERO)
        );
        assert!(matches!(Client::new("not a url"), Err(Error::Url(_))));
    }

    fn answer(status: u16, body: &str) -> RawAnswer {
        RawAnswer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_problem_answer_is_an_error_with_its_code() {
        let body = r#"{"type":"urn:pactum:problem:agreement_not_found","title":"Not found","status":404,"code":"agreement_not_found","detail":"no such agreement"}"#;
        let err = decode::<Health>("GET x", &answer(404, body)).unwrap_err();
        assert_eq!(err.code(), Some("agreement_not_found"));
        assert_eq!(err.status(), Some(404));
    }

    #[test]
    fn an_answer_missing_a_field_fails_where_it_is_decoded() {
        let err = decode::<Ready>("GET ready", &answer(200, r#"{"status":"ready"}"#)).unwrap_err();
        assert!(
            matches!(&err, Error::Unexpected { status: 200, detail, .. } if detail.contains("indexed_block")),
            "{err}"
        );
        let err = decode::<Health>("GET health", &answer(502, "Bad Gateway")).unwrap_err();
        assert!(
            matches!(err, Error::Unexpected { status: 502, .. }),
            "{err}"
        );
    }
}
