//! One sample of the process and its state directory, and the table of
//! samples that becomes `soak.csv` (and can be read back from it to plot
//! again).
//!
//! Everything is read from outside, as an operator would see it: `/proc` for
//! the process, file sizes for the database and the ledgers, and a read-only
//! SQLite connection, opened and closed for each sample so that it never
//! holds back airlock's WAL checkpoints.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// The columns of `soak.csv`, in order. A value that could not be taken (no
/// `dbstat`, no reply in the interval) is left empty.
pub const COLUMNS: &[&str] = &[
    "t_s",
    "rss_kb",
    "rss_anon_kb",
    "threads",
    "fds",
    "db_bytes",
    "wal_bytes",
    "shm_bytes",
    "events_rows",
    "seen_rows",
    "audit_rows",
    "ledger_files",
    "ledger_bytes",
    "events_table_bytes",
    "seen_table_bytes",
    "audit_table_bytes",
    "audit_fts_bytes",
    "other_tables_bytes",
    "injected",
    "received",
    "replies_ok",
    "replies_failed",
    "inbound_p50_ms",
    "inbound_p99_ms",
    "reply_p50_ms",
    "reply_p99_ms",
];

/// Samples, one row per sample, one value per [`COLUMNS`] entry.
#[derive(Default)]
pub struct Table {
    pub rows: Vec<Vec<f64>>,
}

/// The position of a column.
pub fn index(column: &str) -> usize {
    COLUMNS
        .iter()
        .position(|c| *c == column)
        .unwrap_or_else(|| panic!("no column {column}"))
}

impl Table {
    /// The values of one column.
    pub fn column(&self, column: &str) -> Vec<f64> {
        let i = index(column);
        self.rows.iter().map(|r| r[i]).collect()
    }

    /// `(minutes, value)` points of one column, scaled by `scale`, where the
    /// value was taken.
    pub fn points(&self, column: &str, scale: f64) -> Vec<(f64, f64)> {
        let (t, i) = (index("t_s"), index(column));
        self.rows
            .iter()
            .filter(|r| r[i].is_finite())
            .map(|r| (r[t] / 60.0, r[i] * scale))
            .collect()
    }

    /// The table as CSV text, with a header line.
    pub fn to_csv(&self) -> String {
        let mut out = COLUMNS.join(",");
        out.push('\n');
        for row in &self.rows {
            let cells: Vec<String> = row
                .iter()
                .map(|v| match v {
                    v if !v.is_finite() => String::new(),
                    v if v.fract() == 0.0 => format!("{v:.0}"),
                    v => format!("{v:.3}"),
                })
                .collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }

    /// Reads back what [`Table::to_csv`] wrote (columns matched by name, so
    /// a file from an older run with fewer columns still reads).
    pub fn from_csv(text: &str) -> Result<Table, String> {
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().ok_or("empty CSV")?.split(',').collect();
        let mut rows = Vec::new();
        for line in lines.filter(|l| !l.trim().is_empty()) {
            let cells: Vec<&str> = line.split(',').collect();
            let row = COLUMNS
                .iter()
                .map(|c| {
                    header
                        .iter()
                        .position(|h| h == c)
                        .and_then(|i| cells.get(i))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(f64::NAN)
                })
                .collect();
            rows.push(row);
        }
        Ok(Table { rows })
    }
}

/// What the load loop knows at sample time.
pub struct Progress {
    pub injected: u64,
    pub received: u64,
    pub replies_ok: u64,
    pub replies_failed: u64,
    pub inbound: Vec<Duration>,
    pub replies: Vec<Duration>,
}

/// Takes one sample of process `pid` on state directory `home`, `t` seconds
/// into the run. Blocking: file and database reads.
pub fn take(t: f64, pid: u32, home: &Path, progress: Progress) -> Vec<f64> {
    let mut row = vec![f64::NAN; COLUMNS.len()];
    let mut set = |column: &str, value: f64| row[index(column)] = value;
    set("t_s", t);

    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    set("rss_kb", field("VmRSS:"));
    set("rss_anon_kb", field("RssAnon:"));
    set("threads", field("Threads:"));
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count() as f64);
    set("fds", fds.unwrap_or(f64::NAN));

    let size = |name: &str| {
        std::fs::metadata(home.join(name))
            .map(|m| m.len() as f64)
            .unwrap_or(0.0)
    };
    set("db_bytes", size("airlock.db"));
    set("wal_bytes", size("airlock.db-wal"));
    set("shm_bytes", size("airlock.db-shm"));

    let (mut files, mut bytes) = (0.0, 0.0);
    if let Ok(dir) = std::fs::read_dir(home.join("ledgers")) {
        for entry in dir.flatten() {
            if let Ok(m) = entry.metadata()
                && m.is_file()
            {
                files += 1.0;
                bytes += m.len() as f64;
            }
        }
    }
    set("ledger_files", files);
    set("ledger_bytes", bytes);

    if let Ok(db) = open(home) {
        for (column, table) in [
            ("events_rows", "events"),
            ("seen_rows", "seen"),
            ("audit_rows", "audit"),
        ] {
            if let Ok(n) = db.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
                r.get::<_, i64>(0)
            }) {
                set(column, n as f64);
            }
        }
        if let Ok(sizes) = table_bytes(&db) {
            for (column, bytes) in sizes {
                set(column, bytes);
            }
        }
    }

    set("injected", progress.injected as f64);
    set("received", progress.received as f64);
    set("replies_ok", progress.replies_ok as f64);
    set("replies_failed", progress.replies_failed as f64);
    let (p50, p99) = percentiles(progress.inbound);
    set("inbound_p50_ms", p50);
    set("inbound_p99_ms", p99);
    let (p50, p99) = percentiles(progress.replies);
    set("reply_p50_ms", p50);
    set("reply_p99_ms", p99);
    row
}

/// Whether SQLite's `dbstat` table can be read here (it is a compile-time
/// option of SQLite).
pub fn has_dbstat(home: &Path) -> bool {
    open(home).is_ok_and(|db| table_bytes(&db).is_ok())
}

fn open(home: &Path) -> rusqlite::Result<Connection> {
    let db = Connection::open_with_flags(
        home.join("airlock.db"),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    db.busy_timeout(Duration::from_secs(2))?;
    Ok(db)
}

/// Bytes of pages per group of tables, indexes counted with their table.
fn table_bytes(db: &Connection) -> rusqlite::Result<Vec<(&'static str, f64)>> {
    let mut query = db.prepare(
        "SELECT coalesce(s.tbl_name, d.name), sum(d.pgsize)
           FROM dbstat AS d LEFT JOIN sqlite_schema AS s ON s.name = d.name
          GROUP BY 1",
    )?;
    let mut sums = [0.0; 5];
    let groups = [
        "events_table_bytes",
        "seen_table_bytes",
        "audit_table_bytes",
        "audit_fts_bytes",
        "other_tables_bytes",
    ];
    let rows = query.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (table, bytes) = row?;
        let group = match table.as_str() {
            "events" => 0,
            "seen" => 1,
            "audit" => 2,
            t if t.starts_with("audit_fts") => 3,
            _ => 4,
        };
        sums[group] += bytes as f64;
    }
    Ok(groups.into_iter().zip(sums).collect())
}

/// p50 and p99 in milliseconds (empty: none).
fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    if samples.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() - 1) as f64 * q).round() as usize;
        samples[i].as_secs_f64() * 1000.0
    };
    (at(0.50), at(0.99))
}
