//! The attachment inbox, `$AIRLOCK_HOME/inbox/`, bounded per adapter.
//!
//! Attachments are written here eagerly as messages arrive and by the
//! `download_attachment` tool. Senders choose how many and how large, so each
//! adapter's files share a quota: before a file is written, that adapter's
//! oldest files are deleted until the new one fits, and a file larger than the
//! whole quota is refused. Files are named `<ms>-<adapter>_<name>`; adapter
//! names never hold `_`, so the owner of every file is known from its name.
//! All access goes through the inbox's `cap_std` directory handle.

use std::sync::Mutex;
use std::time::SystemTime;

use cap_std::fs::Dir;

use super::outbound::safe_file_name;

/// Why an attachment was not written.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// The file alone is over the quota.
    #[error(
        "the attachment is {size} bytes, more than the inbox keeps for one adapter ({quota} bytes); to keep larger files, raise quota_mib under [inbox] in airlock.toml"
    )]
    TooBig {
        /// The file's size.
        size: u64,
        /// The adapter's quota.
        quota: u64,
    },
    /// The file system said no.
    #[error("cannot {what} in the inbox: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// The inbox directory and its quota per adapter.
#[derive(Debug)]
pub struct Inbox {
    dir: Dir,
    quota: u64,
    /// Making room and writing happen under this, so two downloads of one
    /// adapter cannot both fit into the same free space.
    writing: Mutex<()>,
}

/// One file of an adapter in the inbox, as eviction sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Kept {
    pub name: String,
    pub size: u64,
    pub modified: SystemTime,
}

impl Inbox {
    /// The inbox in `dir`, keeping at most `quota` bytes per adapter.
    pub fn new(dir: Dir, quota: u64) -> Self {
        Self {
            dir,
            quota,
            writing: Mutex::new(()),
        }
    }

