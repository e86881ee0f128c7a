//! Assembling a running channel server: which components run, their
//! listeners and poll loops, the router, the durable queue, and the pump
//! from adapters' own events (timers, websockets, the local page) into it.
//!
//! With no configuration at all this runs the bundled fakechat adapter and
//! the bundled filters, so `airlock serve` works out of the box.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::access::AccessStore;
use crate::alert::{Alert, Alerts, Kind as AlertKind};
use crate::audit::{Entry, Kind as AuditKind};
use crate::catalog::{Candidate, Origin};
use crate::home::INBOX_DIR;
use crate::host::{Host, StartError};
use crate::hub::Hub;
use crate::manifest::{Direction, Kind};
use crate::mcp::instructions;
use crate::platform_lock::{LOCKS_DIR, LockError, PlatformLock};
use crate::queue::ledger::{self, LEDGERS_DIR};
use crate::queue::{DEFAULT_BACKLOG, Queue};
use crate::router::{Active, NamedFilter, Parts, Router, Session};
use crate::runtime::actor::Unsolicited;
use crate::runtime::load::PrepareError;
use crate::secrets::load_secret_in;
use crate::sources::inbound_http::signature::Verifier;
use crate::sources::inbound_http::{AccessToken, Auth, InboundListener};
use crate::sources::poll::LOCK_RETRY;
use crate::sources::poll::{self, PollSource};

/// The default adapter, and its default port.
pub const DEFAULT_ADAPTER: &str = "fakechat";
/// fakechat's port unless the `port` setting says otherwise.
pub const FAKECHAT_PORT: u16 = 8787;

/// A running server's parts.
pub struct Running {
    /// The router the tools call; its queue holds the events for the session.
    pub router: Arc<Router>,
    /// The `instructions` text.
    pub instructions: String,
    /// Page URLs of inbound listeners (with their tokens), by adapter.
    pub urls: BTreeMap<String, String>,
    /// Permission verdicts for the session, as JSON-RPC lines; taken by
    /// the MCP server.
    pub verdicts: Option<mpsc::UnboundedReceiver<String>>,
    _listeners: Vec<(String, InboundListener, Option<PlatformLock>)>,
    _polls: Vec<AbortOnDrop>,
}

/// Aborts a background task when the server goes.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Which candidates run, in catalog order.
pub fn enabled<'a>(host: &Host, candidates: &'a [Candidate]) -> Vec<&'a Candidate> {
    let explicit = |c: &Candidate| host.config.components.get(&c.name).and_then(|s| s.enabled);
    let kind = |c: &Candidate| c.manifest.as_ref().map(|m| m.kind).ok();
    let other_adapter_enabled = candidates.iter().any(|c| {
        c.name != DEFAULT_ADAPTER && kind(c) == Some(Kind::Adapter) && explicit(c) == Some(true)
    });
    candidates
        .iter()
        .filter(|c| match (explicit(c), kind(c)) {
            (Some(on), _) => on,
            (None, Some(Kind::Filter)) => c.origin == Origin::Bundled,
            (None, Some(Kind::Adapter)) => c.name == DEFAULT_ADAPTER && !other_adapter_enabled,
            (None, None) => false,
        })
        .collect()
}

/// Load, start and wire every enabled component. A component that fails is
/// reported on stderr and left out; the rest keep serving.
pub async fn start(host: &Host, hub: Arc<Hub>) -> anyhow::Result<Running> {
    let (candidates, problems) = host.candidates()?;
    for p in problems {
        tracing::warn!("{}: {}", p.file, p.problem);
    }
    let chosen = enabled(host, &candidates);
    start_with(host, &chosen, Approval::Required, hub).await
}

/// Whether components must be approved (drop-ins) to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Approval {
    /// As for `airlock serve`.
    Required,
    /// `airlock try --adapter FILE`: the developer runs their own file.
    Development,
}

