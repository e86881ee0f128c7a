//! Guest logging: the `airlock:channel/log` import and guest stdout/stderr.
//!
//! stdout of the airlock process is the MCP transport, so no guest byte may
//! ever reach it. Guest output of both kinds goes to the host's log (stderr)
//! through `tracing`, tagged with the component, one line at a time, and
//! bounded: past [`OUTPUT_BUDGET`] bytes per instance the rest is discarded
//! with a single notice, so a spamming component cannot flood the terminal or
//! slow the host.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use crate::bindings::log::{self, Level};

/// Bytes of guest output (log calls, stdout and stderr together) kept per instance.
pub const OUTPUT_BUDGET: usize = 256 * 1024;
/// Longest single log line; longer ones are cut.
pub const MAX_LINE: usize = 4096;
/// What every line costs on top of its bytes, so empty lines are not free.
pub const LINE_OVERHEAD: usize = 32;

/// Where a line came from.
#[derive(Clone, Copy, Debug)]
pub enum Source {
    /// The `log` import.
    Log(Level),
    /// wasi:cli/stdout.
    Stdout,
    /// wasi:cli/stderr.
    Stderr,
}

/// What became of one line of guest output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admitted {
    /// Written to the log.
    Logged,
    /// Over the budget: dropped, and the one notice was logged instead.
    Notice,
    /// Over the budget: dropped silently.
    Dropped,
}

/// The bounded sink shared by one instance's output paths.
#[derive(Clone, Debug)]
pub struct GuestLog {
    component: Arc<str>,
    used: Arc<AtomicUsize>,
}

impl GuestLog {
    /// A fresh sink for one instance of `component`.
    pub fn new(component: Arc<str>) -> Self {
        Self {
            component,
            used: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Emit one line, if the budget allows; says what happened to it.
    pub fn line(&self, source: Source, text: &str) -> Admitted {
        let cost = text.len() + LINE_OVERHEAD;
        let before = self.used.fetch_add(cost, Ordering::Relaxed);
        if before + cost > OUTPUT_BUDGET {
            // Exactly one call crosses the budget; it says so once.
            if before <= OUTPUT_BUDGET {
                tracing::warn!(component = %self.component, "component output exceeded {OUTPUT_BUDGET} bytes; further output from this instance is discarded");
                return Admitted::Notice;
            }
            return Admitted::Dropped;
        }
        let text = clean(text);
        let c = &*self.component;
        match source {
            Source::Log(Level::Trace) => tracing::trace!(component = c, "{text}"),
            Source::Log(Level::Debug) => tracing::debug!(component = c, "{text}"),
            Source::Log(Level::Info) => tracing::info!(component = c, "{text}"),
            Source::Log(Level::Warn) => tracing::warn!(component = c, "{text}"),
            Source::Log(Level::Error) => tracing::error!(component = c, "{text}"),
            Source::Stdout => tracing::info!(component = c, stream = "stdout", "{text}"),
            Source::Stderr => tracing::info!(component = c, stream = "stderr", "{text}"),
        }
        Admitted::Logged
    }

    /// A wasi:cli output stream feeding this sink.
    pub fn stream(&self, stderr: bool) -> GuestOutput {
        GuestOutput {
            log: self.clone(),
            stderr,
        }
    }
}

/// Cut at [`MAX_LINE`] (on a char boundary) and drop control characters, so a
/// guest cannot forge log lines or move the terminal cursor.
fn clean(text: &str) -> String {
    let mut end = text.len().min(MAX_LINE);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end]
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl log::Host for GuestLog {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.line(Source::Log(level), &message);
        Ok(())
    }
}

/// A guest's stdout or stderr.
#[derive(Clone, Debug)]
pub struct GuestOutput {
    log: GuestLog,
    stderr: bool,
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            out: self.clone(),
            pending: Vec::new(),
        })
    }
}

/// Splits writes into lines; never blocks the guest.
struct LineWriter {
    out: GuestOutput,
    pending: Vec<u8>,
}

impl LineWriter {
    fn emit(&mut self, line: &[u8]) {
        let source = if self.out.stderr {
            Source::Stderr
        } else {
            Source::Stdout
        };
        self.out.log.line(source, &String::from_utf8_lossy(line));
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        // Past the budget (and its notice), drop output without buffering it.
        if this.out.log.used.load(Ordering::Relaxed) > OUTPUT_BUDGET {
            this.pending.clear();
            return Poll::Ready(Ok(buf.len()));
        }
        this.pending.extend_from_slice(buf);
        while let Some(line) = crate::text::take_line(&mut this.pending) {
            this.emit(&line[..line.len() - 1]);
        }
        if this.pending.len() >= MAX_LINE {
            let line = std::mem::take(&mut this.pending);
            this.emit(&line);
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_cuts_and_strips_controls() {
        assert_eq!(clean("a\u{1b}[2Jb\rc"), "a [2Jb c");
        let long = "é".repeat(MAX_LINE);
        assert!(clean(&long).len() <= MAX_LINE);
    }

    #[test]
    fn empty_lines_are_not_free() {
        let log = GuestLog::new("t".into());
        let logged = (0..OUTPUT_BUDGET)
            .take_while(|_| log.line(Source::Stdout, "") == Admitted::Logged)
            .count();
        assert_eq!(logged, OUTPUT_BUDGET / LINE_OVERHEAD);
    }

    #[test]
    fn budget_ends_with_one_notice_even_on_an_exact_boundary() {
        let log = GuestLog::new("t".into());
        let chunk = "x".repeat(1024 - LINE_OVERHEAD);
        let outcomes: Vec<Admitted> = (0..OUTPUT_BUDGET / 1024 + 3)
            .map(|_| log.line(Source::Stdout, &chunk))
            .collect();
        let n = OUTPUT_BUDGET / 1024;
        assert!(outcomes[..n].iter().all(|a| *a == Admitted::Logged));
        assert_eq!(
            outcomes[n..],
            [Admitted::Notice, Admitted::Dropped, Admitted::Dropped]
        );
        // Other paths of the same instance share the budget.
        assert_eq!(
            log.line(Source::Log(Level::Error), "late"),
            Admitted::Dropped
        );
    }
}
