//! The pump: events an adapter produced on its own (a gateway's frames, a
//! timer) into the queue, in the order they came.
//!
//! Such a batch cannot be asked for again the way a poll can, so a batch
//! that cannot be stored because the disk is full is held, in memory and in
//! order, until it can: the pump says so once, tries a small write every
//! [`FULL_CHECK`], then stores the same batch (gated again), and says when
//! it works again. Its cursor (Discord's sequence) commits with it, so
//! nothing is acknowledged meanwhile, and a process that dies while full
//! resumes from the last stored one. Any other failure loses the batch, as
//! before: said on stderr. Frames the adapter held for the batch
//! (`send-text-after-commit`: a platform's acknowledgement) are sent once it
//! is stored, and never when it is not, so the platform sends it again.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::poll::{FULL_CHECK, home_of, wait_for_room};
use crate::db::Episode;
use crate::router::Router;
use crate::runtime::actor::Unsolicited;

/// Stores what arrives on `rx` until it closes.
pub fn spawn(
    router: Arc<Router>,
    mut rx: mpsc::UnboundedReceiver<Unsolicited>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut full = Episode::default();
        while let Some(mut u) = rx.recv().await {
            if store(&router, &u, &mut full).await {
                // Acknowledgements the adapter held until now.
                for frame in u.held.drain(..) {
                    frame.release();
                }
            }
        }
    })
}

/// Stores one batch, waiting out a full disk; whether it was stored.
async fn store(router: &Router, u: &Unsolicited, full: &mut Episode) -> bool {
    let name = &*u.component;
    loop {
        match router.ingest(name, u.batch.clone()).await {
            Ok(_) => {
                if let Some((tries, lasted)) = full.succeeded() {
                    tracing::warn!(
                        component = name,
                        "the disk has room again: {name} events are stored again (the disk was \
                         full for {}s, {tries} failed attempt(s))",
                        lasted.as_secs()
                    );
                }
                return true;
            }
            Err(e) if e.is_full() => {
                if full.failed() {
                    tracing::error!(
                        component = name,
                        "cannot store {} {name} event(s): the disk holding AIRLOCK_HOME ({}) is \
                         full ({e}); free space there; airlock holds them and what follows, \
                         retries every {}s, and stores no {name} position until it can",
                        u.batch.events.len(),
                        home_of(router),
                        FULL_CHECK.as_secs()
                    );
                }
                wait_for_room(router, full).await;
            }
            Err(e) => {
                tracing::error!(
                    component = name,
                    "cannot store events ({e}); they are lost; check the disk under $AIRLOCK_HOME"
                );
                return false;
            }
        }
    }
}
