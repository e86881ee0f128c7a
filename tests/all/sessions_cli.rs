//! `airlock sessions` and the hub's `airlock doctor` lines, driven as a user
//! would. The hub's state is planted straight in `airlock.db` and the
//! sessions directory, as running sessions leave it: a session row, its
//! lock held (live) or not (away), a connection taken, events held for a
//! chat bound to no session.

use std::fs::File;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

/// `airlock ARGS`: exit code, stdout, stderr.
fn run(home: &TempHome, args: &[&str]) -> (Option<i32>, String, String) {
    let out = home.airlock(args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `airlock ARGS`, which must succeed: stdout and stderr.
fn ok(home: &TempHome, args: &[&str]) -> (String, String) {
    let (code, out, err) = run(home, args);
    assert_eq!(code, Some(0), "airlock {args:?}:\n{out}{err}");
    (out, err)
}

/// `airlock sessions --json`, parsed.
fn listing(home: &TempHome) -> Value {
    let (out, _) = ok(home, &["sessions", "--json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The state directory's database (migrated by a first command).
fn db(home: &TempHome) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(home.path().join("airlock.db")).unwrap();
    conn.busy_timeout(SOON).unwrap();
    conn
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A session as `airlock serve` records it; `stopped` if it stopped cleanly.
fn plant_session(conn: &rusqlite::Connection, name: &str, pid: u32, stopped: bool) {
    conn.execute(
        "INSERT INTO hub_sessions (name, cwd, pid, started_at, stopped_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        rusqlite::params![
            name,
            format!("/srv/{name}"),
            pid,
            now() - 60,
            stopped.then(now)
        ],
    )
    .unwrap();
}

/// Holds `name`'s session lock, as its running process would.
fn hold_lock(home: &TempHome, name: &str) -> File {
    let dir = home.path().join("sessions");
    std::fs::create_dir_all(&dir).unwrap();
    let file = File::create(dir.join(format!("{name}.lock"))).unwrap();
    file.try_lock().unwrap();
    file
}

/// An event of `chat` held because its chat is bound to no session.
fn plant_held(conn: &rusqlite::Connection, adapter: &str, chat: &str) {
    let line = json!({
        "jsonrpc": "2.0",
        "method": "notifications/claude/channel",
        "params": {"content": "hello", "meta": {"chat_id": format!("{adapter}:{chat}")}},
    })
    .to_string();
    conn.execute(
        "INSERT INTO events (adapter, line, accepted_at, chat) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![adapter, line, now(), chat],
    )
    .unwrap();
}

/// Every hub row of the audit trail, with `detail` parsed.
fn hub_rows(home: &TempHome) -> Vec<Value> {
    let (out, _) = ok(home, &["audit", "export", "--jsonl"]);
    out.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["kind"] == "hub")
        .map(|mut r| {
            r["detail"] = serde_json::from_str(r["detail"].as_str().unwrap()).unwrap();
            r
        })
        .collect()
}

#[test]
fn sessions_route_and_unroute_chats_and_list_what_waits() {
    let home = TempHome::new();
    assert_eq!(
        listing(&home),
        json!({"sessions": [], "connections": [], "routes": [], "held": 0, "held_chats": [], "unstarted": []})
    );
    let (text, _) = ok(&home, &["sessions"]);
    assert!(text.starts_with("no session has run yet"), "{text}");

    // api runs (this process holds its lock) and holds fakechat's
    // connection; web ran and stopped; three events wait for a pick.
    let me = std::process::id();
    let conn = db(&home);
    plant_session(&conn, "api", me, false);
    plant_session(&conn, "web", me + 1, true);
    let _api = hold_lock(&home, "api");
    conn.execute(
        "INSERT INTO hub_connections (adapter, session, pid, since) VALUES ('fakechat', 'api', ?1, ?2)",
        rusqlite::params![me, now()],
    )
    .unwrap();
    plant_held(&conn, "fakechat", "5");
    plant_held(&conn, "fakechat", "5");
    plant_held(&conn, "fakechat", "6");
    let l = listing(&home);
    assert_eq!(l["held"], 3, "{l}");
    assert_eq!(
        l["held_chats"],
        json!([{"chat": "fakechat:5", "held": 2}, {"chat": "fakechat:6", "held": 1}])
    );
    assert_eq!(l["sessions"][0]["name"], "api");
    assert_eq!(l["sessions"][0]["state"], "live");
    assert_eq!(l["sessions"][0]["owns"], json!(["fakechat"]));
    assert_eq!(l["sessions"][1]["state"], "away");
    assert!(l["sessions"][1]["stopped_at"].is_i64(), "{l}");

    // Binding hands the chat's held events over and wakes the session.
    let sock = home.path().join("sessions").join("api.sock");
    let bell = UnixDatagram::bind(&sock).unwrap();
    bell.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (out, err) = ok(&home, &["sessions", "route", "fakechat:5", "api"]);
    assert!(
        out.contains("fakechat:5 now goes to session api, which is live\n"),
        "{out}"
    );
    assert!(
        out.contains("2 events held for this chat went to api"),
        "{out}"
    );
    assert!(!err.contains("warning"), "{err}");
    let mut buf = [0u8; 8];
    assert!(bell.recv(&mut buf).unwrap() > 0, "the session was woken");
    let l = listing(&home);
    assert_eq!(l["held"], 1, "{l}");
    assert_eq!(l["held_chats"], json!([{"chat": "fakechat:6", "held": 1}]));
    assert_eq!(l["sessions"][0]["waiting"], 2, "{l}");
    assert_eq!(l["sessions"][0]["chats"], json!(["fakechat:5"]));
    assert_eq!(l["routes"][0]["session"], "api");
    assert_eq!(l["routes"][0]["by"], "terminal");
    let waiting_line: String = conn
        .query_row(
            "SELECT line FROM events WHERE session = 'api' LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let v: Value = serde_json::from_str(&waiting_line).unwrap();
    assert_eq!(v["params"]["meta"]["session"], "api", "{v}");

    // A name nothing has run under yet: allowed, with a warning.
    let (out, err) = ok(&home, &["sessions", "route", "fakechat:6", "docs"]);
    assert!(
        err.contains("no session docs has run yet; its chat's messages wait until one does"),
        "{err}"
    );
    assert!(
        out.contains("1 event held for this chat now waits for docs"),
        "{out}"
    );
    let l = listing(&home);
    assert_eq!(l["held"], 0);
    assert_eq!(l["unstarted"], json!([{"name": "docs", "waiting": 1}]));

    // The table for people.
    let (text, _) = ok(&home, &["sessions"]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("SESSION  STATE  ")
            && lines[0].contains(" PID  STARTED ")
            && lines[0].ends_with("WAITING  CHATS  HOLDS     DIRECTORY"),
        "{text}"
    );
    assert!(lines[1].starts_with("api      live   "), "{text}");
    assert!(lines[1].ends_with("2      1  fakechat  /srv/api"), "{text}");
    assert!(lines[2].starts_with("web      away   "), "{text}");
    assert!(
        text.contains("\nCHAT        SESSION           BOUND  ")
            && text.contains("\nfakechat:5  api               ")
            && text.contains("\nfakechat:6  docs (never run)  "),
        "{text}"
    );
    assert!(
        text.contains("1 event waits for docs, which has never run"),
        "{text}"
    );

    // Unrouting, and unrouting what is not bound.
    let (out, _) = ok(&home, &["sessions", "unroute", "fakechat:5"]);
    assert!(
        out.contains("fakechat:5 no longer goes to session api"),
        "{out}"
    );
    let (out, _) = ok(&home, &["sessions", "unroute", "fakechat:5"]);
    assert!(
        out.contains("was bound to no session; nothing changed"),
        "{out}"
    );
    let l = listing(&home);
    assert_eq!(l["routes"].as_array().unwrap().len(), 1, "{l}");
    assert_eq!(l["sessions"][0]["chats"], json!([]));
    assert_eq!(l["sessions"][0]["waiting"], 2, "what was handed over stays");

    // One audit row per change, with the command that made it.
    let rows = hub_rows(&home);
    let details: Vec<&Value> = rows.iter().map(|r| &r["detail"]).collect();
    assert_eq!(rows.len(), 3, "{rows:#?}");
    for (row, (event, session, chat)) in rows.iter().zip([
        ("bound", "api", "5"),
        ("bound", "docs", "6"),
        ("unbound", "api", "5"),
    ]) {
        let d = &row["detail"];
        assert_eq!(d["event"], event, "{details:?}");
        assert_eq!(d["session"], session, "{details:?}");
        assert_eq!(d["adapter"], "fakechat", "{details:?}");
        assert_eq!(d["chat"], chat, "{details:?}");
        assert_eq!(row["adapter"], "fakechat", "{row}");
        assert_eq!(row["chat"], chat, "{row}");
        assert_eq!(row["session"], "terminal", "{row}");
        assert!(
            d["command"]
                .as_str()
                .unwrap()
                .starts_with("airlock sessions "),
            "{row}"
        );
    }
    assert_eq!(rows[0]["detail"]["released"], 2);
}

#[test]
fn bad_names_and_chats_are_refused_with_the_fix() {
    let home = TempHome::new();
    for (args, says) in [
        (
            &["sessions", "route", "fakechat:5", "Not Good"][..],
            "use 1 to 40 characters from a-z, 0-9",
        ),
        (
            &["sessions", "route", "fakechat:5", "_x"],
            "starting with a letter",
        ),
        (&["sessions", "route", "fakechat", "api"], "telegram:123456"),
        (&["sessions", "route", ":5", "api"], "telegram:123456"),
        (
            &["sessions", "route", "fakechat:", "api"],
            "telegram:123456",
        ),
        (&["sessions", "unroute", "fakechat"], "telegram:123456"),
    ] {
        let (code, out, err) = run(&home, args);
        assert_eq!(code, Some(2), "{args:?}: {out}{err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let (code, _, _) = run(&home, &["sessions", "--json", "route", "fakechat:5", "api"]);
    assert_ne!(code, Some(0), "--json belongs to the listing");
    assert_eq!(listing(&home)["routes"], json!([]));
    assert!(hub_rows(&home).is_empty());
    // A misspelt adapter is bound all the same, with a warning.
    let (_, err) = ok(&home, &["sessions", "route", "fakechta:5", "api"]);
    assert!(
        err.contains("no adapter fakechta is enabled here (enabled: fakechat)"),
        "{err}"
    );
}

#[test]
fn doctor_shows_the_hub_and_warns_of_what_waits() {
    let home = TempHome::new();
    // Fakechat on a port of its own, so a busy default port fails nothing here.
    let [port] = free_ports::<1>();
    home.config(&format!(
        "[components.fakechat]\nsettings = {{ port = \"{port}\" }}\n"
    ));
    let (out, _) = ok(&home, &["doctor"]);
    assert!(out.contains("ok   no session has run yet"), "{out}");

    let me = std::process::id();
    let conn = db(&home);
    plant_session(&conn, "api", me, false);
    plant_session(&conn, "web", me + 1, true);
    let _api = hold_lock(&home, "api");
    conn.execute(
        "INSERT INTO hub_connections (adapter, session, pid, since) VALUES ('fakechat', 'api', ?1, ?2)",
        rusqlite::params![me, now()],
    )
    .unwrap();
    plant_held(&conn, "fakechat", "5");
    plant_held(&conn, "fakechat", "6");
    ok(&home, &["sessions", "route", "fakechat:6", "web"]);
    plant_held(&conn, "fakechat", "7");
    let (out, _) = ok(&home, &["doctor"]);
    for line in [
        "ok   sessions: 1 live (api), 1 away (web)",
        "ok   fakechat: connection held by session api (pid ",
        "ok   1 chat bound: fakechat:6 → web",
        "WARN 1 event waits for session web, which is away: start its Claude Code again (it last ran in /srv/web)",
        "WARN 2 events held for chats bound to no session while several run",
    ] {
        assert!(out.contains(line), "no {line:?} in:\n{out}");
    }
    assert!(
        out.contains("airlock sessions route ADAPTER:CHAT NAME"),
        "{out}"
    );
}
