//! The state directory, `AIRLOCK_HOME`.
//!
//! Everything airlock keeps lives here: config, database, compiled-component
//! cache, third-party drop-ins, the attachment inbox, secret files. The root is
//! opened once by path (it comes from the operator); every access below it goes
//! through a `cap_std::fs::Dir` handle, so a name chosen by a platform or a
//! component cannot climb out with `..` or an absolute path.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, DirBuilder, DirBuilderExt as _};

use crate::manifest::{Config, ConfigError};

/// Subdirectory for compiled components.
pub const CACHE_DIR: &str = "cache";
/// Subdirectory for third-party drop-in components.
pub const ADAPTERS_DIR: &str = "adapters";
/// Subdirectory for downloaded attachments.
pub const INBOX_DIR: &str = "inbox";
/// Subdirectory for secret files.
pub const SECRETS_DIR: &str = "secrets";

/// Errors opening the state directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HomeError {
    /// The directory could not be created or opened.
    #[error(
        "cannot open the state directory {path}: {source}; set AIRLOCK_HOME to a directory you own"
    )]
    Open {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A subdirectory could not be created or opened.
    #[error("cannot open {path}/{name}: {source}")]
    Sub {
        /// The state directory.
        path: PathBuf,
        /// The subdirectory.
        name: &'static str,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// The opened state directory.
#[derive(Debug)]
pub struct AirlockHome {
    root: PathBuf,
    dir: Dir,
}

impl AirlockHome {
    /// Where the state directory is: `$AIRLOCK_HOME`, else
    /// `~/.claude/channels/airlock`.
    pub fn default_path() -> PathBuf {
        if let Some(p) = std::env::var_os("AIRLOCK_HOME").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        home.join(".claude").join("channels").join("airlock")
    }

    /// Open (creating with mode 0700 if needed) the state directory at `root`.
    /// A directory readable by group or others is tightened to 0700, with a
    /// warning.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, HomeError> {
        let root = root.as_ref().to_path_buf();
        let open_err = |source| HomeError::Open {
            path: root.clone(),
            source,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .map_err(open_err)?;
        let meta = std::fs::metadata(&root).map_err(open_err)?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(path = %root.display(), mode = format!("{mode:o}"), "state directory was open to other users; setting it to 0700");
            std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700))
                .map_err(open_err)?;
        }
        let dir = Dir::open_ambient_dir(&root, ambient_authority()).map_err(open_err)?;
        Ok(Self { root, dir })
    }

    /// The state directory's path, for messages.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The root handle.
    pub fn dir(&self) -> &Dir {
        &self.dir
    }

    /// Path of the SQLite database.
    pub fn db_path(&self) -> PathBuf {
        self.root.join("airlock.db")
    }

    /// Path of the operator config.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("airlock.toml")
    }

    /// Open a subdirectory (one of the `*_DIR` constants), creating it 0700.
    pub fn sub(&self, name: &'static str) -> Result<Dir, HomeError> {
        let err = |source| HomeError::Sub {
            path: self.root.clone(),
            name,
            source,
        };
        if !self.dir.exists(name) {
            let mut b = DirBuilder::new();
            b.mode(0o700);
            self.dir.create_dir_with(name, &b).map_err(err)?;
        }
        self.dir.open_dir(name).map_err(err)
    }
}

/// Reads the operator config at `path` (`airlock.toml`); a missing file is an empty config.
pub fn load_config(path: &Path) -> Result<Config, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Config::parse(&text, path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(source) => Err(ConfigError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_private_dirs_and_tightens_loose_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("home");
        let home = AirlockHome::open(&root).unwrap();
        assert_eq!(
            std::fs::metadata(&root).unwrap().permissions().mode() & 0o777,
            0o700
        );
        home.sub(CACHE_DIR).unwrap();
        assert_eq!(
            std::fs::metadata(root.join(CACHE_DIR))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );

        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        AirlockHome::open(&root).unwrap();
        assert_eq!(
            std::fs::metadata(&root).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }

    #[test]
    fn names_cannot_escape() {
        let tmp = tempfile::tempdir().unwrap();
        let home = AirlockHome::open(tmp.path().join("home")).unwrap();
        std::fs::write(tmp.path().join("outside"), b"x").unwrap();
        let inbox = home.sub(INBOX_DIR).unwrap();
        assert!(inbox.read("../../outside").is_err());
        assert!(inbox.read("/etc/passwd").is_err());
    }
}
