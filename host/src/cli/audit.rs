//! `airlock audit …`: the record, read in the terminal. `verify` walks the
//! hash chain (in the database, or in an export on its own); `search`,
//! `tail`, `show` and `export` read rows; `status` sums it up. Nothing here
//! writes a row: reading the record is not an event in it.
//!
//! Output is for people in a terminal (aligned columns, colour only on a
//! TTY) and JSON on request; an export is one row a line in the same JSON
//! form, chain fields included, so that it verifies without the database.

use std::io::{BufRead, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::json;

use super::audit_view::{self, Columns};
use crate::audit::chain::{Record, Walk, Walker, parse_head, short};
use crate::audit::store::Filter;
use crate::audit::{AuditStore, Kind};
use crate::host::Host;
use crate::manifest::duration;

/// Rows read from the database at a time by `export` and `tail -f`.
const PAGE: usize = 500;
/// How often `tail -f` looks for new rows.
const POLL: Duration = Duration::from_millis(200);

/// What to do.
#[derive(Debug, Clone, Subcommand)]
pub enum Action {
    /// Walk the hash chain: report the first row that does not match, or how many rows verified up to which head.
    Verify {
        /// A checkpoint's head kept elsewhere (`HASH@N`, from serve's stderr or the collector): also prove the chain still holds it.
        #[arg(long, value_name = "HASH@N")]
        head: Option<String>,
        /// Verify an export (`airlock audit export --jsonl`) on its own instead of the database.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Rows holding every word of QUERY (in the summary, and the text with content = "full"), newest last.
    Search {
        /// Words to find; leave it out to list by the options alone.
        query: Option<String>,
        /// Only rows this recent: 90s, 30m, 2h.
        #[arg(long)]
        since: Option<String>,
        /// Only rows of this kind (inbound, tool, access, relay, filter, component, server, checkpoint).
        #[arg(long)]
        kind: Option<String>,
        /// Only rows about this adapter.
        #[arg(long)]
        adapter: Option<String>,
        /// Only rows about this sender id.
        #[arg(long, allow_hyphen_values = true)]
        sender: Option<String>,
        /// At most this many rows (the newest).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Machine-readable output: an array of rows.
        #[arg(long)]
        json: bool,
    },
    /// The newest rows, oldest first; with -f, keep printing rows as they are written.
    Tail {
        /// Follow: print new rows as they come, until Ctrl-C.
        #[arg(short = 'f', long)]
        follow: bool,
        /// How many of the newest rows to show first.
        #[arg(short = 'n', long = "lines", default_value_t = 20)]
        lines: usize,
        /// One JSON row a line instead of columns.
        #[arg(long)]
        json: bool,
    },
    /// Every field of one row.
    Show {
        /// The row's id (the ID column).
        id: i64,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Write rows out, oldest first, with their chain fields (verify it with `verify --file`).
    Export {
        /// One JSON object a line (the only format).
        #[arg(long, required = true)]
        jsonl: bool,
        /// Only rows this recent: 90s, 30m, 2h.
        #[arg(long)]
        since: Option<String>,
        /// Write to this file (created owner-only) instead of stdout.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Rows, head, last checkpoint, content mode, retention and the exporter's lag.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

/// Run `action` against the record of `host`.
pub fn run(host: &Host, action: Action) -> anyhow::Result<ExitCode> {
    let store = AuditStore::new(host.db.clone(), &host.config.audit, Some("terminal".into()));
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let done = match action {
        Action::Verify { head, file } => {
            let head = head
                .map(|h| parse_head(&h))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--head {e}"))?;
            let (walk, source) = match &file {
                Some(path) => {
                    let reader = std::fs::File::open(path).with_context(|| {
                        format!(
                            "cannot read {}; give the file `airlock audit export --jsonl --output FILE` wrote",
                            path.display()
                        )
                    })?;
                    (
                        verify_file(std::io::BufReader::new(reader), head.as_ref())?,
                        Source::File(path),
                    )
                }
                None => (store.verify(head.as_ref())?, Source::Database),
            };
            let (text, ok) = verdict(&walk, head.as_ref(), &source);
            print(&text)?;
            return Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        Action::Search {
            query,
            since,
            kind,
            adapter,
            sender,
            limit,
            json,
        } => {
            let filter = Filter {
                since_ms: since
                    .as_deref()
                    .map(|s| since_ms(s, now_ms()))
                    .transpose()?,
                kind: kind.as_deref().map(parse_kind).transpose()?,
                adapter,
                sender,
            };
            if limit == 0 {
                anyhow::bail!("--limit 0 shows nothing; give at least 1");
            }
            let mut rows = store.search(query.as_deref().unwrap_or(""), &filter, limit)?;
            rows.reverse();
            if json {
                print(&format!("{}\n", serde_json::to_string(&rows)?))
            } else if rows.is_empty() {
                print("no rows match\n")
            } else {
                let mut text = audit_view::table(&rows, colour);
                if rows.len() == limit {
                    text.push_str(&format!(
                        "(the newest {limit} matching rows; --limit N shows more)\n"
                    ));
                }
                print(&text)
            }
        }
        Action::Tail {
            follow,
            lines,
            json,
        } => tail(&store, follow, lines, json, colour),
        Action::Show { id, json } => {
            let Some(r) = store.get(id)? else {
                eprintln!("airlock: {}", missing_row(id, &store)?);
                return Ok(ExitCode::from(1));
            };
            if json {
                print(&format!("{}\n", serde_json::to_string(&r)?))
            } else {
                print(&audit_view::show(&r, colour))
            }
        }
        Action::Export {
            jsonl: _,
            since,
            output,
        } => {
            let after = match since {
                Some(s) => store.id_before(since_ms(&s, now_ms())?)?,
                None => 0,
            };
            let (rows, last) = match &output {
                Some(path) => {
                    let file = create_private(path)?;
                    let n = export(&store, after, BufWriter::new(file))
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!(
                        "exported {} rows to {}; `airlock audit verify --file {}` checks it",
                        n.0,
                        path.display(),
                        crate::text::shell_quote(&path.display().to_string())
                    );
                    n
                }
                None => match export(&store, after, BufWriter::new(std::io::stdout().lock())) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => (0, 0),
                    Err(e) => return Err(e.into()),
                },
            };
            tracing::debug!(rows, last, "audit export written");
            Ok(())
        }
        Action::Status { json } => {
            let st = store.status()?;
            let config = &host.config.audit;
            if json {
                let hash_at =
                    |h: &Option<(i64, String)>| h.as_ref().map(|(id, hash)| format!("{hash}@{id}"));
                let value = json!({
                    "enabled": config.enabled,
                    "rows": st.rows,
                    "first_id": st.first_id,
                    "head": hash_at(&st.head),
                    "head_id": st.head.as_ref().map(|h| h.0),
                    "last_checkpoint": hash_at(&st.last_checkpoint),
                    "content": audit_view::content_name(config.content),
                    "keep_days": config.keep_days,
                    "checkpoint_every": config.checkpoint_every,
                    "otlp_endpoint": config.otlp.as_ref().map(|o| &o.endpoint),
                    "exported_id": st.exported_id,
                    "export_lag": config.otlp.as_ref().map(|_| audit_view::export_lag(&st)),
                });
                print(&format!("{value}\n"))
            } else {
                print(&audit_view::status(&st, config))
            }
        }
    };
    match done {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e.into()),
        Ok(()) => Ok(ExitCode::SUCCESS),
    }
}

/// Milliseconds since the epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `--since TEXT` as the earliest time, in ms, counted back from `now`.
fn since_ms(text: &str, now: i64) -> anyhow::Result<i64> {
    let secs = duration::parse_secs("--since", text).map_err(|e| anyhow::anyhow!(e))?;
    Ok(now - secs.saturating_mul(1000))
}

/// `--kind NAME`, which must be one of the kinds rows have.
fn parse_kind(name: &str) -> anyhow::Result<Kind> {
    Kind::parse(name.trim()).ok_or_else(|| {
        let all: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        anyhow::anyhow!(
            "--kind {name:?} is not a kind of row; use one of: {}",
            all.join(", ")
        )
    })
}

/// Writes `text` to stdout.
fn print(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Why row `id` cannot be shown, and what to do instead.
fn missing_row(id: i64, store: &AuditStore) -> anyhow::Result<String> {
    let st = store.status()?;
    Ok(match (st.first_id, st.head.as_ref().map(|h| h.0)) {
        (Some(first), Some(_)) if id > 0 && id < first => format!(
            "no audit row {id}: the trail now starts at row {first}, as retention (`[audit] \
             keep_days`) removes old rows; an older export may still hold it"
        ),
        (Some(first), Some(last)) if id < first || id > last => format!(
            "no audit row {id}: the trail holds rows {first} to {last}; `airlock audit tail` shows \
             the newest"
        ),
        (Some(_), Some(_)) => format!(
            "no audit row {id}, though rows on both sides of it are there: a row was deleted; \
             `airlock audit verify` says where the chain breaks"
        ),
        _ => format!("no audit row {id}: the audit trail is empty"),
    })
}

/// Creates `path` for an export, readable by its owner only (the record
/// says who wrote what to whom).
fn create_private(path: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| {
            format!(
                "cannot create {}; check that its directory exists and is writable",
                path.display()
            )
        })
}

/// Writes every row after `after`, up to the head when the export began,
/// one JSON object a line, a page at a time. Returns the rows written and
/// the last id.
fn export(store: &AuditStore, after: i64, mut out: impl Write) -> std::io::Result<(u64, i64)> {
    let db = |e: crate::db::DbError| std::io::Error::other(e.to_string());
    let end = store.status().map_err(db)?.head.map_or(0, |h| h.0);
    let (mut last, mut n) = (after, 0u64);
    'pages: while last < end {
        let page = store.after(last, PAGE).map_err(db)?;
        if page.is_empty() {
            break;
        }
        for r in &page {
            if r.id > end {
                break 'pages;
            }
            serde_json::to_writer(&mut out, r)?;
            out.write_all(b"\n")?;
            last = r.id;
            n += 1;
        }
    }
    out.flush()?;
    Ok((n, last))
}

/// `airlock audit tail`: the last `lines` rows, then (with `follow`) every
/// new row as it is written, found by polling.
fn tail(
    store: &AuditStore,
    follow: bool,
    lines: usize,
    json: bool,
    colour: bool,
) -> std::io::Result<()> {
    let db = |e: crate::db::DbError| std::io::Error::other(e.to_string());
    let head = store.status().map_err(db)?.head.map_or(0, |h| h.0);
    let mut rows = if lines == 0 {
        Vec::new()
    } else {
        store.search("", &Filter::default(), lines).map_err(db)?
    };
    rows.reverse();
    let mut last = rows.last().map_or(head, |r| r.id.max(head));
    let mut out = std::io::stdout().lock();
    let columns = if follow {
        Columns::fixed(last)
    } else {
        Columns::fit(&rows)
    };
    let line = |r: &Record| -> std::io::Result<String> {
        Ok(if json {
            serde_json::to_string(r)?
        } else {
            columns.row(r, colour)
        })
    };
    if !json && (follow || !rows.is_empty()) {
        writeln!(out, "{}", columns.header(colour))?;
    }
    for r in &rows {
        writeln!(out, "{}", line(r)?)?;
    }
    out.flush()?;
    if !follow {
        if rows.is_empty() && !json {
            writeln!(out, "the audit trail is empty")?;
        }
        return Ok(());
    }
    loop {
        let page = store.after(last, PAGE).map_err(db)?;
        for r in &page {
            writeln!(out, "{}", line(r)?)?;
            last = r.id;
        }
        out.flush()?;
        if page.len() < PAGE {
            std::thread::sleep(POLL);
        }
    }
}

/// What was verified.
enum Source<'a> {
    Database,
    File(&'a Path),
}

/// Walks the rows of an export. The first row's `prev_hash` is taken on
/// trust as the anchor when the export does not start at row 1; with
/// `head`, row N must be in it with that hash.
fn verify_file(reader: impl BufRead, head: Option<&(String, i64)>) -> anyhow::Result<Walk> {
    let mut walker: Option<Walker> = None;
    let mut last = 0i64;
    for (i, line) in reader.lines().enumerate() {
        let line = line.context("cannot read the export")?;
        if line.trim().is_empty() {
            continue;
        }
        let r: Record = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                let rows = match walker.map(Walker::finish) {
                    Some(Walk::Verified { rows, .. }) | Some(Walk::Broken { rows, .. }) => rows,
                    None => 0,
                };
                return Ok(Walk::Broken {
                    rows,
                    id: last + 1,
                    why: format!("line {} is not an audit row ({e})", i + 1),
                });
            }
        };
        let w = walker.get_or_insert_with(|| {
            Walker::new((r.id > 1).then(|| (r.id, r.prev_hash.clone()))).with_head(head.cloned())
        });
        if !w.step(&r) {
            break;
        }
        last = r.id;
    }
    Ok(walker
        .unwrap_or_else(|| Walker::new(None).with_head(head.cloned()))
        .finish())
}

/// `n rows`, or `1 row`.
fn count(n: u64) -> String {
    if n == 1 {
        "1 row".into()
    } else {
        format!("{n} rows")
    }
}

/// What `verify` says, and whether the chain held.
fn verdict(walk: &Walk, head: Option<&(String, i64)>, source: &Source<'_>) -> (String, bool) {
    let trail = match source {
        Source::Database => "the audit trail".to_string(),
        Source::File(p) => format!("the audit trail in {}", p.display()),
    };
    match walk {
        Walk::Verified {
            rows: 0,
            head: None,
            ..
        } => (format!("verified 0 rows: {trail} is empty\n"), true),
        Walk::Verified {
            rows,
            head: tip,
            anchored_at,
        } => {
            let (hash, id) = tip.clone().unwrap_or_default();
            let mut text = format!("verified {} up to {hash}@{id}", count(*rows));
            match (anchored_at, source) {
                (Some(k), Source::Database) => text.push_str(&format!(
                    ", starting after the retention anchor at row {k} (older rows were removed \
                     by keep_days)"
                )),
                (Some(k), Source::File(_)) => text.push_str(&format!(
                    ", starting at row {k}: the export begins there, and the prev_hash of its \
                     first line was taken on trust as the anchor (give --head HASH@N from a \
                     checkpoint kept elsewhere to tie it down)"
                )),
                (None, _) => {}
            }
            text.push('\n');
            if let Some((h, n)) = head {
                text.push_str(&format!(
                    "row {n} holds {}, the hash the checkpoint kept elsewhere recorded\n",
                    short(h)
                ));
            }
            (text, true)
        }
        Walk::Broken { rows, id, why } => {
            let mut text = format!("{trail} is broken at row {id}: {why}\n");
            // A head that does not match is found apart from the walk,
            // which then says nothing of the rows before it.
            let by_head = head.is_some_and(|(_, n)| n == id) && *rows == 0;
            if !by_head {
                text.push_str(&format!("{} before it verified\n", count(*rows)));
            }
            if matches!(source, Source::Database) {
                text.push_str(&format!(
                    "`airlock audit show {id}` shows the row; compare it with an export or the \
                     collector's copy, since rows from there on cannot be vouched for\n"
                ));
            }
            (text, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        action: Action,
    }

    fn parse(args: &[&str]) -> Result<Action, String> {
        let mut all = vec!["audit"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all)
            .map(|c| c.action)
            .map_err(|e| e.to_string())
    }

    fn chain(n: i64) -> Vec<Record> {
        crate::audit::chain::sample_chain(n)
    }

    fn jsonl(rows: &[Record]) -> String {
        rows.iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect()
    }

    fn walk_file(text: &str, head: Option<&(String, i64)>) -> Walk {
        verify_file(std::io::Cursor::new(text.to_owned()), head).unwrap()
    }

    #[test]
    fn arguments_parse_and_are_checked() {
        assert!(matches!(
            parse(&["tail", "-f", "-n", "5"]),
            Ok(Action::Tail {
                follow: true,
                lines: 5,
                json: false
            })
        ));
        assert!(matches!(
            parse(&["search", "--kind", "tool"]),
            Ok(Action::Search {
                query: None,
                limit: 50,
                ..
            })
        ));
        assert!(
            parse(&["export"]).unwrap_err().contains("--jsonl"),
            "the format is named"
        );
        assert!(parse(&["show", "x"]).is_err());
        assert!(matches!(
            parse(&["verify", "--head", "abc@1", "--file", "x.jsonl"]),
            Ok(Action::Verify { .. })
        ));
        let e = parse_kind("message").unwrap_err().to_string();
        assert!(e.contains("\"message\" is not a kind"), "{e}");
        assert!(
            e.contains("inbound, tool, access, relay, filter, component, server, checkpoint"),
            "{e}"
        );
        assert_eq!(parse_kind("relay").unwrap(), Kind::Relay);
        assert_eq!(since_ms("2h", 10_000_000).unwrap(), 10_000_000 - 7_200_000);
        assert_eq!(since_ms("90", 100_000).unwrap(), 10_000);
        let e = since_ms("2d", 0).unwrap_err().to_string();
        assert!(
            e.starts_with("--since \"2d\"") && e.contains("unknown unit"),
            "{e}"
        );
    }

    #[test]
    fn an_export_verifies_on_its_own_and_from_a_later_start() {
        let rows = chain(6);
        let head = (rows[5].hash.clone(), 6);
        match walk_file(&jsonl(&rows), Some(&head)) {
            Walk::Verified {
                rows: 6,
                anchored_at: None,
                head: Some(h),
            } => assert_eq!(h, head),
            w => panic!("{w:?}"),
        }
        // An export --since: its first line is the anchor, on trust.
        let w = walk_file(&jsonl(&rows[2..]), None);
        assert!(
            matches!(
                w,
                Walk::Verified {
                    rows: 4,
                    anchored_at: Some(3),
                    ..
                }
            ),
            "{w:?}"
        );
        let (text, ok) = verdict(&w, None, &Source::File(Path::new("x.jsonl")));
        assert!(ok);
        assert!(
            text.starts_with(&format!(
                "verified 4 rows up to {}@6, starting at row 3",
                rows[5].hash
            )),
            "{text}"
        );
        assert!(text.contains("taken on trust"), "{text}");
        // A head before the export's start cannot be checked from it.
        let early = (rows[0].hash.clone(), 1);
        let w = walk_file(&jsonl(&rows[2..]), Some(&early));
        assert!(
            matches!(&w, Walk::Broken { id: 1, why, .. } if why.contains("start at row 3")),
            "{w:?}"
        );
        assert_eq!(
            walk_file("\n", None),
            Walk::Verified {
                rows: 0,
                head: None,
                anchored_at: None
            }
        );
    }

    #[test]
    fn a_tampered_export_names_its_first_bad_row() {
        let rows = chain(6);
        let mut edited = rows.clone();
        edited[3].summary = "nothing here".into();
        let w = walk_file(&jsonl(&edited), None);
        assert!(matches!(w, Walk::Broken { id: 4, rows: 3, .. }), "{w:?}");
        let (text, ok) = verdict(&w, None, &Source::File(Path::new("e.jsonl")));
        assert!(!ok);
        assert!(
            text.starts_with("the audit trail in e.jsonl is broken at row 4: row 4 was changed"),
            "{text}"
        );
        assert!(text.contains("3 rows before it verified"), "{text}");

        let mut garbled = jsonl(&rows[..2]);
        garbled.push_str("{not json\n");
        let w = walk_file(&garbled, None);
        assert!(
            matches!(&w, Walk::Broken { id: 3, rows: 2, why } if why.starts_with("line 3 is not an audit row")),
            "{w:?}"
        );

        // A cut tail looks whole, unless a head kept elsewhere is given.
        let head = (rows[5].hash.clone(), 6);
        assert!(matches!(
            walk_file(&jsonl(&rows[..4]), None),
            Walk::Verified { rows: 4, .. }
        ));
        let w = walk_file(&jsonl(&rows[..4]), Some(&head));
        assert!(
            matches!(&w, Walk::Broken { id: 6, why, .. } if why.contains("tail was cut off")),
            "{w:?}"
        );
        let (text, _) = verdict(&w, Some(&head), &Source::Database);
        assert!(
            !text.contains("rows before it verified"),
            "no count for a head that is not there: {text}"
        );
        let wrong = ("f".repeat(64), 2);
        let w = walk_file(&jsonl(&rows), Some(&wrong));
        assert!(
            matches!(&w, Walk::Broken { id: 2, why, .. } if why.contains("rewritten")),
            "{w:?}"
        );
    }

    #[test]
    fn verdicts_read_well() {
        let h = "ab".repeat(32);
        let ok = Walk::Verified {
            rows: 12,
            head: Some((h.clone(), 14)),
            anchored_at: Some(3),
        };
        let (text, good) = verdict(&ok, Some(&(h.clone(), 14)), &Source::Database);
        assert!(good);
        assert_eq!(
            text,
            format!(
                "verified 12 rows up to {h}@14, starting after the retention anchor at row 3 \
                 (older rows were removed by keep_days)\nrow 14 holds abababababab, the hash \
                 the checkpoint kept elsewhere recorded\n"
            )
        );
        let empty = Walk::Verified {
            rows: 0,
            head: None,
            anchored_at: None,
        };
        assert_eq!(
            verdict(&empty, None, &Source::Database).0,
            "verified 0 rows: the audit trail is empty\n"
        );
        let broken = Walk::Broken {
            rows: 6,
            id: 7,
            why: "row 7 is missing (the next row is 8)".into(),
        };
        let (text, good) = verdict(&broken, None, &Source::Database);
        assert!(!good);
        assert!(text.starts_with(
            "the audit trail is broken at row 7: row 7 is missing (the next row is 8)\n6 rows \
             before it verified\n`airlock audit show 7`"
        ));
    }
}
