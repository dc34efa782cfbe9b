//! Owner policies, versioned: every version kept, the highest is in force; no row is the
//! default policy at version 0.

use sqlx::PgConnection;

use crate::Result;

/// A policy version as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPolicy {
    /// 0 when no policy was ever set (the default).
    pub version: i64,
    /// The rules, as JSON text (`{}` for the default).
    pub rules: String,
    /// Who wrote it (`owner:<id>`), if anyone.
    pub updated_by: Option<String>,
    /// When (RFC 3339, UTC), if ever.
    pub updated_at: Option<String>,
}

/// The policy in force for agent `agent_id`.
pub async fn current<'e>(db: impl sqlx::PgExecutor<'e>, agent_id: &str) -> Result<StoredPolicy> {
    let row = sqlx::query!(
        r#"SELECT version, rules::text AS "rules!", updated_by,
                  to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS "updated_at!"
             FROM agent_policies WHERE agent_id = $1 ORDER BY version DESC LIMIT 1"#,
        agent_id
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map_or_else(
        || StoredPolicy {
            version: 0,
            rules: "{}".into(),
            updated_by: None,
            updated_at: None,
        },
        |r| StoredPolicy {
            version: r.version,
            rules: r.rules,
            updated_by: Some(r.updated_by),
            updated_at: Some(r.updated_at),
        },
    ))
}

/// Writes `rules` (JSON text) as the version after `expected` for agent `agent_id`, if
/// `expected` is the version in force; `None` when it is not (someone wrote meanwhile).
pub async fn replace(
    conn: &mut PgConnection,
    agent_id: &str,
    expected: i64,
    rules: &str,
    by: &str,
) -> Result<Option<i64>> {
    let inserted = sqlx::query_scalar!(
        r#"INSERT INTO agent_policies (agent_id, version, rules, updated_by)
           SELECT $1, $2::bigint + 1, $3::text::jsonb, $4
            WHERE (SELECT coalesce(max(version), 0) FROM agent_policies WHERE agent_id = $1) = $2::bigint
           ON CONFLICT DO NOTHING
           RETURNING version"#,
        agent_id,
        expected,
        rules,
        by,
    )
    .fetch_optional(conn)
    .await?;
    Ok(inserted)
}

/// Locks agent `agent_id`'s row until the transaction ends: activations of one agent are counted
/// against its limits one at a time.
pub async fn lock_agent(conn: &mut PgConnection, agent_id: &str) -> Result<()> {
    sqlx::query!(
        "SELECT 1 AS one FROM agents WHERE id = $1 FOR NO KEY UPDATE",
        agent_id
    )
    .fetch_optional(conn)
    .await?;
    Ok(())
}

/// What agent `agent_id` committed in activations in the current UTC day and calendar month,
/// in cents, leaving out agreement `except` (being counted again).
pub async fn spent(conn: &mut PgConnection, agent_id: &str, except: &str) -> Result<(u64, u64)> {
    let row = sqlx::query!(
        r#"SELECT
             coalesce(sum(cents) FILTER (
               WHERE counted_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), 0)::bigint AS "today!",
             coalesce(sum(cents) FILTER (
               WHERE counted_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), 0)::bigint AS "month!"
           FROM policy_spending
          WHERE agent_id = $1 AND agreement_id <> $2
            AND counted_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"#,
        agent_id,
        except,
    )
    .fetch_one(conn)
    .await?;
    Ok((
        u64::try_from(row.today).unwrap_or(0),
        u64::try_from(row.month).unwrap_or(0),
    ))
}

/// Counts agreement `agreement_id`'s activation of `cents` against agent `agent_id` (replacing
/// an earlier count of the same agreement).
pub async fn count(
    conn: &mut PgConnection,
    agreement_id: &str,
    agent_id: &str,
    cents: u64,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO policy_spending (agreement_id, agent_id, cents) VALUES ($1, $2, $3)
         ON CONFLICT (agreement_id) DO UPDATE SET cents = EXCLUDED.cents, counted_at = now()",
        agreement_id,
        agent_id,
        i64::try_from(cents).unwrap_or(i64::MAX),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes agreement `agreement_id`'s count (its submission was refused), if the submission
/// holding `claim` still holds the agreement (a stale claim taken over by another submission
/// leaves that one's count alone).
pub async fn uncount(conn: &mut PgConnection, agreement_id: &str, claim: &str) -> Result<()> {
    sqlx::query!(
        "DELETE FROM policy_spending s
          USING usage_agreements u
          WHERE s.agreement_id = $1 AND u.id = $1 AND u.activation_claim = $2",
        agreement_id,
        claim
    )
    .execute(conn)
    .await?;
    Ok(())
}
