//! The owner's endpoints through the API: created with a secret shown once (and again only on
//! an idempotent replay), listed without secrets, changed, limited, deleted; only the agent's
//! owner manages them; bad input is a clear 4xx that stores nothing.

use pactum_client::types::{
    CreateWebhook, EndpointStatus, EventType, ListDeliveries, UpdateWebhook,
};

use super::{
    Workers, hook,
    receiver::{Mode, Receiver},
    wait_deliveries,
};
use crate::{
    agreements::{problem, propose},
    relayer::Fixture,
};

fn body(url: &str) -> CreateWebhook {
    CreateWebhook {
        url: url.to_owned(),
        event_types: None,
        description: String::new(),
    }
}

async fn stored(f: &Fixture) -> eyre::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM webhook_endpoints WHERE deleted_at IS NULL")
            .fetch_one(f.db().pool())
            .await?,
    )
}

#[tokio::test]
async fn the_owner_manages_its_agents_endpoints() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let owner = f.owner_api("acme");
    let url = "http://127.0.0.1:9/hook";

    // Created: the secret is shown once; a retry under the same key replays the same answer.
    let created = owner.create_webhook("buyer", &body(url), "create").await?;
    assert_eq!(created.status, 201);
    assert!(created.body.secret.starts_with("whsec_"));
    assert_eq!(created.body.webhook.status, EndpointStatus::Enabled);
    assert_eq!(created.body.webhook.event_types, None);
    let replay = owner.create_webhook("buyer", &body(url), "create").await?;
    assert!(replay.replayed);
    assert_eq!(replay.body, created.body);
    assert_eq!(stored(&f).await?, 1);
    let id = created.body.webhook.webhook_id.clone();

    // Listed and read without the secret.
    let listed = owner
        .send_raw(
            alloy::transports::http::reqwest::Method::GET,
            "agents/buyer/webhooks",
            &[],
            None,
        )
        .await?;
    assert_eq!(listed.status.as_u16(), 200);
    assert!(!listed.text().contains("whsec_"), "{}", listed.text());
    assert_eq!(owner.webhooks("buyer").await?.webhooks.len(), 1);
    assert_eq!(owner.webhook("buyer", &id).await?, created.body.webhook);

    // Changed: types, description; both kinds of types at once is refused.
    let changed = owner
        .update_webhook(
            "buyer",
            &id,
            &UpdateWebhook {
                event_types: Some(vec!["agreement.settled".into()]),
                description: Some("settlements only".into()),
                ..UpdateWebhook::default()
            },
            "patch",
        )
        .await?
        .body;
    assert_eq!(changed.event_types, Some(vec![EventType::AgreementSettled]));
    assert_eq!(changed.description, "settlements only");
    assert_eq!(
        problem(
            owner
                .update_webhook(
                    "buyer",
                    &id,
                    &UpdateWebhook {
                        event_types: Some(vec!["agreement.settled".into()]),
                        all_event_types: Some(true),
                        ..UpdateWebhook::default()
                    },
                    "patch-both",
                )
                .await
        )?,
        (422, "invalid_event_types".into())
    );
    let all = owner
        .update_webhook(
            "buyer",
            &id,
            &UpdateWebhook {
                all_event_types: Some(true),
                ..UpdateWebhook::default()
            },
            "patch-all",
        )
        .await?
        .body;
    assert_eq!(all.event_types, None);
    // Disabled by its owner, and why.
    let off = owner
        .update_webhook(
            "buyer",
            &id,
            &UpdateWebhook {
                enabled: Some(false),
                ..UpdateWebhook::default()
            },
            "off",
        )
        .await?
        .body;
    assert_eq!(off.status, EndpointStatus::Disabled);
    assert_eq!(
        off.disabled_reason.as_deref(),
        Some("disabled by its owner")
    );

    // Bad input: named, nothing stored.
    for (bad, code) in [
        (body("ftp://example.com/x"), "invalid_webhook_url"),
        (body("not a url"), "invalid_webhook_url"),
        (body("http://user:pw@127.0.0.1:9/x"), "invalid_webhook_url"),
        (
            CreateWebhook {
                event_types: Some(vec!["agreement.nope".into()]),
                ..body(url)
            },
            "invalid_event_types",
        ),
        (
            CreateWebhook {
                event_types: Some(Vec::new()),
                ..body(url)
            },
            "invalid_event_types",
        ),
        (
            CreateWebhook {
                description: "x".repeat(501),
                ..body(url)
            },
            "invalid_description",
        ),
    ] {
        let key = format!("bad-{}", pactum_db::random_id(6));
        assert_eq!(
            problem(owner.create_webhook("buyer", &bad, &key).await)?,
            (422, code.into()),
            "{bad:?}"
        );
    }
    assert_eq!(
        problem(
            owner
                .rotate_webhook_secret("buyer", &id, Some(604_801), "rotate-long")
                .await
        )?,
        (422, "invalid_overlap".into())
    );
    assert_eq!(stored(&f).await?, 1);

    // Only the agent's owner: not the agent's key, not another owner.
    assert_eq!(
        problem(
            f.buyer_api
                .create_webhook("buyer", &body(url), "agent")
                .await
        )?,
        (403, "owner_only".into())
    );
    assert_eq!(
        problem(f.buyer_api.webhooks("buyer").await)?,
        (403, "owner_only".into())
    );
    f.other_owner(
        "globex",
        "globex-agent",
        &alloy::signers::local::PrivateKeySigner::random(),
    )
    .await?;
    let globex = f.owner_api("globex");
    assert_eq!(
        problem(globex.webhook("buyer", &id).await)?,
        (404, "agent_not_found".into())
    );
    assert_eq!(
        problem(globex.webhook("globex-agent", &id).await)?,
        (404, "webhook_not_found".into())
    );

    // At most twenty per agent.
    for i in 1..20 {
        owner
            .create_webhook("buyer", &body(url), &format!("more-{i}"))
            .await?;
    }
    assert_eq!(
        problem(
            owner
                .create_webhook("buyer", &body(url), "one-too-many")
                .await
        )?,
        (409, "too_many_webhooks".into())
    );

    // Deleted: no longer listed, counted or delivered to.
    owner.delete_webhook("buyer", &id, "delete").await?;
    assert_eq!(
        problem(owner.webhook("buyer", &id).await)?,
        (404, "webhook_not_found".into())
    );
    assert_eq!(
        problem(owner.delete_webhook("buyer", &id, "delete-again").await)?,
        (404, "webhook_not_found".into())
    );
    assert_eq!(stored(&f).await?, 19);
    Ok(())
}

