//! fakechat: a local web chat for trying airlock without any platform
//! account.
//!
//! The host serves this adapter's inbound route on `127.0.0.1` (it binds the
//! socket, checks the per-run access token, `Origin` and `Host`, strips the
//! token from the query, and hands each request here). The page it returns
//! talks to the routes below; everything lives in this instance's memory, so
//! a restart forgets the history.
//!
//! **Routes** (paths relative to the route, queries as sent):
//!
//! * `GET /`: the chat page, one self-contained HTML document.
//! * `POST /api/send` with `{"text": "...", "reply_to": "id"?}`: one message
//!   from the user (chat `web`, sender `web`). `200 {"id": "<message id>"}`;
//!   empty or over-long text, bad JSON, or an unknown `reply_to` is `400`.
//! * `POST /api/upload?name=FILE.ext[&text=...][&reply_to=id]` with the raw
//!   file as the body: stores the file in memory and sends a message with one
//!   attachment (kind `photo` for `image/*`, else `document`).
//!   `200 {"id": "<message id>", "attachment": "<attachment id>"}`.
//! * `GET /api/messages?after=N`: the messages whose `seq` is greater than
//!   `N`, as a JSON list of
//!   `{seq, id, from: "user"|"bot", text, reply_to, edited, ts, files: [{id, name, mime, size}], buttons: [["label", ...], ...]}`
//!   in `seq` order. Every new message and every edit takes the next `seq`,
//!   so a poller that remembers the largest `seq` it saw also sees edits. A
//!   cursor beyond the latest `seq` (the instance restarted) lists everything.
//!   `buttons` holds the labels only, row by row (`[]` when there are none):
//!   a button's data never reaches the page.
//! * `POST /api/press` with `{"id": "<message id>", "row": R, "col": C}`: the
//!   user pressed button `C` (from 0) of row `R` of a bot message, which
//!   reaches the session as a button press (chat `web`, sender `web`) with
//!   that button's data. `200 {"ok": true}`; an unknown message is `404`; a
//!   user message, or a message without that button (an edit removes a
//!   message's buttons, so a prompt that was answered has none) is `409`;
//!   bad JSON or a missing field is `400`.
//! * `GET /api/files/ID`: the bytes of a stored file, always as an
//!   `application/octet-stream` download (never rendered in the page's origin).
//!
//! Anything else is `404`; a known path with the wrong method is `405`.
//! Errors are JSON: `{"error": "..."}`.
//!
//! **Outbound.** `send` appends a bot message to chat `web` (files become bot
//! attachments the page lists and offers for download; buttons are shown
//! under the text, checked against the limits a platform would set: at most
//! 5 rows of 5, labels of 1 to 80 characters, data of 1 to 100 bytes),
//! `edit` replaces the text of a bot message and removes its buttons, as
//! editing does on every bundled platform (a longer text makes room as a
//! new message does: the oldest other messages are forgotten), `typing`
//! does nothing,
//! `fetch_history` returns the last messages oldest first,
//! `download_attachment` returns stored bytes. Reactions are not supported.
//!
//! **Settings.** `port` only, which the host reads to bind the page's
//! listener; the adapter works the same without `start` (the host's own
//! tests drive it so).

use std::collections::VecDeque;

use airlock_guest::Adapter;
use airlock_guest::http::Method;
use airlock_guest::percent::{self, AsciiSet, NON_ALPHANUMERIC, query_param};
use airlock_guest::serde_json::{self, Value, json};
use airlock_guest::types::{
    AdapterError, Attachment, AttachmentData, AttachmentKind, AttachmentRequest, Button,
    ButtonPress, Chat, ChatKind, ChunkMode, Description, EditRequest, EventBatch, Features,
    HistoryEntry, HistoryRequest, HttpResponse, InboundEvent, InboundMessage, IncomingReply,
    IncomingRequest, Limits, OutboundFile, OutboundMessage, Sender, Sent,
};

