//! What an operator configures: where the contracts are, the sponsor policy, and how the
//! workers pace themselves.

use std::time::Duration;

use alloy::primitives::{Address, U256};

/// The sponsor policy: what the relayer agrees to pay for. Enforced at acceptance (and the
/// target/selector and gas rules again before every signature).
#[derive(Debug, Clone)]
pub struct Policy {
    /// Most gas one action may need (its simulated estimate); above it the request is refused.
    pub max_gas_per_action: u64,
    /// Most sponsored actions per agreement, over its lifetime (refusals before any transaction
    /// do not count).
    pub max_actions_per_agreement: u64,
    /// Most sponsored actions a party may sign in 24 hours.
    pub max_actions_per_party_per_day: u64,
    /// A party whose sponsored actions were mined reverted this many times in 24 hours is
    /// refused until the oldest of them is a day old. Each such revert is gas the sponsor paid
    /// for nothing: an authorization that passed simulation, then failed on chain (a wallet or
    /// a token answering differently there, or the party racing its own sponsored action).
    pub max_reverts_per_party_per_day: u64,
    /// Gas the relayer spends per UTC day (used by mined jobs, reserved by jobs in flight).
    pub daily_gas_budget: u64,
    /// Acceptance pauses while no signer key holds at least this much (wei), and resumes once
    /// one is topped up.
    pub min_signer_balance: U256,
    /// A deadline closer than this (seconds) is refused: the job might not be mined in time.
    pub min_deadline_margin: u64,
    /// Fee cap (wei per gas) for actions; a cancelling no-op is never held back by it.
    pub max_fee_per_gas: u128,
    /// The agreement tokens the relayer sponsors actions for (empty: any). An agreement's token
    /// runs inside the sponsored transaction, so a hostile token could burn the gas limit.
    pub tokens: Vec<Address>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_gas_per_action: 400_000,
            max_actions_per_agreement: 8,
            max_actions_per_party_per_day: 500,
            max_reverts_per_party_per_day: 3,
            daily_gas_budget: 500_000_000,
            // 0.5 ETH: more than one action at the gas ceiling and the fee cap (0.2 ETH).
            min_signer_balance: U256::from(5 * 10u128.pow(17)),
            min_deadline_margin: 60,
            max_fee_per_gas: 500_000_000_000, // 500 gwei
            tokens: Vec::new(),
        }
    }
}

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
        let tip = self.priority_fee;
        let max_fee = base_fee
            .saturating_mul(2)
            .saturating_add(tip)
            .min(self.policy.max_fee_per_gas);
        (max_fee, tip.min(max_fee))
    }

    /// The fee bump actually applied (never below the 10 % nodes require).
    pub(crate) fn bump_percent(&self) -> u128 {
        u128::from(self.fee_bump_percent.max(10))
    }
}
