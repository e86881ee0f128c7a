//! Durations as people write them in `airlock.toml` and on the command line:
//! `90s`, `10m`, `1h`, or plain seconds. One parser, so that every setting
//! and flag reads the same text the same way; each caller checks its range.

/// Seconds in `text`, or why it is not a duration (the text says how to
/// write one). `what` names the setting or flag, for the message.
pub fn parse_secs(what: &str, text: &str) -> Result<i64, String> {
    let t = text.trim();
    let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("{what} {text:?} is not a duration; write it like 90s, 10m or 1h"))?;
    match unit {
        "s" => Ok(n),
        "m" => Ok(n.saturating_mul(60)),
        "h" => Ok(n.saturating_mul(3600)),
        _ => Err(format!(
            "{what} {text:?}: unknown unit {unit:?}; use s, m or h, like 10m"
        )),
    }
}

/// `secs` the way [`parse_secs`] reads it back, in the largest whole unit.
pub fn show(secs: i64) -> String {
    if secs != 0 && secs % 3600 == 0 {
        format!("{}h", secs / 3600)
    } else if secs != 0 && secs % 60 == 0 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases = [
            ("10m", Ok(600)),
            ("1h", Ok(3600)),
            ("90s", Ok(90)),
            ("600", Ok(600)),
            (" 5m ", Ok(300)),
            ("0m", Ok(0)),
            ("10d", Err("unknown unit")),
            ("m", Err("not a duration")),
            ("-5m", Err("not a duration")),
            ("1.5h", Err("unknown unit")),
            ("", Err("not a duration")),
        ];
        for (text, want) in cases {
            match (parse_secs("--for", text), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, w, "{text}"),
                (Err(e), Err(w)) => assert!(e.contains(w) && e.starts_with("--for"), "{text}: {e}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn shown_durations_read_back() {
        for secs in [0, 1, 59, 60, 90, 600, 3600, 5400, 86_400] {
            assert_eq!(parse_secs("x", &show(secs)), Ok(secs));
        }
        assert_eq!(show(1800), "30m");
        assert_eq!(show(7200), "2h");
        assert_eq!(show(90), "90s");
    }
}
