//! The fake's own behaviour, checked with a raw websocket client and a raw
//! HTTP client: close codes, sessions and replay, faults, validation.

mod common;

use common::*;
use fake_discord::{BOT_ID, FakeDiscord, Fault, GUILD_ID, payloads};
use serde_json::{Value, json};

const GENERAL: &str = "4000000000000000001";
const ALICE: &str = "5000000000000000001";

fn alice() -> Value {
    payloads::user(ALICE, "alice")
}

// ---- gateway ----------------------------------------------------------------

#[tokio::test]
async fn hello_then_ready_with_a_new_session() {
    let fake = FakeDiscord::start(TOKEN).await;
    fake.set_heartbeat_interval(1234);
    let mut ws = connect(&fake).await;
    let hello = next_json(&mut ws).await;
    assert_eq!(hello["op"], 10);
    assert_eq!(hello["d"]["heartbeat_interval"], 1234);
    assert!(!fake.is_ready());

    // The bare token works as well as "Bot <token>".
    send(&mut ws, identify_payload(TOKEN, INTENTS)).await;
    let ready = next_json(&mut ws).await;
    assert_eq!(ready["op"], 0);
    assert_eq!(ready["s"], 1);
    assert_eq!(ready["t"], "READY");
    assert_eq!(ready["d"]["v"], 10);
    assert_eq!(ready["d"]["user"]["id"], BOT_ID);
    assert_eq!(ready["d"]["application"]["id"], BOT_ID);
    assert_eq!(ready["d"]["guilds"][0]["id"], GUILD_ID);
    assert_eq!(ready["d"]["resume_gateway_url"], fake.gateway_url());
    assert_eq!(ready["d"]["shard"], json!([0, 1]));
    let session = ready["d"]["session_id"].as_str().unwrap().to_owned();
    assert_eq!(fake.session_id().as_deref(), Some(session.as_str()));
    assert!(fake.is_ready());
    assert_eq!(fake.identifies(), 1);
    assert_eq!(fake.connections(), 1);
    assert_eq!(fake.last_identify().unwrap()["d"]["intents"], INTENTS);
    assert_eq!(
        fake.gateway_queries(),
        vec![Some("v=10&encoding=json".to_owned())]
    );

    // Dispatches continue from READY's 1.
    assert_eq!(
        fake.dispatch("TYPING_START", json!({"channel_id": GENERAL})),
        2
    );
    let typing = next_json(&mut ws).await;
    assert_eq!(
        (typing["s"].clone(), typing["t"].clone()),
        (json!(2), json!("TYPING_START"))
    );

    // A second Identify on the same connection is refused.
    send(&mut ws, identify_payload(TOKEN, INTENTS)).await;
    assert_eq!(close_code(&mut ws).await, Some(4005));

    // Identifying again on a new connection starts a new session from 1.
    let (_ws, ready) = identified(&fake).await;
    assert_eq!(ready["s"], 1);
    assert_ne!(ready["d"]["session_id"], session.as_str());
    assert_eq!(fake.identifies(), 2);
    assert_eq!(fake.dispatch("TYPING_START", json!({})), 2);
}

#[tokio::test]
async fn bad_token_closes_4004() {
    let fake = FakeDiscord::start(TOKEN).await;
    let mut ws = connect(&fake).await;
    next_json(&mut ws).await;
    send(&mut ws, identify_payload("Bot WRONG", INTENTS)).await;
    assert_eq!(close_code(&mut ws).await, Some(4004));
    assert_eq!(fake.identifies(), 0);
    assert_eq!(fake.last_identify().unwrap()["d"]["token"], "Bot WRONG");
    assert!(!fake.is_ready());

    // A revoked token: Identify and Resume with it are refused.
    let (_ws, ready) = identified(&fake).await;
    let session = ready["d"]["session_id"].as_str().unwrap().to_owned();
    fake.set_token("NEW.TOKEN");
    let mut ws = connect(&fake).await;
    send(
        &mut ws,
        json!({"op": 6, "d": {"token": format!("Bot {TOKEN}"), "session_id": session, "seq": 1}}),
    )
    .await;
    assert_eq!(close_code(&mut ws).await, Some(4004));
    let mut ws = connect(&fake).await;
    send(&mut ws, identify_payload(&format!("Bot {TOKEN}"), INTENTS)).await;
    assert_eq!(close_code(&mut ws).await, Some(4004));
    let mut ws = connect(&fake).await;
    send(&mut ws, identify_payload("Bot NEW.TOKEN", INTENTS)).await;
    next_json(&mut ws).await; // Hello
    assert_eq!(next_json(&mut ws).await["t"], "READY");
}

