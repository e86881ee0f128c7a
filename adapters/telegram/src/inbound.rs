//! From a `getUpdates` answer to typed events.
//!
//! Each update is decoded on its own: one that is malformed (a missing chat,
//! an id of the wrong type) is skipped with a log line naming its
//! `update_id`, and the rest of the batch still arrives. The cursor is the
//! largest `update_id` seen plus one, skipped updates included, so a bad
//! update is confirmed like any other and never blocks polling.
//!
//! Bounds against hostile input: text beyond [`MAX_TEXT_CHARS`] is cut before
//! anything looks at it, and only the first [`MAX_ENTITIES`] entities of a
//! message are read, so no update can make decoding slow.

use airlock_guest::types::{
    Attachment, AttachmentKind, ButtonPress, Chat, ChatKind, InboundEvent, InboundMessage,
    Reaction, Sender,
};
use regex_lite::Regex;
use serde_json::value::RawValue;

use crate::api::{ApiFailure, decode};
use crate::mention::{BotIdentity, mentions_bot};
use crate::update::{self, Message, Update, User};

/// Longest text read from one message, in characters (Telegram's own limit
/// is 4096; the host caps what reaches the session again).
pub const MAX_TEXT_CHARS: usize = 16_384;
/// Entities read per message.
pub const MAX_ENTITIES: usize = 256;

/// What one `getUpdates` answer holds.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Events, in update order.
    pub events: Vec<InboundEvent>,
    /// The offset that confirms every update of this answer.
    pub next_offset: Option<i64>,
    /// Callback queries to answer (so the button stops spinning).
    pub callbacks: Vec<String>,
    /// One line per update that was skipped, and why.
    pub skipped: Vec<String>,
}

/// What decoding needs to know.
pub struct Context<'a> {
    /// The bot, when `getMe` has answered.
    pub bot: Option<&'a BotIdentity>,
    /// The operator's mention pattern.
    pub pattern: Option<&'a Regex>,
}

/// Decodes a `getUpdates` answer.
pub fn decode_updates(
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    ctx: &Context<'_>,
) -> Result<Decoded, ApiFailure> {
    let raw: Vec<Box<RawValue>> = decode("getUpdates", status, headers, body)?;
    let mut out = Decoded::default();
    for item in raw {
        let update: Update = match serde_json::from_str(item.get()) {
            Ok(u) => u,
            Err(e) => {
                let id = update_id_of(item.get());
                if let Some(id) = id {
                    advance(&mut out.next_offset, id);
                }
                let which = id.map_or_else(
                    || "an update without update_id".into(),
                    |id| format!("update {id}"),
                );
                out.skipped
                    .push(format!("{which} skipped: it is not a valid Update ({e})"));
                continue;
            }
        };
        advance(&mut out.next_offset, update.update_id);
        decode_one(update, ctx, &mut out);
    }
    Ok(out)
}

fn advance(offset: &mut Option<i64>, update_id: i64) {
    let next = update_id.saturating_add(1);
    *offset = Some(offset.map_or(next, |o| o.max(next)));
}

/// The `update_id` of an update that did not decode, when it has one.
fn update_id_of(raw: &str) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        update_id: i64,
    }
    serde_json::from_str::<IdOnly>(raw)
        .ok()
        .map(|u| u.update_id)
}

fn decode_one(update: Update, ctx: &Context<'_>, out: &mut Decoded) {
    let id = update.update_id;
    if let Some(message) = update.message {
        push_message(id, message, false, ctx, out);
    } else if let Some(message) = update.edited_message {
        push_message(id, message, true, ctx, out);
    } else if let Some(query) = update.callback_query {
        out.callbacks.push(query.id.clone());
        match query.message {
            Some(message) => out.events.push(InboundEvent::Button(ButtonPress {
                chat: chat(&message.chat),
                sender: sender(&query.from),
                message_id: Some(message.message_id.to_string()),
                data: query.data.unwrap_or_default(),
            })),
            None => out.skipped.push(format!(
                "update {id} skipped: a button press on an inline-mode message, which airlock does not use"
            )),
        }
    } else if let Some(reaction) = update.message_reaction {
        let Some(user) = &reaction.user else {
            out.skipped.push(format!(
                "update {id} skipped: an anonymous reaction has no sender to check"
            ));
            return;
        };
        let changes = reaction
            .new_reaction
            .iter()
            .filter(|r| !reaction.old_reaction.contains(r))
            .map(|r| (r, true))
            .chain(
                reaction
                    .old_reaction
                    .iter()
                    .filter(|r| !reaction.new_reaction.contains(r))
                    .map(|r| (r, false)),
            );
        for (r, added) in changes {
            out.events.push(InboundEvent::Reaction(Reaction {
                chat: chat(&reaction.chat),
                sender: sender(user),
                message_id: reaction.message_id.to_string(),
                emoji: r.label(),
                added,
            }));
        }
    }
    // Other kinds (polls, chat members, …) are not requested; ignore them.
}

