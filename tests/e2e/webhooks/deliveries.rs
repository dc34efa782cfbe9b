//! How deliveries go: retried on the schedule while the receiver fails, given up after the last
//! attempt, replayed with the same `webhook-id`; timeouts, redirects and forbidden destinations
//! are failures; an endpoint failing for days is disabled and says why; a rotated secret signs
//! beside its successor during the overlap.

use std::time::Duration;

use pactum_client::types::{DeliveryStatus, EndpointStatus, ListDeliveries, UpdateWebhook};

use super::{
    Workers, hook, make_due,
    receiver::{Mode, Receiver, verify_independently},
    wait_deliveries,
};
use crate::{
    agreements::{problem, propose},
    relayer::Fixture,
};

/// Seconds until delivery `id`'s next attempt, as stored.
async fn due_in(f: &Fixture, id: &str) -> eyre::Result<f64> {
    Ok(sqlx::query_scalar(
        "SELECT extract(epoch FROM next_attempt_at - now())::float8 FROM webhook_deliveries WHERE id = $1",
    )
    .bind(id)
    .fetch_one(f.db().pool())
    .await?)
}

#[tokio::test]
async fn failures_are_retried_on_the_schedule_then_given_up_and_replayed() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let owner = f.owner_api("acme");
    let rx = Receiver::start(Mode::Fail {
        status: 503,
        body_len: 10_000,
    })
    .await?;
    hook(&owner, "buyer", &rx.url(), Some(&["agreement.proposed"])).await?;
    let _workers = Workers::start(f.db(), 1, |_| {})?;
    propose(&f, "p").await?;
    let first = wait_deliveries(&owner, "buyer", |d| {
        d.len() == 1 && d[0].attempt_log.len() == 1
    })
    .await?;
    let d = &first[0];
    assert_eq!(d.status, DeliveryStatus::Pending);
    assert_eq!(d.attempt_log[0].status_code, Some(503));
    // The answer's body is kept, truncated.
    assert_eq!(
        d.attempt_log[0].response.as_deref().map(str::len),
        Some(4096)
    );
    // The second attempt 5 s later (±10 %), the third 5 min after the second.
    let pause = due_in(&f, &d.delivery_id).await?;
    assert!((3.5..=5.6).contains(&pause), "{pause}");
    make_due(f.db()).await?;
    wait_deliveries(&owner, "buyer", |d| d[0].attempt_log.len() == 2).await?;
    let pause = due_in(&f, &d.delivery_id).await?;
    assert!((268.0..=331.0).contains(&pause), "{pause}");
    // Time passes: the rest of the schedule, eight attempts in all, then it is given up.
    for n in 3..=8 {
        make_due(f.db()).await?;
        wait_deliveries(&owner, "buyer", |d| d[0].attempt_log.len() == n).await?;
    }
    let failed =
        wait_deliveries(&owner, "buyer", |d| d[0].status == DeliveryStatus::Failed).await?;
    assert_eq!(failed[0].attempts, 8);
    assert_eq!(failed[0].next_attempt_at, None);
    let listed = owner
        .webhook_deliveries(
            "buyer",
            &ListDeliveries {
                status: Some(DeliveryStatus::Failed),
                ..ListDeliveries::default()
            },
        )
        .await?;
    assert_eq!(listed.deliveries.len(), 1);
    assert!(rx.processed().is_empty());

    // The receiver is fixed; the owner replays: one more attempt, the same webhook-id.
    rx.set(Mode::Ok);
    let replayed = owner
        .replay_delivery("buyer", &d.delivery_id, "replay")
        .await?;
    assert_eq!(replayed.status, 202);
    assert_eq!(replayed.body.status, DeliveryStatus::Pending);
    let got = rx.wait(Duration::from_secs(30), |p| p.len() == 1).await?;
    assert_eq!(got[0].id, d.message_id);
    let all = rx.received();
    assert_eq!(all.len(), 9);
    assert!(
        all.iter()
            .all(|r| r.id == d.message_id && r.body == all[0].body)
    );
    let done = wait_deliveries(&owner, "buyer", |d| {
        d[0].status == DeliveryStatus::Succeeded
    })
    .await?;
    assert_eq!(done[0].attempts, 9);
    // Replaying a delivered message again reaches the receiver again; it deduplicates.
    owner
        .replay_delivery("buyer", &d.delivery_id, "replay-2")
        .await?;
    wait_deliveries(&owner, "buyer", |d| {
        d[0].attempt_log.len() == 10 && d[0].status == DeliveryStatus::Succeeded
    })
    .await?;
    assert_eq!(rx.received().len(), 10);
    assert_eq!(rx.processed().len(), 1);
    Ok(())
}

