//! Owner policies: the guardrails an owner sets on what its agent may commit to. Each rule is
//! optional; a policy with none set allows everything ([`Policy::default`], the documented
//! default). Amounts are US cents, as prices are in proposals.
//!
//! Where each rule applies:
//!
//! | rule | proposal (buyer's) | acceptance (seller's) | activation (buyer's) |
//! |---|---|---|---|
//! | `max_per_agreement_cents` | total | total | — |
//! | `daily_limit_cents`, `monthly_limit_cents` | — | — | spent in the UTC day / month + total |
//! | `max_price_per_unit_cents` | price | — | — |
//! | `min_price_per_unit_cents` | — | price | — |
//! | `allowed_counterparties`, `blocked_counterparties` | seller | buyer | — |
//! | `allowed_services`, `blocked_services` | service | service | — |
//! | `allowed_units`, `allowed_rails` | unit, rail | unit, rail | — |
//! | `max_open_agreements` | open ones + 1 | open ones + 1 (a seller's open ones: those it accepted) | — |
//! | `sponsored_settlement` | — | — | (settlement: the sponsored endpoints) |
//! | `approval_threshold_cents` | total above it waits for the owner's approval | — | — |

use serde::{Deserialize, Serialize};

named_enum! {
    /// Why a policy request, or a request a policy governs, is refused.
    pub enum PolicyCode {
        /// A rule is unknown, or its value impossible (the detail names the rule).
        InvalidPolicy = "invalid_policy",
        /// A policy write without `If-Match` (the version it replaces).
        PreconditionRequired = "precondition_required",
        /// The policy changed since the version named in `If-Match`.
        PreconditionFailed = "precondition_failed",
        /// The request breaks a rule of the owner's policy (the detail names it, with figures).
        PolicyViolation = "policy_violation",
    }
}

impl PolicyCode {
    /// A short human title (the problem's `title`).
    pub const fn title(self) -> &'static str {
        match self {
            Self::InvalidPolicy => "Invalid policy",
            Self::PreconditionRequired => "If-Match required",
            Self::PreconditionFailed => "Policy changed",
            Self::PolicyViolation => "Refused by the owner's policy",
        }
    }
}

/// The longest list a rule may hold.
pub const MAX_LIST: usize = 100;

/// An owner's rules for one agent. Unknown rules are refused when parsing (`deny_unknown_fields`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The most one agreement may cost in total (quantity × unit price), in cents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_agreement_cents: Option<u64>,
    /// The most the agent may commit in activations per UTC day, in cents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_limit_cents: Option<u64>,
    /// The most the agent may commit in activations per UTC calendar month, in cents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_limit_cents: Option<u64>,
    /// The highest unit price the agent may agree to pay, in cents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price_per_unit_cents: Option<u64>,
    /// The lowest unit price the agent may agree to sell at, in cents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_price_per_unit_cents: Option<u64>,
    /// Only these counterparties (agent ids), if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_counterparties: Option<Vec<String>>,
    /// Never these counterparties (agent ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_counterparties: Option<Vec<String>>,
    /// Only these services, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_services: Option<Vec<String>>,
    /// Never these services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_services: Option<Vec<String>>,
    /// Only these units, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_units: Option<Vec<String>>,
    /// Only these payment rails, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_rails: Option<Vec<String>>,
    /// The most agreements the agent may have open (proposed to activated, not yet settled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_open_agreements: Option<u32>,
    /// Whether the agent may use the sponsored (gas-paid) settlement endpoints (default yes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sponsored_settlement: Option<bool>,
    /// Agreements costing more than this (cents) wait for the owner's approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_threshold_cents: Option<u64>,
}

/// A policy that cannot be stored: the rule and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule {rule}: {detail}")]
pub struct InvalidPolicy {
    /// The rule's name, as in the JSON.
    pub rule: &'static str,
    /// What is wrong with it.
    pub detail: String,
}

fn invalid(rule: &'static str, detail: impl Into<String>) -> InvalidPolicy {
    InvalidPolicy {
        rule,
        detail: detail.into(),
    }
}

