//! Why a mined action reverted: judged at the block that mined it.

use pactum_core::{
    JobFailure, RefusalCode, RevertKind,
    escrow::{authorization, rules},
};
use pactum_db::relay::Attempt;

use super::Worker;
use crate::{Error, chain};

impl Worker {
    /// Why a mined action reverted, with a detail: `out_of_gas` when it used its whole gas
    /// limit (the relayer's estimate fell short), `preempted` when the agreement no longer allows
    /// the action (another transaction changed it first, e.g. the same action sent directly), and
    /// `reverted` when it still does: the call behaved differently on chain than in simulation.
    /// Only `reverted` counts against the signer (`max_reverts_per_party_per_day`).
    ///
    /// It is judged at the block that mined it: its timestamp against the authorization's
    /// deadline (`authorization_expired`: mined too late, the relayer's delay), and the
    /// agreement's state as that block left it.
    pub(super) async fn why_reverted(
        &self,
        attempt: &Attempt,
        gas_used: u64,
        block: u64,
    ) -> Result<(JobFailure, String), Error> {
        if gas_used >= attempt.gas_limit {
            return Ok((
                JobFailure::Reverted(RevertKind::OutOfGas),
                format!("the transaction used all of its {} gas", attempt.gas_limit),
            ));
        }
        let Some(job) = self.job(attempt).await? else {
            return Ok((
                JobFailure::Reverted(RevertKind::Reverted),
                "the transaction was mined but reverted".into(),
            ));
        };
        let provider = self.relayer.provider();
        let mined_at = chain::block_timestamp(provider, block).await?;
        if job.deadline < mined_at {
            return Ok((
                JobFailure::Refused(RefusalCode::AuthorizationExpired),
                format!(
                    "mined at {mined_at}, after the authorization's deadline {}",
                    job.deadline
                ),
            ));
        }
        let state = chain::agreement_state_at(
            provider,
            self.relayer.settings().escrow,
            job.agreement_id,
            block,
        )
        .await?;
        let allowed = authorization::terms_of(&job.calldata)
            .map(|terms| rules::eligibility(job.action, &terms, &state, mined_at));
        Ok(match allowed {
            Some(Err(then)) => (
                JobFailure::Reverted(RevertKind::Preempted),
                format!(
                    "the agreement no longer allowed the action when it was mined ({}: {})",
                    then.code, then.detail
                ),
            ),
            _ => (
                JobFailure::Reverted(RevertKind::Reverted),
                "the transaction was mined but reverted, and the agreement still allows the \
                 action: the call behaved differently on chain than in simulation"
                    .into(),
            ),
        })
    }
}
