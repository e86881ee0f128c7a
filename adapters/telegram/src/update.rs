//! The parts of Bot API `Update` objects the adapter reads.
//!
//! Only what becomes an event is modelled; unknown fields are ignored and
//! every field that Telegram may leave out is optional, so a new Bot API
//! version does not break parsing. A field of the wrong type fails the one
//! update it is in (see [`crate::inbound`]), never the batch.

use serde::Deserialize;

/// One update. Exactly one of the optional fields is set by Telegram; the
/// kinds this adapter does not handle (polls, chat members, …) are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Update {
    /// Monotonic id; the next offset is the largest seen plus one.
    pub update_id: i64,
    #[serde(default)]
    pub message: Option<Message>,
    #[serde(default)]
    pub edited_message: Option<Message>,
    #[serde(default)]
    pub callback_query: Option<CallbackQuery>,
    #[serde(default)]
    pub message_reaction: Option<MessageReaction>,
}

/// A user or bot.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: i64,
    #[serde(default)]
    pub is_bot: bool,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
}

impl User {
    /// First and last name, as Telegram shows it.
    pub fn display_name(&self) -> Option<String> {
        let name = match &self.last_name {
            Some(last) if !last.is_empty() => format!("{} {last}", self.first_name),
            _ => self.first_name.clone(),
        };
        (!name.trim().is_empty()).then_some(name)
    }
}

/// A chat.
#[derive(Debug, Clone, Deserialize)]
pub struct Chat {
    pub id: i64,
    /// `private`, `group`, `supergroup` or `channel`.
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub title: Option<String>,
}

/// A message entity; `offset` and `length` count UTF-16 code units.
#[derive(Debug, Clone, Deserialize)]
pub struct Entity {
    #[serde(rename = "type")]
    pub kind: String,
    pub offset: i64,
    pub length: i64,
    /// For `text_mention`: the user mentioned.
    #[serde(default)]
    pub user: Option<User>,
}

/// One size of a photo.
#[derive(Debug, Clone, Deserialize)]
pub struct PhotoSize {
    pub file_id: String,
    #[serde(default)]
    pub width: i64,
    #[serde(default)]
    pub height: i64,
    #[serde(default)]
    pub file_size: Option<u64>,
}

/// A document, audio file, voice note, video, video note or animation.
#[derive(Debug, Clone, Deserialize)]
pub struct File {
    pub file_id: String,
    #[serde(default)]
    pub file_name: Option<String>,
    #[serde(default)]
    pub mime_type: Option<String>,
    #[serde(default)]
    pub file_size: Option<u64>,
}

/// A sticker.
#[derive(Debug, Clone, Deserialize)]
pub struct Sticker {
    pub file_id: String,
    #[serde(default)]
    pub emoji: Option<String>,
    #[serde(default)]
    pub is_animated: bool,
    #[serde(default)]
    pub is_video: bool,
    #[serde(default)]
    pub file_size: Option<u64>,
}

/// A message, or the message a reply points to.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub message_id: i64,
    #[serde(default)]
    pub from: Option<User>,
    pub chat: Chat,
    /// Unix seconds; 0 marks an inaccessible message in a callback query.
    #[serde(default)]
    pub date: i64,
    #[serde(default)]
    pub edit_date: Option<i64>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub entities: Vec<Entity>,
    #[serde(default)]
    pub caption: Option<String>,
    #[serde(default)]
    pub caption_entities: Vec<Entity>,
    #[serde(default)]
    pub reply_to_message: Option<Box<Message>>,
    #[serde(default)]
    pub photo: Vec<PhotoSize>,
    #[serde(default)]
    pub document: Option<File>,
    #[serde(default)]
    pub audio: Option<File>,
    #[serde(default)]
    pub voice: Option<File>,
    #[serde(default)]
    pub video: Option<File>,
    #[serde(default)]
    pub video_note: Option<File>,
    #[serde(default)]
    pub animation: Option<File>,
    #[serde(default)]
    pub sticker: Option<Sticker>,
}

/// A press on an inline button.
#[derive(Debug, Clone, Deserialize)]
pub struct CallbackQuery {
    pub id: String,
    pub from: User,
    /// The message with the button; absent for inline-mode messages.
    #[serde(default)]
    pub message: Option<Message>,
    #[serde(default)]
    pub data: Option<String>,
}

/// A reaction type.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReactionType {
    Emoji {
        emoji: String,
    },
    CustomEmoji {
        custom_emoji_id: String,
    },
    Paid,
    #[serde(other)]
    Other,
}

impl ReactionType {
    /// How the reaction reads in an event.
    pub fn label(&self) -> String {
        match self {
            ReactionType::Emoji { emoji } => emoji.clone(),
            ReactionType::CustomEmoji { custom_emoji_id } => {
                format!("custom emoji {custom_emoji_id}")
            }
            ReactionType::Paid => "paid reaction".into(),
            ReactionType::Other => "reaction".into(),
        }
    }
}

/// A user changed their reactions on a message.
#[derive(Debug, Clone, Deserialize)]
pub struct MessageReaction {
    pub chat: Chat,
    pub message_id: i64,
    /// Absent for anonymous reactions (then `actor_chat` is set).
    #[serde(default)]
    pub user: Option<User>,
    #[serde(default)]
    pub old_reaction: Vec<ReactionType>,
    #[serde(default)]
    pub new_reaction: Vec<ReactionType>,
}
