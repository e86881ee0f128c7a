//! Entry points for the fuzz targets in `fuzz/`, and the invariants they
//! check.
//!
//! Every parser of input from outside the trust boundary lives in a
//! crate-private module; this one exposes, for each, a single function that
//! takes raw bytes, runs the parser and panics when one of its promises is
//! broken (not only when it panics itself). The fuzz targets call these, and
//! so does the corpus test (`tests/all/fuzz_corpus.rs`), which replays every
//! saved input on stable. Nothing here is part of airlock's API: it hands
//! out no internal type, only `fn(&[u8])`.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use serde_json::Value;

use crate::bindings::types::ChunkMode;
use crate::event::ChannelEvent;
use crate::event::{notification, sanitize};
use crate::manifest::{Config, Kind, Manifest, Trust, effective};
use crate::mcp::{stdio, tools, writer};
use crate::net::destination::{Destination, Scheme, request_parts};
use crate::relay::request::{self as permission, PermissionRequest};

/// A check: runs one parser on raw bytes, panics when it breaks a promise.
pub type Check = fn(&[u8]);

/// Every check, by the name of its fuzz target (and of its corpus
/// directory, `fuzz/corpus/NAME`).
pub const TARGETS: &[(&str, Check)] = &[
    ("stdio", check_stdio),
    ("sanitize", check_sanitizer),
    ("chunk", check_chunker),
    ("manifest", check_manifest),
    ("config", check_config),
    ("destination", check_destination),
    ("signature", check_signature),
];

// ---------------------------------------------------------------------------
// stdio: the line filter and what rmcp and the tools make of a line

/// Feeds `data` to the real stdio filter as the session's stdin and checks
/// what it does with each line: blank lines are dropped, a line that is not
/// JSON gets one `-32700` answer, `server/discover` with an id one `-32601`
/// answer, and every other line goes on to rmcp byte for byte, in order.
/// Each forwarded line is then decoded as rmcp decodes it, and tool
/// arguments and permission requests are parsed as the server parses them.
pub fn check_stdio(data: &[u8]) {
    let (forwarded, written) = RUNTIME.with(|rt| rt.block_on(run_filter(data)));

    let mut want_forwarded = Vec::new();
    let mut want_answers: Vec<(i64, Value)> = Vec::new();
    let mut pieces: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    if pieces.last().is_some_and(|p| p.is_empty()) {
        pieces.pop();
    }
    for line in pieces {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Ok(message) = serde_json::from_slice::<Value>(line) else {
            want_answers.push((-32700, Value::Null));
            continue;
        };
        if message.get("method").and_then(Value::as_str) == Some("server/discover") {
            if let Some(id) = message.get("id") {
                want_answers.push((-32601, id.clone()));
            }
            continue;
        }
        want_forwarded.extend_from_slice(line);
        want_forwarded.push(b'\n');
    }
    assert!(
        forwarded == want_forwarded,
        "forwarded to rmcp:\n{}\nexpected:\n{}",
        String::from_utf8_lossy(&forwarded),
        String::from_utf8_lossy(&want_forwarded)
    );

    assert!(
        written.is_empty() || written.ends_with(b"\n"),
        "stdout ends inside a line"
    );
    let mut answers = Vec::new();
    for line in written.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let v: Value = serde_json::from_slice(line).unwrap_or_else(|e| {
            panic!(
                "stdout line is not JSON ({e}): {}",
                String::from_utf8_lossy(line)
            )
        });
        assert_eq!(v["jsonrpc"], "2.0", "{v}");
        assert!(v["error"]["message"].is_string(), "{v}");
        let code = v["error"]["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("no error code: {v}"));
        answers.push((code, v["id"].clone()));
    }
    assert_eq!(answers, want_answers, "answers on stdout");

    for line in forwarded.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        check_jsonrpc(line);
    }
}

thread_local! {
    /// One runtime per thread for [`check_stdio`], reused across inputs.
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
}

