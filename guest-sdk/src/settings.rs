//! Typed settings: the operator's `settings = { … }` table, decoded into the
//! component's own `serde` struct before `start` (or `configure`) runs.
//!
//! The host passes settings as string pairs (the WIT `settings` type), the
//! same wire format as ever. A component declares what it reads as a struct
//! marked `#[serde(deny_unknown_fields)]`, so that a mistyped key is refused
//! at start with an error that names it, instead of being ignored:
//!
//! ```
//! use airlock_guest::settings::{self, HttpUrl};
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Settings {
//!     api_base: Option<HttpUrl>,
//!     poll_timeout_s: Option<u32>,
//! }
//!
//! let given = vec![("poll_timout_s".to_string(), "30".to_string())];
//! let err = settings::decode::<Settings>(&given).err().unwrap();
//! assert_eq!(
//!     err.to_string(),
//!     "unknown setting `poll_timout_s`; the settings are `api_base`, `poll_timeout_s`"
//! );
//! ```
//!
//! Values are strings; a field may have any type that deserializes from
//! one: `String`, numbers and `bool` (parsed from the text), unit-variant
//! enums, [`HttpUrl`], [`WsUrl`]. An `Option` field is `None` when the key
//! is absent or its value is blank, so an operator can write `key = ""` to
//! mean "not set".
//!
//! Keys that start with [`RESERVED_PREFIX`] (`airlock.`) belong to the host,
//! not to the operator: `decode` skips them, so a struct that denies unknown
//! fields still starts when the host adds one. An adapter reads the ones it
//! cares about through the SDK ([`crate::Role`]), never as fields.

use core::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

use crate::types::Settings as Pairs;

/// The prefix of the setting keys the host reserves for itself; `decode`
/// skips them.
pub const RESERVED_PREFIX: &str = "airlock.";

/// The reserved key that tells an adapter instance its [`Role`](crate::Role).
pub const ROLE_KEY: &str = "airlock.role";

/// Whether `key` is reserved for the host (starts with [`RESERVED_PREFIX`]).
pub fn is_reserved(key: &str) -> bool {
    key.starts_with(RESERVED_PREFIX)
}

/// Decodes the host's settings into `T`, skipping the keys reserved for the
/// host. The error names the setting at fault.
pub fn decode<T: DeserializeOwned>(settings: &Pairs) -> Result<T, SettingsError> {
    T::deserialize(Table(settings))
}

/// A component that reads no settings: every key is refused.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

/// Why the settings were refused, naming the key; shown to the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError(String);

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SettingsError {}

impl de::Error for SettingsError {
    fn custom<M: fmt::Display>(message: M) -> Self {
        SettingsError(message.to_string())
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let known = if expected.is_empty() {
            "this component reads no settings".to_string()
        } else {
            let names: Vec<String> = expected.iter().map(|k| format!("`{k}`")).collect();
            format!("the settings are {}", names.join(", "))
        };
        SettingsError(format!("unknown setting `{field}`; {known}"))
    }

    fn missing_field(field: &'static str) -> Self {
        SettingsError(format!("setting `{field}` is required"))
    }

    fn duplicate_field(field: &'static str) -> Self {
        SettingsError(format!("setting `{field}` is given twice"))
    }
}

/// The whole table: a map from key to value.
struct Table<'a>(&'a Pairs);

