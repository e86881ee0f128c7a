//! Builders of realistic gateway dispatch data (`d` objects).
//!
//! Each builder returns what Discord sends for that event today, with every
//! field serenity 0.12's models require (a dispatch whose `d` does not
//! deserialise is dropped by serenity with only a log line, so a missing
//! field shows up as a test that hangs). The crate's golden tests
//! deserialise every builder's output with serenity's types.
//!
//! Callers adjust the results as JSON: set `mentions`, `mention_roles`,
//! `message_reference`, `referenced_message` or `attachments` on a message,
//! change `type`, add `member.nick`, and so on.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::{BOT_ID, BOT_USERNAME, GUILD_ID};

/// When every made-up member joined the guild.
const JOINED_AT: &str = "2024-01-01T00:00:00.000000+00:00";
/// The permissions a member and the app have in interactions (everything a
/// chat bot needs, not Administrator).
const PERMISSIONS: &str = "2248473465835073";

/// A user object: `id`, `username`, `discriminator` "0" (the pomelo era),
/// `global_name` (= username), no avatar. The bot's id gives the bot user.
pub fn user(id: &str, username: &str) -> Value {
    if id == BOT_ID {
        return bot_user();
    }
    json!({
        "id": id,
        "username": username,
        "discriminator": "0",
        "global_name": username,
        "avatar": null,
        "public_flags": 0,
    })
}

/// The bot user, as `GET /users/@me` and READY give it.
pub fn bot_user() -> Value {
    json!({
        "id": BOT_ID,
        "username": BOT_USERNAME,
        "discriminator": "0",
        "global_name": null,
        "avatar": null,
        "bot": true,
        "verified": true,
        "mfa_enabled": false,
        "flags": 0,
        "public_flags": 0,
        "banner": null,
        "accent_color": null,
    })
}

/// A guild member as it rides along on a gateway message (`member` of
/// MESSAGE_CREATE: no `user`).
pub fn partial_member() -> Value {
    json!({
        "roles": [],
        "joined_at": JOINED_AT,
        "deaf": false,
        "mute": false,
        "flags": 0,
        "nick": null,
        "premium_since": null,
        "pending": false,
    })
}

/// A full guild member with its user (interactions, reactions).
pub fn member(user: Value) -> Value {
    let mut member = partial_member();
    member["user"] = user;
    member["avatar"] = Value::Null;
    member["communication_disabled_until"] = Value::Null;
    member
}

/// The current time as Discord writes timestamps
/// (`2024-06-01T12:00:00.000000+00:00`).
pub fn now_timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format_timestamp(now.as_secs(), now.subsec_micros())
}

/// `secs` since the Unix epoch (UTC) plus microseconds, in Discord's form.
pub(crate) fn format_timestamp(secs: u64, micros: u32) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The fields every message has, whoever sent it and wherever.
fn base_message(id: &str, channel_id: &str, author: Value, content: &str) -> Value {
    json!({
        "id": id,
        "channel_id": channel_id,
        "author": author,
        "content": content,
        "timestamp": now_timestamp(),
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "components": [],
        "pinned": false,
        "type": 0,
        "flags": 0,
    })
}

/// A MESSAGE_CREATE `d` in a DM: `channel_type` 1, no `guild_id`, no
/// `member`.
pub fn dm_message(id: &str, channel_id: &str, author: Value, content: &str) -> Value {
    let mut message = base_message(id, channel_id, author, content);
    message["channel_type"] = Value::from(1);
    message
}

/// A MESSAGE_CREATE `d` in a guild text channel: `guild_id` [`GUILD_ID`],
/// `member` (no roles), `channel_type` 0. For a thread, set `channel_type`
/// to 11.
pub fn guild_message(id: &str, channel_id: &str, author: Value, content: &str) -> Value {
    let mut message = base_message(id, channel_id, author, content);
    message["guild_id"] = Value::from(GUILD_ID);
    message["member"] = partial_member();
    message["channel_type"] = Value::from(0);
    message
}

