//! `airlock serve`: the MCP channel server Claude Code launches over stdio.
//!
//! stdout carries JSON-RPC only; everything else goes to stderr. The process
//! exits promptly on stdin EOF, SIGTERM or SIGINT, releasing its port.

use std::process::ExitCode;
use std::time::Duration;

use rmcp::ServiceExt;

use crate::host::Host;
use crate::mcp::ChannelServer;
use crate::mcp::delivery_log::LedgerLog;
use crate::queue::ledger::{LEDGERS_DIR, Ledger};

/// Run until the client goes away or a signal arrives.
pub fn run(host: Host) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(serve(host));
    // A blocking stdin read may still be parked; do not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(100));
    outcome.map(|()| ExitCode::SUCCESS)
}

async fn serve(host: Host) -> anyhow::Result<()> {
    let running = crate::serve::start(&host).await?;
    let ledger = Ledger::create(host.home.sub(LEDGERS_DIR)?)
        .map_err(|e| anyhow::anyhow!("cannot create the delivery ledger: {e}"))?;
    let log = LedgerLog::new(ledger, running.router.queue().clone());
    let (reader, writer, outlet) =
        crate::mcp::stdio::filtered(crate::mcp::stdin::open(), std::io::stdout(), Box::new(log));
    let settle = outlet.clone();
    let server = ChannelServer::new(running.router.clone(), running.instructions.clone(), outlet);
    let service = server
        .serve((reader, writer))
        .await
        .map_err(|e| anyhow::anyhow!("MCP handshake failed: {e}"))?;
    let cancel = service.cancellation_token();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        quit = service.waiting() => {
            tracing::info!("client closed the session: {quit:?}");
        }
        _ = term.recv() => {
            tracing::info!("SIGTERM: shutting down");
            cancel.cancel();
        }
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("SIGINT: shutting down");
            cancel.cancel();
        }
    }
    // What was written is marked delivered before the process goes.
    settle.settle();
    Ok(())
}
