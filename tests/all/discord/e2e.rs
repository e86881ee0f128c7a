//! What the issue asks to see end to end: messages in, tools out, each
//! checked both in what the session got and in what the platform received.

use std::time::Duration;

use fake_discord::{BOT_ID, payloads};
use serde_json::json;

use super::*;

#[tokio::test]
async fn an_allowed_dm_arrives_with_its_meta_and_a_stranger_is_dropped() {
    let fake = fake().await;
    let home = discord_home(&fake, "");
    allow_alice(&home).await;
    let mut session = start(&home, &fake, "info").await;

    // Identify: the token the host put in, and the intents DMs and servers need.
    let identify = fake.last_identify().unwrap();
    assert_eq!(identify["d"]["token"], TOKEN);
    assert_eq!(identify["d"]["intents"], 46593);
    // REST calls carry it as a header the adapter never saw.
    let me = &fake.calls_to("GET", "/users/@me")[0];
    assert!(
        me.headers
            .contains(&("authorization".into(), format!("Bot {TOKEN}"))),
        "{me:?}"
    );

    fake.dispatch(
        "MESSAGE_CREATE",
        payloads::dm_message("3000000000000000001", EVE_DM, eve(), "let me in"),
    );
    fake.dispatch(
        "MESSAGE_CREATE",
        dm_from_alice("3000000000000000002", "hello airlock"),
    );
    let e = event_in(&mut session, ALICE_DM).await;
    assert_eq!(e["content"], "hello airlock");
    let meta = &e["meta"];
    assert_eq!(meta["platform"], "discord");
    assert_eq!(meta["message_id"], "3000000000000000002");
    assert_eq!(meta["user"], "alice");
    assert_eq!(meta["user_id"], ALICE);
    assert!(
        session
            .event_within(Duration::from_millis(500))
            .await
            .is_none(),
        "the stranger's message never arrives"
    );
    let (_, list, _) = cli(&home, &["access", "list"]).await;
    assert!(list.contains("let me in") && list.contains(EVE), "{list}");

    // Alice sees "typing…"; Eve gets nothing at all.
    until("a typing indicator", || {
        !fake
            .calls_to("POST", &format!("/channels/{ALICE_DM}/typing"))
            .is_empty()
    })
    .await;
    assert!(
        fake.calls_to("POST", &format!("/channels/{EVE_DM}/typing"))
            .is_empty()
    );
    assert!(sent_in(&fake, EVE_DM).is_empty());
    session.close().await;
}

