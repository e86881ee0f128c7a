//! The `[relay]` section of `airlock.toml`: the permission relay.
//!
//! ```toml
//! [relay]
//! enabled = true          # relay Claude Code's permission prompts to owners (default true)
//! ttl = "10m"             # a prompt unanswered this long is closed in chat; the terminal still asks
//! nudge = "3m"            # owners get one reminder after this long ("0" for none)
//! rules = false           # allow "Allow 30 min" and `airlock relay allow` (default false)
//! rules_for_bash = false  # let a rule match Bash too (default false)
//! ```
//!
//! Rules are off by default because a rule answers for the owner: while it
//! lasts, nobody looks at the calls it allows. Bash needs its own switch
//! because one rule for it allows every command.

use serde::Deserialize;

use super::duration;

/// How long a prompt waits for a verdict unless `[relay] ttl` says otherwise.
pub const DEFAULT_TTL_SECS: i64 = 600;
/// When owners are reminded unless `[relay] nudge` says otherwise.
pub const DEFAULT_NUDGE_SECS: i64 = 180;
/// The longest `ttl`.
pub const MAX_TTL_SECS: i64 = 24 * 3600;

/// The `[relay]` section, checked.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawRelay")]
pub struct RelayConfig {
    /// Relay prompts at all (declare `claude/channel/permission`).
    pub enabled: bool,
    /// Seconds a prompt waits in chat.
    pub ttl_secs: i64,
    /// Seconds before the one reminder; 0 for none.
    pub nudge_secs: i64,
    /// Time-boxed rules may exist.
    pub rules: bool,
    /// A rule may match `Bash`.
    pub rules_for_bash: bool,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ttl_secs: DEFAULT_TTL_SECS,
            nudge_secs: DEFAULT_NUDGE_SECS,
            rules: false,
            rules_for_bash: false,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelay {
    enabled: Option<bool>,
    ttl: Option<String>,
    nudge: Option<String>,
    #[serde(default)]
    rules: bool,
    #[serde(default)]
    rules_for_bash: bool,
}

impl TryFrom<RawRelay> for RelayConfig {
    type Error = String;

    fn try_from(raw: RawRelay) -> Result<Self, String> {
        let ttl_secs = match raw.ttl.as_deref() {
            None => DEFAULT_TTL_SECS,
            Some(t) => duration::parse_secs("[relay] ttl =", t)?,
        };
        if !(1..=MAX_TTL_SECS).contains(&ttl_secs) {
            return Err(format!(
                "[relay] ttl must be from 1s to 24h (it is {}); the default is {}",
                duration::show(ttl_secs),
                duration::show(DEFAULT_TTL_SECS)
            ));
        }
        let nudge_secs = match raw.nudge.as_deref() {
            None => DEFAULT_NUDGE_SECS,
            Some(t) => duration::parse_secs("[relay] nudge =", t)?,
        };
        if !(0..=MAX_TTL_SECS).contains(&nudge_secs) {
            return Err(format!(
                "[relay] nudge must be from 0 (no reminder) to 24h (it is {})",
                duration::show(nudge_secs)
            ));
        }
        Ok(Self {
            enabled: raw.enabled.unwrap_or(true),
            ttl_secs,
            nudge_secs,
            rules: raw.rules,
            rules_for_bash: raw.rules_for_bash,
        })
    }
}

impl RelayConfig {
    /// Seconds after which owners are reminded, if a reminder comes before
    /// the prompt expires.
    pub fn nudge_after(&self) -> Option<i64> {
        (self.nudge_secs > 0 && self.nudge_secs < self.ttl_secs).then_some(self.nudge_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RelayConfig, String> {
        #[derive(Deserialize)]
        struct File {
            relay: RelayConfig,
        }
        toml::from_str::<File>(text)
            .map(|f| f.relay)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(parse("[relay]").unwrap(), RelayConfig::default());
        let c = parse("[relay]\nttl = \"90s\"\nnudge = \"0\"\nrules = true").unwrap();
        assert_eq!(
            (c.ttl_secs, c.nudge_secs, c.rules, c.rules_for_bash),
            (90, 0, true, false)
        );
        assert_eq!(c.nudge_after(), None);
        assert_eq!(RelayConfig::default().nudge_after(), Some(180));
        let late = parse("[relay]\nttl = \"2m\"\nnudge = \"3m\"").unwrap();
        assert_eq!(
            late.nudge_after(),
            None,
            "a reminder after the prompt expired is none"
        );
        assert!(!parse("[relay]\nenabled = false").unwrap().enabled);
    }

    #[test]
    fn mistakes_say_what_to_write() {
        for (text, want) in [
            ("[relay]\nttl = \"0s\"", "from 1s to 24h"),
            ("[relay]\nttl = \"2d\"", "unknown unit"),
            ("[relay]\nttl = \"25h\"", "from 1s to 24h"),
            ("[relay]\nnudge = \"soon\"", "not a duration"),
            ("[relay]\nrule = true", "unknown field"),
            ("[relay]\nrules = \"yes\"", "invalid type"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
