//! The floor airlock is compared with: a minimal native bridge on teloxide.
//! No sandbox, no access control, no persistence: long-poll in, one JSON line
//! per message out; a JSON line in (`{"chat_id":…,"text":…}`) sends a
//! message and answers `{"sent":ID}`.
//!
//! The benchmark runs this same executable with `--bridge API_URL`, so the
//! bridge is its own process, measured like airlock.

use std::io::Write;

use teloxide::payloads::GetUpdatesSetters;
use teloxide::prelude::*;
use teloxide::types::{AllowedUpdate, UpdateKind};

/// Runs the bridge against `api_url` until stdin closes.
pub fn run(api_url: &str, token: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = teloxide::net::default_reqwest_settings()
            .no_proxy()
            .build()
            .expect("client");
        let bot = Bot::with_client(token, client)
            .set_api_url(reqwest::Url::parse(api_url).expect("api url"));
        let replies = tokio::spawn(serve_replies(bot.clone()));
        let polls = tokio::spawn(poll(bot));
        let _ = replies.await;
        polls.abort();
    });
}

async fn poll(bot: Bot) {
    let mut offset = 0i32;
    loop {
        let updates = match bot
            .get_updates()
            .offset(offset)
            .timeout(30)
            .allowed_updates([AllowedUpdate::Message])
            .await
        {
            Ok(u) => u,
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let mut out = Vec::new();
        for u in updates {
            offset = offset.max(u.id.0 as i32 + 1);
            if let UpdateKind::Message(m) = u.kind {
                let line = serde_json::json!({
                    "chat_id": m.chat.id.0,
                    "message_id": m.id.0.to_string(),
                    "text": m.text().unwrap_or_default(),
                });
                out.extend_from_slice(line.to_string().as_bytes());
                out.push(b'\n');
            }
        }
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(&out);
        let _ = stdout.flush();
    }
}

async fn serve_replies(bot: Bot) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(request) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let chat = ChatId(request["chat_id"].as_i64().unwrap_or_default());
        let text = request["text"].as_str().unwrap_or_default().to_owned();
        let answer = match bot.send_message(chat, text).await {
            Ok(m) => serde_json::json!({ "sent": m.id.0 }),
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        };
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{answer}");
        let _ = stdout.flush();
    }
}
