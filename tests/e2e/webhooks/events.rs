//! What is announced: every history event of an agreement's whole lifecycle (the API's, the
//! indexer's, the relayer's), every sponsored action's outcome, a reorg's correction; to each
//! party's endpoints as subscribed, once each, in payloads of the documented schema, signed.

use std::time::Duration;

use alloy::primitives::B256;
use pactum_client::types::{
    ActionKind, AgreementEventPayload, DeliveryStatus, EventKind, EventType, JobState,
    LifecycleStatus, SponsoredActionPayload,
};

use super::{
    Workers, hook,
    receiver::{Mode, Received, Receiver, verify_independently},
    wait_deliveries,
};
use crate::{
    agreements::{
        activation::{accepted, activate_then_reorg, expected, signed},
        proposal,
    },
    chain::USDC,
    relayer::Fixture,
};

fn agreement_event(r: &Received) -> eyre::Result<AgreementEventPayload> {
    serde_json::from_slice(&r.body).map_err(|e| {
        eyre::eyre!(
            "not an agreement event of the documented schema: {e}: {}",
            String::from_utf8_lossy(&r.body)
        )
    })
}

#[tokio::test]
async fn every_lifecycle_event_reaches_the_parties_once_signed() -> eyre::Result<()> {
    let mut f = Fixture::new(|_| {}).await?;
    f.index().await?;
    f.start_worker().await?;
    let _workers = Workers::start(f.db(), 1, |_| {})?;
    let (buyer_rx, seller_rx) = (
        Receiver::start(Mode::Ok).await?,
        Receiver::start(Mode::Ok).await?,
    );
    let owner = f.owner_api("acme");
    let buyer_hook = hook(&owner, "buyer", &buyer_rx.url(), None).await?;
    let seller_hook = hook(
        &owner,
        "seller",
        &seller_rx.url(),
        Some(&["agreement.accepted", "sponsored_action.confirmed"]),
    )
    .await?;

    // The whole lifecycle: proposed, accepted, activated through the relayer, then closed,
    // claimed and withdrawn through the sponsored endpoints.
    let id = accepted(&f, &f.buyer_api, &proposal(&f)).await?;
    let package = signed(&f.buyer_api, &id, &f.chain.buyer, &expected(&f)).await?;
    f.buyer_api
        .activate_escrow(&id, &package, "activate")
        .await?;
    f.buyer_api
        .wait_usage_agreement(&id, Duration::from_secs(30), |v| {
            v.activation_tx_hash.is_some()
        })
        .await?;
    f.index().await?;
    let view = f.buyer_api.usage_agreement(&id).await?;
    assert_eq!(view.status, LifecycleStatus::Active);
    let onchain: B256 = view
        .onchain_agreement_id
        .as_deref()
        .ok_or_else(|| eyre::eyre!("no on-chain id"))?
        .parse()?;
    let deadline = f.now().await? + 3600;
    let close = f.buyer_close(onchain, deadline, "close").await?;
    f.wait_for(onchain, &close, JobState::Confirmed).await?;
    f.index().await?;
    let claim = f
        .sign(onchain)
        .seller_claim(4 * USDC, f.chain.seller.address(), deadline)
        .await?;
    let claim = f
        .seller_api
        .sponsor_seller_claim(onchain, &claim, "claim")
        .await?
        .body
        .relay_id;
    f.wait_for(onchain, &claim, JobState::Confirmed).await?;
    f.index().await?;
    let withdraw = f
        .sign(onchain)
        .buyer_withdraw(f.chain.buyer.address(), deadline)
        .await?;
    let withdraw = f
        .buyer_api
        .sponsor_buyer_withdraw(onchain, &withdraw, "withdraw")
        .await?
        .body
        .relay_id;
    f.wait_for(onchain, &withdraw, JobState::Confirmed).await?;
    f.index().await?;
    let done = f.buyer_api.usage_agreement(&id).await?;
    assert_eq!(done.status, LifecycleStatus::Settled);

    // The buyer's endpoint: one message per history event, in order, then the four sponsored
    // actions' outcomes.
    let history = done.history.len();
    let got = buyer_rx
        .wait(Duration::from_secs(30), |p| p.len() >= history + 4)
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        buyer_rx.received().len(),
        history + 4,
        "nothing more, nothing twice"
    );
    let mut events = Vec::new();
    let mut actions = Vec::new();
    for r in &got {
        if r.event_type().starts_with("agreement.") {
            events.push(agreement_event(r)?);
        } else {
            let p: SponsoredActionPayload = serde_json::from_slice(&r.body)?;
            actions.push(p);
        }
    }
    events.sort_by_key(|e| e.data.event_id);
    let announced: Vec<(EventKind, LifecycleStatus)> = events
        .iter()
        .map(|e| (e.data.kind, e.data.status))
        .collect();
    let recorded: Vec<(EventKind, LifecycleStatus)> =
        done.history.iter().map(|e| (e.kind, e.status)).collect();
    assert_eq!(announced, recorded);
    for e in &events {
        assert_eq!(e.event_type, EventType::of_agreement(e.data.kind));
        assert_eq!(e.data.agreement_id, id);
        assert_eq!(
            (
                e.data.buyer_agent_id.as_str(),
                e.data.seller_agent_id.as_str()
            ),
            ("buyer", "seller")
        );
    }
    let activated = events
        .iter()
        .find(|e| e.data.kind == EventKind::Activated)
        .ok_or_else(|| eyre::eyre!("no activated event"))?;
    assert!(activated.data.tx_hash.is_some() && activated.data.block_number.is_some());
    assert_eq!(
        activated.data.onchain_agreement_id.as_deref(),
        Some(onchain.to_string().as_str())
    );
    let mut kinds: Vec<ActionKind> = actions.iter().map(|a| a.data.action).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            ActionKind::Activate,
            ActionKind::InitiateClose,
            ActionKind::SellerClaim,
            ActionKind::BuyerWithdraw
        ]
    );
    for a in &actions {
        assert_eq!(a.event_type, EventType::SponsoredActionConfirmed);
        assert_eq!(a.data.state, JobState::Confirmed);
        assert_eq!(a.data.agreement_id.as_deref(), Some(id.as_str()));
        assert!(a.data.tx_hash.is_some() && a.data.gas_used.is_some());
    }
    // Signed as Standard Webhooks says: the reference library agrees.
    assert_eq!(
        verify_independently(&got, &[&buyer_hook.secret])?,
        history + 4
    );

    // The seller's endpoint: only what it subscribed to.
    let seller_got = seller_rx
        .wait(Duration::from_secs(30), |p| p.len() >= 5)
        .await?;
    let mut types: Vec<String> = seller_got.iter().map(Received::event_type).collect();
    types.sort();
    assert_eq!(
        types,
        vec![
            "agreement.accepted",
            "sponsored_action.confirmed",
            "sponsored_action.confirmed",
            "sponsored_action.confirmed",
            "sponsored_action.confirmed"
        ]
    );
    assert_eq!(
        verify_independently(&seller_got, &[&seller_hook.secret])?,
        5
    );
    assert!(verify_independently(&seller_got, &[&buyer_hook.secret]).is_err());

    // The owner's view of the deliveries: each succeeded at its first attempt.
    let deliveries = wait_deliveries(&owner, "buyer", |d| {
        d.len() == history + 4 && d.iter().all(|d| d.status == DeliveryStatus::Succeeded)
    })
    .await?;
    for d in &deliveries {
        assert_eq!(d.attempts, 1);
        assert_eq!(d.attempt_log.len(), 1);
        assert_eq!(d.attempt_log[0].status_code, Some(204));
        assert_eq!(d.webhook_id, buyer_hook.webhook.webhook_id);
    }
    Ok(())
}

