//! Crash testing the way crashes happen: `kill -9` at random moments over the
//! whole life of `airlock serve` (start-up, handshake, recovery, bursts),
//! many times per run, while messages keep arriving; then one last process
//! delivers the rest. Every message is counted: none may be lost, none may
//! reach the session twice.
//!
//! The client reads everything a process wrote to stdout before it died, as
//! Claude Code does. `AIRLOCK_CRASH_KILLS` sets the kills per run (default
//! [`DEFAULT_KILLS`]); `AIRLOCK_CRASH_SEED` replays a run (the seed is
//! printed); `AIRLOCK_CRASH_DEBUG=1` prints the stderr of every killed
//! process that delivered nothing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::session::*;

/// Kills per run in the test suite.
pub const DEFAULT_KILLS: usize = 20;
/// The earliest and latest kill after a start.
const KILL_AFTER: (Duration, Duration) = (Duration::from_millis(50), Duration::from_millis(1200));
/// Messages injected per second while processes come and go.
const RATE: u64 = 300;

/// What the harness needs of a platform fake.
pub trait Platform: Send + Sync + 'static {
    /// Sends message number `n` from an allowed sender, if the platform
    /// would take it now; returns whether it did (a gateway platform drops
    /// what arrives while no client is connected).
    fn inject(&self, n: i64) -> bool;
    /// `airlock serve` on this platform's state directory.
    fn serve(&self) -> tokio::process::Command;
    /// Waits until a process is connected to the platform (the first one,
    /// which warms the component cache).
    fn connected(&self) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// A small, seedable generator (xorshift64*): enough to spread kill times.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A duration in `[low, high)`.
    pub(crate) fn between(&mut self, (low, high): (Duration, Duration)) -> Duration {
        let span = (high - low).as_micros() as u64;
        low + Duration::from_micros(self.next() % span.max(1))
    }
}

/// The counts of a run.
#[derive(Debug, Default)]
struct Tally {
    kills: usize,
    injected: i64,
    /// Message number → times the session saw it.
    seen: BTreeMap<i64, u32>,
    /// Events written by each killed process, the warm-up one first.
    per_process: Vec<usize>,
}

impl Tally {
    fn lost(&self) -> Vec<i64> {
        (1..=self.injected)
            .filter(|n| !self.seen.contains_key(n))
            .collect()
    }

    fn twice(&self) -> Vec<(i64, u32)> {
        self.seen
            .iter()
            .filter(|(_, c)| **c > 1)
            .map(|(n, c)| (*n, *c))
            .collect()
    }
}

fn kills() -> usize {
    std::env::var("AIRLOCK_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_KILLS)
}

/// `AIRLOCK_CRASH_SEED` (to replay a run), else one from the clock.
pub(crate) fn seed() -> u64 {
    std::env::var("AIRLOCK_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            (t.as_nanos() as u64) | 1
        })
}

/// The message number in a channel event's meta, if it is one. An event
/// whose id maps to no injected number fails the run: uncounted, it would
/// pass for a lost message.
fn number(message: &serde_json::Value, id_of: fn(&str) -> Option<i64>) -> Option<i64> {
    if message["method"] != CHANNEL {
        return None;
    }
    let id = message["params"]["meta"]["message_id"].as_str();
    let n = id.and_then(id_of);
    assert!(
        n.is_some(),
        "a channel event whose message_id matches no injected message: {message}"
    );
    n
}

/// Reads a started process (handshake, then every event) until its stdout
/// ends; returns how many events it wrote, and its stderr.
fn reader(
    raw: Raw,
    seen: Arc<Mutex<BTreeMap<i64, u32>>>,
    id_of: fn(&str) -> Option<i64>,
) -> (
    tokio::task::JoinHandle<(usize, String)>,
    tokio::process::Child,
) {
    use tokio::io::AsyncWriteExt;
    let Raw {
        child,
        mut stdin,
        mut stdout,
        log,
        ..
    } = raw;
    let task = tokio::spawn(async move {
        let init = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "crash-test", "version": "1"}}});
        // A write to a process that is already dead fails: that is fine.
        if let Some(stdin) = stdin.as_mut() {
            let _ = stdin.write_all(format!("{init}\n").as_bytes()).await;
        }
        let mut written = 0;
        while let Ok(Some(line)) = stdout.next_line().await {
            let m: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout carried a non-JSON line ({e}): {line:?}"));
            if m["id"] == 1
                && let Some(stdin) = stdin.as_mut()
            {
                let line = "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n";
                let _ = stdin.write_all(line.as_bytes()).await;
                continue;
            }
            if let Some(n) = number(&m, id_of) {
                written += 1;
                *seen.lock().unwrap().entry(n).or_default() += 1;
            }
        }
        (written, log.text())
    });
    (task, child)
}