/// Every rule's name, as in the JSON.
pub const RULES: &[&str] = &[
    "max_per_agreement_cents",
    "daily_limit_cents",
    "monthly_limit_cents",
    "max_price_per_unit_cents",
    "min_price_per_unit_cents",
    "allowed_counterparties",
    "blocked_counterparties",
    "allowed_services",
    "blocked_services",
    "allowed_units",
    "allowed_rails",
    "max_open_agreements",
    "sponsored_settlement",
    "approval_threshold_cents",
];

impl Policy {
    /// Parses a policy document (a JSON object), naming the rule that is unknown or whose value
    /// does not parse, then [`Policy::validate`]s it.
    pub fn parse(json: &[u8]) -> Result<Self, InvalidPolicy> {
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(json)
            .map_err(|e| invalid("(document)", format!("not a JSON object of rules: {e}")))?;
        let mut policy = Self::default();
        for (name, value) in object {
            let Some(rule) = RULES.iter().find(|r| **r == name) else {
                return Err(invalid(
                    "(unknown)",
                    format!("unknown rule {name:?}; the rules are {}", RULES.join(", ")),
                ));
            };
            let one = serde_json::json!({ name: value });
            let parsed: Self =
                serde_json::from_value(one).map_err(|e| invalid(rule, format!("{e}")))?;
            policy = policy.merged(parsed);
        }
        policy.validate()?;
        Ok(policy)
    }

    /// `self` with every rule `other` sets.
    fn merged(self, other: Self) -> Self {
        Self {
            max_per_agreement_cents: other
                .max_per_agreement_cents
                .or(self.max_per_agreement_cents),
            daily_limit_cents: other.daily_limit_cents.or(self.daily_limit_cents),
            monthly_limit_cents: other.monthly_limit_cents.or(self.monthly_limit_cents),
            max_price_per_unit_cents: other
                .max_price_per_unit_cents
                .or(self.max_price_per_unit_cents),
            min_price_per_unit_cents: other
                .min_price_per_unit_cents
                .or(self.min_price_per_unit_cents),
            allowed_counterparties: other.allowed_counterparties.or(self.allowed_counterparties),
            blocked_counterparties: other.blocked_counterparties.or(self.blocked_counterparties),
            allowed_services: other.allowed_services.or(self.allowed_services),
            blocked_services: other.blocked_services.or(self.blocked_services),
            allowed_units: other.allowed_units.or(self.allowed_units),
            allowed_rails: other.allowed_rails.or(self.allowed_rails),
            max_open_agreements: other.max_open_agreements.or(self.max_open_agreements),
            sponsored_settlement: other.sponsored_settlement.or(self.sponsored_settlement),
            approval_threshold_cents: other
                .approval_threshold_cents
                .or(self.approval_threshold_cents),
        }
    }

