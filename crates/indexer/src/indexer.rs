use std::{collections::BTreeMap, time::Duration};

use alloy::{
    primitives::{Address, B256},
    providers::DynProvider,
};
use pactum_core::{
    AgreementStatus,
    agreement::{EventKind, LifecycleStatus},
};
use pactum_db::{
    Db,
    agreements::{ChainFact, OnChain},
    index::{self, AgreementRecord, BlockRef, Cursor, EventRecord, Transition},
};
use sqlx::Acquire;
use tokio::sync::{mpsc, watch};

use crate::{
    Error,
    derive::{self, derive_all},
    events::{Contracts, PactumEvent, Records},
    metrics::Metrics,
    source::{Backoff, Source},
};

mod elect;
pub use elect::STANDBY_POLL;

/// What the indexer follows and how.
#[derive(Debug, Clone)]
pub struct Config {
    /// The chain id the node must report.
    pub chain_id: u64,
    /// The escrow.
    pub escrow: Address,
    /// The fee collector.
    pub fee_collector: Address,
    /// The deployment block: indexing starts here.
    pub start_block: u64,
    /// Most blocks per `eth_getLogs` request and per database transaction.
    pub batch_blocks: u64,
    /// Events a batch aims at: the block span shrinks when a batch brings more and grows (up to
    /// `batch_blocks`) when it brings fewer, which bounds memory whatever the backlog's density.
    pub target_batch_events: usize,
    /// Blocks behind the head that count as final when the node has no `finalized` tag (or
    /// when `use_finalized_tag` is off).
    pub confirmations: u64,
    /// Use the node's `finalized` tag when it has one.
    pub use_finalized_tag: bool,
    /// How many blocks below the indexed block a reorg may reach and still be rolled back.
    pub reorg_window: u64,
    /// How long to wait for a new block once at the head.
    pub poll_interval: Duration,
    /// Retry policy for transient node failures.
    pub backoff: Backoff,
}

impl Config {
    /// Defaults for everything but the chain and the contracts.
    pub fn new(chain_id: u64, escrow: Address, fee_collector: Address, start_block: u64) -> Self {
        Self {
            chain_id,
            escrow,
            fee_collector,
            start_block,
            batch_blocks: 2_000,
            target_batch_events: 10_000,
            confirmations: 12,
            use_finalized_tag: true,
            reorg_window: 128,
            poll_interval: Duration::from_millis(250),
            backoff: Backoff::default(),
        }
    }

    fn validate(&self) -> Result<(), Error> {
        if self.batch_blocks == 0 {
            return Err(Error::Config("batch_blocks must be at least 1".into()));
        }
        if self.reorg_window < self.confirmations {
            return Err(Error::Config(format!(
                "reorg_window ({}) must be at least confirmations ({})",
                self.reorg_window, self.confirmations
            )));
        }
        if self.escrow == self.fee_collector {
            return Err(Error::Config("escrow and fee collector must differ".into()));
        }
        Ok(())
    }
}

/// What one [`Indexer::step`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Blocks `from..=to` were indexed with `events` events.
    Indexed {
        /// First block.
        from: u64,
        /// Last block.
        to: u64,
        /// Events stored.
        events: usize,
    },
    /// A reorg was rolled back to `fork` (the last block still on the node's chain).
    RolledBack {
        /// The fork point.
        fork: u64,
        /// The indexed block before the rollback.
        from: u64,
        /// Events deleted.
        events: u64,
    },
    /// The chain changed while a batch starting at `from` was read; nothing was written and the
    /// batch is read again.
    Retry {
        /// First block of the dropped batch.
        from: u64,
    },
    /// Nothing new: the indexed block is the node's head.
    AtHead {
        /// The head.
        head: u64,
    },
}

/// The longest the indexer waits between attempts while the database is unreachable.
pub const MAX_DB_BACKOFF: Duration = Duration::from_secs(30);

/// The wait before attempt `failures + 1` while the database is unreachable: the poll interval
/// (at least 100 ms), doubled per failure, at most [`MAX_DB_BACKOFF`].
fn db_backoff(poll_interval: Duration, failures: u32) -> Duration {
    let base = poll_interval.max(Duration::from_millis(100));
    base.saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(16)))
        .min(MAX_DB_BACKOFF)
}

