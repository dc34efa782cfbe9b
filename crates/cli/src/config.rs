//! Service configuration: a TOML file, then environment variables, each overriding the one
//! before (defaults < file < environment). Validated at startup; every error names the setting.
//!
//! | setting | file key | environment | default |
//! |---|---|---|---|
//! | database URL | `database.url` | `PACTUM_DATABASE_URL` | — (required) |
//! | the API's pool (requests, sponsored acceptance) | `database.api_connections` | `PACTUM_DATABASE_API_CONNECTIONS` | 16 |
//! | the indexer's pool | `database.indexer_connections` | `PACTUM_DATABASE_INDEXER_CONNECTIONS` | 4 |
//! | the relayer workers' pool | `database.relayer_connections` | `PACTUM_DATABASE_RELAYER_CONNECTIONS` | 8 |
//! | node | `chain.rpc_url` | `PACTUM_CHAIN_RPC_URL` | — (required) |
//! | chain id | `chain.chain_id` | `PACTUM_CHAIN_ID` | — (required) |
//! | escrow | `chain.escrow` | `PACTUM_CHAIN_ESCROW` | — (required) |
//! | fee collector | `chain.fee_collector` | `PACTUM_CHAIN_FEE_COLLECTOR` | — (required) |
//! | deployment block | `chain.start_block` | `PACTUM_CHAIN_START_BLOCK` | — (required) |
//! | trusted agreement tokens (comma-separated in the environment) | `chain.tokens` | `PACTUM_CHAIN_TOKENS` | `chain.token` if set, else none |
//! | token, oracle (demo only) | `chain.token`, `chain.sanctions_oracle` | — | — |
//! | blocks per batch | `indexer.batch_blocks` | `PACTUM_INDEXER_BATCH_BLOCKS` | 2000 |
//! | confirmations | `indexer.confirmations` | `PACTUM_INDEXER_CONFIRMATIONS` | 12 |
//! | use `finalized` tag | `indexer.use_finalized_tag` | `PACTUM_INDEXER_USE_FINALIZED_TAG` | true |
//! | reorg window | `indexer.reorg_window` | `PACTUM_INDEXER_REORG_WINDOW` | 128 |
//! | poll interval | `indexer.poll_interval_ms` | `PACTUM_INDEXER_POLL_INTERVAL_MS` | 250 |
//! | API address | `api.listen` | `PACTUM_API_LISTEN` | `127.0.0.1:8080` |
//! | `/metrics` on its own address (then not on `api.listen`) | `api.metrics_listen` | `PACTUM_API_METRICS_LISTEN` | none: on `api.listen` |
//! | owners' identity provider: its JWKS URL (RS256/ES256 tokens) | `api.jwks_url` | `PACTUM_API_JWKS_URL` | none |
//! | … or a file holding its JWKS (read again at each refresh) | `api.jwks_file` | `PACTUM_API_JWKS_FILE` | none |
//! | local stack only: owner JWT key (HS256, ≥ 32 bytes; not with a provider) | `api.jwt_secret` | `PACTUM_API_JWT_SECRET` | none: owner JWTs refused |
//! | required JWT `iss` | `api.jwt_issuer` | `PACTUM_API_JWT_ISSUER` | required with a provider; else not checked |
//! | required JWT `aud` | `api.jwt_audience` | `PACTUM_API_JWT_AUDIENCE` | required with a provider; else not checked |
//! | longest provider token lifetime (`exp - iat`, s) | `api.jwt_max_lifetime_secs` | `PACTUM_API_JWT_MAX_LIFETIME_SECS` | 86400 |
//! | refuse provider tokens without `email_verified: true` | `api.jwt_require_verified_email` | `PACTUM_API_JWT_REQUIRE_VERIFIED_EMAIL` | true |
//! | JWKS refresh interval (s) | `api.jwks_refresh_secs` | `PACTUM_API_JWKS_REFRESH_SECS` | 600 |
//! | least interval between refetches for an unknown `kid` (s) | `api.jwks_unknown_kid_refetch_secs` | `PACTUM_API_JWKS_UNKNOWN_KID_REFETCH_SECS` | 30 |
//! | `/ready` lag limit (blocks) | `api.max_lag_blocks` | `PACTUM_API_MAX_LAG_BLOCKS` | 64 |
//! | how long an idempotency key stays taken by a request whose process died (s, at least 3) | `api.idempotency_lease_secs` | `PACTUM_API_IDEMPOTENCY_LEASE_SECS` | 60 |
//! | relayer signer keys (hex, comma-separated in the environment) | `relayer.keys` | `PACTUM_RELAYER_KEYS` | none: no relayer |
//! | confirmations before `confirmed` | `relayer.confirmations` | `PACTUM_RELAYER_CONFIRMATIONS` | 1 |
//! | worker poll interval | `relayer.poll_interval_ms` | `PACTUM_RELAYER_POLL_INTERVAL_MS` | 200 |
//! | re-check / fee-bump after | `relayer.stuck_after_ms` | `PACTUM_RELAYER_STUCK_AFTER_MS` | 15000 |
//! | fee bump (%) | `relayer.fee_bump_percent` | `PACTUM_RELAYER_FEE_BUMP_PERCENT` | 15 |
//! | tip (wei/gas) | `relayer.priority_fee_wei` | `PACTUM_RELAYER_PRIORITY_FEE_WEI` | 1 gwei |
//! | jobs per round | `relayer.batch_size` | `PACTUM_RELAYER_BATCH_SIZE` | 64 |
//! | gas ceiling per action | `relayer.max_gas_per_action` | `PACTUM_RELAYER_MAX_GAS_PER_ACTION` | 400000 |
//! | actions per agreement | `relayer.max_actions_per_agreement` | `PACTUM_RELAYER_MAX_ACTIONS_PER_AGREEMENT` | 8 |
//! | actions per party per day | `relayer.max_actions_per_party_per_day` | `PACTUM_RELAYER_MAX_ACTIONS_PER_PARTY_PER_DAY` | 500 |
//! | sponsored actions per API principal per 24 h | `relayer.max_actions_per_principal_per_day` | `PACTUM_RELAYER_MAX_ACTIONS_PER_PRINCIPAL_PER_DAY` | 1000 |
//! | gas per API principal per 24 h | `relayer.max_gas_per_principal_per_day` | `PACTUM_RELAYER_MAX_GAS_PER_PRINCIPAL_PER_DAY` | 25000000 |
//! | sponsored actions per owner (all its principals) per 24 h | `relayer.max_actions_per_owner_per_day` | `PACTUM_RELAYER_MAX_ACTIONS_PER_OWNER_PER_DAY` | 2000 |
//! | gas per owner per 24 h | `relayer.max_gas_per_owner_per_day` | `PACTUM_RELAYER_MAX_GAS_PER_OWNER_PER_DAY` | 50000000 |
//! | reverted actions per party per day | `relayer.max_reverts_per_party_per_day` | `PACTUM_RELAYER_MAX_REVERTS_PER_PARTY_PER_DAY` | 3 |
//! | daily gas budget | `relayer.daily_gas_budget` | `PACTUM_RELAYER_DAILY_GAS_BUDGET` | 500000000 |
//! | minimum signer balance (wei) | `relayer.min_signer_balance_wei` | `PACTUM_RELAYER_MIN_SIGNER_BALANCE_WEI` | 5·10^17 |
//! | minimum deadline margin (s) | `relayer.min_deadline_margin_secs` | `PACTUM_RELAYER_MIN_DEADLINE_MARGIN_SECS` | 60 |
//! | fee cap (wei/gas) | `relayer.max_fee_per_gas_wei` | `PACTUM_RELAYER_MAX_FEE_PER_GAS_WEI` | 500 gwei |
//! | sponsored tokens (comma-separated in the environment) | `relayer.tokens` | `PACTUM_RELAYER_TOKENS` | any |
//! | token of new usage agreements | `agreements.token` | `PACTUM_AGREEMENTS_TOKEN` | `chain.token`, else the only `chain.tokens`; none: proposals refused |
//! | platform fee (basis points, at most 1,000) | `agreements.infra_fee_bps` | `PACTUM_AGREEMENTS_INFRA_FEE_BPS` | 100 (1 %) |
//! | least platform fee (token base units) | `agreements.infra_fee_minimum` | `PACTUM_AGREEMENTS_INFRA_FEE_MINIMUM` | 0 |
//! | the webhook workers' pool | `database.webhooks_connections` | `PACTUM_DATABASE_WEBHOOKS_CONNECTIONS` | 4 |
//! | webhook workers in `pactum serve` | `webhooks.workers` | `PACTUM_WEBHOOKS_WORKERS` | true |
//! | webhook deliveries attempted at once (per process) | `webhooks.concurrency` | `PACTUM_WEBHOOKS_CONCURRENCY` | 64 |
//! | endpoints on plain `http` | `webhooks.allow_http` | `PACTUM_WEBHOOKS_ALLOW_HTTP` | false |
//! | deliveries to private, loopback and link-local addresses | `webhooks.allow_private_destinations` | `PACTUM_WEBHOOKS_ALLOW_PRIVATE_DESTINATIONS` | false |
//! | connect timeout (ms) | `webhooks.connect_timeout_ms` | `PACTUM_WEBHOOKS_CONNECT_TIMEOUT_MS` | 5000 |
//! | whole attempt timeout (ms) | `webhooks.timeout_ms` | `PACTUM_WEBHOOKS_TIMEOUT_MS` | 15000 |
//! | lease of a delivery being attempted (s) | `webhooks.lease_secs` | `PACTUM_WEBHOOKS_LEASE_SECS` | 60 |
//! | the receipt key (hex; `pactum serve` issues receipts with it, the API verifies against its address) | `receipts.key` | `PACTUM_RECEIPTS_KEY` | none: no receipts |
//! | retired receipt signers (their receipts still verify) | `receipts.retired_signers` | `PACTUM_RECEIPTS_RETIRED_SIGNERS` (comma-separated) | none |

