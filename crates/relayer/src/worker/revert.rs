//! Why a mined action reverted: judged at the block that mined it.

use pactum_core::{
    JobFailure, RefusalCode, RevertKind,
    escrow::{authorization, rules},
    sponsor::{self, Strike},
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
    /// agreement's state as that block left it. A `reverted` action is a strike, charged to
    /// whoever caused it (see [`sponsor::attribute_revert`]): the call is replayed against the
    /// state the block left, and the escrow's error names the wallet that refused.
    pub(super) async fn why_reverted(
        &self,
        attempt: &Attempt,
        gas_used: u64,
        block: u64,
    ) -> Result<(JobFailure, String, Option<Strike>), Error> {
        if gas_used >= attempt.gas_limit {
            return Ok((
                JobFailure::Reverted(RevertKind::OutOfGas),
                format!("the transaction used all of its {} gas", attempt.gas_limit),
                None,
            ));
        }
        let Some(job) = self.job(attempt).await? else {
            return Ok((
                JobFailure::Reverted(RevertKind::Reverted),
                "the transaction was mined but reverted".into(),
                None,
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
                None,
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
        if let Some(Err(then)) = allowed {
            return Ok((
                JobFailure::Reverted(RevertKind::Preempted),
                format!(
                    "the agreement no longer allowed the action when it was mined ({}: {})",
                    then.code, then.detail
                ),
                None,
            ));
        }
        let replayed = chain::replay_error(
            provider,
            self.address,
            job.target,
            &job.calldata,
            attempt.gas_limit,
            block,
        )
        .await?;
        let strike =
            sponsor::attribute_revert(job.signer, job.buyer, replayed.as_ref().map(|r| r.code));
        let cause = replayed.map_or_else(
            || "the replay at that block does not show why".to_owned(),
            |r| format!("replayed at that block: {}: {}", r.code, r.detail),
        );
        Ok((
            JobFailure::Reverted(RevertKind::Reverted),
            format!(
                "the transaction was mined but reverted while the agreement still allowed the \
                 action ({cause}); a strike against {} ({} scope)",
                strike.party,
                strike.scope.as_str()
            ),
            Some(strike),
        ))
    }
}
