//! airlock against a minimal native teloxide bridge, side by side in one run:
//! both processes run at once, each on its own fake Bot API on loopback, and
//! their samples are taken in alternation, so that whatever else the machine
//! does falls on both alike.
//!
//! * inbound latency, p50 and p99: an update injected into the fake until its
//!   line is read from the subject's stdout (airlock: the
//!   `notifications/claude/channel` a session receives);
//! * burst: 500 updates injected at once, until the 500th line (the median
//!   of several bursts);
//! * reply round trip, p50: a `reply` tool call (airlock) or a JSON line
//!   (bridge) until the answer after Telegram's `sendMessage`;
//! * resident memory, idle and after the bursts;
//! * start-up: process spawn until the fake sees the first `getUpdates`
//!   (airlock with a cold and a warm compiled-component cache).
//!
//! Run with `cargo bench -p airlock --bench telegram`. Ratios are taken
//! within the run; absolute figures move with the machine.
//!
//! `BENCH_AUDIT=1` measures the cost of the audit trail instead: the same
//! figures, taken the same way, of airlock with the trail as shipped
//! (`[audit]` absent: on, content kept as a digest) against airlock with
//! `[audit] enabled = false`. It is a mode of this bench rather than a bench
//! of its own because everything but the two configurations is the same.
//! `BENCH_VERSUS="LINES"` does the same for any configuration: airlock as
//! shipped against airlock with LINES added to its `airlock.toml` (for
//! example `[components.redact]\nenabled = false` for the outbound filter).
//! `BENCH_AIRLOCK_CONFIG="LINES"` keeps the teloxide bridge as the other side
//! and adds LINES to airlock's `airlock.toml`: how close airlock comes to
//! the bridge without some of what it does (for example `[audit]\nenabled =
//! false` and the redact filter off).

mod bridge;
#[path = "../common/figures.rs"]
mod figures;
#[path = "../common/profile.rs"]
mod profile;
#[path = "../common/subject.rs"]
mod subject;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fake_telegram::FakeTelegram;
use figures::{Figures, order, report, report_as, until};
use serde_json::json;
use subject::{Kind, Subject};

const TOKEN: &str = "123456789:AAEkBenchTokenForAirlockFakeBotApi12";
const CHAT: i64 = 111;
const WARMUP: usize = 20;
const LATENCY_SAMPLES: usize = 400;
const REPLY_SAMPLES: usize = 300;
const BURST: usize = 500;
const BURSTS: usize = 5;
const STARTS: usize = 5;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--bridge") {
        bridge::run(&args[2], &args[3]);
        return;
    }
    subject::block_on(run());
}

fn message(id: i64, text: &str) -> serde_json::Value {
    json!({"message": {"message_id": id, "date": 1_717_243_290,
        "from": {"id": CHAT, "is_bot": false, "first_name": "Alice", "username": "alice"},
        "chat": {"id": CHAT, "type": "private", "first_name": "Alice", "username": "alice"},
        "text": text}})
}

/// The two sides, first and second column of the table: which program,
/// the name their files go by, and extra `airlock.toml` lines.
fn pairing() -> [(Kind, &'static str, &'static str); 2] {
    if std::env::var_os("BENCH_AUDIT").is_some() {
        [
            (Kind::Airlock, "AuditOn", ""),
            (Kind::Airlock, "AuditOff", "[audit]\nenabled = false\n"),
        ]
    } else if let Ok(lines) = std::env::var("BENCH_VERSUS") {
        // What some configuration costs: airlock as shipped against
        // airlock with these `airlock.toml` lines.
        let lines: &'static str = Box::leak(format!("{lines}\n").into_boxed_str());
        [
            (Kind::Airlock, "Airlock", ""),
            (Kind::Airlock, "Versus", lines),
        ]
    } else {
        let lines = std::env::var("BENCH_AIRLOCK_CONFIG").unwrap_or_default();
        let lines: &'static str = Box::leak(format!("{lines}\n").into_boxed_str());
        [
            (Kind::Airlock, "Airlock", lines),
            (Kind::Bridge, "Bridge", ""),
        ]
    }
}

/// A state directory for airlock wired to `fake`, with Alice allowed and
/// `extra` appended to its configuration.
fn airlock_home(home: &Path, fake: &FakeTelegram, extra: &str) -> PathBuf {
    subject::secret(home, "TELEGRAM_BOT_TOKEN", TOKEN);
    let config = format!(
        "{}{}{extra}",
        subject::telegram_config(&fake.base_url()),
        subject::uncapped()
    );
    subject::write_home(home, &config, &[("telegram", &CHAT.to_string())]);
    home.to_path_buf()
}

/// One subject and its fake.
struct Side {
    kind: Kind,
    name: &'static str,
    /// Extra `airlock.toml` lines.
    config: &'static str,
    fake: FakeTelegram,
    home: PathBuf,
    figures: Figures,
    next_id: i64,
}

impl Side {
    fn spawn_at(&self, home: &Path) -> Subject {
        match self.kind {
            Kind::Airlock => Subject::airlock(home),
            Kind::Bridge => Subject::bridge(&[&self.fake.base_url(), TOKEN]),
        }
    }

    /// Spawn until the first getUpdates reaches the fake.
    async fn start_time(&self, home: &Path) -> Duration {
        let before = self.fake.calls_to("getUpdates").len();
        let started = Instant::now();
        let subject = self.spawn_at(home);
        until(|| self.fake.calls_to("getUpdates").len() > before).await;
        let took = started.elapsed();
        subject.stop().await;
        took
    }

