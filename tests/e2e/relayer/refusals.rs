//! Every refusal: a clear problem code, no job, and no transaction (the relayer's nonce does not
//! move and no attempt is stored).

use std::time::Duration;

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    providers::Provider,
    transports::http::reqwest::Method,
};
use pactum_bindings::{eip712::InitiateClose, sign};
use pactum_client::{
    Client, SignedAction,
    types::{
        DomainBody, InitiateCloseBody, JobState, OptionsParams, Problem, RefusalCode,
        SettlementAction,
    },
};
use pactum_core::TrustedTokens;
use pactum_devnet::dev_signer;
use pactum_relayer::Settings;

use super::{AMOUNT, Fixture};

/// Submits `body` as `api`'s holder and checks it is refused with `status` and `code`, having
/// sent nothing.
async fn refused(
    f: &Fixture,
    id: B256,
    api: &Client,
    body: impl Into<SignedAction>,
    status: u16,
    code: &str,
) -> eyre::Result<Problem> {
    let (nonce, jobs, attempts) = (
        f.relayer_nonce().await?,
        f.jobs().await?,
        f.attempts().await?,
    );
    let key = format!("{code}-{}", pactum_db::random_id(8));
    let problem = match api.sponsor(id, &body.into(), &key).await {
        Err(pactum_client::Error::Problem(problem)) => *problem,
        other => eyre::bail!("expected {status} {code}, got {other:?}"),
    };
    assert_eq!(
        (problem.status, problem.code.as_str()),
        (status, code),
        "{problem}"
    );
    // Give a worker (if running) time to do anything it wrongly would.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        f.relayer_nonce().await?,
        nonce,
        "a refusal sent a transaction"
    );
    assert_eq!(f.jobs().await?, jobs, "a refusal created a job");
    assert_eq!(
        f.attempts().await?,
        attempts,
        "a refusal signed a transaction"
    );
    Ok(problem)
}

