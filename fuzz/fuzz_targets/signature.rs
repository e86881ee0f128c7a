//! `signature`: see `airlock::fuzzing::check_signature` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| airlock::fuzzing::check_signature(data));