    async fn latency(&mut self, s: &mut Subject) -> Duration {
        until(|| self.fake.is_polling()).await;
        tokio::time::sleep(Duration::from_millis(1)).await;
        let id = self.next_id;
        self.next_id += 1;
        let t = Instant::now();
        self.fake.inject_update(message(id, "ping"));
        let got = s.event().await;
        let took = t.elapsed();
        assert_eq!(got, id.to_string());
        took
    }

    async fn burst(&mut self, s: &mut Subject) -> f64 {
        until(|| self.fake.is_polling()).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let first = self.next_id;
        self.next_id += BURST as i64;
        let burst: Vec<_> = (0..BURST as i64)
            .map(|i| message(first + i, "burst"))
            .collect();
        let t = Instant::now();
        self.fake.inject_updates(burst);
        for _ in 0..BURST {
            s.event().await;
        }
        BURST as f64 / t.elapsed().as_secs_f64()
    }
}

/// Rows in the audit table of the airlock state directory `home`.
fn audit_rows(home: &Path) -> i64 {
    let db = rusqlite::Connection::open(home.join("airlock.db")).expect("airlock.db");
    db.query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
        .expect("audit table")
}

async fn run() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut sides = Vec::new();
    for (kind, name, config) in pairing() {
        let fake = FakeTelegram::start(TOKEN).await;
        let home = tmp.path().join(name);
        if kind == Kind::Airlock {
            airlock_home(&home, &fake, config);
        }
        sides.push(Side {
            kind,
            name,
            config,
            fake,
            home,
            figures: Figures::default(),
            next_id: 1,
        });
    }

    // Start-up, alternating; a cold cache needs a fresh state directory.
    for i in 0..STARTS {
        for side in &mut sides {
            if side.kind == Kind::Airlock {
                let fresh = airlock_home(
                    &tmp.path().join(format!("cold-{i}-{}", side.name)),
                    &side.fake,
                    side.config,
                );
                let cold = side.start_time(&fresh).await;
                side.figures.start_cold.push(cold);
                if i == 0 {
                    // Fill the cache of the warm home.
                    side.start_time(&side.home.clone()).await;
                }
            }
            let home = side.home.clone();
            let warm = side.start_time(&home).await;
            side.figures.start_warm.push(warm);
        }
    }

    let mut subjects = Vec::new();
    for side in &sides {
        side.fake.reset();
        let mut s = side.spawn_at(&side.home);
        s.handshake().await;
        until(|| side.fake.is_polling()).await;
        subjects.push(s);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (side, s) in sides.iter_mut().zip(&subjects) {
        side.figures.rss_idle_kb = s.rss_kb();
    }

    profile::start("BENCH_PERF_LATENCY", &named(&sides, &subjects)).await;
    for i in 0..WARMUP + LATENCY_SAMPLES {
        for k in order(i) {
            let took = sides[k].latency(&mut subjects[k]).await;
            if i >= WARMUP {
                sides[k].figures.latencies.push(took);
            }
        }
    }
    profile::stop("BENCH_PERF_LATENCY").await;
    profile::start("BENCH_PERF_BURST", &named(&sides, &subjects)).await;
    for i in 0..BURSTS {
        for k in order(i) {
            let rate = sides[k].burst(&mut subjects[k]).await;
            sides[k].figures.bursts.push(rate);
        }
    }
    profile::stop("BENCH_PERF_BURST").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (side, s) in sides.iter_mut().zip(&subjects) {
        side.figures.rss_burst_kb = s.rss_kb();
        if let Ok(path) = std::env::var("BENCH_SMAPS") {
            let smaps =
                std::fs::read_to_string(format!("/proc/{}/smaps", s.pid())).unwrap_or_default();
            std::fs::write(format!("{path}.{}", side.name), smaps).unwrap();
        }
    }
    profile::start("BENCH_PERF_REPLY", &named(&sides, &subjects)).await;
    for i in 0..WARMUP + REPLY_SAMPLES {
        for k in order(i) {
            let t = Instant::now();
            subjects[k]
                .reply(&format!("telegram:{CHAT}"), json!(CHAT), "pong")
                .await;
            if i >= WARMUP {
                sides[k].figures.replies.push(t.elapsed());
            }
        }
    }
    profile::stop("BENCH_PERF_REPLY").await;
    for s in subjects {
        s.stop().await;
    }
    if sides[1].kind == Kind::Bridge {
        report(
            &sides[0].figures,
            &sides[1].figures,
            ("teloxide", "first getUpdates", ""),
        );
        return;
    }
    if std::env::var_os("BENCH_VERSUS").is_some() {
        report_as(
            "as shipped",
            &sides[0].figures,
            &sides[1].figures,
            ("BENCH_VERSUS", "first getUpdates", ""),
        );
        return;
    }
    report_as(
        "audit on",
        &sides[0].figures,
        &sides[1].figures,
        ("audit off", "first getUpdates", ""),
    );
    // That the two sides differ as meant: rows on one, none on the other.
    let rows = [audit_rows(&sides[0].home), audit_rows(&sides[1].home)];
    println!(
        "audit rows written: {} (audit on), {} (audit off)",
        rows[0], rows[1]
    );
    assert!(rows[0] > 0 && rows[1] == 0, "{rows:?}");
}

/// Each side's name and its subject's pid, for [`profile`].
fn named<'a>(sides: &'a [Side], subjects: &[Subject]) -> Vec<(&'a str, u32)> {
    sides
        .iter()
        .zip(subjects)
        .map(|(side, s)| (side.name, s.pid()))
        .collect()
}
