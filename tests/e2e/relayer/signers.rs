//! Parties that are contracts: a smart-contract wallet signs through ERC-1271, judged by the
//! escrow's own check in the simulation; a wallet answering anything but the full magic word is
//! refused; a contract without ERC-1271 is told the sponsored path is closed to it; a wallet
//! that answers differently on chain is struck, and a buyer's wallet refusing the voucher of a
//! seller's claim strikes the buyer, not the seller.

use alloy::primitives::{Address, B256, Bytes, U256};
use pactum_bindings::{eip712::InitiateClose, sign};
use pactum_core::AgreementStatus;
use pactum_relayer::{AcceptError, Authorization, OptionsQuery, SettlementAction};

use pactum_bindings::AgreementEscrow;
use pactum_client::Authorizer;
use pactum_devnet::scenario;

use super::{AMOUNT, Fixture, digest};
use crate::chain::USDC;
use crate::wallet::{
    APPROVE, REFUSE, RETURN_DIRTY_MAGIC, WalletSigner, deploy_wallet, set_mode, set_mode_tx,
};

/// `wallet`'s `InitiateClose` of agreement `id`, signed by its owner (the wallet approves its
/// owner's ECDSA signature).
async fn wallet_close(
    f: &Fixture,
    owner: &alloy::signers::local::PrivateKeySigner,
    wallet: Address,
    id: B256,
    deadline: u64,
) -> eyre::Result<Authorization> {
    let message = InitiateClose {
        agreementId: id,
        party: wallet,
        deadline: U256::from(deadline),
    };
    Ok(Authorization::InitiateClose {
        party: wallet,
        deadline,
        signature: sign::sign_digest(owner, digest(f, &message)).await?,
    })
}

/// The options of `party` closing the agreement.
async fn close_options(
    f: &Fixture,
    terms: &pactum_bindings::Agreement,
    id: B256,
    party: Address,
) -> eyre::Result<pactum_relayer::ActionOptions> {
    let query = OptionsQuery {
        party: Some(party),
        ..OptionsQuery::default()
    };
    Ok(f.relayer
        .options(terms, id, SettlementAction::InitiateClose, &query)
        .await?)
}

#[tokio::test]
async fn a_contract_wallet_signs_through_erc1271() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    f.round().await?;
    let owner = &f.chain.seller;
    let wallet = deploy_wallet(&f.chain, owner.address()).await?;
    let (terms, id) = f.active_agreement_with(wallet, "wallet").await?;

    let options = close_options(&f, &terms, id, wallet).await?;
    assert!(options.sponsored.is_ok(), "{options:?}");

    // The wallet's owner signs the digest; the relayer sees it is not the wallet's own key and
    // asks the wallet, from the escrow, as the escrow will.
    let deadline = f.now().await? + 3_600;
    let message = InitiateClose {
        agreementId: id,
        party: wallet,
        deadline: U256::from(deadline),
    };
    let signature = sign::sign_digest(owner, digest(&f, &message)).await?;
    let authorization = |signature: &Bytes| Authorization::InitiateClose {
        party: wallet,
        deadline,
        signature: signature.clone(),
    };

    // The same signature while the wallet answers a dirty magic word (not the full 32-byte
    // value the escrow compares): refused, nothing stored or sent.
    set_mode(&f.chain, wallet, RETURN_DIRTY_MAGIC).await?;
    match f
        .relayer
        .accept(&terms, authorization(&signature), "agent:seller")
        .await
    {
        Err(AcceptError::Refused(r)) => assert_eq!(r.code.as_str(), "invalid_signature"),
        other => eyre::bail!("expected invalid_signature, got {other:?}"),
    }
    assert_eq!(f.jobs().await?, 0);

    set_mode(&f.chain, wallet, APPROVE).await?;
    let accepted = f
        .relayer
        .accept(&terms, authorization(&signature), "agent:seller")
        .await?;
    f.round().await?;
    f.round().await?;
    let job = f.job(&accepted.job.id).await?;
    assert_eq!(job.state, pactum_db::relay::JobState::Confirmed, "{job:?}");
    let state = f.chain.escrow().agreementState(id).call().await?;
    assert_eq!(
        AgreementStatus::try_from(state.status)?,
        AgreementStatus::Closing
    );
    Ok(())
}

