//! What a filter's `rewrite` may change.
//!
//! Filters judge content. Where a message goes, who sent it and which
//! message it is belong to the host: the access gate decided on them before
//! the filters ran (inbound), or the outbound gate opened that chat (outbound).
//! So a rewrite may change the text, and outbound the labels and data of the
//! buttons it was given (fewer buttons, never more); everything else must
//! come back as it went in. A rewrite that changes anything else is refused:
//! the message is not delivered or sent, and the filter and the field are
//! named, so a hostile or broken filter shows instead of being quietly tamed.

use crate::bindings::types::{InboundMessage, OutboundMessage};

/// A field a filter tried to change and may not, as named in the WIT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Protected(pub &'static str);

impl std::fmt::Display for Protected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tried to change the message's {}, which only airlock decides (a filter may rewrite text and buttons); \
             fix the filter, or turn it off with enabled = false under its [components.NAME] in airlock.toml",
            self.0
        )
    }
}

fn same<T: PartialEq>(field: &'static str, before: &T, after: &T) -> Result<(), Protected> {
    if before == after {
        Ok(())
    } else {
        Err(Protected(field))
    }
}

/// `original` with the text of `rewritten`, if nothing else changed.
pub(crate) fn inbound(
    original: &InboundMessage,
    rewritten: InboundMessage,
) -> Result<InboundMessage, Protected> {
    let InboundMessage {
        chat,
        sender,
        message_id,
        text,
        ts_ms,
        reply_to,
        mentions_bot,
        attachments,
        edited,
    } = rewritten;
    same("chat", &original.chat, &chat)?;
    same("sender", &original.sender, &sender)?;
    same("message-id", &original.message_id, &message_id)?;
    same("ts-ms", &original.ts_ms, &ts_ms)?;
    same("reply-to", &original.reply_to, &reply_to)?;
    same("mentions-bot", &original.mentions_bot, &mentions_bot)?;
    same("attachments", &original.attachments, &attachments)?;
    same("edited", &original.edited, &edited)?;
    Ok(InboundMessage {
        text,
        ..original.clone()
    })
}