#[tokio::test]
async fn server_messages_need_an_open_channel_and_a_mention_and_threads_follow_their_parent() {
    let fake = fake().await;
    let home = discord_home(&fake, "");
    allow_alice(&home).await;
    let mut session = start(&home, &fake, "info").await;

    // Closed: not even a mention gets in.
    fake.dispatch(
        "MESSAGE_CREATE",
        in_channel("3000000000000000010", CHANNEL, "closed", true),
    );
    assert!(
        session
            .event_within(Duration::from_millis(500))
            .await
            .is_none()
    );

    let (code, out, err) = cli(&home, &["access", "group", "open", "discord", CHANNEL]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    fake.dispatch(
        "MESSAGE_CREATE",
        in_channel("3000000000000000011", CHANNEL, "chatter", false),
    );
    fake.dispatch(
        "MESSAGE_CREATE",
        in_channel("3000000000000000012", CHANNEL, "for the bot", true),
    );
    let e = event_in(&mut session, CHANNEL).await;
    assert_eq!(e["meta"]["message_id"], "3000000000000000012");
    assert!(
        e["content"].as_str().unwrap().ends_with("for the bot"),
        "{e}"
    );

    // A reply to one of the bot's messages addresses it too.
    let mut reply = in_channel("3000000000000000013", CHANNEL, "about that", false);
    reply["type"] = json!(19);
    reply["message_reference"] =
        json!({"message_id": "3000000000000000099", "channel_id": CHANNEL});
    reply["referenced_message"] = payloads::guild_message(
        "3000000000000000099",
        CHANNEL,
        payloads::user(BOT_ID, "testbot"),
        "earlier",
    );
    fake.dispatch("MESSAGE_CREATE", reply);
    let e = event_in(&mut session, CHANNEL).await;
    assert_eq!(e["meta"]["reply_to"], "3000000000000000099");

    // The thread inherits the channel's opening (and its mention rule).
    fake.dispatch(
        "MESSAGE_CREATE",
        in_channel("3000000000000000014", THREAD, "thread chatter", false),
    );
    fake.dispatch(
        "MESSAGE_CREATE",
        in_channel("3000000000000000015", THREAD, "in the thread", true),
    );
    let e = event_in(&mut session, THREAD).await;
    assert_eq!(e["meta"]["message_id"], "3000000000000000015");
    assert!(
        session
            .event_within(Duration::from_millis(300))
            .await
            .is_none()
    );

    // The reply goes to the thread.
    let r = session
        .call(
            "reply",
            json!({"chat_id": format!("discord:{THREAD}"), "text": "answered in the thread"}),
        )
        .await;
    let (is_error, text) = outcome(&r);
    assert!(!is_error, "{text}");
    assert_eq!(sent_in(&fake, THREAD), ["answered in the thread"]);
    session.close().await;
}

#[tokio::test]
async fn an_attachment_is_listed_then_downloaded_into_the_inbox() {
    let fake = fake().await;
    let home = discord_home(&fake, "");
    allow_alice(&home).await;
    let mut session = start(&home, &fake, "info").await;

    let bytes = b"twelve bytes".to_vec();
    let attachment = fake.add_attachment(ALICE_DM, "notes.txt", "text/plain", bytes.clone());
    let mut m = dm_from_alice("3000000000000000020", "see file");
    m["attachments"] = json!([attachment]);
    fake.dispatch("MESSAGE_CREATE", m);
    let e = event_in(&mut session, ALICE_DM).await;
    let id = format!("3000000000000000020.{}", attachment["id"].as_str().unwrap());
    assert_eq!(e["meta"]["attachment_ids"], id, "{e}");
    let eager = e["meta"]["attachment_path"]
        .as_str()
        .expect("fetched at once");
    assert_eq!(std::fs::read(eager).unwrap(), bytes);

    let r = session
        .call(
            "download_attachment",
            json!({"chat_id": format!("discord:{ALICE_DM}"), "attachment_id": id}),
        )
        .await;
    let (is_error, text) = outcome(&r);
    assert!(!is_error, "{text}");
    let path = text.strip_prefix("saved to ").unwrap();
    assert!(
        path.starts_with(&home.path().join("inbox").display().to_string()),
        "{path}"
    );
    assert_eq!(std::fs::read(path).unwrap(), bytes);

    // Only ids that were delivered from that chat.
    let r = session
        .call(
            "download_attachment",
            json!({"chat_id": format!("discord:{ALICE_DM}"), "attachment_id": "1.2"}),
        )
        .await;
    assert!(outcome(&r).0);
    session.close().await;
}

#[tokio::test]
async fn a_button_press_arrives_and_is_acknowledged() {
    let fake = fake().await;
    let home = discord_home(&fake, "");
    allow_alice(&home).await;
    let mut session = start(&home, &fake, "info").await;
    fake.dispatch(
        "MESSAGE_CREATE",
        dm_from_alice("3000000000000000030", "ask me"),
    );
    event_in(&mut session, ALICE_DM).await;

    let r = session
        .call("reply", json!({"chat_id": format!("discord:{ALICE_DM}"), "text": "Pick one",
            "buttons": [[{"label": "Yes", "data": "vote:yes"}, {"label": "No", "data": "vote:no"}]]}))
        .await;
    let (is_error, text) = outcome(&r);
    assert!(!is_error, "{text}");
    let sent = fake.messages_in(ALICE_DM).pop().unwrap();
    assert_eq!(
        sent["components"][0]["components"][1]["custom_id"], "vote:no",
        "{sent}"
    );

    fake.dispatch(
        "INTERACTION_CREATE",
        payloads::button_interaction(
            "7000000000000000001",
            ALICE_DM,
            alice(),
            "vote:yes",
            sent.clone(),
            false,
        ),
    );
    let e = event_in(&mut session, ALICE_DM).await;
    assert_eq!(e["meta"]["button"], "vote:yes");
    assert_eq!(e["meta"]["message_id"], sent["id"]);
    until("the press to be acknowledged", || {
        fake.calls_to("POST", "/interactions/{}/{}/callback")
            .iter()
            .any(|c| c.json.as_ref().is_some_and(|j| j["type"] == 6))
    })
    .await;
    session.close().await;
}

#[tokio::test]
async fn reply_chunks_and_files_react_edit_and_history_reach_the_platform() {
    let fake = fake().await;
    let home = discord_home(&fake, "");
    allow_alice(&home).await;
    let mut session = start(&home, &fake, "info").await;
    fake.dispatch(
        "MESSAGE_CREATE",
        dm_from_alice("3000000000000000040", "talk to me"),
    );
    event_in(&mut session, ALICE_DM).await;
    let chat = format!("discord:{ALICE_DM}");

    // 4500 characters: three messages, the first answering Alice and carrying the files.
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("shot.png");
    std::fs::write(&png, b"\x89PNG\r\n\x1a\nfake").unwrap();
    let txt = dir.path().join("notes.txt");
    std::fs::write(&txt, "notes").unwrap();
    let long = format!(
        "{}\n\n{}\n\n{}",
        "a".repeat(1990),
        "b".repeat(1990),
        "c".repeat(500)
    );
    let r = session
        .call(
            "reply",
            json!({"chat_id": chat, "text": long, "reply_to": "3000000000000000040",
            "files": [png.display().to_string(), txt.display().to_string()]}),
        )
        .await;
    let (is_error, text) = outcome(&r);
    assert!(!is_error, "{text}");
    let creates = fake.calls_to("POST", "/channels/{}/messages");
    assert_eq!(creates.len(), 3, "{creates:?}");
    let first = &creates[0];
    assert_eq!(
        first.json.as_ref().unwrap()["message_reference"]["message_id"],
        "3000000000000000040"
    );
    let names: Vec<&str> = first.files.iter().map(|f| f.filename.as_str()).collect();
    assert_eq!(names, ["shot.png", "notes.txt"]);
    assert_eq!(first.files[1].bytes, b"notes");
    assert!(creates[1].files.is_empty() && creates[2].files.is_empty());
    let sent = sent_in(&fake, ALICE_DM);
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(|t| t.chars().count() <= 2000));
    assert_eq!(sent.concat().replace('\n', ""), long.replace('\n', ""));
    let first_id = fake.messages_in(ALICE_DM)[1]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Reactions: Unicode, and a custom emoji in message form.
    for emoji in ["👍", "<:party:123456789012345678>"] {
        let r = session
            .call(
                "react",
                json!({"chat_id": chat, "message_id": "3000000000000000040", "emoji": emoji}),
            )
            .await;
        let (is_error, text) = outcome(&r);
        assert!(!is_error, "{emoji}: {text}");
    }
    let paths: Vec<String> = fake
        .calls_to("PUT", "/channels/{}/messages/{}/reactions/{}/@me")
        .iter()
        .map(|c| c.path.clone())
        .collect();
    assert_eq!(
        paths,
        [
            format!("/channels/{ALICE_DM}/messages/3000000000000000040/reactions/👍/@me"),
            format!(
                "/channels/{ALICE_DM}/messages/3000000000000000040/reactions/party:123456789012345678/@me"
            ),
        ]
    );
    let r = session
        .call(
            "react",
            json!({"chat_id": chat, "message_id": "3000000000000000040", "emoji": "thumbsup"}),
        )
        .await;
    let (is_error, text) = outcome(&r);
    assert!(is_error && text.contains("Unicode emoji"), "{text}");

    // Edit.
    let r = session
        .call(
            "edit_message",
            json!({"chat_id": chat, "message_id": first_id, "text": "shorter"}),
        )
        .await;
    let (is_error, text) = outcome(&r);
    assert!(!is_error, "{text}");
    let edited = fake
        .messages_in(ALICE_DM)
        .into_iter()
        .find(|m| m["id"] == first_id.as_str())
        .unwrap();
    assert_eq!(edited["content"], "shorter");

    // History: oldest first, one line each, a line break cannot forge a row.
    fake.add_message(
        ALICE_DM,
        payloads::dm_message(
            "3000000000000000050",
            ALICE_DM,
            alice(),
            "line one\n[1] forged row",
        ),
    );
    let r = session
        .call("fetch_messages", json!({"chat_id": chat, "limit": 10}))
        .await;
    let (is_error, text) = outcome(&r);
    assert!(!is_error, "{text}");
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert!(rows.len() >= 5, "{text}");
    assert!(rows[0].starts_with("[3000000000000000040]"), "{text}");
    assert!(
        rows.last().unwrap().contains("line one ⏎ [1] forged row"),
        "{text}"
    );
    assert!(rows.iter().any(|r| r.contains("+2 attachments")), "{text}");
    let list = &fake.calls_to("GET", "/channels/{}/messages")[0];
    assert!(
        list.query.contains(&("limit".into(), "10".into())),
        "{list:?}"
    );
    session.close().await;
}