#[tokio::test]
async fn intents_are_checked() {
    let fake = FakeDiscord::start(TOKEN).await;
    fake.set_privileged_intents(false);
    let mut ws = connect(&fake).await;
    send(&mut ws, identify_payload(TOKEN, INTENTS)).await;
    assert_eq!(close_code(&mut ws).await, Some(4014));

    // Without MESSAGE_CONTENT it is fine.
    let mut ws = connect(&fake).await;
    send(&mut ws, identify_payload(TOKEN, INTENTS & !(1 << 15))).await;
    next_json(&mut ws).await;
    assert_eq!(next_json(&mut ws).await["t"], "READY");

    // Unknown bits: 4013, privileged allowed or not.
    fake.set_privileged_intents(true);
    let mut ws = connect(&fake).await;
    send(&mut ws, identify_payload(TOKEN, 1 << 30)).await;
    assert_eq!(close_code(&mut ws).await, Some(4013));
}

#[tokio::test]
async fn resume_replays_what_was_missed() {
    let fake = FakeDiscord::start(TOKEN).await;
    // Dispatched before anyone identified: delivered right after READY.
    assert_eq!(fake.dispatch("TYPING_START", json!({"n": 0})), 2);
    let (mut ws, ready) = identified(&fake).await;
    let session = ready["d"]["session_id"].as_str().unwrap().to_owned();
    assert_eq!(next_json(&mut ws).await["s"], 2);
    for n in 1..=2 {
        fake.dispatch("TYPING_START", json!({"n": n}));
    }
    assert_eq!(next_json(&mut ws).await["s"], 3);
    assert_eq!(next_json(&mut ws).await["s"], 4);

    // The client goes away having seen up to 3; 5 and 6 happen meanwhile.
    fake.drop_socket();
    assert_eq!(close_code(&mut ws).await, None);
    assert!(!fake.is_ready());
    assert_eq!(
        fake.dispatch(
            "MESSAGE_CREATE",
            payloads::guild_message("3000000000000000010", GENERAL, alice(), "one")
        ),
        5
    );
    assert_eq!(
        fake.dispatch(
            "MESSAGE_CREATE",
            payloads::guild_message("3000000000000000011", GENERAL, alice(), "two")
        ),
        6
    );

    // Resume first, Hello second: both orders work.
    let mut ws = connect(&fake).await;
    let resume =
        json!({"op": 6, "d": {"token": format!("Bot {TOKEN}"), "session_id": session, "seq": 3}});
    send(&mut ws, resume.clone()).await;
    assert_eq!(next_json(&mut ws).await["op"], 10);
    let replayed: Vec<Value> = [
        next_json(&mut ws).await,
        next_json(&mut ws).await,
        next_json(&mut ws).await,
    ]
    .into();
    let seqs: Vec<&Value> = replayed.iter().map(|f| &f["s"]).collect();
    assert_eq!(seqs, [&json!(4), &json!(5), &json!(6)]);
    assert_eq!(replayed[2]["d"]["content"], "two");
    let resumed = next_json(&mut ws).await;
    assert_eq!(resumed["t"], "RESUMED");
    assert_eq!(resumed["s"], 7);
    assert_eq!(resumed["d"], json!({}));
    assert_eq!(fake.resumes(), 1);
    assert_eq!(fake.last_resume(), Some(resume));
    assert!(fake.is_ready());
    assert_eq!(fake.dispatch("TYPING_START", json!({})), 8);
    assert_eq!(next_json(&mut ws).await["s"], 8);

    // An unknown session is not resumable.
    let mut ws = connect(&fake).await;
    next_json(&mut ws).await;
    send(
        &mut ws,
        json!({"op": 6, "d": {"token": TOKEN, "session_id": "nope", "seq": 1}}),
    )
    .await;
    let invalid = next_json(&mut ws).await;
    assert_eq!(
        (invalid["op"].clone(), invalid["d"].clone()),
        (json!(9), json!(false))
    );
    assert_eq!(fake.resumes(), 1);
}

#[tokio::test]
async fn invalid_session_discards_or_keeps() {
    let fake = FakeDiscord::start(TOKEN).await;
    let (mut ws, ready) = identified(&fake).await;
    let session = ready["d"]["session_id"].as_str().unwrap().to_owned();
    let resume = json!({"op": 6, "d": {"token": TOKEN, "session_id": session, "seq": 1}});

    // Resumable: op 9 true, and a Resume works.
    fake.invalidate_session(true);
    let frame = next_json(&mut ws).await;
    assert_eq!(
        (frame["op"].clone(), frame["d"].clone()),
        (json!(9), json!(true))
    );
    assert!(!fake.is_ready());
    fake.dispatch("TYPING_START", json!({}));
    let mut ws = connect(&fake).await;
    next_json(&mut ws).await;
    send(&mut ws, resume.clone()).await;
    assert_eq!(next_json(&mut ws).await["t"], "TYPING_START");
    assert_eq!(next_json(&mut ws).await["t"], "RESUMED");

    // Not resumable: the session is gone.
    fake.invalidate_session(false);
    let frame = next_json(&mut ws).await;
    assert_eq!(
        (frame["op"].clone(), frame["d"].clone()),
        (json!(9), json!(false))
    );
    assert_eq!(fake.session_id(), None);
    let mut ws = connect(&fake).await;
    next_json(&mut ws).await;
    send(&mut ws, resume).await;
    assert_eq!(next_json(&mut ws).await["d"], false);
    // Identify on the same connection starts afresh.
    send(&mut ws, identify_payload(TOKEN, INTENTS)).await;
    let ready = next_json(&mut ws).await;
    assert_eq!(ready["t"], "READY");
    assert_ne!(ready["d"]["session_id"], session.as_str());
}

