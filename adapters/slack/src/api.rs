//! Calling Slack's Web API: `POST {api_base}/api/METHOD`, and what each
//! answer means for the host.
//!
//! Requests carry no credentials: the host adds `Authorization: Bearer`
//! with the app-level token for `/api/apps.connections.open` and the bot
//! token for every other method (see `slack.toml`), and scrubs both from
//! every answer. Slack answers most failures with HTTP 200 and
//! `{"ok": false, "error": CODE}`:
//!
//! | Slack says | the host gets |
//! |---|---|
//! | `invalid_auth`, `not_authed`, `token_revoked`, `account_inactive`, `not_allowed_token_type` | `fatal`: which token to check, and where |
//! | `missing_scope` (with `needed`) | `fatal`: the scope to add, and to reinstall the app |
//! | HTTP 429 `ratelimited`, `Retry-After` | `rate-limited` with the wait in ms |
//! | `not_in_channel`, `channel_not_found`, `message_not_found`, … | `invalid-input` with the fix where there is one |
//! | 5xx, no answer, other codes | `platform` |

use airlock_guest::http::{Request, Response};
use airlock_guest::text::one_line;
use airlock_guest::types::AdapterError;
use serde_json::Value;

/// The real API; the `api_base` setting replaces it (with a matching grant).
pub const DEFAULT_API_BASE: &str = "https://slack.com";
/// Per-request timeout.
const CALL_TIMEOUT_MS: u64 = 30_000;
/// Largest answer read (a page of history with its blocks).
const MAX_ANSWER: usize = 8 << 20;

/// The Web API at one base URL.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
}

