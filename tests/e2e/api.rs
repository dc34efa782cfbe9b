//! The HTTP API over a real index (Anvil + PostgreSQL), through real HTTP on loopback: every
//! status code, both credential types, and idempotency under concurrent duplicates.

use std::time::{SystemTime, UNIX_EPOCH};

use alloy::{
    primitives::{Address, B256, keccak256},
    transports::http::reqwest::{Client, Method, StatusCode},
};
use pactum_api::{
    AppState,
    auth::{Claims, JwtConfig, generate_api_key, sign_jwt},
};
use pactum_db::{api as principals, chain as store, testing::TestDatabase};
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::watch};

use crate::{
    chain::Chain,
    indexing::{indexer, lifecycle::populate},
};

const SECRET: &[u8] = b"test-secret-of-at-least-32-bytes-long!!";

#[derive(Clone)]
struct Api {
    base: String,
    http: Client,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> eyre::Result<(StatusCode, Value, Option<String>, Option<String>)> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await?;
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let replayed = response
            .headers()
            .get("idempotency-replayed")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response.bytes().await?;
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Ok((status, value, content_type, replayed))
    }

    async fn get(&self, path: &str, token: Option<&str>) -> eyre::Result<(StatusCode, Value)> {
        let (s, v, _, _) = self.call(Method::GET, path, token, &[], None).await?;
        Ok((s, v))
    }
}

struct Fixture {
    chain: Chain,
    db: TestDatabase,
    api: Api,
    _stop: watch::Sender<bool>,
    buyer_key: String,
    seller_key: String,
    stranger_key: String,
    buyer_owner_jwt: String,
    other_owner_jwt: String,
    direct_id: B256,
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
    principals::create_agent(
        &mut conn,
        "acme-buyer",
        "acme",
        "buyer bot",
        chain.buyer.address(),
    )
    .await?;
    principals::create_agent(
        &mut conn,
        "globex-seller",
        "globex",
        "seller bot",
        chain.seller.address(),
    )
    .await?;
    principals::create_agent(
        &mut conn,
        "globex-stranger",
        "globex",
        "idle bot",
        Address::repeat_byte(0x77),
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
        api: Api {
            base,
            http: Client::new(),
        },
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
    let path = format!("/usage-agreements/{}/escrow-status", f.direct_id);

    let (status, body) = f.api.get(&path, Some(&f.buyer_key)).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "settled");
    assert_eq!(body["agreement_id"], f.direct_id.to_string());
    assert_eq!(body["buyer"], f.chain.buyer.address().to_string());
    assert_eq!(body["settled_amount"], "40000000");
    assert_eq!(body["seller_paid_amount"], "40000000");
    assert_eq!(body["buyer_paid_amount"], "60000000");
    assert_eq!(body["held_in_escrow"], "0");
    assert_eq!(body["activation_status"], "confirmed");
    assert!(body["transitions"]["activation"]["confirmations"].as_u64() > Some(2));
    assert!(body["transitions"]["settlement"]["tx_hash"].is_string());
    assert_eq!(
        body["escrow_address"],
        f.chain.deployment.escrow.to_string()
    );

    // The seller (another owner's agent) sees it too; so does the buyer's owner.
    assert_eq!(
        f.api.get(&path, Some(&f.seller_key)).await?.0,
        StatusCode::OK
    );
    assert_eq!(
        f.api.get(&path, Some(&f.buyer_owner_jwt)).await?.0,
        StatusCode::OK
    );
    // globex owns the seller agent.
    assert_eq!(
        f.api.get(&path, Some(&jwt("globex", 600))).await?.0,
        StatusCode::OK
    );

    // Someone else's agreement: the same 404 as an unknown one.
    let (status, body) = f.api.get(&path, Some(&f.stranger_key)).await?;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("agreement_not_found"))
    );
    f.db.drop_database().await?;
    Ok(())
}

