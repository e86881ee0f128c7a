//! How long the host waits after a failure before it tries again: a poll
//! loop after a failed request, a websocket after a failed connection, an
//! adapter's actor after its instance crashed.
//!
//! Exponential from a first delay to a longest one. For the loops
//! ([`Backoff::new`]: [`FIRST`] to [`MAX`], reset by a success) each delay is
//! spread by up to a quarter (derived from the failure count and a per-loop
//! seed, not a clock), so that several loops failing together do not retry in
//! lockstep. An actor restarting its one instance has nothing to fall into
//! step with, and takes the delays exactly ([`Backoff::exact`]).

use std::time::Duration;

/// The first delay of a loop.
pub const FIRST: Duration = Duration::from_millis(500);
/// The longest delay of a loop (before its spread).
pub const MAX: Duration = Duration::from_secs(30);

/// Failure count and the next delay.
#[derive(Clone, Debug)]
pub struct Backoff {
    failures: u32,
    seed: u64,
    first: Duration,
    max: Duration,
    /// Whether delays are spread by up to a quarter.
    spread: bool,
}

impl Backoff {
    /// A loop's backoff, [`FIRST`] to [`MAX`]; `seed` spreads the delays of
    /// different loops.
    pub fn new(seed: u64) -> Self {
        Self {
            failures: 0,
            seed,
            first: FIRST,
            max: MAX,
            spread: true,
        }
    }

    /// Delays that double from `first` up to `max`, with no spread.
    pub fn exact(first: Duration, max: Duration) -> Self {
        Self {
            failures: 0,
            seed: 0,
            first,
            max,
            spread: false,
        }
    }

    /// Record a failure; the delay to wait before the next try.
    pub fn failed(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.after(self.failures)
    }

    /// Record a success; returns how many failures it ends.
    pub fn succeeded(&mut self) -> u32 {
        std::mem::take(&mut self.failures)
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The delay after the `n`th failure (n ≥ 1), for a caller that counts
    /// failures its own way (the actor counts crashes within a window).
    pub fn after(&self, n: u32) -> Duration {
        let base = self
            .first
            .saturating_mul(1 << (n.saturating_sub(1)).min(16))
            .min(self.max);
        if !self.spread {
            return base;
        }
        // 0..=25 % of the base, from a cheap mix of n and the seed.
        let mix = (u64::from(n) ^ self.seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 57;
        let spread = base.mul_f64(mix as f64 / 127.0 / 4.0);
        (base + spread).min(self.max + self.max / 4)
    }
}

/// A loop's delay after the `n`th consecutive failure (n ≥ 1).
pub fn delay(n: u32, seed: u64) -> Duration {
    Backoff::new(seed).after(n)
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

    #[test]
    fn exact_doubles_without_spread() {
        let first = Duration::from_millis(100);
        let max = Duration::from_secs(10);
        let mut b = Backoff::exact(first, max);
        let delays: Vec<u64> = (0..10).map(|_| b.failed().as_millis() as u64).collect();
        assert_eq!(
            delays,
            [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]
        );
        assert_eq!(b.after(1), first);
        assert_eq!(b.after(u32::MAX), max);
    }
}