/// The fuzz target's check (`fuzz/`); native builds only.
#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
pub mod fuzzing;

/// The one chat this adapter has.
pub const CHAT_ID: &str = "web";
/// The user's sender id and handle.
pub const USER_ID: &str = "web";
/// Longest bot message, in characters (the host chunks longer replies).
pub const MAX_TEXT_LEN: u32 = 10_000;
/// Longest message the page may send, in bytes.
pub const MAX_INBOUND_TEXT_BYTES: usize = 64 << 10;
/// Largest single file, uploaded or sent by the bot.
pub const MAX_FILE_BYTES: usize = 8 << 20;
/// Bytes of files kept in memory; the oldest are evicted beyond this.
pub const MAX_STORED_FILE_BYTES: usize = 16 << 20;
/// Messages kept; the oldest are forgotten beyond this.
pub const MAX_MESSAGES: usize = 500;
/// Bytes of message text and buttons kept; the oldest messages are forgotten
/// beyond this, after a new message or an edit (never the message just
/// added or edited, so one message alone may hold more).
pub const MAX_STORED_TEXT_BYTES: usize = 4 << 20;
/// Files per bot message.
pub const MAX_FILES_PER_SEND: u32 = 4;
/// Rows of buttons per bot message, and buttons per row (as on Discord).
pub const MAX_BUTTONS: usize = 5;
/// Longest button label, in characters.
pub const MAX_BUTTON_LABEL_CHARS: usize = 80;
/// Longest button data, in bytes.
pub const MAX_BUTTON_DATA_BYTES: usize = 100;
/// Longest file name kept, in characters.
const MAX_NAME_CHARS: usize = 120;
/// Longest message id accepted in `reply_to`.
const MAX_ID_LEN: usize = 32;

/// What `filename*` leaves unencoded: ASCII letters, digits, `.`, `_`, `-`.
const FILENAME: &AsciiSet = &NON_ALPHANUMERIC.remove(b'.').remove(b'_').remove(b'-');

const PAGE: &str = include_str!("page.html");

/// The settings: only the one the host reads.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The page's port; the host binds it, the adapter does not need it.
    pub port: Option<u16>,
}

/// The adapter: the chat, in this instance's memory.
pub struct Fakechat {
    chat: State,
}

impl Adapter for Fakechat {
    type Settings = Settings;

    fn describe() -> Description {
        Description {
            platform: "fakechat".into(),
            limits: Limits {
                max_text_len: MAX_TEXT_LEN,
                chunk_mode: ChunkMode::Newline,
                max_files: MAX_FILES_PER_SEND,
                max_file_bytes: MAX_FILE_BYTES as u64,
            },
            features: Features::EDIT
                | Features::DOWNLOAD
                | Features::FILES
                | Features::TYPING
                | Features::HISTORY
                | Features::BUTTONS,
            instructions: vec![
                "Messages come from a local test web page (fakechat) that the operator opened \
                 in a browser on this machine; replies and files you send appear on that page, \
                 in chat `web`."
                    .into(),
            ],
        }
    }

    fn start(_: Settings) -> Result<Self, AdapterError> {
        Ok(Fakechat { chat: State::new() })
    }

    fn on_http_request(&mut self, request: IncomingRequest) -> Result<IncomingReply, AdapterError> {
        Ok(self.chat.handle_request(&request, airlock_guest::now_ms()))
    }

    fn send(&mut self, message: OutboundMessage) -> Result<Sent, AdapterError> {
        self.chat.send(message, airlock_guest::now_ms())
    }

    fn edit(&mut self, request: EditRequest) -> Result<(), AdapterError> {
        self.chat.edit(&request)
    }

    fn typing(&mut self, chat_id: String) -> Result<(), AdapterError> {
        check_chat(&chat_id)
    }

    fn fetch_history(
        &mut self,
        request: HistoryRequest,
    ) -> Result<Vec<HistoryEntry>, AdapterError> {
        self.chat.history(&request)
    }

