//! The sponsor's side of a sponsored action: its policy and quotas ([`Policy`], [`Usage`],
//! [`check_usage`]), and the arithmetic of submissions: the fees of a first submission and of a
//! replacement, and the gas limit an estimate gets. Everything saturates: no fee or limit
//! computed here wraps around.

use alloy::primitives::{Address, U256};

use crate::{Refusal, RefusalCode};

/// The sponsor policy: what the relayer agrees to pay for. Enforced at acceptance (and the
/// target/selector and gas rules again before every signature).
#[derive(Debug, Clone)]
pub struct Policy {
    /// Most gas one action may need (its simulated estimate); above it the request is refused.
    pub max_gas_per_action: u64,
    /// Most sponsored actions each party may sign per agreement, over its lifetime (refusals
    /// before any transaction do not count): one side cannot use up the other's share.
    pub max_actions_per_agreement: u64,
    /// Most sponsored actions a party may sign in 24 hours.
    pub max_actions_per_party_per_day: u64,
    /// Most sponsored actions one API principal (an agent's key holder, or an owner) may post in
    /// 24 hours, whoever signed them.
    pub max_actions_per_principal_per_day: u64,
    /// Most gas (used once mined, reserved while in flight, including actions that reverted or
    /// ran out of gas) one API principal's actions may cost in 24 hours.
    pub max_gas_per_principal_per_day: u64,
    /// The same two limits for all the principals of one owner (the owner and its agents).
    pub max_actions_per_owner_per_day: u64,
    /// See `max_actions_per_owner_per_day`.
    pub max_gas_per_owner_per_day: u64,
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
    /// The tokens the operator vouches for (`chain.tokens`): an agreement in any other is not
    /// sponsored (`untrusted_token`), whatever `tokens` says.
    pub trusted_tokens: crate::TrustedTokens,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_gas_per_action: 400_000,
            max_actions_per_agreement: 8,
            max_actions_per_party_per_day: 500,
            // One owner gets a tenth of the daily budget, one principal a twentieth: no single
            // caller can spend the sponsor's gas for everyone else.
            max_actions_per_principal_per_day: 1_000,
            max_gas_per_principal_per_day: 25_000_000,
            max_actions_per_owner_per_day: 2_000,
            max_gas_per_owner_per_day: 50_000_000,
            max_reverts_per_party_per_day: 3,
            daily_gas_budget: 500_000_000,
            // 0.5 ETH: more than one action at the gas ceiling and the fee cap (0.2 ETH).
            min_signer_balance: U256::from(5 * 10u128.pow(17)),
            min_deadline_margin: 60,
            max_fee_per_gas: 500_000_000_000, // 500 gwei
            tokens: Vec::new(),
            trusted_tokens: crate::TrustedTokens::Any,
        }
    }
}

/// Usage counted against the sponsor policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Jobs the party ever signed for the agreement, excluding those refused before any
    /// transaction (the per-agreement quota is per party: one side cannot use up the other's).
    pub agreement_jobs: u64,
    /// Jobs signed by the party in the last 24 hours, with the same exclusion.
    pub signer_jobs_24h: u64,
    /// Strikes charged to the party in the last 24 hours that reach this agreement: those of
    /// its own wallet on any agreement, and those of unclear cause on this one (see
    /// [`attribute_revert`]).
    pub signer_reverts_24h: u64,
    /// Gas of jobs created since the start of the UTC day: used if mined, reserved while in
    /// flight.
    pub gas_today: u64,
    /// Jobs the requesting principal posted in the last 24 hours (same exclusion).
    pub principal_jobs_24h: u64,
    /// Their gas: used if mined (whatever the outcome), reserved while in flight.
    pub principal_gas_24h: u64,
    /// Jobs posted by any principal of the requester's owner in the last 24 hours.
    pub owner_jobs_24h: u64,
    /// Their gas, counted as `principal_gas_24h`.
    pub owner_gas_24h: u64,
}

