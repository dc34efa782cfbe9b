//! `pactum api`, `pactum relayer`, `pactum webhooks` and `pactum serve` (indexer, relayer,
//! webhook workers and API in one process).

use alloy::providers::{Provider, ProviderBuilder};
use eyre::WrapErr;
use pactum_api::AppState;
use pactum_db::Db;
use pactum_indexer::Metrics;
use pactum_relayer::{Relayer, Worker};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

use crate::{
    config::{Config, Pool},
    indexer::{ServiceArgs, build, connect, shutdown_signal},
};

async fn bind(addr: std::net::SocketAddr) -> eyre::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .wrap_err_with(|| format!("cannot listen on {addr}"))
}

/// The API's state and listeners: its own and, with `api.metrics_listen`, the metrics one.
async fn api_state(
    config: &Config,
    db: Db,
    metrics: Option<Metrics>,
) -> eyre::Result<(AppState, TcpListener, Option<TcpListener>)> {
    let (chain_id, addr) = (config.chain_id()?, config.listen()?);
    let mut state = AppState::new(db, chain_id, None);
    state.owner_tokens = config.owner_tokens()?;
    state.max_lag_blocks = config.api.max_lag_blocks;
    state.idempotency_lease = config.idempotency_lease()?;
    state.indexer_metrics = metrics;
    state.trusted_tokens = config.trusted_tokens();
    if state.trusted_tokens == pactum_core::TrustedTokens::Only(Vec::new()) {
        tracing::warn!(
            "no trusted token configured (chain.tokens): every agreement is shown with \
             token_trusted = false and none is sponsored"
        );
    }
    state.agreements = agreement_settings(config).await?;
    state.webhook_destinations = config.webhook_destinations();
    if let Some(key) = config.receipt_key()? {
        state.receipts = Some(pactum_api::receipts::ReceiptSettings {
            signer: key.address(),
            retired: config.receipts.retired_signers.clone(),
            contracts: config.contracts()?,
        });
    }
    let listener = bind(addr).await?;
    let metrics_listener = match config.metrics_listen()? {
        Some(addr) => {
            state.metrics_on_api = false;
            Some(bind(addr).await?)
        }
        None => None,
    };
    Ok((state, listener, metrics_listener))
}

/// What new usage agreements are made in: the configured token (its decimals read from the
/// chain), the fee, the escrow. `None` without a token: proposals are then refused with 503.
async fn agreement_settings(
    config: &Config,
) -> eyre::Result<Option<pactum_api::agreements::AgreementSettings>> {
    let fees = config.fee_schedule()?;
    let Some(token) = config.agreement_token()? else {
        tracing::warn!("no agreement token configured (agreements.token): proposals are refused");
        return Ok(None);
    };
    let escrow = config
        .chain
        .escrow
        .ok_or_else(|| eyre::eyre!("chain.escrow (PACTUM_CHAIN_ESCROW) is required"))?;
    let fee_collector = config.chain.fee_collector.ok_or_else(|| {
        eyre::eyre!("chain.fee_collector (PACTUM_CHAIN_FEE_COLLECTOR) is required")
    })?;
    let provider = ProviderBuilder::new().connect_http(config.rpc_url()?);
    let decimals = pactum_bindings::LocalUSDC::new(token, &provider)
        .decimals()
        .call()
        .await
        .wrap_err_with(|| format!("cannot read the decimals of agreement token {token}"))?;
    tracing::info!(%token, decimals, fee_bps = fees.bps, "usage agreements enabled");
    Ok(Some(pactum_api::agreements::AgreementSettings {
        escrow,
        fee_collector,
        token,
        decimals,
        fees,
    }))
}

/// Serves the API (and `/metrics` on its own address, if configured) until `shutdown`.
async fn serve_api(
    state: AppState,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    println!("pactum API listening on http://{addr} (owner dashboard: http://{addr}/dashboard)");
    let metrics = metrics_listener.map(|l| {
        if let Ok(addr) = l.local_addr() {
            println!("pactum metrics on http://{addr}/metrics");
        }
        tokio::spawn(pactum_api::serve_metrics(
            l,
            state.clone(),
            shutdown.clone(),
        ))
    });
    let sweep = state.agreements.is_some().then(|| {
        tokio::spawn(pactum_api::agreements::sweep_expired(
            state.db.clone(),
            shutdown.clone(),
        ))
    });
    let served = pactum_api::serve(listener, state, shutdown).await;
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    if let Some(sweep) = sweep {
        sweep.abort();
    }
    served
}

