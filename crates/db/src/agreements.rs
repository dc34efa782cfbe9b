//! Usage agreements as the API keeps them (`usage_agreements`) and the history of each
//! (`agreement_events`). Every change of status is written with its event in one transaction,
//! by [`insert`], [`transition`] and [`expire_due`].

use alloy::primitives::{Address, B256, Bytes, U256};
use pactum_core::agreement::{EventKind, LifecycleStatus};
use sqlx::PgConnection;

use crate::{
    Result,
    convert::{address, amount, b256, corrupt, int, uint},
};

const TABLE: &str = "usage_agreements";

/// A usage agreement as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageAgreement {
    /// `agr_...`.
    pub id: String,
    /// Creation order (the list's cursor).
    pub seq: i64,
    /// The chain of its escrow.
    pub chain_id: u64,
    /// The buyer's agent.
    pub buyer_agent_id: String,
    /// Its owner.
    pub buyer_owner_id: String,
    /// The seller's agent.
    pub seller_agent_id: String,
    /// Its owner.
    pub seller_owner_id: String,
    /// The buyer's wallet.
    pub buyer_wallet: Address,
    /// The seller's wallet.
    pub seller_wallet: Address,
    /// The service.
    pub service_id: String,
    /// Agreed units.
    pub quantity: u64,
    /// What a unit is.
    pub unit: String,
    /// Price per unit, in cents.
    pub price_per_unit_cents: u64,
    /// Payment rail.
    pub rail: String,
    /// Payment provider.
    pub provider: String,
    /// Settlement model.
    pub settlement_model: String,
    /// Activation version.
    pub activation_version: String,
    /// The token.
    pub token: Address,
    /// Escrowed amount (base units).
    pub max_amount: U256,
    /// Platform fee (base units).
    pub infra_fee: U256,
    /// Unix seconds.
    pub expiry: u64,
    /// Seconds.
    pub close_window: u32,
    /// The buyer's metadata, as JSON text.
    pub metadata: String,
    /// Status as stored (see [`UsageAgreement::status_at`] for the one shown).
    pub status: LifecycleStatus,
    /// The escrow's id, once accepted.
    pub onchain_id: Option<B256>,
    /// Why the seller rejected it.
    pub rejection_reason: Option<String>,
    /// The latest activation handed to the relayer.
    pub activation_relay_id: Option<String>,
    /// Highest cumulative usage recorded.
    pub usage_quantity: u64,
    /// The voucher amount of that usage.
    pub voucher_amount: U256,
    /// The buyer's voucher for it.
    pub voucher_signature: Option<Bytes>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub updated_at: String,
}

impl UsageAgreement {
    /// The status shown at `now` (unix seconds): a proposal or accepted agreement past its
    /// expiry is `expired` even before the sweep records it.
    pub fn status_at(&self, now: u64) -> LifecycleStatus {
        if self.status.expired_at(now, self.expiry) {
            LifecycleStatus::Expired
        } else {
            self.status
        }
    }
}

/// One event of an agreement's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgreementEvent {
    /// Ordering id.
    pub id: i64,
    /// What happened.
    pub kind: EventKind,
    /// The status after it.
    pub status: LifecycleStatus,
    /// Who caused it.
    pub actor: String,
    /// Its details, as JSON text.
    pub detail: String,
    /// The transaction, for on-chain events.
    pub tx_hash: Option<B256>,
    /// The block, for on-chain events.
    pub block_number: Option<u64>,
    /// RFC 3339, UTC.
    pub at: String,
}

