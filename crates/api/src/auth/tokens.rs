//! Owner tokens (JWTs), verified with the `jsonwebtoken` library; the clock is passed in.
//!
//! Two modes, never both (the configuration refuses it):
//! - **Identity provider** ([`ProviderTokens`]): RS256 or ES256 only, the key found by the
//!   header's `kid` in the provider's JWKS ([`super::jwks`]) and of the family the algorithm
//!   needs (an RSA key for RS256, a P-256 key for ES256, never a symmetric one). `iss`, `aud`,
//!   `sub`, `exp` and `iat` are required; the token may live at most the configured lifetime
//!   (`exp - iat`), may not be issued in the future, and its `email` counts only when
//!   `email_verified` is true (required by default). Embedded keys (`jwk`, `jku`, `x5u`, `x5c`
//!   in the header) are never used. The owner is `own_` + a hash of `(iss, sub)`, provisioned on
//!   first sight.
//! - **Local stack** ([`JwtConfig`]): HS256 with a shared secret, `sub` is the owner id (made by
//!   `pactum admin`). Any other `alg`, including `none`, is refused.
//!
//! Time claims are checked against the caller's `now` with [`LEEWAY`] seconds of skew.

use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind, jwk::Jwk};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const LEEWAY: u64 = 30;

/// Local-stack owner tokens: HS256 with a shared secret.
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

/// The claims of a local-stack owner token.
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

/// Signs `claims` as an HS256 JWT (the local stack's identity provider: `pactum admin token`
/// and tests).
pub fn sign_jwt(claims: &Claims, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    // HS256 signing of a serialisable struct cannot fail.
    .unwrap_or_default()
}

/// The header fields read before verification, for precise refusals.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
}

/// The `alg` a token claims, or why it cannot even be read.
fn claimed_alg(token: &str) -> Result<String, String> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let mut parts = token.split('.');
    let (Some(h), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed JWT".into());
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|_| "malformed JWT encoding".to_owned())?;
    let header: RawHeader =
        serde_json::from_slice(&bytes).map_err(|_| "malformed JWT header".to_owned())?;
    Ok(header.alg)
}

/// Why the library refused a token, in words.
fn refusal(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::InvalidSignature => "JWT signature does not verify".into(),
        ErrorKind::InvalidIssuer => "JWT issuer not accepted".into(),
        ErrorKind::InvalidAudience => "JWT audience not accepted".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("JWT has no {claim} claim"),
        ErrorKind::InvalidClaimFormat(claim) => format!("JWT claim {claim} is malformed"),
        ErrorKind::InvalidAlgorithm => "JWT algorithm does not match its key".into(),
        ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
            "malformed JWT".into()
        }
        ErrorKind::Json(_) => "JWT claims are malformed or incomplete".into(),
        other => format!("JWT refused ({other:?})"),
    }
}

/// `exp` and `nbf` at `now`, with [`LEEWAY`].
fn check_window(exp: u64, nbf: Option<u64>, now: u64) -> Result<(), String> {
    if exp.saturating_add(LEEWAY) <= now {
        return Err("JWT expired".into());
    }
    if nbf.is_some_and(|nbf| nbf > now.saturating_add(LEEWAY)) {
        return Err("JWT not yet valid".into());
    }
    Ok(())
}

/// A validation for `alg` with time left to [`check_window`] (the library's clock is not ours).
fn validation(alg: Algorithm, issuer: Option<&str>, audience: Option<&str>) -> Validation {
    let mut v = Validation::new(alg);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.leeway = 0;
    if let Some(iss) = issuer {
        v.set_issuer(&[iss]);
    }
    match audience {
        Some(aud) => v.set_audience(&[aud]),
        None => v.validate_aud = false,
    }
    v
}

/// Verifies a local-stack owner token at unix time `now`; the error says why it was refused.
pub fn verify_jwt(token: &str, config: &JwtConfig, now: u64) -> Result<Claims, String> {
    let alg = claimed_alg(token)?;
    if alg != "HS256" {
        return Err(format!(
            "JWT algorithm {alg:?} is not accepted (HS256 only)"
        ));
    }
    let mut v = validation(
        Algorithm::HS256,
        config.issuer.as_deref(),
        config.audience.as_deref(),
    );
    let mut required = vec!["exp", "sub"];
    required.extend(config.issuer.as_ref().map(|_| "iss"));
    required.extend(config.audience.as_ref().map(|_| "aud"));
    v.set_required_spec_claims(&required);
    let data = jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(&config.secret), &v)
        .map_err(|e| refusal(e.kind()))?;
    check_window(data.claims.exp, data.claims.nbf, now)?;
    Ok(data.claims)
}

