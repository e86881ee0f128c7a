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
//! content, only its dedupe key, for `[delivery] dedupe_window`; [`Queue::prune`]
//! forgets older keys).
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
    /// The platform chat it came from (unqualified): a held event is handed
    /// to the session its chat is later bound to.
    pub chat: Option<String>,
    /// Which session delivers it.
    pub to: To,
}

/// Which session an event is for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum To {
    /// This queue's own session.
    #[default]
    Here,
    /// Another session of the hub (it delivers it itself).
    Session(String),
    /// None yet: held until its chat is bound.
    Held,
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
    me: Arc<str>,
    live: Arc<Mutex<Live>>,
    ledgers: Option<Arc<cap_std::fs::Dir>>,
}

/// The hand-off to the session, once it is live.
#[derive(Default)]
struct Live {
    sink: Option<Sink>,
    /// Positions handed to the sink and perhaps still in the table (their
    /// delivery is being recorded): never handed twice.
    handed: BTreeSet<i64>,
}

impl Live {
    /// Hands `batch` over; false (and the sink dropped) when it is gone.
    fn hand(&mut self, batch: Vec<Queued>) -> bool {
        let Some(sink) = &self.sink else {
            return false;
        };
        let seqs: Vec<i64> = batch.iter().map(|q| q.seq).collect();
        if sink(batch) {
            self.handed.extend(seqs);
            true
        } else {
            self.sink = None;
            false
        }
    }
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("bound", &self.bound)
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

/// The session name of a queue no hub named.
pub const LOCAL: &str = "local";

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
            me: Arc::from(LOCAL),
            live: Arc::default(),
            ledgers: None,
        }
    }

    /// The same queue, delivering the events of session `name`.
    pub fn for_session(mut self, name: &str) -> Self {
        self.me = Arc::from(name);
        self
    }

    /// The session whose events this queue delivers.
    pub fn session(&self) -> &str {
        &self.me
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

    /// From now on, hands every event of this session to `sink` as soon
    /// as it is stored: first those already waiting (oldest first), then
    /// each batch [`accept`](Self::accept) stores, and what other processes
    /// store for it ([`catch_up`](Self::catch_up)). The sink records them
    /// delivered (see `mcp::writer`).
    pub fn go_live(&self, sink: Sink) -> Result<(), DbError> {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        self.recover();
        self.claim_unrouted()?;
        live.sink = Some(sink);
        live.handed.clear();
        self.hand_new(&mut live)
    }

    /// Hands the session what waits for it and was not handed yet: events
    /// another process stored for it. Called when woken, and every second.
    pub fn catch_up(&self) -> Result<(), DbError> {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if live.sink.is_none() {
            return Ok(());
        }
        self.hand_new(&mut live)
    }

    /// Under `live`: what waits and was not handed, in batches, oldest
    /// first; forgets handed positions that are no longer waiting.
    fn hand_new(&self, live: &mut Live) -> Result<(), DbError> {
        let waiting: Vec<i64> = {
            let conn = self.db.lock();
            let mut stmt =
                conn.prepare_cached("SELECT seq FROM events WHERE session = ?1 ORDER BY seq")?;
            stmt.query_map(params![&*self.me], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        let still: BTreeSet<i64> = waiting.iter().copied().collect();
        live.handed.retain(|s| still.contains(s));
        let new: Vec<i64> = waiting
            .into_iter()
            .filter(|s| !live.handed.contains(s))
            .collect();
        for chunk in new.chunks(DRAIN_BATCH) {
            let batch = self.lines(chunk)?;
            if !batch.is_empty() && !live.hand(batch) {
                break;
            }
        }
        Ok(())
    }

    /// The stored events at `seqs`, in order.
    fn lines(&self, seqs: &[i64]) -> Result<Vec<Queued>, DbError> {
        let seqs = serde_json::to_string(seqs).unwrap_or_else(|_| "[]".into());
        let conn = self.db.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, line, admitted_rev FROM events
             WHERE seq IN (SELECT value FROM json_each(?1)) ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![seqs], queued)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Events stored before sessions were kept (no session, no chat) are
    /// this session's.
    fn claim_unrouted(&self) -> Result<(), DbError> {
        self.db.lock().execute(
            "UPDATE events SET session = ?1 WHERE session IS NULL AND chat IS NULL",
            params![&*self.me],
        )?;
        Ok(())
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
        let mine =
            |to: &To| matches!(to, To::Here) || matches!(to, To::Session(s) if *s == *self.me);
        // Lock order everywhere: `live`, then the database.
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let mut conn = self.db.lock();
        // Immediate: what `also` chains reads the head it extends.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut stored = Vec::with_capacity(events.len());
        let mut mine_stored = Vec::with_capacity(events.len());
        let mut positions = Vec::with_capacity(events.len());
        {
            let mut seen = tx.prepare_cached(
                "INSERT INTO seen (adapter, dedupe, at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO events
                   (adapter, line, accepted_at, sender_id, group_chat, admitted_rev, chat, session)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
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
                    admitted,
                    e.chat,
                    match &e.to {
                        To::Here => Some(&*self.me),
                        To::Session(s) => Some(s.as_str()),
                        To::Held => None,
                    }
                ])?;
                let q = Queued {
                    seq: tx.last_insert_rowid(),
                    line: e.line.clone(),
                    admitted,
                };
                if mine(&e.to) {
                    mine_stored.push(q.clone());
                }
                stored.push(q);
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
        if !mine_stored.is_empty() {
            self.wake.notify_waiters();
            live.hand(mine_stored);
        }
        Ok(stored)
    }

    /// Whether the database takes writes again ([`Db::probe_write`]): a
    /// source stopped by a full disk asks this before it fetches again, so
    /// that the platform's input is not gated over and over meanwhile.
    pub fn writable(&self) -> Result<(), DbError> {
        self.db.probe_write()
    }

    /// The directory holding the database (the state directory), for
    /// messages that tell the operator where space is missing.
    pub fn db_dir(&self) -> Option<&std::path::Path> {
        self.db.dir()
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

    /// Up to `limit` events waiting for this session, oldest first, but for
    /// the `seq`s in `except`.
    pub fn waiting(&self, except: &[i64], limit: usize) -> Result<Vec<Queued>, DbError> {
        let except = serde_json::to_string(except).unwrap_or_else(|_| "[]".into());
        let conn = self.db.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, line, admitted_rev FROM events WHERE session = ?3
               AND seq NOT IN (SELECT value FROM json_each(?1))
             ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![except, limit as i64, &*self.me], queued)?;
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

    /// How many events wait for this session.
    pub fn backlog(&self) -> Result<usize, DbError> {
        let n: i64 = self
            .db
            .lock()
            .prepare_cached("SELECT COUNT(*) FROM events WHERE session = ?1")?
            .query_row(params![&*self.me], |r| r.get(0))?;
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
            chat: None,
            to: To::Here,
        }
    }

    fn to(session: &str, line: &str) -> Incoming {
        Incoming {
            chat: Some("5".into()),
            to: To::Session(session.into()),
            ..incoming(None, line)
        }
    }

    fn queue(bound: usize) -> Queue {
        Queue::new(Db::in_memory().unwrap(), bound)
    }

    type Got = Arc<Mutex<Vec<String>>>;

    fn sink(open: &Arc<std::sync::atomic::AtomicBool>) -> (Got, Sink) {
        let got: Got = Arc::default();
        let (sink_got, sink_open) = (got.clone(), open.clone());
        let sink: Sink = Box::new(move |batch| {
            sink_got
                .lock()
                .unwrap()
                .extend(batch.into_iter().map(|e| e.line));
            sink_open.load(std::sync::atomic::Ordering::SeqCst)
        });
        (got, sink)
    }

    #[test]
    fn going_live_hands_over_waiting_then_new_events_of_this_session() {
        let db = Db::in_memory().unwrap();
        let q = Queue::new(db.clone(), 100).for_session("api");
        let other = Queue::new(db, 100).for_session("web");
        q.accept("tg", &[incoming(None, "api-old")], None).unwrap();
        q.accept("tg", &[to("web", "web-old")], None).unwrap();
        let open = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (got, sink) = self::sink(&open);
        q.go_live(sink).unwrap();
        let lines = || got.lock().unwrap().clone();
        assert_eq!(lines(), ["api-old"]);
        q.accept("tg", &[incoming(None, "api-new")], None).unwrap();
        q.accept("tg", &[to("web", "web-new")], None).unwrap();
        assert_eq!(lines(), ["api-old", "api-new"], "web's are not api's");
        // Another process (here: another queue) stores for api: handed
        // over when api catches up, once.
        other
            .accept("tg", &[to("api", "api-from-web")], None)
            .unwrap();
        assert_eq!(lines().len(), 2);
        q.catch_up().unwrap();
        q.catch_up().unwrap();
        assert_eq!(lines(), ["api-old", "api-new", "api-from-web"]);
        // Delivered events leave the table and the handed set.
        let seqs: Vec<i64> = q.waiting(&[], 10).unwrap().iter().map(|e| e.seq).collect();
        q.delivered(&seqs).unwrap();
        q.catch_up().unwrap();
        assert!(q.live.lock().unwrap().handed.is_empty());
        assert_eq!(other.backlog().unwrap(), 2, "web's two wait for web");
        // A sink that is gone ends the hand-over; events then only wait.
        open.store(false, std::sync::atomic::Ordering::SeqCst);
        q.accept("tg", &[incoming(None, "lost?")], None).unwrap();
        q.accept("tg", &[incoming(None, "waits")], None).unwrap();
        assert_eq!(lines().len(), 4, "one more was offered, then none");
        assert_eq!(q.waiting(&[], 10).unwrap().len(), 2, "nothing was deleted");
    }

    #[test]
    fn held_events_and_those_of_other_sessions_are_not_delivered_here() {
        let q = queue(100);
        q.accept("tg", &[to("web", "a")], None).unwrap();
        let held = Incoming {
            chat: Some("5".into()),
            to: To::Held,
            ..incoming(None, "b")
        };
        q.accept("tg", &[held], None).unwrap();
        assert!(q.waiting(&[], 10).unwrap().is_empty());
        assert_eq!(q.backlog().unwrap(), 0);
        q.accept("tg", &[to(LOCAL, "c")], None).unwrap();
        assert_eq!(q.waiting(&[], 10).unwrap()[0].line, "c", "named as itself");
        // Events from before sessions were kept are claimed at go-live.
        q.db.lock()
            .execute(
                "INSERT INTO events (adapter, line, accepted_at) VALUES ('tg', 'old', 0)",
                [],
            )
            .unwrap();
        let open = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (got, sink) = sink(&open);
        q.go_live(sink).unwrap();
        assert_eq!(*got.lock().unwrap(), ["c", "old"]);
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
            chat: Some("5".into()),
            to: To::Here,
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
