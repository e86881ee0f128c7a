//! The platform misbehaving: each fault is said on stderr, and airlock keeps
//! serving (and, where the fault passes, recovers by itself).

use std::time::{Duration, Instant};

use fake_telegram::{FakeTelegram, Fault};

use super::*;

/// Waits until stderr holds `needle`.
async fn logged(session: &Session, needle: &str) {
    let log = session.log.clone();
    until(&format!("{needle:?} on stderr"), || {
        log.text().contains(needle)
    })
    .await;
}

#[tokio::test]
async fn a_429_is_waited_out_as_long_as_telegram_asks() {
    let fake = FakeTelegram::start(TOKEN).await;
    fake.fail_next("getUpdates", Fault::RetryAfter(1), 1);
    let home = telegram_home(&fake, "");
    allow_alice(&home).await;
    let mut session = Session::start_command(
        serve_logging(&home, "warn"),
        rmcp::service::ClientLifecycleMode::Initialize,
    )
    .await;
    until("the first getUpdates", || {
        !fake.calls_to("getUpdates").is_empty()
    })
    .await;
    let refused_at = Instant::now();
    polling(&fake).await;
    let waited = refused_at.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "polled again after {waited:?}"
    );
    logged(&session, "asks to wait 1s before polling again (429)").await;
    fake.inject_update(from_alice(1, "after the wait"));
    assert_eq!(
        event_from(&mut session, ALICE).await["content"],
        "after the wait"
    );
    session.close().await;
}

#[tokio::test]
async fn server_errors_and_a_vanished_server_are_recovered_from() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = telegram_home(&fake, "");
    allow_alice(&home).await;
    let mut session = start(&home, &fake, "warn").await;

    // Two 502s in a row, then Telegram is back.
    fake.fail_next("getUpdates", Fault::ServerError(502), 2);
    fake.inject_update(from_alice(1, "before the errors"));
    assert_eq!(
        event_from(&mut session, ALICE).await["content"],
        "before the errors"
    );
    logged(&session, "Telegram answered HTTP 502 to getUpdates").await;
    logged(&session, "polling works again after 2 failed attempt(s)").await;
    fake.inject_update(from_alice(2, "after the errors"));
    assert_eq!(
        event_from(&mut session, ALICE).await["content"],
        "after the errors"
    );

    // The server goes away (connections dropped, port closed) and comes back.
    fake.go_away();
    fake.inject_update(from_alice(3, "sent while it was away"));
    logged(&session, "polling failed: cannot connect").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    fake.come_back().await;
    assert_eq!(
        event_from(&mut session, ALICE).await["content"],
        "sent while it was away"
    );
    logged(&session, "polling works again").await;

    // Dropped mid-answer: the update is offered again and arrives once.
    fake.fail_next("getUpdates", Fault::DropConnection, 1);
    fake.inject_update(from_alice(4, "after a dropped connection"));
    assert_eq!(
        event_from(&mut session, ALICE).await["content"],
        "after a dropped connection"
    );
    assert!(
        session
            .event_within(Duration::from_millis(500))
            .await
            .is_none()
    );
    session.close().await;
}

#[tokio::test]
async fn a_refused_token_fails_the_adapter_with_the_fix_and_the_rest_keeps_serving() {
    let fake = FakeTelegram::start("999999:SOME-OTHER-BOT").await;
    let [port] = free_ports();
    let home = telegram_home(
        &fake,
        &format!("[components.fakechat]\nenabled = true\nsettings = {{ port = \"{port}\" }}\n"),
    );
    let mut session = Session::start_command(
        serve_logging(&home, "warn"),
        rmcp::service::ClientLifecycleMode::Initialize,
    )
    .await;
    logged(&session, "Telegram refused the bot token").await;
    let log = session.log.text();
    assert!(
        log.contains("Set TELEGRAM_BOT_TOKEN") && log.contains("@BotFather"),
        "{log}"
    );
    assert!(!log.contains(TOKEN_PART), "{log}");
    assert!(
        fake.calls_to("getUpdates").is_empty(),
        "no poll with a refused token"
    );

    // MCP and the other adapter are unaffected.
    assert!(session.tool_names().await.contains(&"reply".to_string()));
    let token = session.log.token(port).await;
    page_send(port, &token, "fakechat still works").await;
    assert_eq!(session.event().await["content"], "fakechat still works");
    session.close().await;
}

