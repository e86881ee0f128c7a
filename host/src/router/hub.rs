//! The hub at work in the router: each admitted event routed to its
//! session, the notices a chat gets (its session is away, or it must pick
//! one), `/session` and `/sessions`, and the check that keeps a session's
//! tools to its own chats.

use std::collections::{BTreeMap, BTreeSet};

use super::{Admitted, Router, ToolError};
use crate::audit::{Entry, Kind};
use crate::db::DbError;
use crate::hub::{Notice, Route, name};
use crate::queue::To;

/// A batch routed: each event with its session, and what to do once it is
/// stored.
pub(super) struct Routed {
    /// The events kept, each with where it goes.
    pub kept: Vec<(Admitted, To)>,
    /// Sessions of other processes to wake after the commit.
    pub wake: BTreeSet<String>,
    /// Messages of airlock's own for chats, sent after the commit.
    pub notices: Vec<(String, String)>,
    /// Audit rows written after the commit.
    pub records: Vec<Entry>,
}

impl Router {
    /// Routes `admitted` events of `adapter`: each gets its session (in its
    /// meta too), or is held; an event for a session that already has
    /// `[delivery] max_waiting` waiting is not kept, and its sender is told.
    pub(super) fn route_batch(
        &self,
        adapter: &str,
        admitted: Vec<Admitted>,
    ) -> Result<Routed, DbError> {
        let hub = &self.hub;
        let mut live = None;
        // Bindings made by the batch's own commands are written before it
        // is routed: one read per chat serves all of its events.
        let mut routes: BTreeMap<String, Route> = BTreeMap::new();
        let mut waiting: BTreeMap<Option<String>, usize> = BTreeMap::new();
        let mut routed = Routed {
            kept: Vec::with_capacity(admitted.len()),
            wake: BTreeSet::new(),
            notices: Vec::new(),
            records: Vec::new(),
        };
        for mut a in admitted {
            let route = match routes.get(&a.chat) {
                Some(route) => route.clone(),
                None => {
                    let route = hub.route(adapter, &a.chat, &mut live)?;
                    routes.insert(a.chat.clone(), route.clone());
                    route
                }
            };
            let target = match &route {
                Route::To(s) if s == hub.me() => {
                    a.event.meta.insert("session".into(), s.clone());
                    routed.kept.push((a, To::Here));
                    continue;
                }
                Route::To(s) => Some(s.clone()),
                Route::Hold => None,
            };
            let count = match waiting.get(&target) {
                Some(n) => *n,
                None => match &target {
                    Some(s) => hub.store().waiting(s)?,
                    None => hub.store().held()?,
                },
            };
            if count >= hub.max_waiting() {
                let whose = target.as_deref().map_or_else(
                    || "held for a choice of session".to_string(),
                    |s| format!("waiting for session {s}"),
                );
                tracing::warn!(
                    adapter,
                    "an event was not kept: {count} events are {whose}, the most [delivery] \
                     max_waiting allows; the sender is told"
                );
                routed.notices.push((
                    a.chat.clone(),
                    format!(
                        "This message was not kept: {count} messages are already {whose}, the \
                         most airlock keeps. Send it again later."
                    ),
                ));
                routed.records.push(self.hub_entry(
                    adapter,
                    &a.chat,
                    format!("an event was not kept: {count} are {whose}"),
                    serde_json::json!({"event": "not kept", "session": target, "waiting": count}),
                ));
                continue;
            }
            waiting.insert(target.clone(), count + 1);
            match target {
                Some(s) => {
                    if hub.is_live(&s) {
                        routed.wake.insert(s.clone());
                    } else if hub
                        .store()
                        .first_notice(adapter, &a.chat, Notice::Away, &s)?
                    {
                        routed
                            .notices
                            .push((a.chat.clone(), away_text(&s, count + 1)));
                        routed.records.push(self.hub_entry(
                            adapter,
                            &a.chat,
                            format!("told the chat that session {s} is away"),
                            serde_json::json!({"event": "away notice", "session": s}),
                        ));
                    }
                    a.event.meta.insert("session".into(), s.clone());
                    routed.kept.push((a, To::Session(s)));
                }
                None => {
                    if hub
                        .store()
                        .first_notice(adapter, &a.chat, Notice::Held, "")?
                    {
                        let names = live.clone().unwrap_or_default();
                        routed.notices.push((a.chat.clone(), pick_text(&names)));
                        routed.records.push(
                            self.hub_entry(
                                adapter,
                                &a.chat,
                                "held an unbound chat's message and asked it to pick a session"
                                    .to_string(),
                                serde_json::json!({"event": "held", "live": names}),
                            ),
                        );
                    }
                    routed.kept.push((a, To::Held));
                }
            }
        }
        Ok(routed)
    }

