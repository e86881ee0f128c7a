//! Dispatches into typed events: messages (new and edited), button presses
//! and reactions, each with its chat, sender, reply-to and whether it
//! addresses the bot.
//!
//! Each dispatch is decoded on its own; one that does not fit is skipped
//! with a log line naming what was wrong, and the rest go on. Text beyond
//! [`MAX_TEXT_CHARS`] and mention lists beyond [`MAX_MENTIONS`] are cut
//! before anything looks at them.
//!
//! A message addresses the bot when it is a DM, mentions the bot's user
//! (`<@id>`, `<@!id>`) or one of its roles in that server, replies to one of
//! its messages, or matches the `mention_pattern` setting. Threads are
//! reported with their parent channel, so the host's group rule for the
//! parent covers them.

use std::collections::HashMap;

use airlock_guest::types::{
    Attachment as EventAttachment, AttachmentKind, ButtonPress, Chat, ChatKind, InboundEvent,
    InboundMessage, Reaction, Sender,
};
use regex_lite::Regex;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::model::{self, Interaction, Member, Message, ReactionEvent, User};

/// Characters of message text read.
pub const MAX_TEXT_CHARS: usize = 16_384;
/// Mentions read per message.
pub const MAX_MENTIONS: usize = 256;
/// Channels remembered.
const MAX_CHANNELS: usize = 4096;

/// What the adapter knows of a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    /// DM, group DM, guild channel or thread.
    pub kind: ChatKind,
    /// Its name, when it has one.
    pub title: Option<String>,
    /// A thread's parent channel.
    pub parent: Option<String>,
}

/// Looks a channel up on the platform (`GET /channels/{id}`).
pub trait ChannelSource {
    /// The channel, or `None` when it cannot be found out now.
    fn fetch(&mut self, id: &str) -> Option<ChannelInfo>;
}

/// What decoding learns and keeps between dispatches.
#[derive(Debug, Default)]
pub struct Known {
    /// The bot's user id.
    pub bot_id: Option<String>,
    /// The bot's roles, by guild.
    pub bot_roles: HashMap<String, Vec<String>>,
    /// Channels seen, by id.
    pub channels: HashMap<String, ChannelInfo>,
    /// Attachment URLs of delivered messages, by attachment event id.
    pub attachment_urls: HashMap<String, String>,
}

impl Known {
    fn remember_channel(&mut self, id: &str, info: ChannelInfo) {
        if self.channels.len() >= MAX_CHANNELS {
            self.channels.clear();
        }
        self.channels.insert(id.to_owned(), info);
    }

    fn remember_attachment(&mut self, id: String, url: String) {
        if self.attachment_urls.len() >= MAX_CHANNELS {
            self.attachment_urls.clear();
        }
        self.attachment_urls.insert(id, url);
    }
}

/// Interaction acknowledgements owed: id and token.
pub type Ack = (String, String);

/// What one dispatch gives.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Events for the host.
    pub events: Vec<InboundEvent>,
    /// Button presses to acknowledge (Discord shows an error after 3 s otherwise).
    pub acks: Vec<Ack>,
    /// Why something was skipped.
    pub skipped: Option<String>,
}