    /// Checks values no rule could mean: zero limits, empty or oversized lists, entries that
    /// are blank or repeated, a minimum price above a maximum, a daily limit above the monthly,
    /// the same entry allowed and blocked.
    pub fn validate(&self) -> Result<(), InvalidPolicy> {
        let positive = [
            ("max_per_agreement_cents", self.max_per_agreement_cents),
            ("daily_limit_cents", self.daily_limit_cents),
            ("monthly_limit_cents", self.monthly_limit_cents),
            ("max_price_per_unit_cents", self.max_price_per_unit_cents),
            ("min_price_per_unit_cents", self.min_price_per_unit_cents),
            ("approval_threshold_cents", self.approval_threshold_cents),
            (
                "max_open_agreements",
                self.max_open_agreements.map(u64::from),
            ),
        ];
        for (rule, value) in positive {
            if value == Some(0) {
                return Err(invalid(
                    rule,
                    "must be at least 1 (leave it out for no limit)",
                ));
            }
        }
        let lists = [
            ("allowed_counterparties", &self.allowed_counterparties),
            ("blocked_counterparties", &self.blocked_counterparties),
            ("allowed_services", &self.allowed_services),
            ("blocked_services", &self.blocked_services),
            ("allowed_units", &self.allowed_units),
            ("allowed_rails", &self.allowed_rails),
        ];
        for (rule, list) in lists {
            let Some(list) = list else { continue };
            if list.is_empty() {
                return Err(invalid(
                    rule,
                    "an empty list would allow nothing; leave the rule out to allow all",
                ));
            }
            if list.len() > MAX_LIST {
                return Err(invalid(rule, format!("at most {MAX_LIST} entries")));
            }
            for (i, entry) in list.iter().enumerate() {
                if entry.trim().is_empty() || entry.len() > 128 || entry.contains('\0') {
                    return Err(invalid(
                        rule,
                        format!("entry {i} is blank, over 128 bytes or holds a NUL character"),
                    ));
                }
                if list[..i].contains(entry) {
                    return Err(invalid(rule, format!("{entry:?} is listed twice")));
                }
            }
        }
        if let (Some(min), Some(max)) =
            (self.min_price_per_unit_cents, self.max_price_per_unit_cents)
            && min > max
        {
            return Err(invalid(
                "min_price_per_unit_cents",
                format!("{min} is above max_price_per_unit_cents {max}"),
            ));
        }
        if let (Some(day), Some(month)) = (self.daily_limit_cents, self.monthly_limit_cents)
            && day > month
        {
            return Err(invalid(
                "daily_limit_cents",
                format!("{day} is above monthly_limit_cents {month}"),
            ));
        }
        for (allowed, blocked, rule) in [
            (
                &self.allowed_counterparties,
                &self.blocked_counterparties,
                "blocked_counterparties",
            ),
            (
                &self.allowed_services,
                &self.blocked_services,
                "blocked_services",
            ),
        ] {
            if let (Some(allowed), Some(blocked)) = (allowed, blocked)
                && let Some(both) = blocked.iter().find(|b| allowed.contains(b))
            {
                return Err(invalid(
                    rule,
                    format!("{both:?} is both allowed and blocked"),
                ));
            }
        }
        Ok(())
    }
}

/// What a proposal or an acceptance commits the agent to, as its policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terms<'a> {
    /// The other party's agent id.
    pub counterparty: &'a str,
    /// The service.
    pub service: &'a str,
    /// The unit.
    pub unit: &'a str,
    /// The payment rail.
    pub rail: &'a str,
    /// Units agreed.
    pub quantity: u64,
    /// Cents per unit.
    pub price_per_unit_cents: u64,
}

impl Terms<'_> {
    /// Quantity × unit price, in cents (saturating: such a total is above any limit anyway).
    pub const fn total_cents(&self) -> u64 {
        self.quantity.saturating_mul(self.price_per_unit_cents)
    }
}

/// A rule the request breaks, with the figures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("policy rule {rule}: {detail}")]
pub struct Violation {
    /// The rule's name.
    pub rule: &'static str,
    /// The figures (limit, value, what was counted).
    pub detail: String,
}

fn violation(rule: &'static str, detail: impl Into<String>) -> Violation {
    Violation {
        rule,
        detail: detail.into(),
    }
}

/// What a policy says of a proposal it does not refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead.
    Allowed,
    /// The total is above the approval threshold: a human must approve first.
    NeedsApproval {
        /// The threshold.
        threshold_cents: u64,
        /// The agreement's total.
        total_cents: u64,
    },
}

fn listed(
    rule: &'static str,
    list: Option<&Vec<String>>,
    value: &str,
    what: &str,
) -> Result<(), Violation> {
    match list {
        Some(list) if !list.iter().any(|v| v == value) => Err(violation(
            rule,
            format!("{what} {value:?} is not among the {} allowed", list.len()),
        )),
        _ => Ok(()),
    }
}

