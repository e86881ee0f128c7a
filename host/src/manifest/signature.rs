//! `[inbound_http]`: an adapter's inbound route, and how its senders sign
//! their requests.
//!
//! A route on loopback is reached through the URL with the per-run access
//! token that airlock prints. A webhook from the internet cannot carry that
//! token (it changes every run), so a route that is to face the internet
//! declares how its sender signs each request instead: an HMAC-SHA256 of
//! the body (and, in some schemes, a timestamp) under a secret both sides
//! hold. The host holds the secret and checks every request before the
//! adapter sees it.
//!
//! ```toml
//! inbound_http = true                  # a route on loopback, reached with the token
//!
//! [inbound_http]                       # or: a signed route
//! signature = "github"                 # "github", "slack", or a table (below)
//! secret = "GITHUB_WEBHOOK_SECRET"     # environment variable or $AIRLOCK_HOME/secrets/NAME
//!
//! [inbound_http.signature]             # a scheme of another sender
//! header = "X-Signature"               # carries the signature as hex
//! prefix = "sha256="                   # before the hex; default none
//! timestamp_header = "X-Timestamp"     # unix seconds; absent: the scheme has no timestamp
//! signed = "{timestamp}.{body}"        # what is signed; default "{body}"
//! max_age_s = 300                      # how old a timestamp may be; default 300
//! ```

use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

use super::secret_binding::check_name;

/// The timestamp window when a scheme does not set one: five minutes, as
/// Slack and most signing senders use.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);

/// The longest timestamp window a scheme may set (a day).
const MAX_MAX_AGE_S: u64 = 86_400;

/// `inbound_http` as a manifest writes it: a flag, or a signed route.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum InboundHttpSpec {
    /// `inbound_http = false`, or absent.
    #[default]
    Off,
    /// `inbound_http = true`: a loopback route reached with the access token.
    Local,
    /// `[inbound_http]` with a signature: every request is signed.
    Signed(SignedRoute),
}

impl InboundHttpSpec {
    /// Whether the manifest asks for a route at all.
    pub fn wanted(&self) -> bool {
        !matches!(self, InboundHttpSpec::Off)
    }

    /// The signed route, when it is one.
    pub fn signed(&self) -> Option<&SignedRoute> {
        match self {
            InboundHttpSpec::Signed(route) => Some(route),
            _ => None,
        }
    }
}

/// A route whose requests are signed with a secret the host holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRoute {
    /// How requests are signed.
    pub scheme: SignatureScheme,
    /// The secret's name: an environment variable or a file under
    /// `$AIRLOCK_HOME/secrets/`.
    pub secret: String,
}

/// How a request is signed: an HMAC-SHA256, in hex, in one header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureScheme {
    /// The header carrying the signature, lowercase.
    pub header: String,
    /// What comes before the hex in that header (`sha256=`, `v0=`).
    pub prefix: String,
    /// The header carrying the time of signing in unix seconds, lowercase.
    pub timestamp_header: Option<String>,
    /// What is signed, in order.
    pub signed: Vec<Part>,
    /// How far a timestamp may be from the host's clock, either way.
    pub max_age: Duration,
}

/// A piece of the signed text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// These bytes as written.
    Text(String),
    /// The timestamp header's value.
    Timestamp,
    /// The request body.
    Body,
}

impl SignatureScheme {
    /// GitHub's `X-Hub-Signature-256: sha256=<hex>` over the body. GitHub
    /// signs no timestamp, so replays are refused only while remembered.
    pub fn github() -> Self {
        Self {
            header: "x-hub-signature-256".into(),
            prefix: "sha256=".into(),
            timestamp_header: None,
            signed: vec![Part::Body],
            max_age: DEFAULT_MAX_AGE,
        }
    }

    /// Slack's `X-Slack-Signature: v0=<hex>` over `v0:<timestamp>:<body>`,
    /// with `X-Slack-Request-Timestamp`, five minutes either way.
    pub fn slack() -> Self {
        Self {
            header: "x-slack-signature".into(),
            prefix: "v0=".into(),
            timestamp_header: Some("x-slack-request-timestamp".into()),
            signed: vec![
                Part::Text("v0:".into()),
                Part::Timestamp,
                Part::Text(":".into()),
                Part::Body,
            ],
            max_age: DEFAULT_MAX_AGE,
        }
    }

