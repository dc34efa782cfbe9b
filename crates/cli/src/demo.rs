//! `pactum demo`: the whole lifecycle on a local chain, printed step by step.

use alloy::{
    network::EthereumWallet,
    primitives::{Address, U256, keccak256},
    providers::Provider,
    signers::local::PrivateKeySigner,
};
use eyre::WrapErr;
use pactum_bindings::{Agreement, InfraFeeCollector, LocalUSDC};
use pactum_devnet::{
    Deployment, dev_signer,
    scenario::{self, SettlementPath, Step, usdc},
};

/// Arguments of `pactum demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// JSON-RPC endpoint of a running development chain (Anvil). Without it, a throw-away Anvil
    /// is spawned for the run.
    #[arg(long, env = "PACTUM_RPC_URL")]
    rpc_url: Option<String>,
    /// Use the deployment of this configuration (written by `pactum deploy`) instead of deploying.
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// The pactum API to drive the agreements through (with `--owner-token`, or the agents'
    /// `--api-key` and `--seller-api-key`).
    #[arg(long)]
    api_url: Option<String>,
    /// The demo owner's JWT: the agents are then registered through the API (each wallet signing
    /// its registration), given their keys, and the buyer a policy.
    #[arg(long, env = "PACTUM_OWNER_TOKEN", conflicts_with_all = ["api_key", "seller_api_key"])]
    owner_token: Option<String>,
    /// The owner the token signs in (the agents' owner).
    #[arg(long, default_value = "demo-owner")]
    owner: String,
    /// The direct buyer's agent API key.
    #[arg(long, env = "PACTUM_API_KEY")]
    api_key: Option<String>,
    /// The direct seller's agent API key (with it, `--api-url` and `--config`, the agreements
    /// go through the API's lifecycle endpoints).
    #[arg(long, env = "PACTUM_SELLER_API_KEY")]
    seller_api_key: Option<String>,
    /// The direct buyer's agent id.
    #[arg(long, default_value = "demo-buyer")]
    buyer_agent: String,
    /// The direct seller's agent id.
    #[arg(long, default_value = "demo-seller")]
    seller_agent: String,
    /// Where to write the receipts of the buyer's agreements (for `pactum receipts verify`).
    #[arg(long, default_value = ".run/receipts")]
    receipts_out: std::path::PathBuf,
}

const USDC: u64 = 1_000_000;

