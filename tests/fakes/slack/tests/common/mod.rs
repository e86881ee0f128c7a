//! What the frame-level tests share: opening a Socket Mode connection with
//! a plain websocket client, and reading its JSON frames.

use std::time::Duration;

use fake_slack::FakeSlack;
use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

pub const APP: &str = "xapp-1-A0FAKE0001-1-aa";
pub const BOT: &str = "xoxb-1-2-bb";

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// `apps.connections.open` with `token`: the JSON answer.
pub async fn open_url(fake: &FakeSlack, token: &str) -> Value {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/api/apps.connections.open", fake.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A new connection, its `hello` already read.
pub async fn connect(fake: &FakeSlack) -> Socket {
    let opened = open_url(fake, APP).await;
    let url = opened["url"].as_str().expect("a URL").to_owned();
    let mut ws = tokio_tungstenite::connect_async(url).await.unwrap().0;
    assert_eq!(next_json(&mut ws).await["type"], "hello");
    ws
}

/// The next text frame, as JSON.
pub async fn next_json(ws: &mut Socket) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
            .expect("the socket open")
            .unwrap();
        if let Message::Text(text) = msg {
            return serde_json::from_str(&text).unwrap();
        }
    }
}
