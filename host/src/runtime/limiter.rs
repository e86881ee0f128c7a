//! Memory and table limits for one store, counted across all its memories.
//!
//! wasmtime's `StoreLimits` caps each linear memory on its own; a component
//! may have several, so a per-memory cap multiplies. This limiter sums every
//! growth in the store against one budget, and bounds the number of
//! instances, memories and tables.

use wasmtime::ResourceLimiter;

/// Most core instances in one store. A Rust adapter has a handful; one
/// built by componentize-py instantiates 38 core modules (CPython and the
/// libraries it links dynamically), so the bound leaves room above that.
pub(crate) const MAX_INSTANCES: usize = 64;
/// Most linear memories in one store.
pub(crate) const MAX_MEMORIES: usize = 8;
/// Most tables in one store.
pub(crate) const MAX_TABLES: usize = 32;
/// Most elements of one table.
pub(crate) const MAX_TABLE_ELEMENTS: usize = 100_000;

/// The store's memory budget.
#[derive(Debug)]
pub struct StoreLimiter {
    budget: usize,
    used: usize,
    /// A growth was refused: a failure that follows is likely its doing.
    refused: bool,
}

impl StoreLimiter {
    /// A limiter allowing `budget` bytes of linear memory in total.
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            used: 0,
            refused: false,
        }
    }

    /// Bytes granted so far.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Whether a memory growth was refused (at instantiation, a minimum
    /// above the budget; later, a `memory.grow` that returned -1).
    pub fn refused(&self) -> bool {
        self.refused
    }
}

impl ResourceLimiter for StoreLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let extra = desired.saturating_sub(current);
        if self.used.saturating_add(extra) > self.budget {
            // The guest sees memory.grow return -1, as the spec says.
            self.refused = true;
            return Ok(false);
        }
        self.used += extra;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_summed_across_memories() {
        let mut l = StoreLimiter::new(100);
        assert!(l.memory_growing(0, 60, None).unwrap());
        // A second memory draws on the same budget.
        assert!(!l.memory_growing(0, 60, None).unwrap());
        assert!(l.memory_growing(0, 40, None).unwrap());
        assert!(!l.memory_growing(40, 41, None).unwrap());
        assert_eq!(l.used(), 100);
        assert!(l.refused());
        assert!(l.table_growing(0, MAX_TABLE_ELEMENTS, None).unwrap());
        assert!(!l.table_growing(0, MAX_TABLE_ELEMENTS + 1, None).unwrap());
    }
}
