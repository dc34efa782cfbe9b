//! Webhooks, for the agent's owner: endpoints (`POST`, `GET`, `PATCH`, `DELETE
//! /agents/{agent_id}/webhooks...`, secret rotation), and their deliveries (`GET
//! .../webhooks/deliveries`, `POST .../deliveries/{delivery_id}/replay`). The rules are the
//! domain's (`pactum_core::webhook`); what is delivered is written by the database's triggers
//! with the change it announces, and delivered by `pactum-webhooks`' workers.

use pactum_api_types::{
    AttemptLog, CreateWebhook, DeliveryPage, DeliveryView, ListDeliveries, UpdateWebhook,
    WebhookList, WebhookView, WebhookWithSecret,
};
use pactum_core::webhook::{self, WebhookCode, WebhookError};
use pactum_db::webhooks::{self as store, Delivery, Endpoint, EndpointChange, ReplayRefused};
use sqlx::Acquire;

use crate::{
    AppState,
    auth::Principal,
    identity::{owner_of, visible_agent},
    problem::Problem,
};

/// Where the operator lets deliveries go (checked at registration; the delivery workers check
/// again after resolving the name).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Destinations {
    /// Plain `http` URLs (the local stack).
    pub allow_http: bool,
    /// Private, loopback and link-local addresses (the local stack, tests).
    pub allow_private: bool,
}

fn view(e: Endpoint) -> WebhookView {
    WebhookView {
        webhook_id: e.id,
        agent_id: e.agent_id,
        url: e.url,
        description: e.description,
        event_types: e.event_types,
        status: e.status,
        disabled_reason: e.disabled_reason,
        disabled_at: e.disabled_at,
        failing_since: e.failing_since,
        previous_secret_expires_at: e.previous_expires_at,
        created_by: e.created_by,
        created_at: e.created_at,
        updated_at: e.updated_at,
    }
}

fn delivery_view(d: Delivery) -> DeliveryView {
    DeliveryView {
        delivery_id: d.id,
        message_id: d.message_id,
        event_type: d.event_type,
        webhook_id: d.endpoint_id,
        url: d.url,
        status: d.status,
        attempts: d.attempts,
        next_attempt_at: d.next_attempt_at,
        delivered_at: d.delivered_at,
        created_at: d.created_at,
        attempt_log: d
            .attempt_log
            .into_iter()
            .map(|a| AttemptLog {
                started_at: a.started_at,
                duration_ms: a.duration_ms,
                status_code: a.status_code,
                error: a.error,
                response: a.response,
            })
            .collect(),
    }
}

fn not_found(webhook_id: &str) -> Problem {
    WebhookError::new(
        WebhookCode::WebhookNotFound,
        format!("the agent has no webhook {webhook_id:?}"),
    )
    .into()
}

/// The agent `agent_id` of the calling owner, and the owner's actor name.
async fn owners_agent(
    state: &AppState,
    principal: &Principal,
    agent_id: &str,
) -> Result<(String, String), Problem> {
    let owner = owner_of(principal)?;
    let agent = visible_agent(state, principal, agent_id).await?;
    Ok((agent.agent.id, format!("owner:{owner}")))
}

/// A fresh `whsec_` secret: 32 bytes from the operating system's CSPRNG.
fn new_secret() -> String {
    webhook::format_secret(&pactum_db::random_bytes())
}

/// `POST /agents/{agent_id}/webhooks`: the endpoint, with its secret shown once.
pub(crate) async fn create(
    state: &AppState,
    principal: &Principal,
    agent_id: &str,
    body: &CreateWebhook,
) -> Result<WebhookWithSecret, Problem> {
    let (agent_id, by) = owners_agent(state, principal, agent_id).await?;
    let d = state.webhook_destinations;
    let url = webhook::endpoint_url(&body.url, d.allow_http, d.allow_private)?;
    let types = webhook::event_types(body.event_types.as_deref())?;
    let description = webhook::description(&body.description)?;
    let id = format!("whk_{}", pactum_db::random_id(20));
    let secret = new_secret();
    let mut conn = state.db.acquire().await?;
    let mut tx = conn.begin().await.map_err(pactum_db::Error::from)?;
    let stored = store::insert(
        &mut tx,
        store::NewEndpoint {
            id: &id,
            agent_id: &agent_id,
            url: url.as_str(),
            description,
            event_types: types.as_deref(),
            secret: &secret,
            created_by: &by,
        },
        webhook::MAX_ENDPOINTS,
    )
    .await?;
    if !stored {
        return Err(WebhookError::new(
            WebhookCode::TooManyWebhooks,
            format!(
                "an agent may have at most {} webhooks; delete one first",
                webhook::MAX_ENDPOINTS
            ),
        )
        .into());
    }
    let endpoint = store::endpoint(&mut *tx, &agent_id, &id)
        .await?
        .ok_or_else(|| Problem::internal_because("a webhook just stored is gone"))?;
    tx.commit().await.map_err(pactum_db::Error::from)?;
    tracing::info!(webhook = %id, agent = %agent_id, by, "webhook created");
    Ok(WebhookWithSecret {
        webhook: view(endpoint),
        secret,
    })
}

