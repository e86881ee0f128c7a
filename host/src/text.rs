//! Text from outside (guests, manifests, platforms) made safe to print.

/// One line, control characters (ANSI escapes, newlines) replaced by
/// spaces, at most `max` characters (then `…`). For logs and terminal
/// reports, where foreign text must not forge lines or move the cursor.
pub fn one_line(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_length() {
        assert_eq!(one_line("a\nb\u{1b}[2Jc", 100), "a b [2Jc");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(one_line("", 3), "");
    }
}
