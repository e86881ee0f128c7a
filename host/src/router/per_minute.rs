//! Per-minute limits: how many messages one allowed sender may send, and
//! how many stranger messages one adapter may see before an alert.
//!
//! A token bucket per key, holding a minute's worth and refilling evenly.
//! [`Take::FirstOver`] marks the first message past the limit, so that the
//! sender is told once, not once per dropped message; the mark clears when
//! the bucket has room again.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

/// Keys kept before idle ones are forgotten.
const KEEP_KEYS: usize = 4096;

/// One message against a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Take {
    /// Within the limit.
    Ok,
    /// The first past it.
    FirstOver,
    /// Past it, said already.
    Over,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    over: bool,
}

/// A per-minute limit for each key.
#[derive(Debug)]
pub struct PerMinute<K> {
    per_minute: u32,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Eq + Hash + Clone> PerMinute<K> {
    /// At most `per_minute` a minute per key.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1),
            buckets: Mutex::default(),
        }
    }

    /// The limit.
    pub fn limit(&self) -> u32 {
        self.per_minute
    }

    /// Counts one for `key` at `now`.
    pub fn take(&self, key: &K, now: Instant) -> Take {
        let full = f64::from(self.per_minute);
        let rate = full / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= KEEP_KEYS && !buckets.contains_key(key) {
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < full
            });
        }
        let b = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: full,
            at: now,
            over: false,
        });
        b.tokens = (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate).min(full);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            b.over = false;
            Take::Ok
        } else if b.over {
            Take::Over
        } else {
            b.over = true;
            Take::FirstOver
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_minutes_worth_passes_then_one_notice_then_it_refills() {
        let t0 = Instant::now();
        let limit = PerMinute::new(30);
        let a = "a".to_string();
        let takes: Vec<Take> = (0..33).map(|_| limit.take(&a, t0)).collect();
        assert!(takes[..30].iter().all(|t| *t == Take::Ok));
        assert_eq!(&takes[30..], [Take::FirstOver, Take::Over, Take::Over]);
        // Others are not held back by a.
        assert_eq!(limit.take(&"b".to_string(), t0), Take::Ok);
        // Two seconds refill one message (30 a minute), and the notice may come again later.
        let later = t0 + Duration::from_secs(2);
        assert_eq!(limit.take(&a, later), Take::Ok);
        assert_eq!(limit.take(&a, later), Take::FirstOver);
        // A quiet minute refills all of it, no more.
        let much_later = t0 + Duration::from_secs(600);
        let passed = (0..40)
            .filter(|_| limit.take(&a, much_later) == Take::Ok)
            .count();
        assert_eq!(passed, 30);
    }

    #[test]
    fn idle_keys_are_forgotten_past_the_bound() {
        let t0 = Instant::now();
        let limit = PerMinute::new(2);
        for i in 0..KEEP_KEYS {
            limit.take(&i, t0);
        }
        limit.take(&usize::MAX, t0 + Duration::from_secs(120));
        assert!(limit.buckets.lock().unwrap().len() <= 2);
    }
}
