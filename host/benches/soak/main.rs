//! The soak: one `airlock serve` with both the Telegram and the Discord
//! adapter, on their fakes, under a steady load for a long time, watched from
//! outside. It answers whether a session that stays up all day stays the
//! same size: memory, file descriptors and threads flat after warm-up, and a
//! database that stops growing once delivered events have left their content
//! behind and their dedupe keys have expired (`[delivery] dedupe_window`,
//! 10 minutes here, so the `seen` table reaches its steady state well within
//! an hour).
//!
//! The load, driven as Claude Code drives a session (MCP `initialize`, then
//! `notifications/claude/channel` lines read, `reply` tool calls written):
//!
//! * 50 inbound messages a second, a tick every 20 ms alternating between
//!   the platforms, round robin over four allowed chats on each;
//! * 5 `reply` calls a second, alternating platforms, to chats something was
//!   delivered from.
//!
//! Every message carries its own id, so each one is checked to arrive
//! exactly once; every call to be answered without an error; and the fakes
//! to have received as many messages as the calls that succeeded. Any loss,
//! duplicate or failure makes the run exit non-zero.
//!
//! Every `SOAK_EVERY_SECS` (10) it samples RSS, open descriptors and threads
//! (`/proc`), the sizes of `airlock.db`, `-wal` and `-shm`, rows in `events`
//! (the waiting queue), `seen` (dedupe keys) and `audit` (the trail), the
//! bytes of the delivery ledgers, the bytes of each table (SQLite's `dbstat`)
//! and the latencies of the interval. It writes `soak.csv` (one row per
//! sample) and `soak.png` (see `plot.rs`) to `SOAK_OUT` (relative to the
//! workspace; default `target/soak/`), and prints each measure at the end of
//! warm-up (5 minutes, or a quarter of a shorter run) against the end, with
//! its slope per hour.
//!
//! The `audit` table grows with every message by design (the trail keeps
//! rows until its retention drops whole segments), so the database as a
//! whole grows at about the trail's rate; the bytes per table tell that
//! growth apart from the queue's and the dedupe keys'.
//!
//! Run:
//!
//! ```text
//! cargo bench -p airlock --bench soak                  # 120 s
//! SOAK_SECS=3600 SOAK_OUT=docs cargo bench -p airlock --bench soak
//! SOAK_REPLOT=1 SOAK_OUT=docs cargo bench -p airlock --bench soak  # plot a CSV again
//! ```
//!
//! `BENCH_AIRLOCK_LOG=airlock=info` writes airlock's log to
//! `bench-airlock.log` (see `common/subject.rs`).

#[allow(dead_code)] // Shared with the platform benches; this one uses a part.
#[path = "../common/subject.rs"]
mod subject;

mod plot;
mod sample;
mod session;
mod trend;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fake_discord::{FakeDiscord, payloads};
use fake_telegram::FakeTelegram;
use serde_json::json;
use tokio::time::MissedTickBehavior;

use sample::{Progress, Table};
use session::{Session, Shared};
use subject::Subject;

const TELEGRAM_TOKEN: &str = "123456789:AAEkBenchTokenForAirlockFakeBotApi12";
const DISCORD_TOKEN: &str = "MTAwMDAwMDAwMDAwMDAwMDAwMQ.GdBench.AirlockBenchDiscordToken12";
/// Telegram private chats (a private chat's id is its user's).
const TELEGRAM_CHATS: [i64; 4] = [111, 112, 113, 114];
/// Discord users and their DM channels.
const DISCORD_USERS: [(&str, &str); 4] = [
    ("5000000000000000001", "4100000000000000001"),
    ("5000000000000000002", "4100000000000000002"),
    ("5000000000000000003", "4100000000000000003"),
    ("5000000000000000004", "4100000000000000004"),
];
/// Discord message ids start here, far above Telegram's, so one id names one
/// message across both platforms.
const DISCORD_FIRST_ID: u64 = 3_000_000_000_000_000_000;
/// One inbound message per tick: 50 a second.
const TICK: Duration = Duration::from_millis(20);
/// One reply every this many ticks: 5 a second.
const REPLY_EVERY: u64 = 10;
/// How long the end of a run waits for the last messages and answers.
const DRAIN: Duration = Duration::from_secs(60);
/// How long start-up may take (the first start compiles the components).
const START: Duration = Duration::from_secs(180);
/// How long a dedupe key is kept.
const DEDUPE_WINDOW: &str = "10m";

