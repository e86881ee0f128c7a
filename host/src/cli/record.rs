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

/// What a change concerns, where it names it.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct About<'a> {
    /// The adapter.
    pub adapter: Option<&'a str>,
    /// The sender.
    pub sender: Option<&'a str>,
    /// The chat.
    pub chat: Option<&'a str>,
}

/// Records that this command changed something (`what`, in a few words).
/// A failure to record is said on stderr; the change stands.
pub(super) fn change(db: &Db, config: &AuditConfig, kind: Kind, what: &str) {
    change_about(db, config, kind, what, About::default());
}

/// [`change`], naming what it concerns, so that a search by adapter or
/// sender finds it.
pub(super) fn change_about(
    db: &Db,
    config: &AuditConfig,
    kind: Kind,
    what: &str,
    about: About<'_>,
) {
    let command = command_line();
    let mut entry = Entry::new(kind, format!("{what}: {command}"))
        .detail(json!({"change": what, "command": command}));
    if let Some(a) = about.adapter {
        entry = entry.adapter(a);
    }
    if let Some(s) = about.sender {
        entry = entry.sender(s, None);
    }
    if let Some(c) = about.chat {
        entry = entry.chat(c);
    }
    let store = AuditStore::new(db.clone(), config, Some("terminal".into()));
    if let Err(e) = store.append(&[entry]) {
        eprintln!("airlock: done, but the audit trail could not record it: {e}");
    }
}