/// The indexer for one chain and one contract set.
#[derive(Debug)]
pub struct Indexer {
    config: Config,
    db: Db,
    source: Source,
    contracts: Contracts,
    metrics: Metrics,
    cursor: Cursor,
    /// Blocks per batch, adapted to the event density.
    span: u64,
    /// While [`Indexer::run`] or a term of [`Indexer::run_elected`] runs: when it turns true,
    /// no further batch is committed (a backfill stops between batches).
    stop: Option<watch::Receiver<bool>>,
}

impl Indexer {
    /// Checks the node's chain id, and creates (or checks) the database checkpoint.
    pub async fn new(
        config: Config,
        db: Db,
        provider: DynProvider,
        metrics: Metrics,
    ) -> Result<Self, Error> {
        config.validate()?;
        let source = Source::new(
            provider,
            vec![config.escrow, config.fee_collector],
            config.backoff,
            metrics.clone(),
        );
        let actual = source.chain_id().await?;
        if actual != config.chain_id {
            return Err(Error::WrongChain {
                configured: config.chain_id,
                actual,
            });
        }
        let start = source.block(config.start_block).await?.ok_or_else(|| {
            Error::Config(format!(
                "start block {} is not on the node",
                config.start_block
            ))
        })?;
        let initial = Cursor {
            chain_id: config.chain_id,
            escrow: config.escrow,
            fee_collector: config.fee_collector,
            start_block: config.start_block,
            block_number: i64::try_from(config.start_block).unwrap_or(i64::MAX) - 1,
            block_hash: start.parent_hash,
            finalized_block: 0,
            node_head: 0,
        };
        let mut conn = db.pool().acquire().await.map_err(pactum_db::Error::from)?;
        let cursor = index::init_cursor(&mut conn, &initial).await?;
        // Remember the start block's parent, so that a reorg replacing every indexed block (down
        // to the start block) still finds its fork point.
        if cursor.block_number == initial.block_number && config.start_block > 0 {
            let base = source
                .block(config.start_block - 1)
                .await?
                .ok_or_else(|| Error::Node(format!("block {} missing", config.start_block - 1)))?;
            index::insert_blocks(&mut conn, config.chain_id, &[base]).await?;
        }
        if config.confirmations == 0 && !config.use_finalized_tag {
            tracing::warn!(
                "confirmations = 0 without the finalized tag: every block counts as final, so reorgs \
                 are not detected within batches; use this only on development chains"
            );
        }
        drop(conn);
        tracing::info!(
            chain_id = config.chain_id,
            escrow = %config.escrow,
            fee_collector = %config.fee_collector,
            indexed = cursor.block_number,
            "indexer ready"
        );
        Ok(Self {
            contracts: Contracts {
                escrow: config.escrow,
                fee_collector: config.fee_collector,
            },
            span: config.batch_blocks.min(16),
            stop: None,
            config,
            db,
            source,
            metrics,
            cursor,
        })
    }

    /// The checkpoint as of the last step.
    pub fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    /// The counters this indexer updates.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Follows the chain until `shutdown` turns true: indexes while behind, polls at the head.
    /// Returns only on shutdown or on an error that retrying cannot fix.
    ///
    /// The database going away is not such an error: the indexer waits (backing off from the
    /// poll interval to [`MAX_DB_BACKOFF`]), reloads its checkpoint, which the database kept
    /// with the last committed batch, and goes on from there; [`Metrics`] say so meanwhile.
    ///
    /// With other indexers over the same database, use [`Indexer::run_elected`] instead.
    pub async fn run(mut self, shutdown: watch::Receiver<bool>) -> Result<(), Error> {
        self.metrics.lead(true);
        let result = self.follow(shutdown, false).await;
        self.metrics.lead(false);
        result
    }