/// A new proposal.
#[derive(Debug, Clone)]
pub struct NewAgreement<'a> {
    /// `agr_...`.
    pub id: &'a str,
    /// The chain.
    pub chain_id: u64,
    /// The buyer's agent.
    pub buyer_agent_id: &'a str,
    /// The seller's agent.
    pub seller_agent_id: &'a str,
    /// The buyer's wallet.
    pub buyer_wallet: Address,
    /// The seller's wallet.
    pub seller_wallet: Address,
    /// The service.
    pub service_id: &'a str,
    /// Units.
    pub quantity: u64,
    /// Unit.
    pub unit: &'a str,
    /// Cents per unit.
    pub price_per_unit_cents: u64,
    /// Rail.
    pub rail: &'a str,
    /// Provider.
    pub provider: &'a str,
    /// Settlement model.
    pub settlement_model: &'a str,
    /// Activation version.
    pub activation_version: &'a str,
    /// Token.
    pub token: Address,
    /// Escrowed amount.
    pub max_amount: U256,
    /// Fee.
    pub infra_fee: U256,
    /// Unix seconds.
    pub expiry: u64,
    /// Seconds.
    pub close_window: u32,
    /// JSON object text.
    pub metadata: &'a str,
    /// The principal and Idempotency-Key the proposal was made under, if any (see
    /// [`by_proposal_key`]).
    pub proposal_key: Option<&'a str>,
    /// `proposed`, or `pending_approval` when the buyer's owner must approve it first.
    pub status: LifecycleStatus,
}

/// Who caused an event and its details.
#[derive(Debug, Clone, Copy)]
pub struct Cause<'a> {
    /// `agent:<id>`, `owner:<id>`, `chain` or `system`.
    pub actor: &'a str,
    /// A JSON object, as text.
    pub detail: &'a str,
}

struct Row {
    id: String,
    seq: i64,
    chain_id: i64,
    buyer_agent_id: String,
    buyer_owner_id: String,
    seller_agent_id: String,
    seller_owner_id: String,
    buyer_wallet: Vec<u8>,
    seller_wallet: Vec<u8>,
    service_id: String,
    quantity: i64,
    unit: String,
    price_per_unit_cents: i64,
    rail: String,
    provider: String,
    settlement_model: String,
    activation_version: String,
    token: Vec<u8>,
    max_amount: String,
    infra_fee: String,
    expiry: i64,
    close_window: i32,
    metadata: String,
    status: String,
    onchain_id: Option<Vec<u8>>,
    rejection_reason: Option<String>,
    activation_relay_id: Option<String>,
    usage_quantity: i64,
    voucher_amount: String,
    voucher_signature: Option<Vec<u8>>,
    created_at: String,
    updated_at: String,
}

impl TryFrom<Row> for UsageAgreement {
    type Error = crate::Error;

