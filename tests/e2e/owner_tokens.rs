//! Owner tokens from an identity provider: RS256 and ES256 JWTs verified against a JWKS served
//! over loopback by the test, with keys generated here. Rotation, an unknown `kid`, algorithm
//! confusion, `none`, wrong issuer or audience, expired, not yet valid, too long-lived, an
//! unverified email, and a provider whose keys cannot be had. Owners are provisioned on first
//! sight of a verified subject.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use alloy::transports::http::reqwest::Method;
use axum::{Json, Router, extract::State, routing::get};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use pactum_api::{
    AppState,
    auth::{
        OwnerTokens,
        jwks::{IdentityProvider, JwksSource, ProviderSettings},
        tokens::ProviderPolicy,
    },
};
use pactum_client::{Client, RawAnswer};
use pactum_db::testing::TestDatabase;
use rsa::{
    pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey},
    traits::PublicKeyParts,
};
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::watch};

const ISSUER: &str = "https://idp.pactum.test/";
const AUDIENCE: &str = "pactum-api";

/// A signing key of the test's identity provider.
struct Key {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    /// Its public half as a JWK.
    jwk: Value,
    /// The bytes an attacker could try as an HS256 secret (the RSA public key, DER).
    public_bytes: Vec<u8>,
}

fn rsa_key(kid: &str) -> eyre::Result<Key> {
    let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)?;
    let public = private.to_public_key();
    Ok(Key {
        kid: kid.into(),
        alg: Algorithm::RS256,
        encoding: EncodingKey::from_rsa_der(private.to_pkcs1_der()?.as_bytes()),
        jwk: json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        }),
        public_bytes: public.to_pkcs1_der()?.as_bytes().to_vec(),
    })
}

fn ec_key(kid: &str) -> eyre::Result<Key> {
    let secret = p256::SecretKey::random(&mut rsa::rand_core::OsRng);
    let point =
        p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&secret.public_key(), false);
    let (x, y) = (
        point.x().ok_or_else(|| eyre::eyre!("no x"))?,
        point.y().ok_or_else(|| eyre::eyre!("no y"))?,
    );
    Ok(Key {
        kid: kid.into(),
        alg: Algorithm::ES256,
        encoding: EncodingKey::from_ec_der(secret.to_pkcs8_der()?.as_bytes()),
        jwk: json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        }),
        public_bytes: point.as_bytes().to_vec(),
    })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Standard claims for subject `sub`, valid for ten minutes from now.
fn claims(sub: &str) -> Value {
    let t = now();
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": t, "exp": t + 600,
        "email": format!("{sub}@example.test"), "email_verified": true, "name": "Ada",
    })
}

fn sign(key: &Key, claims: &Value) -> eyre::Result<String> {
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    Ok(jsonwebtoken::encode(&header, claims, &key.encoding)?)
}

/// A token with a hand-made header, signed (if at all) with HMAC-SHA256 over `secret`.
fn forged(header: &Value, claims: &Value, secret: Option<&[u8]>) -> String {
    use hmac::Mac;
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let c = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signature = secret.map_or_else(String::new, |secret| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(format!("{h}.{c}").as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    });
    format!("{h}.{c}.{signature}")
}

/// The provider's JWKS endpoint: what it publishes, and how often it was fetched.
#[derive(Clone, Default)]
struct Published {
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
    /// While set, the endpoint answers 503 (the provider is down).
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl Published {
    fn set(&self, keys: &[&Key]) {
        *self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            keys.iter().map(|k| k.jwk.clone()).collect();
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

async fn jwks(State(published): State<Published>) -> Result<Json<Value>, axum::http::StatusCode> {
    published.fetches.fetch_add(1, Ordering::SeqCst);
    if published.down.load(Ordering::SeqCst) {
        return Err(axum::http::StatusCode::SERVICE_UNAVAILABLE);
    }
    let keys = published
        .keys
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    Ok(Json(json!({ "keys": keys })))
}

struct Fixture {
    db: TestDatabase,
    api: Client,
    published: Published,
    _stops: (watch::Sender<bool>, watch::Sender<bool>),
}

impl Fixture {
    /// `GET /owners/me` with `token`.
    async fn me(&self, token: &str) -> eyre::Result<RawAnswer> {
        Ok(self
            .api
            .authenticated(token)
            .send_raw(Method::GET, "owners/me", &[], None)
            .await?)
    }

    /// Asserts `token` is refused with 401, the detail mentioning `why`.
    async fn refused(&self, token: &str, why: &str) -> eyre::Result<()> {
        let answer = self.me(token).await?;
        assert_eq!(answer.status.as_u16(), 401, "{why}: {}", answer.text());
        let body: Value = answer.json()?;
        assert_eq!(body["code"], "unauthenticated");
        assert!(
            body["detail"].as_str().unwrap_or_default().contains(why),
            "expected {why:?} in {body}"
        );
        Ok(())
    }
}

/// The API with an identity provider whose JWKS is served here (`refresh_every` as given, an
/// unknown `kid` refetched at most every 300 ms), publishing nothing yet.
async fn fixture(refresh_every: Duration, max_lifetime_secs: u64) -> eyre::Result<Fixture> {
    let published = Published::default();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let jwks_url = format!("http://{}/jwks.json", listener.local_addr()?);
    let (idp_stop, mut idp_stopped) = watch::channel(false);
    let app = Router::new()
        .route("/jwks.json", get(jwks))
        .with_state(published.clone());
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = idp_stopped.changed().await;
            })
            .await
    });
    fixture_with(
        published,
        JwksSource::Url(jwks_url),
        refresh_every,
        max_lifetime_secs,
        idp_stop,
    )
    .await
}

