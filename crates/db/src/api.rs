//! The API's storage: owners, agents and their API keys, and the idempotency records that every
//! write endpoint shares.

use std::time::Duration;

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
pub async fn agent(pool: &PgPool, id: &str) -> Result<Option<Agent>> {
    let row = sqlx::query!(
        "SELECT id, owner_id, name, wallet_address FROM agents WHERE id = $1",
        id
    )
    .fetch_optional(pool)
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

// ---------------------------------------------------------------------------------------------
// Idempotency
// ---------------------------------------------------------------------------------------------

/// A stored idempotency record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// Method of the original request.
    pub method: String,
    /// Path of the original request.
    pub path: String,
    /// SHA-256 of method, path and body of the original request.
    pub request_hash: [u8; 32],
    /// The stored response, once the original request completed: status, content type, body.
    pub response: Option<(u16, String, Vec<u8>)>,
}

/// Outcome of claiming a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This request owns the key: run it, then [`complete_idempotency_key`] or
    /// [`release_idempotency_key`].
    Claimed,
    /// The key is taken (expired records are removed first).
    Existing(IdempotencyRecord),
}

fn seconds(d: Duration) -> f64 {
    f64::from(u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

/// A request's identity for the idempotency store.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyRequest<'a> {
    /// The authenticated principal (scope).
    pub principal: &'a str,
    /// The client's key.
    pub key: &'a str,
    /// Random token of this attempt's claim.
    pub claim_token: &'a str,
    /// Method.
    pub method: &'a str,
    /// Path.
    pub path: &'a str,
    /// SHA-256 of method, path and body.
    pub request_hash: &'a [u8; 32],
}

/// Claims `(principal, key)` for a request, or returns the record that holds it. The claim is a
/// lease (renewed while the request runs): if the process dies, the key frees itself. A record
/// past its expiry counts as absent and is taken over.
pub async fn claim_idempotency_key(
    pool: &PgPool,
    r: IdempotencyRequest<'_>,
    lease: Duration,
) -> Result<Claim> {
    // A key seen before (a retry, the common reason to send one twice) costs one read.
    if let Some(record) = load_idempotency_key(pool, r.principal, r.key).await? {
        return Ok(Claim::Existing(record));
    }
    loop {
        let claimed = sqlx::query!(
            r#"INSERT INTO idempotency_keys
                 (principal, key, claim_token, method, path, request_hash, state, expires_at)
               VALUES ($1, $2, $3, $4, $5, $6, 'in_progress', now() + make_interval(secs => $7))
               ON CONFLICT (principal, key) DO UPDATE SET
                 claim_token = EXCLUDED.claim_token, method = EXCLUDED.method,
                 path = EXCLUDED.path, request_hash = EXCLUDED.request_hash,
                 state = 'in_progress', response_status = NULL, response_type = NULL,
                 response_body = NULL, created_at = now(), expires_at = EXCLUDED.expires_at
               WHERE idempotency_keys.expires_at < now()"#,
            r.principal,
            r.key,
            r.claim_token,
            r.method,
            r.path,
            r.request_hash.as_slice(),
            seconds(lease)
        )
        .execute(pool)
        .await?
        .rows_affected();
        if claimed == 1 {
            return Ok(Claim::Claimed);
        }
        if let Some(record) = load_idempotency_key(pool, r.principal, r.key).await? {
            return Ok(Claim::Existing(record));
        }
        // It expired between the two statements: claim again.
    }
}

/// The unexpired record of `(principal, key)`, if any.
pub async fn load_idempotency_key(
    pool: &PgPool,
    principal: &str,
    key: &str,
) -> Result<Option<IdempotencyRecord>> {
    let row = sqlx::query!(
        r#"SELECT method, path, request_hash, state, response_status, response_type, response_body
           FROM idempotency_keys
           WHERE principal = $1 AND key = $2 AND expires_at >= now()"#,
        principal,
        key
    )
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        let request_hash: [u8; 32] =
            r.request_hash
                .as_slice()
                .try_into()
                .map_err(|_| Error::Corrupt {
                    table: "idempotency_keys",
                    detail: "request hash is not 32 bytes".into(),
                })?;
        let response = match (
            r.state.as_str(),
            r.response_status,
            r.response_type,
            r.response_body,
        ) {
            ("completed", Some(status), Some(kind), Some(body)) => {
                Some((u16::try_from(status).unwrap_or(500), kind, body))
            }
            _ => None,
        };
        Ok(IdempotencyRecord {
            method: r.method,
            path: r.path,
            request_hash,
            response,
        })
    })
    .transpose()
}

/// Extends the lease of a claim still held by `claim_token`; `false` if the claim was lost.
pub async fn renew_idempotency_lease(
    pool: &PgPool,
    principal: &str,
    key: &str,
    claim_token: &str,
    lease: Duration,
) -> Result<bool> {
    Ok(sqlx::query!(
        r#"UPDATE idempotency_keys SET expires_at = now() + make_interval(secs => $4)
           WHERE principal = $1 AND key = $2 AND claim_token = $3 AND state = 'in_progress'"#,
        principal,
        key,
        claim_token,
        seconds(lease)
    )
    .execute(pool)
    .await?
    .rows_affected()
        == 1)
}

/// Stores the response of the request holding the claim, replayable for `ttl`. `false` if the
/// claim was lost (the response is then not stored).
pub async fn complete_idempotency_key(
    pool: &PgPool,
    r: IdempotencyRequest<'_>,
    response: (u16, &str, &[u8]),
    ttl: Duration,
) -> Result<bool> {
    let (status, content_type, body) = response;
    Ok(sqlx::query!(
        r#"UPDATE idempotency_keys
           SET state = 'completed', response_status = $4, response_type = $5, response_body = $6,
               expires_at = now() + make_interval(secs => $7)
           WHERE principal = $1 AND key = $2 AND claim_token = $3 AND state = 'in_progress'"#,
        r.principal,
        r.key,
        r.claim_token,
        i32::from(status),
        content_type,
        body,
        seconds(ttl)
    )
    .execute(pool)
    .await?
    .rows_affected()
        == 1)
}

/// Gives up the claim held by `claim_token` (the request failed in a way a retry may fix).
pub async fn release_idempotency_key(
    pool: &PgPool,
    principal: &str,
    key: &str,
    claim_token: &str,
) -> Result<()> {
    sqlx::query!(
        "DELETE FROM idempotency_keys WHERE principal = $1 AND key = $2 AND claim_token = $3 AND state = 'in_progress'",
        principal,
        key,
        claim_token
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Deletes expired idempotency records (stored responses past their TTL, abandoned claims past
/// their lease). Returns how many.
pub async fn purge_expired_idempotency_keys(pool: &PgPool) -> Result<u64> {
    Ok(
        sqlx::query!("DELETE FROM idempotency_keys WHERE expires_at < now()")
            .execute(pool)
            .await?
            .rows_affected(),
    )
}
