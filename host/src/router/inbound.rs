//! From an adapter's events to what the session receives: gate, commands,
//! filters, sanitized events.

use std::collections::BTreeMap;

use super::commands::{self, Command};
use super::time::iso8601;
use super::{Active, Router};
use crate::access::{Decision, Inbound, Memo, Room, SenderRef};
use crate::bindings::message_filter::InboundVerdict;
use crate::bindings::types::{
    AttachmentRequest, ButtonPress, Chat, ChatKind, Features, InboundEvent, InboundMessage,
    Reaction, Sender,
};
use crate::event::ChannelEvent;
use crate::queue::dedupe;

/// Largest attachment fetched eagerly into the inbox.
pub const MAX_EAGER_ATTACHMENT: u64 = 10 << 20;

/// An event the gate and the filters let through, with what the host keeps
/// about it besides what the session sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admitted {
    /// What the session receives.
    pub event: ChannelEvent,
    /// See [`crate::queue::dedupe`].
    pub dedupe: Option<String>,
    /// The platform chat id, unqualified.
    pub chat: String,
    /// Attachment ids the event carried.
    pub attachments: Vec<String>,
    /// A message the sender will wait for an answer to: worth a typing indicator.
    pub awaits_answer: bool,
}

fn who(sender: &Sender) -> String {
    sender
        .handle
        .clone()
        .or_else(|| sender.display_name.clone())
        .unwrap_or_else(|| sender.id.clone())
}

fn room(chat: &Chat) -> Room<'_> {
    match (chat.kind, chat.parent_id.as_deref()) {
        (ChatKind::Direct, _) => Room::Direct,
        (ChatKind::Thread, Some(parent)) => Room::Thread { parent },
        _ => Room::Group,
    }
}

