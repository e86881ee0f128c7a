//! Messages and reactions: creating, editing, deleting, listing, reacting,
//! with the checks Discord makes on message bodies.

use serde_json::{Value, json};

use crate::reply::{
    Reply, empty_message, error, form_error, required, too_long, unknown_channel, unknown_message,
};
use crate::state::{State, id_of, same_emoji, snowflake, snowflake_of, strip_gateway_fields};
use crate::{BOT_ID, Call, GUILD_ID, UploadedFile, payloads};

/// The longest `content` Discord takes, in characters.
const MAX_CONTENT: usize = 2000;
/// `flags` bit of a message laid out with components v2 (other limits).
const COMPONENTS_V2: u64 = 1 << 15;

impl State {
    /// `GET /channels/{id}/messages`: newest first, paged by `before`,
    /// `after` or `around`.
    pub(crate) fn history_route(&self, channel_id: &str, call: &Call) -> Reply {
        if !self.channels.contains_key(channel_id) {
            return unknown_channel();
        }
        let limit = match call.query_param("limit") {
            None => 50,
            Some(text) => match text.parse::<i64>() {
                Ok(n) if n < 1 => {
                    return form_error(
                        &["limit"],
                        "NUMBER_TYPE_MIN",
                        "int value should be greater than or equal to 1.",
                    );
                }
                Ok(n) if n > 100 => {
                    return form_error(
                        &["limit"],
                        "NUMBER_TYPE_MAX",
                        "int value should be less than or equal to 100.",
                    );
                }
                Ok(n) => n as usize,
                Err(_) => {
                    return form_error(
                        &["limit"],
                        "NUMBER_TYPE_COERCE",
                        &format!("Value \"{text}\" is not int."),
                    );
                }
            },
        };
        let history = self
            .history
            .get(channel_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let anchor = |name: &str| call.query_param(name).map(snowflake);
        // Oldest first in, newest first out.
        let mut picked: Vec<&Value> = if let Some(before) = anchor("before") {
            let older: Vec<&Value> = history
                .iter()
                .filter(|m| snowflake_of(m) < before)
                .collect();
            older[older.len().saturating_sub(limit)..].to_vec()
        } else if let Some(after) = anchor("after") {
            history
                .iter()
                .filter(|m| snowflake_of(m) > after)
                .take(limit)
                .collect()
        } else if let Some(around) = anchor("around") {
            let at = history.partition_point(|m| snowflake_of(m) < around);
            let start = at.saturating_sub(limit / 2);
            let end = (start + limit).min(history.len());
            history[start..end].iter().collect()
        } else {
            history[history.len().saturating_sub(limit)..]
                .iter()
                .collect()
        };
        picked.reverse();
        Reply::ok(Value::Array(picked.into_iter().map(rest_form).collect()))
    }

    /// `POST /channels/{id}/messages`: validated, stored, answered, then
    /// dispatched as MESSAGE_CREATE.
    pub(crate) fn create_message(&mut self, channel_id: &str, call: &Call) -> Reply {
        if !self.channels.contains_key(channel_id) {
            return unknown_channel();
        }
        let body = call.json.clone().unwrap_or_else(|| json!({}));
        if !body.is_object() {
            return form_error(
                &[],
                "DICT_TYPE_CONVERT",
                "Only dictionaries may be used in a DictType",
            );
        }
        let message = match self.build_message(channel_id, &body, &call.files) {
            Ok(message) => message,
            Err(reply) => return reply,
        };
        self.add_message(channel_id, message.clone());
        let event = self.gateway_form(&message);
        self.emit("MESSAGE_CREATE", event);
        Reply::ok(message)
    }

    /// A new message by the bot from a create-message body, validated.
    pub(crate) fn build_message(
        &mut self,
        channel_id: &str,
        body: &Value,
        files: &[UploadedFile],
    ) -> Result<Value, Reply> {
        check_fields(body)?;
        let content = body.get("content").and_then(Value::as_str).unwrap_or("");
        let embeds = array(body, "embeds");
        let components = array(body, "components");
        let stickers = !array(body, "sticker_ids").is_empty();
        let poll = body.get("poll").is_some_and(|p| !p.is_null());
        if content.is_empty()
            && embeds.is_empty()
            && components.is_empty()
            && files.is_empty()
            && !stickers
            && !poll
        {
            return Err(empty_message());
        }

        let mut kind = 0;
        let mut reference = None;
        let mut referenced = None;
        if let Some(r) = body.get("message_reference").filter(|r| r.is_object()) {
            let ref_kind = r.get("type").and_then(Value::as_u64).unwrap_or(0);
            let ref_message = id_of(r.get("message_id"));
            let ref_channel = id_of(r.get("channel_id")).unwrap_or_else(|| channel_id.to_owned());
            let must_exist = r
                .get("fail_if_not_exists")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            match (ref_kind, ref_message) {
                (0, Some(ref_message)) => match self.find_message(&ref_channel, &ref_message) {
                    Some(target) => {
                        kind = 19;
                        referenced = Some(rest_form(target));
                        let mut out = json!({
                            "type": 0,
                            "channel_id": ref_channel,
                            "message_id": ref_message,
                        });
                        if self.is_guild_channel(&ref_channel) {
                            out["guild_id"] = Value::from(GUILD_ID);
                        }
                        reference = Some(out);
                    }
                    None if must_exist => {
                        return Err(form_error(
                            &["message_reference"],
                            "REPLIES_UNKNOWN_MESSAGE",
                            "Unknown message",
                        ));
                    }
                    None => {}
                },
                _ => reference = Some(r.clone()),
            }
        }

        let attachments = self.store_uploads(channel_id, body, files);
        let mentions = self.mentions_in(content, body.get("allowed_mentions"));
        let id = self.new_id();
        let mut message = json!({
            "id": id,
            "type": kind,
            "channel_id": channel_id,
            "author": payloads::bot_user(),
            "content": content,
            "timestamp": payloads::now_timestamp(),
            "edited_timestamp": null,
            "tts": body.get("tts").and_then(Value::as_bool).unwrap_or(false),
            "mention_everyone": false,
            "mentions": mentions,
            "mention_roles": [],
            "attachments": attachments,
            "embeds": rich_embeds(embeds),
            "components": with_component_ids(components),
            "pinned": false,
            "flags": body.get("flags").and_then(Value::as_u64).unwrap_or(0),
        });
        if let Some(nonce) = body.get("nonce").filter(|n| !n.is_null()) {
            message["nonce"] = nonce.clone();
        }
        if let Some(reference) = reference {
            message["message_reference"] = reference;
        }
        if let Some(referenced) = referenced {
            message["referenced_message"] = referenced;
        }
        if let Some(stickers) = body.get("sticker_ids").filter(|s| !array_is_empty(s)) {
            let items: Vec<Value> = stickers
                .as_array()
                .into_iter()
                .flatten()
                .map(|id| json!({"id": id, "name": "sticker", "format_type": 1}))
                .collect();
            message["sticker_items"] = Value::Array(items);
        }
        if poll {
            message["poll"] = body["poll"].clone();
        }
        Ok(message)
    }

    /// Attachment objects for uploaded files. The body's `attachments`
    /// entries (`{"id": n, "filename", "description"}`) name `files[n]`.
    fn store_uploads(
        &mut self,
        channel_id: &str,
        body: &Value,
        files: &[UploadedFile],
    ) -> Vec<Value> {
        let meta = array(body, "attachments");
        files
            .iter()
            .enumerate()
            .map(|(i, file)| {
                let index = file
                    .field
                    .strip_prefix("files[")
                    .and_then(|r| r.strip_suffix(']'))
                    .map_or_else(|| i.to_string(), str::to_owned);
                let entry = meta
                    .iter()
                    .find(|m| id_of(m.get("id")).is_some_and(|id| id == index));
                let filename = entry
                    .and_then(|m| m.get("filename"))
                    .and_then(Value::as_str)
                    .unwrap_or(&file.filename);
                let description = entry
                    .and_then(|m| m.get("description"))
                    .and_then(Value::as_str);
                self.add_attachment(
                    channel_id,
                    filename,
                    file.content_type.as_deref(),
                    description,
                    file.bytes.clone(),
                )
            })
            .collect()
    }

    /// The users `<@id>` / `<@!id>` in `content` mentions, as
    /// `allowed_mentions` lets them through.
    fn mentions_in(&self, content: &str, allowed: Option<&Value>) -> Vec<Value> {
        let allowed = allowed.filter(|a| a.is_object());
        let parse_users = allowed.is_none_or(|a| {
            array(a, "parse")
                .iter()
                .any(|p| p.as_str() == Some("users"))
        });
        let listed: Vec<String> = allowed
            .map(|a| {
                array(a, "users")
                    .iter()
                    .filter_map(|u| id_of(Some(u)))
                    .collect()
            })
            .unwrap_or_default();
        let mut ids: Vec<String> = Vec::new();
        let mut rest = content;
        while let Some(at) = rest.find("<@") {
            rest = &rest[at + 2..];
            let candidate = rest.strip_prefix('!').unwrap_or(rest);
            let digits: String = candidate.chars().take_while(char::is_ascii_digit).collect();
            if !digits.is_empty()
                && candidate[digits.len()..].starts_with('>')
                && !ids.contains(&digits)
            {
                ids.push(digits);
            }
        }
        ids.into_iter()
            .filter(|id| parse_users || listed.contains(id))
            .map(|id| self.user(&id))
            .collect()
    }

    /// A stored message as the gateway sends it: with `guild_id`, the
    /// author's `member` and `channel_type` in a guild channel.
    pub(crate) fn gateway_form(&self, message: &Value) -> Value {
        let mut event = message.clone();
        let channel_id = id_of(message.get("channel_id")).unwrap_or_default();
        if self.is_guild_channel(&channel_id) {
            event["guild_id"] = Value::from(GUILD_ID);
            event["member"] = payloads::partial_member();
        }
        event["channel_type"] = Value::from(self.channel_type(&channel_id));
        event
    }

    /// `PATCH /channels/{id}/messages/{id}`: only the bot's own messages.
    pub(crate) fn edit_message(
        &mut self,
        channel_id: &str,
        message_id: &str,
        call: &Call,
    ) -> Reply {
        if !self.channels.contains_key(channel_id) {
            return unknown_channel();
        }
        let body = call.json.clone().unwrap_or_else(|| json!({}));
        let Some(stored) = self.find_message(channel_id, message_id) else {
            return unknown_message();
        };
        let author = stored.get("author").and_then(|a| id_of(a.get("id")));
        if author.as_deref() != Some(BOT_ID) {
            return error(403, 50005, "Cannot edit a message authored by another user");
        }
        let stored = stored.clone();
        match self.apply_edit(channel_id, stored, &body, &call.files) {
            Ok(message) => Reply::ok(rest_form(&message)),
            Err(reply) => reply,
        }
    }

    /// Applies an edit body to a stored message, stores and dispatches the
    /// result (MESSAGE_UPDATE).
    pub(crate) fn apply_edit(
        &mut self,
        channel_id: &str,
        mut message: Value,
        body: &Value,
        files: &[UploadedFile],
    ) -> Result<Value, Reply> {
        check_fields(body)?;
        if let Some(content) = body.get("content") {
            message["content"] = Value::from(content.as_str().unwrap_or(""));
            let mentions =
                self.mentions_in(content.as_str().unwrap_or(""), body.get("allowed_mentions"));
            message["mentions"] = Value::Array(mentions);
        }
        if let Some(embeds) = body.get("embeds") {
            message["embeds"] = Value::Array(rich_embeds(array_of(embeds)));
        }
        if let Some(components) = body.get("components") {
            message["components"] = Value::Array(with_component_ids(array_of(components)));
        }
        if let Some(flags) = body.get("flags").and_then(Value::as_u64) {
            message["flags"] = Value::from(flags);
        }
        let mut attachments: Vec<Value> = match body.get("attachments") {
            // Listed ones stay, others go; new uploads come after.
            Some(keep) => {
                let keep: Vec<String> = array_of(keep)
                    .iter()
                    .filter_map(|a| id_of(a.get("id")))
                    .collect();
                array(&message, "attachments")
                    .iter()
                    .filter(|a| id_of(a.get("id")).is_some_and(|id| keep.contains(&id)))
                    .cloned()
                    .collect()
            }
            None => array(&message, "attachments").to_vec(),
        };
        attachments.extend(self.store_uploads(channel_id, body, files));
        message["attachments"] = Value::Array(attachments);
        let empty = message
            .get("content")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
            && array(&message, "embeds").is_empty()
            && array(&message, "components").is_empty()
            && array(&message, "attachments").is_empty()
            && array(&message, "sticker_items").is_empty();
        if empty {
            return Err(empty_message());
        }
        message["edited_timestamp"] = Value::from(payloads::now_timestamp());
        let message_id = id_of(message.get("id")).unwrap_or_default();
        if let Some(slot) = self.find_message_mut(channel_id, &message_id) {
            *slot = message.clone();
        }
        let event = self.gateway_form(&message);
        self.emit("MESSAGE_UPDATE", event);
        Ok(message)
    }

    /// `DELETE /channels/{id}/messages/{id}`.
    pub(crate) fn delete_message(&mut self, channel_id: &str, message_id: &str) -> Reply {
        if !self.channels.contains_key(channel_id) {
            return unknown_channel();
        }
        if self.remove_message(channel_id, message_id).is_none() {
            return unknown_message();
        }
        let mut event = json!({"id": message_id, "channel_id": channel_id});
        if self.is_guild_channel(channel_id) {
            event["guild_id"] = Value::from(GUILD_ID);
        }
        self.emit("MESSAGE_DELETE", event);
        Reply::no_content()
    }

    // ---- reactions ---------------------------------------------------------

    /// `PUT …/reactions/{emoji}/@me`.
    pub(crate) fn add_reaction(
        &mut self,
        channel_id: &str,
        message_id: &str,
        segment: &str,
    ) -> Reply {
        if !self.channels.contains_key(channel_id) {
            return unknown_channel();
        }
        let Some(emoji) = parse_emoji(segment) else {
            return error(400, 10014, "Unknown Emoji");
        };
        let Some(message) = self.find_message_mut(channel_id, message_id) else {
            return unknown_message();
        };
        let author = message.get("author").and_then(|a| id_of(a.get("id")));
        if !message.get("reactions").is_some_and(Value::is_array) {
            message["reactions"] = json!([]);
        }
        let reactions = message["reactions"].as_array_mut().expect("array");
        match reactions
            .iter_mut()
            .find(|r| same_emoji(&r["emoji"], &emoji))
        {
            Some(r) if r["me"] == Value::Bool(true) => return Reply::no_content(),
            Some(r) => {
                let count = r["count"].as_u64().unwrap_or(0) + 1;
                let normal = r["count_details"]["normal"].as_u64().unwrap_or(0) + 1;
                r["count"] = Value::from(count);
                r["count_details"]["normal"] = Value::from(normal);
                r["me"] = Value::Bool(true);
            }
            None => reactions.push(json!({
                "count": 1,
                "count_details": {"burst": 0, "normal": 1},
                "me": true,
                "me_burst": false,
                "emoji": emoji,
                "burst_colors": [],
            })),
        }
        let mut event = json!({
            "user_id": BOT_ID,
            "channel_id": channel_id,
            "message_id": message_id,
            "emoji": emoji,
            "burst": false,
            "burst_colors": [],
            "type": 0,
        });
        if let Some(author) = author {
            event["message_author_id"] = Value::from(author);
        }
        if self.is_guild_channel(channel_id) {
            event["guild_id"] = Value::from(GUILD_ID);
            event["member"] = payloads::member(payloads::bot_user());
        }
        self.emit("MESSAGE_REACTION_ADD", event);
        Reply::no_content()
    }

    /// `DELETE …/reactions/{emoji}/@me`.
    pub(crate) fn remove_reaction(
        &mut self,
        channel_id: &str,
        message_id: &str,
        segment: &str,
    ) -> Reply {
        if !self.channels.contains_key(channel_id) {
            return unknown_channel();
        }
        let Some(emoji) = parse_emoji(segment) else {
            return error(400, 10014, "Unknown Emoji");
        };
        let Some(message) = self.find_message_mut(channel_id, message_id) else {
            return unknown_message();
        };
        let Some(reactions) = message.get_mut("reactions").and_then(Value::as_array_mut) else {
            return Reply::no_content();
        };
        let Some(at) = reactions
            .iter()
            .position(|r| same_emoji(&r["emoji"], &emoji) && r["me"] == Value::Bool(true))
        else {
            return Reply::no_content();
        };
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
            r["me"] = Value::Bool(false);
        }
        let mut event = json!({
            "user_id": BOT_ID,
            "channel_id": channel_id,
            "message_id": message_id,
            "emoji": emoji,
            "burst": false,
            "type": 0,
        });
        if self.is_guild_channel(channel_id) {
            event["guild_id"] = Value::from(GUILD_ID);
        }
        self.emit("MESSAGE_REACTION_REMOVE", event);
        Reply::no_content()
    }
}

