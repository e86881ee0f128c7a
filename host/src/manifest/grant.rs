//! The operator's config file, `$AIRLOCK_HOME/airlock.toml`.
//!
//! ```toml
//! [components.webhook]
//! enabled = true                    # run it in `airlock serve`
//! settings = { outbound_url = "http://127.0.0.1:9000/hook" }   # handed to `start`
//!
//! [components.webhook.grant]        # every field optional; each can only narrow
//! outbound_http = ["https://hooks.example.com"]
//! websocket = []
//! inbound_http = true
//! bind = "0.0.0.0"                  # the inbound route's address (default 127.0.0.1); other
//!                                   # than loopback only for a signed route (a webhook)
//! kv_quota_bytes = 65536
//! secrets = ["HOOK_TOKEN"]          # which declared secrets may be injected
//! limits = { memory_mib = 32, cpu_ms = 100 }
//! local = ["http://127.0.0.1:9000"] # destinations allowed to resolve to loopback/private addresses
//!
//! [components.webhook.grant.rebind] # send a declared destination elsewhere (a local fake, a proxy);
//! "https://hooks.example.com" = "http://127.0.0.1:9000"   # its secrets follow it
//!
//! [delivery]
//! max_waiting = 10000               # events waiting for the session before polling pauses
//! max_per_second = 1000             # events a second from one adapter; past it the source waits
//! dedupe_window = "168h"            # how long a delivered message is remembered, to drop a replay
//!
//! [files]
//! allow = ["~/projects", "/tmp"]    # where `reply` may attach files from (unset: anywhere
//!                                   # outside the state directory; [] : nowhere)
//!
//! [inbox]
//! quota_mib = 256                   # attachments kept per adapter; the oldest go first
//!
//! [access]
//! static = true                     # this file is the only source of access (default false)
//! sender_per_minute = 30            # messages a minute one allowed sender may send; the rest are dropped
//! stranger_alert_per_minute = 30    # messages a minute from strangers on one adapter before an alert
//!
//! [access.telegram]                 # per adapter; allowed only when static = true
//! owners = ["123456789"]
//! members = ["987654321"]
//! groups = ["-1001234567890"]       # allowed senders, when they mention the bot; or a table:
//!                                   # { chat_id = "-100…", any_sender = true, require_mention = false }
//!
//! [relay]
//! enabled = true                    # relay permission prompts to owners (default true)
//! ttl = "10m"                       # an unanswered prompt is closed in chat after this long
//! nudge = "3m"                      # one reminder after this long ("0": none)
//! rules = false                     # allow time-boxed rules ("Allow 30 min"); default false
//! rules_for_bash = false            # let a rule match Bash (default false)
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::access::AccessConfig;
use super::audit::AuditConfig;
use super::limits::LimitsSpec;
use super::relay::RelayConfig;
use crate::net::destination::Destination;

/// The whole config file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Per-component settings and grants, by component name.
    #[serde(default)]
    pub components: BTreeMap<String, ComponentConfig>,
    /// How events wait for the session.
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// Where attached files may come from.
    #[serde(default)]
    pub files: FilesConfig,
    /// How much the attachment inbox keeps.
    #[serde(default)]
    pub inbox: InboxConfig,
    /// Rate limits, alerts, and static mode's owners, members and groups.
    #[serde(default)]
    pub access: AccessConfig,
    /// The permission relay.
    #[serde(default)]
    pub relay: RelayConfig,
    /// The audit trail.
    #[serde(default)]
    pub audit: AuditConfig,
}

/// The `[inbox]` section.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct InboxConfig {
    /// MiB of attachments kept per adapter (default
    /// [`DEFAULT_INBOX_QUOTA_MIB`]); past it the adapter's oldest files are
    /// deleted to make room.
    pub quota_mib: Option<u64>,
}

/// MiB of attachments the inbox keeps per adapter unless `[inbox]` says otherwise.
pub const DEFAULT_INBOX_QUOTA_MIB: u64 = 256;

impl InboxConfig {
    /// The quota per adapter, in bytes.
    pub fn quota_bytes(&self) -> u64 {
        self.quota_mib
            .unwrap_or(DEFAULT_INBOX_QUOTA_MIB)
            .saturating_mul(1 << 20)
    }
}