#[tokio::test]
async fn heartbeats_acks_and_zombies() {
    let fake = FakeDiscord::start(TOKEN).await;
    let (mut ws, _) = identified(&fake).await;
    send(&mut ws, json!({"op": 1, "d": 1})).await;
    assert_eq!(next_json(&mut ws).await["op"], 11);
    fake.stop_acks(true);
    send(&mut ws, json!({"op": 1, "d": 1})).await;
    fake.dispatch("TYPING_START", json!({}));
    // The dispatch comes; the ACK never does.
    assert_eq!(next_json(&mut ws).await["op"], 0);
    eventually("the second heartbeat", || fake.heartbeats() == 2).await;
    fake.stop_acks(false);
    fake.request_heartbeat();
    assert_eq!(next_json(&mut ws).await["op"], 1);
    fake.send_reconnect();
    let reconnect = next_json(&mut ws).await;
    assert_eq!(
        (reconnect["op"].clone(), reconnect["d"].clone()),
        (json!(7), Value::Null)
    );
    assert!(!fake.is_ready());
}

#[tokio::test]
async fn hostile_client_frames_close_the_connection() {
    let fake = FakeDiscord::start(TOKEN).await;
    let cases: [(Value, u16); 4] = [
        (Value::String("not json".into()), 4002),
        (json!({"op": 99, "d": null}), 4001),
        (json!({"op": 3, "d": {"status": "online"}}), 4003),
        (json!({"op": 1, "d": "x".repeat(5000)}), 4002),
    ];
    for (payload, code) in cases {
        let mut ws = connect(&fake).await;
        next_json(&mut ws).await;
        let text = match &payload {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        futures_util::SinkExt::send(&mut ws, tokio_tungstenite::tungstenite::Message::text(text))
            .await
            .unwrap();
        assert_eq!(close_code(&mut ws).await, Some(code), "{payload}");
    }
    let frames = fake.client_frames();
    assert_eq!(frames[0], Value::String("not json".into()));
    assert_eq!(frames[1]["op"], 99);
    // API version 9 is not what the fake speaks.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{}/?v=9", fake.gateway_url()))
        .await
        .unwrap();
    assert_eq!(close_code(&mut ws).await, Some(4012));
}

#[tokio::test]
async fn raw_frames_and_close_codes_from_the_server() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;

    let fake = FakeDiscord::start(TOKEN).await;
    let (mut ws, _) = identified(&fake).await;
    fake.send_raw("{\"op\":0,\"t\":\"BROKEN\"");
    fake.send_binary(vec![1, 2, 3]);
    let text = ws.next().await.unwrap().unwrap();
    assert_eq!(text, Message::text("{\"op\":0,\"t\":\"BROKEN\""));
    let binary = ws.next().await.unwrap().unwrap();
    assert_eq!(binary, Message::binary(vec![1, 2, 3]));
    fake.close_with(4009, "Session timed out.");
    assert_eq!(close_code(&mut ws).await, Some(4009));
    assert!(!fake.is_ready());

    // A newer connection replaces an older one, which is closed with 4000.
    let (mut old, _) = identified(&fake).await;
    let mut new = connect(&fake).await;
    assert_eq!(close_code(&mut old).await, Some(4000));
    next_json(&mut new).await;
    assert_eq!(fake.connections(), 3);
}

// ---- REST -------------------------------------------------------------------

