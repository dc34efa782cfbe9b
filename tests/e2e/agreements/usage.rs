//! Usage through the API: the buyer's vouchers for cumulative usage, recorded by either party,
//! only growing, never past the agreed quantity, only while the seller can still claim; the
//! highest voucher then is the seller's default claim, and the lifecycle ends with every balance
//! exactly as the vouchers say.

use alloy::{
    network::TransactionBuilder,
    primitives::{B256, U256},
    providers::Provider,
    rpc::types::TransactionRequest,
    sol_types::SolStruct,
};
use pactum_bindings::eip712::Voucher;
use pactum_client::{
    Authorizer,
    types::{EventKind, LifecycleStatus, OptionsParams, RecordUsage, SettlementAction},
};

use super::{problem, proposal, terms_of};
use crate::{chain::USDC, relayer::Fixture};

/// A proposal of the fixture's buyer: its API id.
async fn proposed(f: &Fixture) -> eyre::Result<String> {
    Ok(f.buyer_api
        .propose(&proposal(f), "p")
        .await?
        .body
        .agreement_id)
}

/// Agreement `id` accepted by the fixture's seller: its on-chain terms and on-chain id.
async fn accept(f: &Fixture, id: &str) -> eyre::Result<(pactum_bindings::Agreement, B256)> {
    let accepted = f.seller_api.accept(id, "a").await?.body;
    let onchain: B256 = accepted
        .onchain_agreement_id
        .as_deref()
        .ok_or_else(|| eyre::eyre!("no on-chain id"))?
        .parse()?;
    Ok((terms_of(&accepted)?, onchain))
}

/// The amount the seller's sponsored claim of escrow `onchain` is offered by default.
async fn default_claim(f: &Fixture, onchain: B256) -> eyre::Result<Option<String>> {
    let options = f
        .seller_api
        .settlement_action_options(onchain, &OptionsParams::of(SettlementAction::SellerClaim))
        .await?;
    Ok(options
        .typed_data
        .as_ref()
        .and_then(|t| t["message"]["amount"].as_str().map(str::to_owned)))
}

#[tokio::test]
async fn usage_accrues_with_vouchers_and_the_seller_claims_the_highest() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let c = &f.chain;
    let d = &c.deployment;
    let id = proposed(&f).await?;
    // Not accepted yet: no voucher.
    assert_eq!(
        problem(f.buyer_api.usage_voucher(&id, 1).await)?,
        (409, "invalid_transition".into())
    );
    let (terms, onchain) = accept(&f, &id).await?;
    let buyer = Authorizer::new(&c.buyer, d.chain_id, d.escrow, onchain);
    let record = |n: u64, signature: alloy::primitives::Bytes| RecordUsage {
        cumulative_quantity: n,
        voucher_signature: signature.to_string(),
    };
    // Accepted but not active: usage waits for the escrow.
    let early = buyer.voucher(U256::from(10 * 100_000u64)).await?;
    assert_eq!(
        problem(
            f.seller_api
                .record_usage(&id, &record(10, early), "early")
                .await
        )?,
        (409, "not_claimable".into())
    );

    pactum_devnet::scenario::activate(&c.provider, d, &terms, &c.buyer, c.relayer.address())
        .await?;
    f.index().await?;

    // Three records, each with the buyer's voucher for quantity × 10 cents (100,000 base units).
    for (n, key) in [(10u64, "u10"), (25, "u25"), (40, "u40")] {
        let handed = f.seller_api.usage_voucher(&id, n).await?;
        let amount = U256::from(n * 100_000);
        assert_eq!(handed.cumulative_amount, amount.to_string());
        // The buyer signs only the voucher it means: its own message hashes to the digest.
        let ours = Voucher {
            agreementId: onchain,
            cumulativeAmount: amount,
        }
        .eip712_signing_hash(&f.domain());
        assert_eq!(handed.voucher.digest, ours.to_string());
        let signature = buyer.voucher(amount).await?;
        let view = f
            .seller_api
            .record_usage(&id, &record(n, signature), key)
            .await?
            .body;
        assert_eq!(view.usage.cumulative_quantity, n);
        assert_eq!(view.usage.cumulative_amount, amount.to_string());
    }
    let forty = buyer.voucher(U256::from(4_000_000u64)).await?;
    // The same usage again (from the buyer this time): answered as it is, nothing recorded.
    let again = f
        .buyer_api
        .record_usage(&id, &record(40, forty.clone()), "again")
        .await?
        .body;
    assert_eq!(again.usage.cumulative_quantity, 40);
    let recorded = |v: &pactum_client::types::UsageAgreementView| {
        v.history
            .iter()
            .filter(|e| e.kind == EventKind::UsageRecorded)
            .count()
    };
    assert_eq!(recorded(&again), 3);
    // Going back, past the agreed quantity, a voucher not the buyer's, someone else.
    let thirty = buyer.voucher(U256::from(3_000_000u64)).await?;
    assert_eq!(
        problem(
            f.seller_api
                .record_usage(&id, &record(30, thirty), "back")
                .await
        )?,
        (409, "usage_not_increasing".into())
    );
    let too_many = buyer.voucher(U256::from(10_100_000u64)).await?;
    assert_eq!(
        problem(
            f.seller_api
                .record_usage(&id, &record(101, too_many), "over")
                .await
        )?,
        (422, "invalid_quantity".into())
    );
    let sellers = Authorizer::new(&c.seller, d.chain_id, d.escrow, onchain)
        .voucher(U256::from(5_000_000u64))
        .await?;
    assert_eq!(
        problem(
            f.seller_api
                .record_usage(&id, &record(50, sellers), "forged")
                .await
        )?,
        (422, "invalid_voucher".into())
    );
    let stranger = f
        .other_owner(
            "globex",
            "globex-agent",
            &alloy::signers::local::PrivateKeySigner::random(),
        )
        .await?;
    assert_eq!(
        problem(
            stranger
                .record_usage(&id, &record(40, forty), "stranger")
                .await
        )?,
        (404, "agreement_not_found".into())
    );

    // The seller closes, then claims with the instructions' default: the highest voucher.
    let before = (
        c.balance(c.seller.address()).await?,
        c.balance(c.buyer.address()).await?,
    );
    pactum_devnet::confirm(
        c.escrow()
            .initiateClose(terms.clone())
            .from(c.seller.address()),
    )
    .await?;
    f.index().await?;
    // The seller's sponsored claim defaults to the highest recorded voucher too.
    assert_eq!(
        default_claim(&f, onchain).await?.as_deref(),
        Some("4000000")
    );
    let call = f
        .seller_api
        .send_raw(
            alloy::transports::http::reqwest::Method::GET,
            &format!("usage-agreements/{id}/claim-instructions"),
            &[],
            None,
        )
        .await?;
    assert_eq!(call.status.as_u16(), 200, "{}", call.text());
    let call: pactum_client::types::DirectCall = call.json()?;
    let tx = TransactionRequest::default()
        .from(c.seller.address())
        .with_to(call.to.parse()?)
        .with_input(call.data.parse::<alloy::primitives::Bytes>()?);
    let receipt = c.provider.send_transaction(tx).await?.get_receipt().await?;
    assert!(receipt.status(), "the claim reverted");
    pactum_devnet::confirm(
        c.escrow()
            .buyerWithdraw(terms.clone(), c.buyer.address())
            .from(c.buyer.address()),
    )
    .await?;
    f.index().await?;

    // Everything as the vouchers say: $4 to the seller, the remaining $6 back to the buyer.
    assert_eq!(
        c.balance(c.seller.address()).await? - before.0,
        U256::from(4 * USDC)
    );
    assert_eq!(
        c.balance(c.buyer.address()).await? - before.1,
        U256::from(6 * USDC)
    );
    assert_eq!(c.balance(d.escrow).await?, U256::ZERO);
    let done = f.buyer_api.usage_agreement(&id).await?;
    assert_eq!(done.status, LifecycleStatus::Settled);
    super::assert_open_counts(&f).await?;
    let kinds: Vec<EventKind> = done.history.iter().map(|e| e.kind).collect();
    for kind in [
        EventKind::Activated,
        EventKind::CloseInitiated,
        EventKind::SellerClaimed,
        EventKind::BuyerWithdrawn,
        EventKind::Settled,
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    assert_eq!(
        done.history.last().map(|e| e.status),
        Some(LifecycleStatus::Settled)
    );
    // Nothing can be claimed any more.
    let late = buyer.voucher(U256::from(5_000_000u64)).await?;
    assert_eq!(
        problem(
            f.seller_api
                .record_usage(&id, &record(50, late), "late")
                .await
        )?,
        (409, "not_claimable".into())
    );
    Ok(())
}

