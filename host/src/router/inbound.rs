//! From an adapter's batch to the events the session receives.

use std::collections::BTreeMap;

use super::time::iso8601;
use super::{Active, Router};
use crate::access::{Decision, SenderRef};
use crate::mcp::sanitize;
use crate::runtime::actor::Unsolicited;
use crate::runtime::bindings::message_filter::InboundVerdict;
use crate::runtime::bindings::types::{
    AttachmentRequest, ButtonPress, Features, InboundEvent, InboundMessage, Reaction, Sender,
};

/// Largest attachment fetched eagerly into the inbox.
pub const MAX_EAGER_ATTACHMENT: u64 = 10 << 20;

/// One `notifications/claude/channel` event, sanitized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelEvent {
    /// The body.
    pub content: String,
    /// Tag attributes; keys are valid identifiers.
    pub meta: BTreeMap<String, String>,
}

impl ChannelEvent {
    fn new(content: &str, meta: BTreeMap<&'static str, String>) -> Self {
        let meta = meta
            .into_iter()
            .filter(|(k, _)| sanitize::valid_key(k))
            .map(|(k, v)| (k.to_string(), sanitize::value(&v)))
            .collect();
        Self {
            content: sanitize::content(content),
            meta,
        }
    }
}

fn who(sender: &Sender) -> String {
    sender
        .handle
        .clone()
        .or_else(|| sender.display_name.clone())
        .unwrap_or_else(|| sender.id.clone())
}

impl Router {
    /// Gate, filter and sanitize one batch.
    pub async fn inbound(&self, batch: Unsolicited) -> Vec<ChannelEvent> {
        let Some(active) = self.adapters.get(&*batch.component) else {
            tracing::warn!(component = %batch.component, "events from an adapter the router does not serve; dropped");
            return Vec::new();
        };
        let adapter = &*batch.component;
        let mut out = Vec::new();
        for event in batch.batch.events {
            let delivered = match event {
                InboundEvent::Message(m) => self.message(adapter, active, m).await,
                InboundEvent::Button(b) => self.button(adapter, active, b),
                InboundEvent::Reaction(r) => self.reaction(adapter, active, r),
            };
            out.extend(delivered);
        }
        out
    }

    fn admit(&self, adapter: &str, chat_id: &str, sender: &Sender, text: &str) -> bool {
        let sender_ref = SenderRef {
            adapter,
            sender_id: &sender.id,
        };
        match self.access.admit(
            &sender_ref,
            sender.is_bot,
            chat_id,
            sender.handle.as_deref(),
            text,
        ) {
            Ok(Decision::Deliver) => true,
            Ok(Decision::Drop(reason)) => {
                tracing::info!(adapter, sender = %sender.id, "dropped: {reason}");
                false
            }
            Err(e) => {
                tracing::error!(adapter, "access check failed, dropping the message: {e}");
                false
            }
        }
    }

