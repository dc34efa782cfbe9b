//! The happy paths: a whole settlement through the sponsored endpoints, the options endpoint's
//! typed data, the direct path's calldata, and idempotent resubmission.

use alloy::{
    primitives::{Address, Bytes, U256},
    providers::Provider,
    rpc::types::TransactionRequest,
};
use pactum_bindings::eip712::{BuyerWithdraw, InitiateClose, SellerClaim};
use pactum_client::types::{
    AgreementStatus, ClaimParams, DirectCall, JobState, OptionsParams, RefusalCode,
    SettlementAction,
};

use super::{AMOUNT, Fixture, digest};
use crate::chain::USDC;

#[tokio::test]
async fn a_settlement_runs_end_to_end_through_the_sponsored_endpoints() -> eyre::Result<()> {
    let mut f = Fixture::new(|_| {}).await?;
    f.start_worker().await?;
    let (_, id) = f.active_agreement("sponsored").await?;
    let sign = f.sign(id);
    let (buyer, seller) = (f.chain.buyer.address(), f.chain.seller.address());
    let eth_before = (
        f.plain.get_balance(buyer).await?,
        f.plain.get_balance(seller).await?,
    );
    let usdc_before = (
        f.chain.balance(buyer).await?,
        f.chain.balance(seller).await?,
    );
    let deadline = f.now().await? + 3_600;
    let options = |action, amount: Option<u64>, deadline: Option<u64>| OptionsParams {
        amount: amount.map(|a| a.to_string()),
        deadline,
        ..OptionsParams::of(action)
    };

    // The options name the paths and give the exact typed data to sign.
    let close_options = f
        .buyer_api
        .settlement_action_options(
            id,
            &options(SettlementAction::InitiateClose, None, Some(deadline)),
        )
        .await?;
    assert!(close_options.possible_now);
    assert!(close_options.direct.open);
    assert!(close_options.sponsored.open, "{close_options:?}");
    assert_eq!(close_options.signer, buyer.to_string());
    let typed_data = close_options
        .typed_data
        .clone()
        .ok_or_else(|| eyre::eyre!("no typed data: {close_options:?}"))?;
    assert_eq!(typed_data["primaryType"], "InitiateClose");
    assert_eq!(
        typed_data["domain"]["verifyingContract"],
        f.chain.deployment.escrow.to_string()
    );
    let expected = digest(
        &f,
        &InitiateClose {
            agreementId: id,
            party: buyer,
            deadline: U256::from(deadline),
        },
    );
    assert_eq!(close_options.digest(), Some(expected));

    // Close, signed by the buyer (checked against the handed-out digest), submitted and paid for
    // by the relayer.
    let close = sign
        .by(&f.chain.buyer)
        .initiate_close(&close_options)
        .await?;
    let accepted = f
        .buyer_api
        .sponsor_initiate_close(id, &close, "close-1")
        .await?;
    assert_eq!(accepted.status, 202, "{accepted:?}");
    assert!(!accepted.replayed);
    let relay_id = accepted.body.relay_id;
    assert!(relay_id.starts_with("rel_"));
    let done = f.wait_for(id, &relay_id, JobState::Confirmed).await?;
    assert_eq!(done.attempts.len(), 1);
    let tx_hash = done
        .tx_hash
        .as_deref()
        .ok_or_else(|| eyre::eyre!("confirmed without a hash: {done:?}"))?
        .parse()?;
    let tx = f.plain.get_transaction_by_hash(tx_hash).await?;
    assert_eq!(
        tx.map(|t| t.inner.signer()),
        Some(f.key.address()),
        "the relayer's key sent it"
    );
    let state = f.chain.escrow().agreementState(id).call().await?;
    assert_eq!(
        AgreementStatus::try_from(state.status)?,
        AgreementStatus::Closing
    );

    // The same request again (same key) replays; the same authorization under another key is the
    // same job. (Only the signer's own agent may post it: the counterparty gets 403.)
    let again = f
        .buyer_api
        .sponsor_initiate_close(id, &close, "close-1")
        .await?;
    assert_eq!(again.status, 202);
    assert!(again.replayed);
    assert_eq!(again.body.relay_id, relay_id);
    let again = f
        .buyer_api
        .sponsor_initiate_close(id, &close, "close-2")
        .await?;
    assert_eq!(again.status, 202, "{again:?}");
    assert!(!again.replayed);
    assert_eq!(again.body.relay_id, relay_id);
    assert_eq!(again.body.status, JobState::Confirmed);
    let foreign = f
        .seller_api
        .sponsor_initiate_close(id, &close, "close-3")
        .await
        .unwrap_err();
    assert_eq!(
        (foreign.status(), foreign.code()),
        (Some(403), Some("not_signers_agent"))
    );

    // While the window is open the buyer cannot withdraw; the options say until when.
    let body = f
        .buyer_api
        .settlement_action_options(id, &OptionsParams::of(SettlementAction::BuyerWithdraw))
        .await?;
    assert!(!body.possible_now);
    assert_eq!(body.reason, Some(RefusalCode::CloseWindowOpen));
    assert_eq!(body.earliest_at, Some(u64::try_from(state.closeDeadline)?));
    assert!(!body.sponsored.open);

    // The seller claims through the relayer.
    let claim_options = f
        .seller_api
        .settlement_action_options(
            id,
            &options(SettlementAction::SellerClaim, Some(AMOUNT), Some(deadline)),
        )
        .await?;
    assert!(claim_options.possible_now, "{claim_options:?}");
    let claim_digest = digest(
        &f,
        &SellerClaim {
            agreementId: id,
            amount: U256::from(AMOUNT),
            recipient: seller,
            deadline: U256::from(deadline),
        },
    );
    assert_eq!(claim_options.digest(), Some(claim_digest));
    let voucher = sign.voucher(AMOUNT).await?;
    let claim = sign
        .by(&f.chain.seller)
        .seller_claim(&claim_options, U256::from(AMOUNT), &voucher, seller)
        .await?;
    let accepted = f
        .seller_api
        .sponsor_seller_claim(id, &claim, "claim-1")
        .await?;
    assert_eq!(accepted.status, 202, "{accepted:?}");
    f.wait_for(id, &accepted.body.relay_id, JobState::Confirmed)
        .await?;

    // Then the buyer withdraws the rest, signing for `BuyerWithdraw`.
    let withdraw_options = f
        .buyer_api
        .settlement_action_options(
            id,
            &options(SettlementAction::BuyerWithdraw, None, Some(deadline)),
        )
        .await?;
    assert!(withdraw_options.possible_now, "{withdraw_options:?}");
    let withdraw_digest = digest(
        &f,
        &BuyerWithdraw {
            agreementId: id,
            recipient: buyer,
            deadline: U256::from(deadline),
        },
    );
    assert_eq!(withdraw_options.digest(), Some(withdraw_digest));
    let withdraw = sign
        .by(&f.chain.buyer)
        .buyer_withdraw(&withdraw_options, buyer)
        .await?;
    let accepted = f
        .buyer_api
        .sponsor_buyer_withdraw(id, &withdraw, "withdraw-1")
        .await?;
    assert_eq!(accepted.status, 202, "{accepted:?}");
    let done = f
        .wait_for(id, &accepted.body.relay_id, JobState::Confirmed)
        .await?;
    assert!(done.gas_used > Some(21_000));

    let state = f.chain.escrow().agreementState(id).call().await?;
    assert_eq!(
        AgreementStatus::try_from(state.status)?,
        AgreementStatus::Settled
    );
    // The parties paid no gas; their tokens moved as signed.
    assert_eq!(f.plain.get_balance(buyer).await?, eth_before.0);
    assert_eq!(f.plain.get_balance(seller).await?, eth_before.1);
    assert_eq!(
        f.chain.balance(seller).await?,
        usdc_before.1 + U256::from(AMOUNT)
    );
    assert_eq!(
        f.chain.balance(buyer).await?,
        usdc_before.0 + U256::from(100 * USDC - AMOUNT)
    );
    // Three jobs, three transactions, nonces 0..3 with no gap.
    assert_eq!(f.jobs().await?, 3);
    assert_eq!(f.attempts().await?, 3);
    assert_eq!(f.relayer_nonce().await?, 3);
    Ok(())
}

