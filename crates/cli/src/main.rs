//! `pactum`: the project's command line.

use clap::{Parser, Subcommand};

mod admin;
mod config;
mod demo;
mod deploy;
mod indexer;
mod lifecycle;
mod notices;
mod onboarding;
mod receipts;
mod serve;
mod sponsored;
mod status;

/// pactum: usage agreements between AI agents, settled through an on-chain escrow.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Deploy the contracts to a local chain and drive two demo agreements through their whole
    /// lifecycle: once with each party sending its own transactions, once with the parties only
    /// signing and a gas-sponsoring relayer account submitting everything.
    Demo(demo::Args),
    /// Deploy the contracts to a development chain and write the services' configuration.
    Deploy(deploy::Args),
    /// Follow the escrow and fee-collector events into PostgreSQL (until SIGINT/SIGTERM).
    Indexer(indexer::ServiceArgs),
    /// Recompute every agreement's state from the stored events and compare with the stored rows.
    Verify(indexer::ServiceArgs),
    /// Serve the HTTP API over the indexed state (until SIGINT/SIGTERM).
    Api(indexer::ServiceArgs),
    /// Run the relayer's workers: submit accepted sponsored actions from the configured keys.
    Relayer(indexer::ServiceArgs),
    /// Run a webhook delivery worker (any number may run, in any processes).
    Webhooks(indexer::ServiceArgs),
    /// Run the indexer, the relayer (if keys are configured), the webhook workers and the API in
    /// one process.
    Serve(indexer::ServiceArgs),
    /// Register owners, agents and API keys; mint owner JWTs.
    Admin(admin::Args),
    /// Receipts: verify one against a chain node.
    Receipts(receipts::Args),
}

#[tokio::main]
async fn main() -> eyre::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                "warn,pactum_indexer=info,pactum_api=info,pactum_relayer=info,pactum_webhooks=info,pactum_receipts=info".into()
            }),
        )
        .with_target(true)
        .init();
    match Cli::parse().command {
        Command::Demo(args) => demo::run(args).await,
        Command::Deploy(args) => deploy::run(args).await,
        Command::Indexer(args) => indexer::run(args).await,
        Command::Verify(args) => indexer::verify(args).await,
        Command::Api(args) => serve::api(args).await,
        Command::Relayer(args) => serve::relayer(args).await,
        Command::Webhooks(args) => serve::webhooks(args).await,
        Command::Serve(args) => serve::serve(args).await,
        Command::Admin(args) => admin::run(args).await,
        Command::Receipts(args) => receipts::run(args).await,
    }
}
