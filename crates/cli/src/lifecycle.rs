//! The demo's usage agreements through the API only: the buyer proposes, the seller accepts, the
//! buyer signs the activation package it is handed and posts it, usage is recorded with the
//! buyer's vouchers, and the agreement settles by the parties' own wallet calls or through the
//! sponsored endpoints. Every step prints its HTTP call, status and the agreement's status.

use std::time::Duration;

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, U256},
    providers::Provider,
    rpc::types::TransactionRequest,
    sol_types::SolStruct,
};
use eyre::{WrapErr, bail, eyre};
use pactum_bindings::eip712::{self, Voucher};
use pactum_client::{
    Authorizer, Client, Expected, sign_activation,
    types::{
        ActivationStatus, JobState, LifecycleStatus, PackageParams, PaymentMethod,
        ProposeAgreement, RecordUsage, UsageAgreementView,
    },
};
use pactum_devnet::{Deployment, scenario::usdc};

use crate::sponsored::Party;

/// How long the demo waits for an activation or a settlement to be indexed.
const WAIT: Duration = Duration::from_secs(60);

/// Units bought, at one dollar each: 100 USDC escrowed (plus the 1 % fee).
const QUANTITY: i64 = 100;
const PRICE_CENTS: i64 = 100;
/// Cumulative usage recorded, in units.
pub(crate) const USAGE: [u64; 3] = [10, 25, 40];

/// How an agreement settles.
pub(crate) enum Settlement<'a, P> {
    /// Each party sends the calldata the API hands it from its own wallet.
    Direct(&'a P),
    /// The parties sign; the relayer submits and pays.
    Sponsored,
}

fn key(step: &str) -> String {
    format!("demo-{step}-{}", pactum_db::random_id(10))
}

fn line(call: &str, status: u16, view: &UsageAgreementView) {
    let activation = view
        .activation_status
        .map_or_else(|| "-".to_owned(), |s| s.to_string());
    println!(
        "  {call:<58} -> {status}  status {}  activation {activation}",
        view.status
    );
}

/// Proposes an agreement from `buyer` (agent `buyer_agent`) to `seller_agent`.
async fn propose(
    api: &Client,
    buyer: &Party<'_>,
    seller_agent: &str,
    service: &str,
) -> eyre::Result<UsageAgreementView> {
    let body = ProposeAgreement {
        seller_agent_id: seller_agent.to_owned(),
        service_id: service.to_owned(),
        quantity: QUANTITY,
        unit: "api_calls".into(),
        price_per_unit_cents: PRICE_CENTS,
        payment_method: PaymentMethod {
            rail: "stablecoin".into(),
            provider: "x402".into(),
        },
        settlement_model: "bilateral_escrow".into(),
        activation_version: "v2".into(),
        buyer_wallet_address: buyer.signer.address().to_string(),
        close_window_seconds: None,
        expires_in_seconds: None,
        metadata: None,
    };
    let written = api
        .authenticated(&buyer.api_key)
        .propose(&body, &key("propose"))
        .await
        .wrap_err("POST /usage-agreements")?;
    line(
        "POST /usage-agreements (buyer)",
        written.status,
        &written.body,
    );
    println!(
        "  {:<58}    {} escrowed + {} fee, {}",
        "",
        usdc(written.body.terms.max_amount.parse()?),
        usdc(written.body.terms.infra_fee.parse()?),
        written.body.agreement_id
    );
    Ok(written.body)
}

/// The seller rejects a proposal.
pub(crate) async fn propose_and_reject(
    api: &Client,
    buyer: &Party<'_>,
    seller: &Party<'_>,
    seller_agent: &str,
) -> eyre::Result<()> {
    let proposed = propose(api, buyer, seller_agent, "svc_batch_export").await?;
    let id = &proposed.agreement_id;
    let rejected = api
        .authenticated(&seller.api_key)
        .reject(id, "capacity is booked this week", &key("reject"))
        .await
        .wrap_err("PUT reject")?;
    line(
        &format!("PUT /usage-agreements/{id}/reject (seller)"),
        rejected.status,
        &rejected.body,
    );
    Ok(())
}

