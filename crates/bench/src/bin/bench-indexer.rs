//! Indexer benchmarks, printed as a table:
//! - backfill: at least 100,000 genuine escrow events on Anvil, indexed from scratch into a fresh
//!   database; end-to-end events/s next to the raw `eth_getLogs` rate of the same node in the
//!   same run, and peak memory of the indexing phase;
//! - the write path alone: the same decoded events into another fresh database, in batches, with
//!   the derived state, the duplicate check and the checkpoint;
//! - head lag: following a chain that mines a block every second under load; lag in blocks,
//!   sampled every 20 ms.

use std::time::{Duration, Instant};

use alloy::{providers::Provider, rpc::types::Filter};
use pactum_bench::{LoadChain, peak_rss_mib, percentile, reset_peak_rss, thousands};
use pactum_db::{
    index::{self, BlockRef, Cursor},
    testing::TestDatabase,
};
use pactum_indexer::{
    Batch, Config, Indexer, Metrics,
    events::{Contracts, Records},
    write_batch,
};
use tokio::sync::watch;

const TARGET_EVENTS: u64 = 100_000;
const PER_TX: u64 = 100;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> eyre::Result<()> {
    let mut rows: Vec<(String, String, String)> = Vec::new();

    // ---- generate ------------------------------------------------------------------------
    let mut chain = LoadChain::start(&["--gas-limit", "100000000"]).await?;
    let started = Instant::now();
    let txs = TARGET_EVENTS.div_ceil(PER_TX * 6);
    for _ in 0..txs {
        chain.drive(PER_TX, PER_TX, true).await?;
    }
    let generated_in = started.elapsed();
    let d = chain.deployment.clone();
    let head = chain.provider.get_block_number().await?;
    let contracts = Contracts {
        escrow: d.escrow,
        fee_collector: d.fee_collector,
    };

    // ---- backfill --------------------------------------------------------------------------
    let db = TestDatabase::create().await?;
    let mut config = Config::new(d.chain_id, d.escrow, d.fee_collector, d.start_block);
    config.use_finalized_tag = false;
    config.confirmations = 0;
    let mut indexer = Indexer::new(
        config,
        db.db().clone(),
        chain.provider.clone(),
        Metrics::default(),
    )
    .await?;
    reset_peak_rss();
    let started = Instant::now();
    let steps = indexer.catch_up().await?;
    let secs = started.elapsed().as_secs_f64();
    let peak = peak_rss_mib();
    let mut conn = db.db().pool().acquire().await?;
    let records = index::all_events(&mut conn, d.chain_id).await?;
    drop(conn);
    let rate = records.len() as f64 / secs;
    rows.push((
        "backfill end to end (fetch, decode, derive, write, checkpoint)".into(),
        String::new(),
        "≥ 10,000 events/s and ≥ 50% of raw".into(),
    ));
    rows.push((
        "peak memory while indexing (RSS)".into(),
        format!("{peak:.0} MiB"),
        "≤ 512 MiB".into(),
    ));

    // ---- raw eth_getLogs over the same ranges ---------------------------------------------
    let ranges: Vec<(u64, u64)> = steps
        .iter()
        .filter_map(|s| match s {
            pactum_indexer::Step::Indexed { from, to, .. } if to >= from => Some((*from, *to)),
            _ => None,
        })
        .collect();
    let started = Instant::now();
    let mut raw_events = 0usize;
    for (from, to) in &ranges {
        let filter = Filter::new()
            .address(vec![d.escrow, d.fee_collector])
            .from_block(*from)
            .to_block(*to);
        raw_events += chain.provider.get_logs(&filter).await?.len();
    }
    let raw_rate = raw_events as f64 / started.elapsed().as_secs_f64();
    eyre::ensure!(
        raw_events == records.len(),
        "raw fetch saw {raw_events} events"
    );
    rows.insert(
        0,
        (
            "events generated (escrow + fee collector)".into(),
            format!(
                "{} in {} blocks ({:.0} s to generate)",
                thousands(raw_events as f64),
                head - d.start_block + 1,
                generated_in.as_secs_f64()
            ),
            format!("≥ {}", thousands(TARGET_EVENTS as f64)),
        ),
    );
    rows.insert(
        1,
        (
            format!(
                "raw eth_getLogs, the indexer's {} ranges, nothing else",
                ranges.len()
            ),
            format!("{} events/s", thousands(raw_rate)),
            "—".into(),
        ),
    );
    rows[2].1 = format!(
        "{} events/s ({:.0}% of raw), {} batches",
        thousands(rate),
        100.0 * rate / raw_rate,
        ranges.len()
    );

    // ---- write path alone ------------------------------------------------------------------
    let decoded = records
        .iter()
        .map(|r| contracts.decode_record(r))
        .collect::<Result<Vec<_>, _>>()?;
    let fresh = TestDatabase::create().await?;
    let mut conn = fresh.db().pool().acquire().await?;
    index::init_cursor(
        &mut conn,
        &Cursor {
            chain_id: d.chain_id,
            escrow: d.escrow,
            fee_collector: d.fee_collector,
            start_block: d.start_block,
            block_number: i64::try_from(d.start_block)? - 1,
            block_hash: Default::default(),
            finalized_block: 0,
            node_head: 0,
        },
    )
    .await?;
    drop(conn);
    let started = Instant::now();
    let mut expected = (i64::try_from(d.start_block)? - 1, Default::default());
    let mut i = 0;
    while i < records.len() {
        // Whole blocks, about 10,000 events per transaction (the indexer's target).
        let mut j = (i + 10_000).min(records.len());
        while j < records.len() && records[j].block_number == records[j - 1].block_number {
            j += 1;
        }
        let last = &records[j - 1];
        let block = BlockRef {
            number: last.block_number,
            hash: last.block_hash,
            parent_hash: Default::default(),
        };
        write_batch(
            fresh.db(),
            d.chain_id,
            expected,
            128,
            &Batch {
                records: &records[i..j],
                decoded: &decoded[i..j],
                blocks: &[block],
                last: block,
                finalized: block.number,
                head: block.number,
            },
        )
        .await?;
        expected = (i64::try_from(block.number)?, block.hash);
        i = j;
    }
    let write_rate = records.len() as f64 / started.elapsed().as_secs_f64();
    rows.push((
        "write path alone (10,000-event transactions)".into(),
        format!("{} events/s", thousands(write_rate)),
        "≥ 50,000 events/s".into(),
    ));
    db.drop_database().await?;
    fresh.drop_database().await?;
    drop(chain);

    // ---- head lag --------------------------------------------------------------------------
    let mut chain = LoadChain::start(&["--block-time", "1"]).await?;
    let d = chain.deployment.clone();
    let lag_db = TestDatabase::create().await?;
    let mut config = Config::new(d.chain_id, d.escrow, d.fee_collector, d.start_block);
    config.use_finalized_tag = false;
    config.confirmations = 2;
    config.poll_interval = Duration::from_millis(50);
    let metrics = Metrics::default();
    let indexer = Indexer::new(
        config,
        lag_db.db().clone(),
        chain.provider.clone(),
        metrics.clone(),
    )
    .await?;
    let (stop, stopped) = watch::channel(false);
    let follower = tokio::spawn(indexer.run(stopped));
    let provider = chain.provider.clone();
    let sampler = tokio::spawn(async move {
        let mut lags = Vec::new();
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end {
            let head = provider.get_block_number().await.unwrap_or_default();
            let indexed = metrics.snapshot().indexed_block;
            lags.push(head.saturating_sub(indexed) as f64);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        lags
    });
    let load_end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < load_end {
        chain.drive(3, 2, false).await?;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut lags = sampler.await?;
    let _ = stop.send(true);
    follower.await??;
    let samples = lags.len();
    rows.push((
        format!("head lag following 1 s blocks under load ({samples} samples)"),
        format!(
            "p50 {} / p99 {} / max {} blocks",
            percentile(&mut lags, 0.5),
            percentile(&mut lags, 0.99),
            percentile(&mut lags, 1.0)
        ),
        "p99 ≤ 1 block".into(),
    ));
    lag_db.drop_database().await?;

    println!("\n| indexer benchmark | measured | goal |\n|---|---|---|");
    for (name, value, goal) in rows {
        println!("| {name} | {value} | {goal} |");
    }
    Ok(())
}
