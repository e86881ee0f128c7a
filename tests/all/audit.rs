//! `airlock audit` through the real binary, on the record a real fakechat
//! session wrote: the chain verifies, and so does its export on its own; an
//! edited, deleted or swapped row is named, and a cut tail is found with the
//! head serve printed at shutdown; search reads message text only with
//! `content = "full"`; `tail -f` in a second process sees a message live.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::session::*;
use crate::support::*;

/// What serve prints on stderr when it stops.
const SHUTDOWN_HEAD: &str = "audit trail head at shutdown: ";

/// A fakechat state directory with `extra` lines in its config.
fn fakechat_home_with(extra: &str) -> (TempHome, u16) {
    let home = TempHome::new();
    let [port] = free_ports();
    home.config(&format!(
        "[components.fakechat]\nsettings = {{ port = \"{port}\" }}\n{extra}\n"
    ));
    (home, port)
}

/// Runs a session on `home`: each of `texts` typed on the page and
/// delivered, one reply, then a clean stop. Returns the `HASH@ID` serve
/// printed at shutdown.
async fn exchange(home: &TempHome, port: u16, texts: &[&str]) -> String {
    let mut session = Session::start(home).await;
    let token = session.log.token(port).await;
    for text in texts {
        page_send(port, &token, text).await;
        let event = session.event().await;
        assert_eq!(event["content"], *text, "{event}");
    }
    let (is_error, text) = outcome(
        &session
            .call("reply", json!({"chat_id": "fakechat:web", "text": "on it"}))
            .await,
    );
    assert!(!is_error, "{text}");
    let log = session.log.clone();
    session.close().await;
    let deadline = Instant::now() + SOON;
    loop {
        let text = log.text();
        if let Some(at) = text.find(SHUTDOWN_HEAD) {
            let head: String = text[at + SHUTDOWN_HEAD.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '@')
                .collect();
            assert!(head.contains('@'), "{text}");
            return head;
        }
        assert!(
            Instant::now() < deadline,
            "serve printed no head at shutdown:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fresh state directory holding a copy of `home`'s config and database.
pub(crate) fn copy_of(home: &TempHome) -> TempHome {
    let copy = TempHome::new();
    std::fs::create_dir_all(copy.path()).unwrap();
    for entry in std::fs::read_dir(home.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "airlock.toml" || name.starts_with("airlock.db") {
            std::fs::copy(&path, copy.path().join(&name)).unwrap();
        }
    }
    copy
}

/// Runs `sql` on `home`'s database as an attacker with shell access
/// would: with the `sqlite3` CLI, which this machine has (the test crate
/// has no SQLite binding of its own to add for it). Where the CLI is
/// missing, the same SQL goes through the host's own connection.
pub(crate) fn tamper(home: &TempHome, sql: &str) {
    let db = home.path().join("airlock.db");
    if Path::new("/usr/bin/sqlite3").exists() {
        let out = std::process::Command::new("/usr/bin/sqlite3")
            .arg(&db)
            .arg(sql)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sqlite3 {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        home.host().db.lock().execute_batch(sql).unwrap();
    }
}

/// `airlock audit verify ARGS` on `home`, expected to fail: its stdout.
async fn verify_fails(home: &TempHome, args: &[&str]) -> String {
    let mut all = vec!["audit", "verify"];
    all.extend_from_slice(args);
    let (code, out, err) = cli(home, &all).await;
    assert_eq!(code, Some(1), "airlock {all:?}:\n{out}{err}");
    out
}

#[tokio::test]
async fn a_real_session_verifies_and_so_does_its_export() {
    let (home, port) = fakechat_home_with("");
    let head = exchange(&home, port, &["first", "second", "third"]).await;

    let status = cli_json(&home, &["audit", "status"]).await;
    let rows = status["rows"].as_i64().unwrap();
    assert!(rows >= 7, "{status}");
    if status["head"] != head.as_str() {
        let last = cli_ok(&home, &["audit", "tail", "-n", "4", "--json"]).await;
        panic!("the checkpoint {head} is not the head {status}:\n{last}");
    }
    assert_eq!(status["last_checkpoint"], head.as_str());
    assert_eq!(status["content"], "digest");
    assert_eq!(status["otlp_endpoint"], Value::Null);

    let out = cli_ok(&home, &["audit", "verify"]).await;
    assert_eq!(out, format!("verified {rows} rows up to {head}\n"));
    let out = cli_ok(&home, &["audit", "verify", "--head", &head]).await;
    assert!(
        out.contains("the hash the checkpoint kept elsewhere recorded"),
        "{out}"
    );

    // The export: one row a line, every id once, oldest first, chain fields in.
    let export = cli_ok(&home, &["audit", "export", "--jsonl"]).await;
    let lines: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len() as i64, rows);
    for (i, row) in lines.iter().enumerate() {
        assert_eq!(row["id"], i as i64 + 1, "{row}");
        assert_eq!(row["hash"].as_str().unwrap().len(), 64, "{row}");
        assert!(
            row["prev_hash"].is_string() && row["detail"].is_string(),
            "{row}"
        );
    }
    let kinds: Vec<&str> = lines.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    for kind in ["server", "inbound", "tool", "checkpoint"] {
        assert!(kinds.contains(&kind), "no {kind} row: {kinds:?}");
    }
    let file = home.dir.path().join("export.jsonl");
    let file_arg = file.to_str().unwrap();
    cli_ok(&home, &["audit", "export", "--jsonl", "--output", file_arg]).await;
    assert_eq!(std::fs::read_to_string(&file).unwrap(), export);
    let out = cli_ok(&home, &["audit", "verify", "--file", file_arg]).await;
    assert_eq!(out, format!("verified {rows} rows up to {head}\n"));
    let out = cli_ok(
        &home,
        &["audit", "verify", "--file", file_arg, "--head", &head],
    )
    .await;
    assert!(out.starts_with(&format!("verified {rows} rows")), "{out}");

    // An export that starts later verifies from its first line, on trust.
    let tail: String = export.lines().skip(3).map(|l| format!("{l}\n")).collect();
    let later = home.dir.path().join("later.jsonl");
    std::fs::write(&later, tail).unwrap();
    let out = cli_ok(
        &home,
        &["audit", "verify", "--file", later.to_str().unwrap()],
    )
    .await;
    assert!(
        out.starts_with(&format!(
            "verified {} rows up to {head}, starting at row 4",
            rows - 3
        )) && out.contains("taken on trust"),
        "{out}"
    );

    // One row in full, and a row that is not there.
    let reply = cli_json(&home, &["audit", "search", "--kind", "tool"]).await;
    let reply = &reply.as_array().unwrap()[0];
    assert!(
        reply["summary"]
            .as_str()
            .unwrap()
            .starts_with("reply to fakechat:web"),
        "{reply}"
    );
    let id = reply["id"].to_string();
    let shown = cli_json(&home, &["audit", "show", &id]).await;
    assert_eq!(&shown, reply);
    let text = cli_ok(&home, &["audit", "show", &id]).await;
    assert!(text.starts_with(&format!("row {id} · tool · ")), "{text}");
    assert!(text.contains("  detail         {\n"), "{text}");
    let (code, _, err) = cli(&home, &["audit", "show", "99999"]).await;
    assert_eq!(code, Some(1));
    assert!(
        err.contains(&format!(
            "no audit row 99999: the trail holds rows 1 to {rows}"
        )),
        "{err}"
    );

    let (code, _, err) = cli(&home, &["audit", "search", "--kind", "message"]).await;
    assert_eq!(code, Some(2));
    assert!(err.contains("use one of: inbound, tool, access"), "{err}");
    let table = cli_ok(&home, &["audit", "tail", "-n", "3"]).await;
    let table: Vec<&str> = table.lines().collect();
    assert_eq!(table.len(), 4, "{table:?}");
    assert!(
        table[0].contains("TIME (local)") && !table[0].contains('\x1b'),
        "no colour off a TTY"
    );
    assert!(table[3].contains("checkpoint"), "{table:?}");
}

#[tokio::test]
async fn an_edit_a_deletion_a_swap_and_a_cut_tail_are_each_found() {
    let (home, port) = fakechat_home_with("");
    let head = exchange(&home, port, &["one", "two", "three"]).await;
    let rows: i64 = head.rsplit('@').next().unwrap().parse().unwrap();
    assert!(rows >= 7, "{head}");

    let edited = copy_of(&home);
    tamper(
        &edited,
        "DROP TRIGGER audit_append_only; UPDATE audit SET summary = 'nothing happened' WHERE id = 3;",
    );
    let out = verify_fails(&edited, &[]).await;
    assert!(
        out.starts_with(
            "the audit trail is broken at row 3: row 3 was changed after it was written"
        ) && out.contains("\n2 rows before it verified\n"),
        "{out}"
    );

    let deleted = copy_of(&home);
    tamper(&deleted, "DELETE FROM audit WHERE id = 4;");
    let out = verify_fails(&deleted, &[]).await;
    assert!(
        out.starts_with("the audit trail is broken at row 4: row 4 is missing (the next row is 5)"),
        "{out}"
    );

    let swapped = copy_of(&home);
    tamper(
        &swapped,
        "DROP TRIGGER audit_append_only;
         UPDATE audit SET id = -1 WHERE id = 2;
         UPDATE audit SET id = 2 WHERE id = 5;
         UPDATE audit SET id = 5 WHERE id = -1;",
    );
    let out = verify_fails(&swapped, &[]).await;
    assert!(
        out.starts_with(
            "the audit trail is broken at row 2: row 2 does not follow the row before it"
        ),
        "{out}"
    );

    // Contents swapped, ids kept: the same row is named.
    let contents = copy_of(&home);
    tamper(
        &contents,
        "DROP TRIGGER audit_append_only;
         CREATE TEMP TABLE a AS SELECT * FROM audit WHERE id = 2;
         CREATE TEMP TABLE b AS SELECT * FROM audit WHERE id = 5;
         UPDATE audit SET summary = (SELECT summary FROM b), detail = (SELECT detail FROM b),
            kind = (SELECT kind FROM b) WHERE id = 2;
         UPDATE audit SET summary = (SELECT summary FROM a), detail = (SELECT detail FROM a),
            kind = (SELECT kind FROM a) WHERE id = 5;",
    );
    let out = verify_fails(&contents, &[]).await;
    assert!(
        out.starts_with("the audit trail is broken at row 2: "),
        "{out}"
    );

    // A cut tail looks whole; the head kept from shutdown finds it.
    let cut = copy_of(&home);
    tamper(&cut, &format!("DELETE FROM audit WHERE id > {};", rows - 3));
    let out = cli_ok(&cut, &["audit", "verify"]).await;
    assert!(
        out.starts_with(&format!("verified {} rows up to ", rows - 3)),
        "{out}"
    );
    let out = verify_fails(&cut, &["--head", &head]).await;
    assert!(
        out.starts_with(&format!(
            "the audit trail is broken at row {rows}: the checkpoint kept elsewhere names row \
             {rows}, but the chain ends at row {}: its tail was cut off",
            rows - 3
        )),
        "{out}"
    );
    assert!(!out.contains("rows before it verified"), "{out}");

    // The original is untouched by all of it.
    cli_ok(&home, &["audit", "verify", "--head", &head]).await;
}

#[tokio::test]
async fn search_reads_message_text_only_when_it_is_kept() {
    let word = "zanzibar";
    let text = format!("please deploy the {word} branch");
    for mode in ["full", "digest", "none"] {
        let (home, port) = fakechat_home_with(&format!("[audit]\ncontent = \"{mode}\""));
        exchange(&home, port, &[&text]).await;
        let found = cli_json(&home, &["audit", "search", word]).await;
        let inbound = cli_json(&home, &["audit", "search", "--kind", "inbound"]).await;
        let inbound = inbound.as_array().unwrap();
        assert_eq!(inbound.len(), 1, "{mode}: the row is there: {inbound:?}");
        let row = &inbound[0];
        match mode {
            "full" => {
                assert_eq!(found.as_array().unwrap().len(), 1, "{mode}: {found}");
                assert_eq!(found[0]["id"], row["id"]);
                assert_eq!(row["content"], text.as_str());
                let table = cli_ok(&home, &["audit", "search", word]).await;
                assert!(
                    table.contains("inbound") && table.contains("fakechat:web"),
                    "{table}"
                );
            }
            "digest" => {
                assert_eq!(found, json!([]), "{mode}");
                assert_eq!(row["content"], Value::Null);
                assert_eq!(row["content_len"], text.chars().count());
                assert!(row["content_digest"].is_string(), "{row}");
                let table = cli_ok(&home, &["audit", "search", word]).await;
                assert_eq!(table, "no rows match\n");
            }
            _ => {
                assert_eq!(found, json!([]), "{mode}");
                assert_eq!(row["content"], Value::Null);
                assert_eq!(row["content_digest"], Value::Null);
                assert_eq!(row["content_len"], Value::Null);
            }
        }
        let status = cli_json(&home, &["audit", "status"]).await;
        assert_eq!(status["content"], mode);
    }
}

#[tokio::test]
async fn tail_follow_in_a_second_process_sees_a_message_within_a_second() {
    let (home, port) = fakechat_home();
    let mut session = Session::start(&home).await;
    let token = session.log.token(port).await;
    let mut tail = tokio::process::Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(["audit", "tail", "-f", "-n", "0"])
        .env("AIRLOCK_HOME", home.path())
        .env_remove("AIRLOCK_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = Log::drain(tail.stdout.take().unwrap());
    let err = Log::drain(tail.stderr.take().unwrap());
    let deadline = Instant::now() + SOON;
    while !out.text().contains("SUMMARY") {
        assert!(
            Instant::now() < deadline,
            "tail -f printed no header:\n{}{}",
            out.text(),
            err.text()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sent = Instant::now();
    page_send(port, &token, "live from the page").await;
    let line = loop {
        if let Some(l) = out
            .text()
            .lines()
            .find(|l| l.contains("queued a message from"))
        {
            break l.to_string();
        }
        assert!(
            sent.elapsed() < Duration::from_secs(1),
            "tail -f did not show the message within 1 s:\n{}{}",
            out.text(),
            err.text()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        line.contains("inbound") && line.contains("fakechat:web"),
        "{line}"
    );
    assert_eq!(session.event().await["content"], "live from the page");
    tail.kill().await.unwrap();
    session.close().await;
}
