//! Finding token-shaped secrets in text: pure functions, tested natively.
//!
//! Each rule matches at a *start* position and returns where the secret
//! ends; [`redact`] walks the text once and replaces every match with
//! [`REDACTED`]. All rules match ASCII only, so cuts always fall on UTF-8
//! character boundaries.
//!
//! The rules (a "token char" is `[A-Za-z0-9_-]`, the base64url alphabet):
//!
//! | secret | shape |
//! | --- | --- |
//! | PEM private key | `-----BEGIN …PRIVATE KEY…-----` through the next `-----END …-----`, or to the end of the text when the block is cut off |
//! | GitHub token | `ghp_`, `gho_`, `ghs_`, `ghu_`, `ghr_` or `github_pat_`, then 20+ of `[A-Za-z0-9_]`; not preceded by a letter, digit or `_` |
//! | `sk-` API key | `sk-`, then 20+ token chars including a digit and a letter; not preceded by a token char |
//! | AWS access key id | `AKIA` or `ASIA`, then exactly 16 of `[0-9A-Z]`, with no letter or digit on either side |
//! | Telegram bot token | a whole run of 6–12 digits, `:`, then 30+ token chars (the run may follow letters, as in `…/bot123456:AA…`) |
//! | Discord bot token | three dot-separated runs of token chars of at least 20, 6 and 27 chars, together holding an upper-case letter, a lower-case letter and a digit; not preceded by a token char or `.` (this also catches JWTs) |
//!
//! The extra conditions (boundaries, mixed character classes) keep ordinary
//! text from matching: words like `task-management-…`, dotted identifiers
//! and domain names, times like `12:30:00`, public keys and certificates.

use std::borrow::Cow;

/// What a secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// `text` with every secret replaced by [`REDACTED`]; borrowed when nothing
/// matched.
pub fn redact(text: &str) -> Cow<'_, str> {
    let b = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        match secret_at(b, i) {
            Some(end) => {
                out.push_str(&text[copied..i]);
                out.push_str(REDACTED);
                copied = end;
                i = end;
            }
            None => i += 1,
        }
    }
    if copied == 0 {
        Cow::Borrowed(text)
    } else {
        out.push_str(&text[copied..]);
        Cow::Owned(out)
    }
}

/// The end of a secret starting at `i`, if one does.
fn secret_at(b: &[u8], i: usize) -> Option<usize> {
    let specific = match b[i] {
        b'-' => pem(b, i),
        b'g' => github(b, i),
        b's' => sk_key(b, i),
        b'A' => aws(b, i),
        b'0'..=b'9' => telegram(b, i),
        _ => None,
    };
    specific.or_else(|| if is_token(b[i]) { discord(b, i) } else { None })
}

/// `[A-Za-z0-9_-]`.
fn is_token(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// Length of the run of bytes from `i` that satisfy `f`.
fn run(b: &[u8], i: usize, f: impl Fn(u8) -> bool) -> usize {
    b.get(i..)
        .map_or(0, |rest| rest.iter().take_while(|&&c| f(c)).count())
}

/// The byte before `i` satisfies `f` (false at the start).
fn after(b: &[u8], i: usize, f: impl Fn(u8) -> bool) -> bool {
    i > 0 && f(b[i - 1])
}

/// Index of `needle` in `b` at or after `from`.
fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn pem(b: &[u8], i: usize) -> Option<usize> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    if !b[i..].starts_with(BEGIN) {
        return None;
    }
    let label_start = i + BEGIN.len();
    let label_len = run(b, label_start, |c| {
        c.is_ascii_uppercase() || c.is_ascii_digit() || c == b' '
    });
    let label = &b[label_start..label_start + label_len];
    if !b[label_start + label_len..].starts_with(b"-----")
        || find(label, 0, b"PRIVATE KEY").is_none()
    {
        return None;
    }
    let body = label_start + label_len + 5;
    let Some(end_marker) = find(b, body, b"-----END ") else {
        // A cut-off block still carries key material.
        return Some(b.len());
    };
    let close = find(b, end_marker + 9, b"-----").map_or(b.len(), |p| p + 5);
    Some(close)
}

fn github(b: &[u8], i: usize) -> Option<usize> {
    if after(b, i, |c| c.is_ascii_alphanumeric() || c == b'_') {
        return None;
    }
    let prefix = [
        &b"github_pat_"[..],
        b"ghp_",
        b"gho_",
        b"ghs_",
        b"ghu_",
        b"ghr_",
    ]
    .into_iter()
    .find(|p| b[i..].starts_with(p))?;
    let start = i + prefix.len();
    let n = run(b, start, |c| c.is_ascii_alphanumeric() || c == b'_');
    (n >= 20).then_some(start + n)
}