    fn try_from(r: Row) -> Result<Self> {
        Ok(Self {
            seq: r.seq,
            chain_id: uint(TABLE, r.chain_id)?,
            buyer_wallet: address(TABLE, &r.buyer_wallet)?,
            seller_wallet: address(TABLE, &r.seller_wallet)?,
            quantity: uint(TABLE, r.quantity)?,
            price_per_unit_cents: uint(TABLE, r.price_per_unit_cents)?,
            token: address(TABLE, &r.token)?,
            max_amount: amount(TABLE, &r.max_amount)?,
            infra_fee: amount(TABLE, &r.infra_fee)?,
            expiry: uint(TABLE, r.expiry)?,
            close_window: u32::try_from(r.close_window)
                .map_err(|_| corrupt(TABLE, format!("close window {}", r.close_window)))?,
            status: r
                .status
                .parse()
                .map_err(|e| corrupt(TABLE, format!("{e}")))?,
            onchain_id: r
                .onchain_id
                .as_deref()
                .map(|b| b256(TABLE, b))
                .transpose()?,
            usage_quantity: uint(TABLE, r.usage_quantity)?,
            voucher_amount: amount(TABLE, &r.voucher_amount)?,
            voucher_signature: r.voucher_signature.map(Bytes::from),
            id: r.id,
            buyer_agent_id: r.buyer_agent_id,
            buyer_owner_id: r.buyer_owner_id,
            seller_agent_id: r.seller_agent_id,
            seller_owner_id: r.seller_owner_id,
            service_id: r.service_id,
            unit: r.unit,
            rail: r.rail,
            provider: r.provider,
            settlement_model: r.settlement_model,
            activation_version: r.activation_version,
            metadata: r.metadata,
            rejection_reason: r.rejection_reason,
            activation_relay_id: r.activation_relay_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// `SELECT` of [`Row`]'s columns from `usage_agreements`, followed by `$rest`.
macro_rules! select_agreements {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            Row,
            r#"SELECT u.id, u.seq, u.chain_id, u.buyer_agent_id, b.owner_id AS buyer_owner_id,
                      u.seller_agent_id, s.owner_id AS seller_owner_id, u.buyer_wallet,
                      u.seller_wallet, u.service_id, u.quantity, u.unit, u.price_per_unit_cents,
                      u.rail, u.provider, u.settlement_model, u.activation_version, u.token,
                      u.max_amount::text AS "max_amount!", u.infra_fee::text AS "infra_fee!",
                      u.expiry, u.close_window, u.metadata::text AS "metadata!", u.status,
                      u.onchain_id, u.rejection_reason, u.activation_relay_id, u.usage_quantity,
                      u.voucher_amount::text AS "voucher_amount!", u.voucher_signature,
                      to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS "created_at!",
                      to_char(u.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS "updated_at!"
               FROM usage_agreements u
               JOIN agents b ON b.id = u.buyer_agent_id
               JOIN agents s ON s.id = u.seller_agent_id "# + $rest
            $(, $arg)*
        )
    };
}

/// Records a proposal and its `proposed` event (with the status it starts in).
pub async fn insert(
    conn: &mut PgConnection,
    new: &NewAgreement<'_>,
    cause: Cause<'_>,
) -> Result<()> {
    sqlx::query!(
        r#"INSERT INTO usage_agreements
             (id, chain_id, buyer_agent_id, seller_agent_id, buyer_wallet, seller_wallet, service_id,
              quantity, unit, price_per_unit_cents, rail, provider, settlement_model,
              activation_version, token, max_amount, infra_fee, expiry, close_window, metadata, status,
              proposal_key)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16::text::numeric,
                   $17::text::numeric, $18, $19, $20::text::jsonb, $21, $22)"#,
        new.id,
        int(new.chain_id),
        new.buyer_agent_id,
        new.seller_agent_id,
        new.buyer_wallet.as_slice(),
        new.seller_wallet.as_slice(),
        new.service_id,
        int(new.quantity),
        new.unit,
        int(new.price_per_unit_cents),
        new.rail,
        new.provider,
        new.settlement_model,
        new.activation_version,
        new.token.as_slice(),
        new.max_amount.to_string(),
        new.infra_fee.to_string(),
        int(new.expiry),
        i32::try_from(new.close_window).unwrap_or(i32::MAX),
        new.metadata,
        new.status.as_str(),
        new.proposal_key,
    )
    .execute(&mut *conn)
    .await?;
    record(conn, new.id, EventKind::Proposed, new.status, cause, None).await
}

/// The agreement proposed under `proposal_key` (principal and Idempotency-Key), if one was.
pub async fn by_proposal_key(
    conn: &mut PgConnection,
    proposal_key: &str,
) -> Result<Option<String>> {
    Ok(sqlx::query_scalar!(
        "SELECT id FROM usage_agreements WHERE proposal_key = $1",
        proposal_key
    )
    .fetch_optional(conn)
    .await?)
}

/// The agreement `id`.
pub async fn load(conn: &mut PgConnection, id: &str) -> Result<Option<UsageAgreement>> {
    select_agreements!("WHERE u.id = $1", id)
        .fetch_optional(conn)
        .await?
        .map(UsageAgreement::try_from)
        .transpose()
}

/// The agreement `id`, locked until the transaction ends (transitions are decided under it).
pub async fn lock(conn: &mut PgConnection, id: &str) -> Result<Option<UsageAgreement>> {
    select_agreements!("WHERE u.id = $1 FOR UPDATE OF u", id)
        .fetch_optional(conn)
        .await?
        .map(UsageAgreement::try_from)
        .transpose()
}

/// The agreement whose escrow is `onchain_id`.
pub async fn by_onchain_id(
    conn: &mut PgConnection,
    chain_id: u64,
    onchain_id: B256,
) -> Result<Option<UsageAgreement>> {
    select_agreements!(
        "WHERE u.chain_id = $1 AND u.onchain_id = $2",
        int(chain_id),
        onchain_id.as_slice()
    )
    .fetch_optional(conn)
    .await?
    .map(UsageAgreement::try_from)
    .transpose()
}

/// What a transition also fixes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fixes<'a> {
    /// The escrow's id (acceptance).
    pub onchain_id: Option<B256>,
    /// The seller's wallet (acceptance).
    pub seller_wallet: Option<Address>,
    /// Why (rejection).
    pub rejection_reason: Option<&'a str>,
    /// The activation's relay job.
    pub activation_relay_id: Option<&'a str>,
}

/// Moves agreement `id` (locked by the caller) to `to`, with what the transition fixes, and
/// records `kind`.
pub async fn transition(
    conn: &mut PgConnection,
    id: &str,
    to: LifecycleStatus,
    kind: EventKind,
    fixes: Fixes<'_>,
    cause: Cause<'_>,
) -> Result<()> {
    sqlx::query!(
        "UPDATE usage_agreements
            SET status = $2,
                onchain_id = coalesce($3, onchain_id),
                seller_wallet = coalesce($4, seller_wallet),
                rejection_reason = coalesce($5, rejection_reason),
                activation_relay_id = coalesce($6, activation_relay_id),
                updated_at = now()
          WHERE id = $1",
        id,
        to.as_str(),
        fixes.onchain_id.as_ref().map(|b| b.as_slice()),
        fixes.seller_wallet.as_ref().map(|a| a.as_slice()),
        fixes.rejection_reason,
        fixes.activation_relay_id,
    )
    .execute(&mut *conn)
    .await?;
    record(conn, id, kind, to, cause, None).await
}

/// An on-chain fact an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnChain {
    /// The transaction.
    pub tx_hash: B256,
    /// Its block.
    pub block_number: u64,
}

