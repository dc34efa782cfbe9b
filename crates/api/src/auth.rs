//! Authentication: agent API keys and owner JWTs, both as `Authorization: Bearer <token>`.
//!
//! - **Agent API key** `pk_<id>_<secret>`: `id` (16 base-32 characters) finds the key, `secret`
//!   (256 random bits, hex) is checked against its stored SHA-256 in constant time. Revoked keys
//!   are refused.
//! - **Owner JWT**: HS256 only (any other `alg`, including `none`, is refused), signature checked
//!   with the configured secret, `exp` required and checked (no leeway beyond `LEEWAY`), `nbf`
//!   honoured, `iss`/`aud` checked when configured; `sub` is the owner id and must exist.

use alloy::primitives::Address;
use axum::{
    extract::{FromRequestParts, Request, State},
    http::{header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use pactum_core::{Clock, SystemClock};

use crate::{AppState, problem::Problem};

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY: u64 = 30;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An agent, authenticated by one of its API keys.
    Agent {
        /// Agent id.
        agent_id: String,
        /// Its owner.
        owner_id: String,
        /// Its wallet (buyer or seller address of its agreements).
        wallet: Address,
        /// The key used.
        key_id: String,
    },
    /// An owner, authenticated by a JWT.
    Owner {
        /// Owner id (the JWT subject).
        owner_id: String,
    },
}

impl Principal {
    /// The wallets whose agreements this principal may see: an agent's own; an owner's agents'.
    pub async fn visible_wallets(&self, pool: &sqlx::PgPool) -> Result<Vec<Address>, Problem> {
        match self {
            Self::Agent { wallet, .. } => Ok(vec![*wallet]),
            Self::Owner { owner_id } => {
                Ok(pactum_db::identity::owner_wallets(pool, owner_id).await?)
            }
        }
    }

    /// The owner this principal belongs to (an owner is its own).
    pub fn owner_id(&self) -> &str {
        match self {
            Self::Agent { owner_id, .. } | Self::Owner { owner_id } => owner_id,
        }
    }

    /// A stable identifier, scoping idempotency keys.
    pub fn scope(&self) -> String {
        match self {
            Self::Agent { agent_id, .. } => format!("agent:{agent_id}"),
            Self::Owner { owner_id } => format!("owner:{owner_id}"),
        }
    }
}

/// JWT verification settings.
#[derive(Clone)]
pub struct JwtConfig {
    /// The HS256 key.
    pub secret: Vec<u8>,
    /// Required `iss`, if any.
    pub issuer: Option<String>,
    /// Required `aud`, if any.
    pub audience: Option<String>,
}

impl std::fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtConfig")
            .field("secret", &"<redacted>")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

/// The claims pactum reads from an owner JWT.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// Owner id.
    pub sub: String,
    /// Expiry (unix seconds).
    pub exp: u64,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

#[derive(Deserialize, Serialize)]
struct JwtHeader {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
}

/// Signs `claims` as an HS256 JWT (what the identity provider does; used by `pactum admin token`
/// and tests).
pub fn sign_jwt(claims: &Claims, secret: &[u8]) -> String {
    let header = JwtHeader {
        alg: "HS256".into(),
        typ: Some("JWT".into()),
    };
    let encode = |v: &[u8]| URL_SAFE_NO_PAD.encode(v);
    let signing_input = format!(
        "{}.{}",
        encode(&serde_json::to_vec(&header).unwrap_or_default()),
        encode(&serde_json::to_vec(claims).unwrap_or_default())
    );
    let signature = hmac_sha256(secret, signing_input.as_bytes());
    format!("{signing_input}.{}", encode(&signature))
}

fn hmac_sha256(secret: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Verifies an owner JWT at unix time `now`; the error text says why it was refused.
pub fn verify_jwt(token: &str, config: &JwtConfig, now: u64) -> Result<Claims, String> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed JWT".into());
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| "malformed JWT encoding".to_owned())
    };
    let header: JwtHeader =
        serde_json::from_slice(&decode(h)?).map_err(|_| "malformed JWT header".to_owned())?;
    if header.alg != "HS256" {
        return Err(format!(
            "JWT algorithm {:?} is not accepted (HS256 only)",
            header.alg
        ));
    }
    let signature = decode(s)?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&config.secret)
        .map_err(|_| "bad JWT key".to_owned())?;
    mac.update(format!("{h}.{c}").as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| "JWT signature does not verify".to_owned())?;
    let claims: Claims = serde_json::from_slice(&decode(c)?)
        .map_err(|_| "JWT claims missing sub or exp".to_owned())?;
    let t = now;
    if claims.exp.saturating_add(LEEWAY) <= t {
        return Err("JWT expired".into());
    }
    if claims.nbf.is_some_and(|nbf| nbf > t.saturating_add(LEEWAY)) {
        return Err("JWT not yet valid".into());
    }
    if let Some(iss) = &config.issuer
        && claims.iss.as_ref() != Some(iss)
    {
        return Err("JWT issuer not accepted".into());
    }
    if let Some(aud) = &config.audience
        && claims.aud.as_ref() != Some(aud)
    {
        return Err("JWT audience not accepted".into());
    }
    Ok(claims)
}

