//! The check behind the `fakechat` fuzz target (`fuzz/`), built natively
//! only. Not part of the adapter: it drives the chat's request handler and
//! its outbound calls, which are private, and panics when they break a
//! promise of the module docs. The unit test below replays the saved
//! inputs, so they run on stable.

use airlock_guest::serde_json::{self, Value};
use airlock_guest::types::{
    AttachmentRequest, Button, EditRequest, HistoryRequest, InboundEvent, IncomingRequest,
    OutboundFile, OutboundMessage, TextFormat,
};

use crate::{Author, CHAT_ID, MAX_MESSAGES, MAX_NAME_CHARS, MAX_STORED_FILE_BYTES, State, USER_ID};

/// The chat's text cap here: [`crate::MAX_STORED_TEXT_BYTES`] is far
/// beyond an input's few kilobytes, and this is not, so inputs reach it.
const TEXT_CAP: usize = 2048;

/// Calls on one chat, separated by lines `%%`. Each is written as a first
/// line, header lines `name: value`, an empty line and a body. The first
/// line is a request from the page (`METHOD PATH`), or one of the host's
/// calls: `SEND` (the body a JSON object with `text`, `reply_to`, `chat`,
/// `buttons` as rows of `[label, data]` and `files` as `{name, mime,
/// data}`), `EDIT ID` (the body the new text), `HISTORY LIMIT [BEFORE]`,
/// `DOWNLOAD ID`.
///
/// A page request is answered with JSON (an error and no event unless it
/// is 200), or the page, or a stored file as a download with a safe name;
/// a message sent or uploaded is one event with what was sent, a press one
/// event with that button's data; a listing is in `seq` order and carries
/// button labels only. The chat keeps its bounds (text within its cap,
/// here [`TEXT_CAP`], unless one message alone holds more: a new or edited
/// message is never the one forgotten) and its byte counts agree with what
/// it holds.
pub fn check_requests(data: &[u8]) {
    let mut chat = State::with_text_cap(TEXT_CAP);
    for (i, call) in calls(data).into_iter().enumerate() {
        let now = 1_700_000_000_000 + i as u64;
        let (first, rest) = call.method.split_once(' ').unwrap_or((&call.method, ""));
        match first {
            "SEND" => send(&mut chat, &call.body, now),
            "EDIT" => {
                let request = EditRequest {
                    chat_id: CHAT_ID.into(),
                    message_id: rest.into(),
                    text: String::from_utf8_lossy(&call.body).into_owned(),
                    format: TextFormat::Plain,
                };
                if chat.edit(&request).is_ok() {
                    let m = chat.message(rest).expect("the edited message");
                    assert!(m.text == request.text && m.edited && m.buttons.is_empty());
                    assert_eq!(m.seq, chat.seq, "an edit takes the next seq");
                }
            }
            "HISTORY" => {
                let (limit, before) = rest.split_once(' ').unwrap_or((rest, ""));
                let request = HistoryRequest {
                    chat_id: CHAT_ID.into(),
                    limit: limit.parse().unwrap_or(20),
                    before: (!before.is_empty()).then(|| before.to_string()),
                };
                if let Ok(entries) = chat.history(&request) {
                    assert!(entries.len() <= request.limit as usize);
                    let ids: Vec<u64> = entries
                        .iter()
                        .map(|e| e.message_id.parse().unwrap())
                        .collect();
                    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first: {ids:?}");
                    if let Some(before) = request.before.and_then(|b| b.parse::<u64>().ok()) {
                        assert!(ids.iter().all(|id| *id < before));
                    }
                }
            }
            "DOWNLOAD" => {
                let request = AttachmentRequest {
                    chat_id: CHAT_ID.into(),
                    message_id: None,
                    attachment_id: rest.into(),
                };
                if let Ok(got) = chat.download(&request) {
                    let stored = chat.file(rest).expect("a downloaded file is stored");
                    assert_eq!(got.data, stored.data);
                }
            }
            _ => page_request(&mut chat, call, now),
        }
        check_state(&chat);
    }
}

