//! Who may call the API: owners, their agents (each with one wallet), the agents' API keys
//! (stored as the hash of their secret) and the record of every revocation.

use alloy::primitives::Address;
use sqlx::{PgConnection, PgPool};

use crate::{Error, Result};

/// An agent with its owner and wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// Agent id.
    pub id: String,
    /// Owning owner id.
    pub owner_id: String,
    /// Display name.
    pub name: String,
    /// The wallet the agent signs and pays from.
    pub wallet: Address,
}

/// An API key as stored (the secret only as its hash), with the agent it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Key id (public part of the key).
    pub id: String,
    /// SHA-256 of the secret part.
    pub secret_hash: [u8; 32],
    /// Whether it was revoked.
    pub revoked: bool,
    /// The agent.
    pub agent: Agent,
}

/// A revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// Revocation id.
    pub id: String,
    /// The revoked key.
    pub key_id: String,
    /// Who revoked it (owner id).
    pub revoked_by: String,
    /// Why.
    pub reason: String,
    /// When (RFC 3339, UTC).
    pub revoked_at: String,
}

fn wallet(bytes: &[u8]) -> Result<Address> {
    Address::try_from(bytes).map_err(|_| Error::Corrupt {
        table: "agents",
        detail: format!("wallet of {} bytes", bytes.len()),
    })
}

/// Registers an owner.
pub async fn create_owner(
    conn: &mut PgConnection,
    id: &str,
    name: &str,
    email: &str,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO owners (id, name, email) VALUES ($1, $2, $3)",
        id,
        name,
        email
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether an owner exists.
pub async fn owner_exists(pool: &PgPool, id: &str) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM owners WHERE id = $1) AS "exists!""#,
        id
    )
    .fetch_one(pool)
    .await?)
}

/// An owner an identity provider vouches for, as first seen.
#[derive(Debug, Clone, Copy)]
pub struct ProvisionedOwner<'a> {
    /// `own_` + a hash of issuer and subject.
    pub id: &'a str,
    /// Display name (the token's `name`, else its verified email, else the subject).
    pub name: &'a str,
    /// Verified email, or empty.
    pub email: &'a str,
    /// The provider (`iss`).
    pub issuer: &'a str,
    /// The provider's id for them (`sub`).
    pub subject: &'a str,
}

/// Records an owner on first sight of its verified subject (nothing if it exists already).
/// Name and email are cut to 256 characters.
pub async fn provision_owner(pool: &PgPool, owner: &ProvisionedOwner<'_>) -> Result<()> {
    let cut = |s: &str| s.chars().take(256).collect::<String>();
    sqlx::query!(
        "INSERT INTO owners (id, name, email, issuer, subject) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING",
        owner.id,
        cut(owner.name),
        cut(owner.email),
        owner.issuer,
        owner.subject,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// An owner's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Email (verified by the identity provider, or set by `pactum admin`), possibly empty.
    pub email: String,
    /// The identity provider, for owners signed in through one.
    pub issuer: Option<String>,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// Owner `id`.
pub async fn owner(pool: &PgPool, id: &str) -> Result<Option<Owner>> {
    Ok(sqlx::query_as!(
        Owner,
        r#"SELECT id, name, email, issuer,
                  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS "created_at!"
             FROM owners WHERE id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await?)
}

/// Registers an agent of `owner_id` acting from `wallet`.
pub async fn create_agent(
    conn: &mut PgConnection,
    id: &str,
    owner_id: &str,
    name: &str,
    wallet: Address,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO agents (id, owner_id, name, wallet_address) VALUES ($1, $2, $3, $4)",
        id,
        owner_id,
        name,
        wallet.as_slice()
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// An agent by id.
pub async fn agent<'e>(db: impl sqlx::PgExecutor<'e>, id: &str) -> Result<Option<Agent>> {
    let row = sqlx::query!(
        "SELECT id, owner_id, name, wallet_address FROM agents WHERE id = $1",
        id
    )
    .fetch_optional(db)
    .await?;
    row.map(|r| {
        Ok(Agent {
            id: r.id,
            owner_id: r.owner_id,
            name: r.name,
            wallet: wallet(&r.wallet_address)?,
        })
    })
    .transpose()
}

/// The wallets of an owner's agents.
pub async fn owner_wallets(pool: &PgPool, owner_id: &str) -> Result<Vec<Address>> {
    let rows = sqlx::query_scalar!(
        "SELECT wallet_address FROM agents WHERE owner_id = $1",
        owner_id
    )
    .fetch_all(pool)
    .await?;
    rows.iter().map(|w| wallet(w)).collect()
}

/// Stores a new API key (its secret's hash).
pub async fn create_api_key(
    conn: &mut PgConnection,
    id: &str,
    agent_id: &str,
    secret_hash: &[u8; 32],
    label: &str,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO api_keys (id, agent_id, secret_hash, label) VALUES ($1, $2, $3, $4)",
        id,
        agent_id,
        secret_hash.as_slice(),
        label
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// An API key by id, with its agent.
pub async fn api_key(pool: &PgPool, id: &str) -> Result<Option<ApiKey>> {
    let row = sqlx::query!(
        r#"SELECT k.id, k.secret_hash, k.revoked_at IS NOT NULL AS "revoked!",
                  a.id AS agent_id, a.owner_id, a.name, a.wallet_address
           FROM api_keys k JOIN agents a ON a.id = k.agent_id WHERE k.id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        let secret_hash: [u8; 32] =
            r.secret_hash
                .as_slice()
                .try_into()
                .map_err(|_| Error::Corrupt {
                    table: "api_keys",
                    detail: "secret hash is not 32 bytes".into(),
                })?;
        Ok(ApiKey {
            id: r.id,
            secret_hash,
            revoked: r.revoked,
            agent: Agent {
                id: r.agent_id,
                owner_id: r.owner_id,
                name: r.name,
                wallet: wallet(&r.wallet_address)?,
            },
        })
    })
    .transpose()
}

/// Revokes a key once. `None` if it was already revoked (or does not exist).
pub async fn revoke_api_key(
    conn: &mut PgConnection,
    revocation_id: &str,
    key_id: &str,
    revoked_by: &str,
    reason: &str,
) -> Result<Option<Revocation>> {
    let row = sqlx::query!(
        r#"WITH revoked AS (
               UPDATE api_keys SET revoked_at = now() WHERE id = $2 AND revoked_at IS NULL RETURNING id
           )
           INSERT INTO api_key_revocations (id, key_id, revoked_by, reason)
           SELECT $1, id, $3, $4 FROM revoked
           RETURNING id, key_id, revoked_by, reason,
                     to_char(revoked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS "revoked_at!""#,
        revocation_id,
        key_id,
        revoked_by,
        reason
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| Revocation {
        id: r.id,
        key_id: r.key_id,
        revoked_by: r.revoked_by,
        reason: r.reason,
        revoked_at: r.revoked_at,
    }))
}

/// Number of revocations recorded for a key (for tests: one effect per revocation).
pub async fn revocation_count(pool: &PgPool, key_id: &str) -> Result<i64> {
    Ok(sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM api_key_revocations WHERE key_id = $1"#,
        key_id
    )
    .fetch_one(pool)
    .await?)
}
