//! `airlock relay`: the permission relay's time-boxed rules, made, listed
//! and ended in the terminal. No chat message and no tool changes a rule
//! except the owner's own "Allow 30 min" press.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use super::access_view::when;
use crate::access::AccessStore;
use crate::audit::Kind as AuditKind;
use crate::host::Host;
use crate::manifest::duration;
use crate::relay::RelayStore;
use crate::relay::policy::{self, MAX_RULE_SECS};

/// What to do.
#[derive(Debug, Clone, Subcommand)]
pub enum Action {
    /// Let airlock answer "allow" for every call of one tool, for a while.
    Allow {
        /// The tool's exact name, like Write or mcp__github__create_issue.
        tool: String,
        /// How long: 90s, 30m, 2h (at most 24h).
        #[arg(long = "for", default_value = "30m")]
        duration: String,
    },
    /// The rules in force, with who made them and how often they answered.
    Rules {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// End a rule (or every rule).
    Revoke {
        /// The tool whose rule ends.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        tool: Option<String>,
        /// End every rule.
        #[arg(long)]
        all: bool,
    },
}

/// Run `action` against the state of `host`.
pub fn run(host: &Host, action: Action) -> anyhow::Result<ExitCode> {
    let store = RelayStore::new(host.db.clone());
    let now = crate::access::now();
    match action {
        Action::Allow { tool, duration } => {
            if let Err(refusal) = policy::may_rule(&tool, &host.config.relay) {
                eprintln!("airlock: no rule made: {refusal}");
                return Ok(ExitCode::from(2));
            }
            let secs = duration::parse_secs("--for", &duration).map_err(|e| anyhow::anyhow!(e))?;
            if !(60..=MAX_RULE_SECS).contains(&secs) {
                anyhow::bail!("--for {duration:?} is out of range: a rule lasts from 1m to 24h");
            }
            if let Some(l) = AccessStore::new(host.db.clone()).lockdown()? {
                eprintln!(
                    "airlock: no rule made: airlock is locked down since {}, and every prompt is \
                     left to the terminal until `airlock access unlock`",
                    when(l.since)
                );
                return Ok(ExitCode::from(2));
            }
            store.add_rule(&tool, now + secs, "terminal", now)?;
            super::record::change(&host.db, &host.config.audit, AuditKind::Relay, "rule made");
            tracing::info!(tool, until = now + secs, "relay: rule made in the terminal");
            println!(
                "every {tool} call is allowed without asking until {} ({}); owners hear of each, \
                 at most once a minute\n`airlock relay revoke {}` ends it sooner",
                when(now + secs),
                duration::show(secs),
                crate::text::shell_quote(&tool)
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::Rules { json } => {
            let rules = store.rules(now)?;
            let config = &host.config.relay;
            if json {
                println!(
                    "{}",
                    json!({
                        "rules_enabled": config.enabled && config.rules,
                        "rules_for_bash": config.rules_for_bash,
                        "rules": rules,
                    })
                );
                return Ok(ExitCode::SUCCESS);
            }
            print!("{}", show_rules(&rules, config, now));
            Ok(ExitCode::SUCCESS)
        }
        Action::Revoke { tool, all } => {
            if all {
                let n = store.revoke_all(now)?;
                super::record::change(
                    &host.db,
                    &host.config.audit,
                    AuditKind::Relay,
                    "every rule ended",
                );
                println!("ended {n} rule(s); every prompt goes to owners again");
            } else if let Some(tool) = tool {
                if store.revoke(&tool, now)? {
                    super::record::change(
                        &host.db,
                        &host.config.audit,
                        AuditKind::Relay,
                        "rule ended",
                    );
                    tracing::info!(tool, "relay: rule ended in the terminal");
                    println!("ended the rule for {tool}; its calls go to owners again");
                } else {
                    println!("no rule for {tool} was in force; nothing changed");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn show_rules(
    rules: &[crate::relay::store::Rule],
    config: &crate::manifest::RelayConfig,
    now: i64,
) -> String {
    let mut out = String::new();
    if !(config.enabled && config.rules) {
        out.push_str("rules are off ([relay] rules = false); none applies\n");
    }
    if rules.is_empty() {
        out.push_str("no rule is in force; every prompt goes to owners\n");
        return out;
    }
    let width = rules
        .iter()
        .map(|r| r.tool_name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        out,
        "{:width$}  {:20}  {:>6}  {:>4}  BY",
        "TOOL", "UNTIL", "LEFT", "USES"
    );
    for r in rules {
        let _ = writeln!(
            out,
            "{:width$}  {:20}  {:>6}  {:>4}  {}",
            r.tool_name,
            when(r.until),
            format!("{}m", ((r.until - now).max(0) + 59) / 60),
            r.uses,
            crate::text::one_line(&r.created_by, 60)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::store::Rule;

    #[test]
    fn rules_are_shown_in_aligned_columns() {
        let rule = |tool: &str, until: i64| Rule {
            tool_name: tool.into(),
            until,
            created_by: "telegram:alice".into(),
            created_at: 0,
            uses: 3,
        };
        let on = crate::manifest::RelayConfig {
            rules: true,
            ..Default::default()
        };
        let text = show_rules(&[rule("Write", 1_800), rule("mcp__x__y", 7_200)], &on, 0);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("TOOL       UNTIL"));
        assert!(
            lines[1].starts_with("Write      1970-01-01T00:30:00"),
            "{text}"
        );
        assert!(lines[1].contains("   30m     3  telegram:alice"), "{text}");
        let off = show_rules(&[], &Default::default(), 0);
        assert!(off.contains("rules are off") && off.contains("no rule is in force"));
    }
}
