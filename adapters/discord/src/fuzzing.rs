//! The check behind the `discord` fuzz target (`fuzz/`), built natively
//! only. Not part of the adapter: it drives the gateway state machine and
//! the dispatch decoder with raw frames, as `lib.rs` does but without the
//! host, and panics when either breaks a promise of its module docs. The
//! unit test below replays the saved inputs, so they run on stable.

use airlock_guest::types::{ChatKind, InboundEvent};
use regex_lite::Regex;
use serde_json::Value;

use crate::gateway::{Action, Cursor, Gateway};
use crate::inbound::{
    self, ChannelInfo, ChannelSource, Known, MAX_MENTIONS, MAX_TEXT_CHARS, attachment_id,
    split_attachment_id,
};

/// Channels looked up over REST, made up from the id.
struct Channels;

impl ChannelSource for Channels {
    fn fetch(&mut self, id: &str) -> Option<ChannelInfo> {
        let (kind, parent) = match id.bytes().last()? % 4 {
            0 => return None,
            1 => (ChatKind::Channel, None),
            2 => (ChatKind::Thread, Some("1".to_string())),
            _ => (ChatKind::Direct, None),
        };
        Some(ChannelInfo {
            kind,
            title: Some("general".into()),
            parent,
        })
    }
}

/// One gateway connection's life, a line per input: a text frame, or
/// `#close CODE REASON`, `#beat` (the heartbeat timer), `#connect` (a new
/// connection), `#cursor TEXT` (the stored cursor), `#refuse` (the resume
/// URL is not granted). Dispatches go through the decoder.
///
/// What goes out is a heartbeat with the last sequence number, or an
/// Identify or Resume with an empty token; the heartbeat is armed within
/// Hello's bounds; the sequence number never goes back within a session;
/// every cursor the gateway gives to be stored reads back as itself.
/// Decoded: text and lists are cut to their bounds, a
/// direct message addresses the bot, the bot's own messages and reactions
/// are not events, every attachment can be found again for download, and
/// the adapter's memory stays bounded.
pub fn check_gateway(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let pattern = regex_lite::RegexBuilder::new("claude")
        .case_insensitive(true)
        .build()
        .expect("a valid pattern");
    let mut gateway = Gateway::default();
    let mut known = Known::default();
    for (i, line) in text.split('\n').enumerate() {
        if let Some(c) = Cursor::parse(line) {
            let stored = serde_json::to_string(&c).expect("a cursor serializes");
            assert_eq!(
                Cursor::parse(&stored),
                Some(c),
                "a parsed cursor reads back"
            );
        }
        let before = gateway.cursor();
        let actions = match line.split_once(' ').unwrap_or((line, "")) {
            ("#close", rest) => {
                let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
                gateway.on_closed(code.parse().unwrap_or(1006), reason)
            }
            ("#beat", _) => gateway.on_heartbeat_timer(),
            ("#connect", _) => {
                gateway.connecting();
                Vec::new()
            }
            ("#cursor", stored) => gateway.learn_cursor(stored),
            ("#refuse", _) => {
                gateway.refuse_resume_url();
                Vec::new()
            }
            _ => gateway.on_text(line, 1_700_000_000_000 + 37 * i as u64),
        };
        let after = gateway.cursor();
        check_cursor(before.as_ref(), after.as_ref());
        for action in actions {
            check_action(action, &gateway, &mut known, &pattern);
        }
        assert!(known.channels.len() <= 4096 && known.attachment_urls.len() <= 4096);
    }
}

fn check_cursor(before: Option<&Cursor>, after: Option<&Cursor>) {
    if let (Some(b), Some(a)) = (before, after)
        && a.session_id == b.session_id
    {
        assert!(a.seq >= b.seq, "the sequence went back: {b:?} then {a:?}");
    }
    let Some(after) = after else {
        return;
    };
    // What the host stores, and what the next process reads: the same
    // cursor, whatever session id READY gave.
    let stored = serde_json::to_string(after).expect("a cursor serializes");
    let read = Cursor::parse(&stored);
    assert_eq!(
        read.as_ref(),
        Some(after),
        "stored {stored}, read back as {read:?}"
    );
}

fn check_action(action: Action, gateway: &Gateway, known: &mut Known, pattern: &Regex) {
    match action {
        Action::Send(frame) => {
            let v: Value = serde_json::from_str(&frame).expect("a frame is JSON");
            match v["op"].as_u64() {
                Some(1) => assert!(v["d"].is_null() || v["d"].is_u64(), "{frame}"),
                Some(2 | 6) => assert_eq!(v["d"]["token"], "", "a token in {frame}"),
                _ => panic!("sent {frame}"),
            }
        }
        Action::ArmHeartbeat(ms) => assert!((1..=600_000).contains(&ms), "heartbeat in {ms} ms"),
        Action::Reconnect { code, why } => {
            assert!(matches!(code, 1000 | 4000) && !why.is_empty());
        }
        Action::Dispatch(t, d) => {
            let bot = known.bot_id.clone();
            let decoded = inbound::decode(&t, d, known, Some(pattern), &mut Channels);
            if t == "READY" {
                assert_eq!(known.bot_id, gateway.bot_id, "READY names the bot");
            }
            assert!(decoded.events.len() <= 1);
            assert!(
                decoded.acks.is_empty() || (t == "INTERACTION_CREATE" && decoded.acks.len() == 1)
            );
            if decoded.skipped.is_some() {
                assert!(decoded.events.is_empty() && decoded.acks.is_empty());
            }
            for event in &decoded.events {
                check_event(event, bot.as_deref(), known);
            }
        }
        Action::Info(_) | Action::Warn(_) | Action::Fatal(_) => {}
    }
}

fn check_event(event: &InboundEvent, bot: Option<&str>, known: &Known) {
    match event {
        InboundEvent::Message(m) => {
            assert!(bot != Some(m.sender.id.as_str()), "the bot's own message");
            assert!(m.text.chars().count() <= MAX_TEXT_CHARS, "text not cut");
            assert!(m.attachments.len() <= MAX_MENTIONS);
            if m.chat.kind == ChatKind::Direct {
                assert!(
                    m.mentions_bot,
                    "a direct message that does not address the bot"
                );
            }
            // (Unless the memory of URLs was just emptied to stay bounded.)
            let kept = known.attachment_urls.len() + MAX_MENTIONS < 4096;
            for a in &m.attachments {
                assert!(
                    !kept || known.attachment_urls.contains_key(&a.id),
                    "attachment {} cannot be downloaded",
                    a.id
                );
                if let Some((message, attachment)) = split_attachment_id(&a.id) {
                    assert_eq!(attachment_id(message, attachment), a.id);
                }
            }
        }
        InboundEvent::Reaction(r) => {
            assert!(bot != Some(r.sender.id.as_str()), "the bot's own reaction");
        }
        InboundEvent::Button(_) => {}
    }
}

#[cfg(test)]
mod tests {
    /// Every saved input of the fuzz target (its corpus and the inputs that
    /// once found something) still passes the check.
    #[test]
    fn fuzz_corpus_passes() {
        airlock_guest::saved_inputs::replay(
            env!("CARGO_MANIFEST_DIR"),
            "discord",
            super::check_gateway,
        );
    }
}
