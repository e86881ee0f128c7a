//! `airlock:channel/clock`: wall time and host-owned timers.
//!
//! Guests never sleep: a timer is a tokio task that posts
//! [`HostEvent::Timer`] back to the adapter's actor, which then calls the
//! `on-timer` export. Timers are bounded in number and delay, and die with the
//! instance that set them.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use crate::bindings::clock;
use crate::host_event::HostEvent;
use crate::warn_budget::WarnBudget;

/// Most timers one instance may have pending.
pub const MAX_TIMERS: usize = 64;
/// Longest timer delay; longer ones are clamped.
pub const MAX_DELAY: Duration = Duration::from_secs(24 * 60 * 60);
/// Longest timer name; longer names are refused.
pub const MAX_NAME: usize = 128;
/// Shortest timer delay; shorter ones are raised to it, so a timer that
/// re-arms itself cannot keep the adapter busy.
pub const MIN_DELAY: Duration = Duration::from_millis(50);

/// Why a `set-timer` call was ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TimerRefused {
    /// The name is empty or too long.
    #[error("timer name must be 1..={MAX_NAME} bytes; the timer was ignored")]
    Name,
    /// Too many timers are pending.
    #[error("more than {MAX_TIMERS} timers pending; cancel one first. The timer was ignored")]
    TooMany,
}

/// One instance's clock capability: its pending timers, and where they post.
#[derive(Debug)]
pub struct TimerCtx {
    pending: HashMap<String, JoinHandle<()>>,
    events: Option<UnboundedSender<HostEvent>>,
    generation: u64,
    warnings: WarnBudget,
}

impl TimerCtx {
    /// Timers that post to `events` (none: timers are accepted and never fire,
    /// as for filters, which have no `on-timer`); the warnings they cause are
    /// counted against `warnings`.
    pub(crate) fn new(
        events: Option<UnboundedSender<HostEvent>>,
        generation: u64,
        warnings: WarnBudget,
    ) -> Self {
        Self {
            pending: HashMap::new(),
            events,
            generation,
            warnings,
        }
    }

    /// Arm (or re-arm) timer `name`; says why when it is ignored.
    fn set(&mut self, name: String, after: Duration) -> Result<(), TimerRefused> {
        self.pending.retain(|_, h| !h.is_finished());
        if name.is_empty() || name.len() > MAX_NAME {
            return Err(TimerRefused::Name);
        }
        if !self.pending.contains_key(&name) && self.pending.len() >= MAX_TIMERS {
            return Err(TimerRefused::TooMany);
        }
        let Some(events) = self.events.clone() else {
            return Ok(());
        };
        let after = after.clamp(MIN_DELAY, MAX_DELAY);
        let fired = name.clone();
        let generation = self.generation;
        let task = tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = events.send(HostEvent::Timer {
                generation,
                name: fired,
            });
        });
        if let Some(old) = self.pending.insert(name, task) {
            old.abort();
        }
        Ok(())
    }

    fn cancel(&mut self, name: &str) {
        if let Some(h) = self.pending.remove(name) {
            h.abort();
        }
    }
}

impl Drop for TimerCtx {
    fn drop(&mut self) {
        for h in self.pending.values() {
            h.abort();
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl clock::Host for TimerCtx {
    fn now_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(now_ms())
    }

    fn set_timer(&mut self, name: String, after_ms: u64) -> wasmtime::Result<()> {
        // A guest may call this in a loop: its warnings go through its budget.
        if let Err(why) = self.set(name, Duration::from_millis(after_ms))
            && self.warnings.admit()
        {
            tracing::warn!(component = %self.warnings.component(), "set-timer: {why}");
        }
        Ok(())
    }

    fn cancel_timer(&mut self, name: String) -> wasmtime::Result<()> {
        self.cancel(&name);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn fires_replaces_and_cancels() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut t = TimerCtx::new(Some(tx), 7, WarnBudget::new("test".into()));
        t.set("a".into(), Duration::from_secs(5)).unwrap();
        t.set("a".into(), Duration::from_secs(1)).unwrap();
        t.set("b".into(), Duration::from_secs(2)).unwrap();
        t.cancel("b");
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(
            rx.recv().await,
            Some(HostEvent::Timer {
                generation: 7,
                name: "a".into()
            })
        );
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn bounded() {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let mut t = TimerCtx::new(Some(tx), 0, WarnBudget::new("test".into()));
        for i in 0..MAX_TIMERS {
            t.set(format!("t{i}"), Duration::from_secs(60)).unwrap();
        }
        assert_eq!(
            t.set("one more".into(), Duration::from_secs(60)),
            Err(TimerRefused::TooMany)
        );
        // Re-arming a pending timer is not one more.
        t.set("t0".into(), Duration::from_secs(1)).unwrap();
        assert_eq!(t.pending.len(), MAX_TIMERS);
        t.cancel("t1");
        for name in [String::new(), "x".repeat(MAX_NAME + 1)] {
            assert_eq!(t.set(name, Duration::from_secs(1)), Err(TimerRefused::Name));
        }
        assert_eq!(t.pending.len(), MAX_TIMERS - 1);
    }
}
