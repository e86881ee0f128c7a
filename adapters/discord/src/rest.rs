//! Calling the REST API: URLs, and what each failure means for the host.
//!
//! Requests go to `{api_base}/api/v10{path}` without credentials; the host
//! adds `Authorization: Bot <token>` for that destination (see
//! `discord.toml`) and scrubs the token from every answer. Failures map onto
//! [`AdapterError`]:
//!
//! | Discord says | the host gets |
//! |---|---|
//! | 401 | `fatal`: the token is wrong, and how to fix it |
//! | 429 (`retry_after` in the body, or `Retry-After`) | `rate-limited` with the wait in ms; the host retries short waits a few times |
//! | 403 | `invalid-input`: the permission the bot lacks |
//! | other 4xx | `invalid-input` with Discord's message and first field error |
//! | 5xx, no answer | `platform` |

use airlock_guest::http::{Request, Response};
use airlock_guest::multipart::Form;
use airlock_guest::text::one_line;
use airlock_guest::types::AdapterError;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The real API; the `api_base` setting replaces it (with a matching grant).
pub const DEFAULT_API_BASE: &str = "https://discord.com";
/// Per-request timeout.
const CALL_TIMEOUT_MS: u64 = 30_000;

/// The REST API at one base URL.
#[derive(Debug, Clone)]
pub struct Rest {
    base: String,
}

