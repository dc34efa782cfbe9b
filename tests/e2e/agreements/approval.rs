//! Approvals: a proposal above the buyer's owner's `approval_threshold_cents` waits in
//! `pending_approval` with an approval request until the owner approves it (the proposal goes
//! on to the seller), rejects it with a reason (the agreement ends `rejected`), or it expires.
//! Only the agent's owner decides; each decision is idempotent; an approval racing a rejection
//! has exactly one outcome; every decision is in the agreement's history.

use pactum_client::types::{
    ApprovalStatus, ApprovalView, EventKind, LifecycleStatus, ListApprovals, Policy,
};

use super::{assert_open_counts, problem, proposal};
use crate::relayer::Fixture;

/// A fixture whose buyer's owner must approve agreements above $5 (the reference proposal is
/// 100 calls at 10 cents: $10).
async fn with_threshold() -> eyre::Result<Fixture> {
    let f = Fixture::new(|_| {}).await?;
    let owner = f.owner_api("acme");
    let tag = owner.policy("buyer").await?.etag;
    let policy = Policy {
        approval_threshold_cents: Some(500),
        ..Policy::default()
    };
    owner
        .put_policy("buyer", &tag, &policy, "threshold")
        .await?;
    Ok(f)
}

/// Proposes the reference body; returns the agreement's and its approval request's ids.
async fn pending(f: &Fixture, key: &str) -> eyre::Result<(String, String)> {
    let written = f.buyer_api.propose(&proposal(f), key).await?;
    eyre::ensure!(written.status == 201, "status {}", written.status);
    let view = written.body;
    eyre::ensure!(
        view.status == LifecycleStatus::PendingApproval,
        "{:?}",
        view.status
    );
    let asked = view
        .history
        .iter()
        .find(|e| e.kind == EventKind::ApprovalRequested)
        .ok_or_else(|| eyre::eyre!("no approval_requested event"))?;
    let request = asked.detail["request_id"]
        .as_str()
        .ok_or_else(|| eyre::eyre!("no request id in {}", asked.detail))?;
    Ok((view.agreement_id, request.to_owned()))
}

fn only(status: ApprovalStatus) -> ListApprovals {
    ListApprovals {
        status: Some(status),
        ..ListApprovals::default()
    }
}

fn ids(page: &[ApprovalView]) -> Vec<&str> {
    page.iter().map(|r| r.request_id.as_str()).collect()
}

