//! The native floor for Slack: a minimal Socket Mode bridge written here on
//! tokio-tungstenite and reqwest (no Slack library: the Rust ones would add
//! a large build to every test run). No sandbox, no access control, no
//! persistence: envelopes acknowledged as they arrive, one JSON line per
//! message out; a JSON line in (`{"chat_id":…,"text":…}`) posts with
//! `chat.postMessage` and answers `{"sent":TS}`.
//!
//! The benchmark runs this same executable with `--bridge API APP_TOKEN
//! BOT_TOKEN`, so the bridge is its own process, measured like airlock.

use std::io::Write;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

fn print(line: &Value) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// Runs the bridge until stdin closes.
pub fn run(api: &str, app_token: &str, bot_token: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let opened: Value = http
            .post(format!("{api}/api/apps.connections.open"))
            .bearer_auth(app_token)
            .send()
            .await
            .expect("apps.connections.open")
            .json()
            .await
            .expect("JSON");
        let url = opened["url"]
            .as_str()
            .expect("a Socket Mode URL")
            .to_owned();
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        let socket = tokio::spawn(read_envelopes(ws));
        serve_replies(&http, api, bot_token).await;
        socket.abort();
    });
}

async fn read_envelopes(
    mut ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) {
    while let Some(Ok(message)) = ws.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let Ok(frame) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if let Some(id) = frame["envelope_id"].as_str() {
            let ack = json!({ "envelope_id": id }).to_string();
            if ws.send(Message::text(ack)).await.is_err() {
                return;
            }
        }
        let event = &frame["payload"]["event"];
        if event["type"] == "message" && event["bot_id"].is_null() && event["subtype"].is_null() {
            print(&json!({
                "chat_id": event["channel"],
                "message_id": event["ts"],
                "text": event["text"],
            }));
        }
    }
}

async fn serve_replies(http: &reqwest::Client, api: &str, bot_token: &str) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(request) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let sent = http
            .post(format!("{api}/api/chat.postMessage"))
            .bearer_auth(bot_token)
            .json(&json!({"channel": request["chat_id"], "text": request["text"]}))
            .send()
            .await;
        let answer = match sent {
            Ok(r) => match r.json::<Value>().await {
                Ok(v) if v["ok"] == true => json!({ "sent": v["ts"] }),
                Ok(v) => json!({ "error": v["error"] }),
                Err(e) => json!({ "error": e.to_string() }),
            },
            Err(e) => json!({ "error": e.to_string() }),
        };
        print(&answer);
    }
}
