//! Websocket connections owned by the host, to granted destinations only
//! (adapters only; needs a websocket grant).
//!
//! The host reads: frames and state changes arrive through
//! [`Adapter::on_ws_event`](crate::Adapter::on_ws_event).

use crate::adapter_bindings::airlock::channel::websocket as ws;
pub use crate::types::Connection;
pub use ws::WsError;

/// Opens a connection to `url`; `WsEvent::Opened` or `WsEvent::Closed`
/// follows through `on_ws_event`.
pub fn connect(url: &str) -> Result<Connection, WsError> {
    ws::connect(url)
}

/// Sends a text frame.
pub fn send_text(conn: Connection, text: &str) -> Result<(), WsError> {
    ws::send_text(conn, text)
}

/// Queues a text frame that the host sends only once the events of the
/// batch the current `on_ws_event` or `on_timer` call returns are stored:
/// the way to acknowledge to a platform that redelivers what is not
/// acknowledged (Slack's Socket Mode envelopes). If they cannot be stored,
/// or the connection is gone by then, the frame is not sent. From any
/// other call it fails with `WsError::Io`.
pub fn send_text_after_commit(conn: Connection, text: &str) -> Result<(), WsError> {
    ws::send_text_after_commit(conn, text)
}

/// Closes a connection with a close code and reason.
pub fn close(conn: Connection, code: u16, reason: &str) -> Result<(), WsError> {
    ws::close(conn, code, reason)
}
