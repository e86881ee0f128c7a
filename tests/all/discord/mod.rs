//! The bundled Discord adapter through the real binary, against the fake
//! REST API and gateway (`tests/fakes/discord`) on loopback: the session's
//! view over stdio, the platform's view in what the fake received.

mod access;
mod audit;
mod crash;
mod e2e;
mod faults;
mod hostile;
mod relay;
mod together;

use fake_discord::{BOT_ID, FakeDiscord, payloads};
use serde_json::{Value, json};

use crate::session::*;
use crate::support::*;
use crate::telegram::{serve_logging, until};

/// The token airlock holds (in a 0600 secret file); the fake accepts it.
pub const TOKEN: &str = "MTAwMDAwMDAwMDAwMDAwMDAwMQ.GdTest.AirlockFakeDiscordTokenXyz123";
/// A piece of the token that no other text holds.
pub const TOKEN_PART: &str = "AirlockFakeDiscordToken";
/// An allowlisted user, and their DM channel.
pub const ALICE: &str = "5000000000000000001";
pub const ALICE_DM: &str = "4100000000000000001";
/// A stranger, and theirs.
pub const EVE: &str = "5000000000000000666";
pub const EVE_DM: &str = "4100000000000000666";
/// A server channel, and a thread under it.
pub const CHANNEL: &str = "4000000000000000001";
pub const THREAD: &str = "4200000000000000001";

/// A fake with Alice's and Eve's DMs, a channel and a thread.
pub async fn fake() -> FakeDiscord {
    let fake = FakeDiscord::start(TOKEN).await;
    fake.add_dm(ALICE_DM, alice());
    fake.add_dm(EVE_DM, eve());
    fake.add_guild_channel(CHANNEL, "general");
    fake.add_thread(THREAD, CHANNEL, "ideas");
    fake
}

pub fn alice() -> Value {
    payloads::user(ALICE, "alice")
}

pub fn eve() -> Value {
    payloads::user(EVE, "eve")
}

/// The config text for the discord adapter on `fake`.
pub fn config(fake: &FakeDiscord) -> String {
    let api = fake.api_base();
    let gw = fake.gateway_url();
    format!(
        r#"[components.discord]
enabled = true
settings = {{ api_base = "{api}", gateway_url = "{gw}" }}

[components.discord.grant]
local = ["{api}", "{gw}"]

[components.discord.grant.rebind]
"https://discord.com" = "{api}"
"wss://gateway.discord.gg" = "{gw}"
"#
    )
}

/// A state directory wired to `fake`, with `extra` config lines.
pub fn discord_home(fake: &FakeDiscord, extra: &str) -> TempHome {
    let home = TempHome::new();
    home.secret("DISCORD_BOT_TOKEN", TOKEN);
    home.config(&format!("{}\n{extra}", config(fake)));
    home
}

/// `airlock access allow discord ALICE` on `home`.
pub async fn allow_alice(home: &TempHome) {
    let (code, out, err) = cli(home, &["access", "allow", "discord", ALICE]).await;
    assert_eq!(code, Some(0), "{out}{err}");
}

/// Waits until a client is identified (or resumed) on the gateway.
pub async fn ready(fake: &FakeDiscord) {
    until("airlock to identify on the gateway", || fake.is_ready()).await;
}

/// A session on `home`, logging at `log`, identified on the gateway.
pub async fn start(home: &TempHome, fake: &FakeDiscord, log: &str) -> Session {
    let session = Session::start_command(
        serve_logging(home, log),
        rmcp::service::ClientLifecycleMode::Initialize,
    )
    .await;
    ready(fake).await;
    session
}

/// A DM from Alice.
pub fn dm_from_alice(id: &str, text: &str) -> Value {
    payloads::dm_message(id, ALICE_DM, alice(), text)
}

/// A message in `channel` by Alice; `mention` adds a mention of the bot.
pub fn in_channel(id: &str, channel: &str, text: &str, mention: bool) -> Value {
    let mut m = payloads::guild_message(id, channel, alice(), text);
    if mention {
        m["content"] = json!(format!("<@{BOT_ID}> {text}"));
        m["mentions"] = json!([payloads::user(BOT_ID, fake_discord::BOT_USERNAME)]);
    }
    m
}

/// The session's next event, with its `chat_id` checked.
pub async fn event_in(session: &mut Session, channel: &str) -> Value {
    let e = session.event().await;
    assert_eq!(e["meta"]["chat_id"], format!("discord:{channel}"), "{e}");
    e
}

/// Every message content the bot created in `channel`, oldest first.
pub fn sent_in(fake: &FakeDiscord, channel: &str) -> Vec<String> {
    fake.messages_in(channel)
        .iter()
        .filter(|m| m["author"]["id"] == BOT_ID)
        .filter_map(|m| m["content"].as_str().map(str::to_owned))
        .collect()
}
