//! `airlock sessions`: the hub seen from the terminal. Which sessions the
//! state directory has seen, which of them run, who holds each platform
//! connection, which chat goes where and what waits; and binding a chat to
//! a session (or unbinding it) without typing `/session` in the chat.
//!
//! Everything goes through [`HubStore`], like the sessions themselves, so
//! the terminal and a chat's `/session` change the same thing the same way.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use super::sessions_view::{self, Connection, Listing, Session, Unstarted};
use crate::audit::{AuditStore, Entry, Kind as AuditKind};
use crate::host::Host;
use crate::hub::presence::{Presence, SESSIONS_DIR};
use crate::hub::wake::Bell;
use crate::hub::{HubStore, SqliteHub, name};

/// What to do.
#[derive(Debug, Clone, Subcommand)]
pub enum Action {
    /// Send every message of one chat to one session (its held messages too).
    Route {
        /// The chat, as ADAPTER:CHAT (like telegram:123456).
        chat: String,
        /// The session's name.
        name: String,
    },
    /// Let a chat go where unbound chats go (the only live session, or held
    /// until its sender picks one).
    Unroute {
        /// The chat, as ADAPTER:CHAT (like telegram:123456).
        chat: String,
    },
}

/// The form a chat is given in, for error messages.
const CHAT_FORM: &str = "ADAPTER:CHAT, like telegram:123456";

/// Who the terminal is, in `hub_routes.by` and audit rows.
const TERMINAL: &str = "terminal";

