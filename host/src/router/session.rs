//! Whether a session is connected: set by the MCP side once the client has
//! initialized, read by `/status`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Shared, cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Session {
    connected: Arc<AtomicBool>,
}

impl Session {
    /// Record that a client completed the handshake (or went away).
    pub fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Relaxed);
    }

    /// Whether a client is connected.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
}
