//! Reorgs at depths 1 to 64, through `evm_snapshot`/`evm_revert` and `anvil_reorg`, whose
//! replacement blocks move, drop or change an activation and a claim. Afterwards the database
//! must equal a fresh index of the final chain, row for row. Reorgs the indexer must not roll back
//! stop it with an error and leave the database untouched.

use alloy::{
    primitives::{B256, U256},
    providers::Provider,
};
use pactum_bindings::{Agreement, eip712, sign};
use pactum_db::{Db, index as store, testing::TestDatabase};
use pactum_devnet::scenario;
use pactum_indexer::{Error, Step};

use super::{assert_equals_fresh_index, assert_matches_chain, indexer};
use crate::chain::{Chain, USDC};

#[derive(Debug, Clone, Copy)]
enum Replacement {
    /// The same activation and claim, in later blocks.
    Move,
    /// Neither the activation nor the claim happens.
    Drop,
    /// Another agreement is activated, and the claim is for another amount.
    Change,
    /// `anvil_reorg`: the same height, the replaced blocks empty except for the original
    /// activation, re-included one block later.
    AnvilMove,
}

/// A chain with an agreement already in its close window (so that a claim can happen after the
/// fork).
async fn closing_agreement(chain: &Chain) -> eyre::Result<(Agreement, B256)> {
    let a = chain
        .agreement(chain.buyer.address(), chain.seller.address(), "pre-fork")
        .await?;
    let (id, _) = scenario::activate(
        &chain.provider,
        &chain.deployment,
        &a,
        &chain.buyer,
        chain.relayer.address(),
    )
    .await?;
    pactum_devnet::confirm(
        chain
            .escrow()
            .initiateClose(a.clone())
            .from(chain.buyer.address()),
    )
    .await?;
    Ok((a, id))
}

async fn activate(chain: &Chain, salt: &str) -> eyre::Result<()> {
    let a = chain
        .agreement(chain.buyer.address(), chain.seller.address(), salt)
        .await?;
    scenario::activate(
        &chain.provider,
        &chain.deployment,
        &a,
        &chain.buyer,
        chain.relayer.address(),
    )
    .await?;
    Ok(())
}

async fn claim(chain: &Chain, a: &Agreement, id: B256, amount: u64) -> eyre::Result<()> {
    let domain = eip712::escrow_domain(chain.deployment.chain_id, chain.deployment.escrow);
    let amount = U256::from(amount * USDC);
    let voucher = sign::sign_typed(
        &chain.buyer,
        &eip712::Voucher {
            agreementId: id,
            cumulativeAmount: amount,
        },
        &domain,
    )
    .await?;
    pactum_devnet::confirm(
        chain
            .escrow()
            .sellerClaim(a.clone(), amount, voucher, chain.seller.address())
            .from(chain.seller.address()),
    )
    .await?;
    Ok(())
}

