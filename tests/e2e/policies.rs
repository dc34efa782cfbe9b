//! Owner policies through the API: the default, versioned writes with `ETag`/`If-Match` (428
//! without it, 412 when stale, exactly one of two racing edits wins), refusals naming the rule,
//! who may read and who may write.

use alloy::transports::http::reqwest::Method;
use pactum_client::types::Policy;

use crate::{agreements::problem, relayer::Fixture};

#[tokio::test]
async fn a_policy_starts_as_the_default_and_changes_only_from_the_version_read() -> eyre::Result<()>
{
    let f = Fixture::new(|_| {}).await?;
    let owner = f.owner_api("acme");
    let default = owner.policy("buyer").await?;
    assert_eq!(default.version, 0);
    assert_eq!(default.etag, "\"p0\"");
    assert_eq!(default.policy, Policy::default());
    // The agent reads its own policy; the header carries the same tag.
    let raw = f
        .buyer_api
        .send_raw(Method::GET, "agents/buyer/policies", &[], None)
        .await?;
    assert_eq!(raw.status.as_u16(), 200);
    assert_eq!(raw.header("etag"), Some("\"p0\""));

    let rules = Policy {
        daily_limit_cents: Some(10_000),
        max_price_per_unit_cents: Some(50),
        allowed_rails: Some(vec!["stablecoin".into()]),
        ..Policy::default()
    };
    // Without If-Match: 428, nothing written.
    let answer = owner
        .send_raw(
            Method::PUT,
            "agents/buyer/policies",
            &[],
            Some(serde_json::to_vec(&rules)?),
        )
        .await?;
    assert_eq!(answer.status.as_u16(), 428, "{}", answer.text());
    assert_eq!(
        answer.json::<serde_json::Value>()?["code"],
        "precondition_required"
    );

    let v1 = owner.put_policy("buyer", "\"p0\"", &rules, "put-1").await?;
    assert_eq!(v1.status, 200);
    assert_eq!(v1.body.version, 1);
    assert_eq!(v1.body.policy, rules);
    assert_eq!(v1.body.updated_by.as_deref(), Some("owner:acme"));
    // The same request again is answered as it was, not applied twice.
    let again = owner.put_policy("buyer", "\"p0\"", &rules, "put-1").await?;
    assert!(again.replayed);
    assert_eq!(again.body.version, 1);
    // A write from the version before is stale: 412, and nothing changes.
    let stale = Policy {
        daily_limit_cents: Some(1),
        ..Policy::default()
    };
    let refused = owner.put_policy("buyer", "\"p0\"", &stale, "put-2").await;
    assert_eq!(problem(refused)?, (412, "precondition_failed".into()));
    assert_eq!(owner.policy("buyer").await?.policy, rules);
    // Clearing every rule is a version too.
    let cleared = owner
        .put_policy("buyer", "\"p1\"", &Policy::default(), "put-3")
        .await?;
    assert_eq!(cleared.body.version, 2);
    assert_eq!(cleared.body.policy, Policy::default());
    Ok(())
}

#[tokio::test]
async fn two_edits_from_the_same_version_one_wins() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let (a, b) = (f.owner_api("acme"), f.owner_api("acme"));
    let first = Policy {
        max_open_agreements: Some(5),
        ..Policy::default()
    };
    let second = Policy {
        max_open_agreements: Some(9),
        ..Policy::default()
    };
    let (x, y) = tokio::join!(
        a.put_policy("seller", "\"p0\"", &first, "edit-a"),
        b.put_policy("seller", "\"p0\"", &second, "edit-b"),
    );
    let outcomes = [x, y];
    let won: Vec<_> = outcomes.iter().filter(|r| r.is_ok()).collect();
    assert_eq!(won.len(), 1, "{outcomes:?}");
    for lost in outcomes.into_iter().filter(Result::is_err) {
        assert_eq!(problem(lost)?, (412, "precondition_failed".into()));
    }
    let now = a.policy("seller").await?;
    assert_eq!(now.version, 1);
    assert!(now.policy == first || now.policy == second);
    Ok(())
}

#[tokio::test]
async fn bad_policies_name_the_rule_and_only_the_owner_writes() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let owner = f.owner_api("acme");
    let put = |body: &'static str, key: String| {
        let owner = owner.clone();
        async move {
            let answer = owner
                .send_raw(
                    Method::PUT,
                    "agents/buyer/policies",
                    &[("if-match", "\"p0\""), ("idempotency-key", &key)],
                    Some(body.as_bytes().to_vec()),
                )
                .await?;
            eyre::Ok((answer.status.as_u16(), answer.json::<serde_json::Value>()?))
        }
    };
    for (n, (body, rule)) in [
        (r#"{"max_spend": 5}"#, "max_spend"),
        (r#"{"daily_limit_cents": -1}"#, "daily_limit_cents"),
        (
            r#"{"daily_limit_cents": 500, "monthly_limit_cents": 100}"#,
            "daily_limit_cents",
        ),
        (r#"{"allowed_units": []}"#, "allowed_units"),
        (r#"{"max_open_agreements": 0}"#, "max_open_agreements"),
        (r#"["daily_limit_cents"]"#, "document"),
    ]
    .into_iter()
    .enumerate()
    {
        let (status, problem) = put(body, format!("bad-{n}")).await?;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(problem["code"], "invalid_policy");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(rule),
            "{body}: {problem}"
        );
    }
    assert_eq!(owner.policy("buyer").await?.version, 0);

    // The agent reads but does not write its policy; another owner neither.
    let rules = Policy {
        sponsored_settlement: Some(false),
        ..Policy::default()
    };
    assert_eq!(
        problem(f.buyer_api.put_policy("buyer", "\"p0\"", &rules, "k").await)?,
        (403, "owner_only".into())
    );
    let mut conn = f.db().pool().acquire().await?;
    pactum_db::identity::create_owner(&mut conn, "globex", "Globex", "ops@globex.test").await?;
    drop(conn);
    let stranger = f.owner_api("globex");
    assert_eq!(
        problem(stranger.policy("buyer").await)?,
        (404, "agent_not_found".into())
    );
    assert_eq!(
        problem(stranger.put_policy("buyer", "\"p0\"", &rules, "k").await)?,
        (404, "agent_not_found".into())
    );
    assert_eq!(
        problem(f.buyer_api.policy("seller").await)?,
        (404, "agent_not_found".into())
    );
    Ok(())
}
