//! A fake Telegram Bot API server for tests.
//!
//! [`FakeTelegram::start`] binds `127.0.0.1:0` and serves the Bot API URL
//! shapes (`/bot<token>/<method>`, `/file/bot<token>/<path>`) over plain
//! HTTP/1.1. Tests drive it through methods on the handle: inject updates,
//! add downloadable files, read back every call the client made, and make the
//! next calls of a method fail.
//!
//! What it emulates, and what it leaves out, is listed in this crate's
//! README.md.

mod body;
mod methods;
mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use body::UploadedFile;
use state::State;

/// The bot account the fake answers `getMe` with (and sends messages as).
pub const BOT_ID: i64 = 123_456;
/// The bot's `username`.
pub const BOT_USERNAME: &str = "test_bot";
/// The bot's `first_name`.
pub const BOT_FIRST_NAME: &str = "Test Bot";

/// One request the client made, in arrival order.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The method's canonical Bot API name (`sendMessage`) when the fake knows
    /// it; otherwise the name as sent.
    pub method: String,
    /// The method name exactly as it appeared in the URL (`SendMessage`).
    pub raw_method: String,
    /// Parameters from the query string and the body, in one map. Values sent
    /// as strings by form or multipart encodings are normalised: JSON-typed
    /// parameters (`reply_markup`, `reaction`, …) are parsed, integer and
    /// boolean parameters are converted.
    pub params: serde_json::Map<String, Value>,
    /// File parts of a `multipart/form-data` body.
    pub files: Vec<UploadedFile>,
    /// The fault the fake answered this call with, if one was armed.
    pub fault: Option<Fault>,
}

impl Call {
    /// A parameter by name.
    pub fn param(&self, name: &str) -> Option<&Value> {
        self.params.get(name)
    }
}

/// A failure to answer the next call(s) of a method with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `429 Too Many Requests: retry after N` with `parameters.retry_after`
    /// and a `Retry-After` header.
    RetryAfter(u32),
    /// A server error with this HTTP status (500–599) in Telegram's error
    /// envelope. teloxide sleeps 10 s after any 5xx before it reports it.
    ServerError(u16),
    /// Read the request, then close the connection without answering.
    DropConnection,
}

/// A running fake. Dropping it stops accepting connections and drops every
/// open one.
pub struct FakeTelegram {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Mutex<Option<JoinHandle<()>>>,
}