/// The relayer (when keys are configured) and, with a workers' pool, one running worker per
/// key. Acceptance uses `db` (the API's pool).
async fn start_relayer(
    config: &Config,
    db: &Db,
    workers: Option<Db>,
    shutdown: &watch::Receiver<bool>,
) -> eyre::Result<Option<(Relayer, Vec<JoinHandle<()>>)>> {
    let Some((keys, settings)) = config.relayer()? else {
        return Ok(None);
    };
    let provider = ProviderBuilder::new()
        .connect_http(config.rpc_url()?)
        .erased();
    let addresses = keys.iter().map(|k| k.address()).collect();
    let worker_db = workers.clone().unwrap_or_else(|| db.clone());
    let relayer = Relayer::with_pools(db.clone(), worker_db, provider, settings, addresses)
        .await
        .wrap_err("cannot start the relayer")?;
    let mut handles = Vec::new();
    if workers.is_some() {
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

/// A webhook delivery worker over its own pool, running until `shutdown`; and its counters.
async fn start_webhooks(
    config: &Config,
    shutdown: &watch::Receiver<bool>,
) -> eyre::Result<(JoinHandle<()>, std::sync::Arc<pactum_webhooks::Metrics>)> {
    let settings = config.webhook_settings()?;
    let db = connect(config, Pool::Webhooks).await?;
    let worker =
        pactum_webhooks::Worker::new(db, settings).wrap_err("cannot start the webhook worker")?;
    let metrics = worker.metrics();
    let shutdown = shutdown.clone();
    let task = tokio::spawn(async move {
        if let Err(err) = worker.run(shutdown).await {
            tracing::error!(%err, "webhook worker stopped");
        }
    });
    Ok((task, metrics))
}

/// The receipt issuer (with `receipts.key` configured), over `db`, until `shutdown`.
fn start_receipts(
    config: &Config,
    db: Db,
    shutdown: &watch::Receiver<bool>,
) -> eyre::Result<Option<JoinHandle<()>>> {
    let Some(key) = config.receipt_key()? else {
        tracing::warn!("no receipt key configured (receipts.key): no receipts are issued");
        return Ok(None);
    };
    let provider = ProviderBuilder::new()
        .connect_http(config.rpc_url()?)
        .erased();
    let issuer =
        pactum_receipts::Issuer::new(db, provider, key, config.chain_id()?, config.contracts()?);
    println!("pactum receipts signed by {}", issuer.signer());
    Ok(Some(tokio::spawn(issuer.run(shutdown.clone()))))
}

/// `pactum webhooks`: a webhook delivery worker alone (any number may run, in any processes).
pub(crate) async fn webhooks(args: ServiceArgs) -> eyre::Result<()> {
    let config = Config::load(args.config.as_deref())?;
    config.database_url()?;
    config.webhook_settings()?;
    let shutdown = shutdown_signal();
    let (worker, _) = start_webhooks(&config, &shutdown).await?;
    println!("pactum webhook worker running");
    let _ = worker.await;
    Ok(())
}

fn validate(config: &Config) -> eyre::Result<()> {
    config.database_url()?;
    config.webhook_settings()?;
    if config.receipt_key()?.is_some() {
        config.contracts()?;
    }
    config.chain_id()?;
    config.owner_tokens()?;
    config.listen()?;
    config.idempotency_lease()?;
    config.metrics_listen()?;
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
    let db = connect(&config, Pool::Api).await?;
    let shutdown = shutdown_signal();
    let (mut state, listener, metrics) = api_state(&config, db.clone(), None).await?;
    state.relayer = start_relayer(&config, &db, None, &shutdown)
        .await?
        .map(|(r, _)| r);
    serve_api(state, listener, metrics, shutdown).await?;
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
    let db = connect(&config, Pool::Relayer).await?;
    let shutdown = shutdown_signal();
    let Some((_, workers)) = start_relayer(&config, &db, Some(db.clone()), &shutdown).await? else {
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
    // One pool per component: the API's load cannot take the indexer's or the workers'
    // connections.
    let api_db = connect(&config, Pool::Api).await?;
    let indexer_db = connect(&config, Pool::Indexer).await?;
    let worker_db = connect(&config, Pool::Relayer).await?;
    // The issuer's few queries share the indexer's pool: it follows the index.
    let worker_receipts_db = indexer_db.clone();
    let shutdown = shutdown_signal();
    let (mut state, listener, metrics_listener) =
        api_state(&config, api_db.clone(), Some(metrics.clone())).await?;
    let relayer = start_relayer(&config, &api_db, Some(worker_db), &shutdown).await?;
    let workers = match relayer {
        Some((relayer, workers)) => {
            state.relayer = Some(relayer);
            workers
        }
        None => Vec::new(),
    };
    let indexer = build(&config, indexer_db, metrics).await?;
    let webhooks = if config.webhooks.workers {
        let (task, counters) = start_webhooks(&config, &shutdown).await?;
        state.webhook_metrics = Some(counters);
        Some(task)
    } else {
        None
    };
    let receipts = start_receipts(&config, worker_receipts_db, &shutdown)?;
    let api = tokio::spawn(serve_api(
        state,
        listener,
        metrics_listener,
        shutdown.clone(),
    ));
    let indexed = indexer.run_elected(shutdown).await;
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
    for task in [webhooks, receipts].into_iter().flatten() {
        if indexed.is_err() {
            task.abort();
        }
        let _ = task.await;
    }
    api.abort();
    indexed.wrap_err("indexer stopped")
}