pub use pactum_db::{random_bytes, random_id};

/// A new API key: `(key id, full key to hand out once, SHA-256 of the secret to store)`.
pub fn generate_api_key() -> (String, String, [u8; 32]) {
    let id = random_id(16);
    let secret = alloy::hex::encode(random_bytes());
    let hash = Sha256::digest(secret.as_bytes()).into();
    (id.clone(), format!("pk_{id}_{secret}"), hash)
}

/// Splits `pk_<id>_<secret>`.
pub fn parse_api_key(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("pk_")?;
    let (id, secret) = rest.split_once('_')?;
    let valid_id = id.len() == 16
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b));
    let valid_secret = secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit());
    (valid_id && valid_secret).then_some((id, secret))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn resolve(state: &AppState, token: &str) -> Result<Principal, Problem> {
    if token.starts_with("pk_") {
        let (id, secret) =
            parse_api_key(token).ok_or_else(|| Problem::unauthenticated("malformed API key"))?;
        let key = pactum_db::identity::api_key(state.db.pool(), id)
            .await?
            .ok_or_else(|| Problem::unauthenticated("unknown API key"))?;
        let hash: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        if !constant_time_eq(&hash, &key.secret_hash) {
            return Err(Problem::unauthenticated("unknown API key"));
        }
        if key.revoked {
            return Err(Problem::unauthenticated("API key revoked"));
        }
        return Ok(Principal::Agent {
            agent_id: key.agent.id,
            owner_id: key.agent.owner_id,
            wallet: key.agent.wallet,
            key_id: key.id,
        });
    }
    let jwt = state
        .jwt
        .as_ref()
        .ok_or_else(|| Problem::unauthenticated("owner JWTs are not configured on this server"))?;
    let claims =
        verify_jwt(token, jwt, SystemClock.now_secs()).map_err(Problem::unauthenticated)?;
    if !pactum_db::identity::owner_exists(state.db.pool(), &claims.sub).await? {
        return Err(Problem::unauthenticated("unknown owner"));
    }
    Ok(Principal::Owner {
        owner_id: claims.sub,
    })
}

