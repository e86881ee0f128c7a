//! Several sessions on one bot (the hub) against one session alone, side by
//! side in one run, on the fake Bot API.
//!
//! The hub: two `airlock serve` processes on one state directory,
//! `--session api` (started first, so it holds the connection: it polls the
//! fake and stores every event) and `--session web`. Alice's chat is bound
//! to `api`, Bob's to `web`, with `airlock sessions route` as an operator
//! would. An event for `web` is stored by `api`'s process, which rings
//! `web`, which then reads it from the shared database and delivers it.
//!
//! The reference: one `airlock serve` on a state directory and fake of its
//! own, as before the hub.
//!
//! Measured: inbound latency, p50 and p99, from an update injected into a
//! fake until its `notifications/claude/channel` is read from the stdout of
//! (a) the session holding the connection, (b) the other session, and the
//! single session. Each round takes one sample of each, in turns, so that
//! whatever else the machine does falls on all three alike.
//!
//! Run with `cargo bench -p airlock --bench hub`; `BENCH_HUB_ROUNDS` sets
//! the number of rounds (300 by default, after 20 unmeasured ones). Ratios
//! are taken within the run; absolute figures move with the machine.

#[path = "../common/figures.rs"]
#[allow(dead_code)] // Shared with the platform benches; this one uses a part.
mod figures;
#[path = "../common/subject.rs"]
#[allow(dead_code)] // Shared with the platform benches; this one uses a part.
mod subject;

use std::path::Path;
use std::time::{Duration, Instant};

use fake_telegram::FakeTelegram;
use figures::{percentile, until};
use serde_json::{Value, json};
use subject::Subject;

const TOKEN: &str = "123456789:AAEkBenchTokenForAirlockFakeBotApi12";
/// Alice's user id, also her direct chat's: bound to the holder, `api`.
const ALICE: i64 = 111;
/// Bob's user id, also his direct chat's: bound to the other, `web`.
const BOB: i64 = 222;
/// The session that starts first and so holds the connection.
const HOLDER: &str = "api";
/// The session that does not.
const OTHER: &str = "web";
const WARMUP: usize = 20;
const DEFAULT_ROUNDS: usize = 300;

fn main() {
    subject::block_on(run());
}

/// A direct message from `from` (whose direct chat has the same id).
fn message(id: i64, from: i64, name: &str, text: &str) -> Value {
    json!({"message": {"message_id": id, "date": 1_717_243_290,
        "from": {"id": from, "is_bot": false, "first_name": name},
        "chat": {"id": from, "type": "private", "first_name": name},
        "text": text}})
}