#[tokio::test]
async fn authorisation_and_unknown_routes() {
    let fake = FakeDiscord::start(TOKEN).await;
    let url = format!("{}/api/v10/users/@me", fake.api_base());
    let (status, _, body) = respond(http().get(&url)).await;
    assert_eq!(
        (status, body),
        (401, json!({"message": "401: Unauthorized", "code": 0}))
    );
    let (status, _, _) = respond(http().get(&url).header("authorization", "Bot WRONG")).await;
    assert_eq!(status, 401);
    // The token alone (a user token, for Discord) is not a bot's.
    let (status, _, _) = respond(http().get(&url).header("authorization", TOKEN)).await;
    assert_eq!(status, 401);

    let (status, headers, me) = rest(&fake, "GET", "/users/@me", None).await;
    assert_eq!(status, 200);
    assert_eq!(me["id"], BOT_ID);
    assert_eq!(me["bot"], true);
    for name in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-reset-after",
        "x-ratelimit-bucket",
    ] {
        assert!(headers.contains_key(name), "{name}");
    }

    let (status, _, body) = rest(&fake, "GET", "/nope", None).await;
    assert_eq!(
        (status, body),
        (404, json!({"message": "404: Not Found", "code": 0}))
    );
    let (status, _, _) = rest(&fake, "DELETE", "/users/@me", None).await;
    assert_eq!(status, 405);

    // GET /gateway needs no token; /gateway/bot does.
    let (status, _, _) = respond(http().get(format!("{}/api/v10/gateway", fake.api_base()))).await;
    assert_eq!(status, 200);
    let (_, _, gateway) = rest(&fake, "GET", "/gateway/bot", None).await;
    assert_eq!(gateway["url"], fake.gateway_url());
    assert_eq!(gateway["shards"], 1);
    assert_eq!(gateway["session_start_limit"]["max_concurrency"], 1);

    // Revoked: the old token stops working.
    fake.set_token("NEW");
    let (status, _, _) = rest(&fake, "GET", "/users/@me", None).await;
    assert_eq!(status, 401);
    assert_eq!(fake.calls().len(), 9);
}

#[tokio::test]
async fn faults_answer_matching_calls() {
    let fake = FakeDiscord::start(TOKEN).await;
    fake.add_guild_channel(GENERAL, "general");
    let route = "/channels/{}/messages";
    fake.fail_next(
        "post",
        route,
        Fault::RateLimited {
            retry_after: 1.5,
            global: false,
        },
        1,
    );
    fake.fail_next(
        "POST",
        route,
        Fault::RateLimited {
            retry_after: 0.25,
            global: true,
        },
        1,
    );
    fake.fail_next("POST", route, Fault::ServerError(502), 1);
    let path = format!("/channels/{GENERAL}/messages");
    let body = json!({"content": "hi"});

    let (status, headers, reply) = rest(&fake, "POST", &path, Some(body.clone())).await;
    assert_eq!(status, 429);
    assert_eq!(
        reply,
        json!({"message": "You are being rate limited.", "retry_after": 1.5, "global": false})
    );
    assert_eq!(headers["retry-after"], "2");
    assert_eq!(headers["x-ratelimit-scope"], "user");
    assert!(!headers.contains_key("x-ratelimit-global"));

    let (status, headers, reply) = rest(&fake, "POST", &path, Some(body.clone())).await;
    assert_eq!(status, 429);
    assert_eq!(reply["global"], true);
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(headers["x-ratelimit-global"], "true");
    assert_eq!(headers["x-ratelimit-scope"], "global");

    let (status, _, reply) = rest(&fake, "POST", &path, Some(body.clone())).await;
    assert_eq!(status, 502);
    assert_eq!(reply, json!({"message": "502: Bad Gateway", "code": 0}));

    let (status, _, message) = rest(&fake, "POST", &path, Some(body)).await;
    assert_eq!(status, 200);
    assert_eq!(message["content"], "hi");

    let faults: Vec<Option<Fault>> = fake
        .calls_to("POST", route)
        .iter()
        .map(|c| c.fault)
        .collect();
    assert_eq!(
        faults,
        [
            Some(Fault::RateLimited {
                retry_after: 1.5,
                global: false
            }),
            Some(Fault::RateLimited {
                retry_after: 0.25,
                global: true
            }),
            Some(Fault::ServerError(502)),
            None,
        ]
    );
    // Only the real one was stored.
    assert_eq!(fake.messages_in(GENERAL).len(), 1);
}

#[tokio::test]
async fn create_message_validation() {
    let fake = FakeDiscord::start(TOKEN).await;
    fake.add_guild_channel(GENERAL, "general");
    let path = format!("/channels/{GENERAL}/messages");

    let (status, _, body) = rest(
        &fake,
        "POST",
        &path,
        Some(json!({"content": "x".repeat(2001)})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"code": 50035, "message": "Invalid Form Body", "errors": {"content": {"_errors": [
            {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}
        ]}}})
    );
    // 2000 characters (not bytes) are fine.
    let (status, _, _) = rest(
        &fake,
        "POST",
        &path,
        Some(json!({"content": "é".repeat(2000)})),
    )
    .await;
    assert_eq!(status, 200);

    let empty =
        json!({"content": "", "tts": false, "embeds": [], "sticker_ids": [], "attachments": []});
    let (status, _, body) = rest(&fake, "POST", &path, Some(empty)).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"message": "Cannot send an empty message", "code": 50006})
        )
    );

    let (status, _, body) = rest(
        &fake,
        "POST",
        "/channels/999/messages",
        Some(json!({"content": "a"})),
    )
    .await;
    assert_eq!(
        (status, body),
        (404, json!({"message": "Unknown Channel", "code": 10003}))
    );

    let reply = json!({"content": "re", "message_reference": {"message_id": "42", "fail_if_not_exists": null}});
    let (status, _, body) = rest(&fake, "POST", &path, Some(reply)).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["errors"]["message_reference"]["_errors"][0]["code"],
        "REPLIES_UNKNOWN_MESSAGE"
    );

    let buttons = json!({"content": "pick", "components": [{"type": 1, "components": [{"type": 2, "style": 1, "label": "no id"}]}]});
    let (status, _, body) = rest(&fake, "POST", &path, Some(buttons)).await;
    assert_eq!(status, 400);
    assert!(
        body["errors"]["components"]["0"]["components"]["0"]["custom_id"].is_object(),
        "{body}"
    );

    let (status, _, body) = rest(&fake, "GET", "/channels/999", None).await;
    assert_eq!((status, body["code"].clone()), (404, json!(10003)));
}

