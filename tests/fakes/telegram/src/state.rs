//! The fake's mutable state, behind one mutex.

use std::collections::{HashMap, VecDeque};

use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::{Call, Fault};

/// A chat key: the chat id as the client wrote it (`111` or `@name`).
pub(crate) type ChatKey = String;

pub(crate) struct StoredFile {
    pub(crate) unique_id: String,
    pub(crate) path: String,
    pub(crate) bytes: Vec<u8>,
}

/// The getUpdates request currently held open.
pub(crate) struct Poller {
    pub(crate) generation: u64,
    /// Fired to answer it with 409 Conflict.
    pub(crate) abort: oneshot::Sender<()>,
}

pub(crate) struct State {
    pub(crate) updates: VecDeque<Value>,
    pub(crate) next_update_id: i64,
    pub(crate) allowed_updates: Option<Vec<String>>,
    pub(crate) poller: Option<Poller>,
    pub(crate) poll_generation: u64,
    pub(crate) calls: Vec<Call>,
    pub(crate) faults: HashMap<String, VecDeque<Fault>>,
    pub(crate) files: HashMap<String, StoredFile>,
    /// Chats seen in injected updates, by id.
    pub(crate) chats: HashMap<ChatKey, Value>,
    /// Messages seen in injected updates or sent by the bot.
    pub(crate) messages: HashMap<(ChatKey, i64), Value>,
    /// Keys of messages the bot sent, in order.
    pub(crate) sent_order: Vec<(ChatKey, i64)>,
    pub(crate) next_message_id: i64,
    pub(crate) next_file: u64,
    pub(crate) commands: Value,
}

impl State {
    pub(crate) fn new() -> State {
        State {
            updates: VecDeque::new(),
            next_update_id: 1,
            allowed_updates: None,
            poller: None,
            poll_generation: 0,
            calls: Vec::new(),
            faults: HashMap::new(),
            files: HashMap::new(),
            chats: HashMap::new(),
            messages: HashMap::new(),
            sent_order: Vec::new(),
            next_message_id: 1,
            next_file: 0,
            commands: json!([]),
        }
    }

    pub(crate) fn reset(&mut self) {
        let fresh = State::new();
        let State {
            next_update_id,
            poller,
            poll_generation,
            next_message_id,
            next_file,
            ..
        } = std::mem::replace(self, fresh);
        self.next_update_id = next_update_id;
        self.poller = poller;
        self.poll_generation = poll_generation;
        self.next_message_id = next_message_id;
        self.next_file = next_file;
    }

    pub(crate) fn push_update(&mut self, mut update: Value) -> i64 {
        let id = self.next_update_id;
        self.next_update_id += 1;
        if let Value::Object(map) = &mut update {
            map.insert("update_id".into(), Value::from(id));
            for kind in [
                "message",
                "edited_message",
                "channel_post",
                "edited_channel_post",
                "business_message",
            ] {
                if let Some(message) = map.get(kind) {
                    self.remember_message(message.clone());
                }
            }
            if let Some(message) = map.get("callback_query").and_then(|c| c.get("message")) {
                self.remember_message(message.clone());
            }
        }
        self.updates.push_back(update);
        id
    }

    /// Keeps a message (and its chat) so replies, edits and reactions can
    /// refer to it. Message ids of later bot messages stay above it.
    fn remember_message(&mut self, message: Value) {
        let (Some(id), Some(chat)) = (
            message.get("message_id").and_then(Value::as_i64),
            message.get("chat"),
        ) else {
            return;
        };
        let Some(chat_id) = chat.get("id").and_then(Value::as_i64) else {
            return;
        };
        let key = chat_id.to_string();
        self.chats.insert(key.clone(), chat.clone());
        if let Some(username) = chat.get("username").and_then(Value::as_str) {
            self.chats.insert(format!("@{username}"), chat.clone());
        }
        self.next_message_id = self.next_message_id.max(id + 1);
        self.messages.insert((key, id), message);
    }

    pub(crate) fn add_file(&mut self, file_id: &str, path: &str, bytes: Vec<u8>) {
        self.next_file += 1;
        self.files.insert(
            file_id.to_owned(),
            StoredFile {
                unique_id: format!("AQAD-fake-{}", self.next_file),
                path: path.to_owned(),
                bytes,
            },
        );
    }

    pub(crate) fn take_fault(&mut self, method: &str) -> Option<Fault> {
        let queue = self.faults.get_mut(&method.to_ascii_lowercase())?;
        queue.pop_front()
    }

    /// The chat object for a `chat_id` parameter: one seen in an injected
    /// update, or one made up from the id's shape.
    pub(crate) fn chat(&self, chat_id: &Value) -> Option<(ChatKey, Value)> {
        let key = match chat_id {
            Value::Number(n) => n.as_i64()?.to_string(),
            Value::String(s) if s.starts_with('@') => s.clone(),
            Value::String(s) => s.trim().parse::<i64>().ok()?.to_string(),
            _ => return None,
        };
        if let Some(chat) = self.chats.get(&key) {
            let id = chat.get("id").and_then(Value::as_i64)?;
            return Some((id.to_string(), chat.clone()));
        }
        if let Some(username) = key.strip_prefix('@') {
            // A public channel nobody has written from: made up.
            let chat = json!({"id": -1_009_999_999_999_i64, "title": username, "username": username, "type": "channel"});
            return Some(("-1009999999999".to_owned(), chat));
        }
        let id: i64 = key.parse().ok()?;
        let chat = if id > 0 {
            json!({"id": id, "first_name": format!("User {id}"), "type": "private"})
        } else if id <= -1_000_000_000_000 {
            json!({"id": id, "title": format!("Supergroup {id}"), "type": "supergroup"})
        } else {
            json!({"id": id, "title": format!("Group {id}"), "type": "group"})
        };
        Some((key, chat))
    }
}
