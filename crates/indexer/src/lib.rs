//! The chain indexer: follows the escrow's and the fee collector's events from their deployment
//! block into PostgreSQL.
//!
//! - **Backfill, then follow.** Block ranges of up to `batch_blocks` are fetched with
//!   `eth_getLogs` (split when the node refuses a range as too large) until the head, which is
//!   then polled.
//! - **Exactly once.** A batch's events, the derived rows they change, the block hashes and the
//!   checkpoint commit in one transaction; a crash at any moment loses or repeats nothing.
//! - **Reorg-safe.** Every batch checks that its first block's parent is the checkpoint block,
//!   and above the final block every block's hash is fetched and every log is checked against it.
//!   On a mismatch the indexer finds the fork point among its stored hashes and, in one
//!   transaction, deletes everything above it and recomputes the affected agreements. A reorg
//!   deeper than the window, or below the final block, and a node whose head goes backwards
//!   without a mismatch, stop it with an error and no write.
//! - **One writer among replicas.** [`Indexer::run_elected`] lets any number of processes run an
//!   indexer over one database: the holder of a PostgreSQL advisory lock writes, the others
//!   stand by and take over within seconds of its death.
//! - **Derived state** ([`derive`]) is a pure function of an agreement's events; [`verify`]
//!   recomputes all of it and compares.

mod error;
pub mod events;
mod indexer;
pub mod metrics;
pub mod source;
pub mod verify;

pub use error::Error;
pub use indexer::{Batch, Config, Indexer, MAX_DB_BACKOFF, STANDBY_POLL, Step, write_batch};
pub use metrics::Metrics;
pub use pactum_core::escrow::derive;
