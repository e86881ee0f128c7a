//! What the hub keeps, behind one narrow interface.
//!
//! [`HubStore`] is everything the hub asks of storage: the sessions seen,
//! each chat's binding, the held events a binding releases, the notices a
//! chat was given, and who holds which platform connection. [`SqliteHub`]
//! keeps it in the state directory's database; a backend for a shared
//! database server implements the same trait, and nothing of the hub
//! changes.

use rusqlite::{OptionalExtension, params};

use crate::db::{Db, DbError};

/// A session as the hub knows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SessionRow {
    /// Its name.
    pub name: String,
    /// The directory it was last started in.
    pub cwd: String,
    /// The process that last ran it.
    pub pid: u32,
    /// When it last started (unix seconds).
    pub started_at: i64,
    /// When it last stopped cleanly, if it did after it started.
    pub stopped_at: Option<i64>,
    /// Events waiting for it.
    pub waiting: usize,
}

/// A chat's binding.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RouteRow {
    /// The adapter.
    pub adapter: String,
    /// The chat, unqualified.
    pub chat: String,
    /// The session it goes to.
    pub session: String,
    /// When it was bound (unix seconds).
    pub at: i64,
    /// Who bound it: `terminal`, or the sender's name on the platform.
    pub by: String,
}

/// Who holds a platform connection.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ConnectionRow {
    /// The adapter.
    pub adapter: String,
    /// The session whose process holds it (or last held it).
    pub session: String,
    /// That process.
    pub pid: u32,
    /// Since when (unix seconds).
    pub since: i64,
}

/// An adapter call a session handed to the process that holds the
/// adapter's connection (see [`HubStore::put_call`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRow {
    /// Its id.
    pub id: i64,
    /// The adapter.
    pub adapter: String,
    /// The session that made it, woken when it is answered.
    pub caller: String,
    /// The call, as the router wrote it (opaque here).
    pub call: String,
}

/// What became of a call its caller gives up on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Withdrawn {
    /// Nobody took it: it never runs.
    NeverRan,
    /// It was taken but not answered (or is gone): it may have run.
    Taken,
    /// It was answered meanwhile: the result.
    Answered(String),
}

/// A notice a chat is given once: that its session is away, or that it
/// must pick one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// "Session NAME is away."
    Away,
    /// "Several sessions are live; pick one."
    Held,
}

impl Notice {
    fn as_str(self) -> &'static str {
        match self {
            Notice::Away => "away",
            Notice::Held => "held",
        }
    }
}