/// Appends an event to `id`'s history.
pub async fn record(
    conn: &mut PgConnection,
    id: &str,
    kind: EventKind,
    status: LifecycleStatus,
    cause: Cause<'_>,
    on_chain: Option<OnChain>,
) -> Result<()> {
    sqlx::query!(
        "INSERT INTO agreement_events (agreement_id, kind, status, actor, detail, tx_hash, block_number)
         VALUES ($1, $2, $3, $4, $5::text::jsonb, $6, $7)",
        id,
        kind.as_str(),
        status.as_str(),
        cause.actor,
        cause.detail,
        on_chain.as_ref().map(|c| c.tx_hash.to_vec()),
        on_chain.map(|c| int(c.block_number)),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// `id`'s history, oldest first.
pub async fn events(conn: &mut PgConnection, id: &str) -> Result<Vec<AgreementEvent>> {
    const EVENTS: &str = "agreement_events";
    let rows = sqlx::query!(
        r#"SELECT id, kind, status, actor, detail::text AS "detail!", tx_hash, block_number,
                  to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS "at!"
           FROM agreement_events WHERE agreement_id = $1 ORDER BY id"#,
        id
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(AgreementEvent {
                id: r.id,
                kind: r
                    .kind
                    .parse()
                    .map_err(|e| corrupt(EVENTS, format!("{e}")))?,
                status: r
                    .status
                    .parse()
                    .map_err(|e| corrupt(EVENTS, format!("{e}")))?,
                actor: r.actor,
                detail: r.detail,
                tx_hash: r.tx_hash.as_deref().map(|b| b256(EVENTS, b)).transpose()?,
                block_number: r.block_number.map(|n| uint(EVENTS, n)).transpose()?,
                at: r.at,
            })
        })
        .collect()
}

/// Which of an agent's agreements to list.
#[derive(Debug, Clone, Copy)]
pub struct ListQuery<'a> {
    /// The agent.
    pub agent_id: &'a str,
    /// Only those where it is the buyer (`Some(true)`), the seller (`Some(false)`), or both.
    pub as_buyer: Option<bool>,
    /// Only those with this status as shown at `now`.
    pub status: Option<LifecycleStatus>,
    /// Unix seconds (what counts as expired).
    pub now: u64,
    /// Only those older than this `seq` (the previous page's last).
    pub before: Option<i64>,
    /// Page size.
    pub limit: u32,
}

