//! The HTTP side: the Web API under `/api/METHOD`, uploads under
//! `/upload/`, downloads under `/files-pri/`, and the control endpoints
//! under `/_fake/`.
//!
//! A Web API call is recorded first, then checked for its token (none:
//! `not_authed`; unknown or revoked: `invalid_auth`; the other kind:
//! `not_allowed_token_type`), then answered by an armed fault if one
//! matches, and only then by the method. Slack answers errors with HTTP 200
//! and `{"ok":false,"error":…}`, except `ratelimited`, which is a 429 with
//! `Retry-After`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::state::State;
use crate::{BOT_ID, BOT_NAME, BOT_USER_ID, Call, Fault, Shared, TEAM_ID, body};

/// Most messages one `conversations.history` page holds.
const MAX_PAGE: usize = 999;

pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        while connections.try_join_next().is_some() {}
        let shared = shared.clone();
        connections.spawn(async move {
            let service = service_fn(move |req| handle(shared.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type Answer = Response<Full<Bytes>>;

fn answer(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Answer {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()))
        .expect("a valid response")
}

fn json_answer(value: Value) -> Answer {
    answer(
        StatusCode::OK,
        "application/json; charset=utf-8",
        value.to_string(),
    )
}

fn error(code: &str) -> Value {
    json!({"ok": false, "error": code})
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Answer, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let content_type = parts
        .headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bearer = parts
        .headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let mut state = shared.lock();
    let response = if let Some(method) = path.strip_prefix("/api/") {
        let Some(args) = body::args(parts.uri.query(), &content_type, &body) else {
            return Ok(json_answer(error("invalid_json")));
        };
        let token = bearer.or_else(|| args.get("token").and_then(Value::as_str).map(str::to_owned));
        web_api(&mut state, method, token, args)
    } else if let Some(file) = path.strip_prefix("/upload/v1/") {
        let bytes = body::upload(&content_type, &body);
        state.calls.push(call(&path, None, Map::new(), None));
        match state.files.get_mut(file) {
            Some(f) => {
                let n = bytes.len();
                f.bytes = Some(bytes);
                answer(StatusCode::OK, "text/plain", format!("OK - {n}"))
            }
            None => answer(StatusCode::NOT_FOUND, "text/plain", "not found"),
        }
    } else if let Some(rest) = path.strip_prefix("/files-pri/") {
        state
            .calls
            .push(call(&path, bearer.clone(), Map::new(), None));
        download(&state, rest, bearer.as_deref())
    } else if let Some(control) = path.strip_prefix("/_fake/") {
        let args = body::args(parts.uri.query(), "application/json", &body).unwrap_or_default();
        control_endpoint(&mut state, control, args)
    } else {
        answer(StatusCode::NOT_FOUND, "text/plain", "not found")
    };
    Ok(response)
}

fn call(
    method: &str,
    token: Option<String>,
    args: Map<String, Value>,
    fault: Option<Fault>,
) -> Call {
    Call {
        method: method.to_owned(),
        token,
        args,
        fault,
    }
}

/// Which token a method takes.
fn wants_app_token(method: &str) -> bool {
    method == "apps.connections.open"
}

fn web_api(
    state: &mut State,
    method: &str,
    token: Option<String>,
    args: Map<String, Value>,
) -> Answer {
    let token_error = match token.as_deref() {
        _ if state.revoked => Some("invalid_auth"),
        None => Some("not_authed"),
        Some(t) if t == state.app_token && !wants_app_token(method) => {
            Some("not_allowed_token_type")
        }
        Some(t) if t == state.bot_token && wants_app_token(method) => {
            Some("not_allowed_token_type")
        }
        Some(t) if t != state.app_token && t != state.bot_token => Some("invalid_auth"),
        Some(_) => None,
    };
    let fault = if token_error.is_none() {
        state.take_fault(method)
    } else {
        None
    };
    state
        .calls
        .push(call(method, token, args.clone(), fault.clone()));
    if let Some(code) = token_error {
        return json_answer(error(code));
    }
    match fault {
        Some(Fault::RateLimited { retry_after }) => {
            let mut response = answer(
                StatusCode::TOO_MANY_REQUESTS,
                "application/json; charset=utf-8",
                error("ratelimited").to_string(),
            );
            response.headers_mut().insert(
                "retry-after",
                retry_after.to_string().parse().expect("digits"),
            );
            return response;
        }
        Some(Fault::Error(code)) => return json_answer(error(&code)),
        Some(Fault::MissingScope { needed, provided }) => {
            return json_answer(json!({
                "ok": false, "error": "missing_scope", "needed": needed, "provided": provided
            }));
        }
        None => {}
    }
    let text = |name: &str| match args.get(name) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    };
    // A JSON value, or one sent as a JSON string in a form (`blocks`, `files`).
    let structured = |name: &str| match args.get(name) {
        Some(Value::String(s)) => serde_json::from_str::<Value>(s).ok(),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.clone()),
    };
    let result = match method {
        "auth.test" => Ok(json!({
            "url": "https://fake.slack.com/", "team": "Fake", "user": BOT_NAME,
            "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID,
            "is_enterprise_install": false,
        })),
        "apps.connections.open" => {
            let ticket = state.fresh("ticket-");
            state.tickets.push(ticket.clone());
            Ok(json!({"url": format!(
                "ws://{}/link/?ticket={ticket}&app_id={}",
                state.socket_addr,
                crate::APP_ID
            )}))
        }
        "chat.postMessage" => post_message(
            state,
            text("channel"),
            text("text"),
            structured("blocks"),
            text("thread_ts"),
        ),
        "chat.update" => update(
            state,
            text("channel"),
            text("ts"),
            text("text"),
            structured("blocks"),
        ),
        "reactions.add" => react(state, text("channel"), text("timestamp"), text("name")),
        "conversations.history" => history(
            state,
            text("channel"),
            text("limit"),
            text("latest"),
            text("cursor"),
        ),
        "conversations.replies" => replies(state, text("channel"), text("ts")),
        "conversations.info" => conversation(state, text("channel")),
        "users.info" => user(state, text("user")),
        "files.info" => match text("file").filter(|id| state.files.contains_key(id)) {
            Some(id) => Ok(json!({"file": state.file_object(&id)})),
            None => Err("file_not_found"),
        },
        "files.getUploadURLExternal" => upload_url(state, text("filename"), text("length")),
        "files.completeUploadExternal" => complete_upload(
            state,
            structured("files"),
            text("channel_id"),
            text("thread_ts"),
            text("initial_comment"),
        ),
        _ => Err("unknown_method"),
    };
    match result {
        Ok(Value::Object(mut fields)) => {
            fields.insert("ok".into(), Value::Bool(true));
            json_answer(Value::Object(fields))
        }
        Ok(other) => json_answer(other),
        Err(code) => json_answer(error(code)),
    }
}

type Outcome = Result<Value, &'static str>;

/// A channel the bot may post in.
fn postable(state: &State, channel: Option<&str>) -> Result<String, &'static str> {
    let id = channel.ok_or("channel_not_found")?;
    let c = state.channels.get(id).ok_or("channel_not_found")?;
    if !c.bot_member {
        return Err("not_in_channel");
    }
    Ok(id.to_owned())
}

