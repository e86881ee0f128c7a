//! The one wasmtime `Engine` and its epoch ticker.
//!
//! Epoch interruption is the CPU clock for guests: a thread bumps the epoch
//! every [`TICK`], and each store turns ticks into a per-call budget (see
//! [`super::budget`]). The ticker holds only a weak reference, so it stops when
//! the engine is dropped.

use std::time::Duration;

use wasmtime::{Config, Engine};

/// Length of one epoch tick: the granularity of CPU budgets.
pub const TICK: Duration = Duration::from_millis(10);

/// Largest wasm stack a guest may use.
const MAX_WASM_STACK: usize = 512 * 1024;

/// Build the engine every component runs on, and start its ticker.
pub fn new_engine() -> wasmtime::Result<Engine> {
    let mut cfg = Config::new();
    cfg.wasm_component_model(true);
    cfg.epoch_interruption(true);
    cfg.max_wasm_stack(MAX_WASM_STACK);
    // The host speaks WASI 0.2 only; keep the 0.3 machinery out of reach.
    cfg.concurrency_support(false);
    let engine = Engine::new(&cfg)?;
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("airlock-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .map_err(|e| wasmtime::format_err!("cannot start the epoch ticker: {e}"))?;
    Ok(engine)
}
