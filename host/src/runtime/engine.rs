//! The wasmtime engines (adapters', and filters' pooled one) and their
//! epoch ticker.
//!
//! Epoch interruption is the CPU clock for guests: a thread bumps the epoch
//! every [`TICK`], and each store turns ticks into a per-call budget (see
//! [`super::budget`]). The ticker holds only a weak reference, so it stops when
//! the engine is dropped.

use std::time::Duration;

use wasmtime::{Config, Engine};

use super::filter_pool::FilterPool;

/// Length of one epoch tick: the granularity of CPU budgets.
pub const TICK: Duration = Duration::from_millis(10);

/// Largest wasm stack a guest may use.
const MAX_WASM_STACK: usize = 512 * 1024;

/// The settings every engine shares.
fn config() -> Config {
    let mut cfg = Config::new();
    cfg.wasm_component_model(true);
    cfg.epoch_interruption(true);
    cfg.max_wasm_stack(MAX_WASM_STACK);
    // The host speaks WASI 0.2 only; keep the 0.3 machinery out of reach.
    cfg.concurrency_support(false);
    cfg
}

/// Build the engine adapters run on and the pooled one filters run on (see
/// [`super::filter_pool`]), with one ticker for both.
pub fn new_engines() -> wasmtime::Result<(Engine, FilterPool)> {
    let engine = Engine::new(&config())?;
    let filters = FilterPool::new(config())?;
    tick(vec![engine.clone(), filters.engine().clone()])?;
    Ok((engine, filters))
}

/// Bump the epoch of `engines` every [`TICK`] until the last of them is
/// dropped.
fn tick(engines: Vec<Engine>) -> wasmtime::Result<()> {
    let weak: Vec<_> = engines.iter().map(Engine::weak).collect();
    drop(engines);
    std::thread::Builder::new()
        .name("airlock-epoch".into())
        .spawn(move || {
            loop {
                let mut alive = false;
                for w in &weak {
                    if let Some(engine) = w.upgrade() {
                        engine.increment_epoch();
                        alive = true;
                    }
                }
                if !alive {
                    return;
                }
                std::thread::sleep(TICK);
            }
        })
        .map_err(|e| wasmtime::format_err!("cannot start the epoch ticker: {e}"))?;
    Ok(())
}