#[tokio::test]
async fn timeouts_and_redirects_are_failures() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let owner = f.owner_api("acme");
    let rx = Receiver::start(Mode::Hang).await?;
    hook(&owner, "buyer", &rx.url(), Some(&["agreement.proposed"])).await?;
    let _workers = Workers::start(f.db(), 1, |s| {
        s.timeout = Duration::from_millis(800);
        s.connect_timeout = Duration::from_millis(800);
    })?;
    propose(&f, "p").await?;
    let hung = wait_deliveries(&owner, "buyer", |d| {
        d.len() == 1 && d[0].attempt_log.len() == 1
    })
    .await?;
    let attempt = &hung[0].attempt_log[0];
    assert_eq!(attempt.status_code, None);
    assert!(
        attempt
            .error
            .as_deref()
            .is_some_and(|e| e.contains("timeout")),
        "{attempt:?}"
    );
    assert!((700..3_000).contains(&attempt.duration_ms), "{attempt:?}");

    rx.set(Mode::Redirect);
    make_due(f.db()).await?;
    let redirected = wait_deliveries(&owner, "buyer", |d| d[0].attempt_log.len() == 2).await?;
    assert_eq!(redirected[0].attempt_log[1].status_code, Some(307));
    assert_eq!(redirected[0].status, DeliveryStatus::Pending);
    assert_eq!(rx.elsewhere(), 0, "a redirect was followed");

    rx.set(Mode::Slow(Duration::from_millis(200)));
    make_due(f.db()).await?;
    let slow = wait_deliveries(&owner, "buyer", |d| {
        d[0].status == DeliveryStatus::Succeeded
    })
    .await?;
    assert!(slow[0].attempt_log[2].duration_ms >= 200);
    Ok(())
}

/// Without the operator's allowance, loopback destinations are refused, by literal address and
/// by a name that resolves to one; nothing reaches the receiver.
#[tokio::test]
async fn private_destinations_are_refused_after_resolution() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let owner = f.owner_api("acme");
    let rx = Receiver::start(Mode::Ok).await?;
    let port = rx.addr.port();
    hook(
        &owner,
        "buyer",
        &format!("http://127.0.0.1:{port}/hook"),
        Some(&["agreement.proposed"]),
    )
    .await?;
    hook(
        &owner,
        "buyer",
        &format!("http://localhost:{port}/hook"),
        Some(&["agreement.proposed"]),
    )
    .await?;
    let _workers = Workers::start(f.db(), 1, |s| s.allow_private = false)?;
    propose(&f, "p").await?;
    let refused = wait_deliveries(&owner, "buyer", |d| {
        d.len() == 2 && d.iter().all(|d| d.attempt_log.len() == 1)
    })
    .await?;
    for d in &refused {
        let error = d.attempt_log[0].error.as_deref().unwrap_or_default();
        assert!(
            error.contains("forbidden destination"),
            "{}: {error}",
            d.url
        );
        assert_eq!(d.attempt_log[0].status_code, None);
    }
    assert!(rx.received().is_empty());
    Ok(())
}

