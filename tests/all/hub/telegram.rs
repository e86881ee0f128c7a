//! The hub on Telegram: several `airlock serve` processes, one poller among
//! them, chats bound to sessions with `/session`, held and away events, a
//! kill -9 of the poller mid-burst, tools kept to a session's own chats,
//! and the permission relay with request ids that collide across sessions.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use fake_telegram::FakeTelegram;
use serde_json::{Value, json};

use super::*;
use crate::relay::request;
use crate::telegram::{
    ALICE, TOKEN, from_alice, polling, private, telegram_home, text_update, until, user,
};

/// A second allowed user; his direct chat has the same id.
const BOB: i64 = 222;

/// A direct text message from `from` (whose direct chat has the same id).
fn dm(message_id: i64, from: i64, name: &str, text: &str) -> Value {
    text_update(message_id, user(from, name), private(from, name), text)
}

/// A direct text message from Bob.
fn from_bob(message_id: i64, text: &str) -> Value {
    dm(message_id, BOB, "Bob", text)
}

/// Every sendMessage text the fake received for chat `chat`, in order.
fn texts_to(fake: &FakeTelegram, chat: i64) -> Vec<String> {
    fake.calls_to("sendMessage")
        .iter()
        .filter(|c| c.param("chat_id") == Some(&json!(chat)))
        .filter_map(|c| c.param("text").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// How many texts sent to `chat` contain `needle`.
fn count_to(fake: &FakeTelegram, chat: i64, needle: &str) -> usize {
    texts_to(fake, chat)
        .iter()
        .filter(|t| t.contains(needle))
        .count()
}

/// A home on `fake` (with `extra` config lines) where Alice and Bob may write.
async fn alice_and_bob(fake: &FakeTelegram, extra: &str) -> TempHome {
    let home = telegram_home(fake, extra);
    for id in [ALICE, BOB] {
        cli_ok(&home, &["access", "allow", "telegram", &id.to_string()]).await;
    }
    home
}

/// The first session: it starts first, so it polls.
async fn first(home: &TempHome, fake: &FakeTelegram, name: &str) -> Session {
    let session = session_as(home, name, "warn").await;
    polling(fake).await;
    session
}

/// `/session NAME` typed in `chat` (the direct chat of `from`); returns once
/// the confirmation reached the chat.
async fn bind(fake: &FakeTelegram, message_id: i64, from: i64, who: &str, name: &str) {
    fake.inject_update(dm(message_id, from, who, &format!("/session {name}")));
    let said = format!("This chat now goes to session {name} (");
    until(&format!("the binding of chat {from} to {name}"), || {
        count_to(fake, from, &said) == 1
    })
    .await;
}

/// Waits until the fake handed over every update and airlock confirmed
/// them (each was gated, and stored or dropped).
async fn consumed(fake: &FakeTelegram) {
    until("every update to be confirmed", || {
        fake.pending_updates() == 0
    })
    .await;
}

/// Two sessions, `api` (the poller) and `web`; Alice's chat bound to `api`
/// and Bob's to `web`, and one message of each delivered (so each chat is
/// one the tools may write to).
async fn two_bound(fake: &FakeTelegram, home: &TempHome) -> (Session, Session) {
    let mut api = first(home, fake, "api").await;
    let mut web = session_as(home, "web", "warn").await;
    bind(fake, 1, ALICE, "Alice", "api").await;
    bind(fake, 2, BOB, "Bob", "web").await;
    fake.inject_update(from_alice(3, "alice: hello"));
    fake.inject_update(from_bob(4, "bob: hello"));
    let e = api.event().await;
    assert_eq!(
        (session_of(&e), e["content"].as_str()),
        ("api", Some("alice: hello")),
        "{e}"
    );
    let e = web.event().await;
    assert_eq!(
        (session_of(&e), e["content"].as_str()),
        ("web", Some("bob: hello")),
        "{e}"
    );
    (api, web)
}

// ---------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------

#[tokio::test]
async fn two_chats_bound_to_two_sessions_each_reach_only_their_own() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = alice_and_bob(&fake, "").await;
    let (mut api, mut web) = two_bound(&fake, &home).await;

    // Interleaved, as two people write at once.
    for i in 0..3 {
        fake.inject_update(from_alice(10 + 2 * i, &format!("alice {i}")));
        fake.inject_update(from_bob(11 + 2 * i, &format!("bob {i}")));
    }
    let to_api = events(&mut api, "api", 3).await;
    let to_web = events(&mut web, "web", 3).await;
    assert_eq!(contents(&to_api), ["alice 0", "alice 1", "alice 2"]);
    assert_eq!(contents(&to_web), ["bob 0", "bob 1", "bob 2"]);
    for e in &to_api {
        assert_eq!(session_of(e), "api", "{e}");
        assert_eq!(e["meta"]["chat_id"], format!("telegram:{ALICE}"), "{e}");
    }
    for e in &to_web {
        assert_eq!(session_of(e), "web", "{e}");
        assert_eq!(e["meta"]["chat_id"], format!("telegram:{BOB}"), "{e}");
    }
    nothing_for(&mut api, "api").await;
    nothing_for(&mut web, "web").await;
    // Neither chat was asked to pick: both were bound before they wrote.
    for chat in [ALICE, BOB] {
        assert_eq!(
            count_to(&fake, chat, "/session "),
            0,
            "{:?}",
            texts_to(&fake, chat)
        );
    }
    api.close().await;
    web.close().await;
}

#[tokio::test]
async fn an_unbound_chat_is_held_with_one_pick_reply_and_routed_by_session() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = alice_and_bob(&fake, "").await;
    let mut api = first(&home, &fake, "api").await;
    let mut web = session_as(&home, "web", "warn").await;

    fake.inject_update(from_alice(1, "first"));
    fake.inject_update(from_alice(2, "second"));
    consumed(&fake).await;
    until("the reply asking Alice to pick", || {
        count_to(&fake, ALICE, "/session ") > 0
    })
    .await;
    nothing_for(&mut api, "api").await;
    nothing_for(&mut web, "web").await;
    let texts = texts_to(&fake, ALICE);
    assert_eq!(texts.len(), 1, "one reply for two held messages: {texts:?}");
    assert!(
        texts[0].contains("/session api") && texts[0].contains("/session web"),
        "{texts:?}"
    );

    bind(&fake, 3, ALICE, "Alice", "web").await;
    let got = events(&mut web, "web", 2).await;
    assert_eq!(contents(&got), ["first", "second"], "in the order written");
    assert!(got.iter().all(|e| session_of(e) == "web"), "{got:?}");
    // And what she writes now goes straight there.
    fake.inject_update(from_alice(4, "third"));
    assert_eq!(web.event().await["content"], "third");
    nothing_for(&mut api, "api").await;
    nothing_for(&mut web, "web").await;
    assert_eq!(
        count_to(&fake, ALICE, "/session api"),
        1,
        "{:?}",
        texts_to(&fake, ALICE)
    );
    api.close().await;
    web.close().await;
}

