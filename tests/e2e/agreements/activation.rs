//! The buyer's activation through the API: the package it signs (checked by the client against
//! what the buyer expects), `activate-escrow` handing it to the relayer, the view following it to
//! `active` and `confirmed`; refusals that store and send nothing; two submissions at once; a
//! buyer that is an ERC-1271 wallet.

use std::time::Duration;

use alloy::{primitives::U256, signers::Signer};
use pactum_client::{
    Client, Expected, sign_activation,
    types::{ActivateEscrow, ActivationStatus, EventKind, LifecycleStatus, PackageParams},
};

use super::{problem, proposal, propose};
use crate::{chain::USDC, relayer::Fixture, wallet::WalletSigner};

/// What the fixture's buyer expects of the reference proposal's activation.
pub(crate) fn expected(f: &Fixture) -> Expected {
    let d = &f.chain.deployment;
    Expected {
        chain_id: d.chain_id,
        escrow: d.escrow,
        fee_collector: d.fee_collector,
        token: d.token,
        max_amount: U256::from(10 * USDC),
        max_fee: U256::from(USDC / 10),
    }
}

/// A proposal of `buyer` accepted by the seller; its id.
pub(crate) async fn accepted(
    f: &Fixture,
    buyer: &Client,
    body: &pactum_client::types::ProposeAgreement,
) -> eyre::Result<String> {
    let id = buyer
        .propose(body, &format!("p-{}", pactum_db::random_id(6)))
        .await?
        .body
        .agreement_id;
    f.seller_api.accept(&id, &format!("a-{id}")).await?;
    Ok(id)
}

/// The package of `id`, signed by `signer` for `buyer`'s wallet.
pub(crate) async fn signed(
    api: &Client,
    id: &str,
    signer: &(impl Signer + Sync),
    expected: &Expected,
) -> eyre::Result<ActivateEscrow> {
    let package = api
        .activation_package(id, &PackageParams::default())
        .await?;
    assert_eq!(package.infra_fee.status, "pending");
    Ok(sign_activation(signer, signer.address(), &package, expected).await?)
}

async fn activated(
    f: &Fixture,
    api: &Client,
    id: &str,
) -> eyre::Result<pactum_client::types::UsageAgreementView> {
    // The worker submits; the view shows the transaction once it is broadcast.
    api.wait_usage_agreement(id, Duration::from_secs(30), |v| {
        v.activation_tx_hash.is_some()
    })
    .await?;
    f.index().await?;
    let view = api.usage_agreement(id).await?;
    assert_eq!(view.status, LifecycleStatus::Active, "{view:?}");
    assert_eq!(view.activation_status, Some(ActivationStatus::Confirmed));
    Ok(view)
}

#[tokio::test]
async fn the_buyer_activates_through_the_api_and_pays_no_gas() -> eyre::Result<()> {
    let mut f = Fixture::new(|_| {}).await?;
    f.index().await?;
    f.start_worker().await?;
    let c = &f.chain;
    let id = accepted(&f, &f.buyer_api, &proposal(&f)).await?;
    let package = f
        .buyer_api
        .activation_package(&id, &PackageParams::default())
        .await?;
    assert_eq!(package.infra_fee.amount, "100000");
    assert_eq!(package.escrow_address, c.deployment.escrow.to_string());
    // A package that moves more than agreed is not signed.
    let greedy = Expected {
        max_amount: U256::from(9 * USDC),
        ..expected(&f)
    };
    assert!(
        sign_activation(&c.buyer, c.buyer.address(), &package, &greedy)
            .await
            .is_err()
    );
    let body = sign_activation(&c.buyer, c.buyer.address(), &package, &expected(&f)).await?;

    let (eth_before, usdc_before) = (
        f.plain.get_balance(c.buyer.address()).await?,
        c.balance(c.buyer.address()).await?,
    );
    let written = f
        .buyer_api
        .activate_escrow(&id, &body, "activate-1")
        .await?;
    assert_eq!(written.status, 202);
    assert_eq!(written.body.status, LifecycleStatus::Activating);
    assert!(matches!(
        written.body.activation_status,
        Some(
            ActivationStatus::Pending | ActivationStatus::Submitting | ActivationStatus::Submitted
        )
    ));
    let replay = f
        .buyer_api
        .activate_escrow(&id, &body, "activate-1")
        .await?;
    assert!(replay.replayed);

    let view = activated(&f, &f.buyer_api, &id).await?;
    let kinds: Vec<EventKind> = view.history.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::Proposed,
            EventKind::Accepted,
            EventKind::ActivationSubmitted,
            EventKind::Activated
        ]
    );
    // The indexer wrote the activation into the history, with its transaction.
    let last = &view.history[3];
    assert_eq!(
        (last.actor.as_str(), last.status),
        ("chain", LifecycleStatus::Active)
    );
    assert_eq!(last.tx_hash, view.activation_tx_hash);
    assert_eq!(f.jobs().await?, 1, "one job for the package");
    // The buyer paid the deposit and the 1 % fee, and no gas.
    use alloy::providers::Provider;
    assert_eq!(f.plain.get_balance(c.buyer.address()).await?, eth_before);
    assert_eq!(
        c.balance(c.buyer.address()).await?,
        usdc_before - U256::from(10 * USDC) - U256::from(USDC / 10)
    );
    // Activated: a new package is refused.
    assert_eq!(
        problem(
            f.buyer_api
                .activate_escrow(&id, &body, "activate-again")
                .await
        )?
        .0,
        409
    );
    Ok(())
}

