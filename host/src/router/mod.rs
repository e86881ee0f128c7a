//! Routing between adapters and the session.
//!
//! Inbound: adapter batch → access gate → host commands → inbound filters →
//! sanitized channel event → the durable queue, with the platform cursor in
//! the same transaction ([`Router::ingest`]). Outbound: tool call → chat-id
//! resolution → outbound gate → outbound filters → chunking → adapter. Every
//! failure comes back as a [`ToolError`] the session can read; nothing here
//! panics on input.

pub mod afterwards;
pub mod alerting;
pub mod chunk;
pub mod commands;
mod files;
mod flood;
pub mod forward;
mod forward_wire;
pub mod history;
mod hub;
mod inbound;
pub mod inbox;
mod ingest;
pub mod outbound;
mod pairing;
mod per_minute;
mod record;
mod redelivery;
pub mod relay;
mod rewrite;
mod session;
pub mod time;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::access::{AccessStore, Outbound};
use crate::alert::Alerts;
use crate::bindings::types::{Description, Features};
use crate::queue::Queue;
use crate::runtime::actor::AdapterHandle;
use crate::runtime::call_error::CallError;
use crate::runtime::filter::FilterRunner;

pub use inbound::Admitted;
pub use redelivery::Redelivery;
pub use session::Session;

/// An adapter the router serves.
#[derive(Clone, Debug)]
pub struct Active {
    /// The running adapter.
    pub handle: AdapterHandle,
    /// What it said of itself.
    pub description: Description,
}

/// A filter in the chain, with its name.
#[derive(Clone)]
pub struct NamedFilter {
    /// Component name.
    pub name: String,
    /// The runner.
    pub runner: FilterRunner,
    /// It judges inbound messages.
    pub inbound: bool,
    /// It judges outbound messages.
    pub outbound: bool,
}

/// Why a tool call did not do what was asked. The text is shown to the session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    /// Arguments missing, ill-typed or out of range.
    #[error("invalid arguments: {0}")]
    Arguments(String),
    /// The chat id does not name an active adapter's chat.
    #[error(
        "unknown chat {0:?}: chat ids look like `fakechat:web`; pass the chat_id attribute of the <channel> tag unchanged"
    )]
    UnknownChat(String),
    /// Lockdown: nothing goes out.
    #[error(
        "airlock is locked down since {since}{reason}: nothing is sent or delivered until the \
         operator runs `airlock access unlock` in the terminal; tell the user in the terminal if \
         it matters"
    )]
    LockedDown {
        /// When it began (ISO 8601).
        since: String,
        /// `(reason: …)`, or nothing.
        reason: String,
    },
    /// The outbound gate refused.
    #[error(
        "chat {0} is not one airlock delivers messages from, so it cannot be written to; only chats with an allowed sender are open"
    )]
    ChatNotOpen(String),
    /// The adapter does not do this.
    #[error("{adapter} does not support {what}")]
    Unsupported {
        /// Adapter.
        adapter: String,
        /// The operation.
        what: &'static str,
    },
    /// A file named in `files` was refused.
    #[error("file {path}: {reason}")]
    File {
        /// As given.
        path: String,
        /// Why.
        reason: String,
    },
    /// A filter stopped the message.
    #[error("not sent: filter {filter} {reason}")]
    Filtered {
        /// Filter.
        filter: String,
        /// Its reason.
        reason: String,
    },
    /// The adapter failed.
    #[error("{0}")]
    Adapter(#[from] CallError),
    /// Some parts of a long reply were sent before one failed.
    #[error("sent {} part(s) (ids: {}), then: {error}", sent.len(), sent.join(", "))]
    Partial {
        /// Ids of the parts that went out.
        sent: Vec<String>,
        /// Why the next one did not.
        error: Box<ToolError>,
    },
    /// The attachment was not delivered from that chat.
    #[error(
        "attachment {attachment} was not delivered from chat {chat}; pass an id from the attachment_ids attribute of a message of that chat"
    )]
    UnknownAttachment {
        /// The chat, qualified.
        chat: String,
        /// The id asked for.
        attachment: String,
    },
    /// The host's own state failed.
    /// The chat is another session's.
    #[error(
        "chat {chat} belongs to session {session}, not to this one; each session reaches only \
         its own chats. Tell the user in the terminal if it matters: they can move the chat with \
         `airlock sessions route {chat} NAME` or by typing /session NAME in it"
    )]
    OtherSession {
        /// The chat, qualified.
        chat: String,
        /// Its session.
        session: String,
    },
    /// The chat is bound to no session while several run.
    #[error(
        "chat {chat} is bound to no session while several are running, so this one may not \
         write to it; the user can type /session {me} in it, or run `airlock sessions route \
         {chat} {me}`"
    )]
    Unbound {
        /// The chat, qualified.
        chat: String,
        /// This session's name.
        me: String,
    },
    #[error("internal error: {0}")]
    Internal(String),
    /// The process holding the adapter's connection, which runs this
    /// session's calls of it ([`forward`]), did not answer.
    #[error("{}", forward::no_answer(.adapter, .holder, .secs, .taken))]
    NoAnswer {
        /// The adapter.
        adapter: String,
        /// The session holding its connection.
        holder: String,
        /// How long this session waited (seconds).
        secs: u64,
        /// Whether that session took the call (it may have run).
        taken: bool,
    },
}

