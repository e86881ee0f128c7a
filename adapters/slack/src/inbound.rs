//! Socket Mode frames into events: `hello`, `disconnect`, and envelopes
//! (`events_api`, `interactive`), free of I/O.
//!
//! - `message` events (in DMs, channels, private channels and group DMs)
//!   become messages: a thread reply names its thread's first message as
//!   `reply_to`; `message_changed` is an edit (link unfurls, which change
//!   nothing of the text, are not); `file_share` lists its files as
//!   attachments. The bot's own messages, and subtypes that are not
//!   somebody writing (joins, deletions, …), are no events.
//! - `app_mention` is the same message as its `message` event (the host
//!   keeps one of the two), marked as addressing the bot.
//! - `reaction_added` and `reaction_removed` are reactions, emoji as
//!   `:name:`.
//! - `block_actions` presses of the bot's buttons are button presses, with
//!   the button's `value`.
//!
//! A message addresses the bot in a DM, when it mentions `<@BOT>`, when it
//! replies in a thread the bot started or wrote in (as far as this instance
//! has seen), or when it matches the operator's pattern.

use std::collections::{HashMap, VecDeque};

use airlock_guest::types::{
    Attachment, AttachmentKind, ButtonPress, Chat, ChatKind, InboundEvent, InboundMessage,
    Reaction, Sender,
};
use regex_lite::Regex;
use serde_json::Value;

/// Longest message text kept (the host caps content further).
const MAX_TEXT: usize = 16_384;
/// Messages whose thread is remembered.
const MAX_REMEMBERED: usize = 4096;

/// One frame from Slack.
#[derive(Debug)]
pub enum Frame {
    /// The connection is ready.
    Hello,
    /// Slack is about to close the connection: open another.
    Disconnect {
        /// `refresh_requested`, `warning`, `link_disabled`, …
        reason: String,
    },
    /// An envelope, to acknowledge by its id once its events are stored.
    Envelope {
        /// `envelope_id`.
        id: String,
        /// What it carries for the session (often nothing).
        events: Vec<InboundEvent>,
    },
    /// Not JSON, or a type this adapter does not know: said in the log.
    Unknown(String),
}

/// Which thread messages belong to, as far as this instance has seen:
/// a reply must name its thread's first message to stay in the thread.
#[derive(Debug, Default)]
pub struct Threads {
    root: HashMap<String, (String, String)>,
    order: VecDeque<String>,
    /// Threads the bot has written in (`channel/root`), newest last.
    joined: VecDeque<String>,
}

impl Threads {
    /// Remembers that message `ts` of `channel` is in the thread of `root`.
    pub fn remember(&mut self, channel: &str, ts: &str, root: &str) {
        let key = format!("{channel}/{ts}");
        if self
            .root
            .insert(key.clone(), (channel.to_owned(), root.to_owned()))
            .is_none()
        {
            self.order.push_back(key);
            if self.order.len() > MAX_REMEMBERED
                && let Some(old) = self.order.pop_front()
            {
                self.root.remove(&old);
            }
        }
    }

    /// Notes that the bot wrote in the thread of `root` in `channel`: the
    /// replies there address it.
    pub fn joined(&mut self, channel: &str, root: &str) {
        let key = format!("{channel}/{root}");
        if !self.joined.contains(&key) {
            self.joined.push_back(key);
            if self.joined.len() > MAX_REMEMBERED {
                self.joined.pop_front();
            }
        }
    }

    /// Whether the bot wrote in the thread of `root` in `channel`.
    pub fn has_joined(&self, channel: &str, root: &str) -> bool {
        self.joined.contains(&format!("{channel}/{root}"))
    }

    /// The thread to reply in when replying to `ts` of `channel`: its
    /// thread's first message, or `ts` itself (which starts a thread).
    pub fn root_of(&self, channel: &str, ts: &str) -> String {
        self.root
            .get(&format!("{channel}/{ts}"))
            .map_or_else(|| ts.to_owned(), |(_, root)| root.clone())
    }
}

/// What decoding needs to know.
pub struct Context<'a> {
    /// The bot's user id (`U…`), from `auth.test`.
    pub bot_user: &'a str,
    /// The operator's mention pattern.
    pub pattern: Option<&'a Regex>,
    /// Threads seen so far.
    pub threads: &'a mut Threads,
}

