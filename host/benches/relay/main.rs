//! The permission relay against the fake Bot API: airlock with the Telegram
//! adapter, one owner who has written to the bot once, and a session that
//! relays prompts as Claude Code does. Each round takes three samples:
//!
//! * inbound DM → channel event: an update from the owner injected into the
//!   fake until the session reads its `notifications/claude/channel` (the
//!   telegram bench's inbound figure, for reference);
//! * prompt → chat message: a `permission_request` notification sent until
//!   the fake has recorded the bot's sendMessage carrying its request id;
//! * button press → verdict: the owner's press on Allow (a callback_query
//!   with the prompt's button data) injected until the session reads the
//!   `notifications/claude/channel/permission` for that request.
//!
//! The relay's figures are also given as ratios to the inbound p50, taken in
//! the same run, since absolute figures move with the machine. Run with
//! `cargo bench -p airlock --bench relay`; `BENCH_RELAY_ROUNDS` sets the
//! number of rounds (200 by default, after 20 unmeasured ones).

#[path = "../common/figures.rs"]
#[allow(dead_code)] // Shared with the platform benches; this one uses a part.
mod figures;
mod session;
#[path = "../common/subject.rs"]
#[allow(dead_code)] // Only its `[access]` lines are used here.
mod subject;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_telegram::{Call, FakeTelegram};
use figures::{percentile, until};
use serde_json::{Value, json};
use session::Session;

const TOKEN: &str = "123456789:AAEkBenchTokenForAirlockFakeBotApi12";
/// The owner's user id, which is also their direct chat's id.
const OWNER: i64 = 111;
const WARMUP: usize = 20;
const DEFAULT_ROUNDS: usize = 200;
/// The letters of a request id: a–z without l.
const ID_LETTERS: &[u8; 25] = b"abcdefghijkmnopqrstuvwxyz";
/// How often the watcher looks at the fake's calls. The fake has no wake-up
/// for a recorded call, and tokio's timer would round each look up to a
/// millisecond, which is about the size of the figure; a thread's sleep is
/// tens of microseconds.
const POLL: Duration = Duration::from_micros(20);
/// How long a press may wait for its verdict before it is pressed again.
const VERDICT_PATIENCE: Duration = Duration::from_secs(3);
const PATIENCE: Duration = Duration::from_secs(30);

fn main() {
    subject::block_on(run());
}

/// Round `n`'s request id: `n` in base 25 over [`ID_LETTERS`], five digits.
fn request_id(mut n: usize) -> String {
    let mut id = [b'a'; 5];
    for slot in id.iter_mut().rev() {
        *slot = ID_LETTERS[n % ID_LETTERS.len()];
        n /= ID_LETTERS.len();
    }
    String::from_utf8(id.to_vec()).expect("ASCII")
}

fn owner() -> Value {
    json!({"id": OWNER, "is_bot": false, "first_name": "Alice", "username": "alice"})
}

/// A direct message from the owner.
fn message(id: i64, text: &str) -> Value {
    json!({"message": {"message_id": id, "date": 1_717_243_290, "from": owner(),
        "chat": {"id": OWNER, "type": "private", "first_name": "Alice", "username": "alice"},
        "text": text}})
}

/// The owner pressing the button with `data` under the bot's `message`.
fn press(query_id: &str, message: &Value, data: &str) -> Value {
    json!({"callback_query": {"id": query_id, "from": owner(), "message": message,
        "chat_instance": "-3214567890123456789", "data": data}})
}

/// A state directory for airlock wired to `fake`, with the owner allowed
/// (through the CLI, as an operator does) and the per-sender limit lifted.
fn airlock_home(home: &Path, fake: &FakeTelegram) {
    subject::secret(home, "TELEGRAM_BOT_TOKEN", TOKEN);
    let config = subject::telegram_config(&fake.base_url()) + &subject::uncapped();
    // Allowed through the CLI, as an operator would.
    subject::write_home(home, &config, &[]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(["access", "allow", "telegram", &OWNER.to_string(), "--owner"])
        .env("AIRLOCK_HOME", home)
        .env_remove("AIRLOCK_LOG")
        .output()
        .expect("airlock access allow");
    assert!(
        out.status.success(),
        "airlock access allow: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The sendMessage whose text holds `needle`, and the moment it was seen,
/// looked for on a thread of its own every [`POLL`].
fn watch_sent(fake: Arc<FakeTelegram>, needle: String) -> tokio::task::JoinHandle<(Instant, Call)> {
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let found = fake.calls_to("sendMessage").into_iter().find(|c| {
                c.param("text")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.contains(&needle))
            });
            if let Some(call) = found {
                return (Instant::now(), call);
            }
            assert!(Instant::now() < deadline, "no sendMessage holding {needle}");
            std::thread::sleep(POLL);
        }
    })
}

/// The bot's message whose text holds `needle` and satisfies `pred`, once
/// the fake has stored it.
async fn bot_message(fake: &FakeTelegram, needle: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let find = || {
        fake.bot_messages()
            .into_iter()
            .find(|m| m["text"].as_str().is_some_and(|t| t.contains(needle)) && pred(m))
    };
    until(|| find().is_some()).await;
    find().expect("found")
}

