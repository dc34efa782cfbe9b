//! `pactum deploy`: deploys the contract set to a development chain and writes a complete
//! service configuration for it.

use std::{fmt::Write, path::PathBuf};

use alloy::{network::EthereumWallet, signers::local::PrivateKeySigner};
use eyre::WrapErr;
use pactum_devnet::dev_signer;

/// Arguments of `pactum deploy`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// JSON-RPC endpoint of the development chain.
    #[arg(long, env = "PACTUM_RPC_URL", default_value = "http://127.0.0.1:8545")]
    rpc_url: String,
    /// Where to write the configuration (TOML) for `pactum serve`, `pactum indexer`, `pactum api`.
    #[arg(long)]
    config_out: PathBuf,
    /// Database URL to put in the configuration.
    #[arg(
        long,
        default_value = "postgres://postgres@127.0.0.1:5432/pactum_local"
    )]
    database_url: String,
    /// API listen address to put in the configuration.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
}

pub(crate) async fn run(args: Args) -> eyre::Result<()> {
    let deployer = dev_signer(0);
    let url = args
        .rpc_url
        .parse()
        .wrap_err_with(|| format!("invalid RPC URL {}", args.rpc_url))?;
    let provider = pactum_devnet::connect(url, EthereumWallet::new(deployer.clone()));
    let d = pactum_devnet::deploy(
        &provider,
        deployer.address(),
        deployer.address(),
        dev_signer(4).address(),
    )
    .await
    .wrap_err_with(|| format!("cannot deploy to {}", args.rpc_url))?;
    for c in &d.contracts {
        println!(
            "  {:<22} {}  tx {}  gas {}",
            c.name, c.address, c.tx_hash, c.gas_used
        );
    }
    // A fresh HS256 key for local owner JWTs.
    let secret = alloy::hex::encode(pactum_api::auth::random_bytes());
    let mut toml = String::new();
    let _ = writeln!(
        toml,
        "# Written by `pactum deploy` for the local stack; see the README for every setting."
    );
    let _ = writeln!(toml, "[database]\nurl = \"{}\"\n", args.database_url);
    let _ = writeln!(
        toml,
        "[chain]\nrpc_url = \"{}\"\nchain_id = {}\nescrow = \"{}\"\nfee_collector = \"{}\"\nstart_block = {}\ntokens = [\"{}\"]\ntoken = \"{}\"\nsanctions_oracle = \"{}\"\n",
        args.rpc_url,
        d.chain_id,
        d.escrow,
        d.fee_collector,
        d.start_block,
        d.token,
        d.token,
        d.sanctions_oracle
    );
    let _ = writeln!(
        toml,
        "[indexer]\nconfirmations = 2\nuse_finalized_tag = false\npoll_interval_ms = 100\n"
    );
    let _ = writeln!(
        toml,
        "[api]\nlisten = \"{}\"\njwt_secret = \"{secret}\"",
        args.listen
    );
    // The relayer pays gas from development account 5 (a development chain's well-known key).
    let _ = writeln!(
        toml,
        "\n[relayer]\nkeys = [\"{}\"]\ntokens = [\"{}\"]\nstuck_after_ms = 5000",
        pactum_devnet::DEV_PRIVATE_KEYS[5],
        d.token
    );
    // A fresh receipt key for the local stack (publish its address; keep the key secret).
    let receipt_key = PrivateKeySigner::random();
    let _ = writeln!(
        toml,
        "\n[receipts]\nkey = \"{}\"",
        alloy::hex::encode_prefixed(receipt_key.to_bytes())
    );
    println!("  receipts will be signed by {}", receipt_key.address());
    // The local stack's receivers are on this machine, over plain http.
    let _ = writeln!(
        toml,
        "\n[webhooks]\nallow_http = true\nallow_private_destinations = true"
    );
    std::fs::write(&args.config_out, toml)
        .wrap_err_with(|| format!("cannot write {}", args.config_out.display()))?;
    println!("  configuration written to {}", args.config_out.display());
    Ok(())
}
