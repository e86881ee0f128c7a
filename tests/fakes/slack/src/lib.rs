//! A fake Slack for tests: the Web API methods a chat bot uses and Socket
//! Mode, on loopback.
//!
//! [`FakeSlack::start`] binds two ports on `127.0.0.1`. One serves the Web
//! API under `/api/METHOD` over plain HTTP/1.1, with file uploads (the
//! external-upload flow) and downloads (`url_private_download`) beside it,
//! and the control endpoints under `/_fake/` that a test written in another
//! language drives the fake with. The other is the Socket Mode websocket:
//! `apps.connections.open` hands out a one-time `ws://` URL to it.
//!
//! Two tokens, as a real app has: the app-level token (`xapp-…`) opens
//! Socket Mode connections and nothing else; the bot token (`xoxb-…`) calls
//! every other method and downloads files. The wrong one gets
//! `not_allowed_token_type`, an unknown one `invalid_auth`, as Slack answers.
//!
//! Tests act as people in the workspace ([`FakeSlack::post_as_user`],
//! [`FakeSlack::edit_as_user`], [`FakeSlack::react_as_user`],
//! [`FakeSlack::press_button`], [`FakeSlack::share_file`]): each changes the
//! workspace and sends the events Slack would, in envelopes that stay
//! pending until the client acknowledges them and are delivered again, with
//! `retry_attempt` counted up, to the next connection if it does not. Faults
//! are armed per method ([`FakeSlack::fail_next`]); the socket can be sent
//! `disconnect` messages or dropped.
//!
//! Everything lives behind one mutex, so a Web API call that causes an event
//! (a bot's own message comes back as a `message` event) is ordered with the
//! events a test causes as Slack would order them.

mod body;
mod payloads;
mod socket;
mod state;
mod web;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use payloads::button_blocks;
use state::State;

/// The workspace's id.
pub const TEAM_ID: &str = "T0FAKE0001";
/// The app's id.
pub const APP_ID: &str = "A0FAKE0001";
/// The bot user's id: what `<@…>` mentions of the bot hold.
pub const BOT_USER_ID: &str = "U0BOT00001";
/// The bot's `bot_id`, carried by the messages it posts.
pub const BOT_ID: &str = "B0BOT00001";
/// The bot user's name.
pub const BOT_NAME: &str = "airlockbot";

/// One Web API call the client made, in arrival order.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The method (`chat.postMessage`), or for other routes the path
    /// (`/upload/F…`, `/files-pri/…`).
    pub method: String,
    /// The bearer token the call carried, if any.
    pub token: Option<String>,
    /// The arguments, from the query, a form body or a JSON body, merged.
    pub args: serde_json::Map<String, Value>,
    /// The fault the fake answered with, if one was armed.
    pub fault: Option<Fault>,
}

impl Call {
    /// An argument as text (a JSON string as is, anything else as JSON).
    pub fn arg(&self, name: &str) -> Option<String> {
        self.args.get(name).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
}

/// A failure to answer the next matching Web API call(s) with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 429 with `Retry-After: secs` and `{"ok":false,"error":"ratelimited"}`.
    RateLimited {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// HTTP 200 with `{"ok":false,"error":CODE}` (`invalid_auth`,
    /// `channel_not_found`, `internal_error`, …).
    Error(String),
    /// HTTP 200 with `{"ok":false,"error":"missing_scope","needed":…,"provided":…}`.
    MissingScope {
        /// The scope the method needs.
        needed: String,
        /// The scopes the token has, comma-separated.
        provided: String,
    },
}

/// A running fake. Dropping it stops both listeners and every connection.
pub struct FakeSlack {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

/// What the listeners and the handle share.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) web_addr: SocketAddr,
    pub(crate) socket_addr: SocketAddr,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl FakeSlack {
    /// Starts a fake that accepts `app_token` (`xapp-…`) for Socket Mode and
    /// `bot_token` (`xoxb-…`) for the rest, on two free ports of
    /// `127.0.0.1`. Must be called inside a tokio runtime.
    pub async fn start(app_token: &str, bot_token: &str) -> FakeSlack {
        let web = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind 127.0.0.1:0 for the Web API");
        let socket = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind 127.0.0.1:0 for Socket Mode");
        let web_addr = web.local_addr().expect("Web API address");
        let socket_addr = socket.local_addr().expect("Socket Mode address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(app_token, bot_token, web_addr, socket_addr)),
            web_addr,
            socket_addr,
        });
        let tasks = vec![
            tokio::spawn(web::accept_loop(web, shared.clone())),
            tokio::spawn(socket::accept_loop(socket, shared.clone())),
        ];
        FakeSlack { shared, tasks }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash. The Web API is under
    /// `/api/` on it: slack_sdk's `WebClient(base_url=f"{base}/api/")`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.shared.web_addr)
    }

    /// `ws://127.0.0.1:PORT`: where the URLs `apps.connections.open` hands
    /// out point.
    pub fn socket_base(&self) -> String {
        format!("ws://{}", self.shared.socket_addr)
    }

