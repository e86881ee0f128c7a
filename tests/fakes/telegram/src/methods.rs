//! The Bot API methods the fake implements.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::state::{ChatKey, Poller, State};
use crate::{BOT_FIRST_NAME, BOT_ID, BOT_USERNAME, Call, FakeTelegram, Shared};

/// Method names the fake answers, in their documented spelling.
const METHODS: &[&str] = &[
    "getMe",
    "getUpdates",
    "getWebhookInfo",
    "deleteWebhook",
    "sendMessage",
    "editMessageText",
    "setMessageReaction",
    "sendChatAction",
    "setMyCommands",
    "getMyCommands",
    "deleteMyCommands",
    "answerCallbackQuery",
    "getFile",
    "sendPhoto",
    "sendDocument",
];

/// The documented spelling of a method name, matched case-insensitively.
pub(crate) fn canonical(method: &str) -> Option<&'static str> {
    METHODS
        .iter()
        .copied()
        .find(|m| m.eq_ignore_ascii_case(method))
}

pub(crate) struct Reply {
    pub(crate) result: Value,
    pub(crate) description: Option<&'static str>,
}

pub(crate) struct ApiError {
    pub(crate) code: u16,
    pub(crate) description: String,
}

type Outcome = Result<Reply, ApiError>;

fn ok(result: Value) -> Outcome {
    Ok(Reply {
        result,
        description: None,
    })
}

fn bad(description: &str) -> ApiError {
    ApiError {
        code: 400,
        description: format!("Bad Request: {description}"),
    }
}

