//! The REST API: routes under `/api/v10`, attachment downloads under
//! `/attachments/`.
//!
//! Every request is recorded as a [`Call`] first, then answered by an armed
//! fault if one matches, and only then routed: unknown route 404, wrong
//! method 405, missing or wrong `Authorization: Bot <token>` 401, unreadable
//! body 400 (50109), then the route's own checks. Error bodies have
//! Discord's shape (`{"message","code"}`, plus `errors` for 50035), and
//! successful answers carry `X-RateLimit-*` headers.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::messages::{rest_form, value_text};
use crate::reply::{
    Payload, Reply, error, fault_reply, form_error, not_found, rate_limit_headers, required,
    unknown_channel, unknown_message,
};
use crate::state::{State, id_of};
use crate::{Call, Shared, body, payloads};

pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // The connections live in this set, so aborting the loop drops them.
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
            // Errors here are clients going away.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let raw_path = parts.uri.path().to_owned();
    let (api, rest) = match raw_path.strip_prefix("/api/v10") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => (true, rest),
        _ => (false, raw_path.as_str()),
    };
    let path = decode_path(rest);
    let query = parts
        .uri
        .query()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let content_type = parts
        .headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let parsed = body::parse(content_type, &body);
    let readable = parsed.is_ok();
    let (json, files) = parsed.unwrap_or_default();
    let call = Call {
        method: parts.method.as_str().to_ascii_uppercase(),
        path,
        raw_path: raw_path.clone(),
        query,
        headers,
        json,
        files,
        fault: None,
    };
    let reply = shared.lock().serve(call, api, readable);
    Ok(reply.into_response())
}

