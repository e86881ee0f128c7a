//! The alert dispatcher: folds what is raised ([`crate::alert::fold`]),
//! records each notice for `airlock access status`, logs it, and sends it
//! to every owner of the adapter it concerns, in their direct chat with the
//! bot. Alerts raised in the terminal (lockdown, unlock) are read from the
//! database, so a running airlock tells the owners at once.
//!
//! An owner hears alerts in the direct chat they last wrote from (or paired
//! in); one who never wrote to the bot has none yet, and `airlock access
//! status` says so.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::Router;
use super::commands;
use crate::alert::fold::{Folder, Notice};
use crate::alert::{self, Alert, Kind};

/// How often alerts raised in the terminal are looked for.
pub const POLL: Duration = Duration::from_secs(1);

/// Runs the dispatcher until `rx` closes.
pub fn spawn(
    router: Arc<Router>,
    mut rx: mpsc::UnboundedReceiver<Alert>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut folder = Folder::default();
        let mut seen = router.access.last_alert_id().unwrap_or(0);
        let mut next_poll = Instant::now() + POLL;
        loop {
            let wake = folder.next_due().map_or(next_poll, |d| d.min(next_poll));
            tokio::select! {
                received = rx.recv() => match received {
                    Some(a) => {
                        router.record_alert(&a);
                        if a.kind != Kind::Crashed {
                            raise(&mut folder, a);
                        }
                    }
                    None => break,
                },
                () = tokio::time::sleep_until(wake.into()) => {}
            }
            let now = Instant::now();
            if now >= next_poll {
                next_poll = now + POLL;
                router.record_expired_invites();
                match router.access.terminal_alerts_after(seen) {
                    Ok(found) => {
                        for (id, a) in found {
                            seen = seen.max(id);
                            raise(&mut folder, a);
                        }
                    }
                    Err(e) => tracing::debug!("cannot read alerts raised in the terminal: {e}"),
                }
            }
            for notice in folder.due(Instant::now()) {
                router.notify(&notice).await;
            }
        }
    })
}

fn raise(folder: &mut Folder, a: Alert) {
    if folder.raise(a.clone(), Instant::now()) {
        alert::log(&a, 1);
    }
}

impl Router {
    /// What a component did wrong goes to the audit trail as raised, each
    /// time (the owners' messages are folded; the record is not).
    fn record_alert(&self, a: &Alert) {
        if !matches!(
            a.kind,
            Kind::Crashed | Kind::Quarantined | Kind::CapabilityDenied
        ) {
            return;
        }
        let mut entry = crate::audit::Entry::new(crate::audit::Kind::Component, a.text.clone())
            .detail(serde_json::json!({"event": a.kind.name()}));
        if let Some(adapter) = &a.adapter {
            entry = entry.adapter(adapter);
        }
        self.record(&[entry]);
    }

    /// Records, logs and sends `notice` to the owners it concerns.
    async fn notify(&self, notice: &Notice) {
        if notice.count > 1 || !notice.announced {
            alert::log(&notice.alert, notice.count);
        }
        // Those from the terminal were recorded there.
        if !matches!(notice.alert.kind, Kind::Lockdown | Kind::Unlock)
            && let Err(e) = self.access.record_alert(&notice.alert, notice.count, false)
        {
            tracing::warn!("cannot record an alert: {e}");
        }
        let text = notice.message();
        for (name, active) in &self.adapters {
            if notice.alert.adapter.as_ref().is_some_and(|a| a != name) {
                continue;
            }
            let chats = match self.access.owner_chats(name) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(adapter = name, "cannot find its owners: {e}");
                    continue;
                }
            };
            for chat in chats {
                if let Err(e) = self
                    .platform(name, active)
                    .send(commands::message(&chat, text.clone()))
                    .await
                {
                    tracing::warn!(adapter = name, "cannot send an alert to an owner: {e}");
                }
            }
        }
    }
}
