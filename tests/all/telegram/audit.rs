//! The audit trail after a short, realistic Telegram run through the real
//! binary: an owner's direct messages, a stranger dropped with the reason,
//! a stranger paired with an invite, a reply, an edit and a reaction. Every
//! row verifies; an edited, a deleted and a swapped row are each named.

use fake_telegram::FakeTelegram;
use serde_json::{Value, json};

use super::*;
use crate::audit_rows::{listing, of_kind, rows, stop, until_row, verifies_and_tampering_is_named};

/// A stranger who pairs with an invite.
const CAROL: i64 = 333;

#[tokio::test]
async fn a_telegram_run_verifies_and_an_edit_a_deletion_and_a_swap_are_each_named() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = telegram_home(&fake, "");
    cli_ok(
        &home,
        &["access", "allow", "telegram", &ALICE.to_string(), "--owner"],
    )
    .await;
    let mut session = start(&home, &fake, "info").await;

    // The owner writes twice; a stranger once.
    fake.inject_update(from_alice(1, "deploy the branch"));
    event_from(&mut session, ALICE).await;
    fake.inject_update(from_alice(2, "and tell me when it is done"));
    event_from(&mut session, ALICE).await;
    fake.inject_update(text_update(
        3,
        user(EVE, "Eve"),
        private(EVE, "Eve"),
        "let me in",
    ));
    let eve = EVE.to_string();
    let dropped = until_row(&home, "Eve's drop", |r| {
        r["kind"] == "inbound" && r["sender_id"] == eve.as_str()
    })
    .await;
    assert_eq!(dropped["detail"]["outcome"], "dropped", "{dropped}");
    assert_eq!(
        dropped["detail"]["reason"], "sender is not on the allowlist",
        "{dropped}"
    );
    assert_eq!(dropped["adapter"], "telegram", "{dropped}");
    assert_eq!(dropped["chat"], EVE.to_string(), "{dropped}");
    assert_eq!(dropped["sender_handle"], "eve", "{dropped}");
    assert_eq!(
        dropped["summary"], "dropped a message from eve: sender is not on the allowlist",
        "{dropped}"
    );

    // A stranger pairs with an invite from the terminal.
    let printed = cli_ok(&home, &["access", "invite", "telegram"]).await;
    let code = printed
        .lines()
        .filter_map(|l| l.strip_prefix("    "))
        .find(|l| l.len() == 9 && l.as_bytes()[4] == b'-')
        .unwrap_or_else(|| panic!("no invite code in:\n{printed}"))
        .to_owned();
    fake.inject_update(text_update(
        4,
        user(CAROL, "Carol"),
        private(CAROL, "Carol"),
        &code,
    ));
    let redeemed = until_row(&home, "invite redeemed", |r| {
        r["kind"] == "access" && r["detail"]["change"] == "invite redeemed"
    })
    .await;
    assert_eq!(redeemed["detail"]["role"], "member", "{redeemed}");
    assert_eq!(redeemed["sender_id"], CAROL.to_string(), "{redeemed}");
    assert_eq!(redeemed["adapter"], "telegram", "{redeemed}");

    // The session answers, edits its answer and reacts to the question.
    let chat = "telegram:111";
    let (is_error, sent) = outcome(
        &session
            .call(
                "reply",
                json!({"chat_id": chat, "text": "deploying", "reply_to": "1"}),
            )
            .await,
    );
    assert!(!is_error, "{sent}");
    let bot_id = sent_id(&sent);
    let (is_error, text) = outcome(
        &session
            .call(
                "edit_message",
                json!({"chat_id": chat, "message_id": bot_id, "text": "deployed"}),
            )
            .await,
    );
    assert!(!is_error, "{text}");
    let (is_error, text) = outcome(
        &session
            .call(
                "react",
                json!({"chat_id": chat, "message_id": "2", "emoji": "👍"}),
            )
            .await,
    );
    assert!(!is_error, "{text}");
    until_row(&home, "react", |r| r["detail"]["tool"] == "react").await;
    let head = stop(&home, session).await;

    let all = rows(&home).await;
    let queued: Vec<&Value> = of_kind(&all, "inbound")
        .into_iter()
        .filter(|r| r["detail"]["outcome"] == "queued")
        .collect();
    let ids: Vec<&Value> = queued.iter().map(|r| &r["detail"]["message_id"]).collect();
    assert_eq!(ids, [&json!("1"), &json!("2")], "{}", listing(&all));
    for r in &queued {
        assert_eq!(r["adapter"], "telegram", "{r}");
        assert_eq!(r["chat"], ALICE.to_string(), "{r}");
        assert_eq!(r["sender_id"], ALICE.to_string(), "{r}");
        assert_eq!(r["sender_handle"], "alice", "{r}");
    }
    // The code is not message text: it is not kept, even as a digest.
    assert!(
        !cli_ok(&home, &["audit", "export", "--jsonl"])
            .await
            .contains(&code)
    );
    let tools = of_kind(&all, "tool");
    let names: Vec<&Value> = tools.iter().map(|r| &r["detail"]["tool"]).collect();
    assert_eq!(
        names,
        [&json!("reply"), &json!("edit_message"), &json!("react")],
        "{}",
        listing(&all)
    );
    for r in &tools {
        assert_eq!(r["detail"]["ok"], true, "{r}");
        assert_eq!(r["adapter"], "telegram", "{r}");
        assert_eq!(r["chat"], ALICE.to_string(), "{r}");
        assert_eq!(r["detail"]["chat_id"], chat, "{r}");
    }
    assert_eq!(tools[0]["detail"]["outcome"], sent.as_str());

    // Tamper with the stranger's drop, the reply, and the first queued
    // message against the reaction.
    let id = |r: &Value| r["id"].as_i64().unwrap();
    verifies_and_tampering_is_named(
        &home,
        &head,
        id(&dropped),
        id(tools[0]),
        (id(queued[0]), id(tools[2])),
    )
    .await;
}