fn push_message(id: i64, mut message: Message, edited: bool, ctx: &Context<'_>, out: &mut Decoded) {
    let Some(from) = message.from.clone() else {
        out.skipped.push(format!(
            "update {id} skipped: message {} in chat {} has no sender (a channel post or an anonymous admin)",
            message.message_id, message.chat.id
        ));
        return;
    };
    bound(&mut message);
    let kind = chat_kind(&message.chat.kind);
    let mentions = kind == ChatKind::Direct || mentions_bot(&message, ctx.bot, ctx.pattern);
    let text = message
        .text
        .clone()
        .or_else(|| message.caption.clone())
        .unwrap_or_default();
    let stamp = if edited {
        message.edit_date.unwrap_or(message.date)
    } else {
        message.date
    };
    out.events.push(InboundEvent::Message(InboundMessage {
        chat: chat(&message.chat),
        sender: sender(&from),
        message_id: message.message_id.to_string(),
        text,
        ts_ms: u64::try_from(stamp).unwrap_or(0).saturating_mul(1000),
        reply_to: message
            .reply_to_message
            .as_ref()
            .map(|r| r.message_id.to_string()),
        mentions_bot: mentions,
        attachments: attachments(&message),
        edited,
    }));
}

/// Cuts text and entity lists to the bounds in the module docs.
fn bound(message: &mut Message) {
    for text in [&mut message.text, &mut message.caption]
        .into_iter()
        .flatten()
    {
        if let Some((cut, _)) = text.char_indices().nth(MAX_TEXT_CHARS) {
            text.truncate(cut);
        }
    }
    message.entities.truncate(MAX_ENTITIES);
    message.caption_entities.truncate(MAX_ENTITIES);
    if let Some(reply) = &mut message.reply_to_message {
        // Only its sender matters; drop its body.
        reply.text = None;
        reply.caption = None;
        reply.entities.clear();
        reply.caption_entities.clear();
        reply.reply_to_message = None;
    }
}

fn chat_kind(kind: &str) -> ChatKind {
    match kind {
        "private" => ChatKind::Direct,
        "channel" => ChatKind::Channel,
        _ => ChatKind::Group,
    }
}

fn chat(c: &update::Chat) -> Chat {
    Chat {
        id: c.id.to_string(),
        kind: chat_kind(&c.kind),
        title: c.title.clone(),
        parent_id: None,
    }
}

fn sender(u: &User) -> Sender {
    Sender {
        id: u.id.to_string(),
        handle: u.username.clone(),
        display_name: u.display_name(),
        is_bot: u.is_bot,
    }
}

fn attachments(m: &Message) -> Vec<Attachment> {
    let mut out = Vec::new();
    // The largest size of a photo is the one worth reading.
    if let Some(p) = m
        .photo
        .iter()
        .max_by_key(|p| (p.width * p.height, p.file_size))
    {
        out.push(Attachment {
            id: p.file_id.clone(),
            kind: AttachmentKind::Photo,
            name: Some("photo.jpg".into()),
            mime: Some("image/jpeg".into()),
            size: p.file_size,
        });
    }
    let files = [
        (&m.document, AttachmentKind::Document, "document"),
        (&m.audio, AttachmentKind::Audio, "audio"),
        (&m.voice, AttachmentKind::Voice, "voice.ogg"),
        (&m.video, AttachmentKind::Video, "video.mp4"),
        (&m.video_note, AttachmentKind::VideoNote, "video_note.mp4"),
        (&m.animation, AttachmentKind::Video, "animation.mp4"),
    ];
    for (file, kind, default_name) in files {
        if let Some(f) = file {
            out.push(Attachment {
                id: f.file_id.clone(),
                kind,
                name: Some(f.file_name.clone().unwrap_or_else(|| default_name.into())),
                mime: f.mime_type.clone(),
                size: f.file_size,
            });
        }
    }
    if let Some(s) = &m.sticker {
        let (name, mime) = if s.is_animated {
            ("sticker.tgs", "application/x-tgsticker")
        } else if s.is_video {
            ("sticker.webm", "video/webm")
        } else {
            ("sticker.webp", "image/webp")
        };
        out.push(Attachment {
            id: s.file_id.clone(),
            kind: AttachmentKind::Sticker,
            name: Some(match &s.emoji {
                Some(e) => format!("{name} {e}"),
                None => name.into(),
            }),
            mime: Some(mime.into()),
            size: s.file_size,
        });
    }
    out
}

#[cfg(test)]
mod tests;
