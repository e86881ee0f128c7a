//! What the issue asks to see end to end: messages in, tools out, each
//! checked both in what the session got and in what the platform received.

use std::time::Duration;

use fake_telegram::FakeTelegram;
use serde_json::{Value, json};

use super::*;

#[tokio::test]
async fn an_allowed_dm_arrives_with_its_meta_and_a_stranger_is_dropped() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = telegram_home(&fake, "");
    allow_alice(&home).await;
    let mut session = start(&home, &fake, "info").await;

    // At start: who am I, and the commands of the bot menu.
    assert!(!fake.calls_to("getMe").is_empty());
    let commands: Vec<String> = fake
        .commands()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["command"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(commands, ["start", "help", "status"]);
    let set = &fake.calls_to("setMyCommands")[0];
    assert_eq!(
        set.param("scope"),
        Some(&json!({"type": "all_private_chats"}))
    );

    fake.inject_update(text_update(
        5,
        user(EVE, "Eve"),
        private(EVE, "Eve"),
        "let me in please",
    ));
    fake.inject_update(from_alice(7, "hello airlock"));
    let e = event_from(&mut session, ALICE).await;
    assert_eq!(e["content"], "hello airlock");
    let meta = &e["meta"];
    assert_eq!(meta["platform"], "telegram");
    assert_eq!(meta["message_id"], "7");
    assert_eq!(meta["user"], "alice");
    assert_eq!(meta["user_id"], ALICE.to_string());
    assert_eq!(meta["ts"], "2024-06-01T12:01:30.000Z");
    assert!(
        session
            .event_within(Duration::from_millis(500))
            .await
            .is_none(),
        "the stranger's message never arrives"
    );

    // The stranger is listed for the operator, with the command that lets them in.
    let (_, list, _) = cli(&home, &["access", "list"]).await;
    assert!(
        list.contains("telegram:666 @eve") && list.contains("let me in please"),
        "{list}"
    );
    assert!(
        list.contains("→ airlock access allow telegram 666"),
        "{list}"
    );

    // Alice sees "typing…"; both updates are confirmed to Telegram.
    until("a typing indicator", || {
        fake.calls_to("sendChatAction")
            .iter()
            .any(|c| c.param("chat_id") == Some(&json!(ALICE)))
    })
    .await;
    until("the offset to confirm the updates", || {
        fake.pending_updates() == 0
    })
    .await;
    assert!(
        !sent_texts(&fake).iter().any(|t| t.contains("session")),
        "the stranger got no answer"
    );
    session.close().await;
}

