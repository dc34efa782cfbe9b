//! The chain indexer's storage: its checkpoint and the recent block hashes it checks reorgs
//! against ([`checkpoint`]), the raw canonical events ([`events`]) and the derived per-agreement
//! state ([`agreements`]).
//!
//! Every function takes a connection so that the indexer composes them into one transaction: a
//! batch of events, the derived rows they change and the checkpoint that covers them commit
//! together, or not at all.

mod agreements;
mod checkpoint;
mod events;

pub use agreements::{all_agreements, delete_agreements, load_agreements, upsert_agreements};
pub use checkpoint::{
    BlockRef, Cursor, init_cursor, insert_blocks, load_cursor, lock_cursor, move_cursor,
    prune_blocks, recent_blocks,
};
pub use events::{
    EventRecord, agreements_touched_above, all_events, delete_above, events_of, insert_events,
};
pub use pactum_core::{
    AgreementStatus, DeferralReason,
    escrow::{AgreementRecord, Transition},
};
use sqlx::PgConnection;

use crate::Result;

/// `SET LOCAL synchronous_commit = off` for the current transaction: its commit returns before
/// the WAL is flushed. Only for transactions that also move the checkpoint, so that a commit lost
/// in a server crash is re-done by re-reading the chain.
pub async fn relax_commit_durability(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(conn)
        .await?;
    Ok(())
}

/// Makes the current transaction a read-only snapshot (`REPEATABLE READ`): every read in it sees
/// the same committed state. Must be the transaction's first statement.
pub async fn read_only_snapshot(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(conn)
        .await?;
    Ok(())
}