#[tokio::test]
async fn the_direct_path_calldata_is_what_the_parties_send_themselves() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let (_, id) = f.active_agreement("direct").await?;
    let (buyer, seller) = (f.chain.buyer.address(), f.chain.seller.address());

    let send = |from: Address, call: DirectCall| {
        let provider = f.chain.provider.clone();
        async move {
            let to: Address = call.to.parse()?;
            let data: Bytes = call.data.parse()?;
            let request = TransactionRequest::default()
                .from(from)
                .to(to)
                .input(data.into());
            let receipt = provider
                .send_transaction(request)
                .await?
                .get_receipt()
                .await?;
            eyre::ensure!(receipt.status(), "direct call reverted");
            Ok::<_, eyre::Report>(())
        }
    };

    let call = f.seller_api.initiate_close_calldata(id).await?;
    assert_eq!(call.to, f.chain.deployment.escrow.to_string());
    assert_eq!(call.chain_id, f.chain.deployment.chain_id);
    send(seller, call).await?;

    // Only the two claims have instructions; the seller's needs the voucher, and without one the
    // endpoint says what is missing.
    let wrong = f
        .seller_api
        .claim_instructions(
            id,
            &ClaimParams {
                action: Some("initiate_close".into()),
                ..ClaimParams::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        (wrong.status(), wrong.code()),
        (Some(400), Some("invalid_action")),
        "{wrong}"
    );
    let missing = f
        .seller_api
        .claim_instructions(id, &ClaimParams::default())
        .await
        .unwrap_err();
    assert_eq!(
        (missing.status(), missing.code()),
        (Some(400), Some("missing_parameter")),
        "{missing}"
    );
    let voucher = f.sign(id).voucher(AMOUNT).await?;
    let call = f
        .seller_api
        .claim_instructions(
            id,
            &ClaimParams {
                amount: Some(AMOUNT.to_string()),
                voucher_signature: Some(voucher.to_string()),
                ..ClaimParams::default()
            },
        )
        .await?;
    assert_eq!(call.from.first(), Some(&seller.to_string()));
    send(seller, call).await?;

    // The buyer's instructions default to its withdrawal.
    let call = f
        .buyer_api
        .claim_instructions(id, &ClaimParams::default())
        .await?;
    assert_eq!(call.function, "buyerWithdraw(Agreement,address)");
    send(buyer, call).await?;

    let state = f.chain.escrow().agreementState(id).call().await?;
    assert_eq!(
        AgreementStatus::try_from(state.status)?,
        AgreementStatus::Settled
    );
    assert_eq!(f.relayer_nonce().await?, 0, "the relayer sent nothing");
    Ok(())
}
