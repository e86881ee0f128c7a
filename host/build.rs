//! Builds the bundled guest components (`adapters/*`, `filters/*`) for
//! `wasm32-wasip2` and embeds them, so the `airlock` binary is self-contained.
//!
//! Each bundled crate lives in `adapters/NAME/` or `filters/NAME/` with its
//! manifest `NAME.toml` beside `Cargo.toml`. They are built by a nested cargo
//! into `target/guests`, a separate target directory, so the outer build's
//! lock is never contended.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    println!("cargo:rerun-if-changed=guest_build.rs");
    for watched in ["wit", "guest-sdk", "adapters", "filters", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    let crates = bundled_crates(&root);
    let target_dir = root.join("target").join("guests");
    if !crates.is_empty() {
        build(&root, &target_dir, &crates);
    }

    let mut out = String::from(
        "/// Components compiled into this binary.\npub static BUNDLED: &[Bundled] = &[\n",
    );
    for c in &crates {
        let wasm = target_dir
            .join("wasm32-wasip2")
            .join("release")
            .join(format!("{}.wasm", c.package.replace('-', "_")));
        assert!(wasm.exists(), "guest build produced no {}", wasm.display());
        writeln!(
            out,
            "    Bundled {{ name: {:?}, wasm: include_bytes!({:?}), manifest: include_str!({:?}) }},",
            c.name,
            wasm.display().to_string(),
            c.manifest.display().to_string()
        )
        .unwrap();
    }
    out.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out_dir.join("bundled.rs"), out).unwrap();
}

struct GuestCrate {
    name: String,
    package: String,
    manifest: PathBuf,
}

fn bundled_crates(root: &Path) -> Vec<GuestCrate> {
    let mut crates = Vec::new();
    for group in ["adapters", "filters"] {
        let Ok(entries) = std::fs::read_dir(root.join(group)) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        dirs.sort();
        for dir in dirs {
            let cargo_toml = dir.join("Cargo.toml");
            let name = dir.file_name().unwrap().to_string_lossy().to_string();
            let manifest = dir.join(format!("{name}.toml"));
            if !cargo_toml.exists() || !manifest.exists() {
                continue;
            }
            let text = std::fs::read_to_string(&cargo_toml).unwrap();
            let package = text
                .lines()
                .find_map(|l| {
                    let l = l.trim();
                    l.strip_prefix("name")?
                        .trim()
                        .strip_prefix('=')?
                        .trim()
                        .strip_prefix('"')?
                        .strip_suffix('"')
                        .map(String::from)
                })
                .unwrap_or_else(|| panic!("no package name in {}", cargo_toml.display()));
            crates.push(GuestCrate {
                name,
                package,
                manifest,
            });
        }
    }
    crates
}

include!("guest_build.rs");

fn build(root: &Path, target_dir: &Path, crates: &[GuestCrate]) {
    let packages: Vec<&str> = crates.iter().map(|c| c.package.as_str()).collect();
    let output = build_guests(root, target_dir, &packages);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint =
            if stderr.contains("wasm32-wasip2") && stderr.contains("target may not be installed") {
                "\n\nThe wasm32-wasip2 target is missing: run `rustup target add wasm32-wasip2`."
            } else {
                ""
            };
        panic!("building the bundled guest components failed:\n{stderr}{hint}");
    }
}
