//! `pactum api` and `pactum serve` (indexer and API in one process).

use eyre::WrapErr;
use pactum_api::AppState;
use pactum_indexer::Metrics;
use tokio::net::TcpListener;

use crate::{
    config::Config,
    indexer::{ServiceArgs, build, connect, shutdown_signal},
};

async fn api_state(
    config: &Config,
    metrics: Option<Metrics>,
) -> eyre::Result<(AppState, TcpListener)> {
    // Every setting is checked before anything connects.
    config.database_url()?;
    let (chain_id, jwt, addr) = (config.chain_id()?, config.jwt()?, config.listen()?);
    let db = connect(config).await?;
    let mut state = AppState::new(db, chain_id, jwt);
    state.max_lag_blocks = config.api.max_lag_blocks;
    state.indexer_metrics = metrics;
    let listener = TcpListener::bind(addr)
        .await
        .wrap_err_with(|| format!("cannot listen on {addr}"))?;
    Ok((state, listener))
}

/// `pactum api`: the HTTP API alone (the index is written by a separate `pactum indexer`).
pub(crate) async fn api(args: ServiceArgs) -> eyre::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    let (state, listener) = api_state(&config, None).await?;
    println!("pactum API listening on http://{}", listener.local_addr()?);
    pactum_api::serve(listener, state, shutdown_signal()).await?;
    Ok(())
}

/// `pactum serve`: indexer and API in one process, for local use.
pub(crate) async fn serve(args: ServiceArgs) -> eyre::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    crate::indexer::validate_indexer(&config)?;
    let metrics = Metrics::default();
    let (state, listener) = api_state(&config, Some(metrics.clone())).await?;
    let indexer = build(&config, state.db.clone(), metrics).await?;
    let shutdown = shutdown_signal();
    println!("pactum API listening on http://{}", listener.local_addr()?);
    let api = tokio::spawn(pactum_api::serve(listener, state, shutdown.clone()));
    let indexed = indexer.run(shutdown).await;
    // The indexer only returns on shutdown or on an error that stops the service.
    if let Err(err) = &indexed {
        tracing::error!(%err, "indexer stopped");
    }
    api.abort();
    indexed.wrap_err("indexer stopped")
}
