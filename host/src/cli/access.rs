//! `airlock access …`: who may reach the session, from the terminal only.
//!
//! Every change here applies to a running airlock before its next delivery
//! or send (access lives in the database, and each change bumps its
//! revision). In static mode every change is refused but lockdown and
//! unlock, which must always work, even with a broken config.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use super::access_view::{self, when};
use super::record;
use crate::access::{AccessError, AccessStore, DEFAULT_TTL, GroupPolicy, MAX_TTL, Role};
use crate::alert::{Alert, Kind};
use crate::audit::Kind as AuditKind;
use crate::db::Db;
use crate::home::AirlockHome;
use crate::host::Host;

/// What to do.
#[derive(Debug, Clone, Subcommand)]
pub enum Action {
    /// Allow a sender of an adapter to reach the session (as a member, or an owner).
    Allow {
        /// Adapter name (`telegram`, `discord`, …).
        adapter: String,
        /// The sender's platform id (see `airlock access list` for recent strangers).
        #[arg(allow_hyphen_values = true)]
        sender_id: String,
        /// As an owner: also receives alerts and answers permission prompts.
        #[arg(long)]
        owner: bool,
    },
    /// Change the role of an allowed sender.
    Role {
        /// Adapter name.
        adapter: String,
        /// The sender's platform id.
        #[arg(allow_hyphen_values = true)]
        sender_id: String,
        /// `owner` or `member`.
        role: String,
    },
    /// Take a sender off an adapter's allowlist; their waiting messages are not delivered.
    Remove {
        /// Adapter name.
        adapter: String,
        /// The sender's platform id.
        #[arg(allow_hyphen_values = true)]
        sender_id: String,
    },
    /// Remove a sender and close every chat that was open only through them.
    Revoke {
        /// Adapter name.
        adapter: String,
        /// The sender's platform id.
        #[arg(allow_hyphen_values = true)]
        sender_id: String,
    },
    /// Issue a one-time invite code to pair a sender (or open a group), or withdraw invites.
    Invite {
        /// Adapter name (with --cancel: only its invites; without: all).
        adapter: Option<String>,
        /// The person paired becomes an owner.
        #[arg(long, conflicts_with_all = ["group", "cancel"])]
        owner: bool,
        /// A code to post in a group (by a sender already allowed) to open that group.
        #[arg(long, conflicts_with = "cancel")]
        group: bool,
        /// How long the code is valid: like 90s, 10m, 1h (at most 1h).
        #[arg(long, default_value = "10m", conflicts_with = "cancel")]
        ttl: String,
        /// Withdraw live invites instead.
        #[arg(long)]
        cancel: bool,
    },
    /// Live invites (never their codes).
    Invites {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Open or close a group chat (groups are closed until opened here).
    Group {
        #[command(subcommand)]
        action: GroupAction,
    },
    /// Allowed senders with their roles, open groups, and recent senders that were dropped.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Per adapter: owners, members, groups, invites, lockdown, drops and alerts of the last day.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Stop all inbound delivery and every outbound tool at once, close all groups, cancel all invites.
    Lockdown {
        /// Why (shown to owners and in `status`).
        #[arg(long)]
        reason: Option<String>,
    },
    /// End lockdown and restore the groups it closed.
    Unlock,
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

const APPLIES: &str = "a running airlock applies this before its next message";

/// Run one action. Lockdown and unlock need only the database: they work
/// whatever state the config is in.
pub fn run(home: AirlockHome, action: Action) -> anyhow::Result<ExitCode> {
    let what = changes(&action);
    let owned = about(&action);
    let about = record::About {
        adapter: owned.0.as_deref(),
        sender: owned.1.as_deref(),
        chat: owned.2.as_deref(),
    };
    let (db, audit, code) = match action {
        Action::Lockdown { reason } => {
            // Only the database: lockdown must work with a broken config
            // (whose [audit] section then falls back to the defaults).
            let db = Db::open(&home.db_path())?;
            let code = lockdown(&db, reason.as_deref())?;
            (db, audit_config(&home), code)
        }
        Action::Unlock => {
            let db = Db::open(&home.db_path())?;
            let code = unlock(&db)?;
            (db, audit_config(&home), code)
        }
        other => {
            let host = Host::open(home)?;
            let access = AccessStore::with_config(host.db.clone(), &host.config.access);
            let code = change(&host, &access, other)?;
            (host.db.clone(), host.config.audit.clone(), code)
        }
    };
    if let Some(what) = what
        && code == ExitCode::SUCCESS
    {
        record::change_about(&db, &audit, AuditKind::Access, what, about);
    }
    Ok(code)
}

/// `[audit]` of `airlock.toml`, or the defaults when the file cannot be read.
fn audit_config(home: &AirlockHome) -> crate::manifest::AuditConfig {
    crate::home::load_config(&home.path().join("airlock.toml"))
        .map(|c| c.audit)
        .unwrap_or_default()
}

/// The adapter, sender and chat `action` concerns, where it names them.
fn about(action: &Action) -> (Option<String>, Option<String>, Option<String>) {
    match action {
        Action::Allow {
            adapter, sender_id, ..
        }
        | Action::Role {
            adapter, sender_id, ..
        }
        | Action::Remove { adapter, sender_id }
        | Action::Revoke { adapter, sender_id } => {
            (Some(adapter.clone()), Some(sender_id.clone()), None)
        }
        Action::Invite { adapter, .. } => (adapter.clone(), None, None),
        Action::Group {
            action:
                GroupAction::Open {
                    adapter, chat_id, ..
                }
                | GroupAction::Close { adapter, chat_id },
        } => (Some(adapter.clone()), None, Some(chat_id.clone())),
        _ => (None, None, None),
    }
}

/// What `action` changes, in a few words; `None` for one that only reads.
fn changes(action: &Action) -> Option<&'static str> {
    Some(match action {
        Action::Allow { .. } => "allow",
        Action::Role { .. } => "role",
        Action::Remove { .. } => "remove",
        Action::Revoke { .. } => "revoke",
        Action::Invite { cancel: true, .. } => "invites cancelled",
        Action::Invite { .. } => "invite issued",
        Action::Group {
            action: GroupAction::Open { .. },
        } => "group opened",
        Action::Group {
            action: GroupAction::Close { .. },
        } => "group closed",
        Action::Lockdown { .. } => "lockdown",
        Action::Unlock => "unlock",
        Action::Invites { .. } | Action::List { .. } | Action::Status { .. } => return None,
    })
}

fn check_adapter(adapter: &str) -> anyhow::Result<()> {
    if !crate::manifest::valid_name(adapter) {
        anyhow::bail!(
            "{adapter:?} is not an adapter name; names are lowercase letters, digits and dashes, like `telegram`"
        );
    }
    Ok(())
}

fn change(host: &Host, access: &AccessStore, action: Action) -> anyhow::Result<ExitCode> {
    match action {
        Action::Allow {
            adapter,
            sender_id,
            owner,
        } => {
            check_adapter(&adapter)?;
            let role = if owner { Role::Owner } else { Role::Member };
            let before = refuse_static(access.allow(&adapter, &sender_id, role))?;
            let what = match before {
                None => format!("allowed {adapter}:{sender_id} as {role}"),
                Some(b) if b == role => format!("already allowed: {adapter}:{sender_id} ({role})"),
                Some(b) => format!("{adapter}:{sender_id} is now {role} (was {b})"),
            };
            println!("{what}; {APPLIES}");
            Ok(ExitCode::SUCCESS)
        }
        Action::Role {
            adapter,
            sender_id,
            role,
        } => {
            let Some(role) = Role::parse(&role) else {
                anyhow::bail!("{role:?} is not a role; use `owner` or `member`");
            };
            match refuse_static(access.set_role(&adapter, &sender_id, role))? {
                None => {
                    eprintln!(
                        "airlock: {adapter}:{sender_id} is not allowed; allow them first with \
                         `airlock access allow {adapter} {sender_id}{}`",
                        if role == Role::Owner { " --owner" } else { "" }
                    );
                    Ok(ExitCode::from(1))
                }
                Some(b) if b == role => {
                    println!("{adapter}:{sender_id} is already {role}");
                    Ok(ExitCode::SUCCESS)
                }
                Some(b) => {
                    println!("{adapter}:{sender_id} is now {role} (was {b}); {APPLIES}");
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        Action::Remove { adapter, sender_id } => {
            if refuse_static(access.remove(&adapter, &sender_id))? {
                println!(
                    "removed {adapter}:{sender_id}; their waiting messages will not be delivered"
                );
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("airlock: {adapter}:{sender_id} was not allowed");
                Ok(ExitCode::from(1))
            }
        }
        Action::Revoke { adapter, sender_id } => {
            let r = refuse_static(access.revoke(&adapter, &sender_id))?;
            if r.role.is_none() && r.chats.is_empty() && r.groups.is_empty() {
                eprintln!(
                    "airlock: {adapter}:{sender_id} was not allowed, and no chat was open through them"
                );
                return Ok(ExitCode::from(1));
            }
            let mut out = format!("revoked {adapter}:{sender_id}");
            if let Some(role) = r.role {
                write!(out, " (was {role})")?;
            }
            out.push_str("; their waiting messages will not be delivered\n");
            for chat in &r.chats {
                writeln!(out, "  closed direct chat  {adapter}:{chat}")?;
            }
            for group in &r.groups {
                writeln!(
                    out,
                    "  closed group        {adapter}:{group} (they opened it with an invite)"
                )?;
            }
            print!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        Action::Invite {
            adapter,
            owner,
            group,
            ttl,
            cancel,
        } => {
            if cancel {
                let n = access.cancel_invites(adapter.as_deref())?;
                let whose = adapter.map(|a| format!(" of {a}")).unwrap_or_default();
                println!("withdrew {n} live invite(s){whose}");
                return Ok(ExitCode::SUCCESS);
            }
            let Some(adapter) = adapter else {
                anyhow::bail!(
                    "which adapter? `airlock access invite telegram` (or --cancel to withdraw invites)"
                );
            };
            check_adapter(&adapter)?;
            let ttl = parse_ttl(&ttl).map_err(|e| anyhow::anyhow!(e))?;
            let role = if owner { Role::Owner } else { Role::Member };
            let issued = refuse_static(access.invite(&adapter, role, group, ttl))?;
            print!(
                "{}",
                access_view::issued(&adapter, role, group, ttl, &issued)
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::Invites { json } => {
            let invites = access.invites()?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "invites": invites }))?
                );
            } else {
                print!("{}", access_view::invites(&invites));
            }
            Ok(ExitCode::SUCCESS)
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
            check_adapter(&adapter)?;
            let policy = GroupPolicy {
                any_sender,
                require_mention: !no_mention,
            };
            let newly = refuse_static(access.open_group(&adapter, &chat_id, policy))?;
            println!(
                "{} group {adapter}:{chat_id} ({}); {APPLIES}",
                if newly { "opened" } else { "updated" },
                access_view::describe(policy)
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::Group {
            action: GroupAction::Close { adapter, chat_id },
        } => {
            if refuse_static(access.close_group(&adapter, &chat_id))? {
                println!("closed group {adapter}:{chat_id}");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("airlock: group {adapter}:{chat_id} was not open");
                Ok(ExitCode::from(1))
            }
        }
        Action::List { json } => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&access_view::list_json(access)?)?
                );
            } else {
                print!("{}", access_view::list(access)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Status { json } => {
            let status = access.status(&running_adapters(host))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", access_view::status(&status));
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Lockdown { reason } => lockdown(&host.db, reason.as_deref()),
        Action::Unlock => unlock(&host.db),
    }
}

/// A static-mode refusal as the error it is, with its fix.
fn refuse_static<T>(r: Result<T, AccessError>) -> anyhow::Result<T> {
    r.map_err(anyhow::Error::from)
}

/// The adapters `airlock serve` would run, by the config.
pub(super) fn running_adapters(host: &Host) -> Vec<String> {
    let Ok((candidates, _)) = host.candidates() else {
        return Vec::new();
    };
    crate::serve::enabled(host, &candidates)
        .into_iter()
        .filter(|c| {
            c.manifest
                .as_ref()
                .is_ok_and(|m| m.kind == crate::manifest::Kind::Adapter)
        })
        .map(|c| c.name.clone())
        .collect()
}

fn lockdown(db: &Db, reason: Option<&str>) -> anyhow::Result<ExitCode> {
    let access = AccessStore::new(db.clone());
    let reason = reason.map(|r| crate::text::one_line(r, 200));
    let done = access.lock_down(reason.as_deref())?;
    if done.already {
        println!(
            "already locked down since {}{}; nothing changed (`airlock access unlock` ends it)",
            when(done.state.since),
            done.state
                .reason
                .map(|r| format!(" (reason: {r})"))
                .unwrap_or_default()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let text = match &done.state.reason {
        Some(r) => format!("airlock is locked down: {r}. Nothing reaches the session and nothing is sent until it is unlocked in the terminal."),
        None => "airlock is locked down. Nothing reaches the session and nothing is sent until it is unlocked in the terminal.".to_string(),
    };
    if let Err(e) = access.record_alert(
        &Alert {
            kind: Kind::Lockdown,
            adapter: None,
            text,
        },
        1,
        true,
    ) {
        eprintln!("airlock: locked down, but the alert to owners could not be recorded: {e}");
    }
    print!("{}", access_view::locked(&done));
    // Lockdown leaves every permission prompt to the terminal: no rule
    // outlives it.
    match crate::relay::RelayStore::new(db.clone()).revoke_all(crate::access::now()) {
        Ok(0) => {}
        Ok(n) => println!("  ended {n} permission relay rule(s) (unlock does not restore them)"),
        Err(e) => eprintln!("airlock: locked down, but the relay's rules could not be ended: {e}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn unlock(db: &Db) -> anyhow::Result<ExitCode> {
    let access = AccessStore::new(db.clone());
    let Some(done) = access.unlock()? else {
        println!("airlock was not locked down; nothing changed");
        return Ok(ExitCode::SUCCESS);
    };
    if let Err(e) = access.record_alert(
        &Alert {
            kind: Kind::Unlock,
            adapter: None,
            text: format!(
                "airlock is unlocked (it was locked down since {}); messages reach the session again",
                when(done.ended.since)
            ),
        },
        1,
        true,
    ) {
        eprintln!("airlock: unlocked, but the alert to owners could not be recorded: {e}");
    }
    print!("{}", access_view::unlocked(&done));
    Ok(ExitCode::SUCCESS)
}

/// `90s`, `10m`, `1h`, or plain seconds, within 1 minute and [`MAX_TTL`].
fn parse_ttl(text: &str) -> Result<i64, String> {
    let secs = crate::manifest::duration::parse_secs("--ttl", text)?;
    if !(60..=MAX_TTL).contains(&secs) {
        return Err(format!(
            "--ttl {text:?} is out of range: an invite lives from 1 minute to {} minutes (default {})",
            MAX_TTL / 60,
            DEFAULT_TTL / 60
        ));
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_table() {
        let cases = [
            ("10m", Ok(600)),
            ("1h", Ok(3600)),
            ("90s", Ok(90)),
            ("600", Ok(600)),
            (" 5m ", Ok(300)),
            ("59s", Err("out of range")),
            ("61m", Err("out of range")),
            ("2h", Err("out of range")),
            ("0m", Err("out of range")),
            ("10d", Err("unknown unit")),
            ("m", Err("not a duration")),
            ("-5m", Err("not a duration")),
            ("99999999999999999999h", Err("not a duration")),
        ];
        for (text, want) in cases {
            match (parse_ttl(text), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{text}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{text}: {got}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }
}
