//! The session's operations, as Bot API calls.
//!
//! The host has already checked the chat (outbound gate), run the filters and
//! split long text at 4096 characters. Telegram counts UTF-16 code units, so
//! a piece with many astral characters (emoji) is split again here. Files go
//! after the text, one message each: images up to 10 MB as photos, anything
//! else (and larger images) as documents.

use airlock_guest::multipart::Form;
use airlock_guest::types::{
    AdapterError, AttachmentData, AttachmentRequest, Button, EditRequest, OutboundFile,
    OutboundMessage, ReactRequest, Sent, TextFormat,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::api::{Api, ApiFailure};
use crate::reactions;

/// Telegram's limit on one message, in UTF-16 code units.
pub const MAX_MESSAGE_UNITS: usize = 4096;
/// Largest image sent as a photo; larger ones go as documents.
pub const MAX_PHOTO_BYTES: usize = 10 << 20;
/// Largest file a bot may download through the Bot API.
pub const MAX_DOWNLOAD_BYTES: u64 = 20 << 20;
/// Longest `callback_data` Telegram accepts, in bytes.
pub const MAX_BUTTON_DATA: usize = 64;

/// The part of a sent `Message` the adapter reads.
#[derive(Debug, Deserialize)]
struct SentMessage {
    message_id: i64,
}

/// A `chat_id` parameter: a number, or `@channelname`.
pub fn chat_param(chat_id: &str) -> Result<Value, AdapterError> {
    if let Ok(id) = chat_id.trim().parse::<i64>() {
        return Ok(Value::from(id));
    }
    let valid_name = chat_id
        .strip_prefix('@')
        .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    if valid_name {
        return Ok(Value::from(chat_id));
    }
    Err(AdapterError::InvalidInput(format!(
        "{chat_id:?} is not a Telegram chat id (a number like 111 or -1001234567890)"
    )))
}

fn message_param(id: &str) -> Result<i64, AdapterError> {
    id.trim().parse().map_err(|_| {
        AdapterError::InvalidInput(format!(
            "{id:?} is not a Telegram message id (a number, as in the message_id attribute)"
        ))
    })
}

fn parse_mode(format: TextFormat) -> Option<&'static str> {
    match format {
        TextFormat::Plain => None,
        TextFormat::Markdown => Some("MarkdownV2"),
        TextFormat::Html => Some("HTML"),
    }
}

/// Splits `text` into pieces of at most `limit` UTF-16 code units, never
/// inside a character, preferring a line break in the second half.
///
/// No piece is blank unless the text is (then the one piece is the text,
/// or its blank tail when the text is over the limit): Telegram refuses a
/// whitespace-only message, so a stretch that would be one (spaces before
/// the line break cut at, or a long run of whitespace) is left out. The
/// pieces are the text in order with only whitespace left out, and only
/// between pieces (or before the first, after the last). A limit too small
/// for the next character still takes that character whole.
pub fn utf16_pieces(text: &str, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.encode_utf16().count() > limit {
        let mut units = 0;
        let mut hard = 0;
        for (i, c) in rest.char_indices() {
            if units + c.len_utf16() > limit {
                break;
            }
            units += c.len_utf16();
            hard = i + c.len_utf8();
        }
        if hard == 0 {
            hard = rest.chars().next().map_or(0, char::len_utf8);
        }
        let soft = rest[..hard]
            .rfind('\n')
            .filter(|&i| rest[..i].encode_utf16().count() >= limit / 2);
        let cut = soft.unwrap_or(hard).max(1);
        let piece = &rest[..cut];
        if !piece.trim().is_empty() {
            out.push(piece.to_string());
        }
        rest = rest[cut..].trim_start_matches('\n');
    }
    if !rest.trim().is_empty() || out.is_empty() {
        out.push(rest.to_string());
    }
    out
}

