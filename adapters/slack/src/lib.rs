//! `slack`: Slack over Socket Mode, as an airlock adapter. No public URL
//! is needed: the adapter asks the Web API for a Socket Mode URL
//! (`apps.connections.open`), and the host opens the websocket to it.
//!
//! **Inbound.** Every envelope is decoded ([`inbound`]) and acknowledged by
//! its `envelope_id` with `send_text_after_commit`: the host sends the
//! acknowledgement only once the envelope's events are stored, so a crash
//! in between makes Slack deliver it again rather than lose it. A
//! `disconnect` (Slack recycles connections every few hours, and warns
//! first) opens a new connection; the old one is still read, and what
//! arrives there acknowledged there, until the new one says hello. A
//! connection that closes is opened again, after a pause when it keeps
//! failing.
//!
//! **Outbound** ([`outbound`]): messages (in threads, mrkdwn, buttons as
//! blocks, files through the external upload flow), edits, reactions,
//! history and downloads, through the Web API ([`api`]).
//!
//! **Two tokens, neither seen.** The host adds the app-level token
//! (`xapp-…`) to `apps.connections.open` only, and the bot token (`xoxb-…`)
//! to every other call and to file downloads (`slack.toml` binds each to
//! its own paths); it scrubs both from everything that comes back.
//!
//! Settings ([`Settings`]; any other key is refused at start):
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `api_base` | Web API base URL (a local fake, a proxy); needs the matching grant | `https://slack.com` |
//! | `mention_pattern` | case-insensitive regex; a channel message matching it addresses the bot | none |

pub mod api;
pub mod inbound;
pub mod outbound;

use airlock_guest::settings::HttpUrl;
use airlock_guest::types::{
    AdapterError, AttachmentData, AttachmentRequest, ChunkMode, Connection, Description,
    EditRequest, EventBatch, Features, HistoryEntry, HistoryRequest, HttpRequest, Limits,
    OutboundMessage, ReactRequest, Sent, WsEvent,
};
use airlock_guest::{Adapter, Role, clock, log, websocket};
use regex_lite::Regex;
use serde::Deserialize;
use serde_json::json;

use api::{Api, DEFAULT_API_BASE};
use inbound::{Context, Frame, Threads, decode_frame};

/// The timer that opens a connection again.
const RECONNECT_TIMER: &str = "reconnect";
/// First pause before opening again after a connection failed; doubles up
/// to [`MAX_PAUSE_MS`].
const FIRST_PAUSE_MS: u64 = 1000;
const MAX_PAUSE_MS: u64 = 60_000;

/// The operator's settings, as the module docs list them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Web API base URL.
    pub api_base: Option<HttpUrl>,
    /// Case-insensitive regex; a channel message matching it addresses the bot.
    pub mention_pattern: Option<String>,
}

/// The adapter: what one started instance knows.
pub struct Slack {
    api: Api,
    bot_user: String,
    pattern: Option<Regex>,
    threads: Threads,
    /// The open connection.
    conn: Option<Connection>,
    /// The connection Slack asked to leave, still read until the new one
    /// says hello: what Slack sends there meanwhile is acknowledged there.
    retiring: Option<Connection>,
    /// The next pause before reconnecting.
    pause_ms: u64,
    role: Role,
}

impl Adapter for Slack {
    type Settings = Settings;

    fn describe() -> Description {
        Description {
            platform: "slack".into(),
            limits: Limits {
                max_text_len: outbound::MAX_TEXT,
                chunk_mode: ChunkMode::Newline,
                max_files: 10,
                max_file_bytes: 100 << 20,
            },
            features: Features::REACT
                | Features::EDIT
                | Features::HISTORY
                | Features::DOWNLOAD
                | Features::BUTTONS
                | Features::FILES,
            instructions: vec![
                "Slack chat ids are conversation ids: slack:D0123ABCD (a DM), slack:C0123ABCD (a channel). A message id is its ts, like 1733300000.000100."
                    .into(),
                "To answer in a thread, reply_to any message of it. With format markdown Slack shows **bold** and [label](url), and <@U0123ABCD> mentions a person; @channel, @here and @everyone never ping."
                    .into(),
                "react with an emoji name like white_check_mark or eyes (or 👍 ✅ ❌ 👀 🎉)."
                    .into(),
            ],
        }
    }

    fn start(settings: Settings) -> Result<Self, AdapterError> {
        Self::start_with_role(settings, Role::Owner)
    }

    /// The owner opens Socket Mode; an outbound instance only sends.
    fn start_with_role(settings: Settings, role: Role) -> Result<Self, AdapterError> {
        let api = Api::new(
            settings
                .api_base
                .as_ref()
                .map_or(DEFAULT_API_BASE, HttpUrl::as_str),
        );
        let pattern =
            airlock_guest::settings::mention_pattern(settings.mention_pattern.as_deref())?;
        // A refused token stops here, with the fix.
        let me = api.call("auth.test", &json!({}))?;
        let bot_user = me["user_id"]
            .as_str()
            .ok_or_else(|| AdapterError::Platform("auth.test answered without user_id".into()))?
            .to_owned();
        let mut slack = Slack {
            api,
            bot_user,
            pattern,
            threads: Threads::default(),
            conn: None,
            retiring: None,
            pause_ms: FIRST_PAUSE_MS,
            role,
        };
        if role == Role::Owner {
            slack.connect()?;
        }
        Ok(slack)
    }

    /// Not a poller. Slack keeps what was not acknowledged and sends it to
    /// the next connection, so there is no position to resume from.
    fn poll_request(&mut self, _cursor: Option<String>) -> Option<HttpRequest> {
        None
    }

