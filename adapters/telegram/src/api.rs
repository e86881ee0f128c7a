//! Calling the Bot API: URLs, the response envelope, and what each failure
//! means for the host.
//!
//! Requests go to `{api_base}/{method}`; the host puts the token in front of
//! the path (`/bot<token>/…`), so nothing here ever holds it. Every answer is
//! `{"ok":true,"result":…}` or `{"ok":false,"error_code":N,"description":…,
//! "parameters":{…}}`, and failures map onto [`AdapterError`]:
//!
//! | Telegram says | the host gets |
//! |---|---|
//! | 401, or 404 for the bot itself | `fatal`: the token is wrong, and how to fix it |
//! | 409 `terminated by other getUpdates request` | `platform`: another poller, named as such (the host retries) |
//! | 409 `webhook is active` | `fatal`: how to remove the webhook |
//! | 429 with `retry_after` (or `Retry-After`) | `rate-limited` with the wait in ms |
//! | other 4xx | `invalid-input` with Telegram's description |
//! | 5xx, a body that is not the envelope | `platform` (the host backs off and retries) |

use airlock_guest::http::{self, Response};
use airlock_guest::multipart::Form;
use airlock_guest::percent::encode_path_segment;
use airlock_guest::text::one_line;
use airlock_guest::types::AdapterError;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;

/// The real Bot API; the `api_base` setting replaces it (with a matching grant).
pub const DEFAULT_API_BASE: &str = "https://api.telegram.org";

/// Per-request timeout for ordinary method calls.
const CALL_TIMEOUT_MS: u64 = 30_000;
/// How much of Telegram's description goes into an error.
const MAX_DESCRIPTION: usize = 300;

/// The response envelope.
#[derive(Debug, Deserialize)]
struct Envelope {
    ok: bool,
    #[serde(default)]
    result: Option<Box<RawValue>>,
    #[serde(default)]
    error_code: Option<i64>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Parameters>,
}

#[derive(Debug, Default, Deserialize)]
struct Parameters {
    #[serde(default)]
    retry_after: Option<u64>,
    #[serde(default)]
    migrate_to_chat_id: Option<i64>,
}

/// A failed method call, before it is mapped to an [`AdapterError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    /// The method called.
    pub method: String,
    /// HTTP status (0 when the request did not get an answer).
    pub status: u16,
    /// Telegram's description, or what went wrong.
    pub description: String,
    /// Seconds to wait, for 429.
    pub retry_after: Option<u64>,
    /// The supergroup a group became.
    pub migrate_to: Option<i64>,
}

impl ApiFailure {
    fn new(method: &str, status: u16, description: impl Into<String>) -> Self {
        ApiFailure {
            method: method.to_string(),
            status,
            description: one_line(&description.into(), MAX_DESCRIPTION),
            retry_after: None,
            migrate_to: None,
        }
    }

    /// Telegram's description contains `needle` (case-insensitive).
    pub fn says(&self, needle: &str) -> bool {
        self.description
            .to_ascii_lowercase()
            .contains(&needle.to_ascii_lowercase())
    }

    /// What the host and the session are told.
    pub fn into_error(self) -> AdapterError {
        let m = &self.method;
        let d = &self.description;
        match self.status {
            0 => AdapterError::Platform(format!("{m}: {d}")),
            401 => AdapterError::Fatal(format!(
                "Telegram refused the bot token ({d}). Set TELEGRAM_BOT_TOKEN to the token \
                 @BotFather gave you (it looks like 123456789:AA…), in the environment or in \
                 $AIRLOCK_HOME/secrets/TELEGRAM_BOT_TOKEN, then restart airlock"
            )),
            404 if m == "getMe" || m == "getUpdates" => AdapterError::Fatal(format!(
                "Telegram does not know this bot ({d} for {m}): TELEGRAM_BOT_TOKEN is probably \
                 wrong or revoked; get the current token from @BotFather and restart airlock"
            )),
            409 if self.says("webhook") => AdapterError::Fatal(format!(
                "a webhook is set for this bot, so Telegram refuses getUpdates ({d}). \
                 Remove it with the Bot API method deleteWebhook (or from the program that set \
                 it), then restart airlock"
            )),
            409 => AdapterError::Platform(format!(
                "409 Conflict: another program is polling this bot token, and Telegram ended \
                 airlock's getUpdates ({d}). Stop the other bot instance (an old airlock or \
                 another bot using the same token); airlock keeps retrying"
            )),
            429 => AdapterError::RateLimited(self.retry_after.unwrap_or(1).saturating_mul(1000)),
            400 if self.migrate_to.is_some() => AdapterError::InvalidInput(format!(
                "this group became the supergroup {}; use chat_id telegram:{} ({d})",
                self.migrate_to.unwrap_or_default(),
                self.migrate_to.unwrap_or_default()
            )),
            400..=499 => AdapterError::InvalidInput(format!("Telegram refused {m}: {d}")),
            status => {
                AdapterError::Platform(format!("Telegram answered HTTP {status} to {m}: {d}"))
            }
        }
    }
}