use std::{path::Path, str::FromStr, time::Duration};

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use eyre::{WrapErr, bail, eyre};
use serde::Deserialize;

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Config {
    pub(crate) database: Database,
    pub(crate) chain: Chain,
    pub(crate) indexer: Indexer,
    pub(crate) api: Api,
    pub(crate) relayer: Relayer,
    pub(crate) agreements: Agreements,
    pub(crate) webhooks: Webhooks,
    pub(crate) receipts: Receipts,
}

/// `[receipts]`. Its `Debug` never shows the key.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Receipts {
    /// The private key receipts are signed with.
    pub(crate) key: Option<String>,
    /// Addresses of retired receipt keys (their receipts still verify).
    pub(crate) retired_signers: Vec<Address>,
}

impl std::fmt::Debug for Receipts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receipts")
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("retired_signers", &self.retired_signers)
            .finish()
    }
}

/// `[webhooks]`: delivery workers and where deliveries may go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Webhooks {
    pub(crate) workers: bool,
    pub(crate) concurrency: usize,
    pub(crate) allow_http: bool,
    pub(crate) allow_private_destinations: bool,
    pub(crate) connect_timeout_ms: u64,
    pub(crate) timeout_ms: u64,
    pub(crate) lease_secs: u64,
}

impl Default for Webhooks {
    fn default() -> Self {
        Self {
            workers: true,
            concurrency: 64,
            allow_http: false,
            allow_private_destinations: false,
            connect_timeout_ms: 5_000,
            timeout_ms: 15_000,
            lease_secs: 60,
        }
    }
}

/// `[agreements]`: what new usage agreements are made in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Agreements {
    /// The token (default: `chain.token`, else the only entry of `chain.tokens`).
    pub(crate) token: Option<Address>,
    /// The platform fee, in basis points of the escrowed amount.
    pub(crate) infra_fee_bps: u16,
    /// The least platform fee, in token base units.
    pub(crate) infra_fee_minimum: u128,
}

impl Default for Agreements {
    fn default() -> Self {
        let fees = pactum_core::agreement::terms::FeeSchedule::LOCAL;
        Self {
            token: None,
            infra_fee_bps: fees.bps,
            infra_fee_minimum: fees.minimum,
        }
    }
}

/// `[relayer]`. Its `Debug` shows how many keys there are, never a key.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Relayer {
    /// Private keys of the gas-paying accounts (one worker each).
    pub(crate) keys: Vec<String>,
    pub(crate) confirmations: u64,
    pub(crate) poll_interval_ms: u64,
    pub(crate) stuck_after_ms: u64,
    pub(crate) fee_bump_percent: u64,
    pub(crate) priority_fee_wei: u128,
    pub(crate) batch_size: u32,
    pub(crate) max_gas_per_action: u64,
    pub(crate) max_actions_per_agreement: u64,
    pub(crate) max_actions_per_party_per_day: u64,
    pub(crate) max_actions_per_principal_per_day: u64,
    pub(crate) max_gas_per_principal_per_day: u64,
    pub(crate) max_actions_per_owner_per_day: u64,
    pub(crate) max_gas_per_owner_per_day: u64,
    pub(crate) max_reverts_per_party_per_day: u64,
    pub(crate) daily_gas_budget: u64,
    pub(crate) min_signer_balance_wei: u128,
    pub(crate) min_deadline_margin_secs: u64,
    pub(crate) max_fee_per_gas_wei: u128,
    pub(crate) tokens: Vec<Address>,
}