/// Run `action` (the listing when there is none) against the state of `host`.
pub fn run(host: &Host, action: Option<Action>, json: bool) -> anyhow::Result<ExitCode> {
    let store = SqliteHub::new(host.db.clone());
    match action {
        None => {
            let listing = gather(host, &store)?;
            if json {
                println!("{}", sessions_view::json(&listing));
            } else {
                print!("{}", sessions_view::text(&listing));
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Action::Route { chat, name }) => route(host, &store, &chat, &name),
        Some(Action::Unroute { chat }) => unroute(host, &store, &chat),
    }
}

/// Everything the hub knows, with which sessions run now.
pub(super) fn gather(host: &Host, store: &dyn HubStore) -> anyhow::Result<Listing> {
    let presence = Presence::new(host.home.sub(SESSIONS_DIR)?);
    let rows = store.sessions()?;
    let routes = store.routes()?;
    let live: Vec<bool> = rows.iter().map(|s| presence.is_live(&s.name)).collect();
    // A connection is held now when its session runs as the process that
    // took it; otherwise it was held last by that session.
    let connections: Vec<Connection> = store
        .connections()?
        .into_iter()
        .map(|c| {
            let held = rows
                .iter()
                .zip(&live)
                .any(|(s, &l)| l && s.name == c.session && s.pid == c.pid);
            Connection { row: c, held }
        })
        .collect();
    let sessions = rows
        .into_iter()
        .zip(live)
        .map(|(row, live)| Session {
            owns: connections
                .iter()
                .filter(|c| c.held && c.row.session == row.name)
                .map(|c| c.row.adapter.clone())
                .collect(),
            chats: routes
                .iter()
                .filter(|r| r.session == row.name)
                .map(|r| format!("{}:{}", r.adapter, r.chat))
                .collect(),
            live,
            row,
        })
        .collect::<Vec<_>>();
    // Chats bound to a name no session has run under: their events wait too.
    let mut unstarted: Vec<Unstarted> = Vec::new();
    for r in &routes {
        if sessions.iter().any(|s| s.row.name == r.session)
            || unstarted.iter().any(|u| u.name == r.session)
        {
            continue;
        }
        unstarted.push(Unstarted {
            name: r.session.clone(),
            waiting: store.waiting(&r.session)?,
        });
    }
    Ok(Listing {
        sessions,
        connections,
        routes,
        held: store.held()?,
        held_chats: store
            .held_chats()?
            .into_iter()
            .map(|(adapter, chat, n)| (format!("{adapter}:{chat}"), n))
            .collect(),
        unstarted,
    })
}

/// `ADAPTER:CHAT` split at the first `:`; both parts must be there.
pub(super) fn parse_chat(text: &str) -> anyhow::Result<(&str, &str)> {
    match text.split_once(':') {
        Some((adapter, chat)) if !adapter.is_empty() && !chat.is_empty() => Ok((adapter, chat)),
        _ => anyhow::bail!(
            "{:?} is not a chat: give it as {CHAT_FORM} (the adapter's name, a colon, the \
             chat's id on the platform)",
            crate::text::one_line(text, 80)
        ),
    }
}

fn route(host: &Host, store: &dyn HubStore, chat: &str, wanted: &str) -> anyhow::Result<ExitCode> {
    let (adapter, chat) = parse_chat(chat)?;
    let name = name::parse(wanted)?;
    let running = super::access::running_adapters(host);
    if !running.iter().any(|a| a == adapter) {
        eprintln!(
            "airlock: warning: no adapter {} is enabled here (enabled: {}); check the spelling",
            crate::text::one_line(adapter, 40),
            if running.is_empty() {
                "none".to_string()
            } else {
                running.join(", ")
            }
        );
    }
    let known = store.sessions()?.iter().any(|s| s.name == name);
    if !known {
        eprintln!(
            "airlock: warning: no session {name} has run yet; its chat's messages wait until one does"
        );
    }
    let before = store.route_of(adapter, chat)?;
    let released = store.bind(adapter, chat, &name, TERMINAL)?;
    Bell::new(host.home.path().join(SESSIONS_DIR)).ring(&name);
    record(
        host,
        adapter,
        chat,
        format!("chat bound to session {name}"),
        json!({"event": "bound", "session": name, "adapter": adapter, "chat": chat,
               "by": TERMINAL, "released": released, "was": before}),
    );
    tracing::info!(adapter, "chat bound to session {name} in the terminal");
    let shown = sessions_view::chat_name(adapter, chat);
    let live = Presence::new(host.home.sub(SESSIONS_DIR)?).is_live(&name);
    let state = match (known, live) {
        (_, true) => ", which is live",
        (true, false) => ", which is away: its messages wait until it runs again",
        (false, false) => "",
    };
    let was = match before.as_deref() {
        Some(b) if b == name => " (it already did)".to_string(),
        Some(b) => format!(" (it went to {b})"),
        None => String::new(),
    };
    println!("{shown} now goes to session {name}{was}{state}");
    if released > 0 {
        let what = sessions_view::events(released);
        if live {
            println!("{what} held for this chat went to {name}");
        } else {
            let verb = if released == 1 { "waits" } else { "wait" };
            println!("{what} held for this chat now {verb} for {name}");
        }
    }
    println!(
        "`airlock sessions unroute {}` unbinds it",
        crate::text::shell_quote(&shown)
    );
    Ok(ExitCode::SUCCESS)
}

fn unroute(host: &Host, store: &dyn HubStore, chat: &str) -> anyhow::Result<ExitCode> {
    let (adapter, chat) = parse_chat(chat)?;
    let shown = sessions_view::chat_name(adapter, chat);
    let before = store.route_of(adapter, chat)?;
    if !store.unbind(adapter, chat)? {
        println!("{shown} was bound to no session; nothing changed");
        return Ok(ExitCode::SUCCESS);
    }
    let session = before.unwrap_or_default();
    record(
        host,
        adapter,
        chat,
        format!("chat unbound from session {session}"),
        json!({"event": "unbound", "session": session, "adapter": adapter, "chat": chat,
               "by": TERMINAL}),
    );
    tracing::info!(
        adapter,
        "chat unbound from session {session} in the terminal"
    );
    println!(
        "{shown} no longer goes to session {session}; its next messages go to the only live \
         session, or are held until its sender picks one with /session NAME"
    );
    Ok(ExitCode::SUCCESS)
}

/// The change's audit row, with the command line that made it. A failure
/// to record is said on stderr; the change stands.
fn record(host: &Host, adapter: &str, chat: &str, what: String, mut detail: serde_json::Value) {
    let command = super::record::command_line();
    detail["command"] = json!(command);
    let entry = Entry::new(AuditKind::Hub, format!("{what}: {command}"))
        .adapter(adapter)
        .chat(chat)
        .detail(detail);
    let store = AuditStore::new(host.db.clone(), &host.config.audit, Some(TERMINAL.into()));
    if let Err(e) = store.append(&[entry]) {
        eprintln!("airlock: done, but the audit trail could not record it: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chats_are_split_at_the_first_colon() {
        assert_eq!(parse_chat("telegram:5").unwrap(), ("telegram", "5"));
        assert_eq!(
            parse_chat("matrix:!room:example.org").unwrap(),
            ("matrix", "!room:example.org")
        );
        for bad in ["telegram", ":5", "telegram:", "", ":"] {
            let e = parse_chat(bad).unwrap_err().to_string();
            assert!(e.contains("telegram:123456"), "{bad:?}: {e}");
        }
    }
}