/// Decodes dispatch `t` with payload `d`.
pub fn decode(
    t: &str,
    d: Value,
    known: &mut Known,
    pattern: Option<&Regex>,
    source: &mut dyn ChannelSource,
) -> Decoded {
    let mut out = Decoded::default();
    let result = match t {
        "READY" => {
            known.bot_id = d
                .get("user")
                .and_then(|u| u.get("id"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            Ok(())
        }
        "GUILD_CREATE" => {
            learn_guild(&d, known);
            Ok(())
        }
        "THREAD_CREATE" | "THREAD_UPDATE" | "CHANNEL_CREATE" | "CHANNEL_UPDATE" => {
            if let Ok(c) = serde_json::from_value::<model::Channel>(d) {
                known.remember_channel(&c.id.clone(), info_of(&c));
            }
            Ok(())
        }
        // An update without an author is an embed unfolding, not an edit.
        "MESSAGE_UPDATE" if d.get("author").is_none() => Ok(()),
        "MESSAGE_CREATE" | "MESSAGE_UPDATE" => parse::<Message>(t, d).map(|m| {
            if let Some(event) = message(m, t == "MESSAGE_UPDATE", known, pattern, source) {
                out.events.push(event);
            }
        }),
        "INTERACTION_CREATE" => parse::<Interaction>(t, d).and_then(|i| {
            let (event, ack) = interaction(i, source, known)?;
            out.events.extend(event);
            out.acks.push(ack);
            Ok(())
        }),
        "MESSAGE_REACTION_ADD" | "MESSAGE_REACTION_REMOVE" => {
            parse::<ReactionEvent>(t, d).map(|r| {
                if let Some(e) = reaction(r, t == "MESSAGE_REACTION_ADD", known, source) {
                    out.events.push(e);
                }
            })
        }
        // Everything else (presence, typing, guild updates…) is not for the session.
        _ => Ok(()),
    };
    if let Err(why) = result {
        out.skipped = Some(why);
    }
    out
}

fn parse<T: DeserializeOwned>(t: &str, mut d: Value) -> Result<T, String> {
    if let Some(content) = d.get_mut("content")
        && let Some(text) = content.as_str()
        && let Some((cut, _)) = text.char_indices().nth(MAX_TEXT_CHARS)
    {
        *content = Value::String(text[..cut].to_owned());
    }
    for list in ["mentions", "mention_roles", "attachments"] {
        if let Some(Value::Array(items)) = d.get_mut(list) {
            items.truncate(MAX_MENTIONS);
        }
    }
    serde_json::from_value(d).map_err(|e| format!("{t} skipped: {e}"))
}

fn learn_guild(d: &Value, known: &mut Known) {
    let Some(guild) = d.get("id").and_then(Value::as_str) else {
        return;
    };
    for key in ["channels", "threads"] {
        for c in d.get(key).and_then(Value::as_array).into_iter().flatten() {
            if let Ok(c) = serde_json::from_value::<model::Channel>(c.clone()) {
                known.remember_channel(&c.id.clone(), info_of(&c));
            }
        }
    }
    let bot = known.bot_id.clone();
    let members = d.get("members").and_then(Value::as_array);
    for m in members.into_iter().flatten() {
        let Ok(member) = serde_json::from_value::<Member>(m.clone()) else {
            continue;
        };
        if member.user.as_ref().map(|u| &u.id) == bot.as_ref() && bot.is_some() {
            known.bot_roles.insert(guild.to_owned(), member.roles);
        }
    }
}

/// What a channel object says about the chat.
pub fn info_of(c: &model::Channel) -> ChannelInfo {
    let kind = match c.kind {
        1 => ChatKind::Direct,
        3 => ChatKind::Group,
        k if model::is_thread(k) => ChatKind::Thread,
        _ => ChatKind::Channel,
    };
    ChannelInfo {
        kind,
        title: c.name.clone(),
        parent: c.parent_id.clone().filter(|_| kind == ChatKind::Thread),
    }
}

/// The chat of `channel_id` (in `guild`, if any).
fn chat(
    channel_id: &str,
    guild: Option<&str>,
    channel_type: Option<u8>,
    known: &mut Known,
    source: &mut dyn ChannelSource,
) -> Chat {
    let info = match known.channels.get(channel_id) {
        Some(info) => Some(info.clone()),
        None if guild.is_some() => {
            let fetched = source.fetch(channel_id);
            if let Some(info) = &fetched {
                known.remember_channel(channel_id, info.clone());
            }
            fetched
        }
        None => None,
    };
    let (kind, title, parent) = match (info, guild) {
        (Some(i), _) => (i.kind, i.title, i.parent),
        (None, None) if channel_type == Some(3) => (ChatKind::Group, None, None),
        (None, None) => (ChatKind::Direct, None, None),
        // Not found out: a thread without its parent cannot inherit a rule,
        // so it counts as a channel of its own (closed unless opened).
        (None, Some(_)) => (ChatKind::Channel, None, None),
    };
    Chat {
        id: channel_id.to_owned(),
        kind,
        title,
        parent_id: parent,
    }
}

fn sender(user: &User, member: Option<&Member>) -> Sender {
    Sender {
        id: user.id.clone(),
        handle: (!user.username.is_empty()).then(|| user.username.clone()),
        display_name: member
            .and_then(|m| m.nick.clone())
            .or_else(|| user.global_name.clone()),
        is_bot: user.bot,
    }
}

fn message(
    m: Message,
    edited: bool,
    known: &mut Known,
    pattern: Option<&Regex>,
    source: &mut dyn ChannelSource,
) -> Option<InboundEvent> {
    let bot = known.bot_id.clone();
    if bot.as_deref() == Some(m.author.id.as_str()) {
        return None;
    }
    let chat = chat(
        &m.channel_id,
        m.guild_id.as_deref(),
        m.channel_type,
        known,
        source,
    );
    let mentions_bot =
        chat.kind == ChatKind::Direct || addresses_bot(&m, bot.as_deref(), known, pattern);
    let attachments = m
        .attachments
        .iter()
        .map(|a| {
            let id = attachment_id(&m.id, &a.id);
            known.remember_attachment(id.clone(), a.url.clone());
            EventAttachment {
                id,
                kind: kind_of(a.content_type.as_deref(), &a.filename),
                name: (!a.filename.is_empty()).then(|| a.filename.clone()),
                mime: a.content_type.clone(),
                size: a.size,
            }
        })
        .collect();
    Some(InboundEvent::Message(InboundMessage {
        sender: sender(&m.author, m.member.as_ref()),
        message_id: m.id.clone(),
        text: m.content.clone(),
        ts_ms: model::snowflake_ms(&m.id),
        reply_to: m
            .message_reference
            .as_ref()
            .and_then(|r| r.message_id.clone()),
        mentions_bot,
        attachments,
        edited,
        chat,
    }))
}

fn addresses_bot(m: &Message, bot: Option<&str>, known: &Known, pattern: Option<&Regex>) -> bool {
    if let Some(bot) = bot {
        if m.mentions.iter().any(|u| u.id == bot)
            || m.content.contains(&format!("<@{bot}>"))
            || m.content.contains(&format!("<@!{bot}>"))
        {
            return true;
        }
        if m.referenced_message
            .as_ref()
            .is_some_and(|r| r.author.id == bot)
        {
            return true;
        }
        let roles = m.guild_id.as_ref().and_then(|g| known.bot_roles.get(g));
        if roles.is_some_and(|roles| m.mention_roles.iter().any(|r| roles.contains(r))) {
            return true;
        }
    }
    pattern.is_some_and(|p| p.is_match(&m.content))
}

/// The id an attachment travels under: its message and its own id, which is
/// what a download needs to find it again.
pub fn attachment_id(message_id: &str, attachment_id: &str) -> String {
    format!("{message_id}.{attachment_id}")
}

/// The message and attachment ids of an id made by [`attachment_id`].
pub fn split_attachment_id(id: &str) -> Option<(&str, &str)> {
    let (m, a) = id.split_once('.')?;
    (model::is_snowflake(m) && model::is_snowflake(a)).then_some((m, a))
}

fn kind_of(mime: Option<&str>, name: &str) -> AttachmentKind {
    let mime = mime.unwrap_or("");
    if mime.starts_with("image/") {
        AttachmentKind::Photo
    } else if mime.starts_with("video/") {
        AttachmentKind::Video
    } else if mime.starts_with("audio/") {
        if name.starts_with("voice-message") {
            AttachmentKind::Voice
        } else {
            AttachmentKind::Audio
        }
    } else {
        AttachmentKind::Document
    }
}

fn interaction(
    i: Interaction,
    source: &mut dyn ChannelSource,
    known: &mut Known,
) -> Result<(Option<InboundEvent>, Ack), String> {
    let ack = (i.id.clone(), i.token.clone());
    // Only button presses (component interactions on buttons) are events.
    let data = i.data.as_ref();
    if i.kind != 3 || data.and_then(|d| d.component_type) != Some(2) {
        return Ok((None, ack));
    }
    let Some(custom_id) = data.and_then(|d| d.custom_id.clone()) else {
        return Err("INTERACTION_CREATE skipped: a button press without custom_id".into());
    };
    let user = i
        .member
        .as_ref()
        .and_then(|m| m.user.clone())
        .or_else(|| i.user.clone())
        .ok_or("INTERACTION_CREATE skipped: no member.user and no user")?;
    let channel_id = i
        .channel_id
        .clone()
        .or_else(|| i.channel.as_ref().map(|c| c.id.clone()))
        .ok_or("INTERACTION_CREATE skipped: no channel_id")?;
    if let Some(c) = &i.channel
        && !known.channels.contains_key(&c.id)
        && i.guild_id.is_some()
        && !model::is_thread(c.kind)
    {
        known.remember_channel(&c.id, info_of(c));
    }
    let chat = chat(&channel_id, i.guild_id.as_deref(), None, known, source);
    Ok((
        Some(InboundEvent::Button(ButtonPress {
            chat,
            sender: sender(&user, i.member.as_ref()),
            message_id: i.message.map(|m| m.id),
            data: custom_id,
        })),
        ack,
    ))
}

fn reaction(
    r: ReactionEvent,
    added: bool,
    known: &mut Known,
    source: &mut dyn ChannelSource,
) -> Option<InboundEvent> {
    if known.bot_id.as_deref() == Some(r.user_id.as_str()) {
        return None;
    }
    let chat = chat(&r.channel_id, r.guild_id.as_deref(), None, known, source);
    let user = r.member.as_ref().and_then(|m| m.user.clone());
    let sender = match &user {
        Some(u) => sender(u, r.member.as_ref()),
        None => Sender {
            id: r.user_id.clone(),
            handle: None,
            display_name: None,
            is_bot: false,
        },
    };
    let emoji = match (&r.emoji.id, &r.emoji.name) {
        (Some(id), Some(name)) => format!("<:{name}:{id}>"),
        (None, Some(name)) => name.clone(),
        _ => "?".into(),
    };
    Some(InboundEvent::Reaction(Reaction {
        chat,
        sender,
        message_id: r.message_id,
        emoji,
        added,
    }))
}

#[cfg(test)]
mod tests;