/// Samples of one run.
#[derive(Default)]
struct Samples {
    inbound: Vec<Duration>,
    prompt: Vec<Duration>,
    verdict: Vec<Duration>,
    /// Presses that got no verdict and were made again (the prompt's message
    /// not yet recorded as a copy when pressed).
    repressed: usize,
}

/// An update injected while airlock's getUpdates is held, as the telegram
/// bench does, so that every sample starts from the same state.
async fn inject_when_polling(fake: &FakeTelegram, update: Value) -> Instant {
    until(|| fake.is_polling()).await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    let t = Instant::now();
    fake.inject_update(update);
    t
}

async fn run() {
    let rounds = match std::env::var("BENCH_RELAY_ROUNDS") {
        Ok(n) => n
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .expect("BENCH_RELAY_ROUNDS: a positive number"),
        Err(_) => DEFAULT_ROUNDS,
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let fake = Arc::new(FakeTelegram::start(TOKEN).await);
    let home = tmp.path().join("home");
    airlock_home(&home, &fake);
    let mut session = Session::start(&home).await;
    assert!(session.declares_relay(), "airlock did not offer the relay");

    // The owner writes once, so airlock knows their direct chat.
    let mut next_message = 1;
    inject_when_polling(&fake, message(next_message, "hello")).await;
    next_message += 1;
    session.event().await;

    let mut samples = Samples::default();
    for round in 0..WARMUP + rounds {
        let measured = round >= WARMUP;
        let id = request_id(round);

        // Inbound DM → channel event.
        let t = inject_when_polling(&fake, message(next_message, "ping")).await;
        let event = session.event().await;
        let inbound = event.at.saturating_duration_since(t);
        assert_eq!(
            event.params["meta"]["message_id"],
            json!(next_message.to_string()),
            "{}",
            event.params
        );
        next_message += 1;

        // Prompt → chat message.
        let needle = format!("Request {id}:");
        let watcher = watch_sent(fake.clone(), needle.clone());
        let params = json!({"request_id": id, "tool_name": "Write",
            "description": "Write call", "input_preview": "{\"file_path\":\"/tmp/bench.txt\"}"});
        let t = Instant::now();
        session.permission_request(params).await;
        let (seen, call) = watcher.await.expect("watcher");
        let prompt = seen.saturating_duration_since(t);
        let allow = &call.param("reply_markup").expect("buttons")["inline_keyboard"][0][0];
        assert_eq!(allow["text"], "Allow", "{allow}");
        let data = allow["callback_data"].as_str().expect("callback_data");

        // Button press → verdict.
        let message = bot_message(&fake, &needle, |_| true).await;
        let mut attempt = 0;
        let verdict = loop {
            let query = format!("bench-{round}-{attempt}");
            let t = inject_when_polling(&fake, press(&query, &message, data)).await;
            let got = loop {
                match session.verdict_within(VERDICT_PATIENCE).await {
                    Some(v) if v.params["request_id"] == json!(id) => break Some(v),
                    Some(_) => continue,
                    None => break None,
                }
            };
            if let Some(v) = got {
                assert_eq!(v.params["behavior"], "allow", "{}", v.params);
                break v.at.saturating_duration_since(t);
            }
            attempt += 1;
            samples.repressed += 1;
            assert!(attempt < 5, "no verdict for {id} after {attempt} presses");
        };

        // The prompt closed (its edit stored) before the next round; the
        // fake then forgets this round, so it never looks through old calls.
        let message_id = message["message_id"].clone();
        bot_message(&fake, &format!("Request {id}."), |m| {
            m["message_id"] == message_id
        })
        .await;
        until(|| fake.is_polling()).await;
        fake.reset();

        if measured {
            samples.inbound.push(inbound);
            samples.prompt.push(prompt);
            samples.verdict.push(verdict);
        }
    }
    session.stop().await;
    report(&samples, rounds);
}

/// Prints p50, p90, p99 and max of each figure, and the relay's p50s as
/// ratios to the inbound p50.
fn report(samples: &Samples, rounds: usize) {
    let ms = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1000.0);
    let inbound_p50 = percentile(&samples.inbound, 50).as_secs_f64();
    println!(
        "{:<34} {:>12} {:>12} {:>12} {:>12} {:>18}",
        format!("{rounds} rounds"),
        "p50 (ms)",
        "p90 (ms)",
        "p99 (ms)",
        "max (ms)",
        "p50/inbound p50"
    );
    for (name, v, ratio) in [
        ("inbound DM → channel event", &samples.inbound, false),
        ("prompt → chat message", &samples.prompt, true),
        ("button press → verdict", &samples.verdict, true),
    ] {
        let p50 = percentile(v, 50);
        let ratio = if ratio {
            format!("{:.2}", p50.as_secs_f64() / inbound_p50)
        } else {
            "-".into()
        };
        println!(
            "{name:<34} {:>12} {:>12} {:>12} {:>12} {ratio:>18}",
            ms(p50),
            ms(percentile(v, 90)),
            ms(percentile(v, 99)),
            ms(percentile(v, 100)),
        );
    }
    if samples.repressed > 0 {
        println!(
            "{} press(es) got no verdict within {VERDICT_PATIENCE:?} and were made again",
            samples.repressed
        );
    }
}
