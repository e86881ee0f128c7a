//! Each kind of audit row, written by the real binary and read back the way
//! a reviewer reads it, with `airlock audit export --jsonl`: inbound
//! (queued and dropped), tool calls (with files, and failing), access
//! changes from the terminal, the permission relay, filter verdicts,
//! component lifecycle, server start and stop with the shutdown checkpoint.
//! And a loaded secret planted everywhere a session and a platform can put
//! it reaches no row, no byte of `airlock.db` and no export.
//!
//! The helpers here are shared with the Telegram and Discord audit tests.

use std::time::{Duration, Instant};

use fake_telegram::FakeTelegram;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::relay::until_bot_message;
use crate::session::*;
use crate::support::*;

/// What serve prints on stderr when it stops.
const SHUTDOWN_HEAD: &str = "audit trail head at shutdown: ";

/// Every row of `home`'s trail, oldest first, as `audit export --jsonl`
/// prints them, with `detail` (a JSON string) parsed in place.
pub(crate) async fn rows(home: &TempHome) -> Vec<Value> {
    let export = cli_ok(home, &["audit", "export", "--jsonl"]).await;
    export
        .lines()
        .map(|line| {
            let mut row: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            let detail = row["detail"]
                .as_str()
                .unwrap_or_else(|| panic!("detail is not a string: {row}"))
                .to_owned();
            row["detail"] = serde_json::from_str(&detail)
                .unwrap_or_else(|e| panic!("detail is not JSON ({e}): {row}"));
            row
        })
        .collect()
}

/// Every row as one line each, for failure messages.
pub(crate) fn listing(rows: &[Value]) -> String {
    rows.iter().map(|r| format!("{r}\n")).collect()
}

/// Waits until a row satisfying `pred` is in the trail; returns it.
pub(crate) async fn until_row(home: &TempHome, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + SOON;
    loop {
        let all = rows(home).await;
        if let Some(row) = all.iter().find(|r| pred(r)) {
            return row.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no {what} row:\n{}",
            listing(&all)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The rows of `kind`.
pub(crate) fn of_kind<'a>(rows: &'a [Value], kind: &str) -> Vec<&'a Value> {
    rows.iter().filter(|r| r["kind"] == kind).collect()
}

/// `airlock audit verify` on `home`, which must exit 0: the rows it
/// verified and the head it names.
pub(crate) async fn verified(home: &TempHome) -> (i64, String) {
    let out = cli_ok(home, &["audit", "verify"]).await;
    let rest = out
        .strip_prefix("verified ")
        .unwrap_or_else(|| panic!("{out}"));
    let (count, rest) = rest
        .split_once(" rows up to ")
        .unwrap_or_else(|| panic!("{out}"));
    (count.parse().unwrap(), rest.trim_end().to_owned())
}

/// `airlock audit verify` on `home`, which must exit 1: its stdout.
pub(crate) async fn verify_fails(home: &TempHome) -> String {
    let (code, out, err) = cli(home, &["audit", "verify"]).await;
    assert_eq!(code, Some(1), "audit verify:\n{out}{err}");
    out
}

/// The pid of the serve whose start is the newest in the trail.
async fn server_pid(home: &TempHome) -> u32 {
    let all = rows(home).await;
    let started = all
        .iter()
        .rev()
        .find(|r| r["kind"] == "server" && r["detail"]["event"] == "started")
        .unwrap_or_else(|| panic!("no server start:\n{}", listing(&all)));
    started["detail"]["pid"].as_u64().unwrap() as u32
}

/// Whether process `pid` has ended (gone, or a zombie not yet reaped).
fn ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state == 'Z' || state == 'X'),
    }
}

