//! Several sessions on one bot: the hub.
//!
//! Every `airlock serve` is one session, and the sessions that share a
//! state directory form the hub. There is no daemon: they share the
//! database and the lock files, and for each platform connection the one
//! process that holds its lock (`platform_lock`) stores every event, with
//! the session it is routed to ([`route`]). Each session delivers its own
//! events; the storing process wakes the others ([`wake`]).
//!
//! A session is live while its process runs ([`presence`]: a lock the
//! kernel drops when the process ends), away once it has exited. A chat is
//! bound to at most one session; an unbound chat goes to the only live
//! session, or is held until its sender picks one. Storage is behind
//! [`HubStore`], so another backend can follow without touching this.

pub mod name;
pub mod presence;
pub mod route;
pub mod store;
pub mod wake;

use std::path::Path;
use std::sync::Arc;

pub use route::Route;
pub use store::{HubStore, Notice, SqliteHub};

use crate::db::DbError;
use presence::{AttachError, Attached, Presence};

/// Why this process could not join the hub.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// The name asked for is not one.
    #[error("{0}")]
    Name(#[from] name::BadName),
    /// The name asked for is taken, or its lock could not be taken.
    #[error("{0}")]
    Attach(#[from] AttachError),
    /// Every default name for this directory is taken.
    #[error(
        "sessions {base} to {base}-{max} are all running or belong to other directories; \
         name this one with `airlock serve --session NAME`",
        max = name::MAX_SUFFIX
    )]
    NoName {
        /// The directory's name.
        base: String,
    },
    /// The database failed.
    #[error("cannot record the session: {0}")]
    Db(#[from] DbError),
}

/// How long a new session waits for its directory's own name before it
/// takes the next one: long enough for a killed predecessor to exit.
pub const OWN_NAME_WAIT: std::time::Duration = std::time::Duration::from_millis(1500);