/// How tokens from the identity provider are judged.
#[derive(Debug, Clone)]
pub struct ProviderPolicy {
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud` (one of the token's audiences).
    pub audience: String,
    /// Longest accepted `exp - iat`, in seconds.
    pub max_lifetime_secs: u64,
    /// Refuse tokens whose `email_verified` is not true.
    pub require_verified_email: bool,
}

/// The claims read from a provider's token (`iss`, `aud`, `exp` presence and values are checked
/// by the library and [`verify_provider_token`]).
#[derive(Debug, Clone, Deserialize)]
struct ProviderClaims {
    // Optional here so that a missing one is named by the library's required-claims check.
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default)]
    nbf: Option<u64>,
    #[serde(default)]
    iat: Option<u64>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
    #[serde(default)]
    name: Option<String>,
}

/// An owner as the identity provider vouches for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderOwner {
    /// pactum's id for them: [`owner_id_of`] `(issuer, subject)`.
    pub owner_id: String,
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// `email`, only when the provider says it is verified.
    pub email: Option<String>,
    /// `name`, if given.
    pub name: Option<String>,
}

/// pactum's owner id for subject `sub` of issuer `iss`: `own_` and the first 120 bits of
/// SHA-256(`iss` ‖ 0x00 ‖ `sub`), base-32 (stable, and two issuers' subjects never collide).
pub fn owner_id_of(issuer: &str, subject: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(issuer.as_bytes());
    hash.update([0u8]);
    hash.update(subject.as_bytes());
    let digest = hash.finalize();
    format!("own_{}", base32(&digest[..15]))
}

/// RFC 4648 base-32, lower case, no padding (`bytes.len()` a multiple of 5).
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(bytes.len() * 8 / 5);
    for chunk in bytes.chunks(5) {
        let mut buf = [0u8; 8];
        buf[3..3 + chunk.len()].copy_from_slice(chunk);
        let n = u64::from_be_bytes(buf);
        for i in (0..8).rev() {
            out.push(char::from(ALPHABET[((n >> (i * 5)) & 31) as usize]));
        }
    }
    out
}

/// The algorithm a provider token claims, if it is one pactum accepts from providers.
pub fn provider_alg(token: &str) -> Result<Algorithm, String> {
    match claimed_alg(token)?.as_str() {
        "RS256" => Ok(Algorithm::RS256),
        "ES256" => Ok(Algorithm::ES256),
        other => Err(format!(
            "JWT algorithm {other:?} is not accepted (RS256 or ES256)"
        )),
    }
}

/// The `kid` of a token's header (required with a provider).
pub fn key_id(token: &str) -> Result<String, String> {
    jsonwebtoken::decode_header(token)
        .map_err(|e| refusal(e.kind()))?
        .kid
        .ok_or_else(|| "JWT header has no kid".into())
}

/// Whether `jwk` may verify `alg`: the family the algorithm needs (RSA for RS256, P-256 for
/// ES256), not marked for encryption, and if it names an algorithm, that one.
fn key_fits(jwk: &Jwk, alg: Algorithm) -> Result<(), String> {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, KeyAlgorithm, PublicKeyUse};
    let family_fits = match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), Algorithm::RS256) => true,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        _ => false,
    };
    if !family_fits {
        return Err(format!("JWT key is not a key for {alg:?}"));
    }
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Err("JWT key is an encryption key".into());
    }
    let named = jwk.common.key_algorithm.map(|a| match a {
        KeyAlgorithm::RS256 => Some(Algorithm::RS256),
        KeyAlgorithm::ES256 => Some(Algorithm::ES256),
        _ => None,
    });
    if let Some(named) = named
        && named != Some(alg)
    {
        return Err(format!("JWT key is not a key for {alg:?}"));
    }
    Ok(())
}

/// Verifies a provider's token with its key `jwk` (found by the token's `kid`) at unix time
/// `now`.
pub fn verify_provider_token(
    token: &str,
    jwk: &Jwk,
    policy: &ProviderPolicy,
    now: u64,
) -> Result<ProviderOwner, String> {
    let alg = provider_alg(token)?;
    key_fits(jwk, alg)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| refusal(e.kind()))?;
    let mut v = validation(alg, Some(&policy.issuer), Some(&policy.audience));
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<ProviderClaims>(token, &key, &v)
        .map_err(|e| refusal(e.kind()))?
        .claims;
    let (Some(sub), Some(iss), Some(exp)) = (claims.sub, claims.iss, claims.exp) else {
        return Err("JWT claims are incomplete".into());
    };
    check_window(exp, claims.nbf, now)?;
    let iat = claims.iat.ok_or("JWT has no iat claim")?;
    if iat > now.saturating_add(LEEWAY) {
        return Err("JWT issued in the future".into());
    }
    let lifetime = exp.saturating_sub(iat);
    if lifetime > policy.max_lifetime_secs {
        return Err(format!(
            "JWT lifetime {lifetime} s is above the accepted {} s",
            policy.max_lifetime_secs
        ));
    }
    let verified = claims.email_verified == Some(true);
    if policy.require_verified_email && !verified {
        return Err("JWT email is not verified by the identity provider".into());
    }
    if sub.is_empty() {
        return Err("JWT has an empty sub".into());
    }
    Ok(ProviderOwner {
        owner_id: owner_id_of(&iss, &sub),
        issuer: iss,
        subject: sub,
        email: claims.email.filter(|_| verified),
        name: claims.name,
    })
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

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
        use hmac::Mac;
        let h = URL_SAFE_NO_PAD.encode(header);
        let c = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(format!("{h}.{c}").as_bytes());
        let s = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
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
        // One required claim missing at a time (the library reports the first it finds, in no
        // fixed order).
        let no_iss = Claims {
            aud: strict.audience.clone(),
            ..claims()
        };
        let jwt = sign_jwt(&no_iss, &strict.secret);
        assert_eq!(
            verify_jwt(&jwt, &strict, NOW).unwrap_err(),
            "JWT has no iss claim"
        );
        let elsewhere = Claims {
            iss: Some("https://elsewhere.example".into()),
            aud: strict.audience.clone(),
            ..claims()
        };
        let jwt = sign_jwt(&elsewhere, &strict.secret);
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
            "JWT has no aud claim"
        );
        let both = Claims {
            aud: strict.audience.clone(),
            ..with_iss
        };
        let jwt = sign_jwt(&both, &strict.secret);
        assert!(verify_jwt(&jwt, &strict, NOW).is_ok());
    }

    fn policy() -> ProviderPolicy {
        ProviderPolicy {
            issuer: "https://idp.example/".into(),
            audience: "pactum".into(),
            max_lifetime_secs: 3_600,
            require_verified_email: true,
        }
    }

    /// A P-256 key, its JWK (kid `k1`) and a token signer.
    fn ec() -> (Jwk, impl Fn(&serde_json::Value) -> String) {
        use p256::{elliptic_curve::sec1::ToEncodedPoint, pkcs8::EncodePrivateKey};
        let secret = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
        let point = secret.public_key().to_encoded_point(false);
        let jwk: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "EC", "crv": "P-256", "kid": "k1",
            "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
        }))
        .unwrap();
        let key = jsonwebtoken::EncodingKey::from_ec_der(secret.to_pkcs8_der().unwrap().as_bytes());
        (jwk, move |claims: &serde_json::Value| {
            let mut header = jsonwebtoken::Header::new(Algorithm::ES256);
            header.kid = Some("k1".into());
            jsonwebtoken::encode(&header, claims, &key).unwrap()
        })
    }

    fn provider_claims() -> serde_json::Value {
        serde_json::json!({
            "iss": "https://idp.example/", "aud": "pactum", "sub": "user-7",
            "iat": NOW, "exp": NOW + 600, "email": "u7@example.test", "email_verified": true,
        })
    }

    #[test]
    fn a_provider_token_names_its_owner_by_issuer_and_subject() {
        let (jwk, sign) = ec();
        let owner = verify_provider_token(&sign(&provider_claims()), &jwk, &policy(), NOW).unwrap();
        assert_eq!(
            owner.owner_id,
            owner_id_of("https://idp.example/", "user-7")
        );
        assert_eq!(owner.email.as_deref(), Some("u7@example.test"));
        // Unverified emails are not taken when the policy allows such tokens at all.
        let lax = ProviderPolicy {
            require_verified_email: false,
            ..policy()
        };
        let mut unverified = provider_claims();
        unverified["email_verified"] = false.into();
        let owner = verify_provider_token(&sign(&unverified), &jwk, &lax, NOW).unwrap();
        assert_eq!(owner.email, None);
        assert_eq!(
            verify_provider_token(&sign(&unverified), &jwk, &policy(), NOW).unwrap_err(),
            "JWT email is not verified by the identity provider"
        );
    }

    #[test]
    fn provider_tokens_keep_to_their_lifetime_and_clock() {
        let (jwk, sign) = ec();
        let token = sign(&provider_claims());
        assert!(verify_provider_token(&token, &jwk, &policy(), NOW + 600 + LEEWAY - 1).is_ok());
        assert_eq!(
            verify_provider_token(&token, &jwk, &policy(), NOW + 600 + LEEWAY).unwrap_err(),
            "JWT expired"
        );
        assert_eq!(
            verify_provider_token(&token, &jwk, &policy(), NOW - LEEWAY - 1).unwrap_err(),
            "JWT issued in the future"
        );
        let mut long = provider_claims();
        long["exp"] = (NOW + 3_601).into();
        assert_eq!(
            verify_provider_token(&sign(&long), &jwk, &policy(), NOW).unwrap_err(),
            "JWT lifetime 3601 s is above the accepted 3600 s"
        );
    }

    #[test]
    fn owner_ids_are_stable_and_separate_issuers() {
        let a = owner_id_of("https://a.example/", "7");
        assert_eq!(a, owner_id_of("https://a.example/", "7"));
        assert_eq!(a.len(), 4 + 24);
        assert!(
            a[4..]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
        );
        assert_ne!(a, owner_id_of("https://b.example/", "7"));
        // The separator keeps (iss, sub) pairs apart that concatenate alike.
        assert_ne!(owner_id_of("ab", "c"), owner_id_of("a", "bc"));
    }

    #[test]
    fn base32_matches_rfc_4648() {
        assert_eq!(base32(b"fooba"), "mzxw6ytb");
        assert_eq!(base32(b"\0\0\0\0\0"), "aaaaaaaa");
    }
}
