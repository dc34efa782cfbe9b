//! The chain misbehaving under the relayer: a node that forgets a transaction, a node restart, a
//! base-fee spike, the key's nonce moved under it (both ways), interval mining, and an action
//! mined only after its deadline. Each time every accepted
//! authorization takes effect exactly once and the key's nonces have no gap.

use std::time::{Duration, Instant};

use alloy::{
    primitives::{B256, U256},
    providers::Provider,
};
use pactum_client::types::{
    AgreementStatus, AttemptKind, AttemptOutcome, JobFailure, JobState, RefusalCode, RelayView,
};
use serde_json::Value;

use super::Fixture;

/// The deadline passed before the action could be mined.
const EXPIRED: JobFailure = JobFailure::Refused(RefusalCode::AuthorizationExpired);

/// One of the node's own methods (`evm_*`, `anvil_*`).
async fn rpc<P>(f: &Fixture, method: &'static str, params: P) -> eyre::Result<Value>
where
    P: serde::Serialize + Clone + std::fmt::Debug + Send + Sync + Unpin,
{
    Ok(f.plain.raw_request(method.into(), params).await?)
}

/// Accepts a sponsored close of a fresh agreement; returns (agreement id, relay id).
async fn close(f: &Fixture, salt: &str) -> eyre::Result<(B256, String)> {
    let (_, id) = f.active_agreement(salt).await?;
    Ok((id, post_close(f, id, salt).await?))
}

/// Posts the buyer's signed close of `id`; returns the relay id.
async fn post_close(f: &Fixture, id: B256, salt: &str) -> eyre::Result<String> {
    let deadline = f.now().await? + 3_600;
    f.buyer_close(id, deadline, &format!("close-{salt}")).await
}

/// Waits until the relay has `n` attempts, the last one broadcast.
async fn attempts(f: &Fixture, id: B256, relay_id: &str, n: usize) -> eyre::Result<RelayView> {
    Ok(f.buyer_api
        .wait_sponsored_action(id, relay_id, Duration::from_secs(20), |r| {
            r.attempts.len() >= n && r.attempts.last().is_some_and(|a| a.broadcast)
        })
        .await?)
}

/// The hash of a relay's `n`th attempt.
fn attempt_hash(relay: &RelayView, n: usize) -> eyre::Result<B256> {
    let attempt = relay
        .attempts
        .get(n)
        .ok_or_else(|| eyre::eyre!("no attempt {n}: {relay:?}"))?;
    Ok(attempt.tx_hash.parse()?)
}

/// The fee cap of a relay's `n`th attempt, in wei per gas.
fn fee_cap(relay: &RelayView, n: usize) -> eyre::Result<u128> {
    let attempt = relay
        .attempts
        .get(n)
        .ok_or_else(|| eyre::eyre!("no attempt {n}: {relay:?}"))?;
    Ok(attempt.max_fee_per_gas.parse()?)
}

async fn closing(f: &Fixture, id: B256) -> eyre::Result<bool> {
    let state = f.chain.escrow().agreementState(id).call().await?;
    Ok(AgreementStatus::try_from(state.status)? == AgreementStatus::Closing)
}

#[tokio::test]
async fn a_dropped_transaction_is_broadcast_again_byte_for_byte() -> eyre::Result<()> {
    let mut f = Fixture::new(|_| {}).await?;
    f.start_worker().await?;
    let (_, id) = f.active_agreement("dropped").await?;
    rpc(&f, "evm_setAutomine", (false,)).await?;
    let relay_id = post_close(&f, id, "dropped").await?;
    let body = attempts(&f, id, &relay_id, 1).await?;
    let hash = attempt_hash(&body, 0)?;
    rpc(&f, "anvil_dropTransaction", (hash,)).await?;
    assert!(f.plain.get_transaction_by_hash(hash).await?.is_none());
    // After `stuck_after` the worker finds it gone and sends the stored bytes again.
    let started = Instant::now();
    while f.plain.get_transaction_by_hash(hash).await?.is_none() {
        eyre::ensure!(
            started.elapsed() < Duration::from_secs(10),
            "never re-broadcast"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rpc(&f, "evm_mine", ()).await?;
    let done = f.wait_for(id, &relay_id, JobState::Confirmed).await?;
    assert_eq!(done.attempts.len(), 1, "{done:?}");
    assert_eq!(done.tx_hash, Some(hash.to_string()));
    assert!(closing(&f, id).await?);
    assert_eq!(f.relayer_nonce().await?, 1);
    Ok(())
}

/// The node restarts with the relayer's transactions in its pool: the chain comes back, the pool
/// does not. The worker rides out the outage (its rounds fail and back off, it does not stop),
/// finds its broadcast transactions unknown, and sends the same bytes again.
#[tokio::test]
async fn a_node_restart_that_loses_the_pool_is_ridden_out() -> eyre::Result<()> {
    let mut f = Fixture::new(|_| {}).await?;
    f.start_worker().await?;
    let mut ids = Vec::new();
    for i in 0..3 {
        let (_, id) = f.active_agreement(&format!("restart-{i}")).await?;
        ids.push(id);
    }
    rpc(&f, "evm_setAutomine", (false,)).await?;
    let mut relays = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let relay_id = post_close(&f, *id, &format!("restart-{i}")).await?;
        let body = attempts(&f, *id, &relay_id, 1).await?;
        relays.push((*id, relay_id, attempt_hash(&body, 0)?));
    }
    let head = f.chain.head().await?;

    f.chain.restart().await?;
    assert_eq!(f.chain.head().await?, head, "the chain came back");
    for (_, _, hash) in &relays {
        assert!(
            f.plain.get_transaction_by_hash(*hash).await?.is_none(),
            "the pool did not"
        );
    }

    // The restarted node mines on demand again: each close is mined once, from the bytes stored
    // before the first broadcast.
    for (id, relay_id, hash) in &relays {
        let done = f.wait_for(*id, relay_id, JobState::Confirmed).await?;
        assert_eq!(done.tx_hash, Some(hash.to_string()), "{done:?}");
        assert_eq!(done.attempts.len(), 1, "{done:?}");
        assert!(closing(&f, *id).await?);
    }
    assert_eq!(f.relayer_nonce().await?, 3);
    assert_eq!(f.attempts().await?, 3);
    Ok(())
}

#[tokio::test]
async fn a_base_fee_spike_is_outbid_by_a_fee_bumped_replacement() -> eyre::Result<()> {
    let mut f = Fixture::new(|_| {}).await?;
    f.start_worker().await?;
    let (_, id) = f.active_agreement("spike").await?;
    rpc(&f, "evm_setAutomine", (false,)).await?;
    let relay_id = post_close(&f, id, "spike").await?;
    let first = attempts(&f, id, &relay_id, 1).await?;
    let offered = fee_cap(&first, 0)?;
    // The next block's base fee jumps to three times what the transaction offers: it stays out.
    rpc(
        &f,
        "anvil_setNextBlockBaseFeePerGas",
        (U256::from(offered * 3),),
    )
    .await?;
    rpc(&f, "evm_mine", ()).await?;
    assert!(
        !closing(&f, id).await?,
        "mined despite a fee cap under the base fee"
    );
    // The worker replaces it with a higher fee (same nonce), which the next block includes.
    let bumped = attempts(&f, id, &relay_id, 2).await?;
    let second = fee_cap(&bumped, 1)?;
    assert!(
        second > offered * 3 / 2,
        "replacement offers {second}, base fee near {}",
        offered * 3
    );
    assert_eq!(bumped.attempts[0].nonce, bumped.attempts[1].nonce);
    rpc(&f, "evm_mine", ()).await?;
    let done = f.wait_for(id, &relay_id, JobState::Confirmed).await?;
    let mined = done
        .attempts
        .iter()
        .filter(|a| a.outcome == Some(AttemptOutcome::Mined))
        .count();
    assert_eq!(mined, 1, "{done:?}");
    assert_eq!(done.attempts[0].outcome, Some(AttemptOutcome::Replaced));
    assert!(closing(&f, id).await?);
    assert_eq!(f.relayer_nonce().await?, 1, "one nonce, used once");
    Ok(())
}

#[tokio::test]
async fn a_nonce_moved_ahead_requeues_and_one_moved_back_is_filled() -> eyre::Result<()> {
    let mut f = Fixture::new(|_| {}).await?;
    f.start_worker().await?;

    // Ahead: a pending transaction's nonce is used up under it.
    let (_, id) = f.active_agreement("ahead").await?;
    rpc(&f, "evm_setAutomine", (false,)).await?;
    let relay_id = post_close(&f, id, "ahead").await?;
    attempts(&f, id, &relay_id, 1).await?;
    rpc(&f, "anvil_setNonce", (f.key.address(), 5)).await?;
    // Blocks keep coming (the relayer only takes a nonce as foreign after a few).
    rpc(&f, "evm_setIntervalMining", (1,)).await?;
    let done = f.wait_for(id, &relay_id, JobState::Confirmed).await?;
    rpc(&f, "evm_setIntervalMining", (0,)).await?;
    rpc(&f, "evm_setAutomine", (true,)).await?;
    assert_eq!(done.nonce, Some(5), "{done:?}");
    assert_eq!(done.attempts[0].outcome, Some(AttemptOutcome::Replaced));
    assert!(closing(&f, id).await?);
    assert_eq!(f.relayer_nonce().await?, 6);

    // Back: the chain forgets nonces 1..6. The worker fills 1..=4 with no-ops and, as after a
    // reorg, broadcasts its own transaction mined at 5 again (here it can only revert: the
    // state was not rolled back); then the next job gets 6.
    rpc(&f, "anvil_setNonce", (f.key.address(), 1)).await?;
    let (id, relay_id) = close(&f, "back").await?;
    let done = f.wait_for(id, &relay_id, JobState::Confirmed).await?;
    assert!(closing(&f, id).await?);
    let fills: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM relay_attempts WHERE kind = 'fill' AND outcome = 'mined'",
    )
    .fetch_one(f.db().pool())
    .await?;
    assert_eq!(fills, 4, "nonces 1..=4 filled");
    assert_eq!(done.nonce, Some(6));
    assert_eq!(f.relayer_nonce().await?, 7);
    f.stop_worker().await;
    Ok(())
}

#[tokio::test]
async fn interval_mining_confirms_a_burst() -> eyre::Result<()> {
    // Blocks every second; a transaction is only "stuck" after five.
    let mut f = Fixture::new(|s| s.stuck_after = std::time::Duration::from_secs(5)).await?;
    f.start_worker().await?;
    let mut ids = Vec::new();
    for i in 0..8 {
        let (_, id) = f.active_agreement(&format!("burst-{i}")).await?;
        ids.push(id);
    }
    rpc(&f, "evm_setAutomine", (false,)).await?;
    rpc(&f, "evm_setIntervalMining", (1,)).await?;
    let mut relays = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        relays.push((*id, post_close(&f, *id, &format!("burst-{i}")).await?));
    }
    for (id, relay_id) in &relays {
        f.wait_for(*id, relay_id, JobState::Confirmed).await?;
        assert!(closing(&f, *id).await?);
    }
    assert_eq!(f.relayer_nonce().await?, 8);
    assert_eq!(f.attempts().await?, 8, "no replacement was needed");
    let states = super::states(&f).await?;
    assert_eq!(states, vec![(JobState::Confirmed, 8)]);
    Ok(())
}