pub(crate) struct Shared {
    pub(crate) token: Mutex<String>,
    pub(crate) state: Mutex<State>,
    /// Woken whenever an update is injected.
    pub(crate) new_update: tokio::sync::Notify,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl FakeTelegram {
    /// Starts a fake that accepts `token` on `127.0.0.1` at a free port.
    /// Must be called inside a tokio runtime.
    pub async fn start(token: impl Into<String>) -> FakeTelegram {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            token: Mutex::new(token.into()),
            state: Mutex::new(State::new()),
            new_update: tokio::sync::Notify::new(),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        FakeTelegram {
            shared,
            addr,
            accept: Mutex::new(Some(accept)),
        }
    }

    /// The server goes away, as if its host fell off the network: it stops
    /// listening and drops every open connection (a held getUpdates among
    /// them). Its state (queued updates, files, calls) is kept.
    pub fn go_away(&self) {
        let accept = self.accept.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(accept) = accept {
            accept.abort();
        }
        self.shared.lock().poller = None;
    }

    /// Listens again on the same address after [`go_away`](Self::go_away).
    pub async fn come_back(&self) {
        let listener = loop {
            // The old socket may linger for a moment after the abort.
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        };
        let accept = tokio::spawn(accept_loop(listener, self.shared.clone()));
        *self.accept.lock().unwrap_or_else(|e| e.into_inner()) = Some(accept);
    }

    /// `http://127.0.0.1:PORT` (no trailing slash): give it to
    /// `Bot::set_api_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The token the fake accepts.
    pub fn token(&self) -> String {
        self.shared
            .token
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Accepts `token` from now on, and no other: revokes the old one, as
    /// @BotFather's /revoke does.
    pub fn set_token(&self, token: impl Into<String>) {
        *self.shared.token.lock().unwrap_or_else(|e| e.into_inner()) = token.into();
    }

    /// The bot as a `User` object (what `from` holds on sent messages).
    pub fn bot_user() -> Value {
        json!({
            "id": BOT_ID,
            "is_bot": true,
            "first_name": BOT_FIRST_NAME,
            "username": BOT_USERNAME,
        })
    }

    /// Queues an update for getUpdates. `update` is a JSON object without
    /// (or with an ignored) `update_id`; the fake assigns the next id and
    /// returns it. Messages inside the update are remembered, so the client
    /// can reply to them, react to them and see their chats.
    pub fn inject_update(&self, update: Value) -> i64 {
        let id = self.shared.lock().push_update(update);
        self.shared.new_update.notify_waiters();
        id
    }

    /// Queues `updates` at once (one wake-up for a held getUpdates), as a
    /// burst arrives; returns their update_ids.
    pub fn inject_updates(&self, updates: impl IntoIterator<Item = Value>) -> Vec<i64> {
        let ids = {
            let mut state = self.shared.lock();
            updates.into_iter().map(|u| state.push_update(u)).collect()
        };
        self.shared.new_update.notify_waiters();
        ids
    }

    /// Makes `bytes` downloadable as `file_id`; returns the `file_path`
    /// that getFile will report (`documents/file_N`).
    pub fn add_file(&self, file_id: &str, bytes: impl Into<Vec<u8>>) -> String {
        let mut state = self.shared.lock();
        let path = format!("documents/file_{}", state.next_file + 1);
        state.add_file(file_id, &path, bytes.into());
        path
    }

    /// Makes `bytes` downloadable as `file_id` at `file_path`.
    pub fn add_file_at(&self, file_id: &str, file_path: &str, bytes: impl Into<Vec<u8>>) {
        self.shared
            .lock()
            .add_file(file_id, file_path, bytes.into());
    }

    /// Every call so far, oldest first (getUpdates included).
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// The calls of one method (name matched case-insensitively).
    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        self.shared
            .lock()
            .calls
            .iter()
            .filter(|c| c.method.eq_ignore_ascii_case(method))
            .cloned()
            .collect()
    }

    /// Every message the bot sent or edited, as the fake stores it now
    /// (the result of the latest sendMessage/editMessageText/sendPhoto/…).
    pub fn bot_messages(&self) -> Vec<Value> {
        let state = self.shared.lock();
        state
            .sent_order
            .iter()
            .filter_map(|key| state.messages.get(key).cloned())
            .collect()
    }

    /// The bytes of a file the client uploaded or one added with
    /// [`add_file`](Self::add_file), by file_id.
    pub fn file_bytes(&self, file_id: &str) -> Option<Vec<u8>> {
        self.shared
            .lock()
            .files
            .get(file_id)
            .map(|f| f.bytes.clone())
    }

    /// Answers the next `times` calls of `method` (case-insensitive) with
    /// `fault` instead of handling them. Faults armed for one method queue
    /// up in order.
    pub fn fail_next(&self, method: &str, fault: Fault, times: usize) {
        let mut state = self.shared.lock();
        let queue = state.faults.entry(method.to_ascii_lowercase()).or_default();
        queue.extend(std::iter::repeat_n(fault, times));
    }

    /// Updates queued and not yet confirmed by an offset.
    pub fn pending_updates(&self) -> usize {
        self.shared.lock().updates.len()
    }

    /// Whether a getUpdates request is being held (long poll in progress).
    pub fn is_polling(&self) -> bool {
        self.shared.lock().poller.is_some()
    }

    /// The `allowed_updates` setting last sent with getUpdates (sticky, as on
    /// the real server); `None` if never sent.
    pub fn allowed_updates(&self) -> Option<Vec<String>> {
        self.shared.lock().allowed_updates.clone()
    }

    /// The commands last set with setMyCommands (default scope).
    pub fn commands(&self) -> Value {
        self.shared.lock().commands.clone()
    }

    /// Forgets updates, calls, faults, files, messages and commands. Ids keep
    /// increasing, and a held getUpdates is left alone.
    pub fn reset(&self) {
        self.shared.lock().reset();
    }
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.go_away();
    }
}

