//! The access decisions, as pure functions over what the store knows.

/// A sender as the gate sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderRef<'a> {
    /// Adapter (component) name.
    pub adapter: &'a str,
    /// Platform sender id.
    pub sender_id: &'a str,
}

/// What happens to an inbound message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Goes on to the filters and the session.
    Deliver,
    /// Dropped; the reason is for the log and the audit trail only.
    Drop(&'static str),
}

/// Senders allowed without an allowlist entry: the local user of the
/// bundled fakechat page (loopback-only, guarded by a per-run token).
/// Nothing a component says can add to this.
pub fn implicit_allow(sender: &SenderRef<'_>) -> bool {
    sender.adapter == "fakechat" && sender.sender_id == "web"
}

/// The inbound decision. `listed` says whether the sender is on the
/// adapter's allowlist; `is_bot` drops other bots (loops between bots).
pub fn inbound(sender: &SenderRef<'_>, listed: bool, is_bot: bool) -> Decision {
    if is_bot {
        return Decision::Drop("sender is a bot");
    }
    if listed || implicit_allow(sender) {
        Decision::Deliver
    } else {
        Decision::Drop("sender is not on the allowlist")
    }
}

/// The outbound decision: a tool may target a chat only if a sender who is
/// still allowed has been delivered from it.
pub fn outbound(chat_has_allowed_sender: bool) -> bool {
    chat_has_allowed_sender
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let s = |adapter, sender_id| SenderRef { adapter, sender_id };
        let rows = [
            (s("telegram", "42"), true, false, Decision::Deliver),
            (
                s("telegram", "42"),
                false,
                false,
                Decision::Drop("sender is not on the allowlist"),
            ),
            (
                s("telegram", "42"),
                true,
                true,
                Decision::Drop("sender is a bot"),
            ),
            (s("fakechat", "web"), false, false, Decision::Deliver),
            (
                s("fakechat", "other"),
                false,
                false,
                Decision::Drop("sender is not on the allowlist"),
            ),
            (
                s("telegram", "web"),
                false,
                false,
                Decision::Drop("sender is not on the allowlist"),
            ),
            (
                s("fakechat", "web"),
                false,
                true,
                Decision::Drop("sender is a bot"),
            ),
        ];
        for (sender, listed, bot, want) in rows {
            assert_eq!(
                inbound(&sender, listed, bot),
                want,
                "{sender:?} listed={listed} bot={bot}"
            );
        }
        assert!(outbound(true));
        assert!(!outbound(false));
    }
}