#[tokio::test]
async fn a_chat_whose_session_is_away_waits_is_told_once_and_is_delivered_on_return() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = alice_and_bob(&fake, "").await;
    let mut api = first(&home, &fake, "api").await;
    let mut web = session_as(&home, "web", "warn").await;
    bind(&fake, 1, ALICE, "Alice", "web").await;
    fake.inject_update(from_alice(2, "before"));
    assert_eq!(web.event().await["content"], "before");

    close_and_wait(&home, "web", web).await;
    for i in 0..5 {
        fake.inject_update(from_alice(10 + i, &format!("while away {i}")));
    }
    consumed(&fake).await;
    until("the away notice", || count_to(&fake, ALICE, "is away") > 0).await;
    nothing_for(&mut api, "api").await;
    assert_eq!(
        count_to(&fake, ALICE, "is away"),
        1,
        "told once for five messages: {:?}",
        texts_to(&fake, ALICE)
    );
    assert!(
        texts_to(&fake, ALICE)
            .iter()
            .any(|t| t.contains("Session web is away")),
        "{:?}",
        texts_to(&fake, ALICE)
    );

    let mut web = session_as(&home, "web", "warn").await;
    let got = events(&mut web, "web", 5).await;
    assert_eq!(
        contents(&got),
        (0..5)
            .map(|i| format!("while away {i}"))
            .collect::<Vec<_>>(),
        "all of them, in order"
    );
    assert!(got.iter().all(|e| session_of(e) == "web"), "{got:?}");
    nothing_for(&mut web, "web").await;
    nothing_for(&mut api, "api").await;
    // Back: the next message goes straight to it, and nobody is told again.
    fake.inject_update(from_alice(20, "welcome back"));
    assert_eq!(web.event().await["content"], "welcome back");
    assert_eq!(
        count_to(&fake, ALICE, "is away"),
        1,
        "{:?}",
        texts_to(&fake, ALICE)
    );
    api.close().await;
    web.close().await;
}

