//! The records and variants of the `airlock:channel` WIT package.
//!
//! Everything an adapter or filter receives or returns is one of these types;
//! they are the generated bindings' types under stable names.

pub use crate::adapter_bindings::airlock::channel::kv::KvError;
pub use crate::adapter_bindings::airlock::channel::log::Level;
/// Identifies one websocket connection of this component.
pub use crate::adapter_bindings::airlock::channel::types::WsConnection as Connection;
pub use crate::adapter_bindings::airlock::channel::types::{
    AdapterError, Attachment, AttachmentData, AttachmentKind, AttachmentRequest, Button,
    ButtonPress, Chat, ChatKind, ChunkMode, Description, EditRequest, EventBatch, Features,
    HistoryEntry, HistoryRequest, HttpRequest, HttpResponse, InboundEvent, InboundMessage,
    IncomingReply, IncomingRequest, Limits, OutboundFile, OutboundMessage, ReactRequest, Reaction,
    Sender, Sent, Settings, TextFormat, WsEvent,
};
pub use crate::adapter_bindings::airlock::channel::websocket::WsError;
pub use crate::filter_bindings::exports::airlock::channel::message_filter::{
    InboundVerdict, OutboundVerdict,
};

/// The value of setting `key`, if the operator gave one (the last one wins
/// when a key repeats).
///
/// ```
/// let settings = vec![("outbound_url".to_string(), "https://example.com/".to_string())];
/// assert_eq!(airlock_guest::setting(&settings, "outbound_url"), Some("https://example.com/"));
/// assert_eq!(airlock_guest::setting(&settings, "token"), None);
/// ```
pub fn setting<'a>(settings: &'a Settings, key: &str) -> Option<&'a str> {
    settings
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Logs a warning for each setting that is not one of `known` (a mistyped
/// key would otherwise be ignored in silence); the warning names the keys
/// `adapter` reads, without `enabled`.
pub fn warn_unknown_settings(settings: &Settings, known: &[&str], adapter: &str) {
    let listed: Vec<&str> = known.iter().copied().filter(|k| *k != "enabled").collect();
    for (key, _) in settings {
        if !known.contains(&key.as_str()) {
            crate::log::warn(format!(
                "unknown setting `{key}` ignored; the {adapter} adapter reads {}",
                listed.join(", ")
            ));
        }
    }
}

/// The URL setting `key`, else `default`; it must start with one of
/// `schemes` (`"https://"`), which `kinds` names for the error ("an http://
/// or https://").
pub fn url_setting<'a>(
    settings: &'a Settings,
    key: &str,
    default: &'a str,
    schemes: &[&str],
    kinds: &str,
) -> Result<&'a str, String> {
    let value = setting(settings, key).unwrap_or(default);
    if schemes.iter().any(|s| value.starts_with(s)) {
        Ok(value)
    } else {
        Err(format!(
            "setting `{key}` must be {kinds} URL, not {value:?}"
        ))
    }
}

impl Description {
    /// A text-only platform: `max_text_len` characters per message, cut at
    /// line breaks, no files, no optional features, no instruction lines.
    /// Adjust the fields that differ.
    pub fn text_only(platform: &str, max_text_len: u32) -> Self {
        Description {
            platform: platform.into(),
            limits: Limits {
                max_text_len,
                chunk_mode: ChunkMode::Newline,
                max_files: 0,
                max_file_bytes: 0,
            },
            features: Features::empty(),
            instructions: Vec::new(),
        }
    }
}

impl EventBatch {
    /// A batch without events and without a cursor to commit.
    pub fn empty() -> Self {
        EventBatch {
            events: Vec::new(),
            cursor: None,
        }
    }
}

impl Sent {
    /// A [`Sent`] carrying one platform message id.
    pub fn one(message_id: impl Into<String>) -> Self {
        Sent {
            message_ids: vec![message_id.into()],
        }
    }
}

impl HttpResponse {
    /// A response with a status, one `content-type` header and a body.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        HttpResponse {
            status,
            headers: vec![("content-type".to_string(), content_type.to_string())],
            body: body.into(),
        }
    }
}
