//! Limits of the unauthenticated operational endpoints (`/health`, `/ready`, `/metrics`,
//! `/openapi.json`), so that anonymous callers cannot take the CPU, the database pool or the
//! runtime from authenticated work.
//!
//! Each endpoint is paced like nginx's `limit_req` without `nodelay`: requests start at most
//! [`Limit::per_second`] a second, in arrival order; one arriving in a burst waits for its turn
//! (at most [`Limit::max_wait`]). One whose turn would come later is held for `max_wait` to
//! twice that (spread at random, so that callers refused together do not return together) and
//! then answered `503 busy` with `Retry-After`: a caller that ignores the limit is slowed down to it
//! instead of being answered as fast as it can ask (answering a flood at once costs the CPU the
//! rest of the service needs; holding it costs a timer). At most [`MAX_WAITING`] requests wait
//! per endpoint; beyond that they are answered at once. Started requests are further bounded by
//! [`Limit::concurrency`] (for `/metrics`, the pooled connections it can hold).
//!
//! The limits are per endpoint and process, not per caller: a flood slows the endpoint for every
//! prober. Operators keep `/metrics` on `api.metrics_listen` and the probes on a private network.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::{Request, State},
    handler::Handler,
    http::{HeaderValue, StatusCode, header},
    middleware::{Next, from_fn_with_state},
    response::{IntoResponse, Response},
    routing::{MethodRouter, get},
};
use tokio::{sync::Semaphore, time::Instant};

use crate::{AppState, problem::Problem};

/// The limit of one operational endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Requests started per second (the pace; bursts wait their turn).
    pub per_second: u32,
    /// How long a request waits for its turn; longer, it is held that long and refused.
    pub max_wait: Duration,
    /// Requests served at once.
    pub concurrency: usize,
}

/// How many requests may wait (or be held before their refusal) per endpoint; more are refused
/// at once.
pub const MAX_WAITING: usize = 256;

/// `/health` reads nothing.
pub const HEALTH: Limit = Limit {
    per_second: 100,
    max_wait: Duration::from_secs(1),
    concurrency: 64,
};
/// `/ready` checks at most once a second; the callers of that second share its verdict.
pub const READY: Limit = Limit {
    per_second: 100,
    max_wait: Duration::from_secs(1),
    concurrency: 64,
};
/// `/metrics` reads the database: at most two pooled connections, ten scrapes a second (a
/// Prometheus server scrapes every few seconds).
pub const METRICS: Limit = Limit {
    per_second: 10,
    max_wait: Duration::from_secs(1),
    concurrency: 2,
};
/// `/openapi.json` is a large document.
pub const OPENAPI: Limit = Limit {
    per_second: 10,
    max_wait: Duration::from_secs(1),
    concurrency: 4,
};

/// The turn of each request: the next free start time.
#[derive(Debug)]
struct Pacer {
    limit: Limit,
    next: Mutex<Option<Instant>>,
    waiting: Semaphore,
    serving: Semaphore,
}

/// The start time of a request arriving at `now` when the next free start is `next` (none: no
/// request yet), or `None` if it would wait more than `max_wait`. On a start, `next` moves one
/// interval past it.
fn turn(next: &mut Option<Instant>, now: Instant, limit: Limit) -> Option<Instant> {
    let start = next.map_or(now, |n| n.max(now));
    if start.duration_since(now) > limit.max_wait {
        return None;
    }
    let interval = Duration::from_secs(1) / limit.per_second.max(1);
    *next = Some(start + interval);
    Some(start)
}

/// How long a refusal is held: `max_wait` and up to as much again, spread by `random` (a
/// random byte), so that callers refused together do not all come back in the same instant.
fn hold(max_wait: Duration, random: u8) -> Duration {
    max_wait + max_wait * u32::from(random) / 255
}

/// `GET` of an operational endpoint under `limit`.
pub(crate) fn route<H, T>(handler: H, limit: Limit) -> MethodRouter<AppState>
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let pacer = Arc::new(Pacer {
        limit,
        next: Mutex::new(None),
        waiting: Semaphore::new(MAX_WAITING),
        serving: Semaphore::new(limit.concurrency),
    });
    get(handler).layer(from_fn_with_state(pacer, paced))
}

async fn paced(State(pacer): State<Arc<Pacer>>, request: Request, next: Next) -> Response {
    let Ok(_waiting) = pacer.waiting.try_acquire() else {
        return busy();
    };
    let start = {
        let Ok(mut next) = pacer.next.lock() else {
            return busy();
        };
        turn(&mut next, Instant::now(), pacer.limit)
    };
    let Some(start) = start else {
        tokio::time::sleep(hold(pacer.limit.max_wait, pactum_db::random_bytes()[0])).await;
        return busy();
    };
    tokio::time::sleep_until(start).await;
    let Ok(_serving) = pacer.serving.try_acquire() else {
        return busy();
    };
    next.run(request).await
}

fn busy() -> Response {
    let mut response = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        "Too many requests to this endpoint",
        "the endpoint serves a limited number of requests a second; retry shortly",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN: Limit = Limit {
        per_second: 10,
        max_wait: Duration::from_secs(1),
        concurrency: 1,
    };

    #[test]
    fn an_idle_endpoint_starts_a_request_at_once() {
        let now = Instant::now();
        let mut next = None;
        assert_eq!(turn(&mut next, now, TEN), Some(now));
        assert_eq!(next, Some(now + Duration::from_millis(100)));
        // Long after, still at once: idle time is not saved up as a burst.
        let later = now + Duration::from_secs(60);
        assert_eq!(turn(&mut next, later, TEN), Some(later));
    }

    #[test]
    fn a_burst_waits_its_turn_up_to_max_wait_then_is_refused() {
        let now = Instant::now();
        let mut next = None;
        let starts: Vec<_> = (0..12).map(|_| turn(&mut next, now, TEN)).collect();
        // One at once, then one every 100 ms, up to 1 s of waiting: 11 starts.
        for (i, start) in starts.iter().take(11).enumerate() {
            assert_eq!(*start, Some(now + Duration::from_millis(100) * i as u32));
        }
        assert_eq!(starts[11], None);
        // A refusal does not move the schedule: once time passes, turns come again.
        assert_eq!(next, Some(now + Duration::from_millis(1_100)));
        let later = now + Duration::from_millis(150);
        assert_eq!(
            turn(&mut next, later, TEN),
            Some(now + Duration::from_millis(1_100))
        );
    }

    #[test]
    fn a_refusal_is_held_between_max_wait_and_twice_that() {
        let second = Duration::from_secs(1);
        assert_eq!(hold(second, 0), second);
        assert_eq!(hold(second, 255), 2 * second);
        assert!(hold(second, 128) > second && hold(second, 128) < 2 * second);
    }

    #[test]
    fn a_zero_rate_is_read_as_one_a_second() {
        let now = Instant::now();
        let mut next = None;
        let zero = Limit {
            per_second: 0,
            ..TEN
        };
        turn(&mut next, now, zero);
        assert_eq!(next, Some(now + Duration::from_secs(1)));
    }
}
