//! The durable inbound queue: events that passed the gate and the filters,
//! on their way to the session.
//!
//! Why it exists: a platform considers an update delivered once airlock asks
//! for the next one (Telegram's offset), and a session may not be connected
//! yet. So an event is first stored here, in the same SQLite transaction that
//! moves the adapter's platform cursor past it ([`Queue::accept`]); only then
//! does the poll loop ask the platform for more. A crash before that commit
//! loses nothing (the platform sends the updates again); a crash after it
//! loses nothing either (the events are here). A dedupe key per message
//! ([`dedupe`]) makes an event that arrives twice (a platform replaying it,
//! a restored state directory) reach the session once.
//!
//! Delivery hands waiting events to the session oldest first, and new ones as
//! they are stored ([`Queue::go_live`]); the session's writer sends each
//! batch through its ledger ([`ledger::FileLedger`]), which knows to the byte what reached the
//! session, and the database catches up in bulk ([`Queue::delivered`] deletes them: a delivered event keeps no
//! content, only its dedupe key, for [`KEEP_DELIVERED_SECS`]).
//!
//! The queue is bounded: past [`DEFAULT_BACKLOG`] waiting events the poll
//! loops stop asking their platforms for more (platforms keep undelivered
//! updates: Telegram for 24 hours), and sources that cannot wait are refused.

pub mod dedupe;
pub mod ledger;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use rusqlite::{OptionalExtension, params};
use tokio::sync::Notify;

use crate::db::{Db, DbError};

/// Waiting events beyond which sources are held back.
pub const DEFAULT_BACKLOG: usize = 10_000;
/// How long a delivered event's dedupe key is kept.
pub const KEEP_DELIVERED_SECS: i64 = 7 * 24 * 3600;

/// An event on its way in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    /// Same key, same adapter: stored once. `None`: never deduplicated.
    pub dedupe: Option<String>,
    /// The JSON-RPC notification line, as written to the session.
    pub line: String,
    /// The platform chat it came from (unqualified) and the attachment ids it
    /// carried: `download_attachment` fetches only ids delivered from the chat.
    pub attachments: Option<(String, Vec<String>)>,
    /// Who sent it and under which access revision it was admitted, so
    /// that delivery can ask the gate again.
    pub origin: Option<Origin>,
}

/// Where a waiting event came from, as the gate needs it at delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The sender's platform id.
    pub sender_id: String,
    /// For a message in a group (or a thread of one): the group's chat id.
    pub group: Option<String>,
    /// The access revision it was admitted under.
    pub admitted: i64,
}

/// A stored event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queued {
    /// Position in the queue; increases with every event.
    pub seq: i64,
    /// The notification line.
    pub line: String,
    /// The access revision it was admitted under (0: unknown, check it).
    pub admitted: i64,
}

/// Takes batches for the session as they are stored, in order; false when
/// the session is gone.
pub type Sink = Box<dyn Fn(Vec<Queued>) -> bool + Send + Sync>;

/// The queue over the host database.
#[derive(Clone)]
pub struct Queue {
    db: Db,
    wake: Arc<Notify>,
    bound: usize,
    owned: Arc<Mutex<BTreeSet<String>>>,
    live: Arc<Mutex<Option<Sink>>>,
    ledgers: Option<Arc<cap_std::fs::Dir>>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("bound", &self.bound)
            .field("owned", &self.owned)
            .finish_non_exhaustive()
    }
}

