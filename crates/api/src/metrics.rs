//! Prometheus metrics of the API (request counts and latency per route) and of the indexer
//! (indexed head, node head, lag, events), rendered in the text exposition format.

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{Arc, Mutex},
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
};

use crate::AppState;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// (method, route template, status).
type Series = (String, String, u16);

/// Request metrics, keyed by (method, route template, status).
#[derive(Debug, Default, Clone)]
pub struct HttpMetrics(Arc<Mutex<BTreeMap<Series, Histogram>>>);

impl HttpMetrics {
    fn observe(&self, method: String, route: String, status: u16, seconds: f64) {
        let Ok(mut map) = self.0.lock() else { return };
        let h = map.entry((method, route, status)).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    fn render(&self, out: &mut String) {
        let Ok(map) = self.0.lock() else { return };
        let _ = writeln!(
            out,
            "# HELP pactum_http_requests_total HTTP requests by method, route and status."
        );
        let _ = writeln!(out, "# TYPE pactum_http_requests_total counter");
        for ((method, route, status), h) in map.iter() {
            let _ = writeln!(
                out,
                "pactum_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {}",
                h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP pactum_http_request_duration_seconds HTTP request latency."
        );
        let _ = writeln!(out, "# TYPE pactum_http_request_duration_seconds histogram");
        for ((method, route, status), h) in map.iter() {
            let labels = format!("method=\"{method}\",route=\"{route}\",status=\"{status}\"");
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "pactum_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "pactum_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "pactum_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "pactum_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
    }
}

/// Middleware recording every request's latency under its route template.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    // Known methods only, so that arbitrary method names cannot create series without bound.
    let method = match request.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => m.to_owned(),
        _ => "OTHER".to_owned(),
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    state.http_metrics.observe(
        method,
        route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

fn gauge(out: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    let _ = writeln!(out, "{name} {value}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} counter");
    let _ = writeln!(out, "{name} {value}");
}

/// The whole exposition.
pub async fn render(state: &AppState) -> String {
    let mut out = String::new();
    // One connection at a time: the cursor's is back in the pool before the relayer's queue
    // takes one (holding one while waiting for another deadlocks a busy pool).
    let cursor = match state.db.acquire().await {
        Ok(mut conn) => pactum_db::index::load_cursor(&mut conn, state.chain_id)
            .await
            .ok()
            .flatten(),
        Err(_) => None,
    };
    if let Some(c) = cursor {
        let indexed = u64::try_from(c.block_number).unwrap_or(0);
        let head = state
            .indexer_metrics
            .as_ref()
            .map_or(c.node_head, |m| m.snapshot().node_head.max(c.node_head));
        gauge(
            &mut out,
            "pactum_indexer_indexed_block",
            "Last block fully indexed.",
            indexed,
        );
        gauge(
            &mut out,
            "pactum_indexer_node_head_block",
            "The node's head as last seen.",
            head,
        );
        gauge(
            &mut out,
            "pactum_indexer_finalized_block",
            "Highest block known final.",
            c.finalized_block,
        );
        gauge(
            &mut out,
            "pactum_indexer_lag_blocks",
            "Node head minus indexed block.",
            head.saturating_sub(indexed),
        );
    }
    if let Some(m) = &state.indexer_metrics {
        let s = m.snapshot();
        counter(
            &mut out,
            "pactum_indexer_events_total",
            "Events indexed by this process.",
            s.events,
        );
        counter(
            &mut out,
            "pactum_indexer_batches_total",
            "Batches committed by this process.",
            s.batches,
        );
        counter(
            &mut out,
            "pactum_indexer_reorgs_total",
            "Reorgs rolled back by this process.",
            s.reorgs,
        );
        counter(
            &mut out,
            "pactum_indexer_reorged_events_total",
            "Events removed by reorgs.",
            s.reorged_events,
        );
        counter(
            &mut out,
            "pactum_indexer_rpc_retries_total",
            "Node requests retried.",
            s.rpc_retries,
        );
        counter(
            &mut out,
            "pactum_indexer_range_splits_total",
            "Log ranges split on the node's refusal.",
            s.range_splits,
        );
        counter(
            &mut out,
            "pactum_indexer_db_retries_total",
            "Times the indexer waited for an unreachable database.",
            s.db_retries,
        );
        gauge(
            &mut out,
            "pactum_indexer_leader",
            "1 while this process writes the index (holds the index lock); 0 on a standby.",
            u8::from(s.leader),
        );
        counter(
            &mut out,
            "pactum_indexer_leader_terms_total",
            "Times this process took the index lock.",
            s.leader_terms,
        );
        gauge(
            &mut out,
            "pactum_indexer_db_failing",
            "1 while the indexer's last attempt failed on an unreachable database.",
            u8::from(s.db_failing),
        );
    }
    if let Some(relayer) = &state.relayer {
        let queue = pactum_db::relay::jobs_by_state(state.db.pool(), state.chain_id)
            .await
            .unwrap_or_default();
        relayer.metrics().render(&mut out, &queue);
    }
    webhooks(state, &mut out).await;
    state.http_metrics.render(&mut out);
    out
}

/// The delivery queue (shared by every process: the same figures on each) and this process's
/// worker's counters.
async fn webhooks(state: &AppState, out: &mut String) {
    if let Ok(q) = pactum_db::webhooks::queue_stats(state.db.pool()).await {
        gauge(
            out,
            "pactum_webhook_deliveries_pending",
            "Webhook deliveries still to be made (due or waiting for a retry), in all processes.",
            q.pending,
        );
        gauge(
            out,
            "pactum_webhook_deliveries_due",
            "Pending webhook deliveries due now.",
            q.due,
        );
        gauge(
            out,
            "pactum_webhook_oldest_due_seconds",
            "How long the oldest due webhook delivery has waited.",
            format!("{:.3}", q.oldest_due_secs),
        );
    }
    let Some(m) = &state.webhook_metrics else {
        return;
    };
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let _ = writeln!(
        out,
        "# HELP pactum_webhook_attempts_total Delivery attempts by this process's worker, by outcome."
    );
    let _ = writeln!(out, "# TYPE pactum_webhook_attempts_total counter");
    let _ = writeln!(
        out,
        "pactum_webhook_attempts_total{{outcome=\"delivered\"}} {}",
        load(&m.delivered)
    );
    let _ = writeln!(
        out,
        "pactum_webhook_attempts_total{{outcome=\"failed\"}} {}",
        load(&m.failed_attempts)
    );
    counter(
        out,
        "pactum_webhook_deliveries_given_up_total",
        "Deliveries whose retry schedule this process's worker spent (now failed).",
        load(&m.given_up),
    );
    counter(
        out,
        "pactum_webhook_endpoints_disabled_total",
        "Endpoints this process's worker disabled after days of failures.",
        load(&m.endpoints_disabled),
    );
    counter(
        out,
        "pactum_webhook_outcomes_dropped_total",
        "Attempt outcomes the database did not take (the delivery is retried after its lease).",
        load(&m.outcomes_dropped),
    );
}