    fn download_attachment(
        &mut self,
        request: AttachmentRequest,
    ) -> Result<AttachmentData, AdapterError> {
        self.chat.download(&request)
    }
}

airlock_guest::export_adapter!(Fakechat);

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Author {
    User,
    Bot,
}

impl Author {
    fn as_str(self) -> &'static str {
        match self {
            Author::User => "user",
            Author::Bot => "bot",
        }
    }
}

/// A file as a message lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FileRef {
    id: String,
    name: String,
    mime: String,
    size: u64,
}

#[derive(Clone, Debug)]
struct Message {
    id: u64,
    /// Bumped on every change, so pollers see edits.
    seq: u64,
    from: Author,
    text: String,
    reply_to: Option<String>,
    edited: bool,
    ts: u64,
    files: Vec<FileRef>,
    /// Rows of buttons (bot messages only; none after an edit).
    buttons: Vec<Vec<Button>>,
}

impl Message {
    fn to_json(&self) -> Value {
        json!({
            "seq": self.seq,
            "id": self.id.to_string(),
            "from": self.from.as_str(),
            "text": self.text,
            "reply_to": self.reply_to,
            "edited": self.edited,
            "ts": self.ts,
            "files": self.files.iter().map(|f| json!({
                "id": f.id, "name": f.name, "mime": f.mime, "size": f.size,
            })).collect::<Vec<_>>(),
            // Labels only: the data stays here, and comes back on a press.
            "buttons": self.buttons.iter().map(|row| {
                row.iter().map(|b| b.label.as_str()).collect::<Vec<_>>()
            }).collect::<Vec<_>>(),
        })
    }

    /// The bytes this message counts against [`MAX_STORED_TEXT_BYTES`].
    fn stored_bytes(&self) -> usize {
        self.text.len() + buttons_bytes(&self.buttons)
    }

    fn sender(&self) -> Sender {
        match self.from {
            Author::User => user_sender(),
            Author::Bot => Sender {
                id: "bot".into(),
                handle: None,
                display_name: Some("Claude".into()),
                is_bot: true,
            },
        }
    }
}

struct StoredFile {
    meta: FileRef,
    data: Vec<u8>,
}

/// The chat: messages, stored files and counters.
struct State {
    /// The last message id handed out (ids start at 1).
    last_id: u64,
    /// The last `seq` handed out.
    seq: u64,
    messages: VecDeque<Message>,
    /// Bytes of text and buttons of the kept messages.
    text_bytes: usize,
    /// The most `text_bytes` may be: [`MAX_STORED_TEXT_BYTES`], or smaller
    /// for the fuzz target, whose inputs are too short to reach that.
    text_cap: usize,
    last_file: u64,
    files: VecDeque<StoredFile>,
    file_bytes: usize,
}

/// A message about to be added.
struct NewMessage {
    from: Author,
    text: String,
    reply_to: Option<String>,
    files: Vec<FileRef>,
    buttons: Vec<Vec<Button>>,
}

impl State {
    const fn new() -> Self {
        Self::with_text_cap(MAX_STORED_TEXT_BYTES)
    }

    /// An empty chat that keeps at most `text_cap` bytes of text and buttons.
    const fn with_text_cap(text_cap: usize) -> Self {
        State {
            last_id: 0,
            seq: 0,
            messages: VecDeque::new(),
            text_bytes: 0,
            text_cap,
            last_file: 0,
            files: VecDeque::new(),
            file_bytes: 0,
        }
    }

    fn add_message(&mut self, new: NewMessage, now_ms: u64) -> &Message {
        self.last_id += 1;
        self.seq += 1;
        self.text_bytes += new.text.len() + buttons_bytes(&new.buttons);
        self.messages.push_back(Message {
            id: self.last_id,
            seq: self.seq,
            from: new.from,
            text: new.text,
            reply_to: new.reply_to,
            edited: false,
            ts: now_ms,
            files: new.files,
            buttons: new.buttons,
        });
        self.make_room(self.last_id);
        self.messages.back().expect("just pushed")
    }

