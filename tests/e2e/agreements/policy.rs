//! Owner policies enforced where an agent commits money or accepts terms: the buyer's at
//! proposal, the seller's at acceptance, the buyer's spending limits at activation (counted
//! atomically: twenty activations at once never pass a daily limit together), and the sponsored
//! settlement switch. A refusal is `403 policy_violation` naming the rule and the figures, and
//! changes nothing.

use pactum_client::types::{LifecycleStatus, Policy};

use super::{
    activation::{accepted, expected, signed},
    assert_open_counts, proposal,
};
use crate::relayer::Fixture;

/// Sets agent `agent`'s policy (from the default) as owner `acme`.
async fn set(f: &Fixture, agent: &str, policy: &Policy) -> eyre::Result<()> {
    let owner = f.owner_api("acme");
    let tag = owner.policy(agent).await?.etag;
    owner
        .put_policy(
            agent,
            &tag,
            policy,
            &format!("policy-{}", pactum_db::random_id(6)),
        )
        .await?;
    Ok(())
}

async fn stored(f: &Fixture) -> eyre::Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM usage_agreements")
        .fetch_one(f.db().pool())
        .await?)
}

/// The detail of a refusal, which must be a policy violation.
fn violation<T: std::fmt::Debug>(result: Result<T, pactum_client::Error>) -> eyre::Result<String> {
    match result {
        Err(pactum_client::Error::Problem(p)) if p.code == "policy_violation" => {
            assert_eq!(p.status, 403);
            Ok(p.detail)
        }
        other => eyre::bail!("expected a policy violation, got {other:?}"),
    }
}

#[tokio::test]
async fn the_buyers_policy_governs_its_proposals() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    set(
        &f,
        "buyer",
        &Policy {
            max_price_per_unit_cents: Some(8),
            blocked_services: Some(vec!["svc_banned".into()]),
            max_open_agreements: Some(1),
            ..Policy::default()
        },
    )
    .await?;
    // 10 cents a call: above the buyer's 8. Named with the figures; nothing stored.
    let detail = violation(f.buyer_api.propose(&proposal(&f), "p1").await)?;
    assert!(detail.contains("max_price_per_unit_cents"), "{detail}");
    assert!(
        detail.contains("10 cents") && detail.contains("limit of 8"),
        "{detail}"
    );
    let mut banned = proposal(&f);
    banned.price_per_unit_cents = 8;
    banned.service_id = "svc_banned".into();
    let detail = violation(f.buyer_api.propose(&banned, "p2").await)?;
    assert!(detail.contains("blocked_services"), "{detail}");
    assert_eq!(stored(&f).await?, 0);
    // Within the rules: proposed. A second open one is one too many.
    let mut fine = proposal(&f);
    fine.price_per_unit_cents = 8;
    assert_eq!(f.buyer_api.propose(&fine, "p3").await?.status, 201);
    let detail = violation(f.buyer_api.propose(&fine, "p4").await)?;
    assert!(detail.contains("max_open_agreements"), "{detail}");
    assert_eq!(stored(&f).await?, 1);
    assert_open_counts(&f).await?;
    Ok(())
}

#[tokio::test]
async fn the_sellers_policy_governs_its_acceptances() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    set(
        &f,
        "seller",
        &Policy {
            min_price_per_unit_cents: Some(20),
            ..Policy::default()
        },
    )
    .await?;
    let id = f
        .buyer_api
        .propose(&proposal(&f), "p")
        .await?
        .body
        .agreement_id;
    let detail = violation(f.seller_api.accept(&id, "a").await)?;
    assert!(detail.contains("min_price_per_unit_cents"), "{detail}");
    assert!(detail.contains("minimum of 20"), "{detail}");
    // Still a proposal, which the seller may still reject.
    let view = f.seller_api.usage_agreement(&id).await?;
    assert_eq!(view.status, LifecycleStatus::Proposed);
    assert!(view.onchain_agreement_id.is_none());
    f.seller_api.reject(&id, "below our price", "r").await?;
    assert_open_counts(&f).await?;
    Ok(())
}

