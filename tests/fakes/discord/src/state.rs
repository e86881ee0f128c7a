//! The fake's mutable state, behind one mutex: accounts and channels,
//! message history, stored files, recorded calls and armed faults, and the
//! gateway session with its current connection.
//!
//! REST handlers ([`crate::rest`]) and the gateway ([`crate::gateway`]) add
//! their own `impl State` blocks; this module holds the data and the storage
//! helpers both sides use.

use std::collections::HashMap;

use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

use crate::payloads;
use crate::{BOT_ID, Call, DEFAULT_HEARTBEAT_INTERVAL, Fault, GUILD_ID};

/// The first snowflake the fake hands out (messages, attachments).
const FIRST_ID: u64 = 1_100_000_000_000_000_001;
/// The first id of a DM channel opened through `POST /users/@me/channels`.
const FIRST_DM_ID: u64 = 4_100_000_000_000_000_001;

/// A fault waiting for matching calls.
pub(crate) struct ArmedFault {
    pub(crate) method: String,
    pub(crate) route: String,
    pub(crate) fault: Fault,
    pub(crate) remaining: usize,
}

/// A file served under `/attachments/`.
pub(crate) struct StoredFile {
    pub(crate) content_type: Option<String>,
    pub(crate) bytes: Vec<u8>,
}

/// An interaction the fake dispatched, for the callback route.
pub(crate) struct KnownInteraction {
    pub(crate) token: String,
    pub(crate) channel_id: Option<String>,
    /// The message a component interaction came from.
    pub(crate) message_id: Option<String>,
    pub(crate) acknowledged: bool,
}

/// A frame or command for a connection's task.
#[derive(Debug)]
pub(crate) enum Outgoing {
    Text(String),
    Binary(Vec<u8>),
    /// Send a close frame with this code and reason, then end.
    Close(u16, String),
    /// Reset the TCP stream, no close frame.
    Abort,
}

/// The gateway connection dispatches go to.
pub(crate) struct Connection {
    pub(crate) id: u64,
    pub(crate) tx: UnboundedSender<Outgoing>,
    /// Identified or resumed on this connection, and not since told to go
    /// away (op 7, op 9).
    pub(crate) authenticated: bool,
    /// Identified or resumed on this connection at some point (a second
    /// Identify is then 4005).
    pub(crate) ever_authenticated: bool,
}

impl Connection {
    pub(crate) fn send(&self, out: Outgoing) {
        // A closed receiver means the connection is going; nothing to do.
        let _ = self.tx.send(out);
    }
}

/// A gateway session: an id once READY went out, the sequence counter and
/// the replay log.
pub(crate) struct Session {
    pub(crate) id: Option<String>,
    /// The last sequence number assigned; READY takes 1.
    pub(crate) seq: u64,
    /// Dispatches with their sequence numbers, as sent (READY and RESUMED
    /// excluded).
    pub(crate) log: Vec<(u64, String)>,
}

impl Session {
    /// A session not started yet: dispatches queue from 2 on, after READY.
    pub(crate) fn unborn() -> Session {
        Session {
            id: None,
            seq: 1,
            log: Vec::new(),
        }
    }
}

pub(crate) struct State {
    pub(crate) token: String,
    pub(crate) api_base: String,
    pub(crate) gateway_url: String,
    pub(crate) heartbeat_interval: u64,
    pub(crate) privileged_allowed: bool,
    pub(crate) stop_acks: bool,

    /// Channel objects by id.
    pub(crate) channels: HashMap<String, Value>,
    /// DM channel id by recipient user id.
    pub(crate) dm_by_recipient: HashMap<String, String>,
    /// User objects seen (DM recipients, message authors), by id.
    pub(crate) users: HashMap<String, Value>,
    /// Stored history per channel, sorted by id (oldest first).
    pub(crate) history: HashMap<String, Vec<Value>>,
    /// Messages known from dispatches but not in the history, by
    /// (channel, message).
    pub(crate) seen: HashMap<(String, String), Value>,
    /// Files by `channel/attachment/filename`.
    pub(crate) files: HashMap<String, StoredFile>,
    pub(crate) interactions: HashMap<String, KnownInteraction>,
    next_id: u64,
    next_dm: u64,

