//! How long the host waits after a failure before it tries again: a poll
//! loop after a failed request, a websocket after a failed connection.
//!
//! Exponential from [`FIRST`] to [`MAX`], reset by a success. Each delay is
//! spread by up to a quarter (derived from the failure count and a per-loop
//! seed, not a clock), so that several loops failing together do not retry in
//! lockstep.

use std::time::Duration;

/// The first delay.
pub const FIRST: Duration = Duration::from_millis(500);
/// The longest delay.
pub const MAX: Duration = Duration::from_secs(30);

/// Failure count and the next delay.
#[derive(Clone, Debug)]
pub struct Backoff {
    failures: u32,
    seed: u64,
}

impl Backoff {
    /// A fresh backoff; `seed` spreads the delays of different loops.
    pub fn new(seed: u64) -> Self {
        Self { failures: 0, seed }
    }

    /// Record a failure; the delay to wait before the next try.
    pub fn failed(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        delay(self.failures, self.seed)
    }

    /// Record a success; returns how many failures it ends.
    pub fn succeeded(&mut self) -> u32 {
        std::mem::take(&mut self.failures)
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// The delay after the `n`th consecutive failure (n ≥ 1).
pub fn delay(n: u32, seed: u64) -> Duration {
    let base = FIRST
        .saturating_mul(1 << (n.saturating_sub(1)).min(16))
        .min(MAX);
    // 0..=25 % of the base, from a cheap mix of n and the seed.
    let mix = (u64::from(n) ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 57;
    let spread = base.mul_f64(mix as f64 / 127.0 / 4.0);
    (base + spread).min(MAX + MAX / 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_resets() {
        let mut b = Backoff::new(7);
        let delays: Vec<Duration> = (0..12).map(|_| b.failed()).collect();
        for (i, d) in delays.iter().enumerate() {
            let base = FIRST.saturating_mul(1 << i).min(MAX);
            assert!(
                *d >= base && *d <= base + base / 4,
                "{i}: {d:?} vs {base:?}"
            );
        }
        assert!(delays.windows(2).take(5).all(|w| w[1] > w[0]));
        assert!(delays.last().unwrap() <= &(MAX + MAX / 4));
        assert_eq!(b.failures(), 12);
        assert_eq!(b.succeeded(), 12);
        assert_eq!(b.failures(), 0);
        assert!(b.failed() < Duration::from_secs(1));
        assert!(delay(u32::MAX, 0) <= MAX + MAX / 4);
    }
}