/// A message as REST returns it (no gateway-only fields).
pub(crate) fn rest_form(message: &Value) -> Value {
    let mut out = message.clone();
    strip_gateway_fields(&mut out);
    out
}

pub(crate) fn array<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

pub(crate) fn array_of(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

pub(crate) fn array_is_empty(value: &Value) -> bool {
    value.as_array().is_none_or(Vec::is_empty)
}

pub(crate) fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Embeds as Discord echoes them: `type` "rich" unless given.
fn rich_embeds(embeds: &[Value]) -> Vec<Value> {
    embeds
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if e.is_object() && e.get("type").is_none() {
                e["type"] = Value::from("rich");
            }
            e
        })
        .collect()
}

/// Components as Discord echoes them: every component numbered (`id`,
/// depth first from 1) unless it has an id.
fn with_component_ids(components: &[Value]) -> Vec<Value> {
    fn number(value: &mut Value, next: &mut u64) {
        if let Some(map) = value.as_object_mut() {
            if !map.contains_key("id") {
                map.insert("id".to_owned(), Value::from(*next));
            }
            *next += 1;
            if let Some(children) = map.get_mut("components").and_then(Value::as_array_mut) {
                for child in children {
                    number(child, next);
                }
            }
        }
    }
    let mut next = 1;
    let mut out = components.to_vec();
    for c in &mut out {
        number(c, &mut next);
    }
    out
}