fn int(params: &Map<String, Value>, name: &str) -> Option<i64> {
    match params.get(name)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn boolean(params: &Map<String, Value>, name: &str) -> bool {
    matches!(params.get(name), Some(Value::Bool(true)))
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

const CONFLICT: &str = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running";

/// getUpdates: confirm by offset, then answer at once or hold the request
/// until an update arrives, the timeout ends, or a newer getUpdates takes
/// over (then 409).
pub(crate) async fn get_updates(shared: &Arc<Shared>, params: &Map<String, Value>) -> Outcome {
    let offset = int(params, "offset").unwrap_or(0);
    let limit = int(params, "limit").unwrap_or(100).clamp(1, 100) as usize;
    let timeout = int(params, "timeout").unwrap_or(0).clamp(0, 50) as u64;
    let (abort, mut aborted) = oneshot::channel();
    let generation = {
        let mut state = shared.lock();
        if let Some(Value::Array(kinds)) = params.get("allowed_updates") {
            state.allowed_updates = Some(
                kinds
                    .iter()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect(),
            );
        }
        if let Some(older) = state.poller.take() {
            let _ = older.abort.send(());
        }
        state.poll_generation += 1;
        let generation = state.poll_generation;
        state.poller = Some(Poller { generation, abort });
        confirm(&mut state, offset);
        generation
    };
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let outcome = loop {
        let notified = shared.new_update.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let state = shared.lock();
            if !state.updates.is_empty() || Instant::now() >= deadline {
                let batch: Vec<Value> = state.updates.iter().take(limit).cloned().collect();
                break ok(Value::Array(batch));
            }
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = &mut aborted => break Err(ApiError { code: 409, description: CONFLICT.to_owned() }),
            _ = tokio::time::sleep_until(deadline) => {}
        }
    };
    let mut state = shared.lock();
    if state
        .poller
        .as_ref()
        .is_some_and(|p| p.generation == generation)
    {
        state.poller = None;
    }
    outcome
}

/// Drops confirmed updates: ids below a positive offset, or all but the last
/// `-offset` for a negative one.
fn confirm(state: &mut State, offset: i64) {
    if offset > 0 {
        state
            .updates
            .retain(|u| u.get("update_id").and_then(Value::as_i64).unwrap_or(0) >= offset);
    } else if offset < 0 {
        let keep = offset.unsigned_abs() as usize;
        while state.updates.len() > keep {
            state.updates.pop_front();
        }
    }
}

/// Every method but getUpdates.
pub(crate) fn handle(shared: &Shared, method: &str, call: &Call) -> Outcome {
    let params = &call.params;
    let mut state = shared.lock();
    match method {
        "getMe" => ok(json!({
            "id": BOT_ID,
            "is_bot": true,
            "first_name": BOT_FIRST_NAME,
            "username": BOT_USERNAME,
            "can_join_groups": true,
            "can_read_all_group_messages": false,
            "supports_inline_queries": false,
            "can_connect_to_business": false,
            "has_main_web_app": false,
        })),
        "getWebhookInfo" => ok(json!({
            "url": "",
            "has_custom_certificate": false,
            "pending_update_count": state.updates.len(),
        })),
        "deleteWebhook" => {
            if boolean(params, "drop_pending_updates") {
                state.updates.clear();
            }
            Ok(Reply {
                result: Value::Bool(true),
                description: Some("Webhook is already deleted"),
            })
        }
        "sendMessage" => send_message(&mut state, params),
        "editMessageText" => edit_message_text(&mut state, params),
        "setMessageReaction" => set_message_reaction(&state, params),
        "sendChatAction" => send_chat_action(&state, params),
        "setMyCommands" => {
            let commands = check_commands(params)?;
            state.commands = commands;
            ok(Value::Bool(true))
        }
        "getMyCommands" => ok(state.commands.clone()),
        "deleteMyCommands" => {
            state.commands = json!([]);
            ok(Value::Bool(true))
        }
        "answerCallbackQuery" => match params.get("callback_query_id") {
            Some(Value::String(s)) if !s.is_empty() => ok(Value::Bool(true)),
            _ => Err(bad(
                "query is too old and response timeout expired or query ID is invalid",
            )),
        },
        "getFile" => {
            let Some(file_id) = params.get("file_id").and_then(Value::as_str) else {
                return Err(bad("file_id not specified"));
            };
            match state.files.get(file_id) {
                Some(file) => ok(json!({
                    "file_id": file_id,
                    "file_unique_id": file.unique_id,
                    "file_size": file.bytes.len(),
                    "file_path": file.path,
                })),
                None => Err(bad("invalid file_id")),
            }
        }
        "sendPhoto" => send_file(&mut state, call, "photo"),
        "sendDocument" => send_file(&mut state, call, "document"),
        _ => Err(ApiError {
            code: 404,
            description: "Not Found: method not found".to_owned(),
        }),
    }
}

fn chat_param(state: &State, params: &Map<String, Value>) -> Result<(ChatKey, Value), ApiError> {
    match params.get("chat_id") {
        None | Some(Value::Null) => Err(bad("chat_id is empty")),
        Some(Value::String(s)) if s.is_empty() => Err(bad("chat_id is empty")),
        Some(id) => state.chat(id).ok_or_else(|| bad("chat not found")),
    }
}

fn check_parse_mode(params: &Map<String, Value>) -> Result<(), ApiError> {
    match params.get("parse_mode") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(m))
            if ["html", "markdown", "markdownv2", ""]
                .contains(&m.to_ascii_lowercase().as_str()) =>
        {
            Ok(())
        }
        Some(m) => Err(bad(&format!(
            "unsupported parse_mode \"{}\"",
            m.as_str().unwrap_or_default()
        ))),
    }
}

/// An inline keyboard to attach, checked like the server does.
fn inline_markup(params: &Map<String, Value>) -> Result<Option<Value>, ApiError> {
    let Some(markup) = params.get("reply_markup") else {
        return Ok(None);
    };
    let Some(rows) = markup.get("inline_keyboard") else {
        // Reply keyboards and ForceReply are accepted but not shown on the
        // returned message, as on the real server.
        return Ok(None);
    };
    let Some(rows) = rows.as_array() else {
        return Err(bad(
            "can't parse inline keyboard button: InlineKeyboardButton must be an Object",
        ));
    };
    for button in rows.iter().flat_map(|r| r.as_array().into_iter().flatten()) {
        if button.get("text").and_then(Value::as_str).is_none() {
            return Err(bad(
                "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard",
            ));
        }
        if let Some(data) = button.get("callback_data").and_then(Value::as_str)
            && (data.is_empty() || data.len() > 64)
        {
            return Err(bad("BUTTON_DATA_INVALID"));
        }
    }
    Ok(Some(markup.clone()))
}