/// The hub's storage.
pub trait HubStore: Send + Sync + std::fmt::Debug {
    /// `name` started in `cwd` as `pid`: recorded, and its away notices
    /// forgotten (a chat is told again the next time it goes away).
    fn attach(&self, name: &str, cwd: &str, pid: u32) -> Result<(), DbError>;
    /// `name` stopped cleanly.
    fn detach(&self, name: &str) -> Result<(), DbError>;
    /// The directory `name` was last started in, if it ever was.
    fn cwd_of(&self, name: &str) -> Result<Option<String>, DbError>;
    /// Every session seen, by name, with its waiting events.
    fn sessions(&self) -> Result<Vec<SessionRow>, DbError>;
    /// The names of every session seen, sorted (cheaper than `sessions`).
    fn names(&self) -> Result<Vec<String>, DbError>;
    /// Events held because their chat is bound to no session.
    fn held(&self) -> Result<usize, DbError>;
    /// The chats with held events: adapter, chat and how many, in order.
    fn held_chats(&self) -> Result<Vec<(String, String, usize)>, DbError>;
    /// Events waiting for `session`.
    fn waiting(&self, session: &str) -> Result<usize, DbError>;
    /// The session `chat` of `adapter` is bound to.
    fn route_of(&self, adapter: &str, chat: &str) -> Result<Option<String>, DbError>;
    /// [`route_of`](Self::route_of) and [`names`](Self::names) at once, as
    /// routing asks them; a backend may answer both in one read.
    fn route_and_names(
        &self,
        adapter: &str,
        chat: &str,
    ) -> Result<(Option<String>, Vec<String>), DbError> {
        Ok((self.route_of(adapter, chat)?, self.names()?))
    }
    /// The sessions other than `me` that events wait for, of chats bound to
    /// no session (routed to a session because it was the only live one).
    fn stranded(&self, me: &str) -> Result<Vec<String>, DbError>;
    /// Hands `to` the events waiting for `from` of chats bound to no
    /// session, in their meta too. Returns how many.
    fn adopt_unbound(&self, from: &str, to: &str) -> Result<usize, DbError>;
    /// Binds `chat` to `session` (replacing a binding), and hands it the
    /// chat's held events, in order. Returns how many it got.
    fn bind(&self, adapter: &str, chat: &str, session: &str, by: &str) -> Result<usize, DbError>;
    /// Removes `chat`'s binding; false if it had none.
    fn unbind(&self, adapter: &str, chat: &str) -> Result<bool, DbError>;
    /// Every binding.
    fn routes(&self) -> Result<Vec<RouteRow>, DbError>;
    /// Records that `chat` is given `notice` for `session`; true the first
    /// time (until the notice is forgotten), false when it already was.
    fn first_notice(
        &self,
        adapter: &str,
        chat: &str,
        notice: Notice,
        session: &str,
    ) -> Result<bool, DbError>;
    /// `session` (as `pid`) holds `adapter`'s platform connection now.
    fn hold_connection(&self, adapter: &str, session: &str, pid: u32) -> Result<(), DbError>;
    /// Who holds (or last held) each connection.
    fn connections(&self) -> Result<Vec<ConnectionRow>, DbError>;
    /// Stores `call` of session `caller` for whichever process holds
    /// `adapter`'s connection; its id.
    fn put_call(&self, adapter: &str, caller: &str, call: &str) -> Result<i64, DbError>;
    /// Takes the calls of `adapters` that nobody took yet, made at or
    /// after `since` (unix seconds; older ones were given up), oldest
    /// first. Each call is taken once.
    fn take_calls(&self, adapters: &[String], since: i64) -> Result<Vec<CallRow>, DbError>;
    /// Writes the result of taken call `id`; false when its caller gave up
    /// on it meanwhile.
    fn finish_call(&self, id: i64, result: &str) -> Result<bool, DbError>;
    /// The result of call `id`, once there is one; the call is then
    /// forgotten.
    fn take_result(&self, id: i64) -> Result<Option<String>, DbError>;
    /// Its caller gives up on call `id`: the call is forgotten, and what
    /// had become of it is returned.
    fn withdraw_call(&self, id: i64) -> Result<Withdrawn, DbError>;
    /// Forgets calls made before `before` (unix seconds), however far they
    /// got: their callers stopped waiting long ago. How many.
    fn prune_calls(&self, before: i64) -> Result<usize, DbError>;
}

/// [`HubStore`] in the state directory's SQLite database.
#[derive(Clone, Debug)]
pub struct SqliteHub {
    db: Db,
}

