//! From a tool call to the adapter.

use std::path::Path;

use std::time::Duration;

use super::chunk::chunks;
use super::forward::Platform;
use super::{Active, Router, ToolError};
use crate::bindings::message_filter::OutboundVerdict;
use crate::bindings::types::{
    AdapterError, AttachmentRequest, Button, EditRequest, Features, OutboundFile, OutboundMessage,
    ReactRequest, Sent, TextFormat,
};
use crate::runtime::call_error::{AdapterErrorText, CallError};

/// Largest file `reply` sends, whatever the platform allows.
pub const MAX_FILE_BYTES: u64 = 50 << 20;
/// Largest attachment `download_attachment` writes into the inbox.
pub const MAX_DOWNLOAD_BYTES: u64 = 50 << 20;
/// How many times a send the platform rate-limited is retried.
pub const RATE_LIMIT_RETRIES: u32 = 2;
/// The longest platform-requested wait a retry sits out; a longer one is
/// reported to the session instead.
pub const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(10);

/// What `reply` asks for.
#[derive(Clone, Debug)]
pub struct Reply {
    /// Qualified chat id.
    pub chat_id: String,
    /// Text.
    pub text: String,
    /// Message to answer.
    pub reply_to: Option<String>,
    /// Absolute paths of files to attach.
    pub files: Vec<String>,
    /// Markup.
    pub format: TextFormat,
    /// Rows of buttons under the last part.
    pub buttons: Vec<Vec<Button>>,
}

/// A file name made safe for the inbox: no separators, no leading dots, no
/// control characters, bounded length.
pub fn safe_file_name(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = cleaned.trim_start_matches('.');
    let mut name: String = trimmed.chars().take(120).collect();
    if name.is_empty() {
        name = "file".into();
    }
    name
}

fn mime_for(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("pdf") => "application/pdf",
        Some("txt" | "log" | "md") => "text/plain",
        Some("json") => "application/json",
        Some("zip") => "application/zip",
        Some("mp4") => "video/mp4",
        Some("mp3") => "audio/mpeg",
        Some("ogg") => "audio/ogg",
        _ => "application/octet-stream",
    }
}

