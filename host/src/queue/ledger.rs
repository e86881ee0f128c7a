//! The file-backed ledger ([`FileLedger`]): which events reached the
//! session's stdout and are not yet marked delivered in the database. The
//! MCP writer delivers through it (`mcp::ledger`).
//!
//! Marking a batch delivered in SQLite costs a transaction, so the database
//! catches up in bulk a little later ([`FileLedger::apply`]). Until then, a
//! crash must not make the next airlock deliver those events again, nor
//! treat as delivered a batch that never left. Both come down to one
//! question after a `kill -9`: how many bytes did the dead process hand to
//! its stdout? The kernel answers it.
//!
//! Each process keeps two files under `$AIRLOCK_HOME/ledgers/`:
//!
//! - `<pid>.spool`: a header page, then the bytes of every batch, appended
//!   before it is sent. Its first eight bytes are the *sent offset*: the
//!   spool position up to which bytes have gone to stdout. The batch is sent
//!   with `sendfile(stdout, spool, &sent)`, where `&sent` points into a
//!   shared mapping of that header: the kernel moves the bytes and advances
//!   the offset in one system call, and a process is only ever killed
//!   between system calls. So the offset on disk is exactly what reached the
//!   pipe, whenever the process dies.
//! - `<pid>.ledger`: one line per event, `seq end`, appended before its
//!   bytes: `end` is where the event's line ends in the spool.
//!
//! An event is delivered exactly when `end <= sent`. After a crash the next
//! airlock marks those delivered ([`recover`]) and leaves the rest waiting;
//! a batch cut short by the kill leaves a torn line in the old pipe and is
//! delivered again in full. Where stdout takes no `sendfile` (a terminal),
//! the bytes are written with `write` and the offset is advanced right
//! after: there, a kill between the two repeats one batch.
//!
//! Each process holds an exclusive `flock` on its ledger; a ledger whose lock
//! can be taken belongs to a process that is gone, and is removed once
//! applied. A locked one is read too (its process may be dying, or another
//! session of the same state directory): what it sent is delivered, so
//! marking it is always right.

use std::io::{Read, Seek, Write};
use std::os::fd::BorrowedFd;
use std::ptr::NonNull;

use cap_std::fs::{Dir, OpenOptions};
use rustix::io::Errno;

use super::Queue;

/// The subdirectory holding ledgers.
pub const LEDGERS_DIR: &str = "ledgers";

/// Size of the spool's header: one page, mapped shared.
const HEADER: u64 = 4096;
/// Where the sent offset lives in the header.
const SENT_AT: usize = 0;
/// Where the generation lives: odd while the files are being emptied, and
/// different after, so a reader of a live ledger can tell a read that
/// straddled it.
const GENERATION_AT: usize = 8;

/// The spool header, mapped shared: writes to it reach the file (and every
/// reader of it) at once, whoever makes them, the kernel included.
#[derive(Debug)]
struct Header {
    ptr: NonNull<u64>,
}

// SAFETY: the mapping is owned by the `Header` and only touched through it;
// the pointer stays valid until `Drop` unmaps it.
unsafe impl Send for Header {}

impl Header {
    fn map(spool: &std::fs::File) -> std::io::Result<Self> {
        // SAFETY: a fresh shared mapping of the first page of a file we hold
        // open; nothing else in this process maps it.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                HEADER as usize,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
                spool,
                0,
            )
        }?;
        let ptr = NonNull::new(ptr.cast::<u64>()).ok_or(std::io::ErrorKind::InvalidData)?;
        Ok(Self { ptr })
    }

    fn word(&self, at: usize) -> *mut u64 {
        // SAFETY: `at` is one of the header's word offsets, inside the page.
        unsafe { self.ptr.as_ptr().byte_add(at) }
    }

    fn get(&self, at: usize) -> u64 {
        // SAFETY: an aligned word of our mapping; volatile, since the kernel
        // writes it behind the compiler's back.
        unsafe { self.word(at).read_volatile() }
    }

    fn set(&self, at: usize, value: u64) {
        // SAFETY: as in `get`.
        unsafe { self.word(at).write_volatile(value) }
    }

    /// The sent offset, for the kernel to advance.
    fn sent_mut(&mut self) -> &mut u64 {
        // SAFETY: an aligned word of our mapping, borrowed for one system
        // call through `&mut self`.
        unsafe { &mut *self.word(SENT_AT) }
    }
}

