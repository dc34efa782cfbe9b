//! The relayer's Prometheus metrics: jobs accepted, transactions sent (first broadcasts,
//! re-broadcasts, fee bumps, cancels, gap fills), outcomes, gas spent, signer balances, and the
//! latency from acceptance to first broadcast and to confirmation. Queue depth per state is read
//! from the database at scrape time ([`pactum_db::relay::jobs_by_state`]).

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{Arc, Mutex},
};

use alloy::primitives::Address;
use pactum_db::relay::ActionKind;

const BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn render(&self, out: &mut String, name: &str) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", self.counts[i]);
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

/// What a transaction sent by a worker was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Sent {
    First,
    Rebroadcast,
    Replacement,
    Cancel,
    Fill,
}

impl Sent {
    fn as_str(self) -> &'static str {
        match self {
            Self::First => "first",
            Self::Rebroadcast => "rebroadcast",
            Self::Replacement => "fee_bump",
            Self::Cancel => "cancel",
            Self::Fill => "gap_fill",
        }
    }
}

#[derive(Debug, Default)]
struct State {
    accepted: BTreeMap<&'static str, u64>,
    sent: BTreeMap<Sent, u64>,
    finished: BTreeMap<(&'static str, bool), u64>,
    gas_used: u64,
    wei_spent: f64,
    submit_latency: Histogram,
    confirm_latency: Histogram,
    balances: BTreeMap<Address, f64>,
}

/// The relayer's counters. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct Metrics(Arc<Mutex<State>>);

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut State)) {
        if let Ok(mut state) = self.0.lock() {
            f(&mut state);
        }
    }

    pub(crate) fn accepted(&self, kind: ActionKind) {
        self.with(|s| *s.accepted.entry(kind.as_str()).or_default() += 1);
    }

    pub(crate) fn sent(&self, what: Sent, count: u64) {
        self.with(|s| *s.sent.entry(what).or_default() += count);
    }

    pub(crate) fn submitted_after(&self, seconds: f64) {
        self.with(|s| s.submit_latency.observe(seconds));
    }

    pub(crate) fn finished(
        &self,
        kind: &'static str,
        success: bool,
        gas_used: u64,
        wei: f64,
        seconds: Option<f64>,
    ) {
        self.with(|s| {
            *s.finished.entry((kind, success)).or_default() += 1;
            s.gas_used += gas_used;
            s.wei_spent += wei;
            if let (true, Some(seconds)) = (success, seconds) {
                s.confirm_latency.observe(seconds);
            }
        });
    }

    pub(crate) fn balance(&self, signer: Address, wei: f64) {
        self.with(|s| {
            s.balances.insert(signer, wei);
        });
    }

    /// Gas used by mined relayer transactions so far (this process).
    pub fn gas_used(&self) -> u64 {
        self.0.lock().map(|s| s.gas_used).unwrap_or(0)
    }

    /// Appends the metrics in Prometheus text format; `queue` is (state, jobs).
    pub fn render(&self, out: &mut String, queue: &[(pactum_db::relay::JobState, u64)]) {
        let Ok(s) = self.0.lock() else { return };
        let _ = writeln!(out, "# HELP pactum_relayer_jobs Relay jobs by state.");
        let _ = writeln!(out, "# TYPE pactum_relayer_jobs gauge");
        for state in pactum_db::relay::JobState::ALL {
            let n = queue
                .iter()
                .find(|(s, _)| s == state)
                .map_or(0, |(_, n)| *n);
            let _ = writeln!(
                out,
                "pactum_relayer_jobs{{state=\"{}\"}} {n}",
                state.as_str()
            );
        }
        let _ = writeln!(
            out,
            "# HELP pactum_relayer_accepted_total Sponsored actions accepted."
        );
        let _ = writeln!(out, "# TYPE pactum_relayer_accepted_total counter");
        for (action, n) in &s.accepted {
            let _ = writeln!(
                out,
                "pactum_relayer_accepted_total{{action=\"{action}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP pactum_relayer_transactions_total Transactions broadcast, by kind."
        );
        let _ = writeln!(out, "# TYPE pactum_relayer_transactions_total counter");
        for (what, n) in &s.sent {
            let _ = writeln!(
                out,
                "pactum_relayer_transactions_total{{kind=\"{}\"}} {n}",
                what.as_str()
            );
        }
        let _ = writeln!(
            out,
            "# HELP pactum_relayer_finished_total Jobs finished on chain, by action and outcome."
        );
        let _ = writeln!(out, "# TYPE pactum_relayer_finished_total counter");
        for ((action, ok), n) in &s.finished {
            let outcome = if *ok { "confirmed" } else { "failed" };
            let _ = writeln!(
                out,
                "pactum_relayer_finished_total{{action=\"{action}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP pactum_relayer_gas_used_total Gas used by mined relayer transactions."
        );
        let _ = writeln!(out, "# TYPE pactum_relayer_gas_used_total counter");
        let _ = writeln!(out, "pactum_relayer_gas_used_total {}", s.gas_used);
        let _ = writeln!(
            out,
            "# HELP pactum_relayer_spent_wei_total Fees paid by mined relayer transactions."
        );
        let _ = writeln!(out, "# TYPE pactum_relayer_spent_wei_total counter");
        let _ = writeln!(out, "pactum_relayer_spent_wei_total {}", s.wei_spent);
        let _ = writeln!(
            out,
            "# HELP pactum_relayer_signer_balance_wei Last observed balance of each signer key."
        );
        let _ = writeln!(out, "# TYPE pactum_relayer_signer_balance_wei gauge");
        for (signer, wei) in &s.balances {
            let _ = writeln!(
                out,
                "pactum_relayer_signer_balance_wei{{signer=\"{signer}\"}} {wei}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP pactum_relayer_submit_seconds From acceptance to first broadcast."
        );
        let _ = writeln!(out, "# TYPE pactum_relayer_submit_seconds histogram");
        s.submit_latency
            .render(out, "pactum_relayer_submit_seconds");
        let _ = writeln!(
            out,
            "# HELP pactum_relayer_confirm_seconds From acceptance to confirmation."
        );
        let _ = writeln!(out, "# TYPE pactum_relayer_confirm_seconds histogram");
        s.confirm_latency
            .render(out, "pactum_relayer_confirm_seconds");
    }
}