/// `GET /agents/{agent_id}/webhooks`.
pub(crate) async fn list(
    state: &AppState,
    principal: &Principal,
    agent_id: &str,
) -> Result<WebhookList, Problem> {
    let (agent_id, _) = owners_agent(state, principal, agent_id).await?;
    let endpoints = store::endpoints(state.db.pool(), &agent_id).await?;
    Ok(WebhookList {
        webhooks: endpoints.into_iter().map(view).collect(),
    })
}

/// `GET /agents/{agent_id}/webhooks/{webhook_id}`.
pub(crate) async fn get(
    state: &AppState,
    principal: &Principal,
    agent_id: &str,
    webhook_id: &str,
) -> Result<WebhookView, Problem> {
    let (agent_id, _) = owners_agent(state, principal, agent_id).await?;
    store::endpoint(state.db.pool(), &agent_id, webhook_id)
        .await?
        .map(view)
        .ok_or_else(|| not_found(webhook_id))
}

/// `PATCH /agents/{agent_id}/webhooks/{webhook_id}`.
pub(crate) async fn update(
    state: &AppState,
    principal: &Principal,
    agent_id: &str,
    webhook_id: &str,
    body: &UpdateWebhook,
) -> Result<WebhookView, Problem> {
    let (agent_id, by) = owners_agent(state, principal, agent_id).await?;
    let d = state.webhook_destinations;
    let url = body
        .url
        .as_deref()
        .map(|raw| webhook::endpoint_url(raw, d.allow_http, d.allow_private))
        .transpose()?;
    let event_types = match (body.all_event_types, body.event_types.as_deref()) {
        (Some(true), Some(_)) => {
            return Err(WebhookError::new(
                WebhookCode::InvalidEventTypes,
                "send either event_types or all_event_types: true, not both",
            )
            .into());
        }
        (Some(true), None) => Some(None),
        (_, Some(types)) => Some(webhook::event_types(Some(types))?),
        (_, None) => None,
    };
    let description = body
        .description
        .as_deref()
        .map(webhook::description)
        .transpose()?;
    let mut conn = state.db.acquire().await?;
    let mut tx = conn.begin().await.map_err(pactum_db::Error::from)?;
    let change = EndpointChange {
        url: url.as_ref().map(|u| u.as_str()),
        description,
        event_types: event_types.as_ref().map(|t| t.as_deref()),
        enabled: body.enabled,
    };
    if !store::update(&mut tx, &agent_id, webhook_id, change).await? {
        return Err(not_found(webhook_id));
    }
    let endpoint = store::endpoint(&mut *tx, &agent_id, webhook_id)
        .await?
        .ok_or_else(|| not_found(webhook_id))?;
    tx.commit().await.map_err(pactum_db::Error::from)?;
    tracing::info!(webhook = %webhook_id, agent = %agent_id, by, status = %endpoint.status, "webhook updated");
    Ok(view(endpoint))
}

/// `DELETE /agents/{agent_id}/webhooks/{webhook_id}`: the endpoint, its deliveries and their
/// attempts.
pub(crate) async fn delete(
    state: &AppState,
    principal: &Principal,
    agent_id: &str,
    webhook_id: &str,
) -> Result<(), Problem> {
    let (agent_id, by) = owners_agent(state, principal, agent_id).await?;
    let mut conn = state.db.acquire().await?;
    if !store::delete(&mut conn, &agent_id, webhook_id).await? {
        return Err(not_found(webhook_id));
    }
    tracing::info!(webhook = %webhook_id, agent = %agent_id, by, "webhook deleted");
    Ok(())
}

