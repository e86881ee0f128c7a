//! The long-poll loop: the host asks the platform for updates on an
//! adapter's behalf (Telegram's `getUpdates`).
//!
//! Each round: the adapter builds the request from the last committed cursor
//! (`poll-request`), the host sends it through the adapter's own egress policy
//! (so the allowlist, the address check and secret injection apply as to any
//! of its requests), hands the answer back (`on-poll-response`), and stores
//! the events it yields together with the new cursor
//! ([`Router::ingest`](crate::router::Router::ingest)). Only then does the
//! next round ask for more, which is what confirms the updates to the
//! platform: nothing is acknowledged before it is stored.
//!
//! What goes wrong, and what the loop does (each said on stderr):
//!
//! | trouble | the loop |
//! |---|---|
//! | network down, timeouts, 5xx, a conflict (409) | waits with [`Backoff`], says when it works again |
//! | the platform asks to wait (`rate-limited`) | waits exactly that long |
//! | `fatal` from the adapter (a refused token) | stops, with the adapter's explanation |
//! | the adapter quarantined | stops |
//! | the queue is full (no session reads it) | pauses; the platform keeps the updates |
//! | the disk is full | says so once, with the fix; tries a small write every [`FULL_CHECK`], and only then the same updates again; nothing is confirmed meanwhile; says when it works again |
//! | the events cannot be stored otherwise | retries the same updates later; nothing is confirmed |
//! | another airlock holds the token's lock | does not poll, says so |
//!
//! An adapter whose `start` opens its platform connection (Discord's gateway
//! websocket) does not poll, but takes the same lock: it is started here,
//! once this process holds it, so two airlocks on one token never resume
//! the same gateway session from each other.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use wasmtime_wasi_http::RequestOptions;

use crate::backoff::Backoff;
use crate::bindings::types::{AdapterError, HttpRequest, HttpResponse};
use crate::caps::egress::{EgressPolicy, send_buffered_with};
use crate::db::{DbError, Episode};
use crate::platform_lock::{LockError, PlatformLock};
use crate::router::Router;
use crate::runtime::actor::AdapterHandle;
use crate::runtime::call_error::{AdapterErrorText, CallError};

/// The setting the host adds for an instance that sends but does not hold
/// the platform connection (reserved: operators cannot set `airlock.*`).
pub const ROLE_SETTING: &str = "airlock.role";

/// How often a loop that finds the token's lock held tries it again.
pub const LOCK_RETRY: Duration = Duration::from_millis(250);
/// How often a paused loop looks at the queue again.
pub const PAUSE_CHECK: Duration = Duration::from_millis(500);
/// How often a loop stopped by a full disk tries a write again. Only a
/// probe: the updates are fetched and gated again once it succeeds, so a
/// host command in them is not answered once per try.
pub const FULL_CHECK: Duration = Duration::from_secs(2);

/// Everything one loop needs.
pub struct PollSource {
    /// The adapter.
    pub handle: AdapterHandle,
    /// Its egress policy (the same one its own requests go through).
    pub egress: Arc<EgressPolicy>,
    /// Where its events go.
    pub router: Arc<Router>,
    /// The locks directory and its path (for messages).
    pub locks: Option<(cap_std::fs::Dir, std::path::PathBuf)>,
    /// The settings of an adapter that connects in `start` (a gateway
    /// websocket) and was not started yet: started here once the token's
    /// lock is held, which it keeps while the process runs.
    pub start_after_lock: Option<Vec<(String, String)>>,
}

/// Starts the loop; it ends at once if the adapter does not poll.
pub fn spawn(source: PollSource) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(source))
}

/// The request as the host sends it, and its timeout.
fn build(request: HttpRequest) -> Result<(http::Request<Bytes>, Duration), String> {
    let method = http::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| format!("poll-request has an invalid method {:?}", request.method))?;
    let mut builder = http::Request::builder().method(method).uri(&request.url);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let built = builder
        .body(Bytes::from(request.body))
        .map_err(|e| format!("poll-request is not a valid HTTP request: {e}"))?;
    Ok((built, Duration::from_millis(u64::from(request.timeout_ms))))
}

fn response(r: http::Response<Bytes>) -> HttpResponse {
    let (parts, body) = r.into_parts();
    HttpResponse {
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    }
}