    pub(crate) calls: Vec<Call>,
    pub(crate) faults: Vec<ArmedFault>,

    pub(crate) session: Session,
    pub(crate) sessions_started: u64,
    pub(crate) connection: Option<Connection>,
    pub(crate) next_connection: u64,
    pub(crate) connections: usize,
    pub(crate) identifies: usize,
    pub(crate) resumes: usize,
    pub(crate) heartbeats: usize,
    pub(crate) last_identify: Option<Value>,
    pub(crate) last_resume: Option<Value>,
    pub(crate) client_frames: Vec<Value>,
    pub(crate) client_closes: Vec<Option<u16>>,
    pub(crate) gateway_queries: Vec<Option<String>>,
}

impl State {
    pub(crate) fn new(token: &str, api_base: String, gateway_url: String) -> State {
        let mut users = HashMap::new();
        users.insert(BOT_ID.to_owned(), payloads::bot_user());
        State {
            token: token.to_owned(),
            api_base,
            gateway_url,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            privileged_allowed: true,
            stop_acks: false,
            channels: HashMap::new(),
            dm_by_recipient: HashMap::new(),
            users,
            history: HashMap::new(),
            seen: HashMap::new(),
            files: HashMap::new(),
            interactions: HashMap::new(),
            next_id: FIRST_ID,
            next_dm: FIRST_DM_ID,
            calls: Vec::new(),
            faults: Vec::new(),
            session: Session::unborn(),
            sessions_started: 0,
            connection: None,
            next_connection: 0,
            connections: 0,
            identifies: 0,
            resumes: 0,
            heartbeats: 0,
            last_identify: None,
            last_resume: None,
            client_frames: Vec::new(),
            client_closes: Vec::new(),
            gateway_queries: Vec::new(),
        }
    }

    /// A fresh snowflake, above every message id seen so far.
    pub(crate) fn new_id(&mut self) -> String {
        let id = self.next_id;
        self.next_id += 1;
        id.to_string()
    }

    /// Keeps later ids above `id`, so history stays ordered by id.
    fn observe_id(&mut self, id: &str) {
        if let Ok(n) = id.parse::<u64>() {
            self.next_id = self.next_id.max(n.saturating_add(1));
        }
    }

    pub(crate) fn remember_user(&mut self, user: &Value) {
        if let Some(id) = id_of(user.get("id")) {
            self.users.entry(id).or_insert_with(|| user.clone());
        }
    }

    /// A user object: one seen before, or one made up for the id.
    pub(crate) fn user(&self, id: &str) -> Value {
        self.users
            .get(id)
            .cloned()
            .unwrap_or_else(|| payloads::user(id, &format!("user{id}")))
    }

    // ---- channels ----------------------------------------------------------

    pub(crate) fn add_dm(&mut self, channel_id: &str, recipient: Value) {
        self.remember_user(&recipient);
        if let Some(user_id) = id_of(recipient.get("id")) {
            self.dm_by_recipient.insert(user_id, channel_id.to_owned());
        }
        let channel = json!({
            "id": channel_id,
            "type": 1,
            "last_message_id": null,
            "flags": 0,
            "recipients": [recipient],
        });
        self.channels.insert(channel_id.to_owned(), channel);
    }

    pub(crate) fn add_guild_channel(&mut self, channel_id: &str, name: &str) {
        let channel = json!({
            "id": channel_id,
            "type": 0,
            "guild_id": GUILD_ID,
            "name": name,
            "position": self.channels.len(),
            "permission_overwrites": [],
            "parent_id": null,
            "topic": null,
            "nsfw": false,
            "rate_limit_per_user": 0,
            "last_message_id": null,
            "flags": 0,
        });
        self.channels.insert(channel_id.to_owned(), channel);
    }

