//! What the process-level tests share.

/// A xorshift generator: the crash tests' random moments, reproducible from the printed seed.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    /// The next number.
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A seed for a test's random moments, from the clock, printed so that a failure can be
/// replayed; and the generator it starts.
pub(crate) fn seeded(test: &str) -> (u64, Rng) {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("{test} seed {seed}");
    (seed, Rng(seed))
}

/// The `webhook-id` of each request a receiver got, and how many times.
pub(crate) type Seen = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>;

/// A webhook receiver on a loopback port that records each `webhook-id` and answers 200 after
/// `delay`; its URL and what it saw.
#[allow(dead_code)] // not every process-level test receives webhooks
pub(crate) async fn webhook_receiver(
    delay: std::time::Duration,
) -> std::io::Result<(String, Seen)> {
    use axum::{Router, extract::State, http::HeaderMap, routing::post};
    async fn receive(
        State((seen, delay)): State<(Seen, std::time::Duration)>,
        headers: HeaderMap,
    ) -> &'static str {
        let id = headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        *seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(id)
            .or_default() += 1;
        tokio::time::sleep(delay).await;
        "ok"
    }
    let seen = Seen::default();
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state((seen.clone(), delay));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, seen))
}
