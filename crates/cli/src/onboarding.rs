//! The demo's owner side, through the API only: the owner (signed in with its JWT) registers each
//! agent with its wallet's EIP-712 proof, issues its API key, and sets a policy on the buyer,
//! which then refuses a proposal above the owner's price limit and holds larger ones for the
//! owner's approval (one approved, one rejected). Every step prints its HTTP call and status.

use alloy::signers::local::PrivateKeySigner;
use eyre::{WrapErr, bail};
use pactum_client::{
    Client, Registration, sign_registration,
    types::{
        ApprovalStatus, ListApprovals, PaymentMethod, Policy, ProposeAgreement, RegistrationParams,
    },
};
use pactum_devnet::Deployment;

fn key(step: &str) -> String {
    format!("demo-{step}-{}", pactum_db::random_id(10))
}

/// Registers agent `agent_id` acting from `wallet` as the owner of `owner` (its JWT client) and
/// issues its API key; returns the key.
async fn register(
    owner: &Client,
    owner_id: &str,
    deployment: &Deployment,
    agent_id: &str,
    wallet: &PrivateKeySigner,
) -> eyre::Result<String> {
    let message = owner
        .registration_message(&RegistrationParams {
            agent_id: agent_id.to_owned(),
            wallet_address: wallet.address().to_string(),
            deadline: None,
        })
        .await
        .wrap_err("GET /agents/registration-message")?;
    println!(
        "  {:<58} -> 200  digest {}",
        format!("GET /agents/registration-message ({agent_id})"),
        message.registration.digest
    );
    // The wallet signs the registration it builds itself (the same digest as handed out).
    let body = sign_registration(
        wallet,
        &Registration {
            chain_id: deployment.chain_id,
            escrow: deployment.escrow,
            owner_id,
            agent_id,
            name: agent_id,
            deadline: message.deadline,
        },
    )
    .await?;
    let agent = owner
        .register_agent(&body, &key("register"))
        .await
        .wrap_err("POST /agents")?;
    println!(
        "  {:<58} -> {}  wallet {} proven: {}",
        format!("POST /agents ({agent_id}, wallet-signed)"),
        agent.status,
        agent.body.wallet_address,
        agent.body.wallet_proven
    );
    let issued = owner
        .create_api_key(agent_id, "demo", &key("api-key"))
        .await
        .wrap_err("POST /agents/{agent_id}/api-keys")?;
    println!(
        "  {:<58} -> {}  key {} (shown once)",
        format!("POST /agents/{agent_id}/api-keys"),
        issued.status,
        issued.body.key_id
    );
    Ok(issued.body.api_key)
}