fn post_message(
    state: &mut State,
    channel: Option<String>,
    text: Option<String>,
    blocks: Option<Value>,
    thread_ts: Option<String>,
) -> Outcome {
    let channel = postable(state, channel.as_deref())?;
    if text.as_deref().is_none_or(str::is_empty) && blocks.is_none() {
        return Err("no_text");
    }
    if text.as_ref().is_some_and(|t| t.chars().count() > 40_000) {
        return Err("msg_too_long");
    }
    let mut message = state.bot_message(text.as_deref().unwrap_or(""), blocks);
    if let Some(parent) = thread_ts {
        if state.message_mut(&channel, &parent).is_none() {
            return Err("thread_not_found");
        }
        message["thread_ts"] = json!(parent);
    }
    state.store(&channel, message.clone());
    state.emit_message(&channel, message.clone());
    Ok(json!({"channel": channel, "ts": message["ts"], "message": message}))
}

fn update(
    state: &mut State,
    channel: Option<String>,
    ts: Option<String>,
    text: Option<String>,
    blocks: Option<Value>,
) -> Outcome {
    let channel = channel.ok_or("channel_not_found")?;
    if !state.channels.contains_key(&channel) {
        return Err("channel_not_found");
    }
    let ts = ts.ok_or("message_not_found")?;
    let stored = state
        .message_mut(&channel, &ts)
        .ok_or("message_not_found")?;
    if stored["bot_id"] != BOT_ID {
        return Err("cant_update_message");
    }
    let previous = stored.clone();
    stored["text"] = json!(text.unwrap_or_default());
    match blocks {
        Some(blocks) => stored["blocks"] = blocks,
        None => {
            stored.as_object_mut().map(|m| m.remove("blocks"));
        }
    }
    stored["edited"] = json!({"user": BOT_USER_ID, "ts": ts});
    let message = stored.clone();
    let event_ts = state.next_ts();
    let channel_type = if state
        .channels
        .get(&channel)
        .is_some_and(|c| c.kind == crate::state::ChannelKind::Im)
    {
        "im"
    } else {
        "channel"
    };
    state.push_event(json!({
        "type": "message", "subtype": "message_changed", "hidden": true,
        "channel": channel, "channel_type": channel_type, "ts": event_ts, "event_ts": event_ts,
        "message": message, "previous_message": previous,
    }));
    Ok(json!({"channel": channel, "ts": ts, "text": message["text"], "message": message}))
}

