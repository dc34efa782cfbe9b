//! The usage-agreement lifecycle through the API, on a real Anvil and PostgreSQL: proposals and
//! their validation, the seller's answer (and its races), what acceptance fixes on chain, the
//! merged view once the escrow is activated, visibility, the paged list and expiry.

pub(crate) mod activation;
mod approval;
mod policy;
mod usage;

use alloy::primitives::keccak256;
use pactum_bindings::{Agreement, eip712};
use pactum_client::{
    Error,
    types::{
        ActivationStatus, EventKind, LifecycleStatus, ListAgreements, PaymentMethod,
        ProposeAgreement, Role, UsageAgreementView,
    },
};
use pactum_devnet::scenario;

use crate::relayer::Fixture;

/// The reference's example body, from the fixture's buyer to its seller.
pub(crate) fn proposal(f: &Fixture) -> ProposeAgreement {
    ProposeAgreement {
        seller_agent_id: "seller".into(),
        service_id: "svc_abc123".into(),
        quantity: 100,
        unit: "api_calls".into(),
        price_per_unit_cents: 10,
        payment_method: PaymentMethod {
            rail: "stablecoin".into(),
            provider: "x402".into(),
        },
        settlement_model: "bilateral_escrow".into(),
        activation_version: "v2".into(),
        buyer_wallet_address: f.chain.buyer.address().to_string(),
        close_window_seconds: None,
        expires_in_seconds: None,
        metadata: Some(serde_json::json!({ "order": "po-1" })),
    }
}

pub(crate) async fn propose(f: &Fixture, key: &str) -> eyre::Result<UsageAgreementView> {
    let written = f.buyer_api.propose(&proposal(f), key).await?;
    eyre::ensure!(written.status == 201, "status {}", written.status);
    Ok(written.body)
}

/// The problem `result` failed with: its status and code.
pub(crate) fn problem<T: std::fmt::Debug>(result: Result<T, Error>) -> eyre::Result<(u16, String)> {
    match result {
        Err(Error::Problem(p)) => Ok((p.status, p.code)),
        other => eyre::bail!("expected a problem, got {other:?}"),
    }
}

async fn stored(f: &Fixture) -> eyre::Result<i64> {
    Ok(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM usage_agreements")
            .fetch_one(f.db().pool())
            .await?,
    )
}

/// The escrow's terms as the view states them.
pub(crate) fn terms_of(v: &UsageAgreementView) -> eyre::Result<Agreement> {
    let t = &v.terms;
    Ok(Agreement {
        buyer: t.buyer.parse()?,
        seller: t.seller.parse()?,
        token: t.token.parse()?,
        maxAmount: t.max_amount.parse()?,
        infraFee: t.infra_fee.parse()?,
        expiry: t.expiry,
        closeWindow: t.close_window,
        salt: t
            .salt
            .as_deref()
            .ok_or_else(|| eyre::eyre!("no salt before acceptance"))?
            .parse()?,
    })
}

