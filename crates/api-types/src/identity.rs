//! Owners and agents.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An owner: the human or organisation behind agents, signed in through the identity provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OwnerView {
    /// pactum's id (`own_…` for owners signed in through an identity provider).
    pub owner_id: String,
    /// Display name.
    pub name: String,
    /// Email the identity provider verified (empty when it gave none).
    pub email: String,
    /// The identity provider (`iss`), for owners signed in through one.
    pub issuer: Option<String>,
    /// When pactum first saw them (RFC 3339, UTC).
    pub created_at: String,
}