/// Start exactly `chosen`.
pub async fn start_with(
    host: &Host,
    chosen: &[&Candidate],
    approval: Approval,
    hub: Arc<Hub>,
) -> anyhow::Result<Running> {
    let (unsolicited_tx, unsolicited_rx) = mpsc::unbounded_channel::<Unsolicited>();
    let (alerts, alerts_rx) = Alerts::channel();
    let mut adapters = BTreeMap::new();
    let mut egress = BTreeMap::new();
    let mut filters = Vec::new();
    let mut listeners = Vec::new();
    let mut later_listeners = Vec::new();
    let mut urls = BTreeMap::new();
    let locks = host
        .home
        .sub(LOCKS_DIR)
        .map(|d| (d, host.home.path().join(LOCKS_DIR)))
        .map_err(|e| tracing::warn!("{e}; token locks are not available"))
        .ok();
    let mut start_after_lock = BTreeMap::new();
    // Recorded once the router (and its audit trail) exists.
    let mut lifecycle = Vec::new();
    for &c in chosen {
        let loaded = match approval {
            Approval::Required => host.load(c),
            Approval::Development => host.load_unchecked(c),
        };
        let loaded = match loaded {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("not started: {e}");
                lifecycle.push(
                    Entry::new(AuditKind::Component, format!("not started: {e}"))
                        .detail(serde_json::json!({"event": "refused", "component": c.name})),
                );
                if let Some(alert) = import_refusal_alert(&e) {
                    alerts.raise(alert);
                }
                continue;
            }
        };
        lifecycle.push(
            Entry::new(
                AuditKind::Component,
                format!("{} loaded ({:?})", c.name, c.origin),
            )
            .detail(serde_json::json!({
                "event": "loaded",
                "component": c.name,
                "wasm_sha256": c.wasm_sha256(),
            })),
        );
        match loaded.manifest.kind {
            Kind::Filter => match host.filter_runner_with_alerts(&loaded, &alerts) {
                Ok(runner) => filters.push(NamedFilter {
                    name: c.name.clone(),
                    runner,
                    inbound: loaded.manifest.judges(Direction::Inbound),
                    outbound: loaded.manifest.judges(Direction::Outbound),
                }),
                Err(e) => tracing::error!("not started: {e}"),
            },
            Kind::Adapter => {
                let spawned =
                    host.spawn_adapter_with_egress(&loaded, Some(unsolicited_tx.clone()), &alerts);
                let (handle, policy) = match spawned {
                    Ok(h) => h,
                    Err(e) => {
                        tracing::error!("not started: {e}");
                        continue;
                    }
                };
                // One that connects in `start` (a gateway) starts in its loop
                // once it holds the token's lock (`sources::poll`).
                let gateway = !loaded.effective.websocket.is_empty()
                    && policy.as_ref().is_some_and(|p| !p.secrets.is_empty());
                if gateway {
                    start_after_lock.insert(c.name.clone(), host.settings(&c.name));
                } else if let Err(e) = handle.start(host.settings(&c.name)).await {
                    tracing::error!("not started: {e}");
                    continue;
                }
                let description = match handle.describe().await {
                    // Its platform is the host's name for it, whatever it
                    // claims: events, errors and answers name it so.
                    Ok(d) => crate::bindings::types::Description {
                        platform: c.name.clone(),
                        ..d
                    },
                    Err(e) => {
                        tracing::error!("not started: {e}");
                        continue;
                    }
                };
                let route = loaded
                    .effective
                    .inbound_http
                    .then(|| inbound_route(host, &c.name, &loaded.effective, &alerts))
                    .transpose()
                    .map_err(|e| tracing::error!(adapter = c.name, "not listening: {e}"))
                    .ok()
                    .flatten();
                if let Some(route) = route {
                    // The page's port is a platform connection too: one
                    // session of the hub serves it, and another takes over
                    // when that one exits.
                    let lock = locks
                        .as_ref()
                        .map(|(d, p)| PlatformLock::try_acquire(d, p, &c.name, &[]));
                    match lock {
                        Some(Err(LockError::Held { .. })) => {
                            tracing::warn!(
                                adapter = c.name,
                                "another session of this state directory serves the page; this \
                                 one serves it once that one stops"
                            );
                            later_listeners.push((c.name.clone(), handle.clone(), route));
                        }
                        held => {
                            match bind_at(&route, handle.clone(), unsolicited_tx.clone()).await {
                                Ok(listener) => {
                                    route.announce(&c.name, &listener);
                                    urls.insert(c.name.clone(), listener.url());
                                    listeners.push((
                                        c.name.clone(),
                                        listener,
                                        held.and_then(Result::ok),
                                    ));
                                }
                                // Keep serving MCP without the page.
                                Err(e) => tracing::error!(adapter = c.name, "{e}"),
                            }
                        }
                    }
                }
                if let Some(policy) = policy {
                    egress.insert(c.name.clone(), policy);
                }
                adapters.insert(
                    c.name.clone(),
                    Active {
                        handle,
                        description,
                    },
                );
            }
        }
    }
    if adapters.is_empty() {
        tracing::warn!("no adapter is running; `airlock doctor` says why");
    }
    let instructions = instructions::compose(
        adapters
            .iter()
            .map(|(name, a)| (name.as_str(), a.description.instructions.as_slice())),
    );
    let instructions = instructions::with_session(&instructions, hub.me());
    let mut queue = Queue::new(
        host.db.clone(),
        host.config.delivery.max_waiting.unwrap_or(DEFAULT_BACKLOG),
    )
    .for_session(hub.me());
    // What a crashed airlock wrote to its session before it died is
    // delivered: mark it so before anything else reads the queue.
    match host.home.sub(LEDGERS_DIR) {
        Ok(dir) => {
            match ledger::recover(&dir, &queue) {
                Ok(0) => {}
                Ok(n) => tracing::info!("{n} events a previous airlock delivered are marked so"),
                Err(e) => tracing::error!("cannot read the delivery ledgers: {e}"),
            }
            queue = queue.with_ledgers(dir);
        }
        Err(e) => tracing::error!("{e}; crash recovery of deliveries is not available"),
    }
    match queue.prune(host.config.delivery.dedupe_secs()) {
        Ok(n) if n > 0 => tracing::debug!("forgot {n} delivered events"),
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot prune delivered events: {e}"),
    }
    let handles: Vec<_> = adapters
        .iter()
        .map(|(name, a)| (name.clone(), a.handle.clone()))
        .collect();
    let (verdict_tx, verdicts) = mpsc::unbounded_channel();
    let router = Arc::new(Router::new(Parts {
        adapters,
        filters,
        access: AccessStore::with_config(host.db.clone(), &host.config.access),
        queue,
        session: Session::default(),
        home: host.home.path().to_path_buf(),
        files_allow: host.config.files.allow.clone(),
        max_per_second: host.config.delivery.max_per_second,
        alerts,
        sender_per_minute: host.config.access.sender_per_minute(),
        stranger_alert_per_minute: host.config.access.stranger_alert_per_minute(),
        audit: crate::audit::AuditStore::new(
            host.db.clone(),
            &host.config.audit,
            Some(format!("{} (pid {})", hub.me(), std::process::id())),
        ),
        relay: crate::router::relay::Relay::new(
            crate::relay::RelayStore::new(host.db.clone()).for_session(hub.me()),
            host.config.relay.clone(),
            verdict_tx,
        ),
        inbox: host
            .home
            .sub(INBOX_DIR)
            .ok()
            .map(|dir| crate::router::inbox::Inbox::new(dir, host.config.inbox.quota_bytes())),
        hub,
    }));
    for (name, _, _) in &listeners {
        router.serve_calls(name);
        router.took_connection(name);
    }
    // The page's chat lives in the instance that serves it: until this
    // process serves it, calls go to the one that does.
    for (name, _, _) in &later_listeners {
        router.forward_to_holder(name);
    }
    // Whatever compiling the components freed goes back to the system.
    crate::runtime::heap::release_free_memory();
    router.record(&lifecycle);
    let mut polls = vec![
        AbortOnDrop(crate::router::alerting::spawn(router.clone(), alerts_rx)),
        AbortOnDrop(spawn_upkeep(
            router.clone(),
            host.config.audit.keep_days,
            host.config.delivery.dedupe_secs(),
        )),
        AbortOnDrop(crate::router::relay::spawn(router.clone())),
        AbortOnDrop(crate::router::forward::spawn(router.clone())),
    ];
    if let Some(otlp) = &host.config.audit.otlp {
        polls.push(AbortOnDrop(crate::audit::otlp::spawn(
            router.audit().clone(),
            otlp,
        )));
    }
    for (name, handle, route) in later_listeners {
        let locks = locks
            .as_ref()
            .and_then(|(d, p)| d.try_clone().ok().map(|d| (d, p.clone())));
        polls.push(AbortOnDrop(tokio::spawn(take_over_page(
            router.clone(),
            name,
            route,
            handle,
            unsolicited_tx.clone(),
            locks,
        ))));
    }
    for (name, handle) in handles {
        let Some(policy) = egress.remove(&name) else {
            continue;
        };
        let locks = locks
            .as_ref()
            .and_then(|(d, p)| d.try_clone().ok().map(|d| (d, p.clone())));
        polls.push(AbortOnDrop(poll::spawn(PollSource {
            handle,
            egress: policy,
            router: router.clone(),
            locks,
            start_after_lock: start_after_lock.remove(&name),
        })));
    }
    polls.push(AbortOnDrop(crate::sources::pump::spawn(
        router.clone(),
        unsolicited_rx,
    )));
    Ok(Running {
        router,
        instructions,
        urls,
        verdicts: Some(verdicts),
        _listeners: listeners,
        _polls: polls,
    })
}