async fn fixture_with(
    published: Published,
    jwks: JwksSource,
    refresh_every: Duration,
    max_lifetime_secs: u64,
    idp_stop: watch::Sender<bool>,
) -> eyre::Result<Fixture> {
    let db = TestDatabase::create().await?;
    let provider = IdentityProvider::new(ProviderSettings {
        policy: ProviderPolicy {
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            max_lifetime_secs,
            require_verified_email: true,
        },
        jwks,
        refresh_every,
        unknown_kid_refetch: Duration::from_millis(300),
    })
    .map_err(|e| eyre::eyre!(e))?;
    let mut state = AppState::new(db.db().clone(), 31_337, None);
    state.owner_tokens = Some(OwnerTokens::Provider(Arc::new(provider)));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let api = Client::new(&format!("http://{}", listener.local_addr()?))?;
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(pactum_api::serve(listener, state, stopped));
    Ok(Fixture {
        db,
        api,
        published,
        _stops: (stop, idp_stop),
    })
}

#[tokio::test]
async fn rs256_and_es256_tokens_sign_owners_in_and_provision_them_once() -> eyre::Result<()> {
    let f = fixture(Duration::from_secs(600), 86_400).await?;
    let (rsa, ec) = (rsa_key("rsa-1")?, ec_key("ec-1")?);
    f.published.set(&[&rsa, &ec]);

    let answer = f.me(&sign(&rsa, &claims("ada"))?).await?;
    assert_eq!(answer.status.as_u16(), 200, "{}", answer.text());
    let me: Value = answer.json()?;
    let id = me["owner_id"].as_str().unwrap_or_default().to_owned();
    assert!(id.starts_with("own_"), "{me}");
    assert_eq!(me["email"], "ada@example.test");
    assert_eq!(me["name"], "Ada");
    assert_eq!(me["issuer"], ISSUER);

    // The same subject with the other key type: the same owner, provisioned once.
    let again: Value = f.me(&sign(&ec, &claims("ada"))?).await?.json()?;
    assert_eq!(again["owner_id"], id.as_str());
    let owners: i64 = sqlx::query_scalar("SELECT count(*) FROM owners")
        .fetch_one(f.db.db().pool())
        .await?;
    assert_eq!(owners, 1);
    // Another subject is another owner.
    let grace: Value = f.me(&sign(&ec, &claims("grace"))?).await?.json()?;
    assert_ne!(grace["owner_id"], id.as_str());
    // Both keys were had in one fetch.
    assert_eq!(f.published.fetches(), 1);
    Ok(())
}

