//! How a forwarded call and its answer are written into the hub's store.
//!
//! The bindgen types carry no serde, and should not: they are the WIT's.
//! These are small mirrors of the ones a forwarded call needs, with
//! conversions both ways, so a call made in one process and run in another
//! gives back exactly what a local call would have: the value, or the same
//! [`CallError`] (same variant, same fields, so the same text and the same
//! retry decisions). Bytes travel as hex.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::bindings::types::{
    AdapterError, AttachmentData, AttachmentRequest, Button, EditRequest, HistoryEntry,
    HistoryRequest, OutboundFile, OutboundMessage, ReactRequest, Sender, Sent, TextFormat,
};
use crate::runtime::call_error::{AdapterErrorText, CallError};

/// One adapter call, as it is stored. `typing` is not among them: only
/// the process that stores a chat's events shows typing in it, and that is
/// the holder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(super) enum Call {
    /// `send`.
    Send(Message),
    /// `edit`.
    Edit(Edit),
    /// `react`.
    React(React),
    /// `fetch-history`.
    FetchHistory(History),
    /// `download-attachment`.
    DownloadAttachment(Attachment),
}

impl Call {
    /// The export it calls, as the actor names it in errors.
    pub(super) fn op(&self) -> &'static str {
        match self {
            Call::Send(_) => "send",
            Call::Edit(_) => "edit",
            Call::React(_) => "react",
            Call::FetchHistory(_) => "fetch-history",
            Call::DownloadAttachment(_) => "download-attachment",
        }
    }
}

/// What a call gave back, as it is stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Answer {
    /// `send` went out.
    Sent {
        /// The platform's ids.
        message_ids: Vec<String>,
    },
    /// A call with no value succeeded.
    Done,
    /// `fetch-history`'s entries.
    History(Vec<Entry>),
    /// `download-attachment`'s file.
    Attachment(File),
    /// The call failed as a local one would have.
    Failed(Failure),
    /// The holder could not run it at all (it could not read the call).
    Refused(String),
}

/// [`OutboundMessage`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Message {
    chat_id: String,
    text: String,
    reply_to: Option<String>,
    format: Format,
    buttons: Vec<Vec<(String, String)>>,
    files: Vec<OutFile>,
}

/// [`OutboundFile`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct OutFile {
    name: String,
    mime: String,
    data: String,
}

/// [`TextFormat`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Format {
    Plain,
    Markdown,
    Html,
}

/// [`EditRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Edit {
    chat_id: String,
    message_id: String,
    text: String,
    format: Format,
}

/// [`ReactRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct React {
    chat_id: String,
    message_id: String,
    emoji: String,
}

/// [`HistoryRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct History {
    chat_id: String,
    limit: u32,
    before: Option<String>,
}

/// [`HistoryEntry`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Entry {
    message_id: String,
    sender_id: String,
    handle: Option<String>,
    display_name: Option<String>,
    is_bot: bool,
    text: String,
    ts_ms: u64,
    attachment_count: u32,
}

/// [`AttachmentRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Attachment {
    chat_id: String,
    message_id: Option<String>,
    attachment_id: String,
}

/// [`AttachmentData`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct File {
    name: String,
    mime: Option<String>,
    data: String,
}

/// [`CallError`], every variant with its fields; the export's name is the
/// call's own, so it is not stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Failure {
    /// [`CallError::Adapter`].
    Adapter {
        component: String,
        error: AdapterFailure,
    },
    /// [`CallError::CpuBudget`].
    CpuBudget { component: String, budget: Duration },
    /// [`CallError::Timeout`].
    Timeout { component: String, wall: Duration },
    /// [`CallError::Trap`].
    Trap { component: String, reason: String },
    /// [`CallError::Quarantined`].
    Quarantined { component: String, reason: String },
    /// [`CallError::Stopped`].
    Stopped { component: String },
}

/// [`AdapterError`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum AdapterFailure {
    Unsupported(String),
    InvalidInput(String),
    RateLimited(u64),
    Platform(String),
    Fatal(String),
}

fn format_to(f: TextFormat) -> Format {
    match f {
        TextFormat::Plain => Format::Plain,
        TextFormat::Markdown => Format::Markdown,
        TextFormat::Html => Format::Html,
    }
}