#[tokio::test]
async fn a_proposal_accepted_fixes_its_escrow_and_the_view_follows_the_chain() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let proposed = propose(&f, "propose-1").await?;
    assert_eq!(proposed.status, LifecycleStatus::Proposed);
    assert!(proposed.agreement_id.starts_with("agr_"));
    // 100 calls at 10 cents: $10, in USDC's 6 decimals; the 1 % fee on top.
    assert_eq!(proposed.terms.max_amount, "10000000");
    assert_eq!(proposed.terms.infra_fee, "100000");
    assert_eq!(proposed.terms.close_window, 3_600);
    assert_eq!(proposed.terms.salt, None);
    assert_eq!(proposed.onchain_agreement_id, None);
    assert_eq!(proposed.your_roles, vec![Role::Buyer]);
    assert_eq!(proposed.metadata, serde_json::json!({ "order": "po-1" }));
    let kinds = |v: &UsageAgreementView| v.history.iter().map(|e| e.kind).collect::<Vec<_>>();
    assert_eq!(kinds(&proposed), vec![EventKind::Proposed]);
    assert_eq!(proposed.history[0].actor, "agent:buyer");
    // The same request under the same key: the same agreement, not a second one.
    let replay = f.buyer_api.propose(&proposal(&f), "propose-1").await?;
    assert!(replay.replayed);
    assert_eq!(replay.body.agreement_id, proposed.agreement_id);
    assert_eq!(stored(&f).await?, 1);

    let id = proposed.agreement_id.as_str();
    let seen = f.seller_api.usage_agreement(id).await?;
    assert_eq!(seen.your_roles, vec![Role::Seller]);
    // The buyer cannot accept its own proposal.
    assert_eq!(
        problem(f.buyer_api.accept(id, "self-accept").await)?,
        (403, "not_seller".into())
    );

    let accepted = f.seller_api.accept(id, "accept-1").await?;
    assert_eq!(accepted.status, 200);
    let accepted = accepted.body;
    assert_eq!(accepted.status, LifecycleStatus::Accepted);
    assert_eq!(
        kinds(&accepted),
        vec![EventKind::Proposed, EventKind::Accepted]
    );
    // The salt derives from the agreement's id, and so the on-chain id from the terms.
    let salt = keccak256(format!("pactum.usage-agreement:{id}"));
    assert_eq!(accepted.terms.salt, Some(salt.to_string()));
    let terms = terms_of(&accepted)?;
    assert_eq!(terms.buyer, f.chain.buyer.address());
    assert_eq!(terms.seller, f.chain.seller.address());
    assert_eq!(terms.token, f.chain.deployment.token);
    let onchain = eip712::agreement_id(&terms, &f.domain());
    assert_eq!(accepted.onchain_agreement_id, Some(onchain.to_string()));
    // Replayed; accepted again under another key (a retry whose first answer was lost with its
    // process): answered with the agreement as it is, nothing written; the other answer: 409.
    assert!(f.seller_api.accept(id, "accept-1").await?.replayed);
    let again = f.seller_api.accept(id, "accept-2").await?;
    assert_eq!((again.status, again.body.history.len()), (200, 2));
    assert_eq!(
        problem(
            f.seller_api
                .reject(id, "changed my mind", "reject-after")
                .await
        )?,
        (409, "invalid_transition".into())
    );

    // The buyer activates those terms on chain (the activation endpoint comes next); once
    // indexed, the chain decides the status and the escrow is part of the view.
    scenario::activate(
        &f.chain.provider,
        &f.chain.deployment,
        &terms,
        &f.chain.buyer,
        f.chain.relayer.address(),
    )
    .await?;
    f.index().await?;
    let active = f.buyer_api.usage_agreement(id).await?;
    assert_eq!(active.status, LifecycleStatus::Active);
    assert!(matches!(
        active.activation_status,
        Some(ActivationStatus::Submitted | ActivationStatus::Confirmed)
    ));
    assert!(active.activation_tx_hash.is_some());
    let escrow = active.escrow.ok_or_else(|| eyre::eyre!("no escrow"))?;
    assert_eq!(escrow.agreement_id, onchain.to_string());
    assert_eq!(escrow.deposited, "10000000");
    // escrow-status and the settlement routes take the API id too.
    let by_api_id = f
        .buyer_api
        .send_raw(
            alloy::transports::http::reqwest::Method::GET,
            &format!("usage-agreements/{id}/escrow-status"),
            &[],
            None,
        )
        .await?;
    assert_eq!(by_api_id.status.as_u16(), 200, "{}", by_api_id.text());
    let by_api_id: pactum_client::types::EscrowStatus = by_api_id.json()?;
    assert_eq!(by_api_id.agreement_id, onchain.to_string());
    Ok(())
}

