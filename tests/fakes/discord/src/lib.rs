//! A fake Discord for tests: REST API v10 and Gateway v10 on loopback.
//!
//! [`FakeDiscord::start`] binds two ports on `127.0.0.1`: one serves the REST
//! routes under `/api/v10` (plus attachment downloads, as the CDN would) over
//! plain HTTP/1.1, the other is the gateway websocket. A client library such
//! as serenity is pointed at both (REST base URL and gateway URL) and cannot
//! tell the difference for the routes and opcodes a chat bot uses.
//!
//! Tests drive the fake through its handle: add channels and history, push
//! gateway dispatches (sequence numbers, a replay log for Resume), make the
//! gateway misbehave (no heartbeat ACKs, op 7, op 9, close codes, dropped
//! sockets, raw frames), make REST calls fail (429, 5xx), and read back every
//! REST call and gateway frame the client sent.
//!
//! Everything lives behind one mutex, so a REST call that dispatches an event
//! (a sent message comes back as `MESSAGE_CREATE`) orders that event exactly
//! as Discord would relative to dispatches the test pushes.
//!
//! What it emulates, and what it leaves out, is listed in this crate's
//! README.md.

mod body;
mod gateway;
mod interactions;
mod messages;
pub mod payloads;
mod reply;
mod rest;
mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use state::State;

/// The bot's user id; also its application id (as for every bot created
/// since 2020).
pub const BOT_ID: &str = "1000000000000000001";
/// The bot's `username`.
pub const BOT_USERNAME: &str = "testbot";
/// The one guild the bot is in; guild channels and threads belong to it.
pub const GUILD_ID: &str = "2000000000000000001";

/// The heartbeat interval Hello announces unless a test sets another, in
/// milliseconds (Discord's usual value).
pub const DEFAULT_HEARTBEAT_INTERVAL: u64 = 41_250;

/// One REST request the client made, in arrival order.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The HTTP method, upper case (`POST`).
    pub method: String,
    /// The path without the `/api/v10` prefix, each segment percent-decoded:
    /// `/channels/1/messages/2/reactions/👍/@me`. Attachment downloads keep
    /// their own path (`/attachments/…`).
    pub path: String,
    /// The path exactly as sent: undecoded, with the `/api/v10` prefix, no
    /// query.
    pub raw_path: String,
    /// Query parameters, decoded, in order; empty pairs are skipped
    /// (serenity sends `?&limit=50`).
    pub query: Vec<(String, String)>,
    /// Request headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The JSON body, or the `payload_json` part of a multipart body, parsed.
    /// A multipart body without `payload_json` gives an object of its text
    /// fields.
    pub json: Option<Value>,
    /// File parts of a multipart body (`files[n]`).
    pub files: Vec<UploadedFile>,
    /// The fault the fake answered this call with, if one was armed.
    pub fault: Option<Fault>,
}

impl Call {
    /// A header's value by name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter's first value by name.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A file part of a multipart body.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadedFile {
    /// The form field (`files[0]`).
    pub field: String,
    /// The part's `filename`.
    pub filename: String,
    /// The part's `Content-Type`, if it had one.
    pub content_type: Option<String>,
    /// The file's contents.
    pub bytes: Vec<u8>,
}

/// A failure to answer the next matching REST call(s) with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// 429 with `{"message":"You are being rate limited.","retry_after":X,
    /// "global":G}`, a `Retry-After` header (whole seconds, rounded up) and
    /// `X-RateLimit-Scope` (`global` or `user`); `X-RateLimit-Global: true`
    /// when global.
    RateLimited {
        /// Seconds to wait, as Discord gives them (fractional).
        retry_after: f64,
        /// Whether the global limit was hit rather than the route's.
        global: bool,
    },
    /// This HTTP status (500–599 as a rule) with `{"message":"…","code":0}`.
    ServerError(u16),
}

/// A running fake. Dropping it stops both listeners and drops every open
/// connection, REST and gateway.
pub struct FakeDiscord {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

/// What the listeners and the handle share.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) rest_addr: SocketAddr,
    pub(crate) gateway_addr: SocketAddr,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn api_base(&self) -> String {
        format!("http://{}", self.rest_addr)
    }

