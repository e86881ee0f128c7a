//! The emoji a bot may react with.
//!
//! Telegram accepts only a fixed list (`ReactionTypeEmoji` in the Bot API
//! docs) and answers anything else with `REACTION_INVALID`; checking first
//! gives the session an error that lists what would work. Emoji compare
//! without U+FE0F (variation selector 16): `❤️` and `❤` are the same.

/// The allowed emoji, without U+FE0F.
pub const ALLOWED: &[&str] = &[
    "👍",
    "👎",
    "❤",
    "🔥",
    "🥰",
    "👏",
    "😁",
    "🤔",
    "🤯",
    "😱",
    "🤬",
    "😢",
    "🎉",
    "🤩",
    "🤮",
    "💩",
    "🙏",
    "👌",
    "🕊",
    "🤡",
    "🥱",
    "🥴",
    "😍",
    "🐳",
    "❤\u{200d}🔥",
    "🌚",
    "🌭",
    "💯",
    "🤣",
    "⚡",
    "🍌",
    "🏆",
    "💔",
    "🤨",
    "😐",
    "🍓",
    "🍾",
    "💋",
    "🖕",
    "😈",
    "😴",
    "😭",
    "🤓",
    "👻",
    "👨\u{200d}💻",
    "👀",
    "🎃",
    "🙈",
    "😇",
    "😨",
    "🤝",
    "✍",
    "🤗",
    "🫡",
    "🎅",
    "🎄",
    "☃",
    "💅",
    "🤪",
    "🗿",
    "🆒",
    "💘",
    "🙉",
    "🦄",
    "😘",
    "💊",
    "🙊",
    "😎",
    "👾",
    "🤷\u{200d}♂",
    "🤷",
    "🤷\u{200d}♀",
    "😡",
];

/// The emoji as Telegram wants it, or an error naming some that work.
pub fn check(emoji: &str) -> Result<String, String> {
    let bare: String = emoji.trim().chars().filter(|&c| c != '\u{FE0F}').collect();
    if ALLOWED.contains(&bare.as_str()) {
        return Ok(bare);
    }
    Err(format!(
        "Telegram bots can react only with its fixed emoji list, and {:?} is not on it; use one of {}",
        emoji,
        ALLOWED[..20].join(" ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        for (emoji, ok) in [
            ("👍", true),
            ("❤️", true),
            ("❤", true),
            (" 🔥 ", true),
            ("❤️\u{200d}🔥", true),
            ("🤷\u{200d}♀️", true),
            ("🦀", false),
            ("", false),
            ("👍👍", false),
            ("thumbs up", false),
        ] {
            assert_eq!(check(emoji).is_ok(), ok, "{emoji:?}");
        }
        assert!(check("🦀").unwrap_err().contains("👍"));
    }
}
