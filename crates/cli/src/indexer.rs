//! `pactum indexer` and `pactum verify`.

use std::path::PathBuf;

use alloy::providers::{Provider, ProviderBuilder};
use eyre::WrapErr;
use pactum_db::Db;
use pactum_indexer::{Indexer, Metrics, events::Contracts};
use tokio::sync::watch;

use crate::config::{Config, Pool};

/// Arguments shared by the service commands.
#[derive(Debug, clap::Args)]
pub(crate) struct ServiceArgs {
    /// Configuration file (TOML); environment variables override it (see the README).
    #[arg(long, short, env = "PACTUM_CONFIG")]
    pub(crate) config: Option<PathBuf>,
}

/// A pool of its own for `pool`'s component, sized by its setting.
pub(crate) async fn connect(config: &Config, pool: Pool) -> eyre::Result<Db> {
    let url = config.database_url()?;
    Db::connect(url, config.pool_size(pool)?)
        .await
        .wrap_err_with(|| format!("cannot open the database ({pool:?} pool)"))
}

pub(crate) async fn build(config: &Config, db: Db, metrics: Metrics) -> eyre::Result<Indexer> {
    let indexer_config = config.indexer()?;
    let provider = ProviderBuilder::new()
        .connect_http(config.rpc_url()?)
        .erased();
    Indexer::new(indexer_config, db, provider, metrics)
        .await
        .wrap_err("cannot start the indexer")
}

/// A channel that turns true on SIGINT or SIGTERM.
pub(crate) fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
        }
        tracing::info!("shutdown requested");
        let _ = tx.send(true);
    });
    rx
}

/// Every indexer setting, checked before anything connects.
pub(crate) fn validate_indexer(config: &Config) -> eyre::Result<()> {
    config.database_url()?;
    config.indexer()?;
    config.rpc_url()?;
    Ok(())
}

pub(crate) async fn run(args: ServiceArgs) -> eyre::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    validate_indexer(&config)?;
    let db = connect(&config, Pool::Indexer).await?;
    let indexer = build(&config, db, Metrics::default()).await?;
    indexer.run_elected(shutdown_signal()).await?;
    Ok(())
}

pub(crate) async fn verify(args: ServiceArgs) -> eyre::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let c = config.indexer()?;
    let db = connect(&config, Pool::Indexer).await?;
    let report = pactum_indexer::verify::verify(
        &db,
        c.chain_id,
        Contracts {
            escrow: c.escrow,
            fee_collector: c.fee_collector,
        },
    )
    .await?;
    println!(
        "{} events, {} agreements recomputed, {} mismatches",
        report.events,
        report.agreements,
        report.mismatches.len()
    );
    for m in &report.mismatches {
        println!("  {m}");
    }
    eyre::ensure!(
        report.mismatches.is_empty(),
        "derived state differs from its events"
    );
    Ok(())
}