#[tokio::test]
async fn a_contract_without_erc1271_is_told_the_sponsored_path_is_closed() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    f.round().await?;
    // A contract with code but no `isValidSignature` (nor a fallback): the sanctions oracle.
    let contract = f.chain.deployment.sanctions_oracle;
    let (terms, id) = f.active_agreement_with(contract, "no-1271").await?;
    let options = close_options(&f, &terms, id, contract).await?;
    assert!(
        options.plan.direct.is_ok(),
        "it can still send the call itself"
    );
    assert_eq!(
        options.sponsored.map_err(|r| r.code.as_str()),
        Err("signer_unsupported")
    );

    // Whatever it hands in is refused before anything is stored or sent.
    let deadline = f.now().await? + 3_600;
    let message = InitiateClose {
        agreementId: id,
        party: contract,
        deadline: U256::from(deadline),
    };
    let signature = sign::sign_digest(&f.chain.seller, digest(&f, &message)).await?;
    let nonce = f.relayer_nonce().await?;
    match f
        .relayer
        .accept(
            &terms,
            Authorization::InitiateClose {
                party: contract,
                deadline,
                signature,
            },
            "agent:seller",
        )
        .await
    {
        Err(AcceptError::Refused(r)) => assert_eq!(r.code.as_str(), "invalid_signature"),
        other => eyre::bail!("expected invalid_signature, got {other:?}"),
    }
    assert_eq!((f.jobs().await?, f.relayer_nonce().await?), (0, nonce));
    Ok(())
}

/// A wallet that answers differently on chain than in simulation (here it starts refusing in the
/// very block that mines the sponsored close) makes the relayer pay for a revert while the
/// agreement still allows the action: a strike against the signer. At the limit (one, here) the
/// wallet is refused; the other party is not.
#[tokio::test]
async fn a_wallet_that_refuses_on_chain_is_struck() -> eyre::Result<()> {
    let f = Fixture::new(|s| s.policy.max_reverts_per_party_per_day = 1).await?;
    f.round().await?;
    let owner = &f.chain.seller;
    let wallet = deploy_wallet(&f.chain, owner.address()).await?;
    let (terms, id) = f.active_agreement_with(wallet, "flip").await?;
    let (other_terms, other) = f.active_agreement_with(wallet, "flip-next").await?;
    let deadline = f.now().await? + 3_600;
    let f = &f;
    let close = |id: B256| wallet_close(f, owner, wallet, id, deadline);
    let accepted = f
        .relayer
        .accept(&terms, close(id).await?, "agent:seller")
        .await?;

    // The worker simulates and broadcasts; then the wallet flips, ahead of it in the same block.
    f.ahead_of_the_relayer(set_mode_tx(&f.chain, wallet, REFUSE))
        .await?;
    let job = f.job(&accepted.job.id).await?;
    assert_eq!(job.state, pactum_db::relay::JobState::Failed);
    assert_eq!(
        job.failure_code.map(|c| c.as_str()),
        Some("reverted"),
        "{job:?}"
    );
    // Replayed at that block the escrow says the wallet refused: the wallet's own strike.
    let detail = job.failure_detail.unwrap_or_default();
    assert!(detail.contains("invalid_signature"), "{detail}");
    assert!(detail.contains("(party scope)"), "{detail}");

    // Back to approving: still refused, for a day.
    set_mode(&f.chain, wallet, APPROVE).await?;
    match f
        .relayer
        .accept(&other_terms, close(other).await?, "agent:seller")
        .await
    {
        Err(AcceptError::Refused(r)) => assert_eq!(r.code.as_str(), "too_many_reverts"),
        other => eyre::bail!("expected too_many_reverts, got {other:?}"),
    }
    // The buyer (an EOA) is not struck.
    let message = InitiateClose {
        agreementId: other,
        party: f.chain.buyer.address(),
        deadline: U256::from(deadline),
    };
    let signature = sign::sign_typed(&f.chain.buyer, &message, &f.domain()).await?;
    f.relayer
        .accept(
            &other_terms,
            Authorization::InitiateClose {
                party: f.chain.buyer.address(),
                deadline,
                signature,
            },
            "agent:buyer",
        )
        .await?;
    Ok(())
}