/// The `[files]` section.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    /// Directories `reply` may attach files from (`~/` is the user's home).
    /// Unset: any regular file on disk outside the state directory; empty:
    /// none.
    pub allow: Option<Vec<String>>,
}

/// The `[delivery]` section.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, try_from = "RawDelivery")]
pub struct DeliveryConfig {
    /// Events that may wait for the session before polling pauses (default
    /// 10000). Platforms keep what airlock does not fetch: Telegram for 24
    /// hours.
    pub max_waiting: Option<usize>,
    /// Events a second one adapter may push toward the session (default
    /// 1000); past it the source waits, and the platform keeps the rest.
    pub max_per_second: Option<u32>,
    /// Seconds a delivered message's dedupe key is kept, so that the same
    /// message arriving again (a platform replaying it, a restored state
    /// directory) is dropped; `dedupe_window`, default
    /// [`DEFAULT_DEDUPE_SECS`]. Older keys are forgotten while airlock runs.
    pub dedupe_secs: Option<i64>,
}

/// How long a delivered message is remembered by default: a week, well past
/// Telegram's 24 hours of keeping updates and Discord's resume window.
pub const DEFAULT_DEDUPE_SECS: i64 = 7 * 24 * 3600;
/// The shortest dedupe window: a platform retrying a batch it was not sure
/// of does so within seconds, a reconnect within a minute or two.
const MIN_DEDUPE_SECS: i64 = 60;

impl DeliveryConfig {
    /// How long a delivered message's dedupe key is kept, in seconds.
    pub fn dedupe_secs(&self) -> i64 {
        self.dedupe_secs.unwrap_or(DEFAULT_DEDUPE_SECS)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDelivery {
    max_waiting: Option<usize>,
    max_per_second: Option<u32>,
    dedupe_window: Option<String>,
}

impl TryFrom<RawDelivery> for DeliveryConfig {
    type Error = String;

    fn try_from(raw: RawDelivery) -> Result<Self, String> {
        let dedupe_secs = match raw.dedupe_window.as_deref() {
            None => None,
            Some(t) => {
                let secs = super::duration::parse_secs("[delivery] dedupe_window =", t)?;
                if secs < MIN_DEDUPE_SECS {
                    return Err(format!(
                        "[delivery] dedupe_window must be at least {} (it is {}): a shorter \
                         window lets a platform's retry through twice; the default is {}",
                        super::duration::show(MIN_DEDUPE_SECS),
                        super::duration::show(secs),
                        super::duration::show(DEFAULT_DEDUPE_SECS)
                    ));
                }
                Some(secs)
            }
        };
        Ok(Self {
            max_waiting: raw.max_waiting,
            max_per_second: raw.max_per_second,
            dedupe_secs,
        })
    }
}

/// One component's section.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ComponentConfig {
    /// Run it in `airlock serve`. Unset: bundled filters run; of the
    /// adapters, fakechat runs when no other adapter is enabled.
    pub enabled: Option<bool>,
    /// Key/value settings passed to the component's `start`.
    #[serde(default, deserialize_with = "operator_settings")]
    pub settings: BTreeMap<String, String>,
    /// What the operator grants.
    #[serde(default)]
    pub grant: Grant,
}

/// Settings keys starting with this are the host's (`airlock.role`).
pub const RESERVED_SETTING_PREFIX: &str = "airlock.";

/// The operator's settings, refusing the keys the host reserves: an
/// operator's `airlock.role` would tell an adapter it is not the one
/// holding the connection.
fn operator_settings<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let settings = BTreeMap::<String, String>::deserialize(d)?;
    if let Some(key) = settings
        .keys()
        .find(|k| k.starts_with(RESERVED_SETTING_PREFIX))
    {
        return Err(serde::de::Error::custom(format!(
            "setting {key:?}: keys starting with `{RESERVED_SETTING_PREFIX}` are airlock's own; \
             remove it"
        )));
    }
    Ok(settings)
}

