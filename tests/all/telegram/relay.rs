//! Issue 12's permission relay on Telegram, through the real binary against
//! the fake Bot API: the capability, a prompt sent to the owner's direct
//! chat, the verdict Claude Code gets back (byte for byte), refusals of
//! members and strangers on both the button and the text path, expiry,
//! the one reminder, time-boxed rules ended by revoke and by lockdown, and
//! malformed or hostile requests contained and rendered inert.
//!
//! Telegram keeps one direct chat per user with the user's id, and airlock
//! learns an owner's chat from their first delivered message: each test
//! therefore has the owner write once before any prompt.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fake_telegram::FakeTelegram;
use serde_json::{Value, json};

use super::*;
use crate::relay::request;

/// A member (in the tests that need one).
const BOB: i64 = 222;

/// What a non-owner's answer gets back.
const OWNERS_ONLY: &str = "Only an owner can answer this permission prompt.";
/// What an answer to a closed prompt gets back.
const ALREADY: &str = "This permission prompt was already answered or closed. If the terminal \
                       still asks, answer there.";
/// How long a test waits to be sure something does not happen.
const QUIET: Duration = Duration::from_millis(1000);

/// A direct text message from `from` (whose direct chat has the same id).
fn dm(message_id: i64, from: i64, name: &str, text: &str) -> Value {
    text_update(message_id, user(from, name), private(from, name), text)
}

/// A home on `fake` with `extra` config lines in which Alice is an owner.
async fn owner_home(fake: &FakeTelegram, extra: &str) -> TempHome {
    let home = telegram_home(fake, extra);
    cli_ok(
        &home,
        &["access", "allow", "telegram", &ALICE.to_string(), "--owner"],
    )
    .await;
    home
}

/// A session on `home` in which Alice has written once, so that airlock
/// knows her direct chat.
async fn alice_known(home: &TempHome, fake: &FakeTelegram) -> Session {
    let mut session = start(home, fake, "info").await;
    assert!(session.declares_relay(), "Alice is an owner");
    fake.inject_update(from_alice(1, "hello"));
    assert_eq!(event_from(&mut session, ALICE).await["content"], "hello");
    session
}

/// Polls `f` until it yields a value, failing with `what` after [`SOON`].
async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + SOON;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether `text` is the prompt for request `id`.
fn is_prompt(text: &str, id: &str) -> bool {
    text.starts_with("🔐 ") && text.contains(&format!("Request {id}: answer with the buttons"))
}

/// Every sendMessage call that sent a prompt (for any request).
fn prompt_calls(fake: &FakeTelegram) -> Vec<fake_telegram::Call> {
    fake.calls_to("sendMessage")
        .into_iter()
        .filter(|c| {
            c.param("text")
                .and_then(Value::as_str)
                .is_some_and(|t| t.starts_with("🔐 "))
        })
        .collect()
}

/// The sendMessage call that sent the prompt for request `id` to `chat`.
fn prompt_call(fake: &FakeTelegram, chat: i64, id: &str) -> Option<fake_telegram::Call> {
    prompt_calls(fake).into_iter().find(|c| {
        c.param("chat_id") == Some(&json!(chat))
            && c.param("text")
                .and_then(Value::as_str)
                .is_some_and(|t| is_prompt(t, id))
    })
}

/// The bot's message `message_id` in `chat`, as it is now.
fn message(fake: &FakeTelegram, chat: i64, message_id: &Value) -> Value {
    fake.bot_messages()
        .into_iter()
        .find(|m| m["chat"]["id"] == json!(chat) && &m["message_id"] == message_id)
        .unwrap_or_else(|| panic!("no bot message {message_id} in chat {chat}"))
}

/// The prompt for request `id` in `chat`, once it was sent (as first sent).
async fn prompt_in(fake: &FakeTelegram, chat: i64, id: &str) -> Value {
    wait_for(&format!("the prompt for {id} in chat {chat}"), || {
        fake.bot_messages().into_iter().find(|m| {
            m["chat"]["id"] == json!(chat) && m["text"].as_str().is_some_and(|t| is_prompt(t, id))
        })
    })
    .await
}