impl<'de> de::Deserializer<'de> for Table<'_> {
    type Error = SettingsError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SettingsError> {
        visitor.visit_map(Entries {
            pairs: self.0.iter(),
            key: None,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// Walks the pairs, remembering the key whose value comes next.
struct Entries<'a> {
    pairs: core::slice::Iter<'a, (String, String)>,
    key: Option<&'a (String, String)>,
}

impl<'de> de::MapAccess<'de> for Entries<'_> {
    type Error = SettingsError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, SettingsError> {
        let Some(pair) = self.pairs.find(|(key, _)| !is_reserved(key)) else {
            return Ok(None);
        };
        self.key = Some(pair);
        seed.deserialize(pair.0.as_str().into_deserializer())
            .map(Some)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, SettingsError> {
        let (key, value) = self
            .key
            .take()
            .ok_or_else(|| SettingsError("a value was asked for before its key".into()))?;
        seed.deserialize(Value(value))
            .map_err(|e| SettingsError(format!("setting `{key}`: {e}")))
    }
}

/// One value: text, parsed on request into what the field's type asks for.
struct Value<'a>(&'a str);

impl Value<'_> {
    fn parse<T: core::str::FromStr>(&self, what: &str) -> Result<T, SettingsError> {
        self.0
            .trim()
            .parse()
            .map_err(|_| SettingsError(format!("expected {what}, not {:?}", self.0)))
    }
}

