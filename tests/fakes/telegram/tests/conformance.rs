//! The fake against a real client (teloxide) and against raw HTTP.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fake_telegram::{BOT_ID, BOT_USERNAME, FakeTelegram, Fault};
use serde_json::{Value, json};
use teloxide::net::Download;
use teloxide::payloads::setters::*;
use teloxide::prelude::*;
use teloxide::types::{
    ChatAction, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, MessageId, ParseMode,
    ReactionType, ReplyParameters, Seconds, Update, UpdateKind,
};
use teloxide::{ApiError, RequestError};

const TOKEN: &str = "123456:TEST-TOKEN";

fn client() -> reqwest::Client {
    teloxide::net::default_reqwest_settings()
        .no_proxy()
        .build()
        .expect("reqwest client")
}

fn bot_with_token(fake: &FakeTelegram, token: &str) -> Bot {
    Bot::with_client(token, client())
        .set_api_url(reqwest::Url::parse(&fake.base_url()).expect("url"))
}

fn bot(fake: &FakeTelegram) -> Bot {
    bot_with_token(fake, TOKEN)
}

/// A raw POST to `/bot<token>/<method>` with a body; returns status and JSON.
async fn raw(
    fake: &FakeTelegram,
    method: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let resp = client()
        .post(format!("{}/bot{TOKEN}/{method}", fake.base_url()))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("JSON body"))
}

fn private_text(message_id: i64, text: &str) -> Value {
    json!({"message": {
        "message_id": message_id,
        "from": {"id": 111, "is_bot": false, "first_name": "Alice", "username": "alice", "language_code": "en"},
        "chat": {"id": 111, "first_name": "Alice", "username": "alice", "type": "private"},
        "date": 1717243290,
        "text": text,
    }})
}

fn group_mention() -> Value {
    json!({"message": {
        "message_id": 42,
        "from": {"id": 222, "is_bot": false, "first_name": "Bob", "username": "bob"},
        "chat": {"id": -1001234567890_i64, "title": "Test Group", "type": "supergroup"},
        "date": 1717243400,
        "text": "@test_bot what's up? /help@test_bot",
        "entities": [{"offset": 0, "length": 9, "type": "mention"}, {"offset": 21, "length": 14, "type": "bot_command"}],
    }})
}

// ---- through teloxide -------------------------------------------------------

#[tokio::test]
async fn get_me() {
    let fake = FakeTelegram::start(TOKEN).await;
    let me = bot(&fake).get_me().await.expect("getMe");
    assert_eq!(me.id.0, BOT_ID as u64);
    assert!(me.is_bot);
    assert_eq!(me.username(), BOT_USERNAME);
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, "getMe");
    assert_eq!(calls[0].raw_method, "GetMe");
}

#[tokio::test]
async fn polling_delivers_updates_and_offset_confirms_them() {
    let fake = FakeTelegram::start(TOKEN).await;
    let bot = bot(&fake);
    let first = fake.inject_update(private_text(7, "hi"));
    let second = fake.inject_update(group_mention());
    assert_eq!(second, first + 1);

    let updates = bot.get_updates().await.expect("getUpdates");
    assert_eq!(updates.len(), 2);
    assert_eq!(i64::from(updates[0].id.0), first);
    assert_eq!(i64::from(updates[1].id.0), second);
    let UpdateKind::Message(m) = &updates[0].kind else {
        panic!("expected a message, got {:?}", updates[0].kind);
    };
    assert_eq!(m.text(), Some("hi"));
    let UpdateKind::Message(m) = &updates[1].kind else {
        panic!("expected a message, got {:?}", updates[1].kind);
    };
    assert!(m.chat.is_supergroup());

    // Without an offset nothing is confirmed: the same two come again.
    assert_eq!(bot.get_updates().await.expect("getUpdates").len(), 2);
    // A limit is honoured.
    assert_eq!(
        bot.get_updates().limit(1).await.expect("getUpdates").len(),
        1
    );
    // Offset = first + 1 confirms (drops) the first.
    let rest = bot
        .get_updates()
        .offset(updates[0].id.as_offset())
        .await
        .expect("getUpdates");
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].id, updates[1].id);
    assert_eq!(fake.pending_updates(), 1);
    // Offset past the last confirms everything.
    let none = bot
        .get_updates()
        .offset(updates[1].id.as_offset())
        .await
        .expect("getUpdates");
    assert!(none.is_empty());
    assert_eq!(fake.pending_updates(), 0);

    let offsets: Vec<Option<Value>> = fake
        .calls_to("getUpdates")
        .iter()
        .map(|c| c.param("offset").cloned())
        .collect();
    assert_eq!(offsets.last().unwrap(), &Some(json!(second + 1)));
}