#[tokio::test]
async fn an_expired_action_held_by_the_fee_cap_is_cancelled_above_it() -> eyre::Result<()> {
    let gwei = 1_000_000_000u128;
    let mut f = Fixture::new(|s| {
        s.policy.max_fee_per_gas = 5 * gwei;
        s.policy.min_deadline_margin = 5;
        s.stuck_after = Duration::from_millis(300);
    })
    .await?;
    f.start_worker().await?;
    let (_, id) = f.active_agreement("capped").await?;
    rpc(&f, "evm_setAutomine", (false,)).await?;
    let deadline = f.now().await? + 20;
    let relay_id = f.buyer_close(id, deadline, "capped").await?;
    attempts(&f, id, &relay_id, 1).await?;

    // The base fee jumps far above the cap (the action cannot follow it), then the
    // authorization's deadline passes while it waits.
    rpc(
        &f,
        "anvil_setNextBlockBaseFeePerGas",
        (U256::from(20 * gwei),),
    )
    .await?;
    rpc(&f, "evm_mine", ()).await?;
    rpc(&f, "evm_increaseTime", (30,)).await?;
    rpc(&f, "evm_mine", ()).await?;
    // The worker replaces it with a cancel priced above the cap, which the next block takes.
    let started = Instant::now();
    loop {
        let body = f.buyer_api.sponsored_action(id, &relay_id).await?;
        if body.status == JobState::Failed {
            assert_eq!(
                body.failure.as_ref().map(|f| f.code),
                Some(EXPIRED),
                "{body:?}"
            );
            let cancel = body
                .attempts
                .iter()
                .find(|a| a.kind == AttemptKind::Cancel)
                .ok_or_else(|| eyre::eyre!("no cancel: {body:?}"))?;
            assert_eq!(cancel.outcome, Some(AttemptOutcome::Mined), "{body:?}");
            let fee: u128 = cancel.max_fee_per_gas.parse()?;
            assert!(fee > 5 * gwei, "the cancel is not held by the cap: {fee}");
            break;
        }
        eyre::ensure!(
            started.elapsed() < Duration::from_secs(20),
            "never cancelled: {body:?}"
        );
        rpc(&f, "evm_mine", ()).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        !closing(&f, id).await?,
        "the expired close never took effect"
    );
    assert_eq!(f.relayer_nonce().await?, 1, "the nonce went to the cancel");
    Ok(())
}

/// An action mined only after its authorization's deadline (here the chain's clock jumps while
/// it waits in the pool) reverts; that is the relayer's delay, `authorization_expired`, not a
/// strike against the party: with a limit of one revert, the party is still sponsored.
#[tokio::test]
async fn an_action_mined_after_its_deadline_is_not_a_strike() -> eyre::Result<()> {
    let f = Fixture::new(|s| s.policy.max_reverts_per_party_per_day = 1).await?;
    f.round().await?;
    let (_, id) = f.active_agreement("late").await?;
    let (_, other) = f.active_agreement("late-next").await?;
    let relay_id = f.buyer_close(id, f.now().await? + 120, "late").await?;
    rpc(&f, "evm_setAutomine", (false,)).await?;
    f.round().await?;
    rpc(&f, "evm_increaseTime", (600,)).await?;
    rpc(&f, "evm_mine", ()).await?;
    rpc(&f, "evm_setAutomine", (true,)).await?;
    f.round().await?;
    let failed = f.wait_for(id, &relay_id, JobState::Failed).await?;
    assert_eq!(failed.failure.map(|f| f.code), Some(EXPIRED));
    f.buyer_close(other, f.now().await? + 3_600, "next").await?;
    Ok(())
}
