//! Webhooks: owners' endpoints, their deliveries, and the payload of every event type.

use pactum_core::webhook::{DeliveryStatus, EndpointStatus, EventType};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `POST /agents/{agent_id}/webhooks`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where deliveries go: an absolute `https` URL (`http` where the operator allows it). It
    /// must not resolve to a private, loopback or link-local address unless the operator
    /// allows those.
    pub url: String,
    /// The event types to deliver; absent: every type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
    /// A note for the owner (at most 500 characters).
    #[serde(default)]
    pub description: String,
}

/// `PATCH /agents/{agent_id}/webhooks/{webhook_id}`: the fields to change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    /// A new URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// New event types (an empty list is refused; send `all_event_types: true` for every type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
    /// `true`: deliver every event type from now on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_event_types: Option<bool>,
    /// A new note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `false` disables the endpoint (its pending deliveries fail); `true` enables it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// An endpoint (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookView {
    /// `whk_…`.
    pub webhook_id: String,
    /// The agent whose events it receives.
    pub agent_id: String,
    /// Where deliveries go.
    pub url: String,
    /// The owner's note.
    pub description: String,
    /// The types delivered; absent: every type.
    pub event_types: Option<Vec<EventType>>,
    /// `enabled` or `disabled`.
    pub status: EndpointStatus,
    /// Why it is disabled: by its owner, or after every delivery failed for five days.
    pub disabled_reason: Option<String>,
    /// When it was disabled (RFC 3339, UTC).
    pub disabled_at: Option<String>,
    /// Since when every attempt to it failed (RFC 3339, UTC); absent while it answers.
    pub failing_since: Option<String>,
    /// While a rotated secret still signs beside the current one: until when (RFC 3339, UTC).
    pub previous_secret_expires_at: Option<String>,
    /// Who created it (`owner:<id>`).
    pub created_by: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub updated_at: String,
}

