//! The parts of Discord's objects this adapter reads. Unknown fields are
//! ignored; missing optional ones default, so older and newer payloads both
//! decode.

use serde::Deserialize;

/// A user.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub global_name: Option<String>,
    #[serde(default)]
    pub bot: bool,
}

/// A guild member (as attached to messages: without its user).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Member {
    #[serde(default)]
    pub nick: Option<String>,
    #[serde(default, deserialize_with = "ids")]
    pub roles: Vec<String>,
    #[serde(default)]
    pub user: Option<User>,
}

/// A file attached to a message.
#[derive(Debug, Clone, Deserialize)]
pub struct Attachment {
    pub id: String,
    #[serde(default)]
    pub filename: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub url: String,
}

/// What a reply points at.
#[derive(Debug, Clone, Deserialize)]
pub struct MessageReference {
    #[serde(default)]
    pub message_id: Option<String>,
}

/// The author of a replied-to message (all that is read of it).
#[derive(Debug, Clone, Deserialize)]
pub struct Referenced {
    pub author: User,
}

/// A message, from MESSAGE_CREATE, MESSAGE_UPDATE or the history.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub id: String,
    pub channel_id: String,
    #[serde(default)]
    pub guild_id: Option<String>,
    pub author: User,
    #[serde(default)]
    pub member: Option<Member>,
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub mentions: Vec<User>,
    #[serde(default, deserialize_with = "ids")]
    pub mention_roles: Vec<String>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    #[serde(default)]
    pub message_reference: Option<MessageReference>,
    #[serde(default)]
    pub referenced_message: Option<Box<Referenced>>,
    #[serde(default)]
    pub channel_type: Option<u8>,
}

/// A channel (from `GET /channels/{id}`, or inside an interaction).
#[derive(Debug, Clone, Deserialize)]
pub struct Channel {
    pub id: String,
    #[serde(rename = "type", default)]
    pub kind: u8,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub parent_id: Option<String>,
}

/// The component part of an interaction.
#[derive(Debug, Clone, Deserialize)]
pub struct InteractionData {
    #[serde(default)]
    pub custom_id: Option<String>,
    #[serde(default)]
    pub component_type: Option<u8>,
}

/// The message an interaction's button was on (its id is all that is read).
#[derive(Debug, Clone, Deserialize)]
pub struct InteractionMessage {
    pub id: String,
}

/// INTERACTION_CREATE.
#[derive(Debug, Clone, Deserialize)]
pub struct Interaction {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: u8,
    pub token: String,
    #[serde(default)]
    pub data: Option<InteractionData>,
    #[serde(default)]
    pub guild_id: Option<String>,
    #[serde(default)]
    pub channel_id: Option<String>,
    #[serde(default)]
    pub channel: Option<Channel>,
    #[serde(default)]
    pub member: Option<Member>,
    #[serde(default)]
    pub user: Option<User>,
    #[serde(default)]
    pub message: Option<InteractionMessage>,
}

/// The emoji of a reaction.
#[derive(Debug, Clone, Deserialize)]
pub struct Emoji {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// MESSAGE_REACTION_ADD / _REMOVE.
#[derive(Debug, Clone, Deserialize)]
pub struct ReactionEvent {
    pub user_id: String,
    pub channel_id: String,
    pub message_id: String,
    #[serde(default)]
    pub guild_id: Option<String>,
    #[serde(default)]
    pub member: Option<Member>,
    pub emoji: Emoji,
}

/// A list of snowflakes, as strings (v10) or numbers (older payloads).
fn ids<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Text(String),
        Number(u64),
    }
    Ok(Vec::<Id>::deserialize(d)?
        .into_iter()
        .map(|id| match id {
            Id::Text(t) => t,
            Id::Number(n) => n.to_string(),
        })
        .collect())
}

/// Channel types that are threads (announcement, public, private).
pub fn is_thread(kind: u8) -> bool {
    matches!(kind, 10..=12)
}

/// Whether `id` looks like a Discord id (a snowflake: digits only). Ids
/// that go into a URL path are checked with this first.
pub fn is_snowflake(id: &str) -> bool {
    !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit())
}

/// Milliseconds since the Unix epoch at which snowflake `id` was made.
pub fn snowflake_ms(id: &str) -> u64 {
    const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;
    id.parse::<u64>()
        .map(|n| (n >> 22) + DISCORD_EPOCH_MS)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflakes_carry_their_time() {
        // Discord's documented example: 175928847299117063 is 2016-04-30T11:18:25.796Z.
        assert_eq!(snowflake_ms("175928847299117063"), 1_462_015_105_796);
        assert_eq!(snowflake_ms("not a number"), 0);
    }
}
