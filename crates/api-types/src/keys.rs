//! API keys.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Body of a revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// Why the key is revoked (kept with the revocation; 1 to 500 characters).
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// A recorded revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RevocationView {
    /// Revocation id (one per effect).
    pub revocation_id: String,
    /// The revoked key.
    pub key_id: String,
    /// The agent it belonged to.
    pub agent_id: String,
    /// The owner who revoked it.
    pub revoked_by: String,
    /// Why.
    pub reason: String,
    /// When (RFC 3339, UTC).
    pub revoked_at: String,
}
