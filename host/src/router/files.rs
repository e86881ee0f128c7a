//! The files a `reply` attaches, read by the host on the session's word.
//!
//! The host reads with its own rights and hands the bytes to an adapter, which
//! may be a third party's. So a path is checked for what it *is*, not only
//! for where it is: every check that matters is made on the one descriptor
//! that is then read (`fstat`, `fstatfs`), so swapping the path between the
//! check and the read cannot win.
//!
//! Refused: anything but a regular file; files of the kernel's live state
//! (procfs, sysfs, devpts, debugfs, …, found by filesystem type, whatever
//! path reached them); airlock's own files, by path *and* by inode, so a hard
//! link or a bind mount elsewhere to a file in the state directory is refused
//! too; files over the size limit, counted while reading (procfs says 0 bytes
//! for files that never end).
//!
//! Where files may come from is the operator's call: `[files] allow` in
//! `airlock.toml` lists directories. Unset, any file the host can read
//! outside its state directory may be attached, subject to the checks above:
//! the session can already quote any file it can read into a reply's text,
//! so a default list would not keep a file from the chat; what it cannot
//! quote is airlock's own state, and that is what is refused here.

use std::collections::HashSet;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags};

/// At most this many entries of the state directory are walked to learn its
/// inodes; past it, no file is attached (the check could not be complete).
const MAX_OWN_ENTRIES: usize = 100_000;

/// Filesystems that hold the kernel's live state rather than files, by
/// `statfs` magic number: nothing on them is attached.
const PSEUDO_FILESYSTEMS: &[(u64, &str)] = &[
    (0x0000_9fa0, "procfs"),
    (0x6265_6572, "sysfs"),
    (0x0000_1cd1, "devpts"),
    (0x6462_6720, "debugfs"),
    (0x7472_6163, "tracefs"),
    (0x7363_6673, "securityfs"),
    (0x0027_e0eb, "cgroup"),
    (0x6367_7270, "cgroup2"),
    (0xcafe_4a11, "bpf"),
    (0x6165_676c, "pstore"),
    (0xde5e_81e4, "efivarfs"),
    (0x6265_6570, "configfs"),
    (0x6573_5543, "fusectl"),
    (0x1980_0202, "mqueue"),
    (0x4249_4e4d, "binfmt_misc"),
    (0xf97c_ff8c, "selinuxfs"),
    (0x4341_5d53, "smackfs"),
    (0x6e73_6673, "nsfs"),
    (0x5049_5045, "pipefs"),
    (0x534f_434b, "sockfs"),
    (0x0904_1934, "anon_inodefs"),
    (0x6264_6576, "bdevfs"),
    (0x0000_9fa2, "usbdevfs"),
    (0x454d_444d, "devmem"),
];

/// Where those filesystems are mounted on Linux; refused by path as well, so
/// the answer names them even where a mount is of another type (`/dev` is
/// devtmpfs, which reports itself as tmpfs).
const PSEUDO_ROOTS: &[(&str, &str)] = &[("/proc", "procfs"), ("/sys", "sysfs"), ("/dev", "/dev")];

