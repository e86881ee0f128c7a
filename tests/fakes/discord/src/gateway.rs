//! The gateway: a websocket server speaking Gateway v10 in JSON.
//!
//! Each connection is served by one task that owns the socket. Everything
//! the server sends on it goes through the task's channel, whether it comes
//! from the task itself (Hello, READY, heartbeat ACKs) or from the handle
//! and REST handlers (dispatches, op 7, close codes): frames queued under the
//! state lock go out in exactly the order they were queued, so a dispatch
//! can never overtake the READY before it.
//!
//! One session exists at a time. Before the first Identify it is "unborn":
//! dispatches queue in its log and follow READY. An Identify on a session
//! that already started begins a new one (new id, sequence reset, log
//! emptied), as Discord does; Resume replays the log past the client's
//! sequence number.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::Shared;
use crate::payloads;
use crate::state::{Connection, Outgoing, Session, State, id_of};

/// Client payloads larger than this close the connection with 4002.
const MAX_PAYLOAD: usize = 4096;

/// Intent bits Discord knows (1<<0 … 1<<16, 20, 21, 24, 25).
const KNOWN_INTENTS: u64 = ((1 << 17) - 1) | (1 << 20) | (1 << 21) | (1 << 24) | (1 << 25);
/// GUILD_MEMBERS, GUILD_PRESENCES, MESSAGE_CONTENT.
const PRIVILEGED_INTENTS: u64 = (1 << 1) | (1 << 8) | (1 << 15);

/// How long a closing connection waits for the client's close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // The connections live in this set, so aborting the loop drops them.
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        while connections.try_join_next().is_some() {}
        connections.spawn(serve(stream, shared.clone()));
    }
}

