//! Scrubbing: [`scrub`] and [`Scrubber`] replace every spelling of a secret with
//! `[redacted]`, with the encoding helpers they and injection share.

use std::borrow::Cow;

use super::{BoundSecret, REDACTED, SecretValue};

/// Replaces every occurrence of each secret in `bytes` with `[redacted]`: the raw value, its
/// percent-encoded forms (upper- and lowercase hex), and its JSON form with `/` escaped.
///
/// Borrows `bytes` unchanged when no secret occurs in it. For secrets that were injected into
/// requests, use a [`Scrubber`] made [`for_bound`](Scrubber::for_bound) them, which also knows
/// how each was rendered.
pub fn scrub<'a>(bytes: &'a [u8], secrets: &[&SecretValue]) -> Cow<'a, [u8]> {
    Scrubber::for_values(secrets).scrub(bytes)
}

/// Every spelling of a set of secrets, ready to scrub any number of byte strings.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    /// Longest first, so that a form is never cut short by a shorter one inside it.
    forms: Vec<SecretValue>,
}

impl Scrubber {
    /// Scrubs the forms of raw values that [`scrub`] knows.
    pub fn for_values(secrets: &[&SecretValue]) -> Self {
        Scrubber::from_forms(secrets.iter().flat_map(|s| forms(s.expose())))
    }

    /// Scrubs every [`BoundSecret::scrub_forms`] of `secrets`: the raw forms and the exact
    /// bytes each was injected as.
    pub fn for_bound<'a>(secrets: impl IntoIterator<Item = &'a BoundSecret>) -> Self {
        Scrubber::from_forms(secrets.into_iter().flat_map(BoundSecret::scrub_forms))
    }

    fn from_forms(all: impl Iterator<Item = SecretValue>) -> Self {
        let mut forms: Vec<SecretValue> = Vec::new();
        for form in all {
            if !form.is_empty() && !forms.iter().any(|f| f.0 == form.0) {
                forms.push(form);
            }
        }
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        Scrubber { forms }
    }

    /// `bytes` with every form replaced by `[redacted]`; borrowed when there was none.
    pub fn scrub<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        let mut out = Cow::Borrowed(bytes);
        for form in &self.forms {
            if let Some(replaced) = replace_all(&out, form.expose(), REDACTED) {
                out = Cow::Owned(replaced);
            }
        }
        out
    }
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

/// `haystack` with every non-overlapping `needle` replaced, or `None` if there is none.
fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Option<Vec<u8>> {
    let find = |from: usize| {
        haystack
            .get(from..)?
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|i| i + from)
    };
    let mut at = find(0)?;
    let mut out = Vec::with_capacity(haystack.len());
    let mut from = 0;
    loop {
        out.extend_from_slice(&haystack[from..at]);
        out.extend_from_slice(with);
        from = at + needle.len();
        match find(from) {
            Some(next) => at = next,
            None => break,
        }
    }
    out.extend_from_slice(&haystack[from..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::secrets::test_support::binding;

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
}