/// Length and shape checks Discord makes on a message body (content,
/// embeds, action rows, buttons).
fn check_fields(body: &Value) -> Result<(), Reply> {
    if let Some(content) = body.get("content").filter(|c| !c.is_null()) {
        let Some(text) = content.as_str() else {
            return Err(form_error(
                &["content"],
                "BASE_TYPE_STRING",
                "Could not interpret the value as string.",
            ));
        };
        if text.chars().count() > MAX_CONTENT {
            return Err(too_long(&["content"], MAX_CONTENT));
        }
    }
    let embeds = array(body, "embeds");
    if embeds.len() > 10 {
        return Err(too_long(&["embeds"], 10));
    }
    for (i, embed) in embeds.iter().enumerate() {
        let i = i.to_string();
        for (field, max) in [("title", 256), ("description", 4096)] {
            let long = embed
                .get(field)
                .and_then(Value::as_str)
                .is_some_and(|t| t.chars().count() > max);
            if long {
                return Err(too_long(&["embeds", &i, field], max));
            }
        }
    }
    let v2 = body
        .get("flags")
        .and_then(Value::as_u64)
        .is_some_and(|f| f & COMPONENTS_V2 != 0);
    if v2 {
        return Ok(());
    }
    let rows = array(body, "components");
    if rows.len() > 5 {
        return Err(too_long(&["components"], 5));
    }
    for (i, row) in rows.iter().enumerate() {
        let i = i.to_string();
        let children = array(row, "components");
        if children.len() > 5 {
            return Err(too_long(&["components", &i, "components"], 5));
        }
        for (j, child) in children.iter().enumerate() {
            let j = j.to_string();
            let path = ["components", &i, "components", &j];
            if child.get("type").and_then(Value::as_u64) != Some(2) {
                continue;
            }
            let text = |key: &str| child.get(key).and_then(Value::as_str);
            let at = |key: &'static str| {
                let mut p = path.to_vec();
                p.push(key);
                p
            };
            match child.get("style").and_then(Value::as_u64) {
                Some(1..=4) => match text("custom_id") {
                    None => return Err(required(&at("custom_id"))),
                    Some(id) if id.chars().count() > 100 => {
                        return Err(too_long(&at("custom_id"), 100));
                    }
                    Some(_) => {}
                },
                Some(5) => {
                    if text("url").is_none() {
                        return Err(required(&at("url")));
                    }
                }
                Some(6) => {}
                _ => {
                    return Err(form_error(
                        &at("style"),
                        "BASE_TYPE_CHOICES",
                        "Value must be one of {1, 2, 3, 4, 5, 6}.",
                    ));
                }
            }
            if text("label").is_some_and(|l| l.chars().count() > 80) {
                return Err(too_long(&at("label"), 80));
            }
        }
    }
    Ok(())
}

