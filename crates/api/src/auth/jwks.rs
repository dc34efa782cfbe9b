//! The identity provider's signing keys (its JWKS), from a URL or a file, cached.
//!
//! Keys are fetched at first use and again once they are older than the refresh interval. A
//! token whose `kid` is not among them triggers one refetch (keys rotate). Fetches of either
//! kind happen at most once per `unknown_kid_refetch`, so that made-up `kid`s or a provider that
//! is down cannot make pactum hammer it (or make owners wait on it). One fetch runs at a time.
//! When a refresh fails, the keys held are kept (and used) for up to [`MAX_STALE_REFRESHES`]
//! refresh intervals; with no keys at all, or older ones, owner tokens are answered 503.
//!
//! A URL is fetched with connect and response timeouts, without following redirects, and at
//! most [`MAX_JWKS_BYTES`] are read. Keys the library cannot read (another `kty`) are skipped.

use std::{
    path::PathBuf,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use alloy::transports::http::reqwest;
use jsonwebtoken::jwk::{Jwk, JwkSet};

use super::tokens::{self, ProviderOwner, ProviderPolicy};

/// Held keys are used while refreshes fail for at most this many refresh intervals; after that,
/// owner tokens are answered 503 until a refresh succeeds (a key the provider withdrew must not
/// stay trusted through a long outage).
pub const MAX_STALE_REFRESHES: u32 = 12;

/// The largest JWKS document read.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Where the provider publishes its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// `https://…/.well-known/jwks.json` (or `http://` on loopback for tests).
    Url(String),
    /// A file holding the JWKS, read again at each refresh (replace it to rotate).
    File(PathBuf),
}

/// The identity provider: how its tokens are judged and where its keys are.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// Issuer, audience, lifetime and email rules.
    pub policy: ProviderPolicy,
    /// The JWKS.
    pub jwks: JwksSource,
    /// Keys older than this are fetched again.
    pub refresh_every: Duration,
    /// Least time between two refetches for an unknown `kid`.
    pub unknown_kid_refetch: Duration,
}

/// Why an owner token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// The token is not acceptable (401).
    Refused(String),
    /// The provider's keys could not be had, so the token could not be checked (503).
    KeysUnavailable(String),
}

#[derive(Debug)]
struct Held {
    keys: Arc<JwkSet>,
    /// When `keys` were fetched (`None`: never).
    fetched: Option<Instant>,
    /// When a fetch was last tried, successful or not.
    tried: Option<Instant>,
}

/// The provider's keys, cached, and the verification of its tokens.
#[derive(Debug)]
pub struct IdentityProvider {
    settings: ProviderSettings,
    held: RwLock<Held>,
    fetching: tokio::sync::Mutex<()>,
    client: reqwest::Client,
}

