//! The check behind the `webhook` fuzz target (`fuzz/`), built natively
//! only. Not part of the adapter: it reaches the request handler, which is
//! private, and panics when the handler breaks a promise of the module docs.
//! The unit test below replays the saved inputs, so they run on stable.

use std::collections::BTreeSet;

use airlock_guest::http::{self, Method};
use airlock_guest::serde_json::{self, Value};
use airlock_guest::types::{AdapterError, ChatKind, InboundEvent, IncomingRequest};

use crate::{Webhook, sent_from_response};

/// Requests to one instance, then each request's body as an answer to
/// `send`. The input is requests separated by lines `%%`, each written as
/// `METHOD PATH`, header lines `name: value`, an empty line and the body.
///
/// A request is answered 202 with exactly one event whose fields are the
/// body's, under a message id never used before; or 400, 404 or 405 with a
/// JSON error and no event. An answer to `send` gives one non-empty id
/// only on 2xx, and a wait only on 429.
pub fn check_requests(data: &[u8]) {
    let mut webhook = Webhook::default();
    let mut ids = BTreeSet::new();
    for (i, request) in requests(data).into_iter().enumerate() {
        let now = 1_700_000_000_000 + i as u64;
        let reply = webhook.handle_request(&request, || now);
        let events = &reply.batch.events;
        assert!(reply.batch.cursor.is_none());
        let body: Value =
            serde_json::from_slice(&reply.response.body).expect("every answer is JSON");
        match reply.response.status {
            202 => {
                assert_eq!(
                    request.path_and_query().as_ref().map(|t| t.path()),
                    Some("/")
                );
                assert_eq!(request.http_method(), Some(Method::POST));
                let [InboundEvent::Message(m)] = events.as_slice() else {
                    panic!("202 with events {events:?}")
                };
                let sent: Value = serde_json::from_slice(&request.body).expect("accepted JSON");
                assert_eq!(sent["chat"].as_str(), Some(m.chat.id.as_str()));
                assert_eq!(sent["user_id"].as_str(), Some(m.sender.id.as_str()));
                assert_eq!(sent["text"].as_str(), Some(m.text.as_str()));
                let user = sent["user"].as_str().expect("user is a string");
                assert_eq!(
                    m.sender.display_name.as_deref(),
                    Some(user).filter(|u| !u.is_empty())
                );
                for field in [&m.chat.id, &m.sender.id, &m.text] {
                    assert!(!field.trim().is_empty(), "an empty field accepted");
                }
                assert_eq!(m.chat.kind, ChatKind::Direct);
                assert!(m.mentions_bot && !m.sender.is_bot && m.ts_ms == now);
                assert!(ids.insert(m.message_id.clone()), "message id used twice");
                assert_eq!(body["accepted"], true);
                assert_eq!(body["message_id"].as_str(), Some(m.message_id.as_str()));
            }
            status @ (400 | 404 | 405) => {
                assert!(events.is_empty(), "{status} with events");
                assert!(body["error"].is_string(), "{body}");
                if status == 405 {
                    assert!(
                        reply
                            .response
                            .headers
                            .iter()
                            .any(|(k, v)| k == "allow" && v == "POST")
                    );
                }
            }
            status => panic!("status {status}"),
        }

        const STATUSES: [u16; 7] = [200, 201, 204, 400, 429, 500, 503];
        let status = STATUSES[request.body.len() % STATUSES.len()];
        let answer = http::Response {
            status,
            headers: request.headers.clone(),
            body: request.body.clone(),
        };
        match sent_from_response(&answer) {
            Ok(sent) => {
                assert!(answer.is_success(), "{status} taken as sent");
                assert!(
                    matches!(sent.message_ids.as_slice(), [id] if !id.is_empty()),
                    "{sent:?}"
                );
            }
            Err(AdapterError::RateLimited(_)) => assert_eq!(status, 429),
            Err(AdapterError::Platform(m)) => assert!(status != 429 && !m.is_empty()),
            Err(e) => panic!("{e:?}"),
        }
    }
}

/// The requests written in `data` (see [`check_requests`]).
fn requests(data: &[u8]) -> Vec<IncomingRequest> {
    let mut out = Vec::new();
    let mut rest = data;
    loop {
        let (piece, next) = match find(rest, b"\n%%\n") {
            Some(at) => (&rest[..at], Some(&rest[at + 4..])),
            None => (rest, None),
        };
        let (head, body) = match find(piece, b"\n\n") {
            Some(at) => (&piece[..at], &piece[at + 2..]),
            None => (piece, &[][..]),
        };
        let head = String::from_utf8_lossy(head);
        let mut lines = head.lines();
        let (method, path) = lines
            .next()
            .unwrap_or_default()
            .split_once(' ')
            .unwrap_or(("POST", "/"));
        out.push(IncomingRequest {
            method: method.into(),
            path: path.into(),
            headers: lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect(),
            body: body.to_vec(),
        });
        match next {
            Some(next) => rest = next,
            None => return out,
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    /// Every saved input of the fuzz target (its corpus and the inputs that
    /// once found something) still passes the check.
    #[test]
    fn fuzz_corpus_passes() {
        airlock_guest::saved_inputs::replay(
            env!("CARGO_MANIFEST_DIR"),
            "webhook",
            super::check_requests,
        );
    }
}