/// How often new audit rows are put in the search index.
const AUDIT_TICK: std::time::Duration = std::time::Duration::from_secs(5);
/// Ticks between hourly checkpoints.
const TICKS_AN_HOUR: u32 = 720;
/// Ticks between forgetting expired dedupe keys (a minute).
const TICKS_A_MINUTE: u32 = 12;

/// Upkeep off the hot path: the audit trail's search index every few
/// seconds, a checkpoint every hour when rows came, retention at start and
/// daily; and every minute the dedupe keys older than `[delivery]
/// dedupe_window`, so that a long-running server's database stays the size
/// its traffic needs.
fn spawn_upkeep(
    router: Arc<Router>,
    keep_days: u32,
    dedupe_secs: i64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = 0u32;
        // A full disk fails every tick: said once until a tick works again.
        let mut full = crate::db::Episode::default();
        loop {
            let audit = router.audit().clone();
            let queue = router.queue().clone();
            let minute = ticks > 0 && ticks.is_multiple_of(TICKS_A_MINUTE);
            let hour = ticks > 0 && ticks.is_multiple_of(TICKS_AN_HOUR);
            let day = ticks.is_multiple_of(TICKS_AN_HOUR * 24);
            let mut episode = std::mem::take(&mut full);
            let done = tokio::task::spawn_blocking(move || {
                let full = &mut episode;
                match audit.index_pending() {
                    Ok(_) => drop(full.succeeded()),
                    Err(e) => upkeep_failed(full, "cannot index the audit trail for search", e),
                }
                if minute && let Err(e) = queue.prune(dedupe_secs) {
                    upkeep_failed(full, "cannot forget expired dedupe keys", e);
                }
                if hour && let Err(e) = audit.checkpoint("hourly") {
                    upkeep_failed(full, "cannot write the hourly audit checkpoint", e);
                }
                if day && let Err(e) = audit.prune(keep_days) {
                    upkeep_failed(full, "audit retention failed", e);
                }
                episode
            });
            if let Ok(episode) = done.await {
                full = episode;
            }
            tokio::time::sleep(AUDIT_TICK).await;
            ticks = ticks.wrapping_add(1);
        }
    })
}

