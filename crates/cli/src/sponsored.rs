//! The demo's sponsored settlement through the pactum API: the parties only sign what
//! `settlement-action-options` tells them to, post it to `sponsored-actions/...`, and the
//! relayer (inside `pactum serve`) submits it from its own key and pays the gas.

use std::time::{Duration, Instant};

use alloy::{
    primitives::{Address, B256, U256},
    signers::local::PrivateKeySigner,
    sol_types::SolStruct,
    transports::http::reqwest::{Client, StatusCode},
};
use eyre::{WrapErr, bail, eyre};
use pactum_bindings::{
    eip712::{self, BuyerWithdraw, InitiateClose, SellerClaim, Voucher},
    sign,
};
use serde_json::{Value, json};

/// A party as the API knows it: its wallet and an API key of its agent.
pub(crate) struct Party<'a> {
    pub(crate) label: &'static str,
    pub(crate) signer: &'a PrivateKeySigner,
    pub(crate) api_key: String,
}

/// Registers an agent with an API key for each party's wallet (under `owner`, created if
/// missing), straight in the database the API serves.
pub(crate) async fn register(
    config: &std::path::Path,
    owner: &str,
    wallets: [(&str, Address); 2],
) -> eyre::Result<[String; 2]> {
    let config = crate::config::Config::load(Some(config))?;
    let db = pactum_db::Db::connect(config.database_url()?, 2)
        .await
        .wrap_err("cannot open the database")?;
    let pool = db.pool();
    let mut conn = pool.acquire().await?;
    if !pactum_db::api::owner_exists(pool, owner).await? {
        pactum_db::api::create_owner(&mut conn, owner, "Demo owner", "demo@pactum.local").await?;
    }
    let mut keys = Vec::new();
    for (name, wallet) in wallets {
        let id = format!("demo-{name}-{}", &wallet.to_string()[2..10].to_lowercase());
        pactum_db::api::create_agent(&mut conn, &id, owner, name, wallet).await?;
        let (key_id, key, hash) = pactum_api::auth::generate_api_key();
        pactum_db::api::create_api_key(&mut conn, &key_id, &id, &hash, "demo").await?;
        keys.push(key);
    }
    let seller = keys.pop().ok_or_else(|| eyre!("no key"))?;
    let buyer = keys.pop().ok_or_else(|| eyre!("no key"))?;
    Ok([buyer, seller])
}

struct Api<'a> {
    base: &'a str,
    http: Client,
}

