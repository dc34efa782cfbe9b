//! Whether an action is possible now, on which path, and what the party must sign: the escrow's
//! rules ([`pactum_core::escrow::options`]) read against its on-chain state at the head, and
//! whether the sponsor can take it.

use alloy::primitives::B256;
use pactum_bindings::Agreement;
use pactum_core::{
    Refusal, RefusalCode, SettlementAction,
    escrow::options::{self, ActionPlan, OptionsQuery},
};

use crate::chain::{self, SignerKind};

/// An action's plan at the head, with the sponsored path's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionOptions {
    /// The escrow's answer: possible, by whom, what to sign.
    pub plan: ActionPlan,
    /// Whether the relayer can submit it now.
    pub sponsored: Result<(), Refusal>,
}

impl crate::Relayer {
    /// The options for `action` on the agreement with `terms` (id `id`), at the node's head.
    pub async fn options(
        &self,
        terms: &Agreement,
        id: B256,
        action: SettlementAction,
        query: &OptionsQuery,
    ) -> Result<ActionOptions, crate::Error> {
        let provider = self.provider();
        let head = chain::head(provider).await?;
        let state = chain::agreement_state(provider, self.settings().escrow, id).await?;
        let plan = options::plan(
            &self.escrow_domain(),
            id,
            terms,
            &state,
            head.timestamp,
            action,
            query,
        );
        let sponsored = if let Err(r) = &plan.direct {
            Err(r.clone())
        } else if let Err(r) = self.settings().policy.trusted_tokens.check(terms.token) {
            Err(r)
        } else if let Some(r) = self.sponsor_unavailable().await? {
            Err(r)
        } else if chain::signer_kind(
            provider,
            plan.signer,
            self.settings().policy.max_gas_per_action,
        )
        .await?
            == SignerKind::Unsupported
        {
            Err(Refusal::new(
                RefusalCode::SignerUnsupported,
                format!(
                    "{} is a contract without ERC-1271: it can only send the call itself",
                    plan.signer
                ),
            ))
        } else {
            Ok(())
        };
        Ok(ActionOptions { plan, sponsored })
    }
}
