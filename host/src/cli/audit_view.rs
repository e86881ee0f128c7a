//! What `airlock audit` prints for people: rows in aligned columns, one row
//! in full, and the record's status. Every stored text (summaries, handles,
//! chat ids, content, detail) came from outside or through a component, so
//! each goes through `text::one_line` before it reaches the terminal: a row
//! cannot move the cursor, clear the screen or hide text. Colour is added
//! only when the caller says stdout is a terminal.
//!
//! Times are local, as the reader's clock shows them (`show` adds the
//! offset from UTC); `--json` keeps the stored milliseconds.

use std::fmt::Write as _;

use crate::audit::chain::Record;
use crate::audit::store::Status;
use crate::manifest::{AuditConfig, ContentMode};

/// The widest the ADAPTER:CHAT column grows.
const PLACE_MAX: usize = 28;
/// The widest the WHO column grows.
const WHO_MAX: usize = 24;
/// Characters of a summary shown in a table.
const SUMMARY_MAX: usize = 160;
/// Width of the KIND column (`checkpoint`, the longest kind).
const KIND_WIDTH: usize = 10;
/// Characters of one line of content or detail shown by `show`.
const LINE_MAX: usize = 2000;

/// `text` in ANSI colour `code` when `on`.
fn paint(text: &str, code: &str, on: bool) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// The colour a kind is shown in.
fn kind_colour(kind: &str) -> &'static str {
    match kind {
        "inbound" => "32",
        "tool" => "36",
        "access" => "33",
        "relay" => "35",
        "filter" => "34",
        "component" => "31",
        "server" => "1",
        _ => "2",
    }
}

/// Seconds east of UTC of local time at `at_ms` (0 in unit tests, which
/// must not depend on the machine's time zone).
fn local_offset(at_ms: i64) -> i64 {
    if cfg!(test) {
        return 0;
    }
    use chrono::{Offset, TimeZone};
    chrono::Local
        .timestamp_millis_opt(at_ms)
        .single()
        .map_or(0, |t| i64::from(t.offset().fix().local_minus_utc()))
}

/// `at_ms` as `YYYY-MM-DD HH:MM:SS`, local time.
pub(super) fn time(at_ms: i64) -> String {
    let local = at_ms.max(0) + local_offset(at_ms) * 1000;
    let iso = crate::router::time::iso8601(local.max(0) as u64);
    iso[..19].replacen('T', " ", 1)
}

/// The offset of local time at `at_ms`, as `+HH:MM`.
fn offset(at_ms: i64) -> String {
    let secs = local_offset(at_ms);
    let sign = if secs < 0 { '-' } else { '+' };
    format!(
        "{sign}{:02}:{:02}",
        secs.abs() / 3600,
        secs.abs() % 3600 / 60
    )
}

/// `text` on one line, at most `max` characters (the last an ellipsis when
/// it was cut).
fn cell(text: &str, max: usize) -> String {
    let line = crate::text::one_line(text, max);
    if line.chars().count() > max {
        crate::text::one_line(text, max.saturating_sub(1))
    } else {
        line
    }
}

/// Where a row happened: `adapter:chat`, the adapter alone, or `-`.
fn place(r: &Record) -> String {
    match (&r.adapter, &r.chat) {
        (Some(a), Some(c)) => format!("{a}:{c}"),
        (Some(a), None) => a.clone(),
        (None, Some(c)) => c.clone(),
        (None, None) => "-".into(),
    }
}

/// Who it was: the sender (`handle (id)`), or else the airlock process that
/// wrote the row (`serve 1234`, `terminal`).
fn who(r: &Record) -> String {
    match (&r.sender_handle, &r.sender_id, &r.session) {
        (Some(h), Some(id), _) if h != id => format!("{h} ({id})"),
        (_, Some(id), _) => id.clone(),
        (Some(h), None, _) => h.clone(),
        (None, None, Some(s)) => s.clone(),
        (None, None, None) => "-".into(),
    }
}

/// Column widths of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Columns {
    id: usize,
    place: usize,
    who: usize,
}

impl Columns {
    /// Widths that fit `rows` (the text columns capped).
    pub(super) fn fit(rows: &[Record]) -> Self {
        let widest = |f: &dyn Fn(&Record) -> usize| rows.iter().map(f).max().unwrap_or(0);
        Self {
            id: widest(&|r| r.id.to_string().len()).max(2),
            place: widest(&|r| place(r).chars().count()).clamp(12, PLACE_MAX),
            who: widest(&|r| who(r).chars().count()).clamp(3, WHO_MAX),
        }
    }

