//! Building the API's answers from the domain's and the database's values.

use alloy::primitives::B256;
use pactum_api_types::{
    ActionOptions, AttemptView, EscrowStatus, FailureView, IndexedHead, PathOption, RelayView,
    TransitionView, Transitions,
};
use pactum_bindings::Agreement;
use pactum_core::{ActivationStatus, EscrowPhase, TrustedTokens};
use pactum_db::{
    index::{AgreementRecord, Cursor, Transition},
    relay::{Attempt, Job, JobState},
};

pub(crate) fn terms(a: &AgreementRecord) -> Agreement {
    Agreement {
        buyer: a.buyer,
        seller: a.seller,
        token: a.token,
        maxAmount: a.max_amount,
        infraFee: a.infra_fee,
        expiry: a.expiry,
        closeWindow: u32::try_from(a.close_window).unwrap_or(u32::MAX),
        salt: a.salt,
    }
}

/// The options endpoint's answer: the escrow's plan and the sponsored path's verdict.
pub(crate) fn action_options(
    options: &pactum_relayer::ActionOptions,
    token_trusted: bool,
) -> ActionOptions {
    let plan = &options.plan;
    let (reason, detail, earliest_at) = match &plan.possible {
        Ok(()) => (None, None, None),
        Err(r) => (Some(r.code), Some(r.detail.clone()), r.earliest_at),
    };
    ActionOptions {
        agreement_id: plan.agreement_id.to_string(),
        action: plan.action,
        possible_now: plan.direct.is_ok(),
        reason,
        detail,
        earliest_at,
        block_timestamp: plan.block_timestamp,
        onchain_status: plan.status,
        signer: plan.signer.to_string(),
        token_trusted,
        direct: PathOption::from(&plan.direct),
        sponsored: PathOption::from(&options.sponsored),
        typed_data: Some(plan.typed_data.clone()),
        digest: Some(plan.digest.to_string()),
    }
}

/// A job's failure, if it failed.
pub(crate) fn failure_view(job: &Job) -> Option<FailureView> {
    job.failure_code.map(|code| FailureView {
        code,
        detail: job.failure_detail.clone().unwrap_or_default(),
    })
}

pub(crate) fn relay_view(job: &Job, attempts: &[Attempt]) -> RelayView {
    RelayView {
        relay_id: job.id.clone(),
        agreement_id: job.agreement_id.to_string(),
        action: job.action,
        status: job.state,
        signer: job.signer.to_string(),
        deadline: job.deadline,
        failure: failure_view(job),
        relayer: job.relayer.map(|r| r.to_string()),
        nonce: job.nonce,
        tx_hash: job.tx_hash.map(|h| h.to_string()),
        block_number: job.block_number,
        gas_used: job.gas_used,
        attempts: attempts
            .iter()
            .map(|a| AttemptView {
                tx_hash: a.tx_hash.to_string(),
                kind: a.kind,
                nonce: a.nonce,
                max_fee_per_gas: a.max_fee_per_gas.to_string(),
                max_priority_fee_per_gas: a.max_priority_fee_per_gas.to_string(),
                broadcast: a.broadcast_ms.is_some(),
                outcome: a.outcome,
            })
            .collect(),
        created_at_ms: job.created_ms,
        submitted_at_ms: job.submitted_ms,
        finished_at_ms: job.finished_ms,
        status_url: format!(
            "/usage-agreements/{}/sponsored-actions/{}",
            job.agreement_id, job.id
        ),
    }
}

fn view(t: Transition, cursor: &Cursor) -> TransitionView {
    let indexed = u64::try_from(cursor.block_number).unwrap_or(0);
    TransitionView {
        tx_hash: t.tx.to_string(),
        block_number: t.block,
        confirmations: (indexed + 1).saturating_sub(t.block),
        finalized: t.block <= cursor.finalized_block,
    }
}

fn indexed_head(cursor: &Cursor) -> IndexedHead {
    IndexedHead {
        block_number: u64::try_from(cursor.block_number).unwrap_or(0),
        node_head: cursor.node_head,
        finalized_block: cursor.finalized_block,
    }
}