/// Waits until the bot's message `m` was edited; returns it as edited.
async fn edited(fake: &FakeTelegram, m: &Value) -> Value {
    let chat = m["chat"]["id"].as_i64().unwrap();
    wait_for("the prompt to be edited", || {
        let now = message(fake, chat, &m["message_id"]);
        now.get("edit_date").is_some().then_some(now)
    })
    .await
}

/// The labels of a message's inline keyboard, row by row.
fn labels(m: &Value) -> Vec<Vec<String>> {
    m["reply_markup"]["inline_keyboard"]
        .as_array()
        .unwrap_or_else(|| panic!("no inline keyboard: {m}"))
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|b| b["text"].as_str().unwrap().to_owned())
                .collect()
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

/// `from` presses a button with `data` on message `m`.
fn press_data(fake: &FakeTelegram, from: Value, m: &Value, data: &str) {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let id = format!("relay-press-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    fake.inject_update(json!({"callback_query": {
        "id": id, "from": from, "message": m,
        "chat_instance": "-3214567890123456789", "data": data}}));
}

/// `from` presses the button labelled `label` on message `m`.
fn press(fake: &FakeTelegram, from: Value, m: &Value, label: &str) {
    press_data(fake, from, m, &data_of(m, label));
}

/// Every sendMessage text the fake received for chat `chat`, in order.
fn texts_to(fake: &FakeTelegram, chat: i64) -> Vec<String> {
    fake.calls_to("sendMessage")
        .iter()
        .filter(|c| c.param("chat_id") == Some(&json!(chat)))
        .filter_map(|c| c.param("text").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// How many times `needle` occurs in the session's stderr.
fn logged(session: &Session, needle: &str) -> usize {
    session.log.text().matches(needle).count()
}

/// Waits until `text` reached `chat`.
async fn said_to(fake: &FakeTelegram, chat: i64, text: &str) {
    wait_for(&format!("{text:?} in chat {chat}"), || {
        texts_to(fake, chat).iter().any(|t| t == text).then_some(())
    })
    .await;
}

/// The text's length as Telegram counts it (UTF-16 code units).
fn units(text: &str) -> usize {
    text.encode_utf16().count()
}

// ---------------------------------------------------------------------------
// The capability
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_capability_is_declared_with_an_owner_and_not_with_a_member_or_with_the_relay_off() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = owner_home(&fake, "").await;
    let session = start(&home, &fake, "info").await;
    assert!(session.declares_relay(), "an owner exists");
    session.close().await;

    let fake = FakeTelegram::start(TOKEN).await;
    let home = telegram_home(&fake, "");
    allow_alice(&home).await;
    let session = start(&home, &fake, "info").await;
    assert!(
        !session.declares_relay(),
        "only a member: nobody may answer"
    );
    session.close().await;

    let fake = FakeTelegram::start(TOKEN).await;
    let home = owner_home(&fake, "[relay]\nenabled = false").await;
    let session = start(&home, &fake, "info").await;
    assert!(!session.declares_relay(), "the relay is off");
    session.close().await;
}

// ---------------------------------------------------------------------------
// Allow, by an owner
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_owner_presses_allow_and_the_verdict_is_sent_and_the_prompt_closed() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = owner_home(&fake, "").await;
    let mut session = alice_known(&home, &fake).await;

    session
        .permission_request(request("abcde", "Write", "{\"file_path\":\"/tmp/x\"}"))
        .await;
    let prompt = prompt_in(&fake, ALICE, "abcde").await;
    let call = prompt_call(&fake, ALICE, "abcde").unwrap();
    assert_eq!(call.param("parse_mode"), Some(&json!("HTML")));
    assert_eq!(labels(&prompt), [vec!["Allow", "Deny"], vec!["Details"]]);
    let text = prompt["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            "🔐 Claude Code asks to use <code>Write</code>\n<code>Write call</code>\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("<pre>{\"file_path\":\"/tmp/x\"}</pre>")
            && text
                .ends_with("The terminal asks the same question and may already have answered it."),
        "{text}"
    );
    for b in prompt["reply_markup"]["inline_keyboard"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap())
    {
        let data = b["callback_data"].as_str().unwrap();
        assert!(data.starts_with("airlock:perm:"), "{data}");
    }

    press(&fake, user(ALICE, "Alice"), &prompt, "Allow");
    let verdict = session.verdict_within(SOON).await.expect("a verdict");
    assert_eq!(verdict, json!({"request_id": "abcde", "behavior": "allow"}));

    let closed = edited(&fake, &prompt).await;
    let text = closed["text"].as_str().unwrap();
    assert!(text.starts_with("✅ Allowed by"), "{text}");
    assert!(
        text.starts_with("✅ Allowed by <code>alice</code> on <code>telegram</code> at "),
        "{text}"
    );
    assert!(
        text.ends_with("Request abcde. The terminal may already have answered it."),
        "{text}"
    );
    assert_eq!(closed.get("reply_markup"), None, "the buttons are gone");
    let edit = fake.calls_to("editMessageText").pop().unwrap();
    assert_eq!(edit.param("reply_markup"), None);
    assert_eq!(edit.param("parse_mode"), Some(&json!("HTML")));

    assert_eq!(
        session.event_within(Duration::from_millis(300)).await,
        None,
        "a press on a prompt never reaches the session"
    );
    assert_eq!(
        session.verdict_within(Duration::from_millis(100)).await,
        None
    );
    // The press was answered, so the client stops its spinner.
    until("answerCallbackQuery", || {
        !fake.calls_to("answerCallbackQuery").is_empty()
    })
    .await;

    // A second press (an old copy of the keyboard) changes nothing.
    press(&fake, user(ALICE, "Alice"), &prompt, "Deny");
    said_to(&fake, ALICE, ALREADY).await;
    assert_eq!(
        session.verdict_within(Duration::from_millis(300)).await,
        None
    );
    session.close().await;
}

