//! Alerts about one component: a capability it was refused (egress, a
//! websocket) or, raised by the runtime, a crash loop.
//!
//! The handle is bound to the component when its instances are specified, so
//! whoever raises needs only the kind and the text, and the capabilities
//! still know nothing of who hears it (`crate::alert` is a leaf). Whoever
//! raises bounds it: a refusal is raised only while the component's warning
//! budget still logs refusals, so a guest looping on a refused request
//! cannot flood the channel; the dispatcher folds the rest.

use crate::alert::{Alert, Alerts, Kind};

/// An [`Alerts`] handle bound to one component. Cheap to clone, never blocks.
#[derive(Clone, Debug)]
pub(crate) struct ComponentAlerts {
    alerts: Alerts,
    /// The adapter whose owners hear it; `None` (a filter): every adapter's.
    adapter: Option<String>,
}

impl ComponentAlerts {
    /// Alerts through `alerts` about adapter `adapter`, or with `None` (a
    /// filter) about every adapter.
    pub(crate) fn new(alerts: Alerts, adapter: Option<String>) -> Self {
        Self { alerts, adapter }
    }

    /// Alerts that are only logged (tests, tools, a policy built on its own).
    pub(crate) fn log_only() -> Self {
        Self::new(Alerts::log_only(), None)
    }

    /// Raises `kind` with `text` (one line, what was refused and why; never a
    /// secret or a request body).
    pub(crate) fn raise(&self, kind: Kind, text: impl Into<String>) {
        self.alerts.raise(Alert {
            kind,
            adapter: self.adapter.clone(),
            text: crate::text::one_line(&text.into(), MAX_TEXT),
        });
    }
}

/// Longest alert text raised here, in characters.
const MAX_TEXT: usize = 400;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_names_its_adapter_and_is_one_line() {
        let (alerts, mut rx) = Alerts::channel();
        ComponentAlerts::new(alerts.clone(), Some("telegram".into()))
            .raise(Kind::CapabilityDenied, "refused\nforged line");
        let a = rx.try_recv().unwrap();
        assert_eq!(a.kind, Kind::CapabilityDenied);
        assert_eq!(a.adapter.as_deref(), Some("telegram"));
        assert!(!a.text.contains('\n'), "{}", a.text);
        ComponentAlerts::new(alerts, None).raise(Kind::Quarantined, "x".repeat(1000));
        let a = rx.try_recv().unwrap();
        assert_eq!(a.adapter, None);
        assert!(a.text.chars().count() <= MAX_TEXT + 1, "{}", a.text.len());
    }
}