/// Accepts connections; each is served by a task in `connections`, so
/// aborting this loop drops them all.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        while connections.try_join_next().is_some() {}
        let shared = shared.clone();
        connections.spawn(async move {
            let service = service_fn(move |req| {
                let shared = shared.clone();
                async move { handle(shared, req).await }
            });
            // Errors here are client disconnects and deliberately dropped
            // connections.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Returned by the service to make hyper close the connection unanswered.
#[derive(Debug)]
struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for DropConnection {}

type Resp = Response<Full<Bytes>>;

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Resp, DropConnection> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(DropConnection),
    };
    let path = parts.uri.path().to_owned();

    if let Some(rest) = path.strip_prefix("/file/bot") {
        return Ok(download(&shared, rest));
    }
    let Some(rest) = path.strip_prefix("/bot") else {
        return Ok(error(404, "Not Found", None));
    };
    let Some((token, method)) = rest.split_once('/') else {
        return Ok(error(404, "Not Found", None));
    };
    if decode(token) != *shared.token.lock().unwrap_or_else(|e| e.into_inner()) {
        return Ok(error(401, "Unauthorized", None));
    }
    if method.is_empty() || method.contains('/') {
        return Ok(error(404, "Not Found", None));
    }

    let content_type = parts
        .headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (params, files) = match body::parse(parts.uri.query(), content_type, &body) {
        Ok(p) => p,
        Err(description) => return Ok(error(400, &description, None)),
    };
    let canonical = methods::canonical(method);
    let mut call = Call {
        method: canonical.map_or_else(|| method.to_owned(), str::to_owned),
        raw_method: method.to_owned(),
        params,
        files,
        fault: None,
    };
    let fault = shared.lock().take_fault(method);
    call.fault = fault;
    shared.lock().calls.push(call.clone());

    match fault {
        Some(Fault::RetryAfter(secs)) => return Ok(retry_after(secs)),
        Some(Fault::ServerError(status)) => {
            let reason = StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Internal Server Error");
            return Ok(error(status, reason, None));
        }
        Some(Fault::DropConnection) => return Err(DropConnection),
        None => {}
    }

    let Some(canonical) = canonical else {
        return Ok(error(404, "Not Found: method not found", None));
    };
    let outcome = if canonical == "getUpdates" {
        methods::get_updates(&shared, &call.params).await
    } else {
        methods::handle(&shared, canonical, &call)
    };
    Ok(match outcome {
        Ok(reply) => ok(reply.result, reply.description),
        Err(e) => error(e.code, &e.description, None),
    })
}

fn download(shared: &Shared, rest: &str) -> Resp {
    let Some((token, file_path)) = rest.split_once('/') else {
        return error(404, "Not Found", None);
    };
    if decode(token) != *shared.token.lock().unwrap_or_else(|e| e.into_inner()) {
        return error(401, "Unauthorized", None);
    }
    let file_path = decode(file_path);
    let state = shared.lock();
    match state.files.values().find(|f| f.path == file_path) {
        Some(file) => Response::builder()
            .status(200)
            .header(hyper::header::CONTENT_TYPE, "application/octet-stream")
            .body(Full::new(Bytes::from(file.bytes.clone())))
            .expect("response"),
        None => error(404, "Not Found", None),
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn json_body(status: u16, body: &Value) -> Resp {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
}

fn ok(result: Value, description: Option<&str>) -> Resp {
    let mut body = json!({"ok": true, "result": result});
    if let Some(d) = description {
        body["description"] = Value::from(d);
    }
    json_body(200, &body)
}

fn error(code: u16, description: &str, parameters: Option<Value>) -> Resp {
    let mut body = json!({"ok": false, "error_code": code, "description": description});
    if let Some(p) = parameters {
        body["parameters"] = p;
    }
    json_body(code, &body)
}

fn retry_after(secs: u32) -> Resp {
    let mut resp = error(
        429,
        &format!("Too Many Requests: retry after {secs}"),
        Some(json!({"retry_after": secs})),
    );
    resp.headers_mut()
        .insert(hyper::header::RETRY_AFTER, secs.into());
    resp
}
