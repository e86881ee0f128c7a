//! What the router writes to the audit trail.
//!
//! Entries about an inbound batch (drops, pairings, filter verdicts, host
//! commands) are gathered while it is gated and written in the batch's own
//! transaction with the events it queues, so that delivery stays one commit
//! per batch and a batch that fails to store leaves no rows either (its
//! source offers it again). Everything else is written at once.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::json;

use super::{Admitted, Router};
use crate::audit::{Entry, Kind};
use crate::bindings::types::{Chat, Sender};

/// Entries waiting for their adapter's batch to be stored.
#[derive(Debug, Default)]
pub(super) struct Gathered(Mutex<HashMap<String, Vec<Entry>>>);

/// How many rows are being written beside an answer already given
/// (`Router::record_beside`). Shutdown waits for none before it writes its
/// own rows, so that the trail's last row is the shutdown checkpoint and
/// no row of this session follows it.
#[derive(Debug)]
pub(super) struct Trailing(tokio::sync::watch::Sender<usize>);

impl Default for Trailing {
    fn default() -> Self {
        Self(tokio::sync::watch::Sender::new(0))
    }
}

impl Router {
    /// Makes and writes the entries `rows` returns once the session has its
    /// answer (see [`super::afterwards`]); `settle_records` waits for every
    /// such write.
    pub fn record_beside(
        self: &std::sync::Arc<Self>,
        rows: impl FnOnce() -> Vec<Entry> + Send + 'static,
    ) {
        self.trailing.0.send_modify(|n| *n += 1);
        let router = self.clone();
        self.afterwards.after_next_line(async move {
            router.record(&rows());
            router.trailing.0.send_modify(|n| *n -= 1);
        });
    }

    /// Waits until no row given to `record_beside` is still being written.
    pub async fn settle_records(&self) {
        let mut pending = self.trailing.0.subscribe();
        // The sender lives in `self`, so the wait cannot end in an error.
        let _ = pending.wait_for(|n| *n == 0).await;
    }

    /// Keep `entry` for `adapter`'s batch being gated.
    pub(super) fn note(&self, adapter: &str, entry: Entry) {
        if !self.audit.enabled() {
            return;
        }
        self.gathered
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(adapter.to_owned())
            .or_default()
            .push(entry);
    }

    /// A dropped inbound event, with why. `text` is left out for a message
    /// that may hold a pairing code.
    pub(super) fn note_drop(
        &self,
        adapter: &str,
        chat: &Chat,
        sender: &Sender,
        text: &str,
        reason: &str,
    ) {
        let mut e = Entry::new(
            Kind::Inbound,
            format!(
                "dropped a message from {}: {reason}",
                crate::text::one_line(&super::inbound::who(sender), 64)
            ),
        )
        .adapter(adapter)
        .chat(&chat.id)
        .sender(&sender.id, sender.handle.as_deref())
        .detail(json!({"outcome": "dropped", "reason": reason}));
        if crate::access::invite::normalize(text).is_none() {
            e = e.text(text);
        }
        self.note(adapter, e);
    }

    /// A filter's verdict on an inbound message of `adapter` (never its
    /// content), written with the batch.
    pub(super) fn note_filter(
        &self,
        adapter: &str,
        chat: &Chat,
        sender: &Sender,
        filter: &str,
        verdict: &str,
        reason: &str,
    ) {
        self.note(
            adapter,
            filter_entry(filter, "inbound", verdict, reason)
                .adapter(adapter)
                .chat(&chat.id)
                .sender(&sender.id, sender.handle.as_deref()),
        );
    }

    /// A filter stopped an inbound message: its verdict, and the message
    /// dropped, as every other drop is.
    pub(super) fn filter_dropped(
        &self,
        adapter: &str,
        filter: &str,
        message: &crate::bindings::types::InboundMessage,
        verdict: &str,
        reason: &str,
    ) {
        self.note_filter(
            adapter,
            &message.chat,
            &message.sender,
            filter,
            verdict,
            reason,
        );
        self.note_drop(
            adapter,
            &message.chat,
            &message.sender,
            &message.text,
            &format!("filter {filter}: {verdict}"),
        );
    }

    /// A filter's verdict on an outbound message to `chat` of `adapter`,
    /// written at once.
    pub(super) fn record_filter(
        &self,
        (adapter, chat): (&str, &str),
        filter: &str,
        verdict: &str,
        reason: &str,
    ) {
        self.record(&[filter_entry(filter, "outbound", verdict, reason)
            .adapter(adapter)
            .chat(chat)]);
    }

    /// What was gathered for `adapter`, and a row for each event queued
    /// (`positions` from the queue: `None` for a duplicate).
    pub(super) fn batch_entries(
        &self,
        adapter: &str,
        admitted: &[Admitted],
        positions: &[Option<i64>],
    ) -> Vec<Entry> {
        let mut entries = self
            .gathered
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(adapter)
            .unwrap_or_default();
        if !self.audit.enabled() {
            return Vec::new();
        }
        for (a, seq) in admitted.iter().zip(positions) {
            let Some(seq) = seq else {
                continue;
            };
            let meta = &a.event.meta;
            let user = meta.get("user").map(String::as_str).unwrap_or("?");
            entries.push(
                Entry::new(
                    Kind::Inbound,
                    format!("queued a message from {user} for the session"),
                )
                .adapter(adapter)
                .chat(&a.chat)
                .sender(&a.origin.sender_id, meta.get("user").map(String::as_str))
                .text(&a.event.content)
                .detail(json!({
                    "outcome": "queued",
                    "seq": seq,
                    "message_id": meta.get("message_id"),
                    "attachments": a.attachments.len(),
                })),
            );
        }
        entries
    }

    /// Write `entries` now, in a transaction of their own.
    pub fn record(&self, entries: &[Entry]) {
        if let Err(e) = self.audit.append(entries) {
            tracing::error!(
                "cannot write the audit trail: {e}; check the disk under $AIRLOCK_HOME"
            );
        }
    }

    /// Invites that expired unused, recorded (and forgotten).
    pub(super) fn record_expired_invites(&self) {
        let expired = match self.access.take_expired_invites() {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!("cannot look for expired invites: {e}");
                return;
            }
        };
        let entries: Vec<Entry> = expired
            .iter()
            .map(|i| {
                Entry::new(
                    Kind::Access,
                    format!(
                        "an invite {} expired unused",
                        if i.for_group {
                            "to open a group".to_string()
                        } else {
                            format!("for a new {}", i.role)
                        }
                    ),
                )
                .adapter(&i.adapter)
                .detail(
                    json!({"change": "invite expired", "invite": i.id, "expires_at": i.expires_at}),
                )
            })
            .collect();
        if !entries.is_empty() {
            self.record(&entries);
        }
    }

    /// The audit trail.
    pub fn audit(&self) -> &crate::audit::AuditStore {
        &self.audit
    }
}

/// The row of a filter's verdict.
fn filter_entry(filter: &str, direction: &str, verdict: &str, reason: &str) -> Entry {
    let reason = crate::text::one_line(reason, 200);
    let said = if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    };
    Entry::new(
        Kind::Filter,
        format!("filter {filter} ({direction}): {verdict}{said}"),
    )
    .detail(json!({"filter": filter, "direction": direction, "verdict": verdict, "reason": reason}))
}