/// Fills blocks `fork+1 ..= fork+depth` with an activation and a claim (as many as fit), indexes
/// them, replaces them by a longer branch, and indexes again.
async fn reorg_case(depth: u64, replacement: Replacement) -> eyre::Result<()> {
    let chain = Chain::start().await?;
    let (pre, pre_id) = closing_agreement(&chain).await?;
    chain.mine(3).await?;
    let fork = chain.head().await?;
    let snapshot = chain.snapshot().await?;

    activate(&chain, "in-window").await?;
    if depth >= 2 {
        claim(&chain, &pre, pre_id, 40).await?;
    }
    let filled = chain.head().await? - fork;
    chain.mine(depth - filled).await?;
    assert_eq!(chain.head().await?, fork + depth);

    let test_db = TestDatabase::create().await?;
    let db = test_db.db();
    let mut indexer = indexer(&chain, db, |_| {}).await?;
    indexer.catch_up().await?;
    let before = event_count(db, &chain).await?;

    if let Replacement::AnvilMove = replacement {
        // The activation was the first transaction after the fork: re-include it one block
        // later (or in the same block for a depth of 1), everything else dropped.
        let block = chain
            .provider
            .get_block_by_number((fork + 1).into())
            .await?
            .ok_or_else(|| eyre::eyre!("block {}", fork + 1))?;
        let hash = block
            .transactions
            .hashes()
            .next()
            .ok_or_else(|| eyre::eyre!("no activation in block {}", fork + 1))?;
        let tx: serde_json::Value = chain
            .provider
            .raw_request("eth_getTransactionByHash".into(), (hash,))
            .await?;
        let request = serde_json::json!({
            "from": tx["from"], "to": tx["to"], "input": tx["input"], "gas": tx["gas"],
        });
        let offset = u64::from(depth > 1);
        let _: serde_json::Value = chain
            .provider
            .raw_request("anvil_reorg".into(), (depth, vec![(request, offset)]))
            .await?;
        assert_eq!(chain.head().await?, fork + depth, "same height");
        let steps = indexer.catch_up().await?;
        assert!(
            steps
                .iter()
                .any(|s| matches!(s, Step::RolledBack { fork: f, .. } if *f == fork)),
            "depth {depth} anvil_reorg: {steps:?}"
        );
        assert_matches_chain(&chain, db).await?;
        assert_equals_fresh_index(&chain, db).await?;
        let mut conn = db.pool().acquire().await?;
        let moved = store::all_events(&mut conn, chain.deployment.chain_id)
            .await?
            .into_iter()
            .filter(|e| e.kind == "AgreementActivated" && e.block_number > fork)
            .map(|e| e.block_number)
            .collect::<Vec<_>>();
        assert_eq!(moved, vec![fork + 1 + offset], "the activation moved");
        drop(conn);
        test_db.drop_database().await?;
        return Ok(());
    }

    chain.revert(snapshot).await?;
    assert_eq!(chain.head().await?, fork);
    match replacement {
        Replacement::Move => {
            chain.mine(1).await?;
            activate(&chain, "in-window").await?;
            claim(&chain, &pre, pre_id, 40).await?;
        }
        Replacement::Drop | Replacement::AnvilMove => {}
        Replacement::Change => {
            activate(&chain, "replacement").await?;
            claim(&chain, &pre, pre_id, 25).await?;
        }
    }
    let head = chain.head().await?;
    chain.mine((fork + depth + 1).saturating_sub(head)).await?;

    let steps = indexer.catch_up().await?;
    let rolled_back = steps.iter().find_map(|s| match s {
        Step::RolledBack { fork: f, from, .. } => Some((*f, *from)),
        _ => None,
    });
    assert_eq!(
        rolled_back,
        Some((fork, fork + depth)),
        "depth {depth} {replacement:?}: {steps:?}"
    );
    assert_matches_chain(&chain, db).await?;
    assert_equals_fresh_index(&chain, db).await?;
    let after = event_count(db, &chain).await?;
    match replacement {
        Replacement::Drop => assert!(after < before, "dropped events are gone"),
        Replacement::Move | Replacement::Change | Replacement::AnvilMove => {
            assert!(after >= before - 1)
        }
    }
    test_db.drop_database().await?;
    Ok(())
}

async fn event_count(db: &Db, chain: &Chain) -> eyre::Result<usize> {
    let mut conn = db.pool().acquire().await?;
    Ok(store::all_events(&mut conn, chain.deployment.chain_id)
        .await?
        .len())
}

#[tokio::test]
async fn reorgs_of_every_depth_equal_a_fresh_index() -> eyre::Result<()> {
    for depth in [1_u64, 2, 5, 10, 30, 64] {
        for replacement in [
            Replacement::Move,
            Replacement::Drop,
            Replacement::Change,
            Replacement::AnvilMove,
        ] {
            reorg_case(depth, replacement).await?;
        }
    }
    Ok(())
}

/// `anvil_reorg` replaces the last blocks at the same height: the indexer at the head notices the
/// changed hash of its own block.
#[tokio::test]
async fn same_height_anvil_reorg_is_detected_at_the_head() -> eyre::Result<()> {
    let chain = Chain::start().await?;
    let (pre, pre_id) = closing_agreement(&chain).await?;
    activate(&chain, "will-vanish").await?;
    claim(&chain, &pre, pre_id, 40).await?;
    let head = chain.head().await?;

    let test_db = TestDatabase::create().await?;
    let db = test_db.db();
    let mut indexer = indexer(&chain, db, |_| {}).await?;
    indexer.catch_up().await?;

    let _: serde_json::Value = chain
        .provider
        .raw_request(
            "anvil_reorg".into(),
            (3_u64, Vec::<serde_json::Value>::new()),
        )
        .await?;
    assert_eq!(chain.head().await?, head, "same height");
    let steps = indexer.catch_up().await?;
    assert!(
        steps
            .iter()
            .any(|s| matches!(s, Step::RolledBack { fork, .. } if *fork == head - 3)),
        "{steps:?}"
    );
    assert_matches_chain(&chain, db).await?;
    assert_equals_fresh_index(&chain, db).await?;
    test_db.drop_database().await?;
    Ok(())
}

