//! The phases a gateway platform's benchmark (Discord, Slack) runs on its
//! two sides, airlock and the native bridge, taking turns: start-up with a
//! cold and a warm cache, then, on the running subjects, inbound latency,
//! bursts, memory and the reply round trip. Each benchmark says how one
//! side starts, sends one message and sends a burst; this module says how
//! often, in which order, and what is recorded.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::figures::{Figures, order};
use super::profile;
use super::subject::{Kind, Subject};

/// Samples thrown away before latency and reply samples are kept.
pub const WARMUP: usize = 20;
pub const LATENCY_SAMPLES: usize = 400;
pub const REPLY_SAMPLES: usize = 300;
/// Messages in one burst, and bursts per side.
pub const BURST: usize = 500;
pub const BURSTS: usize = 5;
/// Start-ups per side (and per cache state for airlock).
pub const STARTS: usize = 5;

/// One side of a benchmark: a subject's kind, its state directory and
/// figures, and how it is driven on its fake platform.
pub trait Side {
    fn kind(&self) -> Kind;
    /// The side's name, for profiles (`/tmp/perf-NAME.txt`).
    fn name(&self) -> &str {
        match self.kind() {
            Kind::Airlock => "Airlock",
            Kind::Bridge => "Bridge",
        }
    }
    fn home(&self) -> &Path;
    fn figures(&mut self) -> &mut Figures;
    /// Spawn until the platform sees the subject connect.
    async fn start_time(&self, home: &Path) -> Duration;
    /// One message in, until the subject reports it.
    async fn latency(&mut self, s: &mut Subject) -> Duration;
    /// [`BURST`] messages in, until the subject reports the last; msg/s.
    async fn burst(&mut self, s: &mut Subject) -> f64;
}

/// Start-up, alternating between the sides: airlock cold (in the state
/// directory `fresh(i, side)` makes) and warm, the bridge warm.
pub async fn start_up<S: Side>(sides: &mut [S], fresh: impl Fn(usize, &S) -> PathBuf) {
    for i in 0..STARTS {
        for side in sides.iter_mut() {
            if side.kind() == Kind::Airlock {
                let cold = side.start_time(&fresh(i, side)).await;
                side.figures().start_cold.push(cold);
                if i == 0 {
                    // Fill the cache of the warm home.
                    side.start_time(side.home()).await;
                }
            }
            let warm = side.start_time(side.home()).await;
            side.figures().start_warm.push(warm);
        }
    }
}

/// On running `subjects`: memory idle, latency, bursts, memory after them,
/// and the reply round trip to `chat` (qualified for airlock, native for
/// the bridge); then the subjects stop.
pub async fn measure<S: Side>(sides: &mut [S], mut subjects: Vec<Subject>, chat: (&str, Value)) {
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (side, s) in sides.iter_mut().zip(&subjects) {
        side.figures().rss_idle_kb = s.rss_kb();
    }
    let pids: Vec<u32> = subjects.iter().map(Subject::pid).collect();
    let names: Vec<String> = sides.iter().map(|s| s.name().to_owned()).collect();
    let named: Vec<(&str, u32)> = names.iter().map(String::as_str).zip(pids).collect();
    profile::start("BENCH_PERF_LATENCY", &named).await;
    for i in 0..WARMUP + LATENCY_SAMPLES {
        for k in order(i) {
            let took = sides[k].latency(&mut subjects[k]).await;
            if i >= WARMUP {
                sides[k].figures().latencies.push(took);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    profile::stop("BENCH_PERF_LATENCY").await;
    profile::start("BENCH_PERF_BURST", &named).await;
    for i in 0..BURSTS {
        for k in order(i) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let rate = sides[k].burst(&mut subjects[k]).await;
            sides[k].figures().bursts.push(rate);
        }
    }
    profile::stop("BENCH_PERF_BURST").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (side, s) in sides.iter_mut().zip(&subjects) {
        side.figures().rss_burst_kb = s.rss_kb();
    }
    profile::start("BENCH_PERF_REPLY", &named).await;
    for i in 0..WARMUP + REPLY_SAMPLES {
        for k in order(i) {
            let t = Instant::now();
            subjects[k].reply(chat.0, chat.1.clone(), "pong").await;
            if i >= WARMUP {
                sides[k].figures().replies.push(t.elapsed());
            }
        }
    }
    profile::stop("BENCH_PERF_REPLY").await;
    for s in subjects {
        s.stop().await;
    }
}
