//! What `airlock sessions` prints: aligned columns for people, and one JSON
//! document for scripts (its field names are kept stable).

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::hub::store::{ConnectionRow, RouteRow, SessionRow};

/// A session as listed: the stored row, whether it runs, what it holds.
#[derive(Clone, Debug)]
pub(super) struct Session {
    /// What the hub stored.
    pub row: SessionRow,
    /// Whether its process runs now.
    pub live: bool,
    /// The platform connections its process holds now.
    pub owns: Vec<String>,
    /// The chats bound to it, as `ADAPTER:CHAT`.
    pub chats: Vec<String>,
}

/// A platform connection and whether its holder still holds it.
#[derive(Clone, Debug)]
pub(super) struct Connection {
    /// Who took it last.
    pub row: ConnectionRow,
    /// Whether that session's process runs now (else it was held last).
    pub held: bool,
}

/// A name chats are bound to that no session has run under yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Unstarted {
    /// The name.
    pub name: String,
    /// Events waiting for it.
    pub waiting: usize,
}

/// Everything `airlock sessions` and `airlock doctor` show of the hub.
#[derive(Clone, Debug)]
pub(super) struct Listing {
    /// Every session seen, by name.
    pub sessions: Vec<Session>,
    /// Every platform connection taken so far.
    pub connections: Vec<Connection>,
    /// Every bound chat.
    pub routes: Vec<RouteRow>,
    /// Events held because their chat is bound to no session.
    pub held: usize,
    /// The chats they were held for (`adapter:chat`) and how many each.
    pub held_chats: Vec<(String, usize)>,
    /// Names bound but never run.
    pub unstarted: Vec<Unstarted>,
}

/// The held chats, at most eight named: `telegram:5 (2), …`.
pub(super) fn held_list(chats: &[(String, usize)]) -> String {
    let mut named: Vec<String> = chats
        .iter()
        .take(8)
        .map(|(chat, n)| format!("{} ({n})", crate::text::one_line(chat, 60)))
        .collect();
    if chats.len() > 8 {
        named.push(format!("{} more chats", chats.len() - 8));
    }
    named.join(", ")
}

/// `live` or `away`.
pub(super) fn state(live: bool) -> &'static str {
    if live { "live" } else { "away" }
}

/// A chat as `ADAPTER:CHAT`, on one line (the id comes from the platform).
pub(super) fn chat_name(adapter: &str, chat: &str) -> String {
    format!(
        "{}:{}",
        crate::text::one_line(adapter, 40),
        crate::text::one_line(chat, 80)
    )
}

/// Unix seconds as local `YYYY-MM-DD HH:MM:SS`.
fn local(secs: i64) -> String {
    super::audit_view::time(secs.saturating_mul(1000))
}

/// `n` events (or event).
pub(super) fn events(n: usize) -> String {
    if n == 1 {
        "1 event".into()
    } else {
        format!("{n} events")
    }
}

/// `n` events wait (or one waits).
pub(super) fn wait(n: usize) -> String {
    if n == 1 {
        "1 event waits".into()
    } else {
        format!("{n} events wait")
    }
}