#[tokio::test]
async fn twenty_activations_at_once_never_pass_the_daily_limit() -> eyre::Result<()> {
    let mut f = Fixture::new(|_| {}).await?;
    f.index().await?;
    f.start_worker().await?;
    // Each agreement is 100 calls at 10 cents: $10. The day allows five.
    set(
        &f,
        "buyer",
        &Policy {
            daily_limit_cents: Some(5_000),
            monthly_limit_cents: Some(20_000),
            ..Policy::default()
        },
    )
    .await?;
    let expected = expected(&f);
    let mut packages = Vec::new();
    for _ in 0..20 {
        let id = accepted(&f, &f.buyer_api, &proposal(&f)).await?;
        let body = signed(&f.buyer_api, &id, &f.chain.buyer, &expected).await?;
        packages.push((id, body));
    }
    let mut submissions = tokio::task::JoinSet::new();
    for (id, body) in packages {
        let api = f.buyer_api.clone();
        submissions.spawn(async move {
            let key = format!("act-{id}");
            api.activate_escrow(&id, &body, &key).await
        });
    }
    let (mut accepted_n, mut refused_n) = (0, 0);
    while let Some(answer) = submissions.join_next().await {
        match answer? {
            Ok(written) => {
                assert_eq!(written.status, 202);
                accepted_n += 1;
            }
            Err(err) => {
                let detail = violation::<()>(Err(err))?;
                assert!(detail.contains("daily_limit_cents"), "{detail}");
                refused_n += 1;
            }
        }
    }
    assert_eq!((accepted_n, refused_n), (5, 15));
    let (rows, cents): (i64, i64) = sqlx::query_as(
        "SELECT count(*), coalesce(sum(cents), 0)::bigint FROM policy_spending WHERE agent_id = 'buyer'",
    )
    .fetch_one(f.db().pool())
    .await?;
    assert_eq!((rows, cents), (5, 5_000));
    assert_eq!(f.jobs().await?, 5);
    Ok(())
}

#[tokio::test]
async fn an_owner_can_turn_sponsored_settlement_off() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    f.index().await?;
    let (_, id) = f.active_agreement("policy-sponsored").await?;
    set(
        &f,
        "seller",
        &Policy {
            sponsored_settlement: Some(false),
            ..Policy::default()
        },
    )
    .await?;
    let deadline = f.now().await? + 3_600;
    let body = f.sign(id).initiate_close(&f.chain.seller, deadline).await?;
    let detail = violation(
        f.seller_api
            .sponsor_initiate_close(id, &body, "close")
            .await,
    )?;
    assert!(detail.contains("sponsored_settlement"), "{detail}");
    assert_eq!(f.jobs().await?, 0);
    Ok(())
}

