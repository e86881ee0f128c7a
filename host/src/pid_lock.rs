//! A lock file held by one process: an advisory `flock` taken without
//! waiting, with the holder's pid written inside for messages.
//!
//! Platform connections (`platform_lock`) and session names (`hub`) are
//! both held this way: the kernel drops the lock when the process ends,
//! however it ends, so there is never a stale lock to clean up, and nobody
//! is ever signalled (the pid is only reported).

use std::io::{Read, Seek, Write};

use cap_std::fs::{Dir, OpenOptions};

/// A held lock file; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct PidLock {
    _file: std::fs::File,
}

/// Why a lock was not taken.
#[derive(Debug)]
pub enum PidLockError {
    /// Another process holds it; ` (pid N)` when it wrote its pid.
    Held(String),
    /// The file could not be opened or locked.
    Io(std::io::Error),
}

impl PidLock {
    /// Takes the lock file `name` in `dir` (creating it), without waiting.
    pub fn try_take(dir: &Dir, name: &str) -> Result<Self, PidLockError> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true);
        let file = dir
            .open_with(name, &options)
            .map_err(PidLockError::Io)?
            .into_std();
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = (&file).take(32).read_to_string(&mut text);
                let holder = text
                    .trim()
                    .parse::<u32>()
                    .map(|pid| format!(" (pid {pid})"))
                    .unwrap_or_default();
                return Err(PidLockError::Held(holder));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(PidLockError::Io(e)),
        }
        let mut f = &file;
        let _ = f.set_len(0);
        let _ = f.rewind();
        let _ = writeln!(f, "{}", std::process::id());
        Ok(Self { _file: file })
    }

    /// Whether some process holds the lock file `name` in `dir` now (this
    /// one included); false when there is no such file.
    pub fn is_held(dir: &Dir, name: &str) -> bool {
        let Ok(file) = dir.open(name) else {
            return false;
        };
        matches!(
            file.into_std().try_lock_shared(),
            Err(std::fs::TryLockError::WouldBlock)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_and_its_pid() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        assert!(!PidLock::is_held(&dir, "a.lock"));
        let held = PidLock::try_take(&dir, "a.lock").unwrap();
        assert!(PidLock::is_held(&dir, "a.lock"));
        match PidLock::try_take(&dir, "a.lock") {
            Err(PidLockError::Held(holder)) => {
                assert_eq!(holder, format!(" (pid {})", std::process::id()));
            }
            other => panic!("{other:?}"),
        }
        drop(held);
        assert!(!PidLock::is_held(&dir, "a.lock"));
        PidLock::try_take(&dir, "a.lock").unwrap();
    }
}
