//! One airlock per platform connection.
//!
//! Telegram lets one client long-poll a bot token at a time; two pollers
//! steal each other's updates and trade 409 Conflicts. So before a poll loop
//! starts, the host takes an advisory lock (`flock`) on a file in
//! `$AIRLOCK_HOME/locks/`, named after the adapter and a hash of the secrets
//! that identify the connection (the bot token). A second airlock on the same
//! token finds it held and does not poll, and says so. The kernel drops the
//! lock when the process ends, however it ends (even `kill -9`), so there is
//! no stale lock to clean up, and no process is ever signalled: the pid in
//! the file is only there to be reported.
//!
//! The file name holds 64 bits of a SHA-256 of the secret values, which says
//! nothing useful about a high-entropy token.

use cap_std::fs::Dir;
use sha2::{Digest, Sha256};

use crate::pid_lock::{PidLock, PidLockError};
use crate::secrets::BoundSecret;

/// The subdirectory of the state directory holding lock files.
pub const LOCKS_DIR: &str = "locks";

/// A held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct PlatformLock {
    _lock: PidLock,
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another process holds it.
    #[error(
        "another airlock{holder} is already polling with this {adapter} token (lock {name} in {dir}); \
         this one does not poll, so updates are not split between two sessions. Stop the other \
         one, or let it be the one that receives messages"
    )]
    Held {
        /// The adapter.
        adapter: String,
        /// The lock file's name.
        name: String,
        /// The locks directory.
        dir: String,
        /// ` (pid N)` when the holder wrote it.
        holder: String,
    },
    /// The lock file could not be opened.
    #[error("cannot open the lock file {name}: {source}")]
    Io {
        /// The lock file's name.
        name: String,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// The lock file name for `adapter` with these secrets.
pub fn lock_name(adapter: &str, secrets: &[BoundSecret]) -> String {
    let mut hash = Sha256::new();
    let mut values: Vec<&[u8]> = secrets.iter().map(|s| s.value().expose()).collect();
    values.sort();
    values.dedup();
    for v in values {
        hash.update((v.len() as u64).to_be_bytes());
        hash.update(v);
    }
    let digest = hash.finalize();
    format!("{adapter}-{}.lock", hex::encode(&digest[..8]))
}

impl PlatformLock {
    /// Takes the lock for `adapter` with `secrets` in `locks`, without waiting.
    pub fn try_acquire(
        locks: &Dir,
        locks_path: &std::path::Path,
        adapter: &str,
        secrets: &[BoundSecret],
    ) -> Result<Self, LockError> {
        let name = lock_name(adapter, secrets);
        match PidLock::try_take(locks, &name) {
            Ok(lock) => Ok(Self { _lock: lock }),
            Err(PidLockError::Held(holder)) => Err(LockError::Held {
                adapter: adapter.to_owned(),
                name,
                dir: locks_path.display().to_string(),
                holder,
            }),
            Err(PidLockError::Io(source)) => Err(LockError::Io { name, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::SecretBinding;
    use crate::secrets::SecretValue;

    fn secret(value: &str) -> BoundSecret {
        let binding = SecretBinding {
            name: "T".into(),
            destination: "https://api.telegram.org".parse().unwrap(),
            position: "/bot{secret}".parse().unwrap(),
        };
        BoundSecret::new(binding, SecretValue::new(value)).unwrap()
    }

    #[test]
    fn one_holder_per_token_and_released_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        let a = [secret("123:AAA")];
        let first = PlatformLock::try_acquire(&dir, tmp.path(), "telegram", &a).unwrap();
        let err = PlatformLock::try_acquire(&dir, tmp.path(), "telegram", &a).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("already polling"), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(!text.contains("123:AAA"), "never the token: {text}");
        // Another token, another lock.
        let other = PlatformLock::try_acquire(&dir, tmp.path(), "telegram", &[secret("456:BBB")]);
        assert!(other.is_ok());
        drop(first);
        assert!(PlatformLock::try_acquire(&dir, tmp.path(), "telegram", &a).is_ok());
    }

    #[test]
    fn names_hide_the_value() {
        let name = lock_name("telegram", &[secret("123:AAA")]);
        assert!(name.starts_with("telegram-") && name.ends_with(".lock"));
        assert!(!name.contains("123"));
        assert_eq!(
            name,
            lock_name("telegram", &[secret("123:AAA"), secret("123:AAA")])
        );
        assert_ne!(name, lock_name("telegram", &[secret("123:AAB")]));
    }
}