impl std::fmt::Debug for Relayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relayer")
            .field("keys", &format_args!("<{} redacted>", self.keys.len()))
            .field("confirmations", &self.confirmations)
            .field("poll_interval_ms", &self.poll_interval_ms)
            .field("stuck_after_ms", &self.stuck_after_ms)
            .field("fee_bump_percent", &self.fee_bump_percent)
            .field("priority_fee_wei", &self.priority_fee_wei)
            .field("batch_size", &self.batch_size)
            .field("max_gas_per_action", &self.max_gas_per_action)
            .field("max_actions_per_agreement", &self.max_actions_per_agreement)
            .field(
                "max_actions_per_party_per_day",
                &self.max_actions_per_party_per_day,
            )
            .field(
                "max_actions_per_principal_per_day",
                &self.max_actions_per_principal_per_day,
            )
            .field(
                "max_gas_per_principal_per_day",
                &self.max_gas_per_principal_per_day,
            )
            .field(
                "max_actions_per_owner_per_day",
                &self.max_actions_per_owner_per_day,
            )
            .field("max_gas_per_owner_per_day", &self.max_gas_per_owner_per_day)
            .field(
                "max_reverts_per_party_per_day",
                &self.max_reverts_per_party_per_day,
            )
            .field("daily_gas_budget", &self.daily_gas_budget)
            .field("min_signer_balance_wei", &self.min_signer_balance_wei)
            .field("min_deadline_margin_secs", &self.min_deadline_margin_secs)
            .field("max_fee_per_gas_wei", &self.max_fee_per_gas_wei)
            .field("tokens", &self.tokens)
            .finish()
    }
}

impl Default for Relayer {
    fn default() -> Self {
        let settings = pactum_relayer::Settings::new(0, Address::ZERO, Address::ZERO);
        let policy = &settings.policy;
        Self {
            keys: Vec::new(),
            confirmations: settings.confirmations,
            poll_interval_ms: u64::try_from(settings.poll_interval.as_millis()).unwrap_or(200),
            stuck_after_ms: u64::try_from(settings.stuck_after.as_millis()).unwrap_or(15_000),
            fee_bump_percent: settings.fee_bump_percent,
            priority_fee_wei: settings.priority_fee,
            batch_size: settings.batch_size,
            max_gas_per_action: policy.max_gas_per_action,
            max_actions_per_agreement: policy.max_actions_per_agreement,
            max_actions_per_party_per_day: policy.max_actions_per_party_per_day,
            max_actions_per_principal_per_day: policy.max_actions_per_principal_per_day,
            max_gas_per_principal_per_day: policy.max_gas_per_principal_per_day,
            max_actions_per_owner_per_day: policy.max_actions_per_owner_per_day,
            max_gas_per_owner_per_day: policy.max_gas_per_owner_per_day,
            max_reverts_per_party_per_day: policy.max_reverts_per_party_per_day,
            daily_gas_budget: policy.daily_gas_budget,
            min_signer_balance_wei: policy.min_signer_balance.to(),
            min_deadline_margin_secs: policy.min_deadline_margin,
            max_fee_per_gas_wei: policy.max_fee_per_gas,
            tokens: Vec::new(),
        }
    }
}

/// `[api]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Api {
    pub(crate) listen: String,
    pub(crate) metrics_listen: Option<String>,
    pub(crate) jwt_secret: Option<String>,
    pub(crate) jwt_issuer: Option<String>,
    pub(crate) jwt_audience: Option<String>,
    pub(crate) jwks_url: Option<String>,
    pub(crate) jwks_file: Option<String>,
    pub(crate) jwt_max_lifetime_secs: u64,
    pub(crate) jwt_require_verified_email: bool,
    pub(crate) jwks_refresh_secs: u64,
    pub(crate) jwks_unknown_kid_refetch_secs: u64,
    pub(crate) max_lag_blocks: u64,
    pub(crate) idempotency_lease_secs: u64,
}

impl Default for Api {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            metrics_listen: None,
            jwt_secret: None,
            jwt_issuer: None,
            jwt_audience: None,
            jwks_url: None,
            jwks_file: None,
            jwt_max_lifetime_secs: 86_400,
            jwt_require_verified_email: true,
            jwks_refresh_secs: 600,
            jwks_unknown_kid_refetch_secs: 30,
            max_lag_blocks: 64,
            idempotency_lease_secs: 60,
        }
    }
}

/// `[database]`: the URL, and one pool per component so that one's load cannot take another's
/// connections.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Database {
    pub(crate) url: Option<String>,
    /// Replaced by the three pools below; kept only to refuse it with a clear message.
    max_connections: Option<u32>,
    pub(crate) api_connections: u32,
    pub(crate) indexer_connections: u32,
    pub(crate) relayer_connections: u32,
    pub(crate) webhooks_connections: u32,
}

impl Default for Database {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: None,
            api_connections: 16,
            indexer_connections: 4,
            relayer_connections: 8,
            webhooks_connections: 4,
        }
    }
}

/// Which component a pool serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pool {
    /// HTTP requests, including the sponsored path's acceptance.
    Api,
    /// The indexer (its reader and writer overlap: at least two).
    Indexer,
    /// The relayer's workers (a round's reads and writes; each key's lock connection is its own).
    Relayer,
    /// The webhook workers (claims, outcomes, and the notification listener's own connection).
    Webhooks,
}

impl Pool {
    /// The setting's name and its smallest workable size.
    const fn setting(self) -> (&'static str, u32) {
        match self {
            Self::Api => ("database.api_connections", 1),
            Self::Indexer => ("database.indexer_connections", 2),
            Self::Relayer => ("database.relayer_connections", 2),
            Self::Webhooks => ("database.webhooks_connections", 3),
        }
    }
}

/// A path with any `password=` query value hidden.
fn redact_query(path: &str) -> String {
    match path.split_once('?') {
        Some((path, query)) if query.contains("password=") => format!("{path}?<redacted>"),
        _ => path.to_owned(),
    }
}

/// The URL with its password replaced, for logs and `Debug`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{}", redact_query(path)),
            None => url.to_owned(),
        },
        None => format!("{scheme}://{authority}{}", redact_query(path)),
    }
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("rpc_url", &self.rpc_url.as_deref().map(redact_node_url))
            .field("chain_id", &self.chain_id)
            .field("escrow", &self.escrow)
            .field("fee_collector", &self.fee_collector)
            .field("start_block", &self.start_block)
            .field("tokens", &self.tokens)
            .field("token", &self.token)
            .field("sanctions_oracle", &self.sanctions_oracle)
            .finish()
    }
}

/// A node URL for logs: scheme, host and port only (path segments and queries often carry an
/// API key).
fn redact_node_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<redacted>".to_owned();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let hidden = authority.len() < rest.len() || host.len() < authority.len();
    format!(
        "{scheme}://{host}{}",
        if hidden { "/<redacted>" } else { "" }
    )
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("api_connections", &self.api_connections)
            .field("indexer_connections", &self.indexer_connections)
            .field("relayer_connections", &self.relayer_connections)
            .finish()
    }
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("listen", &self.listen)
            .field("metrics_listen", &self.metrics_listen)
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("jwks_url", &self.jwks_url)
            .field("jwks_file", &self.jwks_file)
            .field("jwt_max_lifetime_secs", &self.jwt_max_lifetime_secs)
            .field(
                "jwt_require_verified_email",
                &self.jwt_require_verified_email,
            )
            .field("jwks_refresh_secs", &self.jwks_refresh_secs)
            .field(
                "jwks_unknown_kid_refetch_secs",
                &self.jwks_unknown_kid_refetch_secs,
            )
            .field("max_lag_blocks", &self.max_lag_blocks)
            .field("idempotency_lease_secs", &self.idempotency_lease_secs)
            .finish()
    }
}

