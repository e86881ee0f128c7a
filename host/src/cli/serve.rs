//! `airlock serve`: the MCP channel server Claude Code launches over stdio.
//!
//! stdout carries JSON-RPC only; everything else goes to stderr. The process
//! exits promptly on stdin EOF, SIGTERM or SIGINT, releasing its port.

use std::process::ExitCode;
use std::time::Duration;

use rmcp::ServiceExt;

use std::sync::Arc;

use crate::host::Host;
use crate::hub::presence::SESSIONS_DIR;
use crate::hub::{Hub, SqliteHub};
use crate::mcp::ChannelServer;
use crate::mcp::ledger::QueueLedger;
use crate::queue::ledger::{FileLedger, LEDGERS_DIR};

/// Run until the client goes away or a signal arrives, as session
/// `session` (or one named after the working directory).
pub fn run(
    host: Host,
    config: &std::path::Path,
    session: Option<&str>,
) -> anyhow::Result<ExitCode> {
    check_writable(&host)?;
    // One thread: a message hands off between tasks without waking another
    // core, which measured faster on every path than a worker pool (README,
    // "The reply path"). Guests yield every epoch tick, and blocking work
    // goes to tokio's blocking pool, so no task holds the thread for long.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let digest = config_digest(config);
    let hub = runtime.block_on(async { join_hub(&host, session) })?;
    let outcome = runtime.block_on(serve(host, digest, hub));
    // A blocking stdin read may still be parked; do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(100));
    outcome.map(|()| ExitCode::SUCCESS)
}

/// A state directory that cannot be written stops `serve` here, in one line
/// with the cause and the fix, before it joins the hub or says anything on
/// stdout: serving from it would confirm nothing to the platforms and
/// deliver nothing. (SQLite can open a database on a read-only mount, so
/// the directory is asked, and then the database takes a small write.) A
/// full disk is no reason to refuse: the loops wait it out.
fn check_writable(host: &Host) -> anyhow::Result<()> {
    let dir = host.home.path();
    let read_only = |why: String| crate::db::DbError::ReadOnly {
        dir: dir.display().to_string(),
        why,
    };
    crate::db::writable(dir).map_err(|e| read_only(e.to_string()))?;
    match host.db.probe_write() {
        Err(e) if e.is_read_only() => Err(read_only(e.to_string()).into()),
        _ => Ok(()),
    }
}

/// How long the last audit rows (the shutdown checkpoint among them) may
/// take to reach the collector before the process exits.
const SHIP_AT_SHUTDOWN: Duration = Duration::from_secs(2);

/// The SHA-256 of the config file as it is on disk (`none`: no file).
fn config_digest(path: &std::path::Path) -> String {
    use sha2::Digest;
    std::fs::read(path).map_or_else(|_| "none".into(), |b| hex::encode(sha2::Sha256::digest(b)))
}

/// The server's start or stop, in the audit trail.
fn record_server(router: &crate::router::Router, what: &str, digest: &str) {
    let adapters: Vec<&String> = router.adapters().keys().collect();
    router.record(&[crate::audit::Entry::new(
        crate::audit::Kind::Server,
        format!("airlock {} {what}", env!("CARGO_PKG_VERSION")),
    )
    .detail(serde_json::json!({
        "event": what,
        "version": env!("CARGO_PKG_VERSION"),
        "config_sha256": digest,
        "pid": std::process::id(),
        "session": router.hub().me(),
        "adapters": adapters,
    }))]);
}

/// Joins the hub of the state directory: this process becomes a session,
/// live until it exits.
fn join_hub(host: &Host, session: Option<&str>) -> anyhow::Result<Arc<Hub>> {
    let dir = host.home.sub(SESSIONS_DIR)?;
    let path = host.home.path().join(SESSIONS_DIR);
    let cwd = std::env::current_dir().unwrap_or_default();
    let store = Arc::new(SqliteHub::new(host.db.clone()));
    let max_waiting = host
        .config
        .delivery
        .max_waiting
        .unwrap_or(crate::queue::DEFAULT_BACKLOG);
    let hub = Hub::join(dir, &path, store, session, &cwd, max_waiting)?;
    tracing::warn!("session {}", hub.me());
    Ok(Arc::new(hub))
}

/// How often a session looks for events other processes stored for it,
/// when no wake-up came.
const CATCH_UP_EVERY: Duration = Duration::from_secs(1);

