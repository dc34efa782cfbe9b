//! The relayer's storage: its signer keys and their next nonce ([`signers`]), the jobs (one per
//! accepted authorization, [`jobs`]) and every signed transaction (attempt) made for them
//! ([`attempts`]).
//!
//! The invariant the relayer relies on: a nonce is handed out only in the transaction that also
//! stores the signed bytes using it ([`reserve_nonces`] + [`insert_attempt`] in one
//! transaction), so every nonce the relayer ever used has its bytes here, and a crash between
//! commit and broadcast loses nothing (the bytes are broadcast again).

mod attempts;
mod jobs;
mod signers;

pub use attempts::{
    Attempt, Mined, NewAttempt, attempts_at, attempts_of, insert_actions, insert_attempt,
    latest_broadcast, mark_broadcast, open_attempts, release_foreign_nonce, resolve_mined,
};
pub use jobs::{
    ACCEPTANCE_SLOTS, Inserted, Job, NewJob, claim_accepted, fail_unsubmitted, in_flight_job,
    insert_job, job_by_authorization, job_by_id, jobs_by_state, latest_job, lock_acceptance,
    lock_agreement, set_cancelling, take_acceptance_slot, usage,
};
pub use pactum_core::{
    ActionKind, AttemptKind, AttemptOutcome, JobFailure, JobState, RefusalCode, sponsor::Usage,
};
pub use signers::{
    SignerBalance, next_nonce, record_balance, reserve_nonces, signer_balances, sync_signer,
    try_lock_signer,
};
