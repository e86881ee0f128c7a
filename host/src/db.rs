//! The host's SQLite database (`airlock.db`, WAL).
//!
//! One connection behind a mutex: the host's writes are small and few, and a
//! single writer keeps ordering obvious. Schema changes are numbered
//! migrations applied at open.
//!
//! The disk holding it can fill up, and the state directory can be
//! read-only. Both are the operator's to fix, so the errors say which one it
//! is ([`DbError::is_full`], [`DbError::ReadOnly`]), and a loop that keeps
//! failing for the same reason says so once, not once per retry
//! ([`Episode`]).

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode};

/// Errors from the database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The system gave no randomness for a key the database keeps.
    #[error("no randomness for a key: {0}")]
    Random(String),
    /// The database could not be opened.
    #[error(
        "cannot open the database {path}: {source}; check that the state directory is writable"
    )]
    Open {
        /// Database path.
        path: String,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The database could not be opened or written because the directory
    /// holding it cannot be written (a read-only mount, or no permission).
    #[error(
        "the state directory {dir} cannot be written ({why}); airlock keeps its database there: \
         remount it read-write or give this user write access, or set AIRLOCK_HOME to a \
         writable directory"
    )]
    ReadOnly {
        /// The directory.
        dir: String,
        /// What the system said.
        why: String,
    },
}

impl DbError {
    /// Whether SQLite could not write because the disk (or the filesystem's
    /// quota) is full: the operator frees space and the same write succeeds.
    pub fn is_full(&self) -> bool {
        self.code() == Some(ErrorCode::DiskFull)
    }

    /// Whether the database cannot be written at all: a read-only state
    /// directory or database file.
    pub fn is_read_only(&self) -> bool {
        matches!(self, Self::ReadOnly { .. }) || self.code() == Some(ErrorCode::ReadOnly)
    }

    /// SQLite's primary result code, when SQLite failed.
    fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Sqlite(e) | Self::Open { source: e, .. } => e.sqlite_error_code(),
            Self::Random(_) | Self::ReadOnly { .. } => None,
        }
    }
}

/// A run of failures with one cause, said once when it starts and once when
/// it ends, however many retries it takes (a full disk may last hours).
#[derive(Debug, Default)]
pub struct Episode {
    since: Option<Instant>,
    failures: u64,
}

impl Episode {
    /// Counts a failure; true for the first of an episode (say it).
    pub fn failed(&mut self) -> bool {
        self.failures = self.failures.saturating_add(1);
        if self.since.is_none() {
            self.since = Some(Instant::now());
            return true;
        }
        false
    }

    /// Counts a success; when it ends an episode, how many failures it held
    /// and how long it lasted (say that it is over).
    pub fn succeeded(&mut self) -> Option<(u64, Duration)> {
        let since = self.since.take()?;
        Some((std::mem::take(&mut self.failures), since.elapsed()))
    }
}

