//! The audit trail after a short, realistic Discord run through the real
//! binary: an owner's direct messages, a stranger dropped with the reason,
//! a reply, an edit and a reaction. Every row verifies; an edited, a
//! deleted and a swapped row are each named.

use fake_discord::payloads;
use serde_json::{Value, json};

use super::*;
use crate::audit_rows::{listing, of_kind, rows, stop, until_row, verifies_and_tampering_is_named};

#[tokio::test]
async fn a_discord_run_verifies_and_an_edit_a_deletion_and_a_swap_are_each_named() {
    let fake = fake().await;
    let home = discord_home(&fake, "");
    cli_ok(&home, &["access", "allow", "discord", ALICE, "--owner"]).await;
    let mut session = start(&home, &fake, "info").await;

    // The owner writes twice; a stranger once.
    fake.dispatch(
        "MESSAGE_CREATE",
        dm_from_alice("3000000000000000001", "deploy the branch"),
    );
    event_in(&mut session, ALICE_DM).await;
    fake.dispatch(
        "MESSAGE_CREATE",
        dm_from_alice("3000000000000000002", "and tell me when it is done"),
    );
    event_in(&mut session, ALICE_DM).await;
    fake.dispatch(
        "MESSAGE_CREATE",
        payloads::dm_message("3000000000000000003", EVE_DM, eve(), "let me in"),
    );
    let dropped = until_row(&home, "Eve's drop", |r| {
        r["kind"] == "inbound" && r["sender_id"] == EVE
    })
    .await;
    assert_eq!(dropped["detail"]["outcome"], "dropped", "{dropped}");
    assert_eq!(
        dropped["detail"]["reason"], "sender is not on the allowlist",
        "{dropped}"
    );
    assert_eq!(dropped["adapter"], "discord", "{dropped}");
    assert_eq!(dropped["chat"], EVE_DM, "{dropped}");
    assert_eq!(dropped["sender_handle"], "eve", "{dropped}");
    assert_eq!(
        dropped["summary"], "dropped a message from eve: sender is not on the allowlist",
        "{dropped}"
    );

    // The session answers, edits its answer and reacts to the question.
    let chat = format!("discord:{ALICE_DM}");
    let (is_error, sent) = outcome(
        &session
            .call(
                "reply",
                json!({"chat_id": chat, "text": "deploying", "reply_to": "3000000000000000001"}),
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
    assert_eq!(sent_in(&fake, ALICE_DM), ["deployed"]);
    let (is_error, text) = outcome(
        &session
            .call(
                "react",
                json!({"chat_id": chat, "message_id": "3000000000000000002", "emoji": "👍"}),
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
    assert_eq!(
        ids,
        [&json!("3000000000000000001"), &json!("3000000000000000002")],
        "{}",
        listing(&all)
    );
    for r in &queued {
        assert_eq!(r["adapter"], "discord", "{r}");
        assert_eq!(r["chat"], ALICE_DM, "{r}");
        assert_eq!(r["sender_id"], ALICE, "{r}");
        assert_eq!(r["sender_handle"], "alice", "{r}");
    }
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
        assert_eq!(r["adapter"], "discord", "{r}");
        assert_eq!(r["chat"], ALICE_DM, "{r}");
        assert_eq!(r["detail"]["chat_id"], chat.as_str(), "{r}");
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
