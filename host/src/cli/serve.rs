//! `airlock serve`: the MCP channel server Claude Code launches over stdio.
//!
//! stdout carries JSON-RPC only; everything else goes to stderr. The process
//! exits promptly on stdin EOF, SIGTERM or SIGINT, releasing its port.

use std::process::ExitCode;
use std::time::Duration;

use rmcp::ServiceExt;

use crate::host::Host;
use crate::mcp::ChannelServer;
use crate::mcp::ledger::QueueLedger;
use crate::queue::ledger::{FileLedger, LEDGERS_DIR};

/// Run until the client goes away or a signal arrives.
pub fn run(host: Host, config: &std::path::Path) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let digest = config_digest(config);
    let outcome = runtime.block_on(serve(host, digest));
    // A blocking stdin read may still be parked; do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(100));
    outcome.map(|()| ExitCode::SUCCESS)
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
        "adapters": adapters,
    }))]);
}

async fn serve(host: Host, digest: String) -> anyhow::Result<()> {
    // Installed first, so a signal during start-up or the handshake is not
    // left to the default action.
    let mut signals = Signals::install()?;
    let Some(running) = signals.or(crate::serve::start(&host)).await else {
        return Ok(());
    };
    let mut running = running?;
    record_server(&running.router, "started", &digest);
    let router = running.router.clone();
    let outcome = session(&host, &mut running, &mut signals).await;
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
    let (reader, writer, outlet) =
        crate::mcp::stdio::filtered(crate::mcp::stdin::open(), std::io::stdout(), Box::new(log));
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