    /// Forgets the oldest messages but `keep` (the one just added or
    /// edited) until the chat is within [`MAX_MESSAGES`] and its text cap.
    fn make_room(&mut self, keep: u64) {
        while self.messages.len() > 1
            && (self.messages.len() > MAX_MESSAGES || self.text_bytes > self.text_cap)
        {
            let oldest = usize::from(self.messages.front().is_some_and(|m| m.id == keep));
            if let Some(old) = self.messages.remove(oldest) {
                self.text_bytes -= old.stored_bytes();
            }
        }
    }

    fn message(&self, id: &str) -> Option<&Message> {
        let id: u64 = id.parse().ok()?;
        self.messages.iter().find(|m| m.id == id)
    }

    /// Stores a file, evicting the oldest ones to stay within the cap.
    fn store_file(&mut self, name: &str, mime: &str, data: Vec<u8>) -> FileRef {
        while self.file_bytes + data.len() > MAX_STORED_FILE_BYTES {
            match self.files.pop_front() {
                Some(old) => self.file_bytes -= old.data.len(),
                None => break,
            }
        }
        self.last_file += 1;
        let meta = FileRef {
            id: format!("f{}", self.last_file),
            name: safe_name(name),
            mime: mime.to_string(),
            size: data.len() as u64,
        };
        self.file_bytes += data.len();
        self.files.push_back(StoredFile {
            meta: meta.clone(),
            data,
        });
        meta
    }

    fn file(&self, id: &str) -> Option<&StoredFile> {
        self.files.iter().find(|f| f.meta.id == id)
    }

    /// Answers one request from the page; `now_ms` stamps new messages.
    fn handle_request(&mut self, request: &IncomingRequest, now_ms: u64) -> IncomingReply {
        let Some(target) = request.path_and_query() else {
            return reply(error(404, "not found"), None);
        };
        let (path, query) = (target.path(), target.query().unwrap_or_default());
        let allowed = match path {
            "/" => Method::GET,
            "/api/messages" => Method::GET,
            "/api/send" | "/api/upload" | "/api/press" => Method::POST,
            p if p.starts_with("/api/files/") => Method::GET,
            _ => return reply(error(404, "not found"), None),
        };
        if request.http_method().as_ref() != Some(&allowed) {
            let mut response = error(405, &format!("method not allowed: use {allowed}"));
            response
                .headers
                .push(("allow".into(), allowed.as_str().into()));
            return reply(response, None);
        }
        let outcome = match path {
            "/" => Ok((
                HttpResponse::new(200, "text/html; charset=utf-8", PAGE),
                None,
            )),
            "/api/messages" => self.list(query).map(|r| (r, None)),
            "/api/send" => self.post_message(&request.body, now_ms),
            "/api/upload" => self.upload(request, query, now_ms),
            "/api/press" => self.press(&request.body),
            files => self
                .serve_file(&files["/api/files/".len()..])
                .map(|r| (r, None)),
        };
        match outcome {
            Ok((response, event)) => reply(response, event),
            Err(response) => reply(response, None),
        }
    }

    /// `GET /api/messages?after=N`.
    fn list(&self, query: &str) -> Result<HttpResponse, HttpResponse> {
        let after = match query_param(query, "after") {
            None => 0,
            Some(n) => n.trim().parse::<u64>().map_err(|_| {
                error(
                    400,
                    "`after` must be a non-negative integer (a `seq` value)",
                )
            })?,
        };
        // A cursor from before a restart: list everything again.
        let after = if after > self.seq { 0 } else { after };
        let mut changed: Vec<&Message> = self.messages.iter().filter(|m| m.seq > after).collect();
        changed.sort_by_key(|m| m.seq);
        let body = Value::Array(changed.iter().map(|m| m.to_json()).collect());
        Ok(json_response(200, &body))
    }

