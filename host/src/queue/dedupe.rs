//! Dedupe keys: which inbound events are "the same" event.
//!
//! | event | key | why |
//! |---|---|---|
//! | a new message | `m:<chat>:<message id>` | a platform's message id is unique within its chat |
//! | an edit | `e:<chat>:<message id>:<ts>:<text hash>` | each edit is its own event; the same edit replayed is not |
//! | a button press, a reaction | none | the same press twice is two presses; replays are prevented by the cursor, committed with the events |
//!
//! Keys are compared per adapter, and chat ids are the platform's own
//! (unqualified), so `:` inside them cannot make two keys collide across
//! fields: the message id and the rest are last.

use crate::bindings::types::InboundMessage;

/// The key of an inbound message.
pub fn message_key(m: &InboundMessage) -> String {
    if m.edited {
        format!(
            "e:{}:{}:{}:{:016x}",
            m.chat.id,
            m.message_id,
            m.ts_ms,
            fnv1a(m.text.as_bytes())
        )
    } else {
        format!("m:{}:{}", m.chat.id, m.message_id)
    }
}

/// 64-bit FNV-1a: a stable hash (unlike `std`'s), good enough to tell two
/// edits apart.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(chat: &str, id: &str, text: &str, edited: bool, ts_ms: u64) -> InboundMessage {
        InboundMessage {
            edited,
            ts_ms,
            ..crate::bindings::test_values::direct_message(chat, id, text)
        }
    }

    #[test]
    fn table() {
        let k = |chat, id, text, edited, ts| message_key(&message(chat, id, text, edited, ts));
        // Same message, whatever the text or time: one key.
        assert_eq!(
            k("111", "7", "hi", false, 1),
            k("111", "7", "changed", false, 2)
        );
        assert_eq!(k("111", "7", "hi", false, 1), "m:111:7");
        // Same id in another chat: another message.
        assert_ne!(k("111", "7", "hi", false, 1), k("112", "7", "hi", false, 1));
        // An edit is not the message; two edits differ; a replayed edit does not.
        assert_ne!(k("111", "7", "hi", false, 1), k("111", "7", "hi", true, 1));
        assert_ne!(k("111", "7", "a", true, 5), k("111", "7", "b", true, 5));
        assert_ne!(k("111", "7", "a", true, 5), k("111", "7", "a", true, 6));
        assert_eq!(k("111", "7", "a", true, 5), k("111", "7", "a", true, 5));
    }
}