/// Decodes one text frame.
pub fn decode_frame(text: &str, ctx: &mut Context<'_>) -> Frame {
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        return Frame::Unknown(format!("a frame that is not JSON ({} bytes)", text.len()));
    };
    match frame["type"].as_str() {
        Some("hello") => return Frame::Hello,
        Some("disconnect") => {
            return Frame::Disconnect {
                reason: str_of(&frame["reason"]).unwrap_or("unknown").to_owned(),
            };
        }
        _ => {}
    }
    let Some(id) = str_of(&frame["envelope_id"]) else {
        return Frame::Unknown(format!(
            "a frame of type {:?} without an envelope id",
            short(frame["type"].as_str().unwrap_or(""))
        ));
    };
    let payload = &frame["payload"];
    let events = match frame["type"].as_str() {
        Some("events_api") => event(&payload["event"], ctx).into_iter().collect(),
        Some("interactive") => button_presses(payload),
        // Slash commands and the rest: acknowledged, nothing for the session.
        _ => Vec::new(),
    };
    Frame::Envelope {
        id: id.to_owned(),
        events,
    }
}

fn str_of(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| !s.is_empty())
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

/// The kind of conversation, from the event's `channel_type` or else the
/// id's first letter (`D` direct, `G` private or group DM, `C` channel).
fn chat_kind(channel_type: Option<&str>, channel: &str) -> ChatKind {
    match channel_type {
        Some("im") => ChatKind::Direct,
        Some("mpim" | "group") => ChatKind::Group,
        Some("channel") => ChatKind::Channel,
        _ => match channel.chars().next() {
            Some('D') => ChatKind::Direct,
            Some('G') => ChatKind::Group,
            _ => ChatKind::Channel,
        },
    }
}

fn chat(channel: &str, kind: ChatKind) -> Chat {
    Chat {
        id: channel.to_owned(),
        kind,
        title: None,
        parent_id: None,
    }
}

fn person(id: &str, event: &Value) -> Sender {
    let profile = &event["user_profile"];
    let display = str_of(&profile["display_name"])
        .or_else(|| str_of(&profile["real_name"]))
        .map(str::to_owned);
    Sender {
        id: id.to_owned(),
        handle: str_of(&profile["name"]).map(str::to_owned),
        display_name: display,
        is_bot: event["bot_id"].is_string(),
    }
}

/// Milliseconds of a Slack timestamp (`"1610241741.000200"`).
pub fn ts_ms(ts: &str) -> u64 {
    let (secs, micros) = ts.split_once('.').unwrap_or((ts, "0"));
    let secs: u64 = secs.parse().unwrap_or(0);
    let micros: u64 = format!("{micros:0<6}")[..6].parse().unwrap_or(0);
    secs.saturating_mul(1000).saturating_add(micros / 1000)
}

fn event(event: &Value, ctx: &mut Context<'_>) -> Option<InboundEvent> {
    match event["type"].as_str()? {
        "message" => message_event(event, ctx),
        "app_mention" => message(event, str_of(&event["channel"])?, None, false, true, ctx),
        kind @ ("reaction_added" | "reaction_removed") => {
            let item = &event["item"];
            let channel = str_of(&item["channel"])?;
            let user = str_of(&event["user"])?;
            if user == ctx.bot_user || item["type"] != "message" {
                return None;
            }
            Some(InboundEvent::Reaction(Reaction {
                chat: chat(channel, chat_kind(None, channel)),
                sender: person(user, event),
                message_id: str_of(&item["ts"])?.to_owned(),
                emoji: format!(":{}:", short(str_of(&event["reaction"])?)),
                added: kind == "reaction_added",
            }))
        }
        _ => None,
    }
}

fn message_event(event: &Value, ctx: &mut Context<'_>) -> Option<InboundEvent> {
    let channel = str_of(&event["channel"])?;
    let kind = str_of(&event["channel_type"]);
    match event["subtype"].as_str() {
        None | Some("thread_broadcast" | "file_share") => {
            message(event, channel, kind, false, false, ctx)
        }
        Some("message_changed") => {
            let now = &event["message"];
            // An unfurl or a reply count changes the message, not its text.
            if now["text"] == event["previous_message"]["text"] {
                return None;
            }
            message(now, channel, kind, true, false, ctx)
        }
        _ => None,
    }
}