#[tokio::test]
async fn concurrent_records_keep_usage_growing_and_record_each_step_once() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    let c = &f.chain;
    let d = &c.deployment;
    let id = proposed(&f).await?;
    let (terms, onchain) = accept(&f, &id).await?;
    pactum_devnet::scenario::activate(&c.provider, d, &terms, &c.buyer, c.relayer.address())
        .await?;
    f.index().await?;

    // Sixteen records at once from both parties, several of them equal, in no particular order.
    let buyer = Authorizer::new(&c.buyer, d.chain_id, d.escrow, onchain);
    let quantities = [
        30u64, 5, 20, 30, 10, 25, 5, 15, 20, 35, 10, 35, 25, 15, 30, 20,
    ];
    let mut records = tokio::task::JoinSet::new();
    for (n, quantity) in quantities.into_iter().enumerate() {
        let signature = buyer.voucher(U256::from(quantity * 100_000)).await?;
        let api = if n % 2 == 0 {
            f.seller_api.clone()
        } else {
            f.buyer_api.clone()
        };
        let (id, key) = (id.clone(), format!("race-{n}"));
        records.spawn(async move {
            let body = RecordUsage {
                cumulative_quantity: quantity,
                voucher_signature: signature.to_string(),
            };
            (quantity, api.record_usage(&id, &body, &key).await)
        });
    }
    while let Some(answer) = records.join_next().await {
        let (quantity, answer) = answer?;
        match answer {
            // Recorded, or repeated: what it shows is at least this record.
            Ok(written) => assert!(written.body.usage.cumulative_quantity >= quantity),
            // Refused only because a higher usage was already recorded.
            Err(err) => assert_eq!(
                problem::<()>(Err(err))?,
                (409, "usage_not_increasing".into()),
                "record of {quantity}"
            ),
        }
    }

    // The highest usage won, with its voucher, and the history climbs strictly, each step once.
    let view = f.seller_api.usage_agreement(&id).await?;
    assert_eq!(view.usage.cumulative_quantity, 35);
    assert_eq!(view.usage.cumulative_amount, "3500000");
    let steps: Vec<u64> = view
        .history
        .iter()
        .filter(|e| e.kind == EventKind::UsageRecorded)
        .map(|e| e.detail["cumulative_quantity"].as_u64().unwrap_or_default())
        .collect();
    assert!(!steps.is_empty());
    assert!(
        steps.windows(2).all(|w| w[0] < w[1]),
        "usage went back or repeated: {steps:?}"
    );
    assert_eq!(steps.last(), Some(&35));
    assert_eq!(
        default_claim(&f, onchain).await?.as_deref(),
        Some("3500000")
    );
    Ok(())
}
