//! Scrubbing: [`scrub`] and [`Scrubber`] replace every spelling of a secret with
//! `[redacted]`, with the encoding helpers they and injection share.
//!
//! A server that reflects what it was sent may hand a secret back in any encoding, or in
//! pieces (two headers, two `Range` answers). So a scrubber matches, for each secret, the
//! value and every 12-byte piece of it ([`WINDOW`]) in each encoding a server plausibly applies:
//! as is, reversed, hex, percent-encoded (every byte, or all but the unreserved ones), JSON
//! (`\/`, and `\uXXXX` for every character), HTML entities (decimal and hex), and base64
//! (standard and URL-safe, at each of the three alignments a value can have inside a longer
//! base64 stream), and the whole value upper- and lowercased. The encodings made of hex digits
//! (hex, percent-encoding every byte, `\uXXXX`, `&#..;`) are matched ignoring ASCII case, so
//! mixed-case digits are caught; the others are matched exactly (a 12-byte piece matched
//! ignoring case would catch ordinary words, such as a variable named after the secret). Every
//! match is found (overlapping ones too) and the union of the matched spans is replaced, so no
//! piece of a secret survives next to a redacted one.
//!
//! The patterns go into two Aho-Corasick automata (exact, and case-insensitive): two passes
//! over a body, whatever the number of secrets and spellings. Building it takes a few milliseconds, so scrubbers for the same
//! set of secrets are built once and shared ([`Scrubber::for_bound`]).

use std::borrow::Cow;
use std::sync::{Arc, LazyLock, Mutex};

use aho_corasick::{AhoCorasick, MatchKind};
use sha2::{Digest, Sha256};

use super::{BoundSecret, REDACTED, SecretValue};

/// The shortest piece of a secret that is scrubbed on its own, in bytes (or characters, for
/// the encodings of characters).
pub const WINDOW: usize = 12;

/// Replaces every spelling of each secret in `bytes` with `[redacted]` (see the module
/// documentation for which spellings).
///
/// Borrows `bytes` unchanged when no secret occurs in it. For secrets that were injected into
/// requests, use a [`Scrubber`] made [`for_bound`](Scrubber::for_bound) them, which also knows
/// how each was rendered.
pub fn scrub<'a>(bytes: &'a [u8], secrets: &[&SecretValue]) -> Cow<'a, [u8]> {
    Scrubber::for_values(secrets).scrub(bytes)
}

/// Every spelling of a set of secrets, ready to scrub any number of byte strings. Clones share
/// the automata.
#[derive(Clone, Default)]
pub struct Scrubber {
    /// Exact spellings, then the hex-digit ones matched ignoring ASCII case; none when empty.
    matchers: Arc<Vec<AhoCorasick>>,
}

/// The patterns of one secret: matched exactly, and matched ignoring ASCII case.
#[derive(Default)]
struct Patterns {
    exact: Vec<Vec<u8>>,
    folded: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let patterns: usize = self.matchers.iter().map(AhoCorasick::patterns_len).sum();
        f.debug_struct("Scrubber")
            .field("patterns", &patterns)
            .finish()
    }
}

/// A built scrubber and the digest of what it matches.
type Built = ([u8; 32], Scrubber);

/// Scrubbers built so far, by a digest of what they match: egress asks for one per response.
static BUILT: LazyLock<Mutex<Vec<Built>>> = LazyLock::new(Mutex::default);
/// How many built scrubbers are kept.
const BUILT_KEPT: usize = 32;

impl Scrubber {
    /// Scrubs the spellings of raw values.
    pub fn for_values(secrets: &[&SecretValue]) -> Self {
        Scrubber::build(secrets.iter().map(|s| s.expose()), std::iter::empty())
    }