#[tokio::test]
async fn an_endpoint_failing_for_days_is_disabled_and_says_why() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let owner = f.owner_api("acme");
    let rx = Receiver::start(Mode::Fail {
        status: 500,
        body_len: 0,
    })
    .await?;
    let created = hook(&owner, "buyer", &rx.url(), Some(&["agreement.proposed"])).await?;
    let webhook_id = created.webhook.webhook_id.clone();
    let _workers = Workers::start(f.db(), 1, |_| {})?;
    propose(&f, "p1").await?;
    let first = wait_deliveries(&owner, "buyer", |d| {
        d.len() == 1 && d[0].attempt_log.len() == 1
    })
    .await?;
    let failing = owner.webhook("buyer", &webhook_id).await?;
    assert!(failing.failing_since.is_some());
    assert_eq!(failing.status, EndpointStatus::Enabled);
    // Six days pass with every attempt failing; the next failure disables it.
    sqlx::query("UPDATE webhook_endpoints SET failing_since = now() - interval '6 days'")
        .execute(f.db().pool())
        .await?;
    make_due(f.db()).await?;
    wait_deliveries(&owner, "buyer", |d| d[0].status == DeliveryStatus::Failed).await?;
    let disabled = owner.webhook("buyer", &webhook_id).await?;
    assert_eq!(disabled.status, EndpointStatus::Disabled);
    let reason = disabled.disabled_reason.unwrap_or_default();
    assert!(reason.contains("every delivery failed since"), "{reason}");
    // What happens meanwhile is not attempted, but kept as a failed delivery to replay; a
    // replay waits for the endpoint to be enabled.
    propose(&f, "p2").await?;
    let kept = owner
        .webhook_deliveries("buyer", &ListDeliveries::default())
        .await?
        .deliveries;
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[0].status, DeliveryStatus::Failed);
    assert!(kept[0].attempt_log.is_empty());
    let id = &first[0].delivery_id;
    for d in [id, &kept[0].delivery_id] {
        assert_eq!(
            problem(
                owner
                    .replay_delivery("buyer", d, &format!("early-{d}"))
                    .await
            )?,
            (409, "webhook_disabled".into())
        );
    }
    // Fixed and enabled again: the failed delivery is replayed and arrives.
    rx.set(Mode::Ok);
    let enabled = owner
        .update_webhook(
            "buyer",
            &webhook_id,
            &UpdateWebhook {
                enabled: Some(true),
                ..UpdateWebhook::default()
            },
            "enable",
        )
        .await?
        .body;
    assert_eq!(enabled.status, EndpointStatus::Enabled);
    assert_eq!(
        (enabled.disabled_reason, enabled.failing_since),
        (None, None)
    );
    owner.replay_delivery("buyer", id, "r2").await?;
    owner
        .replay_delivery("buyer", &kept[0].delivery_id, "r3")
        .await?;
    rx.wait(Duration::from_secs(30), |p| p.len() == 2).await?;
    Ok(())
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_its_successor_during_the_overlap() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let owner = f.owner_api("acme");
    let rx = Receiver::start(Mode::Ok).await?;
    let created = hook(&owner, "buyer", &rx.url(), Some(&["agreement.proposed"])).await?;
    let id = created.webhook.webhook_id.clone();
    let _workers = Workers::start(f.db(), 1, |_| {})?;
    let rotated = owner
        .rotate_webhook_secret("buyer", &id, Some(3600), "rotate")
        .await?
        .body;
    assert_ne!(rotated.secret, created.secret);
    assert!(rotated.webhook.previous_secret_expires_at.is_some());
    propose(&f, "p1").await?;
    let got = rx.wait(Duration::from_secs(30), |p| p.len() == 1).await?;
    assert_eq!(got[0].signature.split(' ').count(), 2);
    // A receiver with either secret verifies it.
    assert_eq!(verify_independently(&got, &[&created.secret])?, 1);
    assert_eq!(verify_independently(&got, &[&rotated.secret])?, 1);
    // Rotated again without overlap: only the newest signs.
    let again = owner
        .rotate_webhook_secret("buyer", &id, Some(0), "rotate-2")
        .await?
        .body;
    assert_eq!(again.webhook.previous_secret_expires_at, None);
    propose(&f, "p2").await?;
    let got = rx.wait(Duration::from_secs(30), |p| p.len() == 2).await?;
    let last = &got[1..];
    assert_eq!(last[0].signature.split(' ').count(), 1);
    assert_eq!(verify_independently(last, &[&again.secret])?, 1);
    assert!(verify_independently(last, &[&rotated.secret]).is_err());
    Ok(())
}

/// A receiver answering a binary body (NUL bytes) is recorded like any other failure, and the
/// worker goes on delivering.
#[tokio::test]
async fn a_binary_answer_is_recorded_and_delivery_goes_on() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let owner = f.owner_api("acme");
    let rx = Receiver::start(Mode::Binary).await?;
    hook(&owner, "buyer", &rx.url(), Some(&["agreement.proposed"])).await?;
    let _workers = Workers::start(f.db(), 1, |_| {})?;
    propose(&f, "p1").await?;
    let failed = wait_deliveries(&owner, "buyer", |d| {
        d.len() == 1 && d[0].attempt_log.len() == 1
    })
    .await?;
    let attempt = &failed[0].attempt_log[0];
    assert_eq!(attempt.status_code, Some(500));
    assert!(
        attempt
            .response
            .as_deref()
            .is_some_and(|r| r.contains('\u{fffd}')),
        "{attempt:?}"
    );
    rx.set(Mode::Ok);
    propose(&f, "p2").await?;
    rx.wait(Duration::from_secs(30), |p| p.len() == 1).await?;
    Ok(())
}

/// A receiver that hangs holds at most its share of a worker's slots: another endpoint's
/// deliveries go through meanwhile.
#[tokio::test]
async fn a_hanging_receiver_does_not_hold_up_the_others() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let owner = f.owner_api("acme");
    let (hung, fine) = (
        Receiver::start(Mode::Hang).await?,
        Receiver::start(Mode::Ok).await?,
    );
    hook(&owner, "buyer", &hung.url(), Some(&["agreement.proposed"])).await?;
    hook(&owner, "seller", &fine.url(), Some(&["agreement.accepted"])).await?;
    let _workers = Workers::start(f.db(), 1, |s| {
        s.concurrency = 4;
        s.per_endpoint = 2;
        s.timeout = Duration::from_secs(20);
        s.lease = Duration::from_secs(60);
    })?;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(propose(&f, &format!("p{i}")).await?.agreement_id);
    }
    // The hanging endpoint has six deliveries due and two in flight; the seller's acceptances
    // still arrive at once.
    for id in &ids {
        f.seller_api.accept(id, &format!("a-{id}")).await?;
    }
    fine.wait(Duration::from_secs(10), |p| p.len() == 6).await?;
    assert_eq!(hung.received().len(), 2);
    Ok(())
}