impl Drop for Header {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), HEADER as usize) };
    }
}

/// How a batch fared in [`FileLedger::deliver`].
#[derive(Debug)]
pub enum Delivery {
    /// It reached stdout whole.
    Written,
    /// It could not be recorded: nothing was written, the events wait.
    NotRecorded(std::io::Error),
    /// Writing failed (the client is gone); what did not reach stdout waits.
    Failed(std::io::Error),
}

/// This process's ledger: its spool and index files.
#[derive(Debug)]
pub struct FileLedger {
    index: std::fs::File,
    spool: std::fs::File,
    header: Header,
    /// Where the next batch's bytes go in the spool.
    end: u64,
    /// Length of the index: what a failed record is cut back to.
    index_len: u64,
    /// A failed record could not be undone: nothing more is delivered
    /// through this ledger (the events wait for the next airlock).
    broken: bool,
    /// False once stdout refused `sendfile`: plain writes from then on.
    kernel_counts: bool,
    stem: String,
    dir: Dir,
    /// Written, not yet applied to the database.
    pending: Vec<i64>,
    /// Marking fails while the disk is full: said once, not per batch.
    full: crate::db::Episode,
}

impl FileLedger {
    /// Creates this process's ledger in `dir` and locks it.
    ///
    /// The index appears under its `.ledger` name only once it is locked
    /// (created under another name, locked, then renamed), so no reader
    /// ever takes a ledger being born for one of a process that is gone.
    /// The name is unique (pid and random bits), so an old ledger of a
    /// process that had the same pid is never overwritten.
    pub fn create(dir: Dir) -> std::io::Result<Self> {
        let mut random = [0u8; 6];
        getrandom::fill(&mut random).map_err(std::io::Error::other)?;
        let stem = format!("{}-{}", std::process::id(), hex::encode(random));
        let born = format!("{stem}.new");
        let spool_name = format!("{stem}.spool");
        let made = (|| -> std::io::Result<_> {
            let mut options = OpenOptions::new();
            options.read(true).write(true).create_new(true);
            let index = dir.open_with(&born, &options)?.into_std();
            index.try_lock().map_err(|e| match e {
                std::fs::TryLockError::Error(e) => e,
                std::fs::TryLockError::WouldBlock => std::io::Error::other("a new ledger is held"),
            })?;
            let spool = dir.open_with(&spool_name, &options)?.into_std();
            // Written, not left sparse: a store through the mapping into an
            // unallocated block on a full disk would be a SIGBUS.
            let zeros = [0u8; HEADER as usize];
            if rustix::io::pwrite(&spool, &zeros, 0)? != zeros.len() {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            let header = Header::map(&spool)?;
            header.set(SENT_AT, HEADER);
            header.set(GENERATION_AT, 0);
            dir.rename(&born, &dir, format!("{stem}.ledger"))?;
            Ok((index, spool, header))
        })();
        let (index, spool, header) = made.inspect_err(|_| {
            let _ = dir.remove_file(&spool_name);
            let _ = dir.remove_file(&born);
        })?;
        Ok(Self {
            index,
            spool,
            header,
            end: HEADER,
            index_len: 0,
            broken: false,
            kernel_counts: true,
            stem,
            dir,
            pending: Vec::new(),
            full: crate::db::Episode::default(),
        })
    }

    /// Records `seqs` (whose lines, each ending in `\n`, make up `lines`)
    /// and sends them to `out`. Waiting for room is the caller's business:
    /// this blocks until the batch is written or the write fails.
    pub fn deliver(&mut self, out: BorrowedFd<'_>, seqs: &[i64], lines: &[u8]) -> Delivery {
        if self.broken {
            return Delivery::NotRecorded(std::io::Error::other(
                "the delivery ledger failed earlier",
            ));
        }
        let start = self.end;
        let ends = match self.record(seqs, lines) {
            Ok(ends) => ends,
            Err(e) => {
                // Index lines of a batch that was not spooled would name
                // spool positions the next batch takes: cut them off.
                if self.index.set_len(self.index_len).is_err() {
                    self.broken = true;
                }
                return Delivery::NotRecorded(e);
            }
        };
        match self.send(out, start) {
            Ok(()) => {
                self.pending.extend_from_slice(seqs);
                Delivery::Written
            }
            Err(e) => {
                // Lines that went out whole before the failure were
                // delivered: applied with the rest, not handed out again.
                let sent = self.header.get(SENT_AT);
                self.pending.extend(
                    seqs.iter()
                        .zip(&ends)
                        .filter(|(_, end)| **end <= sent)
                        .map(|(seq, _)| *seq),
                );
                Delivery::Failed(e)
            }
        }
    }

    /// Appends the index lines, then the bytes.
    fn record(&mut self, seqs: &[i64], lines: &[u8]) -> std::io::Result<Vec<u64>> {
        let mut index = Vec::with_capacity(seqs.len() * 24);
        let mut event_ends = Vec::with_capacity(seqs.len());
        let mut ends = lines
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| self.end + i as u64 + 1);
        let batch_end = self.end + lines.len() as u64;
        for (i, seq) in seqs.iter().enumerate() {
            // Each event is one line; should the count ever differ, the
            // rest end with the batch (delivered only when all of it was).
            let end = ends
                .next()
                .filter(|_| i + 1 < seqs.len())
                .unwrap_or(batch_end);
            index.extend_from_slice(format!("{seq} {end}\n").as_bytes());
            event_ends.push(end);
        }
        self.index.seek(std::io::SeekFrom::Start(self.index_len))?;
        self.index.write_all(&index)?;
        rustix::io::pwrite(&self.spool, lines, self.end).and_then(|n| {
            if n == lines.len() {
                Ok(())
            } else {
                Err(Errno::IO)
            }
        })?;
        self.index_len += index.len() as u64;
        self.end = batch_end;
        Ok(event_ends)
    }