// ---------------------------------------------------------------------------
// The poller killed
// ---------------------------------------------------------------------------

/// A session driven by hand (so it can be killed); its handshake done.
async fn raw_as(home: &TempHome, name: &str) -> Raw {
    let mut raw = Raw::start_command(serve_as(home, name, "warn"));
    raw.initialize().await;
    raw.initialized().await;
    raw
}

/// `session`'s events until it has `n` (or [`SOON`] passes with none new),
/// with the moment the `n`th came; then any more that come within
/// [`QUIET`]. Each must be routed to `name`.
async fn collect(session: &mut Session, name: &str, n: usize) -> (Vec<Value>, Instant) {
    let mut got = Vec::new();
    while got.len() < n {
        match session.event_within(SOON).await {
            Some(e) => got.push(e),
            None => break,
        }
    }
    let at = Instant::now();
    while let Some(e) = session.event_within(QUIET).await {
        got.push(e);
    }
    for e in &got {
        assert_eq!(session_of(e), name, "{e}");
    }
    (got, at)
}

#[tokio::test]
async fn the_poller_killed_mid_burst_is_replaced_and_every_message_arrives_exactly_once() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = alice_and_bob(&fake, NO_SENDER_LIMIT).await;
    let mut poller = raw_as(&home, "poller").await;
    polling(&fake).await;
    let mut api = session_as(&home, "api", "warn").await;
    let mut web = session_as(&home, "web", "warn").await;
    bind(&fake, 1, ALICE, "Alice", "api").await;
    bind(&fake, 2, BOB, "Bob", "web").await;

    // 60 messages, Alice's and Bob's in turn; the poller dies a third of
    // the way in, once it has stored some of them, while more come.
    const BURST: i64 = 60;
    let mut killed_at = None;
    for i in 0..BURST {
        let id = 100 + i;
        if i % 2 == 0 {
            fake.inject_update(from_alice(id, &format!("m{id}")));
        } else {
            fake.inject_update(from_bob(id, &format!("m{id}")));
        }
        if i == BURST / 3 {
            until("the poller to confirm part of the burst", || {
                fake.pending_updates() < (i + 1) as usize
            })
            .await;
            poller.child.start_kill().expect("kill -9 the poller");
            killed_at = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let status = poller.child.wait().await.unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "{status:?}"
    );
    assert!(
        !poller.log.text().contains("panicked"),
        "{}",
        poller.log.text()
    );

    let ((to_api, api_done), (to_web, web_done)) = tokio::join!(
        collect(&mut api, "api", (BURST / 2) as usize),
        collect(&mut web, "web", (BURST / 2) as usize)
    );
    let all_in = api_done.max(web_done) - killed_at.unwrap();
    let ids = |got: &[Value]| -> Vec<i64> {
        got.iter()
            .map(|e| e["meta"]["message_id"].as_str().unwrap().parse().unwrap())
            .collect()
    };
    let (api_ids, web_ids) = (ids(&to_api), ids(&to_web));
    let mut all: Vec<i64> = api_ids.iter().chain(&web_ids).copied().collect();
    all.sort();
    let unique: BTreeSet<i64> = all.iter().copied().collect();
    let duplicates: Vec<i64> = all
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    let missing: Vec<i64> = (100..100 + BURST).filter(|i| !unique.contains(i)).collect();
    assert!(
        duplicates.is_empty() && missing.is_empty(),
        "exactly once: duplicated {duplicates:?}, missing {missing:?}\napi got {api_ids:?}\nweb \
         got {web_ids:?}\napi stderr:\n{}\nweb stderr:\n{}",
        api.log.text(),
        web.log.text()
    );
    // Each chat reached its own session, in the order written.
    let evens: Vec<i64> = (100..100 + BURST).step_by(2).collect();
    let odds: Vec<i64> = (101..100 + BURST).step_by(2).collect();
    assert_eq!(api_ids, evens, "Alice's messages, to api, in order");
    assert_eq!(web_ids, odds, "Bob's messages, to web, in order");

    // Each message was stored once, some by the poller before it died and
    // the rest by the survivor that took over.
    let export = cli_ok(&home, &["audit", "export", "--jsonl"]).await;
    let mut stored_by: Vec<(i64, String)> = export
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|r| r["kind"] == "inbound")
        .filter_map(|r| {
            let detail: Value = serde_json::from_str(r["detail"].as_str()?).ok()?;
            let id: i64 = detail["message_id"].as_str()?.parse().ok()?;
            let by = r["session"].as_str()?.split(" (pid").next()?.to_owned();
            (detail["outcome"] == "queued" && id >= 100).then_some((id, by))
        })
        .collect();
    stored_by.sort();
    let ids_stored: Vec<i64> = stored_by.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        ids_stored,
        (100..100 + BURST).collect::<Vec<_>>(),
        "each stored once: {stored_by:?}"
    );
    let by_poller = stored_by.iter().filter(|(_, by)| by == "poller").count();
    assert!(
        by_poller > 0 && by_poller < BURST as usize,
        "the poller died mid-burst: {stored_by:?}"
    );

    // One of the survivors holds the connection now, and took it soon.
    let conn = rusqlite::Connection::open(home.path().join("airlock.db")).unwrap();
    conn.busy_timeout(SOON).unwrap();
    let holder: String = conn
        .query_row(
            "SELECT session FROM hub_connections WHERE adapter = 'telegram'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(holder == "api" || holder == "web", "{holder}");
    assert!(fake.is_polling(), "someone polls again");
    assert!(
        all_in < Duration::from_secs(3),
        "the last message arrived {all_in:?} after the kill"
    );
    eprintln!("every message arrived once, the last {all_in:?} after the kill");
    api.close().await;
    web.close().await;
}