fn sk_key(b: &[u8], i: usize) -> Option<usize> {
    if after(b, i, is_token) || !b[i..].starts_with(b"sk-") {
        return None;
    }
    let start = i + 3;
    let n = run(b, start, is_token);
    let body = &b[start..start + n];
    let ok =
        n >= 20 && body.iter().any(u8::is_ascii_digit) && body.iter().any(u8::is_ascii_alphabetic);
    ok.then_some(start + n)
}

fn aws(b: &[u8], i: usize) -> Option<usize> {
    if after(b, i, |c| c.is_ascii_alphanumeric())
        || !(b[i..].starts_with(b"AKIA") || b[i..].starts_with(b"ASIA"))
    {
        return None;
    }
    let n = run(b, i + 4, |c| c.is_ascii_uppercase() || c.is_ascii_digit());
    let end = i + 4 + n;
    let ok = n == 16 && !b.get(end).is_some_and(|c| c.is_ascii_alphanumeric());
    ok.then_some(end)
}

fn telegram(b: &[u8], i: usize) -> Option<usize> {
    if after(b, i, |c| c.is_ascii_digit()) {
        return None;
    }
    let digits = run(b, i, |c| c.is_ascii_digit());
    if !(6..=12).contains(&digits) || b.get(i + digits) != Some(&b':') {
        return None;
    }
    let start = i + digits + 1;
    let n = run(b, start, is_token);
    (n >= 30).then_some(start + n)
}

