//! A generic webhook adapter, and the worked example of the `airlock-guest`
//! SDK.
//!
//! **Inbound.** Anything that can make an HTTP request can talk to the bot:
//! `POST /` on the adapter's inbound route with a JSON object
//!
//! ```json
//! {"chat": "ops", "user": "Ada", "user_id": "42", "text": "hello"}
//! ```
//!
//! is answered `202 Accepted` (`{"accepted":true,"message_id":"…"}`) and
//! becomes one inbound message: a direct chat with id `chat`, sender id
//! `user_id` with display name `user`, addressed to the bot, stamped with the
//! host's clock. A body that is not such an object is answered `400` with
//! `{"error":"…"}` naming the problem, and delivers nothing. Other paths get
//! `404`, other methods on `/` get `405`.
//!
//! **Outbound.** `send` POSTs `{"chat_id":…,"text":…,"reply_to":…}` as JSON to
//! the URL in the `outbound_url` setting and returns the `id` field (string
//! or number) of the JSON response as the message id. A non-2xx answer is an
//! `adapter-error::platform` with the status and the start of the body; 429
//! is `rate-limited` (from `Retry-After` seconds, else one second). Without
//! `outbound_url` the adapter only receives, and `send` is `unsupported`.
//!
//! **GitHub.** With the setting `format = "github"`, the route takes
//! GitHub's webhook deliveries instead: each event becomes one message from
//! the GitHub user who caused it, in the repository's chat, and a `ping` is
//! answered `200` (`github.rs`). Its manifest declares GitHub's signature so
//! the host checks every delivery first (`examples/github-webhook/`).
//!
//! Settings ([`Settings`]): `outbound_url` (optional, `http://` or
//! `https://`), `format` (`json` or `github`), and `port`, which the host
//! reads to bind the inbound route. Any other key is refused at start.

use airlock_guest::http::Method;
use airlock_guest::serde_json::{self, Value, json};
use airlock_guest::settings::HttpUrl;
use airlock_guest::types::{
    AdapterError, Chat, ChatKind, ChunkMode, Description, EventBatch, Features, HttpResponse,
    InboundEvent, InboundMessage, IncomingReply, IncomingRequest, Limits, OutboundMessage, Sender,
    Sent,
};
use airlock_guest::{Adapter, http, log};

mod github;

/// The fuzz target's check (`fuzz/`); native builds only.
#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
pub mod fuzzing;

/// Longest message the adapter accepts from the host, in bytes of text.
const MAX_TEXT_LEN: u32 = 4000;
/// How much of an error response body goes into an error message.
const EXCERPT_BYTES: usize = 300;

/// The operator's settings.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where `send` posts replies; without it the adapter only receives.
    pub outbound_url: Option<HttpUrl>,
    /// The inbound route's port; the host binds it, the adapter does not
    /// need it.
    pub port: Option<u16>,
    /// What inbound bodies are: `json` (the default, above) or `github`
    /// (GitHub's webhook deliveries, see `github.rs`).
    #[serde(default)]
    pub format: Format,
}

/// The `format` setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `{"chat","user","user_id","text"}`.
    #[default]
    Json,
    /// GitHub's deliveries: one message per event, pings answered.
    Github,
}

/// The adapter: one instance's settings and counter.
#[derive(Debug, Default)]
pub struct Webhook {
    /// The `outbound_url` setting.
    outbound_url: Option<HttpUrl>,
    /// Makes message ids unique within an instance.
    sequence: u64,
    /// The `format` setting.
    format: Format,
}

impl Adapter for Webhook {
    type Settings = Settings;

    fn describe() -> Description {
        Description {
            platform: "webhook".into(),
            limits: Limits {
                max_text_len: MAX_TEXT_LEN,
                chunk_mode: ChunkMode::Newline,
                max_files: 0,
                max_file_bytes: 0,
            },
            features: Features::empty(),
            instructions: vec![
                "Messages arrive through a generic webhook; replies are delivered as plain text, \
                 without formatting, buttons or files."
                    .into(),
            ],
        }
    }

    fn start(settings: Settings) -> Result<Self, AdapterError> {
        if settings.outbound_url.is_none() {
            log::info("no `outbound_url` setting: receiving only, `send` is unsupported");
        }
        Ok(Webhook {
            outbound_url: settings.outbound_url,
            sequence: 0,
            format: settings.format,
        })
    }