#[tokio::test]
async fn a_token_revoked_while_polling_stops_polling_with_the_fix() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = telegram_home(&fake, "");
    allow_alice(&home).await;
    let mut session = start(&home, &fake, "warn").await;
    fake.set_token("123456789:AAEkANewTokenAfterRevokeOfTheOld12");
    // The held poll still answers; the next one is refused.
    fake.inject_update(from_alice(1, "just before the revoke"));
    event_from(&mut session, ALICE).await;
    logged(&session, "stopped polling").await;
    let log = session.log.text();
    assert!(
        log.contains("Telegram refused the bot token") && log.contains("@BotFather"),
        "{log}"
    );
    let polls = fake.calls_to("getUpdates").len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        fake.calls_to("getUpdates").len(),
        polls,
        "no retry storm on a refused token"
    );
    assert!(session.tool_names().await.contains(&"reply".to_string()));
    session.close().await;
}

#[tokio::test]
async fn another_poller_is_named_as_a_conflict_and_airlock_carries_on() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = telegram_home(&fake, "");
    allow_alice(&home).await;
    let mut session = start(&home, &fake, "warn").await;

    // Someone else polls the same token: Telegram ends airlock's poll with 409.
    let port = fake.addr().port();
    let other = tokio::spawn(async move {
        http(
            port,
            "POST",
            &format!("/bot{TOKEN}/getUpdates"),
            &[("Content-Type", "application/json")],
            br#"{"timeout":0}"#,
        )
        .await
    });
    logged(
        &session,
        "409 Conflict: another program is polling this bot token",
    )
    .await;
    assert_eq!(other.await.unwrap().status, 200);
    fake.inject_update(from_alice(1, "after the conflict"));
    assert_eq!(
        event_from(&mut session, ALICE).await["content"],
        "after the conflict"
    );
    session.close().await;
}

#[tokio::test]
async fn a_second_airlock_on_the_same_token_does_not_poll_and_says_why() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = telegram_home(&fake, "");
    allow_alice(&home).await;
    let mut first = start(&home, &fake, "warn").await;
    // While it is the only session, the unbound chat is its.
    fake.inject_update(from_alice(1, "to the first"));
    assert_eq!(
        event_from(&mut first, ALICE).await["content"],
        "to the first"
    );
    let second = Session::start_command(
        serve_logging(&home, "warn"),
        rmcp::service::ClientLifecycleMode::Initialize,
    )
    .await;
    logged(&second, "is already polling with this telegram token").await;
    assert!(
        second.log.text().contains("this one does not poll"),
        "{}",
        second.log.text()
    );
    // Telegram never sees two pollers.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!first.log.text().contains("409"), "{}", first.log.text());
    let mut second = second;
    assert!(
        second
            .event_within(Duration::from_millis(300))
            .await
            .is_none(),
        "nothing was routed to the second"
    );
    assert!(second.tool_names().await.contains(&"reply".to_string()));

    // When the first one goes, the waiting one takes over (within its grace).
    first.close().await;
    logged(&second, "the other airlock let go; polling").await;
    fake.inject_update(from_alice(2, "to the second"));
    assert_eq!(
        event_from(&mut second, ALICE).await["content"],
        "to the second"
    );
    second.close().await;
}

#[tokio::test]
async fn events_wait_for_a_session_and_a_full_queue_pauses_polling() {
    let fake = FakeTelegram::start(TOKEN).await;
    let home = telegram_home(&fake, "[delivery]\nmax_waiting = 3\n");
    allow_alice(&home).await;
    // A client that has not finished the handshake: nothing may be delivered.
    let mut raw = Raw::start_command(serve_logging(&home, "warn"));
    raw.initialize().await;
    polling(&fake).await;
    // One at a time, each confirmed by the next poll, up to the bound.
    for i in 1..=2 {
        fake.inject_update(from_alice(i, &format!("message {i}")));
        until("the update to be confirmed", || fake.pending_updates() == 0).await;
    }
    fake.inject_update(from_alice(3, "message 3"));
    until("the queue to fill and polling to pause", || {
        raw.log.text().contains("polling pauses")
    })
    .await;
    for i in 4..=5 {
        fake.inject_update(from_alice(i, &format!("message {i}")));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        fake.pending_updates(),
        3,
        "past the bound, Telegram keeps them"
    );
    assert!(raw.next_within(Duration::from_millis(200)).await.is_none());

    // The session connects: everything arrives, oldest first, exactly once.
    raw.initialized().await;
    let mut contents = Vec::new();
    while contents.len() < 5 {
        let m = raw.next().await;
        assert_eq!(m["method"], CHANNEL, "{m}");
        contents.push(m["params"]["content"].as_str().unwrap().to_owned());
    }
    let want: Vec<String> = (1..=5).map(|i| format!("message {i}")).collect();
    assert_eq!(contents, want);
    until("polling to resume", || {
        raw.log.text().contains("polling again")
    })
    .await;
    assert!(raw.next_within(Duration::from_millis(300)).await.is_none());
}