#[tokio::test]
async fn the_verdict_line_is_byte_exact_on_stdout() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = owner_home(&fake, "").await;
    let mut raw = Raw::start_command(serve_logging(&home, "info"));
    let init = raw.initialize().await;
    assert_eq!(
        init["result"]["capabilities"]["experimental"]["claude/channel/permission"],
        json!({}),
        "{init}"
    );
    raw.initialized().await;
    polling(&fake).await;
    fake.inject_update(from_alice(1, "hello"));
    loop {
        let m = raw.next().await;
        if m["method"] == CHANNEL {
            assert_eq!(m["params"]["content"], "hello");
            break;
        }
    }

    raw.send(json!({"jsonrpc": "2.0", "method": PERMISSION_REQUEST,
        "params": request("abcde", "Write", "{\"file_path\":\"/tmp/x\"}")}))
        .await;
    let prompt = prompt_in(&fake, ALICE, "abcde").await;
    press(&fake, user(ALICE, "Alice"), &prompt, "Allow");

    let line = tokio::time::timeout(SOON, raw.stdout.next_line())
        .await
        .expect("a line on stdout")
        .unwrap()
        .expect("stdout is open");
    assert_eq!(
        line,
        r#"{"jsonrpc":"2.0","method":"notifications/claude/channel/permission","params":{"request_id":"abcde","behavior":"allow"}}"#
    );
    // Nothing else follows: the press is no channel event.
    edited(&fake, &prompt).await;
    assert_eq!(raw.next_within(Duration::from_millis(300)).await, None);
    drop(raw.stdin.take());
    let _ = tokio::time::timeout(SOON, raw.child.wait()).await;
}

// ---------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_member_pressing_allow_is_refused_and_nothing_goes_to_claude_code() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = owner_home(&fake, "").await;
    let mut session = alice_known(&home, &fake).await;

    session
        .permission_request(request("abcde", "Write", "{\"file_path\":\"/tmp/x\"}"))
        .await;
    let prompt = prompt_in(&fake, ALICE, "abcde").await;
    // The owner is made a member before she presses: the role at the press counts.
    cli_ok(
        &home,
        &["access", "role", "telegram", &ALICE.to_string(), "member"],
    )
    .await;
    press(&fake, user(ALICE, "Alice"), &prompt, "Allow");
    said_to(&fake, ALICE, OWNERS_ONLY).await;
    assert_eq!(session.verdict_within(QUIET).await, None, "no verdict");
    assert_eq!(
        session.event_within(Duration::from_millis(100)).await,
        None,
        "the press is not the session's either"
    );
    let now = message(&fake, ALICE, &prompt["message_id"]);
    assert_eq!(now.get("edit_date"), None, "the prompt stays open: {now}");
    assert_eq!(now["reply_markup"], prompt["reply_markup"]);
    assert!(fake.calls_to("editMessageText").is_empty());
    assert_eq!(
        logged(
            &session,
            "relay: refused a verdict from someone who is not an owner"
        ),
        1
    );
    session.close().await;
}