impl IdentityProvider {
    /// A provider with `settings`; nothing is fetched until the first token.
    pub fn new(settings: ProviderSettings) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("JWKS client: {e}"))?;
        Ok(Self {
            settings,
            held: RwLock::new(Held {
                keys: Arc::new(JwkSet { keys: Vec::new() }),
                fetched: None,
                tried: None,
            }),
            fetching: tokio::sync::Mutex::new(()),
            client,
        })
    }

    /// The rules tokens are judged by.
    pub fn policy(&self) -> &ProviderPolicy {
        &self.settings.policy
    }

    /// Verifies `token` at unix time `now`: its key by `kid`, then the token.
    pub async fn verify(&self, token: &str, now: u64) -> Result<ProviderOwner, TokenError> {
        // Refuse what no key could make acceptable before looking keys up.
        tokens::provider_alg(token).map_err(TokenError::Refused)?;
        let kid = tokens::key_id(token).map_err(TokenError::Refused)?;
        let jwk = self.key(&kid).await?;
        tokens::verify_provider_token(token, &jwk, &self.settings.policy, now)
            .map_err(TokenError::Refused)
    }

    /// The held keys, whether they are due for a refresh, and `kid`'s key among them.
    fn lookup(&self, kid: &str) -> (Option<Jwk>, bool, Option<Instant>) {
        let held = self
            .held
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let due = held
            .fetched
            .is_none_or(|at| at.elapsed() >= self.settings.refresh_every);
        (held.keys.find(kid).cloned(), due, held.tried)
    }

    fn never_fetched(&self) -> bool {
        self.held
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .fetched
            .is_none()
    }

    /// Whether the held keys are older than [`MAX_STALE_REFRESHES`] refresh intervals.
    fn too_stale(&self) -> bool {
        let limit = self.settings.refresh_every * MAX_STALE_REFRESHES;
        self.held
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .fetched
            .is_some_and(|at| at.elapsed() > limit)
    }

    async fn key(&self, kid: &str) -> Result<Jwk, TokenError> {
        if let (Some(jwk), false, _) = self.lookup(kid) {
            return Ok(jwk);
        }
        let _one_at_a_time = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        let (found, due, tried) = self.lookup(kid);
        // At most one fetch per `unknown_kid_refetch`, whatever asks for it (an unknown kid, or
        // a refresh that is due but failed a moment ago): made-up kids and a provider that is
        // down cost one fetch per interval, and the held keys serve meanwhile.
        let may_refetch = tried.is_none_or(|at| at.elapsed() >= self.settings.unknown_kid_refetch);
        let fetch = (due || found.is_none()) && may_refetch;
        if fetch {
            self.refresh().await?;
        } else if self.never_fetched() {
            // The first fetch failed a moment ago: no keys to judge by until the next try.
            return Err(TokenError::KeysUnavailable(
                "the identity provider's keys could not be fetched yet; retrying shortly".into(),
            ));
        }
        if self.too_stale() {
            return Err(TokenError::KeysUnavailable(format!(
                "the identity provider's keys could not be refreshed for {MAX_STALE_REFRESHES} refresh intervals"
            )));
        }
        let (found, _, _) = self.lookup(kid);
        found.ok_or_else(|| {
            TokenError::Refused(format!(
                "JWT key {kid:?} is not one of the identity provider's keys"
            ))
        })
    }

    /// Fetches the keys. A failure keeps the keys held, unless there are none.
    async fn refresh(&self) -> Result<(), TokenError> {
        let result = self.fetch().await;
        let mut held = self
            .held
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        held.tried = Some(Instant::now());
        match result {
            Ok(keys) => {
                tracing::info!(keys = keys.keys.len(), "identity provider keys fetched");
                held.keys = Arc::new(keys);
                held.fetched = Some(Instant::now());
                Ok(())
            }
            Err(err) if held.fetched.is_some() => {
                tracing::warn!(%err, "identity provider keys could not be refreshed; keeping the ones held");
                Ok(())
            }
            Err(err) => Err(TokenError::KeysUnavailable(err)),
        }
    }

    async fn fetch(&self) -> Result<JwkSet, String> {
        let bytes = match &self.settings.jwks {
            JwksSource::File(path) => {
                let bytes = tokio::fs::read(path)
                    .await
                    .map_err(|e| format!("reading {}: {e}", path.display()))?;
                if bytes.len() > MAX_JWKS_BYTES {
                    return Err(format!(
                        "{} is larger than {MAX_JWKS_BYTES} bytes",
                        path.display()
                    ));
                }
                bytes
            }
            JwksSource::Url(url) => self.download(url).await?,
        };
        parse_jwks(&bytes)
    }

    async fn download(&self, url: &str) -> Result<Vec<u8>, String> {
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("fetching {url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("fetching {url}: HTTP {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("reading {url}: {e}"))?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("{url} answered more than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// A JWKS document: every key the library can read (others skipped, with a warning).
pub fn parse_jwks(bytes: &[u8]) -> Result<JwkSet, String> {
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let doc: Document =
        serde_json::from_slice(bytes).map_err(|e| format!("not a JWKS document: {e}"))?;
    let mut keys = Vec::with_capacity(doc.keys.len());
    for key in doc.keys {
        match serde_json::from_value::<Jwk>(key) {
            Ok(jwk) if jwk.common.key_id.is_some() => keys.push(jwk),
            Ok(_) => tracing::warn!("JWKS key without a kid skipped"),
            Err(err) => tracing::warn!(%err, "JWKS key skipped"),
        }
    }
    Ok(JwkSet { keys })
}