    /// Widths for rows still to come (`tail -f`): room for ids well past
    /// `head`, and the text columns at their caps.
    pub(super) fn fixed(head: i64) -> Self {
        Self {
            id: (head.max(0) + 10_000).to_string().len(),
            place: 20,
            who: 16,
        }
    }

    /// The header line.
    pub(super) fn header(&self, colour: bool) -> String {
        let line = format!(
            "{:>id$}  {:<19}  {:<KIND_WIDTH$}  {:<place$}  {:<who$}  SUMMARY",
            "ID",
            "TIME (local)",
            "KIND",
            "ADAPTER:CHAT",
            "WHO",
            id = self.id,
            place = self.place,
            who = self.who,
        );
        paint(&line, "1", colour)
    }

    /// One row on one line.
    pub(super) fn row(&self, r: &Record, colour: bool) -> String {
        let kind = format!("{:<KIND_WIDTH$}", cell(&r.kind, KIND_WIDTH));
        format!(
            "{:>id$}  {}  {}  {:<place$}  {:<who$}  {}",
            r.id,
            time(r.at_ms),
            paint(&kind, kind_colour(&r.kind), colour),
            cell(&place(r), self.place),
            cell(&who(r), self.who),
            cell(&r.summary, SUMMARY_MAX),
            id = self.id,
            place = self.place,
            who = self.who,
        )
        .trim_end()
        .to_owned()
    }
}

/// `rows` as a table with its header, one line each.
pub(super) fn table(rows: &[Record], colour: bool) -> String {
    let columns = Columns::fit(rows);
    let mut out = columns.header(colour);
    out.push('\n');
    for r in rows {
        out.push_str(&columns.row(r, colour));
        out.push('\n');
    }
    out
}

/// Appends `label` and `value` (each line of it sanitised, continuation
/// lines indented under the first).
fn field(out: &mut String, label: &str, value: &str, colour: bool) {
    const WIDTH: usize = 15;
    let mut lines = value.split('\n');
    let first = lines.next().unwrap_or("");
    let _ = writeln!(
        out,
        "  {}{}{}",
        paint(label, "2", colour),
        " ".repeat(WIDTH.saturating_sub(label.len())),
        cell(first, LINE_MAX)
    );
    for line in lines {
        let _ = writeln!(out, "  {}{}", " ".repeat(WIDTH), cell(line, LINE_MAX));
    }
}

/// An optional field as shown: its value, or `-`.
fn or_dash<T: ToString>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map_or_else(|| "-".into(), ToString::to_string)
}

/// Every field of one row, its detail pretty-printed.
pub(super) fn show(r: &Record, colour: bool) -> String {
    let mut out = format!(
        "row {} · {} · {} {}\n",
        r.id,
        paint(&cell(&r.kind, KIND_WIDTH), kind_colour(&r.kind), colour),
        time(r.at_ms),
        offset(r.at_ms)
    );
    let detail = serde_json::from_str::<serde_json::Value>(&r.detail)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| r.detail.clone());
    let fields: [(&str, String); 15] = [
        ("id", r.id.to_string()),
        ("at_ms", r.at_ms.to_string()),
        ("kind", r.kind.clone()),
        ("adapter", or_dash(&r.adapter)),
        ("chat", or_dash(&r.chat)),
        ("sender_id", or_dash(&r.sender_id)),
        ("sender_handle", or_dash(&r.sender_handle)),
        ("session", or_dash(&r.session)),
        ("summary", r.summary.clone()),
        ("content", or_dash(&r.content)),
        ("content_digest", or_dash(&r.content_digest)),
        ("content_len", or_dash(&r.content_len)),
        ("detail", detail),
        ("prev_hash", r.prev_hash.clone()),
        ("hash", r.hash.clone()),
    ];
    for (label, value) in fields {
        field(&mut out, label, &value, colour);
    }
    out
}

/// The name `[audit] content` takes for `mode`.
pub(super) fn content_name(mode: ContentMode) -> &'static str {
    match mode {
        ContentMode::Full => "full",
        ContentMode::Digest => "digest",
        ContentMode::None => "none",
    }
}

/// Rows after the last one shipped to the exporter.
pub(super) fn export_lag(status: &Status) -> i64 {
    let head = status.head.as_ref().map_or(0, |h| h.0);
    let from = status.exported_id.max(status.first_id.map_or(0, |f| f - 1));
    (head - from).max(0)
}

