//! From bytes and a manifest to a pre-instantiated component.

use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::Component;

use super::cache::{CacheOutcome, ComponentCache, LoadError, sha256_hex};
use super::imports::{self, ImportRefusal};
use super::linker::linker;
use super::state::ComponentState;
use crate::bindings::{AdapterPre, FilterPre};
use crate::manifest::{Effective, Kind, Manifest};

/// Why a component cannot be prepared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrepareError {
    /// Not loadable at all.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Imports something the grant does not allow.
    #[error("{name} is refused: {}", refusal_lines(.refusals))]
    Imports {
        /// Component.
        name: String,
        /// Each refused import.
        refusals: Vec<ImportRefusal>,
    },
    /// Does not export the world its manifest claims, or linking failed.
    #[error("{name} does not fit the `{kind}` world of airlock:channel@0.1: {reason}")]
    World {
        /// Component.
        name: String,
        /// Claimed kind.
        kind: Kind,
        /// What wasmtime said.
        reason: String,
    },
}

fn refusal_lines(r: &[ImportRefusal]) -> String {
    r.iter().map(|r| format!("\n  - {r}")).collect()
}

/// A component compiled and checked against its grant.
#[derive(Clone)]
pub struct Loaded {
    /// Component name.
    pub name: Arc<str>,
    /// Its manifest.
    pub manifest: Manifest,
    /// What it may do.
    pub effective: Arc<Effective>,
    /// sha256 of the wasm.
    pub sha256: String,
    /// Whether compiling was needed.
    pub cache: CacheOutcome,
    /// The ready-to-instantiate component.
    pub pre: Prepared,
}

/// A pre-instantiated component of either world.
#[derive(Clone)]
pub enum Prepared {
    /// World `adapter`.
    Adapter(AdapterPre<ComponentState>),
    /// World `filter`.
    Filter(FilterPre<ComponentState>),
}

/// Names of everything `component` imports.
pub fn import_names(engine: &Engine, component: &Component) -> Vec<String> {
    component
        .component_type()
        .imports(engine)
        .map(|(n, _)| n.to_string())
        .collect()
}

/// Names of everything `component` exports.
pub fn export_names(engine: &Engine, component: &Component) -> Vec<String> {
    component
        .component_type()
        .exports(engine)
        .map(|(n, _)| n.to_string())
        .collect()
}

/// Compile (or load from cache), check imports, link, pre-instantiate.
pub fn prepare(
    engine: &Engine,
    cache: &ComponentCache,
    manifest: Manifest,
    effective: Effective,
    wasm: &[u8],
) -> Result<Loaded, PrepareError> {
    let name = manifest.name.clone();
    let (component, outcome) = cache.load(engine, &name, wasm)?;
    let linkable = effective.linkable();
    let names = import_names(engine, &component);
    imports::check(names.iter().map(String::as_str), linkable).map_err(|refusals| {
        PrepareError::Imports {
            name: name.clone(),
            refusals,
        }
    })?;
    let world_err = |e: wasmtime::Error| PrepareError::World {
        name: name.clone(),
        kind: manifest.kind,
        reason: format!("{e:#}"),
    };
    let l = linker(engine, manifest.kind, linkable).map_err(world_err)?;
    let instance_pre = l.instantiate_pre(&component).map_err(world_err)?;
    let pre = match manifest.kind {
        Kind::Adapter => Prepared::Adapter(AdapterPre::new(instance_pre).map_err(world_err)?),
        Kind::Filter => Prepared::Filter(FilterPre::new(instance_pre).map_err(world_err)?),
    };
    Ok(Loaded {
        name: name.into(),
        manifest,
        effective: Arc::new(effective),
        sha256: sha256_hex(wasm),
        cache: outcome,
        pre,
    })
}