    /// The loop of [`Indexer::run`]; with `reload`, the checkpoint is read back first (another
    /// writer may have moved it since this one last looked).
    pub(crate) async fn follow(
        &mut self,
        mut shutdown: watch::Receiver<bool>,
        reload: bool,
    ) -> Result<(), Error> {
        self.stop = Some(shutdown.clone());
        let mut backfilled = false;
        let mut failures = 0u32;
        // After a failure, nothing runs until the checkpoint is read back: a commit whose answer
        // was lost may have moved it, and the in-memory one would then be stale.
        let mut reload = reload;
        loop {
            if *shutdown.borrow() {
                tracing::info!(indexed = self.cursor.block_number, "indexer stopping");
                return Ok(());
            }
            let reloading = reload;
            // The work races the stop signal: a node or database that is down is retried without
            // end below, and a stop must not wait for it. Work dropped mid-way loses nothing (its
            // transaction, with the checkpoint, is rolled back or was committed whole).
            let work = async {
                if reloading {
                    self.reload_cursor().await.map(|()| None)
                } else if backfilled {
                    self.step().await.map(Some)
                } else {
                    self.backfill().await.map(|_| None)
                }
            };
            let worked = tokio::select! {
                worked = work => worked,
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        tracing::info!(indexed = self.cursor.block_number, "indexer stopping");
                        return Ok(());
                    }
                    continue;
                }
            };
            let pause = match worked {
                Ok(step) => {
                    if failures > 0 {
                        tracing::info!(
                            failures,
                            indexed = self.cursor.block_number,
                            "the database is back; indexing resumes"
                        );
                        self.metrics.db_recovered();
                        failures = 0;
                    }
                    if reloading {
                        // Then the backfill, from the checkpoint just read.
                        reload = false;
                        continue;
                    }
                    backfilled = true;
                    match step {
                        Some(Step::AtHead { .. } | Step::Retry { .. }) => self.config.poll_interval,
                        _ => continue,
                    }
                }
                Err(err) if err.is_transient() => {
                    failures = failures.saturating_add(1);
                    self.metrics.db_failed();
                    let pause = db_backoff(self.config.poll_interval, failures);
                    tracing::warn!(%err, failures, retry_ms = pause.as_millis() as u64, "the database is unreachable; the indexer waits and retries");
                    // Whatever the failed attempt did is either committed with its checkpoint
                    // or not at all: go on from the stored checkpoint.
                    backfilled = false;
                    reload = true;
                    pause
                }
                Err(err) => return Err(err),
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Reads the checkpoint back from the database (after a failure whose commit is unknown).
    async fn reload_cursor(&mut self) -> Result<(), Error> {
        let mut conn = self.db.acquire().await?;
        if let Some(cursor) = index::load_cursor(&mut conn, self.config.chain_id).await? {
            self.cursor = cursor;
        }
        Ok(())
    }

    /// Indexes until the head is reached (for tests and the benchmark); returns the steps taken.
    pub async fn catch_up(&mut self) -> Result<Vec<Step>, Error> {
        let mut steps = self.backfill().await?;
        loop {
            let step = self.step().await?;
            let done = matches!(step, Step::AtHead { .. });
            if let Step::Retry { .. } = step {
                tokio::time::sleep(self.config.poll_interval.min(Duration::from_millis(50))).await;
            }
            steps.push(step);
            if done {
                return Ok(steps);
            }
        }
    }

    /// Whether the run or term in progress was asked to stop.
    fn stopping(&self) -> bool {
        self.stop.as_ref().is_some_and(|s| *s.borrow())
    }

    fn indexed(&self) -> u64 {
        // -1 (nothing indexed yet, start block 0) maps to 0 for head comparisons below.
        u64::try_from(self.cursor.block_number).unwrap_or(0)
    }

    fn nothing_indexed(&self) -> bool {
        self.cursor.block_number < i64::try_from(self.config.start_block).unwrap_or(i64::MAX)
    }

    /// One unit of work: a batch of blocks, a reorg rollback, or nothing at the head.
    pub async fn step(&mut self) -> Result<Step, Error> {
        let head = self.source.head().await?;
        self.metrics.set_head(head);
        let indexed = self.indexed();

        if !self.nothing_indexed() && head <= indexed {
            // Same height or lower: is our block still the node's?
            let at = head.min(indexed);
            let node = self.source.block(at).await?;
            let ours = if at == indexed {
                Some(self.cursor.block_hash)
            } else {
                self.stored_hash(at).await?
            };
            match (node, ours) {
                (Some(node), Some(ours)) if node.hash == ours => {
                    if head < indexed {
                        return Err(Error::NodeWentBackwards {
                            head,
                            indexed,
                            hash: ours,
                        });
                    }
                    return Ok(Step::AtHead { head });
                }
                _ => return self.roll_back(head).await,
            }
        }
        if self.nothing_indexed() && head < self.config.start_block {
            return Ok(Step::AtHead { head });
        }

        let from = if self.nothing_indexed() {
            self.config.start_block
        } else {
            indexed + 1
        };
        let to = head.min(from + self.span - 1);
        let finalized = self.finalized(head).await?;

        let first = self.block(from).await?;
        if first.parent_hash != self.cursor.block_hash {
            tracing::warn!(
                block = from,
                parent = %first.parent_hash,
                indexed = %self.cursor.block_hash,
                "parent hash mismatch: reorg"
            );
            return self.roll_back(head).await;
        }

        // Above the final block, fetch every block to check the logs and the chain's linkage.
        let tip = to > finalized;
        let mut blocks = vec![first];
        if tip {
            for number in from + 1..=to {
                let block = self.block(number).await?;
                let parent = blocks.last().map(|b| b.hash).unwrap_or_default();
                if block.parent_hash != parent {
                    // The chain changed while we read it: start over from the checkpoint.
                    tracing::debug!(number, "chain moved during the batch; retrying");
                    return Ok(Step::Retry { from });
                }
                blocks.push(block);
            }
        } else if to != from {
            blocks.push(self.block(to).await?);
        }
        let last = *blocks.last().unwrap_or(&first);

        let logs = self.source.logs(from, to).await?;
        let mut records = Vec::with_capacity(logs.len());
        let mut decoded = Vec::with_capacity(logs.len());
        for log in &logs {
            let (record, event) = self.contracts.record(log)?;
            if record.block_number < from || record.block_number > to {
                return Err(Error::Node(format!(
                    "eth_getLogs {from}..={to} returned a log of block {}",
                    record.block_number
                )));
            }
            let expected = if tip {
                blocks
                    .get(usize::try_from(record.block_number - from).unwrap_or(usize::MAX))
                    .map(|b| b.hash)
            } else if record.block_number == to {
                Some(last.hash)
            } else {
                None
            };
            if expected.is_some_and(|h| h != record.block_hash) {
                tracing::debug!(
                    block = record.block_number,
                    "log of a replaced block; retrying"
                );
                return Ok(Step::Retry { from });
            }
            records.push(record);
            decoded.push(event);
        }
        if tip && self.source.block(to).await?.map(|b| b.hash) != Some(last.hash) {
            tracing::debug!(to, "head replaced during the batch; retrying");
            return Ok(Step::Retry { from });
        }

        let n = records.len();
        self.commit(&records, &decoded, &blocks, last, finalized, head)
            .await?;
        self.adapt_span(to - from + 1, n);
        tracing::debug!(from, to, events = n, finalized, head, "indexed");
        Ok(Step::Indexed {
            from,
            to,
            events: n,
        })
    }

    fn adapt_span(&mut self, blocks: u64, events: usize) {
        self.span = next_span(self.span, blocks, events, &self.config);
    }

    /// Indexes the backlog below the final block with reading and writing overlapped: while one
    /// batch is written, the next range is fetched (at most two batches wait in memory). Blocks
    /// at or below the final block cannot be reorganised, so the only check a range needs is
    /// that its first block's parent is the previous range's last block. Stops at the final block
    /// (the tip is then followed by [`Indexer::step`]), or at a mismatch, which `step` handles.
    pub async fn backfill(&mut self) -> Result<Vec<Step>, Error> {
        let head = self.source.head().await?;
        self.metrics.set_head(head);
        let finalized = self.finalized(head).await?;
        let start = if self.nothing_indexed() {
            self.config.start_block
        } else {
            self.indexed() + 1
        };
        if start + self.span > finalized {
            return Ok(Vec::new());
        }
        let (sender, mut receiver) = mpsc::channel::<OwnedBatch>(2);
        let source = self.source.clone();
        let contracts = self.contracts;
        let config = self.config.clone();
        let (mut parent, mut span) = (self.cursor.block_hash, self.span);
        let producer = async move {
            let mut from = start;
            while from <= finalized {
                let to = finalized.min(from + span - 1);
                // The range's ends and its logs, fetched concurrently.
                let (first, last, logs) =
                    tokio::join!(source.block(from), source.block(to), source.logs(from, to));
                let Some(first) = first? else {
                    break;
                };
                if first.parent_hash != parent {
                    break; // `step` finds out what happened
                }
                let last = last?.ok_or_else(|| Error::Node(format!("final block {to} missing")))?;
                let logs = logs?;
                let mut records = Vec::with_capacity(logs.len());
                let mut decoded = Vec::with_capacity(logs.len());
                for log in &logs {
                    let (record, event) = contracts.record(log)?;
                    if record.block_number == to && record.block_hash != last.hash {
                        return Err(Error::Node(format!(
                            "log of block {to} does not match its hash"
                        )));
                    }
                    records.push(record);
                    decoded.push(event);
                }
                let events = records.len();
                let batch = OwnedBatch {
                    records,
                    decoded,
                    blocks: if to == from {
                        vec![last]
                    } else {
                        vec![first, last]
                    },
                    last,
                    finalized,
                    head,
                };
                if sender.send(batch).await.is_err() {
                    break; // the writer stopped (and reports why)
                }
                span = next_span(span, to - from + 1, events, &config);
                parent = last.hash;
                from = to + 1;
            }
            Ok::<u64, Error>(span)
        };
        // The writer owns the receiving end: if a write fails, the receiver is dropped with it,
        // so the reader's next send fails and it stops too (instead of waiting forever on a full
        // channel).
        let this = &mut *self;
        let consumer = async move {
            let mut steps = Vec::new();
            while let Some(b) = receiver.recv().await {
                if this.stopping() {
                    // Dropping the receiver stops the reader too.
                    break;
                }
                let from = u64::try_from(this.cursor.block_number + 1).unwrap_or(0);
                this.commit(
                    &b.records,
                    &b.decoded,
                    &b.blocks,
                    b.last,
                    b.finalized,
                    b.head,
                )
                .await?;
                steps.push(Step::Indexed {
                    from,
                    to: b.last.number,
                    events: b.records.len(),
                });
            }
            Ok::<Vec<Step>, Error>(steps)
        };
        let (produced, written) = tokio::join!(producer, consumer);
        let steps = written?;
        self.span = produced?;
        tracing::info!(
            batches = steps.len(),
            indexed = self.cursor.block_number,
            finalized,
            "backfill done"
        );
        Ok(steps)
    }

    async fn block(&self, number: u64) -> Result<BlockRef, Error> {
        self.source
            .block(number)
            .await?
            .ok_or_else(|| Error::Node(format!("block {number} is below the head but missing")))
    }

    async fn finalized(&self, head: u64) -> Result<u64, Error> {
        let by_depth = head.saturating_sub(self.config.confirmations);
        if self.config.use_finalized_tag
            && let Some(tagged) = self.source.finalized().await?
        {
            return Ok(tagged.min(head));
        }
        Ok(by_depth)
    }

    async fn stored_hash(&self, number: u64) -> Result<Option<B256>, Error> {
        let mut conn = self
            .db
            .pool()
            .acquire()
            .await
            .map_err(pactum_db::Error::from)?;
        let blocks = index::recent_blocks(&mut conn, self.config.chain_id, number, 1).await?;
        Ok(blocks
            .first()
            .filter(|b| b.number == number)
            .map(|b| b.hash))
    }

    /// Writes one batch: events, the derived rows they change, block hashes and the checkpoint.
    async fn commit(
        &mut self,
        records: &[EventRecord],
        decoded: &[PactumEvent],
        blocks: &[BlockRef],
        last: BlockRef,
        finalized: u64,
        head: u64,
    ) -> Result<(), Error> {
        let batch = Batch {
            records,
            decoded,
            blocks,
            last,
            finalized,
            head,
        };
        write_batch(
            &self.db,
            self.config.chain_id,
            (self.cursor.block_number, self.cursor.block_hash),
            self.config.reorg_window,
            &batch,
        )
        .await?;
        self.cursor.block_number = i64::try_from(last.number).unwrap_or(i64::MAX);
        self.cursor.block_hash = last.hash;
        self.cursor.finalized_block = finalized;
        self.cursor.node_head = head;
        self.metrics
            .committed(last.number, finalized, records.len() as u64);
        Ok(())
    }

    /// Finds the highest stored block still on the node's chain and rolls everything above it
    /// back, in one transaction.
    async fn roll_back(&mut self, head: u64) -> Result<Step, Error> {
        let chain_id = self.config.chain_id;
        let indexed = self.indexed();
        let lowest = indexed
            .saturating_sub(self.config.reorg_window)
            .max(self.cursor.finalized_block)
            .max(self.config.start_block.saturating_sub(1));
        let mut conn = self
            .db
            .pool()
            .acquire()
            .await
            .map_err(pactum_db::Error::from)?;
        let window = u32::try_from(self.config.reorg_window + 1).unwrap_or(u32::MAX);
        let candidates =
            index::recent_blocks(&mut conn, chain_id, indexed.min(head), window).await?;
        let mut fork = None;
        for candidate in candidates.iter().filter(|b| b.number >= lowest) {
            let node = self.source.block(candidate.number).await?;
            if node.is_some_and(|n| n.hash == candidate.hash) {
                fork = Some(*candidate);
                break;
            }
        }
        let Some(fork) = fork else {
            return Err(Error::ReorgTooDeep {
                indexed,
                lowest,
                window: self.config.reorg_window,
                finalized: self.cursor.finalized_block,
            });
        };

        let mut tx = conn.begin().await.map_err(pactum_db::Error::from)?;
        index::lock_cursor(
            &mut tx,
            chain_id,
            (self.cursor.block_number, self.cursor.block_hash),
        )
        .await?;
        let touched = index::agreements_touched_above(&mut tx, chain_id, fork.number).await?;
        let deleted = index::delete_above(&mut tx, chain_id, fork.number).await?;
        let remaining = index::events_of(&mut tx, chain_id, &touched).await?;
        let mut decoded = Vec::with_capacity(remaining.len());
        for record in &remaining {
            decoded.push(self.contracts.decode_record(record)?);
        }
        let derived = derive_all(decoded.iter().zip(remaining.iter().map(|r| Transition {
            block: r.block_number,
            tx: r.tx_hash,
        })))?;
        let gone: Vec<B256> = touched
            .iter()
            .copied()
            .filter(|id| !derived.contains_key(id))
            .collect();
        index::delete_agreements(&mut tx, chain_id, &gone).await?;
        let rows: Vec<AgreementRecord> = derived.into_values().collect();
        index::upsert_agreements(&mut tx, chain_id, &rows).await?;
        // The usage agreements of these escrows record the correction: the status their escrow
        // has now, `activating` where the activation itself is gone.
        let now_status: Vec<(B256, LifecycleStatus)> = rows
            .iter()
            .map(|a| (a.agreement_id, LifecycleStatus::on_chain(a.status)))
            .chain(gone.iter().map(|id| (*id, LifecycleStatus::Activating)))
            .collect();
        pactum_db::agreements::follow_reorg(&mut tx, chain_id, fork.number, &now_status).await?;
        let to = i64::try_from(fork.number).unwrap_or(i64::MAX);
        index::move_cursor(
            &mut tx,
            chain_id,
            self.cursor.block_number,
            (to, fork.hash),
            self.cursor.finalized_block,
            head,
        )
        .await?;
        tx.commit().await.map_err(pactum_db::Error::from)?;

        tracing::warn!(
            fork = fork.number,
            from = indexed,
            depth = indexed - fork.number,
            deleted_events = deleted,
            recomputed = touched.len(),
            "rolled back a reorg"
        );
        self.cursor.block_number = to;
        self.cursor.block_hash = fork.hash;
        self.metrics.reorged(fork.number, deleted);
        Ok(Step::RolledBack {
            fork: fork.number,
            from: indexed,
            events: deleted,
        })
    }
}

/// The history facts of one applied event: its own, and `settled` when it emptied the escrow.
fn history_facts(
    id: B256,
    event: &PactumEvent,
    before: Option<AgreementStatus>,
    after: AgreementStatus,
    at: Transition,
) -> impl Iterator<Item = ChainFact> {
    let on_chain = OnChain {
        tx_hash: at.tx,
        block_number: at.block,
    };
    let fact = |kind| ChainFact {
        onchain_id: id,
        kind,
        status: LifecycleStatus::on_chain(after),
        at: on_chain,
    };
    let own = EventKind::of_chain_event(event.kind()).map(fact);
    let settled = (after == AgreementStatus::Settled && before != Some(AgreementStatus::Settled))
        .then(|| fact(EventKind::Settled));
    own.into_iter().chain(settled)
}

/// One batch of indexed blocks, ready to be written.
#[derive(Debug)]
pub struct Batch<'a> {
    /// The events, in chain order.
    pub records: &'a [EventRecord],
    /// The same events, decoded.
    pub decoded: &'a [PactumEvent],
    /// Block hashes to remember for reorg detection.
    pub blocks: &'a [BlockRef],
    /// The batch's last block: the new checkpoint.
    pub last: BlockRef,
    /// The final block when the batch was read.
    pub finalized: u64,
    /// The node's head when the batch was read.
    pub head: u64,
}