#[tokio::test]
async fn group_messages_need_an_open_group_and_a_mention() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = telegram_home(&fake, "");
    allow_alice(&home).await;
    let (code, out, err) = cli(
        &home,
        &["access", "group", "open", "telegram", &GROUP.to_string()],
    )
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("allowlisted senders, when they mention the bot"),
        "{out}"
    );
    let mut session = start(&home, &fake, "info").await;

    let mention = |id: i64, from: Value, text: &str| {
        let mut u = text_update(id, from, supergroup(), text);
        u["message"]["entities"] = json!([{"type": "mention", "offset": 0, "length": 9}]);
        u
    };
    fake.inject_update(text_update(
        10,
        user(ALICE, "Alice"),
        supergroup(),
        "just chatting",
    ));
    fake.inject_update(mention(11, user(ALICE, "Alice"), "@test_bot status?"));
    fake.inject_update(mention(12, user(EVE, "Eve"), "@test_bot obey me"));
    let e = event_from(&mut session, GROUP).await;
    assert_eq!(e["content"], "@test_bot status?");
    assert_eq!(e["meta"]["message_id"], "11");
    assert_eq!(e["meta"]["chat_title"], "Test Group");

    // A reply to the bot's own message addresses it too.
    let sent = session
        .call(
            "reply",
            json!({"chat_id": format!("telegram:{GROUP}"), "text": "all good"}),
        )
        .await;
    let (is_error, text) = outcome(&sent);
    assert!(!is_error, "{text}");
    let bot_message = fake.bot_messages().last().unwrap().clone();
    let mut reply = text_update(13, user(ALICE, "Alice"), supergroup(), "thanks");
    reply["message"]["reply_to_message"] = bot_message.clone();
    fake.inject_update(reply);
    let e = event_from(&mut session, GROUP).await;
    assert_eq!(e["meta"]["message_id"], "13");
    assert_eq!(e["meta"]["reply_to"], bot_message["message_id"].to_string());

    // A group nobody opened: dropped, and listed with the command that opens it.
    let other = json!({"id": -100_999, "type": "supergroup", "title": "Elsewhere"});
    let mut closed = text_update(14, user(ALICE, "Alice"), other, "@test_bot here?");
    closed["message"]["entities"] = json!([{"type": "mention", "offset": 0, "length": 9}]);
    fake.inject_update(closed);
    assert!(
        session
            .event_within(Duration::from_millis(700))
            .await
            .is_none()
    );
    let (_, list, _) = cli(&home, &["access", "list"]).await;
    assert!(
        list.contains("open groups\n  telegram:-1001234567890"),
        "{list}"
    );
    assert!(
        list.contains("in group -100999")
            && list.contains("→ airlock access group open telegram -100999"),
        "{list}"
    );

    // Closing the group closes it both ways, at once.
    let (code, _, _) = cli(
        &home,
        &["access", "group", "close", "telegram", &GROUP.to_string()],
    )
    .await;
    assert_eq!(code, Some(0));
    fake.inject_update(mention(15, user(ALICE, "Alice"), "@test_bot still there?"));
    assert!(
        session
            .event_within(Duration::from_millis(700))
            .await
            .is_none()
    );
    let refused = session
        .call(
            "reply",
            json!({"chat_id": format!("telegram:{GROUP}"), "text": "hello?"}),
        )
        .await;
    assert!(outcome(&refused).0, "{refused}");
    session.close().await;
}

#[tokio::test]
async fn a_group_open_to_any_member_delivers_a_sender_nobody_allowed() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = telegram_home(&fake, "");
    cli_ok(
        &home,
        &[
            "access",
            "group",
            "open",
            "telegram",
            &GROUP.to_string(),
            "--any-sender",
        ],
    )
    .await;
    let mut session = start(&home, &fake, "info").await;
    let mut u = text_update(30, user(EVE, "Eve"), supergroup(), "@test_bot hello all");
    u["message"]["entities"] = json!([{"type": "mention", "offset": 0, "length": 9}]);
    fake.inject_update(u);
    let e = event_from(&mut session, GROUP).await;
    assert_eq!(e["content"], "@test_bot hello all");
    assert_eq!(e["meta"]["user_id"], EVE.to_string());
    // Still no way in through a direct chat.
    fake.inject_update(text_update(
        31,
        user(EVE, "Eve"),
        private(EVE, "Eve"),
        "psst",
    ));
    assert!(
        session
            .event_within(Duration::from_millis(700))
            .await
            .is_none()
    );
    session.close().await;
}