/// A reorg that removes an activation is announced after the activation it corrects.
#[tokio::test]
async fn a_reorg_is_followed_by_its_correction() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let _workers = Workers::start(f.db(), 1, |_| {})?;
    let rx = Receiver::start(Mode::Ok).await?;
    hook(&f.owner_api("acme"), "buyer", &rx.url(), None).await?;
    let id = accepted(&f, &f.buyer_api, &proposal(&f)).await?;
    activate_then_reorg(&f, &id).await?;
    let got = rx.wait(Duration::from_secs(30), |p| p.len() >= 4).await?;
    let mut events = got
        .iter()
        .map(agreement_event)
        .collect::<eyre::Result<Vec<_>>>()?;
    events.sort_by_key(|e| e.data.event_id);
    let seen: Vec<(EventType, LifecycleStatus)> = events
        .iter()
        .map(|e| (e.event_type, e.data.status))
        .collect();
    assert_eq!(
        seen,
        vec![
            (EventType::AgreementProposed, LifecycleStatus::Proposed),
            (EventType::AgreementAccepted, LifecycleStatus::Accepted),
            (EventType::AgreementActivated, LifecycleStatus::Active),
            (EventType::AgreementReorged, LifecycleStatus::Activating),
        ]
    );
    assert_eq!(events[3].data.actor, "chain");
    Ok(())
}

/// Three workers over one queue, sixty events at once: each message taken by one worker and
/// delivered once.
#[tokio::test]
async fn several_workers_deliver_each_message_once() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let rx = Receiver::start(Mode::Slow(Duration::from_millis(10))).await?;
    hook(
        &f.owner_api("acme"),
        "buyer",
        &rx.url(),
        Some(&["agreement.proposed"]),
    )
    .await?;
    let _workers = Workers::start(f.db(), 3, |s| s.concurrency = 4)?;
    let mut proposals = tokio::task::JoinSet::new();
    for i in 0..60 {
        let (api, body) = (f.buyer_api.clone(), proposal(&f));
        proposals.spawn(async move { api.propose(&body, &format!("p{i}")).await });
    }
    for written in proposals.join_all().await {
        assert_eq!(written?.status, 201);
    }
    let got = rx.wait(Duration::from_secs(30), |p| p.len() >= 60).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(got.len(), 60);
    assert_eq!(rx.received().len(), 60, "a message was sent twice");
    let attempts: Vec<(String, i32)> = sqlx::query_as(
        "SELECT status, attempts FROM webhook_deliveries WHERE status <> 'succeeded' OR attempts <> 1",
    )
    .fetch_all(f.db().pool())
    .await?;
    assert!(attempts.is_empty(), "{attempts:?}");
    Ok(())
}