/// An upkeep step failed: said, but a full disk only once per episode.
fn upkeep_failed(full: &mut crate::db::Episode, what: &str, e: crate::db::DbError) {
    if !e.is_full() || full.failed() {
        tracing::warn!("{what}: {e}");
    }
}

/// Imports an alert names, at most.
const ALERT_IMPORTS: usize = 4;

/// The alert for a component that did not start because its grant refuses
/// what it imports; `None` when it did not start for another reason (a
/// missing secret, an approval, a broken file), which is no capability denial.
/// It concerns every adapter: the component is not running as any of them.
fn import_refusal_alert(e: &StartError) -> Option<Alert> {
    let StartError::Prepare(PrepareError::Imports { name, refusals }) = e else {
        return None;
    };
    let mut imports: Vec<String> = refusals
        .iter()
        .take(ALERT_IMPORTS)
        .map(|r| crate::text::one_line(&r.import, 80))
        .collect();
    if refusals.len() > ALERT_IMPORTS {
        imports.push(format!("{} more", refusals.len() - ALERT_IMPORTS));
    }
    Some(Alert {
        kind: AlertKind::CapabilityDenied,
        adapter: None,
        text: format!(
            "{} was not started: its grant refuses what it imports ({})",
            crate::text::one_line(name, 80),
            imports.join(", ")
        ),
    })
}