/// Who asked for a sponsored action: the API principal (`agent:<id>` or `owner:<id>`) and its
/// owner. The operator's own tools have no owner; only the principal quota applies to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requester<'a> {
    /// The principal's stable scope.
    pub principal: &'a str,
    /// The owner it belongs to (an owner is its own).
    pub owner: Option<&'a str>,
}

impl<'a> From<&'a str> for Requester<'a> {
    /// A requester without an owner (the operator's tools, tests, benchmarks).
    fn from(principal: &'a str) -> Self {
        Self {
            principal,
            owner: None,
        }
    }
}

/// The policy's quotas and daily budget against `usage`, for a job of `signer` posted by
/// `requester` and reserving `gas_limit`.
pub fn check_usage(
    policy: &Policy,
    usage: &Usage,
    signer: Address,
    requester: Requester<'_>,
    gas_limit: u64,
) -> Result<(), Refusal> {
    use RefusalCode as C;
    let over = |used: u64, adding: u64, limit: u64| used.saturating_add(adding) > limit;
    if over(
        usage.principal_jobs_24h,
        1,
        policy.max_actions_per_principal_per_day,
    ) || over(
        usage.principal_gas_24h,
        gas_limit,
        policy.max_gas_per_principal_per_day,
    ) {
        return Err(Refusal::new(
            C::QuotaExceeded,
            format!(
                "{} posted {} sponsored actions costing {} gas in the last 24 hours (limits {} \
                 actions, {} gas; this one reserves {gas_limit}); the direct path stays open",
                requester.principal,
                usage.principal_jobs_24h,
                usage.principal_gas_24h,
                policy.max_actions_per_principal_per_day,
                policy.max_gas_per_principal_per_day
            ),
        ));
    }
    if let Some(owner) = requester.owner
        && (over(
            usage.owner_jobs_24h,
            1,
            policy.max_actions_per_owner_per_day,
        ) || over(
            usage.owner_gas_24h,
            gas_limit,
            policy.max_gas_per_owner_per_day,
        ))
    {
        return Err(Refusal::new(
            C::QuotaExceeded,
            format!(
                "owner {owner}'s agents posted {} sponsored actions costing {} gas in the last \
                 24 hours (limits {} actions, {} gas; this one reserves {gas_limit}); the direct \
                 path stays open",
                usage.owner_jobs_24h,
                usage.owner_gas_24h,
                policy.max_actions_per_owner_per_day,
                policy.max_gas_per_owner_per_day
            ),
        ));
    }
    if usage.agreement_jobs >= policy.max_actions_per_agreement {
        return Err(Refusal::new(
            C::QuotaExceeded,
            format!(
                "{signer} already had {} sponsored actions on this agreement (limit {} per party)",
                usage.agreement_jobs, policy.max_actions_per_agreement
            ),
        ));
    }
    if usage.signer_jobs_24h >= policy.max_actions_per_party_per_day {
        return Err(Refusal::new(
            C::QuotaExceeded,
            format!(
                "{signer} signed {} sponsored actions in the last 24 hours (limit {})",
                usage.signer_jobs_24h, policy.max_actions_per_party_per_day
            ),
        ));
    }
    if usage.signer_reverts_24h >= policy.max_reverts_per_party_per_day {
        return Err(Refusal::new(
            C::TooManyReverts,
            format!(
                "{} sponsored actions signed by {signer} were mined and reverted in the last 24 \
                 hours (limit {}); sponsoring resumes for it once they are a day old (the \
                 direct path stays open)",
                usage.signer_reverts_24h, policy.max_reverts_per_party_per_day
            ),
        ));
    }
    if usage.gas_today.saturating_add(gas_limit) > policy.daily_gas_budget {
        return Err(Refusal::new(
            C::SponsorBudgetExhausted,
            format!(
                "today's gas budget ({}) is spent or reserved ({}); the direct path stays open",
                policy.daily_gas_budget, usage.gas_today
            ),
        ));
    }
    Ok(())
}

