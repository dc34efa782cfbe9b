//! Receipts, for the parties and their owners: `GET /receipts?agent_id=`, `GET
//! /receipts/{receipt_id}` (the signed document), `GET /receipts/verify/{receipt_id}` (checked
//! against the index) and `GET /receipts/signer`. Receipts are issued by `pactum-receipts`'
//! issuer; this serves and checks them.

use alloy::primitives::Address;
use pactum_api_types::{
    ListReceipts, ReceiptPage, ReceiptSigner, ReceiptVerification, ReceiptView,
};
use pactum_bindings::eip712::{DOMAIN_VERSION, RECEIPTS_DOMAIN_NAME};
use pactum_core::escrow::events::Contracts;
use pactum_db::{
    identity,
    receipts::{self as store, StoredReceipt},
};
use pactum_receipts::{document, verify};

use crate::{AppState, auth::Principal, identity::visible_agent, problem::Problem};

/// What receipts are checked against: the service's receipt signer and the deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptSettings {
    /// The address receipts are signed by now.
    pub signer: Address,
    /// Addresses of retired receipt keys: their receipts still verify.
    pub retired: Vec<Address>,
    /// The deployment's contracts (the escrow is the domain's verifying contract).
    pub contracts: Contracts,
}

fn settings(state: &AppState) -> Result<&ReceiptSettings, Problem> {
    state.receipts.as_ref().ok_or_else(|| {
        Problem::unavailable("this server issues no receipts (no receipt key configured)")
    })
}

fn not_found(id: &str) -> Problem {
    Problem::new(
        axum::http::StatusCode::NOT_FOUND,
        "receipt_not_found",
        "Receipt not found",
        format!("no receipt {id:?} visible to these credentials"),
    )
}

/// Whether `principal` is a party's agent of `r`, or the owner of one.
async fn visible(
    conn: &mut sqlx::PgConnection,
    principal: &Principal,
    r: &StoredReceipt,
) -> Result<bool, Problem> {
    let agents = [r.buyer_agent_id.as_deref(), r.seller_agent_id.as_deref()];
    Ok(match principal {
        Principal::Agent { agent_id, .. } => agents.contains(&Some(agent_id.as_str())),
        Principal::Owner { owner_id } => {
            let mut mine = false;
            for agent in agents.into_iter().flatten() {
                mine |= identity::agent(&mut *conn, agent)
                    .await?
                    .is_some_and(|a| a.owner_id == *owner_id);
            }
            mine
        }
    })
}

/// Receipt `id`, if visible to `principal`.
async fn load_visible(
    conn: &mut sqlx::PgConnection,
    principal: &Principal,
    id: &str,
) -> Result<StoredReceipt, Problem> {
    let r = store::load(&mut *conn, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    if !visible(conn, principal, &r).await? {
        return Err(not_found(id));
    }
    Ok(r)
}

/// `GET /receipts?agent_id=`: the agent itself, or its owner.
pub(crate) async fn list(
    state: &AppState,
    principal: &Principal,
    q: &ListReceipts,
) -> Result<ReceiptPage, Problem> {
    settings(state)?;
    let agent = visible_agent(state, principal, &q.agent_id).await?;
    let (limit, before) = crate::paging::page(q.limit, q.cursor.as_deref())?;
    let mut conn = state.db.acquire().await?;
    let rows = store::of_agent(&mut conn, &agent.agent.id, before, limit).await?;
    let next_cursor = crate::paging::next_cursor(&rows, limit, |r| r.seq);
    Ok(ReceiptPage {
        receipts: rows.iter().map(document::view).collect(),
        next_cursor,
    })
}

/// `GET /receipts/{receipt_id}`: the signed document.
pub(crate) async fn get(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<ReceiptView, Problem> {
    settings(state)?;
    let mut conn = state.db.acquire().await?;
    let r = load_visible(&mut conn, principal, id).await?;
    Ok(document::view(&r))
}

/// `GET /receipts/verify/{receipt_id}`: the signature checked against the service's receipt
/// key, and the receipt against the index as it stands.
pub(crate) async fn verify(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<ReceiptVerification, Problem> {
    let s = settings(state)?;
    let mut conn = state.db.acquire().await?;
    let r = load_visible(&mut conn, principal, id).await?;
    let signers: Vec<Address> = std::iter::once(s.signer)
        .chain(s.retired.iter().copied())
        .collect();
    let (verdict, finalized) = verify::verify_on_index(&mut conn, &r, s.contracts, &signers)
        .await
        .map_err(|e| {
            tracing::error!(%e, receipt = id, "verifying a receipt");
            Problem::internal()
        })?;
    Ok(ReceiptVerification {
        receipt_id: r.id.clone(),
        valid: verdict.valid,
        reasons: verdict.reasons,
        expected_signer: s.signer.to_string(),
        recovered_signer: verdict.recovered_signer.map(|a| a.to_string()),
        finalized_block: finalized,
        receipt: document::view(&r),
    })
}

/// `GET /receipts/signer`.
pub(crate) fn signer(state: &AppState) -> Result<ReceiptSigner, Problem> {
    let s = settings(state)?;
    Ok(ReceiptSigner {
        retired: s.retired.iter().map(ToString::to_string).collect(),
        address: s.signer.to_string(),
        domain_name: RECEIPTS_DOMAIN_NAME.to_owned(),
        domain_version: DOMAIN_VERSION.to_owned(),
        chain_id: state.chain_id,
        verifying_contract: s.contracts.escrow.to_string(),
    })
}
