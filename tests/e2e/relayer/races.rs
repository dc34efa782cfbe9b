//! Concurrency: the same authorization posted many times at once, two parties' actions racing
//! on one agreement, and a sponsored action beaten on chain by a direct one.

use alloy::{primitives::U256, transports::http::reqwest::StatusCode};
use pactum_bindings::LocalSanctionsOracle;
use pactum_core::AgreementStatus;
use pactum_relayer::Settings;

use super::{AMOUNT, Fixture, Sign};

#[tokio::test]
async fn the_same_authorization_posted_concurrently_is_one_job() -> eyre::Result<()> {
    let mut f = Fixture::new(|_| {}).await?;
    f.start_worker().await?;
    let (_, id) = f.active_agreement("dup").await?;
    let deadline = f.now().await? + 3_600;
    let body = Sign { f: &f, id }
        .initiate_close(&f.chain.buyer, deadline)
        .await?;
    let path = format!("/usage-agreements/{id}/sponsored-actions/initiate-close");
    // Different Idempotency-Keys, all in flight at once: only the authorization is the same.
    let mut posts = tokio::task::JoinSet::new();
    for i in 0..20 {
        let request = f
            .http
            .post(format!("{}{path}", f.base))
            .header("authorization", format!("Bearer {}", f.buyer_key))
            .header("idempotency-key", format!("dup-{i}"))
            .header("content-type", "application/json")
            .body(body.to_string());
        posts.spawn(async move {
            let response = request.send().await?;
            let status = response.status();
            let value: serde_json::Value = serde_json::from_slice(&response.bytes().await?)?;
            Ok::<_, eyre::Report>((status, value))
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = posts.join_next().await {
        answers.push(answer??);
    }
    let first = answers[0].1["relay_id"].clone();
    for (code, body) in &answers {
        assert_eq!(*code, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["relay_id"], first);
    }
    f.wait_for(id, first.as_str().unwrap_or_default(), "confirmed")
        .await?;
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
    let sign = Sign { f: &f, id };
    let (buyer, seller) = (f.chain.buyer.address(), f.chain.seller.address());
    let deadline = f.now().await? + 3_600;
    let oracle = LocalSanctionsOracle::new(f.chain.deployment.sanctions_oracle, &f.chain.provider);

    // Close, then a claim whose payout is deferred (its recipient is sanctioned): the seller's
    // retry and the buyer's withdrawal are then both possible at once.
    let body = sign.initiate_close(&f.chain.seller, deadline).await?;
    let (_, a) = f
        .request(
            "POST",
            &format!("/usage-agreements/{id}/sponsored-actions/initiate-close"),
            &f.seller_key,
            Some("c"),
            Some(body),
        )
        .await?;
    f.wait_for(id, a["relay_id"].as_str().unwrap_or_default(), "confirmed")
        .await?;
    let flagged = alloy::primitives::Address::repeat_byte(0x5a);
    pactum_devnet::confirm(
        oracle
            .addToSanctionsList(vec![flagged])
            .from(f.chain.deployer.address()),
    )
    .await?;
    let body = sign.seller_claim(AMOUNT, flagged, deadline).await?;
    let (_, a) = f
        .request(
            "POST",
            &format!("/usage-agreements/{id}/sponsored-actions/seller-claim"),
            &f.seller_key,
            Some("claim"),
            Some(body),
        )
        .await?;
    f.wait_for(id, a["relay_id"].as_str().unwrap_or_default(), "confirmed")
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
    let claim_path = format!("/usage-agreements/{id}/sponsored-actions/seller-claim");
    let withdraw_path = format!("/usage-agreements/{id}/sponsored-actions/buyer-withdraw");
    let (a, b) = tokio::join!(
        f.request(
            "POST",
            &claim_path,
            &f.seller_key,
            Some("retry"),
            Some(retry.clone())
        ),
        f.request(
            "POST",
            &withdraw_path,
            &f.buyer_key,
            Some("withdraw"),
            Some(withdraw.clone())
        ),
    );
    let (a, b) = (a?, b?);
    let accepted: Vec<_> = [&a, &b]
        .into_iter()
        .filter(|(c, _)| *c == StatusCode::ACCEPTED)
        .collect();
    let refused: Vec<_> = [&a, &b]
        .into_iter()
        .filter(|(c, _)| *c != StatusCode::ACCEPTED)
        .collect();
    assert_eq!(accepted.len(), 1, "{a:?} {b:?}");
    assert_eq!(refused[0].0, StatusCode::CONFLICT);
    assert_eq!(refused[0].1["code"], "competing_action_in_flight");
    f.wait_for(
        id,
        accepted[0].1["relay_id"].as_str().unwrap_or_default(),
        "confirmed",
    )
    .await?;

    // The loser goes through once the winner is done (a fresh Idempotency-Key: the refusal was
    // recorded under the first).
    let loser_is_claim = a.0 != StatusCode::ACCEPTED;
    let (path, token, body) = if loser_is_claim {
        (&claim_path, &f.seller_key, retry)
    } else {
        (&withdraw_path, &f.buyer_key, withdraw)
    };
    let (code, again) = f
        .request("POST", path, token, Some("second-try"), Some(body))
        .await?;
    assert_eq!(code, StatusCode::ACCEPTED, "{again}");
    f.wait_for(
        id,
        again["relay_id"].as_str().unwrap_or_default(),
        "confirmed",
    )
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
    let failed = f.wait_for(id, &relay_id, "failed").await?;
    assert_eq!(failed["failure"]["code"], "preempted", "{failed}");

    // No strike: the buyer is still sponsored.
    f.buyer_close(other, deadline, "next").await?;
    Ok(())
}