#[tokio::test]
async fn a_proposal_above_the_threshold_waits_for_the_owners_approval() -> eyre::Result<()> {
    let f = with_threshold().await?;
    let owner = f.owner_api("acme");
    let (id, request) = pending(&f, "p1").await?;
    // At or below the threshold: straight to the seller.
    let mut small = proposal(&f);
    small.quantity = 50;
    assert_eq!(
        f.buyer_api.propose(&small, "small").await?.body.status,
        LifecycleStatus::Proposed
    );
    // The seller sees it waiting and cannot answer it yet.
    assert_eq!(
        f.seller_api.usage_agreement(&id).await?.status,
        LifecycleStatus::PendingApproval
    );
    assert_eq!(
        problem(f.seller_api.accept(&id, "early").await)?,
        (409, "invalid_transition".into())
    );
    // The request, as the owner and the agent itself see it.
    let (_, second) = pending(&f, "p2").await?;
    let page = owner
        .approvals("buyer", &only(ApprovalStatus::Pending))
        .await?;
    assert_eq!(
        ids(&page.approvals),
        vec![second.as_str(), request.as_str()]
    );
    let r = &page.approvals[1];
    assert_eq!(
        (r.agreement_id.as_str(), r.status, r.rule.as_str()),
        (
            id.as_str(),
            ApprovalStatus::Pending,
            "approval_threshold_cents"
        )
    );
    assert_eq!((r.amount_cents, r.threshold_cents), (1_000, 500));
    assert_eq!(
        (
            r.counterparty_agent_id.as_str(),
            r.quantity,
            r.price_per_unit_cents
        ),
        ("seller", 100, 10)
    );
    assert_eq!(
        f.buyer_api
            .approvals("buyer", &ListApprovals::default())
            .await?,
        owner.approvals("buyer", &ListApprovals::default()).await?
    );
    // One at a time, by cursor.
    let first = owner
        .approvals(
            "buyer",
            &ListApprovals {
                limit: Some(1),
                ..ListApprovals::default()
            },
        )
        .await?;
    assert_eq!(ids(&first.approvals), vec![second.as_str()]);
    let rest = owner
        .approvals(
            "buyer",
            &ListApprovals {
                limit: Some(1),
                cursor: first.next_cursor,
                ..ListApprovals::default()
            },
        )
        .await?;
    assert_eq!(ids(&rest.approvals), vec![request.as_str()]);

    // Only the agent's owner decides: not the agent, not the seller, not another owner.
    assert_eq!(
        problem(f.buyer_api.approve("buyer", &request, "agent").await)?,
        (403, "owner_only".into())
    );
    assert_eq!(
        problem(
            f.seller_api
                .approvals("buyer", &ListApprovals::default())
                .await
        )?,
        (404, "agent_not_found".into())
    );
    f.other_owner(
        "globex",
        "globex-agent",
        &alloy::signers::local::PrivateKeySigner::random(),
    )
    .await?;
    let globex = f.owner_api("globex");
    assert_eq!(
        problem(globex.approve("buyer", &request, "stranger").await)?,
        (404, "agent_not_found".into())
    );
    assert_eq!(
        problem(owner.approve("seller", &request, "wrong-agent").await)?,
        (404, "approval_not_found".into())
    );
    assert_eq!(
        problem(
            owner
                .approve("buyer", "apr_aaaaaaaaaaaaaaaaaaaa", "unknown")
                .await
        )?,
        (404, "approval_not_found".into())
    );

    // Approved: the proposal goes on to the seller.
    let approved = owner.approve("buyer", &request, "approve").await?.body;
    assert_eq!(approved.status, ApprovalStatus::Approved);
    assert_eq!(approved.decided_by.as_deref(), Some("owner:acme"));
    assert!(approved.decided_at.is_some());
    // The same decision again (another key) answers the same and records nothing more.
    let again = owner
        .approve("buyer", &request, "approve-again")
        .await?
        .body;
    assert_eq!(again, approved);
    // The other one is refused.
    assert_eq!(
        problem(
            owner
                .reject_approval("buyer", &request, "changed my mind", "r")
                .await
        )?,
        (409, "approval_already_decided".into())
    );
    let view = f.seller_api.usage_agreement(&id).await?;
    assert_eq!(view.status, LifecycleStatus::Proposed);
    let kinds: Vec<_> = view.history.iter().map(|e| (e.kind, e.status)).collect();
    assert_eq!(
        kinds,
        vec![
            (EventKind::Proposed, LifecycleStatus::PendingApproval),
            (
                EventKind::ApprovalRequested,
                LifecycleStatus::PendingApproval
            ),
            (EventKind::Approved, LifecycleStatus::Proposed),
        ]
    );
    let decision = &view.history[2];
    assert_eq!(decision.actor, "owner:acme");
    assert_eq!(decision.detail["request_id"], request.as_str());
    assert_eq!(
        f.seller_api.accept(&id, "accept").await?.body.status,
        LifecycleStatus::Accepted
    );
    assert_eq!(
        ids(&owner
            .approvals("buyer", &only(ApprovalStatus::Approved))
            .await?
            .approvals),
        vec![request.as_str()]
    );
    assert_eq!(
        ids(&owner
            .approvals("buyer", &only(ApprovalStatus::Pending))
            .await?
            .approvals),
        vec![second.as_str()]
    );
    assert_open_counts(&f).await?;
    Ok(())
}

#[tokio::test]
async fn a_rejection_ends_the_agreement_with_its_reason() -> eyre::Result<()> {
    let f = with_threshold().await?;
    let owner = f.owner_api("acme");
    let (id, request) = pending(&f, "p").await?;
    for blank in ["", "   "] {
        assert_eq!(
            problem(
                owner
                    .reject_approval("buyer", &request, blank, &format!("blank{}", blank.len()))
                    .await
            )?,
            (422, "invalid_reason".into())
        );
    }
    let too_long = "x".repeat(501);
    assert_eq!(
        problem(
            owner
                .reject_approval("buyer", &request, &too_long, "long")
                .await
        )?,
        (422, "invalid_reason".into())
    );
    // With no reason at all (the query left out).
    let answer = owner
        .send_raw(
            alloy::transports::http::reqwest::Method::POST,
            &format!("agents/buyer/approvals/{request}/reject"),
            &[],
            None,
        )
        .await?;
    assert_eq!(answer.status.as_u16(), 422);
    assert_eq!(answer.problem()?.code, "invalid_reason");

    let rejected = owner
        .reject_approval("buyer", &request, "over this month's budget", "reject")
        .await?;
    assert_eq!(rejected.status, 200);
    assert_eq!(rejected.body.status, ApprovalStatus::Rejected);
    assert_eq!(
        rejected.body.reason.as_deref(),
        Some("over this month's budget")
    );
    // A retry under the same key replays the answer.
    let replay = owner
        .reject_approval("buyer", &request, "over this month's budget", "reject")
        .await?;
    assert!(replay.replayed);
    assert_eq!(replay.body, rejected.body);
    assert_eq!(
        problem(owner.approve("buyer", &request, "approve").await)?,
        (409, "approval_already_decided".into())
    );
    let view = f.buyer_api.usage_agreement(&id).await?;
    assert_eq!(view.status, LifecycleStatus::Rejected);
    assert_eq!(
        view.rejection_reason.as_deref(),
        Some("over this month's budget")
    );
    let last = view
        .history
        .last()
        .ok_or_else(|| eyre::eyre!("no history"))?;
    assert_eq!(
        (last.kind, last.status, last.actor.as_str()),
        (
            EventKind::ApprovalRejected,
            LifecycleStatus::Rejected,
            "owner:acme"
        )
    );
    assert_eq!(last.detail["reason"], "over this month's budget");
    assert_eq!(
        problem(f.seller_api.accept(&id, "accept").await)?,
        (409, "invalid_transition".into())
    );
    assert_open_counts(&f).await?;
    Ok(())
}

