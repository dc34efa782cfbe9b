//! The time, as a value: services take a [`Clock`] so that rules depending on "now" are tested
//! with a [`FixedClock`] instead of waiting.

use std::{
    fmt::Debug,
    sync::atomic::{AtomicI64, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

/// Wall-clock time.
pub trait Clock: Debug + Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Whole seconds since the Unix epoch (0 before it).
    fn now_secs(&self) -> u64 {
        u64::try_from(self.now_ms() / 1000).unwrap_or(0)
    }
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A clock that stands still until moved (tests).
#[derive(Debug, Default)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    /// Stopped at `ms` milliseconds since the epoch.
    pub const fn at_ms(ms: i64) -> Self {
        Self(AtomicI64::new(ms))
    }

    /// Stopped at `secs` seconds since the epoch.
    pub fn at_secs(secs: u64) -> Self {
        Self::at_ms(
            i64::try_from(secs)
                .unwrap_or(i64::MAX / 1000)
                .saturating_mul(1000),
        )
    }

    /// Moves it forward by `ms` milliseconds.
    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_clock_moves_only_when_told() {
        let clock = FixedClock::at_secs(1_700_000_000);
        assert_eq!(clock.now_secs(), 1_700_000_000);
        clock.advance_ms(1_500);
        assert_eq!(clock.now_ms(), 1_700_000_001_500);
        assert_eq!(clock.now_secs(), 1_700_000_001);
    }

    #[test]
    fn before_the_epoch_is_zero_seconds() {
        assert_eq!(FixedClock::at_ms(-5_000).now_secs(), 0);
    }

    #[test]
    fn the_system_clock_is_after_2024() {
        assert!(SystemClock.now_secs() > 1_700_000_000);
    }
}
