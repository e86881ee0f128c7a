//! Builds the bundled guest components (`adapters/*`, `filters/*`) for
//! `wasm32-wasip2` and embeds them, so the `airlock` binary is self-contained.
//!
//! Each bundled crate lives in `adapters/NAME/` or `filters/NAME/` with its
//! manifest `NAME.toml` beside `Cargo.toml`. They are built by a nested cargo
//! into `target/guests`, a separate target directory, so the outer build's
//! lock is never contended.
//!
//! The first build on a machine that has only rustup must simply work, so a
//! missing `wasm32-wasip2` standard library is added with rustup for the
//! toolchain this build runs under (rustup adds the target of
//! `rust-toolchain.toml` only when it installs the toolchain itself, or when
//! it may install, which `RUSTUP_AUTO_INSTALL=0` forbids). Anything that
//! stops the build is reported as `cargo::error` lines: the nested compiler's
//! own error lines, briefly, then one line with the cause and its fix. The
//! script then returns normally; cargo fails the build on those lines
//! without dumping the script's whole output, which a non-zero exit would add.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The target the bundled components are built for.
const TARGET: &str = "wasm32-wasip2";

/// At most this many of the nested cargo's error lines are shown.
const SHOWN_LINES: usize = 30;

fn main() {
    if let Err(failure) = run() {
        for line in &failure.details {
            println!("cargo::error=  {line}");
        }
        println!("cargo::error={}", failure.cause);
    }
}

/// Why the build cannot go on.
struct Failure {
    /// What the failing tool said, a few lines at most.
    details: Vec<String>,
    /// One line: the cause and its fix.
    cause: String,
}

impl Failure {
    fn new(cause: impl Into<String>) -> Self {
        Self {
            details: Vec::new(),
            cause: cause.into(),
        }
    }
}

fn run() -> Result<(), Failure> {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR")?);
    let Some(root) = manifest_dir.parent().map(Path::to_path_buf) else {
        return Err(Failure::new(format!(
            "{} has no parent directory: build airlock from its workspace",
            manifest_dir.display()
        )));
    };
    println!("cargo:rerun-if-changed=guest_build.rs");
    for watched in ["wit", "guest-sdk", "adapters", "filters", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    let crates = bundled_crates(&root)?;
    let target_dir = root.join("target").join("guests");
    if !crates.is_empty() {
        ensure_target()?;
        build(&root, &target_dir, &crates)?;
    }

    let mut out = String::from(
        "/// Components compiled into this binary.\npub static BUNDLED: &[Bundled] = &[\n",
    );
    for c in &crates {
        let wasm = target_dir
            .join(TARGET)
            .join("release")
            .join(format!("{}.wasm", c.package.replace('-', "_")));
        if !wasm.exists() {
            return Err(Failure::new(format!(
                "the guest build produced no {}: make package `{}` a cdylib \
                 (`[lib] crate-type = [\"cdylib\"]`)",
                wasm.display(),
                c.package
            )));
        }
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "    Bundled {{ name: {:?}, wasm: include_bytes!({:?}), manifest: include_str!({:?}) }},",
            c.name,
            wasm.display().to_string(),
            c.manifest.display().to_string()
        );
    }
    out.push_str("];\n");
    let file = PathBuf::from(env("OUT_DIR")?).join("bundled.rs");
    std::fs::write(&file, out).map_err(|e| {
        Failure::new(format!(
            "cannot write {}: {e}: free space or fix the permissions of the target directory",
            file.display()
        ))
    })
}

/// A variable cargo sets for every build script.
fn env(name: &str) -> Result<String, Failure> {
    std::env::var(name).map_err(|_| {
        Failure::new(format!(
            "{name} is not set: build airlock with cargo (`cargo build -p airlock`)"
        ))
    })
}

struct GuestCrate {
    name: String,
    package: String,
    manifest: PathBuf,
}

fn bundled_crates(root: &Path) -> Result<Vec<GuestCrate>, Failure> {
    let mut crates = Vec::new();
    for group in ["adapters", "filters"] {
        let Ok(entries) = std::fs::read_dir(root.join(group)) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        dirs.sort();
        for dir in dirs {
            let cargo_toml = dir.join("Cargo.toml");
            let Some(name) = dir.file_name().map(|n| n.to_string_lossy().to_string()) else {
                continue;
            };
            let manifest = dir.join(format!("{name}.toml"));
            if !cargo_toml.exists() || !manifest.exists() {
                continue;
            }
            let text = std::fs::read_to_string(&cargo_toml).map_err(|e| {
                Failure::new(format!(
                    "cannot read {}: {e}: make it a readable UTF-8 file",
                    cargo_toml.display()
                ))
            })?;
            let Some(package) = text.lines().find_map(|l| {
                let l = l.trim();
                l.strip_prefix("name")?
                    .trim()
                    .strip_prefix('=')?
                    .trim()
                    .strip_prefix('"')?
                    .strip_suffix('"')
                    .map(String::from)
            }) else {
                return Err(Failure::new(format!(
                    "no package name in {}: add `name = \"…\"` to its [package]",
                    cargo_toml.display()
                )));
            };
            crates.push(GuestCrate {
                name,
                package,
                manifest,
            });
        }
    }
    Ok(crates)
}

