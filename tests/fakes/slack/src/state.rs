//! The workspace: conversations and their messages, files, the Socket Mode
//! envelopes and connections, armed faults, and the record of calls.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

use crate::payloads;
use crate::{APP_ID, BOT_ID, BOT_USER_ID, Call, Fault, TEAM_ID};

/// What kind of conversation a channel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChannelKind {
    Public,
    Im,
}

pub(crate) struct Channel {
    pub(crate) name: String,
    pub(crate) kind: ChannelKind,
    /// For a DM: the person at the other end.
    pub(crate) user: Option<String>,
    pub(crate) bot_member: bool,
    /// Messages in `ts` order.
    pub(crate) messages: Vec<Value>,
}

pub(crate) struct File {
    pub(crate) name: String,
    pub(crate) title: String,
    pub(crate) mimetype: String,
    pub(crate) length: usize,
    pub(crate) bytes: Option<Vec<u8>>,
}

/// An envelope sent (or to be sent) over Socket Mode.
pub(crate) struct Envelope {
    pub(crate) id: String,
    pub(crate) kind: &'static str,
    pub(crate) payload: Value,
    pub(crate) acked: bool,
    pub(crate) attempts: u32,
}

/// What a connection's task sends.
pub(crate) enum Outgoing {
    Text(String),
    Close(u16, String, Duration),
    Abort,
}

pub(crate) struct State {
    pub(crate) app_token: String,
    pub(crate) bot_token: String,
    pub(crate) revoked: bool,
    pub(crate) web_addr: SocketAddr,
    pub(crate) socket_addr: SocketAddr,
    pub(crate) channels: BTreeMap<String, Channel>,
    pub(crate) users: BTreeMap<String, (String, String)>,
    pub(crate) files: BTreeMap<String, File>,
    clock: u64,
    counter: u64,
    /// Tickets handed out by `apps.connections.open` and not used yet.
    pub(crate) tickets: Vec<String>,
    pub(crate) connections: BTreeMap<u64, UnboundedSender<Outgoing>>,
    pub(crate) current: Option<u64>,
    pub(crate) connections_accepted: usize,
    pub(crate) envelopes: Vec<Envelope>,
    pub(crate) acks: Vec<String>,
    pub(crate) client_frames: Vec<String>,
    faults: Vec<(String, Fault, usize)>,
    pub(crate) calls: Vec<Call>,
}

impl State {
    pub(crate) fn new(
        app_token: &str,
        bot_token: &str,
        web_addr: SocketAddr,
        socket_addr: SocketAddr,
    ) -> State {
        State {
            app_token: app_token.into(),
            bot_token: bot_token.into(),
            revoked: false,
            web_addr,
            socket_addr,
            channels: BTreeMap::new(),
            users: BTreeMap::new(),
            files: BTreeMap::new(),
            clock: 1_733_300_000,
            counter: 0,
            tickets: Vec::new(),
            connections: BTreeMap::new(),
            current: None,
            connections_accepted: 0,
            envelopes: Vec::new(),
            acks: Vec::new(),
            client_frames: Vec::new(),
            faults: Vec::new(),
            calls: Vec::new(),
        }
    }