#[tokio::test]
async fn every_proposal_and_acceptance_rule_refuses_by_name() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let listed = |v: &str| Some(vec![v.to_owned()]);
    // The buyer's rules, one at a time, against the standard proposal (100 × 10 cents of
    // svc_abc123 api_calls on stablecoin, to agent "seller").
    let buyer_rules = [
        (
            Policy {
                max_per_agreement_cents: Some(999),
                ..Policy::default()
            },
            "max_per_agreement_cents",
        ),
        (
            Policy {
                allowed_counterparties: listed("someone-else"),
                ..Policy::default()
            },
            "allowed_counterparties",
        ),
        (
            Policy {
                blocked_counterparties: listed("seller"),
                ..Policy::default()
            },
            "blocked_counterparties",
        ),
        (
            Policy {
                allowed_services: listed("svc_other"),
                ..Policy::default()
            },
            "allowed_services",
        ),
        (
            Policy {
                allowed_units: listed("tokens"),
                ..Policy::default()
            },
            "allowed_units",
        ),
        (
            Policy {
                allowed_rails: listed("card"),
                ..Policy::default()
            },
            "allowed_rails",
        ),
    ];
    for (n, (policy, rule)) in buyer_rules.iter().enumerate() {
        set(&f, "buyer", policy).await?;
        let detail = violation(
            f.buyer_api
                .propose(&proposal(&f), &format!("refused-{n}"))
                .await,
        )?;
        assert!(detail.contains(rule), "{rule}: {detail}");
    }
    assert_eq!(stored(&f).await?, 0);
    set(&f, "buyer", &Policy::default()).await?;

    // The seller's, at acceptance (the proposal is made once, then answered under each rule).
    let id = f
        .buyer_api
        .propose(&proposal(&f), "p")
        .await?
        .body
        .agreement_id;
    let seller_rules = [
        (
            Policy {
                max_per_agreement_cents: Some(999),
                ..Policy::default()
            },
            "max_per_agreement_cents",
        ),
        (
            Policy {
                allowed_counterparties: listed("someone-else"),
                ..Policy::default()
            },
            "allowed_counterparties",
        ),
        (
            Policy {
                blocked_counterparties: listed("buyer"),
                ..Policy::default()
            },
            "blocked_counterparties",
        ),
        (
            Policy {
                blocked_services: listed("svc_abc123"),
                ..Policy::default()
            },
            "blocked_services",
        ),
        (
            Policy {
                allowed_units: listed("tokens"),
                ..Policy::default()
            },
            "allowed_units",
        ),
        (
            Policy {
                allowed_rails: listed("card"),
                ..Policy::default()
            },
            "allowed_rails",
        ),
    ];
    for (n, (policy, rule)) in seller_rules.iter().enumerate() {
        set(&f, "seller", policy).await?;
        let detail = violation(f.seller_api.accept(&id, &format!("a{n}")).await)?;
        assert!(detail.contains(rule), "{rule}: {detail}");
    }
    // The seller's open agreements are those it accepted: proposals it merely received do not
    // count (nobody can fill its limit by proposing to it), one it accepted does.
    set(
        &f,
        "seller",
        &Policy {
            max_open_agreements: Some(1),
            ..Policy::default()
        },
    )
    .await?;
    let mut others = Vec::new();
    for n in 0..3 {
        let other = f
            .buyer_api
            .propose(&proposal(&f), &format!("p-other-{n}"))
            .await?
            .body
            .agreement_id;
        others.push(other);
    }
    assert_eq!(
        f.seller_api
            .accept(&others[0], "a-other")
            .await?
            .body
            .status,
        LifecycleStatus::Accepted
    );
    let detail = violation(f.seller_api.accept(&id, "a-open").await)?;
    assert!(detail.contains("1 agreements are open"), "{detail}");
    super::assert_open_counts(&f).await?;
    Ok(())
}

#[tokio::test]
async fn the_monthly_limit_counts_too() -> eyre::Result<()> {
    let mut f = Fixture::new(|_| {}).await?;
    f.index().await?;
    f.start_worker().await?;
    set(
        &f,
        "buyer",
        &Policy {
            monthly_limit_cents: Some(1_500),
            ..Policy::default()
        },
    )
    .await?;
    let expected = expected(&f);
    let first = accepted(&f, &f.buyer_api, &proposal(&f)).await?;
    let body = signed(&f.buyer_api, &first, &f.chain.buyer, &expected).await?;
    assert_eq!(
        f.buyer_api
            .activate_escrow(&first, &body, "a1")
            .await?
            .status,
        202
    );
    let second = accepted(&f, &f.buyer_api, &proposal(&f)).await?;
    let body = signed(&f.buyer_api, &second, &f.chain.buyer, &expected).await?;
    let detail = violation(f.buyer_api.activate_escrow(&second, &body, "a2").await)?;
    assert!(detail.contains("monthly_limit_cents"), "{detail}");
    assert!(
        detail.contains("1000 cents committed this month + 1000"),
        "{detail}"
    );
    // Refused before the relayer was asked: the agreement can still be activated later.
    assert_eq!(
        f.buyer_api.usage_agreement(&second).await?.status,
        LifecycleStatus::Accepted
    );
    assert_eq!(f.jobs().await?, 1);
    Ok(())
}