/// A page of an agent's agreements, newest first: each role's index is read in `seq` order from
/// the cursor and the two merged, so a page costs `limit` rows of each, however many the agent
/// has. A status filter uses the status as shown: `expired` includes the proposals and accepted
/// agreements whose expiry passed before the sweep recorded it, and `proposed`/`accepted`
/// exclude them.
pub async fn list(conn: &mut PgConnection, q: ListQuery<'_>) -> Result<Vec<UsageAgreement>> {
    let before = q.before.unwrap_or(i64::MAX);
    let limit = i64::from(q.limit);
    let (buyer, seller) = match q.as_buyer {
        Some(true) => (Some(q.agent_id), None),
        Some(false) => (None, Some(q.agent_id)),
        None => (Some(q.agent_id), Some(q.agent_id)),
    };
    // For a status filter, the stored statuses that may show as it.
    let (stored, expiring): (Vec<String>, Option<bool>) = match q.status {
        None => (Vec::new(), None),
        Some(LifecycleStatus::Expired) => (
            std::iter::once(LifecycleStatus::Expired)
                .chain(LifecycleStatus::ALL.iter().copied().filter(|s| s.expires()))
                .map(|s| s.as_str().to_owned())
                .collect(),
            Some(true),
        ),
        Some(s) if s.expires() => (vec![s.as_str().to_owned()], Some(false)),
        Some(s) => (vec![s.as_str().to_owned()], None),
    };
    let filtered = q.status.is_some();
    let now = int(q.now);
    let rows = select_agreements!(
        r#"WHERE u.id IN (
             (SELECT id FROM usage_agreements
               WHERE buyer_agent_id = $1 AND seq < $3 AND (NOT $5 OR status = ANY($6))
                 AND ($7::bool IS NULL OR ($7 AND (status = 'expired' OR expiry <= $8))
                      OR (NOT $7 AND expiry > $8))
               ORDER BY seq DESC LIMIT $4)
             UNION ALL
             (SELECT id FROM usage_agreements
               WHERE seller_agent_id = $2 AND seq < $3 AND (NOT $5 OR status = ANY($6))
                 AND ($7::bool IS NULL OR ($7 AND (status = 'expired' OR expiry <= $8))
                      OR (NOT $7 AND expiry > $8))
               ORDER BY seq DESC LIMIT $4))
           ORDER BY u.seq DESC LIMIT $4"#,
        buyer,
        seller,
        before,
        limit,
        filtered,
        &stored,
        expiring,
        now,
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(UsageAgreement::try_from).collect()
}

/// Records the expiry of up to `limit` proposals (approved or waiting for approval) and accepted
/// agreements whose terms expired by `now` (unix seconds), each with its `expired` event, and of
/// their approval requests still pending; returns their ids.
pub async fn expire_due(conn: &mut PgConnection, now: u64, limit: u32) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar!(
        r#"WITH due AS (
             SELECT id FROM usage_agreements
              WHERE status IN ('pending_approval', 'proposed', 'accepted') AND expiry <= $1
              ORDER BY expiry LIMIT $2
              FOR UPDATE SKIP LOCKED
           ), expired AS (
             UPDATE usage_agreements u SET status = 'expired', updated_at = now()
               FROM due WHERE u.id = due.id
             RETURNING u.id, u.expiry
           ), recorded AS (
             INSERT INTO agreement_events (agreement_id, kind, status, actor, detail)
             SELECT id, 'expired', 'expired', 'system', jsonb_build_object('expiry', expiry)
               FROM expired
           ), requests AS (
             UPDATE approval_requests r SET status = 'expired'
               FROM expired WHERE r.agreement_id = expired.id AND r.status = 'pending'
           )
           SELECT id AS "id!" FROM expired"#,
        int(now),
        i64::from(limit),
    )
    .fetch_all(conn)
    .await?)
}

/// How long an activation claim holds before another submission may take it (a claim is
/// released within a request; one left by a crash goes stale).
pub const CLAIM_STALE_AFTER_SECS: i64 = 60;

/// Claims agreement `id` (locked by the caller) for an activation submission; `false` if a
/// fresh claim of another submission holds it.
pub async fn claim_activation(conn: &mut PgConnection, id: &str, claim: &str) -> Result<bool> {
    Ok(sqlx::query_scalar!(
        r#"UPDATE usage_agreements
              SET activation_claim = $2, activation_claimed_at = now()
            WHERE id = $1
              AND (activation_claim IS NULL
                   OR activation_claimed_at < now() - make_interval(secs => $3))
        RETURNING id"#,
        id,
        claim,
        CLAIM_STALE_AFTER_SECS as f64,
    )
    .fetch_optional(conn)
    .await?
    .is_some())
}

