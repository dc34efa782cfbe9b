//! The HTTP API over a real index (Anvil + PostgreSQL), through real HTTP on loopback: every
//! status code, both credential types, and idempotency under concurrent duplicates.

use std::time::{SystemTime, UNIX_EPOCH};

use alloy::{
    primitives::{B256, keccak256},
    transports::http::reqwest::Method,
};
use pactum_api::{
    AppState,
    auth::{Claims, JwtConfig, generate_api_key, sign_jwt},
};
use pactum_client::{
    Client, IDEMPOTENCY_REPLAYED, RawAnswer,
    types::{ActivationStatus, EscrowPhase, RevokeRequest},
};
use pactum_db::{identity as principals, index as store, testing::TestDatabase};
use tokio::{net::TcpListener, sync::watch};

use crate::{
    chain::Chain,
    indexing::{indexer, lifecycle::populate},
};

const SECRET: &[u8] = b"test-secret-of-at-least-32-bytes-long!!";

struct Fixture {
    chain: Chain,
    db: TestDatabase,
    /// The API without credentials; [`Client::authenticated`] adds them.
    api: Client,
    _stop: watch::Sender<bool>,
    buyer_key: String,
    seller_key: String,
    stranger_key: String,
    buyer_owner_jwt: String,
    other_owner_jwt: String,
    direct_id: B256,
}

impl Fixture {
    /// The API as `token`'s holder.
    fn as_(&self, token: &str) -> Client {
        self.api.authenticated(token)
    }
}

/// `GET path` as received, with `token` if any.
async fn get_raw(api: &Client, path: &str) -> eyre::Result<RawAnswer> {
    Ok(api.send_raw(Method::GET, path, &[], None).await?)
}

fn jwt(owner: &str, exp_offset: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let exp = u64::try_from(i64::try_from(now).unwrap_or(0) + exp_offset).unwrap_or(0);
    sign_jwt(
        &Claims {
            sub: owner.into(),
            exp,
            iat: Some(now),
            nbf: None,
            iss: None,
            aud: None,
        },
        SECRET,
    )
}

async fn key_for(db: &pactum_db::Db, agent: &str) -> eyre::Result<String> {
    let (id, key, hash) = generate_api_key();
    let mut conn = db.pool().acquire().await?;
    principals::create_api_key(&mut conn, &id, agent, &hash, "test").await?;
    Ok(key)
}

