//! The host's context: state directory, database, config, engine and cache,
//! and the steps that turn a candidate component into something running.

use std::sync::Arc;

use wasmtime::Engine;

use crate::alert::Alerts;
use crate::caps::alerts::ComponentAlerts;
use crate::caps::egress::EgressPolicy;
use crate::caps::websocket::WsPolicy;
use crate::catalog::{self, Candidate, DropInProblem, Origin};
use crate::db::Db;
use crate::home::{ADAPTERS_DIR, AirlockHome, CACHE_DIR};
use crate::manifest::{Config, Effective, Kind, Trust, effective};
use crate::runtime::actor::{AdapterHandle, CursorSource, Unsolicited};
use crate::runtime::cache::ComponentCache;
use crate::runtime::engine::new_engines;
use crate::runtime::filter::FilterRunner;
use crate::runtime::filter_pool::FilterPool;
use crate::runtime::load::{Loaded, Prepared, prepare};
use crate::runtime::state::InstanceSpec;
use crate::secrets::{BoundSecret, load_secret_in};

/// Why a component cannot run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The manifest is missing or invalid.
    #[error("{name}: {reason}")]
    Manifest {
        /// Component.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Not approved, or changed since approval.
    #[error("{name}: {standing}")]
    NotApproved {
        /// Component.
        name: String,
        /// What to do.
        standing: String,
    },
    /// The grant does not apply.
    #[error(transparent)]
    Grant(#[from] crate::manifest::EffectiveError),
    /// Compiling, import checks or linking failed.
    #[error(transparent)]
    Prepare(#[from] crate::runtime::load::PrepareError),
    /// A secret is missing or unsafe.
    #[error("{name}: {source}")]
    Secret {
        /// Component.
        name: String,
        /// What is wrong.
        source: crate::secrets::SecretError,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    /// The component is of the other kind.
    #[error("{name} is a {kind}, not usable here")]
    WrongKind {
        /// Component.
        name: String,
        /// Its kind.
        kind: Kind,
    },
}

/// Everything the host holds.
pub struct Host {
    /// State directory.
    pub home: AirlockHome,
    /// Database.
    pub db: Db,
    /// Operator config.
    pub config: Config,
    /// The engine.
    pub engine: Engine,
    /// The pooled engine filters run on.
    pub(crate) filters: FilterPool,
    /// Compiled-component cache.
    pub cache: ComponentCache,
}

impl Host {
    /// Open the state directory at `home` with its database and config.
    pub fn open(home: AirlockHome) -> anyhow::Result<Self> {
        let db = Db::open(&home.db_path())?;
        let config = crate::home::load_config(&home.config_path())?;
        let (engine, filters) =
            new_engines().map_err(|e| anyhow::anyhow!("cannot start the wasm engine: {e}"))?;
        let cache = ComponentCache::new(home.sub(CACHE_DIR)?);
        Ok(Self {
            home,
            db,
            config,
            engine,
            filters,
            cache,
        })
    }

    /// A second host on the same state directory, database, config and
    /// engines, with its own `cache` (benchmarks compare cold and warm loads).
    pub fn alongside(&self, cache: ComponentCache) -> anyhow::Result<Self> {
        Ok(Self {
            home: AirlockHome::open(self.home.path())?,
            db: self.db.clone(),
            config: self.config.clone(),
            engine: self.engine.clone(),
            filters: self.filters.clone(),
            cache,
        })
    }

    /// Bundled components and drop-ins, plus refused drop-in files.
    pub fn candidates(&self) -> anyhow::Result<(Vec<Candidate>, Vec<DropInProblem>)> {
        let mut all = catalog::bundled_candidates();
        let (drop_ins, problems) = catalog::drop_ins(&self.home.sub(ADAPTERS_DIR)?)?;
        for d in drop_ins {
            if all.iter().any(|c| c.name == d.name) {
                tracing::warn!(
                    component = d.name,
                    "a drop-in has the name of a bundled component and is ignored"
                );
                continue;
            }
            all.push(d);
        }
        Ok((all, problems))
    }

    /// What `candidate` would get under the operator's grant.
    pub fn effective(&self, candidate: &Candidate) -> Result<Effective, StartError> {
        let manifest = candidate
            .manifest
            .as_ref()
            .map_err(|reason| StartError::Manifest {
                name: candidate.name.clone(),
                reason: reason.clone(),
            })?;
        let trust = match candidate.origin {
            Origin::Bundled => Trust::Bundled,
            Origin::DropIn => Trust::ThirdParty,
        };
        Ok(effective(
            manifest,
            &self.config.component(&candidate.name).grant,
            trust,
        )?)
    }

    /// Check standing, compute the grant, compile and link.
    pub fn load(&self, candidate: &Candidate) -> Result<Loaded, StartError> {
        let standing = candidate.standing(&self.db)?;
        if !standing.may_load() {
            return Err(StartError::NotApproved {
                name: candidate.name.clone(),
                standing: standing.describe(&candidate.name),
            });
        }
        self.load_unchecked(candidate)
    }

    /// Like [`Host::load`] without the approval check (for `inspect`).
    pub fn load_unchecked(&self, candidate: &Candidate) -> Result<Loaded, StartError> {
        let eff = self.effective(candidate)?;
        let manifest = candidate
            .manifest
            .clone()
            .map_err(|reason| StartError::Manifest {
                name: candidate.name.clone(),
                reason,
            })?;
        if manifest.kind != Kind::Filter {
            return Ok(prepare(
                &self.engine,
                &self.cache,
                manifest,
                eff,
                &candidate.wasm,
            )?);
        }
        let pooled = prepare(
            self.filters.engine(),
            &self.cache,
            manifest.clone(),
            eff.clone(),
            &candidate.wasm,
        );
        match pooled {
            // Only compiling depends on the engine, and a component too large
            // for a pool slot is refused there: it still runs, unpooled.
            Err(crate::runtime::load::PrepareError::Load(why)) => {
                let loaded = prepare(&self.engine, &self.cache, manifest, eff, &candidate.wasm)?;
                tracing::info!(
                    component = candidate.name,
                    "runs outside the filter pool (each instance maps its own memory): {why}"
                );
                Ok(loaded)
            }
            other => Ok(other?),
        }
    }

    /// The per-instance spec: egress policy with its secrets loaded, and its refusals and crash
    /// loop raised through `alerts` (about this adapter; a filter's about every adapter).
    pub(crate) fn instance_spec(
        &self,
        loaded: &Loaded,
        alerts: &Alerts,
    ) -> Result<InstanceSpec, StartError> {
        let eff = &loaded.effective;
        let adapter = (loaded.manifest.kind == Kind::Adapter).then(|| loaded.name.to_string());
        let alerts = ComponentAlerts::new(alerts.clone(), adapter);
        let load = |binding: &crate::manifest::SecretBinding| {
            let value = load_secret_in(&binding.name, self.home.dir(), self.home.path()).map_err(
                |source| StartError::Secret {
                    name: loaded.name.to_string(),
                    source,
                },
            )?;
            let bound =
                BoundSecret::new(binding.clone(), value).map_err(|source| StartError::Secret {
                    name: loaded.name.to_string(),
                    source,
                })?;
            crate::secrets::register(&bound);
            Ok::<_, StartError>(bound)
        };
        // The secrets bound to any of `destinations`, with their values.
        let bound_to = |destinations: &[crate::net::destination::Destination]| {
            eff.secrets
                .iter()
                .filter(|b| destinations.contains(&b.destination))
                .map(load)
                .collect::<Result<Vec<_>, _>>()
        };
        let egress = if eff.outbound_http.is_empty() {
            None
        } else {
            let secrets = bound_to(&eff.outbound_http)?;
            // One policy per component: its in-flight limit is shared by all its instances.
            Some(Arc::new(EgressPolicy {
                allow: eff.outbound_http.clone(),
                local_ok: eff.local.clone(),
                secrets,
                alerts: alerts.clone(),
                ..EgressPolicy::deny_all(loaded.name.to_string())
            }))
        };
        let websocket = if eff.websocket.is_empty() {
            None
        } else {
            let secrets = bound_to(&eff.websocket)?;
            let http_secrets = egress.as_ref().map_or(&[][..], |e| &e.secrets[..]);
            Some(Arc::new(WsPolicy::new(
                loaded.name.to_string(),
                eff.websocket.clone(),
                eff.local.clone(),
                secrets,
                http_secrets,
            )))
        };
        Ok(InstanceSpec {
            name: loaded.name.clone(),
            effective: eff.clone(),
            db: self.db.clone(),
            egress,
            websocket,
            events: None,
            alerts,
        })
    }

    /// Start an adapter's actor. Its alerts (refusals, a crash loop) are only
    /// logged: there is no one to send them to (tests, `inspect`).
    pub fn spawn_adapter(
        &self,
        loaded: &Loaded,
        unsolicited: Option<tokio::sync::mpsc::UnboundedSender<Unsolicited>>,
    ) -> Result<AdapterHandle, StartError> {
        self.spawn_adapter_with_egress(loaded, unsolicited, &Alerts::log_only())
            .map(|(handle, _)| handle)
    }

    /// Start an adapter's actor, raising its alerts through `alerts`; also
    /// returns its egress policy (shared with its instances), for requests the
    /// host makes on its behalf.
    pub(crate) fn spawn_adapter_with_egress(
        &self,
        loaded: &Loaded,
        unsolicited: Option<tokio::sync::mpsc::UnboundedSender<Unsolicited>>,
        alerts: &Alerts,
    ) -> Result<(AdapterHandle, Option<Arc<EgressPolicy>>), StartError> {
        let Prepared::Adapter(pre) = &loaded.pre else {
            return Err(StartError::WrongKind {
                name: loaded.name.to_string(),
                kind: Kind::Filter,
            });
        };
        let spec = self.instance_spec(loaded, alerts)?;
        let egress = spec.egress.clone();
        // Every started instance learns where the last process stopped.
        let queue = crate::queue::Queue::new(self.db.clone(), 0);
        let name = loaded.name.to_string();
        let cursor: CursorSource = Arc::new(move || queue.cursor(&name).map_err(|e| e.to_string()));
        let handle = AdapterHandle::spawn_with_cursor(
            self.engine.clone(),
            pre.clone(),
            spec,
            unsolicited,
            Some(cursor),
        );
        Ok((handle, egress))
    }

    /// A runner for a filter whose alerts (refusals) are only logged.
    pub fn filter_runner(&self, loaded: &Loaded) -> Result<FilterRunner, StartError> {
        self.filter_runner_with_alerts(loaded, &Alerts::log_only())
    }

    /// A runner for a filter, raising its alerts through `alerts` (about every
    /// adapter: a filter serves them all).
    pub(crate) fn filter_runner_with_alerts(
        &self,
        loaded: &Loaded,
        alerts: &Alerts,
    ) -> Result<FilterRunner, StartError> {
        let Prepared::Filter(pre) = &loaded.pre else {
            return Err(StartError::WrongKind {
                name: loaded.name.to_string(),
                kind: Kind::Adapter,
            });
        };
        let spec = self.instance_spec(loaded, alerts)?;
        let settings = self
            .config
            .component(&loaded.name)
            .settings
            .into_iter()
            .collect();
        let pool = wasmtime::Engine::same(pre.engine(), self.filters.engine())
            .then(|| self.filters.clone());
        Ok(FilterRunner::new(pre.clone(), pool, spec, settings))
    }

    /// The operator's settings for `name`, as `start` takes them.
    pub fn settings(&self, name: &str) -> Vec<(String, String)> {
        self.config.component(name).settings.into_iter().collect()
    }
}

/// Convenience for callers that only need a loadable candidate by name.
pub fn find<'a>(candidates: &'a [Candidate], name: &str) -> Option<&'a Candidate> {
    candidates.iter().find(|c| c.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Kind as AlertKind;
    use crate::home::AirlockHome;
    use crate::runtime::actor::{Health, MAX_CRASHES};

    #[tokio::test]
    async fn a_crash_loop_raises_one_quarantined_alert_about_that_adapter() {
        let dir = tempfile::tempdir().unwrap();
        let mut host = Host::open(AirlockHome::open(dir.path().join("home")).unwrap()).unwrap();
        // Too little memory to instantiate: every start is a crash.
        host.config =
            toml::from_str("[components.fakechat.grant]\nlimits = { memory_mib = 1 }").unwrap();
        let candidate = catalog::bundled_candidates()
            .into_iter()
            .find(|c| c.name == "fakechat")
            .expect("fakechat is bundled");
        let loaded = host.load(&candidate).unwrap();
        let (alerts, mut rx) = Alerts::channel();
        let (handle, _) = host
            .spawn_adapter_with_egress(&loaded, None, &alerts)
            .unwrap();
        for _ in 0..MAX_CRASHES + 2 {
            assert!(handle.describe().await.is_err());
        }
        assert!(matches!(handle.health().await, Health::Quarantined(_)));
        // Each crash before the loop is raised for the record (never sent to owners).
        for n in 1..MAX_CRASHES {
            let crashed = rx.try_recv().expect("a crash raised for the record");
            assert_eq!(crashed.kind, AlertKind::Crashed);
            assert!(
                crashed.text.starts_with("fakechat crashed ("),
                "{}",
                crashed.text
            );
            assert!(
                crashed.text.contains(&format!("({n} within")),
                "{}",
                crashed.text
            );
        }
        let alert = rx.try_recv().expect("a quarantined alert");
        assert_eq!(alert.kind, AlertKind::Quarantined);
        assert_eq!(alert.adapter.as_deref(), Some("fakechat"));
        assert!(
            alert.text.starts_with(&format!(
                "fakechat was quarantined: it crashed {MAX_CRASHES} times"
            )),
            "{}",
            alert.text
        );
        assert!(rx.try_recv().is_err(), "raised once");
    }
}