/// Decodes an answer to `method`: the `result` on success, the failure
/// otherwise (whatever the HTTP status says, the envelope decides).
pub fn decode<T: DeserializeOwned>(
    method: &str,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<T, ApiFailure> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
        ApiFailure::new(
            method,
            if status == 200 { 502 } else { status },
            format!("the answer (HTTP {status}) is not a Bot API response: {e}"),
        )
    })?;
    if envelope.ok {
        let result = envelope.result.as_deref().map_or("null", RawValue::get);
        return serde_json::from_str(result).map_err(|e| {
            ApiFailure::new(
                method,
                502,
                format!("the result is not what {method} returns: {e}"),
            )
        });
    }
    let code = envelope
        .error_code
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| *c >= 400)
        .unwrap_or(if status >= 400 { status } else { 500 });
    let mut failure = ApiFailure::new(
        method,
        code,
        envelope
            .description
            .unwrap_or_else(|| "no description".into()),
    );
    let parameters = envelope.parameters.unwrap_or_default();
    failure.retry_after = parameters.retry_after.or_else(|| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("retry-after"))
            .and_then(|(_, v)| v.trim().parse().ok())
    });
    failure.migrate_to = parameters.migrate_to_chat_id;
    Err(failure)
}

/// A client for one API base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    base: String,
}

impl Api {
    /// A client for `base` (`https://api.telegram.org` or the operator's setting).
    pub fn new(base: &str) -> Self {
        Api {
            base: base.trim_end_matches('/').to_string(),
        }
    }

    /// `{base}/{method}`; the host adds the token.
    pub fn method_url(&self, method: &str) -> String {
        format!("{}/{method}", self.base)
    }

    /// `{base}/file/{file_path}`; the host adds the token after `/file`.
    pub fn file_url(&self, file_path: &str) -> String {
        let path: String = file_path
            .trim_start_matches('/')
            .split('/')
            .map(encode_path_segment)
            .collect::<Vec<_>>()
            .join("/");
        format!("{}/file/{path}", self.base)
    }

    /// Calls `method` with JSON `params`.
    pub fn call<T: DeserializeOwned>(&self, method: &str, params: &Value) -> Result<T, ApiFailure> {
        let response = http::Request::post(&self.method_url(method))
            .json(params)
            .timeout_ms(CALL_TIMEOUT_MS)
            .send()
            .map_err(|e| ApiFailure::new(method, 0, e.message))?;
        decode_response(method, &response)
    }

    /// Calls `method` with a multipart body (file uploads).
    pub fn call_multipart<T: DeserializeOwned>(
        &self,
        method: &str,
        form: Form,
    ) -> Result<T, ApiFailure> {
        let (content_type, body) = form.finish();
        let response = http::Request::post(&self.method_url(method))
            .header("content-type", &content_type)
            .body(body)
            .timeout_ms(CALL_TIMEOUT_MS * 2)
            .send()
            .map_err(|e| ApiFailure::new(method, 0, e.message))?;
        decode_response(method, &response)
    }

    /// Downloads a file by its `file_path`.
    pub fn download(&self, file_path: &str) -> Result<Vec<u8>, ApiFailure> {
        let response = http::Request::get(&self.file_url(file_path))
            .timeout_ms(CALL_TIMEOUT_MS * 2)
            .send()
            .map_err(|e| ApiFailure::new("file download", 0, e.message))?;
        if response.is_success() {
            Ok(response.body)
        } else {
            Err(ApiFailure::new(
                "file download",
                response.status,
                format!("HTTP {}", response.status),
            ))
        }
    }
}

