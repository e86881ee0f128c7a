//! One batch from an adapter into the durable queue.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Router;
use crate::bindings::types::{EventBatch, Features};
use crate::db::DbError;
use crate::event::notification;
use crate::queue::{Incoming, Queued};

/// A chat gets at most one typing indicator per this long (platforms show
/// one for about five seconds).
pub const TYPING_EVERY: Duration = Duration::from_secs(4);

/// When each chat last got a typing indicator.
#[derive(Debug, Default)]
pub(super) struct TypingLimiter {
    last: Mutex<HashMap<(String, String), Instant>>,
}

impl TypingLimiter {
    /// Whether `chat` of `adapter` is due one now (and, if so, records it).
    fn due(&self, adapter: &str, chat: &str) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if last.len() > 4096 {
            last.retain(|_, at| now.duration_since(*at) < TYPING_EVERY);
        }
        let key = (adapter.to_owned(), chat.to_owned());
        match last.get(&key) {
            Some(at) if now.duration_since(*at) < TYPING_EVERY => false,
            _ => {
                last.insert(key, now);
                true
            }
        }
    }
}

impl Router {
    /// Gates, filters and stores `batch` of `adapter`; its cursor is
    /// committed in the same transaction. Returns the events stored (some
    /// may have been dropped by the gate or skipped as duplicates).
    ///
    /// An error means nothing of the batch was stored and the cursor did not
    /// move: the source must offer the same input again.
    pub async fn ingest(&self, adapter: &str, batch: EventBatch) -> Result<Vec<Queued>, DbError> {
        let mut events = batch.events;
        super::flood::cap_batch(adapter, &mut events);
        let admitted = self.inbound(adapter, events).await;
        let routed = self.route_batch(adapter, admitted)?;
        let incoming: Vec<Incoming> = routed
            .kept
            .iter()
            .map(|(a, to)| Incoming {
                dedupe: a.dedupe.clone(),
                line: notification::line(&a.event),
                attachments: (!a.attachments.is_empty())
                    .then(|| (a.chat.clone(), a.attachments.clone())),
                origin: Some(a.origin.clone()),
                chat: Some(a.chat.clone()),
                to: to.clone(),
            })
            .collect();
        let admitted: Vec<super::Admitted> = routed.kept.into_iter().map(|(a, _)| a).collect();
        // Before the store: while a flooding source waits, its cursor stays.
        self.flood.admit(adapter, incoming.len()).await;
        let stored = self.queue.accept_with(
            adapter,
            &incoming,
            batch.cursor.as_deref(),
            |conn, positions| {
                let entries = self.batch_entries(adapter, &admitted, positions);
                self.audit.append_in(conn, &entries).map(|_| ())
            },
        )?;
        self.after_routed(adapter, routed.wake, routed.notices, routed.records);
        self.show_typing(adapter, &admitted);
        Ok(stored)
    }

    /// A typing indicator in each chat that now waits for an answer.
    fn show_typing(&self, adapter: &str, admitted: &[super::Admitted]) {
        let Some(active) = self.adapters.get(adapter) else {
            return;
        };
        if !active.description.features.contains(Features::TYPING) {
            return;
        }
        for a in admitted.iter().filter(|a| a.awaits_answer) {
            if !self.typing.due(adapter, &a.chat) {
                continue;
            }
            let handle = active.handle.clone();
            let chat = a.chat.clone();
            tokio::spawn(async move {
                if let Err(e) = handle.typing(chat).await {
                    tracing::debug!("typing indicator failed: {e}");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_is_rate_limited_per_chat() {
        let t = TypingLimiter::default();
        assert!(t.due("tg", "1"));
        assert!(!t.due("tg", "1"));
        assert!(t.due("tg", "2"));
        assert!(t.due("dc", "1"));
    }
}