pub(crate) fn escrow_status(
    a: &AgreementRecord,
    cursor: &Cursor,
    chain_id: u64,
    relay_id: Option<String>,
    trusted: &TrustedTokens,
) -> EscrowStatus {
    let v = |t: Option<Transition>| t.map(|t| view(t, cursor));
    let held = a.deposited - a.seller_paid_amount - a.buyer_paid_amount;
    let activation = view(a.activated, cursor);
    EscrowStatus {
        agreement_id: a.agreement_id.to_string(),
        chain_id,
        escrow_address: cursor.escrow.to_string(),
        status: EscrowPhase::indexed(a.status),
        activation_status: ActivationStatus::indexed(activation.finalized),
        activation_tx_hash: Some(a.activated.tx.to_string()),
        activation_relay_id: relay_id,
        activation_error: None,
        buyer: a.buyer.to_string(),
        seller: a.seller.to_string(),
        token: a.token.to_string(),
        token_trusted: trusted.trusts(a.token),
        max_amount: a.max_amount.to_string(),
        infra_fee: a.infra_fee.to_string(),
        fee_collected: a.fee_collected.to_string(),
        deposited: a.deposited.to_string(),
        settled_amount: a.settled_amount.to_string(),
        seller_paid_amount: a.seller_paid_amount.to_string(),
        buyer_paid_amount: a.buyer_paid_amount.to_string(),
        held_in_escrow: held.to_string(),
        seller_paid: a.seller_paid,
        buyer_withdrawn: a.buyer_withdrawn,
        payout_deferral_reason: a.deferral_reason,
        expiry: a.expiry,
        close_window: a.close_window,
        close_deadline: a.close_deadline,
        close_initiator: a.close_initiator.map(|x| x.to_string()),
        transitions: Transitions {
            activation: Some(activation),
            close: v(a.closed),
            seller_claim: v(a.claimed),
            seller_payout: v(a.seller_paid_at),
            buyer_withdrawal: v(a.withdrawn),
            settlement: v(a.settled),
        },
        indexed: indexed_head(cursor),
    }
}

/// An activation the relayer holds for an agreement that is not (yet) indexed: its terms from
/// the job's calldata, nothing deposited.
pub(crate) fn pending_activation(
    job: &Job,
    broadcast: Option<B256>,
    cursor: &Cursor,
    chain_id: u64,
    trusted: &TrustedTokens,
) -> Option<EscrowStatus> {
    let terms = pactum_relayer::activation_terms(&job.calldata)?;
    let tx = job
        .tx_hash
        .or(broadcast)
        .filter(|_| job.state != JobState::Failed);
    Some(EscrowStatus {
        agreement_id: job.agreement_id.to_string(),
        chain_id,
        escrow_address: cursor.escrow.to_string(),
        status: EscrowPhase::PendingActivation,
        activation_status: ActivationStatus::relayed(job.state),
        activation_tx_hash: tx.map(|t| t.to_string()),
        activation_relay_id: Some(job.id.clone()),
        activation_error: failure_view(job),
        buyer: terms.buyer.to_string(),
        seller: terms.seller.to_string(),
        token: terms.token.to_string(),
        token_trusted: trusted.trusts(terms.token),
        max_amount: terms.maxAmount.to_string(),
        infra_fee: terms.infraFee.to_string(),
        fee_collected: "0".to_owned(),
        deposited: "0".to_owned(),
        settled_amount: "0".to_owned(),
        seller_paid_amount: "0".to_owned(),
        buyer_paid_amount: "0".to_owned(),
        held_in_escrow: "0".to_owned(),
        seller_paid: false,
        buyer_withdrawn: false,
        payout_deferral_reason: None,
        expiry: terms.expiry,
        close_window: terms.closeWindow.into(),
        close_deadline: None,
        close_initiator: None,
        transitions: Transitions {
            activation: None,
            close: None,
            seller_claim: None,
            seller_payout: None,
            buyer_withdrawal: None,
            settlement: None,
        },
        indexed: indexed_head(cursor),
    })
}