    /// Adds a public channel the bot is a member of.
    pub fn add_channel(&self, id: &str, name: &str) {
        self.shared
            .lock()
            .add_channel(id, name, state::ChannelKind::Public);
    }

    /// Adds a public channel the bot is not in (`not_in_channel` to post).
    pub fn add_channel_without_bot(&self, id: &str, name: &str) {
        let mut state = self.shared.lock();
        state.add_channel(id, name, state::ChannelKind::Public);
        state.remove_bot(id);
    }

    /// Adds a direct-message conversation between `user` and the bot.
    pub fn add_dm(&self, id: &str, user: &str) {
        self.shared.lock().add_dm(id, user);
    }

    /// Adds a person (`users.info` answers for them).
    pub fn add_user(&self, id: &str, name: &str, real_name: &str) {
        self.shared.lock().add_user(id, name, real_name);
    }

    /// `user` posts `text` in `channel` (in `thread_ts`'s thread when
    /// given): kept in its history, and sent as a `message` event, plus an
    /// `app_mention` event when it mentions the bot outside a DM. The
    /// message's `ts`.
    pub fn post_as_user(
        &self,
        channel: &str,
        user: &str,
        text: &str,
        thread_ts: Option<&str>,
    ) -> String {
        self.shared
            .lock()
            .post_as_user(channel, user, text, thread_ts)
    }

    /// `user` edits their message `ts`: a `message_changed` event.
    pub fn edit_as_user(&self, channel: &str, ts: &str, text: &str) {
        self.shared.lock().edit_as_user(channel, ts, text);
    }

    /// `user` adds reaction `name` (no colons) to message `ts`:
    /// `reaction_added`.
    pub fn react_as_user(&self, channel: &str, ts: &str, user: &str, name: &str) {
        self.shared.lock().react_as_user(channel, ts, user, name);
    }

    /// `user` presses the button `action_id` of the bot's message `ts`: an
    /// `interactive` envelope with a `block_actions` payload carrying the
    /// button's `value`. `None` when the message has no such button.
    pub fn press_button(
        &self,
        channel: &str,
        ts: &str,
        user: &str,
        action_id: &str,
    ) -> Option<String> {
        self.shared
            .lock()
            .press_button(channel, ts, user, action_id)
    }

    /// `user` shares a file in `channel` with `text`: a `message` event of
    /// subtype `file_share` listing it, downloadable with the bot token.
    /// The message's `ts` and the file's id.
    pub fn share_file(
        &self,
        channel: &str,
        user: &str,
        text: &str,
        name: &str,
        mimetype: &str,
        bytes: &[u8],
    ) -> (String, String) {
        self.shared
            .lock()
            .share_file(channel, user, text, name, mimetype, bytes)
    }

    /// Sends `event` (the inner event object) in an `events_api` envelope;
    /// its envelope id.
    pub fn push_event(&self, event: Value) -> String {
        self.shared.lock().push_event(event)
    }

    /// A channel's messages, oldest first.
    pub fn messages(&self, channel: &str) -> Vec<Value> {
        self.shared.lock().messages_in(channel)
    }

    /// A stored file's bytes, once uploaded.
    pub fn file_bytes(&self, id: &str) -> Option<Vec<u8>> {
        self.shared.lock().file_bytes(id)
    }

    /// Every Web API call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// The calls of one method.
    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method)
            .collect()
    }

    /// Answers the next `times` calls of `method` with `fault`.
    pub fn fail_next(&self, method: &str, fault: Fault, times: usize) {
        self.shared.lock().fail_next(method, fault, times);
    }

    /// Revokes both tokens: every call gets `invalid_auth` (`token_revoked`
    /// is Slack's word only for tokens it knows it revoked).
    pub fn revoke_tokens(&self) {
        self.shared.lock().revoked = true;
    }

    /// Sends `{"type":"disconnect","reason":REASON}` on the open connection
    /// and closes it after `grace`, as Slack does before it recycles one
    /// (`refresh_requested`, `warning`, `link_disabled`).
    pub fn disconnect(&self, reason: &str, grace: Duration) {
        self.shared.lock().disconnect(reason, grace);
    }

    /// Drops the open connection without a close frame.
    pub fn drop_socket(&self) {
        self.shared.lock().drop_socket();
    }

    /// Envelope ids the client acknowledged, in order (repeats included).
    pub fn acks(&self) -> Vec<String> {
        self.shared.lock().acks.clone()
    }

    /// Envelope ids sent but not yet acknowledged.
    pub fn pending(&self) -> Vec<String> {
        self.shared.lock().pending()
    }

    /// Socket Mode connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.lock().connections_accepted
    }

    /// Whether a Socket Mode connection is open now.
    pub fn connected(&self) -> bool {
        self.shared.lock().current.is_some()
    }

    /// Every text frame clients sent, in order.
    pub fn client_frames(&self) -> Vec<String> {
        self.shared.lock().client_frames.clone()
    }
}