#[tokio::test]
async fn every_error_is_a_problem_with_a_stable_code() -> eyre::Result<()> {
    let f = fixture().await?;
    let good = format!("/usage-agreements/{}/escrow-status", f.direct_id);
    let cases: Vec<(String, Option<String>, StatusCode, &str)> = vec![
        (
            "/usage-agreements/0x1234/escrow-status".into(),
            Some(f.buyer_key.clone()),
            StatusCode::BAD_REQUEST,
            "invalid_agreement_id",
        ),
        (
            "/usage-agreements/agreement_123/escrow-status".into(),
            Some(f.buyer_key.clone()),
            StatusCode::BAD_REQUEST,
            "invalid_agreement_id",
        ),
        (
            format!("/usage-agreements/{}/escrow-status", B256::repeat_byte(7)),
            Some(f.buyer_key.clone()),
            StatusCode::NOT_FOUND,
            "agreement_not_found",
        ),
        (
            good.clone(),
            None,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            good.clone(),
            Some("pk_aaaaaaaaaaaaaaaa_".to_owned() + &"0".repeat(64)),
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            good.clone(),
            Some(
                f.buyer_key
                    .replace(&f.buyer_key[f.buyer_key.len() - 4..], "abcd"),
            ),
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            good.clone(),
            Some("pk_garbage".into()),
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            good.clone(),
            Some(jwt("acme", -120)),
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            good.clone(),
            Some(f.other_owner_jwt.clone()),
            StatusCode::UNAUTHORIZED,
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
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            "/no/such/route".into(),
            None,
            StatusCode::NOT_FOUND,
            "route_not_found",
        ),
    ];
    for (path, token, expected, code) in cases {
        let (status, body, content_type, _) = f
            .api
            .call(Method::GET, &path, token.as_deref(), &[], None)
            .await?;
        assert_eq!(
            (status, body["code"].as_str()),
            (expected, Some(code)),
            "{path} with {token:?}: {body}"
        );
        assert_eq!(content_type.as_deref(), Some("application/problem+json"));
        assert_eq!(body["status"].as_u64(), Some(u64::from(expected.as_u16())));
        assert!(
            body["title"].is_string() && body["detail"].is_string() && body["type"].is_string()
        );
    }

    // alg "none" is refused whatever the claims.
    let none = format!(
        "{}.{}.",
        base64_url(br#"{"alg":"none","typ":"JWT"}"#),
        base64_url(format!(r#"{{"sub":"acme","exp":{}}}"#, u64::MAX / 2).as_bytes())
    );
    assert_eq!(
        f.api.get(&good, Some(&none)).await?.0,
        StatusCode::UNAUTHORIZED
    );
    // A malformed Authorization header.
    let (status, _, _, _) = f
        .api
        .call(
            Method::GET,
            &good,
            None,
            &[("authorization", "Basic abc")],
            None,
        )
        .await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
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
    let globex = jwt("globex", 600);
    let body = json!({"reason": "rotated"});
    let post = |token: String, key: Option<&'static str>, body: Value| {
        let api = f.api.clone();
        let path = path.clone();
        async move {
            let headers: Vec<(&str, &str)> = key
                .map(|k| vec![("idempotency-key", k)])
                .unwrap_or_default();
            api.call(Method::POST, &path, Some(&token), &headers, Some(body))
                .await
        }
    };

    // Refusals that change nothing.
    let (s, b, _, _) = post(globex.clone(), None, body.clone()).await?;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("idempotency_key_required"))
    );
    let (s, b, _, _) = post(f.stranger_key.clone(), Some("k-agent"), body.clone()).await?;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "agents cannot revoke"
    );
    let (s, b, _, _) = post(f.buyer_owner_jwt.clone(), Some("k-acme"), body.clone()).await?;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "another owner's agent"
    );
    let (s, b, _, _) = post(globex.clone(), Some("k-bad-body"), json!({"why": 1})).await?;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_body"))
    );
    let (s, b, _, _) = f
        .api
        .call(
            Method::POST,
            &path,
            Some(&globex),
            &[("idempotency-key", "bad key with spaces")],
            Some(body.clone()),
        )
        .await?;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_idempotency_key"))
    );
    assert_eq!(
        principals::revocation_count(f.db.db().pool(), &key_id).await?,
        0
    );

    // Twenty concurrent duplicates: one effect, twenty identical answers.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        tasks.push(post(globex.clone(), Some("rotate-1"), body.clone()));
    }
    let answers = futures_join_all(tasks).await;
    let mut first: Option<Value> = None;
    let mut replays = 0;
    for answer in answers {
        let (s, b, _, replayed) = answer?;
        assert_eq!(s, StatusCode::OK, "{b}");
        if replayed.as_deref() == Some("true") {
            replays += 1;
        }
        match &first {
            None => first = Some(b),
            Some(f0) => assert_eq!(&b, f0, "every duplicate gets the same response"),
        }
    }
    assert_eq!(replays, 19, "one ran, nineteen replayed");
    assert_eq!(
        principals::revocation_count(f.db.db().pool(), &key_id).await?,
        1,
        "one effect"
    );
    let first = first.unwrap_or_default();
    assert!(
        first["revocation_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("rev_"))
    );

    // Same key, other body: refused. New key: the key is already revoked.
    let (s, b, _, _) = post(globex.clone(), Some("rotate-1"), json!({"reason": "other"})).await?;
    assert_eq!(
        (s, b["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("idempotency_key_reused")
        )
    );
    let (s, b, _, _) = post(globex.clone(), Some("rotate-2"), body.clone()).await?;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::CONFLICT, Some("api_key_already_revoked"))
    );
    // A conflict describes the moment, not the request: it is not stored, a retry runs again.
    let (s, _, _, replayed) = post(globex.clone(), Some("rotate-2"), body.clone()).await?;
    assert_eq!((s, replayed), (StatusCode::CONFLICT, None));
    // A later retry with the first key still replays the original answer.
    let (s, b, _, replayed) = post(globex.clone(), Some("rotate-1"), body.clone()).await?;
    assert_eq!((s, replayed.as_deref()), (StatusCode::OK, Some("true")));
    assert_eq!(b, first);

    // The revoked key no longer authenticates.
    let status_path = format!("/usage-agreements/{}/escrow-status", f.direct_id);
    let (s, b) = f.api.get(&status_path, Some(&f.stranger_key)).await?;
    assert_eq!(
        (s, b["detail"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("API key revoked"))
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
    let (s, b) = f.api.get("/health", None).await?;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, b) = f.api.get("/ready", None).await?;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["lag_blocks"].as_u64(), Some(0));
    f.api
        .get(
            &format!("/usage-agreements/{}/escrow-status", f.direct_id),
            Some(&f.buyer_key),
        )
        .await?;
    let (s, b) = f.api.get("/metrics", None).await?;
    let text = b.as_str().unwrap_or_default();
    assert_eq!(s, StatusCode::OK);
    for needle in [
        "pactum_indexer_indexed_block ",
        "pactum_indexer_lag_blocks 0",
        "pactum_http_requests_total{method=\"GET\",route=\"/usage-agreements/{agreement_id}/escrow-status\",status=\"200\"} 1",
        "pactum_http_request_duration_seconds_bucket{",
    ] {
        assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    }
    let (s, b) = f.api.get("/openapi.json", None).await?;
    assert_eq!(s, StatusCode::OK);
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