/// The process dies after a write committed but before its idempotency record was stored (the
/// record is removed here to stand for that): the retry under the same key proposes nothing
/// new and answers with the agreement made; the seller's accept, retried the same way, answers
/// with the agreement as accepted instead of a 409.
#[tokio::test]
async fn a_retry_after_a_lost_answer_repeats_nothing() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let first = propose(&f, "lost-1").await?;
    let forget = |key: &'static str| {
        let pool = f.db().pool().clone();
        async move {
            sqlx::query("DELETE FROM idempotency_keys WHERE key = $1")
                .bind(key)
                .execute(&pool)
                .await
        }
    };
    forget("lost-1").await?;
    let before = stored(&f).await?;
    let again = f.buyer_api.propose(&proposal(&f), "lost-1").await?;
    assert!(
        !again.replayed,
        "the idempotency record was gone: this ran again"
    );
    assert_eq!(again.body.agreement_id, first.agreement_id);
    assert_eq!(stored(&f).await?, before, "no second proposal");
    // Another key is another proposal.
    assert_ne!(
        propose(&f, "lost-2").await?.agreement_id,
        first.agreement_id
    );

    let accepted = f
        .seller_api
        .accept(&first.agreement_id, "acc-1")
        .await?
        .body;
    forget("acc-1").await?;
    let again = f.seller_api.accept(&first.agreement_id, "acc-1").await?;
    assert_eq!(
        (again.status, again.body.status),
        (200, LifecycleStatus::Accepted)
    );
    assert_eq!(
        again.body.history.len(),
        accepted.history.len(),
        "nothing written twice"
    );
    Ok(())
}

#[tokio::test]
async fn a_rejection_carries_its_reason_and_ends_the_proposal() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let id = propose(&f, "p").await?.agreement_id;
    assert_eq!(
        problem(f.seller_api.reject(&id, "  ", "blank").await)?,
        (422, "invalid_field".into())
    );
    assert_eq!(
        problem(f.buyer_api.reject(&id, "changed my mind", "buyer").await)?,
        (403, "not_seller".into())
    );
    let rejected = f
        .seller_api
        .reject(&id, "capacity is booked this week", "r")
        .await?
        .body;
    // Retried under the same key: the stored answer, not a second rejection.
    let replay = f
        .seller_api
        .reject(&id, "capacity is booked this week", "r")
        .await?;
    assert!(replay.replayed);
    assert_eq!(replay.body.history.len(), 2);
    assert_eq!(rejected.status, LifecycleStatus::Rejected);
    assert_eq!(
        rejected.rejection_reason.as_deref(),
        Some("capacity is booked this week")
    );
    let last = rejected
        .history
        .last()
        .ok_or_else(|| eyre::eyre!("no history"))?;
    assert_eq!(last.kind, EventKind::Rejected);
    assert_eq!(last.detail["reason"], "capacity is booked this week");
    assert_eq!(
        problem(f.seller_api.accept(&id, "too-late").await)?,
        (409, "invalid_transition".into())
    );
    assert_eq!(
        f.buyer_api.usage_agreement(&id).await?.onchain_agreement_id,
        None
    );
    Ok(())
}

/// Acceptances and rejections of the same proposals at once: for each, exactly one wins, the
/// other gets 409, and the history records only the winner.
#[tokio::test]
async fn accept_and_reject_racing_exactly_one_wins() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let seller_owner = f.owner_api("acme");
    for n in 0..6 {
        let id = propose(&f, &format!("race-{n}")).await?.agreement_id;
        let (accept_key, reject_key) = (format!("a-{n}"), format!("r-{n}"));
        let (accept, reject) = tokio::join!(
            f.seller_api.accept(&id, &accept_key),
            seller_owner.reject(&id, "no", &reject_key),
        );
        let outcome = match (accept, reject) {
            (Ok(_), Err(Error::Problem(p))) if p.status == 409 => LifecycleStatus::Accepted,
            (Err(Error::Problem(p)), Ok(_)) if p.status == 409 => LifecycleStatus::Rejected,
            other => eyre::bail!("not exactly one winner: {other:?}"),
        };
        let view = f.buyer_api.usage_agreement(&id).await?;
        assert_eq!(view.status, outcome);
        assert_eq!(view.history.len(), 2, "{:?}", view.history);
    }
    Ok(())
}