/// `/a/b%20c` → `/a/b c`, segment by segment.
fn decode_path(raw: &str) -> String {
    raw.split('/')
        .map(|segment| {
            percent_encoding::percent_decode_str(segment)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect::<Vec<_>>()
        .join("/")
}

// ---- routing ----------------------------------------------------------------

enum Route<'a> {
    Gateway,
    GatewayBot,
    Me,
    OpenDm,
    User(&'a str),
    Channel(&'a str),
    Messages(&'a str),
    Message(&'a str, &'a str),
    OwnReaction(&'a str, &'a str, &'a str),
    Typing(&'a str),
    InteractionCallback(&'a str, &'a str),
}

impl<'a> Route<'a> {
    fn parse(segments: &[&'a str]) -> Option<Route<'a>> {
        Some(match *segments {
            ["gateway"] => Route::Gateway,
            ["gateway", "bot"] => Route::GatewayBot,
            ["users", "@me"] => Route::Me,
            ["users", "@me", "channels"] => Route::OpenDm,
            ["users", id] => Route::User(id),
            ["channels", c] => Route::Channel(c),
            ["channels", c, "messages"] => Route::Messages(c),
            ["channels", c, "messages", m] => Route::Message(c, m),
            ["channels", c, "messages", m, "reactions", e, "@me"] => Route::OwnReaction(c, m, e),
            ["channels", c, "typing"] => Route::Typing(c),
            ["interactions", i, t, "callback"] => Route::InteractionCallback(i, t),
            _ => return None,
        })
    }

    fn methods(&self) -> &'static [&'static str] {
        match self {
            Route::Gateway | Route::GatewayBot | Route::Me | Route::User(_) | Route::Channel(_) => {
                &["GET"]
            }
            Route::OpenDm | Route::Typing(_) | Route::InteractionCallback(..) => &["POST"],
            Route::Messages(_) => &["GET", "POST"],
            Route::Message(..) => &["GET", "PATCH", "DELETE"],
            Route::OwnReaction(..) => &["PUT", "DELETE"],
        }
    }
}

impl State {
    fn serve(&mut self, mut call: Call, api: bool, readable: bool) -> Reply {
        call.fault = self.take_fault(&call.method, &call.path);
        self.calls.push(call.clone());
        if let Some(fault) = call.fault {
            return fault_reply(fault, &call.method, &call.path);
        }
        if !api {
            return self.download(&call);
        }
        let segments: Vec<&str> = call.path.split('/').skip(1).collect();
        let Some(route) = Route::parse(&segments) else {
            return not_found();
        };
        if !route.methods().contains(&call.method.as_str()) {
            return error(405, 0, "405: Method Not Allowed");
        }
        if !matches!(route, Route::Gateway) && !self.authorized(&call) {
            return error(401, 0, "401: Unauthorized");
        }
        if !readable {
            return error(400, 50109, "The request body contains invalid JSON.");
        }
        let mut reply = self.route(&route, &call);
        rate_limit_headers(&mut reply, &call.method, &call.path);
        reply
    }

    fn authorized(&self, call: &Call) -> bool {
        call.header("authorization")
            .and_then(|v| v.strip_prefix("Bot "))
            .is_some_and(|t| !self.token.is_empty() && t == self.token)
    }

    fn route(&mut self, route: &Route<'_>, call: &Call) -> Reply {
        let method = call.method.as_str();
        match *route {
            Route::Gateway => Reply::ok(json!({"url": self.gateway_url})),
            Route::GatewayBot => Reply::ok(json!({
                "url": self.gateway_url,
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 1000usize.saturating_sub(self.identifies),
                    "reset_after": 14_400_000,
                    "max_concurrency": 1,
                },
            })),
            Route::Me => Reply::ok(payloads::bot_user()),
            Route::User(id) => match self.users.get(id) {
                Some(user) => Reply::ok(user.clone()),
                None => error(404, 10013, "Unknown User"),
            },
            Route::OpenDm => self.open_dm_route(call),
            Route::Channel(id) => match self.channels.get(id) {
                Some(channel) => Reply::ok(channel.clone()),
                None => unknown_channel(),
            },
            Route::Messages(c) if method == "GET" => self.history_route(c, call),
            Route::Messages(c) => self.create_message(c, call),
            Route::Message(c, m) if method == "GET" => {
                if !self.channels.contains_key(c) {
                    return unknown_channel();
                }
                match self.find_message(c, m) {
                    Some(message) => Reply::ok(rest_form(message)),
                    None => unknown_message(),
                }
            }
            Route::Message(c, m) if method == "PATCH" => self.edit_message(c, m, call),
            Route::Message(c, m) => self.delete_message(c, m),
            Route::OwnReaction(c, m, e) if method == "PUT" => self.add_reaction(c, m, e),
            Route::OwnReaction(c, m, e) => self.remove_reaction(c, m, e),
            Route::Typing(c) => {
                if self.channels.contains_key(c) {
                    Reply::no_content()
                } else {
                    unknown_channel()
                }
            }
            Route::InteractionCallback(i, t) => self.interaction_callback(i, t, call),
        }
    }

    fn download(&self, call: &Call) -> Reply {
        let key = call.path.strip_prefix("/attachments/");
        match key.and_then(|k| self.files.get(k)) {
            Some(file) if call.method == "GET" || call.method == "HEAD" => Reply {
                status: 200,
                payload: Payload::File(file.content_type.clone(), file.bytes.clone()),
                headers: Vec::new(),
            },
            _ => not_found(),
        }
    }

    // ---- users and channels ------------------------------------------------

    fn open_dm_route(&mut self, call: &Call) -> Reply {
        let recipient = call.json.as_ref().and_then(|b| b.get("recipient_id"));
        let Some(recipient) = recipient.filter(|r| !r.is_null()) else {
            return required(&["recipient_id"]);
        };
        let id = id_of(Some(recipient)).filter(|id| id.bytes().all(|b| b.is_ascii_digit()));
        let Some(id) = id else {
            return form_error(
                &["recipient_id"],
                "NUMBER_TYPE_COERCE",
                &format!("Value \"{}\" is not snowflake.", value_text(recipient)),
            );
        };
        Reply::ok(self.open_dm(&id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_decode_per_segment() {
        assert_eq!(
            decode_path("/channels/1/messages/2/reactions/%F0%9F%91%8D/@me"),
            "/channels/1/messages/2/reactions/👍/@me"
        );
    }
}