/// The operator's side of "manifest ∩ grant". `None` means "as the manifest asks".
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Allowed wasi:http destinations.
    pub outbound_http: Option<Vec<Destination>>,
    /// Allowed websocket destinations.
    pub websocket: Option<Vec<Destination>>,
    /// Whether the inbound route is allowed.
    pub inbound_http: Option<bool>,
    /// The address the inbound route listens on; absent: 127.0.0.1. An
    /// address other than loopback is allowed only for a route whose
    /// requests are signed (`[inbound_http] signature` in the manifest).
    pub bind: Option<std::net::IpAddr>,
    /// Largest kv quota; above the host's ceiling (16 MiB) only when set here.
    pub kv_quota_bytes: Option<u64>,
    /// Secrets that may be injected, by name.
    pub secrets: Option<Vec<String>>,
    /// Tighter limits.
    #[serde(default)]
    pub limits: LimitsSpec,
    /// Destinations that may resolve to loopback, private or link-local addresses.
    #[serde(default)]
    pub local: Vec<Destination>,
    /// Declared destination → replacement.
    #[serde(default)]
    pub rebind: BTreeMap<Destination, Destination>,
}

/// Why the config could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Reading failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Parsing failed.
    #[error("invalid config {path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// What was wrong.
        source: toml::de::Error,
    },
}

impl Config {
    /// Parse the text of `airlock.toml`; `path` names the file in errors. Reading it is the
    /// state directory's job (`home::load_config`): this module does no I/O.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.display().to_string(),
            source,
        })
    }

    /// The section of `name` (empty if absent).
    pub fn component(&self, name: &str) -> ComponentConfig {
        self.components.get(name).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_setting_keys_are_refused() {
        let err = Config::parse(
            "[components.discord]\nsettings = { \"airlock.role\" = \"outbound\" }\n",
            Path::new("airlock.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("are airlock's own"), "{err}");
        Config::parse(
            "[components.discord]\nsettings = { airlock_role = \"x\" }\n",
            Path::new("airlock.toml"),
        )
        .unwrap();
    }

    #[test]
    fn dedupe_window_is_a_duration_of_a_minute_or_more() {
        let cases: [(&str, Result<i64, &str>); 6] = [
            ("", Ok(DEFAULT_DEDUPE_SECS)),
            ("dedupe_window = \"10m\"", Ok(600)),
            ("dedupe_window = \"48h\"", Ok(48 * 3600)),
            ("dedupe_window = \"60\"", Ok(60)),
            ("dedupe_window = \"30s\"", Err("at least 1m")),
            ("dedupe_window = \"1d\"", Err("unknown unit")),
        ];
        for (line, want) in cases {
            let got = Config::parse(&format!("[delivery]\n{line}\n"), Path::new("airlock.toml"))
                .map(|c| c.delivery.dedupe_secs());
            match (got, want) {
                (Ok(secs), Ok(w)) => assert_eq!(secs, w, "{line}"),
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{line}: {e}"),
                (got, want) => panic!("{line}: got {got:?}, want {want:?}"),
            }
        }
        let c = Config::parse("[delivery]\nmax_waiting = 5\n", Path::new("x")).unwrap();
        assert_eq!(c.delivery.max_waiting, Some(5));
    }

    #[test]
    fn parses_and_refuses_unknown_fields() {
        let c: Config = toml::from_str(
            r#"
[components.webhook]
settings = { outbound_url = "http://127.0.0.1:9000/hook" }
[components.webhook.grant]
outbound_http = ["https://hooks.example.com"]
local = ["http://127.0.0.1:9000"]
limits = { cpu_ms = 50 }
[components.webhook.grant.rebind]
"https://hooks.example.com" = "http://127.0.0.1:9000"
"#,
        )
        .unwrap();
        let w = c.component("webhook");
        assert_eq!(w.settings["outbound_url"], "http://127.0.0.1:9000/hook");
        assert_eq!(w.grant.rebind.len(), 1);
        assert_eq!(w.grant.limits.cpu_ms, Some(50));
        assert_eq!(c.component("other"), ComponentConfig::default());

        let err =
            toml::from_str::<Config>("[components.x.grant]\nallow_everything = true").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");

        let c: Config = toml::from_str("[files]\nallow = [\"~/projects\", \"/tmp\"]").unwrap();
        assert_eq!(c.files.allow.unwrap(), ["~/projects", "/tmp"]);
        assert_eq!(Config::default().files.allow, None);
        let err = toml::from_str::<Config>("[files]\nallowed = []").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");

        assert_eq!(Config::default().inbox.quota_bytes(), 256 << 20);
        let c: Config = toml::from_str("[inbox]\nquota_mib = 1").unwrap();
        assert_eq!(c.inbox.quota_bytes(), 1 << 20);
        let err = toml::from_str::<Config>("[inbox]\nquota = 1").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