#[tokio::test]
async fn every_bad_proposal_gets_its_code_and_stores_nothing() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let base = proposal(&f);
    let cases: Vec<(ProposeAgreement, u16, &str)> = vec![
        (
            ProposeAgreement {
                seller_agent_id: "nobody".into(),
                ..base.clone()
            },
            422,
            "unknown_seller",
        ),
        (
            ProposeAgreement {
                seller_agent_id: "buyer".into(),
                ..base.clone()
            },
            422,
            "seller_is_buyer",
        ),
        (
            ProposeAgreement {
                quantity: 0,
                ..base.clone()
            },
            422,
            "invalid_quantity",
        ),
        (
            ProposeAgreement {
                quantity: -3,
                ..base.clone()
            },
            422,
            "invalid_quantity",
        ),
        (
            ProposeAgreement {
                price_per_unit_cents: 0,
                ..base.clone()
            },
            422,
            "invalid_price",
        ),
        (
            ProposeAgreement {
                quantity: i64::MAX,
                price_per_unit_cents: i64::MAX,
                ..base.clone()
            },
            422,
            "amount_overflow",
        ),
        (
            ProposeAgreement {
                payment_method: PaymentMethod {
                    rail: "card".into(),
                    provider: "x402".into(),
                },
                ..base.clone()
            },
            422,
            "unsupported_rail",
        ),
        (
            ProposeAgreement {
                payment_method: PaymentMethod {
                    rail: "stablecoin".into(),
                    provider: "acme-pay".into(),
                },
                ..base.clone()
            },
            422,
            "unsupported_provider",
        ),
        (
            ProposeAgreement {
                settlement_model: "prepaid".into(),
                ..base.clone()
            },
            422,
            "unsupported_settlement_model",
        ),
        (
            ProposeAgreement {
                activation_version: "v1".into(),
                ..base.clone()
            },
            422,
            "unsupported_activation_version",
        ),
        (
            ProposeAgreement {
                buyer_wallet_address: f.chain.seller.address().to_string(),
                ..base.clone()
            },
            422,
            "buyer_wallet_mismatch",
        ),
        (
            ProposeAgreement {
                buyer_wallet_address: "0xBuyerWallet...".into(),
                ..base.clone()
            },
            422,
            "buyer_wallet_mismatch",
        ),
        (
            ProposeAgreement {
                service_id: "".into(),
                ..base.clone()
            },
            422,
            "invalid_field",
        ),
        (
            ProposeAgreement {
                close_window_seconds: Some(5),
                ..base.clone()
            },
            422,
            "invalid_close_window",
        ),
        (
            ProposeAgreement {
                expires_in_seconds: Some(10),
                ..base.clone()
            },
            422,
            "invalid_expiry",
        ),
        (
            ProposeAgreement {
                metadata: Some(serde_json::json!("text")),
                ..base.clone()
            },
            422,
            "invalid_metadata",
        ),
    ];
    for (n, (body, status, code)) in cases.into_iter().enumerate() {
        let answer = f.buyer_api.propose(&body, &format!("bad-{n}")).await;
        assert_eq!(problem(answer)?, (status, code.to_owned()), "case {n}");
    }
    // Not JSON of the right shape, and an owner instead of the buyer's agent.
    let raw = f
        .buyer_api
        .send_raw(
            alloy::transports::http::reqwest::Method::POST,
            "usage-agreements",
            &[("idempotency-key", "malformed")],
            Some(br#"{"quantity": 1.5}"#.to_vec()),
        )
        .await?;
    assert_eq!(raw.status.as_u16(), 400);
    assert_eq!(raw.problem()?.code, "invalid_body");
    assert_eq!(
        problem(f.owner_api("acme").propose(&base, "owner").await)?,
        (403, "forbidden".into())
    );
    assert_eq!(stored(&f).await?, 0);
    Ok(())
}