    /// After a routed batch is stored: other sessions woken, notices sent,
    /// rows recorded.
    pub(super) fn after_routed(
        &self,
        adapter: &str,
        wake: BTreeSet<String>,
        notices: Vec<(String, String)>,
        records: Vec<Entry>,
    ) {
        for s in &wake {
            self.hub.wake(s);
        }
        for (chat, text) in notices {
            self.say(adapter, &chat, text);
        }
        if !records.is_empty() {
            self.record(&records);
        }
    }

    /// `/session NAME` (`Some`) or `/sessions` (`None`) typed in `chat` by
    /// `who`, an allowed sender: answered in the chat.
    pub(super) fn hub_command(&self, adapter: &str, chat: &str, who: &str, bind: Option<&str>) {
        let text = match bind {
            None => self.sessions_text(adapter, chat),
            Some(wanted) => self.bind_from_chat(adapter, chat, who, wanted),
        };
        self.say(adapter, chat, text);
    }

    fn bind_from_chat(&self, adapter: &str, chat: &str, who: &str, wanted: &str) -> String {
        let store = self.hub.store();
        let known = match store.sessions() {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!("cannot read the sessions: {e}");
                return "airlock cannot read its sessions right now; try again.".into();
            }
        };
        let wanted = wanted.to_ascii_lowercase();
        if !name::valid(&wanted) || !known.iter().any(|s| s.name == wanted) {
            let names: Vec<&str> = known.iter().map(|s| s.name.as_str()).collect();
            return format!(
                "There is no session {}. Sessions: {}. Type /session NAME with one of them.",
                crate::text::one_line(&wanted, 40),
                names.join(", ")
            );
        }
        match store.bind(adapter, chat, &wanted, who) {
            Ok(moved) => {
                self.hub.wake(&wanted);
                if wanted == self.hub.me() {
                    let _ = self.queue.catch_up();
                }
                tracing::info!(
                    adapter,
                    "chat {} bound to session {wanted} by {who}",
                    crate::text::one_line(chat, 64)
                );
                self.record(&[self.hub_entry(
                    adapter,
                    chat,
                    format!("chat bound to session {wanted}"),
                    serde_json::json!({"event": "bound", "session": wanted, "by": who, "released": moved}),
                )]);
                let state = if self.hub.is_live(&wanted) {
                    "it is running"
                } else {
                    "it is away: messages wait until it is back"
                };
                let released = match moved {
                    0 => String::new(),
                    1 => " The message that was waiting goes to it now.".into(),
                    n => format!(" The {n} messages that were waiting go to it now."),
                };
                format!("This chat now goes to session {wanted} ({state}).{released}")
            }
            Err(e) => {
                tracing::error!("cannot bind a chat: {e}");
                "airlock cannot save that right now; try again.".into()
            }
        }
    }

    /// The sessions, as a chat sees them.
    fn sessions_text(&self, adapter: &str, chat: &str) -> String {
        let store = self.hub.store();
        let (Ok(rows), Ok(bound)) = (store.sessions(), store.route_of(adapter, chat)) else {
            return "airlock cannot read its sessions right now; try again.".into();
        };
        let mut lines = vec!["Sessions:".to_string()];
        for s in &rows {
            let state = if self.hub.is_live(&s.name) {
                "live"
            } else {
                "away"
            };
            let here = if bound.as_deref() == Some(s.name.as_str()) {
                ", this chat"
            } else {
                ""
            };
            lines.push(format!(
                "• {} ({state}, {} waiting{here})",
                s.name, s.waiting
            ));
        }
        if bound.is_none() {
            lines.push("This chat is bound to no session. Type /session NAME to pick one.".into());
        }
        lines.join("\n")
    }

    /// Whether this session's tools may reach `chat` of `adapter`: its
    /// route must be this session.
    pub(super) fn check_route(&self, adapter: &str, chat: &str) -> Result<(), ToolError> {
        let mut live = None;
        let route = self
            .hub
            .route(adapter, chat, &mut live)
            .map_err(|e| ToolError::Internal(e.to_string()))?;
        match route {
            Route::To(s) if s == self.hub.me() => Ok(()),
            Route::To(s) => Err(ToolError::OtherSession {
                chat: format!("{adapter}:{chat}"),
                session: s,
            }),
            Route::Hold => Err(ToolError::Unbound {
                chat: format!("{adapter}:{chat}"),
                me: self.hub.me().to_owned(),
            }),
        }
    }

    /// This process now holds `adapter`'s platform connection (its poll, its
    /// gateway, its page): recorded, so `airlock sessions` and `/status`
    /// can say who does.
    pub fn took_connection(&self, adapter: &str) {
        let me = self.hub.me();
        let before = self
            .hub
            .store()
            .connections()
            .ok()
            .and_then(|rows| rows.into_iter().find(|c| c.adapter == adapter));
        if let Err(e) = self
            .hub
            .store()
            .hold_connection(adapter, me, std::process::id())
        {
            tracing::warn!(adapter, "cannot record who holds the connection: {e}");
        }
        let from = before
            .filter(|c| c.session != me || c.pid != std::process::id())
            .map(|c| c.session);
        let summary = match &from {
            Some(f) => format!("session {me} took over the {adapter} connection from {f}"),
            None => format!("session {me} holds the {adapter} connection"),
        };
        tracing::info!(adapter, "{summary}");
        self.record(&[Entry::new(Kind::Hub, summary)
            .adapter(adapter)
            .detail(serde_json::json!({
                "event": "connection",
                "session": me,
                "from": from,
                "pid": std::process::id(),
            }))]);
    }

    /// The hub, for an owner's `/status`: one line for a lone session,
    /// the sessions, connections, bindings and held events otherwise.
    pub(super) fn hub_status(&self) -> String {
        let store = self.hub.store();
        let me = self.hub.me();
        let rows = store.sessions().unwrap_or_default();
        let routes = store.routes().map_or(0, |r| r.len());
        let held = store.held().unwrap_or(0);
        if rows.len() <= 1 && routes == 0 && held == 0 {
            return format!("sessions: {me} (this one, the only one)");
        }
        let sessions: Vec<String> = rows
            .iter()
            .map(|s| {
                let state = if s.name == me {
                    "this one"
                } else if self.hub.is_live(&s.name) {
                    "live"
                } else {
                    "away"
                };
                format!("{} ({state}, {} waiting)", s.name, s.waiting)
            })
            .collect();
        let owners: Vec<String> = store
            .connections()
            .unwrap_or_default()
            .iter()
            .map(|c| format!("{} by {}", c.adapter, c.session))
            .collect();
        format!(
            "sessions: {}\nconnections: {}\nbound chats: {routes}, held events: {held}",
            sessions.join(", "),
            if owners.is_empty() {
                "none".to_string()
            } else {
                owners.join(", ")
            }
        )
    }

    fn hub_entry(
        &self,
        adapter: &str,
        chat: &str,
        summary: String,
        detail: serde_json::Value,
    ) -> Entry {
        Entry::new(Kind::Hub, summary)
            .adapter(adapter)
            .chat(chat)
            .detail(detail)
    }
}

/// What a chat bound to an away session is told, once per absence.
pub(super) fn away_text(session: &str, waiting: usize) -> String {
    format!(
        "Session {session} is away: its Claude Code is not running. Your messages wait for it \
         ({waiting} so far) and reach it when it is back."
    )
}

/// What an unbound chat is told when several sessions are live.
pub(super) fn pick_text(live: &[String]) -> String {
    let mut text = String::from(
        "Several Claude Code sessions are running. Pick the one this chat talks to; your \
         message waits until you do:",
    );
    for s in live {
        text.push_str(&format!("\n/session {s}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pick_message_names_every_command() {
        let text = pick_text(&["api".into(), "web".into()]);
        assert!(text.contains("\n/session api\n/session web"), "{text}");
        assert!(away_text("api", 3).contains("api is away"));
        assert!(away_text("api", 3).contains("(3 so far)"));
    }
}