    /// Sends the spool from `start` to its end.
    fn send(&mut self, out: BorrowedFd<'_>, start: u64) -> std::io::Result<()> {
        debug_assert_eq!(self.header.get(SENT_AT), start);
        while self.header.get(SENT_AT) < self.end {
            let left = (self.end - self.header.get(SENT_AT)) as usize;
            if !self.kernel_counts {
                self.write_plain(out, left)?;
                continue;
            }
            match rustix::fs::sendfile(out, &self.spool, Some(self.header.sent_mut()), left) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => wait_writable(out),
                // A terminal or another output without `sendfile`.
                Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP)
                    if self.header.get(SENT_AT) == start =>
                {
                    tracing::debug!("stdout takes no sendfile; delivery uses plain writes");
                    self.kernel_counts = false;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// `write` the next `left` bytes, then advance the sent offset.
    fn write_plain(&mut self, out: BorrowedFd<'_>, left: usize) -> std::io::Result<()> {
        let at = self.header.get(SENT_AT);
        let mut buf = vec![0; left];
        let n = rustix::io::pread(&self.spool, &mut buf, at)?;
        buf.truncate(n);
        let mut written = 0;
        while written < buf.len() {
            match rustix::io::write(out, &buf[written..]) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    written += n;
                    self.header.set(SENT_AT, at + written as u64);
                }
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => wait_writable(out),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// How many written events wait to be applied.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Marks every written event delivered in the database, then empties
    /// the ledger (what was recorded but never reached stdout stays waiting
    /// in the database).
    pub fn apply(&mut self, queue: &Queue) {
        if !self.pending.is_empty() {
            if let Err(e) = queue.delivered(&self.pending) {
                if !e.is_full() || self.full.failed() {
                    tracing::error!(
                        "cannot mark {} delivered events in the database ({e}); the ledger keeps \
                         them until it can",
                        self.pending.len()
                    );
                }
                return;
            }
            if let Some((tries, _)) = self.full.succeeded() {
                tracing::warn!(
                    "the disk has room again: {} delivered events are marked so (after {tries} \
                     failed attempt(s))",
                    self.pending.len()
                );
            }
            self.pending.clear();
        }
        if let Err(e) = self.reset() {
            tracing::warn!("cannot empty the delivery ledger: {e}");
        }
    }

    /// Empties both files, inside an odd generation (see
    /// [`GENERATION_AT`]).
    fn reset(&mut self) -> std::io::Result<()> {
        // A sequence lock: odd while the files change, so a reader never
        // pairs an offset of one generation with index lines of another.
        let generation = self.header.get(GENERATION_AT) | 1;
        self.header.set(GENERATION_AT, generation);
        let emptied = self
            .index
            .set_len(0)
            .and_then(|()| self.spool.set_len(HEADER));
        self.index_len = 0;
        self.header.set(SENT_AT, HEADER);
        self.end = HEADER;
        self.header.set(GENERATION_AT, generation.wrapping_add(1));
        emptied
    }
}

impl Drop for FileLedger {
    fn drop(&mut self) {
        // Only an empty ledger may go; one with entries is recovered later.
        if self.index.metadata().is_ok_and(|m| m.len() == 0) {
            let _ = self.dir.remove_file(format!("{}.spool", self.stem));
            let _ = self.dir.remove_file(format!("{}.ledger", self.stem));
        }
    }
}

fn wait_writable(out: BorrowedFd<'_>) {
    let mut fds = [rustix::event::PollFd::new(
        &out,
        rustix::event::PollFlags::OUT,
    )];
    let timeout = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 50_000_000,
    };
    let _ = rustix::event::poll(&mut fds, Some(&timeout));
}

/// One line of a ledger: an event, and where its line ends in the spool
/// (`None` in ledgers of older versions, which recorded only what they were
/// about to write).
fn decode(text: &str) -> Vec<(i64, Option<u64>)> {
    // A torn append (the kernel stopped inside it) leaves a last line
    // without its newline: skipped, its event was not sent yet.
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .split('\n')
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let seq = parts.next()?.parse().ok()?;
            match parts.next() {
                None => Some((seq, None)),
                Some(end) => Some((seq, Some(end.parse().ok()?))),
            }
        })
        .collect()
}