fn decode_response<T: DeserializeOwned>(
    method: &str,
    response: &Response,
) -> Result<T, ApiFailure> {
    decode(method, response.status, &response.headers, &response.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(status: u16, body: &str) -> ApiFailure {
        decode::<Value>("sendMessage", status, &[], body.as_bytes()).unwrap_err()
    }

    #[test]
    fn envelope() {
        let ok: bool = decode("setMyCommands", 200, &[], br#"{"ok":true,"result":true}"#).unwrap();
        assert!(ok);
        let f = fail(
            400,
            r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#,
        );
        assert_eq!(
            (f.status, f.description.as_str()),
            (400, "Bad Request: chat not found")
        );
        assert!(
            matches!(f.into_error(), AdapterError::InvalidInput(m) if m.contains("chat not found"))
        );
    }

    #[test]
    fn failure_table() {
        let cases: &[(&str, u16, &str, &str)] = &[
            (
                "getUpdates",
                401,
                r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#,
                "fatal: TELEGRAM_BOT_TOKEN",
            ),
            (
                "getMe",
                404,
                r#"{"ok":false,"error_code":404,"description":"Not Found"}"#,
                "fatal: does not know this bot",
            ),
            (
                "getUpdates",
                409,
                r#"{"ok":false,"error_code":409,"description":"Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"}"#,
                "platform: 409 Conflict: another program is polling",
            ),
            (
                "getUpdates",
                409,
                r#"{"ok":false,"error_code":409,"description":"Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"}"#,
                "fatal: a webhook is set",
            ),
            (
                "sendMessage",
                429,
                r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 14","parameters":{"retry_after":14}}"#,
                "rate: 14000",
            ),
            (
                "sendMessage",
                502,
                "<html>Bad Gateway</html>",
                "platform: not a Bot API response",
            ),
            (
                "getUpdates",
                500,
                r#"{"ok":false,"error_code":500,"description":"Internal Server Error"}"#,
                "platform: HTTP 500",
            ),
            (
                "sendMessage",
                400,
                r#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001234}}"#,
                "invalid: telegram:-1001234",
            ),
            (
                "sendMessage",
                200,
                r#"{"ok":true,"result":"not a message"}"#,
                "platform: not what sendMessage returns",
            ),
        ];
        for (method, status, body, want) in cases {
            let f = decode::<crate::update::Message>(method, *status, &[], body.as_bytes())
                .unwrap_err();
            let got = match f.into_error() {
                AdapterError::Fatal(m) => format!("fatal: {m}"),
                AdapterError::Platform(m) => format!("platform: {m}"),
                AdapterError::RateLimited(ms) => format!("rate: {ms}"),
                AdapterError::InvalidInput(m) => format!("invalid: {m}"),
                AdapterError::Unsupported(m) => format!("unsupported: {m}"),
            };
            let (kind, text) = want.split_once(": ").unwrap();
            assert!(
                got.starts_with(kind) && got.contains(text),
                "{method} {status}: {got}"
            );
        }
    }

    #[test]
    fn retry_after_header_when_parameters_are_missing() {
        let headers = vec![("Retry-After".to_string(), "3".to_string())];
        let f = decode::<Value>(
            "getUpdates",
            429,
            &headers,
            br#"{"ok":false,"error_code":429,"description":"Too Many Requests"}"#,
        )
        .unwrap_err();
        assert_eq!(f.retry_after, Some(3));
    }

    #[test]
    fn urls() {
        let api = Api::new("http://127.0.0.1:8081/");
        assert_eq!(api.method_url("getMe"), "http://127.0.0.1:8081/getMe");
        assert_eq!(
            api.file_url("photos/file 7.jpg"),
            "http://127.0.0.1:8081/file/photos/file%207.jpg"
        );
        assert_eq!(api.file_url("../x"), "http://127.0.0.1:8081/file/%2E%2E/x");
    }

    #[test]
    fn descriptions_are_one_bounded_line() {
        let long = format!(
            r#"{{"ok":false,"error_code":400,"description":"Bad\nRequest {}"}}"#,
            "x".repeat(1000)
        );
        let f = fail(400, &long);
        assert!(!f.description.contains('\n'));
        assert!(f.description.chars().count() <= MAX_DESCRIPTION + 1);
    }
}