    /// Scrubs the spellings of each secret's value, and the exact bytes each was injected as
    /// ([`BoundSecret::scrub_forms`]). Built once per set of secrets and shared.
    pub fn for_bound<'a>(secrets: impl IntoIterator<Item = &'a BoundSecret>) -> Self {
        Self::for_sets(secrets, &[])
    }

    /// [`Scrubber::for_bound`], and the spellings of `held`: secrets the host uses itself and
    /// injects nowhere (a webhook's signing key).
    pub fn for_sets<'a>(
        secrets: impl IntoIterator<Item = &'a BoundSecret>,
        held: &[SecretValue],
    ) -> Self {
        let secrets: Vec<&BoundSecret> = secrets.into_iter().collect();
        let extra: Vec<SecretValue> = secrets.iter().flat_map(|s| s.scrub_forms()).collect();
        let raw = || {
            secrets
                .iter()
                .map(|s| s.value().expose())
                .chain(held.iter().map(SecretValue::expose))
        };
        let mut digest = Sha256::new();
        for part in raw()
            .chain(std::iter::once(&b""[..]))
            .chain(extra.iter().map(SecretValue::expose))
        {
            digest.update((part.len() as u64).to_le_bytes());
            digest.update(part);
        }
        let key: [u8; 32] = digest.finalize().into();
        let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, scrubber)) = built.iter().find(|(k, _)| *k == key) {
            return scrubber.clone();
        }
        let scrubber = Scrubber::build(raw(), extra.iter().map(SecretValue::expose));
        if built.len() >= BUILT_KEPT {
            built.remove(0);
        }
        built.push((key, scrubber.clone()));
        scrubber
    }

    /// A scrubber for the [`spellings`] of `raw` values and the `exact` byte strings.
    fn build<'a>(
        raw: impl Iterator<Item = &'a [u8]>,
        exact: impl Iterator<Item = &'a [u8]>,
    ) -> Self {
        let mut patterns = Patterns::default();
        for secret in raw {
            spellings(secret, &mut patterns);
        }
        patterns.exact.extend(exact.map(<[u8]>::to_vec));
        // Case-insensitive matching: one lowercase copy of each pattern is enough.
        for p in &mut patterns.folded {
            p.make_ascii_lowercase();
        }
        let mut matchers = Vec::new();
        for (mut list, fold) in [(patterns.exact, false), (patterns.folded, true)] {
            list.retain(|p| !p.is_empty());
            list.sort_unstable();
            list.dedup();
            if list.is_empty() {
                continue;
            }
            // The library's choice: a contiguous NFA for hundreds of patterns. A full DFA of a
            // token's pieces scans faster but costs megabytes resident and tens of
            // milliseconds to build, on every start.
            let matcher = AhoCorasick::builder()
                .ascii_case_insensitive(fold)
                .match_kind(MatchKind::Standard)
                .build(&list)
                .expect("patterns are short byte strings, well within the automaton's limits");
            zeroize::Zeroize::zeroize(&mut list);
            matchers.push(matcher);
        }
        Scrubber {
            matchers: Arc::new(matchers),
        }
    }

    /// Whether there is nothing to scrub.
    pub fn is_empty(&self) -> bool {
        self.matchers.is_empty()
    }

    /// Whether `bytes` holds any spelling of a secret.
    pub fn finds(&self, bytes: &[u8]) -> bool {
        self.matchers.iter().any(|m| m.is_match(bytes))
    }

    /// The longest spelling matched, in bytes: a stream scanned in pieces must keep this many
    /// bytes minus one from one piece to the next.
    pub fn longest(&self) -> usize {
        self.matchers
            .iter()
            .map(AhoCorasick::max_pattern_len)
            .max()
            .unwrap_or(0)
    }

    /// `bytes` with every span that holds a spelling replaced by `[redacted]`; borrowed when
    /// there was none.
    pub fn scrub<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        let mut found: Vec<(usize, usize)> =
            self.matchers.iter().flat_map(|m| spans(m, bytes)).collect();
        if found.is_empty() {
            return Cow::Borrowed(bytes);
        }
        // Each automaton's spans are disjoint; together they may still overlap.
        found.sort_unstable();
        let mut spans: Vec<(usize, usize)> = Vec::with_capacity(found.len());
        for (start, end) in found {
            match spans.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => spans.push((start, end)),
            }
        }
        let mut out = Vec::with_capacity(bytes.len());
        let mut from = 0;
        for (start, end) in spans {
            out.extend_from_slice(&bytes[from..start]);
            out.extend_from_slice(REDACTED);
            from = end;
        }
        out.extend_from_slice(&bytes[from..]);
        Cow::Owned(out)
    }

    /// [`scrub`](Self::scrub) for text: what was not a secret is kept as it was.
    pub fn scrub_str<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match self.scrub(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            // Spans are cut at pattern bounds, which may split a character of a non-ASCII
            // secret; the lossy conversion keeps the rest.
            Cow::Owned(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
        }
    }
}