/// Routes events and tool calls.
pub struct Router {
    adapters: BTreeMap<String, Active>,
    filters: Vec<NamedFilter>,
    access: AccessStore,
    queue: Queue,
    session: Session,
    home: PathBuf,
    files: files::FilePolicy,
    inbox: Option<inbox::Inbox>,
    typing: ingest::TypingLimiter,
    flood: flood::Flood,
    alerts: Alerts,
    /// Messages a minute per allowed sender.
    senders: per_minute::PerMinute<(String, String)>,
    /// Stranger messages a minute per adapter before an alert.
    strangers: per_minute::PerMinute<String>,
    /// The permission relay.
    relay: relay::Relay,
    /// The audit trail.
    audit: crate::audit::AuditStore,
    /// Audit entries of batches being gated.
    gathered: record::Gathered,
    /// Rows written beside answers already given.
    trailing: record::Trailing,
    /// Work held back until the session has its answer.
    afterwards: afterwards::Afterwards,
    /// This session among the others of its state directory.
    hub: std::sync::Arc<crate::hub::Hub>,
    /// Adapters whose calls go to the process holding their connection.
    forwarding: std::sync::Arc<forward::Forwarding>,
}

/// What a router is built from.
pub struct Parts {
    /// Running adapters, by name.
    pub adapters: BTreeMap<String, Active>,
    /// The filter chain, in order.
    pub filters: Vec<NamedFilter>,
    /// The access store.
    pub access: AccessStore,
    /// The durable inbound queue.
    pub queue: Queue,
    /// Whether a session is connected.
    pub session: Session,
    /// The state directory (files inside it are never sent).
    pub home: PathBuf,
    /// `[files] allow` of `airlock.toml`: where attached files may come from.
    pub files_allow: Option<Vec<String>>,
    /// Where attachments are written, and how much of them is kept.
    pub inbox: Option<inbox::Inbox>,
    /// `[delivery] max_per_second`: events a second one adapter may push.
    pub max_per_second: Option<u32>,
    /// Where alerts go.
    pub alerts: Alerts,
    /// `[access] sender_per_minute`.
    pub sender_per_minute: u32,
    /// `[access] stranger_alert_per_minute`.
    pub stranger_alert_per_minute: u32,
    /// The permission relay.
    pub relay: relay::Relay,
    /// The audit trail.
    pub audit: crate::audit::AuditStore,
    /// This session among the others of its state directory.
    pub hub: std::sync::Arc<crate::hub::Hub>,
}