/// The message being replied to, if the call asks for one.
fn reply_target(
    state: &State,
    chat: &ChatKey,
    params: &Map<String, Value>,
) -> Result<Option<Value>, ApiError> {
    let (id, lenient) = match params.get("reply_parameters") {
        Some(Value::Object(rp)) => (
            int(rp, "message_id"),
            boolean(rp, "allow_sending_without_reply"),
        ),
        _ => (
            int(params, "reply_to_message_id"),
            boolean(params, "allow_sending_without_reply"),
        ),
    };
    let Some(id) = id else {
        return Ok(None);
    };
    match state.messages.get(&(chat.clone(), id)) {
        Some(message) => {
            let mut message = message.clone();
            if let Some(m) = message.as_object_mut() {
                m.remove("reply_to_message");
            }
            Ok(Some(message))
        }
        None if lenient => Ok(None),
        None => Err(bad("message to be replied not found")),
    }
}

fn new_message(state: &mut State, chat: Value) -> Value {
    let id = state.next_message_id;
    state.next_message_id += 1;
    json!({
        "message_id": id,
        "from": FakeTelegram::bot_user(),
        "chat": chat,
        "date": now(),
    })
}

fn store(state: &mut State, chat: ChatKey, message: Value) -> Outcome {
    let id = message["message_id"].as_i64().unwrap_or_default();
    state.messages.insert((chat.clone(), id), message.clone());
    state.sent_order.push((chat, id));
    ok(message)
}

fn text_param(params: &Map<String, Value>, edit: bool) -> Result<&str, ApiError> {
    let text = params.get("text").and_then(Value::as_str).unwrap_or("");
    if text.trim().is_empty() {
        return Err(bad("message text is empty"));
    }
    if text.encode_utf16().count() > 4096 {
        return Err(bad(if edit {
            "MESSAGE_TOO_LONG"
        } else {
            "message is too long"
        }));
    }
    Ok(text)
}

fn send_message(state: &mut State, params: &Map<String, Value>) -> Outcome {
    let (key, chat) = chat_param(state, params)?;
    let text = text_param(params, false)?;
    check_parse_mode(params)?;
    let markup = inline_markup(params)?;
    let reply = reply_target(state, &key, params)?;
    let mut message = new_message(state, chat);
    message["text"] = Value::from(text);
    for name in ["entities", "link_preview_options", "message_thread_id"] {
        if let Some(v) = params.get(name) {
            message[name] = v.clone();
        }
    }
    if let Some(reply) = reply {
        message["reply_to_message"] = reply;
    }
    if let Some(markup) = markup {
        message["reply_markup"] = markup;
    }
    store(state, key, message)
}