pub(crate) async fn run(args: Args) -> eyre::Result<()> {
    // Keep a spawned Anvil alive for the whole run.
    let (_anvil, endpoint) = match args.rpc_url.clone() {
        Some(url) => (None, url),
        None => {
            let anvil = pactum_devnet::spawn_anvil()?;
            let endpoint = anvil.endpoint();
            (Some(anvil), endpoint)
        }
    };

    let deployer = dev_signer(0);
    let relayer = dev_signer(3);
    let treasury = dev_signer(4).address();
    let (direct_buyer, direct_seller) = (dev_signer(1), dev_signer(2));
    // The relayed agreement's parties are fresh accounts holding no ETH at all.
    let (relayed_buyer, relayed_seller) = (PrivateKeySigner::random(), PrivateKeySigner::random());

    let mut wallet = EthereumWallet::new(deployer.clone());
    for signer in [&direct_buyer, &direct_seller, &relayer] {
        wallet.register_signer(signer.clone());
    }
    let url = endpoint
        .parse()
        .wrap_err_with(|| format!("invalid RPC URL {endpoint}"))?;
    let provider = pactum_devnet::connect(url, wallet);

    let chain_id = provider
        .get_chain_id()
        .await
        .wrap_err_with(|| format!("cannot reach the chain at {endpoint}"))?;
    println!("pactum demo on {endpoint} (chain id {chain_id})");
    let deployment = match &args.config {
        Some(path) => {
            let d = deployment_of(path, chain_id)?;
            println!("\n== using the deployment in {} ==", path.display());
            println!(
                "  escrow {}  fee collector {}  token {}",
                d.escrow, d.fee_collector, d.token
            );
            d
        }
        None => {
            println!("\n== deploy ==");
            let d =
                pactum_devnet::deploy(&provider, deployer.address(), deployer.address(), treasury)
                    .await?;
            for c in &d.contracts {
                println!(
                    "  {:<22} {}  tx {}  gas {}",
                    c.name, c.address, c.tx_hash, c.gas_used
                );
            }
            d
        }
    };

    let token = LocalUSDC::new(deployment.token, &provider);
    for buyer in [&direct_buyer, &relayed_buyer] {
        let receipt = pactum_devnet::confirm(
            token
                .mint(buyer.address(), U256::from(1_000 * USDC))
                .from(deployer.address()),
        )
        .await?;
        println!(
            "  minted 1000 USDC to buyer {}  tx {}",
            buyer.address(),
            receipt.transaction_hash
        );
    }

    // With the owner's token, the owner registers the agents through the API first, and a
    // webhook receiver for them.
    let mut receiver = None;
    let (api_key, seller_api_key) = match (&args.api_url, &args.owner_token) {
        (Some(api), Some(token)) => {
            let api = pactum_client::Client::new(api)?;
            let (b, s) = crate::onboarding::onboard(
                &api,
                token,
                &args.owner,
                &deployment,
                (&args.buyer_agent, &direct_buyer),
                (&args.seller_agent, &direct_seller),
            )
            .await?;
            let owner = api.authenticated(token);
            receiver = Some((
                crate::notices::listen(&owner, &[&args.buyer_agent, &args.seller_agent]).await?,
                owner,
            ));
            (Some(b), Some(s))
        }
        _ => (args.api_key.clone(), args.seller_api_key.clone()),
    };
    if args.api_url.is_some() && api_key.is_none() {
        eyre::bail!("--api-url needs --owner-token, or --api-key (and --seller-api-key)");
    }
    match (&args.api_url, &api_key, &seller_api_key, &args.config) {
        (Some(api), Some(buyer_key), Some(seller_key), Some(config)) => {
            let api = pactum_client::Client::new(api)?;
            let direct = [
                crate::sponsored::Party {
                    label: "buyer",
                    signer: &direct_buyer,
                    api_key: buyer_key.clone(),
                },
                crate::sponsored::Party {
                    label: "seller",
                    signer: &direct_seller,
                    api_key: seller_key.clone(),
                },
            ];
            println!(
                "\n== agreement 1: proposed, accepted, activated and used through the API; settled by the parties' own wallet calls =="
            );
            println!(
                "  buyer agent {} ({})  seller agent {} ({})",
                args.buyer_agent,
                direct_buyer.address(),
                args.seller_agent,
                direct_seller.address()
            );
            let id = crate::lifecycle::drive(
                &api,
                &deployment,
                &direct[0],
                &direct[1],
                &args.seller_agent,
                "svc_inference",
                crate::lifecycle::Settlement::Direct(&provider),
            )
            .await?;
            println!("  on-chain agreement id {id}");

            println!(
                "\n== agreement 2: the same through the API, settled through the sponsored endpoints (parties only sign; the relayer in `pactum serve` submits and pays gas) =="
            );
            let [(buyer_agent, buyer_key), (seller_agent, seller_key)] =
                crate::sponsored::register(
                    config,
                    "demo-owner",
                    [("buyer", &relayed_buyer), ("seller", &relayed_seller)],
                )
                .await?;
            println!(
                "  buyer agent {buyer_agent} ({})  seller agent {seller_agent} ({})  (neither holds any ETH)",
                relayed_buyer.address(),
                relayed_seller.address()
            );
            let buyer = crate::sponsored::Party {
                label: "buyer",
                signer: &relayed_buyer,
                api_key: buyer_key,
            };
            let seller = crate::sponsored::Party {
                label: "seller",
                signer: &relayed_seller,
                api_key: seller_key,
            };
            let id = crate::lifecycle::drive(
                &api,
                &deployment,
                &buyer,
                &seller,
                &seller_agent,
                "svc_embeddings",
                crate::lifecycle::Settlement::<alloy::providers::DynProvider>::Sponsored,
            )
            .await?;
            println!("  on-chain agreement id {id}");

            println!("\n== agreement 3: proposed, and rejected by the seller ==");
            crate::lifecycle::propose_and_reject(&api, &direct[0], &direct[1], &args.seller_agent)
                .await?;
            // A few empty blocks, so that the last movements are final for the indexer (which
            // counts confirmations on the local stack).
            for _ in 0..3 {
                let _: serde_json::Value = provider
                    .raw_request("evm_mine".into(), serde_json::json!([]))
                    .await?;
            }
            // Agreement 1's four movements: deposit, fee, the seller's payout, the buyer's
            // withdrawal.
            crate::notices::receipts(
                &api.authenticated(&direct[0].api_key),
                &args.buyer_agent,
                4,
                &args.receipts_out,
            )
            .await?;
            if let Some((receiver, owner)) = &receiver {
                receiver.report(owner).await?;
            }
        }
        _ => {
            on_chain_only(
                &args,
                &provider,
                &deployment,
                [&direct_buyer, &direct_seller],
                [&relayed_buyer, &relayed_seller],
                &relayer,
            )
            .await?
        }
    }

    println!("\n== fees ==");
    let collector = InfraFeeCollector::new(deployment.fee_collector, &provider);
    let receipt =
        pactum_devnet::confirm(collector.sweep(deployment.token).from(deployer.address())).await?;
    println!(
        "  swept collected fees to treasury {treasury}  tx {}",
        receipt.transaction_hash
    );

    println!("\n== final balances ==");
    for (label, account) in [
        ("buyer 1", direct_buyer.address()),
        ("seller 1", direct_seller.address()),
        ("buyer 2", relayed_buyer.address()),
        ("seller 2", relayed_seller.address()),
        ("treasury", treasury),
        ("escrow", deployment.escrow),
    ] {
        println!(
            "  {label:<9} {account}  {}",
            usdc(token.balanceOf(account).call().await?)
        );
    }
    for (label, account) in [
        ("buyer 2", relayed_buyer.address()),
        ("seller 2", relayed_seller.address()),
    ] {
        println!(
            "  {label:<9} ETH balance {} wei",
            provider.get_balance(account).await?
        );
    }
    println!("\ndemo complete: both agreements settled; the escrow holds nothing.");
    Ok(())
}

