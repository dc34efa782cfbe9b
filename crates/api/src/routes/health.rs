//! Liveness, readiness, metrics and the OpenAPI document.

use axum::{
    Json,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use pactum_api_types::{Health, Ready};
use utoipa::OpenApi;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use crate::{AppState, metrics, problem::Problem};

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", responses((status = 200, body = Health)), tag = "operations")]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
    })
}

/// The last readiness verdict, shared by the callers of one second.
pub type Readiness = Arc<tokio::sync::Mutex<Option<(Instant, Result<Ready, Problem>)>>>;

/// How long a readiness verdict is served before it is checked again.
pub const READY_TTL: Duration = Duration::from_secs(1);

/// Readiness: the database answers and the indexer has a checkpoint within `max_lag_blocks` of
/// the node's head. Checked at most once per [`READY_TTL`], by one caller at a time; the others
/// wait for that check and get its verdict, so a crowd of probes costs one database read.
#[utoipa::path(
    get,
    path = "/ready",
    responses(
        (status = 200, body = Ready),
        (status = 503, description = "Database unreachable or index not caught up (`unavailable`)", body = Problem, content_type = "application/problem+json"),
    ),
    tag = "operations"
)]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Ready>, Problem> {
    let mut last = state.readiness.lock().await;
    if let Some((at, verdict)) = last.as_ref()
        && at.elapsed() < READY_TTL
    {
        return verdict.clone().map(Json);
    }
    let verdict = check_ready(&state).await;
    *last = Some((Instant::now(), verdict.clone()));
    verdict.map(Json)
}

async fn check_ready(state: &AppState) -> Result<Ready, Problem> {
    // The error's text (host names, server messages) is for the operator's log, not for an
    // unauthenticated caller.
    state.db.ping().await.map_err(|err| {
        tracing::warn!(%err, "readiness: the database does not answer");
        Problem::unavailable("the database does not answer")
    })?;
    if state
        .indexer_metrics
        .as_ref()
        .is_some_and(|m| m.snapshot().db_failing)
    {
        return Err(Problem::unavailable(
            "the indexer cannot reach the database; it retries with backoff",
        ));
    }
    let cursor = crate::services::indexed_cursor(state).await?;
    let indexed = u64::try_from(cursor.block_number).unwrap_or(0);
    let head = state
        .indexer_metrics
        .as_ref()
        .map_or(cursor.node_head, |m| {
            m.snapshot().node_head.max(cursor.node_head)
        });
    let lag = head.saturating_sub(indexed);
    if lag > state.max_lag_blocks {
        return Err(Problem::unavailable(format!(
            "index is {lag} blocks behind the node (more than {})",
            state.max_lag_blocks
        )));
    }
    Ok(Ready {
        status: "ready".to_owned(),
        indexed_block: indexed,
        lag_blocks: lag,
    })
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", responses((status = 200, content_type = "text/plain")), tag = "operations")]
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics::render(&state).await,
    )
        .into_response()
}

/// The OpenAPI document, generated (with its modifiers) and serialized once per process.
static OPENAPI_JSON: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    serde_json::to_string(&crate::ApiDoc::openapi()).unwrap_or_else(|_| "{}".to_owned())
});

/// This API's OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, content_type = "application/json")), tag = "operations")]
pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI_JSON.as_str(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi;

    fn operations(doc: &serde_json::Value) -> Vec<(String, String, serde_json::Value)> {
        let mut all = Vec::new();
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                all.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
        all
    }

    /// Every path parameter is one of its path's template (a query struct documented without
    /// `parameter_in = Query` shows up as required path parameters no request can send).
    #[test]
    fn path_parameters_are_in_their_paths() {
        let doc = serde_json::to_value(crate::ApiDoc::openapi()).unwrap_or_default();
        for (method, path, op) in operations(&doc) {
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "path" {
                    let name = p["name"].as_str().unwrap_or_default();
                    assert!(
                        path.contains(&format!("{{{name}}}")),
                        "{method} {path}: path parameter {name} is not in the path"
                    );
                }
            }
        }
    }

    /// Every write documents `Idempotency-Key` with what the server accepts.
    #[test]
    fn idempotency_keys_are_documented_as_accepted() {
        let doc = serde_json::to_value(crate::ApiDoc::openapi()).unwrap_or_default();
        let mut seen = 0;
        for (method, path, op) in operations(&doc) {
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "header" && p["name"] == "Idempotency-Key" {
                    seen += 1;
                    let schema = &p["schema"];
                    assert_eq!(
                        (
                            &schema["minLength"],
                            &schema["maxLength"],
                            &schema["pattern"]
                        ),
                        (
                            &serde_json::json!(1),
                            &serde_json::json!(255),
                            &serde_json::json!("^[!-~]+$")
                        ),
                        "{method} {path}"
                    );
                }
            }
        }
        assert!(seen > 10, "only {seen} operations document Idempotency-Key");
    }

    /// The OpenAPI document lists each state's wire spelling, exactly what the API sends (a
    /// schema-driven client or fuzzer must accept the answers).
    #[test]
    fn documented_enums_are_spelled_as_on_the_wire() {
        let doc = serde_json::to_value(crate::ApiDoc::openapi()).unwrap_or_default();
        let schemas = &doc["components"]["schemas"];
        let values = |name: &str| -> Vec<String> {
            schemas[name]["enum"]
                .as_array()
                .map(|v| {
                    v.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let spelled = |all: Vec<&str>| all.into_iter().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            values("ApprovalStatus"),
            spelled(
                pactum_core::approval::ApprovalStatus::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect()
            )
        );
        assert_eq!(
            values("LifecycleStatus"),
            spelled(
                pactum_core::agreement::LifecycleStatus::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect()
            )
        );
        assert_eq!(
            values("EventType"),
            spelled(
                pactum_core::webhook::EventType::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect()
            )
        );
    }
}
