//! A third-party filter may rewrite what a message says, never where it
//! goes, who sent it or which message it is: the `redirect` fixture's
//! rewrites that try are refused, in both directions, and named. And a
//! filter keeps nothing from one message to the next: the `amnesia` fixture
//! looks for the previous message in its statics and in all of its memory.

use serde_json::json;

use crate::session::*;
use crate::support::*;

/// A fakechat home with the `redirect` fixture dropped in, approved and
/// enabled as an ordinary filter.
fn home_with_redirect() -> (TempHome, u16) {
    home_with_filter("redirect", "")
}

/// A fakechat home with fixture `name` dropped in, approved and enabled as
/// a filter, and `config` added to `airlock.toml`.
fn home_with_filter(name: &str, config: &str) -> (TempHome, u16) {
    let home = TempHome::new();
    let [port] = free_ports();
    home.drop_in(
        name,
        &fixture_wasm(name),
        &format!("name = \"{name}\"\nkind = \"filter\"\napi = \"0.1\"\n"),
    );
    home.config(&format!(
        "{config}\n[components.fakechat]\nsettings = {{ port = \"{port}\" }}\n\n\
         [components.{name}]\nenabled = true\n"
    ));
    let out = home.airlock(&["adapters", "approve", name]);
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

/// What the `amnesia` fixture says when it finds nothing of an earlier
/// message: it saw its own marker (the scan works), its static held nothing,
/// and no other message's marker was anywhere in its linear memory.
const REMEMBERS_NOTHING: &str = "own=yes static=none others=none";

/// `n` markers of the form the `amnesia` fixture looks for (`mark-` and 16
/// lowercase hex digits), new in every test run and distinct from each other.
fn markers(n: usize) -> Vec<String> {
    use std::hash::{BuildHasher, RandomState};
    let seed = RandomState::new();
    let mut seen = std::collections::BTreeSet::new();
    (0..n)
        .map(|i| format!("mark-{:016x}", seed.hash_one(i)))
        .inspect(|m| assert!(seen.insert(m.clone()), "marker {m} repeated"))
        .collect()
}

/// A filter keeps nothing between messages: each gets a fresh instance, and
/// nothing of an earlier one may be visible in it (whatever allocator the
/// engine uses, and however instances are made ready ahead of time).
///
/// The `amnesia` fixture keeps each message's marker in a static, in static
/// data and in leaked heap memory, then scans its whole linear memory for
/// markers and reports what it found in place of the text. Every message,
/// inbound through the page and outbound through `reply`, back to back and
/// concurrently, must report only its own marker: an instance used for a
/// second message would report the first one in `static=`, and memory
/// handed on without a reset (a pooled slot, say) would show earlier markers
/// in `others=`. `own=yes` on each shows the scan did see the message's bytes,
/// so an empty `others=` is not a scan that looked nowhere.
#[tokio::test]
async fn a_filter_keeps_nothing_between_messages() {
    let (home, port) = home_with_filter("amnesia", NO_SENDER_LIMIT);
    let mut session = Session::start(&home).await;
    let token = session.log.token(port).await;

    // Inbound, back to back: each message is filtered before the next is sent.
    let mut asked = String::new();
    for marker in markers(20) {
        asked = page_send(port, &token, &format!("note {marker} ends")).await;
        let event = session.event().await;
        assert_eq!(event["content"], REMEMBERS_NOTHING, "{marker}: {event}");
    }
    // Inbound, all at once.
    let concurrent = markers(8);
    futures::future::join_all(
        concurrent
            .iter()
            .map(|marker| page_send(port, &token, marker)),
    )
    .await;
    for _ in &concurrent {
        let event = session.event().await;
        assert_eq!(event["content"], REMEMBERS_NOTHING, "{event}");
    }

    // Outbound, back to back, then all at once.
    let reply = |text: String| {
        session.call(
            "reply",
            json!({"chat_id": "fakechat:web", "text": text, "reply_to": asked}),
        )
    };
    for marker in markers(20) {
        let (is_error, text) = outcome(&reply(format!("answer {marker}.")).await);
        assert!(!is_error, "{marker}: {text}");
    }
    // More at once than the filter pool has slots (16): instances kept
    // until an answer is written must not hold up the calls still waiting.
    for result in futures::future::join_all(markers(24).into_iter().map(reply)).await {
        let (is_error, text) = outcome(&result);
        assert!(!is_error, "{text}");
    }
    let sent: Vec<String> = page_messages(port, &token)
        .await
        .into_iter()
        .filter(|m| m["from"] == "bot")
        .map(|m| m["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(sent.len(), 44, "{sent:?}");
    for text in &sent {
        assert_eq!(text, REMEMBERS_NOTHING, "{sent:?}");
    }
    session.close().await;
}

/// The control for the test above: the `amnesia` fixture does notice when an
/// instance sees a second message. One instance, made here with plain
/// wasmtime (not the host's runtime, which never does this), is given two
/// messages; the second report names the first message's marker, both as
/// what its static held and as found in memory.
#[tokio::test]
async fn the_amnesia_fixture_reports_a_reused_instance() {
    use airlock::bindings::Filter;
    use airlock::bindings::message_filter::OutboundVerdict;
    use airlock::bindings::types::{OutboundMessage, TextFormat};
    use wasmtime::component::{Component, Linker};

    let engine = wasmtime::Engine::default();
    let component = Component::from_file(&engine, fixture_wasm("amnesia")).unwrap();
    let mut linker = Linker::<()>::new(&engine);
    // The fixture calls no import; any call would trap.
    linker.define_unknown_imports_as_traps(&component).unwrap();
    let mut store = wasmtime::Store::new(&engine, ());
    let filter = Filter::instantiate_async(&mut store, &component, &linker)
        .await
        .unwrap();
    let calls = filter.airlock_channel_message_filter();
    calls
        .call_configure(&mut store, &Vec::new())
        .await
        .unwrap()
        .unwrap();

    let [first, second] = <[String; 2]>::try_from(markers(2)).unwrap();
    let mut reports = Vec::new();
    for marker in [&first, &second] {
        let message = OutboundMessage {
            chat_id: "web".into(),
            text: format!("answer {marker}."),
            reply_to: None,
            format: TextFormat::Plain,
            buttons: Vec::new(),
            files: Vec::new(),
        };
        match calls
            .call_filter_outbound(&mut store, &message)
            .await
            .unwrap()
        {
            OutboundVerdict::Rewrite(m) => reports.push(m.text),
            other => panic!("expected a report, got {other:?}"),
        }
    }
    assert_eq!(reports[0], REMEMBERS_NOTHING);
    assert_eq!(reports[1], format!("own=yes static={first} others={first}"));
}