/// Every refusal leaves the agreement `accepted`, creates no job and releases its claim, so the
/// right package is then accepted.
#[tokio::test]
async fn a_refused_package_changes_nothing() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    f.index().await?;
    // A first round reads the relayer key's balance (sponsoring is paused until then).
    f.round().await?;
    let c = &f.chain;
    let proposed = propose(&f, "early").await?.agreement_id;
    let early = f
        .buyer_api
        .activation_package(&proposed, &PackageParams::default())
        .await;
    assert_eq!(problem(early)?, (409, "invalid_transition".into()));

    let id = accepted(&f, &f.buyer_api, &proposal(&f)).await?;
    let good = signed(&f.buyer_api, &id, &c.buyer, &expected(&f)).await?;
    let stranger = alloy::signers::local::PrivateKeySigner::random();
    let package = f
        .buyer_api
        .activation_package(&id, &PackageParams::default())
        .await?;
    let forged = {
        // The right messages, signed by another key.
        let mut forged = good.clone();
        let digest: alloy::primitives::B256 = package.deposit.digest.parse()?;
        forged.deposit_signature = Some(
            pactum_bindings::sign::sign_digest(&stranger, digest)
                .await?
                .to_string(),
        );
        forged
    };
    let cases = [
        (
            ActivateEscrow {
                fee_signature: None,
                ..good.clone()
            },
            422,
            "fee_authorization_required",
        ),
        (forged, 422, "invalid_signature"),
        (
            ActivateEscrow {
                valid_before: Some(1_000),
                ..good.clone()
            },
            422,
            "activation_expired",
        ),
        (
            ActivateEscrow {
                deposit_signature: Some("0xzz".into()),
                ..good.clone()
            },
            400,
            "invalid_parameter",
        ),
    ];
    for (n, (body, status, code)) in cases.into_iter().enumerate() {
        let answer = f
            .buyer_api
            .activate_escrow(&id, &body, &format!("bad-{n}"))
            .await;
        assert_eq!(problem(answer)?, (status, code.to_owned()), "case {n}");
    }
    assert_eq!(
        problem(f.seller_api.activate_escrow(&id, &good, "seller").await)?,
        (403, "not_buyer".into())
    );
    assert_eq!(f.jobs().await?, 0, "no refusal created a job");
    let view = f.buyer_api.usage_agreement(&id).await?;
    assert_eq!(view.status, LifecycleStatus::Accepted);
    assert_eq!(view.activation_status, None);
    // Nothing was left claimed: the right package goes through.
    let written = f.buyer_api.activate_escrow(&id, &good, "good").await?;
    assert_eq!(written.status, 202);
    Ok(())
}