fn format_from(f: Format) -> TextFormat {
    match f {
        Format::Plain => TextFormat::Plain,
        Format::Markdown => TextFormat::Markdown,
        Format::Html => TextFormat::Html,
    }
}

/// Bytes back from hex; `what` names them in the error.
fn unhex(text: &str, what: &str) -> Result<Vec<u8>, String> {
    hex::decode(text).map_err(|e| format!("{what} is not hex: {e}"))
}

impl From<&OutboundMessage> for Message {
    fn from(m: &OutboundMessage) -> Self {
        Self {
            chat_id: m.chat_id.clone(),
            text: m.text.clone(),
            reply_to: m.reply_to.clone(),
            format: format_to(m.format),
            buttons: m
                .buttons
                .iter()
                .map(|row| {
                    row.iter()
                        .map(|b| (b.label.clone(), b.data.clone()))
                        .collect()
                })
                .collect(),
            files: m
                .files
                .iter()
                .map(|f| OutFile {
                    name: f.name.clone(),
                    mime: f.mime.clone(),
                    data: hex::encode(&f.data),
                })
                .collect(),
        }
    }
}

impl Message {
    /// The message to send.
    pub(super) fn into_binding(self) -> Result<OutboundMessage, String> {
        let files = self
            .files
            .into_iter()
            .map(|f| {
                Ok(OutboundFile {
                    data: unhex(&f.data, "a file")?,
                    name: f.name,
                    mime: f.mime,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(OutboundMessage {
            chat_id: self.chat_id,
            text: self.text,
            reply_to: self.reply_to,
            format: format_from(self.format),
            buttons: self
                .buttons
                .into_iter()
                .map(|row| {
                    row.into_iter()
                        .map(|(label, data)| Button { label, data })
                        .collect()
                })
                .collect(),
            files,
        })
    }
}

impl From<&EditRequest> for Edit {
    fn from(r: &EditRequest) -> Self {
        Self {
            chat_id: r.chat_id.clone(),
            message_id: r.message_id.clone(),
            text: r.text.clone(),
            format: format_to(r.format),
        }
    }
}

impl From<Edit> for EditRequest {
    fn from(r: Edit) -> Self {
        Self {
            chat_id: r.chat_id,
            message_id: r.message_id,
            text: r.text,
            format: format_from(r.format),
        }
    }
}

impl From<&ReactRequest> for React {
    fn from(r: &ReactRequest) -> Self {
        Self {
            chat_id: r.chat_id.clone(),
            message_id: r.message_id.clone(),
            emoji: r.emoji.clone(),
        }
    }
}

impl From<React> for ReactRequest {
    fn from(r: React) -> Self {
        Self {
            chat_id: r.chat_id,
            message_id: r.message_id,
            emoji: r.emoji,
        }
    }
}

impl From<&HistoryRequest> for History {
    fn from(r: &HistoryRequest) -> Self {
        Self {
            chat_id: r.chat_id.clone(),
            limit: r.limit,
            before: r.before.clone(),
        }
    }
}

impl From<History> for HistoryRequest {
    fn from(r: History) -> Self {
        Self {
            chat_id: r.chat_id,
            limit: r.limit,
            before: r.before,
        }
    }
}

impl From<&HistoryEntry> for Entry {
    fn from(e: &HistoryEntry) -> Self {
        Self {
            message_id: e.message_id.clone(),
            sender_id: e.sender.id.clone(),
            handle: e.sender.handle.clone(),
            display_name: e.sender.display_name.clone(),
            is_bot: e.sender.is_bot,
            text: e.text.clone(),
            ts_ms: e.ts_ms,
            attachment_count: e.attachment_count,
        }
    }
}

impl From<Entry> for HistoryEntry {
    fn from(e: Entry) -> Self {
        Self {
            message_id: e.message_id,
            sender: Sender {
                id: e.sender_id,
                handle: e.handle,
                display_name: e.display_name,
                is_bot: e.is_bot,
            },
            text: e.text,
            ts_ms: e.ts_ms,
            attachment_count: e.attachment_count,
        }
    }
}

impl From<&AttachmentRequest> for Attachment {
    fn from(r: &AttachmentRequest) -> Self {
        Self {
            chat_id: r.chat_id.clone(),
            message_id: r.message_id.clone(),
            attachment_id: r.attachment_id.clone(),
        }
    }
}

impl From<Attachment> for AttachmentRequest {
    fn from(r: Attachment) -> Self {
        Self {
            chat_id: r.chat_id,
            message_id: r.message_id,
            attachment_id: r.attachment_id,
        }
    }
}

impl From<&AttachmentData> for File {
    fn from(d: &AttachmentData) -> Self {
        Self {
            name: d.name.clone(),
            mime: d.mime.clone(),
            data: hex::encode(&d.data),
        }
    }
}

impl File {
    /// The file as the adapter gave it.
    pub(super) fn into_binding(self) -> Result<AttachmentData, String> {
        Ok(AttachmentData {
            data: unhex(&self.data, "the attachment")?,
            name: self.name,
            mime: self.mime,
        })
    }
}

impl From<&Sent> for Answer {
    fn from(s: &Sent) -> Self {
        Answer::Sent {
            message_ids: s.message_ids.clone(),
        }
    }
}

impl From<&CallError> for Failure {
    fn from(e: &CallError) -> Self {
        let name = |c: &Arc<str>| c.to_string();
        match e {
            CallError::Adapter {
                component, error, ..
            } => Failure::Adapter {
                component: name(component),
                error: match &error.0 {
                    AdapterError::Unsupported(m) => AdapterFailure::Unsupported(m.clone()),
                    AdapterError::InvalidInput(m) => AdapterFailure::InvalidInput(m.clone()),
                    AdapterError::RateLimited(ms) => AdapterFailure::RateLimited(*ms),
                    AdapterError::Platform(m) => AdapterFailure::Platform(m.clone()),
                    AdapterError::Fatal(m) => AdapterFailure::Fatal(m.clone()),
                },
            },
            CallError::CpuBudget {
                component, budget, ..
            } => Failure::CpuBudget {
                component: name(component),
                budget: *budget,
            },
            CallError::Timeout {
                component, wall, ..
            } => Failure::Timeout {
                component: name(component),
                wall: *wall,
            },
            CallError::Trap {
                component, reason, ..
            } => Failure::Trap {
                component: name(component),
                reason: reason.clone(),
            },
            CallError::Quarantined { component, reason } => Failure::Quarantined {
                component: name(component),
                reason: reason.clone(),
            },
            CallError::Stopped { component } => Failure::Stopped {
                component: name(component),
            },
        }
    }
}

impl Failure {
    /// The error a local call of export `op` would have returned.
    pub(super) fn into_call_error(self, op: &'static str) -> CallError {
        let arc = |c: String| Arc::<str>::from(c);
        match self {
            Failure::Adapter { component, error } => CallError::Adapter {
                component: arc(component),
                op,
                error: AdapterErrorText(match error {
                    AdapterFailure::Unsupported(m) => AdapterError::Unsupported(m),
                    AdapterFailure::InvalidInput(m) => AdapterError::InvalidInput(m),
                    AdapterFailure::RateLimited(ms) => AdapterError::RateLimited(ms),
                    AdapterFailure::Platform(m) => AdapterError::Platform(m),
                    AdapterFailure::Fatal(m) => AdapterError::Fatal(m),
                }),
            },
            Failure::CpuBudget { component, budget } => CallError::CpuBudget {
                component: arc(component),
                op,
                budget,
            },
            Failure::Timeout { component, wall } => CallError::Timeout {
                component: arc(component),
                op,
                wall,
            },
            Failure::Trap { component, reason } => CallError::Trap {
                component: arc(component),
                op,
                reason,
            },
            Failure::Quarantined { component, reason } => CallError::Quarantined {
                component: arc(component),
                reason,
            },
            Failure::Stopped { component } => CallError::Stopped {
                component: arc(component),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through<T: Serialize + serde::de::DeserializeOwned>(value: &T) -> T {
        serde_json::from_str(&serde_json::to_string(value).unwrap()).unwrap()
    }

    #[test]
    fn a_message_with_files_and_buttons_arrives_whole() {
        let message = OutboundMessage {
            chat_id: "web".into(),
            text: "hi\n<b>there</b>".into(),
            reply_to: Some("7".into()),
            format: TextFormat::Html,
            buttons: vec![vec![Button {
                label: "Yes".into(),
                data: "y".into(),
            }]],
            files: vec![OutboundFile {
                name: "a.bin".into(),
                mime: "application/octet-stream".into(),
                data: vec![0, 1, 255, 10],
            }],
        };
        let call = Call::Send(Message::from(&message));
        let back = through(&call);
        assert_eq!(back.op(), "send");
        let Call::Send(m) = back else {
            panic!("{back:?}")
        };
        assert_eq!(m.into_binding().unwrap(), message);
    }

    #[test]
    fn the_other_calls_and_answers_arrive_whole() {
        let edit = EditRequest {
            chat_id: "web".into(),
            message_id: "3".into(),
            text: "new".into(),
            format: TextFormat::Markdown,
        };
        assert_eq!(EditRequest::from(through(&Edit::from(&edit))), edit);
        let react = ReactRequest {
            chat_id: "web".into(),
            message_id: "3".into(),
            emoji: "👍".into(),
        };
        assert_eq!(ReactRequest::from(through(&React::from(&react))), react);
        let history = HistoryRequest {
            chat_id: "web".into(),
            limit: 20,
            before: None,
        };
        assert_eq!(
            HistoryRequest::from(through(&History::from(&history))),
            history
        );
        let entry = HistoryEntry {
            message_id: "1".into(),
            sender: Sender {
                id: "u".into(),
                handle: Some("ada".into()),
                display_name: None,
                is_bot: true,
            },
            text: "x".into(),
            ts_ms: 1_717_243_200_000,
            attachment_count: 2,
        };
        assert_eq!(HistoryEntry::from(through(&Entry::from(&entry))), entry);
        let request = AttachmentRequest {
            chat_id: "web".into(),
            message_id: Some("1".into()),
            attachment_id: "f1".into(),
        };
        assert_eq!(
            AttachmentRequest::from(through(&Attachment::from(&request))),
            request
        );
        let data = AttachmentData {
            name: "n.png".into(),
            mime: None,
            data: vec![9; 300],
        };
        assert_eq!(through(&File::from(&data)).into_binding().unwrap(), data);
        let sent = Sent {
            message_ids: vec!["1".into(), "2".into()],
        };
        assert_eq!(through(&Answer::from(&sent)), Answer::from(&sent));
        let bad = File {
            name: "x".into(),
            mime: None,
            data: "zz".into(),
        };
        assert!(bad.into_binding().unwrap_err().contains("not hex"));
    }

    #[test]
    fn every_call_error_comes_back_with_the_same_text() {
        let c: Arc<str> = Arc::from("fakechat");
        let errors = [
            CallError::Adapter {
                component: c.clone(),
                op: "send",
                error: AdapterErrorText(AdapterError::RateLimited(1500)),
            },
            CallError::Adapter {
                component: c.clone(),
                op: "send",
                error: AdapterErrorText(AdapterError::InvalidInput("too long\nreally".into())),
            },
            CallError::Adapter {
                component: c.clone(),
                op: "send",
                error: AdapterErrorText(AdapterError::Unsupported("x".into())),
            },
            CallError::Adapter {
                component: c.clone(),
                op: "send",
                error: AdapterErrorText(AdapterError::Platform("down".into())),
            },
            CallError::Adapter {
                component: c.clone(),
                op: "send",
                error: AdapterErrorText(AdapterError::Fatal("gone".into())),
            },
            CallError::CpuBudget {
                component: c.clone(),
                op: "send",
                budget: Duration::from_millis(1500),
            },
            CallError::Timeout {
                component: c.clone(),
                op: "send",
                wall: Duration::from_secs(5),
            },
            CallError::Trap {
                component: c.clone(),
                op: "send",
                reason: "unreachable".into(),
            },
            CallError::Quarantined {
                component: c.clone(),
                reason: "crashed 5 times".into(),
            },
            CallError::Stopped { component: c },
        ];
        for e in errors {
            let answer = through(&Answer::Failed(Failure::from(&e)));
            let Answer::Failed(f) = answer else {
                panic!("{answer:?}")
            };
            let back = f.into_call_error("send");
            assert_eq!(back.to_string(), e.to_string());
            assert_eq!(format!("{back:?}"), format!("{e:?}"));
        }
    }
}