/// The union of the spans `matcher` matches in `bytes`, in order: disjoint, so at most one per
/// [`WINDOW`] bytes however many patterns overlap there.
fn spans(matcher: &AhoCorasick, bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    // Matches come in the order they end; a later one may start before earlier ones.
    for found in matcher.find_overlapping_iter(bytes) {
        let (mut start, mut end) = (found.start(), found.end());
        while let Some(&(s, e)) = spans.last() {
            if e < start {
                break;
            }
            start = start.min(s);
            end = end.max(e);
            spans.pop();
        }
        spans.push((start, end));
    }
    spans
}

/// Pushes every pattern that spells `secret` or a [`WINDOW`]-long piece of it.
fn spellings(secret: &[u8], out: &mut Patterns) {
    if secret.is_empty() {
        return;
    }
    out.exact.push(secret.to_ascii_lowercase());
    out.exact.push(secret.to_ascii_uppercase());
    let pieces = || {
        std::iter::once(secret).chain(
            (secret.len() > WINDOW)
                .then(|| secret.windows(WINDOW))
                .into_iter()
                .flatten(),
        )
    };
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
    for piece in pieces() {
        out.exact.push(piece.to_vec());
        out.exact.push(piece.iter().rev().copied().collect());
        out.exact.push(encode_except(piece, unreserved, LOWER_HEX));
        out.exact.push(encode_except(piece, unreserved, UPPER_HEX));
        out.exact.push(json_slash(piece));
        out.folded.push(hex::encode(piece).into_bytes());
        out.folded.push(encode_except(piece, |_| false, LOWER_HEX));
    }
    if let Ok(text) = std::str::from_utf8(secret) {
        let chars: Vec<char> = text.chars().collect();
        let pieces = std::iter::once(&chars[..]).chain(
            (chars.len() > WINDOW)
                .then(|| chars.windows(WINDOW))
                .into_iter()
                .flatten(),
        );
        for piece in pieces {
            let mut json = String::new();
            let mut decimal = String::new();
            let mut hex = String::new();
            for &c in piece {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    json.push_str(&format!("\\u{unit:04x}"));
                }
                decimal.push_str(&format!("&#{};", u32::from(c)));
                hex.push_str(&format!("&#x{:x};", u32::from(c)));
            }
            out.folded
                .extend([json, decimal, hex].map(String::into_bytes));
        }
    }
    // Base64: the characters that depend on the secret alone, at each alignment; and every
    // run of them that stands for WINDOW bytes.
    let run = WINDOW / 3 * 4;
    for alphabet in [BASE64_STANDARD, BASE64_URL] {
        for offset in 0..3 {
            let stable = base64_inside(secret, offset, alphabet);
            if stable.len() >= run {
                out.exact.extend(stable.windows(run).map(<[u8]>::to_vec));
                out.exact.push(stable);
            } else if stable.len() >= 8 {
                // Shorter secrets: their whole stable part, when it is not too common a string.
                out.exact.push(stable);
            }
        }
    }
}

/// `bytes` with `/` escaped as `\/`, as JSON encoders may write it.
fn json_slash(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 4);
    for &b in bytes {
        if b == b'/' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

const BASE64_STANDARD: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64_URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64 of `bytes` with `alphabet`, without padding.
fn base64(bytes: &[u8], alphabet: &[u8; 64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=group.len() {
            out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize]);
        }
    }
    out
}