impl Router {
    /// A router over running adapters and filters.
    pub fn new(parts: Parts) -> Self {
        Self {
            adapters: parts.adapters,
            filters: parts.filters,
            access: parts.access,
            queue: parts.queue,
            session: parts.session,
            files: files::FilePolicy::new(parts.home.clone(), parts.files_allow.as_deref()),
            home: parts.home,
            inbox: parts.inbox,
            typing: ingest::TypingLimiter::default(),
            flood: flood::Flood::new(parts.max_per_second.unwrap_or(flood::DEFAULT_PER_SECOND)),
            alerts: parts.alerts,
            senders: per_minute::PerMinute::new(parts.sender_per_minute),
            strangers: per_minute::PerMinute::new(parts.stranger_alert_per_minute),
            relay: parts.relay,
            audit: parts.audit,
            gathered: record::Gathered::default(),
            trailing: record::Trailing::default(),
            afterwards: afterwards::Afterwards::default(),
            hub: parts.hub,
            forwarding: std::sync::Arc::default(),
        }
    }

    /// The access store.
    pub fn access(&self) -> &AccessStore {
        &self.access
    }

    /// The gate at delivery, for the session's writer.
    pub fn redelivery(&self) -> Redelivery {
        Redelivery::new(self.access.clone(), self.queue.clone(), self.audit.clone())
    }

    /// What the session's writer tells when a line went out.
    pub fn afterwards(&self) -> &afterwards::Afterwards {
        &self.afterwards
    }

    /// The durable inbound queue.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// This session's place among the sessions of its state directory.
    pub fn hub(&self) -> &crate::hub::Hub {
        &self.hub
    }

    /// Whether a session is connected.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The active adapters.
    pub fn adapters(&self) -> &BTreeMap<String, Active> {
        &self.adapters
    }

    /// Whether any active adapter has all of `features`.
    pub fn any_supports(&self, features: Features) -> bool {
        self.adapters
            .values()
            .any(|a| a.description.features.contains(features))
    }

    /// Split `adapter:chat` and find the adapter.
    fn resolve<'a>(
        &'a self,
        chat_id: &'a str,
    ) -> Result<(&'a str, &'a Active, &'a str), ToolError> {
        let (adapter, chat) = chat_id
            .split_once(':')
            .ok_or_else(|| ToolError::UnknownChat(chat_id.into()))?;
        let active = self
            .adapters
            .get(adapter)
            .ok_or_else(|| ToolError::UnknownChat(chat_id.into()))?;
        if chat.is_empty() {
            return Err(ToolError::UnknownChat(chat_id.into()));
        }
        Ok((adapter, active, chat))
    }

    /// The outbound gate for `chat_id`: nothing during lockdown, and
    /// otherwise only open chats.
    fn open_chat<'a>(
        &'a self,
        chat_id: &'a str,
    ) -> Result<(&'a str, &'a Active, &'a str), ToolError> {
        let internal = |e: crate::db::DbError| ToolError::Internal(e.to_string());
        let (adapter, active, chat) = match self.resolve(chat_id) {
            Ok(found) => found,
            // Lockdown is what a caller hears first, even about a chat
            // that does not resolve.
            Err(e) => match self.access.lockdown().map_err(internal)? {
                Some(l) => return Err(locked_down(l)),
                None => return Err(e),
            },
        };
        match self.access.outbound(adapter, chat).map_err(internal)? {
            Outbound::Locked(l) => return Err(locked_down(l)),
            Outbound::Closed => return Err(ToolError::ChatNotOpen(chat_id.into())),
            Outbound::Open => {}
        }
        self.check_route(adapter, chat)?;
        Ok((adapter, active, chat))
    }
}

/// The error a tool gets during lockdown.
fn locked_down(l: crate::access::Lockdown) -> ToolError {
    ToolError::LockedDown {
        since: time::iso8601((l.since.max(0) as u64) * 1000),
        reason: l
            .reason
            .map(|r| format!(" (reason: {})", crate::text::one_line(&r, 200)))
            .unwrap_or_default(),
    }
}
