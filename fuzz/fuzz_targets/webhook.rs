//! `webhook`: see `airlock_adapter_webhook::fuzzing::check_requests` for what it checks. The
//! adapter is built natively, from its own source (`fuzz/adapters/webhook`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| airlock_adapter_webhook::fuzzing::check_requests(data));