#[tokio::test]
async fn bad_signatures_domains_and_deadlines_cost_nothing() -> eyre::Result<()> {
    let mut f = Fixture::new(|_| {}).await?;
    f.start_worker().await?;
    let (_, id) = f.active_agreement("refusals").await?;
    let sign = f.sign(id);
    let now = f.now().await?;
    let deadline = now + 3_600;

    // Signed by someone else than the named party.
    let mut body = sign.initiate_close(&f.chain.buyer, deadline).await?;
    let stranger = sign.initiate_close(&dev_signer(4), deadline).await?;
    body.signature = stranger.signature;
    refused(&f, id, &f.buyer_api, body, 422, "invalid_signature").await?;

    // Garbage and malleated (high-s) signatures.
    let mut body = sign.initiate_close(&f.chain.buyer, deadline).await?;
    body.signature = "0x1234".into();
    refused(&f, id, &f.buyer_api, body, 422, "invalid_signature").await?;
    let mut body = sign.initiate_close(&f.chain.buyer, deadline).await?;
    let good: Bytes = body.signature.parse()?;
    let n = U256::from_str_radix(
        "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
        16,
    )?;
    let s = U256::from_be_slice(&good[32..64]);
    let mut high = good.to_vec();
    high[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
    high[64] = if good[64] == 27 { 28 } else { 27 };
    body.signature = Bytes::from(high).to_string();
    refused(&f, id, &f.buyer_api, body, 422, "invalid_signature").await?;

    // Signed under another chain's domain: declared, it is `wrong_domain`; undeclared, the
    // signature does not verify under ours.
    let other = pactum_bindings::eip712::escrow_domain(1, f.chain.deployment.escrow);
    let message = InitiateClose {
        agreementId: id,
        party: f.chain.buyer.address(),
        deadline: U256::from(deadline),
    };
    let foreign = sign::sign_typed(&f.chain.buyer, &message, &other).await?;
    let undeclared = InitiateCloseBody {
        party: f.chain.buyer.address().to_string(),
        deadline,
        signature: foreign.to_string(),
        domain: None,
    };
    let body = InitiateCloseBody {
        domain: Some(DomainBody {
            chain_id: Some(1),
            verifying_contract: Some(f.chain.deployment.escrow.to_string()),
            ..DomainBody::default()
        }),
        ..undeclared.clone()
    };
    refused(&f, id, &f.buyer_api, body, 422, "wrong_domain").await?;
    refused(&f, id, &f.buyer_api, undeclared, 422, "invalid_signature").await?;

    // Expired, and expiring too soon to be mined safely.
    let body = sign.initiate_close(&f.chain.buyer, now - 1).await?;
    refused(&f, id, &f.buyer_api, body, 422, "authorization_expired").await?;
    let body = sign.initiate_close(&f.chain.buyer, now + 10).await?;
    refused(&f, id, &f.buyer_api, body, 422, "deadline_too_soon").await?;

    // Not a party.
    let body = sign.initiate_close(&dev_signer(4), deadline).await?;
    refused(&f, id, &f.buyer_api, body, 422, "not_a_party").await?;

    // The seller's own authorization, posted by the buyer's agent: the sponsor pays only for
    // what a party asked through its own agent.
    let body = sign.initiate_close(&f.chain.seller, deadline).await?;
    refused(&f, id, &f.buyer_api, body, 403, "not_signers_agent").await?;
    // And the options say so before anything is signed.
    let params = OptionsParams {
        party: Some(f.chain.seller.address().to_string()),
        ..OptionsParams::of(SettlementAction::InitiateClose)
    };
    let options = f.buyer_api.settlement_action_options(id, &params).await?;
    assert_eq!(options.sponsored.reason, Some(RefusalCode::NotSignersAgent));

    // No Idempotency-Key.
    let body = sign.initiate_close(&f.chain.buyer, deadline).await?;
    let answer = f
        .buyer_api
        .send_raw(
            Method::POST,
            &format!("/usage-agreements/{id}/sponsored-actions/initiate-close"),
            &[],
            Some(serde_json::to_vec(&body)?),
        )
        .await?;
    let problem = answer.problem()?;
    assert_eq!(
        (answer.status.as_u16(), problem.code.as_str()),
        (400, "idempotency_key_required")
    );
    assert_eq!(f.jobs().await?, 0);
    Ok(())
}

#[tokio::test]
async fn wrong_states_replays_and_bad_messages_cost_nothing() -> eyre::Result<()> {
    let mut f = Fixture::new(|_| {}).await?;
    f.start_worker().await?;
    let (_, id) = f.active_agreement("states").await?;
    let sign = f.sign(id);
    let (buyer, seller) = (f.chain.buyer.address(), f.chain.seller.address());
    let deadline = f.now().await? + 3_600;

    // Claims and withdrawals before a close.
    let body = sign.seller_claim(AMOUNT, seller, deadline).await?;
    refused(&f, id, &f.seller_api, body, 409, "close_not_initiated").await?;
    let body = sign.buyer_withdraw(buyer, deadline).await?;
    refused(&f, id, &f.buyer_api, body, 409, "close_not_initiated").await?;

    // Close through the relayer.
    let body = sign.initiate_close(&f.chain.seller, deadline).await?;
    let accepted = f.seller_api.sponsor_initiate_close(id, &body, "c").await?;
    assert_eq!(accepted.status, 202, "{accepted:?}");
    f.wait_for(id, &accepted.body.relay_id, JobState::Confirmed)
        .await?;

    // A replayed close (another signature of the same kind) is already done.
    let body = sign.initiate_close(&f.chain.buyer, deadline + 1).await?;
    refused(&f, id, &f.buyer_api, body, 409, "action_already_taken").await?;
    // The window is open: the buyer must wait, and is told until when.
    let body = sign.buyer_withdraw(buyer, deadline).await?;
    let problem = refused(&f, id, &f.buyer_api, body, 409, "close_window_open").await?;
    assert!(problem.earliest_at > Some(0), "{problem}");

    // Bad claims: a voucher not signed by the buyer, an amount over the maximum, a bad recipient.
    let mut body = sign.seller_claim(AMOUNT, seller, deadline).await?;
    body.voucher_signature = sign
        .seller_claim(AMOUNT + 1, seller, deadline)
        .await?
        .signature;
    refused(&f, id, &f.seller_api, body, 422, "invalid_voucher").await?;
    let body = sign
        .seller_claim(101 * crate::chain::USDC, seller, deadline)
        .await?;
    refused(&f, id, &f.seller_api, body, 422, "invalid_amount").await?;
    let body = sign.seller_claim(AMOUNT, Address::ZERO, deadline).await?;
    refused(&f, id, &f.seller_api, body, 422, "invalid_recipient").await?;
    // The seller's claim signed by the buyer.
    let mut body = sign.seller_claim(AMOUNT, seller, deadline).await?;
    body.signature = sign.buyer_withdraw(seller, deadline).await?.signature;
    refused(&f, id, &f.seller_api, body, 422, "invalid_signature").await?;

    // Too close to the end of the window for the relayer to be sure to make it.
    let closes_at = u64::try_from(
        f.chain
            .escrow()
            .agreementState(id)
            .call()
            .await?
            .closeDeadline,
    )?;
    let now = f.now().await?;
    f.chain.advance_time(closes_at - now - 30).await?;
    let deadline = f.now().await? + 3_600;
    let body = sign.seller_claim(AMOUNT, seller, deadline).await?;
    refused(&f, id, &f.seller_api, body, 409, "close_window_ending").await?;

    // After the window, the seller is too late.
    f.chain.advance_time(3_700).await?;
    let deadline = f.now().await? + 3_600;
    let body = sign.seller_claim(AMOUNT, seller, deadline).await?;
    refused(&f, id, &f.seller_api, body, 409, "close_window_elapsed").await?;
    Ok(())
}

#[tokio::test]
async fn a_competing_action_in_flight_is_refused() -> eyre::Result<()> {
    // No worker: the first job stays queued.
    let f = Fixture::new(|_| {}).await?;
    f.round().await?;
    let (_, id) = f.active_agreement("competing").await?;
    let sign = f.sign(id);
    let deadline = f.now().await? + 3_600;
    let body = sign.initiate_close(&f.chain.buyer, deadline).await?;
    let accepted = f.buyer_api.sponsor_initiate_close(id, &body, "a").await?;
    assert_eq!(accepted.status, 202, "{accepted:?}");
    assert_eq!(accepted.body.status, JobState::Accepted);
    let body = sign.initiate_close(&f.chain.seller, deadline).await?;
    refused(
        &f,
        id,
        &f.seller_api,
        body.clone(),
        409,
        "competing_action_in_flight",
    )
    .await?;

    // The refusal is not stored under its Idempotency-Key: once the buyer's close is mined, the
    // seller's retry with the same key runs again and gets today's answer.
    let post = || {
        f.seller_api
            .sponsor_initiate_close(id, &body, "seller-close")
    };
    let first = post().await.unwrap_err();
    assert_eq!(
        (first.status(), first.code()),
        (Some(409), Some("competing_action_in_flight"))
    );
    f.round().await?;
    f.round().await?;
    let retry = post().await.unwrap_err();
    assert_eq!(
        (retry.status(), retry.code()),
        (Some(409), Some("action_already_taken")),
        "{retry}"
    );
    Ok(())
}

/// An answer that describes the moment is not frozen under its `Idempotency-Key`: an agreement
/// activated on chain but not indexed yet is `404 agreement_not_found`; once the indexer has it,
/// the same request under the same key runs and is accepted (not a replay of the 404).
#[tokio::test]
async fn a_transient_refusal_is_not_stored_under_its_key() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    f.round().await?;
    let c = &f.chain;
    let terms = c
        .agreement(c.buyer.address(), c.seller.address(), "unindexed")
        .await?;
    let (id, _) = pactum_devnet::scenario::activate(
        &c.provider,
        &c.deployment,
        &terms,
        &c.buyer,
        c.relayer.address(),
    )
    .await?;
    let deadline = f.now().await? + 3_600;
    let body = f.sign(id).initiate_close(&c.buyer, deadline).await?;
    let early = f
        .buyer_api
        .sponsor_initiate_close(id, &body, "close-before-indexed")
        .await
        .unwrap_err();
    assert_eq!(
        (early.status(), early.code()),
        (Some(404), Some("agreement_not_found"))
    );
    f.index().await?;
    let accepted = f
        .buyer_api
        .sponsor_initiate_close(id, &body, "close-before-indexed")
        .await?;
    assert_eq!(accepted.status, 202, "{accepted:?}");
    assert!(!accepted.replayed, "the 404 was stored and replayed");
    assert_eq!(f.jobs().await?, 1);
    Ok(())
}

