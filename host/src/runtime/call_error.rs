//! Why a call into a component did not return a value.
//!
//! Adapters (through their actor) and filters (through their runner) fail in
//! the same few ways, and the router, the poll loop and the tests match on
//! them; so the error is its own small module that both runners share and
//! that callers can name without reaching into either.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::Trap;

use crate::bindings::types::AdapterError;
use crate::manifest::EffectiveLimits;
use crate::text::one_line;

/// Why a call did not return a value.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The adapter ran and reported an error (the instance is fine).
    #[error("{component}: {op} failed: {error}")]
    Adapter {
        /// Component.
        component: Arc<str>,
        /// The export called.
        op: &'static str,
        /// What the adapter said.
        error: AdapterErrorText,
    },
    /// The guest used up its CPU budget and was interrupted.
    #[error(
        "{component}: {op} used more than its CPU budget of {budget:?} and was stopped; the instance was discarded"
    )]
    CpuBudget {
        /// Component.
        component: Arc<str>,
        /// The export called.
        op: &'static str,
        /// The budget.
        budget: Duration,
    },
    /// The call overran its wall-clock timeout.
    #[error(
        "{component}: {op} did not finish within {wall:?} and was stopped; the instance was discarded"
    )]
    Timeout {
        /// Component.
        component: Arc<str>,
        /// The export called.
        op: &'static str,
        /// The timeout.
        wall: Duration,
    },
    /// The guest trapped (panic, out of memory, invalid operation).
    #[error("{component}: {op} crashed: {reason}; the instance was discarded")]
    Trap {
        /// Component.
        component: Arc<str>,
        /// The export called.
        op: &'static str,
        /// The trap.
        reason: String,
    },
    /// The adapter crashed too often and is stopped.
    #[error("{component} is quarantined: {reason}")]
    Quarantined {
        /// Component.
        component: Arc<str>,
        /// Why.
        reason: String,
    },
    /// The actor is gone (the host is shutting down).
    #[error("{component} is stopped")]
    Stopped {
        /// Component.
        component: Arc<str>,
    },
}

/// An adapter error as text, so [`CallError`] stays `Clone` and printable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterErrorText(pub AdapterError);

impl std::fmt::Display for AdapterErrorText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Guest text: one line, bounded, before it reaches a log or the session.
        let clean = |m: &str| one_line(m, 1000);
        match &self.0 {
            AdapterError::Unsupported(m) => write!(f, "not supported: {}", clean(m)),
            AdapterError::InvalidInput(m) => write!(f, "invalid input: {}", clean(m)),
            AdapterError::RateLimited(ms) => write!(f, "rate limited; retry after {ms} ms"),
            AdapterError::Platform(m) => write!(f, "platform error: {}", clean(m)),
            AdapterError::Fatal(m) => write!(f, "fatal: {}", clean(m)),
        }
    }
}

/// Which of its limits a failed call ran into, as its store saw them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Spent {
    /// The CPU budget ran out.
    pub cpu: bool,
    /// A memory growth was refused.
    pub memory: bool,
}

/// Turn a failed call into the error that says why: CPU budget, wall-clock
/// deadline (the epoch callback interrupts past it), or a trap; a trap that
/// followed a refused memory growth says which limit to raise.
pub(crate) fn classify(
    component: &Arc<str>,
    op: &'static str,
    e: wasmtime::Error,
    spent: Spent,
    limits: &EffectiveLimits,
) -> CallError {
    let component = component.clone();
    if spent.cpu {
        return CallError::CpuBudget {
            component,
            op,
            budget: limits.cpu,
        };
    }
    if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        return CallError::Timeout {
            component,
            op,
            wall: limits.wall,
        };
    }
    let mut reason = one_line(&format!("{e:#}"), 2000);
    if spent.memory {
        reason.push_str(&format!(
            " (it needed more linear memory than its limit of {} MiB; if it may use more, \
             raise `memory_mib` under [limits] in its manifest, and in its grant in \
             airlock.toml if that sets one)",
            limits.memory_bytes >> 20
        ));
    }
    CallError::Trap {
        component,
        op,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_named_by_the_limit_it_ran_into() {
        let limits = EffectiveLimits {
            memory_bytes: 24 << 20,
            cpu: Duration::from_millis(50),
            wall: Duration::from_secs(3),
        };
        let name: Arc<str> = "py".into();
        let spent = |cpu, memory| Spent { cpu, memory };
        let boom = || wasmtime::Error::msg("boom");
        let interrupt = || wasmtime::Error::from(Trap::Interrupt);
        let cases: [(wasmtime::Error, Spent, &str); 5] = [
            (
                boom(),
                spent(true, true),
                "more than its CPU budget of 50ms",
            ),
            (interrupt(), spent(false, false), "did not finish within 3s"),
            (
                boom(),
                spent(false, true),
                "boom (it needed more linear memory than its limit of 24 MiB; if it may use more, raise `memory_mib`",
            ),
            (
                boom(),
                spent(false, false),
                "py: send crashed: boom; the instance was discarded",
            ),
            (interrupt(), spent(true, false), "CPU budget"),
        ];
        for (error, spent, says) in cases {
            let text = classify(&name, "send", error, spent, &limits).to_string();
            assert!(text.contains(says), "{spent:?}: {text}");
        }
    }
}
