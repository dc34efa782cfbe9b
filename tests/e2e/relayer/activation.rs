//! Escrow activations through the relayer: the buyer's signed package (EIP-3009 authorizations,
//! or EIP-2612 permits with its `Activation` signature) handed to the same pipeline as the
//! settlement actions, and `escrow-status` following it from `pending` to `confirmed`.

use alloy::{primitives::U256, providers::Provider};
use pactum_bindings::{
    Agreement,
    eip712::{self, Activation},
    sign,
};
use pactum_client::types::{
    ActivationStatus, AgreementStatus, EscrowPhase, JobFailure, JobState, RefusalCode,
};
use pactum_db::relay;
use pactum_relayer::{AcceptError, Authorization};

use super::Fixture;

/// The buyer's EIP-3009 package for `terms`, valid for an hour.
async fn authorization_package(f: &Fixture, terms: &Agreement) -> eyre::Result<Authorization> {
    let package = sign::activation_package(
        &f.chain.buyer,
        terms,
        &f.chain.deployment.activation_context(),
        f.now().await? + 3_600,
    )
    .await?;
    Ok(Authorization::ActivateWithAuthorization {
        deposit: package.deposit,
        fee: package.fee,
    })
}

#[tokio::test]
async fn an_activation_package_goes_through_the_relayer_and_escrow_status_follows_it()
-> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    // The indexer has started, and a first round has read the key's balance.
    f.index().await?;
    f.round().await?;
    let c = &f.chain;
    let terms = c
        .agreement(c.buyer.address(), c.seller.address(), "relayed")
        .await?;
    let id = eip712::agreement_id(&terms, &f.domain());
    let unknown = f.buyer_api.escrow_status(id).await.unwrap_err();
    assert_eq!(unknown.status(), Some(404), "nothing known yet: {unknown}");

    let (eth_before, usdc_before) = (
        f.plain.get_balance(c.buyer.address()).await?,
        c.balance(c.buyer.address()).await?,
    );
    let authorization = authorization_package(&f, &terms).await?;
    let accepted = f
        .relayer
        .accept(&terms, authorization.clone(), "agent:buyer")
        .await?;
    assert!(!accepted.existing);
    let relay_id = accepted.job.id.clone();
    let again = f
        .relayer
        .accept(&terms, authorization, "agent:buyer")
        .await?;
    assert!(again.existing, "the same package is the same job");
    assert_eq!(again.job.id, relay_id);

    // Accepted, nothing sent: the terms are known from the package, nothing is deposited.
    let body = f.buyer_api.escrow_status(id).await?;
    assert_eq!(body.status, EscrowPhase::PendingActivation);
    assert_eq!(body.activation_status, ActivationStatus::Pending);
    assert_eq!(body.activation_relay_id.as_ref(), Some(&relay_id));
    assert_eq!(body.activation_tx_hash, None);
    assert_eq!(body.max_amount, terms.maxAmount.to_string());
    assert_eq!(body.infra_fee, terms.infraFee.to_string());
    assert_eq!(body.seller, c.seller.address().to_string());
    assert_eq!(body.deposited, "0");
    assert_eq!(body.transitions.activation, None);
    // The seller sees it too.
    let seller_view = f.seller_api.escrow_status(id).await?;
    assert_eq!(seller_view.activation_relay_id, Some(relay_id.clone()));

    // One round signs, stores and broadcasts it (automine mines it at once); the status shows
    // the transaction as soon as it is broadcast.
    f.round().await?;
    let attempts = relay::attempts_of(f.db().pool(), &relay_id).await?;
    assert_eq!(attempts.len(), 1);
    let mined = Some(attempts[0].tx_hash.to_string());
    let body = f.buyer_api.escrow_status(id).await?;
    assert_eq!(body.status, EscrowPhase::PendingActivation);
    assert_eq!(body.activation_status, ActivationStatus::Submitted);
    assert_eq!(body.activation_tx_hash, mined);

    // The next round sees the receipt; until the indexer has the block it stays `submitted`.
    f.round().await?;
    let job = f.relayer.job(&relay_id).await?.map(|(j, _)| j);
    let job = job.ok_or_else(|| eyre::eyre!("job gone"))?;
    assert_eq!(job.state, JobState::Confirmed);
    assert_eq!(job.tx_hash, Some(attempts[0].tx_hash));
    let body = f.buyer_api.escrow_status(id).await?;
    assert_eq!(body.activation_status, ActivationStatus::Submitted);

    // Indexed (this indexer counts every block final): active and confirmed.
    f.index().await?;
    let body = f.buyer_api.escrow_status(id).await?;
    assert_eq!(body.status, EscrowPhase::Active);
    assert_eq!(body.activation_status, ActivationStatus::Confirmed);
    assert_eq!(body.activation_tx_hash, mined);
    assert_eq!(body.activation_relay_id, Some(relay_id));
    assert_eq!(body.deposited, terms.maxAmount.to_string());
    assert_eq!(
        body.transitions.activation.map(|t| t.tx_hash),
        mined,
        "the transition names the mined transaction"
    );

    // The buyer paid the deposit and the fee, and no gas.
    assert_eq!(f.plain.get_balance(c.buyer.address()).await?, eth_before);
    assert_eq!(
        c.balance(c.buyer.address()).await?,
        usdc_before - terms.maxAmount - terms.infraFee
    );
    Ok(())
}