fn message(
    m: &Value,
    channel: &str,
    channel_type: Option<&str>,
    edited: bool,
    mentioned: bool,
    ctx: &mut Context<'_>,
) -> Option<InboundEvent> {
    let user = str_of(&m["user"])?;
    if user == ctx.bot_user {
        return None;
    }
    let ts = str_of(&m["ts"])?;
    let text: String = m["text"]
        .as_str()
        .unwrap_or("")
        .chars()
        .take(MAX_TEXT)
        .collect();
    let thread = str_of(&m["thread_ts"]).filter(|t| *t != ts);
    ctx.threads.remember(channel, ts, thread.unwrap_or(ts));
    let kind = chat_kind(channel_type, channel);
    let mentions_bot = mentioned
        || kind == ChatKind::Direct
        || text.contains(&format!("<@{}>", ctx.bot_user))
        || thread.is_some_and(|root| {
            m["parent_user_id"].as_str() == Some(ctx.bot_user)
                || ctx.threads.has_joined(channel, root)
        })
        || ctx.pattern.is_some_and(|p| p.is_match(&text));
    let attachments = m["files"]
        .as_array()
        .map(|files| files.iter().filter_map(attachment).collect())
        .unwrap_or_default();
    Some(InboundEvent::Message(InboundMessage {
        chat: chat(channel, kind),
        sender: person(user, m),
        message_id: ts.to_owned(),
        text,
        ts_ms: ts_ms(ts),
        reply_to: thread.map(str::to_owned),
        mentions_bot,
        attachments,
        edited,
    }))
}

fn attachment(file: &Value) -> Option<Attachment> {
    let mime = str_of(&file["mimetype"]);
    let kind = match mime.and_then(|m| m.split('/').next()) {
        Some("image") => AttachmentKind::Photo,
        Some("video") => AttachmentKind::Video,
        Some("audio") => AttachmentKind::Audio,
        _ => AttachmentKind::Document,
    };
    Some(Attachment {
        id: str_of(&file["id"])?.to_owned(),
        kind,
        name: str_of(&file["name"]).map(short),
        mime: mime.map(short),
        size: file["size"].as_u64(),
    })
}

