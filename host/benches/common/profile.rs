//! Profiling aid for one phase of a benchmark: with `VAR="perf stat"` (or
//! `perf record -g`) set, that command runs on every subject over the
//! phase, writing `/tmp/perf-NAME.txt`. The variables: `BENCH_PERF_LATENCY`
//! (the latency samples), `BENCH_PERF_BURST` (the bursts) and
//! `BENCH_PERF_REPLY` (the replies).

use std::time::Duration;

/// Starts `$var`'s command on each `(name, pid)`, if `var` is set.
pub async fn start(var: &str, subjects: &[(&str, u32)]) {
    let Ok(cmd) = std::env::var(var) else {
        return;
    };
    for (name, pid) in subjects {
        let _ = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{cmd} -p {pid} -o /tmp/perf-{name}.txt &"))
            .status();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// Ends what [`start`] started for `var`.
pub async fn stop(var: &str) {
    if std::env::var_os(var).is_some() {
        let _ = std::process::Command::new("pkill")
            .args(["-INT", "perf"])
            .status();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