const MIGRATIONS: &[&str] = &[
    // 1: approvals of third-party components and component key/value data.
    "CREATE TABLE approvals (
        name TEXT PRIMARY KEY,
        wasm_sha256 TEXT NOT NULL,
        manifest_sha256 TEXT NOT NULL,
        approved_at INTEGER NOT NULL
     );
     CREATE TABLE kv (
        component TEXT NOT NULL,
        key TEXT NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (component, key)
     );",
    // 2: access: allowlists, recent drops, chats delivered from.
    "CREATE TABLE allowlist (
        adapter TEXT NOT NULL,
        sender_id TEXT NOT NULL,
        added_at INTEGER NOT NULL,
        PRIMARY KEY (adapter, sender_id)
     );
     CREATE TABLE drops (
        adapter TEXT NOT NULL,
        sender_id TEXT NOT NULL,
        handle TEXT,
        at INTEGER NOT NULL,
        first_words TEXT NOT NULL
     );
     CREATE TABLE delivered_chats (
        adapter TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        sender_id TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (adapter, chat_id, sender_id)
     );",
    // 3: the durable inbound queue (waiting events; a delivered one is
    // deleted), the dedupe keys of accepted events, platform cursors, opened
    // groups, delivered attachments, and where a drop happened.
    "CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        adapter TEXT NOT NULL,
        line TEXT NOT NULL,
        accepted_at INTEGER NOT NULL
     );
     CREATE TABLE seen (
        adapter TEXT NOT NULL,
        dedupe TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (adapter, dedupe)
     ) WITHOUT ROWID;
     CREATE TABLE cursors (
        adapter TEXT PRIMARY KEY,
        cursor TEXT NOT NULL,
        at INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE groups (
        adapter TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        any_sender INTEGER NOT NULL,
        require_mention INTEGER NOT NULL,
        added_at INTEGER NOT NULL,
        PRIMARY KEY (adapter, chat_id)
     );
     CREATE TABLE delivered_attachments (
        adapter TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        attachment_id TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (adapter, chat_id, attachment_id)
     );
     ALTER TABLE drops ADD COLUMN chat_id TEXT;
     ALTER TABLE drops ADD COLUMN group_chat INTEGER NOT NULL DEFAULT 0;",
    // 4: threads delivered from, with their parent channel (whose opening
    // covers them both ways).
    "CREATE TABLE threads (
        adapter TEXT NOT NULL,
        thread_id TEXT NOT NULL,
        parent_id TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (adapter, thread_id)
     ) WITHOUT ROWID;",
    // 5: queue positions are never handed out twice. Without AUTOINCREMENT
    // SQLite reuses the rowids of deleted rows at the top of the table, and a
    // delivery ledger that names an old position would then name a new event.
    "CREATE TABLE events_v5 (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        adapter TEXT NOT NULL,
        line TEXT NOT NULL,
        accepted_at INTEGER NOT NULL
     );
     INSERT INTO events_v5 (seq, adapter, line, accepted_at)
        SELECT seq, adapter, line, accepted_at FROM events;
     DROP TABLE events;
     ALTER TABLE events_v5 RENAME TO events;",
    // 6: roles, invites, pairing failures and blocks, lockdown, alerts, drop
    // tallies, who opened a group, and each waiting event's origin and the
    // access revision it was admitted under (so delivery can check again).
    // Every change to who may reach the session bumps `access_revision`,
    // by trigger, whoever makes it.
    "ALTER TABLE allowlist ADD COLUMN role TEXT NOT NULL DEFAULT 'member';
     ALTER TABLE groups ADD COLUMN opened_by TEXT;
     ALTER TABLE drops ADD COLUMN reason TEXT;
     ALTER TABLE events ADD COLUMN sender_id TEXT;
     ALTER TABLE events ADD COLUMN group_chat TEXT;
     ALTER TABLE events ADD COLUMN admitted_rev INTEGER NOT NULL DEFAULT 0;
     CREATE TABLE access_revision (
        id INTEGER PRIMARY KEY CHECK (id = 0),
        rev INTEGER NOT NULL
     );
     INSERT INTO access_revision (id, rev) VALUES (0, 1);
     CREATE TABLE invites (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        adapter TEXT NOT NULL,
        salt BLOB NOT NULL,
        code_hash BLOB NOT NULL,
        role TEXT NOT NULL,
        for_group INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
     );
     CREATE TABLE pairing_failures (
        adapter TEXT NOT NULL,
        sender_id TEXT NOT NULL,
        at INTEGER NOT NULL
     );
     CREATE INDEX pairing_failures_by_adapter ON pairing_failures (adapter, at);
     CREATE TABLE pairing_blocks (
        adapter TEXT NOT NULL,
        sender_id TEXT NOT NULL,
        until INTEGER NOT NULL,
        PRIMARY KEY (adapter, sender_id)
     ) WITHOUT ROWID;
     CREATE TABLE lockdown (
        id INTEGER PRIMARY KEY CHECK (id = 0),
        since INTEGER NOT NULL,
        reason TEXT,
        closed_groups TEXT NOT NULL
     );
     CREATE TABLE alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        adapter TEXT,
        kind TEXT NOT NULL,
        text TEXT NOT NULL,
        count INTEGER NOT NULL,
        from_terminal INTEGER NOT NULL
     );
     CREATE TABLE drop_tally (
        adapter TEXT NOT NULL,
        hour INTEGER NOT NULL,
        reason TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (adapter, hour, reason)
     ) WITHOUT ROWID;
     CREATE TRIGGER allowlist_ins AFTER INSERT ON allowlist BEGIN UPDATE access_revision SET rev = rev + 1; END;
     CREATE TRIGGER allowlist_upd AFTER UPDATE ON allowlist BEGIN UPDATE access_revision SET rev = rev + 1; END;
     CREATE TRIGGER allowlist_del AFTER DELETE ON allowlist BEGIN UPDATE access_revision SET rev = rev + 1; END;
     CREATE TRIGGER groups_ins AFTER INSERT ON groups BEGIN UPDATE access_revision SET rev = rev + 1; END;
     CREATE TRIGGER groups_upd AFTER UPDATE ON groups BEGIN UPDATE access_revision SET rev = rev + 1; END;
     CREATE TRIGGER groups_del AFTER DELETE ON groups BEGIN UPDATE access_revision SET rev = rev + 1; END;
     CREATE TRIGGER lockdown_ins AFTER INSERT ON lockdown BEGIN UPDATE access_revision SET rev = rev + 1; END;
     CREATE TRIGGER lockdown_del AFTER DELETE ON lockdown BEGIN UPDATE access_revision SET rev = rev + 1; END;",
    // 7: the permission relay: prompts (one per request, owned by the
    // process that relayed it), their copies in chats, and time-boxed rules.
    "CREATE TABLE relay_prompts (
        token TEXT PRIMARY KEY,
        request_id TEXT NOT NULL,
        pid INTEGER NOT NULL,
        tool_name TEXT NOT NULL,
        description TEXT NOT NULL,
        input_preview TEXT NOT NULL,
        preview_cut INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        nudge_at INTEGER,
        state TEXT NOT NULL,
        decided_by TEXT,
        decided_on TEXT,
        decided_at INTEGER,
        rule_until INTEGER,
        notified INTEGER NOT NULL DEFAULT 0
     );
     CREATE INDEX relay_prompts_state ON relay_prompts (state, pid);
     CREATE INDEX relay_prompts_request ON relay_prompts (request_id, pid);
     CREATE TABLE relay_copies (
        token TEXT NOT NULL,
        adapter TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        message_id TEXT NOT NULL,
        PRIMARY KEY (token, adapter, chat_id, message_id)
     ) WITHOUT ROWID;
     CREATE TABLE relay_rules (
        tool_name TEXT PRIMARY KEY,
        until INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        uses INTEGER NOT NULL DEFAULT 0
     ) WITHOUT ROWID;",
    // 8: the audit trail: one append-only, hash-chained table, searchable
    // with FTS5 over the summary and the kept text. The index is filled
    // off the hot path (`audit_meta.fts_indexed` says how far), not by a
    // trigger on every insert.
    "CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        adapter TEXT,
        chat TEXT,
        sender_id TEXT,
        sender_handle TEXT,
        session TEXT,
        summary TEXT NOT NULL,
        content TEXT,
        content_digest TEXT,
        content_len INTEGER,
        detail TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
     );
     CREATE INDEX audit_kind ON audit (kind, id);
     CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
     CREATE VIRTUAL TABLE audit_fts USING fts5(summary, content, content='audit', content_rowid='id');
     CREATE TABLE audit_anchor (
        id INTEGER PRIMARY KEY,
        prev_hash TEXT NOT NULL,
        removed INTEGER NOT NULL,
        at INTEGER NOT NULL
     );
     CREATE TABLE audit_meta (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;",
    // 9: several sessions on one state directory (the hub): which session
    // each waiting event goes to (none: held until its chat is bound), the
    // sessions seen, each chat's binding, the notices a chat was given, who
    // holds each platform connection, whose permission prompt is whose, and
    // the adapter calls a session hands to the process holding the
    // connection (an adapter whose state lives in that process: a page).
    "ALTER TABLE events ADD COLUMN session TEXT;
     ALTER TABLE events ADD COLUMN chat TEXT;
     CREATE INDEX events_session ON events (session, seq);
     CREATE TABLE hub_sessions (
        name TEXT PRIMARY KEY,
        cwd TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        stopped_at INTEGER
     );
     CREATE TABLE hub_routes (
        adapter TEXT NOT NULL,
        chat TEXT NOT NULL,
        session TEXT NOT NULL,
        at INTEGER NOT NULL,
        by TEXT NOT NULL,
        PRIMARY KEY (adapter, chat)
     ) WITHOUT ROWID;
     CREATE TABLE hub_notices (
        adapter TEXT NOT NULL,
        chat TEXT NOT NULL,
        kind TEXT NOT NULL,
        session TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (adapter, chat, kind)
     ) WITHOUT ROWID;
     CREATE TABLE hub_connections (
        adapter TEXT PRIMARY KEY,
        session TEXT NOT NULL,
        pid INTEGER NOT NULL,
        since INTEGER NOT NULL
     ) WITHOUT ROWID;
     ALTER TABLE relay_prompts ADD COLUMN session TEXT NOT NULL DEFAULT '';
     CREATE TABLE hub_calls (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        adapter TEXT NOT NULL,
        caller TEXT NOT NULL,
        call TEXT NOT NULL,
        result TEXT,
        created_at INTEGER NOT NULL,
        taken_at INTEGER,
        done_at INTEGER
     );
     CREATE INDEX hub_calls_waiting ON hub_calls (adapter, id) WHERE taken_at IS NULL;",
];