fn react(
    state: &mut State,
    channel: Option<String>,
    ts: Option<String>,
    name: Option<String>,
) -> Outcome {
    let channel = channel.ok_or("channel_not_found")?;
    if !state.channels.contains_key(&channel) {
        return Err("channel_not_found");
    }
    let name = name
        .filter(|n| !n.is_empty() && !n.contains(':') && !n.contains(' '))
        .ok_or("invalid_name")?;
    let stored = state
        .message_mut(&channel, ts.as_deref().unwrap_or(""))
        .ok_or("message_not_found")?;
    let reactions = stored["reactions"].as_array().cloned().unwrap_or_default();
    if reactions.iter().any(|r| r["name"] == name.as_str()) {
        return Err("already_reacted");
    }
    let mut reactions = reactions;
    reactions.push(json!({"name": name, "users": [BOT_USER_ID], "count": 1}));
    stored["reactions"] = Value::Array(reactions);
    Ok(json!({}))
}

fn history(
    state: &State,
    channel: Option<String>,
    limit: Option<String>,
    latest: Option<String>,
    cursor: Option<String>,
) -> Outcome {
    let c = state
        .channels
        .get(channel.as_deref().unwrap_or(""))
        .ok_or("channel_not_found")?;
    if !c.bot_member {
        return Err("not_in_channel");
    }
    let limit = match limit {
        Some(l) => l
            .parse::<usize>()
            .map_err(|_| "invalid_limit")?
            .clamp(1, MAX_PAGE),
        None => 100,
    };
    // Newest first; thread replies stay in their threads.
    let mut top: Vec<&Value> = c
        .messages
        .iter()
        .rev()
        .filter(|m| m["thread_ts"].is_null() || m["thread_ts"] == m["ts"])
        .collect();
    if let Some(latest) = latest.as_deref().and_then(|l| l.parse::<f64>().ok()) {
        top.retain(|m| {
            m["ts"]
                .as_str()
                .and_then(|t| t.parse::<f64>().ok())
                .is_some_and(|t| t < latest)
        });
    }
    let skip = match cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => c
            .strip_prefix("page_")
            .and_then(|n| n.parse().ok())
            .ok_or("invalid_cursor")?,
        None => 0,
    };
    let page: Vec<Value> = top
        .iter()
        .skip(skip)
        .take(limit)
        .map(|m| (*m).clone())
        .collect();
    let has_more = top.len() > skip + page.len();
    let next = if has_more {
        format!("page_{}", skip + page.len())
    } else {
        String::new()
    };
    Ok(json!({
        "messages": page,
        "has_more": has_more,
        "pin_count": 0,
        "response_metadata": {"next_cursor": next},
    }))
}