/// One agent draining the sponsor through fresh counterparties is stopped at its own cap, its
/// owner's other agent at the owner's cap, while another owner's agent is still served.
#[tokio::test]
async fn one_caller_is_stopped_at_its_own_cap_while_others_are_served() -> eyre::Result<()> {
    let f = Fixture::new(|s: &mut Settings| {
        s.policy.max_actions_per_principal_per_day = 2;
        s.policy.max_actions_per_owner_per_day = 3;
    })
    .await?;
    f.round().await?;
    let deadline = f.now().await? + 3_600;
    // Each close is on an agreement with a counterparty never seen before.
    let mut ids = Vec::new();
    for n in 0..3u8 {
        let seller = Address::repeat_byte(0x40 + n);
        ids.push(
            f.active_agreement_with(seller, &format!("drain-{n}"))
                .await?
                .1,
        );
    }
    for (n, id) in ids[..2].iter().enumerate() {
        f.buyer_close(*id, deadline, &format!("drain-{n}")).await?;
    }
    let id = ids[2];
    let body = f.sign(id).initiate_close(&f.chain.buyer, deadline).await?;
    let problem = refused(&f, id, &f.buyer_api, body, 429, "quota_exceeded").await?;
    assert!(problem.detail.contains("agent:buyer posted 2"), "{problem}");

    // The same owner's seller agent: one more action fits the owner's cap of three, then no.
    let (_, id) = f.active_agreement("owner-1").await?;
    let body = f.sign(id).initiate_close(&f.chain.seller, deadline).await?;
    let accepted = f
        .seller_api
        .sponsor_initiate_close(id, &body, "owner-1")
        .await?;
    assert_eq!(accepted.status, 202, "{accepted:?}");
    let (_, id) = f.active_agreement("owner-2").await?;
    let body = f.sign(id).initiate_close(&f.chain.seller, deadline).await?;
    let problem = refused(&f, id, &f.seller_api, body, 429, "quota_exceeded").await?;
    assert!(problem.detail.contains("owner acme"), "{problem}");

    // Another owner's agent, on an agreement with the same buyer, is served.
    let other = alloy::signers::local::PrivateKeySigner::random();
    let mut conn = f.db().pool().acquire().await?;
    pactum_db::identity::create_owner(&mut conn, "globex", "Globex", "ops@globex.test").await?;
    f.chain
        .register_agent(f.db(), "globex", "g-seller", &other)
        .await?;
    let (key_id, key, hash) = pactum_api::auth::generate_api_key();
    pactum_db::identity::create_api_key(&mut conn, &key_id, "g-seller", &hash, "test").await?;
    drop(conn);
    let globex = Client::new(f.buyer_api.base().as_str())?.authenticated(&key);
    let (_, id) = f.active_agreement_with(other.address(), "globex").await?;
    let body = f.sign(id).initiate_close(&other, deadline).await?;
    let accepted = globex.sponsor_initiate_close(id, &body, "globex").await?;
    assert_eq!(accepted.status, 202, "{accepted:?}");
    Ok(())
}

