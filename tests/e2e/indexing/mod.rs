//! The indexer against a real Anvil and a real PostgreSQL: lifecycles indexed and compared with
//! the contract's own view, reorgs of every depth compared with a fresh index of the final chain.

mod election;
pub(crate) mod lifecycle;
mod node_faults;
mod reorg;

use alloy::{primitives::B256, providers::Provider, rpc::types::Filter};
use pactum_core::AgreementStatus;
use pactum_db::{
    Db,
    index::{self, AgreementStatus as Derived},
    testing::TestDatabase,
};
use pactum_indexer::{Config, Indexer, Metrics, events::Contracts, verify};

use crate::chain::Chain;

/// An indexer of `chain` into `db`, with `tune` applied to the defaults.
pub(crate) async fn indexer(
    chain: &Chain,
    db: &Db,
    tune: impl FnOnce(&mut Config),
) -> eyre::Result<Indexer> {
    let d = &chain.deployment;
    let mut config = Config::new(d.chain_id, d.escrow, d.fee_collector, d.start_block);
    config.batch_blocks = 4;
    config.use_finalized_tag = false;
    config.confirmations = 64;
    config.reorg_window = 128;
    tune(&mut config);
    Ok(Indexer::new(
        config,
        db.clone(),
        chain.provider.clone(),
        Metrics::default(),
    )
    .await?)
}

pub(crate) fn contracts(chain: &Chain) -> Contracts {
    Contracts {
        escrow: chain.deployment.escrow,
        fee_collector: chain.deployment.fee_collector,
    }
}

/// Every derived row equals the contract's `agreementState`, every stored event is one the node
/// returns for the contracts, and the derived rows recompute from the events.
pub(crate) async fn assert_matches_chain(chain: &Chain, db: &Db) -> eyre::Result<usize> {
    let chain_id = chain.deployment.chain_id;
    let mut conn = db.pool().acquire().await?;
    let rows = index::all_agreements(&mut conn, chain_id).await?;
    let escrow = chain.escrow();
    for row in &rows {
        let state = escrow.agreementState(row.agreement_id).call().await?;
        let status = match AgreementStatus::try_from(state.status)? {
            AgreementStatus::Active => Derived::Active,
            AgreementStatus::Closing => Derived::Closing,
            AgreementStatus::SellerClaimed => Derived::SellerClaimed,
            AgreementStatus::Settled => Derived::Settled,
            AgreementStatus::None => {
                eyre::bail!("{} indexed but never activated", row.agreement_id)
            }
        };
        assert_eq!(row.status, status, "status of {}", row.agreement_id);
        assert_eq!(
            row.close_deadline.unwrap_or(0),
            u64::try_from(state.closeDeadline)?,
            "close deadline"
        );
        assert_eq!(
            row.settled_amount,
            alloy::primitives::U256::from(state.settledAmount)
        );
        assert_eq!(row.seller_paid, state.sellerPaid, "sellerPaid");
        assert_eq!(row.buyer_withdrawn, state.buyerWithdrawn, "buyerWithdrawn");
        assert_eq!(row.deposited, row.max_amount);
        if state.sellerPaid {
            assert_eq!(row.seller_paid_amount, row.settled_amount);
        }
    }

    let node_logs = chain
        .provider
        .get_logs(
            &Filter::new()
                .address(vec![
                    chain.deployment.escrow,
                    chain.deployment.fee_collector,
                ])
                .from_block(chain.deployment.start_block),
        )
        .await?;
    let stored = index::all_events(&mut conn, chain_id).await?;
    let node_keys: Vec<(B256, u64)> = node_logs
        .iter()
        .map(|l| {
            (
                l.block_hash.unwrap_or_default(),
                l.log_index.unwrap_or_default(),
            )
        })
        .collect();
    let stored_keys: Vec<(B256, u64)> = stored
        .iter()
        .map(|e| (e.block_hash, u64::from(e.log_index)))
        .collect();
    assert_eq!(
        stored_keys, node_keys,
        "stored events are exactly the node's logs"
    );

    let report = verify::verify(db, chain_id, contracts(chain)).await?;
    assert!(report.mismatches.is_empty(), "{:#?}", report.mismatches);
    Ok(rows.len())
}

/// Indexes the chain from scratch into a new database and checks that `db` holds exactly the
/// same events and derived rows.
pub(crate) async fn assert_equals_fresh_index(chain: &Chain, db: &Db) -> eyre::Result<()> {
    let fresh = TestDatabase::create().await?;
    let mut indexer = indexer(chain, fresh.db(), |c| c.batch_blocks = 1_000).await?;
    indexer.catch_up().await?;
    let chain_id = chain.deployment.chain_id;
    let (mut a, mut b) = (
        db.pool().acquire().await?,
        fresh.db().pool().acquire().await?,
    );
    assert_eq!(
        index::all_events(&mut a, chain_id).await?,
        index::all_events(&mut b, chain_id).await?,
        "events equal a fresh index"
    );
    assert_eq!(
        index::all_agreements(&mut a, chain_id).await?,
        index::all_agreements(&mut b, chain_id).await?,
        "derived rows equal a fresh index"
    );
    drop((a, b));
    fresh.drop_database().await?;
    Ok(())
}