/// Two submissions of the same agreement at once (different keys): one is accepted, the other
/// is told an activation is in flight; one job exists.
#[tokio::test]
async fn two_activations_at_once_make_one_job() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    f.index().await?;
    // A first round reads the relayer key's balance (sponsoring is paused until then).
    f.round().await?;
    let c = &f.chain;
    for n in 0..3 {
        let id = accepted(&f, &f.buyer_api, &proposal(&f)).await?;
        let body = signed(&f.buyer_api, &id, &c.buyer, &expected(&f)).await?;
        let owner = f.owner_api("acme");
        let (k1, k2) = (format!("one-{n}"), format!("two-{n}"));
        let (one, two) = tokio::join!(
            f.buyer_api.activate_escrow(&id, &body, &k1),
            owner.activate_escrow(&id, &body, &k2),
        );
        match (one, two) {
            (Ok(w), Err(e)) | (Err(e), Ok(w)) => {
                assert_eq!(w.status, 202);
                assert_eq!(problem::<()>(Err(e))?, (409, "activation_in_flight".into()));
            }
            other => eyre::bail!("not exactly one accepted: {other:?}"),
        }
    }
    assert_eq!(f.jobs().await?, 3);
    Ok(())
}

/// A buyer whose wallet is an ERC-1271 contract: its agent is registered with the wallet's
/// address, the wallet's owner signs the package, the API asks the wallet, and the token accepts
/// the wallet's approval on chain.
#[tokio::test]
async fn a_contract_wallet_buyer_activates() -> eyre::Result<()> {
    let mut f = Fixture::new(|_| {}).await?;
    f.index().await?;
    f.start_worker().await?;
    let wallet = WalletSigner::deploy_funded(&f.chain, 100 * USDC).await?;
    let buyer = f.other_owner("walletco", "wallet-buyer", &wallet).await?;
    let mut body = proposal(&f);
    body.buyer_wallet_address = wallet.wallet.to_string();
    let id = accepted(&f, &buyer, &body).await?;
    let signed = signed(&buyer, &id, &wallet, &expected(&f)).await?;
    // The wallet owner's plain key is not the wallet: signed for itself, it is refused.
    let own = sign_activation(
        &wallet.owner,
        wallet.wallet,
        &buyer
            .activation_package(&id, &PackageParams::default())
            .await?,
        &expected(&f),
    )
    .await?;
    assert_eq!(
        own.deposit_signature, signed.deposit_signature,
        "the wallet approves its owner's ECDSA signature"
    );
    crate::wallet::set_mode(&f.chain, wallet.wallet, crate::wallet::REFUSE).await?;
    assert_eq!(
        problem(buyer.activate_escrow(&id, &signed, "refused").await)?,
        (422, "invalid_signature".into())
    );
    crate::wallet::set_mode(&f.chain, wallet.wallet, crate::wallet::APPROVE).await?;
    let written = buyer.activate_escrow(&id, &signed, "approved").await?;
    assert_eq!(written.status, 202);
    let view = activated(&f, &buyer, &id).await?;
    assert_eq!(
        f.chain.balance(wallet.wallet).await?,
        U256::from(100 * USDC - 10 * USDC - USDC / 10)
    );

    // Usage with the wallet's vouchers: approved through ERC-1271, refused while it refuses.
    let d = &f.chain.deployment;
    let onchain: alloy::primitives::B256 = view
        .onchain_agreement_id
        .as_deref()
        .ok_or_else(|| eyre::eyre!("no on-chain id"))?
        .parse()?;
    let vouchers = pactum_client::Authorizer::new(&wallet, d.chain_id, d.escrow, onchain);
    let record = |n: u64, signature: alloy::primitives::Bytes| pactum_client::types::RecordUsage {
        cumulative_quantity: n,
        voucher_signature: signature.to_string(),
    };
    let ten = vouchers.voucher(U256::from(1_000_000u64)).await?;
    let recorded = f
        .seller_api
        .record_usage(&id, &record(10, ten.clone()), "u10")
        .await?;
    assert_eq!(recorded.body.usage.cumulative_quantity, 10);
    // The same write under the same key: the stored answer, replayed.
    let replay = f
        .seller_api
        .record_usage(&id, &record(10, ten), "u10")
        .await?;
    assert!(replay.replayed);
    crate::wallet::set_mode(&f.chain, wallet.wallet, crate::wallet::REFUSE).await?;
    let twenty = vouchers.voucher(U256::from(2_000_000u64)).await?;
    assert_eq!(
        problem(
            f.seller_api
                .record_usage(&id, &record(20, twenty), "u20")
                .await
        )?,
        (422, "invalid_voucher".into())
    );
    Ok(())
}

