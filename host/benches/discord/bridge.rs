//! The native floor for Discord: a minimal bridge on serenity. No sandbox,
//! no access control, no persistence: gateway in, one JSON line per message
//! out; a JSON line in (`{"chat_id":…,"text":…}`) sends a message and
//! answers `{"sent":ID}`.
//!
//! The benchmark runs this same executable with `--bridge API GATEWAY TOKEN`,
//! so the bridge is its own process, measured like airlock.

use std::io::Write;
use std::sync::Arc;

use serenity::all::{ChannelId, Context, EventHandler, GatewayIntents, Message};
use serenity::async_trait;
use serenity::http::{Http, HttpBuilder};

struct Lines;

#[async_trait]
impl EventHandler for Lines {
    async fn message(&self, _ctx: Context, m: Message) {
        let line = serde_json::json!({
            "chat_id": m.channel_id.get().to_string(),
            "message_id": m.id.get().to_string(),
            "text": m.content,
        });
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    }
}

/// Runs the bridge until stdin closes.
pub fn run(api: &str, gateway: &str, token: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let http = HttpBuilder::new(token)
            .proxy(api)
            .ratelimiter_disabled(true)
            .client(client)
            .build();
        let intents = GatewayIntents::GUILDS
            | GatewayIntents::GUILD_MESSAGES
            | GatewayIntents::DIRECT_MESSAGES
            | GatewayIntents::MESSAGE_CONTENT;
        let mut client = serenity::client::ClientBuilder::new_with_http(http, intents)
            .event_handler(Lines)
            .await
            .expect("client");
        *client.ws_url.lock().await = gateway.to_owned();
        let replies = tokio::spawn(serve_replies(client.http.clone()));
        let gateway = tokio::spawn(async move { client.start().await });
        let _ = replies.await;
        gateway.abort();
    });
}

async fn serve_replies(http: Arc<Http>) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(request) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let channel: u64 = request["chat_id"]
            .as_str()
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        let text = request["text"].as_str().unwrap_or_default();
        let answer = match ChannelId::new(channel).say(&http, text).await {
            Ok(m) => serde_json::json!({ "sent": m.id.get().to_string() }),
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        };
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{answer}");
        let _ = stdout.flush();
    }
}