/// Delivers what other sessions' processes store for this one: woken by
/// its socket, and every second in case a wake-up was lost. The same
/// wake-up also tells the router that adapter calls were handed to this
/// process, or answered (`router::forward`).
fn spawn_catch_up(host: &Host, router: Arc<crate::router::Router>) -> tokio::task::JoinHandle<()> {
    let path = host.home.path().join(SESSIONS_DIR);
    let listener = crate::hub::wake::Listener::bind(&path, router.hub().me())
        .map_err(|e| {
            tracing::warn!(
                "cannot listen for wake-ups ({e}); events other sessions store for this one \
                 arrive within a second instead"
            )
        })
        .ok();
    let ledgers = host.home.sub(LEDGERS_DIR).ok();
    tokio::spawn(async move {
        loop {
            match &listener {
                Some(l) => {
                    let _ = tokio::time::timeout(CATCH_UP_EVERY, l.woken()).await;
                }
                None => tokio::time::sleep(CATCH_UP_EVERY).await,
            }
            adopt_stranded(&router, ledgers.as_ref());
            if let Err(e) = router.queue().catch_up() {
                tracing::warn!("cannot read the events waiting for this session: {e}");
            }
            // The same bell rings for adapter calls handed over, and answered.
            router.hub_woken();
        }
    })
}

/// What waits for away sessions of chats bound to none comes to this
/// session when it is the only live one (`Hub::adopt_stranded`), after the
/// dead processes' ledgers have marked what they did deliver.
fn adopt_stranded(router: &crate::router::Router, ledgers: Option<&cap_std::fs::Dir>) {
    let recover = || {
        if let Some(dir) = ledgers
            && let Err(e) = crate::queue::ledger::recover(dir, router.queue())
        {
            tracing::warn!("cannot read the delivery ledgers: {e}");
        }
    };
    match router.hub().adopt_stranded(recover) {
        Ok(adopted) => {
            for (from, count) in adopted {
                let me = router.hub().me();
                let summary = format!(
                    "session {me} took {count} waiting event(s) of chats bound to no session \
                     from {from}, which is away"
                );
                tracing::info!("{summary}");
                router.record(&[crate::audit::Entry::new(crate::audit::Kind::Hub, summary)
                    .detail(serde_json::json!({
                        "event": "adopted",
                        "session": me,
                        "from": from,
                        "count": count,
                    }))]);
            }
        }
        Err(e) => tracing::warn!("cannot look for events waiting for away sessions: {e}"),
    }
}

async fn serve(host: Host, digest: String, hub: Arc<Hub>) -> anyhow::Result<()> {
    // Installed first, so a signal during start-up or the handshake is not
    // left to the default action.
    let mut signals = Signals::install()?;
    let Some(running) = signals.or(crate::serve::start(&host, hub.clone())).await else {
        hub.leave();
        return Ok(());
    };
    let mut running = running?;
    record_server(&running.router, "started", &digest);
    let router = running.router.clone();
    let catch_up = spawn_catch_up(&host, router.clone());
    let outcome = session(&host, &mut running, &mut signals).await;
    catch_up.abort();
    hub.leave();
    router.settle_records().await;
    record_server(&router, "stopped", &digest);
    match router.audit().checkpoint("shutdown") {
        Ok(Some((hash, id))) => tracing::warn!("audit trail head at shutdown: {hash}@{id}"),
        Ok(None) => {}
        Err(e) => tracing::error!("cannot write the audit checkpoint at shutdown: {e}"),
    }
    if let Some(otlp) = &host.config.audit.otlp {
        crate::audit::otlp::flush(router.audit().clone(), otlp, SHIP_AT_SHUTDOWN).await;
    }
    outcome
}

/// The MCP session over stdio, until the client leaves or a signal comes.
async fn session(
    host: &Host,
    running: &mut crate::serve::Running,
    signals: &mut Signals,
) -> anyhow::Result<()> {
    let ledger = FileLedger::create(host.home.sub(LEDGERS_DIR)?)
        .map_err(|e| anyhow::anyhow!("cannot create the delivery ledger: {e}"))?;
    let log = QueueLedger::new(
        ledger,
        running.router.queue().clone(),
        running.router.redelivery(),
    );
    let (reader, writer, outlet) = crate::mcp::stdio::filtered(
        crate::mcp::stdin::open(),
        std::io::stdout(),
        Box::new(log),
        running.router.afterwards().clone(),
    );
    let settle = outlet.clone();
    let server = ChannelServer::new(
        running.router.clone(),
        running.instructions.clone(),
        outlet,
        running.verdicts.take(),
    );
    let Some(service) = signals.or(server.serve((reader, writer))).await else {
        return Ok(());
    };
    let service = service.map_err(|e| anyhow::anyhow!("MCP handshake failed: {e}"))?;
    let cancel = service.cancellation_token();
    match signals.or(service.waiting()).await {
        Some(quit) => tracing::info!("client closed the session: {quit:?}"),
        None => cancel.cancel(),
    }
    // What was written is marked delivered before the process goes.
    settle.settle();
    Ok(())
}

/// SIGTERM and SIGINT, each ending whatever step is running.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// `step`'s output, or `None` when a signal came first.
    async fn or<T>(&mut self, step: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            out = step => Some(out),
            _ = self.term.recv() => {
                tracing::info!("SIGTERM: shutting down");
                None
            }
            _ = self.int.recv() => {
                tracing::info!("SIGINT: shutting down");
                None
            }
        }
    }
}