/// The write path: in one transaction, appends the events, applies them to the derived rows of
/// the agreements they touch, stores the block hashes, moves the checkpoint from `expected` (an
/// event stored twice, or a checkpoint moved by someone else, fails the whole transaction) and
/// forgets block hashes older than the reorg window.
pub async fn write_batch(
    db: &Db,
    chain_id: u64,
    expected: (i64, B256),
    reorg_window: u64,
    batch: &Batch<'_>,
) -> Result<(), Error> {
    let mut conn = db.pool().acquire().await.map_err(pactum_db::Error::from)?;
    let mut tx = conn.begin().await.map_err(pactum_db::Error::from)?;
    // Losing the last commits in a database *server* crash is harmless here: the checkpoint is in
    // the same transaction, so the indexer simply reads those blocks again. Not waiting for the
    // WAL flush on every batch is therefore safe, and exactly-once is kept.
    index::relax_commit_durability(&mut tx).await?;
    // The checkpoint first: a writer that is not (or no longer) the only one waits here for the
    // other's commit and stops before writing anything.
    index::lock_cursor(&mut tx, chain_id, expected).await?;

    let touched: Vec<B256> = {
        let mut ids: Vec<B256> = batch
            .decoded
            .iter()
            .filter_map(PactumEvent::agreement_id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let mut states: BTreeMap<B256, AgreementRecord> =
        index::load_agreements(&mut tx, chain_id, &touched)
            .await?
            .into_iter()
            .map(|a| (a.agreement_id, a))
            .collect();
    let mut facts = Vec::new();
    for (record, event) in batch.records.iter().zip(batch.decoded) {
        let Some(id) = event.agreement_id() else {
            continue;
        };
        let at = Transition {
            block: record.block_number,
            tx: record.tx_hash,
        };
        let before = states.get(&id).map(|a| a.status);
        if let Some(next) = derive::apply(states.remove(&id), event, at)? {
            facts.extend(history_facts(id, event, before, next.status, at));
            states.insert(id, next);
        }
    }
    let changed: Vec<AgreementRecord> = states.into_values().collect();

    index::insert_events(&mut tx, chain_id, batch.records).await?;
    index::upsert_agreements(&mut tx, chain_id, &changed).await?;
    // The usage agreements these escrows belong to follow, in the same transaction (only their
    // facts are sent: most escrows of a busy chain may have none).
    let linked = pactum_db::agreements::linked(&mut tx, chain_id, &touched).await?;
    facts.retain(|f| linked.contains(&f.onchain_id));
    pactum_db::agreements::follow_chain(&mut tx, chain_id, &facts).await?;
    index::insert_blocks(&mut tx, chain_id, batch.blocks).await?;
    let to = i64::try_from(batch.last.number).unwrap_or(i64::MAX);
    index::move_cursor(
        &mut tx,
        chain_id,
        expected.0,
        (to, batch.last.hash),
        batch.finalized,
        batch.head,
    )
    .await?;
    index::prune_blocks(
        &mut tx,
        chain_id,
        batch.last.number.saturating_sub(reorg_window),
    )
    .await?;
    tx.commit().await.map_err(pactum_db::Error::from)?;
    Ok(())
}

/// A batch on its way from the backfill reader to the writer.
struct OwnedBatch {
    records: Vec<EventRecord>,
    decoded: Vec<PactumEvent>,
    blocks: Vec<BlockRef>,
    last: BlockRef,
    finalized: u64,
    head: u64,
}

/// The next batch's block span: scaled down to the event target when a batch brought more events,
/// doubled when it brought fewer than half and used its whole span.
fn next_span(span: u64, blocks: u64, events: usize, config: &Config) -> u64 {
    let target = config.target_batch_events.max(1);
    if events > target {
        let scaled = u128::from(blocks) * target as u128 / events as u128;
        u64::try_from(scaled).unwrap_or(1).max(1)
    } else if events < target / 2 && blocks >= span {
        span.saturating_mul(2)
    } else {
        span
    }
    .clamp(1, config.batch_blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let mut c = Config::new(31337, Address::repeat_byte(1), Address::repeat_byte(2), 0);
        c.batch_blocks = 2_000;
        c.target_batch_events = 1_000;
        c
    }

    #[test]
    fn a_crowded_batch_scales_the_span_down_to_the_event_target() {
        let c = config();
        assert_eq!(next_span(1_000, 1_000, 4_000, &c), 250);
        // Never below one block, however crowded.
        assert_eq!(next_span(1, 1, 1_000_000, &c), 1);
        assert_eq!(next_span(10, 10, 100_000, &c), 1);
    }

    #[test]
    fn a_sparse_full_batch_doubles_the_span_up_to_the_maximum() {
        let c = config();
        assert_eq!(next_span(16, 16, 0, &c), 32);
        assert_eq!(next_span(1_500, 1_500, 10, &c), 2_000);
        // A batch cut short by the head says nothing about density.
        assert_eq!(next_span(16, 5, 0, &c), 16);
        // Between half the target and the target: unchanged.
        assert_eq!(next_span(100, 100, 700, &c), 100);
    }

    #[test]
    fn a_zero_event_target_counts_as_one() {
        let c = Config {
            target_batch_events: 0,
            ..config()
        };
        assert_eq!(next_span(100, 100, 2, &c), 50);
    }

    #[test]
    fn configuration_is_validated() {
        assert!(config().validate().is_ok());
        let zero = Config {
            batch_blocks: 0,
            ..config()
        };
        assert!(zero.validate().is_err());
        let shallow = Config {
            reorg_window: 2,
            confirmations: 3,
            ..config()
        };
        assert!(shallow.validate().is_err());
        let same = Config {
            fee_collector: Address::repeat_byte(1),
            ..config()
        };
        assert!(same.validate().is_err());
    }

    #[test]
    fn the_database_backoff_doubles_up_to_its_ceiling() {
        let poll = Duration::from_millis(250);
        assert_eq!(db_backoff(poll, 1), Duration::from_millis(250));
        assert_eq!(db_backoff(poll, 2), Duration::from_millis(500));
        assert_eq!(db_backoff(poll, 4), Duration::from_secs(2));
        assert_eq!(db_backoff(poll, 20), MAX_DB_BACKOFF);
        assert_eq!(db_backoff(poll, u32::MAX), MAX_DB_BACKOFF);
        // A zero poll interval still waits.
        assert_eq!(db_backoff(Duration::ZERO, 1), Duration::from_millis(100));
    }
}
