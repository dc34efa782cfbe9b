//! `pactum api`, `pactum relayer` and `pactum serve` (indexer, relayer and API in one process).

use alloy::providers::{Provider, ProviderBuilder};
use eyre::WrapErr;
use pactum_api::AppState;
use pactum_db::Db;
use pactum_indexer::Metrics;
use pactum_relayer::{Relayer, Worker};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

use crate::{
    config::Config,
    indexer::{ServiceArgs, build, connect, shutdown_signal},
};

async fn api_state(
    config: &Config,
    db: Db,
    metrics: Option<Metrics>,
) -> eyre::Result<(AppState, TcpListener)> {
    let (chain_id, jwt, addr) = (config.chain_id()?, config.jwt()?, config.listen()?);
    let mut state = AppState::new(db, chain_id, jwt);
    state.max_lag_blocks = config.api.max_lag_blocks;
    state.indexer_metrics = metrics;
    let listener = TcpListener::bind(addr)
        .await
        .wrap_err_with(|| format!("cannot listen on {addr}"))?;
    Ok((state, listener))
}

/// The relayer (when keys are configured) and, with `workers`, one running worker per key.
async fn start_relayer(
    config: &Config,
    db: &Db,
    workers: bool,
    shutdown: &watch::Receiver<bool>,
) -> eyre::Result<Option<(Relayer, Vec<JoinHandle<()>>)>> {
    let Some((keys, settings)) = config.relayer()? else {
        return Ok(None);
    };
    let provider = ProviderBuilder::new()
        .connect_http(config.rpc_url()?)
        .erased();
    let addresses = keys.iter().map(|k| k.address()).collect();
    let relayer = Relayer::new(db.clone(), provider, settings, addresses)
        .await
        .wrap_err("cannot start the relayer")?;
    let mut handles = Vec::new();
    if workers {
        for key in keys {
            let worker = Worker::new(relayer.clone(), key);
            let shutdown = shutdown.clone();
            handles.push(tokio::spawn(async move {
                let signer = worker.address();
                if let Err(err) = worker.run(shutdown).await {
                    tracing::error!(%signer, %err, "relayer worker stopped");
                }
            }));
        }
    }
    Ok(Some((relayer, handles)))
}

fn validate(config: &Config) -> eyre::Result<()> {
    config.database_url()?;
    config.chain_id()?;
    config.jwt()?;
    config.listen()?;
    if config.relayer()?.is_some() {
        config.rpc_url()?;
    }
    Ok(())
}

/// `pactum api`: the HTTP API alone (the index is written by a separate `pactum indexer`; with
/// relayer keys configured it accepts sponsored actions, which `pactum relayer` submits).
pub(crate) async fn api(args: ServiceArgs) -> eyre::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    validate(&config)?;
    let db = connect(&config).await?;
    let shutdown = shutdown_signal();
    let (mut state, listener) = api_state(&config, db.clone(), None).await?;
    state.relayer = start_relayer(&config, &db, false, &shutdown)
        .await?
        .map(|(r, _)| r);
    println!("pactum API listening on http://{}", listener.local_addr()?);
    pactum_api::serve(listener, state, shutdown).await?;
    Ok(())
}

/// `pactum relayer`: the relayer's workers alone (one per key), submitting the jobs accepted by
/// `pactum api`.
pub(crate) async fn relayer(args: ServiceArgs) -> eyre::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    config.database_url()?;
    config.rpc_url()?;
    if config.relayer()?.is_none() {
        eyre::bail!("relayer.keys (PACTUM_RELAYER_KEYS) is required");
    }
    let db = connect(&config).await?;
    let shutdown = shutdown_signal();
    let Some((_, workers)) = start_relayer(&config, &db, true, &shutdown).await? else {
        return Ok(());
    };
    println!("pactum relayer running {} worker(s)", workers.len());
    for worker in workers {
        let _ = worker.await;
    }
    Ok(())
}

/// `pactum serve`: indexer, relayer (if keys are configured) and API in one process.
pub(crate) async fn serve(args: ServiceArgs) -> eyre::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    crate::indexer::validate_indexer(&config)?;
    validate(&config)?;
    let metrics = Metrics::default();
    let db = connect(&config).await?;
    let shutdown = shutdown_signal();
    let (mut state, listener) = api_state(&config, db.clone(), Some(metrics.clone())).await?;
    let relayer = start_relayer(&config, &db, true, &shutdown).await?;
    let workers = match relayer {
        Some((relayer, workers)) => {
            state.relayer = Some(relayer);
            workers
        }
        None => Vec::new(),
    };
    let indexer = build(&config, db, metrics).await?;
    println!("pactum API listening on http://{}", listener.local_addr()?);
    let api = tokio::spawn(pactum_api::serve(listener, state, shutdown.clone()));
    let indexed = indexer.run(shutdown).await;
    // The indexer only returns on shutdown or on an error that stops the service.
    if let Err(err) = &indexed {
        tracing::error!(%err, "indexer stopped");
    }
    for worker in workers {
        if indexed.is_err() {
            worker.abort();
        }
        let _ = worker.await;
    }
    api.abort();
    indexed.wrap_err("indexer stopped")
}
