//! The derived state of each agreement (`agreements`), one row per agreement, rewritten by the
//! indexer as events arrive.

use alloy::primitives::B256;
use pactum_core::{
    AgreementStatus, DeferralReason,
    escrow::{AgreementRecord, Transition},
};
use sqlx::PgConnection;

use crate::{
    Result,
    convert::{address, amount, b256, corrupt, int, uint},
};

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

/// `sqlx::query_as!` into [`AgreementRow`] over every column, the rest of the query
/// (`WHERE ...`) appended: the one place the column list is written.
macro_rules! select_agreements {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            AgreementRow,
            r#"SELECT agreement_id, buyer, seller, token, max_amount::text AS "max_amount!", infra_fee::text AS "infra_fee!",
                      expiry, close_window, salt, status, deposited::text AS "deposited!",
                      fee_collected::text AS "fee_collected!", settled_amount::text AS "settled_amount!",
                      seller_paid_amount::text AS "seller_paid_amount!", buyer_paid_amount::text AS "buyer_paid_amount!",
                      seller_paid, buyer_withdrawn, close_deadline, close_initiator, deferral_reason,
                      activated_block, activated_tx, closed_block, closed_tx, claimed_block, claimed_tx,
                      seller_paid_block, seller_paid_tx, withdrawn_block, withdrawn_tx, settled_block, settled_tx, last_block
               FROM agreements "# + $rest $(, $arg)*
        )
    };
}

/// The stored state of the given agreements (those that exist).
pub async fn load_agreements(
    conn: &mut PgConnection,
    chain_id: u64,
    ids: &[B256],
) -> Result<Vec<AgreementRecord>> {
    let ids: Vec<Vec<u8>> = ids.iter().map(|id| id.to_vec()).collect();
    let rows = select_agreements!(
        "WHERE chain_id = $1 AND agreement_id = ANY($2)",
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
    let rows = select_agreements!("WHERE chain_id = $1 ORDER BY agreement_id", int(chain_id))
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
