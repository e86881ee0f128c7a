//! Hostile components against the runtime: each is contained, and the host
//! keeps serving.

use std::time::{Duration, Instant};

use airlock::runtime::actor::Health;
use airlock::runtime::call_error::CallError;

use crate::support::*;

const BUSY_LOOP: &str = "[limits]\ncpu_ms = 50\nwall_ms = 5000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_is_interrupted_and_others_keep_serving() {
    let home = TempHome::new();
    home.drop_in(
        "busy-loop",
        &fixture_wasm("busy_loop"),
        &manifest("busy-loop", BUSY_LOOP),
    );
    home.drop_in("probe", &fixture_wasm("probe"), &manifest("probe", ""));
    let (_host, busy) = start_adapter(&home, "busy-loop").await;
    let (_host2, probe) = start_adapter(&home, "probe").await;
    assert_eq!(
        busy.send(command("ok")).await.unwrap().message_ids,
        vec!["ok"]
    );

    let started = Instant::now();
    let looping = tokio::spawn({
        let busy = busy.clone();
        async move { busy.send(command("spin")).await }
    });
    // While the loop burns its budget, another adapter answers.
    let other = probe.describe().await;
    assert!(other.is_ok(), "{other:?}");
    let err = looping.await.unwrap().unwrap_err();
    assert!(matches!(err, CallError::CpuBudget { .. }), "{err}");
    assert!(err.to_string().contains("CPU budget of 50ms"), "{err}");
    // Interrupted by the CPU budget, long before the 5 s wall-clock timeout.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // The instance was replaced; the adapter serves again.
    assert_eq!(
        busy.send(command("ok")).await.unwrap().message_ids,
        vec!["ok"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_of_host_calls_is_interrupted_too() {
    let home = TempHome::new();
    home.drop_in(
        "busy-loop",
        &fixture_wasm("busy_loop"),
        &manifest("busy-loop", BUSY_LOOP),
    );
    let (_host, busy) = start_adapter(&home, "busy-loop").await;
    let started = Instant::now();
    let err = busy.send(command("spin-host")).await.unwrap_err();
    assert!(matches!(err, CallError::CpuBudget { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        busy.send(command("ok")).await.unwrap().message_ids,
        vec!["ok"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_crashes_quarantine_only_that_adapter() {
    let home = TempHome::new();
    home.drop_in(
        "busy-loop",
        &fixture_wasm("busy_loop"),
        &manifest("busy-loop", BUSY_LOOP),
    );
    home.drop_in("probe", &fixture_wasm("probe"), &manifest("probe", ""));
    let (_h1, busy) = start_adapter(&home, "busy-loop").await;
    let (_h2, probe) = start_adapter(&home, "probe").await;
    for _ in 0..airlock::runtime::actor::MAX_CRASHES {
        assert!(busy.send(command("spin")).await.is_err());
    }
    let err = busy.send(command("ok")).await.unwrap_err();
    assert!(matches!(err, CallError::Quarantined { .. }), "{err}");
    assert!(err.to_string().contains("crashed 5 times"), "{err}");
    assert!(matches!(busy.health().await, Health::Quarantined(_)));
    assert!(probe.describe().await.is_ok());
    assert_eq!(probe.health().await, Health::Running { recent_crashes: 0 });
}

#[tokio::test]
async fn memory_is_capped() {
    let home = TempHome::new();
    home.drop_in(
        "hog",
        &fixture_wasm("hog"),
        &manifest("hog", "[limits]\nmemory_mib = 16"),
    );
    let (_h, hog) = start_adapter(&home, "hog").await;
    let reached: u64 = hog.send(command("hog")).await.unwrap().message_ids[0]
        .parse()
        .unwrap();
    assert!(reached <= 16 << 20, "grew to {reached} bytes");
    assert!(reached >= 4 << 20, "grew to only {reached} bytes");

    let err = hog.send(command("hog-panic")).await.unwrap_err();
    assert!(matches!(err, CallError::Trap { .. }), "{err}");
    // The crash names the limit it ran into, and how to raise it.
    assert!(err.to_string().contains("limit of 16 MiB"), "{err}");
    assert!(err.to_string().contains("raise `memory_mib`"), "{err}");
    // A fresh instance serves again.
    assert!(hog.send(command("hog")).await.is_ok());
}

#[tokio::test]
async fn nothing_of_the_machine_is_visible() {
    let home = TempHome::new();
    home.drop_in("probe", &fixture_wasm("probe"), &manifest("probe", ""));
    let (_h, probe) = start_adapter(&home, "probe").await;
    let report = probe.send(command("probe")).await.unwrap().message_ids;
    assert!(report.contains(&"env=0".to_string()), "{report:?}");
    assert!(report.contains(&"args=0".to_string()), "{report:?}");
    assert!(report.contains(&"stdin=0".to_string()), "{report:?}");
    assert!(
        !report
            .iter()
            .any(|r| r.contains("PATH") || r.contains("HOME")),
        "{report:?}"
    );
}

/// Child half of `stdout_spam_never_reaches_stdout`, which runs this test
/// binary again with `AIRLOCK_SPAM_CHILD` set and inspects its stdout and
/// stderr; without that variable there is nothing to do here.
#[tokio::test]
async fn spam_child() {
    let Some(home) = child_home("AIRLOCK_SPAM_CHILD") else {
        return;
    };
    // 20 MiB through the host's log stream is slow in an unoptimised test
    // build; this test is about where the bytes go, not the CPU budget.
    home.drop_in(
        "spam",
        &fixture_wasm("spam"),
        &manifest("spam", "[limits]\ncpu_ms = 5000\nwall_ms = 60000"),
    );
    let (_h, spam) = start_adapter(&home, "spam").await;
    assert_eq!(
        spam.send(command("spam")).await.unwrap().message_ids,
        vec!["done"]
    );
}

#[test]
fn stdout_spam_never_reaches_stdout() {
    let (stdout, stderr) = run_child("sandbox::spam_child", "AIRLOCK_SPAM_CHILD");
    // 20 MiB were written by the guest; stdout holds only the test runner's lines.
    assert!(stdout.len() < 4096, "stdout grew to {} bytes", stdout.len());
    // The log got a bounded share of it, and says the rest was discarded.
    assert!(
        stderr.len() < 2 * airlock::caps::log::OUTPUT_BUDGET + 64 * 1024,
        "stderr grew to {} bytes",
        stderr.len()
    );
    assert!(
        stderr.contains("further output from this instance is discarded"),
        "{}",
        &stderr[..stderr.len().min(2000)]
    );
}

/// Child half of `guest_caused_host_warnings_are_bounded`, run as a separate
/// process like `spam_child`; without `AIRLOCK_TIMER_CHILD` it does nothing.
#[tokio::test]
async fn bad_timers_child() {
    let Some(home) = child_home("AIRLOCK_TIMER_CHILD") else {
        return;
    };
    home.drop_in(
        "stateful",
        &fixture_wasm("stateful"),
        &manifest(
            "stateful",
            "kv_quota_bytes = 8192\n[limits]\ncpu_ms = 10000\nwall_ms = 60000",
        ),
    );
    let (_h, guest) = start_adapter_with(&home, "stateful", QUIET_TIMER).await;
    for _ in 0..2 {
        assert_eq!(
            guest.send(command("bad-timers")).await.unwrap().message_ids,
            vec!["done"]
        );
    }
    // The host kept serving.
    assert_eq!(
        guest.send(command("count")).await.unwrap().message_ids,
        vec!["0"]
    );
}

#[test]
fn guest_caused_host_warnings_are_bounded() {
    let (_, stderr) = run_child("sandbox::bad_timers_child", "AIRLOCK_TIMER_CHILD");
    // 200,000 ignored timers: a warning each would be megabytes.
    let timer_lines = stderr.lines().filter(|l| l.contains("set-timer")).count();
    assert!(timer_lines <= 50, "{timer_lines} set-timer warnings");
    assert!(
        stderr.len() < 32 * 1024,
        "stderr grew to {} bytes",
        stderr.len()
    );
    assert!(
        stderr.contains("further ones are counted"),
        "{}",
        &stderr[..stderr.len().min(2000)]
    );
}

/// In a child half: a fresh home and the log on stderr when `switch` is set
/// (the parent runs it so), else `None` and the test does nothing.
fn child_home(switch: &str) -> Option<TempHome> {
    std::env::var_os(switch)?;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .try_init();
    Some(TempHome::new())
}

/// Runs the test `name` of this binary in a child process with `switch` set
/// (the child half does nothing without it) and the log at info; checks that
/// it passed and returns its stdout and stderr.
fn run_child(name: &str, switch: &str) -> (String, String) {
    fixtures_dir();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(switch, "1")
        .env("AIRLOCK_LOG", "info")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "child failed: {stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}");
    (stdout, stderr)
}