/// Completes the submission that holds `claim`: the agreement is `activating` with the relay
/// job `relay_id`, and `activation_submitted` is recorded. `false` (nothing written) if the claim
/// was taken over meanwhile.
pub async fn link_activation(
    conn: &mut PgConnection,
    id: &str,
    claim: &str,
    relay_id: &str,
    cause: Cause<'_>,
) -> Result<bool> {
    let linked = sqlx::query_scalar!(
        r#"UPDATE usage_agreements
              SET status = 'activating', activation_relay_id = $3, activation_claim = NULL,
                  activation_claimed_at = NULL, updated_at = now()
            WHERE id = $1 AND activation_claim = $2
        RETURNING id"#,
        id,
        claim,
        relay_id,
    )
    .fetch_optional(&mut *conn)
    .await?
    .is_some();
    if linked {
        record(
            conn,
            id,
            EventKind::ActivationSubmitted,
            LifecycleStatus::Activating,
            cause,
            None,
        )
        .await?;
    }
    Ok(linked)
}

/// Releases `claim` on agreement `id` (the submission was refused: nothing changed).
pub async fn release_claim(conn: &mut PgConnection, id: &str, claim: &str) -> Result<()> {
    sqlx::query!(
        "UPDATE usage_agreements SET activation_claim = NULL, activation_claimed_at = NULL
          WHERE id = $1 AND activation_claim = $2",
        id,
        claim,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// An indexed on-chain fact about an escrow, for the history of the usage agreement it belongs
/// to (if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainFact {
    /// The escrow's agreement id.
    pub onchain_id: B256,
    /// What happened.
    pub kind: EventKind,
    /// The agreement's status once it happened.
    pub status: LifecycleStatus,
    /// Where.
    pub at: OnChain,
}

/// Records `facts` (in chain order) in the histories of the usage agreements they belong to,
/// and moves each agreement to the status of its last fact. Facts of escrows no usage agreement
/// names are ignored. Called by the indexer in the transaction that stores the events.
pub async fn follow_chain(
    conn: &mut PgConnection,
    chain_id: u64,
    facts: &[ChainFact],
) -> Result<u64> {
    if facts.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Vec<u8>> = facts.iter().map(|f| f.onchain_id.to_vec()).collect();
    let kinds: Vec<&str> = facts.iter().map(|f| f.kind.as_str()).collect();
    let statuses: Vec<&str> = facts.iter().map(|f| f.status.as_str()).collect();
    let txs: Vec<Vec<u8>> = facts.iter().map(|f| f.at.tx_hash.to_vec()).collect();
    let blocks: Vec<i64> = facts.iter().map(|f| int(f.at.block_number)).collect();
    Ok(sqlx::query_scalar!(
        r#"WITH facts AS (
             SELECT u.id, f.kind, f.status, f.tx, f.block, f.ord
               FROM UNNEST($2::bytea[], $3::text[], $4::text[], $5::bytea[], $6::bigint[])
                    WITH ORDINALITY AS f (onchain_id, kind, status, tx, block, ord)
               JOIN usage_agreements u ON u.chain_id = $1 AND u.onchain_id = f.onchain_id
           ), recorded AS (
             INSERT INTO agreement_events (agreement_id, kind, status, actor, tx_hash, block_number)
             SELECT id, kind, status, 'chain', tx, block FROM facts ORDER BY ord
           ), last AS (
             SELECT DISTINCT ON (id) id, status FROM facts ORDER BY id, ord DESC
           ), moved AS (
             UPDATE usage_agreements u SET status = last.status, updated_at = now()
               FROM last WHERE u.id = last.id
             RETURNING u.id
           )
           SELECT count(*) AS "n!" FROM moved"#,
        int(chain_id),
        &ids,
        &kinds as &[&str],
        &statuses as &[&str],
        &txs,
        &blocks,
    )
    .fetch_one(conn)
    .await?
    .try_into()
    .unwrap_or(0))
}

