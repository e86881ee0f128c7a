//! The engine filters run on: wasmtime's pooling allocator, so that the
//! fresh instance each message gets reuses a slot instead of mapping memory.
//!
//! A filter instance lives for one message. On the general engine each one
//! maps a linear-memory reservation, a fiber stack and copy-on-write pages of
//! the memory image, and unmaps them afterwards; in a multi-threaded process
//! every unmap and every first write to an image page flushes the other
//! cores' TLBs. That churn was the largest single cost of a reply. Here the
//! slots stay mapped: when an instance is dropped, wasmtime writes the dirty
//! pages of its memory back to the image's bytes (zero beyond it) and resets
//! its tables, so the next instance starts exactly as a newly mapped one
//! would, and no message can see the one before it (the `amnesia` fixture
//! checks this through the real binary).
//!
//! The pool is sized for filters, not adapters: adapters are long-lived and
//! stay on the general engine. Its slots admit what the store limiter admits
//! per component (see [`super::limiter`]), so any filter that loads on the
//! general engine fits a slot; a permit per instance keeps the number of live
//! instances within the pool, so a busy moment waits for a slot rather than
//! failing.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::limiter::{MAX_INSTANCES, MAX_MEMORIES, MAX_TABLE_ELEMENTS, MAX_TABLES};
use crate::manifest::HOST_CAP;

/// Filter instances alive at once, across all filters: each filter's spare
/// and the messages being judged.
pub const SLOTS: u32 = 16;

/// Memory of one slot kept mapped between instances and reset by copying
/// rather than by `madvise`: enough for a filter's image, stack and the heap
/// one message needs.
const KEEP_RESIDENT: usize = 4 << 20;

/// The engine and its slot permits.
#[derive(Clone)]
pub struct FilterPool {
    engine: Engine,
    slots: Arc<Semaphore>,
}

impl FilterPool {
    /// A pooled engine on `config` (the general engine's settings).
    pub fn new(mut config: Config) -> wasmtime::Result<Self> {
        let max_memory = (HOST_CAP.0 << 20) as usize;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(SLOTS)
            .max_core_instances_per_component(MAX_INSTANCES as u32)
            .max_memories_per_component(MAX_MEMORIES as u32)
            .max_tables_per_component(MAX_TABLES as u32)
            .max_memories_per_module(MAX_MEMORIES as u32)
            .max_tables_per_module(MAX_TABLES as u32)
            .table_elements(MAX_TABLE_ELEMENTS)
            .total_core_instances(SLOTS * MAX_INSTANCES as u32)
            .total_memories(SLOTS * MAX_MEMORIES as u32)
            .total_tables(SLOTS * MAX_TABLES as u32)
            .total_stacks(SLOTS)
            .max_memory_size(max_memory)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT / 4)
            // Only the pages an instance dirtied are reset, where the kernel
            // can say which (Linux 6.7 and later); elsewhere the whole kept
            // part is.
            .pagemap_scan(Enabled::Auto);
        // A slot is as large as the largest memory a grant allows; the
        // reservation need not be the general engine's 4 GiB.
        config
            .memory_reservation(max_memory as u64)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        Ok(Self {
            engine: Engine::new(&config)?,
            slots: Arc::new(Semaphore::new(SLOTS as usize)),
        })
    }

    /// The pooled engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Whether every slot is taken: an instance given back now may be what
    /// another message waits for.
    pub fn exhausted(&self) -> bool {
        self.slots.available_permits() == 0
    }

    /// Waits for a free slot; the permit is given back when dropped, which
    /// must be after the instance's store is.
    pub async fn slot(&self) -> OwnedSemaphorePermit {
        self.slots
            .clone()
            .acquire_owned()
            .await
            .expect("the slot semaphore is never closed")
    }
}