/// Activates accepted agreement `id` directly on chain, indexes it with an indexer that keeps
/// the last 12 blocks open to reorgs, then replaces the activation's blocks with a longer branch
/// without it and indexes again.
pub(crate) async fn activate_then_reorg(f: &Fixture, id: &str) -> eyre::Result<()> {
    let c = &f.chain;
    let terms = super::terms_of(&f.buyer_api.usage_agreement(id).await?)?;
    let index = || async {
        crate::indexing::indexer(c, f.db(), |config| config.confirmations = 12)
            .await?
            .catch_up()
            .await?;
        Ok::<_, eyre::Report>(())
    };
    index().await?;
    let snapshot = c.snapshot().await?;
    pactum_devnet::scenario::activate(
        &c.provider,
        &c.deployment,
        &terms,
        &c.buyer,
        c.relayer.address(),
    )
    .await?;
    c.mine(1).await?;
    index().await?;
    eyre::ensure!(
        f.buyer_api.usage_agreement(id).await?.status == LifecycleStatus::Active,
        "the activation was not indexed"
    );
    c.revert(snapshot).await?;
    c.mine(4).await?;
    index().await
}

/// A reorg that removes the activation puts the agreement back to `activating`, with a
/// `reorged` event after the `activated` one (the history is append-only).
#[tokio::test]
async fn a_reorg_removing_the_activation_puts_the_agreement_back_to_activating() -> eyre::Result<()>
{
    let f = Fixture::new(|_| {}).await?;
    let id = accepted(&f, &f.buyer_api, &proposal(&f)).await?;
    activate_then_reorg(&f, &id).await?;
    let reorged = f.buyer_api.usage_agreement(&id).await?;
    assert_eq!(reorged.status, LifecycleStatus::Activating);
    assert_eq!(reorged.escrow, None);
    let kinds: Vec<EventKind> = reorged.history.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::Proposed,
            EventKind::Accepted,
            EventKind::Activated,
            EventKind::Reorged
        ]
    );
    let last = reorged
        .history
        .last()
        .ok_or_else(|| eyre::eyre!("no history"))?;
    assert_eq!(
        (last.actor.as_str(), last.status),
        ("chain", LifecycleStatus::Activating)
    );
    let stored = pactum_db::agreements::load(&mut *f.db().pool().acquire().await?, &id)
        .await?
        .ok_or_else(|| eyre::eyre!("gone"))?;
    assert_eq!(stored.status, LifecycleStatus::Activating);
    Ok(())
}