fn replies(state: &State, channel: Option<String>, ts: Option<String>) -> Outcome {
    let c = state
        .channels
        .get(channel.as_deref().unwrap_or(""))
        .ok_or("channel_not_found")?;
    let ts = ts.ok_or("thread_not_found")?;
    let thread: Vec<Value> = c
        .messages
        .iter()
        .filter(|m| m["ts"] == ts.as_str() || m["thread_ts"] == ts.as_str())
        .cloned()
        .collect();
    if thread.is_empty() {
        return Err("thread_not_found");
    }
    Ok(json!({"messages": thread, "has_more": false}))
}

fn conversation(state: &State, channel: Option<String>) -> Outcome {
    let id = channel.unwrap_or_default();
    let c = state.channels.get(&id).ok_or("channel_not_found")?;
    let im = c.kind == crate::state::ChannelKind::Im;
    Ok(json!({"channel": {
        "id": id, "name": c.name, "is_im": im, "is_channel": !im,
        "is_member": c.bot_member, "user": c.user,
    }}))
}

fn user(state: &State, id: Option<String>) -> Outcome {
    let id = id.unwrap_or_default();
    let (name, real_name) = state.users.get(&id).ok_or("user_not_found")?;
    Ok(json!({"user": {
        "id": id, "team_id": TEAM_ID, "name": name, "real_name": real_name, "is_bot": false,
        "profile": {"real_name": real_name, "display_name": name},
    }}))
}

fn upload_url(state: &mut State, filename: Option<String>, length: Option<String>) -> Outcome {
    let filename = filename
        .filter(|f| !f.is_empty())
        .ok_or("invalid_arguments")?;
    let length: usize = length
        .and_then(|l| l.parse().ok())
        .ok_or("invalid_arguments")?;
    let id = state.fresh("F");
    state.files.insert(
        id.clone(),
        crate::state::File {
            name: filename.clone(),
            title: filename,
            mimetype: "application/octet-stream".into(),
            length,
            bytes: None,
        },
    );
    Ok(json!({"upload_url": format!("http://{}/upload/v1/{id}", state.web_addr), "file_id": id}))
}

fn complete_upload(
    state: &mut State,
    files: Option<Value>,
    channel: Option<String>,
    thread_ts: Option<String>,
    comment: Option<String>,
) -> Outcome {
    let files = files
        .and_then(|f| f.as_array().cloned())
        .filter(|f| !f.is_empty())
        .ok_or("invalid_arguments")?;
    let mut listed = Vec::new();
    for f in &files {
        let id = f["id"].as_str().ok_or("invalid_arguments")?;
        let stored = state.files.get_mut(id).ok_or("file_not_found")?;
        let Some(bytes) = &stored.bytes else {
            return Err("file_not_found");
        };
        stored.length = bytes.len();
        if let Some(title) = f["title"].as_str() {
            stored.title = title.to_owned();
        }
        stored.mimetype = guess_mime(&stored.name).into();
        listed.push(id.to_owned());
    }
    let objects: Vec<Value> = listed.iter().map(|id| state.file_object(id)).collect();
    if let Some(channel) = channel {
        let channel = postable(state, Some(&channel))?;
        let mut message = state.bot_message(comment.as_deref().unwrap_or(""), None);
        message["files"] = Value::Array(objects.clone());
        message["upload"] = json!(true);
        if let Some(parent) = thread_ts {
            message["thread_ts"] = json!(parent);
        }
        state.store(&channel, message.clone());
        state.emit_message(&channel, message);
    }
    Ok(
        json!({"files": objects.iter().map(|o| json!({"id": o["id"], "title": o["title"]})).collect::<Vec<_>>()}),
    )
}