#[tokio::test]
async fn long_poll_returns_early_when_an_update_arrives() {
    let fake = FakeTelegram::start(TOKEN).await;
    let bot = bot(&fake);
    let started = Instant::now();
    let poll = tokio::spawn({
        let bot = bot.clone();
        async move { bot.get_updates().timeout(10).await }
    });
    while !fake.is_polling() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    fake.inject_update(private_text(1, "wake up"));
    let updates = poll.await.unwrap().expect("getUpdates");
    assert_eq!(updates.len(), 1);
    assert!(started.elapsed() < Duration::from_secs(5));

    // With nothing queued, a short timeout ends with an empty list.
    let started = Instant::now();
    let none = bot
        .get_updates()
        .offset(updates[0].id.as_offset())
        .timeout(1)
        .await
        .expect("getUpdates");
    assert!(none.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(900));
}

/// teloxide's own long-polling listener (what `Dispatcher` runs): webhook
/// check, then getUpdates with advancing offsets.
#[tokio::test]
async fn teloxide_polling_listener_receives_updates() {
    use futures_util::StreamExt;
    use teloxide::update_listeners::{AsUpdateStream, polling_default};

    let fake = FakeTelegram::start(TOKEN).await;
    fake.inject_update(private_text(1, "one"));
    fake.inject_update(private_text(2, "two"));
    let mut polling = polling_default(bot(&fake)).await;
    let stream = polling.as_stream();
    futures_util::pin_mut!(stream);
    let mut texts = Vec::new();
    for i in 0..3 {
        if i == 2 {
            fake.inject_update(private_text(3, "three"));
        }
        let update = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("an update within 5 s")
            .expect("stream open")
            .expect("no polling error");
        let UpdateKind::Message(m) = update.kind else {
            panic!("not a message: {:?}", update.kind);
        };
        texts.push(m.text().unwrap().to_owned());
    }
    assert_eq!(texts, ["one", "two", "three"]);
    let calls = fake.calls();
    assert_eq!(calls[0].method, "getWebhookInfo");
    let polls: Vec<_> = calls.iter().filter(|c| c.method == "getUpdates").collect();
    assert_eq!(polls[0].param("timeout"), Some(&json!(10)));
    assert!(polls.len() >= 2);
    assert_eq!(polls[1].param("offset"), Some(&json!(3)));
}

#[tokio::test]
async fn allowed_updates_is_accepted_and_sticky() {
    let fake = FakeTelegram::start(TOKEN).await;
    let bot = bot(&fake);
    use teloxide::types::AllowedUpdate;
    bot.get_updates()
        .allowed_updates(vec![AllowedUpdate::Message, AllowedUpdate::CallbackQuery])
        .await
        .expect("getUpdates");
    bot.get_updates().await.expect("getUpdates");
    assert_eq!(
        fake.allowed_updates(),
        Some(vec!["message".to_owned(), "callback_query".to_owned()])
    );
}

