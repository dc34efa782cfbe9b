//! Receipts as stored (`receipts`), and the indexed logs they are issued from and checked
//! against (`chain_events`).

use alloy::primitives::{Address, B256, Bytes, U256};
use pactum_core::receipt::ReceiptKind;
use sqlx::PgConnection;

use crate::{
    Result,
    convert::{address, amount, b256, corrupt, int, uint},
};

const TABLE: &str = "receipts";
const EVENTS: &str = "chain_events";

/// An indexed log that states a money movement and has no receipt yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreceipted {
    /// Its block.
    pub block_number: u64,
    /// Its block's hash.
    pub block_hash: B256,
    /// Its place in the block.
    pub log_index: u64,
    /// Its transaction.
    pub tx_hash: B256,
    /// The contract that emitted it.
    pub contract: Address,
    /// Its topics, concatenated.
    pub topics: Vec<u8>,
    /// Its data.
    pub data: Vec<u8>,
    /// The agreement's token, once indexed.
    pub agreement_token: Option<Address>,
    /// The usage agreement's API id, if the escrow is one of the API's.
    pub agreement_id: Option<String>,
    /// The buyer's agent.
    pub buyer_agent_id: Option<String>,
    /// The seller's agent.
    pub seller_agent_id: Option<String>,
}

/// How far below its checkpoint the issuer looks again (for logs that became canonical through
/// a reorg below it).
pub const RESCAN_BLOCKS: i64 = 256;

/// Up to `limit` final logs (at or below the index's final block) of chain `chain_id` that state
/// a movement (`events`: their kinds) and have neither a receipt nor a skip, above the issuer's
/// checkpoint less [`RESCAN_BLOCKS`], oldest first.
pub async fn unreceipted(
    conn: &mut PgConnection,
    chain_id: u64,
    events: &[&str],
    limit: u32,
) -> Result<Vec<Unreceipted>> {
    let events: Vec<String> = events.iter().map(|e| (*e).to_owned()).collect();
    let rows = sqlx::query!(
        r#"SELECT e.block_number, e.block_hash, e.log_index, e.tx_hash, e.contract, e.topics, e.data,
                  a.token AS "agreement_token?", u.id AS "agreement_id?",
                  coalesce(u.buyer_agent_id,
                           (SELECT g.id FROM agents g
                             WHERE g.wallet_proof IS NOT NULL AND g.wallet_address = a.buyer)) AS buyer_agent_id,
                  coalesce(u.seller_agent_id,
                           (SELECT g.id FROM agents g
                             WHERE g.wallet_proof IS NOT NULL AND g.wallet_address = a.seller)) AS seller_agent_id
             FROM chain_events e
             JOIN indexer_cursor c ON c.chain_id = e.chain_id
             LEFT JOIN agreements a ON a.chain_id = e.chain_id AND a.agreement_id = e.agreement_id
             LEFT JOIN usage_agreements u ON u.chain_id = e.chain_id AND u.onchain_id = e.agreement_id
            WHERE e.chain_id = $1 AND e.kind = ANY($2) AND e.block_number <= c.finalized_block
              AND e.block_number > coalesce((SELECT k.block_number FROM receipt_checkpoints k
                                               WHERE k.chain_id = $1), -1) - $4
              AND NOT EXISTS (SELECT 1 FROM receipts r
                               WHERE r.chain_id = e.chain_id AND r.block_hash = e.block_hash
                                 AND r.log_index = e.log_index)
              AND NOT EXISTS (SELECT 1 FROM receipt_skips k
                               WHERE k.chain_id = e.chain_id AND k.block_hash = e.block_hash
                                 AND k.log_index = e.log_index)
            ORDER BY e.block_number, e.log_index
            LIMIT $3"#,
        int(chain_id),
        &events,
        i64::from(limit),
        RESCAN_BLOCKS,
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Unreceipted {
                block_number: uint(EVENTS, r.block_number)?,
                block_hash: b256(EVENTS, &r.block_hash)?,
                log_index: uint(EVENTS, i64::from(r.log_index))?,
                tx_hash: b256(EVENTS, &r.tx_hash)?,
                contract: address(EVENTS, &r.contract)?,
                topics: r.topics,
                data: r.data,
                agreement_token: r
                    .agreement_token
                    .as_deref()
                    .map(|t| address(EVENTS, t))
                    .transpose()?,
                agreement_id: r.agreement_id,
                buyer_agent_id: r.buyer_agent_id,
                seller_agent_id: r.seller_agent_id,
            })
        })
        .collect()
}

