//! The access decisions, as pure functions over what the store knows.
//!
//! | where | delivered when | otherwise |
//! |---|---|---|
//! | anywhere, during lockdown | never | dropped, remembered with the reason |
//! | a direct chat | the sender is on the adapter's allowlist | dropped, remembered for `airlock access list` |
//! | a group the operator opened | the sender is allowed (listed, or the group admits any member) and the message mentions the bot (unless the group was opened without that rule) | dropped; a stranger is remembered |
//! | a group nobody opened | never | dropped, remembered with the group so the operator can open it |
//! | anywhere, from a bot | never | dropped (loops between bots) |
//!
//! A thread follows the group it belongs to (its parent).
//!
//! When a stored event is about to reach the session, [`redeliver`] asks
//! again with what is true then: a sender removed or a group closed while
//! their events waited is not delivered, and nothing is during lockdown.

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

/// How the operator opened a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupPolicy {
    /// Any member may reach the session, not only allowlisted senders.
    pub any_sender: bool,
    /// Only messages that address the bot (mention, reply, pattern) pass.
    pub require_mention: bool,
}

/// Everything the inbound decision depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facts {
    /// airlock is locked down.
    pub locked: bool,
    /// The sender is on the adapter's allowlist (or implicitly allowed).
    pub allowed: bool,
    /// The platform marks the sender as a bot.
    pub is_bot: bool,
    /// `None`: a direct chat. `Some(None)`: a group nobody opened.
    pub group: Option<Option<GroupPolicy>>,
    /// The message addresses the bot.
    pub mentions_bot: bool,
}

/// Drop reasons, stable for logs and tests.
pub mod reason {
    /// `airlock access lockdown`.
    pub const LOCKED: &str = "airlock is locked down";
    /// Allowed when it arrived, no longer when it was to be delivered.
    pub const NO_LONGER_ALLOWED: &str = "the sender or the group is no longer allowed";
    /// A wrong, expired or used pairing code.
    pub const WRONG_CODE: &str = "a wrong pairing code";
    /// A code from a sender or on an adapter past the guess limits.
    pub const CODE_BLOCKED: &str = "pairing codes are ignored after too many wrong ones";
    /// An allowed sender past their per-minute limit.
    pub const RATE_LIMITED: &str = "the sender is over the per-minute limit";
    /// From another bot.
    pub const BOT: &str = "sender is a bot";
    /// Not on the allowlist.
    pub const NOT_ALLOWED: &str = "sender is not on the allowlist";
    /// A group the operator did not open.
    pub const GROUP_CLOSED: &str = "the group is not open";
    /// An open group, no mention.
    pub const NO_MENTION: &str = "the message does not mention the bot";
}

/// Senders allowed without an allowlist entry: the local user of the
/// bundled fakechat page (loopback-only, guarded by a per-run token), who
/// is the person at this computer and so an owner. Nothing a component
/// says can add to this.
pub fn implicit_allow(sender: &SenderRef<'_>) -> bool {
    sender.adapter == "fakechat" && sender.sender_id == "web"
}

/// The inbound decision, by the table in the module docs.
pub fn inbound(facts: &Facts) -> Decision {
    if facts.locked {
        return Decision::Drop(reason::LOCKED);
    }
    if facts.is_bot {
        return Decision::Drop(reason::BOT);
    }
    match facts.group {
        None if facts.allowed => Decision::Deliver,
        None => Decision::Drop(reason::NOT_ALLOWED),
        Some(None) => Decision::Drop(reason::GROUP_CLOSED),
        Some(Some(policy)) => {
            if !(facts.allowed || policy.any_sender) {
                Decision::Drop(reason::NOT_ALLOWED)
            } else if policy.require_mention && !facts.mentions_bot {
                Decision::Drop(reason::NO_MENTION)
            } else {
                Decision::Deliver
            }
        }
    }
}

/// Whether a drop is worth showing the operator (someone they might want to
/// let in), as opposed to ordinary traffic of an open group or another bot.
pub fn remember(decision: &Decision) -> bool {
    matches!(
        decision,
        Decision::Drop(reason::NOT_ALLOWED)
            | Decision::Drop(reason::GROUP_CLOSED)
            | Decision::Drop(reason::LOCKED)
    )
}