// ---------------------------------------------------------------------------
// Isolation
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_session_cannot_reply_into_another_sessions_chat() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = alice_and_bob(&fake, "").await;
    let (api, web) = two_bound(&fake, &home).await;
    let before_bob = texts_to(&fake, BOB);
    let before_alice = texts_to(&fake, ALICE);

    let r = api
        .call(
            "reply",
            json!({"chat_id": format!("telegram:{BOB}"), "text": "api writes to bob"}),
        )
        .await;
    let (is_error, text) = outcome(&r);
    assert!(is_error, "refused: {text}");
    assert!(text.contains("belongs to session web"), "{text}");
    let r = web
        .call(
            "reply",
            json!({"chat_id": format!("telegram:{ALICE}"), "text": "web writes to alice"}),
        )
        .await;
    let (is_error, text) = outcome(&r);
    assert!(is_error, "refused: {text}");
    assert!(text.contains("belongs to session api"), "{text}");

    // Its own chat works.
    let r = api
        .call(
            "reply",
            json!({"chat_id": format!("telegram:{ALICE}"), "text": "api writes to alice"}),
        )
        .await;
    let (is_error, text) = outcome(&r);
    assert!(!is_error, "{text}");
    sent_id(&text);

    let mut expected_alice = before_alice;
    expected_alice.push("api writes to alice".into());
    assert_eq!(texts_to(&fake, ALICE), expected_alice);
    assert_eq!(texts_to(&fake, BOB), before_bob, "nothing reached Bob");
    api.close().await;
    web.close().await;
}