    pub(crate) fn add_thread(&mut self, channel_id: &str, parent_id: &str, name: &str) {
        let channel = json!({
            "id": channel_id,
            "type": 11,
            "guild_id": GUILD_ID,
            "parent_id": parent_id,
            "owner_id": BOT_ID,
            "name": name,
            "last_message_id": null,
            "rate_limit_per_user": 0,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": false,
                "auto_archive_duration": 1440,
                "archive_timestamp": payloads::now_timestamp(),
                "locked": false,
                "create_timestamp": payloads::now_timestamp(),
            },
        });
        self.channels.insert(channel_id.to_owned(), channel);
    }

    /// Opens (or finds) the DM channel with a user.
    pub(crate) fn open_dm(&mut self, user_id: &str) -> Value {
        if let Some(channel) = self
            .dm_by_recipient
            .get(user_id)
            .and_then(|id| self.channels.get(id))
        {
            return channel.clone();
        }
        let channel_id = loop {
            let id = self.next_dm.to_string();
            self.next_dm += 1;
            if !self.channels.contains_key(&id) {
                break id;
            }
        };
        let recipient = self.user(user_id);
        self.add_dm(&channel_id, recipient);
        self.channels[&channel_id].clone()
    }

    /// Makes up a channel a message says it was sent in, if unknown: in the
    /// guild when the message has a `guild_id`, else a DM with its author.
    pub(crate) fn learn_channel(&mut self, message: &Value) {
        let Some(channel_id) = id_of(message.get("channel_id")) else {
            return;
        };
        if self.channels.contains_key(&channel_id) {
            return;
        }
        let guild = message.get("guild_id").is_some_and(|g| !g.is_null());
        let kind = message.get("channel_type").and_then(Value::as_u64);
        if guild || kind.is_some_and(|k| k != 1 && k != 3) {
            self.add_guild_channel(&channel_id, &format!("channel-{channel_id}"));
            if let (Some(kind), Some(channel)) = (kind, self.channels.get_mut(&channel_id)) {
                channel["type"] = Value::from(kind);
            }
        } else if let Some(author) = message.get("author") {
            self.add_dm(&channel_id, author.clone());
        }
    }

    /// Whether a channel is in the guild (text channel or thread) rather than
    /// a DM.
    pub(crate) fn is_guild_channel(&self, channel_id: &str) -> bool {
        self.channels
            .get(channel_id)
            .is_some_and(|c| c.get("guild_id").is_some_and(|g| !g.is_null()))
    }

    pub(crate) fn channel_type(&self, channel_id: &str) -> u64 {
        self.channels
            .get(channel_id)
            .and_then(|c| c.get("type"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }

    pub(crate) fn set_last_message(&mut self, channel_id: &str, message_id: &str) {
        if let Some(channel) = self.channels.get_mut(channel_id) {
            channel["last_message_id"] = Value::from(message_id);
            if let Some(n) = channel.get("message_count").and_then(Value::as_u64) {
                channel["message_count"] = Value::from(n + 1);
                channel["total_message_sent"] = Value::from(n + 1);
            }
        }
    }

    // ---- messages and files ------------------------------------------------

    pub(crate) fn add_message(&mut self, channel_id: &str, mut message: Value) {
        if !message.is_object() {
            return;
        }
        message["channel_id"] = Value::from(channel_id);
        self.learn_channel(&message);
        if let Some(author) = message.get("author") {
            let author = author.clone();
            self.remember_user(&author);
        }
        let id = id_of(message.get("id")).unwrap_or_else(|| self.new_id());
        message["id"] = Value::from(id.as_str());
        self.observe_id(&id);
        self.seen.remove(&(channel_id.to_owned(), id.clone()));
        self.set_last_message(channel_id, &id);
        let history = self.history.entry(channel_id.to_owned()).or_default();
        let key = snowflake(&id);
        let at = history.partition_point(|m| snowflake_of(m) <= key);
        history.insert(at, message);
    }

    /// Puts a message Discord announced (MESSAGE_CREATE) into its channel's
    /// history, as it now is in the channel, unless it is there already.
    pub(crate) fn record_message(&mut self, message: &Value) {
        let (Some(channel_id), Some(id)) =
            (id_of(message.get("channel_id")), id_of(message.get("id")))
        else {
            return;
        };
        // Before the guild fields go: they say which kind of channel it is.
        self.learn_channel(message);
        if self.history_position(&channel_id, &id).is_some() {
            return;
        }
        let mut stored = message.clone();
        strip_gateway_fields(&mut stored);
        self.add_message(&channel_id, stored);
    }

    /// Counts a reaction someone added or removed on a known message.
    pub(crate) fn count_reaction(&mut self, d: &Value, added: bool) {
        let (Some(channel_id), Some(message_id), Some(emoji)) = (
            id_of(d.get("channel_id")),
            id_of(d.get("message_id")),
            d.get("emoji").filter(|e| e.is_object()),
        ) else {
            return;
        };
        let by_bot = id_of(d.get("user_id")).as_deref() == Some(BOT_ID);
        let Some(message) = self.find_message_mut(&channel_id, &message_id) else {
            return;
        };
        if !message.get("reactions").is_some_and(Value::is_array) {
            message["reactions"] = json!([]);
        }
        let reactions = message["reactions"].as_array_mut().expect("array");
        let at = reactions
            .iter()
            .position(|r| same_emoji(&r["emoji"], emoji));
        match (at, added) {
            (Some(at), true) => {
                let r = &mut reactions[at];
                r["count"] = Value::from(r["count"].as_u64().unwrap_or(0) + 1);
                let normal = r["count_details"]["normal"].as_u64().unwrap_or(0) + 1;
                r["count_details"]["normal"] = Value::from(normal);
                if by_bot {
                    r["me"] = Value::Bool(true);
                }
            }
            (None, true) => reactions.push(json!({
                "count": 1,
                "count_details": {"burst": 0, "normal": 1},
                "me": by_bot,
                "me_burst": false,
                "emoji": emoji,
                "burst_colors": [],
            })),
            (Some(at), false) => {
                let count = reactions[at]["count"]
                    .as_u64()
                    .unwrap_or(1)
                    .saturating_sub(1);
                if count == 0 {
                    reactions.remove(at);
                } else {
                    let r = &mut reactions[at];
                    r["count"] = Value::from(count);
                    let normal = r["count_details"]["normal"].as_u64().unwrap_or(1);
                    r["count_details"]["normal"] = Value::from(normal.saturating_sub(1));
                    if by_bot {
                        r["me"] = Value::Bool(false);
                    }
                }
            }
            (None, false) => {}
        }
    }

    /// Remembers a message the fake learnt of without it being announced
    /// (the message of an interaction, an update of an unknown message) so
    /// the client can reply to it, react to it, or edit it (if it is the
    /// bot's). A message already in the history is left as stored there.
    pub(crate) fn remember_message(&mut self, message: &Value) {
        let (Some(channel_id), Some(id)) =
            (id_of(message.get("channel_id")), id_of(message.get("id")))
        else {
            return;
        };
        self.learn_channel(message);
        if let Some(author) = message.get("author") {
            self.remember_user(author);
        }
        self.observe_id(&id);
        if self.history_position(&channel_id, &id).is_some() {
            return;
        }
        let mut stored = message.clone();
        strip_gateway_fields(&mut stored);
        self.seen.insert((channel_id, id), stored);
    }

    fn history_position(&self, channel_id: &str, message_id: &str) -> Option<usize> {
        self.history.get(channel_id)?.iter().position(|m| {
            m.get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| id == message_id)
        })
    }

    pub(crate) fn find_message(&self, channel_id: &str, message_id: &str) -> Option<&Value> {
        if let Some(at) = self.history_position(channel_id, message_id) {
            return self.history.get(channel_id).map(|h| &h[at]);
        }
        self.seen
            .get(&(channel_id.to_owned(), message_id.to_owned()))
    }

    pub(crate) fn find_message_mut(
        &mut self,
        channel_id: &str,
        message_id: &str,
    ) -> Option<&mut Value> {
        if let Some(at) = self.history_position(channel_id, message_id) {
            return self.history.get_mut(channel_id).map(|h| &mut h[at]);
        }
        self.seen
            .get_mut(&(channel_id.to_owned(), message_id.to_owned()))
    }

    /// Takes a message out of the history or the dispatched ones.
    pub(crate) fn remove_message(&mut self, channel_id: &str, message_id: &str) -> Option<Value> {
        if let Some(at) = self.history_position(channel_id, message_id) {
            return self.history.get_mut(channel_id).map(|h| h.remove(at));
        }
        self.seen
            .remove(&(channel_id.to_owned(), message_id.to_owned()))
    }

    /// Stores a file and returns its attachment object.
    pub(crate) fn add_attachment(
        &mut self,
        channel_id: &str,
        filename: &str,
        content_type: Option<&str>,
        description: Option<&str>,
        bytes: Vec<u8>,
    ) -> Value {
        let id = self.new_id();
        let encoded = percent_encoding::utf8_percent_encode(filename, FILENAME).to_string();
        let url = format!("{}/attachments/{channel_id}/{id}/{encoded}", self.api_base);
        let mut attachment = json!({
            "id": id,
            "filename": filename,
            "size": bytes.len(),
            "url": url,
            "proxy_url": url,
        });
        if let Some(ct) = content_type {
            attachment["content_type"] = Value::from(ct);
        }
        if let Some(d) = description {
            attachment["description"] = Value::from(d);
        }
        self.files.insert(
            format!("{channel_id}/{id}/{filename}"),
            StoredFile {
                content_type: content_type.map(str::to_owned),
                bytes,
            },
        );
        attachment
    }

    // ---- faults ------------------------------------------------------------

    /// The fault armed for this call, if any, counted down.
    pub(crate) fn take_fault(&mut self, method: &str, path: &str) -> Option<Fault> {
        let at = self.faults.iter().position(|f| {
            f.method.eq_ignore_ascii_case(method) && crate::route_matches(&f.route, path)
        })?;
        let armed = &mut self.faults[at];
        let fault = armed.fault;
        armed.remaining -= 1;
        if armed.remaining == 0 {
            self.faults.remove(at);
        }
        Some(fault)
    }
}

/// Characters kept as-is in an attachment URL's file name.
const FILENAME: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A snowflake as a string, from a JSON string or number.
pub(crate) fn id_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A snowflake's numeric value, for ordering (0 if it is not one).
pub(crate) fn snowflake(id: &str) -> u64 {
    id.parse().unwrap_or(0)
}

pub(crate) fn snowflake_of(message: &Value) -> u64 {
    id_of(message.get("id")).map_or(0, |id| snowflake(&id))
}

/// Whether two emoji objects are the same emoji (custom ones by id).
pub(crate) fn same_emoji(a: &Value, b: &Value) -> bool {
    match (id_of(a.get("id")), id_of(b.get("id"))) {
        (Some(x), Some(y)) => x == y,
        (None, None) => a.get("name") == b.get("name"),
        _ => false,
    }
}

/// Removes what only gateway copies of a message carry; REST messages have
/// neither `guild_id` nor `member`.
pub(crate) fn strip_gateway_fields(message: &mut Value) {
    if let Some(map) = message.as_object_mut() {
        map.remove("guild_id");
        map.remove("member");
        map.remove("channel_type");
    }
}