impl Rest {
    /// The API at `base` (no trailing slash needed).
    pub fn new(base: &str) -> Self {
        Rest {
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// The URL of API `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v10{path}", self.base)
    }

    /// `method path` with an optional JSON body; the decoded answer.
    pub fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, AdapterError> {
        let response = self.send(method, path, body)?;
        decode(method, path, &response)
    }

    /// Like [`Rest::call`] for answers without a body worth reading (204).
    pub fn call_empty(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(), AdapterError> {
        let response = self.send(method, path, body)?;
        if response.is_success() {
            Ok(())
        } else {
            Err(failure(method, path, &response))
        }
    }

    /// A multipart request (`payload_json` plus files).
    pub fn call_multipart<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        form: Form,
    ) -> Result<T, AdapterError> {
        let (content_type, body) = form.finish();
        let response = Request::new(method, &self.url(path))
            .header("content-type", &content_type)
            .body(body)
            .timeout_ms(120_000)
            .send()
            .map_err(|e| AdapterError::Platform(format!("{method} {path}: {e}")))?;
        decode(method, path, &response)
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, AdapterError> {
        let mut request = Request::new(method, &self.url(path)).timeout_ms(CALL_TIMEOUT_MS);
        request = match body {
            Some(b) => request.json(b),
            None => request.header("content-length", "0"),
        };
        request
            .send()
            .map_err(|e| AdapterError::Platform(format!("{method} {path}: {e}")))
    }
}

/// The answer's JSON on success, else the mapped failure.
fn decode<T: DeserializeOwned>(method: &str, path: &str, r: &Response) -> Result<T, AdapterError> {
    if !r.is_success() {
        return Err(failure(method, path, r));
    }
    serde_json::from_slice(&r.body).map_err(|e| {
        AdapterError::Platform(format!(
            "{method} {path}: Discord's answer is not what was expected ({e}): {}",
            r.body_excerpt(200)
        ))
    })
}

/// What a failed answer means.
pub fn failure(method: &str, path: &str, r: &Response) -> AdapterError {
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .map(|m| one_line(m, 200))
        .unwrap_or_else(|| r.body_excerpt(200));
    let code = body.get("code").and_then(Value::as_i64);
    let detail = match (code, first_field_error(&body)) {
        (Some(c), Some(f)) => format!("{message} (code {c}; {f})"),
        (Some(c), None) => format!("{message} (code {c})"),
        (None, _) => message,
    };
    match r.status {
        401 => AdapterError::Fatal(format!(
            "Discord refused the bot token ({detail}). In the Discord Developer Portal open your \
             application, Bot, Reset Token, and store the new token as DISCORD_BOT_TOKEN, then \
             restart airlock"
        )),
        429 => {
            let seconds = body
                .get("retry_after")
                .and_then(Value::as_f64)
                .or_else(|| r.header("retry-after").and_then(|v| v.trim().parse().ok()))
                .unwrap_or(1.0);
            AdapterError::RateLimited((seconds.clamp(0.0, 86_400.0) * 1000.0).ceil() as u64)
        }
        403 => AdapterError::InvalidInput(format!(
            "Discord refused {method} {path}: {detail}. Give the bot's role the permission \
             in that server or channel (View Channel, Send Messages, Read Message History, \
             Add Reactions, Attach Files)"
        )),
        400..=499 => {
            AdapterError::InvalidInput(format!("Discord refused {method} {path}: {detail}"))
        }
        status => AdapterError::Platform(format!(
            "Discord answered HTTP {status} to {method} {path}: {detail}"
        )),
    }
}

/// The first `errors.…._errors[0]` of a 50035 answer, as `field: message`.
fn first_field_error(body: &Value) -> Option<String> {
    fn walk(v: &Value, path: &mut Vec<String>) -> Option<String> {
        let obj = v.as_object()?;
        if let Some(first) = obj
            .get("_errors")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            let message = first
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("invalid");
            return Some(format!("{}: {}", path.join("."), one_line(message, 120)));
        }
        for (key, child) in obj {
            path.push(key.clone());
            if let Some(found) = walk(child, path) {
                return Some(found);
            }
            path.pop();
        }
        None
    }
    walk(body.get("errors")?, &mut Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str, headers: &[(&str, &str)]) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn failures_map_to_what_the_host_and_the_session_need() {
        let e = failure(
            "GET",
            "/users/@me",
            &answer(401, r#"{"message":"401: Unauthorized","code":0}"#, &[]),
        );
        assert!(
            matches!(&e, AdapterError::Fatal(m) if m.contains("Reset Token") && m.contains("DISCORD_BOT_TOKEN")),
            "{e:?}"
        );

        let e = failure(
            "POST",
            "/channels/1/messages",
            &answer(
                429,
                r#"{"message":"You are being rate limited.","retry_after":1.5,"global":false}"#,
                &[],
            ),
        );
        assert!(matches!(e, AdapterError::RateLimited(1500)), "{e:?}");
        let e = failure("POST", "/x", &answer(429, "", &[("retry-after", "3")]));
        assert!(matches!(e, AdapterError::RateLimited(3000)), "{e:?}");

        let e = failure(
            "POST",
            "/channels/1/messages",
            &answer(
                400,
                r#"{"code":50035,"message":"Invalid Form Body","errors":{"content":{"_errors":[{"code":"BASE_TYPE_MAX_LENGTH","message":"Must be 2000 or fewer in length."}]}}}"#,
                &[],
            ),
        );
        assert!(
            matches!(&e, AdapterError::InvalidInput(m) if m.contains("content: Must be 2000")),
            "{e:?}"
        );

        let e = failure(
            "POST",
            "/channels/1/messages",
            &answer(
                403,
                r#"{"message":"Missing Permissions","code":50013}"#,
                &[],
            ),
        );
        assert!(
            matches!(&e, AdapterError::InvalidInput(m) if m.contains("50013") && m.contains("permission")),
            "{e:?}"
        );

        let e = failure(
            "GET",
            "/channels/9",
            &answer(404, r#"{"message":"Unknown Channel","code":10003}"#, &[]),
        );
        assert!(
            matches!(&e, AdapterError::InvalidInput(m) if m.contains("Unknown Channel")),
            "{e:?}"
        );

        let e = failure(
            "GET",
            "/gateway",
            &answer(502, "<html>bad gateway</html>", &[]),
        );
        assert!(
            matches!(&e, AdapterError::Platform(m) if m.contains("502")),
            "{e:?}"
        );
    }

    #[test]
    fn segments_are_percent_encoded() {
        use airlock_guest::percent::encode_component as encode_segment;
        assert_eq!(encode_segment("👍"), "%F0%9F%91%8D");
        assert_eq!(encode_segment("party:123"), "party%3A123");
        assert_eq!(encode_segment("a/b?c"), "a%2Fb%3Fc");
    }
}
