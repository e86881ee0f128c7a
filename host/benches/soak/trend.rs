//! Flatness in numbers: each measure at the end of warm-up against the end
//! of the run, and its least-squares slope per hour over the samples after
//! warm-up. A leak shows as a slope that does not fall as the run grows.

use crate::sample::Table;

/// One measure's trend.
pub struct Trend {
    pub name: &'static str,
    pub unit: &'static str,
    pub at_warm: f64,
    pub at_end: f64,
    pub per_hour: f64,
}

/// The measures reported, as `(name, unit, column(s) summed, scale)`.
const MEASURES: &[(&str, &str, &[&str], f64)] = &[
    ("RSS", "MB", &["rss_kb"], 1.0 / 1024.0),
    ("RSS anon", "MB", &["rss_anon_kb"], 1.0 / 1024.0),
    ("open fds", "", &["fds"], 1.0),
    ("threads", "", &["threads"], 1.0),
    (
        "db main+wal",
        "MB",
        &["db_bytes", "wal_bytes"],
        1.0 / 1048576.0,
    ),
    ("ledgers", "kB", &["ledger_bytes"], 1.0 / 1024.0),
    (
        "audit tables",
        "MB",
        &["audit_table_bytes", "audit_fts_bytes"],
        1.0 / 1048576.0,
    ),
    ("seen table", "MB", &["seen_table_bytes"], 1.0 / 1048576.0),
    ("events rows", "", &["events_rows"], 1.0),
    ("seen rows", "", &["seen_rows"], 1.0),
    ("audit rows", "", &["audit_rows"], 1.0),
];

/// Trends over the samples taken at or after `warm_s` seconds (the first of
/// them is "at warm-up"; the last sample is "at end").
pub fn trends(table: &Table, warm_s: f64) -> Vec<Trend> {
    let t = table.column("t_s");
    let mut out = Vec::new();
    for &(name, unit, columns, scale) in MEASURES {
        let values: Vec<f64> = (0..table.rows.len())
            .map(|i| columns.iter().map(|c| table.column(c)[i]).sum::<f64>() * scale)
            .collect();
        let after: Vec<(f64, f64)> = t
            .iter()
            .zip(&values)
            .filter(|(t, v)| **t >= warm_s && v.is_finite())
            .map(|(t, v)| (*t / 3600.0, *v))
            .collect();
        let (Some(first), Some(last)) = (after.first(), after.last()) else {
            continue;
        };
        out.push(Trend {
            name,
            unit,
            at_warm: first.1,
            at_end: last.1,
            per_hour: slope(&after),
        });
    }
    out
}

/// Least-squares slope of `(x, y)` points; 0 with fewer than two distinct x.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx > 0.0 { sxy / sxx } else { 0.0 }
}

/// The trends as a text table.
pub fn render(trends: &[Trend], warm_s: f64) -> String {
    let mut out = format!(
        "warm-up {warm_s:.0} s: the first sample after it against the last, and the slope \
         over the samples after it\n{:<14} {:>14} {:>14} {:>16}\n",
        "measure", "after warm-up", "at end", "slope per hour"
    );
    for t in trends {
        let unit = if t.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", t.unit)
        };
        out.push_str(&format!(
            "{:<14} {:>14} {:>14} {:>16}\n",
            t.name,
            format!("{:.1}{unit}", t.at_warm),
            format!("{:.1}{unit}", t.at_end),
            format!("{:+.1}{unit}", t.per_hour),
        ));
    }
    out
}