fn guess_mime(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()) {
        Some(e) if e == "png" => "image/png",
        Some(e) if e == "jpg" || e == "jpeg" => "image/jpeg",
        Some(e) if e == "txt" => "text/plain",
        Some(e) if e == "pdf" => "application/pdf",
        Some(e) if e == "json" => "application/json",
        _ => "application/octet-stream",
    }
}

/// `url_private(_download)`: the bytes with the bot token; without it, the
/// sign-in page Slack serves instead (HTML, status 200), which a client
/// that does not look at the content type would take for the file.
fn download(state: &State, rest: &str, bearer: Option<&str>) -> Answer {
    let id = rest
        .split('/')
        .next()
        .and_then(|s| s.strip_prefix(&format!("{TEAM_ID}-")))
        .unwrap_or("");
    if bearer != Some(state.bot_token.as_str()) || state.revoked {
        return answer(
            StatusCode::OK,
            "text/html; charset=utf-8",
            "<!DOCTYPE html><html><head><title>Sign in | Slack</title></head><body></body></html>",
        );
    }
    match state
        .files
        .get(id)
        .and_then(|f| Some((f.mimetype.clone(), f.bytes.clone()?)))
    {
        Some((mime, bytes)) => answer(StatusCode::OK, &mime, bytes),
        None => answer(StatusCode::NOT_FOUND, "text/plain", "file not found"),
    }
}

/// What a test in another language drives the fake with.
fn control_endpoint(state: &mut State, what: &str, args: Map<String, Value>) -> Answer {
    let text = |k: &str| args.get(k).and_then(Value::as_str).map(str::to_owned);
    let number = |k: &str| args.get(k).and_then(Value::as_u64);
    match what {
        "post" => {
            let ts = state.post_as_user(
                &text("channel").unwrap_or_default(),
                &text("user").unwrap_or_default(),
                &text("text").unwrap_or_default(),
                text("thread_ts").as_deref(),
            );
            json_answer(json!({"ts": ts}))
        }
        "event" => {
            let id = state.push_event(args.get("event").cloned().unwrap_or(Value::Null));
            json_answer(json!({"envelope_id": id}))
        }
        "press" => {
            let id = state.press_button(
                &text("channel").unwrap_or_default(),
                &text("ts").unwrap_or_default(),
                &text("user").unwrap_or_default(),
                &text("action_id").unwrap_or_default(),
            );
            json_answer(json!({"envelope_id": id}))
        }
        "disconnect" => {
            let grace = Duration::from_millis(number("grace_ms").unwrap_or(200));
            state.disconnect(
                &text("reason").unwrap_or_else(|| "refresh_requested".into()),
                grace,
            );
            json_answer(json!({}))
        }
        "fault" => {
            let fault = match (number("ratelimited"), text("error")) {
                (Some(secs), _) => Fault::RateLimited { retry_after: secs },
                (None, Some(code)) if code == "missing_scope" => Fault::MissingScope {
                    needed: text("needed").unwrap_or_default(),
                    provided: text("provided").unwrap_or_default(),
                },
                (None, Some(code)) => Fault::Error(code),
                (None, None) => {
                    return answer(
                        StatusCode::BAD_REQUEST,
                        "text/plain",
                        "ratelimited or error",
                    );
                }
            };
            let times = number("times").unwrap_or(1) as usize;
            state.fail_next(&text("method").unwrap_or_default(), fault, times);
            json_answer(json!({}))
        }
        "state" => json_answer(json!({
            "acks": state.acks,
            "pending": state.pending(),
            "connections": state.connections_accepted,
            "connected": state.current.is_some(),
            "calls": state.calls.iter().map(|c| json!({
                "method": c.method, "args": c.args, "fault": c.fault.is_some(),
                "token_kind": match c.token.as_deref() {
                    Some(t) if t == state.app_token => "app",
                    Some(t) if t == state.bot_token => "bot",
                    Some(_) => "other",
                    None => "none",
                },
            })).collect::<Vec<_>>(),
        })),
        _ => answer(StatusCode::NOT_FOUND, "text/plain", "no such control"),
    }
}
