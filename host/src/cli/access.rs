//! `airlock access allow|remove|list`: the allowlists, from the terminal only.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Subcommand;

use crate::access::Access;
use crate::host::Host;

/// What to do.
#[derive(Debug, Clone, Subcommand)]
pub enum Action {
    /// Allow a sender of an adapter to reach the session.
    Allow {
        /// Adapter name (`telegram`, `discord`, …).
        adapter: String,
        /// The sender's platform id (see `airlock access list` for recent strangers).
        sender_id: String,
    },
    /// Remove a sender from an adapter's allowlist.
    Remove {
        /// Adapter name.
        adapter: String,
        /// The sender's platform id.
        sender_id: String,
    },
    /// Allowed senders, and recent senders that were dropped.
    List,
}

/// Run one action.
pub fn run(host: &Host, action: Action) -> anyhow::Result<ExitCode> {
    let access = Access::new(host.db.clone());
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
        Action::List => {
            print!("{}", list(&access)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list(access: &Access) -> anyhow::Result<String> {
    let mut out = String::from("allowed\n");
    let allowed = access.allowed()?;
    if allowed.is_empty() {
        out.push_str("  (nobody yet; fakechat's local page is always allowed)\n");
    }
    for a in allowed {
        writeln!(out, "  {}:{}", a.adapter, a.sender_id)?;
    }
    let dropped = access.dropped()?;
    if !dropped.is_empty() {
        out.push_str("recently dropped (newest first)\n");
        for d in dropped {
            let when = crate::router::time::iso8601((d.at.max(0) as u64) * 1000);
            let handle = d.handle.map(|h| format!(" @{h}")).unwrap_or_default();
            let words = crate::mcp::sanitize::value(&d.first_words);
            writeln!(
                out,
                "  {when}  {}:{}{handle}  \"{words}\"  → airlock access allow {} {}",
                d.adapter, d.sender_id, d.adapter, d.sender_id
            )?;
        }
    }
    Ok(out)
}
