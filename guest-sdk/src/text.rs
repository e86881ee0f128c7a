//! Text for log lines and error messages.

/// At most `max_chars` characters of `text` on one line: every control
/// character (line breaks, tabs, escapes) becomes a space, and `…` marks
/// where the text was cut.
///
/// ```
/// use airlock_guest::text::one_line;
///
/// assert_eq!(one_line("bad\ngateway", 20), "bad gateway");
/// assert_eq!(one_line("abcdef", 3), "abc…");
/// ```
pub fn one_line(text: &str, max_chars: usize) -> String {
    let mut chars = text.chars();
    let mut line: String = chars
        .by_ref()
        .take(max_chars)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if chars.next().is_some() {
        line.push('…');
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_on_characters_and_flattens_controls() {
        assert_eq!(one_line("", 5), "");
        assert_eq!(one_line("héllo", 5), "héllo");
        assert_eq!(one_line("héllo!", 5), "héllo…");
        assert_eq!(one_line("a\r\n\tb\u{1b}[2J", 100), "a   b [2J");
        assert_eq!(one_line("ab", 0), "…");
    }
}
