//! A raw gateway client and a raw HTTP client for talking to the fake
//! without a Discord library in between.

#![allow(dead_code)]

use std::time::Duration;

use fake_discord::FakeDiscord;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const TOKEN: &str = "FAKE.DISCORD.TOKEN";
/// GUILDS | GUILD_MESSAGES | GUILD_MESSAGE_REACTIONS | DIRECT_MESSAGES |
/// MESSAGE_CONTENT.
pub const INTENTS: u64 = 38401;

const WAIT: Duration = Duration::from_secs(5);

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the server sent next.
#[derive(Debug)]
pub enum Frame {
    Json(Value),
    Binary(Vec<u8>),
    /// A close frame's code (`None`: no code), or the stream ending.
    Closed(Option<u16>),
}

pub async fn connect(fake: &FakeDiscord) -> Ws {
    let url = format!("{}/?v=10&encoding=json", fake.gateway_url());
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("gateway handshake");
    ws
}

pub async fn next_frame(ws: &mut Ws) -> Frame {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame from the gateway in time");
        match msg {
            Some(Ok(Message::Text(text))) => {
                return Frame::Json(serde_json::from_str(&text).expect("JSON frame"));
            }
            Some(Ok(Message::Binary(bytes))) => return Frame::Binary(bytes.to_vec()),
            Some(Ok(Message::Close(frame))) => {
                return Frame::Closed(frame.map(|f| u16::from(f.code)));
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Frame::Closed(None),
        }
    }
}

/// The next JSON frame; panics on anything else.
pub async fn next_json(ws: &mut Ws) -> Value {
    match next_frame(ws).await {
        Frame::Json(v) => v,
        other => panic!("expected a JSON frame, got {other:?}"),
    }
}

/// The close code the server ends the connection with; JSON frames before
/// it are skipped.
pub async fn close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        match next_frame(ws).await {
            Frame::Closed(code) => return code,
            Frame::Json(_) | Frame::Binary(_) => continue,
        }
    }
}

pub async fn send(ws: &mut Ws, payload: Value) {
    ws.send(Message::text(payload.to_string()))
        .await
        .expect("send to gateway");
}

pub fn identify_payload(token: &str, intents: u64) -> Value {
    json!({"op": 2, "d": {
        "token": token,
        "intents": intents,
        "properties": {"os": "linux", "browser": "raw-test", "device": "raw-test"},
        "compress": false,
        "large_threshold": 250,
        "shard": [0, 1],
    }})
}

/// Connects, reads Hello, identifies; returns the socket and READY.
pub async fn identified(fake: &FakeDiscord) -> (Ws, Value) {
    let mut ws = connect(fake).await;
    let hello = next_json(&mut ws).await;
    assert_eq!(hello["op"], 10);
    send(&mut ws, identify_payload(&format!("Bot {TOKEN}"), INTENTS)).await;
    let ready = next_json(&mut ws).await;
    assert_eq!(ready["t"], "READY", "{ready}");
    (ws, ready)
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}

/// A REST call with the bot's token; returns status, headers and the body
/// (JSON, or `Null` when empty).
pub async fn rest(
    fake: &FakeDiscord,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = http()
        .request(method, format!("{}/api/v10{path}", fake.api_base()))
        .header("authorization", format!("Bot {TOKEN}"));
    if let Some(body) = body {
        req = req.json(&body);
    }
    respond(req).await
}

pub async fn respond(req: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    };
    (status, headers, body)
}

/// Polls `check` until it holds (or panics after 10 s).
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
