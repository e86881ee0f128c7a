//! The one writer of stdout: a thread that writes whole lines, and commits a
//! delivery of channel events in the same breath as writing it.
//!
//! rmcp's responses and the filter's error answers arrive as [`Out::Line`]
//! and are written as they come. A batch of channel events arrives as a
//! [`Delivery`], and its order is what makes delivery exactly-once across a
//! crash, as far as a one-way pipe allows:
//!
//! 1. wait until the pipe has room for the whole batch, so that the write
//!    cannot block halfway (a process killed inside a write that fits is
//!    killed after it: the kernel copies the bytes before it looks for
//!    signals);
//! 2. commit the batch as delivered ([`Delivery::commit`]);
//! 3. write it;
//! 4. report ([`Delivery::finish`]): on a failed write (the client is gone)
//!    the delivery is undone, so the events wait for the next session.
//!
//! A `kill -9` before 2 leaves the events waiting: the next airlock delivers
//! them. After 3 they are delivered and marked. Between 2 and 3 lies the
//! return from SQLite's commit and the entry into `write`, a few
//! microseconds, in which a kill loses the batch; nothing else can lose or
//! repeat one. When stdout is not a pipe (a file, a socket), step 1 is
//! skipped.

use std::io::Write;
use std::os::fd::AsFd;

use tokio::sync::{mpsc, oneshot};

/// Pipe size asked for at start (Linux lets any process go up to
/// `/proc/sys/fs/pipe-max-size`, 1 MiB by default), so that the largest
/// event fits in one write.
pub const PIPE_SIZE: usize = 1 << 20;

/// A batch of event lines and what to do around writing it.
pub struct Delivery {
    /// The lines, each ending in `\n`.
    pub lines: Vec<u8>,
    /// Marks the batch delivered; the lines are written only if it returns
    /// true.
    pub commit: Box<dyn FnOnce() -> bool + Send>,
    /// Told whether the lines were written (after a successful commit).
    pub finish: Box<dyn FnOnce(bool) + Send>,
}

/// What became of a [`Delivery`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Committed and written.
    Written,
    /// The commit failed: nothing was written, the events still wait.
    NotCommitted,
    /// Committed, but the write failed (the client is gone).
    WriteFailed,
}

/// What the writer writes.
pub enum Out {
    /// A line from rmcp or the filter.
    Line(Vec<u8>),
    /// Channel events; the sender learns the outcome.
    Delivery(Delivery, oneshot::Sender<Outcome>),
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Out::Line(l) => write!(f, "Line({} bytes)", l.len()),
            Out::Delivery(d, _) => write!(f, "Delivery({} bytes)", d.lines.len()),
        }
    }
}

/// Starts the writer thread over `output`; it ends when every sender is
/// gone or a write fails.
pub fn spawn<W>(output: W) -> mpsc::UnboundedSender<Out>
where
    W: Write + AsFd + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let spawned = std::thread::Builder::new()
        .name("airlock-stdout".into())
        .spawn(move || run(output, rx));
    if let Err(e) = spawned {
        tracing::error!("cannot start the stdout writer: {e}");
    }
    tx
}

fn run<W: Write + AsFd>(mut output: W, mut rx: mpsc::UnboundedReceiver<Out>) {
    let pipe = Pipe::probe(&output);
    while let Some(out) = rx.blocking_recv() {
        let ok = match out {
            Out::Line(line) => write(&mut output, &line),
            Out::Delivery(delivery, done) => {
                if let Some(pipe) = &pipe {
                    pipe.wait_for_room(&output, delivery.lines.len());
                }
                let outcome = if (delivery.commit)() {
                    let written = write(&mut output, &delivery.lines);
                    (delivery.finish)(written);
                    if written {
                        Outcome::Written
                    } else {
                        Outcome::WriteFailed
                    }
                } else {
                    Outcome::NotCommitted
                };
                let _ = done.send(outcome);
                outcome != Outcome::WriteFailed
            }
        };
        if !ok {
            break;
        }
    }
}

fn write<W: Write>(output: &mut W, bytes: &[u8]) -> bool {
    output.write_all(bytes).is_ok() && output.flush().is_ok()
}

/// stdout as a pipe: its capacity, to tell whether a write fits.
struct Pipe {
    capacity: usize,
}