/// Middleware: resolves `Authorization: Bearer` into a [`Principal`] request extension. A request
/// without the header passes on anonymous (routes that need a principal refuse it); a header that
/// does not authenticate is refused here with 401.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return next.run(request).await;
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Problem::unauthenticated("Authorization must be `Bearer <api_key or jwt>`")
            .into_response();
    };
    match resolve(&state, token).await {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(problem) => problem.into_response(),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| Problem::unauthenticated("send Authorization: Bearer <api_key or jwt>"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn config() -> JwtConfig {
        JwtConfig {
            secret: b"a local secret of enough length".to_vec(),
            issuer: None,
            audience: None,
        }
    }

    fn claims() -> Claims {
        Claims {
            sub: "own_1".into(),
            exp: NOW + 600,
            iat: Some(NOW),
            nbf: None,
            iss: None,
            aud: None,
        }
    }

    fn token(header: &str, claims: &Claims, secret: &[u8]) -> String {
        let h = URL_SAFE_NO_PAD.encode(header);
        let c = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
        let s = URL_SAFE_NO_PAD.encode(hmac_sha256(secret, format!("{h}.{c}").as_bytes()));
        format!("{h}.{c}.{s}")
    }

    #[test]
    fn a_signed_token_verifies_and_round_trips() {
        let jwt = sign_jwt(&claims(), &config().secret);
        assert_eq!(verify_jwt(&jwt, &config(), NOW).unwrap(), claims());
    }

    #[test]
    fn expiry_and_not_before_allow_the_leeway_and_no_more() {
        let jwt = sign_jwt(&claims(), &config().secret);
        let exp = claims().exp;
        assert!(verify_jwt(&jwt, &config(), exp + LEEWAY - 1).is_ok());
        assert_eq!(
            verify_jwt(&jwt, &config(), exp + LEEWAY).unwrap_err(),
            "JWT expired"
        );
        let later = Claims {
            nbf: Some(NOW + 100),
            ..claims()
        };
        let jwt = sign_jwt(&later, &config().secret);
        assert!(verify_jwt(&jwt, &config(), NOW + 100 - LEEWAY).is_ok());
        assert_eq!(
            verify_jwt(&jwt, &config(), NOW + 99 - LEEWAY).unwrap_err(),
            "JWT not yet valid"
        );
    }

    #[test]
    fn another_key_or_a_changed_claim_does_not_verify() {
        let jwt = sign_jwt(&claims(), b"another secret");
        assert_eq!(
            verify_jwt(&jwt, &config(), NOW).unwrap_err(),
            "JWT signature does not verify"
        );
        let jwt = sign_jwt(&claims(), &config().secret);
        let (head, rest) = jwt.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let forged = Claims {
            sub: "own_2".into(),
            ..claims()
        };
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert!(verify_jwt(&format!("{head}.{body}.{signature}"), &config(), NOW).is_err());
    }

    #[test]
    fn only_hs256_is_accepted() {
        for alg in ["none", "RS256", "HS512", "hs256"] {
            let jwt = token(
                &format!(r#"{{"alg":"{alg}"}}"#),
                &claims(),
                &config().secret,
            );
            let err = verify_jwt(&jwt, &config(), NOW).unwrap_err();
            assert!(err.contains("is not accepted"), "{alg}: {err}");
        }
    }

    #[test]
    fn malformed_tokens_say_so() {
        for raw in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
            assert!(
                verify_jwt(raw, &config(), NOW)
                    .unwrap_err()
                    .starts_with("malformed"),
                "{raw}"
            );
        }
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        let strict = JwtConfig {
            issuer: Some("https://idp.example".into()),
            audience: Some("pactum".into()),
            ..config()
        };
        let jwt = sign_jwt(&claims(), &strict.secret);
        assert_eq!(
            verify_jwt(&jwt, &strict, NOW).unwrap_err(),
            "JWT issuer not accepted"
        );
        let with_iss = Claims {
            iss: strict.issuer.clone(),
            ..claims()
        };
        let jwt = sign_jwt(&with_iss, &strict.secret);
        assert_eq!(
            verify_jwt(&jwt, &strict, NOW).unwrap_err(),
            "JWT audience not accepted"
        );
        let both = Claims {
            aud: strict.audience.clone(),
            ..with_iss
        };
        let jwt = sign_jwt(&both, &strict.secret);
        assert!(verify_jwt(&jwt, &strict, NOW).is_ok());
    }

    #[test]
    fn api_keys_parse_only_in_their_exact_form() {
        let (id, full, hash) = generate_api_key();
        let (parsed_id, secret) = parse_api_key(&full).unwrap();
        assert_eq!(parsed_id, id);
        assert_eq!(<[u8; 32]>::from(Sha256::digest(secret.as_bytes())), hash);
        let secret64 = "ab".repeat(32);
        assert!(parse_api_key(&format!("pk_abcdefgh23456777_{secret64}")).is_some());
        for bad in [
            format!("sk_abcdefgh23456777_{secret64}"),
            format!("pk_abcdefgh2345677_{secret64}"),
            format!("pk_ABCDEFGH23456777_{secret64}"),
            format!("pk_abcdefgh23456781_{secret64}"),
            format!("pk_abcdefgh23456777_{}", &secret64[1..]),
            format!("pk_abcdefgh23456777_{}g", &secret64[1..]),
            "pk_abcdefgh23456777".to_owned(),
        ] {
            assert_eq!(parse_api_key(&bad), None, "{bad}");
        }
    }
}