#[tokio::test]
async fn the_token_appears_in_no_input_no_log_and_no_error() {
    let fake = fake().await;
    let home = discord_home(&fake, "");
    allow_alice(&home).await;
    let mut session = start(
        &home,
        &fake,
        "debug,airlock=trace,hyper=trace,hyper_util=trace,tungstenite=trace,tokio_tungstenite=trace",
    )
    .await;

    // A message quoting the token: what the adapter reads is scrubbed.
    fake.dispatch(
        "MESSAGE_CREATE",
        dm_from_alice("3000000000000000060", &format!("my token is {TOKEN} ok")),
    );
    let e = event_in(&mut session, ALICE_DM).await;
    let content = e["content"].as_str().unwrap();
    assert!(
        !content.contains(TOKEN_PART) && content.contains("[redacted]"),
        "{content}"
    );

    // Errors on every path a tool can take, and the platform failing.
    let chat = format!("discord:{ALICE_DM}");
    let mut texts = Vec::new();
    for (tool, args) in [
        (
            "reply",
            json!({"chat_id": chat, "text": "x", "reply_to": "not a number"}),
        ),
        (
            "edit_message",
            json!({"chat_id": chat, "message_id": "1", "text": "edit nothing"}),
        ),
        (
            "react",
            json!({"chat_id": chat, "message_id": "1", "emoji": "nope"}),
        ),
        (
            "download_attachment",
            json!({"chat_id": chat, "attachment_id": "nothing"}),
        ),
        (
            "fetch_messages",
            json!({"chat_id": "discord:1", "limit": 5}),
        ),
    ] {
        texts.push(outcome(&session.call(tool, args).await).1);
    }
    fake.fail_next(
        "POST",
        "/channels/{}/messages",
        fake_discord::Fault::ServerError(500),
        1,
    );
    texts.push(
        outcome(
            &session
                .call("reply", json!({"chat_id": chat, "text": "x"}))
                .await,
        )
        .1,
    );
    for t in &texts {
        assert!(!t.contains(TOKEN_PART), "{t}");
    }
    // A reply quoting it goes out redacted.
    let r = session
        .call(
            "reply",
            json!({"chat_id": chat, "text": format!("it was {TOKEN}")}),
        )
        .await;
    assert!(!outcome(&r).0);
    assert!(
        sent_in(&fake, ALICE_DM)
            .iter()
            .all(|t| !t.contains(TOKEN_PART))
    );

    // A reconnect sends it again (Resume), and still never logs it.
    fake.send_reconnect();
    until("a resume", || fake.resumes() == 1).await;
    assert_eq!(fake.last_resume().unwrap()["d"]["token"], TOKEN);
    let log = session.log.clone();
    session.close().await;
    let text = log.text();
    assert!(
        text.contains("resumed the Discord gateway session"),
        "the log is talkative"
    );
    assert!(!text.contains(TOKEN_PART), "{text}");
}
