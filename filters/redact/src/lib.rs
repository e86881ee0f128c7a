//! `redact`: an outbound filter that replaces token-shaped secrets with
//! `[REDACTED]` before a message reaches the platform.
//!
//! It rewrites the text and the button labels and data of outbound messages;
//! it recognises Telegram and Discord bot tokens, `sk-` API keys, AWS access
//! key ids, GitHub tokens and PEM private-key blocks (the exact rules are in
//! [`scan`]). A message without secrets passes unchanged (the verdict is
//! `pass`, not a rewrite). Inbound messages always pass. No settings (any
//! key is refused).
//!
//! This is a safety net for secrets that leaked into the session's output;
//! it cannot catch secrets that do not look like tokens.

pub mod scan;

use airlock_guest::Filter;
use airlock_guest::settings::NoSettings;
use airlock_guest::types::{OutboundMessage, OutboundVerdict};
use std::borrow::Cow;

/// The filter.
pub struct Redact;

impl Filter for Redact {
    type Settings = NoSettings;

    fn configure(_: NoSettings) -> Result<Self, String> {
        Ok(Redact)
    }

    fn filter_outbound(&self, message: OutboundMessage) -> OutboundVerdict {
        match redact_message(message) {
            Some(rewritten) => OutboundVerdict::Rewrite(rewritten),
            None => OutboundVerdict::Pass,
        }
    }
}

airlock_guest::export_filter!(Redact);

/// The message with its secrets replaced, or `None` when it had none.
pub fn redact_message(mut message: OutboundMessage) -> Option<OutboundMessage> {
    let mut changed = redact_in_place(&mut message.text);
    for button in message.buttons.iter_mut().flatten() {
        changed |= redact_in_place(&mut button.label);
        changed |= redact_in_place(&mut button.data);
    }
    changed.then_some(message)
}

/// Replaces the secrets in `text`; true if there were any.
fn redact_in_place(text: &mut String) -> bool {
    match scan::redact(text) {
        Cow::Borrowed(_) => false,
        Cow::Owned(redacted) => {
            *text = redacted;
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_guest::types::{Button, TextFormat};

    fn message(text: &str) -> OutboundMessage {
        OutboundMessage {
            chat_id: "c".into(),
            text: text.into(),
            reply_to: None,
            format: TextFormat::Plain,
            buttons: Vec::new(),
            files: Vec::new(),
        }
    }

    #[test]
    fn clean_messages_pass() {
        assert!(matches!(
            Redact.filter_outbound(message("all good")),
            OutboundVerdict::Pass
        ));
    }

    #[test]
    fn secrets_are_rewritten() {
        let verdict = Redact.filter_outbound(message("key AKIAIOSFODNN7EXAMPLE"));
        match verdict {
            OutboundVerdict::Rewrite(m) => {
                assert_eq!(m.text, "key [REDACTED]");
                assert_eq!(m.chat_id, "c");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn buttons_are_redacted_too() {
        let mut m = message("pick one");
        m.buttons = vec![vec![Button {
            label: "ghp_A1b2C3d4E5f6G7h8I9j0K1l2".into(),
            data: "ok".into(),
        }]];
        let m = redact_message(m).expect("rewritten");
        assert_eq!(m.text, "pick one");
        assert_eq!(m.buttons[0][0].label, "[REDACTED]");
        assert_eq!(m.buttons[0][0].data, "ok");
    }
}