/// `POST /agents/{agent_id}/webhooks/{webhook_id}/rotate-secret`: a new secret, shown once;
/// the current one keeps signing beside it for `overlap_seconds`.
pub(crate) async fn rotate_secret(
    state: &AppState,
    principal: &Principal,
    agent_id: &str,
    webhook_id: &str,
    overlap_seconds: Option<u64>,
) -> Result<WebhookWithSecret, Problem> {
    let (agent_id, by) = owners_agent(state, principal, agent_id).await?;
    let overlap = webhook::overlap(overlap_seconds)?;
    let secret = new_secret();
    let mut conn = state.db.acquire().await?;
    let mut tx = conn.begin().await.map_err(pactum_db::Error::from)?;
    if !store::rotate_secret(&mut tx, &agent_id, webhook_id, &secret, overlap).await? {
        return Err(not_found(webhook_id));
    }
    let endpoint = store::endpoint(&mut *tx, &agent_id, webhook_id)
        .await?
        .ok_or_else(|| not_found(webhook_id))?;
    tx.commit().await.map_err(pactum_db::Error::from)?;
    tracing::info!(webhook = %webhook_id, agent = %agent_id, by, overlap_secs = overlap.as_secs(), "webhook secret rotated");
    Ok(WebhookWithSecret {
        webhook: view(endpoint),
        secret,
    })
}

/// `GET /agents/{agent_id}/webhooks/deliveries`.
pub(crate) async fn deliveries(
    state: &AppState,
    principal: &Principal,
    agent_id: &str,
    q: &ListDeliveries,
) -> Result<DeliveryPage, Problem> {
    let (agent_id, _) = owners_agent(state, principal, agent_id).await?;
    let (limit, before) = crate::paging::page(q.limit, q.cursor.as_deref())?;
    let mut conn = state.db.acquire().await?;
    let rows = store::deliveries(
        &mut conn,
        store::DeliveryQuery {
            agent_id: &agent_id,
            status: q.status,
            endpoint_id: q.webhook_id.as_deref(),
            before,
            limit,
        },
    )
    .await?;
    let next_cursor = crate::paging::next_cursor(&rows, limit, |d| d.seq);
    Ok(DeliveryPage {
        deliveries: rows.into_iter().map(delivery_view).collect(),
        next_cursor,
    })
}

fn delivery_not_found(delivery_id: &str) -> Problem {
    WebhookError::new(
        WebhookCode::DeliveryNotFound,
        format!("the agent's webhooks have no delivery {delivery_id:?}"),
    )
    .into()
}

/// `GET /agents/{agent_id}/webhooks/deliveries/{delivery_id}`.
pub(crate) async fn delivery(
    state: &AppState,
    principal: &Principal,
    agent_id: &str,
    delivery_id: &str,
) -> Result<DeliveryView, Problem> {
    let (agent_id, _) = owners_agent(state, principal, agent_id).await?;
    let mut conn = state.db.acquire().await?;
    store::delivery(&mut conn, &agent_id, delivery_id)
        .await?
        .map(delivery_view)
        .ok_or_else(|| delivery_not_found(delivery_id))
}

/// `POST /agents/{agent_id}/webhooks/deliveries/{delivery_id}/replay`: one more attempt of a
/// finished delivery (the same message and `webhook-id`), due at once.
pub(crate) async fn replay(
    state: &AppState,
    principal: &Principal,
    agent_id: &str,
    delivery_id: &str,
) -> Result<DeliveryView, Problem> {
    let (agent_id, by) = owners_agent(state, principal, agent_id).await?;
    let mut conn = state.db.acquire().await?;
    let mut tx = conn.begin().await.map_err(pactum_db::Error::from)?;
    let last_step = u32::try_from(webhook::SCHEDULE.len() - 1).unwrap_or(u32::MAX);
    match store::replay(&mut tx, &agent_id, delivery_id, last_step).await? {
        Ok(()) => {}
        Err(ReplayRefused::NotFound) => return Err(delivery_not_found(delivery_id)),
        Err(ReplayRefused::InProgress) => {
            return Err(WebhookError::new(
                WebhookCode::DeliveryInProgress,
                "the delivery is pending: its next attempt is scheduled (see next_attempt_at)",
            )
            .into());
        }
        Err(ReplayRefused::Disabled) => {
            return Err(WebhookError::new(
                WebhookCode::WebhookDisabled,
                "the webhook is disabled: enable it (PATCH enabled: true), then replay",
            )
            .into());
        }
    }
    let d = store::delivery(&mut tx, &agent_id, delivery_id)
        .await?
        .ok_or_else(|| delivery_not_found(delivery_id))?;
    tx.commit().await.map_err(pactum_db::Error::from)?;
    tracing::info!(delivery = %delivery_id, agent = %agent_id, by, "webhook delivery replayed");
    Ok(delivery_view(d))
}