/// Without the API: both agreements straight on chain, one by direct wallet calls, one relayed
/// (the parties sign; a funded account submits).
async fn on_chain_only<P: Provider>(
    args: &Args,
    provider: &P,
    deployment: &Deployment,
    [direct_buyer, direct_seller]: [&PrivateKeySigner; 2],
    [relayed_buyer, relayed_seller]: [&PrivateKeySigner; 2],
    relayer: &PrivateKeySigner,
) -> eyre::Result<()> {
    let usage = [
        U256::from(10 * USDC),
        U256::from(25 * USDC),
        U256::from(40 * USDC),
    ];
    println!(
        "\n== agreement 1: direct wallet calls (each party sends and pays for its own transactions) =="
    );
    println!(
        "  buyer {}  seller {}",
        direct_buyer.address(),
        direct_seller.address()
    );
    let agreement =
        demo_agreement(provider, deployment, direct_buyer, direct_seller, "direct").await?;
    let direct = scenario::run(
        provider,
        deployment,
        &agreement,
        direct_buyer,
        direct_seller,
        SettlementPath::Direct,
        &usage,
        print_step,
    )
    .await?;
    println!("  agreement id {}", direct.agreement_id);
    if let (Some(api), Some(key)) = (&args.api_url, &args.api_key) {
        let settled_tx = direct.receipts.last().map(|r| r.transaction_hash);
        crate::status::show(api, key, direct.agreement_id, settled_tx).await?;
    }
    println!(
        "\n== agreement 2: sponsored relay (parties only sign; relayer {} submits and pays gas) ==",
        relayer.address()
    );
    println!(
        "  buyer {}  seller {}  (neither holds any ETH)",
        relayed_buyer.address(),
        relayed_seller.address()
    );
    let relayer_eth_before = provider.get_balance(relayer.address()).await?;
    let agreement = demo_agreement(
        provider,
        deployment,
        relayed_buyer,
        relayed_seller,
        "relayed",
    )
    .await?;
    let relayed = scenario::run(
        provider,
        deployment,
        &agreement,
        relayed_buyer,
        relayed_seller,
        SettlementPath::Relayed {
            relayer: relayer.address(),
        },
        &usage,
        print_step,
    )
    .await?;
    println!("  agreement id {}", relayed.agreement_id);
    let relayer_spent = relayer_eth_before - provider.get_balance(relayer.address()).await?;
    println!("  relayer paid {relayer_spent} wei of gas; buyer and seller paid none");
    Ok(())
}

/// Terms for a demo agreement: 100 USDC escrowed, 1 USDC infra fee, one-week term, one-hour close window.
async fn demo_agreement<P: Provider>(
    provider: &P,
    deployment: &Deployment,
    buyer: &PrivateKeySigner,
    seller: &PrivateKeySigner,
    label: &str,
) -> eyre::Result<Agreement> {
    let now = scenario::latest_timestamp(provider).await?;
    Ok(Agreement {
        buyer: buyer.address(),
        seller: seller.address(),
        token: deployment.token,
        maxAmount: U256::from(100 * USDC),
        infraFee: U256::from(USDC),
        expiry: now + 7 * 24 * 3600,
        closeWindow: 3600,
        // Stands in for the off-chain agreement id this on-chain agreement belongs to.
        salt: keccak256(format!("pactum-demo/{label}/{now}")),
    })
}

fn print_step(step: &Step) {
    match &step.tx {
        Some(tx) => println!(
            "  [{:<13}] {}\n                  tx {}  from {}  gas {}  block {}",
            step.action,
            step.detail,
            tx.hash,
            short(tx.from),
            tx.gas_used,
            tx.block_number
        ),
        None => println!(
            "  [{:<13}] {} (off-chain signature)",
            step.action, step.detail
        ),
    }
}

fn short(address: Address) -> String {
    let s = address.to_string();
    format!("{}…{}", &s[..6], &s[s.len() - 4..])
}

/// The deployment recorded in a `pactum deploy` configuration.
fn deployment_of(path: &std::path::Path, chain_id: u64) -> eyre::Result<Deployment> {
    let config = crate::config::Config::load(Some(path))?;
    let c = &config.chain;
    let need = |v: Option<Address>, key: &str| {
        v.ok_or_else(|| eyre::eyre!("{}: chain.{key} missing", path.display()))
    };
    eyre::ensure!(
        c.chain_id == Some(chain_id),
        "{} is for chain {:?}, the node is chain {chain_id}",
        path.display(),
        c.chain_id
    );
    Ok(Deployment {
        chain_id,
        token: need(c.token, "token")?,
        sanctions_oracle: need(c.sanctions_oracle, "sanctions_oracle")?,
        fee_collector: need(c.fee_collector, "fee_collector")?,
        escrow: need(c.escrow, "escrow")?,
        start_block: c.start_block.unwrap_or_default(),
        contracts: Vec::new(),
    })
}