fn not_blocked(
    rule: &'static str,
    list: Option<&Vec<String>>,
    value: &str,
    what: &str,
) -> Result<(), Violation> {
    match list {
        Some(list) if list.iter().any(|v| v == value) => {
            Err(violation(rule, format!("{what} {value:?} is blocked")))
        }
        _ => Ok(()),
    }
}

impl Policy {
    /// The rules both sides share: total, counterparty, service, unit, rail, open agreements
    /// (`open`: the agent's open agreements before this one).
    fn check_terms(&self, t: &Terms<'_>, open: u64) -> Result<(), Violation> {
        let total = t.total_cents();
        if let Some(max) = self.max_per_agreement_cents
            && total > max
        {
            return Err(violation(
                "max_per_agreement_cents",
                format!(
                    "the agreement totals {total} cents ({} × {}), above the limit of {max}",
                    t.quantity, t.price_per_unit_cents
                ),
            ));
        }
        listed(
            "allowed_counterparties",
            self.allowed_counterparties.as_ref(),
            t.counterparty,
            "counterparty",
        )?;
        not_blocked(
            "blocked_counterparties",
            self.blocked_counterparties.as_ref(),
            t.counterparty,
            "counterparty",
        )?;
        listed(
            "allowed_services",
            self.allowed_services.as_ref(),
            t.service,
            "service",
        )?;
        not_blocked(
            "blocked_services",
            self.blocked_services.as_ref(),
            t.service,
            "service",
        )?;
        listed("allowed_units", self.allowed_units.as_ref(), t.unit, "unit")?;
        listed("allowed_rails", self.allowed_rails.as_ref(), t.rail, "rail")?;
        if let Some(max) = self.max_open_agreements
            && open >= u64::from(max)
        {
            return Err(violation(
                "max_open_agreements",
                format!("{open} agreements are open, the limit is {max}"),
            ));
        }
        Ok(())
    }

    /// A buyer's proposal: its terms and maximum price, then whether it needs approval.
    pub fn check_proposal(&self, t: &Terms<'_>, open: u64) -> Result<Verdict, Violation> {
        if let Some(max) = self.max_price_per_unit_cents
            && t.price_per_unit_cents > max
        {
            return Err(violation(
                "max_price_per_unit_cents",
                format!(
                    "{} cents per unit is above the limit of {max}",
                    t.price_per_unit_cents
                ),
            ));
        }
        self.check_terms(t, open)?;
        let total = t.total_cents();
        Ok(match self.approval_threshold_cents {
            Some(threshold) if total > threshold => Verdict::NeedsApproval {
                threshold_cents: threshold,
                total_cents: total,
            },
            _ => Verdict::Allowed,
        })
    }

    /// A seller's acceptance: its terms and minimum price.
    pub fn check_acceptance(&self, t: &Terms<'_>, open: u64) -> Result<(), Violation> {
        if let Some(min) = self.min_price_per_unit_cents
            && t.price_per_unit_cents < min
        {
            return Err(violation(
                "min_price_per_unit_cents",
                format!(
                    "{} cents per unit is below the minimum of {min}",
                    t.price_per_unit_cents
                ),
            ));
        }
        self.check_terms(t, open)
    }

