//! The idempotency records that every write endpoint shares: a request's key, its fingerprint,
//! a lease while the first request runs, and the stored answer that every retry gets.

use std::time::Duration;

use sqlx::PgPool;

use crate::{Error, Result};

/// A stored idempotency record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Method of the original request.
    pub method: String,
    /// Path of the original request.
    pub path: String,
    /// SHA-256 of method, path and body of the original request.
    pub request_hash: [u8; 32],
    /// The stored response, once the original request completed.
    pub response: Option<StoredResponse>,
}

/// The answer to the original request, replayed to every retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: String,
    /// Body.
    pub body: Vec<u8>,
}

/// Outcome of claiming a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This request owns the key: run it, then [`complete`] or
    /// [`release`].
    Claimed,
    /// The key is taken (expired records are removed first).
    Existing(Record),
}

fn seconds(d: Duration) -> f64 {
    f64::from(u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

/// A request's identity for the idempotency store.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
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
///
/// A new key (nearly every write) costs one statement: the claim is tried first, and the record
/// is read only when the key is taken. (The conflicting row is locked by the attempt for the
/// statement's duration, as `ON CONFLICT DO UPDATE` does even when its `WHERE` fails.)
pub async fn claim(pool: &PgPool, r: Request<'_>, lease: Duration) -> Result<Claim> {
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
        if let Some(record) = load(pool, r.principal, r.key).await? {
            return Ok(Claim::Existing(record));
        }
        // It expired between the two statements: claim again.
    }
}

/// The unexpired record of `(principal, key)`, if any.
pub async fn load(pool: &PgPool, principal: &str, key: &str) -> Result<Option<Record>> {
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
            ("completed", Some(status), Some(kind), Some(body)) => Some(StoredResponse {
                status: u16::try_from(status).unwrap_or(500),
                content_type: kind,
                body,
            }),
            _ => None,
        };
        Ok(Record {
            method: r.method,
            path: r.path,
            request_hash,
            response,
        })
    })
    .transpose()
}

/// Extends the lease of a claim still held by `claim_token`; `false` if the claim was lost.
pub async fn renew_lease(
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
pub async fn complete(
    pool: &PgPool,
    r: Request<'_>,
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
pub async fn release(pool: &PgPool, principal: &str, key: &str, claim_token: &str) -> Result<()> {
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
pub async fn purge_expired(pool: &PgPool) -> Result<u64> {
    Ok(
        sqlx::query!("DELETE FROM idempotency_keys WHERE expires_at < now()")
            .execute(pool)
            .await?
            .rows_affected(),
    )
}