#[tokio::test]
async fn typed_verdicts_count_only_from_an_owner() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = owner_home(&fake, "").await;
    cli_ok(&home, &["access", "allow", "telegram", &BOB.to_string()]).await;
    let mut session = alice_known(&home, &fake).await;

    session
        .permission_request(request("abcde", "Write", "{\"file_path\":\"/tmp/x\"}"))
        .await;
    let prompt = prompt_in(&fake, ALICE, "abcde").await;

    // A stranger and a member type the answer; then the member says more.
    fake.inject_update(dm(2, EVE, "Eve", "yes abcde"));
    fake.inject_update(dm(3, BOB, "Bob", "yes abcde"));
    fake.inject_update(dm(4, BOB, "Bob", "after my answer"));
    let e = event_from(&mut session, BOB).await;
    assert_eq!(
        e["content"], "after my answer",
        "neither answer was delivered: {e}"
    );
    said_to(&fake, BOB, OWNERS_ONLY).await;
    assert_eq!(session.verdict_within(QUIET).await, None, "no verdict");
    assert_eq!(
        texts_to(&fake, EVE),
        Vec::<String>::new(),
        "{:?}",
        texts_to(&fake, EVE)
    );
    assert_eq!(texts_to(&fake, BOB), [OWNERS_ONLY]);
    assert!(fake.calls_to("editMessageText").is_empty());

    // The owner's answer counts, in any case and spacing.
    fake.inject_update(from_alice(5, "YES   ABCDE"));
    let verdict = session.verdict_within(SOON).await.expect("a verdict");
    assert_eq!(verdict, json!({"request_id": "abcde", "behavior": "allow"}));
    let closed = edited(&fake, &prompt).await;
    assert!(
        closed["text"]
            .as_str()
            .unwrap()
            .starts_with("✅ Allowed by <code>alice</code> on <code>telegram</code>"),
        "{closed}"
    );
    // Nor is the owner's answer delivered: her next message is the next event.
    fake.inject_update(from_alice(6, "done"));
    assert_eq!(event_from(&mut session, ALICE).await["content"], "done");
    session.close().await;
}

// ---------------------------------------------------------------------------
// Expiry and the reminder
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_unanswered_prompt_expires_and_nothing_is_sent() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = owner_home(&fake, "[relay]\nttl = \"2s\"\nnudge = \"0\"").await;
    let mut session = alice_known(&home, &fake).await;

    session
        .permission_request(request("abcde", "Write", "{\"file_path\":\"/tmp/x\"}"))
        .await;
    let prompt = prompt_in(&fake, ALICE, "abcde").await;
    let closed = edited(&fake, &prompt).await;
    let text = closed["text"].as_str().unwrap();
    assert!(
        text.starts_with("⌛ Expired: answer in the terminal."),
        "{text}"
    );
    assert_eq!(closed.get("reply_markup"), None);
    assert_eq!(
        session.verdict_within(Duration::from_millis(300)).await,
        None,
        "expiry never answers for the terminal"
    );
    // No reminder with nudge = "0": the prompt was the only message.
    assert_eq!(
        texts_to(&fake, ALICE).len(),
        1,
        "{:?}",
        texts_to(&fake, ALICE)
    );

    // A press on the expired prompt (an old keyboard) is told so.
    press(&fake, user(ALICE, "Alice"), &prompt, "Allow");
    said_to(&fake, ALICE, ALREADY).await;
    assert_eq!(
        session.verdict_within(Duration::from_millis(300)).await,
        None
    );
    session.close().await;
}