impl Pipe {
    /// `Some` when `fd` is a pipe (after asking for [`PIPE_SIZE`]).
    fn probe(fd: &impl AsFd) -> Option<Self> {
        let stat = rustix::fs::fstat(fd).ok()?;
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::Fifo {
            return None;
        }
        let _ = rustix::pipe::fcntl_setpipe_size(fd, PIPE_SIZE);
        let capacity = rustix::pipe::fcntl_getpipe_size(fd).ok()?;
        Some(Self { capacity })
    }

    /// Waits until `len` bytes fit without blocking (or until they never
    /// will, for a batch larger than the pipe).
    fn wait_for_room(&self, fd: &impl AsFd, len: usize) {
        if len > self.capacity {
            return;
        }
        let mut pause = std::time::Duration::from_micros(50);
        loop {
            let Ok(unread) = rustix::io::ioctl_fionread(fd) else {
                return;
            };
            if self.capacity.saturating_sub(unread as usize) >= len {
                return;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(std::time::Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn pipe() -> (std::fs::File, std::fs::File) {
        let (r, w) = rustix::pipe::pipe().unwrap();
        (std::fs::File::from(r), std::fs::File::from(w))
    }

    #[tokio::test]
    async fn a_delivery_is_committed_then_written_then_finished() {
        let (mut r, w) = pipe();
        let tx = spawn(w);
        tx.send(Out::Line(b"{\"id\":1}\n".to_vec())).unwrap();
        let committed = Arc::new(AtomicBool::new(false));
        let finished = Arc::new(AtomicBool::new(false));
        let (done, wait) = oneshot::channel();
        let c = committed.clone();
        let f = finished.clone();
        tx.send(Out::Delivery(
            Delivery {
                lines: b"{\"event\":1}\n".to_vec(),
                commit: Box::new(move || {
                    c.store(true, Ordering::SeqCst);
                    true
                }),
                finish: Box::new(move |written| f.store(written, Ordering::SeqCst)),
            },
            done,
        ))
        .unwrap();
        assert_eq!(wait.await.unwrap(), Outcome::Written);
        assert!(committed.load(Ordering::SeqCst) && finished.load(Ordering::SeqCst));
        // Refused at commit: nothing written, and the sender is told so.
        let (done, wait) = oneshot::channel();
        tx.send(Out::Delivery(
            Delivery {
                lines: b"{\"never\":1}\n".to_vec(),
                commit: Box::new(|| false),
                finish: Box::new(|_| panic!("not written, not finished")),
            },
            done,
        ))
        .unwrap();
        assert_eq!(wait.await.unwrap(), Outcome::NotCommitted);
        drop(tx);
        let mut out = String::new();
        r.read_to_string(&mut out).unwrap();
        assert_eq!(out, "{\"id\":1}\n{\"event\":1}\n");
    }

    #[tokio::test]
    async fn a_write_to_a_closed_pipe_is_reported() {
        let (r, w) = pipe();
        drop(r);
        let tx = spawn(w);
        let (done, wait) = oneshot::channel();
        let finished = Arc::new(AtomicBool::new(true));
        let f = finished.clone();
        tx.send(Out::Delivery(
            Delivery {
                lines: b"{}\n".to_vec(),
                commit: Box::new(|| true),
                finish: Box::new(move |written| f.store(written, Ordering::SeqCst)),
            },
            done,
        ))
        .unwrap();
        assert_eq!(wait.await.unwrap(), Outcome::WriteFailed);
        assert!(!finished.load(Ordering::SeqCst), "told it was not written");
    }

    #[test]
    fn room_is_waited_for_while_the_reader_drains() {
        let (mut r, w) = pipe();
        let pipe = Pipe::probe(&w).expect("a pipe");
        assert!(pipe.capacity >= 4096);
        let mut w = w;
        // Fill it, then ask for room for half its size.
        let fill = vec![b'x'; pipe.capacity];
        w.write_all(&fill).unwrap();
        let drained = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let mut buf = vec![0; pipe.capacity];
            r.read_exact(&mut buf).unwrap();
            r
        });
        let started = std::time::Instant::now();
        Pipe {
            capacity: pipe.capacity,
        }
        .wait_for_room(&w, pipe.capacity / 2);
        assert!(started.elapsed() >= std::time::Duration::from_millis(40));
        drop(drained.join().unwrap());
    }
}