    /// `POST /api/send`.
    fn post_message(
        &mut self,
        body: &[u8],
        now_ms: u64,
    ) -> Result<(HttpResponse, Option<InboundEvent>), HttpResponse> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| error(400, &format!("the body is not valid JSON: {e}")))?;
        let object = value
            .as_object()
            .ok_or_else(|| error(400, "the body must be a JSON object with `text`"))?;
        let text = match object.get("text") {
            Some(Value::String(text)) => text.clone(),
            None | Some(Value::Null) => return Err(error(400, "field `text` is missing")),
            Some(_) => return Err(error(400, "field `text` must be a string")),
        };
        check_text(&text, false)?;
        let reply_to = match object.get("reply_to") {
            None | Some(Value::Null) => None,
            Some(Value::String(id)) if id.is_empty() => None,
            Some(Value::String(id)) => Some(id.clone()),
            Some(Value::Number(id)) => Some(id.to_string()),
            Some(_) => return Err(error(400, "field `reply_to` must be a message id string")),
        };
        let reply_to = self.check_reply_to(reply_to)?;
        let message = self.add_message(
            NewMessage {
                from: Author::User,
                text,
                reply_to,
                files: Vec::new(),
                buttons: Vec::new(),
            },
            now_ms,
        );
        let inbound = inbound(message, Vec::new());
        let body = json!({ "id": message.id.to_string() });
        Ok((
            json_response(200, &body),
            Some(InboundEvent::Message(inbound)),
        ))
    }

    /// `POST /api/upload?name=...`.
    fn upload(
        &mut self,
        request: &IncomingRequest,
        query: &str,
        now_ms: u64,
    ) -> Result<(HttpResponse, Option<InboundEvent>), HttpResponse> {
        if request.body.is_empty() {
            return Err(error(400, "the file is empty"));
        }
        if request.body.len() > MAX_FILE_BYTES {
            return Err(error(
                413,
                &format!("files are limited to {} MiB", MAX_FILE_BYTES >> 20),
            ));
        }
        let name = query_param(query, "name").unwrap_or_default();
        let text = query_param(query, "text").unwrap_or_default();
        check_text(&text, true)?;
        let reply_to = query_param(query, "reply_to").filter(|id| !id.is_empty());
        let reply_to = self.check_reply_to(reply_to)?;
        let content_type = request
            .headers
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.as_str());
        let name = safe_name(&name);
        let mime = mime_of(content_type, &name);
        let file = self.store_file(&name, &mime, request.body.clone());
        let attachment = Attachment {
            id: file.id.clone(),
            kind: if mime.starts_with("image/") {
                AttachmentKind::Photo
            } else {
                AttachmentKind::Document
            },
            name: Some(file.name.clone()),
            mime: Some(file.mime.clone()),
            size: Some(file.size),
        };
        let file_id = file.id.clone();
        let message = self.add_message(
            NewMessage {
                from: Author::User,
                text,
                reply_to,
                files: vec![file],
                buttons: Vec::new(),
            },
            now_ms,
        );
        let inbound = inbound(message, vec![attachment]);
        let body = json!({ "id": message.id.to_string(), "attachment": file_id });
        Ok((
            json_response(200, &body),
            Some(InboundEvent::Message(inbound)),
        ))
    }

    /// `POST /api/press`: a press on a button of a bot message.
    fn press(&self, body: &[u8]) -> Result<(HttpResponse, Option<InboundEvent>), HttpResponse> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| error(400, &format!("the body is not valid JSON: {e}")))?;
        let object = value.as_object().ok_or_else(|| {
            error(
                400,
                "the body must be a JSON object with `id`, `row` and `col`",
            )
        })?;
        let id = match object.get("id") {
            Some(Value::String(id)) => id.clone(),
            Some(Value::Number(id)) => id.to_string(),
            None | Some(Value::Null) => return Err(error(400, "field `id` is missing")),
            Some(_) => return Err(error(400, "field `id` must be a message id string")),
        };
        let index = |field: &str| match object.get(field) {
            Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
                error(
                    400,
                    &format!("field `{field}` must be a non-negative integer"),
                )
            }),
            None | Some(Value::Null) => Err(error(400, &format!("field `{field}` is missing"))),
            Some(_) => Err(error(
                400,
                &format!("field `{field}` must be a non-negative integer"),
            )),
        };
        let (row, col) = (index("row")?, index("col")?);
        let message = self.message(&id).ok_or_else(|| {
            error(
                404,
                &format!("no such message (fakechat keeps the last {MAX_MESSAGES} in memory)"),
            )
        })?;
        let button = usize::try_from(row)
            .ok()
            .zip(usize::try_from(col).ok())
            .and_then(|(row, col)| message.buttons.get(row)?.get(col))
            .ok_or_else(|| {
                error(
                    409,
                    "that message has no such button (it may have been answered)",
                )
            })?;
        let press = ButtonPress {
            chat: web_chat(),
            sender: user_sender(),
            message_id: Some(message.id.to_string()),
            data: button.data.clone(),
        };
        let body = json!({ "ok": true });
        Ok((json_response(200, &body), Some(InboundEvent::Button(press))))
    }

    /// `GET /api/files/ID`.
    fn serve_file(&self, id: &str) -> Result<HttpResponse, HttpResponse> {
        let file = self.file(&percent::decode_form(id)).ok_or_else(|| {
            error(
                404,
                "no such file (files are kept in memory, oldest first out)",
            )
        })?;
        Ok(HttpResponse {
            status: 200,
            headers: vec![
                ("content-type".into(), "application/octet-stream".into()),
                (
                    "content-disposition".into(),
                    content_disposition(&file.meta.name),
                ),
            ],
            body: file.data.clone(),
        })
    }

    fn check_reply_to(&self, reply_to: Option<String>) -> Result<Option<String>, HttpResponse> {
        match reply_to {
            None => Ok(None),
            Some(id) if id.len() <= MAX_ID_LEN && self.message(&id).is_some() => Ok(Some(id)),
            Some(_) => Err(error(400, "`reply_to` names no known message")),
        }
    }

    /// `send`: a bot message in chat `web`.
    fn send(&mut self, message: OutboundMessage, now_ms: u64) -> Result<Sent, AdapterError> {
        check_chat(&message.chat_id)?;
        if message.text.chars().count() > MAX_TEXT_LEN as usize {
            return Err(AdapterError::InvalidInput(format!(
                "the text is longer than {MAX_TEXT_LEN} characters"
            )));
        }
        if message.files.len() > MAX_FILES_PER_SEND as usize {
            return Err(AdapterError::InvalidInput(format!(
                "at most {MAX_FILES_PER_SEND} files per message"
            )));
        }
        if let Some(big) = message.files.iter().find(|f| f.data.len() > MAX_FILE_BYTES) {
            return Err(AdapterError::InvalidInput(format!(
                "file {} is larger than {} MiB",
                big.name,
                MAX_FILE_BYTES >> 20
            )));
        }
        if message.files.iter().map(|f| f.data.len()).sum::<usize>() > MAX_STORED_FILE_BYTES {
            return Err(AdapterError::InvalidInput(format!(
                "the files of one message may add up to {} MiB",
                MAX_STORED_FILE_BYTES >> 20
            )));
        }
        if message.text.trim().is_empty() && message.files.is_empty() {
            return Err(AdapterError::InvalidInput(
                "a message needs text or a file".into(),
            ));
        }
        let buttons = check_buttons(message.buttons)?;
        let reply_to = message.reply_to.filter(|id| !id.is_empty());
        let files = message
            .files
            .into_iter()
            .map(|OutboundFile { name, mime, data }| {
                let name = safe_name(&name);
                let mime = mime_of(Some(&mime), &name);
                self.store_file(&name, &mime, data)
            })
            .collect();
        let sent = self.add_message(
            NewMessage {
                from: Author::Bot,
                text: message.text,
                reply_to,
                files,
                buttons,
            },
            now_ms,
        );
        Ok(Sent::one(sent.id.to_string()))
    }

    /// `edit`: replaces the text of a bot message and removes its buttons
    /// (an answered prompt keeps none, as on the other platforms). A longer
    /// text makes room as a new message does, so the chat stays within its
    /// text cap: the oldest other messages are forgotten, never this one.
    fn edit(&mut self, request: &EditRequest) -> Result<(), AdapterError> {
        check_chat(&request.chat_id)?;
        if request.text.chars().count() > MAX_TEXT_LEN as usize {
            return Err(AdapterError::InvalidInput(format!(
                "the text is longer than {MAX_TEXT_LEN} characters"
            )));
        }
        let id: u64 = request.message_id.parse().map_err(|_| unknown_message())?;
        let message = self
            .messages
            .iter_mut()
            .find(|m| m.id == id)
            .ok_or_else(unknown_message)?;
        if message.from != Author::Bot {
            return Err(AdapterError::InvalidInput(
                "only messages the bot sent can be edited".into(),
            ));
        }
        self.seq += 1;
        self.text_bytes = self.text_bytes - message.stored_bytes() + request.text.len();
        message.text = request.text.clone();
        message.buttons = Vec::new();
        message.edited = true;
        message.seq = self.seq;
        self.make_room(id);
        Ok(())
    }

    /// `fetch-history`: the last `limit` messages (before `before`), oldest first.
    fn history(&self, request: &HistoryRequest) -> Result<Vec<HistoryEntry>, AdapterError> {
        check_chat(&request.chat_id)?;
        let before = match &request.before {
            None => u64::MAX,
            Some(id) => id.parse::<u64>().map_err(|_| {
                AdapterError::InvalidInput(format!("`before` must be a message id, not {id:?}"))
            })?,
        };
        let older: Vec<&Message> = self.messages.iter().filter(|m| m.id < before).collect();
        let skip = older.len().saturating_sub(request.limit as usize);
        Ok(older[skip..]
            .iter()
            .map(|m| HistoryEntry {
                message_id: m.id.to_string(),
                sender: m.sender(),
                text: m.text.clone(),
                ts_ms: m.ts,
                attachment_count: m.files.len() as u32,
            })
            .collect())
    }

    /// `download-attachment`.
    fn download(&self, request: &AttachmentRequest) -> Result<AttachmentData, AdapterError> {
        check_chat(&request.chat_id)?;
        let file = self.file(&request.attachment_id).ok_or_else(|| {
            AdapterError::InvalidInput(format!(
                "attachment {} is not stored (any more): fakechat keeps the last {} MiB of files in memory",
                request.attachment_id,
                MAX_STORED_FILE_BYTES >> 20
            ))
        })?;
        Ok(AttachmentData {
            name: file.meta.name.clone(),
            mime: Some(file.meta.mime.clone()),
            data: file.data.clone(),
        })
    }
}