    /// The scheme called `name`.
    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "github" => Some(Self::github()),
            "slack" => Some(Self::slack()),
            _ => None,
        }
    }

    /// The names [`SignatureScheme::preset`] knows.
    pub const PRESETS: [&'static str; 2] = ["github", "slack"];

    /// The scheme described by a table; the message says what is wrong.
    fn custom(table: CustomScheme) -> Result<Self, String> {
        let header = header_name(&table.header, "header")?;
        let timestamp_header = table
            .timestamp_header
            .as_deref()
            .map(|h| header_name(h, "timestamp_header"))
            .transpose()?;
        // A header value is read as visible ASCII with its ends trimmed, so a
        // prefix with anything else in it could never match.
        if !table.prefix.chars().all(|c| c.is_ascii_graphic()) || table.prefix.len() > 32 {
            return Err(format!(
                "`prefix` = {:?} cannot appear in a header: it must be at most 32 visible \
                 ASCII characters, with no spaces (for example \"sha256=\")",
                table.prefix
            ));
        }
        let signed = parse_template(&table.signed)?;
        let stamps = signed.iter().filter(|p| **p == Part::Timestamp).count();
        match (&timestamp_header, stamps) {
            (Some(_), 1) | (None, 0) => {}
            (Some(_), _) => {
                return Err(
                    "with a `timestamp_header`, `signed` must hold {timestamp} once, so that the \
                     time is signed too"
                        .into(),
                );
            }
            (None, _) => {
                return Err("{timestamp} in `signed` needs a `timestamp_header`".into());
            }
        }
        let max_age_s = table.max_age_s.unwrap_or(DEFAULT_MAX_AGE.as_secs());
        if !(1..=MAX_MAX_AGE_S).contains(&max_age_s) {
            return Err(format!(
                "`max_age_s` = {max_age_s} must be 1 to {MAX_MAX_AGE_S} seconds"
            ));
        }
        Ok(Self {
            header,
            prefix: table.prefix,
            timestamp_header,
            signed,
            max_age: Duration::from_secs(max_age_s),
        })
    }
}

/// A header name as the scheme keeps it (lowercase), if it is one.
fn header_name(name: &str, field: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(format!(
            "`{field}` = {name:?} is not a header name (letters, digits, '-', '_')"
        ));
    }
    Ok(name.to_ascii_lowercase())
}

/// `signed` as parts: `{body}` exactly once, `{timestamp}` at most once,
/// no other placeholder.
fn parse_template(template: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(Part::Text(rest[..open].to_string()));
        }
        let after = &rest[open..];
        let (part, len) = if after.starts_with("{body}") {
            (Part::Body, "{body}".len())
        } else if after.starts_with("{timestamp}") {
            (Part::Timestamp, "{timestamp}".len())
        } else {
            return Err(format!(
                "`signed` = {template:?}: only {{body}} and {{timestamp}} may appear in braces"
            ));
        };
        parts.push(part);
        rest = &after[len..];
    }
    if rest.contains('}') {
        return Err(format!(
            "`signed` = {template:?} has a '}}' without its '{{'"
        ));
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_string()));
    }
    if parts.iter().filter(|p| **p == Part::Body).count() != 1 {
        return Err(format!(
            "`signed` = {template:?} must hold {{body}} exactly once"
        ));
    }
    Ok(parts)
}

/// `[inbound_http.signature]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomScheme {
    header: String,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    timestamp_header: Option<String>,
    #[serde(default = "body_only")]
    signed: String,
    #[serde(default)]
    max_age_s: Option<u64>,
}

fn body_only() -> String {
    "{body}".into()
}

/// `[inbound_http]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteTable {
    signature: SchemeSpec,
    secret: String,
}

/// `signature` as written: a preset's name or a table.
struct SchemeSpec(SignatureScheme);

