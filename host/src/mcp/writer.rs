//! The one writer of stdout: a thread that writes whole lines, and records a
//! delivery of channel events in the same breath as writing it.
//!
//! rmcp's responses and the filter's error answers are written as they come:
//! on the caller's thread when nothing waits ahead of them and the pipe has
//! room ([`Writer::line`]), else by the thread as [`Out::Line`]. A batch of
//! channel events arrives as [`Out::Events`], and goes out through the [`Ledger`], which both writes
//! it and keeps the record that makes delivery exactly-once across a crash:
//!
//! 1. wait until the pipe has room for the whole batch, so that the write
//!    does not block while the writer is held (and a batch is not cut in
//!    two by a slow reader);
//! 2. hand it to the ledger ([`Ledger::deliver`]): the file-backed ledger
//!    spools it and sends it with one system call that also advances the
//!    count of bytes sent, so what the next airlock finds recorded is
//!    exactly what reached stdout (see `queue::ledger`);
//! 3. if the write failed, the client is gone: nothing more is written, and
//!    what did not go out waits for the next session.
//!
//! stdout may be a pipe or a socket (libuv, which Node-based launchers use,
//! gives children socket pairs; see `pipe_probe`); for anything else (a
//! file, a terminal) step 1 is skipped.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use super::pipe_probe::Pipe;
use crate::router::afterwards::Afterwards;

/// How long output must pause before the ledger catches up
/// ([`Ledger::idle`]), so that a stream of events is not slowed by it.
pub const IDLE_AFTER: Duration = Duration::from_millis(50);

/// How a batch handed to [`Ledger::deliver`] fared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sent {
    /// Written whole.
    Written,
    /// Not recorded, so not written: the events stay waiting.
    Held,
    /// The write failed: the client is gone.
    Failed,
}

/// The writer's ledger: writes batches of events and records what reached
/// the output. The process's is `mcp::ledger::QueueLedger`; tests use
/// stand-ins.
pub trait Ledger: Send {
    /// Writes `lines` (the lines of `seqs`, each ending in `\n`) to `out`,
    /// recording them so that a crash at any moment neither loses nor
    /// repeats one. `admitted` is the oldest access revision the events
    /// were admitted under: the ledger may ask the gate again first.
    fn deliver(&mut self, out: BorrowedFd<'_>, seqs: &[i64], lines: &[u8], admitted: i64) -> Sent;
    /// Whether written batches wait for [`idle`](Self::idle).
    fn behind(&self) -> bool;
    /// Output has paused for [`IDLE_AFTER`] (or the writer stops): a good
    /// moment to catch up.
    fn idle(&mut self);
}

/// What the writer writes.
pub enum Out {
    /// A line from rmcp or the filter.
    Line(Vec<u8>),
    /// Channel events: their queue positions and their lines (each ending
    /// in `\n`).
    Events {
        /// Queue positions, in order.
        seqs: Vec<i64>,
        /// The lines.
        lines: Vec<u8>,
        /// The oldest access revision they were admitted under.
        admitted: i64,
    },
    /// Events were written past the thread: its ledger has catching up to do.
    Behind,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Out::Line(l) => write!(f, "Line({} bytes)", l.len()),
            Out::Events { seqs, lines, .. } => {
                write!(f, "Events({} events, {} bytes)", seqs.len(), lines.len())
            }
            Out::Behind => f.write_str("Behind"),
        }
    }
}

/// stdout and what writes to it.
trait Output: Write + AsFd + Send {}
impl<T: Write + AsFd + Send> Output for T {}

struct State {
    output: Box<dyn Output>,
    ledger: Box<dyn Ledger>,
    pipe: Option<Pipe>,
    /// A write failed: the client is gone, nothing more is written.
    broken: bool,
}

impl State {
    /// Writes and records a batch; false when the write failed.
    fn deliver(&mut self, seqs: &[i64], lines: &[u8], admitted: i64) -> bool {
        // Whatever std buffered for rmcp's lines goes first.
        if self.output.flush().is_err() {
            self.broken = true;
            return false;
        }
        match self
            .ledger
            .deliver(self.output.as_fd(), seqs, lines, admitted)
        {
            // Held: not written, they stay waiting.
            Sent::Written | Sent::Held => true,
            Sent::Failed => {
                self.broken = true;
                false
            }
        }
    }
}

struct Shared {
    state: Mutex<State>,
    /// Messages sent to the thread and not yet written.
    queued: AtomicUsize,
    /// Told of every line or batch that went out.
    afterwards: Afterwards,
}

