//! Per-store state of one component instance.
//!
//! Built fresh for every instance (an instance that trapped is discarded
//! together with its store), from an [`InstanceSpec`] that holds everything
//! the grant decided. Nothing ambient is inherited: no environment, no
//! arguments, no preopened directories, no sockets, stdin closed, and
//! stdout/stderr going to the host's log.

use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use super::budget::{self, CpuBudget, HasCpuBudget};
use super::call_error::Spent;
use super::limiter::StoreLimiter;
use crate::caps::alerts::ComponentAlerts;
use crate::caps::clock::TimerCtx;
use crate::caps::egress::{EgressHooks, EgressPolicy};
use crate::caps::kv::{KvCtx, KvNamespace};
use crate::caps::log::GuestLog;
use crate::caps::websocket::{WsConnections, WsPolicy};
use crate::db::Db;
use crate::host_event::HostEvent;
use crate::manifest::Effective;
use crate::warn_budget::WarnBudget;

/// Resource handles (streams, requests, pollables) one instance may hold.
const MAX_RESOURCES: usize = 4096;
/// Bytes the guest may pass to one host call.
const HOSTCALL_FUEL: usize = 64 << 20;
/// Largest `random` request.
const MAX_RANDOM: u64 = 64 * 1024;
/// Largest header field the guest may build.
const MAX_FIELD: usize = 64 * 1024;

/// State owned by one component's store: WASI's contexts, the limits and budget, and one
/// context per airlock capability. Only the linker (`runtime::linker`) reaches into it, by
/// projecting each capability's field; the capabilities never see this type.
pub struct ComponentState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: Box<dyn WasiHttpHooks>,
    limits: StoreLimiter,
    cpu: CpuBudget,
    pub(crate) kv: KvCtx,
    pub(crate) timers: TimerCtx,
    pub(crate) ws: WsConnections,
    pub(crate) log: GuestLog,
    /// Budget of the host warnings this instance causes.
    pub(crate) warnings: WarnBudget,
}

impl ComponentState {
    /// Bytes of linear memory the instance holds.
    pub(crate) fn memory_used(&self) -> usize {
        self.limits.used()
    }

    /// Which of the instance's limits it ran into.
    pub(crate) fn spent(&mut self) -> Spent {
        Spent {
            cpu: self.cpu().exhausted(),
            memory: self.limits.refused(),
        }
    }
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for ComponentState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut *self.hooks,
        }
    }
}

impl HasCpuBudget for ComponentState {
    fn cpu(&mut self) -> &mut CpuBudget {
        &mut self.cpu
    }
}

/// Everything needed to build a store for one component, again and again.
#[derive(Clone)]
pub struct InstanceSpec {
    /// Component name.
    pub name: Arc<str>,
    /// What it was granted.
    pub effective: Arc<Effective>,
    /// The host database, for kv.
    pub db: Db,
    /// Egress policy, when outbound HTTP is granted.
    pub egress: Option<Arc<EgressPolicy>>,
    /// Websocket policy, when websocket destinations are granted.
    pub websocket: Option<Arc<WsPolicy>>,
    /// Where timers and websocket connections post.
    pub events: Option<UnboundedSender<HostEvent>>,
    /// Where its refusals and its crash loop are raised as alerts.
    pub(crate) alerts: ComponentAlerts,
}

impl InstanceSpec {
    /// A fresh store with limits and budget callbacks installed; timers it
    /// sets and websockets it opens carry `generation`.
    pub fn new_store(&self, engine: &Engine, generation: u64) -> Store<ComponentState> {
        let log = GuestLog::new(self.name.clone());
        let mut wasi = WasiCtx::builder();
        wasi.stdout(log.stream(false))
            .stderr(log.stream(true))
            .max_random_size(MAX_RANDOM);
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(MAX_FIELD);
        let hooks: Box<dyn WasiHttpHooks> = match &self.egress {
            Some(policy) => Box::new(EgressHooks::new(policy.clone())),
            None => Box::new(NoEgress),
        };
        let limits = &self.effective.limits;
        let warnings = WarnBudget::new(self.name.clone());
        let state = ComponentState {
            table,
            wasi: wasi.build(),
            http,
            hooks,
            limits: StoreLimiter::new(limits.memory_bytes as usize),
            cpu: CpuBudget::default(),
            kv: KvCtx::new(
                self.effective
                    .kv_quota_bytes
                    .map(|q| KvNamespace::new(self.db.clone(), self.name.to_string(), q)),
            ),
            timers: TimerCtx::new(self.events.clone(), generation, warnings.clone()),
            ws: WsConnections::new(
                self.websocket.clone(),
                self.events.clone(),
                generation,
                log.clone(),
                warnings.clone(),
                self.alerts.clone(),
            ),
            log,
            warnings,
        };
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_hostcall_fuel(HOSTCALL_FUEL);
        store.set_max_component_handles(MAX_RESOURCES);
        budget::install(&mut store);
        store
    }
}

/// Hooks for a store without outbound HTTP: wasi:http is not linked then, so
/// this is never reached; if it were, it refuses.
struct NoEgress;

impl WasiHttpHooks for NoEgress {
    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<wasmtime_wasi_http::WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}
