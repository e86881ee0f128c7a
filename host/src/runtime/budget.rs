//! Per-call CPU budgets on top of epoch interruption.
//!
//! Every [`super::engine::TICK`] the engine's epoch advances. A store's
//! deadline is one tick ahead; when it passes, the callback below spends one
//! tick of the call's budget and lets the guest go on (yielding to tokio, so
//! a busy guest never starves other tasks and the call's wall-clock timeout
//! can fire), or interrupts it once the budget is gone or the call's absolute
//! wall-clock deadline has passed.
//!
//! Time in host calls is charged as it comes: synchronous host work done for
//! the guest costs CPU like wasm does (a guest looping on a cheap host call is
//! stopped like any other loop), while a long asynchronous wait (an HTTP
//! response) costs at most the one tick in which the guest resumes, because
//! the deadline is only checked when wasm runs again. The deadline is never
//! reset on the way back from the host: doing so would let a loop of host
//! calls run forever.

use std::time::{Duration, Instant};

use wasmtime::{Store, UpdateDeadline};

use super::engine::TICK;

/// The running call's remaining CPU.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuBudget {
    ticks_left: u64,
    exhausted: bool,
    wall_deadline: Option<Instant>,
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

/// Install the budget callback on a fresh store.
pub fn install<T: HasCpuBudget>(store: &mut Store<T>) {
    store.epoch_deadline_callback(|mut cx| {
        let cpu = cx.data_mut().cpu();
        let late = cpu.wall_deadline.is_some_and(|d| Instant::now() >= d);
        if cpu.ticks_left == 0 || late {
            cpu.exhausted = !late;
            return Ok(UpdateDeadline::Interrupt);
        }
        cpu.ticks_left -= 1;
        Ok(UpdateDeadline::Yield(1))
    });
}

/// Give the next call `budget` of CPU and at most `wall` of real time.
pub fn arm<T: HasCpuBudget>(store: &mut Store<T>, budget: Duration, wall: Duration) {
    let ticks = (budget.as_millis() / TICK.as_millis()).max(1) as u64;
    *store.data_mut().cpu() = CpuBudget {
        ticks_left: ticks,
        exhausted: false,
        wall_deadline: Some(Instant::now() + wall),
    };
    store.set_epoch_deadline(1);
}