/// Waiting events handed to a sink per batch, at most.
pub const DRAIN_BATCH: usize = 64;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Queue {
    /// The queue in `db`, holding sources back past `bound` waiting events.
    pub fn new(db: Db, bound: usize) -> Self {
        Self {
            db,
            wake: Arc::new(Notify::new()),
            bound,
            owned: Arc::default(),
            live: Arc::default(),
            ledgers: None,
        }
    }

    /// The same queue, reading the delivery ledgers in `dir` before it
    /// delivers anything of an adapter it starts to own.
    pub fn with_ledgers(mut self, dir: cap_std::fs::Dir) -> Self {
        self.ledgers = Some(Arc::new(dir));
        self
    }

    /// Marks delivered what other processes, gone, dying or alive, wrote to
    /// their sessions (their ledgers); see [`ledger::recover`].
    fn recover(&self) {
        if let Some(dir) = &self.ledgers {
            match ledger::recover(dir, self) {
                Ok(0) => {}
                Ok(n) => tracing::info!("{n} events another airlock delivered are marked so"),
                Err(e) => tracing::error!("cannot read the delivery ledgers: {e}"),
            }
        }
    }

    /// From now on, hands every event to `sink` as soon as it is stored:
    /// first those already waiting (oldest first), then each batch
    /// [`accept`](Self::accept) stores. Events of an adapter owned later are
    /// handed over when it is ([`own`](Self::own)). The sink records them
    /// delivered (see `mcp::writer`).
    pub fn go_live(&self, sink: Sink) -> Result<(), DbError> {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        self.recover();
        if self.drain(None, &sink)? {
            *live = Some(sink);
        }
        Ok(())
    }

    /// Hands the waiting events of `adapter` (all owned ones for `None`) to
    /// `sink`, oldest first; false when the sink is gone.
    fn drain(&self, adapter: Option<&str>, sink: &Sink) -> Result<bool, DbError> {
        let mut after = 0;
        loop {
            let batch = self.waiting_after(adapter, after, DRAIN_BATCH)?;
            let Some(last) = batch.last() else {
                return Ok(true);
            };
            after = last.seq;
            if !sink(batch) {
                return Ok(false);
            }
        }
    }

    /// Up to `limit` waiting events of `adapter` (or of every owned one)
    /// after `after`, oldest first.
    fn waiting_after(
        &self,
        adapter: Option<&str>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Queued>, DbError> {
        let owned = match adapter {
            Some(a) => serde_json::to_string(&[a]).unwrap_or_else(|_| "[]".into()),
            None => self.owned_json(),
        };
        let conn = self.db.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, line, admitted_rev FROM events WHERE seq > ?1
               AND adapter IN (SELECT value FROM json_each(?3))
             ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, limit as i64, owned], queued)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// From now on this process delivers `adapter`'s events, those stored
    /// before it started included.
    ///
    /// Two airlocks may share a state directory (two sessions on one
    /// machine); each delivers only the events of the adapters it owns: those
    /// it runs without a platform lock, and those whose lock it holds. So the
    /// events of one bot reach one session, and after a crash the airlock
    /// that takes the lock over delivers what the dead one had stored.
    pub fn own(&self, adapter: &str) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let added = self
            .owned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(adapter.to_owned());
        if !added {
            return;
        }
        // Taking an adapter over from an airlock that is gone: what it
        // already wrote to its session is not delivered again.
        self.recover();
        self.wake.notify_waiters();
        if let Some(sink) = live.as_ref() {
            match self.drain(Some(adapter), sink) {
                Ok(true) => {}
                Ok(false) => *live = None,
                Err(e) => tracing::error!(adapter, "cannot read its waiting events: {e}"),
            }
        }
    }

    fn is_owned(&self, adapter: &str) -> bool {
        self.owned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(adapter)
    }

    fn owned_json(&self) -> String {
        let owned = self.owned.lock().unwrap_or_else(|e| e.into_inner());
        serde_json::to_string(&*owned).unwrap_or_else(|_| "[]".into())
    }

    /// Stores `events` of `adapter` and, in the same transaction, its new
    /// platform `cursor` (unchanged when `None`). Events whose dedupe key was
    /// seen before are skipped. Returns the events stored, in order.
    pub fn accept(
        &self,
        adapter: &str,
        events: &[Incoming],
        cursor: Option<&str>,
    ) -> Result<Vec<Queued>, DbError> {
        self.accept_with(adapter, events, cursor, |_, _| Ok(()))
    }

    /// [`Queue::accept`], with `also` run in the same transaction before it
    /// commits, given each event's queue position (`None`: a duplicate,
    /// skipped). What `also` writes (the audit trail's rows) commits or
    /// fails with the batch.
    pub fn accept_with(
        &self,
        adapter: &str,
        events: &[Incoming],
        cursor: Option<&str>,
        also: impl FnOnce(&rusqlite::Connection, &[Option<i64>]) -> Result<(), DbError>,
    ) -> Result<Vec<Queued>, DbError> {
        let at = now();
        // Lock order everywhere: `live`, then the database.
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let mut conn = self.db.lock();
        // Immediate: what `also` chains reads the head it extends.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut stored = Vec::with_capacity(events.len());
        let mut positions = Vec::with_capacity(events.len());
        {
            let mut seen = tx.prepare_cached(
                "INSERT INTO seen (adapter, dedupe, at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (adapter, line, accepted_at, sender_id, group_chat, admitted_rev)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            let mut attach = tx.prepare_cached(
                "INSERT INTO delivered_attachments (adapter, chat_id, attachment_id, at)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO UPDATE SET at = excluded.at",
            )?;
            for e in events {
                if let Some(key) = &e.dedupe
                    && seen.execute(params![adapter, key, at])? == 0
                {
                    tracing::debug!(adapter, key, "duplicate event skipped");
                    positions.push(None);
                    continue;
                }
                let origin = e.origin.as_ref();
                let admitted = origin.map_or(0, |o| o.admitted);
                insert.execute(params![
                    adapter,
                    e.line,
                    at,
                    origin.map(|o| &o.sender_id),
                    origin.and_then(|o| o.group.as_ref()),
                    admitted
                ])?;
                stored.push(Queued {
                    seq: tx.last_insert_rowid(),
                    line: e.line.clone(),
                    admitted,
                });
                positions.push(Some(tx.last_insert_rowid()));
                if let Some((chat, ids)) = &e.attachments {
                    for id in ids {
                        attach.execute(params![adapter, chat, id, at])?;
                    }
                }
            }
            if let Some(cursor) = cursor {
                tx.prepare_cached(
                    "INSERT INTO cursors (adapter, cursor, at) VALUES (?1, ?2, ?3)
                     ON CONFLICT(adapter) DO UPDATE SET cursor = excluded.cursor, at = excluded.at",
                )?
                .execute(params![adapter, cursor, at])?;
            }
        }
        also(&tx, &positions)?;
        tx.commit()?;
        drop(conn);
        // Handed to the session under `live`, so that batches of different
        // sources reach it in the order they were stored.
        if !stored.is_empty() {
            self.wake.notify_waiters();
            if let Some(sink) = live.as_ref()
                && self.is_owned(adapter)
                && !sink(stored.clone())
            {
                *live = None;
            }
        }
        Ok(stored)
    }

    /// The last committed cursor of `adapter`.
    pub fn cursor(&self, adapter: &str) -> Result<Option<String>, DbError> {
        Ok(self
            .db
            .lock()
            .prepare_cached("SELECT cursor FROM cursors WHERE adapter = ?1")?
            .query_row(params![adapter], |r| r.get(0))
            .optional()?)
    }

    /// Up to `limit` waiting events of owned adapters, oldest first, but for
    /// the `seq`s in `except`.
    pub fn waiting(&self, except: &[i64], limit: usize) -> Result<Vec<Queued>, DbError> {
        let owned = self.owned_json();
        let except = serde_json::to_string(except).unwrap_or_else(|_| "[]".into());
        let conn = self.db.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, line, admitted_rev FROM events WHERE adapter IN (SELECT value FROM json_each(?3))
               AND seq NOT IN (SELECT value FROM json_each(?1))
             ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![except, limit as i64, owned], queued)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Events delivered: they go (their dedupe keys stay in `seen`).
    pub fn delivered(&self, seqs: &[i64]) -> Result<(), DbError> {
        let seqs = serde_json::to_string(seqs).unwrap_or_else(|_| "[]".into());
        self.db
            .lock()
            .prepare_cached("DELETE FROM events WHERE seq IN (SELECT value FROM json_each(?1))")?
            .execute(params![seqs])?;
        Ok(())
    }

    /// The adapter and origin of each waiting event of `seqs` (events
    /// stored before origins were kept have none).
    pub fn origins(&self, seqs: &[i64]) -> Result<Vec<(i64, String, Option<Origin>)>, DbError> {
        let seqs = serde_json::to_string(seqs).unwrap_or_else(|_| "[]".into());
        let conn = self.db.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, adapter, sender_id, group_chat, admitted_rev FROM events
             WHERE seq IN (SELECT value FROM json_each(?1)) ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![seqs], |r| {
            let sender: Option<String> = r.get(2)?;
            Ok((
                r.get(0)?,
                r.get(1)?,
                sender.map(|sender_id| Origin {
                    sender_id,
                    group: r.get(3).ok().flatten(),
                    admitted: r.get(4).unwrap_or(0),
                }),
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many events of owned adapters wait for the session.
    pub fn backlog(&self) -> Result<usize, DbError> {
        let owned = self.owned_json();
        let n: i64 = self
            .db
            .lock()
            .prepare_cached(
                "SELECT COUNT(*) FROM events WHERE adapter IN (SELECT value FROM json_each(?1))",
            )?
            .query_row(params![owned], |r| r.get(0))?;
        Ok(n as usize)
    }

    /// Whether sources should hold back.
    pub fn is_full(&self) -> Result<bool, DbError> {
        Ok(self.backlog()? >= self.bound)
    }

    /// The bound.
    pub fn bound(&self) -> usize {
        self.bound
    }

    /// Woken whenever events were stored.
    pub fn wake(&self) -> &Arc<Notify> {
        &self.wake
    }

    /// Forgets dedupe keys and attachment ids older than `keep_secs`.
    /// Returns how many keys went.
    pub fn prune(&self, keep_secs: i64) -> Result<usize, DbError> {
        let before = now() - keep_secs;
        let conn = self.db.lock();
        let n = conn.execute("DELETE FROM seen WHERE at < ?1", params![before])?;
        conn.execute(
            "DELETE FROM delivered_attachments WHERE at < ?1",
            params![before],
        )?;
        Ok(n)
    }

    /// Whether `attachment_id` was delivered from `chat_id` of `adapter`.
    pub fn delivered_attachment(
        &self,
        adapter: &str,
        chat_id: &str,
        attachment_id: &str,
    ) -> Result<bool, DbError> {
        Ok(self
            .db
            .lock()
            .prepare_cached(
                "SELECT 1 FROM delivered_attachments WHERE adapter = ?1 AND chat_id = ?2 AND attachment_id = ?3",
            )?
            .query_row(params![adapter, chat_id, attachment_id], |_| Ok(()))
            .optional()?
            .is_some())
    }
}

fn queued(r: &rusqlite::Row<'_>) -> rusqlite::Result<Queued> {
    Ok(Queued {
        seq: r.get(0)?,
        line: r.get(1)?,
        admitted: r.get(2)?,
    })
}

/// Reads waiting events for one consumer (the session), oldest first.
///
/// [`Reader::next`] waits until there is something; [`Reader::done`] marks a
/// batch delivered. A batch it could not mark (a full disk) is remembered, so
/// this process does not hand it out twice.
#[derive(Debug)]
pub struct Reader {
    queue: Queue,
    unmarked: Vec<i64>,
}

impl Reader {
    /// A reader from the oldest waiting event.
    pub fn new(queue: Queue) -> Self {
        Self {
            queue,
            unmarked: Vec::new(),
        }
    }

    /// The next up to `max` waiting events; waits for at least one.
    pub async fn next(&mut self, max: usize) -> Result<Vec<Queued>, DbError> {
        loop {
            let wake = self.queue.wake.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            let batch = self.queue.waiting(&self.unmarked, max)?;
            if !batch.is_empty() {
                return Ok(batch);
            }
            wake.await;
        }
    }

    /// Marks `batch` delivered (for consumers that cannot fail to take it,
    /// like a terminal). A failure is logged: those events would be
    /// delivered again after a restart.
    pub fn done(&mut self, batch: &[Queued]) {
        let seqs: Vec<i64> = batch.iter().map(|q| q.seq).collect();
        if let Err(e) = self.queue.delivered(&seqs) {
            tracing::error!(
                "cannot mark {} delivered events in the database ({e}); they will be delivered again after a restart",
                seqs.len()
            );
            self.unmarked.extend(seqs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reader_waits_for_events_and_marks_them() {
        let q = queue(100);
        q.accept("tg", &[incoming(None, "early")], None).unwrap();
        let mut reader = Reader::new(q.clone());
        let first = reader.next(10).await.unwrap();
        assert_eq!(first[0].line, "early");
        reader.done(&first);
        let writer = q.clone();
        let later = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            writer
                .accept("tg", &[incoming(None, "late")], None)
                .unwrap();
        });
        let second = tokio::time::timeout(std::time::Duration::from_secs(5), reader.next(10))
            .await
            .expect("woken by the new event")
            .unwrap();
        assert_eq!(second[0].line, "late");
        later.await.unwrap();
        // Not marked yet: a new reader (a restart) gets it again.
        assert_eq!(
            Reader::new(q.clone()).next(10).await.unwrap()[0].line,
            "late"
        );
        reader.done(&second);
        assert_eq!(q.backlog().unwrap(), 0);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), reader.next(10))
                .await
                .is_err()
        );
    }

    fn incoming(key: Option<&str>, line: &str) -> Incoming {
        Incoming {
            dedupe: key.map(str::to_owned),
            line: line.into(),
            attachments: None,
            origin: None,
        }
    }

    fn queue(bound: usize) -> Queue {
        let q = Queue::new(Db::in_memory().unwrap(), bound);
        q.own("tg");
        q.own("dc");
        q
    }

    #[test]
    fn going_live_hands_over_waiting_then_new_events_of_owned_adapters() {
        let q = Queue::new(Db::in_memory().unwrap(), 100);
        q.own("tg");
        q.accept("tg", &[incoming(None, "tg-old")], None).unwrap();
        q.accept("dc", &[incoming(None, "dc-old")], None).unwrap();
        let got: Arc<Mutex<Vec<String>>> = Arc::default();
        let open = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (sink_got, sink_open) = (got.clone(), open.clone());
        q.go_live(Box::new(move |batch| {
            sink_got
                .lock()
                .unwrap()
                .extend(batch.into_iter().map(|e| e.line));
            sink_open.load(std::sync::atomic::Ordering::SeqCst)
        }))
        .unwrap();
        let lines = || got.lock().unwrap().clone();
        assert_eq!(lines(), ["tg-old"]);
        q.accept("tg", &[incoming(None, "tg-new")], None).unwrap();
        q.accept("dc", &[incoming(None, "dc-new")], None).unwrap();
        assert_eq!(lines(), ["tg-old", "tg-new"], "dc is not owned yet");
        // Owning it hands over what it has waiting, oldest first.
        q.own("dc");
        assert_eq!(lines(), ["tg-old", "tg-new", "dc-old", "dc-new"]);
        // A sink that is gone ends the hand-over; events then only wait.
        open.store(false, std::sync::atomic::Ordering::SeqCst);
        q.accept("tg", &[incoming(None, "lost?")], None).unwrap();
        q.accept("tg", &[incoming(None, "waits")], None).unwrap();
        assert_eq!(lines().len(), 5, "one more was offered, then none");
        assert_eq!(q.waiting(&[], 10).unwrap().len(), 6, "nothing was deleted");
    }

    #[test]
    fn only_owned_adapters_are_delivered() {
        let q = Queue::new(Db::in_memory().unwrap(), 100);
        q.accept("tg", &[incoming(None, "a")], None).unwrap();
        q.accept("fc", &[incoming(None, "b")], None).unwrap();
        assert!(q.waiting(&[], 10).unwrap().is_empty());
        assert_eq!(q.backlog().unwrap(), 0);
        q.own("tg");
        let waiting = q.waiting(&[], 10).unwrap();
        assert_eq!(
            waiting.iter().map(|e| e.line.as_str()).collect::<Vec<_>>(),
            ["a"]
        );
        assert_eq!(q.backlog().unwrap(), 1);
    }

    #[test]
    fn events_and_cursor_commit_together_and_duplicates_are_skipped() {
        let q = queue(100);
        assert_eq!(q.cursor("tg").unwrap(), None);
        let stored = q
            .accept(
                "tg",
                &[incoming(Some("m:1:7"), "a"), incoming(None, "b")],
                Some("8"),
            )
            .unwrap();
        assert_eq!(stored.len(), 2);
        assert_eq!(q.cursor("tg").unwrap().as_deref(), Some("8"));
        // Replayed: the message is skipped, the key-less event is not.
        let again = q
            .accept(
                "tg",
                &[incoming(Some("m:1:7"), "a"), incoming(None, "c")],
                None,
            )
            .unwrap();
        assert_eq!(
            again.iter().map(|q| q.line.as_str()).collect::<Vec<_>>(),
            ["c"]
        );
        assert_eq!(q.cursor("tg").unwrap().as_deref(), Some("8"), "unchanged");
        // Keys are per adapter.
        assert_eq!(
            q.accept("dc", &[incoming(Some("m:1:7"), "a")], None)
                .unwrap()
                .len(),
            1
        );

        let waiting = q.waiting(&[], 10).unwrap();
        assert_eq!(
            waiting.iter().map(|q| q.line.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c", "a"]
        );
        assert_eq!(
            q.waiting(&[waiting[0].seq, waiting[1].seq], 1).unwrap()[0].line,
            "c"
        );
        let first_two = [waiting[0].seq, waiting[1].seq];
        q.delivered(&first_two).unwrap();
        assert_eq!(q.backlog().unwrap(), 2);
        // Delivered and gone, content and all, but still a duplicate.
        let rows: i64 =
            q.db.lock()
                .query_row(
                    "SELECT COUNT(*) FROM events WHERE seq = ?1",
                    [waiting[0].seq],
                    |r| r.get(0),
                )
                .unwrap();
        assert_eq!(rows, 0, "delivered content is dropped");
        assert!(
            q.accept("tg", &[incoming(Some("m:1:7"), "a")], None)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn bound_and_prune() {
        let q = queue(2);
        q.accept("tg", &[incoming(None, "a")], None).unwrap();
        assert!(!q.is_full().unwrap());
        q.accept("tg", &[incoming(None, "b")], None).unwrap();
        assert!(q.is_full().unwrap());
        let seqs: Vec<i64> = q.waiting(&[], 10).unwrap().iter().map(|e| e.seq).collect();
        q.delivered(&seqs).unwrap();
        assert!(!q.is_full().unwrap());
        q.accept("tg", &[incoming(Some("k"), "c")], None).unwrap();
        assert_eq!(q.prune(-10).unwrap(), 1, "keys older than the future");
        assert_eq!(q.prune(-10).unwrap(), 0);
    }

    #[test]
    fn attachments_are_remembered_per_chat() {
        let q = queue(10);
        let e = Incoming {
            dedupe: Some("m:5:1".into()),
            line: "x".into(),
            attachments: Some(("5".into(), vec!["FILE1".into()])),
            origin: Some(Origin {
                sender_id: "5".into(),
                group: None,
                admitted: 3,
            }),
        };
        let stored = q.accept("tg", &[e], None).unwrap();
        assert_eq!(stored[0].admitted, 3);
        assert_eq!(q.waiting(&[], 1).unwrap()[0].admitted, 3);
        let origins = q.origins(&[stored[0].seq]).unwrap();
        assert_eq!(origins[0].1, "tg");
        assert_eq!(origins[0].2.as_ref().unwrap().sender_id, "5");
        assert!(q.delivered_attachment("tg", "5", "FILE1").unwrap());
        assert!(!q.delivered_attachment("tg", "6", "FILE1").unwrap());
        assert!(!q.delivered_attachment("dc", "5", "FILE1").unwrap());
        assert!(!q.delivered_attachment("tg", "5", "FILE2").unwrap());
    }
}
