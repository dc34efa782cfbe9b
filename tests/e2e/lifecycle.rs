//! The whole lifecycle on a real chain: balances, events and state after each path.

use alloy::{primitives::U256, providers::Provider, signers::local::PrivateKeySigner};
use pactum_bindings::{
    AgreementEscrow::{
        AgreementActivated, BuyerWithdrew, CloseInitiated, SellerClaimed, SellerPaid,
    },
    InfraFeeCollector::InfraFeeCollected,
    contracts::agreement_escrow::AgreementEscrow::AgreementEscrowErrors,
};
use pactum_core::AgreementStatus;
use pactum_devnet::scenario::{self, SettlementPath};

use crate::chain::{BUYER_FUNDS, Chain, USDC};

fn usage() -> Vec<U256> {
    vec![
        U256::from(10 * USDC),
        U256::from(25 * USDC),
        U256::from(40 * USDC),
    ]
}

#[tokio::test]
async fn direct_lifecycle_settles_and_emits_every_event() -> eyre::Result<()> {
    let chain = Chain::start().await?;
    let agreement = chain
        .agreement(chain.buyer.address(), chain.seller.address(), "direct")
        .await?;
    let seller_before = chain.balance(chain.seller.address()).await?;

    let outcome = scenario::run(
        &chain.provider,
        &chain.deployment,
        &agreement,
        &chain.buyer,
        &chain.seller,
        SettlementPath::Direct,
        &usage(),
        |_| {},
    )
    .await?;

    let id = outcome.agreement_id;
    assert_eq!(
        id,
        chain.escrow().agreementId(agreement.clone()).call().await?,
        "Rust and contract agree on the id"
    );
    assert_eq!(outcome.seller_paid, U256::from(40 * USDC));
    assert_eq!(outcome.buyer_refund, U256::from(60 * USDC));

    // Balances: the seller got the highest voucher, the buyer everything else but the fee.
    assert_eq!(
        chain.balance(chain.seller.address()).await?,
        seller_before + U256::from(40 * USDC)
    );
    assert_eq!(
        chain.balance(chain.buyer.address()).await?,
        U256::from(BUYER_FUNDS - 40 * USDC - USDC)
    );
    assert_eq!(
        chain.balance(chain.deployment.fee_collector).await?,
        U256::from(USDC)
    );
    assert_eq!(chain.balance(chain.deployment.escrow).await?, U256::ZERO);

    // Every transaction came from the party that owns the step.
    let [activate, close, claim, withdraw] = outcome.receipts.as_slice() else {
        eyre::bail!("expected four transactions, got {}", outcome.receipts.len());
    };
    assert_eq!(activate.from, chain.buyer.address());
    assert_eq!(close.from, chain.buyer.address());
    assert_eq!(claim.from, chain.seller.address());
    assert_eq!(withdraw.from, chain.buyer.address());

    // Events carry what an indexer needs.
    let activated = activate
        .decoded_log::<AgreementActivated>()
        .ok_or_else(|| eyre::eyre!("no AgreementActivated"))?;
    assert_eq!(activated.address, chain.deployment.escrow);
    assert_eq!(activated.agreementId, id);
    assert_eq!(
        (activated.buyer, activated.seller, activated.token),
        (agreement.buyer, agreement.seller, agreement.token)
    );
    assert_eq!(
        (activated.amount, activated.infraFee),
        (agreement.maxAmount, agreement.infraFee)
    );
    assert_eq!(
        (activated.expiry, activated.closeWindow, activated.salt),
        (agreement.expiry, agreement.closeWindow, agreement.salt)
    );
    let fee = activate
        .decoded_log::<InfraFeeCollected>()
        .ok_or_else(|| eyre::eyre!("no InfraFeeCollected"))?;
    assert_eq!(
        (fee.address, fee.agreementId, fee.buyer, fee.amount),
        (
            chain.deployment.fee_collector,
            id,
            agreement.buyer,
            agreement.infraFee
        )
    );

    let closed = close
        .decoded_log::<CloseInitiated>()
        .ok_or_else(|| eyre::eyre!("no CloseInitiated"))?;
    let close_block = chain
        .provider
        .get_block_by_number(
            close
                .block_number
                .ok_or_else(|| eyre::eyre!("a mined log without a block"))?
                .into(),
        )
        .await?
        .ok_or_else(|| eyre::eyre!("close block missing"))?;
    assert_eq!(
        (closed.agreementId, closed.initiator),
        (id, agreement.buyer)
    );
    assert_eq!(
        closed.closeDeadline,
        U256::from(close_block.header.timestamp + 3_600)
    );

    let claimed = claim
        .decoded_log::<SellerClaimed>()
        .ok_or_else(|| eyre::eyre!("no SellerClaimed"))?;
    assert_eq!(
        (claimed.agreementId, claimed.amount, claimed.buyerRemainder),
        (id, U256::from(40 * USDC), U256::from(60 * USDC))
    );
    let paid = claim
        .decoded_log::<SellerPaid>()
        .ok_or_else(|| eyre::eyre!("no SellerPaid"))?;
    assert_eq!(
        (paid.agreementId, paid.recipient, paid.amount),
        (id, agreement.seller, U256::from(40 * USDC))
    );

    let withdrew = withdraw
        .decoded_log::<BuyerWithdrew>()
        .ok_or_else(|| eyre::eyre!("no BuyerWithdrew"))?;
    assert_eq!(
        (withdrew.agreementId, withdrew.recipient, withdrew.amount),
        (id, agreement.buyer, U256::from(60 * USDC))
    );

    let state = chain.escrow().agreementState(id).call().await?;
    assert_eq!(
        AgreementStatus::try_from(state.status)?,
        AgreementStatus::Settled
    );
    assert_eq!(state.settledAmount, 40 * USDC as u128);
    assert!(state.sellerPaid && state.buyerWithdrawn);
    Ok(())
}

