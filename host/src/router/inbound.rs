//! From an adapter's events to what the session receives: gate, commands,
//! filters, sanitized events.

use std::collections::BTreeMap;

use std::time::Instant;

use super::commands::{self, Command};
use super::per_minute::Take;
use super::time::iso8601;
use super::{Active, Router};
use crate::access::{AccessStore, Decision, Inbound, Memo, Pairing, Role, Room, SenderRef, gate};
use crate::alert::{self, Alert, Kind};
use crate::bindings::message_filter::InboundVerdict;
use crate::bindings::types::{
    AttachmentRequest, ButtonPress, Chat, ChatKind, Features, InboundEvent, InboundMessage,
    Reaction, Sender,
};
use crate::event::ChannelEvent;
use crate::queue::{Origin, dedupe};

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
    /// Who sent it, for the gate at delivery.
    pub origin: Origin,
}

/// How airlock names a sender: the handle, else the display name, else the id.
pub(super) fn who(sender: &Sender) -> String {
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

/// The origin of an event from `sender` in `chat`, admitted under `rev`.
fn origin(chat: &Chat, sender: &Sender, rev: i64) -> Origin {
    let group = match room(chat) {
        Room::Direct => None,
        Room::Group => Some(chat.id.clone()),
        Room::Thread { parent } => Some(parent.to_owned()),
    };
    Origin {
        sender_id: sender.id.clone(),
        group,
        admitted: rev,
    }
}

/// One event, as the gate sees it.
struct Seen<'a> {
    chat: &'a Chat,
    sender: &'a Sender,
    mentions: bool,
    text: &'a str,
    /// A message (which may carry a pairing code), not a press or a reaction.
    message: bool,
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
        if events.is_empty() {
            return Vec::new();
        }
        let mut memo = Memo::default();
        // The revision this batch is admitted under: a change that lands
        // while it is gated makes delivery check again, never the reverse.
        let rev = self.access.begin_batch(&mut memo).unwrap_or(0);
        for event in events {
            let admitted = match event {
                InboundEvent::Message(m) => self.message(adapter, active, m, rev, &mut memo).await,
                InboundEvent::Button(b) => self.button(adapter, b, rev, &mut memo).await,
                InboundEvent::Reaction(r) => self.reaction(adapter, r, rev, &mut memo),
            };
            out.extend(admitted);
        }
        if let Err(e) = self.access.tally(&mut memo) {
            tracing::warn!(adapter, "cannot count dropped messages: {e}");
        }
        out
    }

    /// The gate for one event: pairing codes first, then the access
    /// decision, then the sender's per-minute limit. `Some(role)`: deliver.
    fn admit(&self, adapter: &str, seen: &Seen<'_>, memo: &mut Memo) -> Option<Role> {
        let inbound = Inbound {
            sender: SenderRef {
                adapter,
                sender_id: &seen.sender.id,
            },
            is_bot: seen.sender.is_bot,
            handle: seen.sender.handle.as_deref(),
            chat_id: &seen.chat.id,
            room: room(seen.chat),
            mentions_bot: seen.mentions,
            text: seen.text,
        };
        match self.gate(adapter, seen, &inbound, memo) {
            Ok(role) => role,
            Err(e) => {
                tracing::error!(adapter, "access check failed, dropping the message: {e}");
                None
            }
        }
    }

    fn gate(
        &self,
        adapter: &str,
        seen: &Seen<'_>,
        inbound: &Inbound<'_>,
        memo: &mut Memo,
    ) -> Result<Option<Role>, crate::access::AccessError> {
        let role = self.access.role_with(&inbound.sender, memo)?;
        if seen.message
            && crate::access::invite::normalize(seen.text).is_some()
            && self.access.lockdown_with(memo)?.is_none()
        {
            match self.access.pair(inbound, role)? {
                Pairing::NotACode | Pairing::Unmatched => {}
                Pairing::Paired { role, group } => {
                    AccessStore::forget(memo, adapter, &seen.sender.id, &seen.chat.id);
                    self.note(
                        adapter,
                        crate::audit::Entry::new(
                            crate::audit::Kind::Access,
                            if group {
                                "a group was opened with a group invite".to_string()
                            } else {
                                format!("an invite was redeemed: the sender is now {role}")
                            },
                        )
                        .adapter(adapter)
                        .chat(&seen.chat.id)
                        .sender(&seen.sender.id, seen.sender.handle.as_deref())
                        .detail(serde_json::json!({"change": "invite redeemed", "role": role.to_string(), "group": group})),
                    );
                    self.paired(adapter, seen.chat, seen.sender, role, group);
                    return Ok(None);
                }
                Pairing::Wrong { blocked } => {
                    AccessStore::count_drop(memo, adapter, gate::reason::WRONG_CODE);
                    self.note_drop(
                        adapter,
                        seen.chat,
                        seen.sender,
                        seen.text,
                        gate::reason::WRONG_CODE,
                    );
                    self.wrong_code(adapter, seen.sender, blocked);
                    self.stranger(adapter, seen);
                    return Ok(None);
                }
                Pairing::Ignored => {
                    AccessStore::count_drop(memo, adapter, gate::reason::CODE_BLOCKED);
                    self.note_drop(
                        adapter,
                        seen.chat,
                        seen.sender,
                        seen.text,
                        gate::reason::CODE_BLOCKED,
                    );
                    self.stranger(adapter, seen);
                    return Ok(None);
                }
            }
        }
        match self.access.admit_with(inbound, memo)? {
            Decision::Deliver => {}
            Decision::Drop(reason) => {
                tracing::info!(adapter, sender = %seen.sender.id, chat = %seen.chat.id, "dropped: {reason}");
                self.note_drop(adapter, seen.chat, seen.sender, seen.text, reason);
                if role.is_none() && !seen.sender.is_bot {
                    self.stranger(adapter, seen);
                }
                return Ok(None);
            }
        }
        let key = (adapter.to_owned(), seen.sender.id.clone());
        match self.senders.take(&key, Instant::now()) {
            // Someone not on the allowlist, let in by a group open to any
            // member, talks as a member.
            Take::Ok => Ok(Some(role.unwrap_or(Role::Member))),
            over => {
                AccessStore::count_drop(memo, adapter, gate::reason::RATE_LIMITED);
                self.note_drop(
                    adapter,
                    seen.chat,
                    seen.sender,
                    seen.text,
                    gate::reason::RATE_LIMITED,
                );
                tracing::info!(adapter, sender = %seen.sender.id, "dropped: {}", gate::reason::RATE_LIMITED);
                if over == Take::FirstOver {
                    self.rate_limited(adapter, seen.chat, seen.sender);
                }
                Ok(None)
            }
        }
    }

    /// Counts a stranger's message toward the flood alert: one written to
    /// the bot (a direct message, or a mention in a group), not the chatter
    /// of a group the bot happens to be in.
    fn stranger(&self, adapter: &str, seen: &Seen<'_>) {
        let to_the_bot = seen.chat.kind == ChatKind::Direct || seen.mentions;
        if !to_the_bot || self.strangers.take(&adapter.to_owned(), Instant::now()) == Take::Ok {
            return;
        }
        self.alerts.raise(Alert {
            kind: Kind::StrangerFlood,
            adapter: Some(adapter.to_owned()),
            text: format!(
                "more than {} messages a minute from senders who are not allowed; all dropped \
                 (first: {} {})",
                self.strangers.limit(),
                crate::text::one_line(&seen.sender.id, 40),
                if crate::access::invite::normalize(seen.text).is_some() {
                    "(a pairing code)".to_string()
                } else {
                    alert::quote(seen.text)
                }
            ),
        });
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
        rev: i64,
        memo: &mut Memo,
    ) -> Option<Admitted> {
        let role = self.admit(
            adapter,
            &Seen {
                chat: &message.chat,
                sender: &message.sender,
                mentions: message.mentions_bot,
                text: &message.text,
                message: true,
            },
            memo,
        )?;
        // An answer to a permission prompt is the relay's, never the session's.
        if !message.edited && self.relay_text(adapter, &message, role).await {
            return None;
        }
        if !message.edited
            && let Some(command) = Command::parse(&message.text)
            && (message.chat.kind == ChatKind::Direct || command.in_groups())
        {
            self.answer_command(
                adapter,
                active,
                &message.chat.id,
                command,
                role,
                &message.sender,
            );
            self.note(
                adapter,
                crate::audit::Entry::new(
                    crate::audit::Kind::Inbound,
                    format!(
                        "answered the host command {} (not delivered)",
                        crate::text::one_line(&message.text, 20)
                    ),
                )
                .adapter(adapter)
                .chat(&message.chat.id)
                .sender(&message.sender.id, message.sender.handle.as_deref())
                .detail(serde_json::json!({"outcome": "host command"})),
            );
            return None;
        }
        let mut message = message;
        for f in self.filters.iter().filter(|f| f.inbound) {
            match f.runner.inbound(&message).await {
                Ok(InboundVerdict::Pass) => {}
                Ok(InboundVerdict::Rewrite(m)) => match super::rewrite::inbound(&message, m) {
                    Ok(kept) => {
                        message = kept;
                        self.note_filter(
                            adapter,
                            &message.chat,
                            &message.sender,
                            &f.name,
                            "rewrite",
                            "",
                        );
                    }
                    Err(refused) => {
                        tracing::warn!(
                            adapter,
                            filter = f.name,
                            "inbound message dropped: the filter {refused}"
                        );
                        self.filter_dropped(
                            adapter,
                            &f.name,
                            &message,
                            "refused rewrite",
                            &refused.to_string(),
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
                    self.filter_dropped(adapter, &f.name, &message, "drop", &reason);
                    return None;
                }
                Err(e) => {
                    tracing::warn!(
                        adapter,
                        filter = f.name,
                        "inbound filter failed, dropping the message: {e}"
                    );
                    self.filter_dropped(adapter, &f.name, &message, "failed", &e.to_string());
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
            origin: origin(&message.chat, &message.sender, rev),
        })
    }

    /// Answers `/start`, `/help` or `/status` in the chat; the session never
    /// sees it.
    fn answer_command(
        &self,
        adapter: &str,
        active: &Active,
        chat_id: &str,
        command: Command,
        role: Role,
        sender: &Sender,
    ) {
        let text = match (command.clone(), role) {
            (Command::Session(name), _) => {
                return self.hub_command(adapter, chat_id, &who(sender), Some(&name));
            }
            (Command::Sessions, _) => {
                return self.hub_command(adapter, chat_id, &who(sender), None);
            }
            (Command::Status, Role::Owner) => self.owner_status(),
            _ => commands::answer(
                command,
                &active.description.platform,
                self.session.is_connected(),
            ),
        };
        self.say(adapter, chat_id, text);
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

    async fn button(
        &self,
        adapter: &str,
        press: ButtonPress,
        rev: i64,
        memo: &mut Memo,
    ) -> Option<Admitted> {
        // A press is on a message the bot sent: it addresses the bot.
        let role = self.admit(
            adapter,
            &Seen {
                chat: &press.chat,
                sender: &press.sender,
                mentions: true,
                text: &press.data,
                message: false,
            },
            memo,
        )?;
        // airlock's own buttons (permission prompts) never reach the session.
        if press.data.starts_with(crate::relay::verdict::RESERVED) {
            self.relay_press(adapter, &press, role).await;
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
            origin: origin(&press.chat, &press.sender, rev),
        })
    }

    fn reaction(
        &self,
        adapter: &str,
        reaction: Reaction,
        rev: i64,
        memo: &mut Memo,
    ) -> Option<Admitted> {
        // In a group, a reaction may be on anyone's message: it does not
        // address the bot by itself.
        let direct = reaction.chat.kind == ChatKind::Direct;
        self.admit(
            adapter,
            &Seen {
                chat: &reaction.chat,
                sender: &reaction.sender,
                mentions: direct,
                text: &reaction.emoji,
                message: false,
            },
            memo,
        )?;
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
            origin: origin(&reaction.chat, &reaction.sender, rev),
        })
    }
}