/// The port an adapter with an inbound route listens on, by the rules of
/// `airlock serve`: the `port` setting, else fakechat's default.
pub fn inbound_port(name: &str, settings: &BTreeMap<String, String>) -> Result<u16, String> {
    match settings.get("port") {
        Some(p) => p.parse::<u16>().map_err(|_| {
            format!(
                "{name}: setting port = {p:?} is not a port number; use one from 1 to 65535, \
                 like settings = {{ port = \"8790\" }} under [components.{name}]"
            )
        }),
        None if name == DEFAULT_ADAPTER => Ok(FAKECHAT_PORT),
        None => Err(format!(
            "{name} asks for an inbound route but has no `port` setting; add \
             `[components.{name}] settings = {{ port = \"8790\" }}`"
        )),
    }
}

/// Where an adapter's inbound route listens and how its requests are
/// authenticated: worked out once, bound now or when another session lets go.
struct InboundRoute {
    addr: SocketAddr,
    /// A signed route's checks; `None`: a fresh access token at each bind.
    signed: Option<Arc<Verifier>>,
}

impl InboundRoute {
    /// What to tell the operator once it listens.
    fn announce(&self, name: &str, listener: &InboundListener) {
        match &self.signed {
            None => tracing::warn!(adapter = name, "open {} in a browser", listener.url()),
            Some(v) => tracing::warn!(
                adapter = name,
                "accepting requests signed in {} at {}",
                v.header(),
                listener.url()
            ),
        }
    }
}

/// `name`'s route: its port setting, the granted address, and for a signed
/// route the verifier with its secret loaded (and registered, so that it is
/// scrubbed wherever a secret is).
fn inbound_route(
    host: &Host,
    name: &str,
    effective: &crate::manifest::Effective,
    alerts: &Alerts,
) -> anyhow::Result<InboundRoute> {
    let port = inbound_port(name, &host.config.component(name).settings)
        .map_err(|e| anyhow::anyhow!(e))?;
    let signed = match &effective.inbound_signature {
        None => None,
        Some(route) => {
            let secret = load_secret_in(&route.secret, host.home.dir(), host.home.path())
                .map_err(|e| anyhow::anyhow!("its signature secret: {e}"))?;
            crate::secrets::register_held(&secret);
            Some(Arc::new(Verifier::new(
                route.scheme.clone(),
                &secret,
                name,
                alerts.clone(),
            )))
        }
    };
    Ok(InboundRoute {
        addr: SocketAddr::new(effective.inbound_bind, port),
        signed,
    })
}