macro_rules! parse_number {
    ($($method:ident $visit:ident $ty:ty,)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SettingsError> {
            visitor.$visit(self.parse::<$ty>(concat!("a number (", stringify!($ty), ")"))?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Value<'_> {
    type Error = SettingsError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SettingsError> {
        visitor.visit_str(self.0)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SettingsError> {
        visitor.visit_bool(self.parse("true or false")?)
    }

    parse_number! {
        deserialize_i8 visit_i8 i8,
        deserialize_i16 visit_i16 i16,
        deserialize_i32 visit_i32 i32,
        deserialize_i64 visit_i64 i64,
        deserialize_i128 visit_i128 i128,
        deserialize_u8 visit_u8 u8,
        deserialize_u16 visit_u16 u16,
        deserialize_u32 visit_u32 u32,
        deserialize_u64 visit_u64 u64,
        deserialize_u128 visit_u128 u128,
        deserialize_f32 visit_f32 f32,
        deserialize_f64 visit_f64 f64,
    }

    /// A blank value is the same as no value.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SettingsError> {
        if self.0.trim().is_empty() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, SettingsError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, SettingsError> {
        visitor.visit_enum(self.0.trim().into_deserializer())
    }

    serde::forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct
        map struct identifier ignored_any
    }
}

/// An absolute `http://` or `https://` URL with a host, checked by
/// [`Uri`](::http::Uri); kept as written (surrounding whitespace trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl(String);

/// An absolute `ws://` or `wss://` URL with a host, checked like
/// [`HttpUrl`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl(String);

macro_rules! url_type {
    ($ty:ident, $schemes:expr, $kinds:expr) => {
        impl $ty {
            /// The URL as written.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl core::str::FromStr for $ty {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                absolute_url(text, $schemes, $kinds).map($ty)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(de::Error::custom)
            }
        }
    };
}

url_type!(HttpUrl, &["http", "https"], "an http:// or https://");
url_type!(WsUrl, &["ws", "wss"], "a ws:// or wss://");

/// Compiles an operator's `mention_pattern`: a regular expression (the
/// `regex-lite` syntax) matched case-insensitively, its compiled size
/// bounded; the error says what is wrong.
pub fn compile_mention_pattern(pattern: &str) -> Result<regex_lite::Regex, String> {
    regex_lite::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("setting `mention_pattern` is not a valid regular expression: {e}"))
}

/// The `mention_pattern` setting, compiled; a bad one stops the adapter
/// (`AdapterError::Fatal`) with what is wrong.
pub fn mention_pattern(
    setting: Option<&str>,
) -> Result<Option<regex_lite::Regex>, crate::types::AdapterError> {
    setting
        .map(|p| compile_mention_pattern(p).map_err(crate::types::AdapterError::Fatal))
        .transpose()
}

/// `text`, trimmed, if it is an absolute URL with one of `schemes` and a
/// host; else why not, using `kinds` ("an http:// or https://").
fn absolute_url(text: &str, schemes: &[&str], kinds: &str) -> Result<String, String> {
    let url = text.trim();
    let refuse = || format!("must be {kinds} URL, not {text:?}");
    let uri: ::http::Uri = url.parse().map_err(|_| refuse())?;
    let scheme_ok = uri
        .scheme_str()
        .is_some_and(|s| schemes.iter().any(|k| s.eq_ignore_ascii_case(k)));
    let host_ok = uri.host().is_some_and(|h| !h.is_empty());
    if !scheme_ok || !host_ok {
        return Err(refuse());
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Example {
        name: String,
        count: Option<u32>,
        on: Option<bool>,
        url: Option<HttpUrl>,
        mode: Option<Mode>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Fast,
        Slow,
    }

    fn pairs(list: &[(&str, &str)]) -> Pairs {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn typed_values_are_parsed_from_text() {
        let got: Example = decode(&pairs(&[
            ("name", "x"),
            ("count", " 30 "),
            ("on", "true"),
            ("url", "https://example.com/"),
            ("mode", "slow"),
        ]))
        .unwrap();
        assert_eq!(
            got,
            Example {
                name: "x".into(),
                count: Some(30),
                on: Some(true),
                url: Some(HttpUrl("https://example.com/".into())),
                mode: Some(Mode::Slow),
            }
        );
        let blank: Example = decode(&pairs(&[("name", "x"), ("count", ""), ("url", " ")])).unwrap();
        assert_eq!((blank.count, blank.url, blank.mode), (None, None, None));
        let _ = Mode::Fast;
    }

    #[test]
    fn errors_name_the_setting() {
        let err = |list: &[(&str, &str)]| decode::<Example>(&pairs(list)).unwrap_err().to_string();
        assert_eq!(
            err(&[("name", "x"), ("colour", "red")]),
            "unknown setting `colour`; the settings are `name`, `count`, `on`, `url`, `mode`"
        );
        assert_eq!(err(&[]), "setting `name` is required");
        assert_eq!(
            err(&[("name", "x"), ("count", "many")]),
            "setting `count`: expected a number (u32), not \"many\""
        );
        assert_eq!(
            err(&[("name", "x"), ("url", "ftp://example.com")]),
            "setting `url`: must be an http:// or https:// URL, not \"ftp://example.com\""
        );
        assert!(
            err(&[("name", "x"), ("mode", "warp")])
                .starts_with("setting `mode`: unknown variant `warp`"),
        );
        assert_eq!(
            decode::<NoSettings>(&pairs(&[("a", "1")]))
                .unwrap_err()
                .to_string(),
            "unknown setting `a`; this component reads no settings"
        );
        assert_eq!(decode::<NoSettings>(&Vec::new()), Ok(NoSettings {}));
    }

    #[test]
    fn reserved_keys_are_skipped_even_where_unknown_fields_are_denied() {
        let got: Example = decode(&pairs(&[
            ("airlock.role", "outbound"),
            ("name", "x"),
            ("airlock.later", "1"),
        ]))
        .unwrap();
        assert_eq!(got.name, "x");
        assert_eq!(
            decode::<NoSettings>(&pairs(&[("airlock.role", "outbound")])),
            Ok(NoSettings {})
        );
        // Only the exact prefix is reserved.
        assert_eq!(
            decode::<NoSettings>(&pairs(&[("airlock_role", "outbound")]))
                .unwrap_err()
                .to_string(),
            "unknown setting `airlock_role`; this component reads no settings"
        );
        assert!(is_reserved(ROLE_KEY));
        assert!(!is_reserved("Airlock.role"));
    }

    #[test]
    fn urls_need_their_scheme_and_a_host() {
        assert_eq!(
            " http://127.0.0.1:9/hook/ "
                .parse::<HttpUrl>()
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9/hook/"
        );
        assert_eq!(
            "wss://gateway.discord.gg"
                .parse::<WsUrl>()
                .unwrap()
                .as_str(),
            "wss://gateway.discord.gg"
        );
        for bad in [
            "https://",
            "example.com",
            "ws://example.com",
            "https:///x",
            "ht tp://x",
        ] {
            assert!(bad.parse::<HttpUrl>().is_err(), "{bad}");
        }
        assert!("https://example.com".parse::<WsUrl>().is_err());
    }
}