/// Drives one agreement from proposal to settlement; returns its on-chain id.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn drive<P: Provider>(
    api: &Client,
    deployment: &Deployment,
    buyer: &Party<'_>,
    seller: &Party<'_>,
    seller_agent: &str,
    service: &str,
    settlement: Settlement<'_, P>,
) -> eyre::Result<B256> {
    let as_buyer = api.authenticated(&buyer.api_key);
    let as_seller = api.authenticated(&seller.api_key);
    let proposed = propose(api, buyer, seller_agent, service).await?;
    let id = proposed.agreement_id.clone();

    let accepted = as_seller
        .accept(&id, &key("accept"))
        .await
        .wrap_err("PUT accept")?;
    line(
        &format!("PUT /usage-agreements/{id}/accept (seller)"),
        accepted.status,
        &accepted.body,
    );
    let onchain: B256 = accepted
        .body
        .onchain_agreement_id
        .as_deref()
        .ok_or_else(|| eyre!("accepted without an on-chain id"))?
        .parse()?;

    // The buyer signs the package it is handed, after checking it against what it agreed to.
    let package = as_buyer
        .activation_package(&id, &PackageParams::default())
        .await
        .wrap_err("GET activation-package")?;
    println!(
        "  {:<58} -> 200  deposit {} to the escrow, fee {} ({})",
        format!("GET /usage-agreements/{id}/activation-package"),
        usdc(package.terms.max_amount.parse()?),
        usdc(package.infra_fee.amount.parse()?),
        package.infra_fee.status
    );
    let expected = Expected {
        chain_id: deployment.chain_id,
        escrow: deployment.escrow,
        fee_collector: deployment.fee_collector,
        token: deployment.token,
        max_amount: package.terms.max_amount.parse()?,
        max_fee: U256::from(QUANTITY as u64 * PRICE_CENTS as u64 * 10_000 / 100),
    };
    let signed = sign_activation(buyer.signer, buyer.signer.address(), &package, &expected).await?;
    let posted = as_buyer
        .activate_escrow(&id, &signed, &key("activate"))
        .await
        .wrap_err("POST activate-escrow")?;
    line(
        &format!("POST /usage-agreements/{id}/activate-escrow (buyer)"),
        posted.status,
        &posted.body,
    );
    // Active once indexed; `confirmed` once its block is final (on the local stack's automining
    // Anvil, after `indexer.confirmations` more blocks: the settlement's own transactions).
    let active = as_buyer
        .wait_usage_agreement(&id, WAIT, |v| {
            v.status == LifecycleStatus::Active
                && matches!(
                    v.activation_status,
                    Some(ActivationStatus::Submitted | ActivationStatus::Confirmed)
                )
        })
        .await
        .wrap_err("the activation was not indexed")?;
    line(
        &format!("GET /usage-agreements/{id} (polled)"),
        200,
        &active,
    );
    println!(
        "  {:<58}    activation tx {}",
        "",
        active.activation_tx_hash.as_deref().unwrap_or("-")
    );
    // The relayer's own record of it is done too (a sponsored close would wait for it).
    if let Some(relay_id) = active.activation_relay_id.clone() {
        let relayed = as_buyer
            .wait_sponsored_action(onchain, &relay_id, WAIT, |r| {
                matches!(r.status, JobState::Confirmed | JobState::Failed)
            })
            .await?;
        println!(
            "  {:<58} -> 200  relay {}, gas {} paid by the relayer",
            format!("GET .../sponsored-actions/{relay_id} (polled)"),
            relayed.status,
            relayed.gas_used.unwrap_or_default()
        );
    }

    // Usage: the buyer signs each cumulative voucher (its own message hashing to the digest it
    // is handed); the seller records it.
    let buyer_signs = Authorizer::new(
        buyer.signer,
        deployment.chain_id,
        deployment.escrow,
        onchain,
    );
    let domain = eip712::escrow_domain(deployment.chain_id, deployment.escrow);
    let mut highest = U256::ZERO;
    for units in USAGE {
        let handed = as_seller.usage_voucher(&id, units).await?;
        let amount: U256 = handed.cumulative_amount.parse()?;
        let ours = Voucher {
            agreementId: onchain,
            cumulativeAmount: amount,
        }
        .eip712_signing_hash(&domain);
        if handed.voucher.digest != ours.to_string() {
            bail!("the usage voucher handed out is not the buyer's own");
        }
        let signature = buyer_signs.voucher(amount).await?;
        let body = RecordUsage {
            cumulative_quantity: units,
            voucher_signature: signature.to_string(),
        };
        let recorded = as_seller.record_usage(&id, &body, &key("usage")).await?;
        line(
            &format!("POST /usage-agreements/{id}/record-usage (seller)"),
            recorded.status,
            &recorded.body,
        );
        println!(
            "  {:<58}    {units} units, voucher for {}",
            "",
            usdc(amount)
        );
        highest = amount;
    }

    match settlement {
        Settlement::Direct(provider) => {
            settle_directly(&as_buyer, &as_seller, provider, buyer, seller, &id).await?;
        }
        Settlement::Sponsored => {
            crate::sponsored::settle(
                api.base().as_str(),
                deployment.chain_id,
                deployment.escrow,
                onchain,
                buyer,
                seller,
                highest,
            )
            .await?;
        }
    }
    let settled = as_buyer
        .wait_usage_agreement(&id, WAIT, |v| v.status == LifecycleStatus::Settled)
        .await
        .wrap_err("the settlement was not indexed")?;
    line(
        &format!("GET /usage-agreements/{id} (polled)"),
        200,
        &settled,
    );
    let kinds: Vec<String> = settled.history.iter().map(|e| e.kind.to_string()).collect();
    println!("  {:<58}    history: {}", "", kinds.join(" → "));
    Ok(onchain)
}

