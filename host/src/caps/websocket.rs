//! `airlock:channel/websocket`: host-owned websocket connections.
//!
//! Linked only for components granted `websocket` destinations. This version
//! checks the destination against the grant; opening connections (and binding
//! a secret to the first frame) is not implemented yet, and says so to the
//! guest instead of pretending.

use crate::runtime::bindings::types::WsConnection as Connection;
use crate::runtime::bindings::websocket::{self, WsError};
use crate::runtime::state::ComponentState;

impl websocket::Host for ComponentState {
    fn connect(&mut self, url: String) -> wasmtime::Result<Result<Connection, WsError>> {
        let allowed = url
            .parse::<http::Uri>()
            .ok()
            .is_some_and(|uri| self.websocket.iter().any(|d| d.allows(&uri)));
        if !allowed {
            let url = crate::runtime::actor::one_line(&url, 200);
            self.log.line(
                crate::caps::log::Source::Log(crate::runtime::bindings::log::Level::Warn),
                &format!("websocket destination {url} is not granted"),
            );
            return Ok(Err(WsError::Denied(format!(
                "{url} is not among this component's websocket destinations; add it to `websocket` in the manifest and approve the component"
            ))));
        }
        Ok(Err(WsError::Io(
            "host websocket connections are not available in this airlock version".into(),
        )))
    }

    fn send_text(
        &mut self,
        _conn: Connection,
        _text: String,
    ) -> wasmtime::Result<Result<(), WsError>> {
        Ok(Err(WsError::Closed))
    }

    fn close(
        &mut self,
        _conn: Connection,
        _code: u16,
        _reason: String,
    ) -> wasmtime::Result<Result<(), WsError>> {
        Ok(Err(WsError::Closed))
    }
}
