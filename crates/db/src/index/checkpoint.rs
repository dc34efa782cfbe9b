//! The indexer's checkpoint ([`Cursor`]) and the hashes of recently processed blocks
//! ([`BlockRef`]).

use alloy::primitives::{Address, B256};
use sqlx::PgConnection;

use crate::{
    Error, Result,
    convert::{address, b256, corrupt, int, uint},
};

/// The indexer's checkpoint for one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The chain.
    pub chain_id: u64,
    /// The escrow whose events are indexed.
    pub escrow: Address,
    /// The fee collector whose events are indexed.
    pub fee_collector: Address,
    /// The first block indexed (the deployment block).
    pub start_block: u64,
    /// The last block whose events are all stored (`start_block - 1` before the first batch).
    pub block_number: i64,
    /// That block's hash (the start block's parent hash before the first batch).
    pub block_hash: B256,
    /// The highest block known final when the cursor last moved.
    pub finalized_block: u64,
    /// The node's head when the cursor last moved.
    pub node_head: u64,
}

/// A block the indexer has processed: enough to check a child's parent hash against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRef {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// Its parent's hash.
    pub parent_hash: B256,
}

/// The checkpoint of `chain_id`, if the chain was ever indexed into this database.
pub async fn load_cursor(conn: &mut PgConnection, chain_id: u64) -> Result<Option<Cursor>> {
    let row = sqlx::query!(
        r#"SELECT escrow, fee_collector, start_block, block_number, block_hash, finalized_block, node_head
           FROM indexer_cursor WHERE chain_id = $1"#,
        int(chain_id)
    )
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        const T: &str = "indexer_cursor";
        Ok(Cursor {
            chain_id,
            escrow: address(T, &r.escrow)?,
            fee_collector: address(T, &r.fee_collector)?,
            start_block: uint(T, r.start_block)?,
            block_number: r.block_number,
            block_hash: b256(T, &r.block_hash)?,
            finalized_block: uint(T, r.finalized_block)?,
            node_head: uint(T, r.node_head)?,
        })
    })
    .transpose()
}

/// Creates the checkpoint of a chain indexed for the first time; if one exists, checks that it
/// indexes the same contracts from the same block and returns it.
pub async fn init_cursor(conn: &mut PgConnection, initial: &Cursor) -> Result<Cursor> {
    sqlx::query!(
        r#"INSERT INTO indexer_cursor (chain_id, escrow, fee_collector, start_block, block_number, block_hash)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (chain_id) DO NOTHING"#,
        int(initial.chain_id),
        initial.escrow.as_slice(),
        initial.fee_collector.as_slice(),
        int(initial.start_block),
        initial.block_number,
        initial.block_hash.as_slice(),
    )
    .execute(&mut *conn)
    .await?;
    let stored = load_cursor(conn, initial.chain_id)
        .await?
        .ok_or_else(|| corrupt("indexer_cursor", "row vanished after insert".into()))?;
    let same = (stored.escrow, stored.fee_collector, stored.start_block)
        == (initial.escrow, initial.fee_collector, initial.start_block);
    if !same {
        return Err(Error::ConfigMismatch {
            chain_id: initial.chain_id,
            detail: format!(
                "stored escrow {} / fee collector {} from block {}",
                stored.escrow, stored.fee_collector, stored.start_block
            ),
        });
    }
    Ok(stored)
}

/// Locks the checkpoint row for the current transaction and checks that it is still at
/// `expected` (block number and hash); [`Error::CursorMoved`] if another writer moved it. Taken
/// first in every transaction that writes the index: a second writer then waits for the first
/// one's commit and finds the checkpoint moved before it writes anything.
pub async fn lock_cursor(
    conn: &mut PgConnection,
    chain_id: u64,
    expected: (i64, B256),
) -> Result<()> {
    let row = sqlx::query!(
        "SELECT block_number, block_hash FROM indexer_cursor WHERE chain_id = $1 FOR UPDATE",
        int(chain_id)
    )
    .fetch_optional(conn)
    .await?;
    match row {
        Some(r) if r.block_number == expected.0 && r.block_hash == expected.1.as_slice() => Ok(()),
        other => Err(Error::CursorMoved {
            chain_id,
            expected: expected.0,
            found: other.map_or(i64::MIN, |r| r.block_number),
        }),
    }
}

/// Moves the checkpoint from `expected` (the block number this writer read) to `to`. Fails with
/// [`Error::CursorMoved`] if another writer moved it meanwhile.
pub async fn move_cursor(
    conn: &mut PgConnection,
    chain_id: u64,
    expected: i64,
    to: (i64, B256),
    finalized_block: u64,
    node_head: u64,
) -> Result<()> {
    let updated = sqlx::query!(
        r#"UPDATE indexer_cursor
           SET block_number = $3, block_hash = $4, finalized_block = $5, node_head = $6, updated_at = now()
           WHERE chain_id = $1 AND block_number = $2"#,
        int(chain_id),
        expected,
        to.0,
        to.1.as_slice(),
        int(finalized_block),
        int(node_head),
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 1 {
        return Ok(());
    }
    let found = load_cursor(conn, chain_id)
        .await?
        .map_or(i64::MIN, |c| c.block_number);
    Err(Error::CursorMoved {
        chain_id,
        expected,
        found,
    })
}

// ---------------------------------------------------------------------------------------------
// Blocks
// ---------------------------------------------------------------------------------------------

/// Stores the hashes of processed blocks (replacing any stored at the same heights).
pub async fn insert_blocks(
    conn: &mut PgConnection,
    chain_id: u64,
    blocks: &[BlockRef],
) -> Result<()> {
    if blocks.is_empty() {
        return Ok(());
    }
    let numbers: Vec<i64> = blocks.iter().map(|b| int(b.number)).collect();
    let hashes: Vec<Vec<u8>> = blocks.iter().map(|b| b.hash.to_vec()).collect();
    let parents: Vec<Vec<u8>> = blocks.iter().map(|b| b.parent_hash.to_vec()).collect();
    sqlx::query!(
        r#"INSERT INTO indexed_blocks (chain_id, number, hash, parent_hash)
           SELECT $1, * FROM UNNEST($2::bigint[], $3::bytea[], $4::bytea[])
           ON CONFLICT (chain_id, number) DO UPDATE SET hash = EXCLUDED.hash, parent_hash = EXCLUDED.parent_hash"#,
        int(chain_id),
        &numbers,
        &hashes,
        &parents,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Stored blocks at or below `at_or_below`, highest first, at most `limit`.
pub async fn recent_blocks(
    conn: &mut PgConnection,
    chain_id: u64,
    at_or_below: u64,
    limit: u32,
) -> Result<Vec<BlockRef>> {
    let rows = sqlx::query!(
        r#"SELECT number, hash, parent_hash FROM indexed_blocks
           WHERE chain_id = $1 AND number <= $2 ORDER BY number DESC LIMIT $3"#,
        int(chain_id),
        int(at_or_below),
        i64::from(limit),
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            const T: &str = "indexed_blocks";
            Ok(BlockRef {
                number: uint(T, r.number)?,
                hash: b256(T, &r.hash)?,
                parent_hash: b256(T, &r.parent_hash)?,
            })
        })
        .collect()
}

/// Forgets block hashes below `below` (outside the reorg window).
pub async fn prune_blocks(conn: &mut PgConnection, chain_id: u64, below: u64) -> Result<u64> {
    Ok(sqlx::query!(
        "DELETE FROM indexed_blocks WHERE chain_id = $1 AND number < $2",
        int(chain_id),
        int(below)
    )
    .execute(conn)
    .await?
    .rows_affected())
}