/// The token the fake gives an interaction: deterministic, opaque.
pub fn interaction_token(interaction_id: &str) -> String {
    format!("aW50ZXJhY3Rpb24.{interaction_id}.ZmFrZS1kaXNjb3Jk")
}

/// An INTERACTION_CREATE `d` for a button click (type 3,
/// `data.component_type` 2) on `message` by `user`. With `guild`, it
/// happened in [`GUILD_ID`] (`member` carries the user, context 0);
/// otherwise in a DM with the bot (`user`, context 1). The token is
/// [`interaction_token`]`(id)`.
pub fn button_interaction(
    id: &str,
    channel_id: &str,
    user: Value,
    custom_id: &str,
    message: Value,
    guild: bool,
) -> Value {
    let mut d = json!({
        "id": id,
        "application_id": BOT_ID,
        "type": 3,
        "data": {"custom_id": custom_id, "component_type": 2},
        "channel_id": channel_id,
        "token": interaction_token(id),
        "version": 1,
        "message": message,
        "app_permissions": PERMISSIONS,
        "locale": "en-US",
        "entitlements": [],
        "attachment_size_limit": 10_485_760,
    });
    if guild {
        d["guild_id"] = Value::from(GUILD_ID);
        d["guild_locale"] = Value::from("en-US");
        d["channel"] = json!({"id": channel_id, "type": 0, "guild_id": GUILD_ID});
        let mut member = member(user);
        member["permissions"] = Value::from(PERMISSIONS);
        d["member"] = member;
        d["context"] = Value::from(0);
        d["authorizing_integration_owners"] = json!({"0": GUILD_ID});
    } else {
        d["channel"] = json!({"id": channel_id, "type": 1, "recipients": [user.clone()]});
        d["user"] = user;
        d["context"] = Value::from(1);
        d["authorizing_integration_owners"] = json!({"0": "0"});
    }
    d
}

/// An emoji object for a Unicode emoji.
pub fn unicode_emoji(name: &str) -> Value {
    json!({"id": null, "name": name})
}

/// An emoji object for a guild's custom emoji.
pub fn custom_emoji(name: &str, id: &str) -> Value {
    json!({"id": id, "name": name, "animated": false})
}

/// A MESSAGE_REACTION_ADD `d`: `user` reacted with `emoji` (an emoji
/// object) to a message. With `guild`, it carries [`GUILD_ID`] and the
/// user's `member`.
pub fn reaction_add(
    user: Value,
    channel_id: &str,
    message_id: &str,
    emoji: Value,
    guild: bool,
) -> Value {
    let user_id = user.get("id").cloned().unwrap_or(Value::Null);
    let mut d = json!({
        "user_id": user_id,
        "channel_id": channel_id,
        "message_id": message_id,
        "emoji": emoji,
        "burst": false,
        "burst_colors": [],
        "type": 0,
    });
    if guild {
        d["guild_id"] = Value::from(GUILD_ID);
        d["member"] = member(user);
    }
    d
}

/// A READY `d`: protocol version 10, the bot user, [`GUILD_ID`] as an
/// unavailable guild (no GUILD_CREATE follows), the session id, the URL to
/// resume on, shard `[0, 1]`, and the application (id = [`BOT_ID`]).
pub fn ready(session_id: &str, resume_gateway_url: &str) -> Value {
    json!({
        "v": 10,
        "user": bot_user(),
        "guilds": [{"id": GUILD_ID, "unavailable": true}],
        "session_id": session_id,
        "session_type": "normal",
        "resume_gateway_url": resume_gateway_url,
        "shard": [0, 1],
        "application": {"id": BOT_ID, "flags": 0},
        "private_channels": [],
        "presences": [],
        "relationships": [],
        "guild_join_requests": [],
        "user_settings": {},
        "_trace": ["[\"fake-discord\",{\"micros\":0}]"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(format_timestamp(0, 0), "1970-01-01T00:00:00.000000+00:00");
        assert_eq!(
            format_timestamp(1_717_243_200, 5),
            "2024-06-01T12:00:00.000005+00:00"
        );
        assert_eq!(
            format_timestamp(951_782_400, 0),
            "2000-02-29T00:00:00.000000+00:00"
        );
    }
}