fn unknown_message() -> AdapterError {
    AdapterError::InvalidInput("no such message in chat `web`".into())
}

fn check_chat(chat_id: &str) -> Result<(), AdapterError> {
    if chat_id == CHAT_ID {
        Ok(())
    } else {
        Err(AdapterError::InvalidInput(format!(
            "fakechat has one chat, `{CHAT_ID}`; there is no chat {chat_id:?}"
        )))
    }
}

/// Checks user text: not over the cap, and not blank unless `may_be_empty`.
fn check_text(text: &str, may_be_empty: bool) -> Result<(), HttpResponse> {
    if text.len() > MAX_INBOUND_TEXT_BYTES {
        return Err(error(
            400,
            &format!(
                "the text is longer than {} KiB",
                MAX_INBOUND_TEXT_BYTES >> 10
            ),
        ));
    }
    if !may_be_empty && text.trim().is_empty() {
        return Err(error(400, "the text is empty"));
    }
    Ok(())
}

/// Checks buttons against the limits a platform sets (Discord's, the
/// tightest on rows) and drops empty rows.
fn check_buttons(rows: Vec<Vec<Button>>) -> Result<Vec<Vec<Button>>, AdapterError> {
    if rows.len() > MAX_BUTTONS || rows.iter().any(|row| row.len() > MAX_BUTTONS) {
        return Err(AdapterError::InvalidInput(format!(
            "at most {MAX_BUTTONS} rows of at most {MAX_BUTTONS} buttons"
        )));
    }
    for button in rows.iter().flatten() {
        let chars = button.label.chars().count();
        if button.label.trim().is_empty() || chars > MAX_BUTTON_LABEL_CHARS {
            return Err(AdapterError::InvalidInput(format!(
                "button {:?}: a label must have 1 to {MAX_BUTTON_LABEL_CHARS} characters and \
                 not be blank (it has {chars})",
                button.label
            )));
        }
        if button.data.is_empty() || button.data.len() > MAX_BUTTON_DATA_BYTES {
            return Err(AdapterError::InvalidInput(format!(
                "button {:?}: its data must be 1 to {MAX_BUTTON_DATA_BYTES} bytes (it has {})",
                button.label,
                button.data.len()
            )));
        }
    }
    Ok(rows.into_iter().filter(|row| !row.is_empty()).collect())
}

