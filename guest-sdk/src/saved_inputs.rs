//! Replaying a fuzz target's saved inputs as a plain test, on the stable
//! toolchain: every file under `fuzz/corpus/TARGET/` and
//! `fuzz/regressions/TARGET/` of the workspace goes through the target's
//! check. For the bundled adapters' native tests; not part of a component.

/// Feeds every saved input of `target` to `check`; `manifest_dir` is the
/// calling crate's `CARGO_MANIFEST_DIR` (an adapter two levels below the
/// workspace root). Fails when no input was found, so a moved corpus is
/// noticed.
pub fn replay(manifest_dir: &str, target: &str, check: impl Fn(&[u8])) {
    let root = std::path::Path::new(manifest_dir).join("../../fuzz");
    let mut count = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            eprintln!("{}", path.display());
            check(&std::fs::read(&path).expect("a saved input"));
            count += 1;
        }
    }
    assert!(count > 0, "no saved inputs under {}", root.display());
}