/// The parties' agents and owners see an agreement; anyone else gets the 404 of an unknown id.
#[tokio::test]
async fn only_the_parties_and_their_owners_see_an_agreement() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let id = propose(&f, "p").await?.agreement_id;
    let stranger = f
        .other_owner(
            "globex",
            "globex-agent",
            &alloy::signers::local::PrivateKeySigner::random(),
        )
        .await?;
    let unknown = "agr_aaaaaaaaaaaaaaaaaaaa";
    for api in [&stranger, &f.owner_api("globex")] {
        assert_eq!(
            problem(api.usage_agreement(&id).await)?,
            (404, "agreement_not_found".into())
        );
        assert_eq!(
            problem(api.usage_agreement(unknown).await)?,
            (404, "agreement_not_found".into())
        );
        assert_eq!(
            problem(api.accept(&id, "stranger").await)?,
            (404, "agreement_not_found".into())
        );
        assert_eq!(
            problem(
                api.agent_agreements("buyer", &ListAgreements::default())
                    .await
            )?,
            (404, "agent_not_found".into())
        );
    }
    // acme owns both agents here: it sees the agreement in both roles.
    let owner_view = f.owner_api("acme").usage_agreement(&id).await?;
    assert_eq!(owner_view.your_roles, vec![Role::Buyer, Role::Seller]);
    let listed = f
        .owner_api("acme")
        .agent_agreements("seller", &ListAgreements::default())
        .await?;
    assert_eq!(listed.agreements.len(), 1);
    Ok(())
}

#[tokio::test]
async fn an_agents_agreements_page_newest_first_with_filters() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let mut ids = Vec::new();
    for n in 0..7 {
        ids.push(propose(&f, &format!("p-{n}")).await?.agreement_id);
    }
    f.seller_api.accept(&ids[1], "a1").await?;
    f.seller_api.accept(&ids[4], "a4").await?;
    f.seller_api.reject(&ids[5], "no", "r5").await?;
    // A proposal in the other direction: the buyer agent is its seller.
    let mut reverse = proposal(&f);
    reverse.seller_agent_id = "buyer".into();
    reverse.buyer_wallet_address = f.chain.seller.address().to_string();
    let reverse = f.seller_api.propose(&reverse, "reverse").await?.body;

    let f = &f;
    let list = |q: ListAgreements| async move { f.buyer_api.agent_agreements("buyer", &q).await };
    let page = |limit, cursor| ListAgreements {
        limit: Some(limit),
        cursor,
        ..ListAgreements::default()
    };
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let p = list(page(3, cursor)).await?;
        assert!(p.agreements.len() <= 3);
        seen.extend(p.agreements.into_iter().map(|a| a.agreement_id));
        match p.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    newest_first.insert(0, reverse.agreement_id.clone());
    assert_eq!(seen, newest_first);

    let only = |role, status| ListAgreements {
        role,
        status,
        ..ListAgreements::default()
    };
    let sold = list(only(Some(Role::Seller), None)).await?;
    assert_eq!(
        sold.agreements
            .iter()
            .map(|a| a.agreement_id.clone())
            .collect::<Vec<_>>(),
        vec![reverse.agreement_id.clone()]
    );
    let accepted = list(only(Some(Role::Buyer), Some(LifecycleStatus::Accepted))).await?;
    assert_eq!(
        accepted
            .agreements
            .iter()
            .map(|a| a.agreement_id.clone())
            .collect::<Vec<_>>(),
        vec![ids[4].clone(), ids[1].clone()]
    );
    let rejected = list(only(None, Some(LifecycleStatus::Rejected))).await?;
    assert_eq!(rejected.agreements.len(), 1);
    assert!(
        rejected.agreements[0].history.is_empty(),
        "a list carries no history"
    );

    for (query, code) in [
        ("limit=0", "invalid_parameter"),
        ("limit=101", "invalid_parameter"),
        ("cursor=abc", "invalid_cursor"),
        ("role=broker", "invalid_query"),
        ("status=lost", "invalid_query"),
    ] {
        let answer = f
            .buyer_api
            .send_raw(
                alloy::transports::http::reqwest::Method::GET,
                &format!("usage-agreements/agents/buyer/agreements?{query}"),
                &[],
                None,
            )
            .await?;
        assert_eq!(answer.status.as_u16(), 400, "{query}: {}", answer.text());
        assert_eq!(answer.problem()?.code, code, "{query}");
    }
    Ok(())
}

