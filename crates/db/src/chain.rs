//! The chain indexer's storage: its checkpoint ([`Cursor`]), the recent block hashes it checks
//! reorgs against ([`BlockRef`]), the raw canonical events ([`EventRecord`]) and the derived
//! per-agreement state ([`AgreementRecord`]).
//!
//! Every function takes a connection so that the indexer composes them into one transaction: a
//! batch of events, the derived rows they change and the checkpoint that covers them commit
//! together, or not at all.

use alloy::primitives::{Address, B256, Bytes, U256};
use sqlx::PgConnection;

use crate::{Error, Result};

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

/// One log of an indexed contract, as the node returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// Block number.
    pub block_number: u64,
    /// Block hash (with `log_index`, the event's identity).
    pub block_hash: B256,
    /// Position of the log in its block.
    pub log_index: u32,
    /// The emitting transaction.
    pub tx_hash: B256,
    /// The emitting contract.
    pub contract: Address,
    /// The event's name (e.g. `AgreementActivated`).
    pub kind: String,
    /// The agreement it concerns, for agreement events.
    pub agreement_id: Option<B256>,
    /// The log's topics.
    pub topics: Vec<B256>,
    /// The log's ABI-encoded data.
    pub data: Bytes,
}

pub use pactum_core::{
    AgreementStatus, DeferralReason,
    escrow::{AgreementRecord, Transition},
};

// ---------------------------------------------------------------------------------------------
// Conversions between alloy types and columns
// ---------------------------------------------------------------------------------------------