/// A receipt, signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReceipt {
    /// `rcp_...`.
    pub id: String,
    /// Issue order (the list's cursor).
    pub seq: i64,
    /// The chain.
    pub chain_id: u64,
    /// What moved.
    pub kind: ReceiptKind,
    /// The escrow's agreement.
    pub onchain_agreement_id: B256,
    /// The usage agreement's API id, if any.
    pub agreement_id: Option<String>,
    /// The buyer's agent.
    pub buyer_agent_id: Option<String>,
    /// The seller's agent.
    pub seller_agent_id: Option<String>,
    /// From.
    pub payer: Address,
    /// To.
    pub payee: Address,
    /// The token.
    pub token: Address,
    /// How much.
    pub amount: U256,
    /// The contract whose log states it.
    pub emitter: Address,
    /// The transaction.
    pub tx_hash: B256,
    /// The log's place in its block.
    pub log_index: u64,
    /// The block.
    pub block_number: u64,
    /// Its hash.
    pub block_hash: B256,
    /// Its time (unix seconds).
    pub block_time: u64,
    /// The EIP-712 domain's verifying contract it was signed under.
    pub verifying_contract: Address,
    /// Who signed.
    pub signer: Address,
    /// The EIP-712 signature.
    pub signature: Bytes,
    /// RFC 3339, UTC.
    pub issued_at: String,
}

struct Row {
    id: String,
    seq: i64,
    chain_id: i64,
    kind: String,
    onchain_agreement_id: Vec<u8>,
    agreement_id: Option<String>,
    buyer_agent_id: Option<String>,
    seller_agent_id: Option<String>,
    payer: Vec<u8>,
    payee: Vec<u8>,
    token: Vec<u8>,
    amount: String,
    emitter: Vec<u8>,
    tx_hash: Vec<u8>,
    log_index: i32,
    block_number: i64,
    block_hash: Vec<u8>,
    block_time: i64,
    verifying_contract: Vec<u8>,
    signer: Vec<u8>,
    signature: Vec<u8>,
    issued_at: String,
}

impl TryFrom<Row> for StoredReceipt {
    type Error = crate::Error;

    fn try_from(r: Row) -> Result<Self> {
        Ok(Self {
            chain_id: uint(TABLE, r.chain_id)?,
            kind: r
                .kind
                .parse()
                .map_err(|e: pactum_core::UnknownName| corrupt(TABLE, e.to_string()))?,
            onchain_agreement_id: b256(TABLE, &r.onchain_agreement_id)?,
            payer: address(TABLE, &r.payer)?,
            payee: address(TABLE, &r.payee)?,
            token: address(TABLE, &r.token)?,
            amount: amount(TABLE, &r.amount)?,
            emitter: address(TABLE, &r.emitter)?,
            tx_hash: b256(TABLE, &r.tx_hash)?,
            log_index: uint(TABLE, i64::from(r.log_index))?,
            block_number: uint(TABLE, r.block_number)?,
            block_hash: b256(TABLE, &r.block_hash)?,
            block_time: uint(TABLE, r.block_time)?,
            verifying_contract: address(TABLE, &r.verifying_contract)?,
            signer: address(TABLE, &r.signer)?,
            signature: Bytes::from(r.signature),
            id: r.id,
            seq: r.seq,
            agreement_id: r.agreement_id,
            buyer_agent_id: r.buyer_agent_id,
            seller_agent_id: r.seller_agent_id,
            issued_at: r.issued_at,
        })
    }
}

macro_rules! select_receipts {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            Row,
            r#"SELECT id, seq, chain_id, kind, onchain_agreement_id, agreement_id, buyer_agent_id,
                      seller_agent_id, payer, payee, token, amount::text AS "amount!", emitter,
                      tx_hash, log_index, block_number, block_hash, block_time, verifying_contract,
                      signer, signature,
                      to_char(issued_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS "issued_at!"
               FROM receipts "# + $rest
            $(, $arg)*
        )
    };
}