#[tokio::test]
async fn a_waiting_prompt_gets_exactly_one_reminder() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = owner_home(&fake, "[relay]\nttl = \"20s\"\nnudge = \"1s\"").await;
    let mut session = alice_known(&home, &fake).await;

    session
        .permission_request(request("abcde", "Write", "{\"file_path\":\"/tmp/x\"}"))
        .await;
    let prompt = prompt_in(&fake, ALICE, "abcde").await;
    let reminders = || -> Vec<Value> {
        fake.bot_messages()
            .into_iter()
            .filter(|m| {
                m["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("is still waiting for permission to use"))
            })
            .collect()
    };
    let first = wait_for("the reminder", || reminders().pop()).await;
    assert_eq!(first["chat"]["id"], json!(ALICE));
    assert_eq!(
        first["reply_to_message"]["message_id"], prompt["message_id"],
        "the reminder answers the prompt: {first}"
    );
    assert!(
        first["text"]
            .as_str()
            .unwrap()
            .starts_with("⏳ Claude Code is still waiting for permission to use <code>Write</code> (request abcde)."),
        "{first}"
    );
    // Two more ticks of the relay's clock bring no second one.
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert_eq!(reminders().len(), 1, "{:?}", reminders());
    assert_eq!(
        session.verdict_within(Duration::from_millis(50)).await,
        None
    );
    let now = message(&fake, ALICE, &prompt["message_id"]);
    assert_eq!(now["reply_markup"], prompt["reply_markup"], "still open");
    session.close().await;
}

// ---------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------

#[tokio::test]
async fn allow_30_min_makes_a_rule_for_that_tool_only_until_it_is_revoked() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = owner_home(&fake, "[relay]\nrules = true").await;
    let mut session = alice_known(&home, &fake).await;

    session
        .permission_request(request("abcde", "Write", "{\"file_path\":\"/tmp/x\"}"))
        .await;
    let prompt = prompt_in(&fake, ALICE, "abcde").await;
    assert_eq!(
        labels(&prompt),
        [vec!["Allow", "Deny"], vec!["Allow 30 min", "Details"]]
    );
    let shown = parse_html(prompt["text"].as_str().unwrap()).text;
    assert!(
        shown.contains("\"Allow 30 min\" also allows every Write call for 30 minutes."),
        "{shown}"
    );
    press(&fake, user(ALICE, "Alice"), &prompt, "Allow 30 min");
    let verdict = session.verdict_within(SOON).await.expect("a verdict");
    assert_eq!(verdict, json!({"request_id": "abcde", "behavior": "allow"}));
    let closed = edited(&fake, &prompt).await;
    assert!(
        closed["text"]
            .as_str()
            .unwrap()
            .contains("Later calls of this tool are allowed until"),
        "{closed}"
    );

    // The next Write is allowed by the rule, without a prompt.
    session
        .permission_request(request("bcdef", "Write", "{\"file_path\":\"/tmp/y\"}"))
        .await;
    let verdict = session.verdict_within(SOON).await.expect("a verdict");
    assert_eq!(verdict, json!({"request_id": "bcdef", "behavior": "allow"}));
    wait_for("the auto-allow notice", || {
        texts_to(&fake, ALICE)
            .into_iter()
            .find(|t| t.starts_with("✅ Allowed by a rule, without asking:"))
    })
    .await;
    assert_eq!(prompt_calls(&fake).len(), 1, "no prompt for bcdef");

    // Another tool is asked about as usual.
    session
        .permission_request(request("cdefg", "Edit", "{\"file_path\":\"/tmp/z\"}"))
        .await;
    prompt_in(&fake, ALICE, "cdefg").await;
    assert_eq!(
        session.verdict_within(Duration::from_millis(300)).await,
        None
    );

    let rules = cli_json(&home, &["relay", "rules"]).await;
    assert_eq!(rules["rules_enabled"], true, "{rules}");
    let list = rules["rules"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{rules}");
    assert_eq!(list[0]["tool_name"], "Write", "{rules}");
    assert_eq!(list[0]["created_by"], "telegram:alice", "{rules}");
    assert!(list[0]["uses"].as_i64().unwrap() >= 1, "{rules}");

    // Revoked, the rule answers no more: Write is asked about again.
    let out = cli_ok(&home, &["relay", "revoke", "Write"]).await;
    assert!(out.contains("ended the rule for Write"), "{out}");
    assert_eq!(
        cli_json(&home, &["relay", "rules"]).await["rules"],
        json!([])
    );
    session
        .permission_request(request("defgh", "Write", "{\"file_path\":\"/tmp/w\"}"))
        .await;
    prompt_in(&fake, ALICE, "defgh").await;
    assert_eq!(
        session.verdict_within(Duration::from_millis(300)).await,
        None
    );
    assert_eq!(prompt_calls(&fake).len(), 3, "abcde, cdefg, defgh");
    session.close().await;
}

