//! Tool definitions and argument parsing.
//!
//! Arguments are parsed strictly (unknown fields refused) into typed structs;
//! every problem becomes a readable tool error, never a protocol error.

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool};
use serde::Deserialize;
use serde_json::json;

use crate::bindings::types::{Button, TextFormat};
use crate::router::ToolError;

/// Arguments of `reply`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyArgs {
    /// Qualified chat id.
    pub chat_id: String,
    /// Text to send.
    pub text: String,
    /// Message to answer.
    #[serde(default)]
    pub reply_to: Option<String>,
    /// Absolute paths.
    #[serde(default)]
    pub files: Vec<String>,
    /// `text` (default), `markdown` or `html`.
    #[serde(default)]
    pub format: Option<String>,
    /// Rows of buttons under the message.
    #[serde(default)]
    pub buttons: Vec<Vec<ButtonArg>>,
}

/// One button of `reply`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ButtonArg {
    /// What it says.
    pub label: String,
    /// What a press reports back.
    pub data: String,
}

/// The buttons as the adapter takes them.
pub fn buttons(rows: Vec<Vec<ButtonArg>>) -> Vec<Vec<Button>> {
    rows.into_iter()
        .map(|row| {
            row.into_iter()
                .map(|b| Button {
                    label: b.label,
                    data: b.data,
                })
                .collect()
        })
        .collect()
}

/// Arguments of `download_attachment`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadArgs {
    /// Qualified chat id of the message that carried it.
    pub chat_id: String,
    /// One of the message's `attachment_ids`.
    pub attachment_id: String,
}

/// Arguments of `fetch_messages`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchArgs {
    /// Qualified chat id.
    pub chat_id: String,
    /// How many, 1 to 100 (default 20).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Only messages older than this message id.
    #[serde(default)]
    pub before: Option<String>,
}

/// Arguments of `edit_message`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditArgs {
    /// Qualified chat id.
    pub chat_id: String,
    /// The message to edit.
    pub message_id: String,
    /// New text.
    pub text: String,
    /// Markup.
    #[serde(default)]
    pub format: Option<String>,
}

/// Arguments of `react`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReactArgs {
    /// Qualified chat id.
    pub chat_id: String,
    /// The message to react to.
    pub message_id: String,
    /// The emoji.
    pub emoji: String,
}

/// Longest text a tool accepts before chunking (a guard against runaway input).
pub const MAX_TEXT: usize = 1 << 20;

/// Parse `args` for tool `name`.
pub fn parse<T: serde::de::DeserializeOwned>(
    name: &str,
    args: Option<JsonObject>,
) -> Result<T, ToolError> {
    let value = serde_json::Value::Object(args.unwrap_or_default());
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ToolError::Arguments(format!("{name}: {inner}"))
        } else {
            ToolError::Arguments(format!("{name}: `{path}`: {inner}"))
        }
    })
}

/// Check a text argument's size.
pub fn check_text(text: &str) -> Result<(), ToolError> {
    if text.len() > MAX_TEXT {
        return Err(ToolError::Arguments(format!(
            "text is {} bytes; at most {MAX_TEXT} bytes",
            text.len()
        )));
    }
    Ok(())
}

/// `text` | `markdown` | `markdownv2` | `html`, default plain.
pub fn format(raw: Option<&str>) -> Result<TextFormat, ToolError> {
    match raw.unwrap_or("text") {
        "text" | "plain" => Ok(TextFormat::Plain),
        "markdown" | "markdownv2" => Ok(TextFormat::Markdown),
        "html" => Ok(TextFormat::Html),
        other => Err(ToolError::Arguments(format!(
            "format {other:?}: use text, markdown or html"
        ))),
    }
}

fn schema(value: serde_json::Value) -> Arc<JsonObject> {
    match value {
        serde_json::Value::Object(map) => Arc::new(map),
        _ => Arc::new(JsonObject::new()),
    }
}

/// Which optional tools and arguments some running adapter supports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offered {
    /// `react`.
    pub react: bool,
    /// `download_attachment`.
    pub download: bool,
    /// `buttons` on `reply`.
    pub buttons: bool,
    /// `fetch_messages`.
    pub history: bool,
}