pub(crate) fn int(value: u64) -> i64 {
    // Block numbers, timestamps and windows are far below 2^63 on any real chain.
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn uint(table: &'static str, value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| corrupt(table, format!("negative value {value}")))
}

pub(crate) fn corrupt(table: &'static str, detail: String) -> Error {
    Error::Corrupt { table, detail }
}

pub(crate) fn b256(table: &'static str, bytes: &[u8]) -> Result<B256> {
    B256::try_from(bytes)
        .map_err(|_| corrupt(table, format!("{} bytes where 32 expected", bytes.len())))
}

pub(crate) fn address(table: &'static str, bytes: &[u8]) -> Result<Address> {
    Address::try_from(bytes)
        .map_err(|_| corrupt(table, format!("{} bytes where 20 expected", bytes.len())))
}

pub(crate) fn amount(table: &'static str, text: &str) -> Result<U256> {
    text.parse()
        .map_err(|_| corrupt(table, format!("{text:?} is not a uint256")))
}

fn transition(
    table: &'static str,
    block: Option<i64>,
    tx: Option<Vec<u8>>,
) -> Result<Option<Transition>> {
    match (block, tx) {
        (Some(block), Some(tx)) => Ok(Some(Transition {
            block: uint(table, block)?,
            tx: b256(table, &tx)?,
        })),
        _ => Ok(None),
    }
}

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

// ---------------------------------------------------------------------------------------------
// Cursor
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// Appends events. An event already stored (same block hash and log index) is an error: the
/// checkpoint guarantees each block is written once.
///
/// Uses `COPY ... FROM STDIN (FORMAT binary)`, several times faster than a multi-row `INSERT` for
/// the batch sizes the indexer writes. (COPY is not checked by sqlx's macros; the end-to-end
/// tests read every column back.)
pub async fn insert_events(
    conn: &mut PgConnection,
    chain_id: u64,
    events: &[EventRecord],
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut buf = Vec::with_capacity(events.len() * 256 + 32);
    // Binary COPY header: signature, flags, header extension length.
    buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buf.extend_from_slice(&0i32.to_be_bytes());
    buf.extend_from_slice(&0i32.to_be_bytes());
    let field = |buf: &mut Vec<u8>, bytes: &[u8]| {
        buf.extend_from_slice(&i32::try_from(bytes.len()).unwrap_or(i32::MAX).to_be_bytes());
        buf.extend_from_slice(bytes);
    };
    for e in events {
        buf.extend_from_slice(&10i16.to_be_bytes());
        field(&mut buf, &int(chain_id).to_be_bytes());
        field(&mut buf, &int(e.block_number).to_be_bytes());
        field(&mut buf, e.block_hash.as_slice());
        field(
            &mut buf,
            &i32::try_from(e.log_index).unwrap_or(i32::MAX).to_be_bytes(),
        );
        field(&mut buf, e.tx_hash.as_slice());
        field(&mut buf, e.contract.as_slice());
        field(&mut buf, e.kind.as_bytes());
        match e.agreement_id {
            Some(id) => field(&mut buf, id.as_slice()),
            None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
        }
        buf.extend_from_slice(
            &i32::try_from(e.topics.len() * 32)
                .unwrap_or(i32::MAX)
                .to_be_bytes(),
        );
        for topic in &e.topics {
            buf.extend_from_slice(topic.as_slice());
        }
        field(&mut buf, &e.data);
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    let mut copy = conn
        .copy_in_raw(
            "COPY chain_events (chain_id, block_number, block_hash, log_index, tx_hash, contract, kind, \
             agreement_id, topics, data) FROM STDIN (FORMAT binary)",
        )
        .await?;
    if let Err(err) = copy.send(buf).await {
        let _ = copy.abort("send failed").await;
        return Err(err.into());
    }
    copy.finish().await?;
    Ok(())
}

/// The agreements that have an event above `block`.
pub async fn agreements_touched_above(
    conn: &mut PgConnection,
    chain_id: u64,
    block: u64,
) -> Result<Vec<B256>> {
    let rows = sqlx::query!(
        r#"SELECT DISTINCT agreement_id AS "agreement_id!" FROM chain_events
           WHERE chain_id = $1 AND block_number > $2 AND agreement_id IS NOT NULL"#,
        int(chain_id),
        int(block)
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| b256("chain_events", &r.agreement_id))
        .collect()
}

/// Deletes every event and block hash above `block` (a reorg's fork point). Returns the number
/// of events deleted.
pub async fn delete_above(conn: &mut PgConnection, chain_id: u64, block: u64) -> Result<u64> {
    let events = sqlx::query!(
        "DELETE FROM chain_events WHERE chain_id = $1 AND block_number > $2",
        int(chain_id),
        int(block)
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    sqlx::query!(
        "DELETE FROM indexed_blocks WHERE chain_id = $1 AND number > $2",
        int(chain_id),
        int(block)
    )
    .execute(conn)
    .await?;
    Ok(events)
}

/// A `chain_events` row as stored.
struct EventRow {
    block_number: i64,
    block_hash: Vec<u8>,
    log_index: i32,
    tx_hash: Vec<u8>,
    contract: Vec<u8>,
    kind: String,
    agreement_id: Option<Vec<u8>>,
    topics: Vec<u8>,
    data: Vec<u8>,
}

impl EventRow {
    fn into_record(self) -> Result<EventRecord> {
        const T: &str = "chain_events";
        if !self.topics.len().is_multiple_of(32) {
            return Err(corrupt(T, format!("topics of {} bytes", self.topics.len())));
        }
        Ok(EventRecord {
            block_number: uint(T, self.block_number)?,
            block_hash: b256(T, &self.block_hash)?,
            log_index: u32::try_from(self.log_index)
                .map_err(|_| corrupt(T, format!("log index {}", self.log_index)))?,
            tx_hash: b256(T, &self.tx_hash)?,
            contract: address(T, &self.contract)?,
            kind: self.kind,
            agreement_id: self.agreement_id.map(|id| b256(T, &id)).transpose()?,
            topics: self.topics.chunks_exact(32).map(B256::from_slice).collect(),
            data: self.data.into(),
        })
    }
}

/// Every stored event of the given agreements, in chain order.
pub async fn events_of(
    conn: &mut PgConnection,
    chain_id: u64,
    ids: &[B256],
) -> Result<Vec<EventRecord>> {
    let ids: Vec<Vec<u8>> = ids.iter().map(|id| id.to_vec()).collect();
    let rows = sqlx::query_as!(
        EventRow,
        r#"SELECT block_number, block_hash, log_index, tx_hash, contract, kind, agreement_id, topics, data
           FROM chain_events WHERE chain_id = $1 AND agreement_id = ANY($2)
           ORDER BY block_number, log_index"#,
        int(chain_id),
        &ids
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(EventRow::into_record).collect()
}

/// Every stored event of the chain, in chain order (for verification and benchmarks).
pub async fn all_events(conn: &mut PgConnection, chain_id: u64) -> Result<Vec<EventRecord>> {
    let rows = sqlx::query_as!(
        EventRow,
        r#"SELECT block_number, block_hash, log_index, tx_hash, contract, kind, agreement_id, topics, data
           FROM chain_events WHERE chain_id = $1 ORDER BY block_number, log_index"#,
        int(chain_id)
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(EventRow::into_record).collect()
}

// ---------------------------------------------------------------------------------------------
// Agreements
// ---------------------------------------------------------------------------------------------

/// The stored state of the given agreements (those that exist).
pub async fn load_agreements(
    conn: &mut PgConnection,
    chain_id: u64,
    ids: &[B256],
) -> Result<Vec<AgreementRecord>> {
    let ids: Vec<Vec<u8>> = ids.iter().map(|id| id.to_vec()).collect();
    let rows = sqlx::query_as!(
        AgreementRow,
        r#"SELECT agreement_id, buyer, seller, token, max_amount::text AS "max_amount!", infra_fee::text AS "infra_fee!",
                  expiry, close_window, salt, status, deposited::text AS "deposited!",
                  fee_collected::text AS "fee_collected!", settled_amount::text AS "settled_amount!",
                  seller_paid_amount::text AS "seller_paid_amount!", buyer_paid_amount::text AS "buyer_paid_amount!",
                  seller_paid, buyer_withdrawn, close_deadline, close_initiator, deferral_reason,
                  activated_block, activated_tx, closed_block, closed_tx, claimed_block, claimed_tx,
                  seller_paid_block, seller_paid_tx, withdrawn_block, withdrawn_tx, settled_block, settled_tx, last_block
           FROM agreements WHERE chain_id = $1 AND agreement_id = ANY($2)"#,
        int(chain_id),
        &ids
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(AgreementRow::into_record).collect()
}

/// Every stored agreement of the chain, ordered by id (for verification).
pub async fn all_agreements(
    conn: &mut PgConnection,
    chain_id: u64,
) -> Result<Vec<AgreementRecord>> {
    let rows = sqlx::query_as!(
        AgreementRow,
        r#"SELECT agreement_id, buyer, seller, token, max_amount::text AS "max_amount!", infra_fee::text AS "infra_fee!",
                  expiry, close_window, salt, status, deposited::text AS "deposited!",
                  fee_collected::text AS "fee_collected!", settled_amount::text AS "settled_amount!",
                  seller_paid_amount::text AS "seller_paid_amount!", buyer_paid_amount::text AS "buyer_paid_amount!",
                  seller_paid, buyer_withdrawn, close_deadline, close_initiator, deferral_reason,
                  activated_block, activated_tx, closed_block, closed_tx, claimed_block, claimed_tx,
                  seller_paid_block, seller_paid_tx, withdrawn_block, withdrawn_tx, settled_block, settled_tx, last_block
           FROM agreements WHERE chain_id = $1 ORDER BY agreement_id"#,
        int(chain_id)
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(AgreementRow::into_record).collect()
}

/// Deletes the given agreements' derived rows (a reorg removed their activation).
pub async fn delete_agreements(
    conn: &mut PgConnection,
    chain_id: u64,
    ids: &[B256],
) -> Result<u64> {
    let ids: Vec<Vec<u8>> = ids.iter().map(|id| id.to_vec()).collect();
    Ok(sqlx::query!(
        "DELETE FROM agreements WHERE chain_id = $1 AND agreement_id = ANY($2)",
        int(chain_id),
        &ids
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// Inserts or replaces the derived rows of the given agreements.
pub async fn upsert_agreements(
    conn: &mut PgConnection,
    chain_id: u64,
    rows: &[AgreementRecord],
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let c = Columns::from(rows);
    sqlx::query!(
        r#"INSERT INTO agreements (chain_id, agreement_id, buyer, seller, token, max_amount, infra_fee, expiry,
                close_window, salt, status, deposited, fee_collected, settled_amount, seller_paid_amount,
                buyer_paid_amount, seller_paid, buyer_withdrawn, close_deadline, close_initiator, deferral_reason,
                activated_block, activated_tx, closed_block, closed_tx, claimed_block, claimed_tx,
                seller_paid_block, seller_paid_tx, withdrawn_block, withdrawn_tx, settled_block, settled_tx, last_block)
           SELECT $1, u.agreement_id, u.buyer, u.seller, u.token, u.max_amount::numeric, u.infra_fee::numeric,
                  u.expiry, u.close_window, u.salt, u.status, u.deposited::numeric, u.fee_collected::numeric,
                  u.settled_amount::numeric, u.seller_paid_amount::numeric, u.buyer_paid_amount::numeric,
                  u.seller_paid, u.buyer_withdrawn, u.close_deadline, u.close_initiator, u.deferral_reason,
                  u.activated_block, u.activated_tx, u.closed_block, u.closed_tx, u.claimed_block, u.claimed_tx,
                  u.seller_paid_block, u.seller_paid_tx, u.withdrawn_block, u.withdrawn_tx, u.settled_block,
                  u.settled_tx, u.last_block
           FROM UNNEST($2::bytea[], $3::bytea[], $4::bytea[], $5::bytea[], $6::text[], $7::text[], $8::bigint[],
                       $9::bigint[], $10::bytea[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[],
                       $16::text[], $17::bool[], $18::bool[], $19::bigint[], $20::bytea[], $21::text[],
                       $22::bigint[], $23::bytea[], $24::bigint[], $25::bytea[], $26::bigint[], $27::bytea[],
                       $28::bigint[], $29::bytea[], $30::bigint[], $31::bytea[], $32::bigint[], $33::bytea[],
                       $34::bigint[])
                AS u(agreement_id, buyer, seller, token, max_amount, infra_fee, expiry, close_window, salt, status,
                     deposited, fee_collected, settled_amount, seller_paid_amount, buyer_paid_amount, seller_paid,
                     buyer_withdrawn, close_deadline, close_initiator, deferral_reason, activated_block,
                     activated_tx, closed_block, closed_tx, claimed_block, claimed_tx, seller_paid_block,
                     seller_paid_tx, withdrawn_block, withdrawn_tx, settled_block, settled_tx, last_block)
           ON CONFLICT (chain_id, agreement_id) DO UPDATE SET
                buyer = EXCLUDED.buyer, seller = EXCLUDED.seller, token = EXCLUDED.token,
                max_amount = EXCLUDED.max_amount, infra_fee = EXCLUDED.infra_fee, expiry = EXCLUDED.expiry,
                close_window = EXCLUDED.close_window, salt = EXCLUDED.salt, status = EXCLUDED.status,
                deposited = EXCLUDED.deposited, fee_collected = EXCLUDED.fee_collected,
                settled_amount = EXCLUDED.settled_amount, seller_paid_amount = EXCLUDED.seller_paid_amount,
                buyer_paid_amount = EXCLUDED.buyer_paid_amount, seller_paid = EXCLUDED.seller_paid,
                buyer_withdrawn = EXCLUDED.buyer_withdrawn, close_deadline = EXCLUDED.close_deadline,
                close_initiator = EXCLUDED.close_initiator, deferral_reason = EXCLUDED.deferral_reason,
                activated_block = EXCLUDED.activated_block, activated_tx = EXCLUDED.activated_tx,
                closed_block = EXCLUDED.closed_block, closed_tx = EXCLUDED.closed_tx,
                claimed_block = EXCLUDED.claimed_block, claimed_tx = EXCLUDED.claimed_tx,
                seller_paid_block = EXCLUDED.seller_paid_block, seller_paid_tx = EXCLUDED.seller_paid_tx,
                withdrawn_block = EXCLUDED.withdrawn_block, withdrawn_tx = EXCLUDED.withdrawn_tx,
                settled_block = EXCLUDED.settled_block, settled_tx = EXCLUDED.settled_tx,
                last_block = EXCLUDED.last_block"#,
        int(chain_id),
        &c.agreement_id,
        &c.buyer,
        &c.seller,
        &c.token,
        &c.max_amount,
        &c.infra_fee,
        &c.expiry,
        &c.close_window,
        &c.salt,
        &c.status,
        &c.deposited,
        &c.fee_collected,
        &c.settled_amount,
        &c.seller_paid_amount,
        &c.buyer_paid_amount,
        &c.seller_paid,
        &c.buyer_withdrawn,
        &c.close_deadline as &[Option<i64>],
        &c.close_initiator as &[Option<Vec<u8>>],
        &c.deferral_reason as &[Option<String>],
        &c.activated_block,
        &c.activated_tx,
        &c.closed_block as &[Option<i64>],
        &c.closed_tx as &[Option<Vec<u8>>],
        &c.claimed_block as &[Option<i64>],
        &c.claimed_tx as &[Option<Vec<u8>>],
        &c.seller_paid_block as &[Option<i64>],
        &c.seller_paid_tx as &[Option<Vec<u8>>],
        &c.withdrawn_block as &[Option<i64>],
        &c.withdrawn_tx as &[Option<Vec<u8>>],
        &c.settled_block as &[Option<i64>],
        &c.settled_tx as &[Option<Vec<u8>>],
        &c.last_block,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Column-wise form of a batch of agreement rows, for `UNNEST`.
#[derive(Default)]
struct Columns {
    agreement_id: Vec<Vec<u8>>,
    buyer: Vec<Vec<u8>>,
    seller: Vec<Vec<u8>>,
    token: Vec<Vec<u8>>,
    max_amount: Vec<String>,
    infra_fee: Vec<String>,
    expiry: Vec<i64>,
    close_window: Vec<i64>,
    salt: Vec<Vec<u8>>,
    status: Vec<String>,
    deposited: Vec<String>,
    fee_collected: Vec<String>,
    settled_amount: Vec<String>,
    seller_paid_amount: Vec<String>,
    buyer_paid_amount: Vec<String>,
    seller_paid: Vec<bool>,
    buyer_withdrawn: Vec<bool>,
    close_deadline: Vec<Option<i64>>,
    close_initiator: Vec<Option<Vec<u8>>>,
    deferral_reason: Vec<Option<String>>,
    activated_block: Vec<i64>,
    activated_tx: Vec<Vec<u8>>,
    closed_block: Vec<Option<i64>>,
    closed_tx: Vec<Option<Vec<u8>>>,
    claimed_block: Vec<Option<i64>>,
    claimed_tx: Vec<Option<Vec<u8>>>,
    seller_paid_block: Vec<Option<i64>>,
    seller_paid_tx: Vec<Option<Vec<u8>>>,
    withdrawn_block: Vec<Option<i64>>,
    withdrawn_tx: Vec<Option<Vec<u8>>>,
    settled_block: Vec<Option<i64>>,
    settled_tx: Vec<Option<Vec<u8>>>,
    last_block: Vec<i64>,
}

impl From<&[AgreementRecord]> for Columns {
    fn from(rows: &[AgreementRecord]) -> Self {
        fn split(t: Option<Transition>) -> (Option<i64>, Option<Vec<u8>>) {
            t.map_or((None, None), |t| (Some(int(t.block)), Some(t.tx.to_vec())))
        }
        let mut c = Self::default();
        for r in rows {
            c.agreement_id.push(r.agreement_id.to_vec());
            c.buyer.push(r.buyer.to_vec());
            c.seller.push(r.seller.to_vec());
            c.token.push(r.token.to_vec());
            c.max_amount.push(r.max_amount.to_string());
            c.infra_fee.push(r.infra_fee.to_string());
            c.expiry.push(int(r.expiry));
            c.close_window.push(int(r.close_window));
            c.salt.push(r.salt.to_vec());
            c.status.push(r.status.as_str().to_owned());
            c.deposited.push(r.deposited.to_string());
            c.fee_collected.push(r.fee_collected.to_string());
            c.settled_amount.push(r.settled_amount.to_string());
            c.seller_paid_amount.push(r.seller_paid_amount.to_string());
            c.buyer_paid_amount.push(r.buyer_paid_amount.to_string());
            c.seller_paid.push(r.seller_paid);
            c.buyer_withdrawn.push(r.buyer_withdrawn);
            c.close_deadline.push(r.close_deadline.map(int));
            c.close_initiator
                .push(r.close_initiator.map(|a| a.to_vec()));
            c.deferral_reason
                .push(r.deferral_reason.map(|d| d.as_str().to_owned()));
            c.activated_block.push(int(r.activated.block));
            c.activated_tx.push(r.activated.tx.to_vec());
            let (b, t) = split(r.closed);
            c.closed_block.push(b);
            c.closed_tx.push(t);
            let (b, t) = split(r.claimed);
            c.claimed_block.push(b);
            c.claimed_tx.push(t);
            let (b, t) = split(r.seller_paid_at);
            c.seller_paid_block.push(b);
            c.seller_paid_tx.push(t);
            let (b, t) = split(r.withdrawn);
            c.withdrawn_block.push(b);
            c.withdrawn_tx.push(t);
            let (b, t) = split(r.settled);
            c.settled_block.push(b);
            c.settled_tx.push(t);
            c.last_block.push(int(r.last_block));
        }
        c
    }
}

/// An `agreements` row as stored.
struct AgreementRow {
    agreement_id: Vec<u8>,
    buyer: Vec<u8>,
    seller: Vec<u8>,
    token: Vec<u8>,
    max_amount: String,
    infra_fee: String,
    expiry: i64,
    close_window: i64,
    salt: Vec<u8>,
    status: String,
    deposited: String,
    fee_collected: String,
    settled_amount: String,
    seller_paid_amount: String,
    buyer_paid_amount: String,
    seller_paid: bool,
    buyer_withdrawn: bool,
    close_deadline: Option<i64>,
    close_initiator: Option<Vec<u8>>,
    deferral_reason: Option<String>,
    activated_block: i64,
    activated_tx: Vec<u8>,
    closed_block: Option<i64>,
    closed_tx: Option<Vec<u8>>,
    claimed_block: Option<i64>,
    claimed_tx: Option<Vec<u8>>,
    seller_paid_block: Option<i64>,
    seller_paid_tx: Option<Vec<u8>>,
    withdrawn_block: Option<i64>,
    withdrawn_tx: Option<Vec<u8>>,
    settled_block: Option<i64>,
    settled_tx: Option<Vec<u8>>,
    last_block: i64,
}

impl AgreementRow {
    fn into_record(self) -> Result<AgreementRecord> {
        const T: &str = "agreements";
        Ok(AgreementRecord {
            agreement_id: b256(T, &self.agreement_id)?,
            buyer: address(T, &self.buyer)?,
            seller: address(T, &self.seller)?,
            token: address(T, &self.token)?,
            max_amount: amount(T, &self.max_amount)?,
            infra_fee: amount(T, &self.infra_fee)?,
            expiry: uint(T, self.expiry)?,
            close_window: uint(T, self.close_window)?,
            salt: b256(T, &self.salt)?,
            status: self
                .status
                .parse()
                .ok()
                .filter(|s| *s != AgreementStatus::None)
                .ok_or_else(|| corrupt(T, format!("status {:?}", self.status)))?,
            deposited: amount(T, &self.deposited)?,
            fee_collected: amount(T, &self.fee_collected)?,
            settled_amount: amount(T, &self.settled_amount)?,
            seller_paid_amount: amount(T, &self.seller_paid_amount)?,
            buyer_paid_amount: amount(T, &self.buyer_paid_amount)?,
            seller_paid: self.seller_paid,
            buyer_withdrawn: self.buyer_withdrawn,
            close_deadline: self.close_deadline.map(|d| uint(T, d)).transpose()?,
            close_initiator: self.close_initiator.map(|a| address(T, &a)).transpose()?,
            deferral_reason: self
                .deferral_reason
                .map(|d| {
                    d.parse::<DeferralReason>()
                        .map_err(|_| corrupt(T, format!("deferral reason {d:?}")))
                })
                .transpose()?,
            activated: Transition {
                block: uint(T, self.activated_block)?,
                tx: b256(T, &self.activated_tx)?,
            },
            closed: transition(T, self.closed_block, self.closed_tx)?,
            claimed: transition(T, self.claimed_block, self.claimed_tx)?,
            seller_paid_at: transition(T, self.seller_paid_block, self.seller_paid_tx)?,
            withdrawn: transition(T, self.withdrawn_block, self.withdrawn_tx)?,
            settled: transition(T, self.settled_block, self.settled_tx)?,
            last_block: uint(T, self.last_block)?,
        })
    }
}