/// `[chain]`. Its `Debug` hides the node URL's credentials and query (hosted nodes put API keys
/// there).
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Chain {
    pub(crate) rpc_url: Option<String>,
    pub(crate) chain_id: Option<u64>,
    pub(crate) escrow: Option<Address>,
    pub(crate) fee_collector: Option<Address>,
    pub(crate) start_block: Option<u64>,
    /// The tokens the operator vouches for: an agreement in any other is marked
    /// `token_trusted: false` and not sponsored.
    pub(crate) tokens: Vec<Address>,
    /// The token (development tools; trusted when `tokens` is empty).
    pub(crate) token: Option<Address>,
    /// The sanctions oracle (development tools only).
    pub(crate) sanctions_oracle: Option<Address>,
}

/// `[indexer]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Indexer {
    pub(crate) batch_blocks: u64,
    pub(crate) confirmations: u64,
    pub(crate) use_finalized_tag: bool,
    pub(crate) reorg_window: u64,
    pub(crate) poll_interval_ms: u64,
}

impl Default for Indexer {
    fn default() -> Self {
        Self {
            batch_blocks: 2_000,
            confirmations: 12,
            use_finalized_tag: true,
            reorg_window: 128,
            poll_interval_ms: 250,
        }
    }
}

fn env<T: FromStr>(name: &str) -> eyre::Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(raw) => raw
            .trim()
            .parse()
            .map(Some)
            .map_err(|e| eyre!("environment variable {name}={raw:?} is invalid: {e}")),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(e) => Err(eyre!("environment variable {name}: {e}")),
    }
}

fn set<T: FromStr>(slot: &mut T, name: &str) -> eyre::Result<()>
where
    T::Err: std::fmt::Display,
{
    if let Some(value) = env(name)? {
        *slot = value;
    }
    Ok(())
}

fn set_opt<T: FromStr>(slot: &mut Option<T>, name: &str) -> eyre::Result<()>
where
    T::Err: std::fmt::Display,
{
    if let Some(value) = env(name)? {
        *slot = Some(value);
    }
    Ok(())
}

/// A JWKS URL: `https://`, or `http://` on a loopback address (tests, a local provider).
fn jwks_url(url: &str) -> eyre::Result<String> {
    let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"];
    let ok = url.starts_with("https://")
        || loopback.iter().any(|p| {
            url.strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
        });
    if !ok {
        bail!("api.jwks_url must be https:// (http:// only on a loopback address): {url}");
    }
    Ok(url.to_owned())
}

/// A comma-separated list of addresses from environment variable `name`.
fn addresses(name: &str, list: &str) -> eyre::Result<Vec<Address>> {
    list.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse()
                .map_err(|_| eyre!("{name}: {t:?} is not an address"))
        })
        .collect()
}

impl Config {
    /// The tokens the operator vouches for: `chain.tokens`, else `chain.token`, else none (every
    /// agreement is then marked untrusted and nothing is sponsored).
    pub(crate) fn trusted_tokens(&self) -> pactum_core::TrustedTokens {
        let c = &self.chain;
        let tokens = if c.tokens.is_empty() {
            c.token.into_iter().collect()
        } else {
            c.tokens.clone()
        };
        pactum_core::TrustedTokens::Only(tokens)
    }

    /// The token of new usage agreements: `agreements.token`, else `chain.token`, else the only
    /// entry of `chain.tokens`; an agreement token must be one the operator trusts.
    pub(crate) fn agreement_token(&self) -> eyre::Result<Option<Address>> {
        let c = &self.chain;
        let token = self
            .agreements
            .token
            .or(c.token)
            .or(match c.tokens.as_slice() {
                [only] => Some(*only),
                _ => None,
            });
        if let Some(token) = token
            && !self.trusted_tokens().trusts(token)
        {
            bail!("agreements.token {token} is not one of chain.tokens");
        }
        Ok(token)
    }

    /// The platform fee of new usage agreements, validated.
    pub(crate) fn fee_schedule(&self) -> eyre::Result<pactum_core::agreement::terms::FeeSchedule> {
        pactum_core::agreement::terms::FeeSchedule {
            bps: self.agreements.infra_fee_bps,
            minimum: self.agreements.infra_fee_minimum,
        }
        .validate()
        .map_err(|e| eyre!("agreements.infra_fee_bps: {e}"))
    }

