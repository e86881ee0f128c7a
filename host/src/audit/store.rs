//! The record in SQLite: one append-only table, chained row by row.
//!
//! A row is chained inside the transaction that writes it (an immediate
//! one, or the caller's, such as the queue's), so every process that shares
//! the database (servers and the terminal's commands) extends one chain in
//! one order. An update is refused by a trigger; a deletion is not (retention
//! needs it), which is what the chain is for.

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use serde::Serialize;
use serde_json::json;

use super::chain::{GENESIS, Record, Walk, Walker, short};
use super::content;
use super::entry::{Entry, Kind};
use crate::db::{Db, DbError};
use crate::manifest::AuditConfig;

const COLUMNS: &str = "id, at_ms, kind, adapter, chat, sender_id, sender_handle, session, summary, \
                       content, content_digest, content_len, detail, prev_hash, hash";

/// The record, and how rows are written to it.
#[derive(Clone, Debug)]
pub struct AuditStore {
    db: Db,
    config: AuditConfig,
    session: Option<String>,
    /// The digest key, read once.
    key: std::sync::Arc<std::sync::OnceLock<Vec<u8>>>,
}

/// Rows put in the search index per transaction, so that indexing never
/// holds the database long.
const INDEX_CHUNK: i64 = 500;

/// What a search is narrowed to.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only rows at or after this (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Only this kind.
    pub kind: Option<Kind>,
    /// Only this adapter.
    pub adapter: Option<String>,
    /// Only this sender id.
    pub sender: Option<String>,
}

/// What `airlock audit status` shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Status {
    /// Rows in the table.
    pub rows: i64,
    /// The newest row's id and hash.
    pub head: Option<(i64, String)>,
    /// The newest checkpoint row's id and hash.
    pub last_checkpoint: Option<(i64, String)>,
    /// The oldest row kept.
    pub first_id: Option<i64>,
    /// The last row shipped to the exporter, if one is configured.
    pub exported_id: i64,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn record(r: &Row<'_>) -> rusqlite::Result<Record> {
    Ok(Record {
        id: r.get(0)?,
        at_ms: r.get(1)?,
        kind: r.get(2)?,
        adapter: r.get(3)?,
        chat: r.get(4)?,
        sender_id: r.get(5)?,
        sender_handle: r.get(6)?,
        session: r.get(7)?,
        summary: r.get(8)?,
        content: r.get(9)?,
        content_digest: r.get(10)?,
        content_len: r.get(11)?,
        detail: r.get(12)?,
        prev_hash: r.get(13)?,
        hash: r.get(14)?,
    })
}

/// Every loaded secret out of `text`.
fn scrub(text: &str) -> String {
    crate::secrets::loaded::redact(text).into_owned()
}

impl AuditStore {
    /// The record in `db`, written as `config` says, each row naming `session`.
    pub fn new(db: Db, config: &AuditConfig, session: Option<String>) -> Self {
        Self {
            db,
            config: config.clone(),
            session,
            key: Default::default(),
        }
    }

    /// Whether rows are written at all.
    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// The key digests are made with, created on first use.
    fn key(conn: &Connection) -> Result<Vec<u8>, DbError> {
        if let Some(k) = conn
            .prepare_cached("SELECT value FROM audit_meta WHERE name = 'digest_key'")?
            .query_row([], |r| r.get::<_, Vec<u8>>(0))
            .optional()?
        {
            return Ok(k);
        }
        let mut key = vec![0u8; 32];
        getrandom::fill(&mut key).map_err(|e| DbError::Random(e.to_string()))?;
        conn.execute(
            "INSERT OR IGNORE INTO audit_meta (name, value) VALUES ('digest_key', ?1)",
            params![key],
        )?;
        Self::key(conn)
    }

