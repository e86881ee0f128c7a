//! Work that waits until the session has its answer.
//!
//! Some of what a tool call causes need not happen before the session reads
//! the answer: the call's audit row, dropping the filter instance that
//! judged the reply and preparing the next one. Done inside the call, it
//! delays the answer; handed to another thread, it competes with the call
//! for the database and, on a small machine, for the processor. Here it
//! waits for the next line written to the session (the stdout writer counts
//! them, [`Afterwards::written`]), then runs on the runtime: by then the
//! answer is in the client's pipe.
//!
//! The wait is bounded by [`LATEST`], so the work is never lost when no line
//! follows (a client that hung up, a call whose answer was cancelled). Lines
//! are counted, not matched to calls: with calls overlapping, one call's
//! work may run after another's answer, which costs only time.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

/// How long work waits for a line at most.
pub const LATEST: Duration = Duration::from_millis(50);

/// Counts the lines written to the session, and holds work back until the
/// next one.
#[derive(Clone, Debug)]
pub struct Afterwards {
    lines: watch::Sender<u64>,
}

impl Default for Afterwards {
    fn default() -> Self {
        Self {
            lines: watch::Sender::new(0),
        }
    }
}

impl Afterwards {
    /// A line went out to the session (called by its writer, from any thread).
    pub fn written(&self) {
        self.lines.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Runs `work` on the runtime once the next line has been written, or
    /// after [`LATEST`].
    pub fn after_next_line(&self, work: impl Future<Output = ()> + Send + 'static) {
        let mut lines = self.lines.subscribe();
        let seen = *lines.borrow_and_update();
        tokio::spawn(async move {
            // Err: the writer's counter is gone (the process is stopping);
            // Elapsed: no line came. Either way the work is done now.
            let _ = tokio::time::timeout(LATEST, lines.wait_for(|n| *n != seen)).await;
            work.await;
        });
    }

    /// Lines written so far.
    #[cfg(test)]
    pub(crate) fn count(&self) -> u64 {
        *self.lines.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn flag() -> (Arc<AtomicBool>, impl Future<Output = ()> + Send + 'static) {
        let done = Arc::new(AtomicBool::new(false));
        let set = done.clone();
        (done, async move { set.store(true, Ordering::SeqCst) })
    }

    #[tokio::test(start_paused = true)]
    async fn work_waits_for_the_next_line() {
        let after = Afterwards::default();
        // A line before the work was handed over does not count.
        after.written();
        let (done, work) = flag();
        after.after_next_line(work);
        tokio::time::sleep(LATEST / 2).await;
        assert!(!done.load(Ordering::SeqCst), "ran before any line");
        after.written();
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        assert!(done.load(Ordering::SeqCst), "did not run after the line");
    }

    #[tokio::test(start_paused = true)]
    async fn work_runs_anyway_when_no_line_comes() {
        let after = Afterwards::default();
        let (done, work) = flag();
        after.after_next_line(work);
        tokio::time::sleep(LATEST - Duration::from_millis(1)).await;
        assert!(!done.load(Ordering::SeqCst));
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert!(done.load(Ordering::SeqCst), "work was lost without a line");
    }
}
