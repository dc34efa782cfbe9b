//! Several indexers over one database ([`Indexer::run_elected`]), each with its own pool as
//! separate processes would have: one writes, the others stand by; a writer whose lock session
//! the server ends stops writing and a standby takes over; so does one when the writer shuts
//! down. Whatever the handovers, the index is the chain's.

use std::time::{Duration, Instant};

use pactum_db::{Db, index, testing::TestDatabase};
use pactum_indexer::{Config, Indexer, Metrics};
use tokio::{sync::watch, task::JoinHandle};

use super::{assert_equals_fresh_index, assert_matches_chain, lifecycle::populate};
use crate::chain::Chain;

struct Replica {
    metrics: Metrics,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), pactum_indexer::Error>>,
}

async fn replica(chain: &Chain, url: &str) -> eyre::Result<Replica> {
    let d = &chain.deployment;
    let mut config = Config::new(d.chain_id, d.escrow, d.fee_collector, d.start_block);
    config.batch_blocks = 4;
    config.use_finalized_tag = false;
    config.confirmations = 64;
    config.poll_interval = Duration::from_millis(50);
    let metrics = Metrics::default();
    let indexer = Indexer::new(
        config,
        Db::connect(url, 3).await?,
        chain.provider.clone(),
        metrics.clone(),
    )
    .await?;
    let (stop, stopped) = watch::channel(false);
    Ok(Replica {
        metrics,
        stop,
        task: tokio::spawn(indexer.run_elected(stopped)),
    })
}

/// Waits until exactly one running replica writes and the index reached the node's head; that
/// replica's position.
async fn settled(chain: &Chain, db: &Db, replicas: &[Replica]) -> eyre::Result<usize> {
    let started = Instant::now();
    loop {
        let leaders: Vec<usize> = replicas
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.task.is_finished() && r.metrics.snapshot().leader)
            .map(|(i, _)| i)
            .collect();
        let head = alloy::providers::Provider::get_block_number(&chain.provider).await?;
        let mut conn = db.pool().acquire().await?;
        let indexed = index::load_cursor(&mut conn, chain.deployment.chain_id)
            .await?
            .map_or(-1, |c| c.block_number);
        if leaders.len() == 1 && indexed == i64::try_from(head)? {
            return Ok(leaders[0]);
        }
        eyre::ensure!(
            started.elapsed() < Duration::from_secs(30),
            "no single caught-up writer: leaders {leaders:?}, indexed {indexed} of {head}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_writer_at_a_time_and_a_standby_takes_over() -> eyre::Result<()> {
    let chain = Chain::start().await?;
    let test_db = TestDatabase::create().await?;
    let db = test_db.db();
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(replica(&chain, test_db.url()).await?);
    }
    populate(&chain, "elect-1").await?;
    let first = settled(&chain, db, &replicas).await?;
    let terms =
        |rs: &[Replica]| -> u64 { rs.iter().map(|r| r.metrics.snapshot().leader_terms).sum() };
    assert_eq!(terms(&replicas), 1, "one writer so far, never replaced");

    // The server ends the writer's lock session (as when its connection is cut): it stops
    // writing, and the lock goes to whoever asks first.
    let killed: bool = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_locks
         WHERE locktype = 'advisory' AND granted AND objsubid = 1
           AND ((classid::bigint << 32) | objid::bigint) = hashtextextended($1, 0)",
    )
    .bind(format!("pactum.indexer:{}", chain.deployment.chain_id))
    .fetch_one(db.pool())
    .await?;
    assert!(killed, "the writer's lock session was found and ended");
    // Within a lock check (a second) the writer notices and stands by; the lock is taken again.
    let started = Instant::now();
    while terms(&replicas) < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nobody took the lock over"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("index writer replaced after {:?}", started.elapsed());
    populate(&chain, "elect-2").await?;
    settled(&chain, db, &replicas).await?;
    assert_eq!(
        terms(&replicas),
        2,
        "the lock was taken once more, and only once"
    );
    assert!(
        !replicas[first].task.is_finished(),
        "a writer that lost its lock stands by, it does not stop"
    );

    // The writer shuts down: a standby takes over.
    let writer = settled(&chain, db, &replicas).await?;
    replicas[writer].stop.send(true)?;
    let stopped = replicas.remove(writer);
    stopped.task.await??;
    assert!(!stopped.metrics.snapshot().leader);
    populate(&chain, "elect-3").await?;
    settled(&chain, db, &replicas).await?;
    assert_eq!(
        terms(&replicas) + stopped.metrics.snapshot().leader_terms,
        3
    );

    for r in &replicas {
        r.stop.send(true)?;
    }
    for r in replicas {
        r.task.await??;
    }
    assert_matches_chain(&chain, db).await?;
    assert_equals_fresh_index(&chain, db).await?;
    Ok(())
}

/// A writer told to stop while its node is down (every call retried without end) stops at once,
/// releasing the lock, instead of hanging the process's shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_stops_at_once_even_while_its_node_is_down() -> eyre::Result<()> {
    let chain = Chain::start().await?;
    let test_db = TestDatabase::create().await?;
    let writer = replica(&chain, test_db.url()).await?;
    settled(&chain, test_db.db(), std::slice::from_ref(&writer)).await?;
    drop(chain); // the node is gone (the writer keeps its own provider, which now fails)
    tokio::time::sleep(Duration::from_millis(300)).await;
    writer.stop.send(true)?;
    let stopped = tokio::time::timeout(Duration::from_secs(5), writer.task).await;
    assert!(
        stopped.is_ok(),
        "the writer did not stop within 5 s of being told to"
    );
    stopped???;
    Ok(())
}

/// Two writers at once, without the lock (as a writer that lost it still finishing a batch):
/// the checkpoint, locked first in every write, lets one commit and stops the other before it
/// writes anything, with `CursorMoved` (not a duplicate-event error, which would stop a process
/// for good).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_at_once_one_commits_the_other_finds_the_checkpoint_moved() -> eyre::Result<()>
{
    let chain = Chain::start().await?;
    populate(&chain, "race").await?;
    let test_db = TestDatabase::create().await?;
    let db = test_db.db();
    let make = || async {
        let d = &chain.deployment;
        let mut config = Config::new(d.chain_id, d.escrow, d.fee_collector, d.start_block);
        config.batch_blocks = 1;
        config.use_finalized_tag = false;
        config.confirmations = 0;
        Indexer::new(
            config,
            Db::connect(test_db.url(), 2).await?,
            chain.provider.clone(),
            Metrics::default(),
        )
        .await
        .map_err(eyre::Report::from)
    };
    let (mut a, mut b) = (make().await?, make().await?);
    let (ra, rb) = tokio::join!(a.catch_up(), b.catch_up());
    let mut moved = 0;
    for result in [ra.map(|_| ()), rb.map(|_| ())] {
        match result {
            Ok(()) => {}
            Err(pactum_indexer::Error::Db(pactum_db::Error::CursorMoved { .. })) => moved += 1,
            Err(other) => eyre::bail!("a racing writer failed otherwise: {other}"),
        }
    }
    assert_eq!(moved, 1, "exactly one of the two writers was stopped");
    assert_matches_chain(&chain, db).await?;
    assert_equals_fresh_index(&chain, db).await?;
    Ok(())
}
