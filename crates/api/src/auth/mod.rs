//! Authentication: agent API keys and owner JWTs, both as `Authorization: Bearer <token>`.
//!
//! - **Agent API key** `pk_<id>_<secret>`: `id` (16 base-32 characters) finds the key, `secret`
//!   (256 random bits, hex) is checked against its stored SHA-256 in constant time. Revoked keys
//!   are refused.
//! - **Owner JWT** ([`tokens`]): from the owners' identity provider (RS256/ES256 against its
//!   JWKS, [`jwks`]; the owner provisioned on first sight), or on the local stack HS256 with a
//!   shared secret (`sub` is an owner made by `pactum admin`).

pub mod jwks;
pub mod tokens;

use alloy::primitives::Address;
use axum::{
    extract::{FromRequestParts, Request, State},
    http::{header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

use pactum_core::{Clock, SystemClock};

use crate::{AppState, problem::Problem};

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

pub use pactum_db::{random_bytes, random_id};
pub use tokens::{Claims, JwtConfig, LEEWAY, sign_jwt, verify_jwt};

/// How owner tokens are verified: by the identity provider's keys, or (local stack only) an
/// HS256 secret.
#[derive(Debug, Clone)]
pub enum OwnerTokens {
    /// HS256 with a shared secret; `sub` is the owner id.
    Local(JwtConfig),
    /// RS256/ES256 from an identity provider; owners provisioned on first sight.
    Provider(std::sync::Arc<jwks::IdentityProvider>),
}

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
        if !key.wallet_proven {
            return Err(Problem::unauthenticated(
                "this agent's wallet never proved itself: its owner must register the agent again through POST /agents",
            ));
        }
        return Ok(Principal::Agent {
            agent_id: key.agent.id,
            owner_id: key.agent.owner_id,
            wallet: key.agent.wallet,
            key_id: key.id,
        });
    }
    let tokens = state
        .owner_tokens
        .as_ref()
        .ok_or_else(|| Problem::unauthenticated("owner JWTs are not configured on this server"))?;
    let now = SystemClock.now_secs();
    let owner_id = match tokens {
        OwnerTokens::Local(config) => {
            let claims = verify_jwt(token, config, now).map_err(Problem::unauthenticated)?;
            if !pactum_db::identity::owner_exists(state.db.pool(), &claims.sub).await? {
                return Err(Problem::unauthenticated("unknown owner"));
            }
            claims.sub
        }
        OwnerTokens::Provider(provider) => {
            let owner = provider.verify(token, now).await.map_err(|err| match err {
                jwks::TokenError::Refused(why) => Problem::unauthenticated(why),
                jwks::TokenError::KeysUnavailable(why) => {
                    tracing::warn!(%why, "identity provider keys unavailable");
                    Problem::new(
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "identity_provider_unavailable",
                        "Identity provider unavailable",
                        "the identity provider's keys could not be fetched to check this token; retry later",
                    )
                }
            })?;
            // First sight of a verified subject: its owner record.
            if !pactum_db::identity::owner_exists(state.db.pool(), &owner.owner_id).await? {
                let name = owner
                    .name
                    .clone()
                    .or_else(|| owner.email.clone())
                    .unwrap_or_else(|| owner.subject.clone());
                pactum_db::identity::provision_owner(
                    state.db.pool(),
                    &pactum_db::identity::ProvisionedOwner {
                        id: &owner.owner_id,
                        name: &name,
                        email: owner.email.as_deref().unwrap_or_default(),
                        issuer: &owner.issuer,
                        subject: &owner.subject,
                    },
                )
                .await?;
                tracing::info!(owner_id = %owner.owner_id, issuer = %owner.issuer, "owner provisioned");
            }
            owner.owner_id
        }
    };
    Ok(Principal::Owner { owner_id })
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