async fn fixture() -> eyre::Result<Fixture> {
    let chain = Chain::start().await?;
    populate(&chain, "api").await?;
    let test_db = TestDatabase::create().await?;
    let db = test_db.db().clone();
    indexer(&chain, &db, |c| c.confirmations = 2)
        .await?
        .catch_up()
        .await?;

    let mut conn = db.pool().acquire().await?;
    principals::create_owner(&mut conn, "acme", "Acme", "ops@acme.test").await?;
    principals::create_owner(&mut conn, "globex", "Globex", "ops@globex.test").await?;
    chain
        .register_agent(&db, "acme", "acme-buyer", &chain.buyer)
        .await?;
    chain
        .register_agent(&db, "globex", "globex-seller", &chain.seller)
        .await?;
    chain
        .register_agent(
            &db,
            "globex",
            "globex-stranger",
            &alloy::signers::local::PrivateKeySigner::random(),
        )
        .await?;
    drop(conn);
    let (buyer_key, seller_key, stranger_key) = (
        key_for(&db, "acme-buyer").await?,
        key_for(&db, "globex-seller").await?,
        key_for(&db, "globex-stranger").await?,
    );

    let state = AppState::new(
        db.clone(),
        chain.deployment.chain_id,
        Some(JwtConfig {
            secret: SECRET.to_vec(),
            issuer: None,
            audience: None,
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, rx) = watch::channel(false);
    tokio::spawn(pactum_api::serve(listener, state, rx));

    let mut conn = db.pool().acquire().await?;
    let direct_id = store::all_agreements(&mut conn, chain.deployment.chain_id)
        .await?
        .into_iter()
        .find(|a| a.salt == keccak256("api-direct"))
        .map(|a| a.agreement_id)
        .ok_or_else(|| eyre::eyre!("direct agreement not indexed"))?;
    drop(conn);
    // globex owns the seller agent and the stranger; acme the buyer.
    Ok(Fixture {
        chain,
        db: test_db,
        api: Client::new(&base)?,
        _stop: stop,
        buyer_key,
        seller_key,
        stranger_key,
        buyer_owner_jwt: jwt("acme", 600),
        other_owner_jwt: jwt("nobody-owns-me", 600),
        direct_id,
    })
}

#[tokio::test]
async fn escrow_status_serves_parties_and_their_owners_from_the_index() -> eyre::Result<()> {
    let f = fixture().await?;
    let id = f.direct_id;

    let body = f.as_(&f.buyer_key).escrow_status(id).await?;
    assert_eq!(body.status, EscrowPhase::Settled);
    assert_eq!(body.agreement_id, id.to_string());
    assert_eq!(body.buyer, f.chain.buyer.address().to_string());
    assert_eq!(body.settled_amount, "40000000");
    assert_eq!(body.seller_paid_amount, "40000000");
    assert_eq!(body.buyer_paid_amount, "60000000");
    assert_eq!(body.held_in_escrow, "0");
    assert_eq!(body.activation_status, ActivationStatus::Confirmed);
    let activation = body.transitions.activation.as_ref();
    assert!(activation.is_some_and(|t| t.confirmations > 2), "{body:?}");
    assert!(body.transitions.settlement.is_some(), "{body:?}");
    assert_eq!(body.escrow_address, f.chain.deployment.escrow.to_string());

    // The seller (another owner's agent) sees it too; so does the buyer's owner, and globex,
    // which owns the seller agent.
    for token in [&f.seller_key, &f.buyer_owner_jwt, &jwt("globex", 600)] {
        assert_eq!(f.as_(token).escrow_status(id).await?, body);
    }

    // Someone else's agreement: the same 404 as an unknown one.
    let hidden = f.as_(&f.stranger_key).escrow_status(id).await.unwrap_err();
    assert_eq!(
        (hidden.status(), hidden.code()),
        (Some(404), Some("agreement_not_found"))
    );
    f.db.drop_database().await?;
    Ok(())
}

#[tokio::test]
async fn every_error_is_a_problem_with_a_stable_code() -> eyre::Result<()> {
    let f = fixture().await?;
    let good = format!("/usage-agreements/{}/escrow-status", f.direct_id);
    let cases: Vec<(String, Option<String>, u16, &str)> = vec![
        (
            "/usage-agreements/0x1234/escrow-status".into(),
            Some(f.buyer_key.clone()),
            400,
            "invalid_agreement_id",
        ),
        (
            "/usage-agreements/agreement_123/escrow-status".into(),
            Some(f.buyer_key.clone()),
            400,
            "invalid_agreement_id",
        ),
        (
            format!("/usage-agreements/{}/escrow-status", B256::repeat_byte(7)),
            Some(f.buyer_key.clone()),
            404,
            "agreement_not_found",
        ),
        (good.clone(), None, 401, "unauthenticated"),
        (
            good.clone(),
            Some("pk_aaaaaaaaaaaaaaaa_".to_owned() + &"0".repeat(64)),
            401,
            "unauthenticated",
        ),
        (
            good.clone(),
            Some(
                f.buyer_key
                    .replace(&f.buyer_key[f.buyer_key.len() - 4..], "abcd"),
            ),
            401,
            "unauthenticated",
        ),
        (
            good.clone(),
            Some("pk_garbage".into()),
            401,
            "unauthenticated",
        ),
        (
            good.clone(),
            Some(jwt("acme", -120)),
            401,
            "unauthenticated",
        ),
        (
            good.clone(),
            Some(f.other_owner_jwt.clone()),
            401,
            "unauthenticated",
        ),
        (
            good.clone(),
            Some(sign_jwt(
                &Claims {
                    sub: "acme".into(),
                    exp: u64::MAX / 2,
                    iat: None,
                    nbf: None,
                    iss: None,
                    aud: None,
                },
                b"another-secret-another-secret-123",
            )),
            401,
            "unauthenticated",
        ),
        ("/no/such/route".into(), None, 404, "route_not_found"),
    ];
    for (path, token, expected, code) in cases {
        let api = token.as_deref().map_or_else(|| f.api.clone(), |t| f.as_(t));
        let answer = get_raw(&api, &path).await?;
        let problem = answer.problem()?;
        assert_eq!(
            (answer.status.as_u16(), problem.code.as_str()),
            (expected, code),
            "{path} with {token:?}: {problem}"
        );
        assert_eq!(
            answer.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(problem.status, expected);
        assert_eq!(problem.kind, format!("urn:pactum:problem:{code}"));
        assert!(!problem.title.is_empty() && !problem.detail.is_empty());
    }

    // alg "none" is refused whatever the claims.
    let none = format!(
        "{}.{}.",
        base64_url(br#"{"alg":"none","typ":"JWT"}"#),
        base64_url(format!(r#"{{"sub":"acme","exp":{}}}"#, u64::MAX / 2).as_bytes())
    );
    let refused = f.as_(&none).escrow_status(f.direct_id).await.unwrap_err();
    assert_eq!(refused.status(), Some(401), "{refused}");
    // A malformed Authorization header.
    let answer = f
        .api
        .send_raw(Method::GET, &good, &[("authorization", "Basic abc")], None)
        .await?;
    assert_eq!(answer.status.as_u16(), 401);
    f.db.drop_database().await?;
    Ok(())
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn revocation_is_idempotent_even_under_concurrent_duplicates() -> eyre::Result<()> {
    let f = fixture().await?;
    let (key_id, _, _) = pactum_api::auth::parse_api_key(&f.stranger_key)
        .map(|(id, s)| (id.to_owned(), s.to_owned(), ()))
        .ok_or_else(|| eyre::eyre!("key format"))?;
    let path = format!("/agents/globex-stranger/api-keys/{key_id}/revoke");
    let globex = f.as_(&jwt("globex", 600));
    let body = RevokeRequest {
        reason: "rotated".into(),
    };
    let revoke = |api: &Client, key: &str, body: &RevokeRequest| {
        let (api, key, body) = (api.clone(), key.to_owned(), body.clone());
        let key_id = key_id.clone();
        async move {
            api.revoke_api_key("globex-stranger", &key_id, &body, &key)
                .await
        }
    };
    // Requests the typed method cannot send: no key, a bad key, a body of another shape.
    let raw = |headers: &'static [(&'static str, &'static str)], body: &'static str| {
        globex.send_raw(Method::POST, &path, headers, Some(body.as_bytes().to_vec()))
    };
    let refusal = |err: pactum_client::Error| (err.status(), err.code().map(str::to_owned));

    // Refusals that change nothing.
    let answer = raw(&[], r#"{"reason":"rotated"}"#).await?;
    assert_eq!(
        (answer.status.as_u16(), answer.problem()?.code),
        (400, "idempotency_key_required".to_owned())
    );
    let agent = revoke(&f.as_(&f.stranger_key), "k-agent", &body).await;
    assert_eq!(
        refusal(agent.unwrap_err()),
        (Some(403), Some("forbidden".into())),
        "agents cannot revoke"
    );
    let other = revoke(&f.as_(&f.buyer_owner_jwt), "k-acme", &body).await;
    assert_eq!(
        refusal(other.unwrap_err()),
        (Some(404), Some("agent_not_found".into())),
        "another owner's agent is not confirmed to exist"
    );
    let answer = raw(&[("idempotency-key", "k-bad-body")], r#"{"why":1}"#).await?;
    assert_eq!(
        (answer.status.as_u16(), answer.problem()?.code),
        (400, "invalid_body".to_owned())
    );
    let bad_key = revoke(&globex, "bad key with spaces", &body).await;
    assert_eq!(
        refusal(bad_key.unwrap_err()),
        (Some(400), Some("invalid_idempotency_key".into()))
    );
    assert_eq!(
        principals::revocation_count(f.db.db().pool(), &key_id).await?,
        0
    );

    // Twenty concurrent duplicates: one effect, twenty identical answers.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        tasks.push(revoke(&globex, "rotate-1", &body));
    }
    let answers = futures_join_all(tasks).await;
    let mut first = None;
    let mut replays = 0;
    for answer in answers {
        let answer = answer?;
        assert_eq!(answer.status, 200, "{answer:?}");
        if answer.replayed {
            replays += 1;
        }
        match &first {
            None => first = Some(answer.body),
            Some(f0) => assert_eq!(&answer.body, f0, "every duplicate gets the same response"),
        }
    }
    assert_eq!(replays, 19, "one ran, nineteen replayed");
    assert_eq!(
        principals::revocation_count(f.db.db().pool(), &key_id).await?,
        1,
        "one effect"
    );
    let first = first.ok_or_else(|| eyre::eyre!("no answer"))?;
    assert!(first.revocation_id.starts_with("rev_"), "{first:?}");
    assert_eq!(first.reason, "rotated");

    // Same key, other body: refused. New key: the key is already revoked.
    let other_body = RevokeRequest {
        reason: "other".into(),
    };
    let reused = revoke(&globex, "rotate-1", &other_body).await;
    assert_eq!(
        refusal(reused.unwrap_err()),
        (Some(422), Some("idempotency_key_reused".into()))
    );
    let again = revoke(&globex, "rotate-2", &body).await;
    assert_eq!(
        refusal(again.unwrap_err()),
        (Some(409), Some("api_key_already_revoked".into()))
    );
    // A conflict describes the moment, not the request: it is not stored, a retry runs again.
    let answer = raw(
        &[("idempotency-key", "rotate-2")],
        r#"{"reason":"rotated"}"#,
    )
    .await?;
    assert_eq!(
        (answer.status.as_u16(), answer.header(IDEMPOTENCY_REPLAYED)),
        (409, None)
    );
    // A later retry with the first key still replays the original answer.
    let replayed = revoke(&globex, "rotate-1", &body).await?;
    assert_eq!((replayed.status, replayed.replayed), (200, true));
    assert_eq!(replayed.body, first);

    // The revoked key no longer authenticates.
    let revoked = f.as_(&f.stranger_key).escrow_status(f.direct_id).await;
    let problem = revoked.unwrap_err();
    assert_eq!(
        (
            problem.status(),
            problem.problem().map(|p| p.detail.as_str())
        ),
        (Some(401), Some("API key revoked"))
    );
    f.db.drop_database().await?;
    Ok(())
}

async fn futures_join_all<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut handles = Vec::new();
    for f in futures {
        handles.push(tokio::spawn(f));
    }
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap_or_else(|e| panic!("task failed: {e}")));
    }
    out
}

#[tokio::test]
async fn operations_endpoints() -> eyre::Result<()> {
    let f = fixture().await?;
    assert_eq!(f.api.health().await?.status, "ok");
    let ready = f.api.ready().await?;
    assert_eq!((ready.status.as_str(), ready.lag_blocks), ("ready", 0));
    f.as_(&f.buyer_key).escrow_status(f.direct_id).await?;
    let text = f.api.metrics().await?;
    for needle in [
        "pactum_indexer_indexed_block ",
        "pactum_indexer_lag_blocks 0",
        "pactum_http_requests_total{method=\"GET\",route=\"/usage-agreements/{agreement_id}/escrow-status\",status=\"200\"} 1",
        "pactum_http_request_duration_seconds_bucket{",
        // The webhook queue is read from the database in every process.
        "pactum_webhook_deliveries_pending 0",
        "pactum_webhook_deliveries_due 0",
        "pactum_webhook_oldest_due_seconds 0.000",
    ] {
        assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    }
    let b = f.api.openapi().await?;
    assert!(
        b["paths"]["/usage-agreements/{agreement_id}/escrow-status"]["get"].is_object(),
        "{b}"
    );
    assert!(b["paths"]["/agents/{agent_id}/api-keys/{key_id}/revoke"]["post"].is_object());
    assert!(b["components"]["schemas"]["EscrowStatus"].is_object());
    assert!(b["components"]["securitySchemes"]["owner_jwt"].is_object());
    f.db.drop_database().await?;
    Ok(())
}

/// What schemathesis found, fixed, over HTTP: every error is a problem with a code (axum's own
/// rejections included), credentials are checked before the Idempotency-Key, a method a path
/// does not have is a 405 naming the allowed ones, and text with a NUL is refused, not a 500.
#[tokio::test]
async fn every_error_is_a_problem_in_a_sensible_order() -> eyre::Result<()> {
    let f = fixture().await?;
    let buyer = f.as_(&f.buyer_key);
    let problem = |a: &RawAnswer| -> eyre::Result<(u16, String)> {
        let content_type = a
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        eyre::ensure!(
            content_type.starts_with("application/problem+json"),
            "{} answered {content_type}: {}",
            a.status,
            String::from_utf8_lossy(&a.body)
        );
        let p: pactum_client::types::Problem = serde_json::from_slice(&a.body)?;
        Ok((p.status, p.code))
    };

    // A query axum cannot read.
    let a = buyer
        .send_raw(
            Method::GET,
            "usage-agreements/agents/acme-buyer/agreements?limit=-1",
            &[],
            None,
        )
        .await?;
    assert_eq!(problem(&a)?.0, 400);
    // A method the path does not have: 405 with Allow, whatever the Idempotency-Key.
    let a = buyer
        .send_raw(
            Method::PUT,
            "usage-agreements",
            &[("idempotency-key", "")],
            None,
        )
        .await?;
    assert_eq!(problem(&a)?, (405, "method_not_allowed".to_owned()));
    assert!(a.headers.get("allow").is_some(), "{:?}", a.headers);
    // No credentials and a malformed key: the credentials are what is missing.
    let a = f
        .api
        .send_raw(
            Method::POST,
            "usage-agreements",
            &[("idempotency-key", "")],
            Some(b"{}".to_vec()),
        )
        .await?;
    assert_eq!(problem(&a)?, (401, "unauthenticated".to_owned()));
    // With credentials, the malformed key is refused.
    let a = buyer
        .send_raw(
            Method::POST,
            "usage-agreements",
            &[("idempotency-key", "")],
            Some(b"{}".to_vec()),
        )
        .await?;
    assert_eq!(problem(&a)?, (400, "invalid_idempotency_key".to_owned()));
    // A NUL in a body or a path: refused as text no column can hold.
    let body = br#"{"seller_agent_id": "\u0000"}"#.to_vec();
    let a = buyer
        .send_raw(Method::POST, "usage-agreements", &[], Some(body))
        .await?;
    assert_eq!(problem(&a)?, (422, "invalid_text".to_owned()));
    let a = buyer
        .send_raw(Method::GET, "usage-agreements/agr_%00", &[], None)
        .await?;
    assert_eq!(problem(&a)?, (422, "invalid_text".to_owned()));
    // An unknown path.
    let a = buyer
        .send_raw(Method::GET, "no-such-thing", &[], None)
        .await?;
    assert_eq!(problem(&a)?, (404, "route_not_found".to_owned()));
    f.db.drop_database().await?;
    Ok(())
}