/// Waits up to `at_most` for no process to hold `name`.
fn wait_until_free(presence: &Presence, name: &str, at_most: std::time::Duration) {
    let deadline = std::time::Instant::now() + at_most;
    while presence.is_live(name) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// This process's place in the hub.
#[derive(Debug)]
pub struct Hub {
    me: String,
    store: Arc<dyn HubStore>,
    presence: Option<Presence>,
    bell: Option<wake::Bell>,
    max_waiting: usize,
    _attached: Option<Attached>,
}

impl Hub {
    /// Joins the hub of the sessions directory `dir` (at `path`) as
    /// `requested`, or under a name made from `cwd`: the first of `name`,
    /// `name-2`… that is not running and was not last started elsewhere
    /// (so one project never picks up another's waiting events).
    pub fn join(
        dir: cap_std::fs::Dir,
        path: &Path,
        store: Arc<dyn HubStore>,
        requested: Option<&str>,
        cwd: &Path,
        max_waiting: usize,
    ) -> Result<Self, HubError> {
        let presence = Presence::new(dir);
        let cwd_text = cwd.display().to_string();
        let (me, attached) = match requested {
            Some(n) => {
                let n = name::parse(n)?;
                let held = presence.attach(&n)?;
                (n, held)
            }
            None => {
                let base = name::from_dir(cwd);
                let mut found = None;
                for candidate in name::candidates(&base) {
                    let last_cwd = store.cwd_of(&candidate)?;
                    if last_cwd.as_ref().is_some_and(|other| *other != cwd_text) {
                        continue;
                    }
                    // This directory's own name, held: most often by the
                    // process this one replaces (Claude Code restarting a
                    // crashed server), still exiting. Waiting keeps the name,
                    // and with it the chats bound to it and what waits.
                    if candidate == base && last_cwd.is_some() {
                        wait_until_free(&presence, &candidate, OWN_NAME_WAIT);
                    }
                    if presence.is_live(&candidate) {
                        continue;
                    }
                    match presence.attach(&candidate) {
                        Ok(held) => {
                            found = Some((candidate, held));
                            break;
                        }
                        Err(AttachError::Live { .. }) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                found.ok_or(HubError::NoName { base })?
            }
        };
        store.attach(&me, &cwd_text, std::process::id())?;
        Ok(Self {
            me,
            store,
            presence: Some(presence),
            bell: Some(wake::Bell::new(path.to_path_buf())),
            max_waiting,
            _attached: Some(attached),
        })
    }

    /// A hub of one session that no other process can see (`airlock try`,
    /// tests): every chat goes to `me`.
    pub fn alone(me: &str, store: Arc<dyn HubStore>, max_waiting: usize) -> Self {
        Self {
            me: me.to_owned(),
            store,
            presence: None,
            bell: None,
            max_waiting,
            _attached: None,
        }
    }

    /// This session's name.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// The storage.
    pub fn store(&self) -> &dyn HubStore {
        self.store.as_ref()
    }

    /// Events waiting for one session, at most, before new ones for it are
    /// refused.
    pub fn max_waiting(&self) -> usize {
        self.max_waiting
    }

    /// Whether `name` runs now.
    pub fn is_live(&self, name: &str) -> bool {
        name == self.me || self.presence.as_ref().is_some_and(|p| p.is_live(name))
    }

    /// The sessions running now, by name (this one always among them).
    pub fn live(&self) -> Result<Vec<String>, DbError> {
        let names = self.store.names()?;
        Ok(self.live_among(&names))
    }

    /// When this session is the only live one: takes over what waits for
    /// away sessions of chats bound to none, and returns, for each session
    /// it took from, how many. Such a chat went to the session that was
    /// then the only live one, and goes to this one now; without this, what
    /// a session stored and never wrote before it died (a crash, then a
    /// restart under another name) would wait for a name nobody takes.
    ///
    /// Each away session's name is held while its events move, so no
    /// process can start under it and deliver them too; `recover` runs
    /// first, under that hold, to mark delivered what the dead process did
    /// write (its ledger).
    pub fn adopt_stranded(&self, recover: impl Fn()) -> Result<Vec<(String, usize)>, DbError> {
        let Some(presence) = &self.presence else {
            return Ok(Vec::new());
        };
        let stranded = self.store.stranded(&self.me)?;
        if stranded.is_empty() || self.live()? != [self.me.clone()] {
            return Ok(Vec::new());
        }
        let mut adopted = Vec::new();
        for name in stranded {
            // Live after all (it started since), or not ours to take.
            let Ok(_held) = presence.attach(&name) else {
                continue;
            };
            recover();
            let moved = self.store.adopt_unbound(&name, &self.me)?;
            if moved > 0 {
                adopted.push((name, moved));
            }
        }
        Ok(adopted)
    }

    /// Those of the recorded session `names` that run now, this one always
    /// among them. This session's own lock is not asked: it holds it.
    fn live_among(&self, names: &[String]) -> Vec<String> {
        let Some(presence) = &self.presence else {
            return vec![self.me.clone()];
        };
        let others = names.iter().map(String::as_str).filter(|n| *n != self.me);
        let mut live = presence.live(others);
        live.push(self.me.clone());
        live.sort();
        live
    }

    /// Where an event of `chat` of `adapter` goes now; `live` is filled on
    /// first need, so a batch asks the lock files once. The binding and the
    /// session names are read together, in one query.
    pub fn route(
        &self,
        adapter: &str,
        chat: &str,
        live: &mut Option<Vec<String>>,
    ) -> Result<Route, DbError> {
        let bound = match live {
            Some(_) => self.store.route_of(adapter, chat)?,
            None => {
                let (bound, names) = self.store.route_and_names(adapter, chat)?;
                if bound.is_none() {
                    *live = Some(self.live_among(&names));
                }
                bound
            }
        };
        if bound.is_some() {
            return Ok(route::decide(bound.as_deref(), &[]));
        }
        Ok(route::decide(None, live.as_deref().unwrap_or_default()))
    }

    /// Tells `name` that events wait for it (a no-op for this session).
    pub fn wake(&self, name: &str) {
        if name != self.me
            && let Some(bell) = &self.bell
        {
            bell.ring(name);
        }
    }

    /// This session stops cleanly.
    pub fn leave(&self) {
        if let Err(e) = self.store.detach(&self.me) {
            tracing::warn!("cannot record that session {} stopped: {e}", self.me);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    fn join(
        tmp: &tempfile::TempDir,
        store: &Arc<dyn HubStore>,
        requested: Option<&str>,
        cwd: &str,
    ) -> Result<Hub, HubError> {
        let dir =
            cap_std::fs::Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        Hub::join(
            dir,
            tmp.path(),
            store.clone(),
            requested,
            Path::new(cwd),
            10,
        )
    }

    #[test]
    fn names_are_unique_among_live_sessions_and_kept_per_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let store: Arc<dyn HubStore> = Arc::new(SqliteHub::new(Db::in_memory().unwrap()));
        let a = join(&tmp, &store, None, "/srv/api").unwrap();
        assert_eq!(a.me(), "api");
        let waited = std::time::Instant::now();
        let b = join(&tmp, &store, None, "/srv/api").unwrap();
        assert_eq!(b.me(), "api-2", "api is running");
        assert!(
            waited.elapsed() >= OWN_NAME_WAIT,
            "it waited for its own name first"
        );
        let c = join(&tmp, &store, None, "/home/me/api").unwrap();
        assert_eq!(c.me(), "api-3", "another directory's name");
        assert_eq!(a.live().unwrap(), ["api", "api-2", "api-3"]);
        drop(b);
        assert_eq!(a.live().unwrap(), ["api", "api-3"]);
        let b = join(&tmp, &store, None, "/srv/api").unwrap();
        assert_eq!(b.me(), "api-2", "the same project gets its name back");
        // An explicit name: refused while it runs, taken from anywhere else.
        match join(&tmp, &store, Some("api"), "/x") {
            Err(HubError::Attach(AttachError::Live { .. })) => {}
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            join(&tmp, &store, Some("No Good"), "/x"),
            Err(HubError::Name(_))
        ));
        drop(a);
        assert_eq!(join(&tmp, &store, Some("api"), "/x").unwrap().me(), "api");
    }

    #[test]
    fn a_session_replacing_one_that_is_still_exiting_keeps_its_name() {
        let tmp = tempfile::tempdir().unwrap();
        let store: Arc<dyn HubStore> = Arc::new(SqliteHub::new(Db::in_memory().unwrap()));
        let old = join(&tmp, &store, None, "/srv/api").unwrap();
        let exiting = std::thread::spawn(move || {
            std::thread::sleep(OWN_NAME_WAIT / 4);
            drop(old);
        });
        let new = join(&tmp, &store, None, "/srv/api").unwrap();
        assert_eq!(
            new.me(),
            "api",
            "not api-2: chats bound to api still reach it"
        );
        exiting.join().unwrap();
    }

    #[test]
    fn the_only_live_session_takes_what_waits_for_away_ones_of_unbound_chats() {
        let tmp = tempfile::tempdir().unwrap();
        let db = Db::in_memory().unwrap();
        let store: Arc<dyn HubStore> = Arc::new(SqliteHub::new(db.clone()));
        let store_event = |chat: &str, session: &str| {
            let line = format!(
                r#"{{"jsonrpc":"2.0","method":"m","params":{{"content":"x","meta":{{"chat_id":"tg:{chat}","session":"{session}"}}}}}}"#
            );
            db.lock()
                .execute(
                    "INSERT INTO events (adapter, line, accepted_at, chat, session)
                     VALUES ('tg', ?1, 0, ?2, ?3)",
                    rusqlite::params![line, chat, session],
                )
                .unwrap();
        };
        let waiting = |session: &str| {
            db.lock()
                .query_row(
                    "SELECT count(*) FROM events WHERE session = ?1
                       AND json_extract(line, '$.params.meta.session') = ?1",
                    [session],
                    |r| r.get::<_, i64>(0),
                )
                .unwrap()
        };
        let b = join(&tmp, &store, Some("b"), "/b").unwrap();
        store.bind("tg", "6", "b", "terminal").unwrap();
        store_event("5", "b"); // unbound: it went to b as the only live one
        store_event("5", "b");
        store_event("6", "b"); // bound to b: waits for b
        let a = join(&tmp, &store, Some("a"), "/a").unwrap();
        let recovered = std::cell::Cell::new(0);
        let recover = || recovered.set(recovered.get() + 1);
        assert!(
            a.adopt_stranded(recover).unwrap().is_empty(),
            "b is live: nothing moves"
        );
        drop(b);
        assert_eq!(a.adopt_stranded(recover).unwrap(), [("b".to_string(), 2)]);
        assert_eq!(recovered.get(), 1, "the ledgers were read first");
        assert_eq!((waiting("a"), waiting("b")), (2, 1));
        assert!(a.adopt_stranded(recover).unwrap().is_empty());

        // Held by a process starting under that name: left to it.
        store_event("7", "c");
        let c = join(&tmp, &store, Some("c"), "/c").unwrap();
        let _ = &c;
        assert!(a.adopt_stranded(recover).unwrap().is_empty());
        assert_eq!(waiting("c"), 1);
    }

    #[test]
    fn routes_follow_bindings_and_the_live_sessions() {
        let tmp = tempfile::tempdir().unwrap();
        let store: Arc<dyn HubStore> = Arc::new(SqliteHub::new(Db::in_memory().unwrap()));
        let a = join(&tmp, &store, Some("api"), "/a").unwrap();
        let mut live = None;
        assert_eq!(
            a.route("tg", "5", &mut live).unwrap(),
            Route::To("api".into())
        );
        let b = join(&tmp, &store, Some("web"), "/b").unwrap();
        let mut live = None;
        assert_eq!(a.route("tg", "5", &mut live).unwrap(), Route::Hold);
        assert_eq!(live.as_deref().unwrap(), ["api", "web"]);
        store.bind("tg", "5", "web", "terminal").unwrap();
        drop(b);
        assert!(!a.is_live("web"));
        let mut live = None;
        assert_eq!(
            a.route("tg", "5", &mut live).unwrap(),
            Route::To("web".into()),
            "a bound chat waits for its session"
        );
        assert!(live.is_none(), "no lock file was asked");
    }
}
