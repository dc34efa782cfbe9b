//! `pactum receipts verify FILE --rpc-url URL --signer ADDRESS --escrow ADDRESS`: checks a
//! receipt document (as `GET /receipts/{receipt_id}` answers it) against a chain node, trusting
//! neither the API nor its database: the signature must be the published signer's in the
//! published deployment's domain, and the transaction, block and log it cites must state exactly
//! its movement, final.

use std::path::PathBuf;

use alloy::{primitives::Address, providers::ProviderBuilder};
use clap::{Args as ClapArgs, Subcommand};
use eyre::{WrapErr, bail};
use pactum_api::types::ReceiptView;

/// `pactum receipts`.
#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify a receipt document against a chain node (exit status 1 if it does not hold).
    Verify(VerifyArgs),
}

#[derive(Debug, ClapArgs)]
struct VerifyArgs {
    /// The receipt document (JSON, as `GET /receipts/{receipt_id}` answers it).
    file: PathBuf,
    /// A node of the receipt's chain.
    #[arg(long, env = "PACTUM_CHAIN_RPC_URL")]
    rpc_url: String,
    /// The receipt signer's address, as the operator publishes it (not the one the document
    /// names).
    #[arg(long)]
    signer: Address,
    /// The deployment's escrow, as the operator publishes it (not the one the document names);
    /// its fee collector is read from it on chain.
    #[arg(long)]
    escrow: Address,
    /// Blocks on top of the receipt's block required; without it, the block must be at or
    /// below the node's `finalized` block (12 confirmations on a node without the tag).
    #[arg(long)]
    confirmations: Option<u64>,
    /// The block to look for the agreement's activation from (for the token of a payout or a
    /// withdrawal; the deployment's block keeps the search short on hosted nodes).
    #[arg(long, default_value_t = 0)]
    from_block: u64,
}

pub(crate) async fn run(args: Args) -> eyre::Result<()> {
    let Command::Verify(args) = args.command;
    let text = std::fs::read_to_string(&args.file)
        .wrap_err_with(|| format!("cannot read {}", args.file.display()))?;
    let doc: ReceiptView = serde_json::from_str(&text)
        .wrap_err_with(|| format!("{} is not a receipt document", args.file.display()))?;
    let provider = ProviderBuilder::new().connect_http(
        args.rpc_url
            .parse()
            .wrap_err_with(|| format!("--rpc-url {:?} is not a URL", args.rpc_url))?,
    );
    let trusted = pactum_receipts::Trusted {
        signer: args.signer,
        escrow: args.escrow,
        finality: args.confirmations.map_or(
            pactum_receipts::Finality::Finalized,
            pactum_receipts::Finality::Confirmations,
        ),
        from_block: args.from_block,
    };
    let verdict = pactum_receipts::verify_on_node(&provider, &doc, trusted).await?;
    if verdict.valid {
        println!(
            "receipt {} holds: {} of token {} from {} to {}, log {} of block {} (tx {}), signed by {}",
            doc.receipt_id,
            doc.amount,
            doc.token,
            doc.payer,
            doc.payee,
            doc.log_index,
            doc.block_number,
            doc.tx_hash,
            args.signer
        );
        return Ok(());
    }
    println!("receipt {} does NOT hold:", doc.receipt_id);
    for reason in &verdict.reasons {
        println!("  - {reason}");
    }
    bail!("the receipt does not hold")
}