    /// Reads `path` (if given), then applies the environment.
    pub(crate) fn load(path: Option<&Path>) -> eyre::Result<Self> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).wrap_err_with(|| {
                    format!("cannot read configuration file {}", path.display())
                })?;
                toml::from_str(&text).map_err(|e| eyre!("{}: {e}", path.display()))?
            }
            None => Self::default(),
        };
        config.apply_env()?;
        Ok(config)
    }

    fn apply_env(&mut self) -> eyre::Result<()> {
        set_opt(&mut self.database.url, "PACTUM_DATABASE_URL")?;
        // The replaced setting is refused (see `database_url`), not silently ignored.
        set_opt(
            &mut self.database.max_connections,
            "PACTUM_DATABASE_MAX_CONNECTIONS",
        )?;
        set(
            &mut self.database.api_connections,
            "PACTUM_DATABASE_API_CONNECTIONS",
        )?;
        set(
            &mut self.database.indexer_connections,
            "PACTUM_DATABASE_INDEXER_CONNECTIONS",
        )?;
        set(
            &mut self.database.relayer_connections,
            "PACTUM_DATABASE_RELAYER_CONNECTIONS",
        )?;
        set(
            &mut self.database.webhooks_connections,
            "PACTUM_DATABASE_WEBHOOKS_CONNECTIONS",
        )?;
        let w = &mut self.webhooks;
        set(&mut w.workers, "PACTUM_WEBHOOKS_WORKERS")?;
        set(&mut w.concurrency, "PACTUM_WEBHOOKS_CONCURRENCY")?;
        set(&mut w.allow_http, "PACTUM_WEBHOOKS_ALLOW_HTTP")?;
        set(
            &mut w.allow_private_destinations,
            "PACTUM_WEBHOOKS_ALLOW_PRIVATE_DESTINATIONS",
        )?;
        set(
            &mut w.connect_timeout_ms,
            "PACTUM_WEBHOOKS_CONNECT_TIMEOUT_MS",
        )?;
        set(&mut w.timeout_ms, "PACTUM_WEBHOOKS_TIMEOUT_MS")?;
        set(&mut w.lease_secs, "PACTUM_WEBHOOKS_LEASE_SECS")?;
        set_opt(&mut self.receipts.key, "PACTUM_RECEIPTS_KEY")?;
        if let Some(retired) = env::<String>("PACTUM_RECEIPTS_RETIRED_SIGNERS")? {
            self.receipts.retired_signers = addresses("PACTUM_RECEIPTS_RETIRED_SIGNERS", &retired)?;
        }
        set_opt(&mut self.agreements.token, "PACTUM_AGREEMENTS_TOKEN")?;
        set(
            &mut self.agreements.infra_fee_bps,
            "PACTUM_AGREEMENTS_INFRA_FEE_BPS",
        )?;
        set(
            &mut self.agreements.infra_fee_minimum,
            "PACTUM_AGREEMENTS_INFRA_FEE_MINIMUM",
        )?;
        set_opt(&mut self.chain.rpc_url, "PACTUM_CHAIN_RPC_URL")?;
        set_opt(&mut self.chain.chain_id, "PACTUM_CHAIN_ID")?;
        set_opt(&mut self.chain.escrow, "PACTUM_CHAIN_ESCROW")?;
        set_opt(&mut self.chain.fee_collector, "PACTUM_CHAIN_FEE_COLLECTOR")?;
        set_opt(&mut self.chain.start_block, "PACTUM_CHAIN_START_BLOCK")?;
        set(
            &mut self.indexer.batch_blocks,
            "PACTUM_INDEXER_BATCH_BLOCKS",
        )?;
        set(
            &mut self.indexer.confirmations,
            "PACTUM_INDEXER_CONFIRMATIONS",
        )?;
        set(
            &mut self.indexer.use_finalized_tag,
            "PACTUM_INDEXER_USE_FINALIZED_TAG",
        )?;
        set(
            &mut self.indexer.reorg_window,
            "PACTUM_INDEXER_REORG_WINDOW",
        )?;
        set(
            &mut self.indexer.poll_interval_ms,
            "PACTUM_INDEXER_POLL_INTERVAL_MS",
        )?;
        set(&mut self.api.listen, "PACTUM_API_LISTEN")?;
        set_opt(&mut self.api.metrics_listen, "PACTUM_API_METRICS_LISTEN")?;
        set_opt(&mut self.api.jwt_secret, "PACTUM_API_JWT_SECRET")?;
        set_opt(&mut self.api.jwt_issuer, "PACTUM_API_JWT_ISSUER")?;
        set_opt(&mut self.api.jwt_audience, "PACTUM_API_JWT_AUDIENCE")?;
        set_opt(&mut self.api.jwks_url, "PACTUM_API_JWKS_URL")?;
        set_opt(&mut self.api.jwks_file, "PACTUM_API_JWKS_FILE")?;
        set(
            &mut self.api.jwt_max_lifetime_secs,
            "PACTUM_API_JWT_MAX_LIFETIME_SECS",
        )?;
        set(
            &mut self.api.jwt_require_verified_email,
            "PACTUM_API_JWT_REQUIRE_VERIFIED_EMAIL",
        )?;
        set(
            &mut self.api.jwks_refresh_secs,
            "PACTUM_API_JWKS_REFRESH_SECS",
        )?;
        set(
            &mut self.api.jwks_unknown_kid_refetch_secs,
            "PACTUM_API_JWKS_UNKNOWN_KID_REFETCH_SECS",
        )?;
        set(&mut self.api.max_lag_blocks, "PACTUM_API_MAX_LAG_BLOCKS")?;
        set(
            &mut self.api.idempotency_lease_secs,
            "PACTUM_API_IDEMPOTENCY_LEASE_SECS",
        )?;
        if let Some(keys) = env::<String>("PACTUM_RELAYER_KEYS")? {
            self.relayer.keys = keys
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(tokens) = env::<String>("PACTUM_RELAYER_TOKENS")? {
            self.relayer.tokens = addresses("PACTUM_RELAYER_TOKENS", &tokens)?;
        }
        if let Some(tokens) = env::<String>("PACTUM_CHAIN_TOKENS")? {
            self.chain.tokens = addresses("PACTUM_CHAIN_TOKENS", &tokens)?;
        }
        let r = &mut self.relayer;
        set(&mut r.confirmations, "PACTUM_RELAYER_CONFIRMATIONS")?;
        set(&mut r.poll_interval_ms, "PACTUM_RELAYER_POLL_INTERVAL_MS")?;
        set(&mut r.stuck_after_ms, "PACTUM_RELAYER_STUCK_AFTER_MS")?;
        set(&mut r.fee_bump_percent, "PACTUM_RELAYER_FEE_BUMP_PERCENT")?;
        set(&mut r.priority_fee_wei, "PACTUM_RELAYER_PRIORITY_FEE_WEI")?;
        set(&mut r.batch_size, "PACTUM_RELAYER_BATCH_SIZE")?;
        set(
            &mut r.max_gas_per_action,
            "PACTUM_RELAYER_MAX_GAS_PER_ACTION",
        )?;
        set(
            &mut r.max_actions_per_agreement,
            "PACTUM_RELAYER_MAX_ACTIONS_PER_AGREEMENT",
        )?;
        set(
            &mut r.max_actions_per_party_per_day,
            "PACTUM_RELAYER_MAX_ACTIONS_PER_PARTY_PER_DAY",
        )?;
        set(
            &mut r.max_actions_per_principal_per_day,
            "PACTUM_RELAYER_MAX_ACTIONS_PER_PRINCIPAL_PER_DAY",
        )?;
        set(
            &mut r.max_gas_per_principal_per_day,
            "PACTUM_RELAYER_MAX_GAS_PER_PRINCIPAL_PER_DAY",
        )?;
        set(
            &mut r.max_actions_per_owner_per_day,
            "PACTUM_RELAYER_MAX_ACTIONS_PER_OWNER_PER_DAY",
        )?;
        set(
            &mut r.max_gas_per_owner_per_day,
            "PACTUM_RELAYER_MAX_GAS_PER_OWNER_PER_DAY",
        )?;
        set(
            &mut r.max_reverts_per_party_per_day,
            "PACTUM_RELAYER_MAX_REVERTS_PER_PARTY_PER_DAY",
        )?;
        set(&mut r.daily_gas_budget, "PACTUM_RELAYER_DAILY_GAS_BUDGET")?;
        set(
            &mut r.min_signer_balance_wei,
            "PACTUM_RELAYER_MIN_SIGNER_BALANCE_WEI",
        )?;
        set(
            &mut r.min_deadline_margin_secs,
            "PACTUM_RELAYER_MIN_DEADLINE_MARGIN_SECS",
        )?;
        set(
            &mut r.max_fee_per_gas_wei,
            "PACTUM_RELAYER_MAX_FEE_PER_GAS_WEI",
        )?;
        Ok(())
    }

    /// The receipt key, if configured (validated, never echoed).
    pub(crate) fn receipt_key(&self) -> eyre::Result<Option<PrivateKeySigner>> {
        self.receipts
            .key
            .as_deref()
            .map(|raw| {
                raw.trim().parse().map_err(|_| {
                    eyre!("receipts.key is not a secp256k1 private key (0x + 64 hex digits)")
                })
            })
            .transpose()
    }

    /// The deployment's contracts, as receipts name them.
    pub(crate) fn contracts(&self) -> eyre::Result<pactum_core::escrow::events::Contracts> {
        let c = &self.chain;
        Ok(pactum_core::escrow::events::Contracts {
            escrow: c
                .escrow
                .ok_or_else(|| eyre!("chain.escrow (PACTUM_CHAIN_ESCROW) is required"))?,
            fee_collector: c.fee_collector.ok_or_else(|| {
                eyre!("chain.fee_collector (PACTUM_CHAIN_FEE_COLLECTOR) is required")
            })?,
        })
    }

    /// The webhook workers' settings, validated.
    pub(crate) fn webhook_settings(&self) -> eyre::Result<pactum_webhooks::Settings> {
        let w = &self.webhooks;
        if !(1..=1_000).contains(&w.concurrency) {
            bail!(
                "webhooks.concurrency must be between 1 and 1000, got {}",
                w.concurrency
            );
        }
        if !(100..=60_000).contains(&w.connect_timeout_ms) {
            bail!(
                "webhooks.connect_timeout_ms must be between 100 and 60000, got {}",
                w.connect_timeout_ms
            );
        }
        if !(100..=120_000).contains(&w.timeout_ms) {
            bail!(
                "webhooks.timeout_ms must be between 100 and 120000, got {}",
                w.timeout_ms
            );
        }
        // The lease must outlast an attempt and the write of its outcome.
        if w.lease_secs.saturating_mul(1_000) < w.timeout_ms.saturating_add(5_000) {
            bail!(
                "webhooks.lease_secs ({}) must exceed webhooks.timeout_ms by at least 5 s",
                w.lease_secs
            );
        }
        Ok(pactum_webhooks::Settings {
            concurrency: w.concurrency,
            connect_timeout: Duration::from_millis(w.connect_timeout_ms),
            timeout: Duration::from_millis(w.timeout_ms),
            lease: Duration::from_secs(w.lease_secs),
            allow_private: w.allow_private_destinations,
            ..pactum_webhooks::Settings::default()
        })
    }

    /// Where the API lets webhook endpoints point.
    pub(crate) const fn webhook_destinations(&self) -> pactum_api::webhooks::Destinations {
        pactum_api::webhooks::Destinations {
            allow_http: self.webhooks.allow_http,
            allow_private: self.webhooks.allow_private_destinations,
        }
    }

    /// The database URL, required.
    pub(crate) fn database_url(&self) -> eyre::Result<&str> {
        let url = self
            .database
            .url
            .as_deref()
            .ok_or_else(|| eyre!("database.url (PACTUM_DATABASE_URL) is required"))?;
        if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            // Only the scheme: the URL may carry a password.
            let scheme = url.split("://").next().unwrap_or_default();
            bail!("database.url must be a postgres:// URL, got a {scheme:?} URL");
        }
        if self.database.max_connections.is_some() {
            bail!(
                "database.max_connections (PACTUM_DATABASE_MAX_CONNECTIONS) was replaced by one \
                 pool per component: database.api_connections, database.indexer_connections and \
                 database.relayer_connections"
            );
        }
        for pool in [Pool::Api, Pool::Indexer, Pool::Relayer, Pool::Webhooks] {
            self.pool_size(pool)?;
        }
        Ok(url)
    }

    /// The size of `pool`, validated: at least what the component needs, at most 1,000.
    pub(crate) fn pool_size(&self, pool: Pool) -> eyre::Result<u32> {
        let d = &self.database;
        let size = match pool {
            Pool::Api => d.api_connections,
            Pool::Indexer => d.indexer_connections,
            Pool::Relayer => d.relayer_connections,
            Pool::Webhooks => d.webhooks_connections,
        };
        let (name, least) = pool.setting();
        if !(least..=1_000).contains(&size) {
            bail!("{name} must be between {least} and 1000, got {size}");
        }
        Ok(size)
    }

    /// The node URL, required.
    pub(crate) fn rpc_url(&self) -> eyre::Result<alloy::transports::http::reqwest::Url> {
        let raw = self
            .chain
            .rpc_url
            .as_deref()
            .ok_or_else(|| eyre!("chain.rpc_url (PACTUM_CHAIN_RPC_URL) is required"))?;
        raw.parse()
            .map_err(|e| eyre!("chain.rpc_url {raw:?} is not a URL: {e}"))
    }

    /// The chain id, required by every service.
    pub(crate) fn chain_id(&self) -> eyre::Result<u64> {
        self.chain
            .chain_id
            .ok_or_else(|| eyre!("chain.chain_id (PACTUM_CHAIN_ID) is required"))
    }

    /// The API's listen address.
    pub(crate) fn listen(&self) -> eyre::Result<std::net::SocketAddr> {
        self.api.listen.parse().map_err(|e| {
            eyre!(
                "api.listen {:?} is not an address:port: {e}",
                self.api.listen
            )
        })
    }

    /// How long an idempotency key stays taken by a request whose process died.
    pub(crate) fn idempotency_lease(&self) -> eyre::Result<std::time::Duration> {
        let secs = self.api.idempotency_lease_secs;
        if secs < 3 {
            bail!(
                "api.idempotency_lease_secs ({secs}) must be at least 3 (it is renewed every third of it)"
            );
        }
        Ok(std::time::Duration::from_secs(secs))
    }

    /// The address `/metrics` is served on alone, if it is kept off the API's address.
    pub(crate) fn metrics_listen(&self) -> eyre::Result<Option<std::net::SocketAddr>> {
        let Some(raw) = &self.api.metrics_listen else {
            return Ok(None);
        };
        let addr: std::net::SocketAddr = raw
            .parse()
            .map_err(|e| eyre!("api.metrics_listen {raw:?} is not an address:port: {e}"))?;
        if addr == self.listen()? {
            bail!("api.metrics_listen must differ from api.listen ({raw})");
        }
        Ok(Some(addr))
    }

    /// The deployment agent registrations are bound to (chain id and escrow).
    pub(crate) fn registration_deployment(&self) -> eyre::Result<pactum_api::identity::Deployment> {
        Ok(pactum_api::identity::Deployment {
            chain_id: self.chain_id()?,
            escrow: self.chain.escrow.ok_or_else(|| {
                eyre!("chain.escrow (PACTUM_CHAIN_ESCROW) is required to register agents")
            })?,
        })
    }

    /// The local stack's HS256 owner-token settings, if a secret is configured (what
    /// `pactum admin token` signs with).
    pub(crate) fn jwt(&self) -> eyre::Result<Option<pactum_api::auth::JwtConfig>> {
        let Some(secret) = &self.api.jwt_secret else {
            return Ok(None);
        };
        if secret.len() < 32 {
            bail!("api.jwt_secret (PACTUM_API_JWT_SECRET) must be at least 32 bytes for HS256");
        }
        Ok(Some(pactum_api::auth::JwtConfig {
            secret: secret.as_bytes().to_vec(),
            issuer: self.api.jwt_issuer.clone(),
            audience: self.api.jwt_audience.clone(),
        }))
    }

    /// How owner tokens are verified: the identity provider's JWKS, or the local HS256 secret;
    /// `None` refuses owner tokens.
    pub(crate) fn owner_tokens(&self) -> eyre::Result<Option<pactum_api::auth::OwnerTokens>> {
        use pactum_api::auth::{
            OwnerTokens,
            jwks::{IdentityProvider, JwksSource, ProviderSettings},
            tokens::ProviderPolicy,
        };
        let a = &self.api;
        let source = match (&a.jwks_url, &a.jwks_file) {
            (Some(_), Some(_)) => {
                bail!("api.jwks_url and api.jwks_file are exclusive: set one")
            }
            (Some(url), None) => JwksSource::Url(jwks_url(url)?),
            (None, Some(file)) => JwksSource::File(file.into()),
            (None, None) => return Ok(self.jwt()?.map(OwnerTokens::Local)),
        };
        if a.jwt_secret.is_some() {
            bail!(
                "api.jwt_secret (HS256, the local stack's) cannot be used with an identity provider (api.jwks_url or api.jwks_file): unset one"
            );
        }
        let required = |value: &Option<String>, key: &str, var: &str| {
            value
                .clone()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| eyre!("api.{key} ({var}) is required with an identity provider"))
        };
        let issuer = required(&a.jwt_issuer, "jwt_issuer", "PACTUM_API_JWT_ISSUER")?;
        let audience = required(&a.jwt_audience, "jwt_audience", "PACTUM_API_JWT_AUDIENCE")?;
        if !(60..=7 * 86_400).contains(&a.jwt_max_lifetime_secs) {
            bail!(
                "api.jwt_max_lifetime_secs (PACTUM_API_JWT_MAX_LIFETIME_SECS) must be between 60 and 604800"
            );
        }
        if !(10..=86_400).contains(&a.jwks_refresh_secs) {
            bail!(
                "api.jwks_refresh_secs (PACTUM_API_JWKS_REFRESH_SECS) must be between 10 and 86400"
            );
        }
        if a.jwks_unknown_kid_refetch_secs < 5
            || a.jwks_unknown_kid_refetch_secs > a.jwks_refresh_secs
        {
            bail!(
                "api.jwks_unknown_kid_refetch_secs must be at least 5 and not above api.jwks_refresh_secs"
            );
        }
        let provider = IdentityProvider::new(ProviderSettings {
            policy: ProviderPolicy {
                issuer,
                audience,
                max_lifetime_secs: a.jwt_max_lifetime_secs,
                require_verified_email: a.jwt_require_verified_email,
            },
            jwks: source,
            refresh_every: Duration::from_secs(a.jwks_refresh_secs),
            unknown_kid_refetch: Duration::from_secs(a.jwks_unknown_kid_refetch_secs),
        })
        .map_err(|e| eyre!(e))?;
        Ok(Some(OwnerTokens::Provider(std::sync::Arc::new(provider))))
    }

    /// The relayer's signer keys and settings, validated; `None` when no key is configured.
    pub(crate) fn relayer(
        &self,
    ) -> eyre::Result<Option<(Vec<PrivateKeySigner>, pactum_relayer::Settings)>> {
        let r = &self.relayer;
        if r.keys.is_empty() {
            return Ok(None);
        }
        let mut keys = Vec::with_capacity(r.keys.len());
        for (i, raw) in r.keys.iter().enumerate() {
            // Never echo a key, not even a malformed one.
            let key: PrivateKeySigner = raw.trim().parse().map_err(|_| {
                eyre!("relayer.keys[{i}] is not a secp256k1 private key (0x + 64 hex digits)")
            })?;
            if keys
                .iter()
                .any(|k: &PrivateKeySigner| k.address() == key.address())
            {
                bail!("relayer.keys[{i}] repeats the key of {}", key.address());
            }
            keys.push(key);
        }
        let c = &self.chain;
        let missing =
            |key: &str, var: &str| eyre!("chain.{key} ({var}) is required by the relayer");
        let mut settings = pactum_relayer::Settings::new(
            c.chain_id
                .ok_or_else(|| missing("chain_id", "PACTUM_CHAIN_ID"))?,
            c.escrow
                .ok_or_else(|| missing("escrow", "PACTUM_CHAIN_ESCROW"))?,
            c.fee_collector
                .ok_or_else(|| missing("fee_collector", "PACTUM_CHAIN_FEE_COLLECTOR"))?,
        );
        if r.batch_size == 0 || r.max_gas_per_action < 21_000 || r.confirmations == 0 {
            bail!(
                "relayer.batch_size and relayer.confirmations must be at least 1, relayer.max_gas_per_action at least 21000"
            );
        }
        if r.fee_bump_percent < 10 {
            bail!(
                "relayer.fee_bump_percent must be at least 10 (nodes refuse smaller replacements)"
            );
        }
        settings.confirmations = r.confirmations;
        settings.poll_interval = Duration::from_millis(r.poll_interval_ms.max(10));
        settings.stuck_after = Duration::from_millis(r.stuck_after_ms.max(100));
        settings.fee_bump_percent = r.fee_bump_percent;
        settings.priority_fee = r.priority_fee_wei;
        settings.batch_size = r.batch_size;
        let p = &mut settings.policy;
        p.max_gas_per_action = r.max_gas_per_action;
        p.max_actions_per_agreement = r.max_actions_per_agreement;
        p.max_actions_per_party_per_day = r.max_actions_per_party_per_day;
        p.max_actions_per_principal_per_day = r.max_actions_per_principal_per_day;
        p.max_gas_per_principal_per_day = r.max_gas_per_principal_per_day;
        p.max_actions_per_owner_per_day = r.max_actions_per_owner_per_day;
        p.max_gas_per_owner_per_day = r.max_gas_per_owner_per_day;
        p.max_reverts_per_party_per_day = r.max_reverts_per_party_per_day;
        p.daily_gas_budget = r.daily_gas_budget;
        p.min_signer_balance = alloy::primitives::U256::from(r.min_signer_balance_wei);
        p.min_deadline_margin = r.min_deadline_margin_secs;
        p.max_fee_per_gas = r.max_fee_per_gas_wei;
        p.tokens = r.tokens.clone();
        p.trusted_tokens = self.trusted_tokens();
        Ok(Some((keys, settings)))
    }

    /// The indexer's configuration, validated.
    pub(crate) fn indexer(&self) -> eyre::Result<pactum_indexer::Config> {
        let c = &self.chain;
        let missing = |key: &str, var: &str| eyre!("chain.{key} ({var}) is required");
        let mut config = pactum_indexer::Config::new(
            c.chain_id
                .ok_or_else(|| missing("chain_id", "PACTUM_CHAIN_ID"))?,
            c.escrow
                .ok_or_else(|| missing("escrow", "PACTUM_CHAIN_ESCROW"))?,
            c.fee_collector
                .ok_or_else(|| missing("fee_collector", "PACTUM_CHAIN_FEE_COLLECTOR"))?,
            c.start_block
                .ok_or_else(|| missing("start_block", "PACTUM_CHAIN_START_BLOCK"))?,
        );
        let i = &self.indexer;
        if i.batch_blocks == 0 {
            bail!("indexer.batch_blocks must be at least 1");
        }
        if i.reorg_window < i.confirmations {
            bail!(
                "indexer.reorg_window ({}) must be at least indexer.confirmations ({})",
                i.reorg_window,
                i.confirmations
            );
        }
        config.batch_blocks = i.batch_blocks;
        config.confirmations = i.confirmations;
        config.use_finalized_tag = i.use_finalized_tag;
        config.reorg_window = i.reorg_window;
        config.poll_interval = Duration::from_millis(i.poll_interval_ms.max(10));
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_secret() {
        let mut config = Config::default();
        config.database.url = Some("postgres://pactum:hunter2@db.internal:5432/pactum".into());
        config.api.jwt_secret = Some("a-shared-secret-of-at-least-32-bytes!".into());
        config.relayer.keys =
            vec!["0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d".into()];
        config.chain.rpc_url = Some("https://eth.example/v3/0123456789abcdef?key=s3cr3t".into());
        let shown = format!("{config:?}");
        for secret in [
            "hunter2",
            "a-shared-secret",
            "59c6995e998f97a5a0044966f0945389",
            "0123456789abcdef",
            "s3cr3t",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(
            shown.contains("postgres://pactum:***@db.internal:5432/pactum"),
            "{shown}"
        );
        assert!(shown.contains("<1 redacted>"), "{shown}");
    }

    #[test]
    fn urls_without_a_password_are_shown_as_they_are() {
        for url in [
            "postgres://postgres@127.0.0.1:5432/pactum",
            "postgres://127.0.0.1/pactum?user=x",
            "not a url",
        ] {
            assert_eq!(redact_url(url), url);
        }
        assert_eq!(
            redact_url("postgresql://u:p@h/db?application_name=a@b"),
            "postgresql://u:***@h/db?application_name=a@b"
        );
        assert_eq!(
            redact_url("postgres://h/db?user=u&password=p"),
            "postgres://h/db?<redacted>"
        );
        assert_eq!(
            redact_node_url("http://127.0.0.1:8545"),
            "http://127.0.0.1:8545"
        );
        assert_eq!(
            redact_node_url("https://user:pw@node.example/key"),
            "https://node.example/<redacted>"
        );
    }

    #[test]
    fn each_pool_has_a_workable_size() {
        let mut config = Config::default();
        assert_eq!(config.pool_size(Pool::Api).unwrap(), 16);
        assert_eq!(config.pool_size(Pool::Indexer).unwrap(), 4);
        assert_eq!(config.pool_size(Pool::Relayer).unwrap(), 8);
        config.database.indexer_connections = 1;
        let err = config.pool_size(Pool::Indexer).unwrap_err().to_string();
        assert!(
            err.contains("database.indexer_connections must be between 2 and 1000"),
            "{err}"
        );
        config.database.api_connections = 0;
        assert!(config.pool_size(Pool::Api).is_err());
        config.database.relayer_connections = 5_000;
        assert!(config.pool_size(Pool::Relayer).is_err());
    }

    #[test]
    fn an_identity_provider_needs_issuer_audience_and_no_local_secret() {
        let err = |c: &Config| c.owner_tokens().unwrap_err().to_string();
        let mut config = Config::default();
        assert!(config.owner_tokens().unwrap().is_none());
        config.api.jwks_url = Some("https://idp.example/.well-known/jwks.json".into());
        assert!(err(&config).contains("api.jwt_issuer"), "{}", err(&config));
        config.api.jwt_issuer = Some("https://idp.example/".into());
        assert!(
            err(&config).contains("api.jwt_audience"),
            "{}",
            err(&config)
        );
        config.api.jwt_audience = Some("pactum".into());
        assert!(matches!(
            config.owner_tokens().unwrap(),
            Some(pactum_api::auth::OwnerTokens::Provider(_))
        ));
        config.api.jwt_secret = Some("a-shared-secret-of-at-least-32-bytes!".into());
        assert!(err(&config).contains("cannot be used with an identity provider"));
        config.api.jwt_secret = None;
        config.api.jwks_file = Some("/etc/pactum/jwks.json".into());
        assert!(err(&config).contains("exclusive"));
        config.api.jwks_file = None;
        for plain in [
            "http://idp.example/jwks.json",
            "http://127.0.0.1.evil.example/jwks.json",
            "ftp://idp.example/jwks.json",
        ] {
            config.api.jwks_url = Some(plain.into());
            assert!(err(&config).contains("must be https://"), "{plain}");
        }
        config.api.jwks_url = Some("http://127.0.0.1:9000/jwks.json".into());
        assert!(config.owner_tokens().is_ok());
        config.api.jwt_max_lifetime_secs = 30 * 86_400;
        assert!(err(&config).contains("jwt_max_lifetime_secs"));
    }

    #[test]
    fn metrics_listen_must_be_another_address() {
        let mut config = Config::default();
        assert_eq!(config.metrics_listen().unwrap(), None);
        config.api.metrics_listen = Some("127.0.0.1:9090".into());
        assert_eq!(
            config.metrics_listen().unwrap(),
            Some("127.0.0.1:9090".parse().unwrap())
        );
        config.api.metrics_listen = Some(config.api.listen.clone());
        assert!(config.metrics_listen().is_err());
        config.api.metrics_listen = Some("nine thousand".into());
        assert!(config.metrics_listen().is_err());
    }

    #[test]
    fn the_agreement_token_must_be_trusted_and_the_fee_bounded() {
        let (usdc, other) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let mut config = Config::default();
        assert_eq!(config.agreement_token().unwrap(), None);
        config.chain.token = Some(usdc);
        assert_eq!(config.agreement_token().unwrap(), Some(usdc));
        config.chain.token = None;
        config.chain.tokens = vec![other];
        assert_eq!(config.agreement_token().unwrap(), Some(other));
        config.agreements.token = Some(usdc);
        let err = config.agreement_token().unwrap_err().to_string();
        assert!(err.contains("not one of chain.tokens"), "{err}");
        assert_eq!(config.fee_schedule().unwrap().bps, 100);
        config.agreements.infra_fee_bps = 1_001;
        let err = config.fee_schedule().unwrap_err().to_string();
        assert!(err.contains("agreements.infra_fee_bps"), "{err}");
    }

    #[test]
    fn trusted_tokens_come_from_the_list_else_the_development_token_else_none() {
        let (usdc, other) = (Address::repeat_byte(1), Address::repeat_byte(2));
        let mut config = Config::default();
        assert_eq!(
            config.trusted_tokens(),
            pactum_core::TrustedTokens::Only(vec![])
        );
        config.chain.token = Some(usdc);
        assert_eq!(
            config.trusted_tokens(),
            pactum_core::TrustedTokens::Only(vec![usdc])
        );
        config.chain.tokens = vec![other];
        assert_eq!(
            config.trusted_tokens(),
            pactum_core::TrustedTokens::Only(vec![other])
        );
    }
}
