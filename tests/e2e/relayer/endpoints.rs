//! The happy paths: a whole settlement through the sponsored endpoints, the options endpoint's
//! typed data, the direct path's calldata, and idempotent resubmission.

use alloy::{
    primitives::{Address, Bytes, U256},
    providers::Provider,
    rpc::types::TransactionRequest,
    transports::http::reqwest::StatusCode,
};
use pactum_bindings::eip712::{BuyerWithdraw, InitiateClose, SellerClaim};
use pactum_core::AgreementStatus;

use super::{AMOUNT, Fixture, Sign, digest};
use crate::chain::USDC;

#[tokio::test]
async fn a_settlement_runs_end_to_end_through_the_sponsored_endpoints() -> eyre::Result<()> {
    let mut f = Fixture::new(|_| {}).await?;
    f.start_worker().await?;
    let (_, id) = f.active_agreement("sponsored").await?;
    let sign = Sign { f: &f, id };
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

    // The options name the paths and give the exact typed data to sign.
    let options = format!(
        "/usage-agreements/{id}/settlement-action-options?action=initiate_close&deadline={deadline}"
    );
    let (code, body) = f.request("GET", &options, &f.buyer_key, None, None).await?;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["possible_now"], true);
    assert_eq!(body["direct"]["open"], true);
    assert_eq!(body["sponsored"]["open"], true, "{body}");
    assert_eq!(body["signer"], buyer.to_string());
    assert_eq!(body["typed_data"]["primaryType"], "InitiateClose");
    assert_eq!(
        body["typed_data"]["domain"]["verifyingContract"],
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
    assert_eq!(body["digest"], expected.to_string());

    // Close, signed by the buyer, submitted and paid for by the relayer.
    let close = sign.initiate_close(&f.chain.buyer, deadline).await?;
    let path = format!("/usage-agreements/{id}/sponsored-actions/initiate-close");
    let (code, accepted) = f
        .request(
            "POST",
            &path,
            &f.buyer_key,
            Some("close-1"),
            Some(close.clone()),
        )
        .await?;
    assert_eq!(code, StatusCode::ACCEPTED, "{accepted}");
    let relay_id = accepted["relay_id"].as_str().unwrap_or_default().to_owned();
    assert!(relay_id.starts_with("rel_"));
    let done = f.wait_for(id, &relay_id, "confirmed").await?;
    assert_eq!(done["attempts"].as_array().map(Vec::len), Some(1));
    let tx_hash = done["tx_hash"].as_str().unwrap_or_default().parse()?;
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
    // same job.
    let (code, again) = f
        .request(
            "POST",
            &path,
            &f.buyer_key,
            Some("close-1"),
            Some(close.clone()),
        )
        .await?;
    assert_eq!(code, StatusCode::ACCEPTED);
    assert_eq!(again["relay_id"], relay_id.as_str());
    let (code, again) = f
        .request("POST", &path, &f.seller_key, Some("close-2"), Some(close))
        .await?;
    assert_eq!(code, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["relay_id"], relay_id.as_str());
    assert_eq!(again["status"], "confirmed");

    // While the window is open the buyer cannot withdraw; the options say until when.
    let (_, body) = f
        .request(
            "GET",
            &format!("/usage-agreements/{id}/settlement-action-options?action=buyer_withdraw"),
            &f.buyer_key,
            None,
            None,
        )
        .await?;
    assert_eq!(body["possible_now"], false);
    assert_eq!(body["reason"], "close_window_open");
    assert_eq!(body["earliest_at"], u64::try_from(state.closeDeadline)?);
    assert_eq!(body["sponsored"]["open"], false);

    // The seller claims through the relayer.
    let (_, body) = f
        .request(
            "GET",
            &format!(
                "/usage-agreements/{id}/settlement-action-options?action=seller_claim&amount={AMOUNT}&deadline={deadline}"
            ),
            &f.seller_key,
            None,
            None,
        )
        .await?;
    assert_eq!(body["possible_now"], true, "{body}");
    let claim_digest = digest(
        &f,
        &SellerClaim {
            agreementId: id,
            amount: U256::from(AMOUNT),
            recipient: seller,
            deadline: U256::from(deadline),
        },
    );
    assert_eq!(body["digest"], claim_digest.to_string());
    let claim = sign.seller_claim(AMOUNT, seller, deadline).await?;
    let (code, accepted) = f
        .request(
            "POST",
            &format!("/usage-agreements/{id}/sponsored-actions/seller-claim"),
            &f.seller_key,
            Some("claim-1"),
            Some(claim),
        )
        .await?;
    assert_eq!(code, StatusCode::ACCEPTED, "{accepted}");
    let claim_id = accepted["relay_id"].as_str().unwrap_or_default().to_owned();
    f.wait_for(id, &claim_id, "confirmed").await?;

    // Then the buyer withdraws the rest, signing for `BuyerWithdraw`.
    let (_, body) = f
        .request(
            "GET",
            &format!("/usage-agreements/{id}/settlement-action-options?action=buyer_withdraw&deadline={deadline}"),
            &f.buyer_key,
            None,
            None,
        )
        .await?;
    assert_eq!(body["possible_now"], true, "{body}");
    let withdraw_digest = digest(
        &f,
        &BuyerWithdraw {
            agreementId: id,
            recipient: buyer,
            deadline: U256::from(deadline),
        },
    );
    assert_eq!(body["digest"], withdraw_digest.to_string());
    let withdraw = sign.buyer_withdraw(buyer, deadline).await?;
    let (code, accepted) = f
        .request(
            "POST",
            &format!("/usage-agreements/{id}/sponsored-actions/buyer-withdraw"),
            &f.buyer_key,
            Some("withdraw-1"),
            Some(withdraw),
        )
        .await?;
    assert_eq!(code, StatusCode::ACCEPTED, "{accepted}");
    let withdraw_id = accepted["relay_id"].as_str().unwrap_or_default().to_owned();
    let done = f.wait_for(id, &withdraw_id, "confirmed").await?;
    assert!(done["gas_used"].as_u64() > Some(21_000));

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
    let sign = Sign { f: &f, id };
    let (buyer, seller) = (f.chain.buyer.address(), f.chain.seller.address());

    let send = |from: Address, call: serde_json::Value| {
        let provider = f.chain.provider.clone();
        async move {
            let to: Address = call["to"].as_str().unwrap_or_default().parse()?;
            let data: Bytes = call["data"].as_str().unwrap_or_default().parse()?;
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

    let (code, call) = f
        .request(
            "GET",
            &format!("/usage-agreements/{id}/initiate-close-calldata"),
            &f.seller_key,
            None,
            None,
        )
        .await?;
    assert_eq!(code, StatusCode::OK, "{call}");
    assert_eq!(call["to"], f.chain.deployment.escrow.to_string());
    assert_eq!(call["chain_id"], f.chain.deployment.chain_id);
    send(seller, call).await?;

    // The seller's claim needs the voucher; without one the endpoint says what is missing.
    let claim_path = format!("/usage-agreements/{id}/claim-instructions");
    let (code, problem) = f
        .request("GET", &claim_path, &f.seller_key, None, None)
        .await?;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(problem["code"], "missing_parameter");
    let voucher = sign.voucher(AMOUNT).await?;
    let (code, call) = f
        .request(
            "GET",
            &format!("{claim_path}?amount={AMOUNT}&voucher_signature={voucher}"),
            &f.seller_key,
            None,
            None,
        )
        .await?;
    assert_eq!(code, StatusCode::OK, "{call}");
    assert_eq!(call["from"][0], seller.to_string());
    send(seller, call).await?;

    // The buyer's instructions default to its withdrawal.
    let (code, call) = f
        .request("GET", &claim_path, &f.buyer_key, None, None)
        .await?;
    assert_eq!(code, StatusCode::OK, "{call}");
    assert_eq!(call["function"], "buyerWithdraw(Agreement,address)");
    send(buyer, call).await?;

    let state = f.chain.escrow().agreementState(id).call().await?;
    assert_eq!(
        AgreementStatus::try_from(state.status)?,
        AgreementStatus::Settled
    );
    assert_eq!(f.relayer_nonce().await?, 0, "the relayer sent nothing");
    Ok(())
}