/// Ends `session` as Claude Code does and waits for its serve to exit;
/// returns the `HASH@ID` it printed at shutdown.
pub(crate) async fn stop(home: &TempHome, session: Session) -> String {
    let pid = server_pid(home).await;
    let log = session.log.clone();
    session.close().await;
    let deadline = Instant::now() + SOON;
    let head = loop {
        let text = log.text();
        if let Some(at) = text.find(SHUTDOWN_HEAD) {
            let head: String = text[at + SHUTDOWN_HEAD.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '@')
                .collect();
            assert!(head.contains('@'), "{text}");
            break head;
        }
        assert!(
            Instant::now() < deadline,
            "serve printed no head at shutdown:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    while !ended(pid) {
        assert!(Instant::now() < deadline, "serve {pid} did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    head
}

/// SHA-256 of `bytes`, in hex.
fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether `s` is 64 lowercase hex digits.
fn is_sha256(s: &Value) -> bool {
    s.as_str()
        .is_some_and(|s| s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

#[tokio::test]
async fn inbound_and_tool_rows_carry_their_fields() {
    let (home, port) = fakechat_home();
    let mut session = Session::start(&home).await;
    let token = session.log.token(port).await;
    let pid = server_pid(&home).await;

    // Queued: who, where, which message, its place in the queue.
    let id = page_send(port, &token, "hello there").await;
    assert_eq!(session.event().await["content"], "hello there");
    let queued = until_row(&home, "inbound queued", |r| {
        r["kind"] == "inbound" && r["detail"]["outcome"] == "queued"
    })
    .await;
    assert_eq!(queued["adapter"], "fakechat", "{queued}");
    assert_eq!(queued["chat"], "web", "{queued}");
    assert_eq!(queued["sender_id"], "web", "{queued}");
    assert_eq!(queued["sender_handle"], "web", "{queued}");
    assert!(
        queued["session"]
            .as_str()
            .is_some_and(|s| s.ends_with(&format!(" (pid {pid})"))),
        "{queued}"
    );
    assert_eq!(
        queued["summary"], "queued a message from web for the session",
        "{queued}"
    );
    assert_eq!(queued["detail"]["message_id"], id.as_str(), "{queued}");
    assert!(queued["detail"]["seq"].as_i64().unwrap() > 0, "{queued}");
    assert_eq!(queued["detail"]["attachments"], 0, "{queued}");
    // The default keeps a keyed digest of the text and its length, not the text.
    assert_eq!(queued["content"], Value::Null, "{queued}");
    assert!(is_sha256(&queued["content_digest"]), "{queued}");
    assert_eq!(queued["content_len"], "hello there".len(), "{queued}");

    // A reply with a file: the tool, the chat, a digest of the arguments,
    // the outcome, and the file's name and size (never its bytes).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.txt");
    std::fs::write(&file, vec![b'x'; 1234]).unwrap();
    let args = json!({
        "chat_id": "fakechat:web",
        "text": "the report",
        "files": [file.to_str().unwrap()],
    });
    let (is_error, sent) = outcome(&session.call("reply", args.clone()).await);
    assert!(!is_error, "{sent}");
    let reply = until_row(&home, "reply", |r| {
        r["kind"] == "tool" && r["detail"]["tool"] == "reply" && r["detail"]["ok"] == true
    })
    .await;
    let detail = &reply["detail"];
    assert_eq!(reply["summary"], "reply to fakechat:web: ok", "{reply}");
    assert_eq!(reply["adapter"], "fakechat", "{reply}");
    assert_eq!(reply["chat"], "web", "{reply}");
    assert_eq!(detail["chat_id"], "fakechat:web", "{reply}");
    assert!(is_sha256(&detail["args_sha256"]), "{reply}");
    assert_eq!(
        detail["args_sha256"],
        sha256(args.to_string().as_bytes()),
        "the digest of the arguments as sent: {reply}"
    );
    assert_eq!(detail["outcome"], sent.as_str(), "{reply}");
    assert_eq!(
        detail["files"],
        json!([{"name": "report.txt", "size": 1234}]),
        "{reply}"
    );
    assert_eq!(reply["content"], Value::Null, "{reply}");
    let export = cli_ok(&home, &["audit", "export", "--jsonl"]).await;
    assert!(!export.contains("the report"), "no reply text: {export}");

    // A failing call: ok false, and the error as its outcome.
    let (is_error, error) = outcome(
        &session
            .call("reply", json!({"chat_id": "nowhere:1", "text": "lost"}))
            .await,
    );
    assert!(is_error, "{error}");
    let failed = until_row(&home, "failed reply", |r| {
        r["kind"] == "tool" && r["detail"]["ok"] == false
    })
    .await;
    assert_eq!(failed["summary"], "reply to nowhere:1: error", "{failed}");
    assert_eq!(failed["detail"]["tool"], "reply", "{failed}");
    assert_eq!(failed["detail"]["chat_id"], "nowhere:1", "{failed}");
    assert_eq!(failed["detail"]["files"], json!([]), "{failed}");
    let said = failed["detail"]["outcome"].as_str().unwrap();
    assert!(
        said.starts_with("unknown chat \"nowhere:1\"") && error.starts_with(said),
        "{failed}\n{error}"
    );

    // Lockdown: the command, then a message dropped with the reason.
    cli_ok(&home, &["access", "lockdown"]).await;
    page_send(port, &token, "during lockdown").await;
    let dropped = until_row(&home, "inbound dropped", |r| {
        r["kind"] == "inbound" && r["detail"]["outcome"] == "dropped"
    })
    .await;
    assert_eq!(
        dropped["detail"]["reason"], "airlock is locked down",
        "{dropped}"
    );
    assert_eq!(
        dropped["summary"], "dropped a message from web: airlock is locked down",
        "{dropped}"
    );
    assert_eq!(dropped["adapter"], "fakechat", "{dropped}");
    assert_eq!(dropped["chat"], "web", "{dropped}");
    assert_eq!(dropped["sender_id"], "web", "{dropped}");
    assert!(dropped["content_digest"].is_string(), "{dropped}");
    cli_ok(&home, &["access", "unlock"]).await;
    let all = rows(&home).await;
    let access: Vec<&Value> = of_kind(&all, "access");
    let changes: Vec<(&Value, &Value)> = access
        .iter()
        .map(|r| (&r["detail"]["change"], &r["detail"]["command"]))
        .collect();
    assert_eq!(
        changes,
        [
            (&json!("lockdown"), &json!("airlock access lockdown")),
            (&json!("unlock"), &json!("airlock access unlock")),
        ],
        "{}",
        listing(&all)
    );
    assert!(
        access.iter().all(|r| r["session"] == "terminal"),
        "{access:?}"
    );
    assert!(dropped["id"].as_i64() > access[0]["id"].as_i64());
    assert!(dropped["id"].as_i64() < access[1]["id"].as_i64());

    stop(&home, session).await;
    verified(&home).await;
}

#[tokio::test]
async fn every_access_change_names_the_command_that_made_it() {
    let (home, _) = fakechat_home();
    let commands: &[(&[&str], &str)] = &[
        (&["access", "allow", "telegram", "5", "--owner"], "allow"),
        (&["access", "role", "telegram", "5", "member"], "role"),
        (&["access", "remove", "telegram", "5"], "remove"),
        (&["access", "allow", "telegram", "6"], "allow"),
        (&["access", "revoke", "telegram", "6"], "revoke"),
        (&["access", "invite", "fakechat"], "invite issued"),
        (&["access", "invite", "--cancel"], "invites cancelled"),
        (
            &["access", "group", "open", "telegram", "-100123"],
            "group opened",
        ),
        (
            &["access", "group", "close", "telegram", "-100123"],
            "group closed",
        ),
        (&["access", "lockdown", "--reason", "a drill"], "lockdown"),
        (&["access", "unlock"], "unlock"),
    ];
    let mut printed = String::new();
    for (i, (args, change)) in commands.iter().enumerate() {
        printed.push_str(&cli_ok(&home, args).await);
        // What only reads leaves no row.
        for reading in [
            &["access", "list"][..],
            &["access", "invites"],
            &["access", "status"],
        ] {
            cli_ok(&home, reading).await;
        }
        let all = rows(&home).await;
        assert_eq!(all.len(), i + 1, "one row per change:\n{}", listing(&all));
        let row = all.last().unwrap();
        let command = format!(
            "airlock {}",
            args.iter()
                .map(|a| if a.contains(' ') {
                    format!("'{a}'")
                } else {
                    a.to_string()
                })
                .collect::<Vec<_>>()
                .join(" ")
        );
        assert_eq!(row["kind"], "access", "{row}");
        assert_eq!(row["session"], "terminal", "{row}");
        assert_eq!(row["detail"]["change"], *change, "{row}");
        assert_eq!(row["detail"]["command"], command.as_str(), "{row}");
        assert!(command.starts_with("airlock access "));
        assert_eq!(row["summary"], format!("{change}: {command}"), "{row}");
    }
    // The invite's code went to the terminal, never to the record.
    let code = printed
        .lines()
        .filter_map(|l| l.strip_prefix("    "))
        .find(|l| l.len() == 9 && l.as_bytes()[4] == b'-')
        .unwrap_or_else(|| panic!("no invite code in:\n{printed}"));
    let export = cli_ok(&home, &["audit", "export", "--jsonl"]).await;
    assert!(!export.contains(code), "{export}");
    assert!(!export.contains(&code.replace('-', "")), "{export}");
    let (count, _) = verified(&home).await;
    assert_eq!(count, commands.len() as i64);
}

#[tokio::test]
async fn a_relayed_prompt_is_recorded_from_request_to_verdict() {
    let (home, port) = fakechat_home();
    let mut session = Session::start(&home).await;
    assert!(session.declares_relay());
    let token = session.log.token(port).await;
    session
        .permission_request(crate::relay::request(
            "abcde",
            "Write",
            "{\"file_path\":\"/tmp/x\"}",
        ))
        .await;
    let prompt = until_bot_message(port, &token, |m| {
        m["text"].as_str().unwrap_or("").contains("Request abcde")
    })
    .await;
    let request = until_row(&home, "relay request", |r| {
        r["kind"] == "relay" && r["detail"]["event"] == "request"
    })
    .await;
    assert_eq!(request["detail"]["request_id"], "abcde", "{request}");
    assert_eq!(request["detail"]["tool"], "Write", "{request}");
    assert_eq!(request["detail"]["description"], "Write call", "{request}");
    assert_eq!(
        request["summary"], "permission request abcde for Write",
        "{request}"
    );
    // The preview is message text: a digest by default.
    assert!(request["content_digest"].is_string(), "{request}");
    assert_eq!(request["content"], Value::Null, "{request}");
    let prompted = until_row(&home, "relay prompted", |r| {
        r["kind"] == "relay" && r["detail"]["event"] == "prompted"
    })
    .await;
    assert_eq!(prompted["detail"]["request_id"], "abcde", "{prompted}");
    assert_eq!(prompted["detail"]["tool"], "Write", "{prompted}");
    assert_eq!(prompted["detail"]["copies"], 1, "{prompted}");
    assert!(prompted["detail"]["expires_at"].is_i64(), "{prompted}");
    assert!(prompted["id"].as_i64() > request["id"].as_i64());

    let id = prompt["id"].as_str().unwrap();
    assert_eq!(page_press(port, &token, id, 0, 0).await, 200);
    let verdict = session.verdict_within(SOON).await.expect("a verdict");
    assert_eq!(verdict, json!({"request_id": "abcde", "behavior": "allow"}));
    let row = until_row(&home, "relay verdict", |r| {
        r["kind"] == "relay" && r["detail"]["event"] == "verdict"
    })
    .await;
    assert_eq!(row["detail"]["behavior"], "allow", "{row}");
    assert_eq!(row["detail"]["by"], "fakechat:web", "{row}");
    assert_eq!(row["detail"]["request_id"], "abcde", "{row}");
    assert_eq!(row["detail"]["tool"], "Write", "{row}");
    assert_eq!(row["adapter"], "fakechat", "{row}");
    assert_eq!(row["chat"], "web", "{row}");
    assert_eq!(
        row["summary"], "allowed prompt abcde (Write) by fakechat:web",
        "{row}"
    );
    assert!(row["id"].as_i64() > prompted["id"].as_i64());
    stop(&home, session).await;
    verified(&home).await;
}

#[tokio::test]
async fn the_bundled_redact_filter_rewriting_a_reply_is_recorded_without_the_text() {
    let (home, port) = fakechat_home();
    let mut session = Session::start(&home).await;
    let token = session.log.token(port).await;
    page_send(port, &token, "what is the key?").await;
    session.event().await;
    let key = "AKIAIOSFODNN7EXAMPLE";
    let (is_error, text) = outcome(
        &session
            .call(
                "reply",
                json!({"chat_id": "fakechat:web", "text": format!("the key is {key}")}),
            )
            .await,
    );
    assert!(!is_error, "{text}");
    until_bot_message(port, &token, |m| m["text"] == "the key is [REDACTED]").await;
    let row = until_row(&home, "filter", |r| r["kind"] == "filter").await;
    assert_eq!(
        row["detail"],
        json!({"filter": "redact", "direction": "outbound", "verdict": "rewrite", "reason": ""}),
        "{row}"
    );
    assert_eq!(row["summary"], "filter redact (outbound): rewrite", "{row}");
    assert_eq!(row["content"], Value::Null, "{row}");
    assert_eq!(row["content_digest"], Value::Null, "{row}");
    // A clean reply is a pass, which is not recorded.
    let (is_error, text) = outcome(
        &session
            .call(
                "reply",
                json!({"chat_id": "fakechat:web", "text": "all clear"}),
            )
            .await,
    );
    assert!(!is_error, "{text}");
    until_row(&home, "second reply", |r| {
        r["kind"] == "tool" && r["id"].as_i64() > row["id"].as_i64()
    })
    .await;
    stop(&home, session).await;
    let all = rows(&home).await;
    assert_eq!(of_kind(&all, "filter").len(), 1, "{}", listing(&all));
    let export = cli_ok(&home, &["audit", "export", "--jsonl"]).await;
    assert!(!export.contains(key), "{export}");
    verified(&home).await;
}

#[tokio::test]
async fn inbound_filter_verdicts_are_recorded_with_the_adapter() {
    let home = TempHome::new();
    let [port] = free_ports();
    home.drop_in(
        "redirect",
        &fixture_wasm("redirect"),
        "name = \"redirect\"\nkind = \"filter\"\napi = \"0.1\"\n",
    );
    home.config(&format!(
        "[components.fakechat]\nsettings = {{ port = \"{port}\" }}\n\n\
         [components.redirect]\nenabled = true\n"
    ));
    cli_ok(&home, &["adapters", "approve", "redirect"]).await;
    let mut session = Session::start(&home).await;
    let token = session.log.token(port).await;
    page_send(port, &token, "shout hello").await;
    assert_eq!(session.event().await["content"], "SHOUT HELLO");
    let rewrite = until_row(&home, "inbound rewrite", |r| {
        r["kind"] == "filter" && r["detail"]["verdict"] == "rewrite"
    })
    .await;
    assert_eq!(
        rewrite["detail"],
        json!({"filter": "redirect", "direction": "inbound", "verdict": "rewrite", "reason": ""}),
        "{rewrite}"
    );
    assert_eq!(rewrite["adapter"], "fakechat", "{rewrite}");
    assert_eq!(
        rewrite["summary"], "filter redirect (inbound): rewrite",
        "{rewrite}"
    );
    // Written with the batch: the verdict comes before the message it let in.
    let queued = until_row(&home, "queued", |r| {
        r["kind"] == "inbound" && r["detail"]["outcome"] == "queued"
    })
    .await;
    assert!(rewrite["id"].as_i64() < queued["id"].as_i64());

    // A rewrite that reaches for the sender is refused, and the message dropped.
    page_send(port, &token, "sender I am the boss").await;
    let refused = until_row(&home, "refused rewrite", |r| {
        r["kind"] == "filter" && r["detail"]["verdict"] == "refused rewrite"
    })
    .await;
    assert_eq!(refused["detail"]["filter"], "redirect", "{refused}");
    assert_eq!(refused["detail"]["direction"], "inbound", "{refused}");
    assert!(
        refused["detail"]["reason"]
            .as_str()
            .unwrap()
            .contains("tried to change the message's sender"),
        "{refused}"
    );
    assert!(
        refused["summary"]
            .as_str()
            .unwrap()
            .starts_with("filter redirect (inbound): refused rewrite: "),
        "{refused}"
    );
    stop(&home, session).await;
    verified(&home).await;
}

/// The issue lists "filter verdict" among the reasons an inbound event is
/// recorded as dropped, with its sender and chat.
#[tokio::test]
async fn an_inbound_message_a_filter_stops_is_recorded_as_dropped_with_its_sender() {
    let home = TempHome::new();
    let [port] = free_ports();
    home.drop_in(
        "redirect",
        &fixture_wasm("redirect"),
        "name = \"redirect\"\nkind = \"filter\"\napi = \"0.1\"\n",
    );
    home.config(&format!(
        "[components.fakechat]\nsettings = {{ port = \"{port}\" }}\n\n\
         [components.redirect]\nenabled = true\n"
    ));
    cli_ok(&home, &["adapters", "approve", "redirect"]).await;
    let session = Session::start(&home).await;
    let token = session.log.token(port).await;
    page_send(port, &token, "sender I am the boss").await;
    until_row(&home, "refused rewrite", |r| r["kind"] == "filter").await;
    let head = stop(&home, session).await;
    let all = rows(&home).await;
    assert!(
        all.iter().any(|r| r["kind"] == "inbound"
            && r["detail"]["outcome"] == "dropped"
            && r["sender_id"] == "web"
            && r["chat"] == "web"),
        "no inbound row names who sent the message the filter stopped (head {head}):\n{}",
        listing(&all)
    );
}

#[tokio::test]
async fn components_loaded_refused_approved_and_removed_are_recorded() {
    let home = TempHome::new();
    let [port] = free_ports();
    // A hostile adapter (raw sockets), approved the way an older airlock
    // could have (the CLI refuses to approve what cannot load), and a
    // filter nobody approved.
    home.drop_in(
        "sockets",
        &fixture_wasm("sockets"),
        &manifest("sockets", ""),
    );
    home.drop_in(
        "redirect",
        &fixture_wasm("redirect"),
        "name = \"redirect\"\nkind = \"filter\"\napi = \"0.1\"\n",
    );
    home.config(&format!(
        "[components.fakechat]\nenabled = true\nsettings = {{ port = \"{port}\" }}\n\n\
         [components.sockets]\nenabled = true\n\n\
         [components.redirect]\nenabled = true\n"
    ));
    let (fakechat_sha, redirect_sha) = {
        let host = home.host();
        let (candidates, _) = host.candidates().unwrap();
        let find = |name: &str| candidates.iter().find(|c| c.name == name).unwrap();
        let sockets = find("sockets");
        airlock::approvals::approve(
            &host.db,
            "sockets",
            &sockets.wasm_sha256(),
            &sockets.manifest_sha256(),
        )
        .unwrap();
        (
            find("fakechat").wasm_sha256(),
            find("redirect").wasm_sha256(),
        )
    };

    let session = Session::start(&home).await;
    session.log.token(port).await;
    let all = rows(&home).await;
    let components = of_kind(&all, "component");
    let by = |event: &str, name: &str| {
        components
            .iter()
            .find(|r| r["detail"]["event"] == event && r["detail"]["component"] == name)
            .copied()
            .unwrap_or_else(|| panic!("no {event} row for {name}:\n{}", listing(&all)))
    };
    let fakechat = by("loaded", "fakechat");
    assert_eq!(
        fakechat["detail"]["wasm_sha256"],
        fakechat_sha.as_str(),
        "{fakechat}"
    );
    assert_eq!(
        fakechat["summary"], "fakechat loaded (Bundled)",
        "{fakechat}"
    );
    let redact = by("loaded", "redact");
    assert!(is_sha256(&redact["detail"]["wasm_sha256"]), "{redact}");
    let sockets = by("refused", "sockets");
    let why = sockets["summary"].as_str().unwrap();
    assert!(
        why.starts_with("not started: ") && why.contains("wasi:sockets"),
        "{sockets}"
    );
    let redirect = by("refused", "redirect");
    assert!(
        redirect["summary"]
            .as_str()
            .unwrap()
            .starts_with("not started: redirect: not approved"),
        "{redirect}"
    );
    // Recorded before the server says it started.
    let started = until_row(&home, "server started", |r| r["kind"] == "server").await;
    for r in [fakechat, redact, sockets, redirect] {
        assert!(
            r["id"].as_i64() < started["id"].as_i64(),
            "{}",
            listing(&all)
        );
    }
    // The refusal is also a capability denial, raised to the owners once
    // the router runs, and recorded as such.
    let denied = until_row(&home, "capability denied", |r| {
        r["kind"] == "component" && r["detail"]["event"] == "capability_denied"
    })
    .await;
    let said = denied["summary"].as_str().unwrap();
    assert!(
        said.starts_with("sockets was not started: its grant refuses what it imports (")
            && said.contains("wasi:sockets"),
        "{denied}"
    );
    stop(&home, session).await;

    // Approval and removal, from the terminal.
    cli_ok(&home, &["adapters", "approve", "redirect"]).await;
    cli_ok(&home, &["adapters", "remove", "redirect"]).await;
    let all = rows(&home).await;
    let terminal: Vec<&Value> = of_kind(&all, "component")
        .into_iter()
        .filter(|r| r["session"] == "terminal")
        .collect();
    assert_eq!(terminal.len(), 2, "{}", listing(&all));
    let approved = terminal[0];
    assert_eq!(
        approved["detail"]["command"], "airlock adapters approve redirect",
        "{approved}"
    );
    let change = approved["detail"]["change"].as_str().unwrap();
    assert!(
        change.starts_with(&format!("drop-in approved (wasm sha256 {redirect_sha}, ")),
        "{approved}"
    );
    let removed = terminal[1];
    assert_eq!(removed["detail"]["change"], "drop-in removed", "{removed}");
    assert_eq!(
        removed["detail"]["command"], "airlock adapters remove redirect",
        "{removed}"
    );
    assert_eq!(
        removed["summary"], "drop-in removed: airlock adapters remove redirect",
        "{removed}"
    );
    verified(&home).await;
}

#[tokio::test]
async fn server_start_and_stop_carry_version_and_config_digest_and_the_head_is_checkpointed() {
    let (home, port) = fakechat_home();
    let config = std::fs::read(home.path().join("airlock.toml")).unwrap();
    let session = Session::start(&home).await;
    session.log.token(port).await;
    let pid = server_pid(&home).await;
    let head = stop(&home, session).await;

    let all = rows(&home).await;
    let servers = of_kind(&all, "server");
    assert_eq!(servers.len(), 2, "{}", listing(&all));
    let version = env!("CARGO_PKG_VERSION");
    for (row, event) in servers.iter().zip(["started", "stopped"]) {
        let detail = &row["detail"];
        assert_eq!(detail["event"], event, "{row}");
        assert_eq!(detail["version"], version, "{row}");
        assert_eq!(detail["config_sha256"], sha256(&config), "{row}");
        assert_eq!(detail["pid"], pid, "{row}");
        assert_eq!(detail["adapters"], json!(["fakechat"]), "{row}");
        assert_eq!(
            row["summary"],
            format!("airlock {version} {event}"),
            "{row}"
        );
        assert!(
            row["session"]
                .as_str()
                .is_some_and(|s| s.ends_with(&format!(" (pid {pid})"))),
            "{row}"
        );
    }

    // The last row is the shutdown checkpoint; it is the head serve printed.
    let last = all.last().unwrap();
    assert_eq!(last["kind"], "checkpoint", "{}", listing(&all));
    let id = last["id"].as_i64().unwrap();
    assert_eq!(head, format!("{}@{id}", last["hash"].as_str().unwrap()));
    let before = &all[all.len() - 2];
    assert_eq!(before, servers[1], "the stop is the row it seals");
    assert_eq!(last["detail"]["why"], "shutdown", "{last}");
    assert_eq!(last["detail"]["head_id"], id - 1, "{last}");
    assert_eq!(last["detail"]["head"], before["hash"], "{last}");
    assert_eq!(last["detail"]["rows"], id - 1, "{last}");
    assert_eq!(last["prev_hash"], before["hash"], "{last}");

    let (count, verified_head) = verified(&home).await;
    assert_eq!(count, all.len() as i64);
    assert_eq!(verified_head, head);
}

/// Whether `needle` occurs anywhere in `haystack`.
fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn a_planted_secret_reaches_no_row_no_byte_of_the_database_and_no_export() {
    use crate::telegram::{TOKEN, TOKEN_PART, allow_alice, start, telegram_home};
    // The bot token is loaded by serve (bound to the Telegram adapter); the
    // page is there too, and message text is kept in full.
    let fake = FakeTelegram::start(TOKEN).await;
    let [port] = free_ports();
    let home = telegram_home(
        &fake,
        &format!(
            "[components.fakechat]\nenabled = true\nsettings = {{ port = \"{port}\" }}\n\n\
             [audit]\ncontent = \"full\"\n"
        ),
    );
    allow_alice(&home).await;
    let mut session = start(&home, &fake, "info").await;
    let page = session.log.token(port).await;

    let tool_calls = plant_token(&home, &mut session, &fake, port, &page).await;
    stop(&home, session).await;

    // The record holds the text, scrubbed: the test reached every field.
    let all = rows(&home).await;
    let contents: Vec<&str> = all.iter().filter_map(|r| r["content"].as_str()).collect();
    for kept in [
        "page says [redacted]",
        "alice says [redacted]",
        "eve says [redacted]",
    ] {
        assert!(contents.contains(&kept), "{kept}: {contents:?}");
    }
    let tool_rows = of_kind(&all, "tool");
    assert_eq!(tool_rows.len(), tool_calls, "{}", listing(&all));
    let to_secret_chat = tool_rows
        .iter()
        .find(|r| {
            r["detail"]["chat_id"]
                .as_str()
                .unwrap()
                .starts_with("telegram:[")
        })
        .unwrap_or_else(|| panic!("{}", listing(&all)));
    assert_eq!(to_secret_chat["chat"], "[redacted]", "{to_secret_chat}");
    let file = tool_rows
        .iter()
        .find(|r| r["detail"]["files"] != json!([]))
        .unwrap_or_else(|| panic!("{}", listing(&all)));
    assert_eq!(file["detail"]["files"][0]["name"], "[redacted]", "{file}");
    assert_eq!(file["detail"]["ok"], false, "{file}");

    let export = cli_ok(&home, &["audit", "export", "--jsonl"]).await;
    for needle in [TOKEN, TOKEN_PART] {
        assert!(
            !export.contains(needle),
            "{needle} in the export:\n{export}"
        );
    }
    assert!(export.contains("[redacted]"));
    let found = cli_json(&home, &["audit", "search", TOKEN_PART]).await;
    assert_eq!(found, json!([]));

    // Nowhere in the database's bytes: the main file and its journal (which
    // do hold the scrubbed text, so the bytes are read as stored).
    let mut files = 0;
    let mut scrubbed = false;
    for entry in std::fs::read_dir(home.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("airlock.db") {
            continue;
        }
        files += 1;
        let bytes = std::fs::read(&path).unwrap();
        for needle in [TOKEN, TOKEN_PART] {
            assert!(!holds(&bytes, needle), "{needle} is in {name}");
        }
        scrubbed |= holds(&bytes, "alice says [redacted]");
    }
    assert!(files >= 1 && scrubbed);
    verified(&home).await;
}

/// The end of a platform's end-to-end run: the whole trail verifies, up to
/// the head serve printed, and counts every exported line. Then, each on a
/// copy of the state directory, row `edited` is edited, row `deleted`
/// deleted, and the contents of rows `swapped` (the first the lower)
/// exchanged with the `sqlite3` CLI; `verify` exits 1 and names the first
/// bad row each time.
pub(crate) async fn verifies_and_tampering_is_named(
    home: &TempHome,
    head: &str,
    edited: i64,
    deleted: i64,
    swapped: (i64, i64),
) {
    let export = cli_ok(home, &["audit", "export", "--jsonl"]).await;
    let (count, verified_head) = verified(home).await;
    assert_eq!(count, export.lines().count() as i64);
    assert_eq!(verified_head, head);
    assert!(edited > 1 && swapped.0 < swapped.1, "{edited} {swapped:?}");

    let copy = crate::audit::copy_of(home);
    crate::audit::tamper(
        &copy,
        &format!(
            "DROP TRIGGER audit_append_only; UPDATE audit SET summary = 'x' WHERE id = {edited};"
        ),
    );
    let out = verify_fails(&copy).await;
    assert!(
        out.starts_with(&format!(
            "the audit trail is broken at row {edited}: row {edited} was changed after it was \
             written"
        )) && out.contains(&format!("\n{} rows before it verified\n", edited - 1)),
        "{out}"
    );

    let copy = crate::audit::copy_of(home);
    crate::audit::tamper(&copy, &format!("DELETE FROM audit WHERE id = {deleted};"));
    let out = verify_fails(&copy).await;
    assert!(
        out.starts_with(&format!(
            "the audit trail is broken at row {deleted}: row {deleted} is missing (the next row \
             is {})",
            deleted + 1
        )),
        "{out}"
    );

    let (a, b) = swapped;
    let copy = crate::audit::copy_of(home);
    crate::audit::tamper(
        &copy,
        &format!(
            "DROP TRIGGER audit_append_only;
             CREATE TEMP TABLE a AS SELECT * FROM audit WHERE id = {a};
             CREATE TEMP TABLE b AS SELECT * FROM audit WHERE id = {b};
             UPDATE audit SET summary = (SELECT summary FROM b), detail = (SELECT detail FROM b)
                WHERE id = {a};
             UPDATE audit SET summary = (SELECT summary FROM a), detail = (SELECT detail FROM a)
                WHERE id = {b};"
        ),
    );
    let out = verify_fails(&copy).await;
    assert!(
        out.starts_with(&format!("the audit trail is broken at row {a}: ")),
        "{out}"
    );

    // The original is untouched by all of it.
    assert_eq!(verified(home).await, (count, head.to_owned()));
}

/// Plants the loaded bot token wherever a session can put it: page, Telegram
/// and stranger messages, a reply's text and button, an edit, a chat id, a
/// message id, a missing file path, and a relay request. Waits until the
/// relay request and every tool call are recorded; returns how many tool
/// calls it made.
pub(crate) async fn plant_token(
    home: &TempHome,
    session: &mut Session,
    fake: &FakeTelegram,
    port: u16,
    page: &str,
) -> usize {
    use crate::telegram::{
        ALICE, EVE, TOKEN, TOKEN_PART, event_from, from_alice, private, text_update, user,
    };
    // Inbound: typed on the page, from an allowed user, from a stranger.
    page_send(port, page, &format!("page says {TOKEN}")).await;
    let e = session.event().await;
    assert_eq!(e["content"], "page says [redacted]", "{e}");
    fake.inject_update(from_alice(10, &format!("alice says {TOKEN}")));
    let e = event_from(session, ALICE).await;
    assert_eq!(e["content"], "alice says [redacted]", "{e}");
    fake.inject_update(text_update(
        11,
        user(EVE, "Eve"),
        private(EVE, "Eve"),
        &format!("eve says {TOKEN}"),
    ));
    let eve = EVE.to_string();
    until_row(home, "Eve's drop", |r| {
        r["kind"] == "inbound" && r["sender_id"] == eve.as_str()
    })
    .await;

    // Tool calls: the secret in text, buttons, chat ids, message ids and
    // file paths; some succeed, some fail with it in their arguments.
    let (is_error, sent) = outcome(
        &session
            .call(
                "reply",
                json!({"chat_id": "telegram:111", "text": format!("reply says {TOKEN}"),
                       "buttons": [[{"label": format!("use {TOKEN}"), "data": "x"}]]}),
            )
            .await,
    );
    assert!(!is_error, "{sent}");
    let bot_id = sent_id(&sent);
    let calls = [
        (
            "reply",
            json!({"chat_id": "fakechat:web", "text": format!("page reply {TOKEN}")}),
            Some(false),
        ),
        (
            "edit_message",
            json!({"chat_id": "telegram:111", "message_id": bot_id, "text": format!("edit {TOKEN}")}),
            Some(false),
        ),
        (
            "reply",
            json!({"chat_id": format!("telegram:{TOKEN}"), "text": "to a secret chat"}),
            Some(true),
        ),
        (
            "reply",
            json!({"chat_id": "fakechat:web", "text": "a file",
                   "files": [format!("/nonexistent/{TOKEN}")]}),
            Some(true),
        ),
        (
            "react",
            json!({"chat_id": "telegram:111", "message_id": TOKEN, "emoji": "👍"}),
            None,
        ),
    ];
    for (tool, args, fails) in &calls {
        let (is_error, text) = outcome(&session.call(tool, args.clone()).await);
        if let Some(fails) = fails {
            assert_eq!(is_error, *fails, "{tool} {args}: {text}");
        }
        assert!(!text.contains(TOKEN_PART), "{text}");
    }
    // The relay: the secret in the request Claude Code relays.
    session
        .permission_request(json!({
            "request_id": "sekrt",
            "tool_name": "Bash",
            "description": format!("run with {TOKEN}"),
            "input_preview": format!("{{\"command\":\"curl -H 'token: {TOKEN}'\"}}"),
        }))
        .await;
    until_row(home, "relay request", |r| {
        r["kind"] == "relay" && r["detail"]["event"] == "request"
    })
    .await;
    let deadline = Instant::now() + SOON;
    loop {
        let all = rows(home).await;
        if of_kind(&all, "tool").len() == calls.len() + 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every tool call was recorded:\n{}",
            listing(&all)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    calls.len() + 1
}