#[tokio::test]
async fn messages_replies_edits_and_history() {
    let fake = FakeDiscord::start(TOKEN).await;
    fake.add_guild_channel(GENERAL, "general");
    let (mut ws, _) = identified(&fake).await;
    // A user's message the bot will answer.
    let incoming = payloads::guild_message(
        "3000000000000000010",
        GENERAL,
        alice(),
        "<@1000000000000000001> hi",
    );
    fake.dispatch("MESSAGE_CREATE", incoming);
    next_json(&mut ws).await;

    let path = format!("/channels/{GENERAL}/messages");
    let body = json!({
        "content": "hello <@5000000000000000001>",
        "message_reference": {"type": 0, "message_id": "3000000000000000010", "channel_id": GENERAL, "guild_id": null, "fail_if_not_exists": null},
        "components": [{"type": 1, "components": [{"type": 2, "style": 1, "label": "Yes", "custom_id": "vote:yes"}]}],
        "nonce": "77",
    });
    let (status, _, sent) = rest(&fake, "POST", &path, Some(body)).await;
    assert_eq!(status, 200);
    assert_eq!(sent["author"]["id"], BOT_ID);
    assert_eq!(sent["type"], 19);
    assert_eq!(
        sent["message_reference"]["message_id"],
        "3000000000000000010"
    );
    assert_eq!(
        sent["referenced_message"]["content"],
        "<@1000000000000000001> hi"
    );
    assert_eq!(sent["mentions"][0]["id"], ALICE);
    assert_eq!(sent["nonce"], "77");
    assert!(sent.get("guild_id").is_none());
    // ... and it comes back on the gateway, with the guild's fields.
    let event = next_json(&mut ws).await;
    assert_eq!(event["t"], "MESSAGE_CREATE");
    assert_eq!(event["d"]["id"], sent["id"]);
    assert_eq!(event["d"]["guild_id"], GUILD_ID);
    assert_eq!(event["d"]["channel_type"], 0);

    let id = sent["id"].as_str().unwrap().to_owned();
    let (status, _, edited) = rest(
        &fake,
        "PATCH",
        &format!("{path}/{id}"),
        Some(json!({"content": "edited", "components": []})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(edited["content"], "edited");
    assert!(edited["edited_timestamp"].is_string());
    assert_eq!(next_json(&mut ws).await["t"], "MESSAGE_UPDATE");
    let (status, _, body) = rest(
        &fake,
        "PATCH",
        &format!("{path}/3000000000000000010"),
        Some(json!({"content": "x"})),
    )
    .await;
    assert_eq!((status, body["code"].clone()), (403, json!(50005)));
    let (status, _, body) = rest(
        &fake,
        "PATCH",
        &format!("{path}/1"),
        Some(json!({"content": "x"})),
    )
    .await;
    assert_eq!((status, body["code"].clone()), (404, json!(10008)));

    // History: a few older messages put there directly.
    for n in 1..=5u64 {
        let id = (2_000_000_000_000_000_000u64 + n).to_string();
        fake.add_message(
            GENERAL,
            payloads::guild_message(&id, GENERAL, alice(), &format!("old {n}")),
        );
    }
    // Alice's dispatched message is in the history too.
    let stored = fake.messages_in(GENERAL);
    assert_eq!(stored.len(), 7);
    assert_eq!(stored[0]["content"], "old 1");
    assert_eq!(stored[5]["author"]["id"], ALICE);
    assert!(stored[5].get("guild_id").is_none());
    assert_eq!(stored[6]["content"], "edited");

    let raw = format!("{}/api/v10{path}?&limit=3&before={id}", fake.api_base());
    let (status, _, page) = respond(
        http()
            .get(raw)
            .header("authorization", format!("Bot {TOKEN}")),
    )
    .await;
    assert_eq!(status, 200);
    let contents: Vec<&str> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["<@1000000000000000001> hi", "old 5", "old 4"]);
    assert!(page[0].get("guild_id").is_none());
    let call = fake.calls_to("GET", "/channels/{}/messages").pop().unwrap();
    assert_eq!(
        call.query,
        [
            ("limit".to_owned(), "3".to_owned()),
            ("before".to_owned(), id.clone())
        ]
    );

    let (_, _, page) = rest(
        &fake,
        "GET",
        &format!("{path}?after=2000000000000000002&limit=2"),
        None,
    )
    .await;
    let contents: Vec<&str> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["old 4", "old 3"]);
    let (_, _, page) = rest(&fake, "GET", &path, None).await;
    assert_eq!(page.as_array().unwrap().len(), 7);
    assert_eq!(page[0]["content"], "edited");
    let (status, _, _) = rest(&fake, "GET", &format!("{path}?limit=101"), None).await;
    assert_eq!(status, 400);

    let (status, _, _) = rest(&fake, "POST", &format!("/channels/{GENERAL}/typing"), None).await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn reactions_decode_the_emoji_segment() {
    let fake = FakeDiscord::start(TOKEN).await;
    fake.add_guild_channel(GENERAL, "general");
    let (mut ws, _) = identified(&fake).await;
    fake.add_message(
        GENERAL,
        payloads::guild_message("3000000000000000010", GENERAL, alice(), "react to me"),
    );
    let base = format!("/channels/{GENERAL}/messages/3000000000000000010/reactions");

    let (status, _, _) = rest(&fake, "PUT", &format!("{base}/%F0%9F%91%8D/@me"), None).await;
    assert_eq!(status, 204);
    let call = fake
        .calls_to("PUT", "/channels/{}/messages/{}/reactions/{}/@me")
        .pop()
        .unwrap();
    assert_eq!(
        call.path,
        format!("/channels/{GENERAL}/messages/3000000000000000010/reactions/👍/@me")
    );
    assert_eq!(call.raw_path, format!("/api/v10{base}/%F0%9F%91%8D/@me"));
    let event = next_json(&mut ws).await;
    assert_eq!(event["t"], "MESSAGE_REACTION_ADD");
    assert_eq!(event["d"]["emoji"], json!({"id": null, "name": "👍"}));
    assert_eq!(event["d"]["user_id"], BOT_ID);
    assert_eq!(event["d"]["message_author_id"], ALICE);
    assert_eq!(event["d"]["guild_id"], GUILD_ID);
    assert_eq!(event["d"]["burst"], false);

    let (status, _, _) = rest(
        &fake,
        "PUT",
        &format!("{base}/blob:123456789012345678/@me"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let event = next_json(&mut ws).await;
    assert_eq!(event["d"]["emoji"]["id"], "123456789012345678");
    assert_eq!(event["d"]["emoji"]["name"], "blob");

    let stored = fake.messages_in(GENERAL);
    let reactions = stored[0]["reactions"].as_array().unwrap();
    assert_eq!(reactions.len(), 2);
    assert_eq!(reactions[0]["me"], true);

    for bad in ["blob:", "blob:abc", "thumbsup", "%FF"] {
        let (status, _, body) = rest(&fake, "PUT", &format!("{base}/{bad}/@me"), None).await;
        assert_eq!(
            (status, body),
            (400, json!({"message": "Unknown Emoji", "code": 10014})),
            "{bad}"
        );
    }
    let (status, _, body) = rest(
        &fake,
        "PUT",
        &format!("/channels/{GENERAL}/messages/1/reactions/%F0%9F%91%8D/@me"),
        None,
    )
    .await;
    assert_eq!((status, body["code"].clone()), (404, json!(10008)));

    let (status, _, _) = rest(&fake, "DELETE", &format!("{base}/%F0%9F%91%8D/@me"), None).await;
    assert_eq!(status, 204);
    assert_eq!(next_json(&mut ws).await["t"], "MESSAGE_REACTION_REMOVE");
    assert_eq!(
        fake.messages_in(GENERAL)[0]["reactions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn uploads_become_downloadable_attachments() {
    let fake = FakeDiscord::start(TOKEN).await;
    fake.add_guild_channel(GENERAL, "general");
    let form = reqwest::multipart::Form::new()
        .part("files[0]", reqwest::multipart::Part::bytes(b"hello\r\nworld".to_vec()).file_name("notes.txt").mime_str("text/plain").unwrap())
        .text("payload_json", json!({"content": "file", "attachments": [{"id": 0, "filename": "notes.txt", "description": "some notes"}]}).to_string());
    let req = http()
        .post(format!(
            "{}/api/v10/channels/{GENERAL}/messages",
            fake.api_base()
        ))
        .header("authorization", format!("Bot {TOKEN}"))
        .multipart(form);
    let (status, _, message) = respond(req).await;
    assert_eq!(status, 200, "{message}");
    let attachment = &message["attachments"][0];
    assert_eq!(attachment["filename"], "notes.txt");
    assert_eq!(attachment["size"], 12);
    assert_eq!(attachment["content_type"], "text/plain");
    assert_eq!(attachment["description"], "some notes");
    let call = fake.calls().pop().unwrap();
    assert_eq!(call.json.unwrap()["content"], "file");
    assert_eq!(call.files[0].field, "files[0]");
    assert_eq!(call.files[0].bytes, b"hello\r\nworld");

    // Downloads need no token.
    let url = attachment["url"].as_str().unwrap();
    let bytes = http().get(url).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(&bytes[..], b"hello\r\nworld");

    // Added by the test, with a name that needs encoding.
    let added = fake.add_attachment(GENERAL, "my photo.png", "image/png", vec![0x89, b'P']);
    let url = added["url"].as_str().unwrap();
    assert!(url.ends_with("/my%20photo.png"), "{url}");
    let resp = http().get(url).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(&resp.bytes().await.unwrap()[..], [0x89, b'P']);
    let (status, _, _) =
        respond(http().get(format!("{}/attachments/1/2/x", fake.api_base()))).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn dm_channels_and_interactions() {
    let fake = FakeDiscord::start(TOKEN).await;
    fake.add_dm("4100000000000000099", alice());
    let (_, _, dm) = rest(
        &fake,
        "POST",
        "/users/@me/channels",
        Some(json!({"recipient_id": ALICE})),
    )
    .await;
    assert_eq!(dm["id"], "4100000000000000099");
    assert_eq!(dm["type"], 1);
    assert_eq!(dm["recipients"][0]["id"], ALICE);
    let (_, _, other) = rest(
        &fake,
        "POST",
        "/users/@me/channels",
        Some(json!({"recipient_id": "5000000000000000002"})),
    )
    .await;
    assert_eq!(other["id"], "4100000000000000001");
    let (_, _, again) = rest(
        &fake,
        "POST",
        "/users/@me/channels",
        Some(json!({"recipient_id": "5000000000000000002"})),
    )
    .await;
    assert_eq!(again["id"], other["id"]);
    let (status, _, _) = rest(
        &fake,
        "POST",
        "/users/@me/channels",
        Some(json!({"recipient_id": "bob"})),
    )
    .await;
    assert_eq!(status, 400);
    fake.add_thread("4200000000000000001", GENERAL, "side");
    let (_, _, thread) = rest(&fake, "GET", "/channels/4200000000000000001", None).await;
    assert_eq!(
        (thread["type"].clone(), thread["parent_id"].clone()),
        (json!(11), json!(GENERAL))
    );

    // Interactions: unknown, then dispatched and answered once.
    let (status, _, body) = rest(
        &fake,
        "POST",
        "/interactions/7000000000000000001/tok/callback",
        Some(json!({"type": 6})),
    )
    .await;
    assert_eq!((status, body["code"].clone()), (404, json!(10062)));
    let (_ws, _) = identified(&fake).await;
    let bot_message = payloads::dm_message(
        "3000000000000000020",
        "4100000000000000099",
        payloads::bot_user(),
        "Pick one",
    );
    let click = payloads::button_interaction(
        "7000000000000000001",
        "4100000000000000099",
        alice(),
        "vote:yes",
        bot_message,
        false,
    );
    let token = click["token"].as_str().unwrap().to_owned();
    fake.dispatch("INTERACTION_CREATE", click);
    let path = format!("/interactions/7000000000000000001/{token}/callback");
    let (status, _, _) = rest(
        &fake,
        "POST",
        "/interactions/7000000000000000001/wrong/callback",
        Some(json!({"type": 6})),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _, body) = rest(&fake, "POST", &path, Some(json!({"type": 99}))).await;
    assert_eq!((status, body["code"].clone()), (400, json!(50035)));
    let update = json!({"type": 7, "data": {"content": "Voted", "components": []}});
    let (status, _, _) = rest(&fake, "POST", &path, Some(update)).await;
    assert_eq!(status, 204);
    assert_eq!(
        fake.message("4100000000000000099", "3000000000000000020")
            .unwrap()["content"],
        "Voted"
    );
    let (status, _, body) = rest(&fake, "POST", &path, Some(json!({"type": 6}))).await;
    assert_eq!((status, body["code"].clone()), (400, json!(40060)));
}

#[tokio::test]
async fn dropping_the_fake_ends_everything() {
    let fake = FakeDiscord::start(TOKEN).await;
    let (mut ws, _) = identified(&fake).await;
    let api = fake.api_base();
    drop(fake);
    assert!(matches!(next_frame(&mut ws).await, Frame::Closed(_)));
    // Nothing listens any more.
    let refused = http().get(format!("{api}/api/v10/gateway")).send().await;
    assert!(refused.is_err());
}

#[tokio::test]
async fn dispatches_change_the_history() {
    let fake = FakeDiscord::start(TOKEN).await;
    // A channel nobody added: made up from the message.
    let mut d = payloads::guild_message("3000000000000000010", GENERAL, alice(), "hello");
    fake.dispatch("MESSAGE_CREATE", d.clone());
    assert_eq!(fake.channel(GENERAL).unwrap()["guild_id"], GUILD_ID);
    assert_eq!(fake.messages_in(GENERAL)[0]["content"], "hello");
    d["content"] = json!("hello (edited)");
    fake.dispatch("MESSAGE_UPDATE", d);
    assert_eq!(fake.messages_in(GENERAL)[0]["content"], "hello (edited)");
    let emoji = payloads::unicode_emoji("🎉");
    fake.dispatch(
        "MESSAGE_REACTION_ADD",
        payloads::reaction_add(alice(), GENERAL, "3000000000000000010", emoji.clone(), true),
    );
    let reactions = fake.messages_in(GENERAL)[0]["reactions"].clone();
    assert_eq!(reactions[0]["count"], 1);
    assert_eq!(reactions[0]["me"], false);
    // The bot reacting through REST adds to the same count.
    let (status, _, _) = rest(
        &fake,
        "PUT",
        &format!("/channels/{GENERAL}/messages/3000000000000000010/reactions/%F0%9F%8E%89/@me"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let reactions = fake.messages_in(GENERAL)[0]["reactions"].clone();
    assert_eq!(
        (reactions[0]["count"].clone(), reactions[0]["me"].clone()),
        (json!(2), json!(true))
    );
    fake.dispatch(
        "MESSAGE_DELETE",
        json!({"id": "3000000000000000010", "channel_id": GENERAL, "guild_id": GUILD_ID}),
    );
    assert!(fake.messages_in(GENERAL).is_empty());
    // A DM from someone new makes their DM channel.
    fake.dispatch(
        "MESSAGE_CREATE",
        payloads::dm_message(
            "3000000000000000011",
            "4100000000000000050",
            alice(),
            "psst",
        ),
    );
    let (_, _, dm) = rest(
        &fake,
        "POST",
        "/users/@me/channels",
        Some(json!({"recipient_id": ALICE})),
    )
    .await;
    assert_eq!(dm["id"], "4100000000000000050");
}

#[tokio::test]
async fn closing_with_1000_ends_the_session() {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    let fake = FakeDiscord::start(TOKEN).await;
    for (code, resumable) in [(4000u16, true), (1000, false)] {
        let (mut ws, ready) = identified(&fake).await;
        let session = ready["d"]["session_id"].as_str().unwrap().to_owned();
        ws.close(Some(CloseFrame {
            code: CloseCode::from(code),
            reason: "bye".into(),
        }))
        .await
        .unwrap();
        eventually("the close", || {
            fake.client_closes().last() == Some(&Some(code))
        })
        .await;
        let mut ws = connect(&fake).await;
        next_json(&mut ws).await;
        send(
            &mut ws,
            json!({"op": 6, "d": {"token": TOKEN, "session_id": session, "seq": 1}}),
        )
        .await;
        let answer = next_json(&mut ws).await;
        if resumable {
            assert_eq!(answer["t"], "RESUMED", "{answer}");
        } else {
            assert_eq!(
                (answer["op"].clone(), answer["d"].clone()),
                (json!(9), json!(false))
            );
        }
        let _ = ws.close(None).await;
    }
}

/// A client killed mid-session (`kill -9`) sends no close frame: its socket
/// just ends (EOF) or is reset. Discord keeps the session resumable, and
/// what is dispatched meanwhile waits in it for the Resume.
#[tokio::test]
async fn a_client_that_dies_without_a_close_keeps_its_session_and_misses_nothing() {
    for reset in [false, true] {
        let fake = FakeDiscord::start(TOKEN).await;
        let (mut ws, ready) = identified(&fake).await;
        let session = ready["d"]["session_id"].as_str().unwrap().to_owned();
        fake.dispatch("TYPING_START", json!({"n": 1}));
        assert_eq!(next_json(&mut ws).await["s"], 2);
        if reset && let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = ws.get_ref() {
            tcp.set_zero_linger().unwrap();
        }
        drop(ws);
        eventually("the fake to see the client gone", || !fake.is_ready()).await;
        assert!(fake.client_closes().is_empty(), "no close frame was sent");
        for n in [2, 3] {
            fake.dispatch(
                "MESSAGE_CREATE",
                payloads::guild_message(&format!("300000000000000010{n}"), GENERAL, alice(), "x"),
            );
        }

        let mut ws = connect(&fake).await;
        next_json(&mut ws).await;
        send(
            &mut ws,
            json!({"op": 6, "d": {"token": TOKEN, "session_id": session, "seq": 2}}),
        )
        .await;
        let replayed = [next_json(&mut ws).await, next_json(&mut ws).await];
        let seqs: Vec<&Value> = replayed.iter().map(|f| &f["s"]).collect();
        assert_eq!(seqs, [&json!(3), &json!(4)], "reset: {reset}");
        assert_eq!(next_json(&mut ws).await["t"], "RESUMED", "reset: {reset}");
        assert_eq!(fake.identifies(), 1);
    }
}