/// `original` with the text and buttons of `rewritten`, if nothing else
/// changed and no button was added.
pub(crate) fn outbound(
    original: &OutboundMessage,
    rewritten: OutboundMessage,
) -> Result<OutboundMessage, Protected> {
    let OutboundMessage {
        chat_id,
        text,
        reply_to,
        format,
        buttons,
        files,
    } = rewritten;
    same("chat-id", &original.chat_id, &chat_id)?;
    same("reply-to", &original.reply_to, &reply_to)?;
    same("format", &original.format, &format)?;
    same("files", &original.files, &files)?;
    let count = |rows: &[Vec<_>]| rows.iter().map(Vec::len).sum::<usize>();
    if count(&buttons) > count(&original.buttons) {
        return Err(Protected("buttons (a filter may not add buttons)"));
    }
    Ok(OutboundMessage {
        text,
        buttons,
        ..original.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::types::{
        Attachment, AttachmentKind, Button, Chat, ChatKind, OutboundFile, Sender, TextFormat,
    };

    fn inbound_message() -> InboundMessage {
        InboundMessage {
            chat: Chat {
                id: "42".into(),
                kind: ChatKind::Direct,
                title: None,
                parent_id: None,
            },
            sender: Sender {
                id: "7".into(),
                handle: Some("ada".into()),
                display_name: Some("Ada".into()),
                is_bot: false,
            },
            message_id: "100".into(),
            text: "hello".into(),
            ts_ms: 1,
            reply_to: None,
            mentions_bot: true,
            attachments: vec![],
            edited: false,
        }
    }

    fn outbound_message() -> OutboundMessage {
        OutboundMessage {
            chat_id: "42".into(),
            text: "hello".into(),
            reply_to: Some("100".into()),
            format: TextFormat::Plain,
            buttons: vec![vec![
                Button {
                    label: "yes".into(),
                    data: "y".into(),
                },
                Button {
                    label: "no".into(),
                    data: "n".into(),
                },
            ]],
            files: vec![OutboundFile {
                name: "a.txt".into(),
                mime: "text/plain".into(),
                data: vec![],
            }],
        }
    }

    #[test]
    fn inbound_rewrites() {
        type Change = fn(&mut InboundMessage);
        let cases: &[(&str, Change, Option<&str>)] = &[
            ("text", |m| m.text = "HELLO".into(), None),
            ("chat id", |m| m.chat.id = "ops".into(), Some("chat")),
            ("chat kind", |m| m.chat.kind = ChatKind::Group, Some("chat")),
            (
                "chat title",
                |m| m.chat.title = Some("x".into()),
                Some("chat"),
            ),
            ("sender id", |m| m.sender.id = "1".into(), Some("sender")),
            (
                "sender name",
                |m| m.sender.display_name = None,
                Some("sender"),
            ),
            ("sender bot", |m| m.sender.is_bot = true, Some("sender")),
            ("id", |m| m.message_id = "1".into(), Some("message-id")),
            ("ts", |m| m.ts_ms = 2, Some("ts-ms")),
            ("reply", |m| m.reply_to = Some("1".into()), Some("reply-to")),
            ("mentions", |m| m.mentions_bot = false, Some("mentions-bot")),
            ("edited", |m| m.edited = true, Some("edited")),
            (
                "attachments",
                |m| {
                    m.attachments.push(Attachment {
                        id: "f".into(),
                        kind: AttachmentKind::Document,
                        name: None,
                        mime: None,
                        size: None,
                    })
                },
                Some("attachments"),
            ),
        ];
        let original = inbound_message();
        for (name, change, refused) in cases {
            let mut rewritten = original.clone();
            change(&mut rewritten);
            match (inbound(&original, rewritten.clone()), refused) {
                (Ok(kept), None) => assert_eq!(kept, rewritten, "{name}"),
                (Err(p), Some(field)) => assert_eq!(p.0, *field, "{name}"),
                (got, _) => panic!("{name}: {got:?}"),
            }
        }
    }

    #[test]
    fn outbound_rewrites() {
        type Change = fn(&mut OutboundMessage);
        let cases: &[(&str, Change, Option<&str>)] = &[
            ("text", |m| m.text = "HELLO".into(), None),
            ("label", |m| m.buttons[0][0].label = "YES".into(), None),
            ("data", |m| m.buttons[0][1].data = "[REDACTED]".into(), None),
            ("fewer buttons", |m| m.buttons[0].truncate(1), None),
            ("no buttons", |m| m.buttons.clear(), None),
            ("chat", |m| m.chat_id = "ops".into(), Some("chat-id")),
            ("reply", |m| m.reply_to = None, Some("reply-to")),
            ("format", |m| m.format = TextFormat::Html, Some("format")),
            ("file name", |m| m.files[0].name = "b".into(), Some("files")),
            (
                "file data",
                |m| m.files[0].data = b"x".to_vec(),
                Some("files"),
            ),
            ("no files", |m| m.files.clear(), Some("files")),
            (
                "more buttons",
                |m| m.buttons.push(m.buttons[0].clone()),
                Some("buttons (a filter may not add buttons)"),
            ),
        ];
        let original = outbound_message();
        for (name, change, refused) in cases {
            let mut rewritten = original.clone();
            change(&mut rewritten);
            match (outbound(&original, rewritten.clone()), refused) {
                (Ok(kept), None) => assert_eq!(kept, rewritten, "{name}"),
                (Err(p), Some(field)) => assert_eq!(p.0, *field, "{name}"),
                (got, _) => panic!("{name}: {got:?}"),
            }
        }
    }

    #[test]
    fn the_refusal_names_the_field_and_the_way_out() {
        let text = Protected("chat-id").to_string();
        assert!(text.contains("chat-id"), "{text}");
        assert!(text.contains("enabled = false"), "{text}");
    }
}
