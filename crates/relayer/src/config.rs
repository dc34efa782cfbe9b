//! What an operator configures: where the contracts are, the sponsor policy, and how the
//! workers pace themselves.

use std::time::Duration;

use alloy::primitives::Address;
use pactum_core::sponsor;

pub use pactum_core::sponsor::Policy;

/// The relayer's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Chain id (also checked against the node).
    pub chain_id: u64,
    /// The escrow (the only contract called for settlement and permit activations).
    pub escrow: Address,
    /// The fee collector bound to it.
    pub fee_collector: Address,
    /// The sponsor policy.
    pub policy: Policy,
    /// A job is confirmed once its block has this many blocks on top, counting its own.
    pub confirmations: u64,
    /// How often a worker looks at the chain when nothing wakes it.
    pub poll_interval: Duration,
    /// How long a broadcast transaction may stay unmined before the worker checks that the
    /// node still has it (re-broadcast) and, if it blocks the queue, replaces it with a higher
    /// fee.
    pub stuck_after: Duration,
    /// Fee increase of a replacement, in percent (at least 10: nodes refuse less).
    pub fee_bump_percent: u64,
    /// Tip (wei per gas) offered on a first submission.
    pub priority_fee: u128,
    /// Added to the simulated gas estimate, in percent.
    pub gas_margin_percent: u64,
    /// Jobs a worker takes per round.
    pub batch_size: u32,
}

impl Settings {
    /// Settings with the default policy and pacing.
    pub fn new(chain_id: u64, escrow: Address, fee_collector: Address) -> Self {
        Self {
            chain_id,
            escrow,
            fee_collector,
            policy: Policy::default(),
            confirmations: 1,
            poll_interval: Duration::from_millis(200),
            stuck_after: Duration::from_secs(15),
            fee_bump_percent: 15,
            priority_fee: 1_000_000_000,
            gas_margin_percent: 25,
            batch_size: 64,
        }
    }

    /// The fees of a first submission at `base_fee`: (fee cap, tip), the cap at most the policy's.
    pub(crate) fn fees(&self, base_fee: u128) -> (u128, u128) {
        sponsor::first_fees(base_fee, self.priority_fee, self.policy.max_fee_per_gas)
    }

    /// The fee bump actually applied (never below the 10 % nodes require).
    pub(crate) fn bump_percent(&self) -> u128 {
        sponsor::bump_percent(self.fee_bump_percent)
    }
}
