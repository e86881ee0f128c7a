//! Does a group message address the bot?
//!
//! A message in a group reaches the session only if it mentions the bot
//! (unless the operator opened the group to every message). It does when:
//!
//! | how | detected by |
//! |---|---|
//! | `@bot_username` | a `mention` entity whose text equals it, case-insensitively |
//! | a mention of the bot's account without a username link | a `text_mention` entity whose user is the bot |
//! | `/command@bot_username` | a `bot_command` entity ending in `@bot_username` |
//! | a reply to one of the bot's messages | `reply_to_message.from.id` is the bot |
//! | an operator pattern | the `mention_pattern` setting, a case-insensitive regex, matches the text |
//!
//! Entity offsets and lengths count UTF-16 code units; an entity that points
//! outside the text (a malformed or hostile update) matches nothing.

use regex_lite::Regex;

use crate::update::{Entity, Message};

/// Who the bot is, learned from `getMe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotIdentity {
    /// The bot's user id.
    pub id: i64,
    /// Its username, without `@`.
    pub username: String,
}

/// The part of `text` an entity covers, or `None` when it does not lie
/// inside the text on UTF-16 boundaries.
pub fn entity_text(text: &str, entity: &Entity) -> Option<String> {
    let (Ok(start), Ok(len)) = (
        usize::try_from(entity.offset),
        usize::try_from(entity.length),
    ) else {
        return None;
    };
    let end = start.checked_add(len)?;
    let units: Vec<u16> = text.encode_utf16().collect();
    if end > units.len() || len == 0 {
        return None;
    }
    String::from_utf16(&units[start..end]).ok()
}

/// Whether `message` addresses the bot, by the rules in the module docs.
/// Without a known identity only the pattern can match.
pub fn mentions_bot(message: &Message, bot: Option<&BotIdentity>, pattern: Option<&Regex>) -> bool {
    let (text, entities) = match (&message.text, &message.caption) {
        (Some(t), _) => (t.as_str(), &message.entities),
        (None, Some(c)) => (c.as_str(), &message.caption_entities),
        (None, None) => ("", &message.entities),
    };
    if let Some(bot) = bot {
        let handle = format!("@{}", bot.username);
        for entity in entities {
            let hit = match entity.kind.as_str() {
                "mention" => {
                    entity_text(text, entity).is_some_and(|t| t.eq_ignore_ascii_case(&handle))
                }
                "text_mention" => entity.user.as_ref().is_some_and(|u| u.id == bot.id),
                "bot_command" => entity_text(text, entity).is_some_and(|t| {
                    t.rsplit_once('@')
                        .is_some_and(|(_, name)| name.eq_ignore_ascii_case(&bot.username))
                }),
                _ => false,
            };
            if hit {
                return true;
            }
        }
        let replies_to_bot = message
            .reply_to_message
            .as_ref()
            .and_then(|r| r.from.as_ref())
            .is_some_and(|from| from.id == bot.id);
        if replies_to_bot {
            return true;
        }
    }
    pattern.is_some_and(|p| p.is_match(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::Message;

    const BOT: i64 = 123_456;

    fn bot() -> BotIdentity {
        BotIdentity {
            id: BOT,
            username: "test_bot".into(),
        }
    }

    fn message(json: serde_json::Value) -> Message {
        serde_json::from_value(json).unwrap()
    }

    fn group(text: &str, entities: serde_json::Value) -> Message {
        message(serde_json::json!({
            "message_id": 1, "date": 1, "text": text, "entities": entities,
            "chat": {"id": -100, "type": "supergroup", "title": "G"},
            "from": {"id": 222, "is_bot": false, "first_name": "Bob"},
        }))
    }

    #[test]
    fn utf16_offsets() {
        // "😆" is two UTF-16 units, so "@test_bot" starts at unit 3.
        let text = "😆 @test_bot hi";
        let e = |offset, length| Entity {
            kind: "mention".into(),
            offset,
            length,
            user: None,
        };
        assert_eq!(entity_text(text, &e(3, 9)).as_deref(), Some("@test_bot"));
        assert_eq!(entity_text(text, &e(0, 2)).as_deref(), Some("😆"));
        // Half a surrogate pair, past the end, negative, empty: nothing.
        assert_eq!(entity_text(text, &e(1, 1)), None);
        assert_eq!(entity_text(text, &e(10, 100)), None);
        assert_eq!(entity_text(text, &e(-1, 3)), None);
        assert_eq!(entity_text(text, &e(0, 0)), None);
        assert_eq!(entity_text(text, &e(i64::MAX, i64::MAX)), None);
    }

    #[test]
    fn mention_table() {
        let pattern = airlock_guest::settings::compile_mention_pattern(r"\bclaude\b").unwrap();
        let cases = [
            (
                group(
                    "@test_bot hi",
                    serde_json::json!([{"type": "mention", "offset": 0, "length": 9}]),
                ),
                true,
            ),
            (
                group(
                    "@TEST_BOT hi",
                    serde_json::json!([{"type": "mention", "offset": 0, "length": 9}]),
                ),
                true,
            ),
            (
                group(
                    "@other_bot hi",
                    serde_json::json!([{"type": "mention", "offset": 0, "length": 10}]),
                ),
                false,
            ),
            // The text says @test_bot, but no entity marks it: Telegram did not see a mention.
            (group("@test_bot hi", serde_json::json!([])), false),
            (
                group(
                    "Bot, hi",
                    serde_json::json!([{"type": "text_mention", "offset": 0, "length": 3, "user": {"id": BOT, "is_bot": true, "first_name": "Test"}}]),
                ),
                true,
            ),
            (
                group(
                    "/help@test_bot",
                    serde_json::json!([{"type": "bot_command", "offset": 0, "length": 14}]),
                ),
                true,
            ),
            (
                group(
                    "/help",
                    serde_json::json!([{"type": "bot_command", "offset": 0, "length": 5}]),
                ),
                false,
            ),
            // An entity pointing past the text.
            (
                group(
                    "hi",
                    serde_json::json!([{"type": "mention", "offset": 0, "length": 9}]),
                ),
                false,
            ),
            (group("hey Claude, look", serde_json::json!([])), true),
            (group("claudette", serde_json::json!([])), false),
        ];
        for (m, want) in cases {
            assert_eq!(
                mentions_bot(&m, Some(&bot()), Some(&pattern)),
                want,
                "{:?}",
                m.text
            );
        }
    }

    #[test]
    fn replies_to_the_bot_and_captions() {
        let reply = message(serde_json::json!({
            "message_id": 2, "date": 1, "text": "sure",
            "chat": {"id": -100, "type": "supergroup"},
            "reply_to_message": {"message_id": 1, "date": 1, "chat": {"id": -100, "type": "supergroup"},
                "from": {"id": BOT, "is_bot": true, "first_name": "Test"}, "text": "question?"},
        }));
        assert!(mentions_bot(&reply, Some(&bot()), None));
        assert!(!mentions_bot(&reply, None, None), "unknown identity");
        let caption = message(serde_json::json!({
            "message_id": 3, "date": 1, "caption": "@test_bot look",
            "caption_entities": [{"type": "mention", "offset": 0, "length": 9}],
            "chat": {"id": -100, "type": "supergroup"},
        }));
        assert!(mentions_bot(&caption, Some(&bot()), None));
    }

    #[test]
    fn bad_patterns_are_explained() {
        let e = airlock_guest::settings::compile_mention_pattern("(unclosed").unwrap_err();
        assert!(e.contains("mention_pattern"), "{e}");
    }
}
