//! What the router says and raises around pairing and limits: the one
//! confirmation a newly paired sender gets, the alert for guessing, the one
//! notice to a sender over their per-minute limit, and the owners' `/status`.
//!
//! Nothing here answers a stranger: a wrong code gets no reply at all, so a
//! guesser learns nothing from the bot.

use super::Router;
use super::commands;
use crate::access::Role;
use crate::access::guess::{self, Blocks};
use crate::alert::{Alert, Kind};
use crate::bindings::types::{Chat, Sender};

impl Router {
    /// Sends `text` to `chat_id` of `adapter`, in the background.
    pub(super) fn say(&self, adapter: &str, chat_id: &str, text: String) {
        let Some(active) = self.adapters.get(adapter) else {
            return;
        };
        let platform = self.platform(adapter, active);
        let message = commands::message(chat_id, text);
        let adapter = adapter.to_owned();
        tokio::spawn(async move {
            if let Err(e) = platform.send(message).await {
                tracing::warn!(adapter, "cannot send a message of airlock's own: {e}");
            }
        });
    }

    /// A sender (or a group) was just paired.
    pub(super) fn paired(
        &self,
        adapter: &str,
        chat: &Chat,
        sender: &Sender,
        role: Role,
        group: bool,
    ) {
        let who = crate::text::one_line(&sender.id, 64);
        let text = if group {
            tracing::warn!(adapter, sender = %who, chat = %crate::text::one_line(&chat.id, 64), "a group was opened with a group invite");
            "This group is now open to the Claude Code session: allowed members reach it when \
             they mention the bot."
                .to_string()
        } else {
            tracing::warn!(adapter, sender = %who, role = %role, "a sender was paired with an invite");
            match role {
                Role::Owner => "Paired as an owner: what you write here reaches the Claude Code \
                                session, and airlock's alerts come here."
                    .to_string(),
                Role::Member => {
                    "Paired: what you write here reaches the Claude Code session.".to_string()
                }
            }
        };
        self.say(adapter, &chat.id, text);
    }

    /// A stranger's wrong code; an alert when it reached a limit.
    pub(super) fn wrong_code(&self, adapter: &str, sender: &Sender, blocked: Blocks) {
        let who = crate::text::one_line(&sender.id, 64);
        tracing::info!(adapter, sender = %who, "a wrong pairing code");
        let minutes = guess::BLOCK / 60;
        if blocked.sender {
            self.alerts.raise(Alert {
                kind: Kind::PairingGuess,
                adapter: Some(adapter.to_owned()),
                text: format!(
                    "sender {who} sent {} wrong pairing codes within {} minutes; their codes are \
                     ignored for {minutes} minutes",
                    guess::PER_SENDER,
                    guess::WINDOW / 60
                ),
            });
        }
        if blocked.adapter {
            self.alerts.raise(Alert {
                kind: Kind::PairingGuess,
                adapter: Some(adapter.to_owned()),
                text: format!(
                    "{} wrong pairing codes on {adapter} within {} minutes; all pairing codes on \
                     it are ignored for {minutes} minutes",
                    guess::PER_ADAPTER,
                    guess::WINDOW / 60
                ),
            });
        }
    }

    /// An allowed sender went over their limit: told once, and the owners
    /// alerted.
    pub(super) fn rate_limited(&self, adapter: &str, chat: &Chat, sender: &Sender) {
        let limit = self.senders.limit();
        self.say(
            adapter,
            &chat.id,
            format!(
                "You are sending more than {limit} messages a minute; airlock drops the rest \
                 until the pace is back under that."
            ),
        );
        self.alerts.raise(Alert {
            kind: Kind::RateLimited,
            adapter: Some(adapter.to_owned()),
            text: format!(
                "sender {} went over {limit} messages a minute; the excess is dropped",
                crate::text::one_line(&sender.id, 64)
            ),
        });
    }

    /// `/status` for an owner: the session and the adapters, nothing secret.
    pub(super) fn owner_status(&self) -> String {
        let session = if self.session.is_connected() {
            "connected"
        } else {
            "not connected"
        };
        let adapters: Vec<&str> = self.adapters.keys().map(String::as_str).collect();
        let waiting = self
            .queue
            .backlog()
            .map_or_else(|_| "unknown".to_string(), |n| n.to_string());
        let lockdown = match self.access.lockdown() {
            Ok(Some(_)) => "locked down",
            Ok(None) => "open",
            Err(_) => "unknown",
        };
        format!(
            "airlock status (you are an owner)\nsession: {session}\nadapters: {}\nwaiting \
             events: {waiting}\naccess: {lockdown}\n{}",
            adapters.join(", "),
            self.hub_status()
        )
    }
}