    /// A fresh id with `prefix` (`F`, `Ev`, an envelope's uuid-like id).
    pub(crate) fn fresh(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}{:08X}", self.counter)
    }

    /// A `client_msg_id`, as Slack's clients stamp people's messages.
    fn client_msg_id(&self) -> String {
        format!("{:08x}-72db-4feb-b2f3-{:012x}", self.counter, self.clock)
    }

    /// The next message timestamp, as Slack writes them (`"1733300001.000100"`).
    pub(crate) fn next_ts(&mut self) -> String {
        self.clock += 1;
        self.counter += 1;
        format!("{}.{:06}", self.clock, self.counter % 1_000_000)
    }

    pub(crate) fn add_channel(&mut self, id: &str, name: &str, kind: ChannelKind) {
        self.channels.insert(
            id.into(),
            Channel {
                name: name.into(),
                kind,
                user: None,
                bot_member: true,
                messages: Vec::new(),
            },
        );
    }

    pub(crate) fn remove_bot(&mut self, id: &str) {
        if let Some(c) = self.channels.get_mut(id) {
            c.bot_member = false;
        }
    }

    pub(crate) fn add_dm(&mut self, id: &str, user: &str) {
        self.add_channel(id, "", ChannelKind::Im);
        if let Some(c) = self.channels.get_mut(id) {
            c.user = Some(user.into());
        }
    }

    pub(crate) fn add_user(&mut self, id: &str, name: &str, real_name: &str) {
        self.users
            .insert(id.into(), (name.into(), real_name.into()));
    }

    fn channel_type(&self, channel: &str) -> &'static str {
        match self.channels.get(channel).map(|c| c.kind) {
            Some(ChannelKind::Im) => "im",
            _ => "channel",
        }
    }

    pub(crate) fn messages_in(&self, channel: &str) -> Vec<Value> {
        self.channels
            .get(channel)
            .map(|c| c.messages.clone())
            .unwrap_or_default()
    }

    pub(crate) fn message_mut(&mut self, channel: &str, ts: &str) -> Option<&mut Value> {
        self.channels
            .get_mut(channel)?
            .messages
            .iter_mut()
            .find(|m| m["ts"] == ts)
    }

    /// Stores `message` in `channel`, and in its parent's reply count when
    /// it is a thread reply.
    pub(crate) fn store(&mut self, channel: &str, message: Value) {
        if let Some(parent) = message["thread_ts"].as_str().map(str::to_owned)
            && parent != message["ts"]
            && let Some(p) = self.message_mut(channel, &parent)
        {
            p["thread_ts"] = json!(parent);
            let count = p["reply_count"].as_u64().unwrap_or(0) + 1;
            p["reply_count"] = json!(count);
        }
        if let Some(c) = self.channels.get_mut(channel) {
            c.messages.push(message);
        }
    }

    pub(crate) fn post_as_user(
        &mut self,
        channel: &str,
        user: &str,
        text: &str,
        thread_ts: Option<&str>,
    ) -> String {
        let ts = self.next_ts();
        let client_msg_id = self.client_msg_id();
        let mut message = json!({
            "client_msg_id": client_msg_id,
            "type": "message",
            "user": user,
            "text": text,
            "ts": ts,
            "team": TEAM_ID,
        });
        if let Some(parent) = thread_ts {
            message["thread_ts"] = json!(parent);
            let parent_user = self
                .message_mut(channel, parent)
                .and_then(|p| p["user"].as_str().map(str::to_owned));
            if let Some(parent_user) = parent_user {
                message["parent_user_id"] = json!(parent_user);
            }
        }
        self.store(channel, message.clone());
        self.emit_message(channel, message.clone());
        if text.contains(&format!("<@{BOT_USER_ID}>")) && self.channel_type(channel) != "im" {
            let mut mention = message;
            mention["type"] = json!("app_mention");
            mention["channel"] = json!(channel);
            mention["event_ts"] = json!(ts);
            self.push_event(mention);
        }
        ts
    }

    /// A `message` event for a message stored in `channel`.
    pub(crate) fn emit_message(&mut self, channel: &str, mut message: Value) {
        message["channel"] = json!(channel);
        message["channel_type"] = json!(self.channel_type(channel));
        message["event_ts"] = message["ts"].clone();
        self.push_event(message);
    }

    pub(crate) fn edit_as_user(&mut self, channel: &str, ts: &str, text: &str) {
        let edited_ts = self.next_ts();
        let Some(stored) = self.message_mut(channel, ts) else {
            return;
        };
        let previous = stored.clone();
        stored["text"] = json!(text);
        stored["edited"] = json!({"user": previous["user"], "ts": edited_ts});
        let message = stored.clone();
        let channel_type = self.channel_type(channel);
        self.push_event(json!({
            "type": "message",
            "subtype": "message_changed",
            "hidden": true,
            "channel": channel,
            "channel_type": channel_type,
            "ts": edited_ts,
            "event_ts": edited_ts,
            "message": message,
            "previous_message": previous,
        }));
    }

    pub(crate) fn react_as_user(&mut self, channel: &str, ts: &str, user: &str, name: &str) {
        let event_ts = self.next_ts();
        let item_user = self
            .message_mut(channel, ts)
            .and_then(|m| m["user"].as_str().map(str::to_owned));
        self.push_event(json!({
            "type": "reaction_added",
            "user": user,
            "reaction": name,
            "item_user": item_user,
            "item": {"type": "message", "channel": channel, "ts": ts},
            "event_ts": event_ts,
        }));
    }

    pub(crate) fn press_button(
        &mut self,
        channel: &str,
        ts: &str,
        user: &str,
        action_id: &str,
    ) -> Option<String> {
        let message = self.message_mut(channel, ts)?.clone();
        let (block_id, element) = payloads::find_button(&message, action_id)?;
        let trigger = self.fresh("T");
        let action_ts = self.next_ts();
        let name = self
            .users
            .get(user)
            .map(|(n, _)| n.clone())
            .unwrap_or_default();
        let payload = json!({
            "type": "block_actions",
            "user": {"id": user, "username": name, "name": name, "team_id": TEAM_ID},
            "api_app_id": APP_ID,
            "token": "verification-token-unused",
            "container": {
                "type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": false
            },
            "trigger_id": trigger,
            "team": {"id": TEAM_ID, "domain": "fake"},
            "channel": {"id": channel, "name": self.channels.get(channel).map(|c| c.name.clone())},
            "message": message,
            "response_url": format!("http://{}/_fake/response/{ts}", self.web_addr),
            "actions": [{
                "action_id": action_id,
                "block_id": block_id,
                "text": element["text"],
                "value": element["value"],
                "type": "button",
                "action_ts": action_ts,
            }],
        });
        Some(self.push_envelope("interactive", payload))
    }

    pub(crate) fn share_file(
        &mut self,
        channel: &str,
        user: &str,
        text: &str,
        name: &str,
        mimetype: &str,
        bytes: &[u8],
    ) -> (String, String) {
        let id = self.fresh("F");
        self.files.insert(
            id.clone(),
            File {
                name: name.into(),
                title: name.into(),
                mimetype: mimetype.into(),
                length: bytes.len(),
                bytes: Some(bytes.to_vec()),
            },
        );
        let ts = self.next_ts();
        let file = self.file_object(&id);
        let client_msg_id = self.client_msg_id();
        let message = json!({
            "client_msg_id": client_msg_id,
            "type": "message",
            "subtype": "file_share",
            "user": user,
            "text": text,
            "ts": ts,
            "files": [file],
            "upload": false,
            "display_as_bot": false,
        });
        self.store(channel, message.clone());
        self.emit_message(channel, message);
        (ts, id)
    }

    /// A file as the API describes it.
    pub(crate) fn file_object(&self, id: &str) -> Value {
        let Some(f) = self.files.get(id) else {
            return Value::Null;
        };
        let url = format!(
            "http://{}/files-pri/{TEAM_ID}-{id}/{}",
            self.web_addr, f.name
        );
        json!({
            "id": id,
            "name": f.name,
            "title": f.title,
            "mimetype": f.mimetype,
            "filetype": f.name.rsplit_once('.').map_or("binary", |(_, ext)| ext),
            "size": f.length,
            "url_private": url,
            "url_private_download": format!("{url}?download=1"),
            "mode": "hosted",
            "is_external": false,
        })
    }

    pub(crate) fn file_bytes(&self, id: &str) -> Option<Vec<u8>> {
        self.files.get(id)?.bytes.clone()
    }

    /// Wraps `event` as Slack's Events API does, and sends it.
    pub(crate) fn push_event(&mut self, event: Value) -> String {
        let event_id = self.fresh("Ev");
        let context = format!(
            "1-{}-{TEAM_ID}-{}",
            event["type"].as_str().unwrap_or(""),
            event["channel"]
                .as_str()
                .or(event["item"]["channel"].as_str())
                .unwrap_or("")
        );
        let payload = json!({
            "token": "verification-token-unused",
            "team_id": TEAM_ID,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": self.clock,
            "authorizations": [{
                "enterprise_id": null, "team_id": TEAM_ID, "user_id": BOT_USER_ID,
                "is_bot": true, "is_enterprise_install": false
            }],
            "is_ext_shared_channel": false,
            "event_context": context,
        });
        self.push_envelope("events_api", payload)
    }

    fn push_envelope(&mut self, kind: &'static str, payload: Value) -> String {
        let id = format!(
            "{:08x}-fa4e-4b1d-9c5e-{:012x}",
            self.counter + 1,
            self.clock
        );
        self.counter += 1;
        self.envelopes.push(Envelope {
            id: id.clone(),
            kind,
            payload,
            acked: false,
            attempts: 0,
        });
        let index = self.envelopes.len() - 1;
        self.deliver(index);
        id
    }

    /// Sends envelope `index` on the open connection, if there is one.
    fn deliver(&mut self, index: usize) {
        let Some(tx) = self.current.and_then(|c| self.connections.get(&c)) else {
            return;
        };
        let envelope = &mut self.envelopes[index];
        let mut frame = json!({
            "envelope_id": envelope.id,
            "payload": envelope.payload,
            "type": envelope.kind,
            "accepts_response_payload": false,
        });
        if envelope.kind == "events_api" {
            frame["retry_attempt"] = json!(envelope.attempts);
            frame["retry_reason"] = json!(if envelope.attempts == 0 {
                ""
            } else {
                "timeout"
            });
        }
        envelope.attempts += 1;
        let _ = tx.send(Outgoing::Text(frame.to_string()));
    }

    pub(crate) fn pending(&self) -> Vec<String> {
        self.envelopes
            .iter()
            .filter(|e| !e.acked)
            .map(|e| e.id.clone())
            .collect()
    }

    /// A Socket Mode connection opened with a valid ticket: hello first,
    /// then every envelope not yet acknowledged, again.
    pub(crate) fn open_connection(&mut self, id: u64, tx: UnboundedSender<Outgoing>) {
        self.connections.insert(id, tx.clone());
        self.current = Some(id);
        self.connections_accepted += 1;
        let hello = json!({
            "type": "hello",
            "num_connections": self.connections.len(),
            "debug_info": {"host": "fake-slack", "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": APP_ID},
        });
        let _ = tx.send(Outgoing::Text(hello.to_string()));
        let unacked: Vec<usize> = (0..self.envelopes.len())
            .filter(|&i| !self.envelopes[i].acked)
            .collect();
        for index in unacked {
            self.deliver(index);
        }
    }

    pub(crate) fn connection_ended(&mut self, id: u64) {
        self.connections.remove(&id);
        if self.current == Some(id) {
            self.current = self.connections.keys().next_back().copied();
        }
    }

    /// A text frame from a client: an acknowledgement, as a rule.
    pub(crate) fn on_client_text(&mut self, text: &str) {
        self.client_frames.push(text.to_owned());
        let Ok(frame) = serde_json::from_str::<Value>(text) else {
            return;
        };
        if let Some(id) = frame["envelope_id"].as_str() {
            self.acks.push(id.to_owned());
            if let Some(e) = self.envelopes.iter_mut().find(|e| e.id == id) {
                e.acked = true;
            }
        }
    }

    pub(crate) fn disconnect(&mut self, reason: &str, grace: Duration) {
        let Some(tx) = self.current.and_then(|c| self.connections.get(&c)) else {
            return;
        };
        let frame = json!({
            "type": "disconnect",
            "reason": reason,
            "debug_info": {"host": "fake-slack"},
        });
        let _ = tx.send(Outgoing::Text(frame.to_string()));
        let _ = tx.send(Outgoing::Close(1000, String::new(), grace));
    }

    pub(crate) fn drop_socket(&mut self) {
        if let Some(tx) = self.current.and_then(|c| self.connections.get(&c)) {
            let _ = tx.send(Outgoing::Abort);
        }
    }

    pub(crate) fn fail_next(&mut self, method: &str, fault: Fault, times: usize) {
        self.faults.push((method.into(), fault, times));
    }

    /// The fault armed for `method`, used up by one.
    pub(crate) fn take_fault(&mut self, method: &str) -> Option<Fault> {
        let at = self
            .faults
            .iter()
            .position(|(m, _, left)| m == method && *left > 0)?;
        let (_, fault, left) = &mut self.faults[at];
        *left -= 1;
        let fault = fault.clone();
        if self.faults[at].2 == 0 {
            self.faults.remove(at);
        }
        Some(fault)
    }

    /// A message the bot posts, as `chat.postMessage` and the upload flow
    /// store it.
    pub(crate) fn bot_message(&mut self, text: &str, blocks: Option<Value>) -> Value {
        let ts = self.next_ts();
        let mut message = json!({
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "text": text,
            "ts": ts,
            "team": TEAM_ID,
            "bot_profile": {
                "id": BOT_ID, "app_id": APP_ID, "name": crate::BOT_NAME, "deleted": false,
                "team_id": TEAM_ID, "updated": self.clock,
            },
        });
        if let Some(blocks) = blocks {
            message["blocks"] = blocks;
        }
        message
    }
}
