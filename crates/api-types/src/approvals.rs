//! Approvals: the requests an owner's policy sends to the owner before its agent commits.

use pactum_core::approval::ApprovalStatus;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// An approval request: an agreement of the agent waiting for its owner's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalView {
    /// `apr_…`.
    pub request_id: String,
    /// The agent whose owner decides (the buyer).
    pub agent_id: String,
    /// The agreement waiting in `pending_approval` (then `proposed`, `rejected` or `expired`).
    pub agreement_id: String,
    /// `pending`, `approved`, `rejected` or `expired`, as at the time of the answer.
    pub status: ApprovalStatus,
    /// The policy rule that asked (`approval_threshold_cents`).
    pub rule: String,
    /// The rule's figure, in cents.
    pub threshold_cents: u64,
    /// The agreement's total (quantity × unit price), in cents.
    pub amount_cents: u64,
    /// The seller's agent.
    pub counterparty_agent_id: String,
    /// The service.
    pub service_id: String,
    /// Units.
    pub quantity: u64,
    /// What a unit is.
    pub unit: String,
    /// Cents per unit.
    pub price_per_unit_cents: u64,
    /// Unix seconds: no decision from then on (the agreement's terms expire then).
    pub expires_at: u64,
    /// Why it was rejected.
    pub reason: Option<String>,
    /// Who decided (`owner:<id>`).
    pub decided_by: Option<String>,
    /// When (RFC 3339, UTC).
    pub decided_at: Option<String>,
    /// When it was asked (RFC 3339, UTC).
    pub created_at: String,
}

/// A page of approval requests, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalPage {
    /// This page.
    pub approvals: Vec<ApprovalView>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// Filters and paging of `GET /agents/{agent_id}/approvals`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListApprovals {
    /// Only requests with this status (`pending`: still decidable).
    pub status: Option<ApprovalStatus>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    #[schema(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    #[schema(pattern = "^c[1-9a-f][0-9a-f]{0,14}$")]
    #[param(pattern = "^c[1-9a-f][0-9a-f]{0,14}$")]
    pub cursor: Option<String>,
}

/// The reason of `POST /agents/{agent_id}/approvals/{request_id}/reject`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RejectApproval {
    /// Why (1 to 500 characters): recorded on the request and as the agreement's rejection
    /// reason.
    pub reason: Option<String>,
}