    fn base_meta(
        &self,
        adapter: &str,
        active: &Active,
        chat_id: &str,
        sender: &Sender,
    ) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("chat_id", format!("{adapter}:{chat_id}")),
            ("platform", active.description.platform.clone()),
            ("user", who(sender)),
            ("user_id", sender.id.clone()),
        ])
    }

    async fn message(
        &self,
        adapter: &str,
        active: &Active,
        message: InboundMessage,
    ) -> Option<ChannelEvent> {
        if !self.admit(adapter, &message.chat.id, &message.sender, &message.text) {
            return None;
        }
        let mut message = message;
        for f in &self.filters {
            match f.runner.inbound(&message).await {
                Ok(InboundVerdict::Pass) => {}
                Ok(InboundVerdict::Rewrite(m)) => message = m,
                Ok(InboundVerdict::Drop(reason)) => {
                    tracing::info!(
                        adapter,
                        filter = f.name,
                        "inbound message dropped by filter: {reason}"
                    );
                    return None;
                }
                Err(e) => {
                    tracing::warn!(
                        adapter,
                        filter = f.name,
                        "inbound filter failed, dropping the message: {e}"
                    );
                    return None;
                }
            }
        }
        let mut meta = self.base_meta(adapter, active, &message.chat.id, &message.sender);
        meta.insert("message_id", message.message_id.clone());
        meta.insert("ts", iso8601(message.ts_ms));
        if let Some(r) = &message.reply_to {
            meta.insert("reply_to", r.clone());
        }
        if message.edited {
            meta.insert("edited", "true".into());
        }
        if !message.attachments.is_empty() {
            meta.insert("attachment_count", message.attachments.len().to_string());
            let listed: Vec<String> = message
                .attachments
                .iter()
                .map(|a| {
                    let name = a
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("{:?}", a.kind).to_lowercase());
                    let mime = a.mime.clone().unwrap_or_else(|| "unknown type".into());
                    match a.size {
                        Some(s) => format!("{name} ({mime}, {} KB)", s.div_ceil(1024)),
                        None => format!("{name} ({mime})"),
                    }
                })
                .collect();
            meta.insert("attachments", listed.join("; "));
            if let Some(path) = self.fetch_first_attachment(adapter, active, &message).await {
                meta.insert("attachment_path", path);
            }
        }
        Some(ChannelEvent::new(&message.text, meta))
    }

    /// Download the first attachment into the inbox, if the adapter can and
    /// it is small enough; the path travels in meta.
    async fn fetch_first_attachment(
        &self,
        adapter: &str,
        active: &Active,
        message: &InboundMessage,
    ) -> Option<String> {
        let inbox = self.inbox.as_ref()?;
        let first = message.attachments.first()?;
        if !active.description.features.contains(Features::DOWNLOAD)
            || first.size.is_some_and(|s| s > MAX_EAGER_ATTACHMENT)
        {
            return None;
        }
        let request = AttachmentRequest {
            chat_id: message.chat.id.clone(),
            message_id: Some(message.message_id.clone()),
            attachment_id: first.id.clone(),
        };
        let data = match active.handle.download_attachment(request).await {
            Ok(d) if d.data.len() as u64 <= MAX_EAGER_ATTACHMENT => d,
            Ok(_) => return None,
            Err(e) => {
                tracing::warn!(adapter, "attachment download failed: {e}");
                return None;
            }
        };
        let name = crate::router::outbound::safe_file_name(&format!(
            "{}-{adapter}-{}",
            message.ts_ms, data.name
        ));
        if let Err(e) = inbox.write(&name, &data.data) {
            tracing::warn!(adapter, "cannot write the attachment into the inbox: {e}");
            return None;
        }
        Some(
            self.home
                .join(crate::home::INBOX_DIR)
                .join(name)
                .display()
                .to_string(),
        )
    }

    fn button(&self, adapter: &str, active: &Active, press: ButtonPress) -> Option<ChannelEvent> {
        if !self.admit(adapter, &press.chat.id, &press.sender, &press.data) {
            return None;
        }
        let mut meta = self.base_meta(adapter, active, &press.chat.id, &press.sender);
        if let Some(id) = &press.message_id {
            meta.insert("message_id", id.clone());
        }
        meta.insert("button", press.data.clone());
        Some(ChannelEvent::new(
            &format!("[pressed button: {}]", press.data),
            meta,
        ))
    }

    fn reaction(&self, adapter: &str, active: &Active, reaction: Reaction) -> Option<ChannelEvent> {
        if !self.admit(
            adapter,
            &reaction.chat.id,
            &reaction.sender,
            &reaction.emoji,
        ) {
            return None;
        }
        let mut meta = self.base_meta(adapter, active, &reaction.chat.id, &reaction.sender);
        meta.insert("message_id", reaction.message_id.clone());
        let verb = if reaction.added {
            "reacted"
        } else {
            "removed the reaction"
        };
        Some(ChannelEvent::new(
            &format!(
                "[{verb} {} on message {}]",
                reaction.emoji, reaction.message_id
            ),
            meta,
        ))
    }
}