/// After a reorg rolled the index back to `fork_block`: each usage agreement whose escrow had
/// events above it gets a `reorged` event and the status its escrow has now (`activating` when
/// the activation itself was removed, as given in `now_status`).
pub async fn follow_reorg(
    conn: &mut PgConnection,
    chain_id: u64,
    fork_block: u64,
    now_status: &[(B256, LifecycleStatus)],
) -> Result<u64> {
    if now_status.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Vec<u8>> = now_status.iter().map(|(id, _)| id.to_vec()).collect();
    let statuses: Vec<&str> = now_status.iter().map(|(_, s)| s.as_str()).collect();
    Ok(sqlx::query_scalar!(
        r#"WITH moved AS (
             UPDATE usage_agreements u SET status = f.status, updated_at = now()
               FROM UNNEST($2::bytea[], $3::text[]) AS f (onchain_id, status)
              WHERE u.chain_id = $1 AND u.onchain_id = f.onchain_id
             RETURNING u.id, u.status
           ), recorded AS (
             INSERT INTO agreement_events (agreement_id, kind, status, actor, detail)
             SELECT id, 'reorged', status, 'chain', jsonb_build_object('fork_block', $4::bigint)
               FROM moved
           )
           SELECT count(*) AS "n!" FROM moved"#,
        int(chain_id),
        &ids,
        &statuses as &[&str],
        int(fork_block),
    )
    .fetch_one(conn)
    .await?
    .try_into()
    .unwrap_or(0))
}

/// Which of the escrows `onchain_ids` a usage agreement names (the indexer records history only
/// for those, and skips the rest without sending their facts).
pub async fn linked(
    conn: &mut PgConnection,
    chain_id: u64,
    onchain_ids: &[B256],
) -> Result<std::collections::HashSet<B256>> {
    if onchain_ids.is_empty() {
        return Ok(std::collections::HashSet::new());
    }
    let ids: Vec<Vec<u8>> = onchain_ids.iter().map(|id| id.to_vec()).collect();
    let rows = sqlx::query_scalar!(
        r#"SELECT onchain_id AS "onchain_id!" FROM usage_agreements
            WHERE chain_id = $1 AND onchain_id = ANY($2)"#,
        int(chain_id),
        &ids,
    )
    .fetch_all(conn)
    .await?;
    rows.iter().map(|id| b256(TABLE, id)).collect()
}

/// Records cumulative usage `quantity` on agreement `id`, with the buyer's voucher for `amount`,
/// and its `usage_recorded` event, in one statement, if `quantity` is above the usage recorded
/// when the statement runs (so that of concurrent records only growing ones are written, each
/// against the latest). Returns the record's status and new `updated_at` (RFC 3339), or `None`
/// when the recorded usage had already reached `quantity`.
pub async fn record_usage(
    conn: &mut PgConnection,
    id: &str,
    quantity: u64,
    amount: U256,
    voucher: &Bytes,
    cause: Cause<'_>,
) -> Result<Option<(LifecycleStatus, String)>> {
    let row = sqlx::query!(
        r#"WITH written AS (
             UPDATE usage_agreements
                SET usage_quantity = $2, voucher_amount = $3::text::numeric,
                    voucher_signature = $4, updated_at = now()
              WHERE id = $1 AND usage_quantity < $2
             RETURNING id, status, updated_at
           ), recorded AS (
             INSERT INTO agreement_events (agreement_id, kind, status, actor, detail)
             SELECT id, $5, status, $6, $7::text::jsonb FROM written
           )
           SELECT status,
                  to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS "updated_at!"
             FROM written"#,
        id,
        int(quantity),
        amount.to_string(),
        voucher.as_ref(),
        EventKind::UsageRecorded.as_str(),
        cause.actor,
        cause.detail,
    )
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        let status = r
            .status
            .parse()
            .map_err(|e| corrupt(TABLE, format!("{e}")))?;
        Ok((status, r.updated_at))
    })
    .transpose()
}

/// How many agreements agent `agent_id` has open: as buyer, its proposals onwards; as seller,
/// those it accepted; until rejected, expired or settled (kept by a trigger, migrations 0013
/// and 0014: a proposal merely received does not count, so nobody can fill another agent's
/// limit by proposing to it).
pub async fn open_count(conn: &mut PgConnection, agent_id: &str) -> Result<u64> {
    let n = sqlx::query_scalar!(
        "SELECT open FROM agent_open_agreements WHERE agent_id = $1",
        agent_id
    )
    .fetch_optional(conn)
    .await?;
    Ok(n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
}
