//! Socket Mode: the websocket behind the URLs `apps.connections.open`
//! hands out. A connection needs an unused ticket from one of those URLs;
//! it gets `hello`, then every envelope not yet acknowledged.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::Shared;
use crate::state::Outgoing;

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // The connections live in this set, so aborting the loop drops them.
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        while connections.try_join_next().is_some() {}
        connections.spawn(serve(stream, shared.clone()));
    }
}

// The handshake callback's error type is tungstenite's, large as it is.
#[allow(clippy::result_large_err)]
async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let check = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let ticket = req.uri().query().and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "ticket")
                .map(|(_, v)| v.into_owned())
        });
        let mut state = shared.lock();
        match ticket.and_then(|t| state.tickets.iter().position(|x| *x == t)) {
            Some(at) if req.uri().path() == "/link/" => {
                state.tickets.remove(at);
                Ok(resp)
            }
            _ => {
                let mut refused = ErrorResponse::new(Some("invalid or used ticket".into()));
                *refused.status_mut() = hyper::StatusCode::UNAUTHORIZED;
                Err(refused)
            }
        }
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, check).await else {
        return;
    };
    let id = NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = mpsc::unbounded_channel();
    shared.lock().open_connection(id, tx);
    loop {
        tokio::select! {
            biased;
            out = rx.recv() => match out {
                Some(Outgoing::Text(text)) => {
                    if ws.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
                Some(Outgoing::Close(code, reason, grace)) => {
                    // Slack keeps the socket open for a while after saying
                    // disconnect; what arrives meanwhile (acks) still counts.
                    let _ = tokio::time::timeout(grace, async {
                        while let Some(Ok(msg)) = ws.next().await {
                            if let Message::Text(text) = msg {
                                shared.lock().on_client_text(&text);
                            }
                        }
                    })
                    .await;
                    let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
                    let _ = ws.close(Some(frame)).await;
                    break;
                }
                Some(Outgoing::Abort) | None => {
                    let _ = ws.get_ref().set_zero_linger();
                    break;
                }
            },
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => shared.lock().on_client_text(&text),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    shared.lock().connection_ended(id);
}
