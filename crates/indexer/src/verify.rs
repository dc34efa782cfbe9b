//! Recomputes every agreement's state from the stored events and compares it with the stored
//! derived rows: the check that derived state is the pure function of the canonical events it
//! claims to be.

use pactum_db::{Db, index};

use crate::{
    Error,
    derive::derive_all,
    events::{Contracts, Records},
};

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Events read.
    pub events: usize,
    /// Agreements recomputed.
    pub agreements: usize,
    /// Agreements whose stored row differs from the recomputation (or exists on one side only).
    pub mismatches: Vec<String>,
}

/// Recomputes `chain_id`'s agreements from its events and compares.
pub async fn verify(db: &Db, chain_id: u64, contracts: Contracts) -> Result<Report, Error> {
    let mut conn = db.pool().acquire().await.map_err(pactum_db::Error::from)?;
    let records = index::all_events(&mut conn, chain_id).await?;
    let stored = index::all_agreements(&mut conn, chain_id).await?;
    let mut decoded = Vec::with_capacity(records.len());
    for record in &records {
        decoded.push(contracts.decode_record(record)?);
    }
    let derived = derive_all(
        decoded
            .iter()
            .zip(records.iter().map(|r| index::Transition {
                block: r.block_number,
                tx: r.tx_hash,
            })),
    )?;
    let mut mismatches = Vec::new();
    for row in &stored {
        match derived.get(&row.agreement_id) {
            Some(expected) if expected == row => {}
            Some(expected) => mismatches.push(format!(
                "{}: stored {row:?}, recomputed {expected:?}",
                row.agreement_id
            )),
            None => mismatches.push(format!(
                "{}: stored but has no activation event",
                row.agreement_id
            )),
        }
    }
    for id in derived.keys() {
        if !stored.iter().any(|r| &r.agreement_id == id) {
            mismatches.push(format!("{id}: has events but no stored row"));
        }
    }
    Ok(Report {
        events: records.len(),
        agreements: derived.len(),
        mismatches,
    })
}
