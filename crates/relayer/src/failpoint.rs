//! Crash points for the crash test. With the `failpoints` feature, `PACTUM_RELAYER_FAILPOINTS`
//! (e.g. `after_commit=0.02,mid_fee_bump=0.5`) makes the process abort at those points with the
//! given probability, the way a SIGKILL would stop it there. Without the feature, [`hit`] is a
//! no-op.

/// The points, in the order a submission passes them.
pub const POINTS: [&str; 4] = [
    // Inside the database transaction, after the nonce was reserved (the transaction is lost).
    "after_nonce_reservation",
    // After the commit, before the broadcast.
    "after_commit",
    // After the broadcast, before the database records it.
    "after_broadcast",
    // After a fee-bumped replacement was stored, before it is broadcast.
    "mid_fee_bump",
];

/// Aborts the process here if the point is armed and the dice say so.
#[cfg(feature = "failpoints")]
pub fn hit(point: &'static str) {
    use std::sync::OnceLock;
    static ARMED: OnceLock<Vec<(String, f64)>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| {
        std::env::var("PACTUM_RELAYER_FAILPOINTS")
            .unwrap_or_default()
            .split(',')
            .filter_map(|item| {
                let (name, p) = item.split_once('=')?;
                Some((name.trim().to_owned(), p.trim().parse().ok()?))
            })
            .collect()
    });
    let Some((_, p)) = armed.iter().find(|(name, _)| name == point) else {
        return;
    };
    let roll = f64::from(u32::from_le_bytes(
        pactum_db::random_bytes()[..4]
            .try_into()
            .unwrap_or_default(),
    )) / f64::from(u32::MAX);
    if roll < *p {
        eprintln!("failpoint {point}: aborting");
        std::process::abort();
    }
}

/// Aborts the process here if the point is armed (only with the `failpoints` feature).
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_point: &'static str) {}
