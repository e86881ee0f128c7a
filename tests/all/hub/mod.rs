//! Issue 14's hub end to end: two and three `airlock serve` processes on
//! one state directory, each a named session, against the Telegram and
//! Discord fakes. Chats are bound by typing `/session NAME` in them, as a
//! user would; each test checks what every session received (and that the
//! others received nothing) and what the platform was sent.

mod discord;
mod telegram;

use std::time::Duration;

use serde_json::Value;

use crate::session::*;
use crate::support::*;

/// How long a test waits to be sure a session receives nothing more.
pub const QUIET: Duration = Duration::from_millis(400);

/// `airlock serve --session NAME` on `home`, logging at `log`.
pub fn serve_as(home: &TempHome, name: &str, log: &str) -> tokio::process::Command {
    let mut cmd = crate::telegram::serve_logging(home, log);
    cmd.args(["--session", name]);
    cmd
}

/// Session `name` on `home`, as Claude Code holds it, after its handshake.
pub async fn session_as(home: &TempHome, name: &str, log: &str) -> Session {
    Session::start_command(
        serve_as(home, name, log),
        rmcp::service::ClientLifecycleMode::Initialize,
    )
    .await
}

/// Whether some process holds session `name`'s lock on `home` (the hub's
/// own test of liveness: the kernel drops the lock when the process ends).
pub fn is_live(home: &TempHome, name: &str) -> bool {
    let path = home.path().join("sessions").join(format!("{name}.lock"));
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    // Taken and dropped at once: only a probe.
    file.try_lock().is_err()
}

/// Closes `session` (named `name`) and waits until its process is gone.
pub async fn close_and_wait(home: &TempHome, name: &str, session: Session) {
    session.close().await;
    crate::telegram::until(&format!("session {name} to exit"), || !is_live(home, name)).await;
}

/// The session an event was routed to (`meta.session`).
pub fn session_of(event: &Value) -> &str {
    event["meta"]["session"]
        .as_str()
        .unwrap_or_else(|| panic!("no meta.session: {event}"))
}

/// Fails if `session` (called `name`) gets any event within [`QUIET`].
pub async fn nothing_for(session: &mut Session, name: &str) {
    if let Some(e) = session.event_within(QUIET).await {
        panic!("session {name} got an event that was not its own: {e}");
    }
}

/// The next `n` events of `session`; fails naming `name` if they do not
/// come within [`SOON`].
pub async fn events(session: &mut Session, name: &str, n: usize) -> Vec<Value> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        match session.event_within(SOON).await {
            Some(e) => got.push(e),
            None => panic!(
                "session {name} got {} of {n} events: {got:?}\nstderr:\n{}",
                got.len(),
                session.log.text()
            ),
        }
    }
    got
}

/// The `content` of each event.
pub fn contents(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["content"].as_str().unwrap_or_default())
        .collect()
}