impl SqliteHub {
    /// The hub's tables in `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl SqliteHub {
    /// Every row `sql` selects, each turned into a `T` by `map`.
    fn all<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, DbError> {
        let conn = self.db.lock();
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params, map)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl HubStore for SqliteHub {
    fn attach(&self, name: &str, cwd: &str, pid: u32) -> Result<(), DbError> {
        let mut conn = self.db.lock();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO hub_sessions (name, cwd, pid, started_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(name) DO UPDATE SET cwd = excluded.cwd, pid = excluded.pid,
               started_at = excluded.started_at, stopped_at = NULL",
            params![name, cwd, pid, now()],
        )?;
        tx.execute(
            "DELETE FROM hub_notices WHERE kind = 'away' AND session = ?1",
            params![name],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn detach(&self, name: &str) -> Result<(), DbError> {
        self.db.lock().execute(
            "UPDATE hub_sessions SET stopped_at = ?2 WHERE name = ?1",
            params![name, now()],
        )?;
        Ok(())
    }

    fn cwd_of(&self, name: &str) -> Result<Option<String>, DbError> {
        Ok(self
            .db
            .lock()
            .prepare_cached("SELECT cwd FROM hub_sessions WHERE name = ?1")?
            .query_row(params![name], |r| r.get(0))
            .optional()?)
    }

    fn sessions(&self) -> Result<Vec<SessionRow>, DbError> {
        self.all(
            "SELECT s.name, s.cwd, s.pid, s.started_at, s.stopped_at,
                    (SELECT COUNT(*) FROM events e WHERE e.session = s.name)
             FROM hub_sessions s ORDER BY s.name",
            [],
            |r| {
                Ok(SessionRow {
                    name: r.get(0)?,
                    cwd: r.get(1)?,
                    pid: r.get(2)?,
                    started_at: r.get(3)?,
                    stopped_at: r.get(4)?,
                    waiting: r.get::<_, i64>(5)? as usize,
                })
            },
        )
    }

    fn names(&self) -> Result<Vec<String>, DbError> {
        self.all("SELECT name FROM hub_sessions ORDER BY name", [], |r| {
            r.get(0)
        })
    }

    fn held(&self) -> Result<usize, DbError> {
        let n: i64 = self
            .db
            .lock()
            .prepare_cached(
                "SELECT COUNT(*) FROM events WHERE session IS NULL AND chat IS NOT NULL",
            )?
            .query_row([], |r| r.get(0))?;
        Ok(n as usize)
    }

    fn held_chats(&self) -> Result<Vec<(String, String, usize)>, DbError> {
        self.all(
            "SELECT adapter, chat, COUNT(*) FROM events WHERE session IS NULL AND chat IS NOT NULL
             GROUP BY adapter, chat ORDER BY adapter, chat",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as usize)),
        )
    }

    fn waiting(&self, session: &str) -> Result<usize, DbError> {
        let n: i64 = self
            .db
            .lock()
            .prepare_cached("SELECT COUNT(*) FROM events WHERE session = ?1")?
            .query_row(params![session], |r| r.get(0))?;
        Ok(n as usize)
    }

    fn route_of(&self, adapter: &str, chat: &str) -> Result<Option<String>, DbError> {
        Ok(self
            .db
            .lock()
            .prepare_cached("SELECT session FROM hub_routes WHERE adapter = ?1 AND chat = ?2")?
            .query_row(params![adapter, chat], |r| r.get(0))
            .optional()?)
    }

    fn route_and_names(
        &self,
        adapter: &str,
        chat: &str,
    ) -> Result<(Option<String>, Vec<String>), DbError> {
        let conn = self.db.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT 0, session FROM hub_routes WHERE adapter = ?1 AND chat = ?2
             UNION ALL SELECT 1, name FROM hub_sessions ORDER BY 1, 2",
        )?;
        let mut rows = stmt.query(params![adapter, chat])?;
        let (mut bound, mut names) = (None, Vec::new());
        while let Some(row) = rows.next()? {
            let value: String = row.get(1)?;
            if row.get::<_, i64>(0)? == 0 {
                bound = Some(value);
            } else {
                names.push(value);
            }
        }
        Ok((bound, names))
    }

    fn stranded(&self, me: &str) -> Result<Vec<String>, DbError> {
        self.all(
            "SELECT DISTINCT session FROM events e
             WHERE session IS NOT NULL AND session != ?1 AND chat IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM hub_routes r
                               WHERE r.adapter = e.adapter AND r.chat = e.chat)
             ORDER BY session",
            params![me],
            |r| r.get(0),
        )
    }

    fn adopt_unbound(&self, from: &str, to: &str) -> Result<usize, DbError> {
        Ok(self.db.lock().execute(
            "UPDATE events SET session = ?2, line = json_set(line, '$.params.meta.session', ?2)
             WHERE session = ?1 AND chat IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM hub_routes r
                               WHERE r.adapter = events.adapter AND r.chat = events.chat)",
            params![from, to],
        )?)
    }

