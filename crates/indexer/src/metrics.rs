//! Counters the indexer updates as it goes, read by the API's `/metrics` and by benchmarks.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

#[derive(Debug, Default)]
struct Counters {
    node_head: AtomicU64,
    indexed_block: AtomicU64,
    finalized_block: AtomicU64,
    events: AtomicU64,
    batches: AtomicU64,
    reorgs: AtomicU64,
    reorged_events: AtomicU64,
    rpc_retries: AtomicU64,
    range_splits: AtomicU64,
    db_retries: AtomicU64,
    db_failing: AtomicU64,
    leader: AtomicU64,
    terms: AtomicU64,
}

/// Shared, cheap-to-clone indexer counters.
#[derive(Debug, Clone, Default)]
pub struct Metrics(Arc<Counters>);

/// A point-in-time copy of the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// The node's head when last polled.
    pub node_head: u64,
    /// The last block fully indexed.
    pub indexed_block: u64,
    /// The highest block known final.
    pub finalized_block: u64,
    /// Events written since start.
    pub events: u64,
    /// Batches committed since start.
    pub batches: u64,
    /// Reorgs handled since start.
    pub reorgs: u64,
    /// Events removed by reorgs since start.
    pub reorged_events: u64,
    /// Node requests retried since start.
    pub rpc_retries: u64,
    /// Log ranges split because the node refused them.
    pub range_splits: u64,
    /// Times the indexer waited for the database to come back.
    pub db_retries: u64,
    /// Whether its last attempt failed because the database was unreachable.
    pub db_failing: bool,
    /// Whether this process writes the index now (it holds the index lock); always true for an
    /// indexer run alone ([`crate::Indexer::run`]).
    pub leader: bool,
    /// How many times this process took the index lock.
    pub leader_terms: u64,
}

impl Metrics {
    pub(crate) fn rpc_retry(&self) {
        self.0.rpc_retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn range_split(&self) {
        self.0.range_splits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn db_failed(&self) {
        self.0.db_retries.fetch_add(1, Ordering::Relaxed);
        self.0.db_failing.store(1, Ordering::Relaxed);
    }

    pub(crate) fn db_recovered(&self) {
        self.0.db_failing.store(0, Ordering::Relaxed);
    }

    pub(crate) fn lead(&self, leading: bool) {
        self.0.leader.store(u64::from(leading), Ordering::Relaxed);
        if leading {
            self.0.terms.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn set_head(&self, head: u64) {
        self.0.node_head.store(head, Ordering::Relaxed);
    }

    pub(crate) fn committed(&self, indexed: u64, finalized: u64, events: u64) {
        self.0.indexed_block.store(indexed, Ordering::Relaxed);
        self.0.finalized_block.store(finalized, Ordering::Relaxed);
        self.0.events.fetch_add(events, Ordering::Relaxed);
        self.0.batches.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn reorged(&self, indexed: u64, events: u64) {
        self.0.indexed_block.store(indexed, Ordering::Relaxed);
        self.0.reorgs.fetch_add(1, Ordering::Relaxed);
        self.0.reorged_events.fetch_add(events, Ordering::Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> Snapshot {
        let c = &self.0;
        Snapshot {
            node_head: c.node_head.load(Ordering::Relaxed),
            indexed_block: c.indexed_block.load(Ordering::Relaxed),
            finalized_block: c.finalized_block.load(Ordering::Relaxed),
            events: c.events.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            reorgs: c.reorgs.load(Ordering::Relaxed),
            reorged_events: c.reorged_events.load(Ordering::Relaxed),
            rpc_retries: c.rpc_retries.load(Ordering::Relaxed),
            range_splits: c.range_splits.load(Ordering::Relaxed),
            db_retries: c.db_retries.load(Ordering::Relaxed),
            db_failing: c.db_failing.load(Ordering::Relaxed) != 0,
            leader: c.leader.load(Ordering::Relaxed) != 0,
            leader_terms: c.terms.load(Ordering::Relaxed),
        }
    }
}