#[tokio::test]
async fn the_sponsor_policy_is_enforced() -> eyre::Result<()> {
    // Gas ceiling.
    let f = Fixture::new(|s: &mut Settings| s.policy.max_gas_per_action = 30_000).await?;
    f.round().await?;
    let (_, id) = f.active_agreement("ceiling").await?;
    let body = f
        .sign(id)
        .initiate_close(&f.chain.buyer, f.now().await? + 3_600)
        .await?;
    refused(&f, id, &f.buyer_api, body, 422, "gas_ceiling_exceeded").await?;

    // Per-agreement quota, per party: one action each. The buyer's close does not use up the
    // seller's share; the buyer's second action is refused.
    let mut f = Fixture::new(|s: &mut Settings| s.policy.max_actions_per_agreement = 1).await?;
    f.start_worker().await?;
    let (_, id) = f.active_agreement("quota").await?;
    let sign = f.sign(id);
    let deadline = f.now().await? + 7_200;
    let body = sign.initiate_close(&f.chain.buyer, deadline).await?;
    let accepted = f.buyer_api.sponsor_initiate_close(id, &body, "q").await?;
    assert_eq!(accepted.status, 202, "{accepted:?}");
    f.wait_for(id, &accepted.body.relay_id, JobState::Confirmed)
        .await?;
    let body = sign
        .seller_claim(AMOUNT, f.chain.seller.address(), deadline)
        .await?;
    let accepted = f
        .seller_api
        .sponsor_seller_claim(id, &body, "q-claim")
        .await?;
    assert_eq!(accepted.status, 202, "{accepted:?}");
    f.wait_for(id, &accepted.body.relay_id, JobState::Confirmed)
        .await?;
    f.chain.advance_time(3_700).await?;
    let body = sign
        .buyer_withdraw(f.chain.buyer.address(), deadline)
        .await?;
    refused(&f, id, &f.buyer_api, body, 429, "quota_exceeded").await?;

    // Tokens outside the sponsored list.
    let f =
        Fixture::new(|s: &mut Settings| s.policy.tokens = vec![Address::repeat_byte(0x11)]).await?;
    f.round().await?;
    let (_, id) = f.active_agreement("token").await?;
    let body = f
        .sign(id)
        .initiate_close(&f.chain.buyer, f.now().await? + 3_600)
        .await?;
    refused(&f, id, &f.buyer_api, body, 422, "token_not_sponsored").await?;

    // A token the operator does not vouch for: marked in every view, and not sponsored.
    let f = Fixture::new(|s: &mut Settings| {
        s.policy.trusted_tokens = TrustedTokens::Only(vec![Address::repeat_byte(0x11)]);
    })
    .await?;
    f.round().await?;
    let (_, id) = f.active_agreement("untrusted").await?;
    assert!(!f.buyer_api.escrow_status(id).await?.token_trusted);
    let options = f
        .buyer_api
        .settlement_action_options(id, &OptionsParams::of(SettlementAction::InitiateClose))
        .await?;
    assert!(!options.token_trusted);
    assert!(options.direct.open, "the direct path stays open");
    assert_eq!(options.sponsored.reason, Some(RefusalCode::UntrustedToken));
    let body = f
        .sign(id)
        .initiate_close(&f.chain.buyer, f.now().await? + 3_600)
        .await?;
    refused(&f, id, &f.buyer_api, body, 422, "untrusted_token").await?;

    // Daily gas budget.
    let f = Fixture::new(|s: &mut Settings| s.policy.daily_gas_budget = 20_000).await?;
    f.round().await?;
    let (_, id) = f.active_agreement("budget").await?;
    let body = f
        .sign(id)
        .initiate_close(&f.chain.buyer, f.now().await? + 3_600)
        .await?;
    refused(&f, id, &f.buyer_api, body, 429, "sponsor_budget_exhausted").await?;

    // Minimum signer balance: paused (and said so by the options), resumed after a top-up.
    let min = U256::from(20_000u64) * U256::from(10u64).pow(U256::from(18u64));
    let f = Fixture::new(|s: &mut Settings| s.policy.min_signer_balance = min).await?;
    f.round().await?;
    let (_, id) = f.active_agreement("paused").await?;
    let options = f
        .buyer_api
        .settlement_action_options(id, &OptionsParams::of(SettlementAction::InitiateClose))
        .await?;
    assert!(options.direct.open);
    assert!(!options.sponsored.open);
    assert_eq!(options.sponsored.reason, Some(RefusalCode::SponsorPaused));
    let body = f
        .sign(id)
        .initiate_close(&f.chain.buyer, f.now().await? + 3_600)
        .await?;
    refused(&f, id, &f.buyer_api, body.clone(), 503, "sponsor_paused").await?;
    let _: () = f
        .plain
        .raw_request(
            "anvil_setBalance".into(),
            (f.key.address(), min * U256::from(2u64)),
        )
        .await?;
    f.round().await?;
    let accepted = f
        .buyer_api
        .sponsor_initiate_close(id, &body, "after-top-up")
        .await?;
    assert_eq!(accepted.status, 202, "{accepted:?}");
    Ok(())
}