/// What a ledger says was sent: the events whose lines reached stdout.
fn sent_events(dir: &Dir, stem: &str, index: &mut std::fs::File) -> std::io::Result<Vec<i64>> {
    let spool = match dir.open(format!("{stem}.spool")) {
        Ok(f) => Some(f.into_std()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let word = |at: u64| -> std::io::Result<u64> {
        let mut buf = [0u8; 8];
        match &spool {
            Some(s) => match rustix::io::pread(s, &mut buf, at) {
                Ok(8) => Ok(u64::from_ne_bytes(buf)),
                Ok(_) => Ok(0),
                Err(e) => Err(e.into()),
            },
            None => Ok(0),
        }
    };
    // A live process may empty its ledger while it is read: read again
    // when the generation moved.
    for attempt in 0..64 {
        if attempt > 0 {
            std::thread::yield_now();
        }
        let generation = word(GENERATION_AT as u64)?;
        if generation % 2 == 1 {
            continue;
        }
        let sent = word(SENT_AT as u64)?;
        let mut bytes = Vec::new();
        index.seek(std::io::SeekFrom::Start(0))?;
        index.read_to_end(&mut bytes)?;
        // Digits and spaces only; anything else is skipped line by line.
        let text = String::from_utf8_lossy(&bytes);
        if word(GENERATION_AT as u64)? != generation {
            continue;
        }
        return Ok(decode(&text)
            .into_iter()
            .filter(|(_, end)| end.is_none_or(|end| end <= sent))
            .map(|(seq, _)| seq)
            .collect());
    }
    Ok(Vec::new())
}

/// How old a half-made ledger must be before it counts as left behind (a
/// process that died inside [`FileLedger::create`]).
const ORPHAN_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes `name` if it is what a process that died while creating its
/// ledger left: a `.new` index nobody holds, or a `.spool` with neither
/// index. Only files older than [`ORPHAN_AFTER`], so one being made right
/// now is never touched.
fn remove_if_orphan(dir: &Dir, name: &str) {
    let old = dir
        .metadata(name)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.into_std().elapsed().is_ok_and(|age| age > ORPHAN_AFTER));
    if !old {
        return;
    }
    let orphan = if let Some(stem) = name.strip_suffix(".new") {
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        let unheld = dir
            .open_with(name, &options)
            .is_ok_and(|f| f.into_std().try_lock().is_ok());
        if unheld {
            let _ = dir.remove_file(format!("{stem}.spool"));
        }
        unheld
    } else if let Some(stem) = name.strip_suffix(".spool") {
        !dir.exists(format!("{stem}.new")) && !dir.exists(format!("{stem}.ledger"))
    } else {
        false
    };
    if orphan {
        let _ = dir.remove_file(name);
    }
}

/// Marks delivered every event the ledgers in `dir` say reached a session,
/// and removes the ledgers of processes that are gone. Returns how many
/// events.
pub fn recover(dir: &Dir, queue: &Queue) -> std::io::Result<usize> {
    let mut recovered = 0;
    for entry in dir.entries()? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".ledger") else {
            remove_if_orphan(dir, &name);
            continue;
        };
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        let Ok(file) = dir.open_with(&name, &options) else {
            continue;
        };
        let mut file = file.into_std();
        let gone = file.try_lock().is_ok();
        let seqs = match sent_events(dir, stem, &mut file) {
            Ok(seqs) => seqs,
            Err(e) => {
                // One unreadable ledger must not keep the others from
                // being applied.
                tracing::error!("cannot read the delivery ledger {name}: {e}");
                continue;
            }
        };
        if !seqs.is_empty() {
            queue.delivered(&seqs).map_err(std::io::Error::other)?;
            if gone {
                recovered += seqs.len();
            }
        }
        if gone {
            let _ = dir.remove_file(format!("{stem}.spool"));
            if let Err(e) = dir.remove_file(&name) {
                tracing::warn!("cannot remove the applied delivery ledger {name}: {e}");
            }
        }
    }
    Ok(recovered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use crate::queue::Incoming;
    use std::io::Read;
    use std::os::fd::AsFd;

    fn dir() -> (tempfile::TempDir, Dir) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        (tmp, dir)
    }

    fn queue_with(n: usize) -> (Queue, Vec<i64>) {
        let q = Queue::new(Db::in_memory().unwrap(), 100);
        let events: Vec<Incoming> = (0..n)
            .map(|i| Incoming {
                dedupe: None,
                line: format!("e{i}"),
                attachments: None,
                origin: None,
                chat: None,
                to: crate::queue::To::Here,
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

    fn waiting(q: &Queue) -> Vec<i64> {
        q.waiting(&[], 100).unwrap().iter().map(|e| e.seq).collect()
    }

    fn pipe() -> (std::fs::File, std::fs::File) {
        let (r, w) = rustix::pipe::pipe().unwrap();
        (std::fs::File::from(r), std::fs::File::from(w))
    }

    #[test]
    fn sent_events_are_what_reached_the_output() {
        let (tmp, dir) = dir();
        let (_q, seqs) = queue_with(3);
        let (mut r, w) = pipe();
        let mut ledger = FileLedger::create(dir.try_clone().unwrap()).unwrap();
        let out = ledger.deliver(w.as_fd(), &seqs[..2], b"{\"a\":1}\n{\"b\":2}\n");
        assert!(matches!(out, Delivery::Written), "{out:?}");
        let mut buf = [0u8; 16];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"{\"a\":1}\n{\"b\":2}\n");
        // The process "dies" here: its files are read as another would.
        let stem = ledger.stem.clone();
        let mut index = std::fs::File::open(tmp.path().join(format!("{stem}.ledger"))).unwrap();
        assert_eq!(sent_events(&dir, &stem, &mut index).unwrap(), &seqs[..2]);
        drop(ledger);
    }

    #[test]
    fn a_batch_that_never_left_stays_waiting() {
        let (tmp, dir) = dir();
        let (q, seqs) = queue_with(3);
        let (r, w) = pipe();
        drop(r);
        let mut ledger = FileLedger::create(dir.try_clone().unwrap()).unwrap();
        assert!(matches!(
            ledger.deliver(w.as_fd(), &seqs, b"1\n2\n3\n"),
            Delivery::Failed(_)
        ));
        let stem = ledger.stem.clone();
        let mut index = std::fs::File::open(tmp.path().join(format!("{stem}.ledger"))).unwrap();
        assert!(sent_events(&dir, &stem, &mut index).unwrap().is_empty());
        ledger.apply(&q);
        assert_eq!(waiting(&q), seqs);
    }

    #[test]
    fn a_dead_process_ledger_marks_only_what_it_sent() {
        let (tmp, dir) = dir();
        let (q, seqs) = queue_with(4);
        // Index lines for all four, but the kernel counted only the first
        // two lines (ends 4104 and 4108) as sent; the last line is torn.
        std::fs::write(
            tmp.path().join("999999.ledger"),
            format!(
                "{} 4100\n{} 4104\n{} 4108\n{} 41",
                seqs[0], seqs[1], seqs[2], seqs[3]
            ),
        )
        .unwrap();
        let mut spool = vec![0u8; HEADER as usize];
        spool[..8].copy_from_slice(&4104u64.to_ne_bytes());
        std::fs::write(tmp.path().join("999999.spool"), spool).unwrap();
        assert_eq!(recover(&dir, &q).unwrap(), 2);
        assert_eq!(waiting(&q), &seqs[2..]);
        assert!(!tmp.path().join("999999.ledger").exists());
        assert!(!tmp.path().join("999999.spool").exists());
    }

    #[test]
    fn an_older_ledger_counts_what_it_recorded() {
        let (tmp, dir) = dir();
        let (q, seqs) = queue_with(3);
        std::fs::write(
            tmp.path().join("999998.ledger"),
            format!("{}\n{}\n12", seqs[0], seqs[1]),
        )
        .unwrap();
        assert_eq!(recover(&dir, &q).unwrap(), 2, "the torn 12 is not read");
        assert_eq!(waiting(&q), [seqs[2]]);
    }

    #[test]
    fn a_live_ledger_is_read_but_kept_and_applied_by_its_owner() {
        let (tmp, dir) = dir();
        let (q, seqs) = queue_with(3);
        let (_r, w) = pipe();
        let mut ledger = FileLedger::create(dir.try_clone().unwrap()).unwrap();
        assert!(matches!(
            ledger.deliver(w.as_fd(), &seqs[..2], b"a\nb\n"),
            Delivery::Written
        ));
        // Another process (here: a copy under another name, still locked
        // by us) reading it marks what was sent, and leaves the file.
        let stem = ledger.stem.clone();
        std::fs::copy(
            tmp.path().join(format!("{stem}.spool")),
            tmp.path().join("424242.spool"),
        )
        .unwrap();
        std::fs::copy(
            tmp.path().join(format!("{stem}.ledger")),
            tmp.path().join("424242.ledger"),
        )
        .unwrap();
        let held = std::fs::File::open(tmp.path().join("424242.ledger")).unwrap();
        held.try_lock().unwrap();
        assert_eq!(recover(&dir, &q).unwrap(), 0, "counted only for the gone");
        assert_eq!(waiting(&q), [seqs[2]]);
        assert!(tmp.path().join("424242.ledger").exists());
        assert_eq!(ledger.pending(), 2);
        ledger.apply(&q);
        assert_eq!(ledger.pending(), 0);
        assert_eq!(
            std::fs::metadata(tmp.path().join(format!("{stem}.ledger")))
                .unwrap()
                .len(),
            0
        );
        drop(ledger);
        assert!(
            !tmp.path().join(format!("{stem}.ledger")).exists(),
            "an empty ledger goes"
        );
    }

    #[test]
    fn recovery_never_takes_a_ledger_that_is_alive_or_being_born() {
        let (tmp, dir) = dir();
        let (q, seqs) = queue_with(2);
        // Being born: not yet locked, not yet under its name.
        std::fs::write(tmp.path().join("1-aa.new"), format!("{} 5000\n", seqs[0])).unwrap();
        let ledger = FileLedger::create(dir.try_clone().unwrap()).unwrap();
        assert_eq!(recover(&dir, &q).unwrap(), 0);
        assert!(tmp.path().join(format!("{}.ledger", ledger.stem)).exists());
        assert!(tmp.path().join("1-aa.new").exists());
        assert_eq!(waiting(&q), seqs);
    }

    #[test]
    fn what_a_process_dying_in_create_left_is_removed_once_old() {
        let (tmp, dir) = dir();
        let (q, _) = queue_with(1);
        let old = std::time::SystemTime::now() - 2 * ORPHAN_AFTER;
        let touch = |name: &str, age: Option<std::time::SystemTime>| {
            let f = std::fs::File::create(tmp.path().join(name)).unwrap();
            if let Some(t) = age {
                f.set_modified(t).unwrap();
            }
        };
        touch("1-a.new", Some(old));
        touch("1-a.spool", Some(old));
        touch("2-b.spool", Some(old));
        // Young: possibly being made right now.
        touch("3-c.new", None);
        touch("3-c.spool", None);
        // A spool whose ledger is there is the ledger's business.
        let ledger = FileLedger::create(dir.try_clone().unwrap()).unwrap();
        std::fs::File::open(tmp.path().join(format!("{}.spool", ledger.stem)))
            .unwrap()
            .set_modified(old)
            .unwrap();
        recover(&dir, &q).unwrap();
        let left: std::collections::BTreeSet<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let expected: std::collections::BTreeSet<String> = [
            "3-c.new".to_owned(),
            "3-c.spool".to_owned(),
            format!("{}.ledger", ledger.stem),
            format!("{}.spool", ledger.stem),
        ]
        .into();
        assert_eq!(left, expected);
    }

    #[test]
    fn lines_that_went_out_before_a_failure_are_delivered_the_rest_wait() {
        let (_tmp, dir) = dir();
        let (q, seqs) = queue_with(3);
        let (r, w) = pipe();
        rustix::pipe::fcntl_setpipe_size(&w, 4096).unwrap();
        // Three lines of 3000 bytes: the pipe takes about one and a half,
        // the reader reads the first line and goes away.
        let line = |c: u8| {
            let mut l = vec![c; 2999];
            l.push(b'\n');
            l
        };
        let lines = [line(b'a'), line(b'b'), line(b'c')].concat();
        let reader = std::thread::spawn(move || {
            let mut r = r;
            let mut first = vec![0u8; 3000];
            r.read_exact(&mut first).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(50));
        });
        let mut ledger = FileLedger::create(dir.try_clone().unwrap()).unwrap();
        let out = ledger.deliver(w.as_fd(), &seqs, &lines);
        reader.join().unwrap();
        assert!(matches!(out, Delivery::Failed(_)), "{out:?}");
        let sent = ledger.header.get(SENT_AT) - HEADER;
        let whole = (sent / 3000) as usize;
        assert!((1..3).contains(&whole), "{sent} bytes went out");
        assert_eq!(ledger.pending, &seqs[..whole]);
        ledger.apply(&q);
        assert_eq!(waiting(&q), &seqs[whole..]);
    }

    #[test]
    fn a_ledger_caught_emptying_names_nothing() {
        let (tmp, dir) = dir();
        let (q, seqs) = queue_with(1);
        std::fs::write(tmp.path().join("7-x.ledger"), format!("{} 4100\n", seqs[0])).unwrap();
        let mut spool = vec![0u8; HEADER as usize];
        spool[..8].copy_from_slice(&9000u64.to_ne_bytes());
        // An odd generation: it died inside a reset, after the database
        // had caught up with everything it sent.
        spool[8..16].copy_from_slice(&3u64.to_ne_bytes());
        std::fs::write(tmp.path().join("7-x.spool"), spool).unwrap();
        assert_eq!(recover(&dir, &q).unwrap(), 0);
        assert_eq!(waiting(&q), seqs);
    }

    #[test]
    fn ledger_lines_decode_with_and_without_ends() {
        assert_eq!(decode("1 10\n2 20\n3 3"), [(1, Some(10)), (2, Some(20))]);
        assert_eq!(decode("1\n2\n3\n"), [(1, None), (2, None), (3, None)]);
        assert_eq!(decode("1\nx\n\n4 9\n"), [(1, None), (4, Some(9))]);
        assert_eq!(decode("12"), Vec::new());
    }
}
