//! What callers record: a typed entry, before the store stamps it with its
//! time, its session, its content as the configuration allows, and its place
//! in the chain.

use serde_json::Value;

/// What kind of thing happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// An inbound event, queued for the session or dropped (with why).
    Inbound,
    /// A tool call and its result.
    Tool,
    /// A change of access, with the command that made it.
    Access,
    /// The permission relay: requests, verdicts, refusals, expiries, rules.
    Relay,
    /// A filter's verdict (drop or rewrite), without the content.
    Filter,
    /// A component loaded, refused, approved, removed, crashed, quarantined
    /// or denied a capability.
    Component,
    /// The server started or stopped.
    Server,
    /// The chain's head, recorded every so often.
    Checkpoint,
    /// Several sessions on one bot: a chat bound or unbound, a platform
    /// connection taken over, a sender told their session is away or asked
    /// to pick one.
    Hub,
}

impl Kind {
    /// Every kind, for parsing and listing.
    pub const ALL: [Kind; 9] = [
        Kind::Inbound,
        Kind::Tool,
        Kind::Access,
        Kind::Relay,
        Kind::Filter,
        Kind::Component,
        Kind::Server,
        Kind::Checkpoint,
        Kind::Hub,
    ];

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Inbound => "inbound",
            Kind::Tool => "tool",
            Kind::Access => "access",
            Kind::Relay => "relay",
            Kind::Filter => "filter",
            Kind::Component => "component",
            Kind::Server => "server",
            Kind::Checkpoint => "checkpoint",
            Kind::Hub => "hub",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// One thing to record.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// What kind.
    pub kind: Kind,
    /// The adapter it concerns.
    pub adapter: Option<String>,
    /// The chat, unqualified.
    pub chat: Option<String>,
    /// The sender's platform id.
    pub sender_id: Option<String>,
    /// The sender's handle or name.
    pub sender_handle: Option<String>,
    /// One line a person reads.
    pub summary: String,
    /// Message text, stored as `[audit] content` says (full, a keyed
    /// digest, or nothing).
    pub text: Option<String>,
    /// Structured detail.
    pub detail: Value,
}

impl Entry {
    /// An entry of `kind` with `summary` and nothing else.
    pub fn new(kind: Kind, summary: impl Into<String>) -> Self {
        Self {
            kind,
            adapter: None,
            chat: None,
            sender_id: None,
            sender_handle: None,
            summary: summary.into(),
            text: None,
            detail: Value::Object(Default::default()),
        }
    }

    /// The adapter it concerns.
    pub fn adapter(mut self, adapter: &str) -> Self {
        self.adapter = Some(adapter.to_owned());
        self
    }

    /// The chat it happened in.
    pub fn chat(mut self, chat: &str) -> Self {
        self.chat = Some(chat.to_owned());
        self
    }

    /// Who did it.
    pub fn sender(mut self, id: &str, handle: Option<&str>) -> Self {
        self.sender_id = Some(id.to_owned());
        self.sender_handle = handle.map(str::to_owned);
        self
    }

    /// The message text.
    pub fn text(mut self, text: &str) -> Self {
        self.text = Some(text.to_owned());
        self
    }

    /// Structured detail.
    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        assert_eq!(Kind::parse("message"), None);
    }
}
