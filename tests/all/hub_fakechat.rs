//! Issue 14, outbound through the owner: fakechat's chat lives in the
//! instance that serves its page, so a session that does not serve it hands
//! its calls to the one that does. Two `airlock serve` processes on one
//! state directory: the page user binds the chat to the second session,
//! whose replies, edits and history reads go through the first one's page;
//! the first session's own reply to that chat is refused; and once the
//! first is killed, the second serves the page and sends through its own
//! instance.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::session::*;
use crate::support::*;

const CHAT: &str = "fakechat:web";

/// Session `name` of `home`, as Claude Code holds it, after its handshake.
async fn session_as(home: &TempHome, name: &str) -> Session {
    let mut cmd = serve_command(home);
    cmd.args(["--session", name]);
    Session::start_command(cmd, rmcp::service::ClientLifecycleMode::Initialize).await
}

/// The bot's messages on the page (`(id, text, edited)`).
async fn bot_messages(port: u16, token: &str) -> Vec<(String, String, bool)> {
    page_messages(port, token)
        .await
        .into_iter()
        .filter(|m| m["from"] == "bot")
        .map(|m| {
            (
                m["id"].as_str().unwrap_or_default().to_owned(),
                m["text"].as_str().unwrap_or_default().to_owned(),
                m["edited"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// Waits until the page shows a bot message whose text contains `text`.
async fn until_on_page(port: u16, token: &str, text: &str) -> (String, String, bool) {
    let deadline = Instant::now() + SOON;
    loop {
        let shown = bot_messages(port, token).await;
        if let Some(m) = shown.iter().find(|m| m.1.contains(text)) {
            return m.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the page never showed {text:?}: {shown:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A tool call that must succeed; its text.
async fn ok(session: &Session, tool: &'static str, arguments: Value) -> String {
    let (is_error, text) = outcome(&session.call(tool, arguments).await);
    assert!(
        !is_error,
        "{tool} failed: {text}\nstderr:\n{}",
        session.log.text()
    );
    text
}

/// The pid of the process running session `name`, as the hub recorded it.
fn pid_of(home: &TempHome, name: &str) -> u32 {
    let host = home.host();
    let conn = host.db.lock();
    conn.query_row(
        "SELECT pid FROM hub_sessions WHERE name = ?1",
        [name],
        |r| r.get(0),
    )
    .unwrap_or_else(|e| panic!("no session {name}: {e}"))
}

/// Adapter calls still in the hub's store (each is forgotten once its
/// caller read the answer).
fn calls_left(home: &TempHome) -> i64 {
    let host = home.host();
    let conn = host.db.lock();
    conn.query_row("SELECT COUNT(*) FROM hub_calls", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn a_session_that_does_not_serve_the_page_writes_to_it_through_the_one_that_does() {
    let (home, port) = fakechat_home();
    let mut a = session_as(&home, "a").await;
    let token_a = a.log.token(port).await;
    let mut b = session_as(&home, "b").await;
    logged(
        &b,
        "another session of this state directory serves the page",
    )
    .await;

    // The page user picks session b; a serves the page and stores the
    // message, b receives it.
    page_send(port, &token_a, "/session b").await;
    until_on_page(port, &token_a, "This chat now goes to session b").await;
    page_send(port, &token_a, "hello b").await;
    let event = b.event().await;
    assert_eq!(event["content"], "hello b", "{event}");
    assert_eq!(event["meta"]["session"], "b", "{event}");
    assert_eq!(event["meta"]["chat_id"], CHAT, "{event}");
    if let Some(e) = a.event_within(Duration::from_millis(400)).await {
        panic!("session a got b's event: {e}");
    }

    // b's reply shows on the page a serves, with the id a's instance gave it.
    let sent = ok(&b, "reply", json!({"chat_id": CHAT, "text": "from b"})).await;
    let id = sent_id(&sent);
    let shown = until_on_page(port, &token_a, "from b").await;
    assert_eq!((shown.0.as_str(), shown.2), (id.as_str(), false));

    // An edit goes the same way.
    let edited = ok(
        &b,
        "edit_message",
        json!({"chat_id": CHAT, "message_id": id, "text": "from b, edited"}),
    )
    .await;
    assert_eq!(edited, format!("edited (id: {id})"));
    let shown = until_on_page(port, &token_a, "from b, edited").await;
    assert_eq!((shown.0.as_str(), shown.2), (id.as_str(), true));

    // So does a read of the history: it is the page's.
    let history = ok(&b, "fetch_messages", json!({"chat_id": CHAT})).await;
    assert!(
        history.contains("hello b") && history.contains("from b, edited"),
        "{history}"
    );

    // The adapter's own errors come back as they would locally.
    let (is_error, text) = outcome(
        &b.call(
            "edit_message",
            json!({"chat_id": CHAT, "message_id": "999999", "text": "x"}),
        )
        .await,
    );
    assert!(is_error, "{text}");
    assert!(text.starts_with("fakechat: edit failed: "), "{text}");

    // a serves the page, but the chat is b's.
    let (is_error, text) = outcome(
        &a.call("reply", json!({"chat_id": CHAT, "text": "from a"}))
            .await,
    );
    assert!(is_error, "{text}");
    assert!(text.contains("belongs to session b"), "{text}");
    assert!(
        !bot_messages(port, &token_a)
            .await
            .iter()
            .any(|m| m.1.contains("from a")),
        "a's refused reply reached the page"
    );
    assert_eq!(calls_left(&home), 0, "every answered call is forgotten");

    // a dies: b serves the page within a couple of seconds, and sends
    // through its own instance.
    let killed = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-9", &pid_of(&home, "a").to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let token_b = b.log.token(port).await;
    assert!(
        killed.elapsed() < Duration::from_secs(5),
        "b took {:?} to take over the page",
        killed.elapsed()
    );
    drop(a);
    let sent = ok(&b, "reply", json!({"chat_id": CHAT, "text": "after a"})).await;
    let shown = until_on_page(port, &token_b, "after a").await;
    assert_eq!(shown.0, sent_id(&sent));
    page_send(port, &token_b, "still there?").await;
    let event = b.event().await;
    assert_eq!(event["content"], "still there?", "{event}");
    assert_eq!(calls_left(&home), 0, "b's reply was not handed over");
    b.close().await;
}

/// A session that stored a message of a chat bound to no session and died
/// before writing it: the next session, under another name and the only
/// live one, takes it over and delivers it, once.
#[tokio::test]
async fn what_a_dead_session_stored_for_an_unbound_chat_reaches_the_next_one_under_another_name() {
    let (home, port) = fakechat_home();
    let mut cmd = serve_command(&home);
    cmd.args(["--session", "b"]);
    // Never initialized: what it stores it keeps, undelivered.
    let mut b = Raw::start_command(cmd);
    let token = b.log.token(port).await;
    let id = page_send(port, &token, "stored by b, never written").await;
    let deadline = Instant::now() + SOON;
    while waiting_for(&home, "b") == 0 {
        assert!(
            Instant::now() < deadline,
            "b stored nothing:\n{}",
            b.log.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.child.kill().await.unwrap();

    let mut a = session_as(&home, "a").await;
    let event = a.event().await;
    assert_eq!(event["content"], "stored by b, never written", "{event}");
    assert_eq!(event["meta"]["message_id"], id.as_str(), "{event}");
    assert_eq!(event["meta"]["session"], "a", "{event}");
    let summary =
        "session a took 1 waiting event(s) of chats bound to no session from b, which is away";
    let audited: i64 = home
        .host()
        .db
        .lock()
        .query_row(
            "SELECT COUNT(*) FROM audit WHERE kind = 'hub' AND summary = ?1",
            [summary],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(audited, 1, "the audit trail says so");
    assert!(
        a.event_within(Duration::from_millis(500)).await.is_none(),
        "delivered twice"
    );
    assert_eq!(waiting_for(&home, "b"), 0);
    a.close().await;
}

/// Events stored for session `name` and not yet delivered.
fn waiting_for(home: &TempHome, name: &str) -> i64 {
    let host = home.host();
    let conn = host.db.lock();
    conn.query_row(
        "SELECT COUNT(*) FROM events WHERE session = ?1",
        [name],
        |r| r.get(0),
    )
    .unwrap()
}
