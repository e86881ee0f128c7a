//! The check behind the `telegram` fuzz target (`fuzz/`), built natively
//! only. Not part of the adapter: it runs the update decoder and the
//! message splitter on raw bytes and panics when either breaks a promise of
//! its module docs. The unit test below replays the saved inputs, so they
//! run on stable.

use airlock_guest::settings::compile_mention_pattern;
use airlock_guest::types::{ChatKind, InboundEvent};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::inbound::{self, Context, Decoded, MAX_TEXT_CHARS};
use crate::mention::BotIdentity;
use crate::outbound::utf16_pieces;

/// `data` as the body of a `getUpdates` answer, decoded with and without
/// the bot's identity, and with other HTTP statuses; then as text to split
/// into messages.
///
/// Decoding: the cursor is the largest readable `update_id` plus one,
/// skipped updates included; every id is a number; text is cut to
/// [`MAX_TEXT_CHARS`]; a direct message addresses the bot, and without an
/// identity or pattern nothing else does; every button press is answered;
/// decoding again gives the same. Splitting: every piece fits in the
/// limit's UTF-16 units, no piece is blank unless the text is, and the
/// pieces are the text with only whitespace left out, and only where one
/// piece ends and the next begins.
pub fn check_updates(data: &[u8]) {
    let bot = BotIdentity {
        id: 123_456,
        username: "test_bot".into(),
    };
    let pattern = compile_mention_pattern("claude|airlock").expect("a valid pattern");
    let contexts = [
        Context {
            bot: Some(&bot),
            pattern: Some(&pattern),
        },
        Context {
            bot: None,
            pattern: None,
        },
    ];
    for ctx in &contexts {
        match inbound::decode_updates(200, &[], data, ctx) {
            Ok(decoded) => {
                check_decoded(data, &decoded, ctx.bot.is_some());
                let again = inbound::decode_updates(200, &[], data, ctx).expect("decodes again");
                assert_eq!(format!("{again:?}"), format!("{decoded:?}"));
            }
            Err(f) => {
                let _ = f.into_error();
            }
        }
    }
    const STATUSES: [u16; 7] = [400, 401, 404, 409, 429, 500, 502];
    let status = STATUSES[data.len() % STATUSES.len()];
    let headers = [("Retry-After".to_string(), "7".to_string())];
    if let Err(f) = inbound::decode_updates(status, &headers, data, &contexts[0]) {
        assert!(f.status >= 400, "{f:?}");
        let _ = f.into_error();
    }

    let text = String::from_utf8_lossy(data);
    let limit = 2 + usize::from(data.first().copied().unwrap_or(0) % 64);
    check_pieces(&text, &utf16_pieces(&text, limit), limit);
}

fn check_decoded(body: &[u8], decoded: &Decoded, with_identity: bool) {
    #[derive(Deserialize)]
    struct Answer {
        result: Vec<Box<RawValue>>,
    }
    #[derive(Deserialize)]
    struct IdOnly {
        update_id: i64,
    }
    if let Ok(answer) = serde_json::from_slice::<Answer>(body) {
        let want = answer
            .result
            .iter()
            .filter_map(|item| serde_json::from_str::<IdOnly>(item.get()).ok())
            .map(|u| u.update_id.saturating_add(1))
            .max();
        assert_eq!(decoded.next_offset, want, "the cursor");
    }
    let number = |s: &str| s.parse::<i64>().is_ok();
    let mut buttons = 0;
    for event in &decoded.events {
        match event {
            InboundEvent::Message(m) => {
                assert!(number(&m.chat.id) && number(&m.sender.id) && number(&m.message_id));
                assert!(m.reply_to.as_deref().is_none_or(number));
                assert!(m.text.chars().count() <= MAX_TEXT_CHARS, "text not cut");
                assert_eq!(m.ts_ms % 1000, 0);
                assert!(m.attachments.len() <= 8);
                if m.chat.kind == ChatKind::Direct {
                    assert!(
                        m.mentions_bot,
                        "a direct message that does not address the bot"
                    );
                } else if !with_identity {
                    assert!(
                        !m.mentions_bot,
                        "a mention found without identity or pattern"
                    );
                }
            }
            InboundEvent::Button(b) => {
                buttons += 1;
                assert!(number(&b.chat.id) && number(&b.sender.id));
                assert!(b.message_id.as_deref().is_some_and(number));
            }
            InboundEvent::Reaction(r) => {
                assert!(number(&r.chat.id) && number(&r.sender.id) && number(&r.message_id));
            }
        }
    }
    assert!(
        decoded.callbacks.len() >= buttons,
        "a button press not answered"
    );
}

/// Every piece within `limit` UTF-16 units; no piece blank (Telegram
/// refuses one) unless the text is, and then it is the only one; the pieces
/// are `text` in order with only whitespace left out, and only between
/// them (or before the first, after the last).
fn check_pieces(text: &str, pieces: &[String], limit: usize) {
    assert!(!pieces.is_empty());
    let blank = |s: &str| s.trim().is_empty();
    for p in pieces {
        assert!(
            p.encode_utf16().count() <= limit,
            "a piece of {} units over {limit}",
            p.encode_utf16().count()
        );
        assert!(
            !blank(p) || (pieces.len() == 1 && blank(text)),
            "a blank piece {p:?} of a text with something in it"
        );
    }
    let mut rest = text;
    for (i, p) in pieces.iter().enumerate() {
        // Where `p` starts is fixed by its first non-blank character (or,
        // for a blank text's one piece, by the end of the text), so the
        // whitespace skipped before it is exactly what is left out.
        let skipped = if blank(p) {
            (rest.len().checked_sub(p.len()))
                .unwrap_or_else(|| panic!("piece {i} {p:?} is not what follows in the text"))
        } else {
            let lead = p.len() - p.trim_start().len();
            let first = rest.len() - rest.trim_start().len();
            assert!(
                first >= lead,
                "piece {i} {p:?} is not what follows in the text"
            );
            first - lead
        };
        assert!(
            rest.is_char_boundary(skipped) && blank(&rest[..skipped]),
            "more than whitespace left out before piece {i} {p:?}"
        );
        rest = rest[skipped..]
            .strip_prefix(p.as_str())
            .unwrap_or_else(|| panic!("piece {i} {p:?} is not what follows in the text"));
    }
    assert!(blank(rest), "text after the last piece: {rest:?}");
}

#[cfg(test)]
mod tests {
    /// Every saved input of the fuzz target (its corpus and the inputs that
    /// once found something) still passes the check.
    #[test]
    fn fuzz_corpus_passes() {
        airlock_guest::saved_inputs::replay(
            env!("CARGO_MANIFEST_DIR"),
            "telegram",
            super::check_updates,
        );
    }
}
