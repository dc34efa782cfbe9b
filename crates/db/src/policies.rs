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