async fn bind_at(
    route: &InboundRoute,
    handle: crate::runtime::actor::AdapterHandle,
    events: mpsc::UnboundedSender<Unsolicited>,
) -> anyhow::Result<InboundListener> {
    let auth = match &route.signed {
        Some(verifier) => Auth::Signed(verifier.clone()),
        None => Auth::Token(AccessToken::generate()?),
    };
    Ok(InboundListener::bind(route.addr, handle, auth, events).await?)
}

/// Serves an adapter's page once the session that served it lets go: the
/// lock first, then the port (the kernel frees it with the process).
async fn take_over_page(
    router: Arc<Router>,
    name: String,
    route: InboundRoute,
    handle: crate::runtime::actor::AdapterHandle,
    events: mpsc::UnboundedSender<Unsolicited>,
    locks: Option<(cap_std::fs::Dir, std::path::PathBuf)>,
) {
    let Some((dir, path)) = locks else {
        return;
    };
    let lock = loop {
        match PlatformLock::try_acquire(&dir, &path, &name, &[]) {
            Ok(lock) => break lock,
            Err(LockError::Held { .. }) => tokio::time::sleep(LOCK_RETRY).await,
            Err(e) => {
                tracing::error!(adapter = name, "cannot take over the page: {e}");
                return;
            }
        }
    };
    let mut said = false;
    let listener = loop {
        match bind_at(&route, handle.clone(), events.clone()).await {
            Ok(l) => break l,
            Err(e) => {
                if !said {
                    tracing::warn!(adapter = name, "cannot serve the page yet: {e}; retrying");
                    said = true;
                }
                tokio::time::sleep(LOCK_RETRY).await;
            }
        }
    };
    tracing::warn!(adapter = name, "took over the page");
    route.announce(&name, &listener);
    router.serve_calls(&name);
    router.took_connection(&name);
    let _held = (lock, listener);
    std::future::pending::<()>().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::home::AirlockHome;

    fn names(host: &Host) -> Vec<String> {
        let (candidates, _) = host.candidates().unwrap();
        enabled(host, &candidates)
            .into_iter()
            .map(|c| c.name.clone())
            .collect()
    }

    #[test]
    fn only_an_import_refused_by_the_grant_raises_an_alert() {
        use crate::runtime::imports::ImportRefusal;
        let refusal = |i: usize| ImportRefusal {
            import: format!("wasi:sockets/tcp{i}@0.2.6"),
            reason: "wasi:sockets is never linked".into(),
        };
        let refused = StartError::Prepare(PrepareError::Imports {
            name: "sockets".into(),
            refusals: (0..6).map(refusal).collect(),
        });
        let alert = import_refusal_alert(&refused).unwrap();
        assert_eq!(alert.kind, AlertKind::CapabilityDenied);
        assert_eq!(alert.adapter, None);
        assert_eq!(
            alert.text,
            "sockets was not started: its grant refuses what it imports (wasi:sockets/tcp0@0.2.6, \
             wasi:sockets/tcp1@0.2.6, wasi:sockets/tcp2@0.2.6, wasi:sockets/tcp3@0.2.6, 2 more)"
        );
        let other = StartError::NotApproved {
            name: "x".into(),
            standing: "not approved".into(),
        };
        assert_eq!(import_refusal_alert(&other), None);
    }

    #[test]
    fn defaults_and_overrides() {
        let tmp = tempfile::tempdir().unwrap();
        let mut host = Host::open(AirlockHome::open(tmp.path()).unwrap()).unwrap();
        assert_eq!(names(&host), vec!["fakechat", "redact"]);
        host.config = toml::from_str(
            "[components.webhook]\nenabled = true\n[components.redact]\nenabled = false",
        )
        .unwrap();
        assert_eq!(names(&host), vec!["webhook"]);
        host.config = toml::from_str(
            "[components.webhook]\nenabled = true\n[components.fakechat]\nenabled = true",
        )
        .unwrap();
        assert_eq!(names(&host), vec!["fakechat", "webhook", "redact"]);
    }
}
