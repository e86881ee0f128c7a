//! Flood ceilings: how much one adapter can push toward the session.
//!
//! An adapter is untrusted code, and a platform can be flooded. Two
//! ceilings keep either from swamping the host or the session:
//!
//! | ceiling | default | what happens past it |
//! |---|---|---|
//! | events from one adapter call | [`MAX_BATCH`] | the rest of that batch is dropped, with an error naming the adapter |
//! | events per second from one adapter | [`DEFAULT_PER_SECOND`], `[delivery] max_per_second` | the source waits before its batch is stored |
//!
//! Waiting happens before the batch is stored, so the platform cursor does
//! not move while it waits: a poll loop simply polls later, and the platform
//! keeps what it has not handed over. No real platform comes near either
//! ceiling (a Telegram poll returns at most 100 updates).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Events taken from one adapter call, at most.
pub const MAX_BATCH: usize = 1000;
/// Events per second from one adapter, unless the operator says otherwise.
pub const DEFAULT_PER_SECOND: u32 = 1000;

/// A token bucket that may go into debt: a batch always passes, and the
/// debt is how long its source must wait first.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    /// Waiting now, said once until it recovers.
    throttled: bool,
}

impl Bucket {
    fn new(per_second: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(per_second),
            at: now,
            throttled: false,
        }
    }

    /// Takes `n` events at `now`; returns how long the source waits.
    fn take(&mut self, per_second: u32, n: usize, now: Instant) -> Duration {
        let rate = f64::from(per_second.max(1));
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        self.at = now;
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate)
        }
    }
}

/// The per-second ceiling of every adapter.
#[derive(Debug)]
pub(crate) struct Flood {
    per_second: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Flood {
    /// At most `per_second` events a second from each adapter.
    pub(crate) fn new(per_second: u32) -> Self {
        Self {
            per_second: per_second.max(1),
            buckets: Mutex::default(),
        }
    }

    /// Waits until `n` events of `adapter` may be stored.
    pub(crate) async fn admit(&self, adapter: &str, n: usize) {
        if n == 0 {
            return;
        }
        let wait = {
            let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let bucket = buckets
                .entry(adapter.to_owned())
                .or_insert_with(|| Bucket::new(self.per_second, now));
            let wait = bucket.take(self.per_second, n, now);
            if wait.is_zero() {
                bucket.throttled = false;
            } else if !bucket.throttled {
                bucket.throttled = true;
                tracing::warn!(
                    adapter,
                    "more than {} events a second; slowed to that ceiling ([delivery] \
                     max_per_second in airlock.toml), the platform keeps what waits",
                    self.per_second
                );
            }
            wait
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// Cuts `events` to [`MAX_BATCH`], saying so.
pub(crate) fn cap_batch<T>(adapter: &str, events: &mut Vec<T>) {
    if events.len() > MAX_BATCH {
        tracing::error!(
            adapter,
            "returned {} events from one call; at most {MAX_BATCH} are taken, the other {} are \
             dropped (a faulty or hostile adapter: check its version)",
            events.len(),
            events.len() - MAX_BATCH
        );
        events.truncate(MAX_BATCH);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_lets_a_second_pass_then_spreads_the_rest() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // (after, events, wait)
        let steps = [
            (ms(0), 60, ms(0)),
            (ms(0), 40, ms(0)),
            (ms(0), 50, ms(500)),
            (ms(500), 0, ms(0)),
            (ms(600), 10, ms(0)),
            (ms(600), 100, ms(1000)),
            // A long quiet time refills only up to one second's worth.
            (ms(10_000), 100, ms(0)),
            (ms(10_000), 1, ms(10)),
        ];
        let mut bucket = Bucket::new(100, t0);
        for (i, (after, n, wait)) in steps.into_iter().enumerate() {
            let got = bucket.take(100, n, t0 + after);
            assert!(
                got.abs_diff(wait) < ms(2),
                "step {i}: waited {got:?}, expected {wait:?}"
            );
        }
    }

    #[test]
    fn a_batch_is_cut_to_the_ceiling() {
        let mut small: Vec<u32> = (0..10).collect();
        cap_batch("a", &mut small);
        assert_eq!(small.len(), 10);
        let mut flood: Vec<u32> = (0..100_000).collect();
        cap_batch("a", &mut flood);
        assert_eq!(flood.len(), MAX_BATCH);
        assert_eq!(flood.last(), Some(&(MAX_BATCH as u32 - 1)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_flooding_adapter_waits_and_others_do_not() {
        let flood = Flood::new(100);
        let start = tokio::time::Instant::now();
        flood.admit("noisy", 100).await;
        flood.admit("noisy", 100).await;
        assert!(start.elapsed() >= Duration::from_millis(990));
        let quiet = tokio::time::Instant::now();
        flood.admit("quiet", 50).await;
        assert!(quiet.elapsed() < Duration::from_millis(5));
    }
}
