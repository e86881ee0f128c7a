//! Host log lines a guest can cause, bounded.
//!
//! Some host warnings exist only because a component called an import badly
//! (a timer with an empty name, a refused websocket, an egress request to a
//! destination it was not granted) or answered a call with an error. A
//! component can do that in a loop, thousands of times a second, so each such
//! line goes through a budget: the first [`MAX_LOGGED`] are logged, the rest
//! are only counted, and a single summary line says how many were left out
//! (at most once per [`SUMMARY_EVERY`], and when the instance ends).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Guest-caused warnings logged per instance before they are only counted.
pub(crate) const MAX_LOGGED: u32 = 50;
/// Least time between two summaries of suppressed warnings.
pub(crate) const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// What to do with one more guest-caused line, given how many came before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Log it.
    Log,
    /// The first one over the limit: log that further lines are only counted.
    Fold,
    /// Count it only.
    Quiet,
}

/// Count one more line on `counter` and say what to do with it, for a limit
/// of `limit` logged lines. The counter saturates, so it never wraps back to
/// logging.
pub(crate) fn admit(counter: &AtomicU32, limit: u32) -> Admit {
    let before = counter
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1))
        .unwrap_or(u32::MAX);
    match before {
        n if n < limit => Admit::Log,
        n if n == limit => Admit::Fold,
        _ => Admit::Quiet,
    }
}

/// The warning budget of one component instance. Clones share it; the summary
/// of what was left out is logged when the last clone goes.
#[derive(Clone, Debug)]
pub(crate) struct WarnBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    component: Arc<str>,
    seen: AtomicU32,
    /// Suppressed since the last summary.
    suppressed: AtomicU64,
    last_summary: Mutex<Instant>,
}

impl WarnBudget {
    /// A fresh budget for one instance of `component`.
    pub(crate) fn new(component: Arc<str>) -> Self {
        Self {
            inner: Arc::new(Inner {
                component,
                seen: AtomicU32::new(0),
                suppressed: AtomicU64::new(0),
                last_summary: Mutex::new(Instant::now()),
            }),
        }
    }

    /// The component whose instance this budget belongs to.
    pub(crate) fn component(&self) -> &str {
        &self.inner.component
    }

    /// Whether one more guest-caused line may be logged. When not, it is
    /// counted, and a summary is logged if the last one is old enough.
    pub(crate) fn admit(&self) -> bool {
        let inner = &*self.inner;
        match admit(&inner.seen, MAX_LOGGED) {
            Admit::Log => true,
            Admit::Fold => {
                inner.suppressed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    component = %inner.component,
                    "this instance caused {MAX_LOGGED} host warnings; further ones are counted, and summarised at most once a minute"
                );
                false
            }
            Admit::Quiet => {
                inner.suppressed.fetch_add(1, Ordering::Relaxed);
                let due = {
                    let mut last = inner.last_summary.lock().unwrap_or_else(|e| e.into_inner());
                    if last.elapsed() >= SUMMARY_EVERY {
                        *last = Instant::now();
                        true
                    } else {
                        false
                    }
                };
                if due {
                    inner.summarise();
                }
                false
            }
        }
    }

    /// Warnings left out and not yet summarised.
    #[cfg(test)]
    pub(crate) fn suppressed(&self) -> u64 {
        self.inner.suppressed.load(Ordering::Relaxed)
    }
}

impl Inner {
    fn summarise(&self) {
        let n = self.suppressed.swap(0, Ordering::Relaxed);
        if n > 0 {
            tracing::warn!(component = %self.component, "{n} host warnings caused by this instance were not logged");
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.summarise();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admit_logs_then_folds_then_counts() {
        let cases: &[(u32, u32, Admit)] = &[
            (0, 3, Admit::Log),
            (2, 3, Admit::Log),
            (3, 3, Admit::Fold),
            (4, 3, Admit::Quiet),
            (0, 0, Admit::Fold),
            (u32::MAX, 3, Admit::Quiet),
        ];
        for &(start, limit, want) in cases {
            let c = AtomicU32::new(start);
            assert_eq!(admit(&c, limit), want, "start {start}, limit {limit}");
        }
        // Saturates instead of wrapping back to logging.
        let c = AtomicU32::new(u32::MAX);
        admit(&c, 3);
        assert_eq!(c.load(Ordering::Relaxed), u32::MAX);
    }

    #[test]
    fn budget_logs_the_first_lines_and_counts_the_rest() {
        let b = WarnBudget::new("c".into());
        let shared = b.clone();
        let logged = (0..10_000).filter(|_| b.admit()).count();
        assert_eq!(logged, MAX_LOGGED as usize);
        assert_eq!(shared.suppressed(), 10_000 - u64::from(MAX_LOGGED));
    }

    #[test]
    fn suppressed_warnings_are_summarised_once_the_last_summary_is_old() {
        let b = WarnBudget::new("c".into());
        for _ in 0..MAX_LOGGED + 10 {
            b.admit();
        }
        assert_eq!(b.suppressed(), 10, "no summary within the minute");
        *b.inner.last_summary.lock().unwrap() = Instant::now() - SUMMARY_EVERY;
        assert!(!b.admit());
        assert_eq!(b.suppressed(), 0, "summarised, counting afresh");
        assert!(!b.admit());
        assert_eq!(b.suppressed(), 1);
    }
}