    pub(crate) fn gateway_url(&self) -> String {
        format!("ws://{}", self.gateway_addr)
    }
}

impl FakeDiscord {
    /// Starts a fake that accepts `token` (the bare token, as the developer
    /// portal shows it) on two free ports of `127.0.0.1`. Must be called
    /// inside a tokio runtime.
    pub async fn start(token: &str) -> FakeDiscord {
        let rest = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind 127.0.0.1:0 for REST");
        let gateway = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind 127.0.0.1:0 for the gateway");
        let rest_addr = rest.local_addr().expect("REST address");
        let gateway_addr = gateway.local_addr().expect("gateway address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(
                token,
                format!("http://{rest_addr}"),
                format!("ws://{gateway_addr}"),
            )),
            rest_addr,
            gateway_addr,
        });
        let tasks = vec![
            tokio::spawn(rest::accept_loop(rest, shared.clone())),
            tokio::spawn(gateway::accept_loop(gateway, shared.clone())),
        ];
        FakeDiscord { shared, tasks }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash: give it to serenity's
    /// `HttpBuilder::proxy`. REST routes live under `/api/v10` on it.
    pub fn api_base(&self) -> String {
        self.shared.api_base()
    }

    /// `ws://127.0.0.1:PORT`, no query: what `GET /api/v10/gateway` returns
    /// and READY's `resume_gateway_url`.
    pub fn gateway_url(&self) -> String {
        self.shared.gateway_url()
    }

    /// The token the fake accepts (bare, without `Bot `).
    pub fn token(&self) -> String {
        self.shared.lock().token.clone()
    }

    /// Accepts `token` from now on, and no other: revokes the old one. Later
    /// REST calls with the old token get 401, later Identify or Resume with
    /// it gets close 4004. An open gateway connection is left alone.
    pub fn set_token(&self, token: &str) {
        self.shared.lock().token = token.to_owned();
    }

    /// The `heartbeat_interval` (ms) that Hello announces on later
    /// connections. Default [`DEFAULT_HEARTBEAT_INTERVAL`].
    pub fn set_heartbeat_interval(&self, ms: u64) {
        self.shared.lock().heartbeat_interval = ms;
    }

    /// Whether the application has the privileged intents (GUILD_MEMBERS,
    /// GUILD_PRESENCES, MESSAGE_CONTENT) enabled. Default `true`; with
    /// `false`, an Identify asking for any of them is closed with 4014.
    pub fn set_privileged_intents(&self, allowed: bool) {
        self.shared.lock().privileged_allowed = allowed;
    }

    // ---- channels and history ----------------------------------------------

    /// Adds a DM channel (type 1) with `recipient` (a user object). `POST
    /// /users/@me/channels` for that user returns it.
    pub fn add_dm(&self, channel_id: &str, recipient: Value) {
        self.shared.lock().add_dm(channel_id, recipient);
    }

    /// Adds a text channel (type 0) in [`GUILD_ID`].
    pub fn add_guild_channel(&self, channel_id: &str, name: &str) {
        self.shared.lock().add_guild_channel(channel_id, name);
    }

    /// Adds a public thread (type 11) in [`GUILD_ID`] under `parent_id`.
    pub fn add_thread(&self, channel_id: &str, parent_id: &str, name: &str) {
        self.shared.lock().add_thread(channel_id, parent_id, name);
    }

    /// Stores a file as an attachment of `channel_id` and returns its
    /// attachment object (`id, filename, size, content_type, url,
    /// proxy_url`). Its `url` is served by the fake at
    /// `{api_base}/attachments/{channel_id}/{id}/{filename}` without
    /// authorisation, as the CDN serves it. Put the object in a message's
    /// `attachments` to deliver it.
    pub fn add_attachment(
        &self,
        channel_id: &str,
        filename: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Value {
        self.shared
            .lock()
            .add_attachment(channel_id, filename, Some(content_type), None, bytes)
    }

    /// Puts `message` in the channel's history (what `GET messages` reads)
    /// without dispatching it. Its `channel_id` is set to `channel_id`; an
    /// unknown channel is made up (a guild channel if the message has a
    /// `guild_id`, else a DM with its author).
    pub fn add_message(&self, channel_id: &str, message: Value) {
        self.shared.lock().add_message(channel_id, message);
    }

    /// The channel's stored history, oldest first (by id): messages created
    /// through REST, put there with [`add_message`](Self::add_message), or
    /// dispatched as `MESSAGE_CREATE`, with edits, deletions and reactions
    /// applied.
    pub fn messages_in(&self, channel_id: &str) -> Vec<Value> {
        self.shared
            .lock()
            .history
            .get(channel_id)
            .cloned()
            .unwrap_or_default()
    }

    /// A message the fake knows: from the history, or one it only learnt of
    /// (the message of an `INTERACTION_CREATE`), with edits and reactions
    /// applied.
    pub fn message(&self, channel_id: &str, message_id: &str) -> Option<Value> {
        self.shared
            .lock()
            .find_message(channel_id, message_id)
            .cloned()
    }

    /// A channel object by id, as `GET /channels/{id}` returns it.
    pub fn channel(&self, channel_id: &str) -> Option<Value> {
        self.shared.lock().channels.get(channel_id).cloned()
    }

    // ---- gateway control ---------------------------------------------------

    /// Sends a dispatch (op 0) with event name `t` and data `d`. It gets the
    /// next sequence number of the current session and goes into the
    /// session's replay log; it is sent at once to the connected client if
    /// that client has identified or resumed, and otherwise waits in the log
    /// (delivered after READY to a session not yet started, or on Resume).
    /// Returns the sequence number.
    ///
    /// The fake learns from what it dispatches, as Discord's state would
    /// change: a `MESSAGE_CREATE` puts the message in its channel's history
    /// (and makes up the channel if unknown), `MESSAGE_UPDATE`,
    /// `MESSAGE_DELETE` and `MESSAGE_REACTION_ADD`/`_REMOVE` change stored
    /// messages, and an `INTERACTION_CREATE` makes its id and token
    /// answerable on the callback route.
    pub fn dispatch(&self, t: &str, d: Value) -> u64 {
        self.shared.lock().dispatch(t, d)
    }

    /// Whether a client is connected and has identified or resumed.
    pub fn is_ready(&self) -> bool {
        self.shared.lock().is_ready()
    }

    /// Identify payloads accepted (READY sent).
    pub fn identifies(&self) -> usize {
        self.shared.lock().identifies
    }

    /// Resume payloads accepted (RESUMED sent).
    pub fn resumes(&self) -> usize {
        self.shared.lock().resumes
    }

    /// Gateway connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.lock().connections
    }

    /// The last op 2 frame received, in full, whether accepted or not.
    pub fn last_identify(&self) -> Option<Value> {
        self.shared.lock().last_identify.clone()
    }

    /// The last op 6 frame received, in full, whether accepted or not.
    pub fn last_resume(&self) -> Option<Value> {
        self.shared.lock().last_resume.clone()
    }

    /// Heartbeats (op 1) received.
    pub fn heartbeats(&self) -> usize {
        self.shared.lock().heartbeats
    }

    /// With `true`, heartbeats get no ACK (op 11): the connection turns
    /// zombie, as far as the client can tell.
    pub fn stop_acks(&self, stop: bool) {
        self.shared.lock().stop_acks = stop;
    }

    /// Asks the connected client for a heartbeat now (op 1 from the server).
    pub fn request_heartbeat(&self) {
        self.shared.lock().request_heartbeat();
    }

    /// Sends Reconnect (op 7). The connection stops receiving dispatches
    /// (they wait in the log for the Resume), as Discord would be about to
    /// drop it.
    pub fn send_reconnect(&self) {
        self.shared.lock().send_reconnect();
    }

    /// Sends Invalid Session (op 9) with `d: resumable`. The connection stops
    /// receiving dispatches. With `false` the session is discarded: a later
    /// Resume of it gets op 9 `false`, and the next Identify starts afresh.
    pub fn invalidate_session(&self, resumable: bool) {
        self.shared.lock().invalidate_session(resumable);
    }

    /// Closes the current connection with a close frame carrying `code` and
    /// `reason`. The session is kept (resumable).
    pub fn close_with(&self, code: u16, reason: &str) {
        self.shared.lock().close_with(code, reason);
    }

    /// Aborts the current connection's TCP stream (reset, no close frame).
    pub fn drop_socket(&self) {
        self.shared.lock().drop_socket();
    }

    /// Sends `text` as one text frame, as-is, to the current connection.
    pub fn send_raw(&self, text: &str) {
        self.shared.lock().send_raw(text);
    }

    /// Sends `bytes` as one binary frame, as-is (serenity inflates binary
    /// frames as zlib streams).
    pub fn send_binary(&self, bytes: Vec<u8>) {
        self.shared.lock().send_binary(bytes);
    }

    /// Every frame clients sent over the gateway, in order, across
    /// connections: JSON ones parsed, others as `Value::String`.
    pub fn client_frames(&self) -> Vec<Value> {
        self.shared.lock().client_frames.clone()
    }

    /// Close codes of close frames clients sent (`None` for a close frame
    /// without a code), in order. A close with 1000 or 1001 on the current
    /// connection ends the session, as on Discord: it cannot be resumed.
    pub fn client_closes(&self) -> Vec<Option<u16>> {
        self.shared.lock().client_closes.clone()
    }

    /// The query string of each gateway connection's handshake request, in
    /// order (`Some("v=10")` for serenity).
    pub fn gateway_queries(&self) -> Vec<Option<String>> {
        self.shared.lock().gateway_queries.clone()
    }

    /// The current session's id, once READY has been sent for it.
    pub fn session_id(&self) -> Option<String> {
        self.shared.lock().session.id.clone()
    }

    /// The last sequence number the current session assigned (READY is 1).
    pub fn last_seq(&self) -> u64 {
        self.shared.lock().session.seq
    }

    // ---- REST --------------------------------------------------------------

    /// Every REST call so far, oldest first (downloads of attachments
    /// included).
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// The calls with this method (case-insensitive) whose
    /// [`path`](Call::path) matches `route`: a template such as
    /// `/channels/{}/messages`, where `{}` matches one path segment. A leading
    /// `/api/v10` in `route` is ignored.
    pub fn calls_to(&self, method: &str, route: &str) -> Vec<Call> {
        self.shared
            .lock()
            .calls
            .iter()
            .filter(|c| c.method.eq_ignore_ascii_case(method) && route_matches(route, &c.path))
            .cloned()
            .collect()
    }

    /// Answers the next `times` calls matching `method` and `route` (as in
    /// [`calls_to`](Self::calls_to)) with `fault` instead of handling them.
    /// Faults armed for the same calls queue up in order. A faulted call is
    /// recorded with [`Call::fault`] set.
    pub fn fail_next(&self, method: &str, route: &str, fault: Fault, times: usize) {
        if times == 0 {
            return;
        }
        self.shared.lock().faults.push(state::ArmedFault {
            method: method.to_ascii_uppercase(),
            route: route.to_owned(),
            fault,
            remaining: times,
        });
    }
}

impl Drop for FakeDiscord {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.shared.lock().forget_connections();
    }
}

/// Whether `path` matches the route template `route` (`{}` = one segment).
pub(crate) fn route_matches(route: &str, path: &str) -> bool {
    let route = route.strip_prefix("/api/v10").unwrap_or(route);
    let route = route.split('?').next().unwrap_or(route);
    let mut r = route.trim_end_matches('/').split('/');
    let mut p = path.trim_end_matches('/').split('/');
    loop {
        match (r.next(), p.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a == "{}" || a == b => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::route_matches;

    #[test]
    fn the_handle_can_be_shared_across_tasks() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<super::FakeDiscord>();
    }

    #[test]
    fn route_templates() {
        assert!(route_matches(
            "/channels/{}/messages",
            "/channels/1/messages"
        ));
        assert!(route_matches(
            "/api/v10/channels/{}/messages",
            "/channels/1/messages"
        ));
        assert!(!route_matches(
            "/channels/{}/messages",
            "/channels/1/messages/2"
        ));
        assert!(route_matches(
            "/channels/{}/messages/{}/reactions/{}/@me",
            "/channels/1/messages/2/reactions/👍/@me"
        ));
        assert!(!route_matches("/channels/{}", "/users/1"));
    }
}
