//! From a tool call to the adapter.

use std::path::Path;

use super::chunk::chunks;
use super::{Router, ToolError};
use crate::runtime::bindings::message_filter::OutboundVerdict;
use crate::runtime::bindings::types::{
    EditRequest, Features, OutboundFile, OutboundMessage, ReactRequest, TextFormat,
};

/// Largest file `reply` sends, whatever the platform allows.
pub const MAX_FILE_BYTES: u64 = 50 << 20;

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
    /// Read the files of a reply: absolute, regular, small enough, and never
    /// inside the state directory.
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
        let home = self
            .home
            .canonicalize()
            .unwrap_or_else(|_| self.home.clone());
        let limit = max_bytes.min(MAX_FILE_BYTES);
        let mut out = Vec::new();
        for raw in paths {
            let refuse = |reason: String| ToolError::File {
                path: raw.clone(),
                reason,
            };
            let path = Path::new(raw);
            if !path.is_absolute() {
                return Err(refuse("give an absolute path".into()));
            }
            let real = path
                .canonicalize()
                .map_err(|e| refuse(format!("cannot open it: {e}")))?;
            if real.starts_with(&home) {
                return Err(refuse(
                    "files in airlock's state directory are never sent".into(),
                ));
            }
            let meta =
                std::fs::metadata(&real).map_err(|e| refuse(format!("cannot open it: {e}")))?;
            if !meta.is_file() {
                return Err(refuse("not a regular file".into()));
            }
            if meta.len() > limit {
                return Err(refuse(format!(
                    "{} bytes is over the limit of {limit} bytes",
                    meta.len()
                )));
            }
            let data = std::fs::read(&real).map_err(|e| refuse(format!("cannot read it: {e}")))?;
            let name = real
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_else(|| "file".into());
            out.push(OutboundFile {
                name,
                mime: mime_for(&real).into(),
                data,
            });
        }
        Ok(out)
    }

    /// Run the outbound filters.
    async fn filter_outbound(
        &self,
        mut message: OutboundMessage,
    ) -> Result<OutboundMessage, ToolError> {
        for f in &self.filters {
            match f.runner.outbound(&message).await {
                Ok(OutboundVerdict::Pass) => {}
                Ok(OutboundVerdict::Rewrite(m)) => message = m,
                Ok(OutboundVerdict::Drop(reason)) => {
                    return Err(ToolError::Filtered {
                        filter: f.name.clone(),
                        reason: format!("dropped it: {reason}"),
                    });
                }
                Err(e) => {
                    return Err(ToolError::Filtered {
                        filter: f.name.clone(),
                        reason: format!("failed: {e}"),
                    });
                }
            }
        }
        Ok(message)
    }

    /// `reply`: filters, chunking, files on the first chunk.
    pub async fn reply(&self, reply: Reply) -> Result<String, ToolError> {
        let (_, active, chat) = self.open_chat(&reply.chat_id)?;
        let limits = &active.description.limits;
        if !reply.files.is_empty() && !active.description.features.contains(Features::FILES) {
            return Err(ToolError::Unsupported {
                adapter: active.description.platform.clone(),
                what: "files",
            });
        }
        let files = self.read_files(&reply.files, limits.max_files, limits.max_file_bytes)?;
        let message = OutboundMessage {
            chat_id: chat.to_string(),
            text: reply.text,
            reply_to: reply.reply_to,
            format: reply.format,
            buttons: Vec::new(),
            files,
        };
        let message = self.filter_outbound(message).await?;
        let parts = chunks(
            &message.text,
            limits.max_text_len as usize,
            limits.chunk_mode,
        );
        let mut ids = Vec::new();
        let mut files = Some(message.files);
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
                buttons: Vec::new(),
                files: files.take().unwrap_or_default(),
            };
            let sent = active.handle.send(piece).await?;
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
        let (_, active, chat) = self.open_chat(chat_id)?;
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
        let filtered = self
            .filter_outbound(OutboundMessage {
                chat_id: chat.to_string(),
                text,
                reply_to: None,
                format,
                buttons: Vec::new(),
                files: Vec::new(),
            })
            .await?;
        active
            .handle
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
        let (_, active, chat) = self.open_chat(chat_id)?;
        if !active.description.features.contains(Features::REACT) {
            return Err(ToolError::Unsupported {
                adapter: active.description.platform.clone(),
                what: "reactions",
            });
        }
        active
            .handle
            .react(ReactRequest {
                chat_id: chat.to_string(),
                message_id: message_id.to_string(),
                emoji: emoji.to_string(),
            })
            .await?;
        Ok("reacted".into())
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