/// Terms past their expiry: shown `expired` at once, not answerable, listed as expired, and
/// recorded by the sweep with a `system` event.
#[tokio::test]
async fn a_proposal_past_its_expiry_is_expired() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let id = propose(&f, "p").await?.agreement_id;
    let live = propose(&f, "live").await?.agreement_id;
    // Time passes for this one (the minimum lifetime is five minutes).
    sqlx::query("UPDATE usage_agreements SET expiry = 1000 WHERE id = $1")
        .bind(&id)
        .execute(f.db().pool())
        .await?;
    assert_eq!(
        f.buyer_api.usage_agreement(&id).await?.status,
        LifecycleStatus::Expired
    );
    assert_eq!(
        problem(f.seller_api.accept(&id, "late").await)?,
        (409, "proposal_expired".into())
    );
    let only = |status| ListAgreements {
        status: Some(status),
        ..ListAgreements::default()
    };
    let ids = |p: pactum_client::types::AgreementPage| {
        p.agreements
            .into_iter()
            .map(|a| a.agreement_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(f
            .buyer_api
            .agent_agreements("buyer", &only(LifecycleStatus::Expired))
            .await?),
        vec![id.clone()]
    );
    assert_eq!(
        ids(f
            .buyer_api
            .agent_agreements("buyer", &only(LifecycleStatus::Proposed))
            .await?),
        vec![live.clone()]
    );
    let now = pactum_core::Clock::now_secs(&pactum_core::SystemClock);
    let mut conn = f.db().pool().acquire().await?;
    assert_eq!(
        pactum_db::agreements::expire_due(&mut conn, now, 100).await?,
        vec![id.clone()]
    );
    assert!(
        pactum_db::agreements::expire_due(&mut conn, now, 100)
            .await?
            .is_empty()
    );
    drop(conn);
    let view = f.buyer_api.usage_agreement(&id).await?;
    let last = view
        .history
        .last()
        .ok_or_else(|| eyre::eyre!("no history"))?;
    assert_eq!(
        (last.kind, last.actor.as_str()),
        (EventKind::Expired, "system")
    );
    assert_open_counts(&f).await?;
    Ok(())
}

/// Asserts that the open-agreement counters the trigger keeps equal a count of the agreements.
pub(crate) async fn assert_open_counts(f: &Fixture) -> eyre::Result<()> {
    let drift: Vec<(String, i64, i64)> = sqlx::query_as(
        "WITH actual AS (
           SELECT agent, count(*) AS n FROM (
             SELECT buyer_agent_id AS agent FROM usage_agreements
              WHERE status NOT IN ('rejected', 'expired', 'settled')
             UNION ALL
             SELECT seller_agent_id FROM usage_agreements
              WHERE status NOT IN ('pending_approval', 'proposed', 'rejected', 'expired', 'settled')) o
           GROUP BY agent)
         SELECT coalesce(a.agent, c.agent_id), coalesce(a.n, 0), coalesce(c.open, 0)
           FROM actual a FULL JOIN agent_open_agreements c ON c.agent_id = a.agent
          WHERE coalesce(a.n, 0) <> coalesce(c.open, 0)",
    )
    .fetch_all(f.db().pool())
    .await?;
    assert!(drift.is_empty(), "(agent, actual, counted): {drift:?}");
    Ok(())
}