    fn head_in(conn: &Connection) -> Result<(i64, String), DbError> {
        Ok(conn
            .prepare_cached("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .unwrap_or((0, GENESIS.to_owned())))
    }

    /// Append `entries` inside the caller's write transaction (the queue's,
    /// on the hot path). Returns the new head's id.
    pub fn append_in(&self, conn: &Connection, entries: &[Entry]) -> Result<i64, DbError> {
        if !self.config.enabled || entries.is_empty() {
            return Ok(0);
        }
        let key: &[u8] = if self.config.content == crate::manifest::ContentMode::Digest {
            match self.key.get() {
                Some(k) => k,
                None => {
                    let k = Self::key(conn)?;
                    self.key.get_or_init(|| k)
                }
            }
        } else {
            &[]
        };
        let (mut id, mut prev) = Self::head_in(conn)?;
        let at_ms = now_ms();
        for e in entries {
            id += 1;
            let text = e.text.as_deref().map(scrub);
            let kept = content::keep(self.config.content, key, text.as_deref());
            let mut r = Record {
                id,
                at_ms,
                kind: e.kind.as_str().to_owned(),
                adapter: e.adapter.as_deref().map(scrub),
                chat: e.chat.as_deref().map(scrub),
                sender_id: e.sender_id.as_deref().map(scrub),
                sender_handle: e.sender_handle.as_deref().map(scrub),
                session: self.session.clone(),
                summary: scrub(&crate::text::one_line(&e.summary, 400)),
                content: kept.content,
                content_digest: kept.digest,
                content_len: kept.len,
                detail: scrub(&e.detail.to_string()),
                prev_hash: String::new(),
                hash: String::new(),
            };
            r.seal(&prev);
            Self::insert(conn, &r)?;
            prev = r.hash;
        }
        let every = i64::from(self.config.checkpoint_every.max(1));
        if id - Self::last_checkpoint_in(conn)?.map_or(0, |c| c.0) >= every {
            self.checkpoint_in(conn, "every")?;
        }
        Ok(id)
    }

    fn insert(conn: &Connection, r: &Record) -> Result<(), DbError> {
        conn.prepare_cached(&format!(
            "INSERT INTO audit ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
        ))?
        .execute(params![
            r.id,
            r.at_ms,
            r.kind,
            r.adapter,
            r.chat,
            r.sender_id,
            r.sender_handle,
            r.session,
            r.summary,
            r.content,
            r.content_digest,
            r.content_len,
            r.detail,
            r.prev_hash,
            r.hash
        ])?;
        Ok(())
    }

    /// Append `entries` in a transaction of their own.
    pub fn append(&self, entries: &[Entry]) -> Result<(), DbError> {
        if !self.config.enabled || entries.is_empty() {
            return Ok(());
        }
        let mut conn = self.db.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        self.append_in(&tx, entries)?;
        tx.commit()?;
        Ok(())
    }

    fn last_checkpoint_in(conn: &Connection) -> Result<Option<(i64, String)>, DbError> {
        Ok(conn
            .prepare_cached(
                "SELECT id, hash FROM audit WHERE kind = 'checkpoint' ORDER BY id DESC LIMIT 1",
            )?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// Writes a checkpoint row naming the head; logs the checkpoint's own
    /// `HASH@ID`, which `verify --head` takes.
    fn checkpoint_in(&self, conn: &Connection, why: &str) -> Result<(String, i64), DbError> {
        let (head_id, head) = Self::head_in(conn)?;
        let rows: i64 = conn
            .prepare_cached("SELECT count(*) FROM audit")?
            .query_row([], |r| r.get(0))?;
        let mut r = Record {
            id: head_id + 1,
            at_ms: now_ms(),
            kind: Kind::Checkpoint.as_str().to_owned(),
            adapter: None,
            chat: None,
            sender_id: None,
            sender_handle: None,
            session: self.session.clone(),
            summary: format!(
                "checkpoint ({why}): {rows} rows, head {}@{head_id}",
                short(&head)
            ),
            content: None,
            content_digest: None,
            content_len: None,
            detail: json!({"head": head, "head_id": head_id, "rows": rows, "why": why}).to_string(),
            prev_hash: String::new(),
            hash: String::new(),
        };
        r.seal(&head);
        Self::insert(conn, &r)?;
        tracing::info!(target: "airlock::audit", "audit checkpoint: {}@{}", r.hash, r.id);
        Ok((r.hash, r.id))
    }

    /// A checkpoint (`why`: `hourly`, `shutdown`) if rows came since the
    /// last one; its `HASH@ID`.
    pub fn checkpoint(&self, why: &str) -> Result<Option<(String, i64)>, DbError> {
        if !self.config.enabled {
            return Ok(None);
        }
        let mut conn = self.db.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (head_id, _) = Self::head_in(&tx)?;
        if head_id == 0 || Self::last_checkpoint_in(&tx)?.is_some_and(|c| c.0 == head_id) {
            return Ok(None);
        }
        let out = self.checkpoint_in(&tx, why)?;
        tx.commit()?;
        Ok(Some(out))
    }

    /// Walk the whole chain; with `head` (`HASH@N` kept elsewhere), also
    /// check that row N is still there with that hash.
    pub fn verify(&self, head: Option<&(String, i64)>) -> Result<Walk, DbError> {
        let conn = self.db.lock();
        let first: Option<(i64, String)> = conn
            .prepare_cached("SELECT id, prev_hash FROM audit ORDER BY id LIMIT 1")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let anchor = match first {
            Some((id, _)) if id > 1 => {
                let kept: Option<String> = conn
                    .prepare_cached("SELECT prev_hash FROM audit_anchor WHERE id = ?1")?
                    .query_row(params![id], |r| r.get(0))
                    .optional()?;
                match kept {
                    Some(prev) => Some((id, prev)),
                    None => {
                        return Ok(Walk::Broken {
                            rows: 0,
                            id: 1,
                            why: format!(
                                "rows 1 to {} are missing, and no retention anchor explains it",
                                id - 1
                            ),
                        });
                    }
                }
            }
            _ => None,
        };
        let mut walker = Walker::new(anchor).with_head(head.cloned());
        let mut st = conn.prepare(&format!("SELECT {COLUMNS} FROM audit ORDER BY id"))?;
        let mut rows = st.query([])?;
        while let Some(row) = rows.next()? {
            if !walker.step(&record(row)?) {
                break;
            }
        }
        Ok(walker.finish())
    }

    /// Puts rows written since the last call into the search index, a
    /// chunk per transaction; returns how many. Run off the hot path (and
    /// before every search, so that a search sees every row).
    pub fn index_pending(&self) -> Result<i64, DbError> {
        let mut total = 0;
        loop {
            let mut conn = self.db.lock();
            // Look before taking the write lock: most ticks find nothing.
            let behind: bool = conn
                .prepare_cached(
                    "SELECT coalesce((SELECT max(id) FROM audit), 0) >
                     coalesce((SELECT value FROM audit_meta WHERE name = 'fts_indexed'), 0)",
                )?
                .query_row([], |r| r.get(0))?;
            if !behind {
                return Ok(total);
            }
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let from = Self::meta_int(&tx, "fts_indexed")?;
            let to: Option<i64> = tx
                .prepare_cached(
                    "SELECT max(id) FROM (SELECT id FROM audit WHERE id > ?1 ORDER BY id LIMIT ?2)",
                )?
                .query_row(params![from, INDEX_CHUNK], |r| r.get(0))?;
            let Some(to) = to else {
                return Ok(total);
            };
            let n = tx
                .prepare_cached(
                    "INSERT INTO audit_fts (rowid, summary, content)
                     SELECT id, summary, content FROM audit WHERE id > ?1 AND id <= ?2",
                )?
                .execute(params![from, to])?;
            Self::set_meta_int(&tx, "fts_indexed", to)?;
            tx.commit()?;
            total += n as i64;
        }
    }

    fn meta_int(conn: &Connection, name: &str) -> Result<i64, DbError> {
        Ok(conn
            .prepare_cached("SELECT value FROM audit_meta WHERE name = ?1")?
            .query_row(params![name], |r| r.get::<_, i64>(0))
            .optional()?
            .unwrap_or(0))
    }

    fn set_meta_int(conn: &Connection, name: &str, value: i64) -> Result<(), DbError> {
        conn.prepare_cached(
            "INSERT INTO audit_meta (name, value) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )?
        .execute(params![name, value])?;
        Ok(())
    }

    /// Rows matching `query` (words, all of them) and `filter`, newest
    /// first, at most `limit`.
    pub fn search(
        &self,
        query: &str,
        filter: &Filter,
        limit: usize,
    ) -> Result<Vec<Record>, DbError> {
        let fts = fts_query(query);
        if fts.is_some() {
            self.index_pending()?;
        }
        let conn = self.db.lock();
        let mut sql = format!("SELECT {COLUMNS} FROM audit WHERE 1 = 1");
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        if let Some(q) = fts {
            args.push(Box::new(q));
            sql.push_str(&format!(
                " AND id IN (SELECT rowid FROM audit_fts WHERE audit_fts MATCH ?{})",
                args.len()
            ));
        }
        if let Some(s) = filter.since_ms {
            args.push(Box::new(s));
            sql.push_str(&format!(" AND at_ms >= ?{}", args.len()));
        }
        if let Some(k) = filter.kind {
            args.push(Box::new(k.as_str()));
            sql.push_str(&format!(" AND kind = ?{}", args.len()));
        }
        if let Some(a) = &filter.adapter {
            args.push(Box::new(a.clone()));
            sql.push_str(&format!(" AND adapter = ?{}", args.len()));
        }
        if let Some(s) = &filter.sender {
            args.push(Box::new(s.clone()));
            sql.push_str(&format!(" AND sender_id = ?{}", args.len()));
        }
        args.push(Box::new(limit as i64));
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ?{}", args.len()));
        let mut st = conn.prepare(&sql)?;
        let rows = st.query_map(rusqlite::params_from_iter(args.iter()), record)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Rows after `id`, oldest first, at most `limit` (for `tail` and export).
    pub fn after(&self, id: i64, limit: usize) -> Result<Vec<Record>, DbError> {
        let conn = self.db.lock();
        let mut st = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM audit WHERE id > ?1 ORDER BY id LIMIT ?2"
        ))?;
        let rows = st.query_map(params![id, limit as i64], record)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The row `id`.
    pub fn get(&self, id: i64) -> Result<Option<Record>, DbError> {
        Ok(self
            .db
            .lock()
            .prepare_cached(&format!("SELECT {COLUMNS} FROM audit WHERE id = ?1"))?
            .query_row(params![id], record)
            .optional()?)
    }

    /// The first row at or after `since_ms`'s id minus one, for exports
    /// that start later: rows after it are newer.
    pub fn id_before(&self, since_ms: i64) -> Result<i64, DbError> {
        Ok(self
            .db
            .lock()
            .prepare_cached("SELECT coalesce(min(id), 1 + coalesce((SELECT max(id) FROM audit), 0)) - 1 FROM audit WHERE at_ms >= ?1")?
            .query_row(params![since_ms], |r| r.get(0))?)
    }

    /// Deletes whole segments older than `keep_days`: every row before the
    /// last checkpoint older than that. The checkpoint stays as the anchor
    /// the rest of the chain starts from. Returns the rows removed.
    pub fn prune(&self, keep_days: u32) -> Result<i64, DbError> {
        let cutoff = now_ms() - i64::from(keep_days) * 86_400_000;
        let mut conn = self.db.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let anchor: Option<(i64, String)> = tx
            .prepare_cached(
                "SELECT id, prev_hash FROM audit WHERE kind = 'checkpoint' AND at_ms < ?1
                 ORDER BY id DESC LIMIT 1",
            )?
            .query_row(params![cutoff], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((id, prev)) = anchor else {
            return Ok(0);
        };
        // Out of the search index first (the index needs the values it holds).
        let indexed = Self::meta_int(&tx, "fts_indexed")?;
        tx.execute(
            "INSERT INTO audit_fts (audit_fts, rowid, summary, content)
             SELECT 'delete', id, summary, content FROM audit WHERE id < ?1 AND id <= ?2",
            params![id, indexed],
        )?;
        let removed = tx.execute("DELETE FROM audit WHERE id < ?1", params![id])? as i64;
        if removed > 0 {
            tx.execute(
                "INSERT OR REPLACE INTO audit_anchor (id, prev_hash, removed, at) VALUES (?1, ?2, ?3, ?4)",
                params![id, prev, removed, now_ms() / 1000],
            )?;
            tx.execute("DELETE FROM audit_anchor WHERE id < ?1", params![id])?;
            tracing::info!(target: "airlock::audit", removed, anchor = id, "audit: rows older than {keep_days} days removed");
        }
        tx.commit()?;
        Ok(removed)
    }

    /// Rows, head, last checkpoint and export lag.
    pub fn status(&self) -> Result<Status, DbError> {
        let conn = self.db.lock();
        let rows: i64 = conn.query_row("SELECT count(*) FROM audit", [], |r| r.get(0))?;
        let head = Self::head_in(&conn)?;
        let first_id: Option<i64> =
            conn.query_row("SELECT min(id) FROM audit", [], |r| r.get(0))?;
        Ok(Status {
            rows,
            head: (head.0 > 0).then_some(head),
            last_checkpoint: Self::last_checkpoint_in(&conn)?.map(|c| (c.0, c.1)),
            first_id,
            exported_id: Self::exported_in(&conn)?,
        })
    }

    fn exported_in(conn: &Connection) -> Result<i64, DbError> {
        Ok(conn
            .prepare_cached("SELECT value FROM audit_meta WHERE name = 'otlp_exported'")?
            .query_row([], |r| r.get::<_, i64>(0))
            .optional()?
            .unwrap_or(0))
    }

    /// The last row the exporter shipped.
    pub fn exported(&self) -> Result<i64, DbError> {
        Self::exported_in(&self.db.lock())
    }

    /// Rows up to `id` were shipped.
    pub fn set_exported(&self, id: i64) -> Result<(), DbError> {
        self.db.lock().execute(
            "INSERT INTO audit_meta (name, value) VALUES ('otlp_exported', ?1)
             ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
            params![id],
        )?;
        Ok(())
    }
}

/// Words as an FTS5 query that matches rows holding all of them; `None`
/// for a query with no word.
fn fts_query(query: &str) -> Option<String> {
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{w}\""))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::ContentMode;

    fn store(content: ContentMode, every: u32) -> AuditStore {
        AuditStore::new(
            Db::in_memory().unwrap(),
            &AuditConfig {
                content,
                checkpoint_every: every,
                ..AuditConfig::default()
            },
            Some("serve 1".into()),
        )
    }

    fn message(text: &str) -> Entry {
        Entry::new(Kind::Inbound, "message queued")
            .adapter("telegram")
            .chat("42")
            .sender("7", Some("alice"))
            .text(text)
    }

    fn verified_rows(s: &AuditStore) -> u64 {
        match s.verify(None).unwrap() {
            Walk::Verified { rows, .. } => rows,
            broken => panic!("{broken:?}"),
        }
    }

    #[test]
    fn rows_chain_and_checkpoint_every_n() {
        let s = store(ContentMode::Full, 3);
        for i in 0..7 {
            s.append(&[message(&format!("hello {i}"))]).unwrap();
        }
        // 7 rows and two checkpoints (after rows 3 and 6, counting themselves).
        let st = s.status().unwrap();
        assert_eq!(st.rows, 9, "{st:?}");
        assert_eq!(verified_rows(&s), 9);
        let cp = s.get(4).unwrap().unwrap();
        assert_eq!(cp.kind, "checkpoint");
        assert!(cp.detail.contains("\"head_id\":3"), "{}", cp.detail);
        assert_eq!(s.checkpoint("shutdown").unwrap().map(|c| c.1), Some(10));
        assert_eq!(s.checkpoint("shutdown").unwrap(), None, "nothing new since");
    }

    #[test]
    fn content_modes_and_search() {
        let full = store(ContentMode::Full, 1000);
        full.append(&[message("deploy the staging branch")])
            .unwrap();
        full.append(&[message("lunch?")]).unwrap();
        let found = full.search("staging", &Filter::default(), 10).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].content.as_deref(),
            Some("deploy the staging branch")
        );
        assert!(
            full.search("\"unbalanced", &Filter::default(), 10)
                .unwrap()
                .is_empty()
        );
        for mode in [ContentMode::Digest, ContentMode::None] {
            let s = store(mode, 1000);
            s.append(&[
                message("deploy the staging branch"),
                message("deploy the staging branch"),
            ])
            .unwrap();
            assert!(
                s.search("staging", &Filter::default(), 10)
                    .unwrap()
                    .is_empty()
            );
            let rows = s.after(0, 10).unwrap();
            assert_eq!(rows[0].content, None);
            assert_eq!(rows[0].content_digest, rows[1].content_digest);
            assert_eq!(
                rows[0].content_digest.is_some(),
                mode == ContentMode::Digest
            );
        }
        let filtered = full
            .search(
                "",
                &Filter {
                    kind: Some(Kind::Tool),
                    ..Filter::default()
                },
                10,
            )
            .unwrap();
        assert!(filtered.is_empty());
    }

    #[test]
    fn an_update_is_refused_and_tampering_is_found() {
        let s = store(ContentMode::Full, 1000);
        for i in 0..5 {
            s.append(&[message(&format!("m{i}"))]).unwrap();
        }
        let db = s.db.lock();
        assert!(
            db.execute("UPDATE audit SET summary = 'x' WHERE id = 2", [])
                .is_err()
        );
        db.execute_batch(
            "DROP TRIGGER audit_append_only; UPDATE audit SET summary = 'x' WHERE id = 2;",
        )
        .unwrap();
        drop(db);
        match s.verify(None).unwrap() {
            Walk::Broken { id, rows, .. } => assert_eq!((id, rows), (2, 1)),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn an_outside_head_finds_a_cut_tail() {
        let s = store(ContentMode::None, 1000);
        for i in 0..5 {
            s.append(&[message(&format!("m{i}"))]).unwrap();
        }
        let (hash, id) = s.checkpoint("shutdown").unwrap().unwrap();
        assert!(matches!(
            s.verify(Some(&(hash.clone(), id))).unwrap(),
            Walk::Verified { .. }
        ));
        s.db.lock()
            .execute("DELETE FROM audit WHERE id >= 4", [])
            .unwrap();
        assert!(
            matches!(s.verify(None).unwrap(), Walk::Verified { .. }),
            "without the head, a cut tail looks whole"
        );
        match s.verify(Some(&(hash, id))).unwrap() {
            Walk::Broken { why, .. } => assert!(why.contains("tail was cut off"), "{why}"),
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn retention_keeps_an_anchor_and_the_rest_verifies() {
        let s = store(ContentMode::None, 3);
        for i in 0..8 {
            s.append(&[message(&format!("m{i}"))]).unwrap();
        }
        // Age every row, then keep none of the old days.
        s.db.lock()
            .execute_batch("DROP TRIGGER audit_append_only; UPDATE audit SET at_ms = 0;")
            .unwrap();
        // Re-seal the aged rows so the chain is whole again.
        {
            let conn = s.db.lock();
            let rows: Vec<Record> = {
                let mut st = conn
                    .prepare(&format!("SELECT {COLUMNS} FROM audit ORDER BY id"))
                    .unwrap();
                st.query_map([], record)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
            };
            let mut prev = GENESIS.to_owned();
            for mut r in rows {
                r.seal(&prev);
                conn.execute(
                    "UPDATE audit SET prev_hash = ?1, hash = ?2 WHERE id = ?3",
                    params![r.prev_hash, r.hash, r.id],
                )
                .unwrap();
                prev = r.hash;
            }
        }
        let before = verified_rows(&s);
        let removed = s.prune(1).unwrap();
        assert!(removed > 0);
        match s.verify(None).unwrap() {
            Walk::Verified {
                rows, anchored_at, ..
            } => {
                assert_eq!(rows + removed as u64, before);
                assert!(anchored_at.is_some());
            }
            v => panic!("{v:?}"),
        }
        s.append(&[message("after")]).unwrap();
        assert!(matches!(s.verify(None).unwrap(), Walk::Verified { .. }));
        s.db.lock().execute("DELETE FROM audit_anchor", []).unwrap();
        assert!(matches!(
            s.verify(None).unwrap(),
            Walk::Broken { id: 1, .. }
        ));
    }

    #[test]
    fn fts_queries_are_words() {
        assert_eq!(
            fts_query("deploy staging"),
            Some("\"deploy\" \"staging\"".into())
        );
        assert_eq!(fts_query("\"x\" OR y*"), Some("\"x\" \"OR\" \"y\"".into()));
        assert_eq!(fts_query("  -- "), None);
    }
}