#[tokio::test]
async fn rotated_keys_are_fetched_and_retired_keys_refused() -> eyre::Result<()> {
    let f = fixture(Duration::from_secs(1), 86_400).await?;
    let (old, new) = (rsa_key("2026-11")?, ec_key("2026-12")?);
    f.published.set(&[&old]);
    assert_eq!(
        f.me(&sign(&old, &claims("ada"))?).await?.status.as_u16(),
        200
    );

    // The provider publishes a new key beside the old one: a token with the new kid makes the
    // API fetch again, once (an unknown kid is refetched at most every 300 ms here).
    f.published.set(&[&old, &new]);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let before = f.published.fetches();
    assert_eq!(
        f.me(&sign(&new, &claims("ada"))?).await?.status.as_u16(),
        200
    );
    assert_eq!(f.published.fetches(), before + 1);
    assert_eq!(
        f.me(&sign(&new, &claims("ada"))?).await?.status.as_u16(),
        200
    );
    assert_eq!(
        f.published.fetches(),
        before + 1,
        "a known kid is not fetched again"
    );

    // The old key retired: once the held keys are refreshed, its tokens are refused.
    f.published.set(&[&new]);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    f.refused(
        &sign(&old, &claims("ada"))?,
        "is not one of the identity provider's keys",
    )
    .await?;
    assert_eq!(
        f.me(&sign(&new, &claims("ada"))?).await?.status.as_u16(),
        200
    );
    Ok(())
}

