//! `fakechat`: see `airlock_adapter_fakechat::fuzzing::check_requests` for what it checks. The
//! adapter is built natively, from its own source (`fuzz/adapters/fakechat`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| airlock_adapter_fakechat::fuzzing::check_requests(data));
