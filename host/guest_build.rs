// Shared by `build.rs` (bundled components) and the integration tests
// (hostile fixtures): build guest crates for wasm32-wasip2 with a nested
// plain cargo, in its own target directory so the outer build's lock is never
// contended. Included with `include!`, so it holds items only.

/// The command `cargo build --release --target wasm32-wasip2 -p …` in `root`
/// into `target_dir`, with the outer build's host-only settings removed.
fn guest_cargo(
    root: &std::path::Path,
    target_dir: &std::path::Path,
    packages: &[&str],
) -> std::process::Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(target_dir);
    for p in packages {
        cmd.args(["-p", p]);
    }
    // The outer build's settings are for the host, not for the guests.
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PROFILE_RELEASE_DEBUG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Run [`guest_cargo`]; the output of the nested cargo. For the tests, where
/// a panic is the way to fail (`build.rs` reports its own errors instead).
#[allow(dead_code)]
fn build_guests(
    root: &std::path::Path,
    target_dir: &std::path::Path,
    packages: &[&str],
) -> std::process::Output {
    guest_cargo(root, target_dir, packages)
        .output()
        .expect("cannot run cargo to build guest components")
}
