//! What the handlers ask of the database and the relayer. Routes extract their input, call one
//! of these, and map the answer; no route touches SQL. Visibility is decided here, once: a
//! caller sees an agreement (or a relay job) when one of its wallets is the buyer or the seller.

use alloy::primitives::{Address, B256};
use pactum_api_types::EscrowStatus;
use pactum_db::{
    index::{self, AgreementRecord},
    relay::{self, ActionKind, Attempt, Job},
};
use sqlx::Acquire;

use crate::{AppState, auth::Principal, problem::Problem, views};

/// The wallets whose agreements a caller may see: an agent its own, an owner its agents'.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    wallets: Vec<Address>,
}

impl Viewer {
    /// Whom `principal` may see (settled before any agreement is looked up, so that an
    /// existing and a missing id cost the same).
    pub(crate) async fn of(state: &AppState, principal: &Principal) -> Result<Self, Problem> {
        Ok(Self {
            wallets: principal.visible_wallets(state.db.pool()).await?,
        })
    }

    /// The parties of an agreement whose visibility the caller already decided.
    pub(crate) fn parties(buyer: Address, seller: Address) -> Self {
        Self {
            wallets: vec![buyer, seller],
        }
    }

    /// Whether the agreement between `buyer` and `seller` is visible.
    pub(crate) fn sees(&self, buyer: Address, seller: Address) -> bool {
        self.wallets.contains(&buyer) || self.wallets.contains(&seller)
    }

    /// Whether `wallet` is one of the caller's.
    pub(crate) fn owns(&self, wallet: Address) -> bool {
        self.wallets.contains(&wallet)
    }

    /// The first of `candidates` that is one of the caller's.
    pub(crate) fn first_of(&self, candidates: &[Address]) -> Option<Address> {
        candidates.iter().copied().find(|c| self.owns(*c))
    }
}

/// The indexed agreement `id` if it exists and `viewer` may see it (the two are not told
/// apart: both are `404 agreement_not_found`).
pub(crate) async fn visible_agreement(
    state: &AppState,
    viewer: &Viewer,
    id: B256,
) -> Result<Option<AgreementRecord>, Problem> {
    let mut conn = state.db.acquire().await?;
    Ok(index::load_agreements(&mut conn, state.chain_id, &[id])
        .await?
        .pop()
        .filter(|a| viewer.sees(a.buyer, a.seller)))
}

/// The escrow the index follows (the relayer's, when one runs).
pub(crate) async fn escrow_address(state: &AppState) -> Result<Address, Problem> {
    if let Some(relayer) = &state.relayer {
        return Ok(relayer.settings().escrow);
    }
    Ok(indexed_cursor(state).await?.escrow)
}

/// Where the indexer stands on this chain (`503` before it started).
pub(crate) async fn indexed_cursor(state: &AppState) -> Result<index::Cursor, Problem> {
    let mut conn = state.db.acquire().await?;
    index::load_cursor(&mut conn, state.chain_id)
        .await?
        .ok_or_else(|| Problem::unavailable("the indexer has not started on this chain"))
}

/// The escrow status of agreement `id`: indexed, or the relayer's progress with its activation;
/// `None` when neither exists or the caller may not see it.
pub(crate) async fn escrow_status(
    state: &AppState,
    viewer: &Viewer,
    id: B256,
) -> Result<Option<EscrowStatus>, Problem> {
    let mut conn = state.db.acquire().await?;
    // One snapshot for the checkpoint and the agreement: a rollback committed in between cannot
    // show a transition above the indexed block.
    let mut tx = conn.begin().await.map_err(pactum_db::Error::from)?;
    index::read_only_snapshot(&mut tx).await?;
    let cursor = index::load_cursor(&mut tx, state.chain_id)
        .await?
        .ok_or_else(|| Problem::unavailable("the indexer has not started on this chain"))?;
    let status = escrow_status_on(&mut tx, state, &cursor, viewer, id).await?;
    tx.commit().await.map_err(pactum_db::Error::from)?;
    Ok(status)
}

/// [`escrow_status`] on `conn`, inside the caller's (read-only, repeatable-read) snapshot, with
/// the indexer's `cursor` read in it.
pub(crate) async fn escrow_status_on(
    conn: &mut sqlx::PgConnection,
    state: &AppState,
    cursor: &index::Cursor,
    viewer: &Viewer,
    id: B256,
) -> Result<Option<EscrowStatus>, Problem> {
    let agreement = index::load_agreements(&mut *conn, state.chain_id, &[id])
        .await?
        .pop();
    escrow_status_with(conn, state, cursor, viewer, id, agreement).await
}

/// [`escrow_status_on`] with the escrow's index row (`agreement`) already read in the same
/// snapshot by the caller.
pub(crate) async fn escrow_status_with(
    conn: &mut sqlx::PgConnection,
    state: &AppState,
    cursor: &index::Cursor,
    viewer: &Viewer,
    id: B256,
    agreement: Option<AgreementRecord>,
) -> Result<Option<EscrowStatus>, Problem> {
    // An activation submitted through the relayer: its job, and what it last broadcast.
    let job = relay::latest_job(&mut *conn, state.chain_id, id, ActionKind::Activate)
        .await?
        .filter(|j| viewer.sees(j.buyer, j.seller));
    let broadcast = match &job {
        Some(j) if agreement.is_none() => relay::latest_broadcast(&mut *conn, &j.id).await?,
        _ => None,
    };
    match (agreement, job) {
        (Some(a), job) if viewer.sees(a.buyer, a.seller) => {
            // The relay id only when the relayer's job is the one that activated it.
            let relay_id = job
                .filter(|j| j.tx_hash == Some(a.activated.tx))
                .map(|j| j.id);
            Ok(Some(views::escrow_status(
                &a,
                cursor,
                state.chain_id,
                relay_id,
                &state.trusted_tokens,
            )))
        }
        (None, Some(job)) => Ok(views::pending_activation(
            &job,
            broadcast,
            cursor,
            state.chain_id,
            &state.trusted_tokens,
        )),
        _ => Ok(None),
    }
}

/// The relay job `relay_id` of agreement `id` with its attempts, if `viewer` may see it (by the
/// job's parties, so that an activation can be followed before the index has the agreement).
pub(crate) async fn visible_job(
    relayer: &pactum_relayer::Relayer,
    viewer: &Viewer,
    id: B256,
    relay_id: &str,
) -> Result<Option<(Job, Vec<Attempt>)>, pactum_relayer::Error> {
    Ok(relayer
        .job(relay_id)
        .await?
        .filter(|(job, _)| job.agreement_id == id && viewer.sees(job.buyer, job.seller)))
}

/// Revokes API key `key_id` for `owner_id`, in one transaction; `None` if it was revoked
/// concurrently.
pub(crate) async fn revoke_api_key(
    state: &AppState,
    revocation_id: &str,
    key_id: &str,
    owner_id: &str,
    reason: &str,
) -> Result<Option<pactum_db::identity::Revocation>, Problem> {
    let mut conn = state.db.acquire().await?;
    let mut tx = conn.begin().await.map_err(pactum_db::Error::from)?;
    let revocation =
        pactum_db::identity::revoke_api_key(&mut tx, revocation_id, key_id, owner_id, reason)
            .await?;
    tx.commit().await.map_err(pactum_db::Error::from)?;
    Ok(revocation)
}
