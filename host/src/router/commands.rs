//! `/start`, `/help` and `/status` in a direct chat, and `/session NAME` and
//! `/sessions` in any chat: answered by the host for senders the gate
//! allows, never delivered to a session.
//!
//! Strangers get no answer at all (their message was dropped before this):
//! a bot that answers strangers tells them it is alive and whom it serves.

use crate::bindings::types::{OutboundMessage, TextFormat};

/// A command the host answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// What this bot is.
    Start,
    /// How to use it.
    Help,
    /// Whether the session is there.
    Status,
    /// Bind this chat to the session named (as typed; checked later).
    Session(String),
    /// List the sessions.
    Sessions,
}

impl Command {
    /// The command a message is, if it is exactly one: `/status`, or
    /// `/status@bot_name` as platforms write them in menus; `/session`
    /// takes one word after it.
    pub fn parse(text: &str) -> Option<Self> {
        let mut words = text.split_whitespace();
        let (first, arg, extra) = (words.next()?, words.next(), words.next());
        if extra.is_some() {
            return None;
        }
        let command = Self::word(first)?;
        match (command, arg) {
            (Command::Sessions, Some(name)) => Some(Command::Session(name.to_owned())),
            (c, None) => Some(c),
            (_, Some(_)) => None,
        }
    }

    /// Whether it may be typed in a group as well as in a direct chat.
    pub fn in_groups(&self) -> bool {
        matches!(self, Command::Session(_) | Command::Sessions)
    }

    fn word(text: &str) -> Option<Self> {
        let word = text.trim();
        let word = word.split_once('@').map_or(word, |(w, bot)| {
            if bot.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                w
            } else {
                ""
            }
        });
        match word.to_ascii_lowercase().as_str() {
            "/start" => Some(Command::Start),
            "/help" => Some(Command::Help),
            "/status" => Some(Command::Status),
            // `/session NAME` binds; `/session` alone lists, as `/sessions`.
            "/session" | "/sessions" => Some(Command::Sessions),
            _ => None,
        }
    }
}

/// The answer to `command` on `platform`.
pub fn answer(command: Command, platform: &str, session_connected: bool) -> String {
    match command {
        Command::Start => format!(
            "This {platform} bot is connected to a Claude Code session through airlock. \
             What you write here goes to that session; its replies come back here. \
             /help says more, /status whether the session is there."
        ),
        Command::Help => "Write a message and the Claude Code session receives it; it answers \
             here when it chooses to. Photos and files reach it too. Who may write is decided \
             on the computer running the session (airlock access), never from this chat. \
             /status tells whether the session is connected."
            .to_string(),
        Command::Status if session_connected => {
            "You are allowed to reach the session, and it is connected now.".to_string()
        }
        Command::Status => "You are allowed to reach the session, but it is not connected right \
             now; your messages wait and are delivered when it connects."
            .to_string(),
        // Answered by the hub (`router::hub`), which knows the sessions.
        Command::Session(_) | Command::Sessions => String::new(),
    }
}

/// The outbound message carrying an answer.
pub fn message(chat_id: &str, text: String) -> OutboundMessage {
    OutboundMessage {
        chat_id: chat_id.to_string(),
        text,
        reply_to: None,
        format: TextFormat::Plain,
        buttons: Vec::new(),
        files: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing() {
        let cases = [
            ("/start", Some(Command::Start)),
            ("  /help ", Some(Command::Help)),
            ("/STATUS", Some(Command::Status)),
            ("/status@test_bot", Some(Command::Status)),
            ("/status@bad name", None),
            ("/status please", None),
            ("please /status", None),
            ("/stop", None),
            ("", None),
            ("/session api", Some(Command::Session("api".into()))),
            (
                "/session@test_bot web-2",
                Some(Command::Session("web-2".into())),
            ),
            ("/session", Some(Command::Sessions)),
            ("/sessions", Some(Command::Sessions)),
            ("/sessions api", Some(Command::Session("api".into()))),
            ("/session a b", None),
            ("/help me", None),
        ];
        for (text, want) in cases {
            assert_eq!(Command::parse(text), want, "{text:?}");
        }
    }

    #[test]
    fn status_says_whether_the_session_is_there() {
        assert!(answer(Command::Status, "telegram", true).contains("connected now"));
        assert!(answer(Command::Status, "telegram", false).contains("not connected"));
        assert!(answer(Command::Start, "telegram", false).contains("telegram bot"));
    }
}