/// The run's settings, from the environment.
struct Config {
    secs: u64,
    every: u64,
    out: PathBuf,
}

impl Config {
    fn from_env() -> Config {
        let number = |name: &str, default: u64| match std::env::var(name) {
            Ok(v) => v
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name}={v}: a whole number of seconds")),
            Err(_) => default,
        };
        // Relative to the workspace, not to `host/` where cargo runs benches.
        let out = std::env::var_os("SOAK_OUT")
            .map(|dir| workspace().join(dir))
            .unwrap_or_else(|| target_dir().join("soak"));
        Config {
            secs: number("SOAK_SECS", 120).max(1),
            every: number("SOAK_EVERY_SECS", 10).max(1),
            out,
        }
    }

    /// Warm-up: five minutes, or a quarter of a shorter run.
    fn warm_secs(&self) -> f64 {
        (self.secs as f64 / 4.0).min(300.0)
    }
}

/// The workspace's root (benches run with the package as working
/// directory).
fn workspace() -> PathBuf {
    let host = Path::new(env!("CARGO_MANIFEST_DIR"));
    host.parent().unwrap_or(host).to_path_buf()
}

/// The workspace's `target/`.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace().join(dir),
        None => workspace().join("target"),
    }
}

fn main() {
    let config = Config::from_env();
    std::fs::create_dir_all(&config.out).expect("output directory");
    if std::env::var_os("SOAK_REPLOT").is_some() {
        let csv = config.out.join("soak.csv");
        let text =
            std::fs::read_to_string(&csv).unwrap_or_else(|e| panic!("{}: {e}", csv.display()));
        let table = Table::from_csv(&text).expect("soak.csv");
        let secs = table.column("t_s").last().copied().unwrap_or(0.0);
        plot::write(&table, &config.out, &title(secs)).expect("plot");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let ok = runtime.block_on(run(&config));
    if !ok {
        std::process::exit(1);
    }
}

fn title(secs: f64) -> String {
    format!(
        "airlock soak: Telegram + Discord fakes, 50 msg/s in, 5 replies/s out, {:.0} min",
        secs / 60.0
    )
}

/// `[delivery]` and `[access]` lines: the benches' lifted ceilings with the
/// soak's dedupe window.
fn delivery_lines() -> String {
    let lines = subject::uncapped();
    let window = format!("dedupe_window = \"{DEDUPE_WINDOW}\"\n");
    match lines.find("[delivery]\n") {
        Some(at) => {
            let after = at + "[delivery]\n".len();
            format!("{}{window}{}", &lines[..after], &lines[after..])
        }
        None => format!("[delivery]\n{window}{lines}"),
    }
}

/// A state directory with both adapters wired to their fakes and every
/// soak chat allowed.
fn airlock_home(home: &Path, telegram: &FakeTelegram, discord: &FakeDiscord) {
    subject::secret(home, "TELEGRAM_BOT_TOKEN", TELEGRAM_TOKEN);
    subject::secret(home, "DISCORD_BOT_TOKEN", DISCORD_TOKEN);
    let config = format!(
        "{}{}{}",
        subject::telegram_config(&telegram.base_url()),
        subject::discord_config(&discord.api_base(), &discord.gateway_url()),
        delivery_lines()
    );
    let chats: Vec<String> = TELEGRAM_CHATS.iter().map(i64::to_string).collect();
    let allowed: Vec<(&str, &str)> = chats
        .iter()
        .map(|chat| ("telegram", chat.as_str()))
        .chain(DISCORD_USERS.iter().map(|(user, _)| ("discord", *user)))
        .collect();
    subject::write_home(home, &config, &allowed);
}

fn telegram_message(id: u64, chat: i64, text: &str) -> serde_json::Value {
    let user = format!("user{chat}");
    json!({"message": {"message_id": id, "date": 1_717_243_290,
        "from": {"id": chat, "is_bot": false, "first_name": "Soak", "username": user},
        "chat": {"id": chat, "type": "private", "first_name": "Soak", "username": user},
        "text": text}})
}

/// Waits until `ready` holds, or `patience` has passed (false).
async fn until(patience: Duration, ready: impl Fn() -> bool) -> bool {
    let started = Instant::now();
    while !ready() {
        if started.elapsed() > patience {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Samples every `every` seconds from `start` (the first at once) until
/// `stop` is set, then once more; returns the table.
async fn sampler(
    pid: u32,
    home: PathBuf,
    tally: Shared,
    start: Instant,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Table {
    let mut table = Table::default();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let last = tokio::select! {
            _ = tick.tick() => false,
            _ = stop.changed() => true,
        };
        let progress = {
            let mut t = tally.lock();
            let (inbound, replies) = t.take_latencies();
            Progress {
                injected: t.injected,
                received: t.received,
                replies_ok: t.replies_ok,
                replies_failed: t.replies_failed,
                inbound,
                replies,
            }
        };
        let at = start.elapsed().as_secs_f64();
        let home = home.clone();
        let row = tokio::task::spawn_blocking(move || sample::take(at, pid, &home, progress))
            .await
            .expect("sample");
        print_sample(&row);
        table.rows.push(row);
        if last {
            return table;
        }
    }
}

fn print_sample(row: &[f64]) {
    let v = |c: &str| row[sample::index(c)];
    println!(
        "{:>6.0}s  rss {:>6.1} MB  fds {:>3.0}  threads {:>3.0}  db {:>6.2} MB  wal {:>6.2} MB  \
         events {:>5.0}  seen {:>6.0}  audit {:>7.0}  in {:>7.0}/{:<7.0} replies {:>5.0}  \
         in p50 {:>5.1} ms  reply p50 {:>5.1} ms",
        v("t_s"),
        v("rss_kb") / 1024.0,
        v("fds"),
        v("threads"),
        v("db_bytes") / 1048576.0,
        v("wal_bytes") / 1048576.0,
        v("events_rows"),
        v("seen_rows"),
        v("audit_rows"),
        v("received"),
        v("injected"),
        v("replies_ok"),
        v("inbound_p50_ms"),
        v("reply_p50_ms"),
    );
}

/// The whole run; true when nothing was lost, duplicated or refused.
async fn run(config: &Config) -> bool {
    let tmp = tempfile::tempdir().expect("temp dir");
    let home = tmp.path().join("home");
    let telegram = FakeTelegram::start(TELEGRAM_TOKEN).await;
    let discord = FakeDiscord::start(DISCORD_TOKEN).await;
    for (user, dm) in DISCORD_USERS {
        discord.add_dm(dm, payloads::user(user, "soak"));
    }
    airlock_home(&home, &telegram, &discord);

    println!(
        "soak: {} s, a sample every {} s, warm-up {:.0} s, dedupe_window {DEDUPE_WINDOW}, out {}",
        config.secs,
        config.every,
        config.warm_secs(),
        config.out.display()
    );
    let mut subject = Subject::airlock(&home);
    subject.handshake().await;
    let tally = Shared::default();
    let mut session = Session::start(subject.into_parts(), 1000, tally.clone());
    let pid = session.pid();
    let started = until(START, || telegram.is_polling() && discord.is_ready()).await;
    assert!(
        started,
        "airlock did not reach both fakes within {START:?} (polling: {}, gateway ready: {})",
        telegram.is_polling(),
        discord.is_ready()
    );
    if !sample::has_dbstat(&home) {
        println!("note: SQLite's dbstat is not available here: no bytes per table");
    }

    let start = Instant::now();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let sampling = tokio::spawn(sampler(
        pid,
        home.clone(),
        tally.clone(),
        start,
        Duration::from_secs(config.every),
        stop_rx,
    ));

    let ticks = config.secs * (1000 / TICK.as_millis() as u64);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let (mut telegram_next, mut discord_next) = (1u64, DISCORD_FIRST_ID);
    let mut replies = 0u64;
    let mut skipped = 0u64;
    for n in 0..ticks {
        tick.tick().await;
        if tally.lock().closed {
            break;
        }
        let k = (n / 2) as usize;
        let text = format!("soak message {n}: the quick brown fox jumps over the lazy dog");
        if n % 2 == 0 {
            let chat = TELEGRAM_CHATS[k % TELEGRAM_CHATS.len()];
            let id = telegram_next;
            telegram_next += 1;
            tally.lock().injected(id.to_string());
            telegram.inject_update(telegram_message(id, chat, &text));
        } else {
            let (user, dm) = DISCORD_USERS[k % DISCORD_USERS.len()];
            let id = discord_next.to_string();
            discord_next += 1;
            tally.lock().injected(id.clone());
            let m = payloads::dm_message(&id, dm, payloads::user(user, "soak"), &text);
            discord.dispatch("MESSAGE_CREATE", m);
        }
        if n % REPLY_EVERY == REPLY_EVERY / 2 {
            // Alternate platforms; within one, round robin over the chats
            // something was delivered from.
            let platform = if replies.is_multiple_of(2) {
                "telegram:"
            } else {
                "discord:"
            };
            let chats: Vec<String> = tally
                .lock()
                .delivered_chats
                .iter()
                .filter(|c| c.starts_with(platform))
                .cloned()
                .collect();
            if chats.is_empty() {
                skipped += 1;
            } else {
                let chat = &chats[(replies / 2) as usize % chats.len()];
                session.reply(chat, &format!("soak reply {replies}")).await;
            }
            replies += 1;
        }
    }
    let load_secs = start.elapsed().as_secs_f64();

    // Let the last messages and answers arrive.
    let drained = until(DRAIN, || {
        let t = tally.lock();
        t.closed || (t.missing() == 0 && t.unanswered() == 0)
    })
    .await;
    let _ = stop_tx.send(true);
    let table = sampling.await.expect("sampler");
    let died = tally.lock().closed;
    let status = session.stop(Duration::from_secs(10)).await;

    // The fakes' view of what was sent.
    let telegram_sent = telegram
        .calls_to("sendMessage")
        .iter()
        .filter(|c| c.fault.is_none())
        .count() as u64;
    let discord_sent = discord
        .calls_to("POST", "/channels/{}/messages")
        .iter()
        .filter(|c| c.fault.is_none())
        .count() as u64;

    std::fs::write(config.out.join("soak.csv"), table.to_csv()).expect("soak.csv");
    println!("csv: {}", config.out.join("soak.csv").display());
    if let Err(e) = plot::write(&table, &config.out, &title(load_secs)) {
        println!("plot failed: {e}");
    }

    let t = tally.lock();
    println!();
    println!("load: {load_secs:.1} s");
    println!(
        "messages: {} injected, {} notifications, {} missing, {} duplicated, {} unexpected",
        t.injected,
        t.received,
        t.missing(),
        t.duplicates,
        t.unexpected
    );
    println!(
        "replies: {} written ({} ticks skipped before any chat was delivered), {} ok, {} failed, \
         {} unanswered; the fakes saw {} (Telegram sendMessage {telegram_sent}, Discord POST \
         messages {discord_sent})",
        t.replies_sent,
        skipped,
        t.replies_ok,
        t.replies_failed,
        t.unanswered(),
        telegram_sent + discord_sent
    );
    println!(
        "Telegram updates not acknowledged at the end: {}",
        telegram.pending_updates()
    );
    println!(
        "airlock exit: {}",
        status.map_or("killed after 10 s".to_owned(), |s| s.to_string())
    );
    println!();
    let warm = config.warm_secs();
    print!("{}", trend::render(&trend::trends(&table, warm), warm));

    let mut problems = Vec::new();
    if died {
        problems.push("airlock closed its stdout during the run".to_owned());
    }
    if !drained {
        problems.push(format!("not drained {DRAIN:?} after the load ended"));
    }
    if t.missing() > 0 {
        problems.push(format!(
            "{} messages never arrived (first: {:?})",
            t.missing(),
            t.some_missing()
        ));
    }
    if t.duplicates > 0 {
        problems.push(format!("{} messages arrived twice", t.duplicates));
    }
    if t.unexpected > 0 {
        problems.push(format!("{} notifications of unknown ids", t.unexpected));
    }
    if t.replies_failed > 0 || t.unanswered() > 0 {
        problems.push(format!(
            "{} replies failed, {} unanswered: {:?}",
            t.replies_failed,
            t.unanswered(),
            t.failures
        ));
    }
    if telegram_sent + discord_sent != t.replies_ok {
        problems.push(format!(
            "the fakes saw {} messages sent for {} replies answered ok",
            telegram_sent + discord_sent,
            t.replies_ok
        ));
    }
    if status.is_some_and(|s| !s.success()) {
        problems.push(format!("airlock exited with {}", status.unwrap()));
    }
    if problems.is_empty() {
        println!("\nOK: every message arrived once, every reply was sent once");
        true
    } else {
        println!("\nFAILED:");
        for p in &problems {
            println!("  {p}");
        }
        false
    }
}
