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
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(one_line("", 3), "");
    }
}
