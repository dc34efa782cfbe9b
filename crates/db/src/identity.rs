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
    /// Whether its agent's wallet proved itself at registration (keys of agents that did not
    /// are refused).
    pub wallet_proven: bool,
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

/// A wallet's signature of an agent's registration ([`pactum_bindings::eip712::AgentRegistration`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletProof {
    /// The signature (65-byte ECDSA, or whatever the wallet's ERC-1271 accepts).
    pub signature: Vec<u8>,
    /// The registration's deadline (unix seconds).
    pub deadline: u64,
}

/// What registering an agent came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// Registered.
    Created,
    /// Another agent has the id.
    IdTaken,
    /// Another agent has the wallet.
    WalletTaken,
}

/// Registers agent `id` of `owner_id` acting from `wallet`, with the wallet's `proof` (checked by
/// the caller). An id or wallet already registered is answered as such, and nothing is written.
pub async fn create_agent(
    conn: &mut PgConnection,
    id: &str,
    owner_id: &str,
    name: &str,
    wallet: Address,
    proof: &WalletProof,
) -> Result<Registration> {
    let inserted = sqlx::query!(
        "INSERT INTO agents (id, owner_id, name, wallet_address, wallet_proof, wallet_proof_deadline)
         VALUES ($1, $2, $3, $4, $5, $6)",
        id,
        owner_id,
        name,
        wallet.as_slice(),
        proof.signature.as_slice(),
        i64::try_from(proof.deadline).unwrap_or(i64::MAX),
    )
    .execute(conn)
    .await;
    match inserted {
        Ok(_) => Ok(Registration::Created),
        Err(sqlx::Error::Database(e)) if e.constraint() == Some("agents_pkey") => {
            Ok(Registration::IdTaken)
        }
        Err(sqlx::Error::Database(e)) if e.constraint() == Some("agents_wallet") => {
            Ok(Registration::WalletTaken)
        }
        Err(e) => Err(e.into()),
    }
}

/// An agent as its owner lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRecord {
    /// The agent.
    pub agent: Agent,
    /// Whether its wallet proved itself at registration.
    pub wallet_proven: bool,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// Its API keys not revoked.
    pub active_keys: i64,
}

/// Owner `owner_id`'s agents by id, after `after` (exclusive), at most `limit`.
pub async fn agents_of(
    pool: &PgPool,
    owner_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<AgentRecord>> {
    agent_records(pool, Some(owner_id), None, after, limit).await
}

/// Agent `id` with its registration facts.
pub async fn agent_record(pool: &PgPool, id: &str) -> Result<Option<AgentRecord>> {
    Ok(agent_records(pool, None, Some(id), None, 1).await?.pop())
}

/// Agents by id: of `owner_id` and/or exactly `id` when given, after `after`, at most `limit`.
async fn agent_records(
    pool: &PgPool,
    owner_id: Option<&str>,
    id: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<AgentRecord>> {
    let rows = sqlx::query!(
        r#"SELECT a.id, a.owner_id, a.name, a.wallet_address,
                  a.wallet_proof IS NOT NULL AS "wallet_proven!",
                  to_char(a.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS "created_at!",
                  (SELECT count(*) FROM api_keys k WHERE k.agent_id = a.id AND k.revoked_at IS NULL) AS "active_keys!"
             FROM agents a
            WHERE ($1::text IS NULL OR a.owner_id = $1)
              AND ($2::text IS NULL OR a.id = $2)
              AND ($3::text IS NULL OR a.id > $3)
            ORDER BY a.id
            LIMIT $4"#,
        owner_id,
        id,
        after,
        limit,
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(AgentRecord {
                agent: Agent {
                    id: r.id,
                    owner_id: r.owner_id,
                    name: r.name,
                    wallet: wallet(&r.wallet_address)?,
                },
                wallet_proven: r.wallet_proven,
                created_at: r.created_at,
                active_keys: r.active_keys,
            })
        })
        .collect()
}

/// An API key's metadata (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyMeta {
    /// Key id (the part after `pk_`).
    pub id: String,
    /// Its label.
    pub label: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// When it was revoked, if it was.
    pub revoked_at: Option<String>,
}

/// Agent `agent_id`'s API keys, newest first.
pub async fn api_keys_of(pool: &PgPool, agent_id: &str) -> Result<Vec<ApiKeyMeta>> {
    Ok(sqlx::query_as!(
        ApiKeyMeta,
        r#"SELECT id, label,
                  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS "created_at!",
                  to_char(revoked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS revoked_at
             FROM api_keys WHERE agent_id = $1 ORDER BY created_at DESC, id"#,
        agent_id
    )
    .fetch_all(pool)
    .await?)
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
        "SELECT wallet_address FROM agents WHERE owner_id = $1 AND wallet_proof IS NOT NULL",
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
                  a.wallet_proof IS NOT NULL AS "wallet_proven!",
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
            wallet_proven: r.wallet_proven,
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
