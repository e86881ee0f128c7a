//! The manifest file format.
//!
//! ```toml
//! name = "telegram"                 # lowercase letters, digits, '-'; the file stem
//! kind = "adapter"                  # or "filter"
//! api = "0.1"                       # airlock:channel version the component targets
//! description = "Telegram Bot API"  # optional, shown by `airlock inspect`
//! outbound_http = ["https://api.telegram.org"]   # wasi:http destinations; empty: none
//! websocket = []                    # host websocket destinations
//! inbound_http = false              # a route on the host's listener; or a signed route:
//!                                   # [inbound_http] signature = "github", secret = "NAME"
//!                                   # (see `signature.rs`)
//! kv_quota_bytes = 1048576          # key/value storage; absent: none
//!
//! [[secrets]]                       # host-injected; the component never sees the value
//! name = "TELEGRAM_BOT_TOKEN"
//! destination = "https://api.telegram.org"
//! path_prefix = "/bot{secret}"      # or: header = "Authorization", value = "Bot {secret}"
//!                                   # or, for websocket destinations: ws_json_field = "d.token"
//! # under = "/file"                 # only for request paths at or below /file: with
//!                                   # path_prefix, which the prefix replaces; with a header,
//!                                   # which then wins over an unscoped binding of that header
//!                                   # (two tokens, one destination: Slack's app and bot tokens)
//! directions = ["outbound"]        # filters only: which way it judges; absent: both
//!
//! [limits]
//! memory_mib = 64
//! cpu_ms = 200                      # CPU per call, not counting waits on the host
//! wall_ms = 30000                   # wall-clock per call
//! ```

use std::str::FromStr;

use serde::Deserialize;

use super::limits::LimitsSpec;
use super::secret_binding::check_name;
use super::secret_position::SecretPosition;
use super::signature::InboundHttpSpec;
use crate::net::destination::Destination;

/// What a component is.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A platform adapter (world `adapter`).
    Adapter,
    /// A message filter (world `filter`).
    Filter,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Adapter => "adapter",
            Kind::Filter => "filter",
        })
    }
}

/// Which way a filter judges messages.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Messages from a platform to the session.
    Inbound,
    /// Messages from the session to a platform.
    Outbound,
}

/// A secret the host injects into the component's requests.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecretSpec {
    /// Environment variable (or file under `$AIRLOCK_HOME/secrets/`) holding the value.
    pub name: String,
    /// The one destination it is sent to.
    pub destination: Destination,
    /// Header to set (with `value`).
    #[serde(default)]
    pub header: Option<String>,
    /// Header value template containing `{secret}`, e.g. `Bot {secret}`.
    #[serde(default)]
    pub value: Option<String>,
    /// Path prefix template containing `{secret}`, e.g. `/bot{secret}`.
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// With `path_prefix`: the request paths it applies to (this one and those below it),
    /// which the rendered prefix replaces, e.g. `under = "/file"` with
    /// `path_prefix = "/file/bot{secret}"`.
    #[serde(default)]
    pub under: Option<String>,
    /// For websocket destinations: a dotted JSON field of the first frame.
    #[serde(default)]
    pub ws_json_field: Option<String>,
}

/// A parsed, validated manifest.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Component name.
    pub name: String,
    /// Adapter or filter.
    pub kind: Kind,
    /// Targeted API version, `major.minor`.
    pub api: String,
    /// One line for humans.
    #[serde(default)]
    pub description: Option<String>,
    /// wasi:http destinations.
    #[serde(default)]
    pub outbound_http: Vec<Destination>,
    /// Host websocket destinations.
    #[serde(default)]
    pub websocket: Vec<Destination>,
    /// Wants a route on the host's HTTP listener, and how its requests are
    /// authenticated.
    #[serde(default)]
    pub inbound_http: InboundHttpSpec,
    /// Key/value quota in bytes; absent means no storage.
    #[serde(default)]
    pub kv_quota_bytes: Option<u64>,
    /// Host-injected secrets.
    #[serde(default)]
    pub secrets: Vec<SecretSpec>,
    /// Resource limits asked for.
    #[serde(default)]
    pub limits: LimitsSpec,
    /// Filters only: the directions it judges; absent means both. The host
    /// calls a filter only for these, so an outbound-only filter costs
    /// nothing inbound.
    #[serde(default)]
    pub directions: Option<Vec<Direction>>,
}

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Not valid TOML, or an unknown or ill-typed field.
    #[error("invalid manifest: {0}")]
    Toml(#[from] toml::de::Error),
    /// A field is well-formed but not acceptable.
    #[error("invalid manifest: {0}")]
    Invalid(String),
}