impl<'de> Deserialize<'de> for SchemeSpec {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SchemeSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"github\", \"slack\", or a table with `header`")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<SchemeSpec, E> {
                SignatureScheme::preset(name).map(SchemeSpec).ok_or_else(|| {
                    E::custom(format!(
                        "unknown signature scheme {name:?}; use one of {:?}, or describe it in a \
                         [inbound_http.signature] table (header, prefix, timestamp_header, signed)",
                        SignatureScheme::PRESETS
                    ))
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SchemeSpec, A::Error> {
                let table = CustomScheme::deserialize(de::value::MapAccessDeserializer::new(map))?;
                SignatureScheme::custom(table)
                    .map(SchemeSpec)
                    .map_err(|e| de::Error::custom(format!("[inbound_http.signature]: {e}")))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for InboundHttpSpec {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = InboundHttpSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true, false, or an [inbound_http] table with `signature` and `secret`")
            }
            fn visit_bool<E: de::Error>(self, on: bool) -> Result<InboundHttpSpec, E> {
                Ok(if on {
                    InboundHttpSpec::Local
                } else {
                    InboundHttpSpec::Off
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<InboundHttpSpec, A::Error> {
                let table = RouteTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                check_name(&table.secret).map_err(|_| {
                    de::Error::custom(format!(
                        "[inbound_http] secret = {:?} must be an environment-variable name like \
                         GITHUB_WEBHOOK_SECRET",
                        table.secret
                    ))
                })?;
                Ok(InboundHttpSpec::Signed(SignedRoute {
                    scheme: table.signature.0,
                    secret: table.secret,
                }))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Doc {
        #[serde(default)]
        inbound_http: InboundHttpSpec,
    }

    fn parse(text: &str) -> Result<InboundHttpSpec, String> {
        toml::from_str::<Doc>(text)
            .map(|d| d.inbound_http)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_forms_a_manifest_may_write() {
        assert_eq!(parse("").unwrap(), InboundHttpSpec::Off);
        assert_eq!(parse("inbound_http = false").unwrap(), InboundHttpSpec::Off);
        assert_eq!(
            parse("inbound_http = true").unwrap(),
            InboundHttpSpec::Local
        );
        let github =
            parse("[inbound_http]\nsignature = \"github\"\nsecret = \"GH_SECRET\"").unwrap();
        assert_eq!(
            github.signed(),
            Some(&SignedRoute {
                scheme: SignatureScheme::github(),
                secret: "GH_SECRET".into()
            })
        );
        let slack = parse("[inbound_http]\nsignature = \"slack\"\nsecret = \"S\"").unwrap();
        assert_eq!(slack.signed().unwrap().scheme, SignatureScheme::slack());
        let custom = parse(
            "[inbound_http]\nsecret = \"S\"\n[inbound_http.signature]\nheader = \"X-Sig\"\n\
             timestamp_header = \"X-Time\"\nsigned = \"{timestamp}.{body}\"\nmax_age_s = 60",
        )
        .unwrap();
        let scheme = &custom.signed().unwrap().scheme;
        assert_eq!(scheme.header, "x-sig");
        assert_eq!(scheme.prefix, "");
        assert_eq!(scheme.timestamp_header.as_deref(), Some("x-time"));
        assert_eq!(
            scheme.signed,
            [Part::Timestamp, Part::Text(".".into()), Part::Body]
        );
        assert_eq!(scheme.max_age, Duration::from_secs(60));
    }

    #[test]
    fn what_is_refused_and_the_error_says_why() {
        let table =
            |sig: &str| format!("[inbound_http]\nsecret = \"S\"\n[inbound_http.signature]\n{sig}");
        for (text, says) in [
            (
                "inbound_http = \"yes\"".to_string(),
                "true, false, or an [inbound_http] table",
            ),
            (
                "[inbound_http]\nsignature = \"gitlab\"\nsecret = \"S\"".into(),
                "unknown signature scheme \"gitlab\"",
            ),
            (
                "[inbound_http]\nsignature = \"github\"".into(),
                "missing field `secret`",
            ),
            (
                "[inbound_http]\nsecret = \"S\"".into(),
                "missing field `signature`",
            ),
            (
                "[inbound_http]\nsignature = \"github\"\nsecret = \"not a name\"".into(),
                "environment-variable name",
            ),
            (
                "[inbound_http]\nsignature = \"github\"\nsecret = \"S\"\nport = 1".into(),
                "unknown field `port`",
            ),
            (table("header = \"X Sig\""), "is not a header name"),
            (
                table("header = \"X-Sig\"\nsigned = \"{body}{body}\""),
                "exactly once",
            ),
            (
                table("header = \"X-Sig\"\nsigned = \"{ts}.{body}\""),
                "only {body} and {timestamp}",
            ),
            (
                table("header = \"X-Sig\"\nsigned = \"{body}}\""),
                "without its '{'",
            ),
            (
                table("header = \"X-Sig\"\nsigned = \"{timestamp}.{body}\""),
                "needs a `timestamp_header`",
            ),
            (
                table("header = \"X-Sig\"\ntimestamp_header = \"X-T\""),
                "{timestamp} once",
            ),
            (
                table("header = \"X-Sig\"\nmax_age_s = 0"),
                "must be 1 to 86400",
            ),
            (
                table("header = \"X-Sig\"\nprefix = \"a\\nb\""),
                "visible ASCII",
            ),
            (
                table("header = \"X-Sig\"\nprefix = \"sha25é=\""),
                "visible ASCII",
            ),
            (table("header = \"X-Sig\"\nprefix = \" v0=\""), "no spaces"),
        ] {
            let err = parse(&text).expect_err(&text);
            assert!(err.contains(says), "{text}\n→ {err}\n(expected {says:?})");
        }
    }
}
