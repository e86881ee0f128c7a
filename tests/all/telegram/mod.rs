//! The bundled Telegram adapter through the real binary, against the fake
//! Bot API (`tests/fakes/telegram`) on loopback: the session's view over
//! stdio, the platform's view in what the fake received.

mod access;
mod audit;
mod crash;
mod e2e;
mod faults;
mod hostile;
mod relay;

use std::time::{Duration, Instant};

use fake_telegram::FakeTelegram;
use serde_json::{Value, json};

use crate::session::*;
use crate::support::*;

/// The token airlock holds (in a 0600 secret file); the fake accepts it.
pub const TOKEN: &str = "123456789:AAEkTestTokenForAirlockFakeBotApi12";
/// A piece of the token that no other text holds.
pub const TOKEN_PART: &str = "TestTokenForAirlock";
/// An allowlisted user; their direct chat has the same id.
pub const ALICE: i64 = 111;
/// A stranger.
pub const EVE: i64 = 666;
/// A supergroup.
pub const GROUP: i64 = -1_001_234_567_890;

/// A state directory wired to `fake`: the token as a secret file, the
/// telegram adapter enabled with `api_base` pointing at the fake, the grant
/// that destination needs, and `extra` config lines.
pub fn telegram_home(fake: &FakeTelegram, extra: &str) -> TempHome {
    let home = TempHome::new();
    home.secret("TELEGRAM_BOT_TOKEN", TOKEN);
    home.config(&config(fake, extra));
    home
}

/// The config text for `fake`.
pub fn config(fake: &FakeTelegram, extra: &str) -> String {
    let base = fake.base_url();
    format!(
        r#"[components.telegram]
enabled = true
settings = {{ api_base = "{base}", poll_timeout_s = "2" }}

[components.telegram.grant]
local = ["{base}"]

[components.telegram.grant.rebind]
"https://api.telegram.org" = "{base}"
{extra}
"#
    )
}

/// `airlock serve` on `home` with `AIRLOCK_LOG` set to `log`.
pub fn serve_logging(home: &TempHome, log: &str) -> tokio::process::Command {
    let mut cmd = serve_command(home);
    cmd.env("AIRLOCK_LOG", log);
    cmd
}

/// A user object.
pub fn user(id: i64, name: &str) -> Value {
    json!({"id": id, "is_bot": false, "first_name": name, "username": name.to_lowercase()})
}

/// The direct chat with `id`.
pub fn private(id: i64, name: &str) -> Value {
    json!({"id": id, "type": "private", "first_name": name, "username": name.to_lowercase()})
}

/// The test supergroup.
pub fn supergroup() -> Value {
    json!({"id": GROUP, "type": "supergroup", "title": "Test Group"})
}

/// A text message update from `from` in `chat`.
pub fn text_update(message_id: i64, from: Value, chat: Value, text: &str) -> Value {
    json!({"message": {
        "message_id": message_id, "date": 1_717_243_290, "from": from, "chat": chat, "text": text,
    }})
}

/// A direct text message from Alice.
pub fn from_alice(message_id: i64, text: &str) -> Value {
    text_update(
        message_id,
        user(ALICE, "Alice"),
        private(ALICE, "Alice"),
        text,
    )
}

/// `airlock access allow telegram ALICE` on `home`.
pub async fn allow_alice(home: &TempHome) {
    let (code, out, err) = cli(home, &["access", "allow", "telegram", &ALICE.to_string()]).await;
    assert_eq!(code, Some(0), "{out}{err}");
}

/// Waits until `cond` holds, failing with `what` after [`SOON`].
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + SOON;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until airlock holds a getUpdates on the fake.
pub async fn polling(fake: &FakeTelegram) {
    until("airlock to poll getUpdates", || fake.is_polling()).await;
}

/// The session's next event, with its `chat_id` checked.
pub async fn event_from(session: &mut Session, chat: i64) -> Value {
    let e = session.event().await;
    assert_eq!(e["meta"]["chat_id"], format!("telegram:{chat}"), "{e}");
    e
}

/// A session on `home`, logging at `log`, with the fake polled.
pub async fn start(home: &TempHome, fake: &FakeTelegram, log: &str) -> Session {
    let session = Session::start_command(
        serve_logging(home, log),
        rmcp::service::ClientLifecycleMode::Initialize,
    )
    .await;
    polling(fake).await;
    session
}

/// Every sendMessage text the fake received.
pub fn sent_texts(fake: &FakeTelegram) -> Vec<String> {
    fake.calls_to("sendMessage")
        .iter()
        .filter_map(|c| c.param("text").and_then(Value::as_str).map(str::to_owned))
        .collect()
}