fn edit_message_text(state: &mut State, params: &Map<String, Value>) -> Outcome {
    if params.contains_key("inline_message_id") {
        text_param(params, true)?;
        check_parse_mode(params)?;
        inline_markup(params)?;
        return ok(Value::Bool(true));
    }
    let (key, _) = chat_param(state, params)?;
    let Some(id) = int(params, "message_id") else {
        return Err(bad("message identifier is not specified"));
    };
    let text = text_param(params, true)?;
    check_parse_mode(params)?;
    let markup = inline_markup(params)?;
    let Some(message) = state.messages.get(&(key.clone(), id)) else {
        return Err(bad("message to edit not found"));
    };
    if message["from"]["id"].as_i64() != Some(BOT_ID) {
        return Err(bad("message can't be edited"));
    }
    if message.get("text").and_then(Value::as_str) == Some(text)
        && message.get("reply_markup") == markup.as_ref()
    {
        return Err(bad(
            "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
        ));
    }
    let mut message = message.clone();
    let m = message
        .as_object_mut()
        .expect("stored messages are objects");
    m.insert("text".into(), Value::from(text));
    m.insert("edit_date".into(), Value::from(now()));
    match params.get("entities") {
        Some(e) => m.insert("entities".into(), e.clone()),
        None => m.remove("entities"),
    };
    match markup {
        Some(markup) => m.insert("reply_markup".into(), markup),
        None => m.remove("reply_markup"),
    };
    state.messages.insert((key.clone(), id), message.clone());
    if !state.sent_order.contains(&(key.clone(), id)) {
        state.sent_order.push((key, id));
    }
    ok(message)
}

/// Emoji a bot may react with (ReactionTypeEmoji), compared without U+FE0F.
const REACTION_EMOJI: &[&str] = &[
    "👍",
    "👎",
    "❤",
    "🔥",
    "🥰",
    "👏",
    "😁",
    "🤔",
    "🤯",
    "😱",
    "🤬",
    "😢",
    "🎉",
    "🤩",
    "🤮",
    "💩",
    "🙏",
    "👌",
    "🕊",
    "🤡",
    "🥱",
    "🥴",
    "😍",
    "🐳",
    "❤‍🔥",
    "🌚",
    "🌭",
    "💯",
    "🤣",
    "⚡",
    "🍌",
    "🏆",
    "💔",
    "🤨",
    "😐",
    "🍓",
    "🍾",
    "💋",
    "🖕",
    "😈",
    "😴",
    "😭",
    "🤓",
    "👻",
    "👨‍💻",
    "👀",
    "🎃",
    "🙈",
    "😇",
    "😨",
    "🤝",
    "✍",
    "🤗",
    "🫡",
    "🎅",
    "🎄",
    "☃",
    "💅",
    "🤪",
    "🗿",
    "🆒",
    "💘",
    "🙉",
    "🦄",
    "😘",
    "💊",
    "🙊",
    "😎",
    "👾",
    "🤷‍♂",
    "🤷",
    "🤷‍♀",
    "😡",
];

fn set_message_reaction(state: &State, params: &Map<String, Value>) -> Outcome {
    chat_param(state, params)?;
    if int(params, "message_id").is_none() {
        return Err(bad("message identifier is not specified"));
    }
    let reactions = match params.get("reaction") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(r)) => r.clone(),
        Some(_) => return Err(bad("REACTION_INVALID")),
    };
    if reactions.len() > 1 {
        return Err(bad("REACTIONS_TOO_MANY"));
    }
    for reaction in &reactions {
        let valid = match reaction.get("type").and_then(Value::as_str) {
            Some("emoji") => reaction
                .get("emoji")
                .and_then(Value::as_str)
                .is_some_and(|e| {
                    let e: String = e.chars().filter(|&c| c != '\u{FE0F}').collect();
                    REACTION_EMOJI.contains(&e.as_str())
                }),
            Some("custom_emoji") => reaction
                .get("custom_emoji_id")
                .is_some_and(Value::is_string),
            Some("paid") => true,
            _ => false,
        };
        if !valid {
            return Err(bad("REACTION_INVALID"));
        }
    }
    ok(Value::Bool(true))
}

const CHAT_ACTIONS: &[&str] = &[
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
];

fn send_chat_action(state: &State, params: &Map<String, Value>) -> Outcome {
    chat_param(state, params)?;
    match params.get("action").and_then(Value::as_str) {
        Some(a) if CHAT_ACTIONS.contains(&a) => ok(Value::Bool(true)),
        _ => Err(bad("wrong parameter action in request")),
    }
}

