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

/// `GET /agents/registration-message`: what the agent's wallet signs to prove it acts for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RegistrationParams {
    /// The agent id the owner chooses.
    pub agent_id: String,
    /// The wallet the agent acts from.
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    #[param(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub wallet_address: String,
    /// Until when the proof may be used (unix seconds; at most an hour ahead). Default: in 15
    /// minutes.
    #[serde(default)]
    pub deadline: Option<u64>,
}

/// The registration the wallet signs (`eth_signTypedData_v4`), with its digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RegistrationMessage {
    /// The owner registering.
    pub owner_id: String,
    /// The agent.
    pub agent_id: String,
    /// The wallet.
    pub wallet_address: String,
    /// The proof's deadline (unix seconds).
    pub deadline: u64,
    /// `AgentRegistration` typed data and its digest.
    pub registration: crate::TypedMessage,
}

/// `POST /agents`: an owner registers an agent acting from a wallet, with the wallet's proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterAgent {
    /// The agent id (3 to 64 of `A-Z a-z 0-9 _ . -`, starting with a letter or digit).
    pub agent_id: String,
    /// Display name.
    pub name: String,
    /// The wallet the agent acts from (one agent per wallet).
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub wallet_address: String,
    /// The wallet's signature of the `AgentRegistration` (ECDSA, or accepted by the wallet's
    /// ERC-1271 `isValidSignature`).
    #[schema(pattern = "^0x([0-9a-fA-F]{2})+$")]
    pub wallet_signature: String,
    /// The registration's deadline, as signed.
    pub deadline: u64,
}

/// An agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentView {
    /// Id.
    pub agent_id: String,
    /// Its owner.
    pub owner_id: String,
    /// Display name.
    pub name: String,
    /// The wallet it acts from.
    pub wallet_address: String,
    /// Whether the wallet proved itself at registration (agents that did not cannot sign in).
    pub wallet_proven: bool,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// Its API keys not revoked.
    pub active_api_keys: i64,
}

/// `GET /agents`: a page of the owner's agents, by id.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, utoipa::IntoParams,
)]
#[into_params(parameter_in = Query)]
pub struct ListAgents {
    /// At most this many (1 to 100, default 50).
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    #[schema(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page (the last agent id it listed).
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]{2,63}$")]
    #[param(pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]{2,63}$")]
    pub cursor: Option<String>,
}

/// A page of agents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentPage {
    /// The agents, by id.
    pub agents: Vec<AgentView>,
    /// Where the next page starts, if there is one.
    pub next_cursor: Option<String>,
}

/// `POST /agents/{agent_id}/api-keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// What the key is for (at most 100 characters).
    #[serde(default)]
    pub label: String,
}

/// A new API key: the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NewApiKey {
    /// Key id (the part after `pk_`).
    pub key_id: String,
    /// The whole key, `pk_<id>_<secret>`: store it now, it is not shown again.
    pub api_key: String,
    /// Its label.
    pub label: String,
    /// The agent.
    pub agent_id: String,
}

/// An API key's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyView {
    /// Key id.
    pub key_id: String,
    /// Its label.
    pub label: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// When revoked, if it was.
    pub revoked_at: Option<String>,
}

/// An agent's API keys, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyList {
    /// The keys.
    pub keys: Vec<ApiKeyView>,
}

/// An agent's policy as in force, with its version (`ETag: "p<version>"`; version 0 is the
/// default: no rule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyView {
    /// The agent.
    pub agent_id: String,
    /// The version in force (0: none ever set, the default).
    pub version: i64,
    /// The same version as an entity tag, for `If-Match`.
    pub etag: String,
    /// The rules (absent ones do not limit).
    pub policy: pactum_core::policy::Policy,
    /// Who wrote this version (`owner:<id>`), if anyone.
    pub updated_by: Option<String>,
    /// When (RFC 3339, UTC), if ever.
    pub updated_at: Option<String>,
}