#[tokio::test]
async fn send_message_with_reply_parse_mode_and_keyboard() {
    let fake = FakeTelegram::start(TOKEN).await;
    let bot = bot(&fake);
    fake.inject_update(private_text(7, "hi"));
    let keyboard = InlineKeyboardMarkup::new([[
        InlineKeyboardButton::callback("Yes", "vote:yes"),
        InlineKeyboardButton::url("Docs", reqwest::Url::parse("https://example.org").unwrap()),
    ]]);
    let sent = bot
        .send_message(ChatId(111), "<b>Pick</b> one")
        .parse_mode(ParseMode::Html)
        .reply_parameters(ReplyParameters::new(MessageId(7)))
        .reply_markup(keyboard.clone())
        .await
        .expect("sendMessage");
    assert_eq!(sent.text(), Some("<b>Pick</b> one"));
    assert_eq!(sent.chat.id, ChatId(111));
    assert_eq!(sent.chat.username(), Some("alice"));
    assert_eq!(sent.reply_to_message().map(|m| m.id), Some(MessageId(7)));
    assert_eq!(sent.reply_markup(), Some(&keyboard));
    assert!(sent.id.0 > 7);

    let next = bot
        .send_message(ChatId(111), "again")
        .await
        .expect("sendMessage");
    assert!(next.id.0 > sent.id.0);

    let call = &fake.calls_to("sendMessage")[0];
    assert_eq!(call.param("chat_id"), Some(&json!(111)));
    assert_eq!(call.param("parse_mode"), Some(&json!("HTML")));
    assert_eq!(
        call.param("reply_parameters"),
        Some(&json!({"message_id": 7}))
    );
    assert_eq!(
        call.param("reply_markup").unwrap()["inline_keyboard"][0][0]["callback_data"],
        json!("vote:yes")
    );
    assert_eq!(fake.bot_messages().len(), 2);

    // Replying to a message the fake never saw fails like the real server.
    let err = bot
        .send_message(ChatId(111), "x")
        .reply_parameters(ReplyParameters::new(MessageId(999)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::MessageToReplyNotFound)),
        "{err:?}"
    );
    let err = bot.send_message(ChatId(111), "").await.unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::MessageTextIsEmpty)),
        "{err:?}"
    );
}

#[tokio::test]
async fn edit_message_text() {
    let fake = FakeTelegram::start(TOKEN).await;
    let bot = bot(&fake);
    let sent = bot
        .send_message(ChatId(111), "draft")
        .await
        .expect("sendMessage");
    let edited = bot
        .edit_message_text(ChatId(111), sent.id, "final")
        .await
        .expect("editMessageText");
    assert_eq!(edited.id, sent.id);
    assert_eq!(edited.text(), Some("final"));
    assert!(edited.edit_date().is_some());
    assert_eq!(fake.bot_messages()[0]["text"], json!("final"));

    let err = bot
        .edit_message_text(ChatId(111), sent.id, "final")
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::MessageNotModified)),
        "{err:?}"
    );
    let err = bot
        .edit_message_text(ChatId(111), MessageId(4242), "x")
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::MessageToEditNotFound)),
        "{err:?}"
    );
}

#[tokio::test]
async fn set_message_reaction() {
    let fake = FakeTelegram::start(TOKEN).await;
    let bot = bot(&fake);
    fake.inject_update(private_text(7, "hi"));
    bot.set_message_reaction(ChatId(111), MessageId(7))
        .reaction(vec![ReactionType::Emoji {
            emoji: "👍".to_owned(),
        }])
        .await
        .expect("setMessageReaction");
    let call = &fake.calls_to("setMessageReaction")[0];
    assert_eq!(call.param("message_id"), Some(&json!(7)));
    assert_eq!(
        call.param("reaction"),
        Some(&json!([{"type": "emoji", "emoji": "👍"}]))
    );

    // ❤️ with U+FE0F is the same reaction as ❤.
    bot.set_message_reaction(ChatId(111), MessageId(7))
        .reaction(vec![ReactionType::Emoji {
            emoji: "❤\u{FE0F}".to_owned(),
        }])
        .await
        .expect("setMessageReaction");
    // Removing reactions: no `reaction`.
    bot.set_message_reaction(ChatId(111), MessageId(7))
        .await
        .expect("setMessageReaction");

    let err = bot
        .set_message_reaction(ChatId(111), MessageId(7))
        .reaction(vec![ReactionType::Emoji {
            emoji: "🦀".to_owned(),
        }])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RequestError::Api(ApiError::Unknown(t)) if t == "Bad Request: REACTION_INVALID"),
        "{err:?}"
    );
}

#[tokio::test]
async fn chat_action_and_commands() {
    let fake = FakeTelegram::start(TOKEN).await;
    let bot = bot(&fake);
    bot.send_chat_action(ChatId(111), ChatAction::Typing)
        .await
        .expect("sendChatAction");
    bot.set_my_commands([teloxide::types::BotCommand::new("start", "Start the bot")])
        .await
        .expect("setMyCommands");
    assert_eq!(
        fake.commands(),
        json!([{"command": "start", "description": "Start the bot"}])
    );
    let commands = bot.get_my_commands().await.expect("getMyCommands");
    assert_eq!(commands[0].command, "start");
    let err = bot
        .set_my_commands([teloxide::types::BotCommand::new("Bad-Name", "x")])
        .await
        .unwrap_err();
    assert!(matches!(err, RequestError::Api(_)), "{err:?}");
    assert_eq!(
        fake.calls_to("sendChatAction")[0].param("action"),
        Some(&json!("typing"))
    );
}