#[tokio::test]
async fn an_expired_request_can_no_longer_be_decided() -> eyre::Result<()> {
    let f = with_threshold().await?;
    let owner = f.owner_api("acme");
    let (id, request) = pending(&f, "p").await?;
    let (_, live) = pending(&f, "live").await?;
    // Time passes for this one (the minimum lifetime is five minutes).
    sqlx::query("UPDATE usage_agreements SET expiry = 1000 WHERE id = $1")
        .bind(&id)
        .execute(f.db().pool())
        .await?;
    sqlx::query("UPDATE approval_requests SET expires_at = 1000 WHERE id = $1")
        .bind(&request)
        .execute(f.db().pool())
        .await?;
    assert_eq!(
        problem(owner.approve("buyer", &request, "late").await)?,
        (409, "approval_expired".into())
    );
    assert_eq!(
        problem(
            owner
                .reject_approval("buyer", &request, "too late", "late-r")
                .await
        )?,
        (409, "approval_expired".into())
    );
    assert_eq!(
        f.buyer_api.usage_agreement(&id).await?.status,
        LifecycleStatus::Expired
    );
    // Shown expired before the sweep records it.
    assert_eq!(
        ids(&owner
            .approvals("buyer", &only(ApprovalStatus::Expired))
            .await?
            .approvals),
        vec![request.as_str()]
    );
    assert_eq!(
        ids(&owner
            .approvals("buyer", &only(ApprovalStatus::Pending))
            .await?
            .approvals),
        vec![live.as_str()]
    );
    // The sweep records both.
    let now = pactum_core::Clock::now_secs(&pactum_core::SystemClock);
    let mut conn = f.db().pool().acquire().await?;
    assert_eq!(
        pactum_db::agreements::expire_due(&mut conn, now, 100).await?,
        vec![id.clone()]
    );
    let stored: String = sqlx::query_scalar("SELECT status FROM approval_requests WHERE id = $1")
        .bind(&request)
        .fetch_one(&mut *conn)
        .await?;
    assert_eq!(stored, "expired");
    drop(conn);
    assert_eq!(
        problem(owner.approve("buyer", &request, "later").await)?,
        (409, "approval_expired".into())
    );
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

/// Approvals and rejections of the same requests sent at once: exactly one decision per
/// request takes effect, the other gets `409 approval_already_decided`, and the agreement and its
/// history agree with the one that won.
#[tokio::test]
async fn an_approval_racing_a_rejection_has_exactly_one_outcome() -> eyre::Result<()> {
    let f = with_threshold().await?;
    let mut requests = Vec::new();
    for i in 0..8 {
        requests.push(pending(&f, &format!("p{i}")).await?);
    }
    let owner = f.owner_api("acme");
    let mut races = tokio::task::JoinSet::new();
    for (i, (_, request)) in requests.iter().enumerate() {
        let (owner, request) = (owner.clone(), request.clone());
        races.spawn(async move {
            let (a, r) = (format!("a-{request}"), format!("r-{request}"));
            let (approved, rejected) = tokio::join!(
                owner.approve("buyer", &request, &a),
                owner.reject_approval("buyer", &request, "no", &r),
            );
            (i, approved, rejected)
        });
    }
    let mut outcomes: Vec<_> = races.join_all().await;
    outcomes.sort_by_key(|(i, ..)| *i);
    let outcomes = outcomes.into_iter().map(|(_, a, r)| (a, r));
    for ((id, request), (approved, rejected)) in requests.iter().zip(outcomes) {
        let winner = match (approved, rejected) {
            (Ok(_), Err(e)) => {
                assert_eq!(e.code(), Some("approval_already_decided"), "{request}");
                LifecycleStatus::Proposed
            }
            (Err(e), Ok(_)) => {
                assert_eq!(e.code(), Some("approval_already_decided"), "{request}");
                LifecycleStatus::Rejected
            }
            other => eyre::bail!("{request}: not exactly one winner: {other:?}"),
        };
        let view = f.buyer_api.usage_agreement(id).await?;
        assert_eq!(view.status, winner, "{request}");
        let decisions = view
            .history
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Approved | EventKind::ApprovalRejected))
            .count();
        assert_eq!(decisions, 1, "{request}");
    }
    assert_open_counts(&f).await?;
    Ok(())
}
