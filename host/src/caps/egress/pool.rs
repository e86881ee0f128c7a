//! Keep-alive connections of one component, kept between its requests.
//!
//! A connection is made to addresses that passed the resolved-address check,
//! for one granted destination, and is only ever reused for that destination
//! and that component (each component's policy has its own pool). Reusing it
//! saves the TCP (and TLS) handshake, and the name lookup: the connection
//! stays with the address that was checked. At most
//! [`MAX_IDLE_PER_DESTINATION`] wait per destination, none longer than
//! [`IDLE_TIMEOUT`]; an idle connection's task is aborted when it is
//! evicted, which closes its socket.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::client::conn::http1::SendRequest;

use crate::net::destination::Destination;

/// Idle connections kept per destination.
pub const MAX_IDLE_PER_DESTINATION: usize = 4;
/// How long an idle connection is kept.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The request body every pooled connection takes.
pub(crate) type PoolBody = UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// A connection: the handle to send on, and its task (held so that the
/// connection ends when this does).
pub(crate) struct Connection {
    pub(crate) sender: SendRequest<PoolBody>,
    pub(crate) _task: AbortOnDrop,
}

struct Idle {
    connection: Connection,
    since: Instant,
}

/// One component's idle connections; clones share them.
#[derive(Clone, Default)]
pub struct ConnectionPool {
    idle: Arc<Mutex<HashMap<Destination, Vec<Idle>>>>,
}

impl std::fmt::Debug for ConnectionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("ConnectionPool")
            .field("idle", &idle.values().map(Vec::len).sum::<usize>())
            .finish()
    }
}

impl ConnectionPool {
    /// An idle connection to `destination` that is still open, if any.
    pub(crate) fn take(&self, destination: &Destination) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.get_mut(destination)?;
        while let Some(candidate) = list.pop() {
            let fresh = candidate.since.elapsed() < IDLE_TIMEOUT;
            if fresh && !candidate.connection.sender.is_closed() {
                return Some(candidate.connection);
            }
        }
        None
    }

    /// Keeps `connection` for the next request to `destination` (or drops
    /// it, when enough are kept).
    pub(crate) fn put(&self, destination: &Destination, connection: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.entry(destination.clone()).or_default();
        list.retain(|i| i.since.elapsed() < IDLE_TIMEOUT && !i.connection.sender.is_closed());
        if list.len() < MAX_IDLE_PER_DESTINATION {
            list.push(Idle {
                connection,
                since: Instant::now(),
            });
        }
    }

    /// How many connections wait, over all destinations.
    pub fn idle_count(&self) -> usize {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.values().map(Vec::len).sum()
    }
}

/// Aborts a spawned task when dropped.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