/// An inline keyboard, checked against Telegram's rules.
pub fn keyboard(rows: &[Vec<Button>]) -> Result<Option<Value>, AdapterError> {
    if rows.iter().all(Vec::is_empty) {
        return Ok(None);
    }
    let mut out = Vec::new();
    for row in rows.iter().filter(|r| !r.is_empty()) {
        let mut buttons = Vec::new();
        for b in row {
            if b.label.trim().is_empty() {
                return Err(AdapterError::InvalidInput("a button needs a label".into()));
            }
            if b.data.is_empty() || b.data.len() > MAX_BUTTON_DATA {
                return Err(AdapterError::InvalidInput(format!(
                    "button {:?}: its data must be 1 to {MAX_BUTTON_DATA} bytes on Telegram",
                    b.label
                )));
            }
            buttons.push(json!({"text": b.label, "callback_data": b.data}));
        }
        out.push(Value::Array(buttons));
    }
    Ok(Some(json!({ "inline_keyboard": out })))
}

fn is_photo(file: &OutboundFile) -> bool {
    matches!(
        file.mime.as_str(),
        "image/jpeg" | "image/png" | "image/gif" | "image/webp"
    ) && file.data.len() <= MAX_PHOTO_BYTES
}

fn failure(f: ApiFailure, format: TextFormat) -> AdapterError {
    if f.status == 400 && f.says("can't parse entities") {
        let syntax = if format == TextFormat::Html {
            "HTML (only <b>, <i>, <u>, <s>, <code>, <pre>, <a href> and a few more tags; escape <, > and & elsewhere)"
        } else {
            "MarkdownV2 (escape each of _ * [ ] ( ) ~ ` > # + - = | { } . ! with a backslash)"
        };
        return AdapterError::InvalidInput(format!(
            "Telegram could not parse the text as {syntax}: {}; fix the markup or send with format text",
            f.description
        ));
    }
    f.into_error()
}

/// `send`: the text (in pieces Telegram accepts), then each file.
pub fn send(api: &Api, message: OutboundMessage) -> Result<Sent, AdapterError> {
    let chat = chat_param(&message.chat_id)?;
    let mut reply_to = message.reply_to.as_deref().map(message_param).transpose()?;
    let markup = keyboard(&message.buttons)?;
    let mut ids = Vec::new();
    let has_text = !message.text.trim().is_empty();
    if !has_text && message.files.is_empty() {
        return Err(AdapterError::InvalidInput(
            "Telegram cannot send an empty message".into(),
        ));
    }
    if has_text {
        let pieces = utf16_pieces(&message.text, MAX_MESSAGE_UNITS);
        let last = pieces.len() - 1;
        for (i, piece) in pieces.into_iter().enumerate() {
            let mut params = Map::new();
            params.insert("chat_id".into(), chat.clone());
            params.insert("text".into(), Value::from(piece));
            if let Some(mode) = parse_mode(message.format) {
                params.insert("parse_mode".into(), Value::from(mode));
            }
            if let Some(id) = reply_to.take() {
                params.insert(
                    "reply_parameters".into(),
                    json!({"message_id": id, "allow_sending_without_reply": true}),
                );
            }
            if i == last
                && message.files.is_empty()
                && let Some(markup) = &markup
            {
                params.insert("reply_markup".into(), markup.clone());
            }
            let sent: SentMessage = api
                .call("sendMessage", &Value::Object(params))
                .map_err(|f| failure(f, message.format))?;
            ids.push(sent.message_id.to_string());
        }
    }
    let count = message.files.len();
    for (i, file) in message.files.into_iter().enumerate() {
        let (method, field) = if is_photo(&file) {
            ("sendPhoto", "photo")
        } else {
            ("sendDocument", "document")
        };
        let chat_text = match &chat {
            Value::String(name) => name.clone(),
            number => number.to_string(),
        };
        let mut form = Form::new().text("chat_id", chat_text);
        if let Some(id) = reply_to.take() {
            form = form.text(
                "reply_parameters",
                json!({"message_id": id, "allow_sending_without_reply": true}).to_string(),
            );
        }
        if i + 1 == count
            && let Some(markup) = &markup
        {
            form = form.text("reply_markup", markup.to_string());
        }
        let form = form.file(field, &file.name, &file.mime, file.data);
        let sent: SentMessage = api
            .call_multipart(method, form)
            .map_err(|f| failure(f, message.format))?;
        ids.push(sent.message_id.to_string());
    }
    Ok(Sent { message_ids: ids })
}

