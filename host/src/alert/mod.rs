//! Alerts: what the operator and the adapters' owners must hear about at
//! once (guessing at pairing codes, floods, a component refused what it
//! asked for or crashing in a loop, lockdown, a webhook's senders failing
//! their signature check).
//!
//! Anything may raise one through an [`Alerts`] handle: it is logged on
//! stderr at warn level and handed to the dispatcher (`router::alerting`),
//! which folds repeats ([`fold`]) and sends each owner of the adapter a
//! direct message. This module is a leaf, so the capabilities and the
//! runtime can raise alerts without knowing who hears them.

pub mod fold;

use std::fmt;

use tokio::sync::mpsc;

/// What happened. The names are stable: `airlock access status --json`
/// and the `alerts` table carry them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Wrong pairing codes past the limit.
    PairingGuess,
    /// Messages from strangers past the per-minute threshold.
    StrangerFlood,
    /// An allowed sender past the per-minute limit.
    RateLimited,
    /// A component was refused a destination, a connection or an import.
    CapabilityDenied,
    /// A component crashed in a loop and was set aside.
    Quarantined,
    /// `airlock access lockdown`.
    Lockdown,
    /// `airlock access unlock`.
    Unlock,
    /// A component crashed once and is restarted. Recorded in the audit
    /// trail, never sent to owners: one crash is routine, a loop of them
    /// quarantines the component (and that is sent).
    Crashed,
    /// Requests to a signed webhook route failing their signature check,
    /// past the per-minute threshold.
    BadSignature,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 9] = [
        Kind::PairingGuess,
        Kind::StrangerFlood,
        Kind::RateLimited,
        Kind::CapabilityDenied,
        Kind::Quarantined,
        Kind::Lockdown,
        Kind::Unlock,
        Kind::Crashed,
        Kind::BadSignature,
    ];

    /// The stable name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::PairingGuess => "pairing_guess",
            Kind::StrangerFlood => "stranger_flood",
            Kind::RateLimited => "rate_limited",
            Kind::CapabilityDenied => "capability_denied",
            Kind::Quarantined => "quarantined",
            Kind::Lockdown => "lockdown",
            Kind::Unlock => "unlock",
            Kind::Crashed => "crashed",
            Kind::BadSignature => "bad_signature",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// What happened.
    pub kind: Kind,
    /// The adapter it concerns; `None`: every adapter (lockdown, a filter).
    pub adapter: Option<String>,
    /// One line saying what happened, already safe to print: foreign text
    /// in it is cut to [`QUOTE_CHARS`] and sanitised by whoever raised it
    /// ([`quote`]).
    pub text: String,
}

/// Characters of a stranger's text an alert may quote, at most.
pub const QUOTE_CHARS: usize = 40;

/// A stranger's text as an alert may quote it: the first [`QUOTE_CHARS`]
/// characters, on one line, hidden characters and controls removed.
pub fn quote(text: &str) -> String {
    format!("\"{}\"", crate::text::one_line(text, QUOTE_CHARS))
}

/// Raises alerts; cheap to clone, never blocks.
#[derive(Clone, Debug)]
pub struct Alerts {
    tx: Option<mpsc::UnboundedSender<Alert>>,
}

impl Alerts {
    /// A handle whose alerts reach `rx`.
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<Alert>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx: Some(tx) }, rx)
    }

    /// A handle that only logs (tools, tests, a process with no adapters).
    pub fn log_only() -> Self {
        Self { tx: None }
    }

    /// Raises `alert`: logged at once unless the dispatcher folds it, and
    /// sent on to the owners.
    pub fn raise(&self, alert: Alert) {
        match &self.tx {
            Some(tx) => {
                if let Err(e) = tx.send(alert) {
                    // The dispatcher is gone (shutting down): stderr still hears it.
                    log(&e.0, 1);
                }
            }
            None => log(&alert, 1),
        }
    }
}

/// Logs `alert` (folded from `count` occurrences) on stderr at warn level.
pub fn log(alert: &Alert, count: u64) {
    let adapter = alert.adapter.as_deref().unwrap_or("all adapters");
    if count > 1 {
        tracing::warn!(
            alert = %alert.kind,
            adapter,
            count,
            "ALERT: {} ({count} times)",
            alert.text
        );
    } else {
        tracing::warn!(alert = %alert.kind, adapter, "ALERT: {}", alert.text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_quotes_are_short_and_clean() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.name()), Some(k));
        }
        assert_eq!(Kind::parse("other"), None);
        assert_eq!(quote("hi"), "\"hi\"");
        let long = quote(&"a".repeat(100));
        assert_eq!(long, format!("\"{}…\"", "a".repeat(40)));
        let hostile = quote("line\nbreak\u{202e}evil\x1b[2J");
        assert!(
            !hostile.contains('\n') && !hostile.contains('\u{202e}') && !hostile.contains('\x1b'),
            "{hostile}"
        );
    }
}
