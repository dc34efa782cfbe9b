//! `Idempotency-Key` for every write endpoint, as one middleware.
//!
//! A write request (`POST`, `PUT`, `PATCH`, `DELETE`) with an `Idempotency-Key` header is run at
//! most once per authenticated principal and key:
//! - the first request claims the key, runs, and its response is stored (for `TTL`); an answer
//!   that says "not now" rather than "no" releases the key instead, so that a retry runs again:
//!   a server error (5xx), a conflict with the current state (409, e.g. another action in
//!   flight, or a window not open yet), a rate limit (429), an agreement not indexed yet (404
//!   `agreement_not_found`) and a failed simulation (`simulation_failed`): every answer
//!   [`Problem::is_transient`] marks, and a 5xx from anywhere. None of them had an effect;
//! - a retry with the same method, path and body gets the stored response, marked
//!   `Idempotency-Replayed: true`;
//! - the same key with another method, path or body is refused: 422 `idempotency_key_reused`;
//! - a duplicate arriving while the first is still running waits for it (up to `WAIT`, reading
//!   the record again after 20 ms, 40 ms, … at most every 320 ms) and gets its response, so
//!   concurrent duplicates produce one effect; after the wait, 409
//!   `idempotency_request_in_progress`. At most `MAX_WAITING` duplicates wait at once in a
//!   process; one more gets that 409 at once.
//!
//! Endpoints that require the header check it themselves ([`require_key`]).

use std::time::Duration;

use axum::{
    body::{Body, to_bytes},
    extract::{Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use pactum_db::idempotency::{self as store, Claim};
use sha2::{Digest, Sha256};

use crate::{
    AppState,
    auth::Principal,
    problem::{Problem, Transient},
};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The header marking a replayed response.
pub const REPLAYED: &str = "idempotency-replayed";
/// How long a stored response is replayed.
pub const TTL: Duration = Duration::from_secs(24 * 3600);
/// How long a duplicate waits for the original to finish.
pub const WAIT: Duration = Duration::from_secs(10);
/// Duplicates waiting for their original at once, in one process.
pub const MAX_WAITING: usize = 256;
/// How long a claimed key stays taken if its request never completes (the process died), by
/// default ([`crate::AppState::idempotency_lease`]).
pub const LEASE: Duration = Duration::from_secs(60);
/// Largest request body accepted on an idempotent write.
pub const MAX_BODY: usize = 1 << 20;

fn is_write(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// The key, if the request carries a valid one; a malformed key is a 400.
pub fn key_of(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
            "Invalid Idempotency-Key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        ));
    }
    Ok(Some(key.to_owned()))
}

/// For endpoints where the header is mandatory.
pub fn require_key(headers: &HeaderMap) -> Result<String, Problem> {
    key_of(headers)?.ok_or_else(|| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "idempotency_key_required",
            "Idempotency-Key required",
            "this endpoint requires an Idempotency-Key header",
        )
    })
}

fn replay(status: u16, content_type: &str, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    response.headers_mut().insert(
        HeaderName::from_static(REPLAYED),
        HeaderValue::from_static("true"),
    );
    response
}

/// The middleware (runs after [`crate::auth::authenticate`]). Requests without an authenticated
/// principal pass through untouched (their handlers refuse them), so that anonymous callers
/// cannot fill the store.
pub async fn idempotency(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !is_write(request.method()) {
        return next.run(request).await;
    }
    // Credentials first: an anonymous request is refused as such (401) by its handler, whatever
    // its key.
    let Some(scope) = request
        .extensions()
        .get::<Principal>()
        .map(Principal::scope)
    else {
        return next.run(request).await;
    };
    let key = match key_of(request.headers()) {
        Ok(Some(key)) => key,
        Ok(None) => return next.run(request).await,
        Err(problem) => return problem.into_response(),
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "Request body too large",
            format!("request bodies are limited to {MAX_BODY} bytes"),
        )
        .into_response();
    };
    let method = parts.method.as_str().to_owned();
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let mut hasher = Sha256::new();
    for piece in [method.as_bytes(), path.as_bytes(), &bytes[..]] {
        hasher.update((piece.len() as u64).to_be_bytes());
        hasher.update(piece);
    }
    let hash: [u8; 32] = hasher.finalize().into();
    let token = crate::auth::random_id(24);
    let request = store::Request {
        principal: &scope,
        key: &key,
        claim_token: &token,
        method: &method,
        path: &path,
        request_hash: &hash,
    };

    match claim(&state, request).await {
        Ok(None) => {}
        Ok(Some(response)) => return response,
        Err(problem) => return problem.into_response(),
    }

    // The claimed request runs in its own task: if the client goes away, the handler still
    // finishes and its response is stored, so a retry replays it instead of running it again.
    let owned = (
        scope.clone(),
        key.clone(),
        token.clone(),
        method.clone(),
        path.clone(),
    );
    let task = tokio::spawn(async move {
        let (scope, key, token, method, path) = owned;
        let request = store::Request {
            principal: &scope,
            key: &key,
            claim_token: &token,
            method: &method,
            path: &path,
            request_hash: &hash,
        };
        run_claimed(
            &state,
            request,
            next.run(Request::from_parts(parts, Body::from(bytes))),
        )
        .await
    });
    match task.await {
        Ok(Ok(response)) => response,
        Ok(Err(problem)) => problem.into_response(),
        // The handler panicked: its claim expires with the lease and a retry runs again.
        Err(_) => Problem::internal().into_response(),
    }
}