#[tokio::test]
async fn photos_and_documents_arrive_as_attachments_and_download_into_the_inbox() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = telegram_home(&fake, "");
    allow_alice(&home).await;
    let mut session = start(&home, &fake, "info").await;

    let photo_bytes = b"\xff\xd8\xff\xe0 a small jpeg".to_vec();
    fake.add_file_at("PHOTO-BIG", "photos/file_1.jpg", photo_bytes.clone());
    fake.add_file_at("PHOTO-SMALL", "photos/file_0.jpg", b"thumb".to_vec());
    fake.inject_update(json!({"message": {
        "message_id": 20, "date": 1_717_243_500, "from": user(ALICE, "Alice"), "chat": private(ALICE, "Alice"),
        "photo": [
            {"file_id": "PHOTO-SMALL", "file_unique_id": "s", "file_size": 5, "width": 90, "height": 67},
            {"file_id": "PHOTO-BIG", "file_unique_id": "b", "file_size": photo_bytes.len(), "width": 1280, "height": 960}],
        "caption": "look at this"}}));
    let e = event_from(&mut session, ALICE).await;
    assert_eq!(e["content"], "look at this");
    let meta = &e["meta"];
    assert_eq!(meta["attachment_count"], "1");
    assert_eq!(meta["attachment_ids"], "PHOTO-BIG");
    assert_eq!(meta["attachments"], "photo.jpg (image/jpeg, 1 KB)");
    let path = meta["attachment_path"].as_str().unwrap();
    assert!(
        path.starts_with(&home.path().join("inbox").display().to_string()),
        "{path}"
    );
    assert_eq!(std::fs::read(path).unwrap(), photo_bytes);

    let doc = b"%PDF-1.4 report".to_vec();
    fake.add_file_at("DOC-1", "documents/report.pdf", doc.clone());
    fake.inject_update(json!({"message": {
        "message_id": 21, "date": 1_717_243_600, "from": user(ALICE, "Alice"), "chat": private(ALICE, "Alice"),
        "document": {"file_name": "report.pdf", "mime_type": "application/pdf", "file_id": "DOC-1",
                     "file_unique_id": "d", "file_size": doc.len()}}}));
    let e = event_from(&mut session, ALICE).await;
    assert_eq!(
        e["content"],
        "(report.pdf (application/pdf, 1 KB) attached)"
    );
    assert_eq!(
        std::fs::read(e["meta"]["attachment_path"].as_str().unwrap()).unwrap(),
        doc
    );

    // On request too; the bytes came through getFile and the file URL.
    let saved = session
        .call(
            "download_attachment",
            json!({"chat_id": "telegram:111", "attachment_id": "DOC-1"}),
        )
        .await;
    let (is_error, text) = outcome(&saved);
    assert!(!is_error, "{text}");
    let path = text.strip_prefix("saved to ").unwrap();
    assert_eq!(std::fs::read(path).unwrap(), doc);
    assert!(
        fake.calls_to("getFile")
            .iter()
            .any(|c| c.param("file_id") == Some(&json!("DOC-1")))
    );

    // Only ids delivered from that chat.
    fake.add_file_at("SECRET", "documents/other.txt", b"not yours".to_vec());
    let refused = session
        .call(
            "download_attachment",
            json!({"chat_id": "telegram:111", "attachment_id": "SECRET"}),
        )
        .await;
    let (is_error, text) = outcome(&refused);
    assert!(
        is_error && text.contains("was not delivered from chat telegram:111"),
        "{text}"
    );
    session.close().await;
}

#[tokio::test]
async fn a_button_press_arrives_and_is_answered() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = telegram_home(&fake, "");
    allow_alice(&home).await;
    let mut session = start(&home, &fake, "info").await;
    fake.inject_update(from_alice(30, "ask me"));
    event_from(&mut session, ALICE).await;

    let sent = session
        .call("reply", json!({"chat_id": "telegram:111", "text": "Pick one",
            "buttons": [[{"label": "Yes", "data": "vote:yes"}, {"label": "No", "data": "vote:no"}]]}))
        .await;
    let (is_error, text) = outcome(&sent);
    assert!(!is_error, "{text}");
    let call = fake.calls_to("sendMessage").pop().unwrap();
    assert_eq!(
        call.param("reply_markup"),
        Some(&json!({"inline_keyboard": [[
            {"text": "Yes", "callback_data": "vote:yes"}, {"text": "No", "callback_data": "vote:no"}]]}))
    );
    let message = fake.bot_messages().pop().unwrap();
    fake.inject_update(json!({"callback_query": {
        "id": "4382bfdwdsb323b2d9", "from": user(ALICE, "Alice"), "message": message,
        "chat_instance": "-3214567890123456789", "data": "vote:yes"}}));
    let e = event_from(&mut session, ALICE).await;
    assert_eq!(e["content"], "[pressed button: vote:yes]");
    assert_eq!(e["meta"]["button"], "vote:yes");
    assert_eq!(e["meta"]["message_id"], message["message_id"].to_string());
    until("answerCallbackQuery", || {
        fake.calls_to("answerCallbackQuery")
            .iter()
            .any(|c| c.param("callback_query_id") == Some(&json!("4382bfdwdsb323b2d9")))
    })
    .await;
    session.close().await;
}

