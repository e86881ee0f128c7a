//! REST answers: Discord's error bodies, rate-limit headers, and the
//! answers of armed faults.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde_json::{Map, Value, json};

use crate::Fault;

/// A reply's body.
pub(crate) enum Payload {
    Json(Value),
    Empty,
    File(Option<String>, Vec<u8>),
}

/// A REST answer before it becomes an HTTP response.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) payload: Payload,
    pub(crate) headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub(crate) fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            payload: Payload::Json(body),
            headers: Vec::new(),
        }
    }

    pub(crate) fn ok(body: Value) -> Reply {
        Reply::json(200, body)
    }

    pub(crate) fn no_content() -> Reply {
        Reply {
            status: 204,
            payload: Payload::Empty,
            headers: Vec::new(),
        }
    }

    pub(crate) fn into_response(self) -> Response<Full<Bytes>> {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut builder = Response::builder().status(status);
        for (name, value) in &self.headers {
            builder = builder.header(*name, value);
        }
        let body = match self.payload {
            Payload::Json(value) => {
                builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
                Bytes::from(value.to_string())
            }
            Payload::Empty => Bytes::new(),
            Payload::File(content_type, bytes) => {
                let ct = content_type.unwrap_or_else(|| "application/octet-stream".to_owned());
                builder = builder.header(hyper::header::CONTENT_TYPE, ct);
                Bytes::from(bytes)
            }
        };
        builder.body(Full::new(body)).expect("response")
    }
}

/// `{"message": …, "code": …}` with an HTTP status.
pub(crate) fn error(status: u16, code: u64, message: &str) -> Reply {
    Reply::json(status, json!({"message": message, "code": code}))
}

pub(crate) fn not_found() -> Reply {
    error(404, 0, "404: Not Found")
}

pub(crate) fn unknown_channel() -> Reply {
    error(404, 10003, "Unknown Channel")
}

pub(crate) fn unknown_message() -> Reply {
    error(404, 10008, "Unknown Message")
}

pub(crate) fn empty_message() -> Reply {
    error(400, 50006, "Cannot send an empty message")
}

/// 400 Invalid Form Body (50035) with one error at `path`
/// (`["components", "0", "components"]`).
pub(crate) fn form_error(path: &[&str], code: &str, message: &str) -> Reply {
    let mut errors = json!({"_errors": [{"code": code, "message": message}]});
    for key in path.iter().rev() {
        let mut outer = Map::new();
        outer.insert((*key).to_owned(), errors);
        errors = Value::Object(outer);
    }
    Reply::json(
        400,
        json!({"code": 50035, "message": "Invalid Form Body", "errors": errors}),
    )
}

pub(crate) fn too_long(path: &[&str], max: usize) -> Reply {
    form_error(
        path,
        "BASE_TYPE_MAX_LENGTH",
        &format!("Must be {max} or fewer in length."),
    )
}

pub(crate) fn required(path: &[&str]) -> Reply {
    form_error(path, "BASE_TYPE_REQUIRED", "This field is required")
}

pub(crate) fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A bucket hash for a route: the same for every call of one method and
/// route shape, ids left out.
pub(crate) fn bucket(method: &str, path: &str) -> String {
    let shape: Vec<&str> = path
        .split('/')
        .map(|s| {
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                "{}"
            } else {
                s
            }
        })
        .collect();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in method.bytes().chain(shape.join("/").bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

pub(crate) fn rate_limit_headers(reply: &mut Reply, method: &str, path: &str) {
    let now = now_secs();
    reply.headers.extend([
        ("x-ratelimit-limit", "5".to_owned()),
        ("x-ratelimit-remaining", "4".to_owned()),
        ("x-ratelimit-reset", format!("{:.3}", now + 1.0)),
        ("x-ratelimit-reset-after", "1.000".to_owned()),
        ("x-ratelimit-bucket", bucket(method, path)),
    ]);
}

pub(crate) fn fault_reply(fault: Fault, method: &str, path: &str) -> Reply {
    match fault {
        Fault::RateLimited {
            retry_after,
            global,
        } => {
            let mut reply = Reply::json(
                429,
                json!({
                    "message": "You are being rate limited.",
                    "retry_after": retry_after,
                    "global": global,
                }),
            );
            let secs = retry_after.max(0.0).ceil() as u64;
            reply.headers.push(("retry-after", secs.to_string()));
            if global {
                reply
                    .headers
                    .push(("x-ratelimit-global", "true".to_owned()));
                reply
                    .headers
                    .push(("x-ratelimit-scope", "global".to_owned()));
            } else {
                reply.headers.extend([
                    ("x-ratelimit-limit", "5".to_owned()),
                    ("x-ratelimit-remaining", "0".to_owned()),
                    (
                        "x-ratelimit-reset",
                        format!("{:.3}", now_secs() + retry_after),
                    ),
                    ("x-ratelimit-reset-after", format!("{retry_after:.3}")),
                    ("x-ratelimit-bucket", bucket(method, path)),
                    ("x-ratelimit-scope", "user".to_owned()),
                ]);
            }
            reply
        }
        Fault::ServerError(status) => {
            let reason = StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Server Error");
            error(status, 0, &format!("{status}: {reason}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_error_nests() {
        let reply = too_long(&["components", "0", "components"], 5);
        let Payload::Json(body) = reply.payload else {
            panic!("JSON expected");
        };
        assert_eq!(
            body["errors"]["components"]["0"]["components"]["_errors"][0]["code"],
            "BASE_TYPE_MAX_LENGTH"
        );
        assert_eq!(body["code"], 50035);
    }

    #[test]
    fn buckets_ignore_ids() {
        assert_eq!(
            bucket("POST", "/channels/1/messages"),
            bucket("POST", "/channels/2/messages")
        );
        assert_ne!(
            bucket("POST", "/channels/1/messages"),
            bucket("GET", "/channels/1/messages")
        );
    }
}
