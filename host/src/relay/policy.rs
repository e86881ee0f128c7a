//! Which tools a rule may cover. Pure, so that the terminal, the button and
//! the request path all ask the same question.

use crate::manifest::RelayConfig;

/// How long the "Allow 30 min" button's rule lasts.
pub const BUTTON_RULE_SECS: i64 = 30 * 60;
/// The longest rule `airlock relay allow` makes.
pub const MAX_RULE_SECS: i64 = 24 * 3600;

/// Why a rule cannot be made (or cannot match).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleRefusal {
    /// `[relay] rules` is off.
    #[error(
        "time-boxed rules are off; set `rules = true` under [relay] in airlock.toml to allow them"
    )]
    RulesOff,
    /// The relay itself is off.
    #[error("the relay is off ([relay] enabled = false), so no rule would ever apply")]
    RelayOff,
    /// Bash without its own switch.
    #[error(
        "a rule for Bash would allow every shell command; set `rules_for_bash = true` under \
         [relay] in airlock.toml if that is what you want"
    )]
    Bash,
    /// Not one tool's name.
    #[error(
        "{0:?} is not a tool name: a rule names exactly one tool (like Write or \
         mcp__github__create_issue), never a pattern"
    )]
    NotAToolName(String),
}

/// Whether `name` is one tool's exact name: letters, digits, `_`, `-`,
/// `.` and `:`, 1 to 128 of them. Anything that looks like a pattern is not.
pub fn is_tool_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

/// Whether a rule for `tool_name` may exist (and match) under `config`.
pub fn may_rule(tool_name: &str, config: &RelayConfig) -> Result<(), RuleRefusal> {
    if !config.enabled {
        return Err(RuleRefusal::RelayOff);
    }
    if !config.rules {
        return Err(RuleRefusal::RulesOff);
    }
    if !is_tool_name(tool_name) {
        return Err(RuleRefusal::NotAToolName(crate::text::one_line(
            tool_name, 60,
        )));
    }
    if tool_name.eq_ignore_ascii_case("bash") && !config.rules_for_bash {
        return Err(RuleRefusal::Bash);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let off = RelayConfig::default();
        let on = RelayConfig {
            rules: true,
            ..RelayConfig::default()
        };
        let bash = RelayConfig {
            rules: true,
            rules_for_bash: true,
            ..RelayConfig::default()
        };
        let disabled = RelayConfig {
            enabled: false,
            ..bash.clone()
        };
        use RuleRefusal::*;
        let cases: &[(&str, &RelayConfig, Result<(), RuleRefusal>)] = &[
            ("Write", &off, Err(RulesOff)),
            ("Write", &on, Ok(())),
            ("mcp__github__create_issue", &on, Ok(())),
            ("Bash", &on, Err(Bash)),
            ("bash", &on, Err(Bash)),
            ("Bash", &bash, Ok(())),
            ("Write", &disabled, Err(RelayOff)),
            ("*", &on, Err(NotAToolName("*".into()))),
            ("Write*", &on, Err(NotAToolName("Write*".into()))),
            ("mcp__x__*", &on, Err(NotAToolName("mcp__x__*".into()))),
            ("Write Edit", &on, Err(NotAToolName("Write Edit".into()))),
            ("", &on, Err(NotAToolName(String::new()))),
        ];
        for (tool, config, want) in cases {
            assert_eq!(&may_rule(tool, config), want, "{tool}");
        }
        assert!(!is_tool_name(&"x".repeat(129)));
    }
}