/// Prepared statements kept per connection (the host has about 30).
const STATEMENT_CACHE: usize = 64;

/// A shared handle on the database.
#[derive(Clone, Debug)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
    /// The directory holding the file (none in memory), for messages.
    dir: Option<Arc<Path>>,
}

impl Db {
    /// Open (creating and migrating) the database at `path`. A directory that
    /// cannot be written is reported as such ([`DbError::ReadOnly`]), not as
    /// whichever SQLite call tripped over it first.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let read_only = |e: DbError| match writable(dir) {
            Err(why)
                if (e.is_read_only() || e.code() == Some(ErrorCode::CannotOpen))
                    && matches!(
                        why.kind(),
                        std::io::ErrorKind::ReadOnlyFilesystem
                            | std::io::ErrorKind::PermissionDenied
                    ) =>
            {
                DbError::ReadOnly {
                    dir: dir.display().to_string(),
                    why: why.to_string(),
                }
            }
            _ => e,
        };
        let conn = Connection::open(path)
            .map_err(|source| DbError::Open {
                path: path.display().to_string(),
                source,
            })
            .map_err(read_only)?;
        let mut db = Self::init(conn).map_err(read_only)?;
        db.dir = Some(Arc::from(dir));
        Ok(db)
    }

    /// An in-memory database, for tests.
    pub fn in_memory() -> Result<Self, DbError> {
        Self::init(Connection::open_in_memory()?)
    }

    /// The directory holding the database file (`None` in memory).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Commits one small write (the schema version, set to itself), so that
    /// a caller waiting out a full disk learns whether SQLite can append to
    /// its log again, without touching anything a reader sees.
    pub fn probe_write(&self) -> Result<(), DbError> {
        let conn = self.lock();
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; PRAGMA user_version = {version}; COMMIT;"
        ))
        .inspect_err(|_| {
            let _ = conn.execute_batch("ROLLBACK");
        })?;
        Ok(())
    }

    fn init(conn: Connection) -> Result<Self, DbError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Every statement the host runs per message stays prepared: past the
        // default of 16 the cache evicts, and re-preparing costs more than
        // running most of them.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            conn.execute_batch(&format!(
                "BEGIN; {sql} PRAGMA user_version = {}; COMMIT;",
                i + 1
            ))?;
        }
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            dir: None,
        })
    }

    /// Lock the connection. A poisoned lock is taken over: SQLite keeps its
    /// own consistency, and a panic elsewhere must not stop the host.
    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether this process may write in `dir`: `EROFS` on a read-only mount
