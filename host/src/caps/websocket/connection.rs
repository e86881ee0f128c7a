//! One connection's task: connect to the checked addresses, handshake, then move frames
//! between the socket and the actor until either side closes.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::sync::mpsc::{Receiver, UnboundedSender};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::{Message, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Error as WsProtocolError};

use super::{CONNECT_TIMEOUT, Command, MAX_MESSAGE, MAX_UNDELIVERED, WsPolicy};
use crate::bindings::types::{WsConnection, WsEvent};
use crate::host_event::{Delivery, HostEvent};
use crate::manifest::SecretPosition;
use crate::net::destination::Destination;
use crate::net::tls;
use crate::secrets::{Scrubber, SecretValue, header_secrets};

/// Everything a connection's task needs.
pub(super) struct Session {
    pub(super) policy: Arc<WsPolicy>,
    pub(super) destination: Destination,
    pub(super) uri: http::Uri,
    pub(super) addrs: Vec<SocketAddr>,
    pub(super) commands: Receiver<Command>,
    pub(super) events: UnboundedSender<HostEvent>,
    pub(super) generation: u64,
    pub(super) conn: WsConnection,
    /// Wait this long before connecting (the host's backoff after failed connections).
    pub(super) delay: Duration,
    /// The instance's count of connections in a row that ended before the server sent a
    /// frame: reset by this one's first frame, raised if it ends without one.
    pub(super) failures: Arc<AtomicU32>,
    /// The server sent a frame on this connection.
    pub(super) heard: bool,
}

impl Session {
    /// The server sent a frame: the connection works, so the backoff starts over.
    fn heard(&mut self) {
        if !std::mem::replace(&mut self.heard, true) {
            self.failures.store(0, Ordering::Relaxed);
        }
    }

    /// Hands `event` to the actor, first waiting for one of the connection's
    /// [`MAX_UNDELIVERED`] slots (the socket is not read meanwhile).
    async fn post(&self, window: &Arc<Semaphore>, event: WsEvent) {
        let Ok(permit) = window.clone().acquire_owned().await else {
            return;
        };
        let _ = self.events.send(HostEvent::Ws {
            generation: self.generation,
            conn: self.conn,
            event,
            delivery: Delivery::new(permit),
        });
    }
}

/// Runs the connection to its end, then posts exactly one `closed`.
pub(super) async fn run(mut session: Session) {
    let window = Arc::new(Semaphore::new(MAX_UNDELIVERED));
    if !session.delay.is_zero() {
        tokio::time::sleep(session.delay).await;
    }
    let (code, reason) = match connect(&mut session, &window).await {
        Ok(closed) => closed,
        Err(why) => {
            tracing::warn!(
                component = session.policy.component(),
                destination = %session.destination,
                "websocket closed: {why}"
            );
            (1006, why)
        }
    };
    if !session.heard {
        session.failures.fetch_add(1, Ordering::Relaxed);
    }
    let reason = scrub_text(&session.policy.scrubber, &reason).into_owned();
    session.post(&window, WsEvent::Closed((code, reason))).await;
}

async fn connect(session: &mut Session, window: &Arc<Semaphore>) -> Result<(u16, String), String> {
    let tcp = timeout(CONNECT_TIMEOUT, TcpStream::connect(&session.addrs[..]))
        .await
        .map_err(|_| format!("connecting timed out after {CONNECT_TIMEOUT:?}"))?
        .map_err(|e| format!("cannot connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    if session.destination.scheme().is_tls() {
        let tls = timeout(CONNECT_TIMEOUT, tls::connect(&session.destination, tcp))
            .await
            .map_err(|_| format!("the TLS handshake timed out after {CONNECT_TIMEOUT:?}"))?
            .map_err(|e| format!("TLS: {e}"))?;
        drive(session, window, tls).await
    } else {
        drive(session, window, tcp).await
    }
}

async fn drive<S>(
    session: &mut Session,
    window: &Arc<Semaphore>,
    stream: S,
) -> Result<(u16, String), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut request = session
        .uri
        .clone()
        .into_client_request()
        .map_err(|e| format!("invalid request: {e}"))?;
    let path = session.uri.path();
    for (name, value) in header_secrets(&session.policy.secrets, &session.destination, path) {
        request.headers_mut().insert(name, value);
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let (mut ws, _response) = timeout(
        CONNECT_TIMEOUT,
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)),
    )
    .await
    .map_err(|_| format!("the websocket handshake timed out after {CONNECT_TIMEOUT:?}"))?
    .map_err(|e| format!("websocket handshake: {e}"))?;
    session.post(window, WsEvent::Opened).await;

    let scrubber = session.policy.scrubber.clone();
    let mut first = true;
    let mut commands_open = true;
    let mut close_frame: Option<(u16, String)> = None;
    loop {
        tokio::select! {
            command = session.commands.recv(), if commands_open => match command {
                Some(Command::Text(text)) => {
                    let text = if std::mem::take(&mut first) {
                        first_frame(session, text)
                    } else {
                        text
                    };
                    ws.send(Message::text(text)).await.map_err(|e| format!("sending: {e}"))?;
                }
                Some(Command::Close(code, reason)) => {
                    commands_open = false;
                    let frame = CloseFrame { code: code.into(), reason: reason.into() };
                    match ws.close(Some(frame)).await {
                        Ok(()) | Err(WsProtocolError::ConnectionClosed) => {}
                        Err(e) => return Err(format!("closing: {e}")),
                    }
                }
                None => {
                    // The instance is gone.
                    let _ = ws.close(None).await;
                    return Ok((1001, "the adapter instance ended".into()));
                }
            },
            message = ws.next() => match message {
                None | Some(Err(WsProtocolError::ConnectionClosed)) => {
                    return Ok(close_frame.unwrap_or((1005, String::new())));
                }
                Some(Err(e)) => return Err(receive_error(e)),
                Some(Ok(Message::Text(text))) => {
                    session.heard();
                    let text = scrub_text(&scrubber, &text).into_owned();
                    session.post(window, WsEvent::Text(text)).await;
                }
                Some(Ok(Message::Binary(bytes))) => {
                    session.heard();
                    session.post(window, WsEvent::Binary(scrubber.scrub(&bytes).into_owned())).await;
                }
                Some(Ok(Message::Close(frame))) => {
                    // tungstenite answers the close; the stream then ends.
                    close_frame = Some(match frame {
                        Some(f) => (u16::from(f.code), f.reason.to_string()),
                        None => (1005, String::new()),
                    });
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            },
        }
    }
}