/// How far a strike (a sponsored action that passed simulation, then reverted on chain while
/// the agreement still allowed it) reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrikeScope {
    /// The party's own wallet refused on chain what it approved in simulation: it counts
    /// against the party on every agreement.
    Party,
    /// The cause could not be pinned on the party: it counts only on this agreement, so that
    /// a counterparty cannot shut the party out of its other agreements.
    Agreement,
}

impl StrikeScope {
    /// The stored spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Party => "party",
            Self::Agreement => "agreement",
        }
    }
}

/// Who a strike lands on, and how far it reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strike {
    /// The party charged.
    pub party: Address,
    /// Its reach.
    pub scope: StrikeScope,
}

/// Attributes a revert to whoever caused it, from the escrow's error when the call is replayed
/// against the state the block left (`replayed`; `None` when the replay does not revert or does
/// not decode): the signer's wallet refusing its own authorization (`invalid_signature`) is the
/// signer's; the buyer's wallet refusing the voucher of a seller's claim (`invalid_voucher`) is
/// the buyer's; anything else (a token, the sanctions oracle, a difference the replay does not
/// show) stays on the signer, but only for this agreement.
pub fn attribute_revert(signer: Address, buyer: Address, replayed: Option<RefusalCode>) -> Strike {
    match replayed {
        Some(RefusalCode::InvalidSignature) => Strike {
            party: signer,
            scope: StrikeScope::Party,
        },
        Some(RefusalCode::InvalidVoucher) => Strike {
            party: buyer,
            scope: StrikeScope::Party,
        },
        _ => Strike {
            party: signer,
            scope: StrikeScope::Agreement,
        },
    }
}

/// Whether acceptances racing on `concurrent` connections could overshoot a quota of `usage`:
/// then the acceptance must take the chain-wide lock and count again.
pub fn near_limits(policy: &Policy, usage: &Usage, concurrent: u64) -> bool {
    let gas = policy.max_gas_per_action.saturating_mul(concurrent);
    let near = |used: u64, adding: u64, limit: u64| used.saturating_add(adding) >= limit;
    near(
        usage.signer_jobs_24h,
        concurrent,
        policy.max_actions_per_party_per_day,
    ) || near(usage.gas_today, gas, policy.daily_gas_budget)
        || near(
            usage.principal_jobs_24h,
            concurrent,
            policy.max_actions_per_principal_per_day,
        )
        || near(
            usage.principal_gas_24h,
            gas,
            policy.max_gas_per_principal_per_day,
        )
        || near(
            usage.owner_jobs_24h,
            concurrent,
            policy.max_actions_per_owner_per_day,
        )
        || near(usage.owner_gas_24h, gas, policy.max_gas_per_owner_per_day)
}

/// The least fee increase a node accepts for a replacement at the same nonce, in percent.
pub const MIN_BUMP_PERCENT: u64 = 10;

/// The fees of a first submission: `(max_fee_per_gas, max_priority_fee_per_gas)`. The fee cap
/// allows two doublings of the base fee plus the tip, never above `cap`; the tip never exceeds
/// the fee cap.
pub fn first_fees(base_fee: u128, tip: u128, cap: u128) -> (u128, u128) {
    let max_fee = base_fee.saturating_mul(2).saturating_add(tip).min(cap);
    (max_fee, tip.min(max_fee))
}

/// The fee bump actually applied for a configured `percent` (never below [`MIN_BUMP_PERCENT`]).
pub fn bump_percent(percent: u64) -> u128 {
    u128::from(percent.max(MIN_BUMP_PERCENT))
}

/// `value` raised by `percent`, strictly above the exact increase (nodes compare with `>=` on a
/// rounded-down figure; one wei more always clears it).
pub fn bumped(value: u128, percent: u128) -> u128 {
    value.saturating_mul(100 + percent) / 100 + 1
}