/// The `editMessageText` parameters. No `reply_markup`: Telegram then drops
/// the message's inline keyboard, so an edited message keeps no buttons.
fn edit_params(request: &EditRequest) -> Result<Value, AdapterError> {
    let mut params = Map::new();
    params.insert("chat_id".into(), chat_param(&request.chat_id)?);
    params.insert(
        "message_id".into(),
        Value::from(message_param(&request.message_id)?),
    );
    if request.text.encode_utf16().count() > MAX_MESSAGE_UNITS {
        return Err(AdapterError::InvalidInput(format!(
            "an edit must fit in one Telegram message ({MAX_MESSAGE_UNITS} UTF-16 units)"
        )));
    }
    params.insert("text".into(), Value::from(request.text.as_str()));
    if let Some(mode) = parse_mode(request.format) {
        params.insert("parse_mode".into(), Value::from(mode));
    }
    Ok(Value::Object(params))
}

/// `edit`: replace the text of one of the bot's messages.
pub fn edit(api: &Api, request: EditRequest) -> Result<(), AdapterError> {
    let params = edit_params(&request)?;
    match api.call::<Value>("editMessageText", &params) {
        Ok(_) => Ok(()),
        // The text is already what was asked for.
        Err(f) if f.says("message is not modified") => Ok(()),
        Err(f) => Err(failure(f, request.format)),
    }
}

/// `react`: one emoji from Telegram's list.
pub fn react(api: &Api, request: ReactRequest) -> Result<(), AdapterError> {
    let emoji = reactions::check(&request.emoji).map_err(AdapterError::InvalidInput)?;
    let params = json!({
        "chat_id": chat_param(&request.chat_id)?,
        "message_id": message_param(&request.message_id)?,
        "reaction": [{"type": "emoji", "emoji": emoji}],
    });
    api.call::<Value>("setMessageReaction", &params)
        .map(drop)
        .map_err(ApiFailure::into_error)
}

/// `typing`: the chat shows "typing…" for about five seconds.
pub fn typing(api: &Api, chat_id: &str) -> Result<(), AdapterError> {
    let params = json!({"chat_id": chat_param(chat_id)?, "action": "typing"});
    api.call::<Value>("sendChatAction", &params)
        .map(drop)
        .map_err(ApiFailure::into_error)
}

/// What `getFile` answers.
#[derive(Debug, Deserialize)]
struct FileInfo {
    #[serde(default)]
    file_path: Option<String>,
    #[serde(default)]
    file_size: Option<u64>,
}