impl Router {
    /// Gate, answer commands, filter and sanitize `events` of `adapter`.
    pub async fn inbound(&self, adapter: &str, events: Vec<InboundEvent>) -> Vec<Admitted> {
        let Some(active) = self.adapters.get(adapter) else {
            tracing::warn!(
                component = adapter,
                "events from an adapter the router does not serve; dropped"
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut memo = Memo::default();
        for event in events {
            let admitted = match event {
                InboundEvent::Message(m) => self.message(adapter, active, m, &mut memo).await,
                InboundEvent::Button(b) => self.button(adapter, b, &mut memo),
                InboundEvent::Reaction(r) => self.reaction(adapter, r, &mut memo),
            };
            out.extend(admitted);
        }
        out
    }

    fn admit(
        &self,
        adapter: &str,
        chat: &Chat,
        sender: &Sender,
        mentions: bool,
        text: &str,
        memo: &mut Memo,
    ) -> bool {
        let inbound = Inbound {
            sender: SenderRef {
                adapter,
                sender_id: &sender.id,
            },
            is_bot: sender.is_bot,
            handle: sender.handle.as_deref(),
            chat_id: &chat.id,
            room: room(chat),
            mentions_bot: mentions,
            text,
        };
        match self.access.admit_with(&inbound, memo) {
            Ok(Decision::Deliver) => true,
            Ok(Decision::Drop(reason)) => {
                tracing::info!(adapter, sender = %sender.id, chat = %chat.id, "dropped: {reason}");
                false
            }
            Err(e) => {
                tracing::error!(adapter, "access check failed, dropping the message: {e}");
                false
            }
        }
    }

    /// The meta every event carries. `platform` is the host's name for the
    /// adapter, never what the adapter says of itself: a component cannot
    /// pass its events off as another platform's.
    fn base_meta(
        &self,
        adapter: &str,
        chat_id: &str,
        sender: &Sender,
    ) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("chat_id", format!("{adapter}:{chat_id}")),
            ("platform", adapter.to_string()),
            ("user", who(sender)),
            ("user_id", sender.id.clone()),
        ])
    }

    async fn message(
        &self,
        adapter: &str,
        active: &Active,
        message: InboundMessage,
        memo: &mut Memo,
    ) -> Option<Admitted> {
        if !self.admit(
            adapter,
            &message.chat,
            &message.sender,
            message.mentions_bot,
            &message.text,
            memo,
        ) {
            return None;
        }
        if message.chat.kind == ChatKind::Direct
            && !message.edited
            && let Some(command) = Command::parse(&message.text)
        {
            self.answer_command(adapter, active, &message.chat.id, command);
            return None;
        }
        let mut message = message;
        for f in self.filters.iter().filter(|f| f.inbound) {
            match f.runner.inbound(&message).await {
                Ok(InboundVerdict::Pass) => {}
                Ok(InboundVerdict::Rewrite(m)) => match super::rewrite::inbound(&message, m) {
                    Ok(kept) => message = kept,
                    Err(refused) => {
                        tracing::warn!(
                            adapter,
                            filter = f.name,
                            "inbound message dropped: the filter {refused}"
                        );
                        return None;
                    }
                },
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
        let mut meta = self.base_meta(adapter, &message.chat.id, &message.sender);
        meta.insert("message_id", message.message_id.clone());
        meta.insert("ts", iso8601(message.ts_ms));
        if let Some(r) = &message.reply_to {
            meta.insert("reply_to", r.clone());
        }
        if message.edited {
            meta.insert("edited", "true".into());
        }
        if message.chat.kind != ChatKind::Direct
            && let Some(title) = &message.chat.title
        {
            meta.insert("chat_title", title.clone());
        }
        let attachments: Vec<String> = message.attachments.iter().map(|a| a.id.clone()).collect();
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
            if active.description.features.contains(Features::DOWNLOAD) {
                meta.insert("attachment_ids", attachments.join(" "));
            }
            if let Some(path) = self.fetch_first_attachment(adapter, active, &message).await {
                meta.insert("attachment_path", path);
            }
        }
        let content = if message.text.trim().is_empty() && !attachments.is_empty() {
            format!("({} attached)", meta["attachments"])
        } else {
            message.text.clone()
        };
        Some(Admitted {
            event: ChannelEvent::new(&content, meta),
            dedupe: Some(dedupe::message_key(&message)),
            chat: message.chat.id.clone(),
            attachments,
            awaits_answer: !message.edited,
        })
    }

    /// Answers `/start`, `/help` or `/status` in the chat; the session never
    /// sees it.
    fn answer_command(&self, adapter: &str, active: &Active, chat_id: &str, command: Command) {
        let text = commands::answer(
            command,
            &active.description.platform,
            self.session.is_connected(),
        );
        let handle = active.handle.clone();
        let message = commands::message(chat_id, text);
        let adapter = adapter.to_owned();
        tokio::spawn(async move {
            if let Err(e) = handle.send(message).await {
                tracing::warn!(adapter, "cannot answer a {command:?} command: {e}");
            }
        });
    }

    /// Download the first attachment into the inbox, if the adapter can and
    /// it is small enough; the path travels in meta.
    async fn fetch_first_attachment(
        &self,
        adapter: &str,
        active: &Active,
        message: &InboundMessage,
    ) -> Option<String> {
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
        match self
            .save_attachment(
                adapter,
                active,
                request,
                message.ts_ms,
                MAX_EAGER_ATTACHMENT,
            )
            .await
        {
            Ok(path) => Some(path),
            Err(e) => {
                tracing::warn!(adapter, "attachment download failed: {e}");
                None
            }
        }
    }

    fn button(&self, adapter: &str, press: ButtonPress, memo: &mut Memo) -> Option<Admitted> {
        // A press is on a message the bot sent: it addresses the bot.
        if !self.admit(adapter, &press.chat, &press.sender, true, &press.data, memo) {
            return None;
        }
        let mut meta = self.base_meta(adapter, &press.chat.id, &press.sender);
        if let Some(id) = &press.message_id {
            meta.insert("message_id", id.clone());
        }
        meta.insert("button", press.data.clone());
        Some(Admitted {
            event: ChannelEvent::new(&format!("[pressed button: {}]", press.data), meta),
            dedupe: None,
            chat: press.chat.id.clone(),
            attachments: Vec::new(),
            awaits_answer: true,
        })
    }

    fn reaction(&self, adapter: &str, reaction: Reaction, memo: &mut Memo) -> Option<Admitted> {
        // In a group, a reaction may be on anyone's message: it does not
        // address the bot by itself.
        let direct = reaction.chat.kind == ChatKind::Direct;
        if !self.admit(
            adapter,
            &reaction.chat,
            &reaction.sender,
            direct,
            &reaction.emoji,
            memo,
        ) {
            return None;
        }
        let mut meta = self.base_meta(adapter, &reaction.chat.id, &reaction.sender);
        meta.insert("message_id", reaction.message_id.clone());
        let verb = if reaction.added {
            "reacted"
        } else {
            "removed the reaction"
        };
        Some(Admitted {
            event: ChannelEvent::new(
                &format!(
                    "[{verb} {} on message {}]",
                    reaction.emoji, reaction.message_id
                ),
                meta,
            ),
            dedupe: None,
            chat: reaction.chat.id.clone(),
            attachments: Vec::new(),
            awaits_answer: false,
        })
    }
}