// ---------------------------------------------------------------------------
// The permission relay with colliding request ids
// ---------------------------------------------------------------------------

/// Whether `text` is a permission prompt for request `id`.
fn is_prompt(text: &str, id: &str) -> bool {
    text.starts_with("🔐 ") && text.contains(&format!("Request {id}: answer with the buttons"))
}

/// The bot's messages in `chat` that are prompts for request `id`, as they
/// are now.
fn prompts(fake: &FakeTelegram, chat: i64, id: &str) -> Vec<Value> {
    fake.bot_messages()
        .into_iter()
        .filter(|m| {
            m["chat"]["id"] == json!(chat) && m["text"].as_str().is_some_and(|t| is_prompt(t, id))
        })
        .collect()
}

/// The callback data of the button labelled `label` on `m`.
fn data_of(m: &Value, label: &str) -> String {
    m["reply_markup"]["inline_keyboard"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row.as_array().into_iter().flatten())
        .find(|b| b["text"] == label)
        .and_then(|b| b["callback_data"].as_str())
        .unwrap_or_else(|| panic!("no {label:?} button on {m}"))
        .to_owned()
}

/// Alice presses the button labelled `label` on message `m`.
fn alice_presses(fake: &FakeTelegram, m: &Value, label: &str, press_id: &str) {
    fake.inject_update(json!({"callback_query": {
        "id": press_id, "from": user(ALICE, "Alice"), "message": m,
        "chat_instance": "-3214567890123456789", "data": data_of(m, label)}}));
}

/// The bot's message `message_id` in Alice's chat, as it is now.
fn alice_message(fake: &FakeTelegram, message_id: &Value) -> Value {
    fake.bot_messages()
        .into_iter()
        .find(|m| m["chat"]["id"] == json!(ALICE) && &m["message_id"] == message_id)
        .unwrap_or_else(|| panic!("no bot message {message_id}"))
}

/// Sessions `north` (the poller) and `south`; Alice, an owner, bound to
/// north and known to airlock; each session has asked about request
/// `abcde` (north for Write, south for Edit). Returns the sessions and
/// the two prompts: north's, south's (told apart by their tool).
async fn colliding_prompts(fake: &FakeTelegram) -> (TempHome, Session, Session, Value, Value) {
    let home = telegram_home(fake, "");
    cli_ok(
        &home,
        &["access", "allow", "telegram", &ALICE.to_string(), "--owner"],
    )
    .await;
    let mut north = first(&home, fake, "north").await;
    let south = session_as(&home, "south", "warn").await;
    assert!(north.declares_relay() && south.declares_relay());
    bind(fake, 1, ALICE, "Alice", "north").await;
    fake.inject_update(from_alice(2, "hello"));
    assert_eq!(north.event().await["content"], "hello");

    north
        .permission_request(request("abcde", "Write", "{\"file_path\":\"/tmp/n\"}"))
        .await;
    south
        .permission_request(request("abcde", "Edit", "{\"file_path\":\"/tmp/s\"}"))
        .await;
    until("a prompt from each session", || {
        prompts(fake, ALICE, "abcde").len() == 2
    })
    .await;
    let all = prompts(fake, ALICE, "abcde");
    let by_tool = |tool: &str| {
        all.iter()
            .find(|m| {
                m["text"]
                    .as_str()
                    .is_some_and(|t| t.contains(&format!("<code>{tool}</code>")))
            })
            .unwrap_or_else(|| panic!("no prompt for {tool}: {all:?}"))
            .clone()
    };
    let (of_north, of_south) = (by_tool("Write"), by_tool("Edit"));
    (home, north, south, of_north, of_south)
}

