//! Percent-encoding for URLs a component builds, and decoding of the query
//! strings it receives, over the `percent-encoding` crate.
//!
//! ```
//! use airlock_guest::percent;
//!
//! assert_eq!(percent::encode_component("a b/c"), "a%20b%2Fc");
//! assert_eq!(percent::encode_path_segment(".."), "%2E%2E");
//! assert_eq!(percent::query_param("name=r%C3%A9sum%C3%A9+1.pdf&x", "name").as_deref(), Some("résumé 1.pdf"));
//! ```

pub use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

/// Every byte but RFC 3986's unreserved characters (ASCII letters, digits,
/// `-`, `.`, `_`, `~`): what a path segment or a query value may not hold
/// as is.
pub const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `text` with every byte in `set` written as `%XX` (upper-case hex).
pub fn encode(text: &str, set: &'static AsciiSet) -> String {
    percent_encoding::utf8_percent_encode(text, set).to_string()
}

/// `text` percent-encoded as one URL component: everything but the
/// unreserved characters ([`COMPONENT`]).
pub fn encode_component(text: &str) -> String {
    encode(text, COMPONENT)
}

/// Like [`encode_component`], and `.` and `..` (which a server would
/// resolve as directories) become `%2E` and `%2E%2E`.
pub fn encode_path_segment(segment: &str) -> String {
    match segment {
        "." | ".." => segment.replace('.', "%2E"),
        _ => encode_component(segment),
    }
}

/// Decodes `%XX` escapes and `+` as a space (form encoding); a `%` not
/// followed by two hex digits stays as it is, invalid UTF-8 is replaced.
pub fn decode_form(text: &str) -> String {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// The decoded value of the first `key` parameter of a query string (no
/// leading `?`); a parameter without `=` has the empty value.
pub fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode_form(k) == key).then(|| decode_form(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_what_a_component_cannot_hold() {
        assert_eq!(encode_component("{secret}"), "%7Bsecret%7D");
        assert_eq!(encode_component("$A_B-c.d~"), "%24A_B-c.d~");
        assert_eq!(encode_component("👍"), "%F0%9F%91%8D");
        assert_eq!(encode("party:1_2", NON_ALPHANUMERIC), "party%3A1%5F2");
        assert_eq!(encode_path_segment("."), "%2E");
        assert_eq!(encode_path_segment("a.b"), "a.b");
    }

    #[test]
    fn decodes_forms_and_queries() {
        assert_eq!(decode_form("a+b%20c%2"), "a b c%2");
        assert_eq!(decode_form("%zz%41"), "%zzA");
        assert_eq!(decode_form("%FF"), "\u{FFFD}");
        assert_eq!(query_param("a=1&b=2&a=3", "a").as_deref(), Some("1"));
        assert_eq!(query_param("flag&b=2", "flag").as_deref(), Some(""));
        assert_eq!(query_param("%6Eame=x", "name").as_deref(), Some("x"));
        assert_eq!(query_param("", "a"), None);
    }
}