    fn on_http_request(&mut self, request: IncomingRequest) -> Result<IncomingReply, AdapterError> {
        Ok(self.handle_request(&request, airlock_guest::now_ms))
    }

    fn send(&mut self, message: OutboundMessage) -> Result<Sent, AdapterError> {
        let url = self.outbound_url.as_ref().ok_or_else(|| {
            AdapterError::Unsupported(
                "sending needs the `outbound_url` setting of the webhook adapter".into(),
            )
        })?;
        let response = http::Request::post(url.as_str())
            .json(&outbound_body(&message))
            .send()?;
        sent_from_response(&response)
    }
}

airlock_guest::export_adapter!(Webhook);

impl Webhook {
    /// Answers one inbound request; `now_ms` stamps an accepted message.
    fn handle_request(
        &mut self,
        request: &IncomingRequest,
        now_ms: impl FnOnce() -> u64,
    ) -> IncomingReply {
        if request
            .path_and_query()
            .is_none_or(|target| target.path() != "/")
        {
            return reply(
                error_response(404, "not found: post messages to /"),
                Vec::new(),
            );
        }
        if request.http_method() != Some(Method::POST) {
            let mut response = error_response(405, "method not allowed: use POST");
            response.headers.push(("allow".into(), "POST".into()));
            return reply(response, Vec::new());
        }
        if self.format == Format::Github {
            return self.github_delivery(request, now_ms());
        }
        let fields = match parse_inbound(&request.body) {
            Ok(fields) => fields,
            Err(why) => return reply(error_response(400, &why), Vec::new()),
        };
        let ts_ms = now_ms();
        let message_id = format!("{ts_ms}-{}", self.sequence);
        self.sequence += 1;
        let body = json!({ "accepted": true, "message_id": message_id });
        let message = InboundMessage {
            chat: Chat {
                id: fields.chat,
                kind: ChatKind::Direct,
                title: None,
                parent_id: None,
            },
            sender: Sender {
                id: fields.user_id,
                handle: None,
                display_name: (!fields.user.is_empty()).then_some(fields.user),
                is_bot: false,
            },
            message_id,
            text: fields.text,
            ts_ms,
            reply_to: None,
            mentions_bot: true,
            attachments: Vec::new(),
            edited: false,
        };
        reply(
            HttpResponse::new(202, "application/json", body.to_string()),
            vec![InboundEvent::Message(message)],
        )
    }
}

impl Webhook {
    /// Answers one of GitHub's deliveries: 202 with one message, 200 to a
    /// ping, 400 with the reason otherwise.
    fn github_delivery(&mut self, request: &IncomingRequest, now_ms: u64) -> IncomingReply {
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let sequence = &mut self.sequence;
        let fallback = || {
            *sequence += 1;
            format!("{now_ms}-{sequence}")
        };
        match github::delivery(
            header("x-github-event"),
            header("x-github-delivery"),
            &request.body,
            now_ms,
            fallback,
        ) {
            Ok(github::Delivery::Ping) => reply(
                HttpResponse::new(200, "application/json", json!({"pong": true}).to_string()),
                Vec::new(),
            ),
            Ok(github::Delivery::Message(message)) => {
                let body = json!({"accepted": true, "message_id": message.message_id});
                reply(
                    HttpResponse::new(202, "application/json", body.to_string()),
                    vec![InboundEvent::Message(*message)],
                )
            }
            Err(why) => reply(error_response(400, &why), Vec::new()),
        }
    }
}

fn reply(response: HttpResponse, events: Vec<InboundEvent>) -> IncomingReply {
    IncomingReply {
        response,
        batch: EventBatch {
            events,
            cursor: None,
        },
    }
}

fn error_response(status: u16, message: &str) -> HttpResponse {
    HttpResponse::new(
        status,
        "application/json",
        json!({ "error": message }).to_string(),
    )
}

/// The fields of a valid inbound body.
#[derive(Debug, PartialEq)]
struct InboundFields {
    chat: String,
    user: String,
    user_id: String,
    text: String,
}