/// Why a file was not attached. Never holds any of the file's bytes.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    /// The path is relative.
    #[error("give an absolute path")]
    Relative,
    /// It could not be opened.
    #[error("cannot open it: {0}; check that it exists and that airlock may read it")]
    Open(std::io::Error),
    /// It is in the state directory.
    #[error(
        "files in airlock's state directory are never sent; copy what you mean to send out of it"
    )]
    StateDir,
    /// It is one of the state directory's files, reached another way.
    #[error(
        "it is a file of airlock's state directory reached through a hard link or a mount, and airlock never sends its own files"
    )]
    OwnFile,
    /// The state directory could not be checked.
    #[error(
        "airlock's state directory holds more than {MAX_OWN_ENTRIES} entries, too many to check this file against; remove old files from its inbox"
    )]
    OwnFilesUnknown,
    /// It holds a secret airlock has loaded (a bot token): the adapter and
    /// the platform would both get it.
    #[error(
        "it holds a secret airlock has loaded (a bot token or another granted secret), which is never sent; remove the secret from the file, or send a copy without it"
    )]
    HoldsSecret,
    /// It is on a filesystem of the kernel's live state.
    #[error(
        "it is in {0}, the kernel's live state rather than a file on disk; copy what you mean to send into a regular file and attach that"
    )]
    Pseudo(&'static str),
    /// It is not a regular file.
    #[error(
        "it is a {0}, not a regular file; copy what you mean to send into a regular file and attach that"
    )]
    NotRegular(&'static str),
    /// It is outside every directory the operator allows.
    #[error(
        "it is not under a directory listed in [files] allow in airlock.toml ({0}); copy it into one of them, or add its directory to that list"
    )]
    NotAllowed(String),
    /// It is too large.
    #[error("{size} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// What `fstat` said.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// It held more than its size said, past the limit.
    #[error("it holds more than the limit of {0} bytes (more than its size said)")]
    Grew(u64),
    /// Reading failed.
    #[error("cannot read it: {0}")]
    Read(std::io::Error),
}

/// Where attachments may come from: never the state directory, and only
/// under the operator's directories when there is a list.
#[derive(Clone, Debug)]
pub(crate) struct FilePolicy {
    home: PathBuf,
    allow: Option<Vec<PathBuf>>,
}

/// A file read for sending.
#[derive(Debug)]
pub(crate) struct ReadFile {
    /// The path with every link resolved.
    pub real: PathBuf,
    /// Its bytes.
    pub data: Vec<u8>,
}

impl FilePolicy {
    /// The policy for state directory `home` and `[files] allow` entries
    /// (`~/` is the user's home directory). An entry that is not an absolute
    /// path allows nothing, with a warning: the list only narrows.
    pub(crate) fn new(home: PathBuf, allow: Option<&[String]>) -> Self {
        let user_home = std::env::var_os("HOME").map(PathBuf::from);
        let allow = allow.map(|entries| {
            entries
                .iter()
                .filter_map(|entry| {
                    let dir = expand(entry, user_home.as_deref());
                    if dir.is_none() {
                        tracing::warn!(
                            "[files] allow in airlock.toml: {entry:?} is not an absolute path \
                             (or ~/…), so it allows nothing; write the directory's full path"
                        );
                    }
                    dir
                })
                .collect()
        });
        Self { home, allow }
    }

    /// What one reply's files are judged against, resolved once for all of
    /// them: the state directory's real path and the inodes in it, and the
    /// allowed directories' real paths.
    pub(crate) fn for_reply(&self) -> Result<ReplyFiles<'_>, Refused> {
        let home = self
            .home
            .canonicalize()
            .unwrap_or_else(|_| self.home.clone());
        let own = own_inodes(&home, MAX_OWN_ENTRIES).ok_or(Refused::OwnFilesUnknown)?;
        let allowed = self
            .allow
            .as_ref()
            .map(|allow| allow.iter().filter_map(|d| d.canonicalize().ok()).collect());
        Ok(ReplyFiles {
            policy: self,
            home,
            own,
            allowed,
        })
    }
}

/// A [`FilePolicy`] resolved for the files of one reply.
pub(crate) struct ReplyFiles<'a> {
    policy: &'a FilePolicy,
    /// The state directory, links resolved.
    home: PathBuf,
    /// Device and inode of everything in it.
    own: HashSet<(u64, u64)>,
    /// `[files] allow`, links resolved (entries that do not exist left out).
    allowed: Option<Vec<PathBuf>>,
}