// The handshake callback's error type is tungstenite's, large as it is.
#[allow(clippy::result_large_err)]
async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let mut query = None;
    let handshake = tokio_tungstenite::accept_hdr_async(stream, |req: &Request, resp: Response| {
        query = req.uri().query().map(str::to_owned);
        Ok(resp)
    })
    .await;
    let Ok(mut ws) = handshake else {
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let id = shared.lock().open_connection(tx, query);

    loop {
        tokio::select! {
            // What the server has queued goes first: Hello before anything
            // the client sent is answered.
            biased;
            out = rx.recv() => match out {
                Some(Outgoing::Text(text)) => {
                    if ws.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
                Some(Outgoing::Binary(bytes)) => {
                    if ws.send(Message::binary(bytes)).await.is_err() {
                        break;
                    }
                }
                Some(Outgoing::Close(code, reason)) => {
                    let frame = CloseFrame {
                        code: CloseCode::from(code),
                        reason: reason.into(),
                    };
                    if ws.close(Some(frame)).await.is_ok() {
                        // Let the client answer with its close frame.
                        let _ = tokio::time::timeout(CLOSE_GRACE, async {
                            while let Some(Ok(msg)) = ws.next().await {
                                shared.lock().on_client_message(id, msg);
                            }
                        })
                        .await;
                    }
                    break;
                }
                Some(Outgoing::Abort) => {
                    // A zero linger makes the drop below a TCP reset.
                    let _ = ws.get_ref().set_zero_linger();
                    break;
                }
                None => break,
            },
            msg = ws.next() => match msg {
                Some(Ok(msg)) => shared.lock().on_client_message(id, msg),
                _ => break,
            },
        }
    }
    shared.lock().connection_ended(id);
}

fn frame(op: u8, d: Value) -> String {
    json!({"op": op, "d": d, "s": null, "t": null}).to_string()
}

fn dispatch_frame(seq: u64, t: &str, d: &Value) -> String {
    json!({"op": 0, "d": d, "s": seq, "t": t}).to_string()
}

/// A session id: 32 hex digits, different for every session, the same in
/// every run.
fn session_id(n: u64) -> String {
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    format!("{:016x}{:016x}", mix(n), mix(n ^ 0x0D15_C0DD))
}

impl State {
    /// Registers a new connection as the current one and greets it.
    fn open_connection(
        &mut self,
        tx: mpsc::UnboundedSender<Outgoing>,
        query: Option<String>,
    ) -> u64 {
        self.next_connection += 1;
        self.connections += 1;
        let id = self.next_connection;
        let version = query.as_deref().and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "v")
                .map(|(_, v)| v.into_owned())
        });
        self.gateway_queries.push(query);
        if let Some(old) = self.connection.take() {
            old.send(Outgoing::Close(
                4000,
                "Replaced by a newer connection.".into(),
            ));
        }
        let connection = Connection {
            id,
            tx,
            authenticated: false,
            ever_authenticated: false,
        };
        let hello = json!({"heartbeat_interval": self.heartbeat_interval});
        connection.send(Outgoing::Text(frame(10, hello)));
        if version.is_some_and(|v| v != "10") {
            connection.send(Outgoing::Close(4012, "Invalid API version".into()));
        }
        self.connection = Some(connection);
        id
    }

    fn connection_ended(&mut self, id: u64) {
        if self.connection.as_ref().is_some_and(|c| c.id == id) {
            self.connection = None;
        }
    }

    /// Drops the current connection (the fake is going away).
    pub(crate) fn forget_connections(&mut self) {
        self.connection = None;
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.connection.as_ref().is_some_and(|c| c.authenticated)
    }

    /// The current connection, if it is `id`.
    fn current(&mut self, id: u64) -> Option<&mut Connection> {
        self.connection.as_mut().filter(|c| c.id == id)
    }

    /// Closes connection `id` with a close code, if it is still current.
    fn close_connection(&mut self, id: u64, code: u16, reason: &str) {
        if self.connection.as_ref().is_some_and(|c| c.id == id)
            && let Some(connection) = self.connection.take()
        {
            connection.send(Outgoing::Close(code, reason.to_owned()));
        }
    }

    fn token_ok(&self, sent: Option<&Value>) -> bool {
        let Some(sent) = sent.and_then(Value::as_str) else {
            return false;
        };
        let bare = sent.strip_prefix("Bot ").unwrap_or(sent);
        !self.token.is_empty() && bare == self.token
    }

    fn on_client_message(&mut self, id: u64, msg: Message) {
        match msg {
            Message::Text(text) => self.on_client_payload(id, text.as_bytes()),
            Message::Binary(bytes) => self.on_client_payload(id, &bytes),
            Message::Close(frame) => {
                let code = frame.map(|f| u16::from(f.code));
                self.client_closes.push(code);
                // Closing with 1000 or 1001 ends the session: it can no
                // longer be resumed.
                let ends_session = matches!(code, Some(1000 | 1001))
                    && self.current(id).is_some_and(|c| c.ever_authenticated);
                if ends_session {
                    self.session = Session::unborn();
                    if let Some(connection) = self.current(id) {
                        connection.authenticated = false;
                    }
                }
            }
            _ => {}
        }
    }

    fn on_client_payload(&mut self, id: u64, bytes: &[u8]) {
        let parsed: Option<Value> = serde_json::from_slice(bytes).ok();
        self.client_frames.push(match &parsed {
            Some(v) => v.clone(),
            None => Value::String(String::from_utf8_lossy(bytes).into_owned()),
        });
        if self.current(id).is_none() {
            // A replaced connection, already told to close.
            return;
        }
        if bytes.len() > MAX_PAYLOAD {
            return self.close_connection(id, 4002, "Error while decoding payload.");
        }
        let Some(payload) = parsed.filter(Value::is_object) else {
            return self.close_connection(id, 4002, "Error while decoding payload.");
        };
        let Some(op) = payload.get("op").and_then(Value::as_u64) else {
            return self.close_connection(id, 4002, "Error while decoding payload.");
        };
        match op {
            1 => self.on_heartbeat(id),
            2 => self.on_identify(id, payload),
            6 => self.on_resume(id, payload),
            3 | 4 | 8 | 31 => {
                let authenticated = self.current(id).is_some_and(|c| c.ever_authenticated);
                if !authenticated {
                    self.close_connection(id, 4003, "Not authenticated.");
                }
            }
            _ => self.close_connection(id, 4001, "Unknown opcode."),
        }
    }

    fn on_heartbeat(&mut self, id: u64) {
        self.heartbeats += 1;
        let stop_acks = self.stop_acks;
        if let Some(connection) = self.current(id)
            && !stop_acks
        {
            connection.send(Outgoing::Text(frame(11, Value::Null)));
        }
    }

    fn on_identify(&mut self, id: u64, payload: Value) {
        self.last_identify = Some(payload.clone());
        if self.current(id).is_some_and(|c| c.ever_authenticated) {
            return self.close_connection(id, 4005, "Already authenticated.");
        }
        let d = &payload["d"];
        if !self.token_ok(d.get("token")) {
            return self.close_connection(id, 4004, "Authentication failed.");
        }
        let Some(intents) = d.get("intents").and_then(Value::as_u64) else {
            return self.close_connection(id, 4013, "Invalid intent(s).");
        };
        if intents & !KNOWN_INTENTS != 0 {
            return self.close_connection(id, 4013, "Invalid intent(s).");
        }
        if !self.privileged_allowed && intents & PRIVILEGED_INTENTS != 0 {
            return self.close_connection(id, 4014, "Disallowed intent(s).");
        }
        let shard = d.get("shard").filter(|s| !s.is_null());
        if let Some(shard) = shard {
            let pair = shard.as_array().and_then(|a| match a.as_slice() {
                [n, count] => Some((n.as_u64()?, count.as_u64()?)),
                _ => None,
            });
            if !pair.is_some_and(|(n, count)| count >= 1 && n < count) {
                return self.close_connection(id, 4010, "Invalid shard.");
            }
        }

        // A session that already started is replaced; an unborn one (with
        // whatever was dispatched before anyone identified) starts now.
        if self.session.id.is_some() {
            self.session = Session::unborn();
        }
        self.sessions_started += 1;
        let session = session_id(self.sessions_started);
        self.session.id = Some(session.clone());
        let mut ready = payloads::ready(&session, &self.gateway_url);
        if let Some(shard) = shard {
            ready["shard"] = shard.clone();
        }
        let ready = dispatch_frame(1, "READY", &ready);
        self.identifies += 1;
        let backlog: Vec<String> = self.session.log.iter().map(|(_, f)| f.clone()).collect();
        if let Some(connection) = self.current(id) {
            connection.send(Outgoing::Text(ready));
            for f in backlog {
                connection.send(Outgoing::Text(f));
            }
            connection.authenticated = true;
            connection.ever_authenticated = true;
        }
    }

    fn on_resume(&mut self, id: u64, payload: Value) {
        self.last_resume = Some(payload.clone());
        if self.current(id).is_some_and(|c| c.ever_authenticated) {
            return self.close_connection(id, 4005, "Already authenticated.");
        }
        let d = &payload["d"];
        if !self.token_ok(d.get("token")) {
            return self.close_connection(id, 4004, "Authentication failed.");
        }
        let wanted = d.get("session_id").and_then(Value::as_str);
        let seq = d.get("seq").and_then(Value::as_u64).unwrap_or(0);
        let resumable = wanted.is_some() && self.session.id.as_deref() == wanted;
        if !resumable {
            if let Some(connection) = self.current(id) {
                connection.send(Outgoing::Text(frame(9, Value::Bool(false))));
            }
            return;
        }
        if seq > self.session.seq {
            return self.close_connection(id, 4007, "Invalid seq.");
        }
        let missed: Vec<String> = self
            .session
            .log
            .iter()
            .filter(|(s, _)| *s > seq)
            .map(|(_, f)| f.clone())
            .collect();
        self.session.seq += 1;
        let resumed = dispatch_frame(self.session.seq, "RESUMED", &json!({}));
        self.resumes += 1;
        if let Some(connection) = self.current(id) {
            for f in missed {
                connection.send(Outgoing::Text(f));
            }
            connection.send(Outgoing::Text(resumed));
            connection.authenticated = true;
            connection.ever_authenticated = true;
        }
    }

    /// Sends a dispatch in the current session (see
    /// [`FakeDiscord::dispatch`](crate::FakeDiscord::dispatch)).
    pub(crate) fn dispatch(&mut self, t: &str, d: Value) -> u64 {
        self.learn_from_dispatch(t, &d);
        self.emit(t, d)
    }

    /// Sends a dispatch about something the fake itself already recorded
    /// (a REST call's effect): sequence number, log, delivery, no learning.
    pub(crate) fn emit(&mut self, t: &str, d: Value) -> u64 {
        self.session.seq += 1;
        let seq = self.session.seq;
        let text = dispatch_frame(seq, t, &d);
        self.session.log.push((seq, text.clone()));
        if let Some(connection) = self.connection.as_ref().filter(|c| c.authenticated) {
            connection.send(Outgoing::Text(text));
        }
        seq
    }

    /// What a dispatch tells the fake about the world: messages exist in
    /// their channels (and channels exist), reactions count, interactions
    /// can be answered.
    fn learn_from_dispatch(&mut self, t: &str, d: &Value) {
        match t {
            "MESSAGE_CREATE" => self.record_message(d),
            "MESSAGE_DELETE" => {
                if let (Some(channel_id), Some(id)) =
                    (id_of(d.get("channel_id")), id_of(d.get("id")))
                {
                    self.remove_message(&channel_id, &id);
                }
            }
            "MESSAGE_REACTION_ADD" => self.count_reaction(d, true),
            "MESSAGE_REACTION_REMOVE" => self.count_reaction(d, false),
            "MESSAGE_UPDATE" => {
                let (Some(channel_id), Some(id)) = (id_of(d.get("channel_id")), id_of(d.get("id")))
                else {
                    return;
                };
                match self.find_message_mut(&channel_id, &id) {
                    Some(stored) => {
                        if let (Some(stored), Some(update)) =
                            (stored.as_object_mut(), d.as_object())
                        {
                            for (k, v) in update {
                                if !matches!(k.as_str(), "guild_id" | "member" | "channel_type") {
                                    stored.insert(k.clone(), v.clone());
                                }
                            }
                        }
                    }
                    None => self.remember_message(d),
                }
            }
            "INTERACTION_CREATE" => {
                let Some(id) = id_of(d.get("id")) else {
                    return;
                };
                let message = d.get("message").filter(|m| m.is_object());
                if let Some(message) = message {
                    self.remember_message(message);
                }
                self.learn_interaction_channel(d);
                let interaction = crate::state::KnownInteraction {
                    token: d
                        .get("token")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    channel_id: id_of(d.get("channel_id")),
                    message_id: message.and_then(|m| id_of(m.get("id"))),
                    acknowledged: false,
                };
                self.interactions.insert(id, interaction);
            }
            _ => {}
        }
    }

    /// Makes up the channel an interaction happened in, if unknown.
    fn learn_interaction_channel(&mut self, d: &Value) {
        let Some(channel_id) = id_of(d.get("channel_id")) else {
            return;
        };
        if self.channels.contains_key(&channel_id) {
            return;
        }
        if d.get("guild_id").is_some_and(|g| !g.is_null()) {
            let name = d
                .pointer("/channel/name")
                .and_then(Value::as_str)
                .map_or_else(|| format!("channel-{channel_id}"), str::to_owned);
            self.add_guild_channel(&channel_id, &name);
        } else if let Some(user) = d.get("user").filter(|u| u.is_object()) {
            self.add_dm(&channel_id, user.clone());
        }
    }

    pub(crate) fn request_heartbeat(&mut self) {
        if let Some(connection) = &self.connection {
            connection.send(Outgoing::Text(frame(1, Value::Null)));
        }
    }

    pub(crate) fn send_reconnect(&mut self) {
        if let Some(connection) = &mut self.connection {
            connection.send(Outgoing::Text(frame(7, Value::Null)));
            connection.authenticated = false;
        }
    }

    pub(crate) fn invalidate_session(&mut self, resumable: bool) {
        if let Some(connection) = &mut self.connection {
            connection.send(Outgoing::Text(frame(9, Value::Bool(resumable))));
            connection.authenticated = false;
            connection.ever_authenticated = false;
        }
        if !resumable {
            self.session = Session::unborn();
        }
    }

    pub(crate) fn close_with(&mut self, code: u16, reason: &str) {
        if let Some(connection) = self.connection.take() {
            connection.send(Outgoing::Close(code, reason.to_owned()));
        }
    }

    pub(crate) fn drop_socket(&mut self) {
        if let Some(connection) = self.connection.take() {
            connection.send(Outgoing::Abort);
        }
    }

    pub(crate) fn send_raw(&mut self, text: &str) {
        if let Some(connection) = &self.connection {
            connection.send(Outgoing::Text(text.to_owned()));
        }
    }

    pub(crate) fn send_binary(&mut self, bytes: Vec<u8>) {
        if let Some(connection) = &self.connection {
            connection.send(Outgoing::Binary(bytes));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_differ_and_look_real() {
        let a = session_id(1);
        let b = session_id(2);
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, session_id(1));
    }

    #[test]
    fn intent_masks() {
        assert_eq!(38401 & !KNOWN_INTENTS, 0);
        assert_ne!(38401 & PRIVILEGED_INTENTS, 0);
        assert_ne!((1 << 17) & !KNOWN_INTENTS, 0);
    }
}