async fn run(mut source: PollSource) {
    let name = source.handle.name().to_string();
    if let Some(settings) = source.start_after_lock.take() {
        return hold_connection(source, &name, settings).await;
    }
    // Does it poll at all? (fakechat, webhook: no.)
    match source.handle.poll_request(None).await {
        Ok(Some(_)) => {}
        Ok(None) => return,
        Err(e) => tracing::warn!(adapter = name, "poll-request failed: {e}"),
    }
    let waiting =
        "Replies and other tools still work; polling starts here once the other one stops";
    let _lock = match take_lock(&source, &name, waiting).await {
        Ok(lock) => lock,
        Err(()) => return,
    };
    // This process holds the connection: it stores every event, each for
    // the session its chat is routed to.
    source.router.took_connection(&name);
    let seed = name
        .bytes()
        .fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(b));
    let mut backoff = Backoff::new(seed);
    let mut paused = false;
    let mut full = Episode::default();
    let router = &source.router;
    loop {
        match router.queue().is_full() {
            Ok(true) => {
                if !paused {
                    tracing::warn!(
                        adapter = name,
                        "{} events wait for the session, the most airlock holds; polling pauses \
                         until the session reads them (the platform keeps new updates)",
                        router.queue().bound()
                    );
                    paused = true;
                }
                tokio::time::sleep(PAUSE_CHECK).await;
                continue;
            }
            Ok(false) if paused => {
                tracing::warn!(adapter = name, "the session caught up; polling again");
                paused = false;
            }
            Ok(false) => {}
            Err(e) => {
                let wait = backoff.failed();
                tracing::error!(
                    adapter = name,
                    "cannot read the event queue ({e}); retrying in {wait:?}"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
        }
        let cursor = match router.queue().cursor(&name) {
            Ok(c) => c,
            Err(e) => {
                let wait = backoff.failed();
                tracing::error!(
                    adapter = name,
                    "cannot read the cursor ({e}); retrying in {wait:?}"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        let request = match source.handle.poll_request(cursor).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                tracing::warn!(adapter = name, "stopped asking to poll; the poll loop ends");
                return;
            }
            Err(e) if stopped(&e) => {
                tracing::error!(adapter = name, "stopped polling: {e}");
                return;
            }
            Err(e) => {
                let wait = backoff.failed();
                tracing::warn!(
                    adapter = name,
                    "poll-request failed: {e}; retrying in {wait:?}"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        let (request, timeout) = match build(request) {
            Ok(r) => r,
            Err(why) => {
                let wait = backoff.failed();
                tracing::warn!(adapter = name, "{why}; retrying in {wait:?}");
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        let options = RequestOptions {
            connect_timeout: None,
            first_byte_timeout: Some(timeout),
            between_bytes_timeout: None,
        };
        let answer = match send_buffered_with(&source.egress, request, options).await {
            Ok(r) => r,
            Err(e) => {
                let wait = backoff.failed();
                tracing::warn!(
                    adapter = name,
                    "polling failed: {e}; retrying in {wait:?} (attempt {})",
                    backoff.failures()
                );
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        let batch = match source.handle.on_poll_response(response(answer)).await {
            Ok(b) => b,
            Err(CallError::Adapter {
                error: AdapterErrorText(AdapterError::RateLimited(ms)),
                ..
            }) => {
                let wait = Duration::from_millis(ms.clamp(100, 3_600_000));
                tracing::warn!(
                    adapter = name,
                    "the platform asks to wait {wait:?} before polling again (429); waiting"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            Err(e) if stopped(&e) => {
                tracing::error!(adapter = name, "stopped polling: {e}");
                return;
            }
            Err(e) => {
                let wait = backoff.failed();
                tracing::warn!(adapter = name, "{e}; retrying in {wait:?}");
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        let count = batch.events.len();
        match router.ingest(&name, batch).await {
            Ok(_) => {
                if let Some((tries, lasted)) = full.succeeded() {
                    tracing::warn!(
                        adapter = name,
                        "the disk has room again: {name} updates are stored and confirmed again \
                         (the disk was full for {}s, {tries} failed attempt(s))",
                        lasted.as_secs()
                    );
                }
                let ended = backoff.succeeded();
                if ended > 0 {
                    tracing::warn!(
                        adapter = name,
                        "polling works again after {ended} failed attempt(s)"
                    );
                }
            }
            Err(e) if e.is_full() => {
                if full.failed() {
                    tracing::error!(adapter = name, "{}", full_disk(&name, count, router, &e));
                }
                wait_for_room(router, &mut full).await;
            }
            Err(e) => {
                let wait = backoff.failed();
                tracing::error!(
                    adapter = name,
                    "cannot store the events ({e}); nothing was confirmed to the platform, which \
                     sends them again; retrying in {wait:?}"
                );
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// What the operator reads when `count` updates of `adapter` cannot be
/// stored because the disk is full: what, where, the fix, and what airlock
/// does meanwhile.
fn full_disk(adapter: &str, count: usize, router: &Router, e: &DbError) -> String {
    let home = home_of(router);
    format!(
        "cannot store {count} {adapter} update(s): the disk holding AIRLOCK_HOME ({home}) is full \
         ({e}); free space there; airlock retries every {}s and nothing is acknowledged until it \
         can",
        FULL_CHECK.as_secs()
    )
}

/// Where the database lives, for messages about its disk.
pub(super) fn home_of(router: &Router) -> String {
    router.queue().db_dir().map_or_else(
        || "the state directory".to_owned(),
        |d| d.display().to_string(),
    )
}

/// Waits until the database takes a write again, trying one every
/// [`FULL_CHECK`] (each failed try counted in `full`). Any other answer
/// ends the wait too: the next attempt then says what it is.
pub(super) async fn wait_for_room(router: &Router, full: &mut Episode) {
    loop {
        tokio::time::sleep(FULL_CHECK).await;
        match router.queue().writable() {
            Err(e) if e.is_full() => {
                full.failed();
            }
            _ => return,
        }
    }
}

/// Starts an adapter that connects in `start`, once the token's lock is
/// held; keeps the lock until the loop is dropped.
async fn hold_connection(source: PollSource, name: &str, settings: Vec<(String, String)>) {
    let first = match &source.locks {
        Some((dir, path)) => PlatformLock::try_acquire(dir, path, name, &source.egress.secrets),
        None => Err(LockError::Io {
            name: name.to_owned(),
            source: std::io::Error::other("no locks directory"),
        }),
    };
    let _lock = match first {
        Ok(lock) => Some(lock),
        Err(_) => {
            // Another session holds the connection: this instance only
            // sends (its tools work) until this one takes over.
            let mut outbound = settings.clone();
            outbound.push((ROLE_SETTING.to_owned(), "outbound".to_owned()));
            if let Err(e) = source.handle.start(outbound).await {
                tracing::error!("not started: {e}");
                return;
            }
            let tail = "this one connects once the other one stops, and sends replies meanwhile";
            let Ok(lock) = take_lock(&source, name, tail).await else {
                return;
            };
            lock
        }
    };
    source.router.took_connection(name);
    if let Err(e) = source.handle.start(settings).await {
        tracing::error!("not started: {e}");
        return;
    }
    std::future::pending::<()>().await;
}

/// Errors after which polling cannot go on: the adapter said it cannot
/// (`fatal`), or it is quarantined or gone.
fn stopped(e: &CallError) -> bool {
    matches!(
        e,
        CallError::Adapter {
            error: AdapterErrorText(AdapterError::Fatal(_)),
            ..
        } | CallError::Quarantined { .. }
            | CallError::Stopped { .. }
    )
}

/// The token's lock. While another airlock holds it this one waits, saying so
/// once, and takes over as soon as the holder lets go (it exited, or its
/// session ended), so a second session never needs a restart to receive.
async fn take_lock(
    source: &PollSource,
    name: &str,
    waiting: &str,
) -> Result<Option<PlatformLock>, ()> {
    let Some((dir, path)) = &source.locks else {
        return Ok(None);
    };
    if source.egress.secrets.is_empty() {
        return Ok(None);
    }
    let mut said = false;
    loop {
        match PlatformLock::try_acquire(dir, path, name, &source.egress.secrets) {
            Ok(lock) => {
                if said {
                    tracing::warn!(adapter = name, "the other airlock let go; polling");
                }
                return Ok(Some(lock));
            }
            Err(e @ LockError::Held { .. }) => {
                if !said {
                    tracing::warn!(adapter = name, "{e}. {waiting}");
                    said = true;
                }
                tokio::time::sleep(LOCK_RETRY).await;
            }
            Err(e) => {
                tracing::error!(adapter = name, "not polling: {e}");
                return Err(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_before_they_go_out() {
        let ok = HttpRequest {
            method: "POST".into(),
            url: "https://api.telegram.org/getUpdates".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: b"{}".to_vec(),
            timeout_ms: 45_000,
        };
        let (r, t) = build(ok.clone()).unwrap();
        assert_eq!(r.method(), http::Method::POST);
        assert_eq!(t, Duration::from_secs(45));
        for bad in [
            HttpRequest {
                method: "GE T".into(),
                ..ok.clone()
            },
            HttpRequest {
                url: "not a url".into(),
                ..ok.clone()
            },
            HttpRequest {
                headers: vec![("bad header".into(), "x".into())],
                ..ok.clone()
            },
            HttpRequest {
                headers: vec![("x".into(), "line\nbreak".into())],
                ..ok
            },
        ] {
            assert!(build(bad).is_err());
        }
    }
}
