//! Index a chain holding agreements in every state, in small batches and large, across restarts.

use alloy::{
    primitives::{Address, U256},
    signers::local::PrivateKeySigner,
};
use pactum_bindings::{LocalSanctionsOracle, eip712, sign};
use pactum_db::{index as store, testing::TestDatabase};
use pactum_devnet::scenario::{self, SettlementPath};
use pactum_indexer::Step;

use super::{assert_equals_fresh_index, assert_matches_chain, indexer};
use crate::chain::{BUYER_FUNDS, Chain, USDC};

fn usage() -> Vec<U256> {
    vec![U256::from(10 * USDC), U256::from(40 * USDC)]
}

/// Agreements in every status, through both settlement paths, including a deferred payout that
/// is retried after the seller's delisting.
pub(crate) async fn populate(chain: &Chain, tag: &str) -> eyre::Result<()> {
    let (buyer, seller) = (&chain.buyer, &chain.seller);
    let direct = chain
        .agreement(buyer.address(), seller.address(), &format!("{tag}-direct"))
        .await?;
    scenario::run(
        &chain.provider,
        &chain.deployment,
        &direct,
        buyer,
        seller,
        SettlementPath::Direct,
        &usage(),
        |_| {},
    )
    .await?;

    let (rb, rs) = (PrivateKeySigner::random(), PrivateKeySigner::random());
    chain.mint(rb.address(), U256::from(BUYER_FUNDS)).await?;
    let relayed = chain
        .agreement(rb.address(), rs.address(), &format!("{tag}-relayed"))
        .await?;
    let relayer = chain.relayer.address();
    scenario::run(
        &chain.provider,
        &chain.deployment,
        &relayed,
        &rb,
        &rs,
        SettlementPath::Relayed { relayer },
        &usage(),
        |_| {},
    )
    .await?;

    let active = chain
        .agreement(buyer.address(), seller.address(), &format!("{tag}-active"))
        .await?;
    scenario::activate(&chain.provider, &chain.deployment, &active, buyer, relayer).await?;

    let closing = chain
        .agreement(buyer.address(), seller.address(), &format!("{tag}-closing"))
        .await?;
    scenario::activate(&chain.provider, &chain.deployment, &closing, buyer, relayer).await?;
    pactum_devnet::confirm(
        chain
            .escrow()
            .initiateClose(closing.clone())
            .from(seller.address()),
    )
    .await?;

    // Deferred, then retried: the seller is sanctioned when it claims.
    let deferred = chain
        .agreement(
            buyer.address(),
            seller.address(),
            &format!("{tag}-deferred"),
        )
        .await?;
    let (id, _) = scenario::activate(
        &chain.provider,
        &chain.deployment,
        &deferred,
        buyer,
        relayer,
    )
    .await?;
    let escrow = chain.escrow();
    pactum_devnet::confirm(escrow.initiateClose(deferred.clone()).from(buyer.address())).await?;
    let domain = eip712::escrow_domain(chain.deployment.chain_id, chain.deployment.escrow);
    let amount = U256::from(30 * USDC);
    let voucher = sign::sign_typed(
        buyer,
        &eip712::Voucher {
            agreementId: id,
            cumulativeAmount: amount,
        },
        &domain,
    )
    .await?;
    let oracle = LocalSanctionsOracle::new(chain.deployment.sanctions_oracle, &chain.provider);
    let deployer = chain.deployer.address();
    pactum_devnet::confirm(
        oracle
            .addToSanctionsList(vec![seller.address()])
            .from(deployer),
    )
    .await?;
    let claim = pactum_devnet::confirm(
        escrow
            .sellerClaim(deferred.clone(), amount, voucher, seller.address())
            .from(seller.address())
            .gas(1_000_000),
    )
    .await?;
    assert!(
        claim
            .decoded_log::<pactum_bindings::AgreementEscrow::SellerPayoutDeferred>()
            .is_some(),
        "the sanctioned seller's payout was deferred"
    );
    pactum_devnet::confirm(
        escrow
            .buyerWithdraw(deferred.clone(), buyer.address())
            .from(buyer.address()),
    )
    .await?;
    pactum_devnet::confirm(
        oracle
            .removeFromSanctionsList(vec![seller.address()])
            .from(deployer),
    )
    .await?;
    pactum_devnet::confirm(
        escrow
            .sellerClaim(
                deferred.clone(),
                amount,
                Default::default(),
                seller.address(),
            )
            .from(seller.address()),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn indexes_every_lifecycle_and_matches_the_contract() -> eyre::Result<()> {
    let chain = Chain::start().await?;
    populate(&chain, "a").await?;
    let test_db = TestDatabase::create().await?;
    let db = test_db.db();

    let mut indexer = indexer(&chain, db, |_| {}).await?;
    let steps = indexer.catch_up().await?;
    assert!(
        steps
            .iter()
            .filter(|s| matches!(s, Step::Indexed { .. }))
            .count()
            > 3,
        "small batches: {steps:?}"
    );
    let agreements = assert_matches_chain(&chain, db).await?;
    assert_eq!(agreements, 5);

    let mut conn = db.pool().acquire().await?;
    let rows = store::all_agreements(&mut conn, chain.deployment.chain_id).await?;
    let deferred = rows
        .iter()
        .find(|r| r.salt == alloy::primitives::keccak256("a-deferred"))
        .ok_or_else(|| eyre::eyre!("deferred agreement not indexed"))?;
    assert_eq!(deferred.status, store::AgreementStatus::Settled);
    assert!(deferred.seller_paid_at.is_some() && deferred.withdrawn.is_some());
    assert!(deferred.seller_paid_at.map(|t| t.block) > deferred.withdrawn.map(|t| t.block));
    assert_eq!(
        deferred.seller_paid_amount + deferred.buyer_paid_amount,
        deferred.max_amount
    );
    assert_eq!(deferred.deferral_reason, None, "cleared once paid");
    drop(conn);

    // Large batches over the final part of the chain give the same rows.
    assert_equals_fresh_index(&chain, db).await?;
    test_db.drop_database().await?;
    Ok(())
}

/// A new indexer on the same database resumes from the checkpoint: nothing is indexed twice.
#[tokio::test]
async fn resumes_from_its_checkpoint_after_a_restart() -> eyre::Result<()> {
    let chain = Chain::start().await?;
    populate(&chain, "first").await?;
    let test_db = TestDatabase::create().await?;
    let db = test_db.db();

    let mut first = indexer(&chain, db, |c| c.confirmations = 0).await?;
    first.catch_up().await?;
    let checkpoint = first.cursor().block_number;
    drop(first);

    let mut second = indexer(&chain, db, |c| c.confirmations = 0).await?;
    assert_eq!(
        second.cursor().block_number,
        checkpoint,
        "resumed at the checkpoint"
    );
    assert!(matches!(second.step().await?, Step::AtHead { .. }));
    populate(&chain, "second").await?;
    second.catch_up().await?;
    assert_eq!(assert_matches_chain(&chain, db).await?, 10);

    // A different contract set in the same database is refused.
    let mut other = chain.deployment.clone();
    other.escrow = Address::repeat_byte(0x11);
    let d = &other;
    let config = pactum_indexer::Config::new(d.chain_id, d.escrow, d.fee_collector, d.start_block);
    let err = pactum_indexer::Indexer::new(
        config,
        db.clone(),
        chain.provider.clone(),
        Default::default(),
    )
    .await
    .err()
    .ok_or_else(|| eyre::eyre!("another contract set must be refused"))?;
    assert!(err.to_string().contains("other contracts"), "{err}");
    test_db.drop_database().await?;
    Ok(())
}
