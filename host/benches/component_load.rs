//! Cold versus warm load of the bundled components: compiling with cranelift
//! (empty cache) against loading the cached artefact, both followed by the
//! import check, linking and pre-instantiation that every start performs.
//!
//! Run with `cargo bench -p airlock --bench component_load`.

use std::time::{Duration, Instant};

use airlock::catalog::bundled_candidates;
use airlock::home::AirlockHome;
use airlock::host::Host;
use airlock::runtime::cache::{CacheOutcome, ComponentCache};

const ROUNDS: usize = 7;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let host = Host::open(AirlockHome::open(tmp.path().join("home")).expect("home")).expect("host");
    let candidates = bundled_candidates();
    println!(
        "{:<12} {:>10} {:>12} {:>12} {:>8}",
        "component", "wasm KiB", "cold (ms)", "warm (ms)", "ratio"
    );
    let (mut cold_total, mut warm_total) = (Duration::ZERO, Duration::ZERO);
    for c in &candidates {
        let mut cold = Vec::new();
        let mut warm = Vec::new();
        for round in 0..ROUNDS {
            // A fresh, empty cache directory: nothing to reuse.
            let dir = tmp.path().join(format!("cache-{}-{round}", c.name));
            std::fs::create_dir_all(&dir).unwrap();
            let cache_dir =
                cap_std::fs::Dir::open_ambient_dir(&dir, cap_std::ambient_authority()).unwrap();
            let host = host.alongside(ComponentCache::new(cache_dir)).unwrap();
            let t = Instant::now();
            let loaded = host.load(c).expect("cold load");
            cold.push(t.elapsed());
            assert_eq!(loaded.cache, CacheOutcome::Compiled);
            let t = Instant::now();
            let loaded = host.load(c).expect("warm load");
            warm.push(t.elapsed());
            assert_eq!(loaded.cache, CacheOutcome::Hit);
        }
        let (cold, warm) = (median(cold), median(warm));
        cold_total += cold;
        warm_total += warm;
        println!(
            "{:<12} {:>10} {:>12.1} {:>12.2} {:>7.0}x",
            c.name,
            c.wasm.len() / 1024,
            cold.as_secs_f64() * 1e3,
            warm.as_secs_f64() * 1e3,
            cold.as_secs_f64() / warm.as_secs_f64()
        );
    }
    println!(
        "{:<12} {:>10} {:>12.1} {:>12.2} {:>7.0}x   (median of {ROUNDS} rounds each)",
        "all",
        "",
        cold_total.as_secs_f64() * 1e3,
        warm_total.as_secs_f64() * 1e3,
        cold_total.as_secs_f64() / warm_total.as_secs_f64()
    );
}