/// Bytes of labels and data, counted with the text against the store's cap.
fn buttons_bytes(rows: &[Vec<Button>]) -> usize {
    rows.iter()
        .flatten()
        .map(|b| b.label.len() + b.data.len())
        .sum()
}

/// The one chat, as user messages and button presses name it.
fn web_chat() -> Chat {
    Chat {
        id: CHAT_ID.into(),
        kind: ChatKind::Direct,
        title: None,
        parent_id: None,
    }
}

fn user_sender() -> Sender {
    Sender {
        id: USER_ID.into(),
        handle: Some(USER_ID.into()),
        display_name: None,
        is_bot: false,
    }
}

/// The inbound event for a message the user just sent.
fn inbound(message: &Message, attachments: Vec<Attachment>) -> InboundMessage {
    InboundMessage {
        chat: web_chat(),
        sender: user_sender(),
        message_id: message.id.to_string(),
        text: message.text.clone(),
        ts_ms: message.ts,
        reply_to: message.reply_to.clone(),
        mentions_bot: true,
        attachments,
        edited: false,
    }
}

fn reply(response: HttpResponse, event: Option<InboundEvent>) -> IncomingReply {
    IncomingReply {
        response,
        batch: EventBatch {
            events: event.into_iter().collect(),
            cursor: None,
        },
    }
}

fn json_response(status: u16, body: &Value) -> HttpResponse {
    HttpResponse::new(status, "application/json", body.to_string())
}

fn error(status: u16, message: &str) -> HttpResponse {
    json_response(status, &json!({ "error": message }))
}

/// A file name without directories or control characters, of bounded length.
fn safe_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.');
    if cleaned.is_empty() {
        "file".into()
    } else {
        cleaned.into()
    }
}

/// The MIME type from a `content-type` header if it is well-formed, else
/// guessed from the file name's extension.
fn mime_of(content_type: Option<&str>, name: &str) -> String {
    let declared = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .filter(|m| valid_mime(m) && m != "application/octet-stream");
    if let Some(m) = declared {
        return m;
    }
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "txt" | "log" => "text/plain",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
    .into()
}

fn valid_mime(m: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 100
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    matches!(m.split_once('/'), Some((t, s)) if token(t) && token(s))
}

/// `attachment; filename="ascii"; filename*=UTF-8''percent-encoded`.
fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._- ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = percent::encode(name, FILENAME);
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests;