/// A reorg that replaces every indexed block, down to the start block itself, rolls back to the
/// start block's parent rather than being mistaken for one deeper than the window.
#[tokio::test]
async fn reorg_down_to_the_start_block_rolls_back_everything() -> eyre::Result<()> {
    let chain = Chain::start().await?;
    let (_pre, _) = closing_agreement(&chain).await?;
    let test_db = TestDatabase::create().await?;
    let db = test_db.db();
    let mut indexer = indexer(&chain, db, |_| {}).await?;
    indexer.catch_up().await?;
    let start = chain.deployment.start_block;
    let depth = chain.head().await? - start + 1;
    let _: serde_json::Value = chain
        .provider
        .raw_request(
            "anvil_reorg".into(),
            (depth, Vec::<serde_json::Value>::new()),
        )
        .await?;
    let steps = indexer.catch_up().await?;
    assert!(
        steps
            .iter()
            .any(|s| matches!(s, Step::RolledBack { fork, .. } if *fork == start - 1)),
        "{steps:?}"
    );
    assert_eq!(
        event_count(db, &chain).await?,
        0,
        "the contracts no longer exist on this chain"
    );
    test_db.drop_database().await?;
    Ok(())
}

/// A reorg below the rollback window stops the indexer and writes nothing.
#[tokio::test]
async fn reorg_deeper_than_the_window_stops_without_writing() -> eyre::Result<()> {
    let chain = Chain::start().await?;
    let (_pre, _) = closing_agreement(&chain).await?;
    let snapshot = chain.snapshot().await?;
    for n in 0..6 {
        activate(&chain, &format!("deep-{n}")).await?;
    }
    let test_db = TestDatabase::create().await?;
    let db = test_db.db();
    let mut indexer = indexer(&chain, db, |c| {
        c.reorg_window = 3;
        c.confirmations = 3;
    })
    .await?;
    indexer.catch_up().await?;
    let (events, cursor) = (event_count(db, &chain).await?, indexer.cursor().clone());

    chain.revert(snapshot).await?;
    chain.mine(8).await?;
    let err = indexer
        .step()
        .await
        .err()
        .ok_or_else(|| eyre::eyre!("must stop"))?;
    assert!(matches!(err, Error::ReorgTooDeep { .. }), "{err}");
    assert_eq!(event_count(db, &chain).await?, events, "nothing deleted");
    let mut conn = db.pool().acquire().await?;
    assert_eq!(
        store::load_cursor(&mut conn, chain.deployment.chain_id).await?,
        Some(cursor)
    );
    drop(conn);
    test_db.drop_database().await?;
    Ok(())
}

/// A node whose head goes backwards while its blocks still match ours is behind, not reorganised:
/// the indexer stops and writes nothing.
#[tokio::test]
async fn node_going_backwards_without_a_mismatch_stops_without_writing() -> eyre::Result<()> {
    let chain = Chain::start().await?;
    let snapshot = chain.snapshot().await?;
    let (_pre, _) = closing_agreement(&chain).await?;
    let test_db = TestDatabase::create().await?;
    let db = test_db.db();
    let mut indexer = indexer(&chain, db, |_| {}).await?;
    indexer.catch_up().await?;
    let events = event_count(db, &chain).await?;

    chain.revert(snapshot).await?;
    let err = indexer
        .step()
        .await
        .err()
        .ok_or_else(|| eyre::eyre!("must stop"))?;
    assert!(matches!(err, Error::NodeWentBackwards { .. }), "{err}");
    assert_eq!(event_count(db, &chain).await?, events, "nothing deleted");
    test_db.drop_database().await?;
    Ok(())
}
