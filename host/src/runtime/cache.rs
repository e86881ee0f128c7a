//! Compiled-component cache in `$AIRLOCK_HOME/cache/`.
//!
//! Compiling a component with cranelift costs far more than loading it, so the
//! compiled artefact is kept, keyed by the wasm's sha256 and the engine's
//! compatibility hash (a new wasmtime or a new config never reads a stale
//! entry). Entries are written to a temporary name and renamed, so a crash
//! never leaves a torn file. Only this directory, which only the host writes,
//! is ever deserialized: a precompiled `.cwasm` handed in as a plugin is
//! refused, because deserializing foreign machine code would bypass the
//! sandbox.

use std::hash::{Hash, Hasher};

use cap_std::fs::Dir;
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Precompiled};

/// Errors loading a component.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The bytes are a precompiled artefact, not a wasm component.
    #[error(
        "{name} is a precompiled wasmtime artefact; airlock loads only .wasm components and compiles them itself"
    )]
    Precompiled {
        /// Component name.
        name: String,
    },
    /// The bytes are not a valid component.
    #[error("{name} is not a valid WebAssembly component: {reason}")]
    Invalid {
        /// Component name.
        name: String,
        /// What wasmtime said.
        reason: String,
    },
}

/// Whether the component came from the cache or was compiled now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded a compiled artefact.
    Hit,
    /// Compiled (and stored, if the cache is writable).
    Compiled,
}

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The cache directory handle.
#[derive(Debug)]
pub struct ComponentCache {
    dir: Option<Dir>,
}

impl ComponentCache {
    /// A cache in `dir`.
    pub fn new(dir: Dir) -> Self {
        Self { dir: Some(dir) }
    }

    /// No cache: always compile.
    pub fn disabled() -> Self {
        Self { dir: None }
    }

    /// Compile `wasm` or load it from the cache.
    pub fn load(
        &self,
        engine: &Engine,
        name: &str,
        wasm: &[u8],
    ) -> Result<(Component, CacheOutcome), LoadError> {
        if Engine::detect_precompiled(wasm)
            .is_some_and(|p| matches!(p, Precompiled::Component | Precompiled::Module))
        {
            return Err(LoadError::Precompiled { name: name.into() });
        }
        let key = cache_key(engine, wasm);
        if let Some(dir) = &self.dir
            && let Ok(bytes) = dir.read(&key)
        {
            // SAFETY: entries in this directory are written only by `store`
            // below from `Component::serialize` of this engine's config, and
            // the key includes the engine's compatibility hash.
            match unsafe { Component::deserialize(engine, &bytes) } {
                Ok(c) => return Ok((c, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(component = name, "discarding unreadable cache entry: {e}")
                }
            }
        }
        let component = Component::from_binary(engine, wasm).map_err(|e| LoadError::Invalid {
            name: name.into(),
            reason: format!("{e:#}"),
        })?;
        if let Some(dir) = &self.dir
            && let Err(e) = store(dir, &key, &component)
        {
            tracing::warn!(
                component = name,
                "cannot write the compiled-component cache: {e}"
            );
        }
        Ok((component, CacheOutcome::Compiled))
    }
}

fn cache_key(engine: &Engine, wasm: &[u8]) -> String {
    let mut h = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    let engine_hash = hex::encode(h.0.finalize());
    format!("{}-{}.cwasm", sha256_hex(wasm), &engine_hash[..16])
}

/// Feeds `Hash` input into sha256, which, unlike `DefaultHasher`, is stable
/// across Rust releases.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        let d = self.0.clone().finalize();
        u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    }
}

fn store(dir: &Dir, key: &str, component: &Component) -> anyhow::Result<()> {
    let bytes = component.serialize().map_err(|e| anyhow::anyhow!("{e}"))?;
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = format!("{key}.tmp-{}-{seq}", std::process::id());
    dir.write(&tmp, &bytes)?;
    dir.rename(&tmp, dir, key)?;
    Ok(())
}