#[tokio::test]
async fn deliveries_are_the_owners_to_read_and_replay() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let owner = f.owner_api("acme");
    let rx = Receiver::start(Mode::Ok).await?;
    hook(&owner, "buyer", &rx.url(), Some(&["agreement.proposed"])).await?;
    let workers = Workers::start(f.db(), 1, |_| {})?;
    for i in 0..3 {
        propose(&f, &format!("p{i}")).await?;
    }
    let all = wait_deliveries(&owner, "buyer", |d| {
        d.len() == 3 && d.iter().all(|d| d.attempt_log.len() == 1)
    })
    .await?;
    // Paged newest first.
    let first = owner
        .webhook_deliveries(
            "buyer",
            &ListDeliveries {
                limit: Some(2),
                ..ListDeliveries::default()
            },
        )
        .await?;
    assert_eq!(first.deliveries.len(), 2);
    let rest = owner
        .webhook_deliveries(
            "buyer",
            &ListDeliveries {
                limit: Some(2),
                cursor: first.next_cursor.clone(),
                ..ListDeliveries::default()
            },
        )
        .await?;
    let ids: Vec<_> = first
        .deliveries
        .iter()
        .chain(&rest.deliveries)
        .map(|d| d.delivery_id.clone())
        .collect();
    let expected: Vec<_> = all.iter().map(|d| d.delivery_id.clone()).collect();
    assert_eq!(ids, expected);
    let one = owner.webhook_delivery("buyer", &ids[0]).await?;
    assert_eq!(one, all[0]);
    // Not the agent's, not another owner's; unknown ids are 404.
    assert_eq!(
        problem(f.buyer_api.webhook_delivery("buyer", &ids[0]).await)?,
        (403, "owner_only".into())
    );
    assert_eq!(
        problem(owner.webhook_delivery("seller", &ids[0]).await)?,
        (404, "delivery_not_found".into())
    );
    assert_eq!(
        problem(owner.replay_delivery("buyer", "dlv_0000", "r").await)?,
        (404, "delivery_not_found".into())
    );
    // A pending delivery is not replayed (its next attempt is scheduled).
    workers.stop().await;
    propose(&f, "pending").await?;
    let pending = wait_deliveries(&owner, "buyer", |d| d.len() == 4).await?;
    assert_eq!(
        problem(
            owner
                .replay_delivery("buyer", &pending[0].delivery_id, "early")
                .await
        )?,
        (409, "delivery_in_progress".into())
    );
    Ok(())
}