impl ReplyFiles<'_> {
    /// Open `raw` once, check what it is, and read at most `limit` bytes.
    pub(crate) fn read(&self, raw: &str, limit: u64) -> Result<ReadFile, Refused> {
        let path = Path::new(raw);
        if !path.is_absolute() {
            return Err(Refused::Relative);
        }
        let real = path.canonicalize().map_err(Refused::Open)?;
        if real.starts_with(&self.home) {
            return Err(Refused::StateDir);
        }
        if let Some(fs) = pseudo_root(&real) {
            return Err(Refused::Pseudo(fs));
        }
        if let (Some(allow), Some(dirs)) = (&self.policy.allow, &self.allowed)
            && !dirs.iter().any(|d| real.starts_with(d))
        {
            let listed = allow
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(Refused::NotAllowed(if listed.is_empty() {
                "an empty list: no files may be sent".into()
            } else {
                listed
            }));
        }
        // Refuse what is plainly not a file before opening it: opening a
        // device can have effects of its own. The descriptor is checked again.
        let meta = std::fs::metadata(&real).map_err(Refused::Open)?;
        if !meta.is_file() {
            return Err(Refused::NotRegular(kind_name(FileType::from_raw_mode(
                meta.mode() as _,
            ))));
        }
        // The path has no links left: NOFOLLOW catches one swapped in since.
        // NONBLOCK: a FIFO swapped in must not hold the call open.
        let fd = rustix::fs::open(
            &real,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .map_err(|e| Refused::Open(e.into()))?;
        let data = read_descriptor(fd, limit, &self.own)?;
        Ok(ReadFile { real, data })
    }
}

/// The checks that decide, made on the open descriptor itself, then the
/// read: a regular file, not on a kernel filesystem, not airlock's own, at
/// most `limit` bytes.
fn read_descriptor(
    fd: rustix::fd::OwnedFd,
    limit: u64,
    own: &HashSet<(u64, u64)>,
) -> Result<Vec<u8>, Refused> {
    let stat = rustix::fs::fstat(&fd).map_err(|e| Refused::Open(e.into()))?;
    let kind = FileType::from_raw_mode(stat.st_mode as _);
    if kind != FileType::RegularFile {
        return Err(Refused::NotRegular(kind_name(kind)));
    }
    let fs = rustix::fs::fstatfs(&fd).map_err(|e| Refused::Open(e.into()))?;
    #[allow(clippy::unnecessary_cast)]
    if let Some(name) = pseudo_filesystem(fs.f_type as u64) {
        return Err(Refused::Pseudo(name));
    }
    #[allow(clippy::unnecessary_cast)]
    if own.contains(&(stat.st_dev as u64, stat.st_ino as u64)) {
        return Err(Refused::OwnFile);
    }
    let size = u64::try_from(stat.st_size).unwrap_or(0);
    if size > limit {
        return Err(Refused::TooLarge { size, limit });
    }
    read_capped(std::fs::File::from(fd), limit, size)
}

/// At most `limit` bytes of `source`, whatever its size said (`expected`):
/// one byte more is read to tell a file that holds more.
fn read_capped(source: impl Read, limit: u64, expected: u64) -> Result<Vec<u8>, Refused> {
    let mut data = Vec::with_capacity(expected.min(limit) as usize);
    source
        .take(limit.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(Refused::Read)?;
    if data.len() as u64 > limit {
        return Err(Refused::Grew(limit));
    }
    Ok(data)
}

/// `entry` as an absolute directory: `~` and `~/…` under `user_home`.
fn expand(entry: &str, user_home: Option<&Path>) -> Option<PathBuf> {
    let path = match entry.strip_prefix('~') {
        Some("") => user_home?.to_path_buf(),
        Some(rest) if rest.starts_with('/') => user_home?.join(rest.trim_start_matches('/')),
        Some(_) => return None,
        None => PathBuf::from(entry),
    };
    path.is_absolute().then_some(path)
}

/// The name of the pseudo filesystem with magic number `magic`, if it is one.
fn pseudo_filesystem(magic: u64) -> Option<&'static str> {
    let magic = magic & 0xffff_ffff;
    PSEUDO_FILESYSTEMS
        .iter()
        .find(|(m, _)| *m == magic)
        .map(|(_, name)| *name)
}

/// The pseudo filesystem whose usual mount point holds `real`, if any.
fn pseudo_root(real: &Path) -> Option<&'static str> {
    PSEUDO_ROOTS
        .iter()
        .find(|(root, _)| real.starts_with(root))
        .map(|(_, name)| *name)
}