/// Make sure the toolchain this build runs under has the `wasm32-wasip2`
/// standard library, adding it with rustup when it is missing.
fn ensure_target() -> Result<(), Failure> {
    // Cargo hands its build scripts the compiler it uses; the nested cargo
    // inherits it, so this is the compiler the guests are built with.
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    if target_installed(&rustc)? {
        return Ok(());
    }
    // Set by rustup's proxies: the toolchain cargo runs under.
    let Ok(toolchain) = std::env::var("RUSTUP_TOOLCHAIN") else {
        return Err(Failure::new(format!(
            "the {TARGET} standard library is not installed for {rustc}, and this build \
             does not run under rustup: install the {TARGET} target for this compiler \
             (with rustup: `rustup target add {TARGET}`)"
        )));
    };
    let add = format!("rustup target add {TARGET} --toolchain {toolchain}");
    // `rustup toolchain link` makes a symlink, and rustup manages no
    // components of a linked toolchain.
    let linked = std::env::var_os("RUSTUP_HOME").is_some_and(|home| {
        Path::new(&home)
            .join("toolchains")
            .join(&toolchain)
            .is_symlink()
    });
    if linked {
        return Err(Failure::new(format!(
            "the {TARGET} target is not installed for toolchain {toolchain}, which is linked, \
             and rustup adds no targets to a linked toolchain: put the {TARGET} standard \
             library into its sysroot, or build with a rustup-installed toolchain \
             (`rustup target add {TARGET} --toolchain stable`, then `cargo +stable …`)"
        )));
    }
    let output = Command::new("rustup")
        .args(["target", "add", TARGET, "--toolchain", &toolchain])
        .output();
    let output = match output {
        Ok(output) => output,
        Err(e) => {
            return Err(Failure::new(format!(
                "the {TARGET} target is not installed for toolchain {toolchain}, and rustup \
                 cannot be run ({e}): run `{add}`"
            )));
        }
    };
    if output.status.success() && target_installed(&rustc)? {
        println!(
            "cargo::warning=added the {TARGET} target to toolchain {toolchain} (`{add}`): \
             the bundled components are built for it"
        );
        return Ok(());
    }
    let said = String::from_utf8_lossy(&output.stderr);
    Err(Failure {
        // Its error and the chain of causes, without progress lines and
        // without the backtrace that may follow.
        details: said
            .lines()
            .take_while(|l| !l.starts_with("Stack backtrace"))
            .filter(|l| !l.trim().is_empty() && !l.starts_with("info:"))
            .take(SHOWN_LINES)
            .map(String::from)
            .collect(),
        cause: format!(
            "the {TARGET} target is not installed for toolchain {toolchain}, and rustup \
             could not add it: run `{add}` once it can (network, disk), or build with a \
             toolchain that has the target"
        ),
    })
}

/// Whether `rustc`'s sysroot holds the target's standard library.
fn target_installed(rustc: &str) -> Result<bool, Failure> {
    let output = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .map_err(|e| {
            Failure::new(format!(
                "cannot run {rustc} ({e}): install Rust with rustup (https://rustup.rs)"
            ))
        })?;
    if !output.status.success() {
        return Err(Failure {
            details: error_lines(&String::from_utf8_lossy(&output.stderr)),
            cause: format!(
                "{rustc} does not know the {TARGET} target: use a current stable toolchain \
                 (`rustup update stable`)"
            ),
        });
    }
    let libdir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    let Ok(entries) = std::fs::read_dir(libdir) else {
        return Ok(false);
    };
    Ok(entries.filter_map(Result::ok).any(|e| {
        let name = e.file_name().to_string_lossy().to_string();
        name.starts_with("libcore-") && name.ends_with(".rlib")
    }))
}

fn build(root: &Path, target_dir: &Path, crates: &[GuestCrate]) -> Result<(), Failure> {
    let packages: Vec<&str> = crates.iter().map(|c| c.package.as_str()).collect();
    let mut cargo = guest_cargo(root, target_dir, &packages);
    // One line per diagnostic, and no progress lines: what is shown on
    // failure is the errors alone.
    cargo.args(["--quiet", "--message-format=short"]);
    let output = cargo.output().map_err(|e| {
        Failure::new(format!(
            "cannot run cargo to build the bundled components ({e}): run the build with cargo"
        ))
    })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let cause = if stderr.contains(TARGET)
        && (stderr.contains("target may not be installed")
            || stderr.contains("can't find crate for `core`")
            || stderr.contains("can't find crate for `std`"))
    {
        format!("the {TARGET} target is missing: run `rustup target add {TARGET}`")
    } else {
        format!(
            "a bundled component (adapters/*, filters/*) did not build for {TARGET}: fix \
             the errors above, then build again"
        )
    };
    Err(Failure {
        details: error_lines(&stderr),
        cause,
    })
}

/// A tool's error output without warnings and blank lines, at most
/// [`SHOWN_LINES`] lines.
fn error_lines(stderr: &str) -> Vec<String> {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !is_warning(l))
        .collect();
    let mut shown: Vec<String> = lines
        .iter()
        .take(SHOWN_LINES)
        .map(|&l| String::from(l))
        .collect();
    if lines.len() > SHOWN_LINES {
        shown.push(format!("… and {} more lines", lines.len() - SHOWN_LINES));
    }
    shown
}

/// A warning line, with or without a `path:line:col: ` prefix (the short
/// message format).
fn is_warning(line: &str) -> bool {
    let line = line.trim_start();
    line.starts_with("warning")
        || line
            .split_once(": ")
            .is_some_and(|(_, rest)| rest.starts_with("warning"))
}

include!("guest_build.rs");