impl FromStr for Manifest {
    type Err = ManifestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let m: Manifest = toml::from_str(s)?;
        m.validate()?;
        Ok(m)
    }
}

/// Whether `name` is a valid component name: 1–64 of `a-z`, `0-9`, `-`,
/// starting with a letter. Names become file names and chat-id prefixes.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl Manifest {
    fn validate(&self) -> Result<(), ManifestError> {
        let bad = |m: String| Err(ManifestError::Invalid(m));
        if !valid_name(&self.name) {
            return bad(format!(
                "name {:?} must be 1-64 lowercase letters, digits or '-', starting with a letter",
                self.name
            ));
        }
        if let Some(d) = &self.description
            && (d.chars().count() > 200 || d.chars().any(char::is_control))
        {
            return bad("description must be one line of at most 200 characters".into());
        }
        if self.api != "0.1" {
            return bad(format!(
                "api = {:?} is not supported; this host implements \"0.1\"",
                self.api
            ));
        }
        if self.kind == Kind::Filter
            && (!self.outbound_http.is_empty()
                || !self.websocket.is_empty()
                || self.inbound_http.wanted())
        {
            return bad(
                "filters cannot request network access (outbound_http, websocket, inbound_http)"
                    .into(),
            );
        }
        match (&self.directions, self.kind) {
            (Some(_), Kind::Adapter) => {
                return bad("`directions` is for filters; adapters carry both".into());
            }
            (Some(d), Kind::Filter) if d.is_empty() => {
                return bad(
                    "`directions` must name \"inbound\", \"outbound\" or both; leave it out for both"
                        .into(),
                );
            }
            _ => {}
        }
        for s in &self.secrets {
            s.validate(self)?;
        }
        Ok(())
    }

    /// Whether this filter judges messages going `direction`.
    pub fn judges(&self, direction: Direction) -> bool {
        self.directions
            .as_ref()
            .is_none_or(|d| d.contains(&direction))
    }
}

impl SecretSpec {
    /// The position as the secret rules parse it.
    pub fn position(&self) -> Result<SecretPosition, String> {
        match (
            &self.header,
            &self.value,
            &self.path_prefix,
            &self.ws_json_field,
        ) {
            (Some(h), Some(v), None, None) => {
                SecretPosition::header_under(h, v, self.under.as_deref())
            }
            (None, None, Some(p), None) => {
                SecretPosition::path_prefix_under(p, self.under.as_deref())
            }
            (None, None, None, Some(f)) => SecretPosition::ws_json_field(f),
            _ => return Err("a secret needs exactly one position".to_string()),
        }
        .map_err(|e| e.to_string())
    }