/// Registers the buyer and seller agents of `owner_id` (their wallets signing), sets the
/// buyer's policy and shows it refusing a proposal above its price limit; returns the buyer's and
/// the seller's API keys.
pub(crate) async fn onboard(
    api: &Client,
    owner_token: &str,
    owner_id: &str,
    deployment: &Deployment,
    buyer: (&str, &PrivateKeySigner),
    seller: (&str, &PrivateKeySigner),
) -> eyre::Result<(String, String)> {
    println!("\n== the owner registers its agents through the API, each wallet proving itself ==");
    let owner = api.authenticated(owner_token);
    let buyer_key = register(&owner, owner_id, deployment, buyer.0, buyer.1).await?;
    let seller_key = register(&owner, owner_id, deployment, seller.0, seller.1).await?;

    println!("\n== the owner sets the buyer's policy; the buyer's agent is held to it ==");
    let current = owner.policy(buyer.0).await.wrap_err("GET policies")?;
    let policy = Policy {
        max_price_per_unit_cents: Some(150),
        daily_limit_cents: Some(50_000),
        allowed_rails: Some(vec!["stablecoin".into()]),
        approval_threshold_cents: Some(20_000),
        ..Policy::default()
    };
    let set = owner
        .put_policy(buyer.0, &current.etag, &policy, &key("policy"))
        .await
        .wrap_err("PUT policies")?;
    println!(
        "  {:<58} -> {}  version {}: at most $1.50 a unit, $500 a day, stablecoin only, above $200 the owner approves",
        format!(
            "PUT /agents/{}/policies (If-Match {})",
            buyer.0, current.etag
        ),
        set.status,
        set.body.version
    );
    let pricey = ProposeAgreement {
        seller_agent_id: seller.0.to_owned(),
        service_id: "svc_premium".into(),
        quantity: 10,
        unit: "api_calls".into(),
        price_per_unit_cents: 200,
        payment_method: PaymentMethod {
            rail: "stablecoin".into(),
            provider: "x402".into(),
        },
        settlement_model: "bilateral_escrow".into(),
        activation_version: "v2".into(),
        buyer_wallet_address: buyer.1.address().to_string(),
        close_window_seconds: None,
        expires_in_seconds: None,
        metadata: None,
    };
    match api
        .authenticated(&buyer_key)
        .propose(&pricey, &key("pricey"))
        .await
    {
        Err(pactum_client::Error::Problem(p)) if p.code == "policy_violation" => println!(
            "  {:<58} -> {}  {}: {}",
            "POST /usage-agreements ($2.00 a unit)", p.status, p.code, p.detail
        ),
        other => bail!("the buyer's policy should have refused a $2.00 unit price: {other:?}"),
    }
    let buyer_api = api.authenticated(&buyer_key);
    let seller_api = api.authenticated(&seller_key);
    println!("\n== above $200 the proposal waits for the owner: one approved, one rejected ==");
    let mut large = ProposeAgreement {
        service_id: "svc_bulk_inference".into(),
        quantity: 300,
        price_per_unit_cents: 100,
        ..pricey
    };
    let approved = propose_for_approval(&buyer_api, &large, "$300").await?;
    let pending = owner
        .approvals(
            buyer.0,
            &ListApprovals {
                status: Some(ApprovalStatus::Pending),
                ..ListApprovals::default()
            },
        )
        .await
        .wrap_err("GET approvals")?;
    for r in &pending.approvals {
        println!(
            "  {:<58} -> 200  {} {}: ${:.2} above ${:.2}, expires {}",
            format!("GET /agents/{}/approvals?status=pending", buyer.0),
            r.request_id,
            r.status,
            cents(r.amount_cents),
            cents(r.threshold_cents),
            r.expires_at
        );
    }
    let decided = owner
        .approve(buyer.0, &approved.1, &key("approve"))
        .await
        .wrap_err("POST approve")?;
    println!(
        "  {:<58} -> {}  {} by {}",
        format!("POST /agents/{}/approvals/{}/approve", buyer.0, approved.1),
        decided.status,
        decided.body.status,
        decided.body.decided_by.as_deref().unwrap_or("-")
    );
    let accepted = seller_api
        .accept(&approved.0, &key("accept-approved"))
        .await
        .wrap_err("PUT accept")?;
    println!(
        "  {:<58} -> {}  status {}",
        format!("PUT /usage-agreements/{}/accept (seller)", approved.0),
        accepted.status,
        accepted.body.status
    );
    large.quantity = 250;
    let (rejected_id, request) = propose_for_approval(&buyer_api, &large, "$250").await?;
    let reason = "not this quarter";
    let decided = owner
        .reject_approval(buyer.0, &request, reason, &key("reject-approval"))
        .await
        .wrap_err("POST reject")?;
    println!(
        "  {:<58} -> {}  {}: {reason:?}",
        format!("POST /agents/{}/approvals/{request}/reject", buyer.0),
        decided.status,
        decided.body.status,
    );
    let view = buyer_api
        .usage_agreement(&rejected_id)
        .await
        .wrap_err("GET agreement")?;
    let history: Vec<_> = view.history.iter().map(|e| e.kind.as_str()).collect();
    println!(
        "  {:<58} -> 200  status {}  history {}",
        format!("GET /usage-agreements/{rejected_id}"),
        view.status,
        history.join(" > ")
    );
    Ok((buyer_key, seller_key))
}

fn cents(c: u64) -> f64 {
    // Display only.
    #[allow(clippy::cast_precision_loss)]
    let dollars = c as f64 / 100.0;
    dollars
}

/// Proposes `body` (above the buyer's approval threshold); returns the agreement's id and its
/// approval request's.
async fn propose_for_approval(
    buyer_api: &Client,
    body: &ProposeAgreement,
    total: &str,
) -> eyre::Result<(String, String)> {
    let written = buyer_api
        .propose(body, &key("propose-large"))
        .await
        .wrap_err("POST /usage-agreements")?;
    let request = written
        .body
        .history
        .iter()
        .find_map(|e| e.detail.get("request_id").and_then(|r| r.as_str()))
        .ok_or_else(|| eyre::eyre!("a {total} proposal should wait for approval"))?
        .to_owned();
    println!(
        "  {:<58} -> {}  status {}  approval request {request}",
        format!("POST /usage-agreements ({total})"),
        written.status,
        written.body.status
    );
    Ok((written.body.agreement_id, request))
}