/// The fees of a replacement of a transaction sent with `sent = (max_fee, tip)`: both raised by
/// `percent`, the tip at least `min_tip`, the fee cap at least `2 × base fee + tip`. For a
/// cancelling or filling no-op, which is never held back by the fee cap.
pub fn replacement_fees(
    sent: (u128, u128),
    base_fee: u128,
    percent: u128,
    min_tip: u128,
) -> (u128, u128) {
    let (floor, tip, wanted) = raised(sent, base_fee, percent, min_tip);
    let max_fee = floor.max(wanted);
    (max_fee, tip.min(max_fee))
}

/// [`replacement_fees`] for an action, bounded by the fee cap `cap`: `None` when the cap leaves
/// no room for a valid replacement (the raised fee is above it, or the base fee reached it), and
/// the transaction is held until the base fee falls.
pub fn capped_replacement_fees(
    sent: (u128, u128),
    base_fee: u128,
    percent: u128,
    min_tip: u128,
    cap: u128,
) -> Option<(u128, u128)> {
    let (floor, tip, wanted) = raised(sent, base_fee, percent, min_tip);
    if floor > cap || base_fee >= cap {
        return None;
    }
    let max_fee = floor.max(wanted.min(cap));
    Some((max_fee, tip.min(max_fee)))
}

/// The least fee cap a replacement may carry, its tip, and the fee cap the base fee asks for.
fn raised(sent: (u128, u128), base_fee: u128, percent: u128, min_tip: u128) -> (u128, u128, u128) {
    let (max_fee, tip) = sent;
    let tip = bumped(tip, percent).max(min_tip);
    let floor = bumped(max_fee, percent);
    (floor, tip, base_fee.saturating_mul(2).saturating_add(tip))
}

/// The gas limit given to a call estimated at `estimate`: the estimate plus `margin_percent`.
pub fn gas_limit(estimate: u64, margin_percent: u64) -> u64 {
    estimate.saturating_mul(100 + margin_percent) / 100
}