#[tokio::test]
async fn lockdown_ends_every_rule_and_leaves_requests_to_the_terminal() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = owner_home(&fake, "[relay]\nrules = true").await;
    let mut session = alice_known(&home, &fake).await;

    let out = cli_ok(&home, &["relay", "allow", "Edit", "--for", "10m"]).await;
    assert!(out.contains("every Edit call is allowed"), "{out}");
    // The rule works before the lockdown.
    session
        .permission_request(request("abcde", "Edit", "{}"))
        .await;
    let verdict = session.verdict_within(SOON).await.expect("a verdict");
    assert_eq!(verdict, json!({"request_id": "abcde", "behavior": "allow"}));

    // A prompt waiting when the lockdown comes is closed.
    session
        .permission_request(request("vwxyz", "Write", "{}"))
        .await;
    let waiting = prompt_in(&fake, ALICE, "vwxyz").await;

    let out = cli_ok(&home, &["access", "lockdown"]).await;
    assert!(
        out.contains("ended 1 permission relay rule(s)"),
        "lockdown says it ended the rule:\n{out}"
    );
    assert_eq!(
        cli_json(&home, &["relay", "rules"]).await["rules"],
        json!([])
    );
    let closed = edited(&fake, &waiting).await;
    let text = closed["text"].as_str().unwrap();
    assert!(
        text.starts_with("🔒 airlock is locked down: answer in the terminal."),
        "{text}"
    );
    assert_eq!(closed.get("reply_markup"), None);

    // During lockdown a request is left to the terminal: no prompt, no verdict.
    session
        .permission_request(request("bcdef", "Edit", "{}"))
        .await;
    session
        .permission_request(request("cdefg", "Write", "{}"))
        .await;
    wait_for("both requests to be left to the terminal", || {
        (logged(
            &session,
            "relay: airlock is locked down; left to the terminal",
        ) == 2)
            .then_some(())
    })
    .await;
    assert_eq!(session.verdict_within(QUIET).await, None);
    assert_eq!(
        prompt_calls(&fake).len(),
        1,
        "only vwxyz's, before the lockdown"
    );

    // A rule cannot be made while locked down either.
    let (code, _, err) = cli(&home, &["relay", "allow", "Edit"]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("locked down"), "{err}");
    session.close().await;
}

#[tokio::test]
async fn bash_gets_no_rule_without_rules_for_bash() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = owner_home(&fake, "[relay]\nrules = true").await;
    let mut session = alice_known(&home, &fake).await;

    session
        .permission_request(request("abcde", "Bash", "{\"command\":\"ls\"}"))
        .await;
    let prompt = prompt_in(&fake, ALICE, "abcde").await;
    assert_eq!(labels(&prompt), [vec!["Allow", "Deny"], vec!["Details"]]);
    assert!(
        !prompt["text"].as_str().unwrap().contains("Allow 30 min"),
        "{prompt}"
    );

    let (code, out, err) = cli(&home, &["relay", "allow", "Bash"]).await;
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.contains("rules_for_bash"), "{err}");
    assert_eq!(
        cli_json(&home, &["relay", "rules"]).await["rules"],
        json!([])
    );

    // Pressed anyway (data forged from the Allow button), no rule is made.
    let forged = data_of(&prompt, "Allow").replace(":allow:", ":rule:");
    press_data(&fake, user(ALICE, "Alice"), &prompt, &forged);
    let verdict = session.verdict_within(SOON).await.expect("a verdict");
    assert_eq!(verdict, json!({"request_id": "abcde", "behavior": "allow"}));
    let closed = edited(&fake, &prompt).await;
    assert!(
        !closed["text"].as_str().unwrap().contains("Later calls"),
        "{closed}"
    );
    assert_eq!(
        cli_json(&home, &["relay", "rules"]).await["rules"],
        json!([])
    );
    session.close().await;
}

