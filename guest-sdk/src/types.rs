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

impl AdapterError {
    /// What went wrong, as one line for the log (the message without its
    /// kind; a rate limit as its wait).
    pub fn text(&self) -> String {
        match self {
            AdapterError::Unsupported(m)
            | AdapterError::InvalidInput(m)
            | AdapterError::Platform(m)
            | AdapterError::Fatal(m) => m.clone(),
            AdapterError::RateLimited(ms) => format!("rate limited for {ms} ms"),
        }
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

impl IncomingRequest {
    /// The request's method; standard methods are recognised in any case
    /// (`post` is `POST`). `None` when it is not a valid method token.
    pub fn http_method(&self) -> Option<::http::Method> {
        ::http::Method::from_bytes(self.method.to_ascii_uppercase().as_bytes()).ok()
    }

    /// The path and query, parsed; an empty path is `/`. `None` when they
    /// are not a valid request target (the host's server already refuses
    /// those).
    pub fn path_and_query(&self) -> Option<::http::uri::PathAndQuery> {
        match self.path.as_str() {
            "" => Some(::http::uri::PathAndQuery::from_static("/")),
            path => path.parse().ok(),
        }
    }
}