#[tokio::test]
async fn reply_chunking_react_edit_and_files_reach_the_platform() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = telegram_home(&fake, "");
    allow_alice(&home).await;
    let mut session = start(&home, &fake, "info").await;
    fake.inject_update(from_alice(40, "please answer"));
    event_from(&mut session, ALICE).await;
    let chat = "telegram:111";

    let r = session
        .call(
            "reply",
            json!({"chat_id": chat, "text": "*done*", "reply_to": "40", "format": "markdown"}),
        )
        .await;
    let (is_error, text) = outcome(&r);
    assert!(!is_error, "{text}");
    let call = fake.calls_to("sendMessage").pop().unwrap();
    assert_eq!(call.param("chat_id"), Some(&json!(ALICE)));
    assert_eq!(call.param("parse_mode"), Some(&json!("MarkdownV2")));
    assert_eq!(call.param("reply_parameters").unwrap()["message_id"], 40);
    let first_id = text
        .strip_prefix("sent (id: ")
        .unwrap()
        .trim_end_matches(')')
        .to_owned();

    // 5000 characters: two messages, cut at a line break, the reply only on the first.
    let long = format!("{}\n{}", "a".repeat(3000), "b".repeat(2000));
    let before = fake.calls_to("sendMessage").len();
    let r = session
        .call(
            "reply",
            json!({"chat_id": chat, "text": long, "reply_to": "40"}),
        )
        .await;
    let (is_error, text) = outcome(&r);
    assert!(!is_error && text.starts_with("sent 2 parts"), "{text}");
    let parts: Vec<_> = fake.calls_to("sendMessage").split_off(before);
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].param("text"), Some(&json!("a".repeat(3000))));
    assert_eq!(parts[1].param("text"), Some(&json!("b".repeat(2000))));
    assert!(
        parts[0].param("reply_parameters").is_some()
            && parts[1].param("reply_parameters").is_none()
    );

    let r = session
        .call(
            "react",
            json!({"chat_id": chat, "message_id": "40", "emoji": "👍"}),
        )
        .await;
    assert!(!outcome(&r).0, "{r}");
    let call = fake.calls_to("setMessageReaction").pop().unwrap();
    assert_eq!(
        call.param("reaction"),
        Some(&json!([{"type": "emoji", "emoji": "👍"}]))
    );
    assert_eq!(call.param("message_id"), Some(&json!(40)));
    let r = session
        .call(
            "react",
            json!({"chat_id": chat, "message_id": "40", "emoji": "🦀"}),
        )
        .await;
    let (is_error, text) = outcome(&r);
    assert!(
        is_error && text.contains("fixed emoji list") && text.contains("👍"),
        "{text}"
    );

    let r = session
        .call(
            "edit_message",
            json!({"chat_id": chat, "message_id": first_id, "text": "done, edited"}),
        )
        .await;
    assert!(!outcome(&r).0, "{r}");
    let edited = fake
        .bot_messages()
        .into_iter()
        .find(|m| m["message_id"] == json!(first_id.parse::<i64>().unwrap()))
        .unwrap();
    assert_eq!(edited["text"], "done, edited");
    assert!(edited.get("edit_date").is_some());

    // Files: an image as a photo, anything else as a document, after the text.
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("chart.png");
    std::fs::write(&png, b"\x89PNG fake image").unwrap();
    let log = dir.path().join("build.log");
    std::fs::write(&log, b"line 1\nline 2\n").unwrap();
    let r = session
        .call(
            "reply",
            json!({"chat_id": chat, "text": "results",
            "files": [png.display().to_string(), log.display().to_string()]}),
        )
        .await;
    let (is_error, text) = outcome(&r);
    assert!(!is_error && text.starts_with("sent 3 parts"), "{text}");
    let photo = fake.calls_to("sendPhoto").pop().unwrap();
    assert_eq!(photo.files[0].bytes, b"\x89PNG fake image");
    assert_eq!(photo.files[0].file_name, "chart.png");
    assert_eq!(photo.param("chat_id"), Some(&json!(ALICE)));
    let document = fake.calls_to("sendDocument").pop().unwrap();
    assert_eq!(document.files[0].bytes, b"line 1\nline 2\n");

    // Only chats an allowed sender wrote from.
    let r = session
        .call("reply", json!({"chat_id": "telegram:666", "text": "hi"}))
        .await;
    let (is_error, text) = outcome(&r);
    assert!(
        is_error && text.contains("not one airlock delivers messages from"),
        "{text}"
    );
    session.close().await;
}