/// (for root too), `EACCES` without permission.
pub fn writable(dir: &Path) -> std::io::Result<()> {
    rustix::fs::access(dir, rustix::fs::Access::WRITE_OK).map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.db");
        Db::open(&path).unwrap();
        let db = Db::open(&path).unwrap();
        let v: i64 = db
            .lock()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
    }

    #[test]
    fn a_full_database_is_told_apart_from_other_failures() {
        let db = Db::in_memory().unwrap();
        let conn = db.lock();
        conn.execute_batch("CREATE TABLE big (b BLOB)").unwrap();
        let pages: i64 = conn
            .pragma_query_value(None, "page_count", |r| r.get(0))
            .unwrap();
        conn.pragma_update(None, "max_page_count", pages + 2)
            .unwrap();
        let full = (0..100)
            .find_map(|_| {
                conn.execute("INSERT INTO big VALUES (zeroblob(3000))", [])
                    .err()
            })
            .map(DbError::from)
            .expect("the page limit was never reached");
        assert!(full.is_full(), "{full}");
        assert!(!full.is_read_only());
        let other = DbError::from(
            conn.execute("INSERT INTO nowhere VALUES (1)", [])
                .unwrap_err(),
        );
        assert!(!other.is_full() && !other.is_read_only(), "{other}");
        let read_only = DbError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
            None,
        ));
        assert!(read_only.is_read_only() && !read_only.is_full());
    }

    #[test]
    fn the_probe_commits_and_changes_nothing() {
        let db = Db::in_memory().unwrap();
        db.probe_write().unwrap();
        db.probe_write().unwrap();
        let v: i64 = db
            .lock()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64, "the probe changes nothing");
    }

    #[test]
    fn an_episode_is_said_once_and_its_end_once() {
        let mut e = Episode::default();
        assert_eq!(e.succeeded(), None, "no episode, nothing ended");
        assert!(e.failed(), "the first failure starts it");
        assert!(!e.failed() && !e.failed(), "retries are not said again");
        assert_eq!(e.succeeded().map(|(n, _)| n), Some(3));
        assert_eq!(e.succeeded(), None);
        assert!(e.failed(), "a new episode is said again");
    }

    #[test]
    fn a_directory_that_cannot_be_written_is_named_at_open() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("gone").join("a.db");
        // Not there at all: a plain open error, not a read-only one.
        let e = Db::open(&missing).unwrap_err();
        assert!(!matches!(e, DbError::ReadOnly { .. }), "{e}");
        assert!(writable(tmp.path()).is_ok());
    }

    #[test]
    fn queue_positions_are_not_reused_after_the_top_rows_go() {
        let db = Db::in_memory().unwrap();
        let conn = db.lock();
        let insert = |line: &str| {
            conn.execute(
                "INSERT INTO events (adapter, line, accepted_at) VALUES ('a', ?1, 0)",
                [line],
            )
            .unwrap();
            conn.last_insert_rowid()
        };
        let first = insert("one");
        conn.execute("DELETE FROM events", []).unwrap();
        assert!(
            insert("two") > first,
            "a deleted position was handed out again"
        );
    }
}
