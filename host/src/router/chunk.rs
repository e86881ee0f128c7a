//! Splitting long replies at a platform's limit.
//!
//! `length` cuts hard at the limit. `newline` prefers a paragraph break, then
//! a line break, then a space, as long as the cut keeps at least half the
//! limit; otherwise it cuts hard. Limits count characters.

use crate::bindings::types::ChunkMode;

/// Split `text` into pieces of at most `limit` characters.
pub fn chunks(text: &str, limit: usize, mode: ChunkMode) -> Vec<String> {
    let limit = limit.max(1);
    let mut out = Vec::new();
    let mut rest = text;
    while rest.chars().count() > limit {
        // Byte index just past `limit` characters.
        let hard = rest
            .char_indices()
            .nth(limit)
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let cut = match mode {
            ChunkMode::Length => hard,
            ChunkMode::Newline => soft_cut(&rest[..hard], limit).unwrap_or(hard),
        };
        // A blank piece (a run of tabs or other spaces cut out whole) is
        // not sent: platforms refuse an empty message.
        let piece = rest[..cut].trim_end();
        if !piece.is_empty() {
            out.push(piece.to_string());
        }
        rest = rest[cut..].trim_start_matches(['\n', ' ']);
    }
    if !rest.trim().is_empty() || out.is_empty() {
        out.push(rest.to_string());
    }
    out
}

fn soft_cut(window: &str, limit: usize) -> Option<usize> {
    let half = window
        .char_indices()
        .nth(limit / 2)
        .map(|(i, _)| i)
        .unwrap_or(0);
    for sep in ["\n\n", "\n", " "] {
        if let Some(i) = window.rfind(sep)
            && i >= half
        {
            return Some(i + sep.len());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_chunk() {
        assert_eq!(chunks("hi", 10, ChunkMode::Length), vec!["hi"]);
        assert_eq!(chunks("", 10, ChunkMode::Newline), vec![""]);
    }

    #[test]
    fn length_mode_cuts_hard_on_char_boundaries() {
        let c = chunks("ééééé", 2, ChunkMode::Length);
        assert_eq!(c, vec!["éé", "éé", "é"]);
    }

    #[test]
    fn newline_mode_prefers_paragraphs_then_lines_then_words() {
        let text = "aaaa bbbb\n\ncccc dddd\neeee";
        assert_eq!(
            chunks(text, 12, ChunkMode::Newline),
            vec!["aaaa bbbb", "cccc dddd", "eeee"]
        );
        assert_eq!(
            chunks("one two three four", 9, ChunkMode::Newline),
            vec!["one two", "three", "four"]
        );
        // No break in the back half: hard cut.
        assert_eq!(
            chunks("a bcdefghijkl", 6, ChunkMode::Newline),
            vec!["a bcde", "fghijk", "l"]
        );
    }

    #[test]
    fn no_chunk_is_blank() {
        let text = "x\t\t\t\t\t\t\ty\t\t\t\t";
        for mode in [ChunkMode::Length, ChunkMode::Newline] {
            assert_eq!(chunks(text, 4, mode), vec!["x", "y"]);
        }
    }

    #[test]
    fn every_chunk_respects_the_limit() {
        let text = "word ".repeat(1000) + &"x".repeat(3000);
        for mode in [ChunkMode::Length, ChunkMode::Newline] {
            let c = chunks(&text, 100, mode);
            assert!(c.iter().all(|c| c.chars().count() <= 100));
            assert_eq!(
                c.concat().replace(' ', "").len(),
                text.replace(' ', "").len()
            );
        }
    }
}