fn discord(b: &[u8], i: usize) -> Option<usize> {
    if after(b, i, |c| is_token(c) || c == b'.') {
        return None;
    }
    let mut end = i;
    for (k, min) in [20, 6, 27].into_iter().enumerate() {
        if k > 0 {
            if b.get(end) != Some(&b'.') {
                return None;
            }
            end += 1;
        }
        let n = run(b, end, is_token);
        if n < min {
            return None;
        }
        end += n;
    }
    let token = &b[i..end];
    let mixed = token.iter().any(u8::is_ascii_uppercase)
        && token.iter().any(u8::is_ascii_lowercase)
        && token.iter().any(u8::is_ascii_digit);
    mixed.then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> String {
        redact(text).into_owned()
    }

    fn unchanged(text: &str) {
        assert!(
            matches!(redact(text), Cow::Borrowed(_)),
            "redacted but must not be: {text:?} -> {:?}",
            r(text)
        );
    }

    const TG: &str = "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0";
    const DISCORD: &str = "MTA5ODc2NTQzMjEwOTg3NjU0.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789AB";

    #[test]
    fn nothing_to_redact_borrows() {
        unchanged("");
        unchanged("hello world, nothing secret here");
        unchanged("ünïcödé text with emoji 🚀 and no tokens");
    }

    #[test]
    fn telegram() {
        assert_eq!(r(&format!("token {TG} end")), "token [REDACTED] end");
        assert_eq!(
            r(&format!("https://api.telegram.org/bot{TG}/sendMessage")),
            "https://api.telegram.org/bot[REDACTED]/sendMessage"
        );
        assert_eq!(r(TG), "[REDACTED]");
        // 6 and 12 digits are the bounds.
        assert_eq!(r("123456:abcdefghijklmnopqrstuvwxyz0123"), "[REDACTED]");
        assert_eq!(
            r("123456789012:abcdefghijklmnopqrstuvwxyz0123"),
            "[REDACTED]"
        );
    }

    #[test]
    fn telegram_near_misses() {
        unchanged("12345:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"); // 5 digits
        unchanged("1234567890123:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"); // 13 digits
        unchanged("123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAK"); // 28 chars after the colon
        unchanged("meeting at 12:30:00, room 123456:42");
        unchanged("order 987654321: shipped");
    }

    #[test]
    fn discord() {
        assert_eq!(r(&format!("Bot {DISCORD}")), "Bot [REDACTED]");
        assert_eq!(r(&format!("\"{DISCORD}\",")), "\"[REDACTED]\",");
        // A JWT has the same shape.
        let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        assert_eq!(r(&format!("auth: {jwt}")), "auth: [REDACTED]");
    }

    #[test]
    fn discord_near_misses() {
        // Domain names and dotted identifiers.
        unchanged("see averyveryverylongsubdomainname.example.com for details");
        unchanged(
            "import some_very_long_module_name_here.submodule.another_extremely_long_identifier_name",
        );
        // First segment too short.
        unchanged("MTA5ODc2NTQzMjEw.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789AB");
        // Middle segment too short.
        unchanged("MTA5ODc2NTQzMjEwOTg3NjU0.GaB.abcdefghijklmnopqrstuvwxyz0123456789AB");
        // Last segment too short.
        unchanged("MTA5ODc2NTQzMjEwOTg3NjU0.GaBcDe.abcdefghijklmnopqrstuvwxyz");
        // Only two segments.
        unchanged("MTA5ODc2NTQzMjEwOTg3NjU0.abcdefghijklmnopqrstuvwxyz0123456789AB");
    }

    #[test]
    fn sk_keys() {
        assert_eq!(
            r("OPENAI_API_KEY=sk-proj-abc123DEF456ghi789JKL012"),
            "OPENAI_API_KEY=[REDACTED]"
        );
        assert_eq!(
            r("key: sk-ant-api03-AbCdEf0123456789xyz_-QRS and more"),
            "key: [REDACTED] and more"
        );
        assert_eq!(r("sk-0123456789abcdefghij"), "[REDACTED]"); // exactly 20
    }

    #[test]
    fn sk_near_misses() {
        unchanged("sk-0123456789abcdefghi"); // 19 chars
        unchanged("our task-management-system-for-everyone-2024 is live"); // inside a word
        unchanged("desk-0123456789abcdefghijkl");
        unchanged("sk-this-is-just-a-long-hyphenated-phrase"); // no digit
        unchanged("sk-01234567890123456789012345"); // no letter
    }

    #[test]
    fn aws() {
        assert_eq!(r("id AKIAIOSFODNN7EXAMPLE ok"), "id [REDACTED] ok");
        assert_eq!(
            r("aws_access_key_id=AKIAIOSFODNN7EXAMPLE"),
            "aws_access_key_id=[REDACTED]"
        );
        assert_eq!(r("ASIAIOSFODNN7EXAMPLE"), "[REDACTED]");
    }

    #[test]
    fn aws_near_misses() {
        unchanged("AKIAIOSFODNN7EXAMPL"); // 15 after the prefix
        unchanged("AKIAIOSFODNN7EXAMPLEX"); // 17 after the prefix
        unchanged("AKIAiosfodnn7example"); // lower case
        unchanged("XAKIAIOSFODNN7EXAMPLE"); // inside a word
    }

    #[test]
    fn github() {
        for prefix in ["ghp_", "gho_", "ghs_", "ghu_", "ghr_", "github_pat_"] {
            let token = format!("{prefix}A1b2C3d4E5f6G7h8I9j0K1l2");
            assert_eq!(
                r(&format!("token={token};")),
                "token=[REDACTED];",
                "{prefix}"
            );
        }
        assert_eq!(
            r("git clone https://ghp_16C7e42F292c6912E7710c838347Ae178B4a@github.com/o/r"),
            "git clone https://[REDACTED]@github.com/o/r"
        );
    }

    #[test]
    fn github_near_misses() {
        unchanged("ghp_short123");
        unchanged("ghp_A1b2C3d4E5f6G7h8I9j"); // 19 chars
        unchanged("xghp_A1b2C3d4E5f6G7h8I9j0K1l2"); // inside a word
        unchanged("ghx_A1b2C3d4E5f6G7h8I9j0K1l2"); // unknown prefix
    }

    #[test]
    fn pem_blocks() {
        let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1234\nabcd==\n-----END RSA PRIVATE KEY-----";
        assert_eq!(
            r(&format!("here:\n{key}\nthanks")),
            "here:\n[REDACTED]\nthanks"
        );
        let key = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----";
        assert_eq!(r(key), "[REDACTED]");
        let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----";
        assert_eq!(r(&format!("a {key} b")), "a [REDACTED] b");
        // Cut off: everything from the header on goes.
        assert_eq!(
            r("start\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB"),
            "start\n[REDACTED]"
        );
    }

    #[test]
    fn pem_near_misses() {
        unchanged("-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0B\n-----END PUBLIC KEY-----");
        unchanged("-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIE\n-----END CERTIFICATE-----");
        unchanged("----- BEGIN PRIVATE KEY ----- is how the header does not look");
        unchanged("---------- a separator line ----------");
    }

    #[test]
    fn several_secrets_and_unicode() {
        let text = format!("ключ {TG}, и AKIAIOSFODNN7EXAMPLE — и ghp_A1b2C3d4E5f6G7h8I9j0K1l2 🚀");
        assert_eq!(r(&text), "ключ [REDACTED], и [REDACTED] — и [REDACTED] 🚀");
    }

    #[test]
    fn adjacent_secrets() {
        let text = format!("{TG} {DISCORD}\nAKIAIOSFODNN7EXAMPLE");
        assert_eq!(r(&text), "[REDACTED] [REDACTED]\n[REDACTED]");
    }
}
