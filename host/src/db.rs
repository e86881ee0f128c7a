//! The host's SQLite database (`airlock.db`, WAL).
//!
//! One connection behind a mutex: the host's writes are small and few, and a
//! single writer keeps ordering obvious. Schema changes are numbered
//! migrations applied at open.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;

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
}

impl Db {
    /// Open (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let conn = Connection::open(path).map_err(|source| DbError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Self::init(conn)
    }

    /// An in-memory database, for tests.
    pub fn in_memory() -> Result<Self, DbError> {
        Self::init(Connection::open_in_memory()?)
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
        })
    }

    /// Lock the connection. A poisoned lock is taken over: SQLite keeps its
    /// own consistency, and a panic elsewhere must not stop the host.
    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
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
