//! The adapter written in Python (`examples/python-adapter`, built with
//! componentize-py) beside a Rust adapter of the same role (the bundled
//! `webhook`, built with the guest SDK), in the same run: component size,
//! cold load (cranelift compile) and warm load (compiled-component cache),
//! a new instance's start, its linear memory, the process memory an
//! instance adds, and one inbound request through the sandbox.
//!
//! Run with `cargo bench -p airlock --bench python_adapter`; it builds the
//! Python component first (`examples/python-adapter/build.sh`, which needs
//! python3 and installs componentize-py from PyPI under `target/`).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use airlock::bindings::types::IncomingRequest;
use airlock::catalog::Candidate;
use airlock::home::AirlockHome;
use airlock::host::Host;
use airlock::runtime::cache::{CacheOutcome, ComponentCache};

const COLD_ROUNDS: usize = 3;
const WARM_ROUNDS: usize = 9;
const STARTS: usize = 9;
const REQUESTS: usize = 300;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn percentile(mut v: Vec<Duration>, p: usize) -> Duration {
    v.sort();
    v[(v.len() * p / 100).min(v.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Resident set of this process, KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Figures of one adapter.
struct Row {
    name: &'static str,
    wasm_kib: usize,
    cwasm_kib: u64,
    cold: Duration,
    warm: Duration,
    start: Duration,
    memory_start_kib: usize,
    memory_after_kib: usize,
    rss_kib: u64,
    request_p50: Duration,
    request_p99: Duration,
}

fn build_python(out: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    eprintln!("building the Python adapter (examples/python-adapter/build.sh)…");
    let status = Command::new(root.join("examples/python-adapter/build.sh"))
        .arg(out)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run examples/python-adapter/build.sh");
    assert!(
        status.success(),
        "examples/python-adapter/build.sh failed (it needs python3 with venv, and PyPI)"
    );
}

fn measure(
    host: &Host,
    tmp: &Path,
    rt: &tokio::runtime::Runtime,
    c: &Candidate,
    label: &'static str,
) -> Row {
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut cwasm_kib = 0;
    for round in 0..COLD_ROUNDS.max(1) {
        let dir = tmp.join(format!("cache-{}-{round}", c.name));
        std::fs::create_dir_all(&dir).unwrap();
        let cache = cap_std::fs::Dir::open_ambient_dir(&dir, cap_std::ambient_authority()).unwrap();
        let cold_host = host.alongside(ComponentCache::new(cache)).unwrap();
        let t = Instant::now();
        let loaded = cold_host.load(c).expect("cold load");
        cold.push(t.elapsed());
        assert_eq!(loaded.cache, CacheOutcome::Compiled);
        cwasm_kib = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum::<u64>()
            / 1024;
        for _ in 0..WARM_ROUNDS.div_ceil(COLD_ROUNDS) {
            let t = Instant::now();
            let loaded = cold_host.load(c).expect("warm load");
            warm.push(t.elapsed());
            assert_eq!(loaded.cache, CacheOutcome::Hit);
        }
    }

    let loaded = host.load(c).expect("load");
    let settings = vec![("port".to_string(), "8790".to_string())];
    let mut starts = Vec::new();
    let mut handles = Vec::new();
    let before = rss_kib();
    for _ in 0..STARTS {
        let t = Instant::now();
        let handle = host.spawn_adapter(&loaded, None).expect("spawn");
        rt.block_on(handle.start(settings.clone())).expect("start");
        starts.push(t.elapsed());
        handles.push(handle);
    }
    // What one live instance adds to the process, averaged over STARTS.
    let rss_kib = rss_kib().saturating_sub(before) / STARTS as u64;
    let handle = handles.pop().unwrap();
    drop(handles);
    let memory_start = rt.block_on(handle.memory_bytes()).expect("live instance");

    let mut requests = Vec::with_capacity(REQUESTS);
    for i in 0..REQUESTS {
        let body = format!(r#"{{"chat":"ops","user":"Ada","user_id":"42","text":"message {i}"}}"#);
        let request = IncomingRequest {
            method: "POST".into(),
            path: "/".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into_bytes(),
        };
        let t = Instant::now();
        let reply = rt
            .block_on(handle.on_http_request(request))
            .expect("request");
        requests.push(t.elapsed());
        assert_eq!(
            reply.batch.events.len(),
            1,
            "{label}: {}",
            String::from_utf8_lossy(&reply.response.body)
        );
    }
    let memory_after = rt.block_on(handle.memory_bytes()).expect("live instance");
    Row {
        name: label,
        wasm_kib: c.wasm.len() / 1024,
        cwasm_kib,
        cold: median(cold),
        warm: median(warm),
        start: median(starts),
        memory_start_kib: memory_start / 1024,
        memory_after_kib: memory_after / 1024,
        rss_kib,
        request_p50: percentile(requests.clone(), 50),
        request_p99: percentile(requests, 99),
    }
}

fn main() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let home = AirlockHome::open(tmp.path().join("home")).expect("home");
    let adapters = tmp.path().join("home/adapters");
    std::fs::create_dir_all(&adapters).unwrap();
    build_python(&adapters.join("pyinbox.wasm"));
    let manifest =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/python-adapter/pyinbox.toml");
    std::fs::copy(manifest, adapters.join("pyinbox.toml")).unwrap();
    let host = Host::open(home).expect("host");
    let (candidates, problems) = host.candidates().expect("candidates");
    assert!(problems.is_empty(), "{problems:?}");
    let find = |name: &str| candidates.iter().find(|c| c.name == name).expect(name);
    let (python, rust) = (find("pyinbox"), find("webhook"));
    airlock::approvals::approve(
        &host.db,
        "pyinbox",
        &python.wasm_sha256(),
        &python.manifest_sha256(),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Adapter actors are tokio tasks.
    let _runtime = rt.enter();

    let rows = [
        measure(&host, tmp.path(), &rt, rust, "Rust (webhook)"),
        measure(&host, tmp.path(), &rt, python, "Python (pyinbox)"),
    ];
    let [r, p] = &rows;
    let line = |what: &str, rust: String, python: String, ratio: f64| {
        println!("| {what:<38} | {rust:>16} | {python:>16} | {ratio:>8.1} |");
    };
    println!(
        "| {:<38} | {:>16} | {:>16} | {:>8} |",
        "", r.name, p.name, "Py / Rs"
    );
    println!("|{:-<40}|{:->18}|{:->18}|{:->10}|", "", ":", ":", ":");
    // One row per figure: both sides, and Python's over Rust's.
    let kib_row = |what: &str, of: fn(&Row) -> f64| {
        let (a, b) = (of(r), of(p));
        line(
            what,
            format!("{a:.0} KiB"),
            format!("{b:.0} KiB"),
            b / a.max(1.0),
        );
    };
    let time_row = |what: &str, micros: bool, of: fn(&Row) -> Duration| {
        let show = |d: Duration| match micros {
            true => format!("{:.0} µs", d.as_secs_f64() * 1e6),
            false => format!("{:.2} ms", ms(d)),
        };
        let (a, b) = (of(r), of(p));
        line(what, show(a), show(b), ms(b) / ms(a));
    };
    kib_row("component (.wasm)", |x| x.wasm_kib as f64);
    kib_row("compiled (cache entry)", |x| x.cwasm_kib as f64);
    time_row("cold load (compile), median", false, |x| x.cold);
    time_row("warm load (cache), median", false, |x| x.warm);
    time_row("new instance + start, median", false, |x| x.start);
    kib_row("linear memory after start", |x| x.memory_start_kib as f64);
    kib_row(&format!("linear memory after {REQUESTS} requests"), |x| {
        x.memory_after_kib as f64
    });
    kib_row("process RSS one instance adds", |x| x.rss_kib as f64);
    time_row("inbound request p50", true, |x| x.request_p50);
    time_row("inbound request p99", true, |x| x.request_p99);
    println!(
        "(cold: median of {COLD_ROUNDS}; warm: of {WARM_ROUNDS}; starts: of {STARTS}; requests: {REQUESTS} each, \
         one instance, through the actor as `serve` calls it)"
    );
}