impl Api {
    /// The API at `base` (no trailing slash needed).
    pub fn new(base: &str) -> Self {
        Api {
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// The URL of `method`.
    pub fn url(&self, method: &str) -> String {
        format!("{}/api/{method}", self.base)
    }

    /// Calls `method` with a JSON body; the answer's fields when `ok`.
    pub fn call(&self, method: &str, args: &Value) -> Result<Value, AdapterError> {
        let response = Request::post(&self.url(method))
            .json(args)
            .timeout_ms(CALL_TIMEOUT_MS)
            .max_response_bytes(MAX_ANSWER)
            .send()?;
        answer(method, &response)
    }

    /// Calls `method` with a form body (the methods that take no JSON, such
    /// as `conversations.history` and the upload ones).
    pub fn call_form(&self, method: &str, args: &[(&str, &str)]) -> Result<Value, AdapterError> {
        let body: String = args
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let response = Request::post(&self.url(method))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .timeout_ms(CALL_TIMEOUT_MS)
            .max_response_bytes(MAX_ANSWER)
            .send()?;
        answer(method, &response)
    }
}

/// `application/x-www-form-urlencoded` for one key or value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// What an answer of `method` means: its JSON when `ok`, else the error.
pub fn answer(method: &str, response: &Response) -> Result<Value, AdapterError> {
    if response.status == 429 {
        let secs = response
            .header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(1);
        return Err(AdapterError::RateLimited(secs.saturating_mul(1000)));
    }
    if response.status >= 500 {
        return Err(AdapterError::Platform(format!(
            "{method}: Slack answered HTTP {}",
            response.status
        )));
    }
    let body: Value = serde_json::from_slice(&response.body).map_err(|_| {
        AdapterError::Platform(format!(
            "{method}: Slack answered HTTP {} with no JSON: {}",
            response.status,
            response.body_excerpt(200)
        ))
    })?;
    if body["ok"] == true {
        return Ok(body);
    }
    Err(error_of(method, &body))
}

/// The error for `{"ok": false, ...}` from `method`.
pub fn error_of(method: &str, body: &Value) -> AdapterError {
    let code = body["error"].as_str().unwrap_or("unknown_error");
    let token = if method == "apps.connections.open" {
        "the app-level token SLACK_APP_TOKEN (xapp-…, with the connections:write scope)"
    } else {
        "the bot token SLACK_BOT_TOKEN (xoxb-…)"
    };
    let clean = |s: &str| one_line(s, 200);
    match code {
        "invalid_auth" | "not_authed" | "token_revoked" | "token_expired" | "account_inactive" => {
            AdapterError::Fatal(format!(
                "{method}: Slack refused {token} ({code}); set it again (in \
                 $AIRLOCK_HOME/secrets/ or the environment) from the app's settings page, and \
                 restart"
            ))
        }
        "not_allowed_token_type" => AdapterError::Fatal(format!(
            "{method}: Slack refused the kind of token it got ({code}); it needs {token}: check \
             that SLACK_APP_TOKEN holds the xapp- token and SLACK_BOT_TOKEN the xoxb- token"
        )),
        "missing_scope" => {
            let needed = clean(body["needed"].as_str().unwrap_or("?"));
            AdapterError::Fatal(format!(
                "{method}: the Slack app lacks the scope {needed}; add it under OAuth & \
                 Permissions (or in the app manifest), reinstall the app to the workspace, and \
                 set the new bot token"
            ))
        }
        "ratelimited" => AdapterError::RateLimited(1000),
        "not_in_channel" => AdapterError::InvalidInput(format!(
            "{method}: the bot is not in that channel; invite it there with /invite @your-bot"
        )),
        "channel_not_found" => AdapterError::InvalidInput(format!(
            "{method}: no such channel, or the bot cannot see it ({code})"
        )),
        "message_not_found"
        | "thread_not_found"
        | "cant_update_message"
        | "already_reacted"
        | "invalid_name"
        | "no_text"
        | "msg_too_long"
        | "too_many_reactions"
        | "is_archived"
        | "invalid_blocks"
        | "file_not_found" => AdapterError::InvalidInput(format!("{method}: Slack says {code}")),
        other => AdapterError::Platform(format!("{method}: Slack says {}", clean(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn answers_map_to_what_the_host_does() {
        /// (method, status, headers, body, expected kind and a piece of its text)
        type Case<'a> = (&'a str, u16, &'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: &[Case] = &[
            (
                "chat.postMessage",
                429,
                &[("retry-after", "7")],
                r#"{"ok":false,"error":"ratelimited"}"#,
                "rate 7000",
            ),
            (
                "chat.postMessage",
                200,
                &[],
                r#"{"ok":false,"error":"invalid_auth"}"#,
                "fatal SLACK_BOT_TOKEN",
            ),
            (
                "apps.connections.open",
                200,
                &[],
                r#"{"ok":false,"error":"invalid_auth"}"#,
                "fatal SLACK_APP_TOKEN",
            ),
            (
                "apps.connections.open",
                200,
                &[],
                r#"{"ok":false,"error":"not_allowed_token_type"}"#,
                "fatal xapp- token",
            ),
            (
                "chat.postMessage",
                200,
                &[],
                r#"{"ok":false,"error":"missing_scope","needed":"chat:write","provided":"x"}"#,
                "fatal scope chat:write",
            ),
            (
                "chat.postMessage",
                200,
                &[],
                r#"{"ok":false,"error":"not_in_channel"}"#,
                "input /invite",
            ),
            (
                "reactions.add",
                200,
                &[],
                r#"{"ok":false,"error":"already_reacted"}"#,
                "input already_reacted",
            ),
            ("chat.postMessage", 503, &[], "down", "platform HTTP 503"),
            ("chat.postMessage", 200, &[], "<html>", "platform no JSON"),
            (
                "chat.postMessage",
                200,
                &[],
                r#"{"ok":false,"error":"weird_thing"}"#,
                "platform weird_thing",
            ),
        ];
        for &(method, status, headers, body, want) in cases {
            let got = answer(method, &response(status, headers, body)).unwrap_err();
            let (kind, piece) = want.split_once(' ').unwrap();
            let text = match (&got, kind) {
                (AdapterError::RateLimited(ms), "rate") => ms.to_string(),
                (AdapterError::Fatal(t), "fatal") => t.clone(),
                (AdapterError::InvalidInput(t), "input") => t.clone(),
                (AdapterError::Platform(t), "platform") => t.clone(),
                _ => panic!("{method} {body}: {got:?}"),
            };
            assert!(text.contains(piece), "{method} {body}: {text}");
        }
        let ok = answer(
            "auth.test",
            &response(200, &[], r#"{"ok":true,"user_id":"U1"}"#),
        )
        .unwrap();
        assert_eq!(ok["user_id"], json!("U1"));
    }

    #[test]
    fn forms_are_encoded() {
        assert_eq!(encode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
    }
}