fn kind_name(kind: FileType) -> &'static str {
    match kind {
        FileType::RegularFile => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symbolic link",
        FileType::Fifo => "FIFO (named pipe)",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Unknown => "file of unknown type",
    }
}

/// (device, inode) of every entry under `root`, links not followed; `None`
/// past `max` entries.
fn own_inodes(root: &Path, max: usize) -> Option<HashSet<(u64, u64)>> {
    let mut seen = HashSet::new();
    let mut stack = vec![root.to_path_buf()];
    let mut count = 0usize;
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            count += 1;
            if count > max {
                return None;
            }
            // `DirEntry::metadata` does not follow a symlink.
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            seen.insert((meta.dev(), meta.ino()));
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    Some(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_entries_expand_or_allow_nothing() {
        let home = Some(Path::new("/home/ada"));
        for (entry, want) in [
            ("/tmp", Some("/tmp")),
            ("~", Some("/home/ada")),
            ("~/projects", Some("/home/ada/projects")),
            ("~//projects", Some("/home/ada/projects")),
            ("~bob/x", None),
            ("projects", None),
            ("./x", None),
            ("", None),
        ] {
            assert_eq!(expand(entry, home), want.map(PathBuf::from), "{entry:?}");
        }
        assert_eq!(expand("~/x", None), None);
    }

    #[test]
    fn kernel_filesystems_are_known_by_type_and_by_place() {
        for (magic, want) in [
            (0x9fa0, Some("procfs")),
            (0x6265_6572, Some("sysfs")),
            (0x1cd1, Some("devpts")),
            (0x6462_6720, Some("debugfs")),
            (0xcafe_4a11, Some("bpf")),
            // A negative 32-bit f_type, sign-extended.
            (0xffff_ffff_cafe_4a11, Some("bpf")),
            (0xef53, None),      // ext4
            (0x0102_1994, None), // tmpfs
            (0x5846_5342, None), // xfs
            (0x9123_683e, None), // btrfs
            (0x794c_7630, None), // overlayfs
        ] {
            assert_eq!(pseudo_filesystem(magic), want, "{magic:#x}");
        }
        for (path, want) in [
            ("/proc/self/environ", Some("procfs")),
            ("/proc", Some("procfs")),
            ("/sys/kernel/notes", Some("sysfs")),
            ("/dev/zero", Some("/dev")),
            ("/devices/x", None),
            ("/process.txt", None),
            ("/tmp/proc/x", None),
            ("/home/ada/sys", None),
        ] {
            assert_eq!(pseudo_root(Path::new(path)), want, "{path}");
        }
    }

    /// A policy over a scratch state directory inside `dir`.
    fn scratch(dir: &Path, allow: Option<&[String]>) -> FilePolicy {
        let home = dir.join("home");
        std::fs::create_dir_all(home.join("secrets")).unwrap();
        std::fs::write(home.join("secrets/TOKEN"), "123:secret").unwrap();
        FilePolicy::new(home, allow)
    }

    fn refusal(policy: &FilePolicy, path: &Path, limit: u64) -> String {
        match policy
            .for_reply()
            .unwrap()
            .read(path.to_str().unwrap(), limit)
        {
            Ok(f) => panic!("{} was read ({} bytes)", path.display(), f.data.len()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn what_is_refused_and_why() {
        let dir = tempfile::tempdir().unwrap();
        let policy = scratch(dir.path(), None);
        let secret = dir.path().join("home/secrets/TOKEN");
        let hard = dir.path().join("hard");
        std::fs::hard_link(&secret, &hard).unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, [7u8; 11]).unwrap();
        for (path, limit, want) in [
            (hard.clone(), 100, "hard link"),
            (secret.clone(), 100, "state directory"),
            (fifo, 100, "FIFO"),
            (dir.path().to_path_buf(), 100, "directory"),
            (big, 10, "11 bytes is over the limit of 10 bytes"),
            ("/proc/self/environ".into(), 100, "procfs"),
            ("/dev/zero".into(), 100, "/dev"),
            (dir.path().join("missing"), 100, "cannot open it"),
        ] {
            let text = refusal(&policy, &path, limit);
            assert!(text.contains(want), "{}: {text}", path.display());
            assert!(!text.contains("secret"), "{text}");
        }
        assert_eq!(
            policy
                .for_reply()
                .unwrap()
                .read("relative/path", 100)
                .unwrap_err()
                .to_string(),
            "give an absolute path"
        );
    }

    #[test]
    fn a_regular_file_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let policy = scratch(dir.path(), None);
        let file = dir.path().join("notes.txt");
        std::fs::write(&file, b"0123456789").unwrap();
        let files = policy.for_reply().unwrap();
        let read = files.read(file.to_str().unwrap(), 10).unwrap();
        assert_eq!(read.data, b"0123456789");
        assert_eq!(read.real, file.canonicalize().unwrap());
    }

    #[test]
    fn the_allow_list_narrows_where_files_come_from() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        let other = dir.path().join("other");
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(shared.join("a.txt"), "a").unwrap();
        std::fs::write(other.join("b.txt"), "b").unwrap();
        // A link inside an allowed directory to a file outside it.
        std::os::unix::fs::symlink(other.join("b.txt"), shared.join("link.txt")).unwrap();
        let list = [shared.display().to_string(), "relative".to_string()];
        let policy = scratch(dir.path(), Some(&list));
        let files = policy.for_reply().unwrap();
        assert!(
            files
                .read(shared.join("a.txt").to_str().unwrap(), 10)
                .is_ok()
        );
        for path in [other.join("b.txt"), shared.join("link.txt")] {
            let text = refusal(&policy, &path, 10);
            assert!(text.contains("[files] allow"), "{text}");
            assert!(text.contains(&shared.display().to_string()), "{text}");
        }
        let policy = scratch(dir.path(), Some(&[]));
        let text = refusal(&policy, &shared.join("a.txt"), 10);
        assert!(text.contains("no files may be sent"), "{text}");
    }

    #[test]
    fn reading_stops_at_the_limit_whatever_the_size_said() {
        // Like /proc/self/pagemap: said 0 bytes, never ends.
        let endless = std::io::repeat(0);
        assert!(matches!(
            read_capped(endless, 1 << 20, 0),
            Err(Refused::Grew(_))
        ));
        assert_eq!(read_capped(&b"abc"[..], 3, 0).unwrap(), b"abc");
        assert!(matches!(
            read_capped(&b"abcd"[..], 3, 3),
            Err(Refused::Grew(3))
        ));
    }

    #[test]
    fn the_descriptor_decides_whatever_path_reached_it() {
        let open = |path: &str| {
            rustix::fs::open(path, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty()).unwrap()
        };
        let none = HashSet::new();
        for (path, want) in [
            ("/proc/self/environ", "procfs"),
            ("/proc/self/pagemap", "procfs"),
            ("/sys/kernel/notes", "sysfs"),
            ("/dev/zero", "character device"),
            ("/dev/null", "character device"),
        ] {
            if !Path::new(path).exists() {
                continue;
            }
            let text = read_descriptor(open(path), 1 << 20, &none)
                .unwrap_err()
                .to_string();
            assert!(text.contains(want), "{path}: {text}");
        }
        // A file of the state directory, by inode.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db");
        std::fs::write(&file, "x").unwrap();
        let own = own_inodes(dir.path(), 10).unwrap();
        let file = file.to_str().unwrap();
        assert!(matches!(
            read_descriptor(open(file), 10, &own),
            Err(Refused::OwnFile)
        ));
        assert_eq!(read_descriptor(open(file), 10, &none).unwrap(), b"x");
    }

    #[test]
    fn the_walk_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..5 {
            std::fs::write(dir.path().join(i.to_string()), "").unwrap();
        }
        assert_eq!(own_inodes(dir.path(), 5).unwrap().len(), 5);
        assert!(own_inodes(dir.path(), 4).is_none());
    }
}
