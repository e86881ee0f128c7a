//! The audit rows the terminal's commands write: every change of access,
//! of rules and of approvals, with the command line that made it.

use serde_json::json;

use crate::audit::{AuditStore, Entry, Kind};
use crate::db::Db;
use crate::manifest::AuditConfig;

/// This process's command line, as a shell would read it back.
pub(super) fn command_line() -> String {
    std::env::args()
        .enumerate()
        .map(|(i, a)| {
            if i == 0 {
                "airlock".to_string()
            } else {
                crate::text::shell_quote(&crate::text::one_line(&a, 200))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Records that this command changed something (`what`, in a few words).
/// A failure to record is said on stderr; the change stands.
pub(super) fn change(db: &Db, config: &AuditConfig, kind: Kind, what: &str) {
    if !config.enabled {
        return;
    }
    let command = command_line();
    let entry = Entry::new(kind, format!("{what}: {command}"))
        .detail(json!({"change": what, "command": command}));
    let store = AuditStore::new(db.clone(), config, Some("terminal".into()));
    if let Err(e) = store.append(&[entry]) {
        eprintln!("airlock: done, but the audit trail could not record it: {e}");
    }
}
