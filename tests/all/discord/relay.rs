//! Issue 12's permission relay on Discord, end to end: the request as
//! Claude Code sends it, the prompt as the fake received it (markdown with
//! every foreign word in code, Allow/Deny/Details components), the owner's
//! answer by text or button, the verdict the session gets back, and the
//! prompt edited when it ends. One test runs Telegram alongside, for the
//! first verdict winning across platforms.

use std::ops::Range;
use std::time::{Duration, Instant};

use fake_discord::payloads;
use fake_telegram::FakeTelegram;
use serde_json::{Value, json};

use super::*;
use crate::relay::request;
use crate::telegram;

/// What a member (or anyone not an owner) is told when they answer.
const OWNERS_ONLY: &str = "Only an owner can answer this permission prompt.";
/// How every prompt's text begins, before the tool name.
const ASKS: &str = "🔐 Claude Code asks to use ";

/// Waits until `get` gives something, failing with `what` after [`SOON`].
async fn until_some<T>(what: &str, mut get: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + SOON;
    loop {
        if let Some(value) = get() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The bot's prompt messages in `channel`, as the fake holds them now.
fn prompts_in(fake: &FakeDiscord, channel: &str) -> Vec<Value> {
    fake.messages_in(channel)
        .into_iter()
        .filter(|m| m["author"]["id"] == BOT_ID)
        .filter(|m| m["content"].as_str().unwrap_or("").contains(ASKS))
        .collect()
}

/// Waits for the one prompt in `channel`; returns it.
async fn prompt_in(fake: &FakeDiscord, channel: &str) -> Value {
    let prompt = until_some("the prompt", || prompts_in(fake, channel).pop()).await;
    assert_eq!(prompts_in(fake, channel).len(), 1, "one prompt per request");
    prompt
}

/// The button labels of a message, row by row.
fn labels(message: &Value) -> Vec<Vec<String>> {
    message["components"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| {
            row["components"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| b["label"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .collect()
}

/// The `custom_id` of the button labelled `label`.
fn custom_id(message: &Value, label: &str) -> String {
    message["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().into_iter().flatten())
        .find(|b| b["label"] == label)
        .and_then(|b| b["custom_id"].as_str())
        .unwrap_or_else(|| panic!("no {label} button: {message}"))
        .to_owned()
}

/// `user` presses `label` on `message` in the DM `channel`.
fn press(fake: &FakeDiscord, id: &str, channel: &str, user: Value, message: &Value, label: &str) {
    fake.dispatch(
        "INTERACTION_CREATE",
        payloads::button_interaction(
            id,
            channel,
            user,
            &custom_id(message, label),
            message.clone(),
            false,
        ),
    );
}

/// Waits until the message `id` in `channel` is edited; returns it.
async fn edited(fake: &FakeDiscord, channel: &str, id: &Value) -> Value {
    until_some("the prompt to be edited", || {
        fake.messages_in(channel)
            .into_iter()
            .find(|m| &m["id"] == id && !m["edited_timestamp"].is_null())
    })
    .await
}

/// Waits until the bot sent a message saying `text` in `channel`.
async fn said(fake: &FakeDiscord, channel: &str, text: &str) {
    until_some(&format!("{text:?} in {channel}"), || {
        sent_in(fake, channel)
            .iter()
            .find(|t| t.contains(text))
            .cloned()
    })
    .await;
}

/// Alice, an owner on discord, in a running airlock that knows her DM
/// (she has written once).
async fn owner_alice(fake: &FakeDiscord, extra: &str) -> (TempHome, Session) {
    let home = discord_home(fake, extra);
    cli_ok(&home, &["access", "allow", "discord", ALICE, "--owner"]).await;
    let mut session = start(&home, fake, "info").await;
    assert!(session.declares_relay(), "an owner exists");
    fake.dispatch(
        "MESSAGE_CREATE",
        dm_from_alice("3000000000000012000", "hello"),
    );
    assert_eq!(event_in(&mut session, ALICE_DM).await["content"], "hello");
    (home, session)
}

/// Asserts no verdict comes for a while.
async fn no_verdict(session: &mut Session, within: Duration, what: &str) {
    if let Some(v) = session.verdict_within(within).await {
        panic!("{what} sent a verdict: {v}");
    }
}

/// Discord markdown's code parts of `text`: the byte ranges inside each
/// fenced block and each inline span. Panics on a backtick that opens
/// nothing it closes (every backtick must be one of a pair airlock wrote).
fn code_ranges(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(found) = text[at..].find('`') {
        let start = at + found;
        let fence = if text[start..].starts_with("```") {
            "```"
        } else {
            "`"
        };
        let inner = start + fence.len();
        let end = inner
            + text[inner..]
                .find(fence)
                .unwrap_or_else(|| panic!("an unclosed {fence} at byte {start}: {text}"));
        out.push(inner..end);
        at = end + fence.len();
    }
    out
}

/// Asserts every occurrence of every one of `needles` in `text` lies inside
/// a code part, and that each occurs at least once.
fn only_in_code(text: &str, needles: &[&str]) {
    let code = code_ranges(text);
    for needle in needles {
        let hits: Vec<usize> = text.match_indices(needle).map(|(i, _)| i).collect();
        assert!(!hits.is_empty(), "{needle:?} is not shown at all: {text}");
        for i in hits {
            assert!(
                code.iter()
                    .any(|r| r.start <= i && i + needle.len() <= r.end),
                "{needle:?} at byte {i} is outside code: {text}"
            );
        }
    }
}

#[tokio::test]
async fn an_owner_types_no_and_claude_code_gets_deny_and_the_prompt_loses_its_buttons() {
    let fake = fake().await;
    let (_home, mut session) = owner_alice(&fake, "").await;
    session
        .permission_request(request("abcde", "Bash", "{\"command\":\"rm -rf target\"}"))
        .await;
    let prompt = prompt_in(&fake, ALICE_DM).await;
    let content = prompt["content"].as_str().unwrap();
    assert!(
        content.starts_with("🔐 Claude Code asks to use `Bash`\n"),
        "{content}"
    );
    assert!(
        content.contains("type \"yes abcde\" or \"no abcde\""),
        "{content}"
    );
    assert_eq!(labels(&prompt), [vec!["Allow", "Deny"], vec!["Details"]]);

    fake.dispatch(
        "MESSAGE_CREATE",
        dm_from_alice("3000000000000012001", "no abcde"),
    );
    let verdict = session.verdict_within(SOON).await.expect("a verdict");
    assert_eq!(verdict, json!({"request_id": "abcde", "behavior": "deny"}));
    let closed = edited(&fake, ALICE_DM, &prompt["id"]).await;
    let text = closed["content"].as_str().unwrap();
    assert!(
        text.starts_with("❌ Denied by `alice` on `discord` at "),
        "{text}"
    );
    assert!(text.contains("Request abcde."), "{text}");
    assert_eq!(closed["components"], json!([]), "{closed}");
    assert_eq!(
        session.event_within(Duration::from_millis(500)).await,
        None,
        "the typed answer reached the session"
    );
    no_verdict(&mut session, Duration::from_millis(300), "one answer").await;
    session.close().await;
}

#[tokio::test]
async fn two_owners_on_two_platforms_the_first_press_wins_and_both_copies_say_so() {
    let tg = FakeTelegram::start(telegram::TOKEN).await;
    let dc = fake().await;
    let home = TempHome::new();
    home.secret("TELEGRAM_BOT_TOKEN", telegram::TOKEN);
    home.secret("DISCORD_BOT_TOKEN", TOKEN);
    home.config(&format!("{}\n{}", telegram::config(&tg, ""), config(&dc)));
    let tg_alice = telegram::ALICE.to_string();
    cli_ok(
        &home,
        &["access", "allow", "telegram", &tg_alice, "--owner"],
    )
    .await;
    cli_ok(&home, &["access", "allow", "discord", ALICE, "--owner"]).await;
    let mut session = start(&home, &dc, "info").await;
    telegram::polling(&tg).await;
    assert!(session.declares_relay());

    // Both owners write once: airlock knows both direct chats.
    tg.inject_update(telegram::from_alice(1, "hi from telegram"));
    dc.dispatch(
        "MESSAGE_CREATE",
        dm_from_alice("3000000000000012100", "hi from discord"),
    );
    for _ in 0..2 {
        session.event().await;
    }

    session
        .permission_request(request("fghij", "Bash", "{\"command\":\"make deploy\"}"))
        .await;
    let dc_prompt = prompt_in(&dc, ALICE_DM).await;
    let tg_prompts = || -> Vec<Value> {
        tg.bot_messages()
            .into_iter()
            .filter(|m| m["text"].as_str().unwrap_or("").contains(ASKS))
            .collect()
    };
    let tg_prompt = until_some("the Telegram prompt", || tg_prompts().pop()).await;
    assert_eq!(tg_prompts().len(), 1, "one prompt on Telegram");
    assert_eq!(tg_prompt["chat"]["id"], telegram::ALICE);
    let deny = tg_prompt["reply_markup"]["inline_keyboard"][0][1].clone();
    assert_eq!(deny["text"], "Deny", "{tg_prompt}");

    // The Discord owner allows first.
    press(
        &dc,
        "7000000000000012101",
        ALICE_DM,
        alice(),
        &dc_prompt,
        "Allow",
    );
    let verdict = session.verdict_within(SOON).await.expect("a verdict");
    assert_eq!(verdict, json!({"request_id": "fghij", "behavior": "allow"}));

    // The Telegram owner denies on their copy: too late.
    tg.inject_update(json!({"callback_query": {
        "id": "4382bfdwdsb3312101", "from": telegram::user(telegram::ALICE, "Alice"),
        "message": tg_prompt, "chat_instance": "-3214567890123456789",
        "data": deny["callback_data"]}}));
    until_some("the Telegram owner to be told", || {
        telegram::sent_texts(&tg)
            .into_iter()
            .find(|t| t.contains("already answered"))
    })
    .await;
    no_verdict(
        &mut session,
        Duration::from_secs(1),
        "the second owner's press",
    )
    .await;

    // Both copies say who allowed it, where, and have no buttons.
    let dc_closed = until_some("the Discord copy's edit", || {
        dc.messages_in(ALICE_DM).into_iter().find(|m| {
            m["id"] == dc_prompt["id"]
                && m["content"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("✅ Allowed by ")
        })
    })
    .await;
    let text = dc_closed["content"].as_str().unwrap();
    assert!(
        text.starts_with("✅ Allowed by `alice` on `discord` at "),
        "{text}"
    );
    assert_eq!(dc_closed["components"], json!([]), "{dc_closed}");
    let tg_closed = until_some("the Telegram copy's edit", || {
        tg.bot_messages().into_iter().find(|m| {
            m["message_id"] == tg_prompt["message_id"]
                && m["text"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("✅ Allowed by ")
        })
    })
    .await;
    let text = tg_closed["text"].as_str().unwrap();
    assert!(
        text.starts_with("✅ Allowed by <code>alice</code> on <code>discord</code> at "),
        "{text}"
    );
    assert!(tg_closed.get("reply_markup").is_none(), "{tg_closed}");
    let edit = tg.calls_to("editMessageText").pop().unwrap();
    assert_eq!(edit.param("parse_mode"), Some(&json!("HTML")), "{edit:?}");
    assert!(
        session
            .event_within(Duration::from_millis(300))
            .await
            .is_none(),
        "a press on a prompt reached the session"
    );
    session.close().await;
}

#[tokio::test]
async fn details_replies_to_the_prompt_with_the_long_preview_within_discords_limit() {
    let fake = fake().await;
    let (_home, mut session) = owner_alice(&fake, "").await;
    let preview: String = (0..)
        .flat_map(|i| format!("step {i:04}; ").chars().collect::<Vec<_>>())
        .take(3_000)
        .collect();
    session
        .permission_request(request("kmnop", "Bash", &preview))
        .await;
    let prompt = prompt_in(&fake, ALICE_DM).await;
    let content = prompt["content"].as_str().unwrap();
    assert!(
        content.contains("[… 2500 more characters: press Details]"),
        "{content}"
    );

    press(
        &fake,
        "7000000000000012201",
        ALICE_DM,
        alice(),
        &prompt,
        "Details",
    );
    let details = until_some("the details", || {
        fake.messages_in(ALICE_DM)
            .into_iter()
            .find(|m| m["message_reference"]["message_id"] == prompt["id"])
    })
    .await;
    let text = details["content"].as_str().unwrap();
    assert!(
        text.chars().count() <= 2_000,
        "{} characters",
        text.chars().count()
    );
    let head: String = preview.chars().take(1_500).collect();
    assert!(text.contains(&head), "{text}");
    let create = fake
        .calls_to("POST", "/channels/{}/messages")
        .into_iter()
        .filter_map(|c| c.json)
        .find(|j| j["content"] == details["content"])
        .expect("the details were sent");
    assert_eq!(create["message_reference"]["message_id"], prompt["id"]);

    // The prompt is as it was: still open, still answerable.
    let now = fake
        .message(ALICE_DM, prompt["id"].as_str().unwrap())
        .unwrap();
    assert_eq!(now["edited_timestamp"], Value::Null, "{now}");
    assert_eq!(labels(&now), [vec!["Allow", "Deny"], vec!["Details"]]);
    no_verdict(&mut session, Duration::from_millis(500), "Details").await;
    session.close().await;
}

#[tokio::test]
async fn markdown_links_mentions_and_fences_in_a_request_stay_inside_airlocks_code() {
    const HOSTILE: &str = "**bold** [x](https://evil.example) <@123456789012345678> @everyone\n\
                           ```\n**after the fence** @here [y](https://evil.example/2)";
    let fake = fake().await;
    let (_home, mut session) = owner_alice(&fake, "").await;
    session
        .permission_request(json!({
            "request_id": "qrstu",
            "tool_name": "Bash",
            "description": HOSTILE,
            "input_preview": HOSTILE,
        }))
        .await;
    let prompt = prompt_in(&fake, ALICE_DM).await;
    let content = prompt["content"].as_str().unwrap();
    let needles = [
        "**bold**",
        "[x](https://evil.example)",
        "https://evil.example",
        "<@123456789012345678>",
        "@everyone",
        "**after the fence**",
        "@here",
        "[y](https://evil.example/2)",
    ];
    only_in_code(content, &needles);
    // Twice: the description and the preview.
    assert_eq!(content.matches("@everyone").count(), 2, "{content}");
    assert!(content.contains("ˋˋˋ"), "the fence is defused: {content}");

    let create = fake
        .calls_to("POST", "/channels/{}/messages")
        .into_iter()
        .filter_map(|c| c.json)
        .find(|j| j["content"] == prompt["content"])
        .expect("the prompt was sent");
    let mentions = &create["allowed_mentions"];
    let parse = mentions["parse"]
        .as_array()
        .unwrap_or_else(|| panic!("no allowed_mentions.parse: {create}"));
    assert!(
        !parse.contains(&json!("everyone")),
        "allowed_mentions lets @everyone ping: {mentions}"
    );

    // The edit after the answer shows the description again: inert too.
    fake.dispatch(
        "MESSAGE_CREATE",
        dm_from_alice("3000000000000012301", "YES qrstu"),
    );
    let verdict = session.verdict_within(SOON).await.expect("a verdict");
    assert_eq!(verdict, json!({"request_id": "qrstu", "behavior": "allow"}));
    let closed = edited(&fake, ALICE_DM, &prompt["id"]).await;
    let text = closed["content"].as_str().unwrap();
    assert!(text.starts_with("✅ Allowed by `alice`"), "{text}");
    only_in_code(text, &["**bold**", "<@123456789012345678>", "@everyone"]);
    session.close().await;
}

#[tokio::test]
async fn a_member_pressing_allow_is_told_only_an_owner_can_answer_and_nothing_is_sent() {
    let fake = fake().await;
    let (home, mut session) = owner_alice(&fake, "").await;
    session
        .permission_request(request("vwxyz", "Write", "{\"file_path\":\"/etc/hosts\"}"))
        .await;
    let prompt = prompt_in(&fake, ALICE_DM).await;

    cli_ok(&home, &["access", "role", "discord", ALICE, "member"]).await;
    press(
        &fake,
        "7000000000000012401",
        ALICE_DM,
        alice(),
        &prompt,
        "Allow",
    );
    said(&fake, ALICE_DM, OWNERS_ONLY).await;
    no_verdict(&mut session, Duration::from_secs(1), "a member's press").await;
    let now = fake
        .message(ALICE_DM, prompt["id"].as_str().unwrap())
        .unwrap();
    assert_eq!(now["edited_timestamp"], Value::Null, "{now}");
    assert_eq!(labels(&now), [vec!["Allow", "Deny"], vec!["Details"]]);
    assert!(
        session
            .event_within(Duration::from_millis(300))
            .await
            .is_none(),
        "the press reached the session"
    );
    assert!(
        session
            .log
            .text()
            .contains("relay: refused a verdict from someone who is not an owner"),
        "{}",
        session.log.text()
    );
    session.close().await;
}