/// A new endpoint, or a rotated secret: the signing secret is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookWithSecret {
    /// The endpoint.
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_<base64>`: verify deliveries with it (Standard Webhooks). Not shown again.
    pub secret: String,
}

/// An agent's endpoints, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WebhookList {
    /// Every endpoint of the agent (at most 20).
    pub webhooks: Vec<WebhookView>,
}

/// `POST .../rotate-secret`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RotateSecret {
    /// How long the current secret keeps signing beside the new one: 0 to 604800 seconds
    /// (default 86400).
    pub overlap_seconds: Option<u64>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttemptLog {
    /// When it started (RFC 3339, UTC).
    pub started_at: String,
    /// How long it took, in milliseconds.
    pub duration_ms: u32,
    /// The answer's status, if one came (2xx: delivered).
    pub status_code: Option<u16>,
    /// Why there was no answer (timeout, connection refused, forbidden destination, ...).
    pub error: Option<String>,
    /// The first 4 KiB of the answer's body.
    pub response: Option<String>,
}

/// A delivery: one message (event) to one endpoint, with every attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryView {
    /// `dlv_…`.
    pub delivery_id: String,
    /// The `webhook-id` of every attempt (receivers deduplicate by it).
    pub message_id: String,
    /// The event type.
    pub event_type: String,
    /// The endpoint.
    pub webhook_id: String,
    /// Its URL.
    pub url: String,
    /// `pending` (another attempt is due), `succeeded` or `failed` (the schedule is spent).
    pub status: DeliveryStatus,
    /// Attempts made, replays included.
    pub attempts: u32,
    /// When the next attempt is due (RFC 3339, UTC), while pending.
    pub next_attempt_at: Option<String>,
    /// When it succeeded (RFC 3339, UTC).
    pub delivered_at: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// Every attempt, oldest first.
    pub attempt_log: Vec<AttemptLog>,
}

/// A page of deliveries, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryPage {
    /// This page.
    pub deliveries: Vec<DeliveryView>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// Filters and paging of `GET /agents/{agent_id}/webhooks/deliveries`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListDeliveries {
    /// Only deliveries with this status (`failed`: what to look at first).
    pub status: Option<DeliveryStatus>,
    /// Only deliveries to this endpoint.
    pub webhook_id: Option<String>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    #[schema(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    #[schema(pattern = "^c[1-9a-f][0-9a-f]{0,14}$")]
    #[param(pattern = "^c[1-9a-f][0-9a-f]{0,14}$")]
    pub cursor: Option<String>,
}

/// The body of an `agreement.*` event: one history event of a usage agreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgreementEventPayload {
    /// `agreement.<kind>`.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When the event was recorded (RFC 3339, UTC).
    pub timestamp: String,
    /// The event.
    pub data: AgreementEventData,
}

/// What an `agreement.*` event says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgreementEventData {
    /// The history event's id (increasing per agreement).
    pub event_id: i64,
    /// `agr_…`.
    pub agreement_id: String,
    /// The escrow's id, once accepted.
    pub onchain_agreement_id: Option<String>,
    /// The chain.
    pub chain_id: u64,
    /// The buyer's agent.
    pub buyer_agent_id: String,
    /// The seller's agent.
    pub seller_agent_id: String,
    /// The history event's kind.
    pub kind: crate::EventKind,
    /// The agreement's status once it happened.
    pub status: crate::LifecycleStatus,
    /// Who caused it: `agent:<id>`, `owner:<id>`, `chain`, `relayer` or `system`.
    pub actor: String,
    /// The event's details, as in the agreement's history.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// The transaction, for on-chain events.
    pub tx_hash: Option<String>,
    /// Its block, for on-chain events.
    pub block_number: Option<u64>,
}

/// The body of a `sponsored_action.*` event: a sponsored action was mined, or given up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SponsoredActionPayload {
    /// `sponsored_action.confirmed` or `sponsored_action.failed`.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When it was decided (RFC 3339, UTC).
    pub timestamp: String,
    /// The action.
    pub data: SponsoredActionData,
}

/// What a `sponsored_action.*` event says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SponsoredActionData {
    /// `rel_…`.
    pub relay_id: String,
    /// `activate`, `initiate_close`, `seller_claim` or `buyer_withdraw`.
    pub action: crate::ActionKind,
    /// `confirmed` or `failed`.
    pub state: crate::JobState,
    /// The chain.
    pub chain_id: u64,
    /// The escrow's id.
    pub onchain_agreement_id: String,
    /// The usage agreement's id, when the escrow is one of the API's.
    pub agreement_id: Option<String>,
    /// The party whose signature it carried.
    pub signer: String,
    /// Who asked for it (`agent:<id>` or `owner:<id>`).
    pub requested_by: String,
    /// The transaction mined, if one was.
    pub tx_hash: Option<String>,
    /// Its block.
    pub block_number: Option<u64>,
    /// Its gas.
    pub gas_used: Option<u64>,
    /// Why it failed.
    pub failure_code: Option<String>,
    /// The failure in words.
    pub failure_detail: Option<String>,
}

/// The body of a `receipt.issued` event: a receipt was issued for a money movement final on
/// chain (fetch it with `GET /receipts/{receipt_id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptIssuedPayload {
    /// `receipt.issued`.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When it was issued (RFC 3339, UTC).
    pub timestamp: String,
    /// The receipt.
    pub data: ReceiptIssuedData,
}

/// What a `receipt.issued` event says. Addresses and hashes are lowercase `0x` hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptIssuedData {
    /// `rcp_…`.
    pub receipt_id: String,
    /// What moved.
    pub kind: pactum_core::receipt::ReceiptKind,
    /// The chain.
    pub chain_id: u64,
    /// The escrow's agreement id.
    pub onchain_agreement_id: String,
    /// The usage agreement's id, when the escrow is one of the API's.
    pub agreement_id: Option<String>,
    /// From.
    pub payer: String,
    /// To.
    pub payee: String,
    /// The token.
    pub token: String,
    /// How much (token base units, decimal).
    pub amount: String,
    /// The transaction.
    pub tx_hash: String,
    /// The log's index in its block.
    pub log_index: u64,
    /// The block.
    pub block_number: u64,
}