/// The tools offered.
pub fn list(offered: Offered) -> Vec<Tool> {
    let chat_id = json!({"type": "string", "description": "The chat_id attribute of the <channel> event, unchanged (like fakechat:web)."});
    let format = json!({"type": "string", "enum": ["text", "markdown", "html"], "description": "Markup of text; default text."});
    let mut reply = json!({
        "type": "object",
        "properties": {
            "chat_id": chat_id,
            "text": {"type": "string"},
            "reply_to": {"type": "string", "description": "message_id to answer (optional)."},
            "files": {"type": "array", "items": {"type": "string"}, "description": "Absolute paths of files to attach (optional)."},
            "format": format,
        },
        "required": ["chat_id", "text"],
        "additionalProperties": false,
    });
    if offered.buttons {
        reply["properties"]["buttons"] = json!({
            "type": "array",
            "description": "Rows of buttons under the message (optional); a press arrives as an event with a button attribute holding the data.",
            "items": {"type": "array", "items": {
                "type": "object",
                "properties": {"label": {"type": "string"}, "data": {"type": "string", "description": "Reported back when pressed (at most 64 bytes on Telegram; not starting with airlock:, which airlock keeps for its own prompts)."}},
                "required": ["label", "data"],
                "additionalProperties": false,
            }},
        });
    }
    let mut tools = vec![
        Tool::new(
            "reply",
            "Send a message to a chat. Long text is split at the platform's limit. Files are absolute paths on this machine.",
            schema(reply),
        ),
        Tool::new(
            "edit_message",
            "Replace the text of a message you sent earlier.",
            schema(json!({
                "type": "object",
                "properties": {
                    "chat_id": chat_id,
                    "message_id": {"type": "string"},
                    "text": {"type": "string"},
                    "format": format,
                },
                "required": ["chat_id", "message_id", "text"],
                "additionalProperties": false,
            })),
        ),
    ];
    if offered.download {
        tools.push(Tool::new(
            "download_attachment",
            "Save an attachment of a message into airlock's inbox and return its path; only attachments of messages delivered from that chat.",
            schema(json!({
                "type": "object",
                "properties": {
                    "chat_id": chat_id,
                    "attachment_id": {"type": "string", "description": "One of the ids in the message's attachment_ids attribute."},
                },
                "required": ["chat_id", "attachment_id"],
                "additionalProperties": false,
            })),
        ));
    }
    if offered.history {
        tools.push(Tool::new(
            "fetch_messages",
            "Recent messages of a chat, oldest first, one line each with its id, time, sender and attachment count; also those sent while this session was away. Only for platforms that keep history.",
            schema(json!({
                "type": "object",
                "properties": {
                    "chat_id": chat_id,
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100, "description": "How many (default 20)."},
                    "before": {"type": "string", "description": "Only messages older than this message_id (optional)."},
                },
                "required": ["chat_id"],
                "additionalProperties": false,
            })),
        ));
    }
    if offered.react {
        tools.push(Tool::new(
            "react",
            "Add an emoji reaction to a message.",
            schema(json!({
                "type": "object",
                "properties": {
                    "chat_id": chat_id,
                    "message_id": {"type": "string"},
                    "emoji": {"type": "string"},
                },
                "required": ["chat_id", "message_id", "emoji"],
                "additionalProperties": false,
            })),
        ));
    }
    tools
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: serde_json::Value) -> Option<JsonObject> {
        v.as_object().cloned()
    }

    #[test]
    fn strict_parsing() {
        let ok: ReplyArgs = parse(
            "reply",
            obj(json!({"chat_id": "fakechat:web", "text": "hi"})),
        )
        .unwrap();
        assert_eq!(ok.text, "hi");
        for (args, want) in [
            (json!({"chat_id": "x"}), "missing field `text`"),
            (
                json!({"chat_id": 5, "text": "x"}),
                "`chat_id`: invalid type",
            ),
            (
                json!({"chat_id": "x", "text": "y", "files": "/etc/passwd"}),
                "`files`: invalid type",
            ),
            (
                json!({"chat_id": "x", "text": "y", "admin": true}),
                "unknown field `admin`",
            ),
        ] {
            let e = parse::<ReplyArgs>("reply", obj(args))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e}");
        }
        assert!(parse::<ReplyArgs>("reply", None).is_err());
    }

    #[test]
    fn formats_and_sizes() {
        assert_eq!(format(None).unwrap(), TextFormat::Plain);
        assert_eq!(format(Some("markdownv2")).unwrap(), TextFormat::Markdown);
        assert!(format(Some("rtf")).is_err());
        assert!(check_text(&"x".repeat(MAX_TEXT + 1)).is_err());
        assert!(check_text("fine").is_ok());
    }

    #[test]
    fn react_is_listed_only_when_supported() {
        let names = |v: Vec<Tool>| {
            v.into_iter()
                .map(|t| t.name.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(list(Offered::default())),
            vec!["reply", "edit_message"]
        );
        let all = Offered {
            react: true,
            download: true,
            buttons: true,
            history: true,
        };
        assert_eq!(
            names(list(all)),
            vec![
                "reply",
                "edit_message",
                "download_attachment",
                "fetch_messages",
                "react"
            ]
        );
        let reply = &list(all)[0];
        assert!(
            reply
                .input_schema
                .get("properties")
                .unwrap()
                .get("buttons")
                .is_some()
        );
        let reply = &list(Offered::default())[0];
        assert!(
            reply
                .input_schema
                .get("properties")
                .unwrap()
                .get("buttons")
                .is_none()
        );
    }
}