fn page_request(chat: &mut State, request: IncomingRequest, now: u64) {
    let seq_before = chat.seq;
    let reply = chat.handle_request(&request, now);
    let response = &reply.response;
    let events = &reply.batch.events;
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let path = request
        .path_and_query()
        .map(|t| t.path().to_string())
        .unwrap_or_default();
    if response.status != 200 {
        assert!(
            matches!(response.status, 400 | 404 | 405 | 409 | 413),
            "status {}",
            response.status
        );
        let body: Value = serde_json::from_slice(&response.body).expect("an error is JSON");
        assert!(body["error"].is_string());
        assert!(events.is_empty(), "an event with {}", response.status);
        assert_eq!(chat.seq, seq_before, "a refused request changed the chat");
        return;
    }
    if path == "/" {
        assert!(header("content-type").is_some_and(|t| t.starts_with("text/html")));
        return;
    }
    if path.starts_with("/api/files/") {
        assert_eq!(header("content-type"), Some("application/octet-stream"));
        let disposition = header("content-disposition").expect("a download");
        assert!(disposition.starts_with("attachment; filename=\""));
        assert!(
            !disposition.chars().any(|c| c.is_control()),
            "{disposition:?}"
        );
        assert_eq!(disposition.matches('"').count(), 2, "{disposition:?}");
        return;
    }
    let body: Value = serde_json::from_slice(&response.body).expect("an answer is JSON");
    match path.as_str() {
        "/api/messages" => {
            let items = body.as_array().expect("a list");
            assert!(items.len() <= MAX_MESSAGES);
            let seqs: Vec<u64> = items.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
            assert!(
                seqs.windows(2).all(|w| w[0] < w[1]),
                "in seq order: {seqs:?}"
            );
            for m in items {
                for row in m["buttons"].as_array().expect("rows") {
                    let labels = row.as_array().expect("a row");
                    assert!(labels.iter().all(Value::is_string), "labels only: {row}");
                }
            }
        }
        "/api/send" | "/api/upload" => {
            let [InboundEvent::Message(m)] = events.as_slice() else {
                panic!("{path} gave events {events:?}")
            };
            assert_eq!(body["id"].as_str(), Some(m.message_id.as_str()));
            assert!(m.chat.id == CHAT_ID && m.sender.id == USER_ID && m.mentions_bot);
            let stored = chat.message(&m.message_id).expect("the message is kept");
            assert!(stored.from == Author::User && stored.text == m.text);
            if let Some(to) = &m.reply_to {
                assert!(to.parse::<u64>().is_ok(), "reply_to {to:?}");
            }
            if path == "/api/send" {
                let sent: Value = serde_json::from_slice(&request.body).expect("sent JSON");
                assert_eq!(sent["text"].as_str(), Some(m.text.as_str()));
                assert!(m.attachments.is_empty());
            } else {
                let [a] = m.attachments.as_slice() else {
                    panic!("an upload with {} attachments", m.attachments.len())
                };
                assert_eq!(body["attachment"].as_str(), Some(a.id.as_str()));
                assert_eq!(a.size, Some(request.body.len() as u64));
                let name = a.name.as_deref().expect("a name");
                assert!(
                    !name.is_empty()
                        && name.chars().count() <= MAX_NAME_CHARS
                        && !name.starts_with('.')
                        && !name.contains(['/', '\\'])
                        && !name.chars().any(char::is_control),
                    "unsafe name {name:?}"
                );
            }
        }
        "/api/press" => {
            let [InboundEvent::Button(b)] = events.as_slice() else {
                panic!("a press gave events {events:?}")
            };
            let pressed: Value = serde_json::from_slice(&request.body).expect("press JSON");
            let id = b.message_id.as_deref().expect("the pressed message");
            let message = chat.message(id).expect("a pressed message is kept");
            let (row, col) = (
                pressed["row"].as_u64().unwrap(),
                pressed["col"].as_u64().unwrap(),
            );
            assert_eq!(b.data, message.buttons[row as usize][col as usize].data);
        }
        other => panic!("200 for {other:?}"),
    }
}

/// `SEND`: the host's `send`, from a lenient JSON description.
fn send(chat: &mut State, body: &[u8], now: u64) {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let message = OutboundMessage {
        chat_id: v.get("chat").map_or(CHAT_ID.to_string(), text),
        text: text(&v["text"]),
        reply_to: v["reply_to"].as_str().map(String::from),
        format: TextFormat::Plain,
        buttons: v["buttons"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|row| {
                row.as_array()
                    .into_iter()
                    .flatten()
                    .map(|b| Button {
                        label: text(&b[0]),
                        data: text(&b[1]),
                    })
                    .collect()
            })
            .collect(),
        files: v["files"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| OutboundFile {
                name: text(&f["name"]),
                mime: text(&f["mime"]),
                data: text(&f["data"]).into_bytes(),
            })
            .collect(),
    };
    let sent_text = message.text.clone();
    let rows = message.buttons.iter().filter(|r| !r.is_empty()).count();
    let seq_before = chat.seq;
    match chat.send(message, now) {
        Ok(sent) => {
            let [id] = sent.message_ids.as_slice() else {
                panic!("sent {:?}", sent.message_ids)
            };
            let m = chat.message(id).expect("the sent message is kept");
            assert!(m.from == Author::Bot && m.text == sent_text && m.buttons.len() == rows);
        }
        Err(e) => {
            assert_eq!(
                chat.seq, seq_before,
                "a refused send changed the chat: {e:?}"
            );
        }
    }
}

/// The chat's bounds and bookkeeping.
fn check_state(chat: &State) {
    assert!(chat.messages.len() <= MAX_MESSAGES);
    let text: usize = chat.messages.iter().map(|m| m.stored_bytes()).sum();
    assert_eq!(chat.text_bytes, text, "text bytes counted");
    assert!(
        text <= chat.text_cap || chat.messages.len() == 1,
        "{text} bytes of text kept, over the cap of {}",
        chat.text_cap
    );
    let files: usize = chat.files.iter().map(|f| f.data.len()).sum();
    assert_eq!(chat.file_bytes, files, "file bytes counted");
    assert!(files <= MAX_STORED_FILE_BYTES || chat.files.len() == 1);
    let ids: Vec<u64> = chat.messages.iter().map(|m| m.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert!(
        chat.messages
            .iter()
            .all(|m| m.seq <= chat.seq && m.id <= chat.last_id)
    );
}

/// The calls written in `data` (see [`check_requests`]).
fn calls(data: &[u8]) -> Vec<IncomingRequest> {
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
        let first = lines.next().unwrap_or_default();
        let (method, path) = match first.split_once(' ') {
            // The host's calls keep their arguments with the name.
            Some(("SEND" | "EDIT" | "HISTORY" | "DOWNLOAD", _)) => (first, ""),
            Some((m, p)) => (m, p),
            None => (first, ""),
        };
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
            "fakechat",
            super::check_requests,
        );
    }
}