fn receive_error(e: WsProtocolError) -> String {
    match e {
        WsProtocolError::Capacity(c) => {
            format!("the server sent more than the host's cap of {MAX_MESSAGE} bytes: {c}")
        }
        WsProtocolError::Protocol(
            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
        ) => "the connection was reset without a closing handshake".into(),
        e => format!("receiving: {e}"),
    }
}

/// `text` with every secret form replaced; lossy only if a replacement split a character,
/// which a whole-value match in valid UTF-8 cannot do.
fn scrub_text<'a>(scrubber: &Scrubber, text: &'a str) -> Cow<'a, str> {
    match scrubber.scrub(text.as_bytes()) {
        Cow::Borrowed(_) => Cow::Borrowed(text),
        Cow::Owned(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
    }
}

/// The first text frame of a connection, with every JSON-field secret of this destination put
/// in its place; unchanged (with a warning) where the frame has no such field.
fn first_frame(session: &Session, text: String) -> String {
    let mut text = text;
    for secret in &session.policy.secrets {
        let SecretPosition::WsJsonField { field } = &secret.binding().position else {
            continue;
        };
        if secret.binding().destination != session.destination {
            continue;
        }
        match inject(&text, field, secret.value()) {
            Some(injected) => text = injected,
            None => tracing::warn!(
                component = session.policy.component(),
                destination = %session.destination,
                "the first websocket frame is not a JSON object with the field {field}; sent without secret {}",
                secret.binding().name
            ),
        }
    }
    text
}

/// `text` re-serialised with the string at dotted path `field` set to `value`; `None` unless
/// `text` is a JSON object that already has that field (and `value` is UTF-8).
pub(super) fn inject(text: &str, field: &str, value: &SecretValue) -> Option<String> {
    let value = std::str::from_utf8(value.expose()).ok()?;
    let mut json: serde_json::Value = serde_json::from_str(text).ok()?;
    let keys: Vec<&str> = field.split('.').collect();
    let (last, parents) = keys.split_last()?;
    let mut object = json.as_object_mut()?;
    for key in parents {
        object = object.get_mut(*key)?.as_object_mut()?;
    }
    let slot = object.get_mut(*last)?;
    *slot = serde_json::Value::String(value.to_owned());
    serde_json::to_string(&json).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injection_replaces_only_an_existing_field() {
        let secret = SecretValue::new("s3cr\"t");
        let cases: &[(&str, &str, Option<&str>)] = &[
            (
                r#"{"op":2,"d":{"token":"x","intents":1}}"#,
                "d.token",
                Some(r#"{"d":{"intents":1,"token":"s3cr\"t"},"op":2}"#),
            ),
            (r#"{"token":null}"#, "token", Some(r#"{"token":"s3cr\"t"}"#)),
            (r#"{"op":2,"d":{}}"#, "d.token", None),
            (r#"{"op":2,"d":"token"}"#, "d.token", None),
            (r#"["d"]"#, "d", None),
            ("not json {secret}", "d.token", None),
        ];
        for (text, field, expected) in cases {
            let got = inject(text, field, &secret);
            // Key order depends on serde_json's features; compare as values.
            let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
            assert_eq!(
                got.as_deref().map(parse),
                expected.map(parse),
                "{text} {field}"
            );
        }
    }
}