/// The estimate a gas limit was made from (the inverse of [`gas_limit`], rounded up so that a
/// call fitting in it still gets at least `limit` back).
pub fn estimate_of(limit: u64, margin_percent: u64) -> u64 {
    limit.saturating_mul(100).div_ceil(100 + margin_percent)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GWEI: u128 = 1_000_000_000;

    #[test]
    fn first_fees_double_the_base_fee_under_the_cap() {
        assert_eq!(first_fees(10 * GWEI, GWEI, 100 * GWEI), (21 * GWEI, GWEI));
        assert_eq!(first_fees(80 * GWEI, GWEI, 100 * GWEI), (100 * GWEI, GWEI));
        // A tip above the cap is cut to it.
        assert_eq!(first_fees(0, 5 * GWEI, 2 * GWEI), (2 * GWEI, 2 * GWEI));
        assert_eq!(first_fees(u128::MAX, 1, u128::MAX), (u128::MAX, 1));
    }

    #[test]
    fn a_bump_clears_the_nodes_ten_percent() {
        assert_eq!(bump_percent(0), 10);
        assert_eq!(bump_percent(25), 25);
        assert_eq!(bumped(100, 10), 111);
        assert_eq!(bumped(0, 10), 1);
        for value in [1u128, 7, 99, 1_000_000_007, 30 * GWEI] {
            assert!(bumped(value, 10) * 10 >= value * 11, "{value}");
            assert!(bumped(value, 10) > value);
        }
        assert_eq!(bumped(u128::MAX, 10), u128::MAX / 100 + 1);
    }

    #[test]
    fn a_replacement_raises_both_fees_and_follows_the_base_fee() {
        let (max_fee, tip) = replacement_fees((20 * GWEI, GWEI), 5 * GWEI, 10, GWEI);
        assert_eq!(tip, GWEI + GWEI / 10 + 1);
        assert_eq!(max_fee, 22 * GWEI + 1);
        // A risen base fee sets the floor.
        let (max_fee, _) = replacement_fees((20 * GWEI, GWEI), 50 * GWEI, 10, GWEI);
        assert_eq!(max_fee, 100 * GWEI + GWEI + GWEI / 10 + 1);
        // The configured tip is a floor.
        let (_, tip) = replacement_fees((20 * GWEI, 1), GWEI, 10, 3 * GWEI);
        assert_eq!(tip, 3 * GWEI);
    }

    #[test]
    fn the_cap_bounds_an_action_but_never_a_no_op() {
        let sent = (20 * GWEI, GWEI);
        let capped = capped_replacement_fees(sent, 50 * GWEI, 10, GWEI, 60 * GWEI).unwrap();
        assert_eq!(capped.0, 60 * GWEI);
        // Under the cap it is the uncapped replacement.
        assert_eq!(
            capped_replacement_fees(sent, 5 * GWEI, 10, GWEI, 500 * GWEI),
            Some(replacement_fees(sent, 5 * GWEI, 10, GWEI))
        );
        assert_eq!(
            capped_replacement_fees(sent, 5 * GWEI, 10, GWEI, 21 * GWEI),
            None
        );
        assert_eq!(
            capped_replacement_fees(sent, 60 * GWEI, 10, GWEI, 60 * GWEI),
            None
        );
        assert!(replacement_fees(sent, 60 * GWEI, 10, GWEI).0 > 120 * GWEI);
    }

    #[test]
    fn the_gas_margin_round_trips() {
        assert_eq!(gas_limit(100_000, 25), 125_000);
        assert_eq!(estimate_of(125_000, 25), 100_000);
        for estimate in [21_000u64, 99_999, 123_457] {
            assert!(
                gas_limit(estimate_of(gas_limit(estimate, 25), 25), 25)
                    >= gas_limit(estimate, 25) - 1
            );
        }
        assert_eq!(gas_limit(u64::MAX, 25), u64::MAX / 100);
    }

    fn usage() -> Usage {
        Usage {
            agreement_jobs: 1,
            signer_jobs_24h: 2,
            signer_reverts_24h: 0,
            gas_today: 1_000_000,
            ..Usage::default()
        }
    }

    const AGENT: Requester<'static> = Requester {
        principal: "agent:a",
        owner: Some("acme"),
    };

    #[test]
    fn usage_within_the_policy_passes() {
        let policy = Policy::default();
        assert_eq!(
            check_usage(&policy, &usage(), Address::ZERO, AGENT, 300_000),
            Ok(())
        );
    }

    #[test]
    fn each_quota_has_its_code() {
        let policy = Policy::default();
        let code = |u: Usage, gas| {
            check_usage(&policy, &u, Address::ZERO, AGENT, gas)
                .unwrap_err()
                .code
        };
        let agreement = Usage {
            agreement_jobs: policy.max_actions_per_agreement,
            ..usage()
        };
        assert_eq!(code(agreement, 1), RefusalCode::QuotaExceeded);
        let party = Usage {
            signer_jobs_24h: policy.max_actions_per_party_per_day,
            ..usage()
        };
        assert_eq!(code(party, 1), RefusalCode::QuotaExceeded);
        let reverts = Usage {
            signer_reverts_24h: policy.max_reverts_per_party_per_day,
            ..usage()
        };
        assert_eq!(code(reverts, 1), RefusalCode::TooManyReverts);
        let budget = Usage {
            gas_today: policy.daily_gas_budget - 10,
            ..usage()
        };
        assert_eq!(code(budget, 11), RefusalCode::SponsorBudgetExhausted);
        assert!(check_usage(&policy, &budget, Address::ZERO, AGENT, 10).is_ok());
    }

    #[test]
    fn a_principal_and_an_owner_are_bounded_in_actions_and_in_gas() {
        let policy = Policy::default();
        let refused = |u: Usage, requester: Requester<'_>, gas: u64| {
            check_usage(&policy, &u, Address::ZERO, requester, gas)
                .err()
                .map(|r| (r.code, r.detail))
        };
        let busy_agent = Usage {
            principal_jobs_24h: policy.max_actions_per_principal_per_day,
            ..usage()
        };
        let (code, detail) = refused(busy_agent, AGENT, 1).unwrap();
        assert_eq!(code, RefusalCode::QuotaExceeded);
        assert!(detail.contains("agent:a posted"), "{detail}");
        // The gas quota counts what this action reserves.
        let spent = Usage {
            principal_gas_24h: policy.max_gas_per_principal_per_day - 100,
            ..usage()
        };
        assert_eq!(refused(spent, AGENT, 100), None);
        assert!(refused(spent, AGENT, 101).is_some());
        // An owner's agents together.
        let busy_owner = Usage {
            owner_gas_24h: policy.max_gas_per_owner_per_day,
            ..usage()
        };
        let (code, detail) = refused(busy_owner, AGENT, 1).unwrap();
        assert_eq!(code, RefusalCode::QuotaExceeded);
        assert!(detail.contains("owner acme"), "{detail}");
        // The operator's tools have no owner: only their principal quota applies.
        assert_eq!(refused(busy_owner, Requester::from("bench"), 1), None);
        let many = Usage {
            owner_jobs_24h: policy.max_actions_per_owner_per_day,
            ..usage()
        };
        assert!(refused(many, AGENT, 1).is_some());
    }

    #[test]
    fn by_default_one_owner_gets_a_tenth_of_the_budget() {
        let policy = Policy::default();
        assert!(policy.max_gas_per_owner_per_day * 10 <= policy.daily_gas_budget);
        assert!(policy.max_gas_per_principal_per_day <= policy.max_gas_per_owner_per_day);
        assert!(policy.max_actions_per_principal_per_day <= policy.max_actions_per_owner_per_day);
    }

    #[test]
    fn the_chain_wide_lock_is_taken_only_near_a_limit() {
        let policy = Policy::default();
        assert!(!near_limits(&policy, &usage(), 16));
        let party = Usage {
            signer_jobs_24h: policy.max_actions_per_party_per_day - 16,
            ..usage()
        };
        assert!(near_limits(&policy, &party, 16));
        let budget = Usage {
            gas_today: policy.daily_gas_budget - 16 * policy.max_gas_per_action + 1,
            ..usage()
        };
        assert!(near_limits(&policy, &budget, 16));
        let principal = Usage {
            principal_gas_24h: policy.max_gas_per_principal_per_day
                - 16 * policy.max_gas_per_action,
            ..usage()
        };
        assert!(near_limits(&policy, &principal, 16));
        let owner = Usage {
            owner_jobs_24h: policy.max_actions_per_owner_per_day - 16,
            ..usage()
        };
        assert!(near_limits(&policy, &owner, 16));
    }

    #[test]
    fn a_revert_is_charged_to_the_wallet_that_refused() {
        let (seller, buyer) = (Address::repeat_byte(5), Address::repeat_byte(6));
        let strike = |code| attribute_revert(seller, buyer, code);
        assert_eq!(
            strike(Some(RefusalCode::InvalidSignature)),
            Strike {
                party: seller,
                scope: StrikeScope::Party
            }
        );
        // The buyer's wallet refused the voucher of the seller's claim: the buyer's strike.
        assert_eq!(
            strike(Some(RefusalCode::InvalidVoucher)),
            Strike {
                party: buyer,
                scope: StrikeScope::Party
            }
        );
        for unclear in [
            None,
            Some(RefusalCode::Sanctioned),
            Some(RefusalCode::SimulationFailed),
        ] {
            assert_eq!(
                strike(unclear),
                Strike {
                    party: seller,
                    scope: StrikeScope::Agreement
                }
            );
        }
    }
}