/// Runs the filter over `data`: what it forwarded to rmcp, and what the
/// writer wrote to stdout.
async fn run_filter(data: &[u8]) -> (Vec<u8>, Vec<u8>) {
    use std::io::Read;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (mut client, server_in) = tokio::io::duplex(1 << 16);
    let (mut stdout, stdout_w) = std::io::pipe().expect("a pipe for stdout");
    let (mut to_rmcp, rmcp_out, outlet) = stdio::filtered(
        server_in,
        stdout_w,
        Box::new(NoEvents),
        crate::router::afterwards::Afterwards::default(),
    );
    let input = data.to_vec();
    let feed = async move {
        client.write_all(&input).await.expect("the filter reads");
        drop(client);
    };
    let mut forwarded = Vec::new();
    let (_, read) = tokio::join!(feed, to_rmcp.read_to_end(&mut forwarded));
    read.expect("reading what the filter forwards");
    // The filter has ended; with rmcp's side and the outlet gone, the
    // writer thread ends and closes stdout once everything is written.
    drop((rmcp_out, outlet));
    let mut written = Vec::new();
    stdout
        .read_to_end(&mut written)
        .expect("reading stdout to its end");
    (forwarded, written)
}

/// The writer's ledger for [`check_stdio`], which sends no channel events.
struct NoEvents;

impl writer::Ledger for NoEvents {
    fn deliver(
        &mut self,
        _: std::os::fd::BorrowedFd<'_>,
        _: &[i64],
        _: &[u8],
        _: i64,
    ) -> writer::Sent {
        unreachable!("no events are sent")
    }
    fn behind(&self) -> bool {
        false
    }
    fn idle(&mut self) {}
}

