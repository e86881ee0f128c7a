//! stdout as a pipe or a socket, probed once: how much it holds and how
//! much of that the reader has not taken yet.
//!
//! The writer asks before it hands a batch to the ledger, so that the write
//! does not block while it holds the writer (and a batch is not cut in two
//! by a slow reader). Linux answers with `FIONREAD` on a pipe and
//! `SIOCOUTQ` on a socket (libuv, which Node-based launchers use, gives
//! children socket pairs); anything else (a file, a terminal) is not probed.

use std::os::fd::AsFd;

/// Pipe size asked for at start (Linux lets any process go up to
/// `/proc/sys/fs/pipe-max-size`, 1 MiB by default), so that the largest
/// event fits in one write.
pub const PIPE_SIZE: usize = 1 << 20;

/// stdout as a pipe or a socket: how much it holds, to tell whether a write
/// fits.
pub(crate) struct Pipe {
    capacity: usize,
    socket: bool,
}

/// `TIOCOUTQ` (`SIOCOUTQ` for sockets): bytes written and not yet read.
const OUTQ: rustix::ioctl::Opcode = 0x5411;

impl Pipe {
    /// `Some` when `fd` is a pipe (after asking for [`PIPE_SIZE`]) or a
    /// socket (what libuv-based launchers give a child).
    pub(crate) fn probe(fd: &impl AsFd) -> Option<Self> {
        let stat = rustix::fs::fstat(fd).ok()?;
        match rustix::fs::FileType::from_raw_mode(stat.st_mode) {
            rustix::fs::FileType::Fifo => {
                let _ = rustix::pipe::fcntl_setpipe_size(fd, PIPE_SIZE);
                let capacity = rustix::pipe::fcntl_getpipe_size(fd).ok()?;
                Some(Self {
                    capacity,
                    socket: false,
                })
            }
            rustix::fs::FileType::Socket => {
                let _ = rustix::net::sockopt::set_socket_send_buffer_size(fd, PIPE_SIZE);
                let capacity = rustix::net::sockopt::socket_send_buffer_size(fd).ok()?;
                Some(Self {
                    capacity,
                    socket: true,
                })
            }
            _ => None,
        }
    }

    /// Bytes written and not yet read by the other end.
    fn unread(&self, fd: &(impl AsFd + ?Sized)) -> Option<usize> {
        if self.socket {
            // SAFETY: TIOCOUTQ on a socket writes one `c_int`, which is the
            // getter's output type.
            let getter = unsafe { rustix::ioctl::Getter::<OUTQ, std::ffi::c_int>::new() };
            // SAFETY: `fd` is a socket, for which the kernel defines this opcode.
            let n = unsafe { rustix::ioctl::ioctl(fd, getter) }.ok()?;
            usize::try_from(n).ok()
        } else {
            rustix::io::ioctl_fionread(fd).ok().map(|n| n as usize)
        }
    }

    /// Room needed for `len` bytes: on a socket the kernel also counts its
    /// buffers' bookkeeping against the limit.
    fn needed(&self, len: usize) -> usize {
        if self.socket {
            len + len / 4 + 4096
        } else {
            len
        }
    }

    /// Whether `len` bytes fit without blocking right now.
    pub(crate) fn fits_now(&self, fd: &(impl AsFd + ?Sized), len: usize) -> bool {
        let needed = self.needed(len);
        needed <= self.capacity
            && self
                .unread(fd)
                .is_some_and(|unread| self.capacity.saturating_sub(unread) >= needed)
    }

    /// Waits until `len` bytes fit without blocking (or until they never
    /// will, for a batch larger than the pipe).
    pub(crate) fn wait_for_room(&self, fd: &(impl AsFd + ?Sized), len: usize) {
        let needed = self.needed(len);
        if needed > self.capacity {
            return;
        }
        let mut pause = std::time::Duration::from_micros(50);
        loop {
            let Some(unread) = self.unread(fd) else {
                return;
            };
            if self.capacity.saturating_sub(unread) >= needed {
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
    use std::io::{Read, Write};

    fn pipe() -> (std::fs::File, std::fs::File) {
        let (r, w) = rustix::pipe::pipe().unwrap();
        (std::fs::File::from(r), std::fs::File::from(w))
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
            socket: false,
        }
        .wait_for_room(&w, pipe.capacity / 2);
        assert!(started.elapsed() >= std::time::Duration::from_millis(40));
        drop(drained.join().unwrap());
    }

    #[test]
    fn a_socket_counts_what_its_peer_has_not_read() {
        let (mut ours, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let socket = Pipe::probe(&ours).expect("a socket");
        assert!(socket.socket && socket.capacity >= 4096);
        assert_eq!(socket.unread(&ours), Some(0));
        ours.write_all(&[7; 1000]).unwrap();
        assert!(socket.unread(&ours).unwrap() >= 1000);
        let mut buf = [0; 1000];
        theirs.read_exact(&mut buf).unwrap();
        assert_eq!(socket.unread(&ours), Some(0));
    }
}