impl Router {
    /// Read the files of a reply (see [`super::files`]): regular files on
    /// disk, small enough, never airlock's own.
    fn read_files(
        &self,
        paths: &[String],
        max_files: u32,
        max_bytes: u64,
    ) -> Result<Vec<OutboundFile>, ToolError> {
        if paths.len() > max_files as usize {
            return Err(ToolError::Arguments(format!(
                "at most {max_files} files per message on this platform"
            )));
        }
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let limit = max_bytes.min(MAX_FILE_BYTES);
        let refuse = |raw: &String, why: super::files::Refused| ToolError::File {
            path: raw.clone(),
            reason: why.to_string(),
        };
        let files = self
            .files
            .for_reply()
            .map_err(|why| refuse(&paths[0], why))?;
        let mut out = Vec::new();
        for raw in paths {
            let file = files.read(raw, limit).map_err(|why| refuse(raw, why))?;
            // The adapter would hold the secret, and could re-encode it past
            // every scrubber: a file with one is not sent at all.
            if crate::secrets::loaded::holds(&file.data) {
                crate::secrets::loaded::log_refusal("reply", "an attached file");
                return Err(refuse(raw, super::files::Refused::HoldsSecret));
            }
            let name = file
                .real
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| "file".into());
            out.push(OutboundFile {
                name,
                mime: mime_for(&file.real).into(),
                data: file.data,
            });
        }
        Ok(out)
    }

    /// Run the outbound filters. They judge text and buttons; files pass
    /// unchanged (filters see their names and types, not their bytes, so a
    /// 50 MB upload does not have to fit in a filter's memory). A rewrite
    /// keeps the chat, the reply-to, the format and the files (see
    /// [`super::rewrite`]).
    async fn filter_outbound(
        &self,
        adapter: &str,
        mut message: OutboundMessage,
    ) -> Result<OutboundMessage, ToolError> {
        let chat = message.chat_id.clone();
        let to = (adapter, chat.as_str());
        let files = std::mem::take(&mut message.files);
        message.files = files
            .iter()
            .map(|f| OutboundFile {
                name: f.name.clone(),
                mime: f.mime.clone(),
                data: Vec::new(),
            })
            .collect();
        for f in self.filters.iter().filter(|f| f.outbound) {
            let (verdict, used) = f.runner.outbound(&message).await;
            // Dropping the instance and making the next one wait until the
            // session has its answer, unless another message waits for its
            // pool slot.
            if used.wanted_now() {
                drop(used);
            } else {
                self.afterwards.after_next_line(used.tidy());
            }
            match verdict {
                Ok(OutboundVerdict::Pass) => {}
                Ok(OutboundVerdict::Rewrite(m)) => match super::rewrite::outbound(&message, m) {
                    Ok(kept) => {
                        message = kept;
                        self.record_filter(to, &f.name, "rewrite", "");
                    }
                    Err(refused) => {
                        tracing::warn!(
                            filter = f.name,
                            "outbound message not sent: the filter {refused}"
                        );
                        self.record_filter(to, &f.name, "refused rewrite", &refused.to_string());
                        return Err(ToolError::Filtered {
                            filter: f.name.clone(),
                            reason: refused.to_string(),
                        });
                    }
                },
                Ok(OutboundVerdict::Drop(reason)) => {
                    self.record_filter(to, &f.name, "drop", &reason);
                    return Err(ToolError::Filtered {
                        filter: f.name.clone(),
                        reason: format!("dropped it: {reason}"),
                    });
                }
                Err(e) => {
                    self.record_filter(to, &f.name, "failed", &e.to_string());
                    return Err(ToolError::Filtered {
                        filter: f.name.clone(),
                        reason: format!("failed: {e}"),
                    });
                }
            }
        }
        message.files = files;
        Ok(message)
    }

    /// `send` to `adapter`, retried when the platform asks to wait a little.
    async fn send_with_retry(
        &self,
        adapter: &str,
        platform: &Platform,
        message: OutboundMessage,
    ) -> Result<Sent, ToolError> {
        let mut attempt = 0;
        loop {
            match platform.send(message.clone()).await {
                Err(ToolError::Adapter(CallError::Adapter {
                    error: AdapterErrorText(AdapterError::RateLimited(ms)),
                    ..
                })) if attempt < RATE_LIMIT_RETRIES
                    && Duration::from_millis(ms) <= MAX_RATE_LIMIT_WAIT =>
                {
                    attempt += 1;
                    tracing::info!(
                        adapter,
                        "rate limited; retrying in {ms} ms ({attempt} of {RATE_LIMIT_RETRIES})"
                    );
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                other => return other,
            }
        }
    }

    /// `reply`: filters, chunking, files on the first chunk.
    pub async fn reply(&self, reply: Reply) -> Result<String, ToolError> {
        let (adapter, active, chat) = self.open_chat(&reply.chat_id)?;
        let limits = &active.description.limits;
        if !reply.files.is_empty() && !active.description.features.contains(Features::FILES) {
            return Err(ToolError::Unsupported {
                adapter: active.description.platform.clone(),
                what: "files",
            });
        }
        if !reply.buttons.iter().all(Vec::is_empty)
            && !active.description.features.contains(Features::BUTTONS)
        {
            return Err(ToolError::Unsupported {
                adapter: active.description.platform.clone(),
                what: "buttons",
            });
        }
        let files = self.read_files(&reply.files, limits.max_files, limits.max_file_bytes)?;
        let mut message = OutboundMessage {
            chat_id: chat.to_string(),
            text: reply.text,
            reply_to: reply.reply_to,
            format: reply.format,
            buttons: reply.buttons,
            files,
        };
        // No loaded secret reaches a filter or the adapter, whatever the session wrote.
        crate::secrets::loaded::redact_outbound(&mut message, active.handle.name());
        let message = self.filter_outbound(adapter, message).await?;
        // Only airlock's own prompts carry reserved button data, whatever
        // the session asked or a filter rewrote.
        if let Some(b) = message
            .buttons
            .iter()
            .flatten()
            .find(|b| b.data.starts_with(crate::relay::verdict::RESERVED))
        {
            return Err(ToolError::Arguments(format!(
                "button {:?}: data may not start with {:?}, which airlock keeps for its own \
                 permission prompts; choose other data",
                crate::text::one_line(&b.label, 40),
                crate::relay::verdict::RESERVED
            )));
        }
        let parts = chunks(
            &message.text,
            limits.max_text_len as usize,
            limits.chunk_mode,
        );
        let platform = self.platform(adapter, active);
        let mut ids = Vec::new();
        let mut files = Some(message.files);
        let mut buttons = Some(message.buttons);
        let last = parts.len() - 1;
        for (i, part) in parts.into_iter().enumerate() {
            let piece = OutboundMessage {
                chat_id: message.chat_id.clone(),
                text: part,
                reply_to: if i == 0 {
                    message.reply_to.clone()
                } else {
                    None
                },
                format: message.format,
                buttons: if i == last {
                    buttons.take().unwrap_or_default()
                } else {
                    Vec::new()
                },
                files: files.take().unwrap_or_default(),
            };
            let sent = match self.send_with_retry(adapter, &platform, piece).await {
                Ok(sent) => sent,
                Err(e) if !ids.is_empty() => {
                    return Err(ToolError::Partial {
                        sent: ids,
                        error: Box::new(e),
                    });
                }
                Err(e) => return Err(e),
            };
            ids.extend(sent.message_ids);
        }
        Ok(match ids.as_slice() {
            [one] => format!("sent (id: {one})"),
            many => format!("sent {} parts (ids: {})", many.len(), many.join(", ")),
        })
    }

    /// `edit_message`.
    pub async fn edit(
        &self,
        chat_id: &str,
        message_id: &str,
        text: String,
        format: TextFormat,
    ) -> Result<String, ToolError> {
        let (adapter, active, chat) = self.open_chat(chat_id)?;
        if !active.description.features.contains(Features::EDIT) {
            return Err(ToolError::Unsupported {
                adapter: active.description.platform.clone(),
                what: "editing messages",
            });
        }
        let max = active.description.limits.max_text_len as usize;
        if text.chars().count() > max {
            return Err(ToolError::Arguments(format!(
                "an edit must fit in one message of {max} characters"
            )));
        }
        let mut message = OutboundMessage {
            chat_id: chat.to_string(),
            text,
            reply_to: None,
            format,
            buttons: Vec::new(),
            files: Vec::new(),
        };
        crate::secrets::loaded::redact_outbound(&mut message, active.handle.name());
        let filtered = self.filter_outbound(adapter, message).await?;
        self.platform(adapter, active)
            .edit(EditRequest {
                chat_id: chat.to_string(),
                message_id: message_id.to_string(),
                text: filtered.text,
                format,
            })
            .await?;
        Ok(format!("edited (id: {message_id})"))
    }

    /// `react`.
    pub async fn react(
        &self,
        chat_id: &str,
        message_id: &str,
        emoji: &str,
    ) -> Result<String, ToolError> {
        let (adapter, active, chat) = self.open_chat(chat_id)?;
        if !active.description.features.contains(Features::REACT) {
            return Err(ToolError::Unsupported {
                adapter: active.description.platform.clone(),
                what: "reactions",
            });
        }
        self.platform(adapter, active)
            .react(ReactRequest {
                chat_id: chat.to_string(),
                message_id: message_id.to_string(),
                emoji: emoji.to_string(),
            })
            .await?;
        Ok("reacted".into())
    }
}

