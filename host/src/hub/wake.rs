//! Waking a session when another process stored events for it.
//!
//! The process that holds a platform connection stores every event, also
//! those of other sessions; each session delivers its own. A live session
//! listens on a unix datagram socket, `$AIRLOCK_HOME/sessions/NAME.sock`,
//! and the storing process sends it one byte after the commit. A lost
//! datagram costs only latency: every session also looks once a second.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// Longest socket path the kernel takes (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The socket path of `name` in the sessions directory `dir`.
pub fn socket_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.sock"))
}

/// Listens for wake-ups of one session (this one).
#[derive(Debug)]
pub struct Listener {
    socket: tokio::net::UnixDatagram,
    path: PathBuf,
}

impl Listener {
    /// Binds `name`'s socket in `dir`, replacing one a dead process left.
    /// Only the session's holder calls this, so the file is never live.
    pub fn bind(dir: &Path, name: &str) -> std::io::Result<Self> {
        let path = socket_path(dir, name);
        if path.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "the socket path {} is longer than {MAX_SOCKET_PATH} bytes",
                    path.display()
                ),
            ));
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let socket = tokio::net::UnixDatagram::bind(&path)?;
        Ok(Self { socket, path })
    }

    /// Waits for the next wake-up (several pending ones count as one).
    pub async fn woken(&self) {
        let mut buf = [0u8; 16];
        let _ = self.socket.recv(&mut buf).await;
        while self.socket.try_recv(&mut buf).is_ok() {}
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Sends wake-ups to other sessions.
#[derive(Debug)]
pub struct Bell {
    dir: PathBuf,
    socket: Option<UnixDatagram>,
}

impl Bell {
    /// A bell for the sessions in `dir`.
    pub fn new(dir: PathBuf) -> Self {
        let socket = UnixDatagram::unbound()
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .ok();
        Self { dir, socket }
    }

    /// Wakes `name`, if it listens; never blocks, never fails.
    pub fn ring(&self, name: &str) {
        if let Some(socket) = &self.socket {
            let _ = socket.send_to(b"w", socket_path(&self.dir, name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ring_wakes_the_listener() {
        let tmp = tempfile::tempdir().unwrap();
        let listener = Listener::bind(tmp.path(), "api").unwrap();
        let bell = Bell::new(tmp.path().to_path_buf());
        bell.ring("api");
        bell.ring("api");
        bell.ring("nobody");
        tokio::time::timeout(std::time::Duration::from_secs(5), listener.woken())
            .await
            .expect("woken");
        // Both rings were taken at once.
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), listener.woken())
                .await
                .is_err()
        );
        let path = socket_path(tmp.path(), "api");
        drop(listener);
        assert!(!path.exists(), "the socket goes with its session");
        // A socket a dead process left is replaced.
        std::fs::write(&path, b"").unwrap();
        Listener::bind(tmp.path(), "api").unwrap();
    }
}
