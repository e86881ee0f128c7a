//! Socket Mode at the level of frames, with a plain websocket client: what
//! slack_sdk does not show (it acknowledges at once and hides retries).

mod common;

use std::time::Duration;

use common::{APP, BOT, connect, next_json, open_url};
use fake_slack::{BOT_USER_ID, FakeSlack};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn a_url_opens_once_and_only_with_the_app_token() {
    let fake = FakeSlack::start(APP, BOT).await;
    assert_eq!(
        open_url(&fake, BOT).await,
        json!({"ok": false, "error": "not_allowed_token_type"})
    );
    assert_eq!(open_url(&fake, "xapp-nope").await["error"], "invalid_auth");
    let opened = open_url(&fake, APP).await;
    assert_eq!(opened["ok"], true);
    let url = opened["url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!("{}/link/?ticket=", fake.socket_base())),
        "{url}"
    );

    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let hello = next_json(&mut ws).await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["num_connections"], 1);
    assert_eq!(hello["connection_info"]["app_id"], fake_slack::APP_ID);
    // The ticket is spent.
    let again = tokio_tungstenite::connect_async(url.as_str()).await;
    assert!(again.is_err(), "a used ticket connected again");
    let forged = format!("{}/link/?ticket=ticket-forged", fake.socket_base());
    assert!(tokio_tungstenite::connect_async(forged).await.is_err());
}

#[tokio::test]
async fn an_envelope_not_acknowledged_comes_again_to_the_next_connection() {
    let fake = FakeSlack::start(APP, BOT).await;
    fake.add_channel("C1", "general");
    let mut first = connect(&fake).await;

    let ts = fake.post_as_user("C1", "U1", &format!("<@{BOT_USER_ID}> hi"), None);
    let message = next_json(&mut first).await;
    assert_eq!(message["type"], "events_api");
    assert_eq!(message["retry_attempt"], 0);
    assert_eq!(message["payload"]["event"]["type"], "message");
    assert_eq!(message["payload"]["event"]["ts"], ts.as_str());
    assert_eq!(message["payload"]["event"]["channel_type"], "channel");
    let mention = next_json(&mut first).await;
    assert_eq!(mention["payload"]["event"]["type"], "app_mention");
    // Only the mention is acknowledged before the socket goes.
    let ack = json!({"envelope_id": mention["envelope_id"]}).to_string();
    first.send(Message::text(ack)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        while fake.pending().len() != 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the ack counted");
    fake.drop_socket();

    let mut second = connect(&fake).await;
    let again = next_json(&mut second).await;
    assert_eq!(again["envelope_id"], message["envelope_id"]);
    assert_eq!(again["retry_attempt"], 1);
    assert_eq!(again["retry_reason"], "timeout");
    assert_eq!(again["payload"], message["payload"]);
    assert_eq!(fake.connections(), 2);
}

#[tokio::test]
async fn disconnect_is_said_before_the_socket_closes() {
    let fake = FakeSlack::start(APP, BOT).await;
    let mut ws = connect(&fake).await;
    fake.disconnect("warning", Duration::from_millis(50));
    let said = next_json(&mut ws).await;
    assert_eq!(said["type"], "disconnect");
    assert_eq!(said["reason"], "warning");
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "still open after the grace");
}