fn button_presses(payload: &Value) -> Vec<InboundEvent> {
    if payload["type"] != "block_actions" {
        return Vec::new();
    }
    let user = &payload["user"];
    let Some(user_id) = str_of(&user["id"]) else {
        return Vec::new();
    };
    let Some(channel) =
        str_of(&payload["channel"]["id"]).or(str_of(&payload["container"]["channel_id"]))
    else {
        return Vec::new();
    };
    let sender = Sender {
        id: user_id.to_owned(),
        handle: str_of(&user["username"]).map(str::to_owned),
        display_name: str_of(&user["name"]).map(str::to_owned),
        is_bot: false,
    };
    let message_id = str_of(&payload["container"]["message_ts"]).map(str::to_owned);
    payload["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["type"] == "button")
        .filter_map(|a| str_of(&a["value"]))
        .map(|data| {
            InboundEvent::Button(ButtonPress {
                chat: chat(channel, chat_kind(None, channel)),
                sender: sender.clone(),
                message_id: message_id.clone(),
                data: data.to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A payload captured by others (`tests/fakes/slack/fixtures`).
    fn fixture(name: &str) -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fakes/slack/fixtures")
            .join(name);
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn envelope(kind: &str, payload: Value) -> String {
        json!({"envelope_id": "e1", "type": kind, "payload": payload, "accepts_response_payload": false}).to_string()
    }

    fn decode(text: &str, bot: &str) -> Frame {
        let mut threads = Threads::default();
        decode_frame(
            text,
            &mut Context {
                bot_user: bot,
                pattern: None,
                threads: &mut threads,
            },
        )
    }

    fn one(frame: Frame) -> InboundEvent {
        let mut all = events(frame);
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0)
    }

    fn events(frame: Frame) -> Vec<InboundEvent> {
        match frame {
            Frame::Envelope { id, events } => {
                assert!(!id.is_empty());
                events
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn real_envelopes_decode() {
        // A channel message mentioning U111, received by the bot U111.
        let text = fixture("sm-events_api-message-channel.json").to_string();
        let InboundEvent::Message(m) = one(decode(&text, "U111")) else {
            panic!()
        };
        assert_eq!(
            (m.chat.id.as_str(), m.chat.kind),
            ("C111", ChatKind::Channel)
        );
        assert_eq!(
            (m.sender.id.as_str(), m.message_id.as_str()),
            ("U222", "1610241741.000200")
        );
        assert!(m.mentions_bot && !m.edited && m.reply_to.is_none());
        assert_eq!(m.ts_ms, 1_610_241_741_000);
        // The same message, to another bot: not addressed to it.
        let InboundEvent::Message(m) = one(decode(&text, "U999")) else {
            panic!()
        };
        assert!(!m.mentions_bot);

        let text = fixture("sm-events_api-app_mention.json").to_string();
        let InboundEvent::Message(m) = one(decode(&text, "U999")) else {
            panic!()
        };
        assert!(m.mentions_bot, "an app_mention addresses the bot");

        assert!(matches!(
            decode(&fixture("sm-hello.json").to_string(), "U1"),
            Frame::Hello
        ));
        match decode(
            &fixture("sm-disconnect-too_many_websockets.json").to_string(),
            "U1",
        ) {
            Frame::Disconnect { reason } => assert_eq!(reason, "too_many_websockets"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn real_events_decode() {
        let wrap = |name: &str| envelope("events_api", fixture(name));
        // An edit.
        let InboundEvent::Message(m) = one(decode(&wrap("event-message_changed.json"), "UBOT"))
        else {
            panic!()
        };
        assert!(m.edited);
        // A shared file is listed.
        let InboundEvent::Message(m) = one(decode(&wrap("event-message-file_share.json"), "UBOT"))
        else {
            panic!()
        };
        assert_eq!(m.attachments.len(), 1);
        assert!(m.attachments[0].name.is_some() && m.attachments[0].size.is_some());
        // A reaction.
        let InboundEvent::Reaction(r) = one(decode(&wrap("event-reaction_added.json"), "UBOT"))
        else {
            panic!()
        };
        assert!(r.added && r.emoji.starts_with(':') && r.emoji.ends_with(':'));
        // Bot messages of the classic kind are no one writing.
        assert!(
            events(decode(
                &wrap("event-message-subtype-bot_message.json"),
                "UBOT"
            ))
            .is_empty()
        );
        // A thread reply in a DM names its thread and addresses the bot.
        let reply = envelope(
            "events_api",
            json!({"type": "event_callback", "event": fixture("event-message-im-thread-reply.event-only.json")}),
        );
        let InboundEvent::Message(m) = one(decode(&reply, "UBOT")) else {
            panic!()
        };
        assert!(m.reply_to.is_some() && m.mentions_bot && m.chat.kind == ChatKind::Direct);
        // A button press.
        let press = envelope(
            "interactive",
            fixture("interactive-block_actions-button.payload-only.json"),
        );
        let InboundEvent::Button(b) = one(decode(&press, "UBOT")) else {
            panic!()
        };
        assert!(!b.data.is_empty() && !b.chat.id.is_empty());
    }

    #[test]
    fn the_bots_own_messages_and_unfurls_are_no_events() {
        let own = envelope(
            "events_api",
            json!({"event": {"type": "message", "user": "UBOT", "bot_id": "B1", "text": "hi", "ts": "1.000100", "channel": "C1", "channel_type": "channel"}}),
        );
        assert!(events(decode(&own, "UBOT")).is_empty());
        let unfurl = envelope(
            "events_api",
            json!({"event": {"type": "message", "subtype": "message_changed", "channel": "C1",
                "message": {"user": "U1", "text": "see https://x", "ts": "1.1"},
                "previous_message": {"user": "U1", "text": "see https://x", "ts": "1.1"}}}),
        );
        assert!(events(decode(&unfurl, "UBOT")).is_empty());
        assert!(matches!(decode("not json", "UBOT"), Frame::Unknown(_)));
    }

    #[test]
    fn replies_stay_in_their_thread() {
        let mut t = Threads::default();
        t.remember("C1", "2.0", "1.0");
        assert_eq!(t.root_of("C1", "2.0"), "1.0");
        assert_eq!(t.root_of("C1", "3.0"), "3.0");
        assert_eq!(t.root_of("C2", "2.0"), "2.0");
        assert!(!t.has_joined("C1", "1.0"));
        t.joined("C1", "1.0");
        assert!(t.has_joined("C1", "1.0") && !t.has_joined("C2", "1.0"));
        assert_eq!(ts_ms("1610241741.000200"), 1_610_241_741_000);
        assert_eq!(ts_ms("1610241741.5"), 1_610_241_741_500);
    }
}