/// Each party sends, from its own wallet, the calldata the API hands it: the seller closes and
/// claims (the highest recorded voucher, by default), the buyer withdraws the rest.
async fn settle_directly<P: Provider>(
    as_buyer: &Client,
    as_seller: &Client,
    provider: &P,
    buyer: &Party<'_>,
    seller: &Party<'_>,
    id: &str,
) -> eyre::Result<()> {
    let send = |from: Address, call: pactum_client::types::DirectCall, what: &'static str| async move {
        let tx = TransactionRequest::default()
            .from(from)
            .with_to(call.to.parse()?)
            .with_input(call.data.parse::<Bytes>()?);
        let receipt = provider.send_transaction(tx).await?.get_receipt().await?;
        if !receipt.status() {
            bail!("{what} reverted: tx {}", receipt.transaction_hash);
        }
        println!(
            "  {:<58}    {what} sent by {}  tx {}  gas {}",
            "", from, receipt.transaction_hash, receipt.gas_used
        );
        Ok::<_, eyre::Report>(())
    };
    // The calldata endpoints take the API id (the client's typed methods take on-chain ids).
    let close = raw(
        as_seller,
        &format!("usage-agreements/{id}/initiate-close-calldata"),
    )
    .await?;
    println!(
        "  {:<58} -> 200",
        format!("GET /usage-agreements/{id}/initiate-close-calldata (seller)")
    );
    send(seller.signer.address(), close, "initiateClose").await?;
    as_seller
        .wait_usage_agreement(id, WAIT, |v| v.status == LifecycleStatus::Closing)
        .await?;
    let claim = raw(
        as_seller,
        &format!("usage-agreements/{id}/claim-instructions"),
    )
    .await?;
    println!(
        "  {:<58} -> 200  (the highest recorded voucher)",
        format!("GET /usage-agreements/{id}/claim-instructions (seller)")
    );
    send(seller.signer.address(), claim, "sellerClaim").await?;
    as_buyer
        .wait_usage_agreement(id, WAIT, |v| v.status == LifecycleStatus::SellerClaimed)
        .await?;
    let withdraw = raw(
        as_buyer,
        &format!("usage-agreements/{id}/claim-instructions?action=buyer_withdraw"),
    )
    .await?;
    println!(
        "  {:<58} -> 200",
        format!("GET /usage-agreements/{id}/claim-instructions?action=buyer_withdraw (buyer)")
    );
    send(buyer.signer.address(), withdraw, "buyerWithdraw").await?;
    Ok(())
}

async fn raw(api: &Client, path: &str) -> eyre::Result<pactum_client::types::DirectCall> {
    let answer = api
        .send_raw(
            alloy::transports::http::reqwest::Method::GET,
            path,
            &[],
            None,
        )
        .await?;
    if !answer.status.is_success() {
        bail!("GET {path} answered {}: {}", answer.status, answer.text());
    }
    Ok(answer.json()?)
}
