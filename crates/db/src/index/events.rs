//! The raw canonical events of the indexed contracts (`chain_events`).

use alloy::primitives::{Address, B256, Bytes};
use sqlx::PgConnection;

use crate::{
    Result,
    convert::{address, b256, corrupt, int, uint},
};

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