/// A revert the replay cannot pin on the party (the wallet refuses only for the one transaction:
/// it flips back right behind it, in the same block) is a strike on this agreement only: the
/// party's other agreements are still sponsored, so a counterparty that could provoke such a
/// revert cannot shut the party out of them.
#[tokio::test]
async fn a_strike_of_unclear_cause_reaches_only_its_agreement() -> eyre::Result<()> {
    let f = Fixture::new(|s| s.policy.max_reverts_per_party_per_day = 1).await?;
    f.round().await?;
    let owner = &f.chain.seller;
    let wallet = deploy_wallet(&f.chain, owner.address()).await?;
    let (terms, id) = f.active_agreement_with(wallet, "blink").await?;
    let (other_terms, other) = f.active_agreement_with(wallet, "blink-other").await?;
    let deadline = f.now().await? + 3_600;
    let f = &f;
    let close = |id: B256, deadline: u64| wallet_close(f, owner, wallet, id, deadline);
    let accepted = f
        .relayer
        .accept(&terms, close(id, deadline).await?, "agent:seller")
        .await?;
    f.around_the_relayer(
        set_mode_tx(&f.chain, wallet, REFUSE),
        Some(set_mode_tx(&f.chain, wallet, APPROVE)),
    )
    .await?;
    let job = f.job(&accepted.job.id).await?;
    assert_eq!(
        job.failure_code.map(|c| c.as_str()),
        Some("reverted"),
        "{job:?}"
    );
    let detail = job.failure_detail.unwrap_or_default();
    assert!(detail.contains("(agreement scope)"), "{detail}");

    // The same agreement: struck out for the day.
    match f
        .relayer
        .accept(&terms, close(id, deadline + 1).await?, "agent:seller")
        .await
    {
        Err(AcceptError::Refused(r)) => assert_eq!(r.code.as_str(), "too_many_reverts"),
        other => eyre::bail!("expected too_many_reverts, got {other:?}"),
    }
    // Its other agreement: still sponsored.
    f.relayer
        .accept(&other_terms, close(other, deadline).await?, "agent:seller")
        .await?;
    Ok(())
}

/// A buyer that is a contract wallet approves its voucher while the seller's sponsored claim is
/// simulated, and refuses it on chain. Replayed at that block the escrow names the voucher: the
/// strike is the buyer's, and the seller (the claim's signer) is still sponsored on its other
/// agreements and on this one.
#[tokio::test]
async fn a_buyer_wallet_refusing_the_voucher_on_chain_cannot_strike_out_the_seller()
-> eyre::Result<()> {
    let f = Fixture::new(|s| s.policy.max_reverts_per_party_per_day = 1).await?;
    f.round().await?;
    let c = &f.chain;
    let buyer = WalletSigner::deploy_funded(c, 200 * USDC).await?;
    let terms = c
        .agreement(buyer.wallet, c.seller.address(), "voucher-flip")
        .await?;
    let (id, _) = scenario::activate(
        &c.provider,
        &c.deployment,
        &terms,
        &buyer,
        c.relayer.address(),
    )
    .await?;
    let escrow = AgreementEscrow::new(c.deployment.escrow, &c.provider);
    pactum_devnet::confirm(escrow.initiateClose(terms.clone()).from(c.seller.address())).await?;
    f.index().await?;

    // The seller's claim with the wallet's voucher, through the API: accepted (the simulation
    // asks the wallet, which approves), then the wallet refuses in the block that mines it.
    let d = &c.deployment;
    let amount = U256::from(AMOUNT);
    let voucher = Authorizer::new(&buyer, d.chain_id, d.escrow, id)
        .voucher(amount)
        .await?;
    let deadline = f.now().await? + 600;
    let claim = f
        .sign(id)
        .by(&c.seller)
        .seller_claim_at(amount, &voucher, c.seller.address(), deadline)
        .await?;
    let accepted = f
        .seller_api
        .sponsor(id, &claim.into(), "flip-claim")
        .await?;
    let relay_id = accepted.body.relay_id.clone();
    f.ahead_of_the_relayer(set_mode_tx(c, buyer.wallet, REFUSE))
        .await?;
    let job = f.job(&relay_id).await?;
    assert_eq!(
        job.failure_code.map(|c| c.as_str()),
        Some("reverted"),
        "{job:?}"
    );
    let detail = job.failure_detail.unwrap_or_default();
    assert!(detail.contains("invalid_voucher"), "{detail}");
    assert!(
        detail.contains(&format!("a strike against {} (party scope)", buyer.wallet)),
        "{detail}"
    );

    // The seller, at the strike limit had it been charged, is still sponsored: on another
    // agreement, and on this one once the wallet approves again.
    let (_, other) = f.active_agreement("voucher-flip-other").await?;
    let close = f.sign(other).initiate_close(&c.seller, deadline).await?;
    let answer = f
        .seller_api
        .sponsor_initiate_close(other, &close, "other-close")
        .await?;
    assert_eq!(answer.status, 202, "{answer:?}");
    set_mode(c, buyer.wallet, APPROVE).await?;
    let again = f
        .sign(id)
        .by(&c.seller)
        .seller_claim_at(amount, &voucher, c.seller.address(), deadline + 1)
        .await?;
    let answer = f
        .seller_api
        .sponsor(id, &again.into(), "claim-again")
        .await?;
    assert_eq!(answer.status, 202, "{answer:?}");
    Ok(())
}
