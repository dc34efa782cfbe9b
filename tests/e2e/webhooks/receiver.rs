//! A webhook receiver over loopback that answers as the test commands: 2xx, an error status,
//! slowly, not at all (it hangs), or with a redirect. It records every request as received (raw
//! body and headers) and, like a careful receiver, processes each `webhook-id` once.

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use tokio::{net::TcpListener, sync::watch};

/// How the receiver answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    /// 204.
    Ok,
    /// This status, with a body of `body_len` bytes.
    Fail { status: u16, body_len: usize },
    /// 200 after this long.
    Slow(Duration),
    /// Never answers.
    Hang,
    /// 307 to `/elsewhere`.
    Redirect,
    /// 500 with a binary body (NUL bytes among others).
    Binary,
}

/// One request as received.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) id: String,
    pub(crate) timestamp: String,
    pub(crate) signature: String,
    pub(crate) body: Vec<u8>,
}

impl Received {
    /// The body as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }

    /// The event type.
    pub(crate) fn event_type(&self) -> String {
        self.json()["type"].as_str().unwrap_or_default().to_owned()
    }
}

#[derive(Debug, Default)]
struct Inner {
    mode: Option<Mode>,
    received: Vec<Received>,
    processed: BTreeSet<String>,
    elsewhere: usize,
}

/// A running receiver.
#[derive(Debug, Clone)]
pub(crate) struct Receiver {
    inner: Arc<Mutex<Inner>>,
    pub(crate) addr: SocketAddr,
    _stop: Arc<watch::Sender<bool>>,
}

impl Receiver {
    /// Starts one on 127.0.0.1, answering `mode`.
    pub(crate) async fn start(mode: Mode) -> eyre::Result<Self> {
        let inner = Arc::new(Mutex::new(Inner {
            mode: Some(mode),
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/hook", post(hook))
            .route("/elsewhere", post(elsewhere))
            .with_state(inner.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, mut rx) = watch::channel(false);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.changed().await;
                })
                .await;
        });
        Ok(Self {
            inner,
            addr,
            _stop: Arc::new(stop),
        })
    }

    /// Its URL.
    pub(crate) fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Answers `mode` from now on.
    pub(crate) fn set(&self, mode: Mode) {
        self.lock().mode = Some(mode);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every request received, in order.
    pub(crate) fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// The requests answered 2xx, once per `webhook-id` (what a deduplicating receiver
    /// processed), in order.
    pub(crate) fn processed(&self) -> Vec<Received> {
        let inner = self.lock();
        let mut seen = BTreeSet::new();
        inner
            .received
            .iter()
            .filter(|r| inner.processed.contains(&r.id) && seen.insert(r.id.clone()))
            .cloned()
            .collect()
    }

    /// Requests that followed a redirect.
    pub(crate) fn elsewhere(&self) -> usize {
        self.lock().elsewhere
    }

    /// Waits until `done` holds for the processed requests (fails after `timeout`).
    pub(crate) async fn wait(
        &self,
        timeout: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> eyre::Result<Vec<Received>> {
        let started = Instant::now();
        loop {
            let processed = self.processed();
            if done(&processed) {
                return Ok(processed);
            }
            eyre::ensure!(
                started.elapsed() < timeout,
                "the receiver got {} of what it waited for: {:?}",
                processed.len(),
                processed
                    .iter()
                    .map(Received::event_type)
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn hook(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap, body: Bytes) -> Response {
    let received = Received {
        id: header_text(&headers, "webhook-id"),
        timestamp: header_text(&headers, "webhook-timestamp"),
        signature: header_text(&headers, "webhook-signature"),
        body: body.to_vec(),
    };
    let id = received.id.clone();
    let mode = {
        let mut inner = inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.received.push(received);
        inner.mode.clone().unwrap_or(Mode::Ok)
    };
    let ok = |inner: &Arc<Mutex<Inner>>| {
        inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .processed
            .insert(id.clone());
    };
    match mode {
        Mode::Ok => {
            ok(&inner);
            StatusCode::NO_CONTENT.into_response()
        }
        Mode::Slow(pause) => {
            tokio::time::sleep(pause).await;
            ok(&inner);
            StatusCode::OK.into_response()
        }
        Mode::Fail { status, body_len } => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "x".repeat(body_len),
        )
            .into_response(),
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
        Mode::Redirect => (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, "/elsewhere")],
        )
            .into_response(),
        Mode::Binary => (
            StatusCode::INTERNAL_SERVER_ERROR,
            vec![0x1f, 0x8b, 0x00, 0x00, 0xff, 0x00, b'a'],
        )
            .into_response(),
    }
}

async fn elsewhere(State(inner): State<Arc<Mutex<Inner>>>) -> StatusCode {
    inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .elsewhere += 1;
    StatusCode::OK
}

/// Checks every request's signature with an independent Standard Webhooks implementation (the
/// `standardwebhooks` package from PyPI, in the project's `.venv`) against `secrets`: each
/// request must verify with at least one of them. Returns how many verified.
pub(crate) fn verify_independently(received: &[Received], secrets: &[&str]) -> eyre::Result<usize> {
    let requests: Vec<serde_json::Value> = received
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "timestamp": r.timestamp,
                "signature": r.signature,
                "body": String::from_utf8_lossy(&r.body),
            })
        })
        .collect();
    let input = serde_json::json!({ "secrets": secrets, "requests": requests });
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".venv/bin/python");
    let mut child = std::process::Command::new(&python)
        .arg(root.join("tools/verify_webhooks.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| {
            eyre::eyre!(
                "cannot run {} (script/setup.sh installs it): {e}",
                python.display()
            )
        })?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().ok_or_else(|| eyre::eyre!("no stdin"))?;
        stdin.write_all(input.to_string().as_bytes())?;
    }
    let out = child.wait_with_output()?;
    eyre::ensure!(
        out.status.success(),
        "independent verification failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}
