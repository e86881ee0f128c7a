//! The delivery ledger: which events are committed as delivered but not yet
//! marked so in the database.
//!
//! Marking a batch delivered in SQLite costs a transaction; appending its
//! sequence numbers to a file costs one `write`. So the writer records a
//! batch here just before writing it to the session ([`Ledger::record`]),
//! and the database catches up in bulk a little later ([`Ledger::apply`]),
//! after which the file is emptied. A `write` to a file survives the process
//! being killed (the kernel has the bytes), so after a crash the next airlock
//! reads the dead one's ledger and marks those events delivered before it
//! delivers anything ([`recover`]).
//!
//! Each process keeps its own file, `$AIRLOCK_HOME/ledgers/<pid>.ledger`,
//! under an exclusive `flock`; a ledger whose lock can be taken belongs to a
//! process that is gone.

use std::io::{Read, Seek, Write};

use cap_std::fs::{Dir, OpenOptions};

use super::Queue;

/// The subdirectory holding ledgers.
pub const LEDGERS_DIR: &str = "ledgers";

/// This process's ledger.
#[derive(Debug)]
pub struct Ledger {
    file: std::fs::File,
    name: String,
    dir: Dir,
    /// Recorded and written, not yet applied to the database.
    pending: Vec<i64>,
}

fn encode(seqs: &[i64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(seqs.len() * 8);
    for s in seqs {
        out.extend_from_slice(s.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

/// The numbers on complete lines. A batch is appended in one `write` ending
/// in a newline, so a torn append (the kernel stopped inside it) leaves a
/// last line without one: skipped, and its events are delivered again rather
/// than a truncated number marking the wrong one.
fn decode(text: &str) -> Vec<i64> {
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .split('\n')
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

impl Ledger {
    /// Creates this process's ledger in `dir` and locks it.
    pub fn create(dir: Dir) -> std::io::Result<Self> {
        let name = format!("{}.ledger", std::process::id());
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(true);
        let file = dir.open_with(&name, &options)?.into_std();
        file.try_lock().map_err(|e| match e {
            std::fs::TryLockError::Error(e) => e,
            std::fs::TryLockError::WouldBlock => {
                std::io::Error::other("another process holds this ledger")
            }
        })?;
        Ok(Self {
            file,
            name,
            dir,
            pending: Vec::new(),
        })
    }

    /// Records `seqs` as delivered: one append. Must succeed before they
    /// are written to the session.
    pub fn record(&mut self, seqs: &[i64]) -> std::io::Result<()> {
        self.file.seek(std::io::SeekFrom::End(0))?;
        self.file.write_all(&encode(seqs))
    }

    /// `seqs` were written: they will be applied to the database.
    pub fn written(&mut self, seqs: &[i64]) {
        self.pending.extend_from_slice(seqs);
    }

    /// How many written events wait to be applied.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Marks every written event delivered in the database and empties the
    /// ledger (a batch recorded but never written, the client having gone,
    /// goes with it and stays waiting).
    pub fn apply(&mut self, queue: &Queue) {
        if !self.pending.is_empty() {
            if let Err(e) = queue.delivered(&self.pending) {
                tracing::error!(
                    "cannot mark {} delivered events in the database ({e}); the ledger keeps them",
                    self.pending.len()
                );
                return;
            }
            self.pending.clear();
        }
        if let Err(e) = self.file.set_len(0) {
            tracing::warn!("cannot empty the delivery ledger: {e}");
        }
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        // Only an empty ledger may go; one with entries is recovered later.
        if self.file.metadata().is_ok_and(|m| m.len() == 0) {
            let _ = self.dir.remove_file(&self.name);
        }
    }
}

/// Marks delivered every event listed in the ledgers of processes that are
/// gone, and deletes those ledgers. Returns how many events.
pub fn recover(dir: &Dir, queue: &Queue) -> std::io::Result<usize> {
    let mut recovered = 0;
    for entry in dir.entries()? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".ledger") {
            continue;
        }
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        let Ok(file) = dir.open_with(&name, &options) else {
            continue;
        };
        let mut file = file.into_std();
        if file.try_lock().is_err() {
            // Its process is alive.
            continue;
        }
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        let seqs = decode(&text);
        if !seqs.is_empty() {
            queue.delivered(&seqs).map_err(std::io::Error::other)?;
            recovered += seqs.len();
        }
        dir.remove_file(&name)?;
    }
    Ok(recovered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use crate::queue::Incoming;

    fn dir() -> (tempfile::TempDir, Dir) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        (tmp, dir)
    }

    fn queue_with(n: usize) -> (Queue, Vec<i64>) {
        let q = Queue::new(Db::in_memory().unwrap(), 100);
        q.own("tg");
        let events: Vec<Incoming> = (0..n)
            .map(|i| Incoming {
                dedupe: None,
                line: format!("e{i}"),
                attachments: None,
            })
            .collect();
        let seqs = q
            .accept("tg", &events, None)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        (q, seqs)
    }

    #[test]
    fn recorded_events_of_a_dead_process_are_recovered() {
        let (_tmp, dir) = dir();
        let (q, seqs) = queue_with(3);
        // A process recorded two, then died (its file is left, unlocked).
        std::fs::write(
            _tmp.path().join("999999.ledger"),
            format!("{}\n{}\n12", seqs[0], seqs[1]),
        )
        .unwrap();
        assert_eq!(recover(&dir, &q).unwrap(), 2, "the torn 12 is not read");
        let waiting: Vec<i64> = q.waiting(&[], 10).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(waiting, [seqs[2]]);
        assert!(!_tmp.path().join("999999.ledger").exists());
    }

    #[test]
    fn a_live_ledger_is_left_alone_and_applied_by_its_owner() {
        let (_tmp, dir) = dir();
        let (q, seqs) = queue_with(2);
        let mut ledger = Ledger::create(dir.try_clone().unwrap()).unwrap();
        ledger.record(&seqs).unwrap();
        assert_eq!(recover(&dir, &q).unwrap(), 0, "its owner is alive");
        ledger.written(&seqs);
        assert_eq!(ledger.pending(), 2);
        ledger.apply(&q);
        assert_eq!(ledger.pending(), 0);
        assert!(q.waiting(&[], 10).unwrap().is_empty());
        let name = format!("{}.ledger", std::process::id());
        assert_eq!(std::fs::read(_tmp.path().join(&name)).unwrap().len(), 0);
        drop(ledger);
        assert!(!_tmp.path().join(&name).exists(), "an empty ledger goes");
    }

    #[test]
    fn torn_lines_are_skipped() {
        assert_eq!(decode("1\n2\n3"), [1, 2]);
        assert_eq!(decode("1\n2\n3\n"), [1, 2, 3]);
        assert_eq!(decode("1\nx\n\n4\n"), [1, 4]);
        assert_eq!(decode("12"), Vec::<i64>::new());
    }
}
