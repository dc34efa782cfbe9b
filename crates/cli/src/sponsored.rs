//! The demo's sponsored settlement through the pactum API: the parties only sign what
//! `settlement-action-options` tells them to, post it to `sponsored-actions/...`, and the
//! relayer (inside `pactum serve`) submits it from its own key and pays the gas.

use std::time::{Duration, Instant};

use alloy::{
    primitives::{Address, B256, U256},
    signers::local::PrivateKeySigner,
};
use eyre::{WrapErr, bail, eyre};
use pactum_client::{
    Authorizer, Client,
    types::{ActionOptions, JobState, OptionsParams, PathOption, RelayView, SettlementAction},
};

/// A party as the API knows it: its wallet and an API key of its agent.
pub(crate) struct Party<'a> {
    pub(crate) label: &'static str,
    pub(crate) signer: &'a PrivateKeySigner,
    pub(crate) api_key: String,
}

/// Registers an agent with an API key for each party's wallet (under `owner`, created if
/// missing), straight in the database the API serves; returns each `(agent id, API key)`.
pub(crate) async fn register(
    config: &std::path::Path,
    owner: &str,
    wallets: [(&str, &PrivateKeySigner); 2],
) -> eyre::Result<[(String, String); 2]> {
    let config = crate::config::Config::load(Some(config))?;
    let db = pactum_db::Db::connect(config.database_url()?, 2)
        .await
        .wrap_err("cannot open the database")?;
    let deployment = config.registration_deployment()?;
    let pool = db.pool();
    let mut conn = pool.acquire().await?;
    if !pactum_db::identity::owner_exists(pool, owner).await? {
        pactum_db::identity::create_owner(&mut conn, owner, "Demo owner", "demo@pactum.local")
            .await?;
    }
    let mut keys = Vec::new();
    for (name, wallet) in wallets {
        let id = format!(
            "demo-{name}-{}",
            &wallet.address().to_string()[2..10].to_lowercase()
        );
        // The wallet signs its registration, as `POST /agents` requires.
        pactum_api::identity::register_with_key(&db, deployment, owner, &id, name, wallet)
            .await
            .map_err(|p| eyre!("registering {id}: {} ({})", p.0.detail, p.0.code))?;
        let (key_id, key, hash) = pactum_api::auth::generate_api_key();
        pactum_db::identity::create_api_key(&mut conn, &key_id, &id, &hash, "demo").await?;
        keys.push((id, key));
    }
    let seller = keys.pop().ok_or_else(|| eyre!("no key"))?;
    let buyer = keys.pop().ok_or_else(|| eyre!("no key"))?;
    Ok([buyer, seller])
}

/// How long the demo waits for the index to see the agreement, and for a relay to confirm.
const WAIT: Duration = Duration::from_secs(60);

/// Closes, claims (the highest voucher) and withdraws an active agreement through the sponsored
/// endpoints; returns the settling transaction.
pub(crate) async fn settle(
    base: &str,
    chain_id: u64,
    escrow: Address,
    id: B256,
    buyer: &Party<'_>,
    seller: &Party<'_>,
    voucher_amount: U256,
) -> eyre::Result<B256> {
    let api = Client::new(base)?;
    let as_buyer = api.authenticated(&buyer.api_key);
    let as_seller = api.authenticated(&seller.api_key);
    as_buyer
        .wait_escrow_status(id, WAIT, |_| true)
        .await
        .wrap_err("the index does not show the agreement")?;
    let buyer_signs = Authorizer::new(buyer.signer, chain_id, escrow, id);
    let seller_signs = Authorizer::new(seller.signer, chain_id, escrow, id);

    // 1. The seller closes.
    let options = as_seller
        .settlement_action_options(id, &OptionsParams::of(SettlementAction::InitiateClose))
        .await?;
    print_options(&options);
    let body = seller_signs.initiate_close(&options).await?;
    let key = idempotency_key("initiate-close");
    let accepted = as_seller.sponsor_initiate_close(id, &body, &key).await?;
    confirm(&as_seller, id, "initiate_close", seller, accepted.body).await?;

    // 2. The seller claims the buyer's highest voucher.
    let voucher = buyer_signs.voucher(voucher_amount).await?;
    let params = OptionsParams {
        amount: Some(voucher_amount.to_string()),
        ..OptionsParams::of(SettlementAction::SellerClaim)
    };
    let options = as_seller.settlement_action_options(id, &params).await?;
    print_options(&options);
    let body = seller_signs
        .seller_claim(&options, voucher_amount, &voucher, seller.signer.address())
        .await?;
    let key = idempotency_key("seller-claim");
    let accepted = as_seller.sponsor_seller_claim(id, &body, &key).await?;
    confirm(&as_seller, id, "seller_claim", seller, accepted.body).await?;

    // 3. The buyer withdraws the rest.
    let options = as_buyer
        .settlement_action_options(id, &OptionsParams::of(SettlementAction::BuyerWithdraw))
        .await?;
    print_options(&options);
    let body = buyer_signs
        .buyer_withdraw(&options, buyer.signer.address())
        .await?;
    let key = idempotency_key("buyer-withdraw");
    let accepted = as_buyer.sponsor_buyer_withdraw(id, &body, &key).await?;
    let withdraw = confirm(&as_buyer, id, "buyer_withdraw", buyer, accepted.body).await?;
    withdraw
        .tx_hash
        .as_deref()
        .and_then(|h| h.parse().ok())
        .ok_or_else(|| eyre!("confirmed relay {} without a tx hash", withdraw.relay_id))
}

fn idempotency_key(action: &str) -> String {
    format!("demo-{action}-{}", pactum_db::random_id(12))
}

fn print_options(options: &ActionOptions) {
    let open = |path: &PathOption| if path.open { "open" } else { "closed" };
    let primary = options
        .typed_data
        .as_ref()
        .and_then(|t| t["primaryType"].as_str())
        .unwrap_or("-");
    println!(
        "  [options      ] {}: possible now {}, direct path {}, sponsored path {}; sign {primary} (digest {})",
        options.action,
        options.possible_now,
        open(&options.direct),
        open(&options.sponsored),
        options.digest.as_deref().unwrap_or("-"),
    );
}

/// Waits for an accepted relay to confirm (a failed one is an error) and prints what it took.
async fn confirm(
    api: &Client,
    id: B256,
    action: &str,
    party: &Party<'_>,
    accepted: RelayView,
) -> eyre::Result<RelayView> {
    let started = Instant::now();
    let done = api
        .wait_sponsored_action(id, &accepted.relay_id, WAIT, |r| {
            matches!(r.status, JobState::Confirmed | JobState::Failed)
        })
        .await?;
    if done.status == JobState::Failed {
        bail!("the relay {} failed: {:?}", done.relay_id, done.failure);
    }
    println!(
        "  [{action:<13}] {} by the {} -> 202 {}; confirmed after {} ms\n                  tx {}  from relayer {}  gas {}  block {}",
        accepted.status_url,
        party.label,
        accepted.relay_id,
        started.elapsed().as_millis(),
        done.tx_hash.as_deref().unwrap_or("-"),
        done.relayer.as_deref().unwrap_or("-"),
        done.gas_used.unwrap_or_default(),
        done.block_number.unwrap_or_default(),
    );
    Ok(done)
}