impl Router {
    /// Fetch an attachment through its adapter and write it into the inbox
    /// under a safe name; returns its path.
    pub(crate) async fn save_attachment(
        &self,
        adapter: &str,
        active: &Active,
        request: AttachmentRequest,
        stamp_ms: u64,
        max_bytes: u64,
    ) -> Result<String, ToolError> {
        let inbox = self
            .inbox
            .as_ref()
            .ok_or_else(|| ToolError::Internal("the inbox directory is not available".into()))?;
        let data = self
            .platform(adapter, active)
            .download_attachment(request)
            .await?;
        if data.data.len() as u64 > max_bytes {
            return Err(ToolError::Arguments(format!(
                "the attachment is {} bytes, over the limit of {max_bytes}",
                data.data.len()
            )));
        }
        let name = inbox
            .save(adapter, stamp_ms, &data.name, &data.data)
            .map_err(|e| match e {
                super::inbox::InboxError::TooBig { .. } => ToolError::Arguments(e.to_string()),
                super::inbox::InboxError::Io { .. } => ToolError::Internal(e.to_string()),
            })?;
        Ok(self
            .home
            .join(crate::home::INBOX_DIR)
            .join(name)
            .display()
            .to_string())
    }

    /// `download_attachment`: only an attachment delivered from that chat.
    pub async fn download(&self, chat_id: &str, attachment_id: &str) -> Result<String, ToolError> {
        let (adapter, active, chat) = self.open_chat(chat_id)?;
        if !active.description.features.contains(Features::DOWNLOAD) {
            return Err(ToolError::Unsupported {
                adapter: active.description.platform.clone(),
                what: "downloading attachments",
            });
        }
        let known = self
            .queue
            .delivered_attachment(adapter, chat, attachment_id)
            .map_err(|e| ToolError::Internal(e.to_string()))?;
        if !known {
            return Err(ToolError::UnknownAttachment {
                chat: chat_id.to_string(),
                attachment: attachment_id.to_string(),
            });
        }
        let request = AttachmentRequest {
            chat_id: chat.to_string(),
            message_id: None,
            attachment_id: attachment_id.to_string(),
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let path = self
            .save_attachment(adapter, active, request, now, MAX_DOWNLOAD_BYTES)
            .await?;
        Ok(format!("saved to {path}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names() {
        for (raw, want) in [
            ("photo.jpg", "photo.jpg"),
            ("../../etc/passwd", "_.._etc_passwd"),
            ("..hidden", "hidden"),
            ("", "file"),
            ("a/b\\c\nd", "a_b_c_d"),
            ("élan.png", "_lan.png"),
        ] {
            assert_eq!(safe_file_name(raw), want, "{raw:?}");
        }
        assert_eq!(safe_file_name(&"x".repeat(500)).len(), 120);
    }
}
