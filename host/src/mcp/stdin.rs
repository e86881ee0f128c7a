//! stdin as the reactor's: read without a thread in between.
//!
//! `tokio::io::stdin()` reads on a blocking thread and hands every chunk
//! across, one thread hop per request. When stdin is a pipe or a socket (what
//! Claude Code and other launchers give a server), it is read non-blocking
//! through the runtime's reactor instead; anything else (a terminal, a file)
//! keeps tokio's blocking reader.

use tokio::io::AsyncRead;

/// A reader of the process's stdin.
pub fn open() -> Box<dyn AsyncRead + Unpin + Send> {
    match nonblocking() {
        Some(reader) => reader,
        None => Box::new(tokio::io::stdin()),
    }
}

fn nonblocking() -> Option<Box<dyn AsyncRead + Unpin + Send>> {
    let stdin = rustix::stdio::stdin();
    let stat = rustix::fs::fstat(stdin).ok()?;
    let kind = rustix::fs::FileType::from_raw_mode(stat.st_mode);
    let fd = rustix::io::dup(stdin).ok()?;
    match kind {
        rustix::fs::FileType::Fifo => {
            let pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(fd).ok()?;
            Some(Box::new(pipe))
        }
        rustix::fs::FileType::Socket => {
            let socket = std::os::unix::net::UnixStream::from(fd);
            socket.set_nonblocking(true).ok()?;
            let socket = tokio::net::UnixStream::from_std(socket).ok()?;
            Some(Box::new(socket))
        }
        _ => None,
    }
}