/// The base64 characters of `secret` that do not depend on its neighbours, when it sits
/// `offset` (0 to 2) bytes after a group boundary of a longer base64 stream.
fn base64_inside(secret: &[u8], offset: usize, alphabet: &[u8; 64]) -> Vec<u8> {
    let mut padded = vec![0u8; offset];
    padded.extend_from_slice(secret);
    // Character i covers bits 6i..6i+6 of the stream; keep those within the secret's bits.
    let start = (8 * offset).div_ceil(6);
    let end = 8 * padded.len() / 6;
    let encoded = base64(&padded, alphabet);
    zeroize::Zeroize::zeroize(&mut padded);
    encoded
        .get(start..end)
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

/// The spellings of a raw secret that a server might echo: as is, percent-encoded (upper- and
/// lowercase hex), and as a JSON string with `/` escaped.
pub(super) fn forms(secret: &[u8]) -> Vec<SecretValue> {
    if secret.is_empty() {
        return Vec::new();
    }
    let mut forms = vec![SecretValue::new(secret)];
    let mut push = |form: Vec<u8>| {
        if !forms.iter().any(|f| f.0 == form) {
            forms.push(SecretValue(form));
        }
    };
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
    push(encode_except(secret, unreserved, UPPER_HEX));
    push(encode_except(secret, unreserved, LOWER_HEX));
    if secret.contains(&b'/') {
        let mut json = Vec::with_capacity(secret.len() + 4);
        for &b in secret {
            if b == b'/' {
                json.push(b'\\');
            }
            json.push(b);
        }
        push(json);
    }
    forms
}

pub(super) const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";
pub(super) const LOWER_HEX: &[u8; 16] = b"0123456789abcdef";

/// Percent-encodes, with `hex` digits, every byte for which `keep` is false.
pub(super) fn encode_except(bytes: &[u8], keep: impl Fn(u8) -> bool, hex: &[u8; 16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if keep(b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', hex[usize::from(b >> 4)], hex[usize::from(b & 15)]]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::test_support::binding;

    #[test]
    fn scrub_replaces_every_form() {
        let a = SecretValue::new("123:abc/def");
        let b = SecretValue::new("zzz");
        // (input, output)
        #[rustfmt::skip]
        let cases: &[(&[u8], &[u8])] = &[
            (b"nothing here", b"nothing here"),
            (b"123:abc/def", b"[redacted]"),
            (b"x123:abc/defy123:abc/def", b"x[redacted]y[redacted]"),
            (b"token=123%3Aabc%2Fdef&x", b"token=[redacted]&x"),
            (b"token=123%3aabc%2fdef", b"token=[redacted]"),
            (br#"{"t":"123:abc\/def"}"#, br#"{"t":"[redacted]"}"#),
            (b"zzz and 123:abc/def", b"[redacted] and [redacted]"),
            (b"123:abc/de", b"123:abc/de"),
            (b"", b""),
        ];
        for &(input, expected) in cases {
            let out = scrub(input, &[&a, &b]);
            assert_eq!(&*out, expected, "{:?}", String::from_utf8_lossy(input));
        }
        assert!(matches!(scrub(b"clean", &[&a]), Cow::Borrowed(_)));
        assert!(matches!(
            scrub(b"anything", &[&SecretValue::new("")]),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn bound_scrubbing_covers_the_bytes_injected() {
        let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        // (position, secret, the secret as the request carries it, its rendering scrubbed)
        #[rustfmt::skip]
        let cases = [
            ("/bot{secret}", "abc/def+ghi=", "abc%2Fdef+ghi=", "/bot[redacted]"),
            ("/bot{secret}", "p@ss w0rd", "p@ss%20w0rd", "/bot[redacted]"),
            ("/v1/{secret}/", "tok:en/x", "tok:en%2Fx", "/v1/[redacted]/"),
            ("/k/{secret}", "\u{fc}%?#x", "%C3%BC%25%3F%23x", "/k/[redacted]"),
            ("Authorization: Bot {secret}", "p@ss w0rd", "p@ss w0rd", "Bot [redacted]"),
            ("X-Key: {secret}", "abc/def+ghi=", "abc/def+ghi=", "[redacted]"),
        ];
        for (position, value, sent, scrubbed) in cases {
            let bound = BoundSecret::new(
                binding("T", "https://a.example", position),
                SecretValue::new(value),
            )
            .unwrap();
            // Exactly what injection put into the request.
            let rendered = match bound.path_prefix() {
                Some(prefix) => prefix.expose().to_vec(),
                None => bound.header().unwrap().1.as_bytes().to_vec(),
            };
            assert!(contains(&rendered, sent.as_bytes()), "{value}");
            let scrubber = Scrubber::for_bound([&bound]);

            let echoed = [b"echo ".as_slice(), &rendered, b" done"].concat();
            let out = scrubber.scrub(&echoed);
            assert_eq!(
                String::from_utf8_lossy(&out),
                format!("echo {scrubbed} done"),
                "{value}"
            );
            // The same rendering with lowercase escapes, and the forms of the raw value.
            let mut lower = sent.as_bytes().to_vec();
            for i in 0..lower.len() {
                if i >= 1 && lower[i - 1] == b'%' || i >= 2 && lower[i - 2] == b'%' {
                    lower[i] = lower[i].to_ascii_lowercase();
                }
            }
            let lower = String::from_utf8(lower).unwrap();
            for form in [lower.as_str(), value, &value.replace('/', "\\/")] {
                let out = scrubber.scrub(form.as_bytes());
                assert_eq!(&*out, REDACTED, "{value}: {form}");
            }
            for fully in [UPPER_HEX, LOWER_HEX] {
                let encoded = encode_except(value.as_bytes(), |b| b.is_ascii_alphanumeric(), fully);
                assert!(!contains(&scrubber.scrub(&encoded), value.as_bytes()));
            }
        }
        // What scrubbing removes is derived from what injection writes: every scrub form of a
        // path-prefix secret that is not a form of the raw value is the injected one.
        let bound = BoundSecret::new(
            binding("T", "https://a.example", "/bot{secret}"),
            SecretValue::new("a/b+c"),
        )
        .unwrap();
        let raw: Vec<Vec<u8>> = forms(b"a/b+c")
            .iter()
            .map(|f| f.expose().to_vec())
            .collect();
        let extra: Vec<Vec<u8>> = bound
            .scrub_forms()
            .iter()
            .map(|f| f.expose().to_vec())
            .filter(|f| !raw.contains(f))
            .collect();
        assert_eq!(extra, [b"a%2Fb+c".to_vec(), b"a%2fb+c".to_vec()]);
        assert!(matches!(scrubber_borrows(&bound), Cow::Borrowed(_)));
    }

    fn scrubber_borrows(bound: &BoundSecret) -> Cow<'static, [u8]> {
        Scrubber::for_bound([bound]).scrub(b"nothing secret here")
    }

    /// A token shaped like a Telegram bot token (47 bytes).
    const TOKEN: &str = "7781234560:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/x";

    fn mixed_case_percent(bytes: &[u8]) -> String {
        bytes
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let h = format!("%{b:02x}");
                if i % 2 == 0 { h.to_uppercase() } else { h }
            })
            .collect()
    }

    fn std_base64(bytes: &[u8], pad: bool) -> String {
        let mut out = String::from_utf8(base64(bytes, BASE64_STANDARD)).unwrap();
        while pad && !out.len().is_multiple_of(4) {
            out.push('=');
        }
        out
    }

    /// Each way a reflecting server may encode the whole token: scrubbed to one `[redacted]`
    /// with at most `slack` characters of the surroundings' encoding changed around it.
    #[test]
    fn every_encoding_of_a_secret_is_scrubbed() {
        let t = TOKEN.as_bytes();
        let utf16 = |upper: bool| -> String {
            TOKEN
                .chars()
                .map(|c| {
                    let e = format!("\\u{:04x}", u32::from(c));
                    if upper {
                        e.to_uppercase().replace("\\U", "\\u")
                    } else {
                        e
                    }
                })
                .collect()
        };
        let url_base64 = |bytes: &[u8]| String::from_utf8(base64(bytes, BASE64_URL)).unwrap();
        // (encoding, the secret so encoded, characters of the surroundings that may remain
        // beside it: the base64 characters shared with a neighbour)
        #[rustfmt::skip]
        let cases: Vec<(&str, String, usize)> = vec![
            ("raw", TOKEN.into(), 0),
            ("uppercase", TOKEN.to_uppercase(), 0),
            ("lowercase", TOKEN.to_lowercase(), 0),
            ("reversed", TOKEN.chars().rev().collect(), 0),
            ("hex lower", hex::encode(t), 0),
            ("hex upper", hex::encode_upper(t), 0),
            ("percent, every byte, mixed case", mixed_case_percent(t), 0),
            ("percent, reserved only", String::from_utf8(encode_except(t, |b| b.is_ascii_alphanumeric(), UPPER_HEX)).unwrap(), 0),
            ("json \\/", TOKEN.replace('/', "\\/"), 0),
            ("json \\u lower", utf16(false), 0),
            ("json \\u upper", utf16(true), 0),
            ("html decimal", TOKEN.chars().map(|c| format!("&#{};", u32::from(c))).collect(), 0),
            ("html hex", TOKEN.chars().map(|c| format!("&#x{:X};", u32::from(c))).collect(), 0),
            ("base64 padded", std_base64(t, true), 4),
            ("base64 unpadded", std_base64(t, false), 4),
            ("base64 url", url_base64(t), 4),
            ("base64 in a stream, offset 1", std_base64(&[b"x", t, b"yz"].concat(), true), 8),
            ("base64 in a stream, offset 2", std_base64(&[b"xy", t, b"z"].concat(), true), 8),
            ("base64 url in a stream, offset 1", url_base64(&[b"x", t].concat()), 8),
        ];
        let scrubber = Scrubber::for_values(&[&SecretValue::new(TOKEN)]);
        for (name, encoded, slack) in cases {
            let text = format!("<<{encoded}>>");
            let out = String::from_utf8(scrubber.scrub(text.as_bytes()).into_owned()).unwrap();
            assert_eq!(out.matches("[redacted]").count(), 1, "{name}: {out}");
            let rest = out.replace("[redacted]", "");
            assert!(
                rest.starts_with("<<") && rest.ends_with(">>") && rest.len() <= 4 + slack,
                "{name}: {out}"
            );
        }
    }

    /// Pieces of 12 characters or more are scrubbed wherever they are, whole; shorter ones are
    /// not (they are too short to tell from ordinary text).
    #[test]
    fn pieces_of_a_secret_are_scrubbed_whole() {
        let (first, second) = TOKEN.split_at(23);
        // (input, output)
        let cases: Vec<(String, String)> = vec![
            (
                format!("X-A: {first}\r\nX-B: {second}"),
                "X-A: [redacted]\r\nX-B: [redacted]".into(),
            ),
            (format!("a{}b", &TOKEN[3..23]), "a[redacted]b".into()),
            (format!("a{}b", &TOKEN[3..15]), "a[redacted]b".into()),
            (
                format!("a{}b", &TOKEN[3..14]),
                format!("a{}b", &TOKEN[3..14]),
            ),
            // A piece is matched exactly: in another case it may be an ordinary word.
            (
                format!("a{}b", TOKEN[3..20].to_lowercase()),
                format!("a{}b", TOKEN[3..20].to_lowercase()),
            ),
            (
                format!(
                    "{} and {}",
                    hex::encode(first),
                    std_base64(second.as_bytes(), true)
                ),
                // The last base64 character and its padding carry bits beyond the piece.
                format!(
                    "[redacted] and [redacted]{}",
                    &std_base64(second.as_bytes(), true)[8 * second.len() / 6..]
                ),
            ),
            ("nothing here".into(), "nothing here".into()),
        ];
        let scrubber = Scrubber::for_values(&[&SecretValue::new(TOKEN)]);
        for (input, expected) in cases {
            let out = scrubber.scrub_str(&input);
            assert_eq!(out, expected, "{input}");
        }
        assert!(matches!(scrubber.scrub_str("clean text"), Cow::Borrowed(_)));
        assert!(scrubber.finds(&TOKEN.as_bytes()[10..22]));
        assert!(!scrubber.finds(&TOKEN.as_bytes()[10..21]));
        assert!(scrubber.longest() >= TOKEN.len() * 6);
        assert!(!format!("{scrubber:?}").contains("AAH"));
    }

    #[test]
    fn base64_inside_keeps_only_the_secrets_own_characters() {
        // "abcdef" at offset 0 is YWJjZGVm; at offset 1 (after one byte) its first character
        // shares bits with the byte before it, and the last one with the byte after it.
        // (offset, expected)
        let cases: [(usize, &str); 3] = [(0, "YWJjZGVm"), (1, "FiY2RlZ"), (2, "hYmNkZW")];
        for (offset, expected) in cases {
            let got = base64_inside(b"abcdef", offset, BASE64_STANDARD);
            assert_eq!(String::from_utf8(got).unwrap(), expected, "{offset}");
            let stream = std_base64(&[&b"QQ"[..offset], b"abcdef", b"zz"].concat(), false);
            assert!(stream.contains(expected), "{offset}: {stream}");
        }
    }
}