/// The permit variant: the buyer signs the escrow's `Activation` of the terms and EIP-2612
/// permits of the deposit and the fee (with the token nonces the package names); the API checks
/// all three and the relayer submits `activateWithPermit`.
#[tokio::test]
async fn the_permit_variant_activates_too() -> eyre::Result<()> {
    let mut f = Fixture::new(|_| {}).await?;
    f.index().await?;
    f.start_worker().await?;
    let c = &f.chain;
    let d = &c.deployment;
    let id = accepted(&f, &f.buyer_api, &proposal(&f)).await?;
    let package = f
        .buyer_api
        .activation_package(&id, &PackageParams::default())
        .await?;
    let permit = package
        .permit
        .as_ref()
        .ok_or_else(|| eyre::eyre!("no permit variant"))?;
    let view = f.buyer_api.usage_agreement(&id).await?;
    let terms = super::terms_of(&view)?;
    let nonce: U256 = permit.nonce.parse()?;
    assert_eq!(nonce, c.token().nonces(c.buyer.address()).call().await?);
    // The buyer rebuilds each message and checks it against the digest it is handed.
    let consent = pactum_bindings::eip712::Activation {
        agreement: terms.clone(),
        deadline: U256::from(permit.deadline),
    };
    let token = pactum_bindings::eip712::usdc_domain(d.chain_id, d.token);
    let permit_of = |spender, value, nonce| pactum_bindings::eip712::Permit {
        owner: c.buyer.address(),
        spender,
        value,
        nonce,
        deadline: U256::from(permit.deadline),
    };
    let deposit = permit_of(d.escrow, terms.maxAmount, nonce);
    let fee = permit_of(d.fee_collector, terms.infraFee, nonce + U256::from(1));
    use alloy::sol_types::SolStruct;
    assert_eq!(
        permit.activation.digest,
        consent.eip712_signing_hash(&f.domain()).to_string()
    );
    assert_eq!(
        permit.deposit.digest,
        deposit.eip712_signing_hash(&token).to_string()
    );
    use pactum_bindings::sign::sign_typed as sign;
    let signatures = pactum_client::types::PermitSignatures {
        deadline: permit.deadline,
        nonce: permit.nonce.clone(),
        activation_signature: sign(&c.buyer, &consent, &f.domain()).await?.to_string(),
        deposit_signature: sign(&c.buyer, &deposit, &token).await?.to_string(),
        fee_signature: Some(sign(&c.buyer, &fee, &token).await?.to_string()),
    };
    // Both variants at once: refused.
    let both = ActivateEscrow {
        valid_before: Some(package.valid_before),
        deposit_signature: Some(signatures.deposit_signature.clone()),
        fee_signature: None,
        permit: Some(signatures.clone()),
    };
    assert_eq!(
        problem(f.buyer_api.activate_escrow(&id, &both, "both").await)?,
        (422, "invalid_field".into())
    );
    let body = ActivateEscrow {
        valid_before: None,
        deposit_signature: None,
        fee_signature: None,
        permit: Some(signatures),
    };
    let written = f.buyer_api.activate_escrow(&id, &body, "permit").await?;
    assert_eq!(written.status, 202);
    activated(&f, &f.buyer_api, &id).await?;
    Ok(())
}

/// An activation that fails (the token blocklisted the buyer before the relayer's turn) shows
/// `failed` with its reason and the agreement stays `activating`; a new package is then
/// accepted (no activation in flight any more) and goes through.
#[tokio::test]
async fn a_failed_activation_is_shown_and_may_be_submitted_again() -> eyre::Result<()> {
    let f = Fixture::new(|_| {}).await?;
    f.index().await?;
    f.round().await?;
    let c = &f.chain;
    let id = accepted(&f, &f.buyer_api, &proposal(&f)).await?;
    let first = signed(&f.buyer_api, &id, &c.buyer, &expected(&f)).await?;
    f.buyer_api.activate_escrow(&id, &first, "first").await?;
    // Submitted again while the first is in flight: refused.
    assert_eq!(
        problem(f.buyer_api.activate_escrow(&id, &first, "again").await)?,
        (409, "activation_in_flight".into())
    );
    let token = c.token();
    pactum_devnet::confirm(
        token
            .blocklist(c.buyer.address())
            .from(c.deployer.address()),
    )
    .await?;
    f.round().await?;
    let failed = f.buyer_api.usage_agreement(&id).await?;
    assert_eq!(failed.status, LifecycleStatus::Activating);
    assert_eq!(failed.activation_status, Some(ActivationStatus::Failed));
    let reason = failed
        .escrow
        .as_ref()
        .and_then(|e| e.activation_error.as_ref())
        .map(|e| e.code);
    assert!(
        reason.is_some(),
        "the failure carries its reason: {failed:?}"
    );

    pactum_devnet::confirm(
        token
            .unBlocklist(c.buyer.address())
            .from(c.deployer.address()),
    )
    .await?;
    // A new package (new validity, so new signatures).
    let package = f
        .buyer_api
        .activation_package(
            &id,
            &PackageParams {
                valid_for_seconds: Some(1_800),
            },
        )
        .await?;
    let second = sign_activation(&c.buyer, c.buyer.address(), &package, &expected(&f)).await?;
    let written = f.buyer_api.activate_escrow(&id, &second, "second").await?;
    assert_eq!(written.status, 202);
    f.round().await?;
    f.round().await?;
    f.index().await?;
    let active = f.buyer_api.usage_agreement(&id).await?;
    assert_eq!(active.status, LifecycleStatus::Active);
    let submitted = active
        .history
        .iter()
        .filter(|e| e.kind == EventKind::ActivationSubmitted)
        .count();
    assert_eq!(submitted, 2);
    Ok(())
}
