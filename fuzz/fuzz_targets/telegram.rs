//! `telegram`: see `airlock_adapter_telegram::fuzzing::check_updates` for what it checks. The
//! adapter is built natively, from its own source (`fuzz/adapters/telegram`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| airlock_adapter_telegram::fuzzing::check_updates(data));