    /// A buyer's activation of `total_cents`, with `spent_today` and `spent_this_month` already
    /// committed in activations (UTC day and calendar month).
    pub fn check_activation(
        &self,
        total_cents: u64,
        spent_today: u64,
        spent_this_month: u64,
    ) -> Result<(), Violation> {
        for (rule, limit, spent, period) in [
            (
                "daily_limit_cents",
                self.daily_limit_cents,
                spent_today,
                "today",
            ),
            (
                "monthly_limit_cents",
                self.monthly_limit_cents,
                spent_this_month,
                "this month",
            ),
        ] {
            if let Some(limit) = limit
                && spent.saturating_add(total_cents) > limit
            {
                return Err(violation(
                    rule,
                    format!(
                        "{spent} cents committed {period} + {total_cents} would exceed the limit of {limit}"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether the agent may use the sponsored settlement endpoints.
    pub fn check_sponsored(&self) -> Result<(), Violation> {
        if self.sponsored_settlement == Some(false) {
            return Err(violation(
                "sponsored_settlement",
                "the owner does not let this agent use sponsored settlement; settle with direct wallet calls",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_rule_is_the_default_and_allows_everything() {
        let p: Policy = serde_json::from_str("{}").unwrap();
        assert_eq!(p, Policy::default());
        assert!(p.validate().is_ok());
        assert_eq!(serde_json::to_string(&p).unwrap(), "{}");
    }

    #[test]
    fn a_nul_in_a_list_entry_is_refused_by_its_rule() {
        // No text column (nor jsonb) can store U+0000: refused here, not as a database error.
        let err = Policy::parse(br#"{"allowed_services": ["a\u0000b"]}"#).unwrap_err();
        assert_eq!(err.rule, "allowed_services");
    }

    #[test]
    fn unknown_rules_are_refused_by_name() {
        let err = serde_json::from_str::<Policy>(r#"{"max_spend": 5}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_spend"), "{err}");
    }

    #[test]
    fn impossible_values_name_their_rule() {
        let cases = [
            (r#"{"daily_limit_cents": 0}"#, "daily_limit_cents"),
            (r#"{"allowed_units": []}"#, "allowed_units"),
            (
                r#"{"allowed_rails": ["stablecoin", "stablecoin"]}"#,
                "allowed_rails",
            ),
            (r#"{"blocked_services": [" "]}"#, "blocked_services"),
            (
                r#"{"min_price_per_unit_cents": 10, "max_price_per_unit_cents": 5}"#,
                "min_price_per_unit_cents",
            ),
            (
                r#"{"daily_limit_cents": 500, "monthly_limit_cents": 100}"#,
                "daily_limit_cents",
            ),
            (
                r#"{"allowed_counterparties": ["a"], "blocked_counterparties": ["a"]}"#,
                "blocked_counterparties",
            ),
        ];
        for (json, rule) in cases {
            let p: Policy = serde_json::from_str(json).unwrap();
            assert_eq!(p.validate().unwrap_err().rule, rule, "{json}");
        }
        let long: Vec<String> = (0..=MAX_LIST).map(|i| format!("s{i}")).collect();
        let p = Policy {
            allowed_services: Some(long),
            ..Policy::default()
        };
        assert_eq!(p.validate().unwrap_err().rule, "allowed_services");
    }

    fn terms() -> Terms<'static> {
        Terms {
            counterparty: "seller-agent",
            service: "svc_abc",
            unit: "api_calls",
            rail: "stablecoin",
            quantity: 100,
            price_per_unit_cents: 10,
        }
    }

    #[test]
    fn proposals_keep_to_the_buyers_rules_and_wait_above_the_threshold() {
        let p = Policy {
            max_per_agreement_cents: Some(5_000),
            max_price_per_unit_cents: Some(20),
            allowed_services: Some(vec!["svc_abc".into()]),
            blocked_counterparties: Some(vec!["mallory".into()]),
            max_open_agreements: Some(3),
            approval_threshold_cents: Some(500),
            ..Policy::default()
        };
        assert_eq!(
            p.check_proposal(&terms(), 0),
            Ok(Verdict::NeedsApproval {
                threshold_cents: 500,
                total_cents: 1_000
            })
        );
        let small = Terms {
            quantity: 50,
            ..terms()
        };
        assert_eq!(p.check_proposal(&small, 2), Ok(Verdict::Allowed));
        let refused = |t: Terms<'_>, open| p.check_proposal(&t, open).unwrap_err().rule;
        assert_eq!(
            refused(
                Terms {
                    price_per_unit_cents: 21,
                    ..terms()
                },
                0
            ),
            "max_price_per_unit_cents"
        );
        assert_eq!(
            refused(
                Terms {
                    quantity: 501,
                    ..terms()
                },
                0
            ),
            "max_per_agreement_cents"
        );
        assert_eq!(
            refused(
                Terms {
                    service: "svc_other",
                    ..terms()
                },
                0
            ),
            "allowed_services"
        );
        assert_eq!(
            refused(
                Terms {
                    counterparty: "mallory",
                    ..terms()
                },
                0
            ),
            "blocked_counterparties"
        );
        assert_eq!(refused(terms(), 3), "max_open_agreements");
        // An overflowing total is above any limit.
        assert_eq!(
            refused(
                Terms {
                    quantity: u64::MAX,
                    ..terms()
                },
                0
            ),
            "max_per_agreement_cents"
        );
    }

    #[test]
    fn acceptances_keep_to_the_sellers_minimum() {
        let p = Policy {
            min_price_per_unit_cents: Some(10),
            allowed_units: Some(vec!["api_calls".into()]),
            ..Policy::default()
        };
        assert!(p.check_acceptance(&terms(), 0).is_ok());
        let cheap = Terms {
            price_per_unit_cents: 9,
            ..terms()
        };
        let v = p.check_acceptance(&cheap, 0).unwrap_err();
        assert_eq!(v.rule, "min_price_per_unit_cents");
        assert!(
            v.detail.contains("9 cents") && v.detail.contains("minimum of 10"),
            "{v}"
        );
        let tokens = Terms {
            unit: "tokens",
            ..terms()
        };
        assert_eq!(
            p.check_acceptance(&tokens, 0).unwrap_err().rule,
            "allowed_units"
        );
    }

    #[test]
    fn activations_count_against_the_day_and_the_month() {
        let p = Policy {
            daily_limit_cents: Some(1_000),
            monthly_limit_cents: Some(5_000),
            ..Policy::default()
        };
        assert!(p.check_activation(1_000, 0, 0).is_ok());
        assert_eq!(
            p.check_activation(1, 1_000, 1_000).unwrap_err().rule,
            "daily_limit_cents"
        );
        assert_eq!(
            p.check_activation(500, 0, 4_600).unwrap_err().rule,
            "monthly_limit_cents"
        );
        assert!(p.check_activation(u64::MAX, 0, 0).is_err());
        assert!(
            Policy::default()
                .check_activation(u64::MAX, u64::MAX, u64::MAX)
                .is_ok()
        );
    }

    #[test]
    fn sponsored_settlement_is_allowed_unless_turned_off() {
        assert!(Policy::default().check_sponsored().is_ok());
        let off = Policy {
            sponsored_settlement: Some(false),
            ..Policy::default()
        };
        assert_eq!(
            off.check_sponsored().unwrap_err().rule,
            "sponsored_settlement"
        );
    }

    #[test]
    fn parsing_names_the_rule_at_fault() {
        let err = Policy::parse(br#"{"max_spend": 5}"#).unwrap_err();
        assert!(err.detail.contains("unknown rule \"max_spend\""), "{err}");
        let err =
            Policy::parse(br#"{"allowed_units": ["a"], "daily_limit_cents": -5}"#).unwrap_err();
        assert_eq!(err.rule, "daily_limit_cents");
        let err = Policy::parse(br#"{"sponsored_settlement": "no"}"#).unwrap_err();
        assert_eq!(err.rule, "sponsored_settlement");
        assert_eq!(Policy::parse(b"[]").unwrap_err().rule, "(document)");
        let p = Policy::parse(br#"{"daily_limit_cents": 100, "allowed_rails": ["stablecoin"]}"#)
            .unwrap();
        assert_eq!(p.daily_limit_cents, Some(100));
        assert_eq!(p.allowed_rails, Some(vec!["stablecoin".to_owned()]));
        // Every listed rule parses on its own.
        for rule in RULES {
            let value = match *rule {
                r if r.starts_with("allowed") || r.starts_with("blocked") => {
                    serde_json::json!(["x"])
                }
                "sponsored_settlement" => serde_json::json!(true),
                _ => serde_json::json!(1),
            };
            let doc = serde_json::json!({ *rule: value }).to_string();
            assert!(Policy::parse(doc.as_bytes()).is_ok(), "{rule}");
        }
    }
}