    /// Write `data` as a file of `adapter` (its name from `stamp_ms` and the
    /// platform's `name`), first deleting the adapter's oldest files until it
    /// fits; returns the file name inside the inbox.
    pub fn save(
        &self,
        adapter: &str,
        stamp_ms: u64,
        name: &str,
        data: &[u8],
    ) -> Result<String, InboxError> {
        let size = data.len() as u64;
        let _writing = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let kept = self.files_of(adapter)?;
        for old in evict(&kept, self.quota, size)? {
            match self.dir.remove_file(&old) {
                Ok(()) => tracing::debug!(adapter, file = old, "inbox full: removed"),
                // Someone else removed it: the room is made all the same.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(InboxError::Io {
                        what: "remove an old file",
                        source,
                    });
                }
            }
        }
        let file = file_name(stamp_ms, adapter, name);
        self.dir
            .write(&file, data)
            .map_err(|source| InboxError::Io {
                what: "write",
                source,
            })?;
        Ok(file)
    }

    /// The regular files of `adapter` now in the inbox.
    fn files_of(&self, adapter: &str) -> Result<Vec<Kept>, InboxError> {
        let io = |source| InboxError::Io {
            what: "list the files",
            source,
        };
        let mut kept = Vec::new();
        for entry in self.dir.entries().map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if owner(&name) != Some(adapter) {
                continue;
            }
            // Gone since it was listed, or not a plain file: not counted.
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            kept.push(Kept {
                name,
                size: meta.len(),
                modified: meta
                    .modified()
                    .map(|m| m.into_std())
                    .unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
        Ok(kept)
    }
}

/// The inbox name of an attachment of `adapter` called `name` by its platform.
pub(crate) fn file_name(stamp_ms: u64, adapter: &str, name: &str) -> String {
    safe_file_name(&format!("{stamp_ms}-{adapter}_{name}"))
}

/// The adapter a file of the inbox belongs to, read from its name.
pub(crate) fn owner(file: &str) -> Option<&str> {
    let rest = file.trim_start_matches(|c: char| c.is_ascii_digit());
    if rest.len() == file.len() {
        return None;
    }
    let (adapter, _) = rest.strip_prefix('-')?.split_once('_')?;
    (!adapter.is_empty()).then_some(adapter)
}

/// Which of an adapter's `kept` files to delete, oldest first, so that a new
/// file of `incoming` bytes fits in `quota`; a file over the whole quota is
/// refused.
pub(crate) fn evict(kept: &[Kept], quota: u64, incoming: u64) -> Result<Vec<String>, InboxError> {
    if incoming > quota {
        return Err(InboxError::TooBig {
            size: incoming,
            quota,
        });
    }
    let mut oldest: Vec<&Kept> = kept.iter().collect();
    oldest.sort_by(|a, b| {
        a.modified
            .cmp(&b.modified)
            .then_with(|| a.name.cmp(&b.name))
    });
    let mut used: u64 = kept.iter().map(|k| k.size).fold(0, u64::saturating_add);
    let mut gone = Vec::new();
    for k in oldest {
        if used.saturating_add(incoming) <= quota {
            break;
        }
        used -= k.size;
        gone.push(k.name.clone());
    }
    Ok(gone)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn kept(name: &str, size: u64, age_s: u64) -> Kept {
        Kept {
            name: name.into(),
            size,
            modified: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 - age_s),
        }
    }

    #[test]
    fn eviction_deletes_oldest_first_until_the_new_file_fits() {
        let files = [
            kept("new", 40, 1),
            kept("old", 30, 300),
            kept("mid", 20, 200),
            kept("mid2", 20, 200),
        ];
        // (quota, incoming, deleted)
        let cases: &[(u64, u64, &[&str])] = &[
            (200, 10, &[]),
            (120, 10, &[]),
            (120, 11, &["old"]),
            (100, 30, &["old", "mid"]),
            (100, 41, &["old", "mid", "mid2"]),
            (100, 100, &["old", "mid", "mid2", "new"]),
            (100, 0, &["old"]),
        ];
        for &(quota, incoming, want) in cases {
            let got = evict(&files, quota, incoming).unwrap();
            assert_eq!(got, want, "quota {quota}, incoming {incoming}");
        }
        assert_eq!(evict(&[], 10, 10).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn a_file_over_the_whole_quota_is_refused_and_nothing_is_deleted() {
        let err = evict(&[kept("a", 1, 1)], 100, 101).unwrap_err();
        assert!(matches!(
            err,
            InboxError::TooBig {
                size: 101,
                quota: 100
            }
        ));
        let text = err.to_string();
        assert!(
            text.contains("[inbox]") && text.contains("quota_mib"),
            "{text}"
        );
    }

    #[test]
    fn the_owner_is_read_back_from_the_name() {
        let cases: &[(&str, Option<&str>)] = &[
            ("1700000000000-telegram_photo.jpg", Some("telegram")),
            ("1-my-adapter_a_b-c.txt", Some("my-adapter")),
            ("1-my_adapter-x", Some("my")),
            ("-telegram_x", None),
            ("x1-telegram_x", None),
            ("1-telegram-photo.jpg", None),
            ("1-_x", None),
            ("12", None),
        ];
        for &(name, want) in cases {
            assert_eq!(owner(name), want, "{name}");
        }
        for adapter in ["telegram", "my-adapter", "a1"] {
            let name = file_name(42, adapter, "../../evil name.png");
            assert_eq!(owner(&name), Some(adapter), "{name}");
            assert!(!name.contains('/'), "{name}");
        }
    }

    #[test]
    fn saving_keeps_an_adapter_under_its_quota_and_leaves_others_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        let inbox = Inbox::new(dir, 100);
        inbox.save("other", 1, "o", &[0; 90]).unwrap();
        let mut names = Vec::new();
        for i in 0..5u64 {
            names.push(inbox.save("a", 10 + i, "f", &[1; 40]).unwrap());
            // Distinct modification times, oldest first.
            std::thread::sleep(Duration::from_millis(20));
        }
        let a: Vec<Kept> = inbox.files_of("a").unwrap();
        let mut left: Vec<String> = a.iter().map(|k| k.name.clone()).collect();
        left.sort();
        assert_eq!(left, names[3..]);
        assert_eq!(inbox.files_of("other").unwrap().len(), 1);
        assert!(matches!(
            inbox.save("a", 99, "big", &[0; 101]),
            Err(InboxError::TooBig { .. })
        ));
        assert_eq!(inbox.files_of("a").unwrap().len(), 2);
    }
}