    fn bind(&self, adapter: &str, chat: &str, session: &str, by: &str) -> Result<usize, DbError> {
        let mut conn = self.db.lock();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO hub_routes (adapter, chat, session, at, by) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(adapter, chat) DO UPDATE SET session = excluded.session,
               at = excluded.at, by = excluded.by",
            params![adapter, chat, session, now(), by],
        )?;
        // The held events now know their session, in their meta too.
        let moved = tx.execute(
            "UPDATE events SET session = ?3, line = json_set(line, '$.params.meta.session', ?3)
             WHERE session IS NULL AND adapter = ?1 AND chat = ?2",
            params![adapter, chat, session],
        )?;
        tx.execute(
            "DELETE FROM hub_notices WHERE adapter = ?1 AND chat = ?2",
            params![adapter, chat],
        )?;
        tx.commit()?;
        Ok(moved)
    }

    fn unbind(&self, adapter: &str, chat: &str) -> Result<bool, DbError> {
        let mut conn = self.db.lock();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "DELETE FROM hub_routes WHERE adapter = ?1 AND chat = ?2",
            params![adapter, chat],
        )?;
        tx.execute(
            "DELETE FROM hub_notices WHERE adapter = ?1 AND chat = ?2",
            params![adapter, chat],
        )?;
        tx.commit()?;
        Ok(n > 0)
    }

    fn routes(&self) -> Result<Vec<RouteRow>, DbError> {
        self.all(
            "SELECT adapter, chat, session, at, by FROM hub_routes ORDER BY adapter, chat",
            [],
            |r| {
                Ok(RouteRow {
                    adapter: r.get(0)?,
                    chat: r.get(1)?,
                    session: r.get(2)?,
                    at: r.get(3)?,
                    by: r.get(4)?,
                })
            },
        )
    }

    fn first_notice(
        &self,
        adapter: &str,
        chat: &str,
        notice: Notice,
        session: &str,
    ) -> Result<bool, DbError> {
        let n = self
            .db
            .lock()
            .prepare_cached(
                "INSERT INTO hub_notices (adapter, chat, kind, session, at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
            )?
            .execute(params![adapter, chat, notice.as_str(), session, now()])?;
        Ok(n > 0)
    }

    fn hold_connection(&self, adapter: &str, session: &str, pid: u32) -> Result<(), DbError> {
        self.db.lock().execute(
            "INSERT INTO hub_connections (adapter, session, pid, since) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(adapter) DO UPDATE SET session = excluded.session, pid = excluded.pid,
               since = excluded.since",
            params![adapter, session, pid, now()],
        )?;
        Ok(())
    }

    fn connections(&self) -> Result<Vec<ConnectionRow>, DbError> {
        self.all(
            "SELECT adapter, session, pid, since FROM hub_connections ORDER BY adapter",
            [],
            |r| {
                Ok(ConnectionRow {
                    adapter: r.get(0)?,
                    session: r.get(1)?,
                    pid: r.get(2)?,
                    since: r.get(3)?,
                })
            },
        )
    }

    fn put_call(&self, adapter: &str, caller: &str, call: &str) -> Result<i64, DbError> {
        let conn = self.db.lock();
        conn.prepare_cached(
            "INSERT INTO hub_calls (adapter, caller, call, created_at) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![adapter, caller, call, now()])?;
        Ok(conn.last_insert_rowid())
    }

    fn take_calls(&self, adapters: &[String], since: i64) -> Result<Vec<CallRow>, DbError> {
        if adapters.is_empty() {
            return Ok(Vec::new());
        }
        self.calls_of(adapters, since)
    }

    fn finish_call(&self, id: i64, result: &str) -> Result<bool, DbError> {
        let n = self
            .db
            .lock()
            .prepare_cached("UPDATE hub_calls SET result = ?2, done_at = ?3 WHERE id = ?1")?
            .execute(params![id, result, now()])?;
        Ok(n > 0)
    }

    fn take_result(&self, id: i64) -> Result<Option<String>, DbError> {
        let mut conn = self.db.lock();
        let tx = conn.transaction()?;
        let result: Option<String> = tx
            .prepare_cached("SELECT result FROM hub_calls WHERE id = ?1 AND result IS NOT NULL")?
            .query_row(params![id], |r| r.get(0))
            .optional()?;
        if result.is_some() {
            tx.execute("DELETE FROM hub_calls WHERE id = ?1", params![id])?;
        }
        tx.commit()?;
        Ok(result)
    }

    fn withdraw_call(&self, id: i64) -> Result<Withdrawn, DbError> {
        let mut conn = self.db.lock();
        let tx = conn.transaction()?;
        let row: Option<(Option<i64>, Option<String>)> = tx
            .prepare_cached("SELECT taken_at, result FROM hub_calls WHERE id = ?1")?
            .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        tx.execute("DELETE FROM hub_calls WHERE id = ?1", params![id])?;
        tx.commit()?;
        Ok(match row {
            Some((_, Some(result))) => Withdrawn::Answered(result),
            Some((None, None)) => Withdrawn::NeverRan,
            Some((Some(_), None)) | None => Withdrawn::Taken,
        })
    }

    fn prune_calls(&self, before: i64) -> Result<usize, DbError> {
        Ok(self.db.lock().execute(
            "DELETE FROM hub_calls WHERE created_at < ?1",
            params![before],
        )?)
    }
}