/// Runs the crash test on `platform`: random kills while messages arrive,
/// then a last process that delivers the rest. `id_of` turns a delivered
/// `message_id` into the injected number. Fails on a message lost or
/// repeated, and on a run in which no killed process delivered anything.
pub async fn run(platform: Arc<dyn Platform>, id_of: fn(&str) -> Option<i64>) {
    let kills = kills();
    let seed = seed();
    eprintln!("crash test: {kills} kills, AIRLOCK_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let seen = Arc::new(Mutex::new(BTreeMap::new()));
    let next = Arc::new(AtomicI64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let injector = {
        let (platform, next, stop) = (platform.clone(), next.clone(), stop.clone());
        tokio::spawn(async move {
            let period = Duration::from_micros(1_000_000 / RATE);
            let mut tick = tokio::time::interval(period);
            while !stop.load(Ordering::SeqCst) {
                tick.tick().await;
                let n = next.load(Ordering::SeqCst) + 1;
                if platform.inject(n) {
                    next.store(n, Ordering::SeqCst);
                }
            }
        })
    };
    let mut tally = Tally {
        kills,
        ..Tally::default()
    };
    // A first process compiles the adapter into the component cache (a
    // process killed while compiling leaves it cold, and on a busy machine
    // every later one would die compiling too), then dies like the others.
    {
        let (task, mut child) = reader(Raw::start_command(platform.serve()), seen.clone(), id_of);
        platform.connected().await;
        let _ = child.start_kill();
        let _ = child.wait().await;
        let (written, _) = task.await.unwrap();
        tally.per_process.push(written);
    }
    // The next process starts at once, while the killed one may still be
    // dying; each killed one is read to its end in the background.
    let mut ended = Vec::new();
    for round in 0..kills {
        let raw = Raw::start_command(platform.serve());
        let (task, mut child) = reader(raw, seen.clone(), id_of);
        tokio::time::sleep(rng.between(KILL_AFTER)).await;
        let _ = child.start_kill();
        ended.push(tokio::spawn(async move {
            let _ = child.wait().await;
            let (written, log) = tokio::time::timeout(Duration::from_secs(60), task)
                .await
                .unwrap_or_else(|_| panic!("round {round}: stdout never ended after the kill"))
                .unwrap();
            assert!(
                !log.contains("panicked"),
                "round {round}: the host panicked:\n{log}"
            );
            if written == 0 && std::env::var("AIRLOCK_CRASH_DEBUG").is_ok() {
                eprintln!("round {round} delivered nothing; its stderr:\n{log}");
            }
            written
        }));
    }
    for task in ended {
        tally.per_process.push(task.await.unwrap());
    }
    stop.store(true, Ordering::SeqCst);
    injector.await.unwrap();
    tally.injected = next.load(Ordering::SeqCst);

    // The last process delivers everything that is left.
    let mut last = Raw::start_command(platform.serve());
    last.initialize().await;
    last.initialized().await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let complete = |seen: &BTreeMap<i64, u32>| (1..=tally.injected).all(|n| seen.contains_key(&n));
    while !complete(&seen.lock().unwrap()) && Instant::now() < deadline {
        let Some(m) = last.next_within(Duration::from_secs(5)).await else {
            continue;
        };
        if let Some(n) = number(&m, id_of) {
            *seen.lock().unwrap().entry(n).or_default() += 1;
        }
    }
    // Anything delivered twice would come now.
    while let Some(m) = last.next_within(Duration::from_millis(1500)).await {
        if let Some(n) = number(&m, id_of) {
            *seen.lock().unwrap().entry(n).or_default() += 1;
        }
    }
    let _ = last.child.start_kill();
    tally.seen = std::mem::take(&mut *seen.lock().unwrap());
    let lost = tally.lost();
    let twice = tally.twice();
    eprintln!(
        "crash test: {} kills, {} messages, {} lost, {} delivered twice; events per killed process: {:?}",
        tally.kills,
        tally.injected,
        lost.len(),
        twice.len(),
        tally.per_process
    );
    assert!(
        twice.is_empty(),
        "delivered more than once (seed {seed}): {twice:?}; last stderr:\n{}",
        last.log.text()
    );
    assert!(
        lost.is_empty(),
        "never delivered (seed {seed}): {lost:?}; last stderr:\n{}",
        last.log.text()
    );
    assert!(tally.injected > 0);
    assert!(
        tally.per_process.iter().any(|n| *n > 0),
        "no killed process delivered anything: the kills tested nothing"
    );
}
