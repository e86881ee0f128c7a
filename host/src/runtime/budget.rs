//! Per-call CPU budgets on top of epoch interruption.
//!
//! Every [`super::engine::TICK`] the engine's epoch advances. A store's
//! deadline is one tick ahead; when it passes, the callback below spends one
//! tick of the call's budget and lets the guest go on (yielding to tokio, so
//! a busy guest never starves other tasks), or interrupts it once the budget
//! is gone. Time the guest spends waiting in host calls does not count: when a
//! host call returns, the deadline is reset to one tick from now, so ticks that
//! passed while the host was working (an HTTP request, a database write) are
//! never charged.

use std::time::Duration;

use wasmtime::{CallHook, Store, UpdateDeadline};

use super::engine::TICK;

/// The running call's remaining CPU.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuBudget {
    ticks_left: u64,
    exhausted: bool,
}

impl CpuBudget {
    /// Whether the last call was interrupted for running out of budget.
    pub fn exhausted(&self) -> bool {
        self.exhausted
    }
}

/// Something that carries a [`CpuBudget`] in its store data.
pub trait HasCpuBudget: Send + 'static {
    /// The budget.
    fn cpu(&mut self) -> &mut CpuBudget;
}

/// Install the budget callbacks on a fresh store.
pub fn install<T: HasCpuBudget>(store: &mut Store<T>) {
    store.epoch_deadline_callback(|mut cx| {
        let cpu = cx.data_mut().cpu();
        if cpu.ticks_left == 0 {
            cpu.exhausted = true;
            return Ok(UpdateDeadline::Interrupt);
        }
        cpu.ticks_left -= 1;
        Ok(UpdateDeadline::Yield(1))
    });
    store.call_hook(|mut cx, hook| {
        if matches!(hook, CallHook::ReturningFromHost) {
            cx.set_epoch_deadline(1);
        }
        Ok(())
    });
}

/// Give the next call `budget` of CPU.
pub fn arm<T: HasCpuBudget>(store: &mut Store<T>, budget: Duration) {
    let ticks = (budget.as_millis() / TICK.as_millis()).max(1) as u64;
    *store.data_mut().cpu() = CpuBudget {
        ticks_left: ticks,
        exhausted: false,
    };
    store.set_epoch_deadline(1);
}