    fn on_ws_event(
        &mut self,
        conn: Connection,
        event: WsEvent,
    ) -> Result<EventBatch, AdapterError> {
        if self.retiring == Some(conn) {
            return match event {
                WsEvent::Text(text) => self.on_frame(conn, &text),
                WsEvent::Closed(_) => {
                    self.retiring = None;
                    Ok(EventBatch::empty())
                }
                _ => Ok(EventBatch::empty()),
            };
        }
        if self.conn != Some(conn) {
            // A connection this instance already left.
            return Ok(EventBatch::empty());
        }
        match event {
            WsEvent::Opened => Ok(EventBatch::empty()),
            WsEvent::Text(text) => self.on_frame(conn, &text),
            WsEvent::Binary(bytes) => {
                log::warn(format!(
                    "Slack sent a binary frame of {} bytes; ignored",
                    bytes.len()
                ));
                Ok(EventBatch::empty())
            }
            WsEvent::Closed((code, reason)) => {
                self.conn = None;
                log::warn(format!(
                    "the Socket Mode connection closed ({code} {}); opening another in {} s",
                    airlock_guest::text::one_line(&reason, 100),
                    self.pause_ms / 1000
                ));
                clock::set_timer(RECONNECT_TIMER, self.pause_ms);
                self.pause_ms = (self.pause_ms * 2).min(MAX_PAUSE_MS);
                Ok(EventBatch::empty())
            }
        }
    }

    fn on_timer(&mut self, name: String) -> Result<EventBatch, AdapterError> {
        if name == RECONNECT_TIMER
            && self.conn.is_none()
            && self.role == Role::Owner
            && let Err(e) = self.connect()
        {
            log::warn(format!("cannot open Socket Mode yet: {}", e.text()));
            if matches!(e, AdapterError::Fatal(_)) {
                return Err(e);
            }
            clock::set_timer(RECONNECT_TIMER, self.pause_ms);
            self.pause_ms = (self.pause_ms * 2).min(MAX_PAUSE_MS);
        }
        Ok(EventBatch::empty())
    }

    fn send(&mut self, message: OutboundMessage) -> Result<Sent, AdapterError> {
        outbound::send(&self.api, &mut self.threads, message)
    }

    fn react(&mut self, request: ReactRequest) -> Result<(), AdapterError> {
        outbound::react(&self.api, request)
    }

    fn edit(&mut self, request: EditRequest) -> Result<(), AdapterError> {
        outbound::edit(&self.api, request)
    }

    fn fetch_history(
        &mut self,
        request: HistoryRequest,
    ) -> Result<Vec<HistoryEntry>, AdapterError> {
        outbound::history(&self.api, request)
    }

    fn download_attachment(
        &mut self,
        request: AttachmentRequest,
    ) -> Result<AttachmentData, AdapterError> {
        outbound::download(&self.api, request)
    }
}

airlock_guest::export_adapter!(Slack);

impl Slack {
    /// Asks for a Socket Mode URL and opens it; frames arrive through
    /// `on_ws_event`.
    fn connect(&mut self) -> Result<(), AdapterError> {
        let opened = self.api.call("apps.connections.open", &json!({}))?;
        let url = opened["url"].as_str().ok_or_else(|| {
            AdapterError::Platform("apps.connections.open answered without a url".into())
        })?;
        match websocket::connect(url) {
            Ok(conn) => {
                self.conn = Some(conn);
                Ok(())
            }
            Err(websocket::WsError::Denied(why)) => Err(AdapterError::Fatal(format!(
                "Slack's Socket Mode URL may not be opened: {why}; the adapter's manifest grants \
                 wss-primary.slack.com and wss-backup.slack.com, so a URL elsewhere needs the \
                 operator's grant"
            ))),
            Err(e) => Err(AdapterError::Platform(format!(
                "cannot open the Socket Mode connection: {e:?}"
            ))),
        }
    }

    fn on_frame(&mut self, conn: Connection, text: &str) -> Result<EventBatch, AdapterError> {
        let mut ctx = Context {
            bot_user: &self.bot_user,
            pattern: self.pattern.as_ref(),
            threads: &mut self.threads,
        };
        match decode_frame(text, &mut ctx) {
            Frame::Hello => {
                self.pause_ms = FIRST_PAUSE_MS;
                log::info("Slack Socket Mode connected");
                // The new connection works: the one Slack asked to leave goes.
                if Some(conn) == self.conn
                    && let Some(old) = self.retiring.take()
                {
                    let _ = websocket::close(old, 1000, "reconnected");
                }
                Ok(EventBatch::empty())
            }
            Frame::Disconnect { reason } if Some(conn) == self.conn => {
                log::info(format!(
                    "Slack asked to reconnect ({}); opening a new connection",
                    airlock_guest::text::one_line(&reason, 60)
                ));
                // The new connection first; the old one is read until the
                // new one says hello, or until Slack closes it.
                if let Some(older) = self.retiring.replace(conn) {
                    let _ = websocket::close(older, 1000, "reconnected");
                }
                self.conn = None;
                if let Err(e) = self.connect() {
                    log::warn(format!("cannot reconnect yet: {}", e.text()));
                    clock::set_timer(RECONNECT_TIMER, self.pause_ms);
                }
                Ok(EventBatch::empty())
            }
            Frame::Disconnect { .. } => Ok(EventBatch::empty()),
            Frame::Envelope { id, events } => {
                let ack = json!({ "envelope_id": id }).to_string();
                websocket::send_text_after_commit(conn, &ack).map_err(|e| {
                    AdapterError::Platform(format!("cannot hold the acknowledgement: {e:?}"))
                })?;
                Ok(EventBatch {
                    events,
                    cursor: None,
                })
            }
            Frame::Unknown(what) => {
                log::info(format!("Slack sent {what}; ignored"));
                Ok(EventBatch::empty())
            }
        }
    }
}