/// Stores `r` (its `seq` and `issued_at` are the database's); `false` if the log already has a
/// receipt.
pub async fn insert(conn: &mut PgConnection, r: &StoredReceipt) -> Result<bool> {
    Ok(sqlx::query!(
        "INSERT INTO receipts
           (id, chain_id, kind, onchain_agreement_id, agreement_id, buyer_agent_id, seller_agent_id,
            payer, payee, token, amount, emitter, tx_hash, log_index, block_number, block_hash,
            block_time, verifying_contract, signer, signature)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::text::numeric, $12, $13, $14, $15,
                 $16, $17, $18, $19, $20)
         ON CONFLICT DO NOTHING",
        r.id,
        int(r.chain_id),
        r.kind.as_str(),
        r.onchain_agreement_id.as_slice(),
        r.agreement_id,
        r.buyer_agent_id,
        r.seller_agent_id,
        r.payer.as_slice(),
        r.payee.as_slice(),
        r.token.as_slice(),
        r.amount.to_string(),
        r.emitter.as_slice(),
        r.tx_hash.as_slice(),
        i32::try_from(r.log_index).unwrap_or(i32::MAX),
        int(r.block_number),
        r.block_hash.as_slice(),
        int(r.block_time),
        r.verifying_contract.as_slice(),
        r.signer.as_slice(),
        r.signature.as_ref(),
    )
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Records that the log at (`block_hash`, `log_index`) of chain `chain_id` gets no receipt, and
/// why.
pub async fn skip(
    conn: &mut PgConnection,
    chain_id: u64,
    block_hash: B256,
    log_index: u64,
    reason: &str,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO receipt_skips (chain_id, block_hash, log_index, reason)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        int(chain_id),
        block_hash.as_slice(),
        i32::try_from(log_index).unwrap_or(i32::MAX),
        reason,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves chain `chain_id`'s issuer checkpoint up to `block` (never down).
pub async fn advance_checkpoint(conn: &mut PgConnection, chain_id: u64, block: u64) -> Result<()> {
    sqlx::query!(
        "INSERT INTO receipt_checkpoints (chain_id, block_number) VALUES ($1, $2)
         ON CONFLICT (chain_id) DO UPDATE
           SET block_number = greatest(receipt_checkpoints.block_number, excluded.block_number)",
        int(chain_id),
        int(block),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The index's final block of chain `chain_id`, if it has started.
pub async fn finalized_block(conn: &mut PgConnection, chain_id: u64) -> Result<Option<u64>> {
    sqlx::query_scalar!(
        "SELECT finalized_block FROM indexer_cursor WHERE chain_id = $1",
        int(chain_id)
    )
    .fetch_optional(conn)
    .await?
    .map(|b| uint(EVENTS, b))
    .transpose()
}

/// Receipt `id`.
pub async fn load(conn: &mut PgConnection, id: &str) -> Result<Option<StoredReceipt>> {
    select_receipts!("WHERE id = $1", id)
        .fetch_optional(conn)
        .await?
        .map(StoredReceipt::try_from)
        .transpose()
}

/// A page of the receipts of agent `agent_id`'s agreements (as buyer or seller), newest first,
/// older than `before`.
pub async fn of_agent(
    conn: &mut PgConnection,
    agent_id: &str,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<StoredReceipt>> {
    select_receipts!(
        "WHERE id IN ((SELECT id FROM receipts WHERE buyer_agent_id = $1 AND seq < $2
                        ORDER BY seq DESC LIMIT $3)
                      UNION
                      (SELECT id FROM receipts WHERE seller_agent_id = $1 AND seq < $2
                        ORDER BY seq DESC LIMIT $3))
         ORDER BY seq DESC LIMIT $3",
        agent_id,
        before.unwrap_or(i64::MAX),
        i64::from(limit),
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(StoredReceipt::try_from)
    .collect()
}

/// The indexed log at a receipt's place, as the index holds it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedLog {
    /// Its transaction.
    pub tx_hash: B256,
    /// Its block.
    pub block_number: u64,
    /// The contract that emitted it.
    pub contract: Address,
    /// Its topics, concatenated.
    pub topics: Vec<u8>,
    /// Its data.
    pub data: Vec<u8>,
    /// The index's final block now.
    pub finalized_block: u64,
    /// The agreement's token, if indexed.
    pub agreement_token: Option<Address>,
}

/// The log of chain `chain_id` at (`block_hash`, `log_index`), if the index holds it (a reorg
/// removes the logs of the blocks it replaces).
pub async fn indexed_log(
    conn: &mut PgConnection,
    chain_id: u64,
    block_hash: B256,
    log_index: u64,
) -> Result<Option<IndexedLog>> {
    let row = sqlx::query!(
        r#"SELECT e.tx_hash, e.block_number, e.contract, e.topics, e.data, c.finalized_block,
                  a.token AS "agreement_token?"
             FROM chain_events e
             JOIN indexer_cursor c ON c.chain_id = e.chain_id
             LEFT JOIN agreements a ON a.chain_id = e.chain_id AND a.agreement_id = e.agreement_id
            WHERE e.chain_id = $1 AND e.block_hash = $2 AND e.log_index = $3"#,
        int(chain_id),
        block_hash.as_slice(),
        i32::try_from(log_index).unwrap_or(i32::MAX),
    )
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(IndexedLog {
            tx_hash: b256(EVENTS, &r.tx_hash)?,
            block_number: uint(EVENTS, r.block_number)?,
            contract: address(EVENTS, &r.contract)?,
            topics: r.topics,
            data: r.data,
            finalized_block: uint(EVENTS, r.finalized_block)?,
            agreement_token: r
                .agreement_token
                .as_deref()
                .map(|t| address(EVENTS, t))
                .transpose()?,
        })
    })
    .transpose()
}