/// `airlock audit status` for people.
pub(super) fn status(status: &Status, config: &AuditConfig) -> String {
    let mut out = match (status.first_id, &status.head) {
        (Some(first), Some((last, _))) => format!(
            "audit trail: {} rows (rows {first} to {last})\n",
            status.rows
        ),
        _ => "audit trail: empty\n".to_string(),
    };
    let line = |out: &mut String, label: &str, value: String| {
        let _ = writeln!(out, "  {label:<17}{value}");
    };
    if !config.enabled {
        line(
            &mut out,
            "recording",
            "off ([audit] enabled = false): nothing new is written".into(),
        );
    }
    line(
        &mut out,
        "head",
        status
            .head
            .as_ref()
            .map_or_else(|| "none".into(), |(id, hash)| format!("{hash}@{id}")),
    );
    line(
        &mut out,
        "last checkpoint",
        status.last_checkpoint.as_ref().map_or_else(
            || "none yet (one every checkpoint_every rows, hourly, and at shutdown)".into(),
            |(id, hash)| format!("{hash}@{id}"),
        ),
    );
    let what = match config.content {
        ContentMode::Full => "the sanitised text of messages is kept",
        ContentMode::Digest => "a keyed digest and the length of messages, never their text",
        ContentMode::None => "nothing of message text",
    };
    line(
        &mut out,
        "content",
        format!("{} ({what})", content_name(config.content)),
    );
    line(
        &mut out,
        "keep_days",
        format!(
            "{} (older whole segments are removed, an anchor kept)",
            config.keep_days
        ),
    );
    match &config.otlp {
        Some(otlp) => {
            line(&mut out, "otlp endpoint", cell(&otlp.endpoint, 200));
            line(
                &mut out,
                "export lag",
                format!(
                    "{} rows not yet shipped (shipped up to row {})",
                    export_lag(status),
                    status.exported_id
                ),
            );
        }
        None => line(&mut out, "otlp endpoint", "none".into()),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::OtlpConfig;

    fn row(id: i64, kind: &str, summary: &str) -> Record {
        Record {
            id,
            at_ms: 1_795_939_200_123,
            kind: kind.into(),
            adapter: Some("telegram".into()),
            chat: Some("42".into()),
            sender_id: Some("7".into()),
            sender_handle: Some("alice".into()),
            session: Some("serve 1".into()),
            summary: summary.into(),
            content: None,
            content_digest: None,
            content_len: None,
            detail: r#"{"outcome":"queued","seq":3}"#.into(),
            prev_hash: "0".repeat(64),
            hash: "a".repeat(64),
        }
    }

    #[test]
    fn times_are_utc_to_the_second() {
        assert_eq!(time(1_795_939_200_123), "2026-11-29 08:00:00");
        assert_eq!(time(0), "1970-01-01 00:00:00");
        assert_eq!(time(-5), "1970-01-01 00:00:00");
    }

    #[test]
    fn a_table_is_aligned_and_plain_without_colour() {
        let mut rows = vec![
            row(9, "inbound", "queued a message from alice for the session"),
            row(10, "tool", "reply to telegram:42: ok"),
        ];
        rows[1].sender_id = None;
        rows[1].sender_handle = None;
        let text = table(&rows, false);
        assert!(!text.contains('\x1b'), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ID  TIME (local)"), "{text}");
        // Every column starts at the same place on every line.
        for col in ["KIND", "ADAPTER:CHAT", "WHO", "SUMMARY"] {
            let at = lines[0].find(col).unwrap();
            for l in &lines[1..] {
                assert_eq!(&l[at - 2..at], "  ", "{col} in {l:?}\n{text}");
                assert_ne!(&l[at..at + 1], " ", "{col} in {l:?}\n{text}");
            }
        }
        assert!(lines[1].starts_with(" 9  2026-11-29 08:00:00  inbound"));
        assert!(lines[1].contains("telegram:42") && lines[1].contains("alice (7)"));
        assert!(lines[2].contains("serve 1"), "no sender: the writer");
    }

    #[test]
    fn colour_only_when_asked_and_alignment_kept() {
        let rows = [row(1, "relay", "x"), row(2, "checkpoint", "y")];
        let plain = table(&rows, false);
        let coloured = table(&rows, true);
        assert!(
            coloured.contains("\x1b[35mrelay     \x1b[0m"),
            "{coloured:?}"
        );
        let stripped = coloured
            .replace("\x1b[0m", "")
            .replace("\x1b[1m", "")
            .replace("\x1b[35m", "")
            .replace("\x1b[2m", "");
        assert_eq!(stripped, plain);
    }

    #[test]
    fn hostile_text_cannot_reach_the_terminal() {
        let mut r = row(1, "inbound", "hi\x1b[2J\u{202e}evil\nnext");
        r.sender_handle = Some("mal\x1b]0;title\x07lory".into());
        r.content = Some("line one\n\x1b[31mline two\u{200b}".into());
        r.detail = r#"{"reason":"\u001b[2J\u202e"}"#.into();
        for text in [table(&[r.clone()], false), show(&r, false)] {
            assert!(
                !text.contains('\x1b') && !text.contains('\u{202e}'),
                "{text:?}"
            );
            assert!(
                !text.contains('\u{7}') && !text.contains('\u{200b}'),
                "{text:?}"
            );
        }
        assert_eq!(table(&[r], false).lines().count(), 2, "one line a row");
    }

    #[test]
    fn long_cells_are_cut_to_their_column() {
        let mut r = row(1, "inbound", &"s".repeat(500));
        r.chat = Some("c".repeat(100));
        let text = table(&[r], false);
        let line = text.lines().nth(1).unwrap();
        assert!(line.contains(&format!("telegram:{}…", "c".repeat(PLACE_MAX - 10))));
        assert!(line.ends_with('…'));
        assert!(line.chars().count() < 300, "{line}");
        let fixed = Columns::fixed(999);
        assert_eq!(fixed.id, 5);
        assert_eq!(
            fixed.header(false).find("TIME"),
            fixed.row(&row(12, "tool", "x"), false).find("2026")
        );
    }

    #[test]
    fn show_names_every_field_and_pretty_prints_detail() {
        let mut r = row(12, "inbound", "queued");
        r.content_digest = Some("d1g3st".into());
        r.content_len = Some(17);
        let text = show(&r, false);
        for name in [
            "id",
            "at_ms",
            "kind",
            "adapter",
            "chat",
            "sender_id",
            "sender_handle",
            "session",
            "summary",
            "content",
            "content_digest",
            "content_len",
            "detail",
            "prev_hash",
            "hash",
        ] {
            assert!(
                text.lines().any(|l| l.trim_start().starts_with(name)),
                "{name} missing:\n{text}"
            );
        }
        assert!(text.starts_with("row 12 · inbound · 2026-11-29 08:00:00 +00:00\n"));
        assert!(text.contains("  content        -\n"), "{text}");
        assert!(text.contains("  content_len    17\n"), "{text}");
        assert!(text.contains("\"outcome\": \"queued\",\n"), "{text}");
        assert!(text.contains(&"a".repeat(64)), "the whole hash");
    }

    #[test]
    fn status_names_the_head_the_mode_and_the_lag() {
        let st = Status {
            rows: 40,
            head: Some((41, "b".repeat(64))),
            last_checkpoint: Some((30, "c".repeat(64))),
            first_id: Some(2),
            exported_id: 35,
        };
        let mut config = AuditConfig::default();
        let text = status(&st, &config);
        assert!(
            text.starts_with("audit trail: 40 rows (rows 2 to 41)\n"),
            "{text}"
        );
        assert!(text.contains(&format!("{}@41", "b".repeat(64))), "{text}");
        assert!(text.contains(&format!("{}@30", "c".repeat(64))), "{text}");
        assert!(text.contains("content          digest ("), "{text}");
        assert!(text.contains("keep_days        90 "), "{text}");
        assert!(text.contains("otlp endpoint    none\n"), "{text}");
        assert!(!text.contains("export lag"), "{text}");
        config.otlp = Some(OtlpConfig {
            endpoint: "http://127.0.0.1:4318".into(),
        });
        config.enabled = false;
        let text = status(&st, &config);
        assert!(
            text.contains("export lag       6 rows not yet shipped"),
            "{text}"
        );
        assert!(text.contains("recording        off"), "{text}");
        let empty = Status {
            rows: 0,
            head: None,
            last_checkpoint: None,
            first_id: None,
            exported_id: 0,
        };
        assert!(status(&empty, &AuditConfig::default()).starts_with("audit trail: empty\n"));
        assert_eq!(export_lag(&empty), 0);
        // Rows removed by retention before they were shipped are not lag.
        let pruned = Status {
            first_id: Some(100),
            head: Some((110, "b".repeat(64))),
            exported_id: 3,
            ..st
        };
        assert_eq!(export_lag(&pruned), 11);
    }
}
