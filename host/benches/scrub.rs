//! Scrub throughput on a 16 MiB response body (the egress response cap): the
//! encodings-aware scrubber (one Aho-Corasick pass over every spelling and
//! every 12-byte piece of a Telegram-sized token) against the previous
//! algorithm (a naive search per spelling, raw and percent-encoded only),
//! re-implemented here for comparison. Prints MiB/s; `cargo bench -p airlock
//! --bench scrub`.

use std::time::{Duration, Instant};

use airlock::secrets::{Scrubber, SecretValue};

const TOKEN: &str = "7781234560:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/x";
const BODY: usize = 16 << 20;

/// A JSON-ish body of pseudo-random words, with the token in it `hits` times.
fn body(hits: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(BODY + 64);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while out.len() < BODY {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let word = format!("{{\"id\":{},\"text\":\"w{:x}\"}},", x % 100_000, x);
        out.extend_from_slice(word.as_bytes());
    }
    for i in 0..hits {
        let at = (i + 1) * (BODY / (hits + 1));
        out[at..at + TOKEN.len()].copy_from_slice(TOKEN.as_bytes());
    }
    out.truncate(BODY);
    out
}

/// The previous scrubber: each spelling searched for and replaced in turn.
fn naive(haystack: &[u8], forms: &[Vec<u8>]) -> Vec<u8> {
    let mut out = haystack.to_vec();
    for form in forms {
        let mut next = Vec::with_capacity(out.len());
        let mut i = 0;
        while i < out.len() {
            if out[i..].starts_with(form) {
                next.extend_from_slice(b"[redacted]");
                i += form.len();
            } else {
                next.push(out[i]);
                i += 1;
            }
        }
        out = next;
    }
    out
}

fn mib_per_s(bytes: usize, took: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / took.as_secs_f64()
}

fn time<T>(runs: u32, mut f: impl FnMut() -> T) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..runs {
        let started = Instant::now();
        std::hint::black_box(f());
        best = best.min(started.elapsed());
    }
    best
}

fn main() {
    let started = Instant::now();
    let scrubber = Scrubber::for_values(&[&SecretValue::new(TOKEN)]);
    println!("build: {:?} ({scrubber:?})", started.elapsed());
    let old_forms: Vec<Vec<u8>> = vec![
        TOKEN.as_bytes().to_vec(),
        TOKEN.replace(':', "%3A").replace('/', "%2F").into_bytes(),
        TOKEN.replace(':', "%3a").replace('/', "%2f").into_bytes(),
        TOKEN.replace('/', "\\/").into_bytes(),
    ];
    for hits in [0, 100] {
        let input = body(hits);
        let new = time(5, || scrubber.scrub(&input).len());
        let old = time(3, || naive(&input, &old_forms).len());
        println!(
            "16 MiB, {hits} tokens: encodings-aware {:.0} MiB/s ({new:?}); previous {:.0} MiB/s ({old:?})",
            mib_per_s(BODY, new),
            mib_per_s(BODY, old)
        );
    }
}