// ---------------------------------------------------------------------------
// Malformed and hostile requests
// ---------------------------------------------------------------------------

#[tokio::test]
async fn malformed_requests_are_dropped_and_the_server_keeps_serving() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = owner_home(&fake, "").await;
    let mut session = alice_known(&home, &fake).await;

    let bad = [
        request("abcdl", "Write", "{}"),
        request("ABCDE", "Write", "{}"),
        request("abcd", "Write", "{}"),
        json!({"request_id": "bcdef", "tool_name": "Write", "description": "Write call"}),
        json!({"request_id": 12345, "tool_name": 1, "description": 2, "input_preview": 3}),
        json!({"request_id": "cdefg", "tool_name": 7, "description": "x", "input_preview": "y"}),
        request("defgh", "", "{}"),
    ];
    for params in &bad {
        session.permission_request(params.clone()).await;
    }
    const DROPPED: &str = "permission request was dropped";
    wait_for("every bad request to be dropped", || {
        (logged(&session, DROPPED) == bad.len()).then_some(())
    })
    .await;

    // A valid one with a 1 MB preview is relayed, cut.
    let big = "0123456789abcdef".repeat(65_536);
    assert_eq!(big.len(), 1 << 20);
    session
        .permission_request(request("vwxyz", "Write", &big))
        .await;
    let prompt = prompt_in(&fake, ALICE, "vwxyz").await;
    assert_eq!(
        prompt_calls(&fake).len(),
        1,
        "only the valid request prompts"
    );
    let text = prompt["text"].as_str().unwrap();
    assert!(units(text) < 1_000, "{} units", units(text));
    let more = (1 << 20) - 500;
    assert!(
        text.contains(&format!("[… {more} more characters: press Details]")),
        "{text}"
    );

    // Details shows more, within Telegram's limit, as a reply to the prompt.
    press(&fake, user(ALICE, "Alice"), &prompt, "Details");
    let details = wait_for("the details", || {
        fake.bot_messages().into_iter().find(|m| {
            m["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("Details of request"))
        })
    })
    .await;
    let dt = details["text"].as_str().unwrap();
    assert!(units(dt) <= 4096, "{} units", units(dt));
    assert!(dt.contains("more characters not shown here"), "{dt}");
    assert_eq!(
        details["reply_to_message"]["message_id"],
        prompt["message_id"]
    );
    assert_eq!(
        session.verdict_within(Duration::from_millis(100)).await,
        None
    );

    // The server still serves: the reply tool works.
    let sent = session
        .call(
            "reply",
            json!({"chat_id": "telegram:111", "text": "still here"}),
        )
        .await;
    assert!(!outcome(&sent).0, "{sent}");
    assert_eq!(
        texts_to(&fake, ALICE).last().map(String::as_str),
        Some("still here")
    );
    // And the prompt can still be answered.
    press(&fake, user(ALICE, "Alice"), &prompt, "Deny");
    let verdict = session.verdict_within(SOON).await.expect("a verdict");
    assert_eq!(verdict, json!({"request_id": "vwxyz", "behavior": "deny"}));
    session.close().await;
}

/// Text in HTML parse mode, taken apart: every tag's name, the text outside
/// any tag pair, the text inside `<code>`/`<pre>`, and all of it as a reader
/// sees it, entities decoded.
struct Parsed {
    tags: Vec<String>,
    outside: String,
    inside: String,
    text: String,
}