/// The decision again, when a stored event is about to be delivered: not
/// during lockdown; from a direct chat, only while its sender is allowed;
/// from a group, only while it is open and admits the sender. (Whether the
/// message mentioned the bot was settled when it arrived.)
pub fn redeliver(locked: bool, allowed: bool, group: Option<Option<GroupPolicy>>) -> Decision {
    if locked {
        return Decision::Drop(reason::LOCKED);
    }
    let ok = match group {
        None => allowed,
        Some(None) => false,
        Some(Some(policy)) => allowed || policy.any_sender,
    };
    if ok {
        Decision::Deliver
    } else {
        Decision::Drop(reason::NO_LONGER_ALLOWED)
    }
}

/// The outbound decision: a tool may target a chat only if it is an open
/// group, or a direct chat a sender who is still allowed was delivered from.
pub fn outbound(open_group: bool, chat_has_allowed_sender: bool) -> bool {
    open_group || chat_has_allowed_sender
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implicit() {
        let s = |adapter, sender_id| SenderRef { adapter, sender_id };
        assert!(implicit_allow(&s("fakechat", "web")));
        assert!(!implicit_allow(&s("fakechat", "other")));
        assert!(!implicit_allow(&s("telegram", "web")));
    }

    #[test]
    fn table() {
        let open = |any_sender, require_mention| {
            Some(Some(GroupPolicy {
                any_sender,
                require_mention,
            }))
        };
        let f = |allowed, is_bot, group, mentions_bot| Facts {
            locked: false,
            allowed,
            is_bot,
            group,
            mentions_bot,
        };
        use reason::*;
        let rows = [
            // Direct chats.
            (f(true, false, None, true), Decision::Deliver),
            (f(false, false, None, true), Decision::Drop(NOT_ALLOWED)),
            (f(true, true, None, true), Decision::Drop(BOT)),
            // A group nobody opened: not even an allowed sender's mention.
            (
                f(true, false, Some(None), true),
                Decision::Drop(GROUP_CLOSED),
            ),
            (
                f(false, false, Some(None), false),
                Decision::Drop(GROUP_CLOSED),
            ),
            // Opened for allowed senders, mention required.
            (f(true, false, open(false, true), true), Decision::Deliver),
            (
                f(true, false, open(false, true), false),
                Decision::Drop(NO_MENTION),
            ),
            (
                f(false, false, open(false, true), true),
                Decision::Drop(NOT_ALLOWED),
            ),
            // Opened for any member.
            (f(false, false, open(true, true), true), Decision::Deliver),
            (
                f(false, false, open(true, true), false),
                Decision::Drop(NO_MENTION),
            ),
            // Opened without the mention rule.
            (f(true, false, open(false, false), false), Decision::Deliver),
            (f(false, false, open(true, false), false), Decision::Deliver),
            // Bots never, wherever.
            (f(true, true, open(true, false), true), Decision::Drop(BOT)),
        ];
        for (facts, want) in rows {
            assert_eq!(inbound(&facts), want, "{facts:?}");
            // Lockdown drops every one of them, owners' too.
            let locked = Facts {
                locked: true,
                ..facts
            };
            assert_eq!(inbound(&locked), Decision::Drop(LOCKED), "{facts:?}");
        }
        assert!(remember(&Decision::Drop(LOCKED)));
        assert!(remember(&Decision::Drop(NOT_ALLOWED)));
        assert!(remember(&Decision::Drop(GROUP_CLOSED)));
        assert!(!remember(&Decision::Drop(NO_MENTION)));
        assert!(!remember(&Decision::Drop(BOT)));
        assert!(!remember(&Decision::Deliver));
        // Checked again at delivery.
        let gone = Decision::Drop(NO_LONGER_ALLOWED);
        let redeliveries = [
            ((false, true, None), Decision::Deliver),
            ((false, false, None), gone.clone()),
            ((true, true, None), Decision::Drop(LOCKED)),
            ((false, true, Some(None)), gone.clone()),
            ((false, true, open(false, true)), Decision::Deliver),
            ((false, false, open(false, true)), gone.clone()),
            ((false, false, open(true, true)), Decision::Deliver),
            ((true, true, open(true, false)), Decision::Drop(LOCKED)),
        ];
        for ((locked, allowed, group), want) in redeliveries {
            assert_eq!(
                redeliver(locked, allowed, group),
                want,
                "{locked} {allowed} {group:?}"
            );
        }
        assert!(outbound(true, false));
        assert!(outbound(false, true));
        assert!(!outbound(false, false));
    }
}