#[tokio::test]
async fn start_help_and_status_are_answered_for_allowed_senders_only() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = telegram_home(&fake, "");
    allow_alice(&home).await;
    let mut session = start(&home, &fake, "info").await;
    // Once a message has reached the session, it is connected.
    fake.inject_update(from_alice(49, "hello"));
    event_from(&mut session, ALICE).await;
    fake.inject_update(from_alice(50, "/status"));
    fake.inject_update(from_alice(51, "/start@test_bot"));
    fake.inject_update(text_update(
        52,
        user(EVE, "Eve"),
        private(EVE, "Eve"),
        "/start",
    ));
    fake.inject_update(from_alice(53, "a real message"));
    let e = event_from(&mut session, ALICE).await;
    assert_eq!(
        e["content"], "a real message",
        "commands never reach the session"
    );
    until("two answers", || sent_texts(&fake).len() >= 2).await;
    let answers: Vec<(Value, String)> = fake
        .calls_to("sendMessage")
        .iter()
        .map(|c| {
            (
                c.param("chat_id").unwrap().clone(),
                c.param("text").unwrap().as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        answers
            .iter()
            .any(|(chat, t)| *chat == json!(ALICE) && t.contains("connected now")),
        "{answers:?}"
    );
    assert!(
        answers
            .iter()
            .any(|(chat, t)| *chat == json!(ALICE)
                && t.contains("connected to a Claude Code session")),
        "{answers:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !fake
            .calls_to("sendMessage")
            .iter()
            .any(|c| c.param("chat_id") == Some(&json!(EVE)))
    );
    session.close().await;
}

#[tokio::test]
async fn the_token_appears_in_no_input_no_log_and_no_error() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = telegram_home(&fake, "");
    allow_alice(&home).await;
    // Everything that handles the token at its most talkative; wasmtime's
    // compiler at debug (at trace it is too slow to start within the test).
    let mut session = start(
        &home,
        &fake,
        "debug,airlock=trace,hyper=trace,hyper_util=trace,rustls=trace,tokio_rustls=trace",
    )
    .await;

    // A message that carries the token: what the adapter reads is scrubbed.
    fake.inject_update(from_alice(60, &format!("my token is {TOKEN} ok")));
    let e = event_from(&mut session, ALICE).await;
    let content = e["content"].as_str().unwrap();
    assert!(
        !content.contains(TOKEN_PART) && content.contains("[redacted]"),
        "{content}"
    );

    // Errors on every path a tool can take.
    let mut texts = Vec::new();
    for args in [
        json!({"chat_id": "telegram:111", "text": "x", "reply_to": "not a number"}),
        json!({"chat_id": "telegram:111", "message_id": "999999", "text": "edit nothing"}),
        json!({"chat_id": "telegram:111", "message_id": "40", "emoji": "nope"}),
        json!({"chat_id": "telegram:111", "attachment_id": "nothing"}),
    ] {
        let tool = if args.get("emoji").is_some() {
            "react"
        } else if args.get("attachment_id").is_some() {
            "download_attachment"
        } else if args.get("message_id").is_some() {
            "edit_message"
        } else {
            "reply"
        };
        texts.push(outcome(&session.call(tool, args).await).1);
    }
    // And the platform failing: a 500 on sendMessage.
    fake.fail_next("sendMessage", fake_telegram::Fault::ServerError(500), 1);
    texts.push(
        outcome(
            &session
                .call("reply", json!({"chat_id": "telegram:111", "text": "x"}))
                .await,
        )
        .1,
    );
    for t in &texts {
        assert!(!t.contains(TOKEN_PART), "{t}");
    }
    // The session's reply to a message quoting the token goes out redacted too.
    let r = session
        .call(
            "reply",
            json!({"chat_id": "telegram:111", "text": format!("it was {TOKEN}")}),
        )
        .await;
    assert!(!outcome(&r).0, "{r}");
    assert!(
        sent_texts(&fake).iter().all(|t| !t.contains(TOKEN_PART)),
        "{:?}",
        sent_texts(&fake)
    );

    let log = session.log.text();
    session.close().await;
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "the log level took effect"
    );
    let leaks: Vec<&str> = log.lines().filter(|l| l.contains(TOKEN_PART)).collect();
    assert!(leaks.is_empty(), "log lines hold the token: {leaks:#?}");
}
