//! The soak plot: six panels over minutes of the run (memory, descriptors
//! and threads, database files, table rows, bytes per table, latency).
//!
//! A PNG needs a font to draw text, and plotters' `ab_glyph` backend needs
//! one registered by hand (no fontconfig on many machines): the first TrueType
//! file found is used (`SOAK_FONT=path` names one). With none, the plot is an
//! SVG instead, whose text the viewer draws: its panels then carry their
//! titles and ranges as plain text, without tick labels (placing those would
//! need the font).

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::sample::Table;

/// One panel: a title, a unit, and its lines as `(label, column, scale)`.
struct Panel {
    title: &'static str,
    lines: &'static [(&'static str, &'static str, f64)],
}

const MB: f64 = 1.0 / 1024.0;
const MIB: f64 = 1.0 / 1048576.0;

const PANELS: &[Panel] = &[
    Panel {
        title: "Resident memory (MB)",
        lines: &[("RSS", "rss_kb", MB), ("anonymous", "rss_anon_kb", MB)],
    },
    Panel {
        title: "Open file descriptors and threads",
        lines: &[("fds", "fds", 1.0), ("threads", "threads", 1.0)],
    },
    Panel {
        title: "Database files (MB)",
        lines: &[
            ("airlock.db", "db_bytes", MIB),
            ("-wal", "wal_bytes", MIB),
            ("ledgers", "ledger_bytes", MIB),
        ],
    },
    Panel {
        title: "Rows: queue, dedupe keys, audit trail",
        lines: &[
            ("events (waiting)", "events_rows", 1.0),
            ("seen (dedupe)", "seen_rows", 1.0),
            ("audit", "audit_rows", 1.0),
        ],
    },
    Panel {
        title: "Bytes per table (MB, dbstat)",
        lines: &[
            ("events", "events_table_bytes", MIB),
            ("seen", "seen_table_bytes", MIB),
            ("audit", "audit_table_bytes", MIB),
            ("audit_fts", "audit_fts_bytes", MIB),
            ("other", "other_tables_bytes", MIB),
        ],
    },
    Panel {
        title: "Latency per interval (ms)",
        lines: &[
            ("inbound p50", "inbound_p50_ms", 1.0),
            ("inbound p99", "inbound_p99_ms", 1.0),
            ("reply p50", "reply_p50_ms", 1.0),
            ("reply p99", "reply_p99_ms", 1.0),
        ],
    },
];

const COLORS: &[RGBColor] = &[
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
];

const SIZE: (u32, u32) = (1400, 1500);

/// Writes `soak.png` (or, with no font, `soak.svg`) into `dir`; returns the
/// file written.
pub fn write(table: &Table, dir: &Path, title: &str) -> Result<PathBuf, String> {
    if let Some(font) = find_font() {
        let path = dir.join("soak.png");
        {
            let root = BitMapBackend::new(&path, SIZE).into_drawing_area();
            draw(&root, table, title, true)?;
            root.present().map_err(text)?;
        }
        println!("plot: {} (font {})", path.display(), font.display());
        return Ok(path);
    }
    let path = dir.join("soak.svg");
    {
        let root = SVGBackend::new(&path, SIZE).into_drawing_area();
        draw(&root, table, title, false)?;
        root.present().map_err(text)?;
    }
    println!(
        "plot: {} (no TrueType font found for a PNG; SOAK_FONT=path/to/font.ttf names one)",
        path.display()
    );
    Ok(path)
}

/// Registers the first usable TrueType font as `sans-serif`; `None` when
/// there is none (or `SOAK_FONT=none`).
fn find_font() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    match std::env::var("SOAK_FONT") {
        Ok(v) if v == "none" => return None,
        Ok(v) => candidates.push(PathBuf::from(v)),
        Err(_) => {}
    }
    candidates.push("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf".into());
    let mut found = Vec::new();
    for root in [
        "/usr/share/fonts",
        "/usr/local/share/fonts",
        "/Library/Fonts",
    ] {
        collect_ttf(Path::new(root), &mut found, 4);
    }
    found.sort();
    candidates.extend(found);
    candidates.into_iter().find(|path| {
        let Ok(bytes) = std::fs::read(path) else {
            return false;
        };
        // plotters keeps fonts for the life of the process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
    })
}

fn collect_ttf(dir: &Path, out: &mut Vec<PathBuf>, depth: u32) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && depth > 0 {
            collect_ttf(&path, out, depth - 1);
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("ttf"))
        {
            out.push(path);
        }
    }
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    table: &Table,
    title: &str,
    fonts: bool,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(text)?;
    let (head, body) = root.split_vertically(50);
    head.draw_text(
        title,
        &("sans-serif", 22).into_font().color(&BLACK),
        (20, 15),
    )
    .map_err(text)?;
    let x_max = table
        .column("t_s")
        .last()
        .map_or(1.0, |t| (t / 60.0).max(0.1));
    for (area, panel) in body.split_evenly((3, 2)).iter().zip(PANELS) {
        let lines: Vec<(&str, Vec<(f64, f64)>)> = panel
            .lines
            .iter()
            .map(|(label, column, scale)| (*label, table.points(column, *scale)))
            .filter(|(_, points)| !points.is_empty())
            .collect();
        let (lo, hi) = range(lines.iter().flat_map(|(_, p)| p.iter().map(|p| p.1)));
        let mut builder = ChartBuilder::on(area);
        builder.margin(12);
        if fonts {
            builder
                .caption(panel.title, ("sans-serif", 18))
                .x_label_area_size(35)
                .y_label_area_size(60);
        } else {
            builder.margin_top(40);
        }
        let mut chart = builder
            .build_cartesian_2d(0.0..x_max, lo..hi)
            .map_err(text)?;
        if fonts {
            chart
                .configure_mesh()
                .x_desc("minutes")
                .draw()
                .map_err(text)?;
        } else {
            // Tick labels would need the font: a frame instead.
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.0, lo), (x_max, hi)],
                    BLACK.stroke_width(1),
                )))
                .map_err(text)?;
        }
        let mut legend = Vec::new();
        for (i, (label, points)) in lines.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let series = chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(text)?;
            if fonts {
                series.label(*label).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            }
            legend.push(format!("{label} ({})", name(color)));
        }
        if fonts && !lines.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(text)?;
        } else if !fonts {
            let style = ("sans-serif", 14).into_font().color(&BLACK);
            let heading = format!("{}: {}", panel.title, legend.join(", "));
            area.draw_text(&heading, &style, (12, 6)).map_err(text)?;
            let ranges = format!("y {lo:.1} to {hi:.1}, x 0 to {x_max:.1} minutes");
            area.draw_text(&ranges, &style, (12, 24)).map_err(text)?;
        }
    }
    Ok(())
}

/// A y range with a little room, never empty.
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    // From zero, so that a flat line looks flat; a little headroom on top.
    let lo = lo.min(0.0);
    let hi = if hi > lo { hi * 1.08 } else { lo + 1.0 };
    (lo, hi)
}

fn name(color: RGBColor) -> &'static str {
    match COLORS.iter().position(|c| *c == color) {
        Some(0) => "blue",
        Some(1) => "red",
        Some(2) => "green",
        Some(3) => "orange",
        _ => "purple",
    }
}