#[tokio::test]
async fn colliding_request_ids_get_a_prompt_per_session_and_a_press_answers_only_its_own() {
    let fake = FakeTelegram::start(TOKEN).await;
    let (_home, mut north, mut south, of_north, of_south) = colliding_prompts(&fake).await;

    // Each prompt names its session, and only its own.
    let (tn, ts) = (
        of_north["text"].as_str().unwrap(),
        of_south["text"].as_str().unwrap(),
    );
    assert!(
        tn.contains("From session <code>north</code>.") && !tn.contains("south"),
        "{tn}"
    );
    assert!(
        ts.contains("From session <code>south</code>.") && !ts.contains("north"),
        "{ts}"
    );

    // Allow on south's prompt: the verdict reaches south, not north.
    alice_presses(&fake, &of_south, "Allow", "hub-press-1");
    let verdict = south.verdict_within(SOON).await.expect("south's verdict");
    assert_eq!(verdict, json!({"request_id": "abcde", "behavior": "allow"}));
    assert_eq!(
        north.verdict_within(QUIET).await,
        None,
        "north's request is still open"
    );
    let still = alice_message(&fake, &of_north["message_id"]);
    assert_eq!(
        still.get("edit_date"),
        None,
        "north's prompt stays open: {still}"
    );
    assert_eq!(still["reply_markup"], of_north["reply_markup"]);

    // Deny on north's: north gets it, south nothing more.
    alice_presses(&fake, &of_north, "Deny", "hub-press-2");
    let verdict = north.verdict_within(SOON).await.expect("north's verdict");
    assert_eq!(verdict, json!({"request_id": "abcde", "behavior": "deny"}));
    assert_eq!(south.verdict_within(QUIET).await, None);
    north.close().await;
    south.close().await;
}

#[tokio::test]
async fn a_typed_verdict_whose_id_two_sessions_wait_for_is_refused_and_asks_for_the_button() {
    let fake = FakeTelegram::start(TOKEN).await;
    let (_home, mut north, mut south, of_north, of_south) = colliding_prompts(&fake).await;
    let before = texts_to(&fake, ALICE).len();

    fake.inject_update(from_alice(3, "yes abcde"));
    fake.inject_update(from_alice(4, "after the answer"));
    let e = north.event().await;
    assert_eq!(
        e["content"], "after the answer",
        "the answer was not delivered: {e}"
    );
    assert_eq!(
        north.verdict_within(QUIET).await,
        None,
        "no verdict for north"
    );
    assert_eq!(
        south.verdict_within(Duration::ZERO).await,
        None,
        "nor for south"
    );
    let new: Vec<String> = texts_to(&fake, ALICE).split_off(before);
    assert_eq!(new.len(), 1, "one refusal: {new:?}");
    assert!(
        new[0].contains("buttons") && new[0].contains("north") && new[0].contains("south"),
        "names both sessions and asks for the button: {new:?}"
    );
    for p in [&of_north, &of_south] {
        let now = alice_message(&fake, &p["message_id"]);
        assert_eq!(now.get("edit_date"), None, "both prompts stay open: {now}");
    }

    // The buttons still answer.
    alice_presses(&fake, &of_north, "Allow", "hub-press-3");
    let verdict = north.verdict_within(SOON).await.expect("north's verdict");
    assert_eq!(verdict, json!({"request_id": "abcde", "behavior": "allow"}));
    assert_eq!(south.verdict_within(QUIET).await, None);
    north.close().await;
    south.close().await;
}
