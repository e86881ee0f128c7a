//! Gateway and REST faults, each recovered from without restarting airlock.

use fake_discord::Fault;
use serde_json::json;

use super::*;

async fn logged(session: &Session, needle: &str) {
    let log = session.log.clone();
    until(&format!("{needle:?} on stderr"), || {
        log.text().contains(needle)
    })
    .await;
}

/// Alice's DM `id` reaches the session.
async fn gets_through(fake: &FakeDiscord, session: &mut Session, id: &str) {
    fake.dispatch(
        "MESSAGE_CREATE",
        dm_from_alice(id, &format!("message {id}")),
    );
    let e = event_in(session, ALICE_DM).await;
    assert_eq!(e["meta"]["message_id"], id, "{e}");
}

#[tokio::test]
async fn a_zombie_connection_is_noticed_by_its_missing_acks_and_resumed() {
    let fake = fake().await;
    fake.set_heartbeat_interval(300);
    let home = discord_home(&fake, "");
    allow_alice(&home).await;
    let mut session = start(&home, &fake, "warn").await;
    until("a first heartbeat", || fake.heartbeats() >= 1).await;
    fake.stop_acks(true);
    logged(&session, "no heartbeat ACK").await;
    fake.stop_acks(false);
    until("a resume", || fake.resumes() >= 1).await;
    assert_eq!(fake.identifies(), 1, "resumed, not identified again");
    gets_through(&fake, &mut session, "3000000000000000100").await;
    session.close().await;
}

#[tokio::test]
async fn reconnect_and_invalid_session_are_followed() {
    let fake = fake().await;
    let home = discord_home(&fake, "");
    allow_alice(&home).await;
    let mut session = start(&home, &fake, "warn").await;

    fake.send_reconnect();
    until("a resume", || fake.resumes() == 1).await;
    gets_through(&fake, &mut session, "3000000000000000110").await;

    // Resumable: resume again.
    fake.invalidate_session(true);
    until("a second resume", || fake.resumes() == 2).await;
    gets_through(&fake, &mut session, "3000000000000000111").await;

    // Not resumable: a fresh Identify.
    fake.invalidate_session(false);
    until("a second identify", || fake.identifies() == 2).await;
    ready(&fake).await;
    gets_through(&fake, &mut session, "3000000000000000112").await;
    session.close().await;
}

#[tokio::test]
async fn a_dropped_socket_resumes_and_what_was_missed_is_replayed_once() {
    let fake = fake().await;
    let home = discord_home(&fake, "");
    allow_alice(&home).await;
    let mut session = start(&home, &fake, "warn").await;
    gets_through(&fake, &mut session, "3000000000000000120").await;

    fake.drop_socket();
    // Sent while airlock is away: kept by the gateway for the resume.
    fake.dispatch(
        "MESSAGE_CREATE",
        dm_from_alice("3000000000000000121", "while away"),
    );
    until("a resume", || fake.resumes() == 1).await;
    let e = event_in(&mut session, ALICE_DM).await;
    assert_eq!(e["content"], "while away");
    gets_through(&fake, &mut session, "3000000000000000122").await;
    assert!(
        session
            .event_within(std::time::Duration::from_millis(300))
            .await
            .is_none(),
        "nothing twice"
    );
    session.close().await;
}

#[tokio::test]
async fn close_4004_stops_the_adapter_with_the_fix_and_the_rest_keeps_serving() {
    let fake = fake().await;
    let home = discord_home(&fake, "");
    allow_alice(&home).await;
    let mut session = start(&home, &fake, "warn").await;
    gets_through(&fake, &mut session, "3000000000000000140").await;
    // The token is reset in the Developer Portal while airlock runs.
    fake.set_token("a-new-token");
    fake.close_with(4000, "restart");
    logged(&session, "Reset Token").await;
    assert!(
        session.log.text().contains("4004"),
        "{}",
        session.log.text()
    );
    let connections = fake.connections();
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(
        fake.connections(),
        connections,
        "no retrying a refused token"
    );
    // The session still works; the tools say what is wrong.
    let r = session
        .call(
            "reply",
            json!({"chat_id": format!("discord:{ALICE_DM}"), "text": "x"}),
        )
        .await;
    let (is_error, text) = outcome(&r);
    assert!(is_error && text.contains("Reset Token"), "{text}");
    assert!(
        session
            .tool_names()
            .await
            .contains(&"fetch_messages".to_string())
    );
    session.close().await;
}