/// One forwarded line, as rmcp and the server read it.
fn check_jsonrpc(line: &[u8]) {
    use rmcp::model::{ClientJsonRpcMessage, ClientNotification, ClientRequest, JsonRpcMessage};

    // rmcp's decoding: any line may fail, none may panic.
    if let Ok(message) = serde_json::from_slice::<ClientJsonRpcMessage>(line) {
        match message {
            JsonRpcMessage::Request(r) => {
                if let ClientRequest::CallToolRequest(call) = r.request {
                    check_tool_call(&call.params.name, call.params.arguments);
                }
            }
            JsonRpcMessage::Notification(n) => {
                if let ClientNotification::CustomNotification(c) = n.notification
                    && c.method == permission::METHOD
                {
                    check_permission_request(c.params.as_ref());
                }
            }
            _ => {}
        }
    }
    // The same checks on the raw value, so that they are reached even when
    // rmcp would refuse the envelope.
    let Ok(v) = serde_json::from_slice::<Value>(line) else {
        return;
    };
    match v.get("method").and_then(Value::as_str) {
        Some("tools/call") => {
            let params = v.get("params");
            let name = params
                .and_then(|p| p.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("reply");
            let args = params
                .and_then(|p| p.get("arguments"))
                .and_then(Value::as_object)
                .cloned();
            check_tool_call(name, args);
        }
        Some(m) if m == permission::METHOD => check_permission_request(v.get("params")),
        _ => {}
    }
}

/// A tool call's arguments, parsed as `ChannelServer::call` parses them.
fn check_tool_call(name: &str, args: Option<serde_json::Map<String, Value>>) {
    fn parsed<T: serde::de::DeserializeOwned>(
        name: &str,
        args: &Option<serde_json::Map<String, Value>>,
    ) -> Option<T> {
        match tools::parse::<T>(name, args.clone()) {
            Ok(a) => Some(a),
            Err(e) => {
                let shown = e.to_string();
                assert!(shown.contains(name), "{shown}");
                None
            }
        }
    }
    let check_format = |raw: Option<&str>| {
        let known = matches!(
            raw.unwrap_or("text"),
            "text" | "plain" | "markdown" | "markdownv2" | "html"
        );
        assert_eq!(tools::format(raw).is_ok(), known, "format {raw:?}");
    };
    let check_size = |text: &str| {
        assert_eq!(
            tools::check_text(text).is_ok(),
            text.len() <= tools::MAX_TEXT,
            "text of {} bytes",
            text.len()
        );
    };
    if let Some(a) = parsed::<tools::ReplyArgs>("reply", &args) {
        check_size(&a.text);
        check_format(a.format.as_deref());
        let shape: Vec<Vec<(String, String)>> = a
            .buttons
            .iter()
            .map(|r| {
                r.iter()
                    .map(|b| (b.label.clone(), b.data.clone()))
                    .collect()
            })
            .collect();
        let buttons: Vec<Vec<(String, String)>> = tools::buttons(a.buttons)
            .into_iter()
            .map(|r| r.into_iter().map(|b| (b.label, b.data)).collect())
            .collect();
        assert_eq!(buttons, shape, "buttons change on their way to the adapter");
    }
    if let Some(a) = parsed::<tools::EditArgs>("edit_message", &args) {
        check_size(&a.text);
        check_format(a.format.as_deref());
    }
    parsed::<tools::DownloadArgs>("download_attachment", &args);
    parsed::<tools::FetchArgs>("fetch_messages", &args);
    parsed::<tools::ReactArgs>("react", &args);
    let _ = name;
}

/// A permission request's params, checked as the relay checks them.
fn check_permission_request(params: Option<&Value>) {
    match PermissionRequest::parse(params) {
        Ok(r) => {
            assert!(permission::valid_id(&r.request_id), "{r:?}");
            assert!(
                !r.tool_name.trim().is_empty()
                    && r.tool_name.chars().count() <= permission::MAX_TOOL_NAME,
                "{r:?}"
            );
            let field = |name: &str| {
                params
                    .and_then(|p| p.get(name))
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| panic!("accepted without {name}"))
            };
            let description = field("description");
            assert!(description.starts_with(&r.description));
            assert!(r.description.chars().count() <= permission::MAX_DESCRIPTION);
            let preview = field("input_preview");
            assert!(preview.starts_with(&r.input_preview));
            assert!(r.input_preview.chars().count() <= permission::MAX_PREVIEW);
            assert_eq!(
                r.input_preview.chars().count() + r.preview_cut,
                preview.chars().count(),
                "what is kept and what is cut add up to the preview"
            );
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

// ---------------------------------------------------------------------------
// sanitize: meta keys, meta values, content, the notification line

/// Sanitizes `data` (as text) as content and as meta values, checks each
/// line of it against the meta key rule, and builds the event and its
/// JSON-RPC line.
///
/// Content keeps every character but the hidden ones, except that the
/// opener of each tag replaces itself with `‹`; what comes out has no
/// `<channel` or `</channel` that the sanitizer's own folding would find
/// (sanitizing it again changes nothing). A value is one trimmed line
/// without markup characters, hidden characters or runs of spaces.
pub fn check_sanitizer(data: &[u8]) {
    let text = String::from_utf8_lossy(data);

    for key in text.split('\n') {
        assert_eq!(sanitize::valid_key(key), key_rule(key), "key {key:?}");
    }

    let content = sanitize::content(&text);
    check_content(&text, &content);

    for raw in std::iter::once(&*text).chain(text.split('\n')) {
        let value = sanitize::value(raw);
        check_value(&value);
        assert_eq!(sanitize::value(&value), value, "a value sanitized again");
    }

    // The event as the router builds it: fixed keys, some invalid.
    const KEYS: [&str; 8] = [
        "chat_id", "user", "source", "Chat", "chat-id", "", "_x1", "9a",
    ];
    let mut lines = text.split('\n');
    let meta: BTreeMap<&'static str, String> = KEYS
        .iter()
        .map(|k| (*k, lines.next().unwrap_or_default().to_string()))
        .collect();
    let event = ChannelEvent::new(&text, meta.clone());
    assert_eq!(event.content, content);
    let kept: Vec<&str> = KEYS.iter().copied().filter(|k| key_rule(k)).collect();
    assert_eq!(
        event.meta.keys().map(String::as_str).collect::<Vec<_>>(),
        {
            let mut k = kept.clone();
            k.sort_unstable();
            k
        },
        "meta keys kept"
    );
    for (k, v) in &event.meta {
        assert_eq!(v, &sanitize::value(&meta[k.as_str()]));
    }
    let line = notification::line(&event);
    assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
    let v: Value = serde_json::from_str(&line).expect("the notification is JSON");
    assert_eq!(v["method"], notification::NOTIFICATION_METHOD);
    assert_eq!(
        v["params"]["content"].as_str(),
        Some(event.content.as_str())
    );
    for (k, val) in &event.meta {
        assert_eq!(v["params"]["meta"][k].as_str(), Some(val.as_str()));
    }
}

/// The key rule, written out apart from the sanitizer: `^[a-z_][a-z0-9_]*$`
/// and not `source`.
fn key_rule(key: &str) -> bool {
    let b = key.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
        && key != "source"
}

fn check_content(raw: &str, out: &str) {
    let kept: Vec<char> = raw.chars().filter(|c| !crate::text::hidden(*c)).collect();
    assert!(
        !out.chars().any(crate::text::hidden),
        "hidden character left in {out:?}"
    );
    let lower = out.to_lowercase();
    assert!(
        !lower.contains("<channel") && !lower.contains("</channel"),
        "a tag in {out:?}"
    );
    if kept.len() > sanitize::MAX_CONTENT {
        let marker = format!(
            "\n[… message cut: {} more characters not shown]",
            kept.len() - sanitize::MAX_CONTENT
        );
        assert!(out.ends_with(&marker), "no cut marker");
        return;
    }
    let shown: Vec<char> = out.chars().collect();
    assert_eq!(shown.len(), kept.len(), "{raw:?} became {out:?}");
    for (a, b) in kept.iter().zip(&shown) {
        assert!(a == b || *b == '‹', "{a:?} became {b:?} in {out:?}");
    }
    // Nothing the sanitizer's folding finds is left: a second pass is a no-op.
    assert_eq!(sanitize::content(out), out, "content sanitized again");
}

fn check_value(value: &str) {
    assert!(
        !value.chars().any(|c| c.is_control()
            || crate::text::hidden(c)
            || matches!(c, '"' | '<' | '>')
            || (c.is_whitespace() && c != ' ')),
        "{value:?}"
    );
    assert!(
        !value.starts_with(' ') && !value.ends_with(' ') && !value.contains("  "),
        "{value:?}"
    );
    assert!(
        value.chars().count() <= sanitize::MAX_VALUE + 1,
        "{value:?}"
    );
}

// ---------------------------------------------------------------------------
// chunk: splitting replies at a platform's limit

/// Splits text at a limit (first two bytes, 1 to 512) in a mode (third
/// byte): every chunk is within the limit, none is blank unless the text
/// is, and the chunks are the text in order with only whitespace left out,
/// and only between chunks (or before the first, or after the last).
pub fn check_chunker(data: &[u8]) {
    let [a, b, m, rest @ ..] = data else {
        return;
    };
    let limit = usize::from(u16::from_le_bytes([*a, *b]) % 512) + 1;
    let mode = if m & 1 == 0 {
        ChunkMode::Length
    } else {
        ChunkMode::Newline
    };
    let text = String::from_utf8_lossy(rest);
    let chunks = crate::router::chunk::chunks(&text, limit, mode);
    assert!(!chunks.is_empty(), "no chunk at all");
    for c in &chunks {
        assert!(
            c.chars().count() <= limit,
            "a chunk of {} characters over the limit of {limit}",
            c.chars().count()
        );
    }
    // A platform refuses to send a blank message: a text with something in
    // it never yields a blank chunk.
    if !text.trim().is_empty() {
        for c in &chunks {
            assert!(!c.trim().is_empty(), "a blank chunk among {chunks:?}");
        }
    }
    assert_rejoins(&text, &chunks);
}

/// `chunks` are `text` with only whitespace dropped, at chunk boundaries
/// (and before the first, and at the end).
fn assert_rejoins(text: &str, chunks: &[String]) {
    let input: Vec<char> = text.chars().collect();
    let n = input.len();
    // reachable[p]: the chunks so far can end at character p.
    let mut reachable = vec![false; n + 1];
    reachable[0] = true;
    for (i, chunk) in chunks.iter().enumerate() {
        let chunk: Vec<char> = chunk.chars().collect();
        // A chunk starts where the last one ended, or past whitespace after it.
        let mut start = vec![false; n + 1];
        for p in 0..=n {
            start[p] = reachable[p] || (p > 0 && start[p - 1] && input[p - 1].is_whitespace());
        }
        let mut next = vec![false; n + 1];
        for p in 0..=n {
            if start[p] && input[p..].starts_with(&chunk) {
                next[p + chunk.len()] = true;
            }
        }
        assert!(
            next.contains(&true),
            "chunk {i} {:?} is not the text that follows the one before it",
            chunk.iter().collect::<String>()
        );
        reachable = next;
    }
    let ends = (0..=n).any(|p| reachable[p] && input[p..].iter().all(|c| c.is_whitespace()));
    assert!(ends, "text after the last chunk is dropped");
}

// ---------------------------------------------------------------------------
// manifest and airlock.toml

/// A manifest, optionally followed by a line `+++` and an `airlock.toml`:
/// what parses satisfies every rule the parser promises, its destinations
/// print and parse back, and manifest ∩ grant only ever narrows what the
/// manifest asks.
pub fn check_manifest(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (manifest_text, config_text) = match text.split_once("\n+++\n") {
        Some((m, c)) => (m, Some(c)),
        None => (&*text, None),
    };
    let manifest = match Manifest::from_str(manifest_text) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    check_manifest_rules(&manifest);
    let again = Manifest::from_str(manifest_text).expect("parses twice");
    assert_eq!(again, manifest);

    let config = match config_text.map(parse_config) {
        Some(Some(c)) => c,
        Some(None) => return,
        None => Config::default(),
    };
    let grant = config.component(&manifest.name).grant;
    let asked = effective(
        &manifest,
        &Config::default().component("").grant,
        Trust::Bundled,
    )
    .expect("a valid manifest with no grant");
    for trust in [Trust::Bundled, Trust::ThirdParty] {
        let got = match effective(&manifest, &grant, trust) {
            Ok(e) => e,
            Err(e) => {
                let _ = e.to_string();
                continue;
            }
        };
        let rebound = |d: &Destination| grant.rebind.get(d).cloned().unwrap_or_else(|| d.clone());
        for (got, declared, allowed) in [
            (
                &got.outbound_http,
                &manifest.outbound_http,
                &grant.outbound_http,
            ),
            (&got.websocket, &manifest.websocket, &grant.websocket),
        ] {
            for d in got {
                assert!(
                    declared
                        .iter()
                        .any(|a| allowed.as_ref().is_none_or(|l| l.contains(a)) && rebound(a) == *d),
                    "{d} granted, but not declared and allowed"
                );
            }
        }
        assert_eq!(got.kind, manifest.kind);
        assert_eq!(got.local, grant.local);
        assert!(
            !got.inbound_http
                || (manifest.inbound_http.wanted() && grant.inbound_http != Some(false))
        );
        // Beyond loopback only for a route whose requests are signed.
        assert!(
            got.inbound_bind.is_loopback() || !got.inbound_http || got.inbound_signature.is_some()
        );
        match (manifest.kv_quota_bytes, got.kv_quota_bytes) {
            (None, None) => {}
            (Some(asked), Some(q)) => assert!(q <= asked),
            other => panic!("kv quota {other:?}"),
        }
        for s in &got.secrets {
            assert!(
                manifest.secrets.iter().any(|m| m.name == s.name),
                "{}",
                s.name
            );
            if trust == Trust::ThirdParty || grant.secrets.is_some() {
                assert!(
                    grant.secrets.as_ref().is_some_and(|n| n.contains(&s.name)),
                    "secret {} not named by the operator",
                    s.name
                );
            }
            assert!(
                got.outbound_http.contains(&s.destination)
                    || got.websocket.contains(&s.destination),
                "secret {} bound to {}, which is not granted",
                s.name,
                s.destination
            );
        }
        assert!(got.limits.memory_bytes <= asked.limits.memory_bytes);
        assert!(got.limits.cpu <= asked.limits.cpu);
        assert!(got.limits.wall <= asked.limits.wall);
        let l = got.linkable();
        assert_eq!(l.outbound_http, !got.outbound_http.is_empty());
        assert_eq!(l.websocket, !got.websocket.is_empty());
    }
}

fn check_manifest_rules(m: &Manifest) {
    assert!(crate::manifest::valid_name(&m.name), "{:?}", m.name);
    assert_eq!(m.api, "0.1");
    if let Some(d) = &m.description {
        assert!(d.chars().count() <= 200 && !d.chars().any(char::is_control));
    }
    if m.kind == Kind::Filter {
        assert!(m.outbound_http.is_empty() && m.websocket.is_empty() && !m.inbound_http.wanted());
    } else {
        assert!(m.directions.is_none());
    }
    assert!(m.directions.as_ref().is_none_or(|d| !d.is_empty()));
    for d in m.outbound_http.iter().chain(&m.websocket) {
        destination_round_trips(d);
    }
    for s in &m.secrets {
        assert!(crate::manifest::check_name(&s.name).is_ok(), "{}", s.name);
        assert!(s.position().is_ok(), "{}", s.name);
        let listed = if s.ws_json_field.is_some() {
            &m.websocket
        } else {
            &m.outbound_http
        };
        assert!(listed.contains(&s.destination), "{}", s.name);
        for t in [&s.value, &s.path_prefix].into_iter().flatten() {
            assert_eq!(t.matches("{secret}").count(), 1, "{t:?}");
        }
        let position = s.position().unwrap();
        assert_eq!(position.to_string().parse().ok(), Some(position.clone()));
    }
    // Never two candidates for one place in one request: one secret per header, and one
    // path prefix, for each destination and scope (a JSON field has its own rules).
    let places: Vec<_> = m
        .secrets
        .iter()
        .filter(|o| o.ws_json_field.is_none())
        .map(|o| {
            let header = o.header.as_deref().map(|h| h.trim().to_ascii_lowercase());
            (o.destination.to_string(), o.under.clone(), header)
        })
        .collect();
    for (i, place) in places.iter().enumerate() {
        assert!(!places[i + 1..].contains(place), "two secrets at {place:?}");
    }
}

/// An `airlock.toml`: what parses satisfies the rules its sections promise.
pub fn check_config(data: &[u8]) {
    parse_config(&String::from_utf8_lossy(data));
}

/// Parses and checks a config; `None` when it does not parse.
fn parse_config(text: &str) -> Option<Config> {
    let path = Path::new("airlock.toml");
    let config = match Config::parse(text, path) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.to_string();
            return None;
        }
    };
    assert_eq!(
        Config::parse(text, path).ok().as_ref(),
        Some(&config),
        "parses twice the same"
    );
    for (name, c) in &config.components {
        assert!(
            !c.settings.keys().any(|k| k.starts_with("airlock.")),
            "{name}: a reserved setting"
        );
        let g = &c.grant;
        let lists = [&g.outbound_http, &g.websocket];
        for d in lists.into_iter().flatten().flatten().chain(&g.local) {
            destination_round_trips(d);
        }
        for (from, to) in &g.rebind {
            destination_round_trips(from);
            destination_round_trips(to);
        }
    }
    let access = &config.access;
    assert!(access.adapters.is_empty() || access.static_access);
    assert!(access.sender_per_minute() >= 1 && access.stranger_alert_per_minute() >= 1);
    for (name, a) in &access.adapters {
        assert!(crate::manifest::valid_name(name), "{name:?}");
        let mut seen = std::collections::BTreeSet::new();
        for id in a.owners.iter().chain(&a.members) {
            assert!(seen.insert(id), "sender {id:?} listed twice");
            assert_id(id);
        }
        let mut chats = std::collections::BTreeSet::new();
        for g in &a.groups {
            assert!(chats.insert(&g.chat_id), "group {:?} twice", g.chat_id);
            assert_id(&g.chat_id);
        }
    }
    let relay = &config.relay;
    assert!((1..=24 * 3600).contains(&relay.ttl_secs), "{relay:?}");
    assert!((0..=24 * 3600).contains(&relay.nudge_secs), "{relay:?}");
    assert!(
        relay
            .nudge_after()
            .is_none_or(|n| n > 0 && n < relay.ttl_secs)
    );
    use crate::manifest::duration::{parse_secs, show};
    assert_eq!(parse_secs("ttl", &show(relay.ttl_secs)), Ok(relay.ttl_secs));
    if let Some(otlp) = &config.audit.otlp {
        let uri: http::Uri = otlp.endpoint.parse().expect("an endpoint is a URI");
        assert!(matches!(uri.scheme_str(), Some("http" | "https")));
        assert!(uri.host().is_some_and(|h| !h.is_empty()) && uri.query().is_none());
        assert!(!uri.authority().is_some_and(|a| a.as_str().contains('@')));
    }
    let _ = config.inbox.quota_bytes();
    Some(config)
}

fn assert_id(id: &str) {
    assert!(
        !id.is_empty() && !id.chars().any(|c| c.is_whitespace() || c.is_control()),
        "id {id:?}"
    );
}

// ---------------------------------------------------------------------------
// destination: `scheme://host[:port]`, and request URIs against them

/// Each line of `data` as a destination and as a request URI: a parsed
/// destination prints and parses back the same (and builds the same from
/// its parts); a URI is allowed by a destination exactly when its parts
/// normalise to that destination, and never with userinfo.
pub fn check_destination(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<&str> = text.split('\n').take(16).collect();
    let mut parsed = Vec::new();
    for line in &lines {
        match Destination::from_str(line) {
            Ok(d) => {
                destination_round_trips(&d);
                parsed.push(d);
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
    for line in &lines {
        let Ok(uri) = line.parse::<http::Uri>() else {
            continue;
        };
        let parts = request_parts(&uri);
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            assert!(parts.is_err(), "userinfo accepted in {line:?}");
        }
        let named = parts
            .ok()
            .and_then(|(scheme, host, port)| Destination::new(scheme, host, port).ok());
        if let Some(d) = &named {
            destination_round_trips(d);
        }
        for d in &parsed {
            assert_eq!(
                d.allows(&uri),
                named.as_ref() == Some(d),
                "{d} and {line:?}"
            );
        }
    }
    // A host with each scheme and a port from the input.
    let port = data.first().map_or(443, |b| u16::from(*b) * 257);
    for scheme in [Scheme::Http, Scheme::Https, Scheme::Ws, Scheme::Wss] {
        if let Ok(d) = Destination::new(scheme, lines[0], port) {
            destination_round_trips(&d);
        }
    }
}

/// `d` prints as a destination that parses back to itself, and is the one
/// its parts build.
fn destination_round_trips(d: &Destination) {
    let shown = d.to_string();
    let again = Destination::from_str(&shown)
        .unwrap_or_else(|e| panic!("{d:?} prints as {shown:?}, which does not parse: {e}"));
    assert_eq!(&again, d, "{shown}");
    assert_eq!(again.to_string(), shown);
    assert_ne!(d.port(), 0);
    assert!(!d.host().is_empty() && !d.host().ends_with('.'), "{d:?}");
    assert_eq!(d.host(), d.host().to_ascii_lowercase());
    assert!(d.matches(d.scheme(), d.host(), d.port()), "{d:?}");
    assert_eq!(
        Destination::new(d.scheme(), d.host(), d.port()).as_ref(),
        Ok(d)
    );
    let json = serde_json::to_string(d).expect("serializes");
    assert_eq!(
        &serde_json::from_str::<Destination>(&json).expect("reads back"),
        d
    );
    if let Ok(uri) = shown.parse::<http::Uri>() {
        assert!(d.allows(&uri), "{d} does not allow its own URI");
    }
}

// ---------------------------------------------------------------------------
// signature: a signed inbound route's check of a request

/// `data` as a request to a signed route: its first byte picks the scheme
/// (GitHub's, Slack's, or the `[inbound_http]` table that follows, when it
/// parses), the rest is split at NUL into a key, header values and a body.
/// Whatever the input, the check answers and never panics; the same
/// request signed right passes, and with any byte of its body changed, or
/// under another key, it does not.
pub fn check_signature(data: &[u8]) {
    use crate::manifest::{Part, SignatureScheme};
    use crate::sources::inbound_http::signature::{Refusal, check};
    use ring::hmac;

    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let mut fields = rest.splitn(5, |b| *b == 0);
    let mut next = || fields.next().unwrap_or_default();
    let (table, key, signature, stamp, body) = (next(), next(), next(), next(), next());
    let scheme = match pick % 3 {
        0 => SignatureScheme::github(),
        1 => SignatureScheme::slack(),
        _ => {
            #[derive(serde::Deserialize)]
            struct Doc {
                inbound_http: crate::manifest::InboundHttpSpec,
            }
            match toml::from_str::<Doc>(&String::from_utf8_lossy(table)) {
                Ok(Doc { inbound_http }) => match inbound_http.signed() {
                    Some(route) => route.scheme.clone(),
                    None => return,
                },
                Err(e) => {
                    let _ = e.to_string();
                    return;
                }
            }
        }
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let now = 1_700_000_000;
    let header = |value: &[u8]| http::HeaderValue::from_bytes(value).ok();
    let headers = |signature: Option<http::HeaderValue>, stamp: Option<http::HeaderValue>| {
        let mut h = http::HeaderMap::new();
        if let (Some(v), Ok(name)) = (
            signature,
            http::HeaderName::from_bytes(scheme.header.as_bytes()),
        ) {
            h.insert(name, v);
        }
        if let (Some(v), Some(name)) = (
            stamp,
            scheme
                .timestamp_header
                .as_ref()
                .and_then(|n| http::HeaderName::from_bytes(n.as_bytes()).ok()),
        ) {
            h.insert(name, v);
        }
        h
    };
    // Arbitrary headers: an answer, never a pass it did not earn by chance.
    let _ = check(
        &scheme,
        &key,
        &headers(header(signature), header(stamp)),
        body,
        now,
    );

    // Signed right, at a time inside the window.
    let stamp = (now - u64::from(pick)).to_string();
    let sign = |key: &hmac::Key, body: &[u8]| {
        let mut mac = hmac::Context::with_key(key);
        for part in &scheme.signed {
            match part {
                Part::Text(t) => mac.update(t.as_bytes()),
                Part::Timestamp => mac.update(stamp.as_bytes()),
                Part::Body => mac.update(body),
            }
        }
        let value = format!("{}{}", scheme.prefix, hex::encode(mac.sign().as_ref()));
        header(value.as_bytes())
    };
    let Some(good) = sign(&key, body) else {
        // A prefix that is no header value cannot be sent at all.
        return;
    };
    let stamped = scheme
        .timestamp_header
        .as_ref()
        .map(|_| http::HeaderValue::from_str(&stamp).unwrap());
    let within = u64::from(pick) <= scheme.max_age.as_secs();
    let verdict = check(
        &scheme,
        &key,
        &headers(Some(good.clone()), stamped.clone()),
        body,
        now,
    );
    if scheme.timestamp_header.is_none() || within {
        assert!(
            verdict.is_ok(),
            "a request signed right was refused: {verdict:?}"
        );
    } else {
        assert_eq!(verdict, Err(Refusal::Stale));
        return;
    }
    if let Some(first) = body.first() {
        let mut changed = body.to_vec();
        changed[0] = first ^ 1;
        let verdict = check(
            &scheme,
            &key,
            &headers(Some(good), stamped.clone()),
            &changed,
            now,
        );
        assert_eq!(verdict, Err(Refusal::BadSignature), "a changed body passed");
    }
    let other = hmac::Key::new(hmac::HMAC_SHA256, b"another key entirely");
    if let Some(theirs) = sign(&other, body) {
        let verdict = check(&scheme, &key, &headers(Some(theirs), stamped), body, now);
        assert_eq!(
            verdict,
            Err(Refusal::BadSignature),
            "another key's signature passed"
        );
    }
}