#[tokio::test]
async fn get_file_and_download() {
    let fake = FakeTelegram::start(TOKEN).await;
    let bot = bot(&fake);
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    fake.add_file_at("AgACAgIAAxk-photo", "photos/file_7.jpg", bytes.clone());
    let file = bot
        .get_file(teloxide::types::FileId("AgACAgIAAxk-photo".into()))
        .await
        .expect("getFile");
    assert_eq!(file.path, "photos/file_7.jpg");
    assert_eq!(file.size, 70_000);
    let mut downloaded = Vec::new();
    bot.download_file(&file.path, &mut downloaded)
        .await
        .expect("download");
    assert_eq!(downloaded, bytes);

    // A literal '/' in the path works too (other clients).
    let resp = client()
        .get(format!(
            "{}/file/bot{TOKEN}/photos/file_7.jpg",
            fake.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap().len(), 70_000);

    let err = bot
        .get_file(teloxide::types::FileId("nope".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, RequestError::Api(_)), "{err:?}");
    let mut sink = Vec::new();
    assert!(
        bot.download_file("photos/none.jpg", &mut sink)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn send_photo_and_document_multipart() {
    let fake = FakeTelegram::start(TOKEN).await;
    let bot = bot(&fake);
    let photo = b"\x89PNG\r\n\x1a\nnot really".to_vec();
    let sent = bot
        .send_photo(
            ChatId(111),
            InputFile::memory(photo.clone()).file_name("cat.png"),
        )
        .caption("a cat")
        .reply_markup(InlineKeyboardMarkup::new([[
            InlineKeyboardButton::callback("Like", "like"),
        ]]))
        .await
        .expect("sendPhoto");
    assert_eq!(sent.caption(), Some("a cat"));
    let sizes = sent.photo().expect("photo sizes");
    let call = &fake.calls_to("sendPhoto")[0];
    assert_eq!(call.files.len(), 1);
    // teloxide names the part and refers to it as `attach://<part>`.
    assert_eq!(
        call.param("photo"),
        Some(&json!(format!("attach://{}", call.files[0].field)))
    );
    assert_eq!(call.files[0].file_name, "cat.png");
    assert_eq!(call.files[0].size(), photo.len());
    assert_eq!(call.files[0].bytes, photo);
    assert_eq!(call.param("chat_id"), Some(&json!(111)));
    assert_eq!(call.param("caption"), Some(&json!("a cat")));
    assert_eq!(
        call.param("reply_markup").unwrap()["inline_keyboard"][0][0]["text"],
        json!("Like")
    );
    // The uploaded photo can be fetched back like any file.
    let file = bot
        .get_file(sizes[0].file.id.clone())
        .await
        .expect("getFile");
    let mut back = Vec::new();
    bot.download_file(&file.path, &mut back).await.unwrap();
    assert_eq!(back, photo);

    let doc = bot
        .send_document(
            ChatId(111),
            InputFile::memory(&b"%PDF-1.7"[..]).file_name("report.pdf"),
        )
        .await
        .expect("sendDocument");
    let d = doc.document().expect("document");
    assert_eq!(d.file_name.as_deref(), Some("report.pdf"));
    assert_eq!(d.file.size, 8);
    assert_eq!(
        fake.calls_to("sendDocument")[0].files[0].file_name,
        "report.pdf"
    );
}

#[tokio::test]
async fn webhook_info_and_delete() {
    let fake = FakeTelegram::start(TOKEN).await;
    let bot = bot(&fake);
    let info = bot.get_webhook_info().await.expect("getWebhookInfo");
    assert!(info.url.is_none());
    fake.inject_update(private_text(1, "old"));
    bot.delete_webhook()
        .drop_pending_updates(true)
        .await
        .expect("deleteWebhook");
    assert_eq!(fake.pending_updates(), 0);
}

// ---- faults and errors --------------------------------------------------------

#[tokio::test]
async fn older_of_two_concurrent_polls_gets_409() {
    let fake = FakeTelegram::start(TOKEN).await;
    let bot = bot(&fake);
    let older = tokio::spawn({
        let bot = bot.clone();
        async move { bot.get_updates().timeout(10).await }
    });
    while !fake.is_polling() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let newer = bot.get_updates().timeout(0).await.expect("newer poll");
    assert!(newer.is_empty());
    let err = older.await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            RequestError::Api(ApiError::TerminatedByOtherGetUpdates)
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn retry_after_429() {
    let fake = FakeTelegram::start(TOKEN).await;
    let bot = bot(&fake);
    fake.fail_next("sendMessage", Fault::RetryAfter(7), 1);
    let err = bot.send_message(ChatId(111), "x").await.unwrap_err();
    assert!(
        matches!(err, RequestError::RetryAfter(s) if s == Seconds::from_seconds(7)),
        "{err:?}"
    );
    assert_eq!(fake.calls()[0].fault, Some(Fault::RetryAfter(7)));
    // Only the next call failed.
    bot.send_message(ChatId(111), "x")
        .await
        .expect("second try");

    // On the wire: status, header and envelope.
    fake.fail_next("SENDMESSAGE", Fault::RetryAfter(14), 1);
    let resp = client()
        .post(format!("{}/bot{TOKEN}/sendMessage", fake.base_url()))
        .json(&json!({"chat_id": 111, "text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "14");
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 14", "parameters": {"retry_after": 14}})
    );
}

#[tokio::test]
async fn server_error_and_dropped_connection() {
    let fake = FakeTelegram::start(TOKEN).await;
    // 5xx over raw HTTP: teloxide sleeps 10 s after a 5xx.
    fake.fail_next("getMe", Fault::ServerError(502), 2);
    for _ in 0..2 {
        let (status, body) = raw(&fake, "getMe", "application/json", "{}").await;
        assert_eq!(status, 502);
        assert_eq!(
            body,
            json!({"ok": false, "error_code": 502, "description": "Bad Gateway"})
        );
    }
    let (status, _) = raw(&fake, "getMe", "application/json", "{}").await;
    assert_eq!(status, 200);

    fake.fail_next("getMe", Fault::DropConnection, 1);
    let err = bot(&fake).get_me().await.unwrap_err();
    assert!(matches!(err, RequestError::Network(_)), "{err:?}");
    bot(&fake).get_me().await.expect("after the drop");
}

#[tokio::test]
async fn wrong_token_401_and_unknown_method_404() {
    let fake = FakeTelegram::start(TOKEN).await;
    let err = bot_with_token(&fake, "999:WRONG")
        .get_me()
        .await
        .unwrap_err();
    assert!(
        matches!(err, RequestError::Api(ApiError::InvalidToken)),
        "{err:?}"
    );
    let resp = client()
        .post(format!("{}/bot999:WRONG/getMe", fake.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"ok": false, "error_code": 401, "description": "Unauthorized"})
    );
    let (status, body) = raw(&fake, "sendTelepathy", "application/json", "{}").await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"ok": false, "error_code": 404, "description": "Not Found: method not found"})
    );
    assert!(fake.calls().iter().all(|c| c.method != "getMe"));
}

#[tokio::test]
async fn form_query_and_multipart_bodies_are_parsed() {
    let fake = FakeTelegram::start(TOKEN).await;
    // Query string on a GET.
    let resp = client()
        .get(format!(
            "{}/bot{TOKEN}/getUpdates?offset=0&limit=5",
            fake.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let call = fake.calls_to("getUpdates").pop().unwrap();
    assert_eq!(call.param("limit"), Some(&json!(5)));

    // urlencoded form: numbers, booleans and JSON-string parameters typed.
    let markup = r#"{"inline_keyboard":[[{"text":"Yes","callback_data":"y"}]]}"#;
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("chat_id", "111")
        .append_pair("text", "42")
        .append_pair("disable_notification", "true")
        .append_pair("reply_markup", markup)
        .finish();
    let (status, body) = raw(
        &fake,
        "sendMessage",
        "application/x-www-form-urlencoded",
        body,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], json!(true));
    assert_eq!(body["result"]["text"], json!("42"));
    assert_eq!(
        body["result"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
        json!("y")
    );
    let call = fake.calls_to("sendMessage").pop().unwrap();
    assert_eq!(call.param("chat_id"), Some(&json!(111)));
    assert_eq!(call.param("text"), Some(&json!("42")));
    assert_eq!(call.param("disable_notification"), Some(&json!(true)));
    assert_eq!(
        call.param("reply_markup").unwrap()["inline_keyboard"][0][0]["text"],
        json!("Yes")
    );

    // Hand-written multipart with a text part, a JSON part and a file part.
    let body = b"--b0undary\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n111\r\n\
--b0undary\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\nnotes\r\n\
--b0undary\r\nContent-Disposition: form-data; name=\"document\"; filename=\"notes.txt\"\r\nContent-Type: text/plain\r\n\r\nline 1\r\nline 2\r\n--b0undary--\r\n"
        .to_vec();
    let (status, body) = raw(
        &fake,
        "sendDocument",
        "multipart/form-data; boundary=b0undary",
        body,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["document"]["file_name"], json!("notes.txt"));
    assert_eq!(body["result"]["document"]["file_size"], json!(14));
    assert_eq!(body["result"]["caption"], json!("notes"));
    let call = fake.calls_to("sendDocument").pop().unwrap();
    assert_eq!(call.files[0].bytes, b"line 1\r\nline 2");
    assert_eq!(call.files[0].content_type.as_deref(), Some("text/plain"));
}

#[tokio::test]
async fn method_names_are_case_insensitive() {
    let fake = FakeTelegram::start(TOKEN).await;
    for name in ["getMe", "getme", "GETME", "GetMe"] {
        let (status, body) = raw(&fake, name, "application/json", "{}").await;
        assert_eq!(status, 200);
        assert_eq!(body["result"]["username"], json!(BOT_USERNAME));
    }
    let (status, _) = raw(
        &fake,
        "SENDMESSAGE",
        "application/json",
        r#"{"chat_id":5,"text":"x"}"#,
    )
    .await;
    assert_eq!(status, 200);
    let methods: Vec<String> = fake.calls().into_iter().map(|c| c.method).collect();
    assert_eq!(methods, ["getMe", "getMe", "getMe", "getMe", "sendMessage"]);
}

#[tokio::test]
async fn reset_forgets_state_but_ids_keep_increasing() {
    let fake = FakeTelegram::start(TOKEN).await;
    let first = fake.inject_update(private_text(1, "a"));
    fake.add_file("f", b"x".to_vec());
    fake.fail_next("getMe", Fault::RetryAfter(1), 3);
    bot(&fake).send_message(ChatId(1), "x").await.unwrap();
    fake.reset();
    assert_eq!(fake.pending_updates(), 0);
    assert!(fake.calls().is_empty());
    assert!(fake.file_bytes("f").is_none());
    assert!(fake.bot_messages().is_empty());
    bot(&fake).get_me().await.expect("faults were cleared");
    assert!(fake.inject_update(private_text(2, "b")) > first);
}

// ---- golden inputs --------------------------------------------------------------

/// Every fixture as (file name, text, parsed JSON), sorted by name.
fn fixtures() -> Vec<(String, String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/updates");
    let mut out: Vec<(String, String, Value)> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, text, value)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 10, "fixtures missing from {}", dir.display());
    out
}

#[test]
fn golden_updates_parse_with_teloxide() {
    // From text, as teloxide reads a getUpdates response (`from_value` takes
    // another path through teloxide's hand-written deserialiser).
    for (name, text, _) in fixtures() {
        let update: Update = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            !matches!(update.kind, UpdateKind::Error(_)),
            "{name}: teloxide could not read it: {:?}",
            update.kind
        );
    }
}

#[tokio::test]
async fn golden_updates_round_trip_through_get_updates() {
    let fake = FakeTelegram::start(TOKEN).await;
    let fixtures = fixtures();
    let mut ids = Vec::new();
    for (_, _, value) in &fixtures {
        let mut value = value.clone();
        value.as_object_mut().unwrap().remove("update_id");
        ids.push(fake.inject_update(value));
    }
    let (status, body) = raw(&fake, "getUpdates", "application/json", "{}").await;
    assert_eq!(status, 200);
    let returned = body["result"].as_array().unwrap();
    assert_eq!(returned.len(), fixtures.len());
    for (((name, _, original), got), id) in fixtures.iter().zip(returned).zip(&ids) {
        let mut expected = original.clone();
        expected["update_id"] = json!(id);
        assert_eq!(got, &expected, "{name} changed on the way through");
    }
    // And teloxide reads the same batch.
    let updates = bot(&fake).get_updates().await.expect("getUpdates");
    assert_eq!(updates.len(), fixtures.len());
    assert!(
        updates
            .iter()
            .all(|u| !matches!(u.kind, UpdateKind::Error(_)))
    );
}