/// `download-attachment`: `getFile`, then the file itself.
pub fn download(api: &Api, request: AttachmentRequest) -> Result<AttachmentData, AdapterError> {
    let id = request.attachment_id.trim();
    if id.is_empty() || id.len() > 256 || id.chars().any(|c| c.is_control()) {
        return Err(AdapterError::InvalidInput(format!(
            "{:?} is not a Telegram file id",
            request.attachment_id
        )));
    }
    let info: FileInfo = api
        .call("getFile", &json!({"file_id": id}))
        .map_err(ApiFailure::into_error)?;
    if let Some(size) = info.file_size.filter(|s| *s > MAX_DOWNLOAD_BYTES) {
        return Err(AdapterError::InvalidInput(format!(
            "Telegram lets bots download files of up to 20 MB; this one is {} MB",
            size.div_ceil(1 << 20)
        )));
    }
    let path = info
        .file_path
        .filter(|p| !p.is_empty())
        .ok_or_else(|| AdapterError::Platform("getFile gave no file_path for this file".into()))?;
    let data = api.download(&path).map_err(ApiFailure::into_error)?;
    let name = path.rsplit('/').next().unwrap_or("file").to_string();
    Ok(AttachmentData {
        name,
        mime: None,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_ids() {
        assert_eq!(chat_param("111").unwrap(), json!(111));
        assert_eq!(
            chat_param("-1001234567890").unwrap(),
            json!(-1001234567890_i64)
        );
        assert_eq!(chat_param("@my_channel").unwrap(), json!("@my_channel"));
        for bad in ["", "@", "abc", "1 OR 1", "@a/b"] {
            assert!(chat_param(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pieces_respect_utf16_units() {
        // 3000 emoji are 6000 UTF-16 units: two pieces.
        let text = "😀".repeat(3000);
        let pieces = utf16_pieces(&text, MAX_MESSAGE_UNITS);
        assert_eq!(pieces.len(), 2);
        assert!(
            pieces
                .iter()
                .all(|p| p.encode_utf16().count() <= MAX_MESSAGE_UNITS)
        );
        assert_eq!(pieces.concat(), text);
        // A line break in the second half is preferred.
        let text = format!("{}\n{}", "a".repeat(3000), "b".repeat(3000));
        let pieces = utf16_pieces(&text, MAX_MESSAGE_UNITS);
        assert_eq!(pieces, ["a".repeat(3000), "b".repeat(3000)]);
        assert_eq!(utf16_pieces("short", 10), ["short"]);
        assert_eq!(utf16_pieces("", 10), [""]);
    }

    #[test]
    fn no_piece_is_blank_unless_the_text_is() {
        // Spaces before the line break cut at, and a run of whitespace
        // that fills a whole piece, are left out rather than sent.
        assert_eq!(utf16_pieces("  \nab", 4), ["ab"]);
        assert_eq!(
            utf16_pieces("x\t\t\t\t\t\t\ty\t\t\t\t", 4),
            ["x\t\t\t", "y\t\t\t"]
        );
        let text = format!("{}\n{}", " ".repeat(2048), "b".repeat(4096));
        assert_eq!(utf16_pieces(&text, MAX_MESSAGE_UNITS), ["b".repeat(4096)]);
        // A blank text stays one piece (the caller refuses it).
        assert_eq!(utf16_pieces("   ", 10), ["   "]);
        assert_eq!(utf16_pieces("\t\t\t\t\t", 4), ["\t"]);
        // A limit below one character still cuts between characters.
        assert_eq!(utf16_pieces("😀a", 1), ["😀", "a"]);
    }

    #[test]
    fn an_edit_carries_no_keyboard_so_the_buttons_go() {
        let request = |format| EditRequest {
            chat_id: "111".into(),
            message_id: "42".into(),
            text: "Allowed".into(),
            format,
        };
        assert_eq!(
            edit_params(&request(TextFormat::Plain)).unwrap(),
            json!({"chat_id": 111, "message_id": 42, "text": "Allowed"})
        );
        let html = edit_params(&request(TextFormat::Html)).unwrap();
        assert_eq!(html["parse_mode"], "HTML");
        assert!(html.get("reply_markup").is_none(), "{html}");
        let mut too_long = request(TextFormat::Plain);
        too_long.text = "x".repeat(MAX_MESSAGE_UNITS + 1);
        assert!(matches!(
            edit_params(&too_long),
            Err(AdapterError::InvalidInput(_))
        ));
    }

    #[test]
    fn keyboards() {
        let b = |label: &str, data: &str| Button {
            label: label.into(),
            data: data.into(),
        };
        assert_eq!(keyboard(&[]).unwrap(), None);
        assert_eq!(
            keyboard(&[vec![b("Yes", "vote:yes"), b("No", "vote:no")]]).unwrap(),
            Some(json!({"inline_keyboard": [[
                {"text": "Yes", "callback_data": "vote:yes"},
                {"text": "No", "callback_data": "vote:no"}]]}))
        );
        assert!(keyboard(&[vec![b("Long", &"x".repeat(65))]]).is_err());
        assert!(keyboard(&[vec![b(" ", "x")]]).is_err());
    }
}