/// Splits `html` into its tags and its text; fails on an unbalanced tag or
/// an entity other than the four Telegram's HTML knows.
fn parse_html(html: &str) -> Parsed {
    let decode = |s: &str| -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(at) = rest.find('&') {
            out.push_str(&rest[..at]);
            rest = &rest[at..];
            let (entity, c) = [
                ("&lt;", '<'),
                ("&gt;", '>'),
                ("&amp;", '&'),
                ("&quot;", '"'),
            ]
            .into_iter()
            .find(|(e, _)| rest.starts_with(e))
            .unwrap_or_else(|| panic!("an unknown entity at {rest:?}"));
            out.push(c);
            rest = &rest[entity.len()..];
        }
        out.push_str(rest);
        out
    };
    let mut parsed = Parsed {
        tags: Vec::new(),
        outside: String::new(),
        inside: String::new(),
        text: String::new(),
    };
    let mut open: Vec<String> = Vec::new();
    let mut rest = html;
    loop {
        let (text, after) = match rest.find('<') {
            Some(at) => (&rest[..at], Some(&rest[at + 1..])),
            None => (rest, None),
        };
        assert!(!text.contains('>'), "a bare '>' in {html:?}");
        let target = if open.is_empty() {
            &mut parsed.outside
        } else {
            &mut parsed.inside
        };
        target.push_str(&decode(text));
        parsed.text.push_str(&decode(text));
        let Some(after) = after else { break };
        let end = after
            .find('>')
            .unwrap_or_else(|| panic!("an unclosed tag in {html:?}"));
        let tag = &after[..end];
        parsed.tags.push(tag.to_owned());
        match tag.strip_prefix('/') {
            Some(name) => assert_eq!(open.pop().as_deref(), Some(name), "{html:?}"),
            None => open.push(tag.to_owned()),
        }
        rest = &after[end + 1..];
    }
    assert!(open.is_empty(), "unclosed {open:?} in {html:?}");
    parsed
}

#[tokio::test]
async fn a_hostile_preview_is_shown_escaped_inside_code_and_pre_only() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = owner_home(&fake, "").await;
    let mut session = alice_known(&home, &fake).await;

    const HOSTILE: &str = "<b>bold</b> <a href=\"https://evil.example\">x</a> **md** \
                           [l](https://evil.example) @everyone";
    session
        .permission_request(json!({
            "request_id": "abcde",
            "tool_name": "mcp__x__<i>y</i>",
            "description": HOSTILE,
            "input_preview": HOSTILE,
        }))
        .await;
    let prompt = prompt_in(&fake, ALICE, "abcde").await;
    let call = prompt_call(&fake, ALICE, "abcde").unwrap();
    assert_eq!(call.param("parse_mode"), Some(&json!("HTML")));
    assert_eq!(call.param("entities"), None);
    let text = prompt["text"].as_str().unwrap();
    assert!(text.contains("&lt;b&gt;bold&lt;/b&gt;"), "{text}");
    assert!(!text.contains("<a "), "{text}");

    let parsed = parse_html(text);
    assert!(
        parsed
            .tags
            .iter()
            .all(|t| ["code", "/code", "pre", "/pre"].contains(&t.as_str())),
        "{:?} in {text}",
        parsed.tags
    );
    // The tool name and the description in code spans, the preview in a
    // block, the session's name in a code span.
    assert_eq!(
        parsed.tags,
        [
            "code", "/code", "code", "/code", "pre", "/pre", "code", "/code"
        ],
        "{text}"
    );
    // Shown whole, as text, inside them.
    assert_eq!(
        parsed.inside.matches(HOSTILE).count(),
        2,
        "{}",
        parsed.inside
    );
    assert!(
        parsed.inside.contains("mcp__x__<i>y</i>"),
        "{}",
        parsed.inside
    );
    for foreign in ["evil", "@everyone", "**", "[l]", "<", ">"] {
        assert!(
            !parsed.outside.contains(foreign),
            "{foreign:?} outside code and pre: {}",
            parsed.outside
        );
    }

    // The prompt still works, and its edit is as inert.
    press(&fake, user(ALICE, "Alice"), &prompt, "Deny");
    let verdict = session.verdict_within(SOON).await.expect("a verdict");
    assert_eq!(verdict, json!({"request_id": "abcde", "behavior": "deny"}));
    let closed = edited(&fake, &prompt).await;
    let text = closed["text"].as_str().unwrap();
    assert!(
        text.starts_with("❌ Denied by <code>alice</code>"),
        "{text}"
    );
    let parsed = parse_html(text);
    assert!(
        parsed
            .tags
            .iter()
            .all(|t| ["code", "/code", "pre", "/pre"].contains(&t.as_str())),
        "{:?} in {text}",
        parsed.tags
    );
    for foreign in ["evil", "@everyone", "**", "[l]"] {
        assert!(!parsed.outside.contains(foreign), "{}", parsed.outside);
    }
    session.close().await;
}
