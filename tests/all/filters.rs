//! A third-party filter may rewrite what a message says, never where it
//! goes, who sent it or which message it is: the `redirect` fixture's
//! rewrites that try are refused, in both directions, and named.

use serde_json::json;

use crate::session::*;
use crate::support::*;

/// A fakechat home with the `redirect` fixture dropped in, approved and
/// enabled as an ordinary filter.
fn home_with_redirect() -> (TempHome, u16) {
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
    let out = home.airlock(&["adapters", "approve", "redirect"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (home, port)
}

#[tokio::test]
async fn an_inbound_rewrite_keeps_the_sender_chat_and_ids() {
    let (home, port) = home_with_redirect();
    let mut session = Session::start(&home).await;
    let token = session.log.token(port).await;

    // Each of these rewrites reaches for what the gate decided on.
    for text in ["sender I am the boss", "chat move me", "id renumber me"] {
        page_send(port, &token, text).await;
    }
    let id = page_send(port, &token, "shout hello").await;
    // The first event the session sees is the allowed rewrite, from the
    // sender and chat the gate let in.
    let event = session.event().await;
    assert_eq!(event["content"], "SHOUT HELLO", "{event}");
    let meta = &event["meta"];
    assert_eq!(meta["user_id"], "web", "{event}");
    assert_eq!(meta["user"], "web", "{event}");
    assert_eq!(meta["chat_id"], "fakechat:web", "{event}");
    assert_eq!(meta["message_id"], id.as_str(), "{event}");

    let log = session.log.text();
    for field in ["sender", "chat", "message-id"] {
        let line = format!("the filter tried to change the message's {field},");
        assert!(
            log.lines()
                .any(|l| l.contains(&line) && l.contains("redirect")),
            "no warning naming the filter and {field}:\n{log}"
        );
    }
    session.close().await;
}

#[tokio::test]
async fn an_outbound_rewrite_cannot_redirect_a_reply() {
    let (home, port) = home_with_redirect();
    let mut session = Session::start(&home).await;
    let token = session.log.token(port).await;
    let asked = page_send(port, &token, "shout hi").await;
    session.event().await;

    for (text, field) in [
        ("chat please", "chat-id"),
        ("id please", "reply-to"),
        ("files please", "files"),
    ] {
        let result = session
            .call(
                "reply",
                json!({"chat_id": "fakechat:web", "text": text, "reply_to": asked}),
            )
            .await;
        let (is_error, text) = outcome(&result);
        assert!(is_error, "{text}");
        assert!(
            text.contains("filter redirect")
                && text.contains(&format!("change the message's {field},")),
            "{text}"
        );
    }
    let result = session
        .call(
            "edit_message",
            json!({"chat_id": "fakechat:web", "message_id": asked, "text": "chat again"}),
        )
        .await;
    let (is_error, text) = outcome(&result);
    assert!(is_error && text.contains("chat-id"), "{text}");
    let bot = |messages: Vec<serde_json::Value>| {
        messages
            .into_iter()
            .filter(|m| m["from"] == "bot")
            .map(|m| m["text"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    assert!(bot(page_messages(port, &token).await).is_empty());

    // What a filter may do, it still does.
    let result = session
        .call(
            "reply",
            json!({"chat_id": "fakechat:web", "text": "all quiet", "reply_to": asked}),
        )
        .await;
    let (is_error, text) = outcome(&result);
    assert!(!is_error, "{text}");
    assert_eq!(bot(page_messages(port, &token).await), ["ALL QUIET"]);
    let log = session.log.text();
    assert!(
        log.contains("outbound message not sent: the filter tried to change the message's chat-id"),
        "{log}"
    );
    session.close().await;
}
