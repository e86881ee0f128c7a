//! Which sessions are live: each running session holds an advisory lock
//! (`flock`) on `$AIRLOCK_HOME/sessions/NAME.lock`.
//!
//! The kernel drops the lock when the process ends, however it ends, so a
//! session killed with `kill -9` is away at once and no stale entry needs
//! cleaning. Anyone may ask whether a name is live by trying the lock; the
//! answer needs no signal to a pid (pids are reused) and no heartbeat.

use cap_std::fs::Dir;

use crate::pid_lock::{PidLock, PidLockError};

/// The subdirectory of the state directory with session locks and wake sockets.
pub const SESSIONS_DIR: &str = "sessions";

/// The running sessions of one state directory, as seen from one process.
#[derive(Debug)]
pub struct Presence {
    dir: Dir,
}

/// This process's hold on its session name; released when dropped.
#[derive(Debug)]
pub struct Attached {
    _lock: PidLock,
}

/// Why a session could not attach.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttachError {
    /// Another process runs the session.
    #[error(
        "session {name} is already running{holder}; give this one another name with \
         `airlock serve --session NAME`, or stop the other one"
    )]
    Live {
        /// The name.
        name: String,
        /// ` (pid N)` when the holder wrote it.
        holder: String,
    },
    /// The lock file could not be opened or locked.
    #[error("cannot open the session lock {name}.lock under $AIRLOCK_HOME/sessions: {source}")]
    Io {
        /// The name.
        name: String,
        /// What the OS said.
        source: std::io::Error,
    },
}

fn lock_file(name: &str) -> String {
    format!("{name}.lock")
}

impl Presence {
    /// Presence over `dir` (`$AIRLOCK_HOME/sessions`).
    pub fn new(dir: Dir) -> Self {
        Self { dir }
    }

    /// Takes `name` for this process, without waiting.
    pub fn attach(&self, name: &str) -> Result<Attached, AttachError> {
        match PidLock::try_take(&self.dir, &lock_file(name)) {
            Ok(lock) => Ok(Attached { _lock: lock }),
            Err(PidLockError::Held(holder)) => Err(AttachError::Live {
                name: name.to_owned(),
                holder,
            }),
            Err(PidLockError::Io(source)) => Err(AttachError::Io {
                name: name.to_owned(),
                source,
            }),
        }
    }

    /// Whether a process runs `name` now (this one included).
    pub fn is_live(&self, name: &str) -> bool {
        PidLock::is_held(&self.dir, &lock_file(name))
    }

    /// Those of `names` that are live, in their order.
    pub fn live<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        names
            .into_iter()
            .filter(|n| self.is_live(n))
            .map(str::to_owned)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(tmp: &tempfile::TempDir) -> Presence {
        Presence::new(Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap())
    }

    #[test]
    fn a_name_is_live_while_it_is_held() {
        let tmp = tempfile::tempdir().unwrap();
        let a = presence(&tmp);
        let b = presence(&tmp);
        assert!(!b.is_live("api"), "never started");
        let held = a.attach("api").unwrap();
        assert!(b.is_live("api"));
        assert!(a.is_live("api"), "its own holder sees it live too");
        match b.attach("api") {
            Err(AttachError::Live { name, holder }) => {
                assert_eq!(name, "api");
                assert_eq!(holder, format!(" (pid {})", std::process::id()));
            }
            other => panic!("{other:?}"),
        }
        let _web = b.attach("web").unwrap();
        assert_eq!(a.live(["api", "web", "gone"]), ["api", "web"]);
        drop(held);
        assert!(!b.is_live("api"), "away once its holder lets go");
        b.attach("api").unwrap();
    }
}