#[tokio::test]
async fn a_refused_token_at_start_fails_with_the_fix() {
    let fake = fake().await;
    fake.set_token("some-other-token");
    let home = discord_home(&fake, "");
    let session = Session::start_command(
        serve_logging(&home, "warn"),
        rmcp::service::ClientLifecycleMode::Initialize,
    )
    .await;
    logged(&session, "Reset Token").await;
    assert!(!session.log.text().contains(TOKEN_PART));
    assert_eq!(
        fake.connections(),
        0,
        "no gateway connection without a valid token"
    );
    session.close().await;
}

#[tokio::test]
async fn close_4014_names_the_message_content_intent() {
    let fake = fake().await;
    fake.set_privileged_intents(false);
    let home = discord_home(&fake, "");
    let session = Session::start_command(
        serve_logging(&home, "warn"),
        rmcp::service::ClientLifecycleMode::Initialize,
    )
    .await;
    logged(&session, "Message Content Intent").await;
    assert!(
        session.log.text().contains("4014"),
        "{}",
        session.log.text()
    );
    session.close().await;
}

#[tokio::test]
async fn rest_429_is_waited_out_and_a_5xx_is_reported_then_recovered_from() {
    let fake = fake().await;
    let home = discord_home(&fake, "");
    allow_alice(&home).await;
    let mut session = start(&home, &fake, "warn").await;
    gets_through(&fake, &mut session, "3000000000000000130").await;
    let chat = format!("discord:{ALICE_DM}");

    fake.fail_next(
        "POST",
        "/channels/{}/messages",
        Fault::RateLimited {
            retry_after: 0.4,
            global: false,
        },
        1,
    );
    let r = session
        .call("reply", json!({"chat_id": chat, "text": "after the wait"}))
        .await;
    let (is_error, text) = outcome(&r);
    assert!(!is_error, "{text}");
    let creates = fake.calls_to("POST", "/channels/{}/messages");
    assert_eq!(creates.len(), 2);
    assert!(creates[0].fault.is_some() && creates[1].fault.is_none());
    assert_eq!(sent_in(&fake, ALICE_DM), ["after the wait"]);

    // A global limit longer than the host waits: a clear tool error.
    fake.fail_next(
        "POST",
        "/channels/{}/messages",
        Fault::RateLimited {
            retry_after: 120.0,
            global: true,
        },
        1,
    );
    let r = session
        .call("reply", json!({"chat_id": chat, "text": "too soon"}))
        .await;
    let (is_error, text) = outcome(&r);
    assert!(is_error && text.to_lowercase().contains("rate"), "{text}");

    fake.fail_next("POST", "/channels/{}/messages", Fault::ServerError(502), 1);
    let r = session
        .call(
            "reply",
            json!({"chat_id": chat, "text": "during the outage"}),
        )
        .await;
    let (is_error, text) = outcome(&r);
    assert!(is_error && text.contains("502"), "{text}");
    let r = session
        .call("reply", json!({"chat_id": chat, "text": "after it"}))
        .await;
    assert!(!outcome(&r).0);
    assert_eq!(sent_in(&fake, ALICE_DM), ["after the wait", "after it"]);
    session.close().await;
}

#[tokio::test]
async fn a_gateway_that_hangs_up_at_once_is_retried_with_backoff() {
    let fake = fake().await;
    // A "gateway" that accepts and closes every connection before a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = format!("ws://{}", listener.local_addr().unwrap());
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(socket);
        }
    });
    let home = TempHome::new();
    home.secret("DISCORD_BOT_TOKEN", TOKEN);
    let config = config(&fake).replace(&fake.gateway_url(), &gw);
    home.config(&config);
    let session = Session::start_command(
        serve_logging(&home, "info"),
        rmcp::service::ClientLifecycleMode::Initialize,
    )
    .await;
    until("a first connection", || {
        accepted.load(std::sync::atomic::Ordering::SeqCst) >= 1
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    // Immediately, then after about 0.5, 1 and 2 s: a handful, not a flood.
    let n = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!((2..=5).contains(&n), "{n} connections in 2.5 s");
    assert!(
        session.log.text().contains("connecting again in"),
        "{}",
        session.log.text()
    );
    assert!(session.tool_names().await.contains(&"reply".to_string()));
    session.close().await;
}