#[tokio::test]
async fn an_unknown_kid_is_refused_without_hammering_the_provider() -> eyre::Result<()> {
    let f = fixture(Duration::from_secs(600), 86_400).await?;
    let (published, stranger) = (ec_key("known")?, ec_key("made-up")?);
    f.published.set(&[&published]);
    assert_eq!(
        f.me(&sign(&published, &claims("ada"))?)
            .await?
            .status
            .as_u16(),
        200
    );
    let before = f.published.fetches();
    // Twenty tokens under a kid the provider never published, back to back: at most one refetch
    // in the interval.
    for _ in 0..20 {
        f.refused(
            &sign(&stranger, &claims("ada"))?,
            "is not one of the identity provider's keys",
        )
        .await?;
    }
    assert!(
        f.published.fetches() <= before + 1,
        "{} fetches",
        f.published.fetches() - before
    );
    // A kid known under another key does not help a token signed with a different key.
    let impostor = Key {
        kid: "known".into(),
        ..ec_key("ignored")?
    };
    f.refused(
        &sign(&impostor, &claims("ada"))?,
        "signature does not verify",
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn algorithm_confusion_and_none_are_refused() -> eyre::Result<()> {
    let f = fixture(Duration::from_secs(600), 86_400).await?;
    let (rsa, ec) = (rsa_key("rsa-1")?, ec_key("ec-1")?);
    f.published.set(&[&rsa, &ec]);
    let body = claims("mallory");
    // The RSA key's public bytes (and its JWK's modulus) used as an HS256 secret.
    for secret in [
        rsa.public_bytes.clone(),
        rsa.jwk.to_string().into_bytes(),
        ec.public_bytes.clone(),
    ] {
        let token = forged(
            &json!({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}),
            &body,
            Some(&secret),
        );
        f.refused(&token, "is not accepted").await?;
    }
    // `none`, in any spelling, with or without a signature.
    for alg in ["none", "None", "NONE"] {
        let token = forged(&json!({"alg": alg, "kid": "rsa-1"}), &body, None);
        f.refused(&token, "is not accepted").await?;
    }
    // An RS256 header on the EC key's kid, and ES256 on the RSA key's: the key does not fit.
    let mut cross = Key {
        kid: "ec-1".into(),
        ..rsa_key("x")?
    };
    f.refused(&sign(&cross, &body)?, "is not a key for RS256")
        .await?;
    cross = Key {
        kid: "rsa-1".into(),
        ..ec_key("y")?
    };
    f.refused(&sign(&cross, &body)?, "is not a key for ES256")
        .await?;
    // A symmetric key published in the JWKS is never used.
    let oct = json!({"kty": "oct", "kid": "sym", "k": URL_SAFE_NO_PAD.encode(b"a shared secret of enough length!!")});
    f.published
        .keys
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(oct);
    let token = forged(
        &json!({"alg": "HS256", "kid": "sym"}),
        &body,
        Some(b"a shared secret of enough length!!"),
    );
    f.refused(&token, "is not accepted").await?;
    // A key embedded in the header is never trusted.
    let attacker = ec_key("rsa-1")?;
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("rsa-1".into());
    header.jwk = serde_json::from_value(attacker.jwk.clone()).ok();
    let token = jsonwebtoken::encode(&header, &body, &attacker.encoding)?;
    f.refused(&token, "is not a key for ES256").await?;
    Ok(())
}

#[tokio::test]
async fn issuer_audience_time_lifetime_and_email_are_enforced() -> eyre::Result<()> {
    let f = fixture(Duration::from_secs(600), 3_600).await?;
    let key = ec_key("k")?;
    f.published.set(&[&key]);
    let t = now();
    let with = |patch: Value| {
        let mut c = claims("ada");
        if let (Some(c), Some(p)) = (c.as_object_mut(), patch.as_object()) {
            for (k, v) in p {
                if v.is_null() {
                    c.remove(k);
                } else {
                    c.insert(k.clone(), v.clone());
                }
            }
        }
        c
    };
    let cases = [
        (json!({"iss": "https://evil.test/"}), "issuer not accepted"),
        (json!({"iss": null}), "no iss claim"),
        (json!({"aud": "another-api"}), "audience not accepted"),
        (json!({"aud": null}), "no aud claim"),
        (json!({"exp": t - 120, "iat": t - 600}), "expired"),
        (json!({"exp": null}), "no exp claim"),
        (json!({"nbf": t + 600}), "not yet valid"),
        (json!({"iat": null}), "no iat claim"),
        (
            json!({"iat": t + 600, "exp": t + 900}),
            "issued in the future",
        ),
        (
            json!({"iat": t, "exp": t + 7_200}),
            "lifetime 7200 s is above the accepted 3600 s",
        ),
        (json!({"email_verified": false}), "email is not verified"),
        (json!({"email_verified": null}), "email is not verified"),
    ];
    for (patch, why) in cases {
        f.refused(&sign(&key, &with(patch))?, why).await?;
    }
    // An audience list holding ours is fine.
    let listed = with(json!({"aud": ["another-api", AUDIENCE]}));
    assert_eq!(f.me(&sign(&key, &listed)?).await?.status.as_u16(), 200);
    // Nothing refused was provisioned.
    let owners: i64 = sqlx::query_scalar("SELECT count(*) FROM owners")
        .fetch_one(f.db.db().pool())
        .await?;
    assert_eq!(owners, 1);
    Ok(())
}

#[tokio::test]
async fn keys_that_cannot_be_had_answer_503_and_a_file_source_works() -> eyre::Result<()> {
    // A JWKS URL where nothing listens.
    let closed = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/jwks.json", closed.local_addr()?);
    drop(closed);
    let (idp_stop, _) = watch::channel(false);
    let f = fixture_with(
        Published::default(),
        JwksSource::Url(url),
        Duration::from_secs(600),
        86_400,
        idp_stop,
    )
    .await?;
    let key = ec_key("k")?;
    let answer = f.me(&sign(&key, &claims("ada"))?).await?;
    assert_eq!(answer.status.as_u16(), 503, "{}", answer.text());
    let body: Value = answer.json()?;
    assert_eq!(body["code"], "identity_provider_unavailable");
    // Straight again: still 503 (not a 401 for want of keys), without waiting on the provider.
    let again = f.me(&sign(&key, &claims("ada"))?).await?;
    assert_eq!(again.status.as_u16(), 503, "{}", again.text());

    // A file holding the JWKS.
    let dir = std::env::temp_dir().join(format!("pactum-jwks-{}", pactum_db::random_id(8)));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("jwks.json");
    std::fs::write(&path, json!({"keys": [key.jwk]}).to_string())?;
    let (idp_stop, _) = watch::channel(false);
    let f = fixture_with(
        Published::default(),
        JwksSource::File(path),
        Duration::from_secs(600),
        86_400,
        idp_stop,
    )
    .await?;
    let answer = f.me(&sign(&key, &claims("ada"))?).await?;
    assert_eq!(answer.status.as_u16(), 200, "{}", answer.text());
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test]
async fn held_keys_serve_through_a_short_outage_but_not_a_long_one() -> eyre::Result<()> {
    // Refreshed every 100 ms here: held keys may serve for 12 intervals (1.2 s).
    let f = fixture(Duration::from_millis(100), 86_400).await?;
    let key = ec_key("k")?;
    f.published.set(&[&key]);
    assert_eq!(
        f.me(&sign(&key, &claims("ada"))?).await?.status.as_u16(),
        200
    );
    f.published.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The refresh fails; the held key still serves.
    assert_eq!(
        f.me(&sign(&key, &claims("ada"))?).await?.status.as_u16(),
        200
    );
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let answer = f.me(&sign(&key, &claims("ada"))?).await?;
    assert_eq!(answer.status.as_u16(), 503, "{}", answer.text());
    // The provider back: keys refreshed, tokens accepted again.
    f.published.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        f.me(&sign(&key, &claims("ada"))?).await?.status.as_u16(),
        200
    );
    Ok(())
}