/// Parses `{"chat","user","user_id","text"}`; the error says what is wrong.
fn parse_inbound(body: &[u8]) -> Result<InboundFields, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not valid JSON: {e}"))?;
    let object = value
        .as_object()
        .ok_or("the body must be a JSON object with chat, user, user_id and text")?;
    let field = |name: &str, may_be_empty: bool| -> Result<String, String> {
        match object.get(name) {
            None | Some(Value::Null) => Err(format!("field `{name}` is missing")),
            Some(Value::String(s)) if s.trim().is_empty() && !may_be_empty => {
                Err(format!("field `{name}` must not be empty"))
            }
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(format!("field `{name}` must be a string")),
        }
    };
    Ok(InboundFields {
        chat: field("chat", false)?,
        user: field("user", true)?,
        user_id: field("user_id", false)?,
        text: field("text", false)?,
    })
}

/// The JSON body `send` posts.
fn outbound_body(message: &OutboundMessage) -> Value {
    json!({
        "chat_id": message.chat_id,
        "text": message.text,
        "reply_to": message.reply_to,
    })
}

/// Turns the platform's answer into the sent message id, or an error.
fn sent_from_response(response: &http::Response) -> Result<Sent, AdapterError> {
    if response.status == 429 {
        let wait_ms = response
            .header("retry-after")
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map_or(1000, |secs| secs.saturating_mul(1000));
        return Err(AdapterError::RateLimited(wait_ms));
    }
    if !response.is_success() {
        return Err(AdapterError::Platform(format!(
            "HTTP {}: {}",
            response.status,
            response.body_excerpt(EXCERPT_BYTES)
        )));
    }
    let value: Value = response
        .json()
        .map_err(|e| AdapterError::Platform(e.message))?;
    match value.get("id") {
        Some(Value::String(id)) if !id.is_empty() => Ok(Sent::one(id.clone())),
        Some(Value::Number(id)) => Ok(Sent::one(id.to_string())),
        _ => Err(AdapterError::Platform(format!(
            "HTTP {}: the response has no `id` string or number: {}",
            response.status,
            response.body_excerpt(EXCERPT_BYTES)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One request to a fresh instance.
    fn handle_request(request: &IncomingRequest, now_ms: impl FnOnce() -> u64) -> IncomingReply {
        Webhook::default().handle_request(request, now_ms)
    }

    fn request(method: &str, path: &str, body: &str) -> IncomingRequest {
        IncomingRequest {
            method: method.into(),
            path: path.into(),
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn response(status: u16, body: &str) -> http::Response {
        http::Response {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn error_text(reply: &IncomingReply) -> String {
        let v: Value = serde_json::from_slice(&reply.response.body).unwrap();
        v["error"].as_str().unwrap().to_string()
    }

    #[test]
    fn accepts_a_message() {
        let body = r#"{"chat":"ops","user":"Ada","user_id":"42","text":"hello","extra":1}"#;
        let reply = handle_request(&request("POST", "/", body), || 1_700_000_000_000);
        assert_eq!(reply.response.status, 202);
        assert_eq!(reply.batch.events.len(), 1);
        let InboundEvent::Message(m) = &reply.batch.events[0] else {
            panic!("not a message")
        };
        assert_eq!(m.chat.id, "ops");
        assert_eq!(m.chat.kind, ChatKind::Direct);
        assert_eq!(m.sender.id, "42");
        assert_eq!(m.sender.display_name.as_deref(), Some("Ada"));
        assert_eq!(m.text, "hello");
        assert_eq!(m.ts_ms, 1_700_000_000_000);
        assert!(m.mentions_bot);
        assert!(m.message_id.starts_with("1700000000000-"));
        let v: Value = serde_json::from_slice(&reply.response.body).unwrap();
        assert_eq!(v["message_id"], m.message_id.as_str());
    }

    #[test]
    fn rejects_bad_bodies_with_400_and_no_events() {
        for (body, expect) in [
            ("not json", "not valid JSON"),
            ("[1,2]", "must be a JSON object"),
            (
                r#"{"user":"a","user_id":"1","text":"t"}"#,
                "`chat` is missing",
            ),
            (
                r#"{"chat":"c","user_id":"1","text":"t"}"#,
                "`user` is missing",
            ),
            (
                r#"{"chat":"c","user":"a","text":"t"}"#,
                "`user_id` is missing",
            ),
            (
                r#"{"chat":"c","user":"a","user_id":"1"}"#,
                "`text` is missing",
            ),
            (
                r#"{"chat":5,"user":"a","user_id":"1","text":"t"}"#,
                "`chat` must be a string",
            ),
            (
                r#"{"chat":"c","user":"a","user_id":"1","text":" "}"#,
                "`text` must not be empty",
            ),
        ] {
            let reply = handle_request(&request("POST", "/", body), || 0);
            assert_eq!(reply.response.status, 400, "{body}");
            assert!(reply.batch.events.is_empty());
            assert!(
                error_text(&reply).contains(expect),
                "{body}: {}",
                error_text(&reply)
            );
        }
    }

    #[test]
    fn other_paths_and_methods() {
        let ok = r#"{"chat":"c","user":"a","user_id":"1","text":"t"}"#;
        let reply = handle_request(&request("POST", "/other", ok), || 0);
        assert_eq!(reply.response.status, 404);
        assert!(reply.batch.events.is_empty());
        let reply = handle_request(&request("GET", "/", ""), || 0);
        assert_eq!(reply.response.status, 405);
        assert!(reply.batch.events.is_empty());
        let reply = handle_request(&request("post", "/?source=ci", ok), || 0);
        assert_eq!(reply.response.status, 202);
    }

    #[test]
    fn outbound_body_shape() {
        let message = OutboundMessage {
            chat_id: "ops".into(),
            text: "hi".into(),
            reply_to: None,
            format: airlock_guest::types::TextFormat::Plain,
            buttons: Vec::new(),
            files: Vec::new(),
        };
        assert_eq!(
            outbound_body(&message),
            json!({"chat_id": "ops", "text": "hi", "reply_to": null})
        );
    }

    #[test]
    fn ids_from_responses() {
        let sent = sent_from_response(&response(200, r#"{"id":"m-1"}"#)).unwrap();
        assert_eq!(sent.message_ids, ["m-1"]);
        let sent = sent_from_response(&response(201, r#"{"id":17}"#)).unwrap();
        assert_eq!(sent.message_ids, ["17"]);
        match sent_from_response(&response(200, r#"{"ok":true}"#)) {
            Err(AdapterError::Platform(m)) => assert!(m.contains("no `id`"), "{m}"),
            other => panic!("{other:?}"),
        }
        match sent_from_response(&response(500, "boom")) {
            Err(AdapterError::Platform(m)) => assert_eq!(m, "HTTP 500: boom"),
            other => panic!("{other:?}"),
        }
        let mut limited = response(429, "");
        limited.headers.push(("Retry-After".into(), "3".into()));
        assert!(matches!(
            sent_from_response(&limited),
            Err(AdapterError::RateLimited(3000))
        ));
    }

    #[test]
    fn outbound_url_is_checked() {
        let check_outbound_url = |url: &str| url.parse::<HttpUrl>();
        assert!(check_outbound_url("https://example.com/hook").is_ok());
        assert!(check_outbound_url("http://127.0.0.1:9/").is_ok());
        assert!(check_outbound_url("ftp://example.com").is_err());
        assert!(check_outbound_url("https://").is_err());
    }

    #[test]
    fn settings_are_typed() {
        let settings = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            airlock_guest::settings::decode::<Settings>(&pairs).map_err(|e| e.to_string())
        };
        let s = settings(&[
            ("outbound_url", " http://127.0.0.1:9/hook "),
            ("port", "8790"),
        ])
        .unwrap();
        assert_eq!(s.outbound_url.unwrap().as_str(), "http://127.0.0.1:9/hook");
        assert!(
            settings(&[("outbound_url", "")])
                .unwrap()
                .outbound_url
                .is_none()
        );
        let e = settings(&[("outbound_url", "ftp://x")]).unwrap_err();
        assert!(e.contains("`outbound_url`"), "{e}");
        let e = settings(&[("outbound", "http://x")]).unwrap_err();
        assert!(e.starts_with("unknown setting `outbound`"), "{e}");
    }

    #[test]
    fn message_ids_count_up_per_instance() {
        let ok = r#"{"chat":"c","user":"a","user_id":"1","text":"t"}"#;
        let mut webhook = Webhook::default();
        let id = |reply: IncomingReply| match &reply.batch.events[0] {
            InboundEvent::Message(m) => m.message_id.clone(),
            other => panic!("{other:?}"),
        };
        let first = id(webhook.handle_request(&request("POST", "/", ok), || 5));
        webhook.handle_request(&request("POST", "/", "bad"), || 6);
        let second = id(webhook.handle_request(&request("POST", "/", ok), || 7));
        assert_eq!((first.as_str(), second.as_str()), ("5-0", "7-1"));
    }
}
