//! `discord`: see `airlock_adapter_discord::fuzzing::check_gateway` for what it checks. The
//! adapter is built natively, from its own source (`fuzz/adapters/discord`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| airlock_adapter_discord::fuzzing::check_gateway(data));
