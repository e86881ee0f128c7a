//! What the platform benchmarks measure of each subject, and the table they
//! print: airlock's figure, the bridge's, and their ratio.

use std::time::{Duration, Instant};

/// Figures of one subject.
#[derive(Debug, Default)]
pub struct Figures {
    pub latencies: Vec<Duration>,
    pub bursts: Vec<f64>,
    pub replies: Vec<Duration>,
    pub rss_idle_kb: u64,
    pub rss_burst_kb: u64,
    /// airlock with a second platform's adapter loaded too (0: not measured).
    pub rss_both_kb: u64,
    pub start_warm: Vec<Duration>,
    pub start_cold: Vec<Duration>,
}

/// The `p`th percentile.
pub fn percentile(v: &[Duration], p: usize) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[(v.len() * p / 100).min(v.len() - 1)]
}

/// The median.
pub fn median_f(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Which side samples first in round `i`: they take turns, so neither is
/// always measured right after the other.
pub fn order(i: usize) -> [usize; 2] {
    if i.is_multiple_of(2) { [0, 1] } else { [1, 0] }
}

/// Polls `cond` until it holds; panics after a minute.
pub async fn until(mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_micros(100)).await;
    }
}

/// Prints the table: `bridge` names the native side, `started` what start-up
/// waits for, `both` the row of airlock with two adapters.
pub fn report(airlock: &Figures, bridge: &Figures, names: (&str, &str, &str)) {
    report_as("airlock", airlock, bridge, names);
}

/// [`report`] with the first column named `first` (for two airlock sides).
pub fn report_as(first: &str, airlock: &Figures, bridge: &Figures, names: (&str, &str, &str)) {
    let (bridge_name, started, both) = names;
    let ms = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1000.0);
    let ratio = |a: f64, b: f64| format!("{:.2}", a / b);
    let secs = |d: Duration| d.as_secs_f64();
    let mb = |kb: u64| format!("{:.1}", kb as f64 / 1024.0);
    let mut rows: Vec<(String, String, String, String)> = Vec::new();
    for (name, p) in [
        ("inbound latency p50 (ms)", 50),
        ("inbound latency p99 (ms)", 99),
    ] {
        let (a, b) = (
            percentile(&airlock.latencies, p),
            percentile(&bridge.latencies, p),
        );
        rows.push((name.into(), ms(a), ms(b), ratio(secs(a), secs(b))));
    }
    let (a, b) = (median_f(&airlock.bursts), median_f(&bridge.bursts));
    rows.push((
        "burst of 500 (msg/s)".into(),
        format!("{a:.0}"),
        format!("{b:.0}"),
        ratio(a, b),
    ));
    let (a, b) = (
        percentile(&airlock.replies, 50),
        percentile(&bridge.replies, 50),
    );
    rows.push((
        "reply round trip p50 (ms)".into(),
        ms(a),
        ms(b),
        ratio(secs(a), secs(b)),
    ));
    for (name, a, b) in [
        ("RSS idle (MB)", airlock.rss_idle_kb, bridge.rss_idle_kb),
        (
            "RSS after the bursts (MB)",
            airlock.rss_burst_kb,
            bridge.rss_burst_kb,
        ),
    ] {
        rows.push((name.into(), mb(a), mb(b), ratio(a as f64, b as f64)));
    }
    if airlock.rss_both_kb > 0 {
        rows.push((
            format!("RSS idle, {both} (MB)"),
            mb(airlock.rss_both_kb),
            "-".into(),
            "-".into(),
        ));
    }
    let (a, b) = (
        percentile(&airlock.start_warm, 50),
        percentile(&bridge.start_warm, 50),
    );
    rows.push((
        format!("{started}, warm cache (ms)"),
        ms(a),
        ms(b),
        ratio(secs(a), secs(b)),
    ));
    let a = percentile(&airlock.start_cold, 50);
    rows.push(if bridge.start_cold.is_empty() {
        (
            format!("{started}, cold cache (ms)"),
            ms(a),
            "-".into(),
            "-".into(),
        )
    } else {
        let b = percentile(&bridge.start_cold, 50);
        (
            format!("{started}, cold cache (ms)"),
            ms(a),
            ms(b),
            ratio(secs(a), secs(b)),
        )
    });
    println!(
        "{:<34} {:>12} {:>12} {:>18}",
        "",
        first,
        bridge_name,
        format!("{first}/{bridge_name}")
    );
    for (name, a, b, r) in rows {
        println!("{name:<34} {a:>12} {b:>12} {r:>18}");
    }
}