/// The writer: its thread, and a shortcut past it for events that can go
/// out at once.
#[derive(Clone)]
pub struct Writer {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Out>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("queued", &self.shared.queued.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// Catches the ledger up now (before the process exits).
    pub fn settle(&self) {
        lock(&self.shared).ledger.idle();
    }

    /// Queues `out` for the thread; false when it has stopped.
    pub fn send(&self, out: Out) -> bool {
        self.shared.queued.fetch_add(1, Ordering::SeqCst);
        if self.tx.send(out).is_ok() {
            true
        } else {
            self.shared.queued.fetch_sub(1, Ordering::SeqCst);
            false
        }
    }

    /// Runs `f` on the calling thread, under the writer's lock, when
    /// nothing is queued ahead and `len` bytes fit the pipe without waiting:
    /// `Some(false)` when the writer has stopped or the write failed. `None`
    /// when the thread has to do it instead.
    fn in_place(&self, len: usize, f: impl FnOnce(&mut State) -> bool) -> Option<bool> {
        if self.shared.queued.load(Ordering::SeqCst) != 0 {
            return None;
        }
        let mut state = self.shared.state.try_lock().ok()?;
        if state.broken {
            return Some(false);
        }
        let fits = match &state.pipe {
            Some(pipe) => pipe.fits_now(&*state.output, len),
            None => true,
        };
        if !fits {
            return None;
        }
        let ok = f(&mut state);
        drop(state);
        if ok {
            self.shared.afterwards.written();
        }
        Some(ok)
    }

    /// Writes a line on the calling thread when nothing is queued ahead of
    /// it and it fits the pipe without waiting; otherwise queues it for the
    /// thread. Saves the thread's wake-up on every answer, which is most of
    /// the time. False when the writer has stopped (the client is gone).
    pub fn line(&self, line: Vec<u8>) -> bool {
        let written = self.in_place(line.len(), |state| {
            let ok = write(&mut state.output, &line);
            if !ok {
                state.broken = true;
            }
            ok
        });
        written.unwrap_or_else(|| self.send(Out::Line(line)))
    }

    /// Writes a batch of events on the calling thread when nothing is
    /// queued ahead of it and it fits without waiting (same order as the
    /// thread: room, record, write); otherwise queues it for the thread.
    /// False when the writer has stopped (the client is gone).
    pub fn events(&self, seqs: Vec<i64>, lines: Vec<u8>, admitted: i64) -> bool {
        let written = self.in_place(lines.len(), |state| {
            let was_behind = state.ledger.behind();
            let ok = state.deliver(&seqs, &lines, admitted);
            if ok && !was_behind && state.ledger.behind() {
                // So that the thread's timer catches the ledger up.
                let _ = self.tx.send(Out::Behind);
            }
            ok
        });
        if let Some(ok) = written {
            return ok;
        }
        self.send(Out::Events {
            seqs,
            lines,
            admitted,
        })
    }
}

/// Starts the writer thread over `output`, telling `afterwards` of each
/// line that went out; it ends when every sender is gone or a write fails.
pub fn spawn<W>(output: W, ledger: Box<dyn Ledger>, afterwards: Afterwards) -> Writer
where
    W: Write + AsFd + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let pipe = Pipe::probe(&output);
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            output: Box::new(output),
            ledger,
            pipe,
            broken: false,
        }),
        queued: AtomicUsize::new(0),
        afterwards,
    });
    let thread_shared = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("airlock-stdout".into())
        .spawn(move || run(&thread_shared, rx));
    if let Err(e) = spawned {
        tracing::error!("cannot start the stdout writer: {e}");
    }
    Writer { shared, tx }
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(|e| e.into_inner())
}

fn run(shared: &Shared, rx: mpsc::Receiver<Out>) {
    loop {
        let behind = lock(shared).ledger.behind();
        let next = if behind {
            rx.recv_timeout(IDLE_AFTER)
        } else {
            rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected)
        };
        let out = match next {
            Ok(out) => out,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                lock(shared).ledger.idle();
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        if matches!(out, Out::Behind) {
            // Not counted in `queued`: only wakes the loop to start its timer.
            continue;
        }
        let mut state = lock(shared);
        let ok = match out {
            Out::Behind => true,
            Out::Line(line) => write(&mut state.output, &line),
            Out::Events {
                seqs,
                lines,
                admitted,
            } => {
                if state.broken {
                    false
                } else {
                    if let Some(pipe) = &state.pipe {
                        pipe.wait_for_room(&*state.output, lines.len());
                    }
                    state.deliver(&seqs, &lines, admitted)
                }
            }
        };
        if !ok {
            state.broken = true;
        }
        drop(state);
        shared.queued.fetch_sub(1, Ordering::SeqCst);
        if !ok {
            break;
        }
        shared.afterwards.written();
    }
    lock(shared).ledger.idle();
}