/// Rows under headers, each column as wide as its widest cell; columns in
/// `right` are right-aligned; the last column is not padded.
fn table(headers: &[&str], right: &[usize], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        let cells: Vec<&str> = cells.collect();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            let last = i + 1 == cells.len();
            if right.contains(&i) {
                let _ = write!(out, "{cell:>w$}", w = widths[i]);
            } else if last {
                out.push_str(cell);
            } else {
                let _ = write!(out, "{cell:<w$}", w = widths[i]);
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(&mut headers.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// The listing for people.
pub(super) fn text(l: &Listing) -> String {
    let mut out = String::new();
    if l.sessions.is_empty() {
        out.push_str(
            "no session has run yet: each `airlock serve` (each Claude Code with airlock) is one, \
             named after its directory or by --session NAME\n",
        );
    } else {
        let rows: Vec<Vec<String>> = l
            .sessions
            .iter()
            .map(|s| {
                let stopped = match (s.live, s.row.stopped_at) {
                    (true, _) => "-".to_string(),
                    (false, Some(at)) => local(at),
                    (false, None) => "unclean".to_string(),
                };
                vec![
                    s.row.name.clone(),
                    state(s.live).into(),
                    s.row.pid.to_string(),
                    local(s.row.started_at),
                    stopped,
                    s.row.waiting.to_string(),
                    s.chats.len().to_string(),
                    if s.owns.is_empty() {
                        "-".into()
                    } else {
                        s.owns.join(",")
                    },
                    crate::text::one_line(&s.row.cwd, 200),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "SESSION",
                "STATE",
                "PID",
                "STARTED",
                "STOPPED",
                "WAITING",
                "CHATS",
                "HOLDS",
                "DIRECTORY",
            ],
            &[2, 5, 6],
            &rows,
        ));
    }
    for c in l.connections.iter().filter(|c| !c.held) {
        let _ = writeln!(
            out,
            "{}: no running session holds this connection (last: {}, pid {}, since {})",
            c.row.adapter,
            c.row.session,
            c.row.pid,
            local(c.row.since)
        );
    }
    if !l.routes.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = l
            .routes
            .iter()
            .map(|r| {
                let never = l.unstarted.iter().any(|u| u.name == r.session);
                vec![
                    chat_name(&r.adapter, &r.chat),
                    if never {
                        format!("{} (never run)", r.session)
                    } else {
                        r.session.clone()
                    },
                    local(r.at),
                    crate::text::one_line(&r.by, 60),
                ]
            })
            .collect();
        out.push_str(&table(&["CHAT", "SESSION", "BOUND", "BY"], &[], &rows));
    }
    let mut notes = Vec::new();
    for s in l.sessions.iter().filter(|s| !s.live && s.row.waiting > 0) {
        notes.push(format!(
            "{} for {}, which is away: delivered when it starts again",
            wait(s.row.waiting),
            s.row.name
        ));
    }
    for u in l.unstarted.iter().filter(|u| u.waiting > 0) {
        notes.push(format!(
            "{} for {}, which has never run: `airlock serve --session {}` would receive it all",
            wait(u.waiting),
            u.name,
            u.name
        ));
    }
    if l.held > 0 {
        notes.push(format!(
            "{} held for chats bound to no session while several run ({}); \
             `airlock sessions route ADAPTER:CHAT NAME` hands a chat's to a session",
            events(l.held),
            held_list(&l.held_chats)
        ));
    }
    if !notes.is_empty() {
        out.push('\n');
        for n in notes {
            out.push_str(&n);
            out.push('\n');
        }
    }
    out
}

/// The listing for scripts: one document, times in unix seconds.
pub(super) fn json(l: &Listing) -> Value {
    json!({
        "sessions": l.sessions.iter().map(|s| json!({
            "name": s.row.name,
            "state": state(s.live),
            "pid": s.row.pid,
            "cwd": s.row.cwd,
            "started_at": s.row.started_at,
            "stopped_at": s.row.stopped_at,
            "waiting": s.row.waiting,
            "owns": s.owns,
            "chats": s.chats,
        })).collect::<Vec<_>>(),
        "connections": l.connections.iter().map(|c| json!({
            "adapter": c.row.adapter,
            "session": c.row.session,
            "pid": c.row.pid,
            "since": c.row.since,
            "held": c.held,
        })).collect::<Vec<_>>(),
        "routes": l.routes,
        "held": l.held,
        "held_chats": l.held_chats.iter().map(|(chat, n)| json!({
            "chat": chat,
            "held": n,
        })).collect::<Vec<_>>(),
        "unstarted": l.unstarted.iter().map(|u| json!({
            "name": u.name,
            "waiting": u.waiting,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(name: &str, live: bool, waiting: usize) -> Session {
        Session {
            row: SessionRow {
                name: name.into(),
                cwd: format!("/srv/{name}"),
                pid: 4100,
                started_at: 60,
                stopped_at: (!live).then_some(120),
                waiting,
            },
            live,
            owns: if live {
                vec!["telegram".into()]
            } else {
                vec![]
            },
            chats: vec![format!("telegram:{waiting}")],
        }
    }

    fn listing() -> Listing {
        Listing {
            sessions: vec![session("api", true, 0), session("web-frontend", false, 12)],
            connections: vec![
                Connection {
                    row: ConnectionRow {
                        adapter: "telegram".into(),
                        session: "api".into(),
                        pid: 4100,
                        since: 60,
                    },
                    held: true,
                },
                Connection {
                    row: ConnectionRow {
                        adapter: "fakechat".into(),
                        session: "web-frontend".into(),
                        pid: 4100,
                        since: 60,
                    },
                    held: false,
                },
            ],
            routes: vec![
                RouteRow {
                    adapter: "telegram".into(),
                    chat: "5".into(),
                    session: "api".into(),
                    at: 0,
                    by: "terminal".into(),
                },
                RouteRow {
                    adapter: "telegram".into(),
                    chat: "-1001".into(),
                    session: "docs".into(),
                    at: 0,
                    by: "alice\nbob".into(),
                },
            ],
            held: 2,
            held_chats: vec![("fakechat:9".into(), 2)],
            unstarted: vec![Unstarted {
                name: "docs".into(),
                waiting: 1,
            }],
        }
    }

    #[test]
    fn sessions_are_shown_in_aligned_columns() {
        let text = text(&listing());
        let want = "\
SESSION       STATE   PID  STARTED              STOPPED              WAITING  CHATS  HOLDS     DIRECTORY
api           live   4100  1970-01-01 00:01:00  -                          0      1  telegram  /srv/api
web-frontend  away   4100  1970-01-01 00:01:00  1970-01-01 00:02:00       12      1  -         /srv/web-frontend
fakechat: no running session holds this connection (last: web-frontend, pid 4100, since 1970-01-01 00:01:00)

CHAT            SESSION           BOUND                BY
telegram:5      api               1970-01-01 00:00:00  terminal
telegram:-1001  docs (never run)  1970-01-01 00:00:00  alice bob

12 events wait for web-frontend, which is away: delivered when it starts again
1 event waits for docs, which has never run: `airlock serve --session docs` would receive it all
2 events held for chats bound to no session while several run (fakechat:9 (2)); `airlock sessions route ADAPTER:CHAT NAME` hands a chat's to a session
";
        assert_eq!(text, want, "\n{text}");
    }

    #[test]
    fn an_empty_hub_says_how_sessions_come() {
        let empty = Listing {
            sessions: vec![],
            connections: vec![],
            routes: vec![],
            held: 0,
            held_chats: Vec::new(),
            unstarted: vec![],
        };
        assert!(text(&empty).starts_with("no session has run yet"));
        assert_eq!(
            json(&empty),
            json!({"sessions": [], "connections": [], "routes": [], "held": 0, "held_chats": [], "unstarted": []})
        );
    }

    #[test]
    fn json_keeps_its_field_names() {
        let v = json(&listing());
        assert_eq!(
            v["sessions"][0],
            json!({"name": "api", "state": "live", "pid": 4100, "cwd": "/srv/api",
                   "started_at": 60, "stopped_at": null, "waiting": 0,
                   "owns": ["telegram"], "chats": ["telegram:0"]})
        );
        assert_eq!(v["sessions"][1]["state"], "away");
        assert_eq!(v["sessions"][1]["stopped_at"], 120);
        assert_eq!(
            v["connections"][1],
            json!({"adapter": "fakechat", "session": "web-frontend", "pid": 4100,
                   "since": 60, "held": false})
        );
        assert_eq!(
            v["routes"][0],
            json!({"adapter": "telegram", "chat": "5", "session": "api", "at": 0,
                   "by": "terminal"})
        );
        assert_eq!(v["held"], 2);
        assert_eq!(v["unstarted"], json!([{"name": "docs", "waiting": 1}]));
    }
}
