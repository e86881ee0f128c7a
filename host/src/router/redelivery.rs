//! The gate, asked again when a stored event is about to reach the session.
//!
//! An event waits in the queue while no session is connected, or while the
//! session reads slowly. If access changed meanwhile (a sender removed or
//! revoked, a group closed, lockdown), what the gate said when the event
//! arrived no longer holds. Every change bumps the access revision, and each
//! event carries the revision it was admitted under, so the common case
//! costs one read of the revision per batch; only events older than a
//! change are checked one by one. Those refused are dropped from the queue,
//! counted, and never written.

use crate::access::{AccessStore, Decision, Memo};
use crate::audit::{AuditStore, Entry, Kind};
use crate::queue::Queue;

/// What to do with a batch about to be written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recheck {
    /// Events refused now: removed from the queue, not to be written.
    pub refused: Vec<i64>,
    /// The check itself failed: write nothing, the batch waits.
    pub hold: bool,
}

/// Asks the gate again; cheap to clone.
#[derive(Clone, Debug)]
pub struct Redelivery {
    access: AccessStore,
    queue: Queue,
    audit: AuditStore,
}

impl Redelivery {
    /// Over `access` and `queue`; what it drops is recorded in `audit`.
    pub fn new(access: AccessStore, queue: Queue, audit: AuditStore) -> Self {
        Self {
            access,
            queue,
            audit,
        }
    }

    /// The gate's answer for `seqs`, admitted under revision `admitted` at
    /// the oldest.
    pub fn check(&self, seqs: &[i64], admitted: i64) -> Recheck {
        match self.try_check(seqs, admitted) {
            Ok(refused) => Recheck {
                refused,
                hold: false,
            },
            Err(e) => {
                tracing::error!(
                    "cannot check access before delivering {} events ({e}); they wait",
                    seqs.len()
                );
                Recheck {
                    refused: Vec::new(),
                    hold: true,
                }
            }
        }
    }

    fn try_check(&self, seqs: &[i64], admitted: i64) -> Result<Vec<i64>, crate::db::DbError> {
        let now = self.access.revision()?;
        if admitted >= now {
            return Ok(Vec::new());
        }
        let mut refused = Vec::new();
        let mut entries = Vec::new();
        let mut memo = Memo::default();
        for (seq, adapter, origin) in self.queue.origins(seqs)? {
            let Some(origin) = origin else { continue };
            if origin.admitted >= now {
                continue;
            }
            if let Decision::Drop(reason) =
                self.access
                    .redeliver(&adapter, &origin.sender_id, origin.group.as_deref())?
            {
                tracing::info!(
                    adapter,
                    sender = %origin.sender_id,
                    "a waiting event is not delivered: {reason}"
                );
                AccessStore::count_drop(&mut memo, &adapter, reason);
                entries.push(
                    Entry::new(
                        Kind::Inbound,
                        format!("a waiting message was not delivered: {reason}"),
                    )
                    .adapter(&adapter)
                    .sender(&origin.sender_id, None)
                    .detail(serde_json::json!({
                        "outcome": "dropped while queued",
                        "reason": reason,
                        "seq": seq,
                    })),
                );
                refused.push(seq);
            }
        }
        if !refused.is_empty() {
            self.queue.delivered(&refused)?;
            self.access.tally(&mut memo)?;
            if let Err(e) = self.audit.append(&entries) {
                tracing::error!("cannot write the audit trail: {e}");
            }
        }
        Ok(refused)
    }
}