fn write<W: Write + ?Sized>(output: &mut W, bytes: &[u8]) -> bool {
    output.write_all(bytes).is_ok() && output.flush().is_ok()
}

/// Writes all of `bytes` to `out`, for test stand-ins for the ledger.
#[cfg(test)]
pub(crate) fn write_out(out: BorrowedFd<'_>, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        match rustix::io::write(out, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::sync::{Arc, Mutex};

    fn pipe() -> (std::fs::File, std::fs::File) {
        let (r, w) = rustix::pipe::pipe().unwrap();
        (std::fs::File::from(r), std::fs::File::from(w))
    }

    /// Records what the writer told it, and refuses to record `refuse`.
    #[derive(Clone, Default)]
    struct Seen {
        calls: Arc<Mutex<Vec<String>>>,
        refuse: Option<i64>,
    }

    impl Ledger for Seen {
        fn deliver(&mut self, out: BorrowedFd<'_>, seqs: &[i64], lines: &[u8], _: i64) -> Sent {
            let sent = if self.refuse.is_some_and(|r| seqs.contains(&r)) {
                Sent::Held
            } else if write_out(out, lines) {
                Sent::Written
            } else {
                Sent::Failed
            };
            self.calls
                .lock()
                .unwrap()
                .push(format!("{seqs:?} {sent:?}"));
            sent
        }
        fn behind(&self) -> bool {
            false
        }
        fn idle(&mut self) {}
    }

    #[test]
    fn events_are_recorded_then_written_and_lines_pass_between() {
        let (mut r, w) = pipe();
        let ledger = Seen {
            refuse: Some(3),
            ..Seen::default()
        };
        let calls = ledger.calls.clone();
        let afterwards = Afterwards::default();
        let tx = spawn(w, Box::new(ledger), afterwards.clone());
        assert!(tx.send(Out::Line(b"{\"id\":1}\n".to_vec())));
        assert!(tx.send(Out::Events {
            seqs: vec![1, 2],
            lines: b"{\"event\":1}\n{\"event\":2}\n".to_vec(),
            admitted: 0,
        }));
        // Directly or through the thread, in order either way.
        assert!(tx.events(vec![3], b"{\"never\":3}\n".to_vec(), 0));
        assert!(tx.events(vec![4], b"{\"event\":4}\n".to_vec(), 0));
        drop(tx);
        let mut out = String::new();
        r.read_to_string(&mut out).unwrap();
        assert_eq!(
            out,
            "{\"id\":1}\n{\"event\":1}\n{\"event\":2}\n{\"event\":4}\n"
        );
        assert_eq!(
            *calls.lock().unwrap(),
            ["[1, 2] Written", "[3] Held", "[4] Written"]
        );
        // Each hand-off told work waiting for the next line, whichever
        // path it took.
        assert_eq!(afterwards.count(), 4);
    }

    /// Behind after every write, caught up by `idle`.
    #[derive(Clone, Default)]
    struct Lazy {
        pending: Arc<Mutex<usize>>,
        idles: Arc<Mutex<usize>>,
    }

    impl Ledger for Lazy {
        fn deliver(&mut self, out: BorrowedFd<'_>, seqs: &[i64], lines: &[u8], _: i64) -> Sent {
            assert!(write_out(out, lines));
            *self.pending.lock().unwrap() += seqs.len();
            Sent::Written
        }
        fn behind(&self) -> bool {
            *self.pending.lock().unwrap() > 0
        }
        fn idle(&mut self) {
            *self.pending.lock().unwrap() = 0;
            *self.idles.lock().unwrap() += 1;
        }
    }

    #[test]
    fn a_direct_write_still_gets_the_ledger_caught_up() {
        let (_r, w) = pipe();
        let ledger = Lazy::default();
        let (pending, idles) = (ledger.pending.clone(), ledger.idles.clone());
        let tx = spawn(w, Box::new(ledger), Afterwards::default());
        assert!(tx.events(vec![1], b"{}\n".to_vec(), 0));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while *idles.lock().unwrap() == 0 {
            assert!(std::time::Instant::now() < deadline, "never caught up");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(*pending.lock().unwrap(), 0);
    }

    #[test]
    fn a_write_to_a_closed_pipe_takes_the_batch_back() {
        let (r, w) = pipe();
        drop(r);
        let ledger = Seen::default();
        let calls = ledger.calls.clone();
        let tx = spawn(w, Box::new(ledger), Afterwards::default());
        assert!(tx.send(Out::Events {
            seqs: vec![9],
            lines: b"{}\n".to_vec(),
            admitted: 0,
        }));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while calls.lock().unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(*calls.lock().unwrap(), ["[9] Failed"]);
        // The writer stopped: nothing takes events any more.
        while tx.events(vec![10], b"{}\n".to_vec(), 0) {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}