#[tokio::test]
async fn relayed_lifecycle_needs_no_ether_from_the_parties() -> eyre::Result<()> {
    let chain = Chain::start().await?;
    let (buyer, seller) = (PrivateKeySigner::random(), PrivateKeySigner::random());
    chain.mint(buyer.address(), U256::from(BUYER_FUNDS)).await?;
    let agreement = chain
        .agreement(buyer.address(), seller.address(), "relayed")
        .await?;
    let relayer = chain.relayer.address();
    let relayer_eth_before = chain.provider.get_balance(relayer).await?;

    let outcome = scenario::run(
        &chain.provider,
        &chain.deployment,
        &agreement,
        &buyer,
        &seller,
        SettlementPath::Relayed { relayer },
        &usage(),
        |_| {},
    )
    .await?;

    assert_eq!(outcome.receipts.len(), 4);
    assert!(
        outcome.receipts.iter().all(|r| r.from == relayer),
        "the relayer sent every transaction"
    );
    assert!(
        chain.provider.get_balance(relayer).await? < relayer_eth_before,
        "the relayer paid the gas"
    );
    assert_eq!(
        chain.provider.get_balance(buyer.address()).await?,
        U256::ZERO
    );
    assert_eq!(
        chain.provider.get_balance(seller.address()).await?,
        U256::ZERO
    );

    assert_eq!(
        chain.balance(seller.address()).await?,
        U256::from(40 * USDC)
    );
    assert_eq!(
        chain.balance(buyer.address()).await?,
        U256::from(BUYER_FUNDS - 40 * USDC - USDC)
    );
    assert_eq!(chain.balance(chain.deployment.escrow).await?, U256::ZERO);
    let closed = outcome.receipts[1]
        .decoded_log::<CloseInitiated>()
        .ok_or_else(|| eyre::eyre!("no CloseInitiated"))?;
    assert_eq!(
        closed.initiator,
        buyer.address(),
        "the signer, not the submitter, initiated the close"
    );
    let state = chain
        .escrow()
        .agreementState(outcome.agreement_id)
        .call()
        .await?;
    assert_eq!(
        AgreementStatus::try_from(state.status)?,
        AgreementStatus::Settled
    );
    Ok(())
}

#[tokio::test]
async fn buyer_recovers_the_deposit_when_the_seller_never_claims() -> eyre::Result<()> {
    let chain = Chain::start().await?;
    let agreement = chain
        .agreement(chain.buyer.address(), chain.seller.address(), "unclaimed")
        .await?;
    let (id, _) = scenario::activate(
        &chain.provider,
        &chain.deployment,
        &agreement,
        &chain.buyer,
        chain.relayer.address(),
    )
    .await?;
    let escrow = chain.escrow();
    let buyer = chain.buyer.address();
    pactum_devnet::confirm(escrow.initiateClose(agreement.clone()).from(buyer)).await?;

    // Inside the seller's window the buyer is refused, with the deadline in the error.
    let early = escrow
        .buyerWithdraw(agreement.clone(), buyer)
        .from(buyer)
        .send()
        .await;
    let err = early
        .err()
        .ok_or_else(|| eyre::eyre!("withdraw inside the close window must fail"))?;
    match err.as_decoded_interface_error::<AgreementEscrowErrors>() {
        Some(AgreementEscrowErrors::CloseWindowOpen(e)) => {
            assert_eq!(e.agreementId, id)
        }
        other => eyre::bail!("expected CloseWindowOpen, got {other:?} ({err})"),
    }

    chain.advance_time(3_600).await?;
    let receipt =
        pactum_devnet::confirm(escrow.buyerWithdraw(agreement.clone(), buyer).from(buyer)).await?;
    let withdrew = receipt
        .decoded_log::<BuyerWithdrew>()
        .ok_or_else(|| eyre::eyre!("no BuyerWithdrew"))?;
    assert_eq!(
        withdrew.amount, agreement.maxAmount,
        "no claim: the whole deposit returns"
    );
    assert_eq!(chain.balance(buyer).await?, U256::from(BUYER_FUNDS - USDC));
    Ok(())
}
