//! Owner policies: `GET` and `PUT /agents/{agent_id}/policies`. Versioned: `GET` answers the
//! version as an `ETag` (`"p<version>"`), and a `PUT` must name the version it replaces in
//! `If-Match` (428 without it, 412 when another write came first), so two owners' edits never
//! silently overwrite each other. No policy set is the default: version 0, no rule.

use pactum_api_types::PolicyView;
use pactum_core::policy::{Policy, PolicyCode};
use pactum_db::policies::{self, StoredPolicy};

use crate::{
    AppState,
    auth::Principal,
    identity::{owner_of, visible_agent},
    problem::Problem,
};

/// The entity tag of policy `version`.
pub fn etag(version: i64) -> String {
    format!("\"p{version}\"")
}

/// The version an `If-Match` value names (one strong tag), if it names one.
fn version_of(if_match: &str) -> Option<i64> {
    if_match
        .trim()
        .strip_prefix("\"p")?
        .strip_suffix('"')?
        .parse()
        .ok()
        // The next version must fit too.
        .filter(|v| (0..i64::MAX).contains(v))
}

/// The rules of a stored policy.
fn rules(agent_id: &str, stored: &StoredPolicy) -> Result<Policy, Problem> {
    serde_json::from_str(&stored.rules).map_err(|e| {
        tracing::error!(%e, agent_id, "stored policy does not parse");
        Problem::internal()
    })
}

/// Agent `agent_id`'s policy in force, read on `conn`.
pub(crate) async fn in_force(
    conn: &mut sqlx::PgConnection,
    agent_id: &str,
) -> Result<Policy, Problem> {
    let stored = policies::current(&mut *conn, agent_id).await?;
    rules(agent_id, &stored)
}

/// Refuses the sponsored settlement endpoints to an agent whose owner turned them off.
pub(crate) async fn check_sponsored(
    state: &AppState,
    principal: &Principal,
) -> Result<(), Problem> {
    let Principal::Agent { agent_id, .. } = principal else {
        return Ok(());
    };
    let mut conn = state.db.acquire().await?;
    in_force(&mut conn, agent_id).await?.check_sponsored()?;
    Ok(())
}

fn view(agent_id: String, stored: StoredPolicy) -> Result<PolicyView, Problem> {
    let policy = rules(&agent_id, &stored)?;
    Ok(PolicyView {
        agent_id,
        version: stored.version,
        etag: etag(stored.version),
        policy,
        updated_by: stored.updated_by,
        updated_at: stored.updated_at,
    })
}

/// `GET /agents/{agent_id}/policies`: the owner, or the agent itself.
pub(crate) async fn get(
    state: &AppState,
    principal: &Principal,
    agent_id: &str,
) -> Result<PolicyView, Problem> {
    let agent = visible_agent(state, principal, agent_id).await?;
    let stored = policies::current(state.db.pool(), &agent.agent.id).await?;
    view(agent.agent.id, stored)
}

/// `PUT /agents/{agent_id}/policies`: the owner replaces the version named in `if_match` with
/// `body` (a JSON object of rules; unknown rules and impossible values are 422 naming the rule).
pub(crate) async fn put(
    state: &AppState,
    principal: &Principal,
    agent_id: &str,
    if_match: Option<&str>,
    body: &[u8],
) -> Result<PolicyView, Problem> {
    let owner = owner_of(principal)?.to_owned();
    let agent = visible_agent(state, principal, agent_id).await?;
    // The body first: a malformed request is refused as such whatever its precondition.
    let policy = Policy::parse(body)?;
    let expected = match if_match {
        None => {
            return Err(Problem::policy(
                PolicyCode::PreconditionRequired,
                "send If-Match with the ETag of the policy you are replacing (\"p0\" when none is set)",
            ));
        }
        Some(raw) => version_of(raw).ok_or_else(|| {
            Problem::policy(
                PolicyCode::PreconditionFailed,
                format!("If-Match {raw:?} is not a policy ETag (\"p<version>\")"),
            )
        })?,
    };
    let rules = serde_json::to_string(&policy).map_err(|_| Problem::internal())?;
    let mut conn = state.db.acquire().await?;
    let by = format!("owner:{owner}");
    match policies::replace(&mut conn, &agent.agent.id, expected, &rules, &by).await? {
        Some(version) => {
            tracing::info!(agent_id, version, by, "policy replaced");
            view(
                agent.agent.id,
                policies::current(&mut *conn, agent_id).await?,
            )
        }
        None => {
            let now = policies::current(&mut *conn, agent_id).await?;
            Err(Problem::policy(
                PolicyCode::PreconditionFailed,
                format!(
                    "the policy is at {} now, not {}: read it again and reapply your change",
                    etag(now.version),
                    etag(expected)
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_names_one_strong_policy_tag() {
        assert_eq!(version_of("\"p0\""), Some(0));
        assert_eq!(version_of(" \"p12\" "), Some(12));
        for bad in [
            "p1",
            "\"1\"",
            "W/\"p1\"",
            "\"p-1\"",
            "\"p1\", \"p2\"",
            "*",
            "",
        ] {
            assert_eq!(version_of(bad), None, "{bad}");
        }
        assert_eq!(etag(3), "\"p3\"");
        assert_eq!(version_of(&etag(i64::MAX)), None);
    }
}
