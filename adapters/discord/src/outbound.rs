//! Sending: messages (reply-to, buttons, files), reactions, edits, typing,
//! history and attachment downloads.
//!
//! The host has already split text at 2000 characters and put any files on
//! the first chunk. Mentions in the text ping users only: `@everyone`,
//! `@here` and roles are never pinged, whatever the session writes.

use airlock_guest::http::Request;
use airlock_guest::multipart::Form;
use airlock_guest::percent;
use airlock_guest::types::{
    AdapterError, AttachmentData, AttachmentRequest, Button, EditRequest, HistoryEntry,
    HistoryRequest, OutboundMessage, ReactRequest, Sender, Sent, TextFormat,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::inbound::split_attachment_id;
use crate::model::{self, Message};
use crate::rest::Rest;

/// Buttons per row and rows per message.
const MAX_BUTTONS: usize = 5;
/// Longest button label and custom id.
const MAX_LABEL: usize = 80;
const MAX_CUSTOM_ID: usize = 100;
/// Largest attachment downloaded (the host's response cap is 16 MiB).
const MAX_DOWNLOAD: usize = 16 << 20;
/// Most bytes of files one message carries.
pub const MAX_FILES_TOTAL: usize = 100 << 20;

/// A channel id as Discord has them: a snowflake.
fn snowflake(what: &str, id: &str) -> Result<(), AdapterError> {
    if model::is_snowflake(id) {
        Ok(())
    } else {
        Err(AdapterError::InvalidInput(format!(
            "{what} {id:?} is not a Discord id (digits only, like 4000000000000000001)"
        )))
    }
}

fn check_format(format: TextFormat) -> Result<(), AdapterError> {
    match format {
        TextFormat::Plain | TextFormat::Markdown => Ok(()),
        TextFormat::Html => Err(AdapterError::InvalidInput(
            "Discord has no HTML formatting; use format markdown (Discord's own) or text".into(),
        )),
    }
}

/// Action rows of buttons.
pub fn components(rows: &[Vec<Button>]) -> Result<Value, AdapterError> {
    if rows.len() > MAX_BUTTONS || rows.iter().any(|r| r.len() > MAX_BUTTONS) {
        return Err(AdapterError::InvalidInput(format!(
            "Discord allows at most {MAX_BUTTONS} rows of {MAX_BUTTONS} buttons"
        )));
    }
    let mut out = Vec::new();
    for row in rows.iter().filter(|r| !r.is_empty()) {
        let mut buttons = Vec::new();
        for b in row {
            if b.label.is_empty() || b.label.chars().count() > MAX_LABEL {
                return Err(AdapterError::InvalidInput(format!(
                    "a button label must have 1 to {MAX_LABEL} characters, not {}",
                    b.label.chars().count()
                )));
            }
            if b.data.is_empty() || b.data.chars().count() > MAX_CUSTOM_ID {
                return Err(AdapterError::InvalidInput(format!(
                    "a button's data must have 1 to {MAX_CUSTOM_ID} characters on Discord"
                )));
            }
            buttons.push(json!({"type": 2, "style": 1, "label": b.label, "custom_id": b.data}));
        }
        out.push(json!({"type": 1, "components": buttons}));
    }
    Ok(Value::Array(out))
}

/// The create-message body (without files).
pub fn message_body(message: &OutboundMessage) -> Result<Value, AdapterError> {
    let mut body = json!({
        "content": message.text,
        "allowed_mentions": {"parse": ["users"], "replied_user": true},
    });
    if let Some(to) = &message.reply_to {
        snowflake("reply_to", to)?;
        body["message_reference"] = json!({"message_id": to, "fail_if_not_exists": false});
    }
    if !message.buttons.is_empty() {
        body["components"] = components(&message.buttons)?;
    }
    Ok(body)
}

/// `POST /channels/{id}/messages`, as multipart when there are files.
pub fn send(rest: &Rest, message: OutboundMessage) -> Result<Sent, AdapterError> {
    snowflake("chat", &message.chat_id)?;
    check_format(message.format)?;
    let mut body = message_body(&message)?;
    let path = format!("/channels/{}/messages", message.chat_id);
    let sent: Message = if message.files.is_empty() {
        rest.call("POST", &path, Some(&body))?
    } else {
        let total: usize = message.files.iter().map(|f| f.data.len()).sum();
        if total > MAX_FILES_TOTAL {
            return Err(AdapterError::InvalidInput(format!(
                "the files add up to {} MB; at most {} MB go in one Discord message",
                total >> 20,
                MAX_FILES_TOTAL >> 20
            )));
        }
        body["attachments"] = Value::Array(
            message
                .files
                .iter()
                .enumerate()
                .map(|(i, f)| json!({"id": i, "filename": f.name}))
                .collect(),
        );
        let mut form = Form::new().text("payload_json", body.to_string());
        for (i, f) in message.files.into_iter().enumerate() {
            form = form.file(&format!("files[{i}]"), &f.name, &f.mime, f.data);
        }
        rest.call_multipart("POST", &path, form)?
    };
    Ok(Sent {
        message_ids: vec![sent.id],
    })
}

/// The path segment of a reaction emoji: a Unicode emoji, or a custom one
/// as `<:name:id>` / `<a:name:id>` (or `name:id`).
pub fn emoji_segment(emoji: &str) -> Result<String, AdapterError> {
    let emoji = emoji.trim();
    let bad = || {
        AdapterError::InvalidInput(format!(
            "{emoji:?} is not an emoji Discord can react with: use a Unicode emoji like 👍, or a \
             custom emoji of the server as <:name:id>"
        ))
    };
    let custom = emoji
        .strip_prefix("<a:")
        .or_else(|| emoji.strip_prefix("<:"))
        .and_then(|rest| rest.strip_suffix('>'))
        .or_else(|| emoji.contains(':').then_some(emoji));
    if let Some(custom) = custom {
        let (name, id) = custom.split_once(':').ok_or_else(bad)?;
        let name_ok = (2..=32).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !name_ok || snowflake("emoji", id).is_err() {
            return Err(bad());
        }
        return Ok(format!("{name}:{id}"));
    }
    // A Unicode emoji: no ASCII letters, digits, spaces or punctuation
    // (keycaps like 1️⃣ start with a digit and go on with U+FE0F).
    let plain_ascii = emoji.is_ascii();
    if emoji.is_empty() || emoji.len() > 64 || plain_ascii || emoji.chars().any(char::is_whitespace)
    {
        return Err(bad());
    }
    Ok(percent::encode_component(emoji))
}

/// `PUT /channels/{c}/messages/{m}/reactions/{emoji}/@me`.
pub fn react(rest: &Rest, request: ReactRequest) -> Result<(), AdapterError> {
    snowflake("chat", &request.chat_id)?;
    snowflake("message_id", &request.message_id)?;
    let segment = emoji_segment(&request.emoji)?;
    rest.call_empty(
        "PUT",
        &format!(
            "/channels/{}/messages/{}/reactions/{segment}/@me",
            request.chat_id, request.message_id
        ),
        None,
    )
}

/// The edit-message body: the new text, and no components, so an edited
/// message loses its buttons (as `editMessageText` drops a Telegram
/// keyboard): an answered prompt cannot be pressed again.
pub fn edit_body(request: &EditRequest) -> Value {
    json!({"content": request.text, "components": []})
}

/// `PATCH /channels/{c}/messages/{m}`.
pub fn edit(rest: &Rest, request: EditRequest) -> Result<(), AdapterError> {
    snowflake("chat", &request.chat_id)?;
    snowflake("message_id", &request.message_id)?;
    check_format(request.format)?;
    let _: Value = rest.call(
        "PATCH",
        &format!(
            "/channels/{}/messages/{}",
            request.chat_id, request.message_id
        ),
        Some(&edit_body(&request)),
    )?;
    Ok(())
}

/// `POST /channels/{c}/typing`.
pub fn typing(rest: &Rest, chat_id: &str) -> Result<(), AdapterError> {
    snowflake("chat", chat_id)?;
    rest.call_empty("POST", &format!("/channels/{chat_id}/typing"), None)
}

/// `GET /channels/{c}/messages`, turned oldest first (Discord gives them
/// newest first).
pub fn history(rest: &Rest, request: HistoryRequest) -> Result<Vec<HistoryEntry>, AdapterError> {
    snowflake("chat", &request.chat_id)?;
    let limit = request.limit.clamp(1, 100);
    let mut path = format!("/channels/{}/messages?limit={limit}", request.chat_id);
    if let Some(before) = &request.before {
        snowflake("before", before)?;
        path.push_str(&format!("&before={before}"));
    }
    let messages: Vec<Message> = rest.call("GET", &path, None)?;
    Ok(messages
        .into_iter()
        .rev()
        .map(|m| HistoryEntry {
            ts_ms: model::snowflake_ms(&m.id),
            attachment_count: m.attachments.len().try_into().unwrap_or(u32::MAX),
            sender: Sender {
                id: m.author.id.clone(),
                handle: (!m.author.username.is_empty()).then(|| m.author.username.clone()),
                display_name: m
                    .member
                    .as_ref()
                    .and_then(|mb| mb.nick.clone())
                    .or(m.author.global_name.clone()),
                is_bot: m.author.bot,
            },
            message_id: m.id,
            text: m.content,
        })
        .collect())
}

/// An attachment's bytes: from the URL of the delivered message, or, when
/// that is not known or has expired, from the URL Discord gives for the
/// message now (`GET /channels/{c}/messages/{m}`).
pub fn download(
    rest: &Rest,
    cached: Option<&str>,
    request: AttachmentRequest,
) -> Result<AttachmentData, AdapterError> {
    snowflake("chat", &request.chat_id)?;
    let (message_id, attachment_id) = split_attachment_id(&request.attachment_id).ok_or_else(|| {
        AdapterError::InvalidInput(format!(
            "{:?} is not an attachment id of this adapter (they look like 3000000000000000011.6000000000000000001)",
            request.attachment_id
        ))
    })?;
    if let Some(url) = cached
        && let Ok(Some(data)) = fetch(url)
    {
        return Ok(AttachmentData {
            name: file_name(url),
            mime: None,
            data,
        });
    }
    #[derive(Deserialize)]
    struct WithAttachments {
        #[serde(default)]
        attachments: Vec<model::Attachment>,
    }
    let message: WithAttachments = rest.call(
        "GET",
        &format!("/channels/{}/messages/{message_id}", request.chat_id),
        None,
    )?;
    let found = message
        .attachments
        .into_iter()
        .find(|a| a.id == attachment_id)
        .ok_or_else(|| {
            AdapterError::InvalidInput(format!(
                "message {message_id} has no attachment {attachment_id} any more"
            ))
        })?;
    match fetch(&found.url) {
        Ok(Some(data)) => Ok(AttachmentData {
            name: found.filename,
            mime: found.content_type,
            data,
        }),
        Ok(None) => Err(AdapterError::Platform(format!(
            "downloading {} failed: Discord's file server refused it",
            found.filename
        ))),
        Err(e) => Err(AdapterError::Platform(format!(
            "downloading {}: {e}",
            found.filename
        ))),
    }
}

/// The body at `url`; `None` for an answer that is not 2xx.
fn fetch(url: &str) -> Result<Option<Vec<u8>>, airlock_guest::http::HttpError> {
    if url.is_empty() {
        return Ok(None);
    }
    let response = Request::get(url)
        .timeout_ms(60_000)
        .max_response_bytes(MAX_DOWNLOAD)
        .send()?;
    Ok(response.is_success().then_some(response.body))
}

/// The last path segment of `url`, without its query.
fn file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or("");
    path.rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("attachment")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_guest::types::OutboundFile;

    fn message(text: &str) -> OutboundMessage {
        OutboundMessage {
            chat_id: "4000000000000000001".into(),
            text: text.into(),
            reply_to: None,
            format: TextFormat::Plain,
            buttons: Vec::new(),
            files: Vec::<OutboundFile>::new(),
        }
    }

    #[test]
    fn emoji_forms() {
        let rows: &[(&str, Option<&str>)] = &[
            ("👍", Some("%F0%9F%91%8D")),
            (" 🎉 ", Some("%F0%9F%8E%89")),
            (
                "<:party:123456789012345678>",
                Some("party:123456789012345678"),
            ),
            ("<a:dance:42>", Some("dance:42")),
            ("party:42", Some("party:42")),
            ("1️⃣", Some("1%EF%B8%8F%E2%83%A3")),
            ("", None),
            ("thumbsup", None),
            (":thumbsup:", None),
            ("<:x:1>", None),
            ("<:party:abc>", None),
            ("👍 👎", None),
            ("../../x", None),
        ];
        for &(emoji, want) in rows {
            let got = emoji_segment(emoji).ok();
            assert_eq!(got.as_deref(), want, "{emoji:?}");
        }
    }

    #[test]
    fn bodies_carry_the_reply_buttons_and_no_mass_pings() {
        let mut m = message("hi @everyone");
        m.reply_to = Some("3000000000000000010".into());
        m.buttons = vec![vec![Button {
            label: "Yes".into(),
            data: "vote:yes".into(),
        }]];
        let body = message_body(&m).unwrap();
        assert_eq!(
            body["message_reference"]["message_id"],
            "3000000000000000010"
        );
        assert_eq!(body["allowed_mentions"]["parse"], json!(["users"]));
        assert_eq!(
            body["components"],
            json!([{"type": 1, "components": [{"type": 2, "style": 1, "label": "Yes", "custom_id": "vote:yes"}]}])
        );
        m.reply_to = Some("abc".into());
        assert!(matches!(
            message_body(&m),
            Err(AdapterError::InvalidInput(_))
        ));
    }

    #[test]
    fn an_edit_replaces_the_text_and_removes_the_buttons() {
        let body = edit_body(&EditRequest {
            chat_id: "4000000000000000001".into(),
            message_id: "3000000000000000010".into(),
            text: "Allowed".into(),
            format: TextFormat::Plain,
        });
        assert_eq!(body, json!({"content": "Allowed", "components": []}));
    }

    #[test]
    fn too_many_or_too_long_buttons_are_refused() {
        let b = |l: &str, d: &str| Button {
            label: l.into(),
            data: d.into(),
        };
        assert!(components(&[vec![b("a", "a"); 6]]).is_err());
        assert!(components(&vec![vec![b("a", "a")]; 6]).is_err());
        assert!(components(&[vec![b(&"l".repeat(81), "a")]]).is_err());
        assert!(components(&[vec![b("a", &"d".repeat(101))]]).is_err());
        assert!(components(&[vec![b("a", "")]]).is_err());
        assert!(
            components(&[vec![b("a", "b")], vec![]])
                .unwrap()
                .as_array()
                .unwrap()
                .len()
                == 1
        );
    }

    #[test]
    fn ids_and_formats_are_checked_before_anything_goes_out() {
        let rest = Rest::new("http://127.0.0.1:9");
        let mut m = message("x");
        m.chat_id = "general".into();
        assert!(
            matches!(send(&rest, m), Err(AdapterError::InvalidInput(t)) if t.contains("not a Discord id"))
        );
        let mut m = message("x");
        m.format = TextFormat::Html;
        assert!(matches!(send(&rest, m), Err(AdapterError::InvalidInput(t)) if t.contains("HTML")));
    }
}