/// The emoji object for a reaction path segment (already percent-decoded):
/// `name:id` for a custom emoji, else a Unicode emoji. `None` is Discord's
/// Unknown Emoji.
fn parse_emoji(segment: &str) -> Option<Value> {
    if segment.is_empty() || segment.contains('\u{FFFD}') {
        return None;
    }
    if let Some((name, id)) = segment.split_once(':') {
        let name_ok = (2..=32).contains(&name.chars().count())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let id_ok = !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit());
        return (name_ok && id_ok).then(|| payloads::custom_emoji(name, id));
    }
    // A Unicode emoji always has a character outside ASCII (keycaps
    // included: U+FE0F, U+20E3).
    (!segment.is_ascii() && !segment.chars().any(char::is_control))
        .then(|| payloads::unicode_emoji(segment))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_segments() {
        assert_eq!(parse_emoji("👍"), Some(payloads::unicode_emoji("👍")));
        assert_eq!(
            parse_emoji("1\u{FE0F}\u{20E3}").map(|e| e["id"].clone()),
            Some(Value::Null)
        );
        assert_eq!(
            parse_emoji("blob:123456789012345678"),
            Some(payloads::custom_emoji("blob", "123456789012345678"))
        );
        assert_eq!(parse_emoji("blob:"), None);
        assert_eq!(parse_emoji(":123"), None);
        assert_eq!(parse_emoji("blob:12a"), None);
        assert_eq!(parse_emoji("thumbsup"), None);
        assert_eq!(parse_emoji(""), None);
    }

    #[test]
    fn component_ids() {
        let rows = [json!({"type": 1, "components": [{"type": 2}, {"type": 2, "id": 9}]})];
        let out = with_component_ids(&rows);
        assert_eq!(out[0]["id"], 1);
        assert_eq!(out[0]["components"][0]["id"], 2);
        assert_eq!(out[0]["components"][1]["id"], 9);
    }
}
