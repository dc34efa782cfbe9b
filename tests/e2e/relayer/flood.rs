//! Unauthenticated operational endpoints under a flood: they shed what they cannot serve and
//! never take the database pool from authenticated requests or the relayer's worker.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use pactum_client::{Client, types::JobState};

use super::Fixture;

/// 64 clients hammer `/metrics` (and `/ready`) while an agent reads an escrow status and has a
/// sponsored close submitted and confirmed. Before the fix a `/metrics` request held one pooled
/// connection while waiting for a second, so a flood deadlocked the pool until its timeout and
/// the authenticated work failed.
#[tokio::test]
async fn a_flood_of_operational_requests_leaves_the_pool_to_real_work() -> eyre::Result<()> {
    let mut f = Fixture::new(|_| {}).await?;
    f.start_worker().await?;
    let (_, id) = f.active_agreement("flood").await?;
    let anonymous = Client::new(f.buyer_api.base().as_str())?;

    let done = Arc::new(AtomicBool::new(false));
    let mut flood = Vec::new();
    for i in 0..64 {
        let (client, done) = (anonymous.clone(), done.clone());
        let path = if i % 8 == 0 { "ready" } else { "metrics" };
        flood.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let answer = client.send_raw(reqwest_get(), path, &[], None).await?;
                let code = answer.problem().ok().map(|p| p.code);
                answers.push((answer.status.as_u16(), code));
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

    let (mut served, mut shed) = (0, 0);
    for task in flood {
        for (status, code) in task.await?? {
            match status {
                200 => served += 1,
                503 if code.as_deref() == Some("busy") => shed += 1,
                other => eyre::bail!("unexpected answer {other} {code:?} under the flood"),
            }
        }
    }
    assert!(served > 0, "the limit must still serve some requests");
    assert!(shed > 0, "64 concurrent callers must exceed the limit");
    // After the flood every endpoint answers normally.
    assert!(anonymous.metrics().await?.contains("pactum_relayer_jobs"));
    Ok(())
}

fn reqwest_get() -> alloy::transports::http::reqwest::Method {
    alloy::transports::http::reqwest::Method::GET
}