impl Api<'_> {
    async fn send(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<(&str, Value)>,
    ) -> eyre::Result<(StatusCode, Value)> {
        let url = format!("{}{path}", self.base.trim_end_matches('/'));
        let mut request = self.http.request(method.parse()?, &url).bearer_auth(key);
        if let Some((idempotency_key, body)) = body {
            request = request
                .header("idempotency-key", idempotency_key)
                .json(&body);
        }
        let response = request
            .send()
            .await
            .wrap_err_with(|| format!("cannot reach the pactum API at {}", self.base))?;
        let status = response.status();
        let body = serde_json::from_slice(&response.bytes().await?).unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// Waits until `GET path` answers 200 (the indexer has caught up with the agreement).
    async fn wait_visible(&self, path: &str, key: &str) -> eyre::Result<()> {
        let started = Instant::now();
        loop {
            let (status, body) = self.send("GET", path, key, None).await?;
            if status.is_success() {
                return Ok(());
            }
            if status != StatusCode::NOT_FOUND || started.elapsed() > Duration::from_secs(30) {
                bail!("GET {path}: {status} {body}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls a relay job until it is confirmed (or failed: an error).
    async fn wait_relay(&self, status_url: &str, key: &str) -> eyre::Result<Value> {
        let started = Instant::now();
        loop {
            let (status, body) = self.send("GET", status_url, key, None).await?;
            if !status.is_success() {
                bail!("GET {status_url}: {status} {body}");
            }
            match body["status"].as_str() {
                Some("confirmed") => return Ok(body),
                Some("failed") => bail!("the relay failed: {}", body["failure"]),
                _ if started.elapsed() > Duration::from_secs(60) => {
                    bail!("the relay did not confirm within 60 s: {body}")
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

fn deadline_of(options: &Value) -> eyre::Result<u64> {
    options["typed_data"]["message"]["deadline"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| eyre!("options carry no deadline: {options}"))
}

/// Checks that the typed data the API gave is the message we sign (same digest).
fn same_digest<S: SolStruct>(
    options: &Value,
    message: &S,
    domain: &alloy::sol_types::Eip712Domain,
) -> eyre::Result<()> {
    let ours = message.eip712_signing_hash(domain);
    eyre::ensure!(
        options["digest"].as_str() == Some(ours.to_string().as_str()),
        "the API's typed data hashes to {}, ours to {ours}",
        options["digest"]
    );
    Ok(())
}

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
    let api = Api {
        base,
        http: Client::new(),
    };
    let domain = eip712::escrow_domain(chain_id, escrow);
    let agreement = format!("/usage-agreements/{id}");
    api.wait_visible(&format!("{agreement}/escrow-status"), &buyer.api_key)
        .await?;

    // 1. The seller closes.
    let (_, options) = api
        .send(
            "GET",
            &format!("{agreement}/settlement-action-options?action=initiate_close"),
            &seller.api_key,
            None,
        )
        .await?;
    print_options("initiate_close", &options);
    let deadline = deadline_of(&options)?;
    let message = InitiateClose {
        agreementId: id,
        party: seller.signer.address(),
        deadline: U256::from(deadline),
    };
    same_digest(&options, &message, &domain)?;
    let signature = sign::sign_typed(seller.signer, &message, &domain).await?;
    let body = json!({
        "party": seller.signer.address().to_string(),
        "deadline": deadline,
        "signature": signature.to_string(),
    });
    post(&api, &agreement, "initiate-close", seller, body).await?;

    // 2. The seller claims the buyer's highest voucher.
    let voucher = sign::sign_typed(
        buyer.signer,
        &Voucher {
            agreementId: id,
            cumulativeAmount: voucher_amount,
        },
        &domain,
    )
    .await?;
    let (_, options) = api
        .send(
            "GET",
            &format!(
                "{agreement}/settlement-action-options?action=seller_claim&amount={voucher_amount}"
            ),
            &seller.api_key,
            None,
        )
        .await?;
    print_options("seller_claim", &options);
    let deadline = deadline_of(&options)?;
    let message = SellerClaim {
        agreementId: id,
        amount: voucher_amount,
        recipient: seller.signer.address(),
        deadline: U256::from(deadline),
    };
    same_digest(&options, &message, &domain)?;
    let signature = sign::sign_typed(seller.signer, &message, &domain).await?;
    let body = json!({
        "amount": voucher_amount.to_string(),
        "voucher_signature": voucher.to_string(),
        "recipient": seller.signer.address().to_string(),
        "deadline": deadline,
        "signature": signature.to_string(),
    });
    post(&api, &agreement, "seller-claim", seller, body).await?;

    // 3. The buyer withdraws the rest.
    let (_, options) = api
        .send(
            "GET",
            &format!("{agreement}/settlement-action-options?action=buyer_withdraw"),
            &buyer.api_key,
            None,
        )
        .await?;
    print_options("buyer_withdraw", &options);
    let deadline = deadline_of(&options)?;
    let message = BuyerWithdraw {
        agreementId: id,
        recipient: buyer.signer.address(),
        deadline: U256::from(deadline),
    };
    same_digest(&options, &message, &domain)?;
    let signature = sign::sign_typed(buyer.signer, &message, &domain).await?;
    let body = json!({
        "recipient": buyer.signer.address().to_string(),
        "deadline": deadline,
        "signature": signature.to_string(),
    });
    let withdraw = post(&api, &agreement, "buyer-withdraw", buyer, body).await?;
    withdraw["tx_hash"]
        .as_str()
        .and_then(|h| h.parse().ok())
        .ok_or_else(|| eyre!("confirmed relay without a tx hash: {withdraw}"))
}

fn print_options(action: &str, options: &Value) {
    println!(
        "  [options      ] {action}: possible now {}, direct path {}, sponsored path {}; sign {} (digest {})",
        options["possible_now"],
        if options["direct"]["open"] == true {
            "open"
        } else {
            "closed"
        },
        if options["sponsored"]["open"] == true {
            "open"
        } else {
            "closed"
        },
        options["typed_data"]["primaryType"].as_str().unwrap_or("-"),
        options["digest"].as_str().unwrap_or("-"),
    );
}

async fn post(
    api: &Api<'_>,
    agreement: &str,
    action: &str,
    party: &Party<'_>,
    body: Value,
) -> eyre::Result<Value> {
    let path = format!("{agreement}/sponsored-actions/{action}");
    let idempotency_key = format!("demo-{action}-{}", pactum_db::random_id(12));
    let started = Instant::now();
    let (status, accepted) = api
        .send(
            "POST",
            &path,
            &party.api_key,
            Some((&idempotency_key, body)),
        )
        .await?;
    if status != StatusCode::ACCEPTED {
        bail!("POST {path}: {status} {accepted}");
    }
    let status_url = accepted["status_url"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let done = api.wait_relay(&status_url, &party.api_key).await?;
    println!(
        "  [{action:<13}] POST {path} by the {} -> 202 {}; confirmed after {} ms\n                  tx {}  from relayer {}  gas {}  block {}",
        party.label,
        accepted["relay_id"].as_str().unwrap_or("-"),
        started.elapsed().as_millis(),
        done["tx_hash"].as_str().unwrap_or("-"),
        done["relayer"].as_str().unwrap_or("-"),
        done["gas_used"],
        done["block_number"],
    );
    Ok(done)
}