/// Runs the airlock CLI on `home` with `args`; fails the bench if it fails.
fn cli(home: &Path, args: &[&str]) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(args)
        .env("AIRLOCK_HOME", home)
        .env_remove("AIRLOCK_LOG")
        .output()
        .expect("run airlock");
    assert!(
        out.status.success(),
        "airlock {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A state directory for airlock wired to `fake`, the ceilings lifted and
/// the senders `allowed` (through the CLI, as an operator does).
fn airlock_home(home: &Path, fake: &FakeTelegram, allowed: &[i64]) {
    subject::secret(home, "TELEGRAM_BOT_TOKEN", TOKEN);
    let config = subject::telegram_config(&fake.base_url()) + &subject::uncapped();
    // Allowed through the CLI, as an operator would.
    subject::write_home(home, &config, &[]);
    for id in allowed {
        cli(home, &["access", "allow", "telegram", &id.to_string()]);
    }
}

/// One column of the table: a session, the fake it is reached through and
/// the sender whose messages go to it.
struct Column {
    subject: Subject,
    /// Index into the fakes.
    fake: usize,
    from: i64,
    who: &'static str,
    latencies: Vec<Duration>,
}

/// Injects the next message for `column` once its fake's getUpdates is
/// held (as the telegram bench does, so every sample starts from the same
/// state) and times it until the session prints it.
async fn sample(column: &mut Column, fake: &FakeTelegram, id: i64) -> Duration {
    until(|| fake.is_polling()).await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    let t = Instant::now();
    fake.inject_update(message(id, column.from, column.who, "ping"));
    let got = column.subject.event().await;
    let took = t.elapsed();
    assert_eq!(got, id.to_string(), "{} got another message", column.who);
    took
}

async fn run() {
    let rounds = match std::env::var("BENCH_HUB_ROUNDS") {
        Ok(n) => n
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .expect("BENCH_HUB_ROUNDS: a positive number"),
        Err(_) => DEFAULT_ROUNDS,
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let fakes = [
        FakeTelegram::start(TOKEN).await,
        FakeTelegram::start(TOKEN).await,
    ];
    let (hub, alone) = (tmp.path().join("hub"), tmp.path().join("single"));
    airlock_home(&hub, &fakes[0], &[ALICE, BOB]);
    airlock_home(&alone, &fakes[1], &[ALICE]);

    // The holder first, polling before the other starts.
    let mut holder = Subject::airlock_with(&hub, &["--session", HOLDER]);
    holder.handshake().await;
    until(|| fakes[0].is_polling()).await;
    let mut other = Subject::airlock_with(&hub, &["--session", OTHER]);
    other.handshake().await;
    cli(
        &hub,
        &["sessions", "route", &format!("telegram:{ALICE}"), HOLDER],
    );
    cli(
        &hub,
        &["sessions", "route", &format!("telegram:{BOB}"), OTHER],
    );
    let mut single = Subject::airlock(&alone);
    single.handshake().await;
    until(|| fakes[1].is_polling()).await;

    let mut columns = [
        Column {
            subject: holder,
            fake: 0,
            from: ALICE,
            who: "Alice",
            latencies: Vec::new(),
        },
        Column {
            subject: other,
            fake: 0,
            from: BOB,
            who: "Bob",
            latencies: Vec::new(),
        },
        Column {
            subject: single,
            fake: 1,
            from: ALICE,
            who: "Alice",
            latencies: Vec::new(),
        },
    ];
    // Message ids are unique per fake, so a stray delivery cannot pass.
    let mut next_id = [1i64, 1];
    let started = Instant::now();
    for round in 0..WARMUP + rounds {
        for k in (0..3).map(|j| (round + j) % 3) {
            let fake = columns[k].fake;
            let id = next_id[fake];
            next_id[fake] += 1;
            let took = sample(&mut columns[k], &fakes[fake], id).await;
            if round >= WARMUP {
                columns[k].latencies.push(took);
            }
        }
    }
    let took = started.elapsed();
    for c in columns.iter_mut() {
        // A session the hub did not reach would have timed out above.
        assert_eq!(c.latencies.len(), rounds);
    }
    let [a, b, s] = columns;
    report(&a.latencies, &b.latencies, &s.latencies, rounds, took);
    for c in [a, b, s] {
        c.subject.stop().await;
    }
}

/// Prints p50 and p99 of each column and the ratios: the other session to
/// the holder, and each hub session to the single one.
fn report(a: &[Duration], b: &[Duration], s: &[Duration], rounds: usize, took: Duration) {
    let ms = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1000.0);
    let ratio = |x: Duration, y: Duration| format!("{:.2}", x.as_secs_f64() / y.as_secs_f64());
    println!(
        "{rounds} samples each, in {:.1} s with the warm-up; (a) the session holding the \
         connection, (b) the other session on the same state directory",
        took.as_secs_f64()
    );
    println!(
        "{:<26} {:>10} {:>10} {:>10} {:>9} {:>12} {:>12}",
        "", "(a) api", "(b) web", "single", "(b)/(a)", "(a)/single", "(b)/single"
    );
    for (name, p) in [
        ("inbound latency p50 (ms)", 50),
        ("inbound latency p99 (ms)", 99),
    ] {
        let (pa, pb, ps) = (percentile(a, p), percentile(b, p), percentile(s, p));
        println!(
            "{name:<26} {:>10} {:>10} {:>10} {:>9} {:>12} {:>12}",
            ms(pa),
            ms(pb),
            ms(ps),
            ratio(pb, pa),
            ratio(pa, ps),
            ratio(pb, ps)
        );
    }
}