fn check_commands(params: &Map<String, Value>) -> Result<Value, ApiError> {
    let Some(Value::Array(commands)) = params.get("commands") else {
        return Err(bad("parameter \"commands\" is required"));
    };
    if commands.len() > 100 {
        return Err(bad("too many commands specified"));
    }
    for c in commands {
        let command = c.get("command").and_then(Value::as_str).unwrap_or("");
        let description = c.get("description").and_then(Value::as_str).unwrap_or("");
        let valid = (1..=32).contains(&command.len())
            && command
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(bad("BOT_COMMAND_INVALID"));
        }
        if !(1..=256).contains(&description.chars().count()) {
            return Err(bad("command description is empty"));
        }
    }
    Ok(Value::Array(commands.clone()))
}

/// sendPhoto / sendDocument: the file is an uploaded part (`photo` or
/// `attach://<part>`), a known file_id, or a URL.
fn send_file(state: &mut State, call: &Call, field: &str) -> Outcome {
    let params = &call.params;
    let (key, chat) = chat_param(state, params)?;
    check_parse_mode(params)?;
    let markup = inline_markup(params)?;
    let reply = reply_target(state, &key, params)?;
    let caption = params.get("caption").and_then(Value::as_str);
    if caption.is_some_and(|c| c.encode_utf16().count() > 1024) {
        return Err(bad("message caption is too long"));
    }
    let part_name = match params.get(field).and_then(Value::as_str) {
        Some(s) => s.strip_prefix("attach://").map(str::to_owned),
        None => Some(field.to_owned()),
    };
    let uploaded = part_name.and_then(|name| call.files.iter().find(|f| f.field == name));
    let (file_id, unique_id, size, file_name, mime) = if let Some(upload) = uploaded {
        state.next_file += 1;
        let n = state.next_file;
        let file_id = format!("{field}-upload-{n}");
        let dir = if field == "photo" {
            "photos"
        } else {
            "documents"
        };
        let path = format!("{dir}/file_{n}_{}", upload.file_name);
        state.add_file(&file_id, &path, upload.bytes.clone());
        let unique_id = state.files[&file_id].unique_id.clone();
        (
            file_id,
            unique_id,
            upload.bytes.len(),
            upload.file_name.clone(),
            upload.content_type.clone(),
        )
    } else {
        match params.get(field).and_then(Value::as_str) {
            Some(id) if state.files.contains_key(id) => {
                let file = &state.files[id];
                let name = file.path.rsplit('/').next().unwrap_or("file").to_owned();
                (
                    id.to_owned(),
                    file.unique_id.clone(),
                    file.bytes.len(),
                    name,
                    None,
                )
            }
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                state.next_file += 1;
                let n = state.next_file;
                let name = url.rsplit('/').next().unwrap_or("file").to_owned();
                (
                    format!("{field}-url-{n}"),
                    format!("AQAD-url-{n}"),
                    0,
                    name,
                    None,
                )
            }
            Some(_) => return Err(bad("wrong file identifier/HTTP URL specified")),
            None => return Err(bad(&format!("there is no {field} in the request"))),
        }
    };
    let mut message = new_message(state, chat);
    if field == "photo" {
        message["photo"] = json!([{
            "file_id": file_id,
            "file_unique_id": unique_id,
            "file_size": size,
            "width": 90,
            "height": 90,
        }]);
    } else {
        let mut document = json!({
            "file_id": file_id,
            "file_unique_id": unique_id,
            "file_name": file_name,
            "file_size": size,
        });
        if let Some(mime) = mime {
            document["mime_type"] = Value::from(mime);
        }
        message["document"] = document;
    }
    if let Some(caption) = caption {
        message["caption"] = Value::from(caption);
    }
    if let Some(e) = params.get("caption_entities") {
        message["caption_entities"] = e.clone();
    }
    if let Some(reply) = reply {
        message["reply_to_message"] = reply;
    }
    if let Some(markup) = markup {
        message["reply_markup"] = markup;
    }
    store(state, key, message)
}