impl SqliteHub {
    fn calls_of(&self, adapters: &[String], since: i64) -> Result<Vec<CallRow>, DbError> {
        let list = serde_json::to_string(adapters).unwrap_or_else(|_| "[]".into());
        let mut conn = self.db.lock();
        let tx = conn.transaction()?;
        let rows: Vec<CallRow> = {
            let mut stmt = tx.prepare_cached(
                "SELECT id, adapter, caller, call FROM hub_calls
                 WHERE taken_at IS NULL AND created_at >= ?2
                   AND adapter IN (SELECT value FROM json_each(?1))
                 ORDER BY id",
            )?;
            stmt.query_map(params![list, since], |r| {
                Ok(CallRow {
                    id: r.get(0)?,
                    adapter: r.get(1)?,
                    caller: r.get(2)?,
                    call: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?
        };
        let at = now();
        for row in &rows {
            tx.execute(
                "UPDATE hub_calls SET taken_at = ?2 WHERE id = ?1",
                params![row.id, at],
            )?;
        }
        tx.commit()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_event(db: &Db, chat: &str, line: &str) {
        db.lock()
            .execute(
                "INSERT INTO events (adapter, line, accepted_at, chat) VALUES ('tg', ?1, 0, ?2)",
                params![line, chat],
            )
            .unwrap();
    }

    #[test]
    fn the_binding_and_the_names_read_together_are_what_each_read_gives() {
        let db = Db::in_memory().unwrap();
        let hub = SqliteHub::new(db);
        let both = |chat: &str| hub.route_and_names("tg", chat).unwrap();
        let apart = |chat: &str| (hub.route_of("tg", chat).unwrap(), hub.names().unwrap());
        assert_eq!(both("5"), (None, vec![]), "no session, no binding");
        hub.attach("web", "/w", 1).unwrap();
        hub.attach("api", "/a", 2).unwrap();
        hub.bind("tg", "5", "api", "terminal").unwrap();
        for chat in ["5", "6"] {
            assert_eq!(both(chat), apart(chat), "chat {chat}");
        }
        assert_eq!(
            both("5"),
            (Some("api".into()), vec!["api".into(), "web".into()])
        );
        assert_eq!(
            hub.route_and_names("dc", "5").unwrap().0,
            None,
            "per adapter"
        );
    }

    #[test]
    fn binding_a_chat_hands_it_the_held_events_with_their_meta() {
        let db = Db::in_memory().unwrap();
        let hub = SqliteHub::new(db.clone());
        let line =
            r#"{"jsonrpc":"2.0","method":"m","params":{"content":"hi","meta":{"chat_id":"tg:5"}}}"#;
        held_event(&db, "5", line);
        held_event(&db, "5", line);
        held_event(&db, "6", line);
        assert_eq!(hub.held().unwrap(), 3);
        assert_eq!(
            hub.held_chats().unwrap(),
            [("tg".into(), "5".into(), 2), ("tg".into(), "6".into(), 1)]
        );
        assert!(hub.first_notice("tg", "5", Notice::Held, "").unwrap());
        assert!(!hub.first_notice("tg", "5", Notice::Held, "").unwrap());
        assert_eq!(hub.bind("tg", "5", "api", "alice").unwrap(), 2);
        assert_eq!(hub.held().unwrap(), 1);
        assert_eq!(hub.waiting("api").unwrap(), 2);
        assert_eq!(hub.route_of("tg", "5").unwrap().as_deref(), Some("api"));
        assert_eq!(hub.route_of("tg", "6").unwrap(), None);
        let lines: Vec<String> = db
            .lock()
            .prepare("SELECT line FROM events WHERE session = 'api'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for l in lines {
            let v: serde_json::Value = serde_json::from_str(&l).unwrap();
            assert_eq!(v["params"]["meta"]["session"], "api");
            assert_eq!(v["params"]["meta"]["chat_id"], "tg:5");
        }
        assert!(
            hub.first_notice("tg", "5", Notice::Held, "").unwrap(),
            "binding forgets the notices"
        );
        // Rebinding moves the chat, not what was already handed over.
        assert_eq!(hub.bind("tg", "5", "web", "terminal").unwrap(), 0);
        assert_eq!(hub.routes().unwrap()[0].session, "web");
        assert!(hub.unbind("tg", "5").unwrap());
        assert!(!hub.unbind("tg", "5").unwrap());
    }

    #[test]
    fn sessions_and_their_away_notices() {
        let db = Db::in_memory().unwrap();
        let hub = SqliteHub::new(db);
        hub.attach("api", "/srv/api", 10).unwrap();
        assert!(hub.first_notice("tg", "5", Notice::Away, "api").unwrap());
        assert!(!hub.first_notice("tg", "5", Notice::Away, "api").unwrap());
        hub.detach("api").unwrap();
        assert!(hub.sessions().unwrap()[0].stopped_at.is_some());
        hub.attach("api", "/srv/api", 11).unwrap();
        let s = &hub.sessions().unwrap()[0];
        assert_eq!((s.pid, s.stopped_at, s.waiting), (11, None, 0));
        assert_eq!(hub.names().unwrap(), ["api"]);
        assert!(
            hub.first_notice("tg", "5", Notice::Away, "api").unwrap(),
            "told again the next time it is away"
        );
        assert_eq!(hub.cwd_of("api").unwrap().as_deref(), Some("/srv/api"));
        assert_eq!(hub.cwd_of("web").unwrap(), None);
        hub.hold_connection("telegram", "api", 11).unwrap();
        hub.hold_connection("telegram", "web", 12).unwrap();
        let c = hub.connections().unwrap();
        assert_eq!((c.len(), c[0].session.as_str()), (1, "web"));
    }

    #[test]
    fn a_call_is_taken_once_answered_once_and_then_forgotten() {
        let db = Db::in_memory().unwrap();
        let hub = SqliteHub::new(db.clone());
        let fc = ["fakechat".to_string()];
        let a = hub
            .put_call("fakechat", "web", r#"{"op":"typing"}"#)
            .unwrap();
        let b = hub.put_call("fakechat", "api", "second").unwrap();
        let other = hub.put_call("webhook", "web", "elsewhere").unwrap();
        assert!(a < b);
        assert_eq!(hub.take_calls(&[], 0).unwrap(), []);
        let taken = hub.take_calls(&fc, 0).unwrap();
        let ids: Vec<i64> = taken.iter().map(|c| c.id).collect();
        assert_eq!(ids, [a, b], "oldest first, only the adapters asked for");
        assert_eq!(
            (taken[0].caller.as_str(), taken[0].call.as_str()),
            ("web", r#"{"op":"typing"}"#)
        );
        assert_eq!(hub.take_calls(&fc, 0).unwrap(), [], "taken once");
        assert_eq!(hub.take_result(a).unwrap(), None, "not answered yet");
        assert!(hub.finish_call(a, "ok").unwrap());
        assert_eq!(hub.take_result(a).unwrap().as_deref(), Some("ok"));
        assert_eq!(hub.take_result(a).unwrap(), None, "forgotten once read");
        assert!(!hub.finish_call(a, "late").unwrap(), "nobody waits for it");
        // A call made before `since` was given up: nobody takes it.
        let both = ["fakechat".to_string(), "webhook".to_string()];
        assert_eq!(hub.take_calls(&both, now() + 60).unwrap(), []);
        assert_eq!(hub.take_calls(&both, 0).unwrap()[0].id, other);
        assert_eq!(hub.prune_calls(now() + 60).unwrap(), 2);
        assert_eq!(hub.take_result(b).unwrap(), None);
    }

    #[test]
    fn a_caller_that_gives_up_learns_what_became_of_its_call() {
        let hub = SqliteHub::new(Db::in_memory().unwrap());
        let fc = ["fakechat".to_string()];
        let never = hub.put_call("fakechat", "web", "x").unwrap();
        assert_eq!(hub.withdraw_call(never).unwrap(), Withdrawn::NeverRan);
        assert_eq!(
            hub.take_calls(&fc, 0).unwrap(),
            [],
            "a withdrawn call never runs"
        );
        let taken = hub.put_call("fakechat", "web", "y").unwrap();
        hub.take_calls(&fc, 0).unwrap();
        assert_eq!(hub.withdraw_call(taken).unwrap(), Withdrawn::Taken);
        assert!(!hub.finish_call(taken, "late").unwrap());
        let answered = hub.put_call("fakechat", "web", "z").unwrap();
        hub.take_calls(&fc, 0).unwrap();
        hub.finish_call(answered, "ok").unwrap();
        assert_eq!(
            hub.withdraw_call(answered).unwrap(),
            Withdrawn::Answered("ok".into())
        );
        assert_eq!(hub.withdraw_call(answered).unwrap(), Withdrawn::Taken);
    }
}
