//! Concurrency: the same authorization posted many times at once, two parties' actions racing
//! on one agreement, and a sponsored action beaten on chain by a direct one.

use alloy::primitives::U256;
use pactum_bindings::LocalSanctionsOracle;
use pactum_client::{
    SignedAction,
    types::{AgreementStatus, JobFailure, JobState, RevertKind},
};
use pactum_relayer::Settings;

use super::{AMOUNT, Fixture};

#[tokio::test]
async fn the_same_authorization_posted_concurrently_is_one_job() -> eyre::Result<()> {
    let mut f = Fixture::new(|_| {}).await?;
    f.start_worker().await?;
    let (_, id) = f.active_agreement("dup").await?;
    let deadline = f.now().await? + 3_600;
    let body = f.sign(id).initiate_close(&f.chain.buyer, deadline).await?;
    // Different Idempotency-Keys, all in flight at once: only the authorization is the same.
    let mut posts = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (api, body) = (f.buyer_api.clone(), body.clone());
        posts.spawn(async move {
            api.sponsor_initiate_close(id, &body, &format!("dup-{i}"))
                .await
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = posts.join_next().await {
        answers.push(answer??);
    }
    let first = answers[0].body.relay_id.clone();
    for answer in &answers {
        assert_eq!(answer.status, 202, "{answer:?}");
        assert_eq!(answer.body.relay_id, first);
    }
    f.wait_for(id, &first, JobState::Confirmed).await?;
    assert_eq!(f.jobs().await?, 1);
    assert_eq!(f.attempts().await?, 1);
    assert_eq!(f.relayer_nonce().await?, 1);
    Ok(())
}

#[tokio::test]
async fn a_seller_claim_and_a_buyer_withdraw_racing_take_turns() -> eyre::Result<()> {
    let mut f = Fixture::new(|_| {}).await?;
    f.start_worker().await?;
    let (_, id) = f.active_agreement("race").await?;
    let sign = f.sign(id);
    let (buyer, seller) = (f.chain.buyer.address(), f.chain.seller.address());
    let deadline = f.now().await? + 3_600;
    let oracle = LocalSanctionsOracle::new(f.chain.deployment.sanctions_oracle, &f.chain.provider);

    // Close, then a claim whose payout is deferred (its recipient is sanctioned): the seller's
    // retry and the buyer's withdrawal are then both possible at once.
    let body = sign.initiate_close(&f.chain.seller, deadline).await?;
    let a = f.seller_api.sponsor_initiate_close(id, &body, "c").await?;
    f.wait_for(id, &a.body.relay_id, JobState::Confirmed)
        .await?;
    let flagged = alloy::primitives::Address::repeat_byte(0x5a);
    pactum_devnet::confirm(
        oracle
            .addToSanctionsList(vec![flagged])
            .from(f.chain.deployer.address()),
    )
    .await?;
    let body = sign.seller_claim(AMOUNT, flagged, deadline).await?;
    let a = f
        .seller_api
        .sponsor_seller_claim(id, &body, "claim")
        .await?;
    f.wait_for(id, &a.body.relay_id, JobState::Confirmed)
        .await?;
    let state = f.chain.escrow().agreementState(id).call().await?;
    assert_eq!(
        AgreementStatus::try_from(state.status)?,
        AgreementStatus::SellerClaimed
    );
    assert!(!state.sellerPaid, "payout deferred");

    // Race: the seller's retry (to itself) and the buyer's withdrawal, posted together.
    let retry = sign.seller_claim(AMOUNT, seller, deadline + 1).await?;
    let withdraw = sign.buyer_withdraw(buyer, deadline).await?;
    let (claimed, withdrawn) = tokio::join!(
        f.seller_api.sponsor_seller_claim(id, &retry, "retry"),
        f.buyer_api
            .sponsor_buyer_withdraw(id, &withdraw, "withdraw"),
    );
    let (winner, loser, (api, body)) = match (claimed, withdrawn) {
        (Ok(winner), Err(loser)) => (winner, loser, (&f.buyer_api, SignedAction::from(withdraw))),
        (Err(loser), Ok(winner)) => (winner, loser, (&f.seller_api, SignedAction::from(retry))),
        other => eyre::bail!("expected one accepted and one refused: {other:?}"),
    };
    assert_eq!(winner.status, 202, "{winner:?}");
    assert_eq!(
        (loser.status(), loser.code()),
        (Some(409), Some("competing_action_in_flight")),
        "{loser}"
    );
    f.wait_for(id, &winner.body.relay_id, JobState::Confirmed)
        .await?;

    // The loser goes through once the winner is done (a fresh Idempotency-Key: the refusal was
    // recorded under the first).
    let again = api.sponsor(id, &body, "second-try").await?;
    assert_eq!(again.status, 202, "{again:?}");
    f.wait_for(id, &again.body.relay_id, JobState::Confirmed)
        .await?;

    let state = f.chain.escrow().agreementState(id).call().await?;
    assert_eq!(
        AgreementStatus::try_from(state.status)?,
        AgreementStatus::Settled
    );
    assert_eq!(f.chain.balance(flagged).await?, U256::ZERO);
    assert_eq!(
        f.chain.balance(f.chain.deployment.escrow).await?,
        U256::ZERO,
        "nothing left in escrow"
    );
    Ok(())
}

/// A sponsored close beaten on chain by the same party's direct close (a higher tip, the same
/// block) reverts; that is `preempted`, not a strike against the party: with a limit of one
/// revert, the party is still sponsored afterwards.
#[tokio::test]
async fn a_sponsored_action_beaten_by_a_direct_one_is_preempted_not_a_strike() -> eyre::Result<()> {
    let f = Fixture::new(|s: &mut Settings| s.policy.max_reverts_per_party_per_day = 1).await?;
    f.round().await?;
    let (terms, id) = f.active_agreement("raced").await?;
    let (_, other) = f.active_agreement("next").await?;
    let deadline = f.now().await? + 3_600;
    let relay_id = f.buyer_close(id, deadline, "raced").await?;

    // The relayer's transaction waits in the pool; the buyer's own, tipping more, goes first.
    let direct = f
        .chain
        .escrow()
        .initiateClose(terms)
        .from(f.chain.buyer.address())
        .into_transaction_request();
    f.ahead_of_the_relayer(direct).await?;
    let failed = f.wait_for(id, &relay_id, JobState::Failed).await?;
    assert_eq!(
        failed.failure.as_ref().map(|f| f.code),
        Some(JobFailure::Reverted(RevertKind::Preempted)),
        "{failed:?}"
    );

    // No strike: the buyer is still sponsored.
    f.buyer_close(other, deadline, "next").await?;
    Ok(())
}
