//! Service configuration: a TOML file, then environment variables, each overriding the one
//! before (defaults < file < environment). Validated at startup; every error names the setting.
//!
//! | setting | file key | environment | default |
//! |---|---|---|---|
//! | database URL | `database.url` | `PACTUM_DATABASE_URL` | — (required) |
//! | pool size | `database.max_connections` | `PACTUM_DATABASE_MAX_CONNECTIONS` | 16 |
//! | node | `chain.rpc_url` | `PACTUM_CHAIN_RPC_URL` | — (required) |
//! | chain id | `chain.chain_id` | `PACTUM_CHAIN_ID` | — (required) |
//! | escrow | `chain.escrow` | `PACTUM_CHAIN_ESCROW` | — (required) |
//! | fee collector | `chain.fee_collector` | `PACTUM_CHAIN_FEE_COLLECTOR` | — (required) |
//! | deployment block | `chain.start_block` | `PACTUM_CHAIN_START_BLOCK` | — (required) |
//! | token, oracle (demo only) | `chain.token`, `chain.sanctions_oracle` | — | — |
//! | blocks per batch | `indexer.batch_blocks` | `PACTUM_INDEXER_BATCH_BLOCKS` | 2000 |
//! | confirmations | `indexer.confirmations` | `PACTUM_INDEXER_CONFIRMATIONS` | 12 |
//! | use `finalized` tag | `indexer.use_finalized_tag` | `PACTUM_INDEXER_USE_FINALIZED_TAG` | true |
//! | reorg window | `indexer.reorg_window` | `PACTUM_INDEXER_REORG_WINDOW` | 128 |
//! | poll interval | `indexer.poll_interval_ms` | `PACTUM_INDEXER_POLL_INTERVAL_MS` | 250 |
//! | API address | `api.listen` | `PACTUM_API_LISTEN` | `127.0.0.1:8080` |
//! | owner JWT key (HS256, ≥ 32 bytes) | `api.jwt_secret` | `PACTUM_API_JWT_SECRET` | none: owner JWTs refused |
//! | required JWT `iss` | `api.jwt_issuer` | `PACTUM_API_JWT_ISSUER` | not checked |
//! | required JWT `aud` | `api.jwt_audience` | `PACTUM_API_JWT_AUDIENCE` | not checked |
//! | `/ready` lag limit (blocks) | `api.max_lag_blocks` | `PACTUM_API_MAX_LAG_BLOCKS` | 64 |

use std::{path::Path, str::FromStr, time::Duration};

use alloy::primitives::Address;
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
}

/// `[api]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Api {
    pub(crate) listen: String,
    pub(crate) jwt_secret: Option<String>,
    pub(crate) jwt_issuer: Option<String>,
    pub(crate) jwt_audience: Option<String>,
    pub(crate) max_lag_blocks: u64,
}

impl Default for Api {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            jwt_secret: None,
            jwt_issuer: None,
            jwt_audience: None,
            max_lag_blocks: 64,
        }
    }
}

/// `[database]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Database {
    pub(crate) url: Option<String>,
    pub(crate) max_connections: u32,
}

impl Default for Database {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 16,
        }
    }
}

/// `[chain]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Chain {
    pub(crate) rpc_url: Option<String>,
    pub(crate) chain_id: Option<u64>,
    pub(crate) escrow: Option<Address>,
    pub(crate) fee_collector: Option<Address>,
    pub(crate) start_block: Option<u64>,
    /// The token (development tools only; services do not need it).
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

impl Config {
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
        set(
            &mut self.database.max_connections,
            "PACTUM_DATABASE_MAX_CONNECTIONS",
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
        set_opt(&mut self.api.jwt_secret, "PACTUM_API_JWT_SECRET")?;
        set_opt(&mut self.api.jwt_issuer, "PACTUM_API_JWT_ISSUER")?;
        set_opt(&mut self.api.jwt_audience, "PACTUM_API_JWT_AUDIENCE")?;
        set(&mut self.api.max_lag_blocks, "PACTUM_API_MAX_LAG_BLOCKS")?;
        Ok(())
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
        if self.database.max_connections == 0 {
            bail!("database.max_connections must be at least 1");
        }
        Ok(url)
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

    /// Owner JWT verification, if a key is configured.
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