    fn validate(&self, m: &Manifest) -> Result<(), ManifestError> {
        let bad = |msg: String| {
            Err(ManifestError::Invalid(format!(
                "secret {}: {msg}",
                self.name
            )))
        };
        if check_name(&self.name).is_err() {
            return bad("name must be an environment-variable name like TELEGRAM_BOT_TOKEN".into());
        }
        let positions = [
            self.header.is_some(),
            self.path_prefix.is_some(),
            self.ws_json_field.is_some(),
        ];
        if positions.iter().filter(|p| **p).count() != 1 {
            return bad(
                "give exactly one position: header (with value), path_prefix, or ws_json_field"
                    .into(),
            );
        }
        if self.header.is_some() != self.value.is_some() {
            return bad("header and value go together".into());
        }
        if self.under.is_some() && self.ws_json_field.is_some() {
            return bad(
                "`under` scopes a header or a path_prefix by request path; a websocket JSON \
                 field has none"
                    .into(),
            );
        }
        let same_scope =
            |o: &&SecretSpec| o.destination == self.destination && o.under == self.under;
        if self.path_prefix.is_some()
            && m.secrets
                .iter()
                .filter(same_scope)
                .filter(|o| o.path_prefix.is_some())
                .count()
                > 1
        {
            return bad(format!(
                "two path prefixes for {} apply to the same paths; give one of them `under`",
                self.destination
            ));
        }
        let header = |o: &SecretSpec| o.header.as_deref().map(|h| h.trim().to_ascii_lowercase());
        if let Some(name) = header(self)
            && m.secrets
                .iter()
                .filter(same_scope)
                .filter(|o| header(o).as_ref() == Some(&name))
                .count()
                > 1
        {
            return bad(format!(
                "two secrets set the {name} header of {} for the same paths, so neither would \
                 be sure to be sent; give one of them `under` (the request paths it is for)",
                self.destination
            ));
        }
        let declared_http = m.outbound_http.contains(&self.destination);
        let declared_ws = m.websocket.contains(&self.destination);
        if self.ws_json_field.is_some() && !declared_ws {
            return bad(format!(
                "destination {} must be listed in `websocket`",
                self.destination
            ));
        }
        if self.ws_json_field.is_none() && !declared_http {
            return bad(format!(
                "destination {} must be listed in `outbound_http`",
                self.destination
            ));
        }
        for template in [&self.value, &self.path_prefix].into_iter().flatten() {
            if template.matches("{secret}").count() != 1 {
                return bad(format!("{template:?} must contain {{secret}} exactly once"));
            }
        }
        // The same rules the host applies when injecting, checked at parse time.
        self.position()
            .map_err(|e| ManifestError::Invalid(format!("secret {}: {e}", self.name)))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TELEGRAM: &str = r#"
name = "telegram"
kind = "adapter"
api = "0.1"
outbound_http = ["https://api.telegram.org"]
kv_quota_bytes = 1024
[[secrets]]
name = "TELEGRAM_BOT_TOKEN"
destination = "https://api.telegram.org"
path_prefix = "/bot{secret}"
[limits]
memory_mib = 32
"#;

    #[test]
    fn parses_a_full_manifest() {
        let m: Manifest = TELEGRAM.parse().unwrap();
        assert_eq!(m.name, "telegram");
        assert_eq!(m.kind, Kind::Adapter);
        assert_eq!(m.secrets[0].path_prefix.as_deref(), Some("/bot{secret}"));
        assert_eq!(m.limits.memory_mib, Some(32));
    }

    #[test]
    fn two_tokens_share_a_destination_and_a_header_by_path() {
        let m: Manifest = r#"
name = "slack"
kind = "adapter"
api = "0.1"
outbound_http = ["https://slack.com"]
[[secrets]]
name = "SLACK_APP_TOKEN"
destination = "https://slack.com"
header = "Authorization"
value = "Bearer {secret}"
under = "/api/apps.connections.open"
[[secrets]]
name = "SLACK_BOT_TOKEN"
destination = "https://slack.com"
header = "Authorization"
value = "Bearer {secret}"
"#
        .parse()
        .unwrap();
        let positions: Vec<String> = m
            .secrets
            .iter()
            .map(|s| s.position().unwrap().to_string())
            .collect();
        assert_eq!(
            positions,
            [
                "/api/apps.connections.open => authorization: Bearer {secret}",
                "authorization: Bearer {secret}"
            ]
        );
    }

    #[test]
    fn filter_directions() {
        let both: Manifest = "name = \"f\"\nkind = \"filter\"\napi = \"0.1\""
            .parse()
            .unwrap();
        assert!(both.judges(Direction::Inbound) && both.judges(Direction::Outbound));
        let out: Manifest =
            "name = \"f\"\nkind = \"filter\"\napi = \"0.1\"\ndirections = [\"outbound\"]"
                .parse()
                .unwrap();
        assert!(!out.judges(Direction::Inbound) && out.judges(Direction::Outbound));
    }

    #[test]
    fn refusals() {
        let cases: &[(&str, &str)] = &[
            (
                "name = \"x\"\nkind = \"adapter\"\napi = \"0.1\"\nsurprise = 1",
                "unknown field",
            ),
            (
                "name = \"X y\"\nkind = \"adapter\"\napi = \"0.1\"",
                "lowercase",
            ),
            (
                "name = \"x\"\nkind = \"adapter\"\napi = \"0.2\"",
                "not supported",
            ),
            (
                "name = \"x\"\nkind = \"plugin\"\napi = \"0.1\"",
                "unknown variant",
            ),
            (
                "name = \"x\"\nkind = \"filter\"\napi = \"0.1\"\noutbound_http = [\"https://a.example\"]",
                "filters cannot",
            ),
            (
                "name = \"x\"\nkind = \"adapter\"\napi = \"0.1\"\n[[secrets]]\nname = \"T\"\ndestination = \"https://a.example\"\npath_prefix = \"/bot{secret}\"",
                "must be listed in `outbound_http`",
            ),
            (
                "name = \"x\"\nkind = \"adapter\"\napi = \"0.1\"\noutbound_http = [\"https://a.example\"]\n[[secrets]]\nname = \"T\"\ndestination = \"https://a.example\"\npath_prefix = \"/bot\"",
                "exactly once",
            ),
            (
                "name = \"x\"\nkind = \"adapter\"\napi = \"0.1\"\noutbound_http = [\"https://a.example\"]\n[[secrets]]\nname = \"T\"\ndestination = \"https://a.example\"\nheader = \"Authorization\"\nvalue = \"Bot {secret}\"\npath_prefix = \"/bot{secret}\"",
                "exactly one position",
            ),
            (
                "name = \"x\"\nkind = \"adapter\"\napi = \"0.1\"\noutbound_http = [\"https://a.example\"]\n[[secrets]]\nname = \"T\"\ndestination = \"https://a.example\"\nheader = \"Host\"\nvalue = \"{secret}\"",
                "secret T",
            ),
            (
                "name = \"x\"\nkind = \"adapter\"\napi = \"0.1\"\noutbound_http = [\"https://a.example\"]\n[[secrets]]\nname = \"T\"\ndestination = \"https://a.example\"\npath_prefix = \"/a{secret}\"\n[[secrets]]\nname = \"T\"\ndestination = \"https://a.example\"\npath_prefix = \"/b{secret}\"",
                "apply to the same paths",
            ),
            (
                "name = \"x\"\nkind = \"adapter\"\napi = \"0.1\"\noutbound_http = [\"https://a.example\"]\n[[secrets]]\nname = \"A\"\ndestination = \"https://a.example\"\nheader = \"Authorization\"\nvalue = \"Bearer {secret}\"\n[[secrets]]\nname = \"B\"\ndestination = \"https://a.example\"\nheader = \"authorization \"\nvalue = \"Bot {secret}\"",
                "two secrets set the authorization header of https://a.example for the same paths",
            ),
            (
                "name = \"x\"\nkind = \"adapter\"\napi = \"0.1\"\noutbound_http = [\"https://a.example\"]\n[[secrets]]\nname = \"A\"\ndestination = \"https://a.example\"\nheader = \"X-K\"\nvalue = \"{secret}\"\nunder = \"/f\"\n[[secrets]]\nname = \"B\"\ndestination = \"https://a.example\"\nheader = \"X-K\"\nvalue = \"{secret}\"\nunder = \"/f\"",
                "for the same paths",
            ),
            (
                "name = \"x\"\nkind = \"adapter\"\napi = \"0.1\"\nwebsocket = [\"wss://a.example\"]\n[[secrets]]\nname = \"T\"\ndestination = \"wss://a.example\"\nws_json_field = \"d.token\"\nunder = \"/f\"",
                "a websocket JSON field has none",
            ),
            (
                "name = \"x\"\nkind = \"adapter\"\napi = \"0.1\"\ndirections = [\"inbound\"]",
                "for filters",
            ),
            (
                "name = \"x\"\nkind = \"filter\"\napi = \"0.1\"\ndirections = []",
                "must name",
            ),
            (
                "name = \"x\"\nkind = \"filter\"\napi = \"0.1\"\ndirections = [\"sideways\"]",
                "unknown variant",
            ),
            (
                "name = \"x\"\nkind = \"adapter\"\napi = \"0.1\"\ndescription = \"nice\\u001b[2J\"",
                "description must be one line",
            ),
            (
                "name = \"x\"\nkind = \"adapter\"\napi = \"0.1\"\noutbound_http = [\"https://a.example\"]\n[[secrets]]\nname = \"lower\"\ndestination = \"https://a.example\"\npath_prefix = \"/b{secret}\"",
                "environment-variable name",
            ),
        ];
        for (text, want) in cases {
            let err = text.parse::<Manifest>().unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }
}
