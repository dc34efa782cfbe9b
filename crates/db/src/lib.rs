//! pactum's PostgreSQL layer: the numbered migrations (`crates/db/migrations/`, applied at
//! startup), the connection pool, and every query the services run, checked at compile time by
//! sqlx against the committed `.sqlx/` metadata (regenerate with `script/sqlx-prepare.sh`).
//!
//! Modules are named after the data they keep:
//! - [`agreements`]: usage agreements as the API keeps them, and the history of each.
//! - [`approvals`]: the requests an owner's policy sends to the owner for approval.
//! - [`index`]: the indexer's checkpoint, recent block hashes, raw events and derived agreement
//!   state.
//! - [`identity`]: owners, agents and their API keys and revocations.
//! - [`idempotency`]: the idempotency records of write requests.
//! - [`locks`]: the advisory locks that make one process the writer of the index or of a
//!   relayer key.
//! - [`receipts`]: the signed receipts of money movements, and the indexed logs they cite.
//! - [`relay`]: the relayer's signer keys and nonces, jobs and signed attempts.
//! - [`webhooks`]: owners' webhook endpoints, the messages announcing events, their deliveries
//!   and attempts.
//! - [`testing`] (feature `testing`): a fresh database per test.
//!
//! Each table is read through one row type that converts into the domain's type (`pactum-core`)
//! at this boundary, so a corrupt value is an [`Error::Corrupt`] naming its table.

pub mod agreements;
pub mod approvals;
mod convert;
mod error;
pub mod idempotency;
pub mod identity;
pub mod index;
pub mod locks;
pub mod policies;
pub mod receipts;
pub mod relay;
#[cfg(feature = "testing")]
pub mod testing;
pub mod webhooks;

use std::time::Duration;

pub use error::{Error, Result};
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

/// 32 bytes from the operating system's CSPRNG.
pub fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    // The OS RNG failing is not something to continue past.
    getrandom::fill(&mut bytes).unwrap_or_else(|e| panic!("operating system RNG failed: {e}"));
    bytes
}

/// `len` (at most 32) characters of base 32 (lowercase, digits 2-7) from the CSPRNG: the random
/// part of row ids (`rel_...`, `rev_...`) and secrets.
pub fn random_id(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    // 256 is a multiple of 32, so `b % 32` is uniform.
    random_bytes()[..len.min(32)]
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % 32]))
        .collect()
}

/// The migrations embedded in the binary, applied by [`Db::connect`].
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a pooled connection may sit idle before it is pinged when taken again.
const IDLE_PING_AFTER: Duration = Duration::from_secs(1);

/// A connection pool to pactum's database, migrated.
#[derive(Debug, Clone)]
pub struct Db {
    pool: PgPool,
}

impl Db {
    /// Connects to `url` with at most `max_connections` and applies any pending migration.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let options: PgConnectOptions = url.parse().map_err(Error::Connect)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            // sqlx pings every connection when it is released; pinging it again when it is taken
            // costs a round trip per acquire (several per request). Only a connection idle for a
            // while (the server may have restarted or dropped it meanwhile) is pinged first.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= IDLE_PING_AFTER {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await
            .map_err(Error::Connect)?;
        MIGRATOR.run(&pool).await?;
        tracing::debug!(max_connections, "database connected and migrated");
        Ok(Self { pool })
    }

    /// Wraps an existing pool (already migrated).
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The underlying pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// One pooled connection (waits up to the pool's acquire timeout).
    pub async fn acquire(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>> {
        Ok(self.pool.acquire().await?)
    }

    /// Whether the database answers (for readiness checks).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