/// Claims the key, or answers from the existing record: `None` when this request holds the claim.
async fn claim(state: &AppState, request: store::Request<'_>) -> Result<Option<Response>, Problem> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let in_progress = || {
        Problem::new(
            StatusCode::CONFLICT,
            "idempotency_request_in_progress",
            "Request in progress",
            "a request with this Idempotency-Key is still being processed; retry later",
        )
    };
    // Taken on the first wait; bounds how many duplicates wait at once.
    let mut waiting = None;
    let mut pause = Duration::from_millis(20);
    loop {
        match store::claim(state.db.pool(), request, state.idempotency_lease).await? {
            Claim::Claimed => return Ok(None),
            Claim::Existing(record) => {
                if record.request_hash != *request.request_hash {
                    return Err(Problem::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "idempotency_key_reused",
                        "Idempotency-Key reused",
                        format!(
                            "this key was used for another request ({} {}); use a new key for a new request",
                            record.method, record.path
                        ),
                    ));
                }
                if let Some(store::StoredResponse {
                    status,
                    content_type,
                    body,
                }) = record.response
                {
                    return Ok(Some(replay(status, &content_type, body)));
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(in_progress());
                }
                if waiting.is_none() {
                    let permit = state.idempotency_waiters.clone().try_acquire_owned();
                    waiting = Some(permit.map_err(|_| in_progress())?);
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(320));
            }
        }
    }
}

/// Answers a retry should not get replayed: they describe a moment, not the request.
fn retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::CONFLICT
        || status == StatusCode::TOO_MANY_REQUESTS
}

/// Runs the claimed request, renewing its lease meanwhile, then stores (or, on a server error,
/// releases, see [`retryable`]) the result.
async fn run_claimed(
    state: &AppState,
    request: store::Request<'_>,
    handler: impl Future<Output = Response>,
) -> Result<Response, Problem> {
    let (pool, lease) = (state.db.pool(), state.idempotency_lease);
    // Renews the lease until the handler finishes (the select below drops it then). Never
    // completes on its own: a lost claim is logged and the handler still runs to the end.
    let renew = async {
        loop {
            tokio::time::sleep(lease / 3).await;
            match store::renew_lease(
                pool,
                request.principal,
                request.key,
                request.claim_token,
                lease,
            )
            .await
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(
                        key = request.key,
                        "idempotency claim lost while its request ran"
                    );
                    std::future::pending::<()>().await;
                }
                Err(err) => tracing::warn!(%err, "renewing an idempotency lease failed"),
            }
        }
    };
    let response = tokio::select! {
        response = handler => response,
        () = renew => unreachable!("the renewal loop never ends"),
    };
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        store::release(pool, request.principal, request.key, request.claim_token).await?;
        return Err(Problem::internal());
    };
    if retryable(parts.status) || parts.extensions.get::<Transient>().is_some() {
        store::release(pool, request.principal, request.key, request.claim_token).await?;
    } else {
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream");
        let stored = store::complete(
            pool,
            request,
            (parts.status.as_u16(), content_type, &bytes),
            TTL,
        )
        .await?;
        if !stored {
            tracing::warn!(
                key = request.key,
                "idempotency claim lost before the response was stored"
            );
        }
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}
