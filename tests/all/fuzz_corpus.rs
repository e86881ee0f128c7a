//! The fuzz targets' saved inputs, replayed on stable: every file under
//! `fuzz/corpus/TARGET/` and `fuzz/regressions/TARGET/` goes through the
//! check its target runs (`airlock::fuzzing`), so a finding fixed once stays
//! fixed without a nightly toolchain. The adapters' targets are replayed by
//! a unit test in each adapter's `fuzzing` module.

use std::path::Path;

#[test]
fn every_saved_input_passes_its_check() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    for (target, check) in airlock::fuzzing::TARGETS {
        let mut seeds = 0;
        for dir in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                if std::panic::catch_unwind(|| check(&data)).is_err() {
                    panic!("{} fails its check", path.display());
                }
                seeds += usize::from(dir == "corpus");
            }
        }
        assert!(seeds > 0, "fuzz/corpus/{target} holds no seed");
    }
}