/// The permit path: the buyer's `Activation` signature is checked before acceptance (a
/// signature over other terms is refused and sends nothing), then the call goes through.
#[tokio::test]
async fn a_permit_activation_goes_through_the_relayer() -> eyre::Result<()> {
    let mut f = Fixture::new(|_| {}).await?;
    f.start_worker().await?;
    let c = &f.chain;
    let buyer = c.buyer.address();
    let terms = c.agreement(buyer, c.seller.address(), "permit").await?;
    let id = eip712::agreement_id(&terms, &f.domain());
    let deadline = U256::from(f.now().await? + 3_600);
    let permits = c.permits(&terms, deadline).await?;
    let consent = |terms: Agreement| Activation {
        agreement: terms,
        deadline,
    };
    let package = |signature| Authorization::ActivateWithPermit {
        deadline: deadline.to(),
        signature,
        deposit: permits[0].clone(),
        fee: permits[1].clone(),
    };

    // Signed over other terms (a larger deposit): refused before anything is stored or sent.
    let mut other = terms.clone();
    other.maxAmount += U256::from(1);
    let wrong = sign::sign_typed(&c.buyer, &consent(other), &f.domain()).await?;
    let nonce_before = f.relayer_nonce().await?;
    match f
        .relayer
        .accept(&terms, package(wrong), "agent:buyer")
        .await
    {
        Err(AcceptError::Refused(refusal)) => {
            assert_eq!(refusal.code.as_str(), "invalid_signature")
        }
        other => eyre::bail!("expected invalid_signature, got {other:?}"),
    }
    assert_eq!(f.jobs().await?, 0);

    let signature = sign::sign_typed(&c.buyer, &consent(terms.clone()), &f.domain()).await?;
    let accepted = f
        .relayer
        .accept(&terms, package(signature), "agent:buyer")
        .await?;
    let relay_id = accepted.job.id;
    f.wait_for(id, &relay_id, JobState::Confirmed).await?;
    let state = c.escrow().agreementState(id).call().await?;
    assert_eq!(
        AgreementStatus::try_from(state.status)?,
        AgreementStatus::Active
    );
    assert_eq!(f.relayer_nonce().await?, nonce_before + 1);
    Ok(())
}

/// A package that can no longer succeed when its turn comes (the buyer was blocklisted by the
/// token meanwhile) fails without a transaction, and `escrow-status` says why; once the cause is
/// gone, the same package may be handed in again.
#[tokio::test]
async fn an_activation_that_became_impossible_fails_visibly_and_may_be_retried() -> eyre::Result<()>
{
    let f = Fixture::new(|_| {}).await?;
    f.index().await?;
    f.round().await?;
    let c = &f.chain;
    let buyer = c.buyer.address();
    let terms = c.agreement(buyer, c.seller.address(), "blocked").await?;
    let id = eip712::agreement_id(&terms, &f.domain());
    let authorization = authorization_package(&f, &terms).await?;
    let first = f
        .relayer
        .accept(&terms, authorization.clone(), "agent:buyer")
        .await?;

    let token = c.token();
    pactum_devnet::confirm(token.blocklist(buyer).from(c.deployer.address())).await?;
    let nonce_before = f.relayer_nonce().await?;
    f.round().await?;
    assert_eq!(f.relayer_nonce().await?, nonce_before, "nothing was sent");
    assert_eq!(f.attempts().await?, 0);
    let body = f.buyer_api.escrow_status(id).await?;
    assert_eq!(body.status, EscrowPhase::PendingActivation);
    assert_eq!(body.activation_status, ActivationStatus::Failed);
    assert_eq!(body.activation_tx_hash, None);
    assert_eq!(body.activation_relay_id.as_ref(), Some(&first.job.id));
    assert_eq!(
        body.activation_error.as_ref().map(|e| e.code),
        Some(JobFailure::Refused(RefusalCode::SimulationFailed)),
        "{body:?}"
    );

    pactum_devnet::confirm(token.unBlocklist(buyer).from(c.deployer.address())).await?;
    let second = f
        .relayer
        .accept(&terms, authorization, "agent:buyer")
        .await?;
    assert!(
        !second.existing,
        "a job refused before sending may be accepted again"
    );
    assert_ne!(second.job.id, first.job.id);
    f.round().await?;
    f.round().await?;
    f.index().await?;
    let body = f.buyer_api.escrow_status(id).await?;
    assert_eq!(body.status, EscrowPhase::Active);
    assert_eq!(body.activation_status, ActivationStatus::Confirmed);
    assert_eq!(body.activation_relay_id, Some(second.job.id));
    assert_eq!(body.activation_error, None);
    Ok(())
}
