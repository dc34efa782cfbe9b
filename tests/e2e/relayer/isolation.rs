//! One caller cannot starve another: unauthenticated operational endpoints shed what they cannot
//! serve and never take the database pool from authenticated requests; the relayer's workers
//! submit from a pool of their own, whatever load the API is under; `/metrics` can live on an
//! address of its own.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use pactum_api::AppState;
use pactum_client::{Client, types::JobState};
use pactum_db::{Db, relay};
use pactum_relayer::{Relayer, Worker};
use tokio::net::TcpListener;

use super::Fixture;

/// 64 clients hammer `/metrics` (and `/ready`) while an agent reads an escrow status and has a
/// sponsored close submitted and confirmed. Before the fix a `/metrics` request held one pooled
/// connection while waiting for a second, so a flood deadlocked the pool until its timeout and
/// the authenticated work failed. The flood is also paced: refusals are held, not answered as
/// fast as they are asked.
#[tokio::test]
async fn a_flood_of_operational_requests_leaves_the_pool_to_real_work() -> eyre::Result<()> {
    let mut f = Fixture::new(|_| {}).await?;
    f.start_worker().await?;
    let (_, id) = f.active_agreement("flood").await?;
    let anonymous = Client::new(f.buyer_api.base().as_str())?;

    let done = Arc::new(AtomicBool::new(false));
    let mut flood = Vec::new();
    let started = Instant::now();
    for i in 0..64 {
        let (client, done) = (anonymous.clone(), done.clone());
        let path = if i % 8 == 0 { "ready" } else { "metrics" };
        // Half of them with a made-up API key: the operational endpoints never look it up.
        let fake = format!("Bearer pk_abcdefghijklmnop_{}", "0".repeat(64));
        let authorization = (i % 2 == 0).then_some(fake);
        flood.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            let headers: Vec<(&str, &str)> = authorization
                .iter()
                .map(|v| ("authorization", v.as_str()))
                .collect();
            while !done.load(Ordering::Relaxed) {
                let answer = client.send_raw(reqwest_get(), path, &headers, None).await?;
                let code = answer.problem().ok().map(|p| p.code);
                answers.push((path, answer.status.as_u16(), code));
            }
            Ok::<_, pactum_client::Error>(answers)
        }));
    }
    // Let the flood build up before the real work starts.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    // Each of these fails (500, pool timed out) if the flood holds the pool.
    f.buyer_api.escrow_status(id).await?;
    let deadline = f.now().await? + 3_600;
    let relay_id = f.buyer_close(id, deadline, "close-flood").await?;
    f.wait_for(id, &relay_id, JobState::Confirmed).await?;
    done.store(true, Ordering::Relaxed);

    let (mut served, mut shed) = (0_u32, 0_u32);
    for task in flood {
        for (path, status, code) in task.await?? {
            match (path, status) {
                ("metrics", 200) => served += 1,
                ("metrics", 503) if code.as_deref() == Some("busy") => shed += 1,
                ("ready", 200) => {}
                (path, other) => eyre::bail!("unexpected answer {other} {code:?} from /{path}"),
            }
        }
    }
    // The pace holds: /metrics started at most 10 a second, and each refusal held its caller at
    // least a second, so 56 callers asking back to back got at most 56 refusals a second
    // (answered at once, they would have got thousands).
    let seconds = started.elapsed().as_secs_f64().ceil() as u32 + 1;
    let limit = pactum_api::operational::METRICS;
    assert!(served > 0, "the limit must still serve some requests");
    assert!(
        served <= limit.per_second * seconds,
        "{served} scrapes served in {seconds} s"
    );
    assert!(shed > 0, "56 callers back to back must exceed the pace");
    assert!(shed <= 56 * seconds, "{shed} refusals in {seconds} s");
    // After the flood every endpoint answers normally.
    assert!(anonymous.metrics().await?.contains("pactum_relayer_jobs"));
    Ok(())
}

fn reqwest_get() -> alloy::transports::http::reqwest::Method {
    alloy::transports::http::reqwest::Method::GET
}

/// Every connection of the API's pool is taken (as a request storm would), and a job the API
/// accepted before is still submitted and confirmed: the worker has a pool of its own.
#[tokio::test]
async fn the_worker_submits_while_the_apis_pool_is_exhausted() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let worker_db = Db::connect(f.db.url(), 2).await?;
    let relayer = Relayer::with_pools(
        f.db().clone(),
        worker_db.clone(),
        f.plain.clone(),
        f.relayer.settings().clone(),
        vec![f.key.address()],
    )
    .await?;
    f.round().await?;
    let (_, id) = f.active_agreement("starved").await?;
    let deadline = f.now().await? + 3_600;
    let relay_id = f.buyer_close(id, deadline, "close-starved").await?;

    let api_pool = f.db().pool();
    let mut held = Vec::new();
    for _ in 0..api_pool.options().get_max_connections() {
        held.push(api_pool.acquire().await?);
    }
    let worker = Worker::new(relayer, f.key.clone());
    let task = tokio::spawn(worker.run(f.stop.subscribe()));
    let started = Instant::now();
    loop {
        let job = relay::job_by_id(worker_db.pool(), &relay_id)
            .await?
            .ok_or_else(|| eyre::eyre!("job {relay_id} vanished"))?;
        if job.state == JobState::Confirmed {
            break;
        }
        eyre::ensure!(
            started.elapsed() < Duration::from_secs(30) && !task.is_finished(),
            "the worker did not confirm the job while the API's pool was taken: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(held);
    f.stop.send(true)?;
    task.await??;
    Ok(())
}

/// With `api.metrics_listen`, `/metrics` answers on its own address and no longer on the API's.
#[tokio::test]
async fn metrics_can_be_served_off_the_public_address() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let mut state = AppState::new(f.db().clone(), f.chain.deployment.chain_id, None);
    state.metrics_on_api = false;
    let (public, private) = (
        TcpListener::bind("127.0.0.1:0").await?,
        TcpListener::bind("127.0.0.1:0").await?,
    );
    let public_url = format!("http://{}", public.local_addr()?);
    let private_url = format!("http://{}", private.local_addr()?);
    tokio::spawn(pactum_api::serve(public, state.clone(), f.stop.subscribe()));
    tokio::spawn(pactum_api::serve_metrics(
        private,
        state,
        f.stop.subscribe(),
    ));

    let on_public = Client::new(&public_url)?
        .send_raw(reqwest_get(), "metrics", &[], None)
        .await?;
    assert_eq!(on_public.status.as_u16(), 404);
    assert_eq!(on_public.problem()?.code, "route_not_found");
    // The private listener reports the public one's traffic, and serves nothing else.
    Client::new(&public_url)?.health().await?;
    let text = Client::new(&private_url)?.metrics().await?;
    let health = r#"pactum_http_requests_total{method="GET",route="/health",status="200"} 1"#;
    assert!(text.contains(health), "{text}");
    let other = Client::new(&private_url)?
        .send_raw(reqwest_get(), "health", &[], None)
        .await?;
    assert_eq!(other.status.as_u16(), 404);
    Ok(())
}
