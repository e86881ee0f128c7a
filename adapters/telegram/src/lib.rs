//! `telegram`: the Telegram Bot API as an airlock adapter.
//!
//! **Inbound.** The host long-polls `getUpdates` with the request
//! [`Adapter::poll_request`] builds, and hands every answer to
//! [`Adapter::on_poll_response`], which decodes it ([`inbound`]): messages
//! and edits (text, captions, photos, documents, voice, audio, video, video
//! notes, stickers), button presses and reactions, each with its chat,
//! sender, reply-to and whether it addresses the bot ([`mention`]). The cursor
//! it returns is the next offset; the host stores it with the events and only
//! then asks for more, which is what confirms the updates to Telegram.
//!
//! **Outbound** ([`outbound`]): `sendMessage` (reply-to, MarkdownV2 or HTML,
//! inline keyboards), photos and documents as multipart uploads,
//! `editMessageText`, `setMessageReaction` (Telegram's emoji list,
//! [`reactions`]), `sendChatAction`, and `getFile` plus the download for
//! attachments. At start it learns its own name with `getMe` and registers
//! `/start`, `/help` and `/status` with `setMyCommands`.
//!
//! **Never the token.** Requests go to `{api_base}/{method}` and
//! `{api_base}/file/{path}`; the host inserts the token into the path on the
//! way out (see `telegram.toml`) and scrubs it from every answer.
//!
//! Settings ([`Settings`]; any other key is refused at start):
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `api_base` | Bot API base URL (a local fake, a proxy); needs the matching grant, see the README | `https://api.telegram.org` |
//! | `mention_pattern` | case-insensitive regex; a group message matching it addresses the bot | none |
//! | `poll_timeout_s` | long-poll timeout, 1–50 seconds | 30 |

pub mod api;
/// The fuzz target's check (`fuzz/`); native builds only.
#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod inbound;
pub mod mention;
pub mod outbound;
pub mod reactions;
pub mod update;

use airlock_guest::settings::HttpUrl;
use airlock_guest::types::{
    AdapterError, AttachmentData, AttachmentRequest, ChunkMode, Description, EditRequest,
    EventBatch, Features, HttpRequest, HttpResponse, Limits, OutboundMessage, ReactRequest, Sent,
};
use airlock_guest::{Adapter, log};
use regex_lite::Regex;
use serde::Deserialize;
use serde_json::json;

use api::{Api, ApiFailure, DEFAULT_API_BASE};
use mention::BotIdentity;

/// Default long-poll timeout, seconds.
const DEFAULT_POLL_TIMEOUT_S: u32 = 30;
/// Update kinds asked for.
const ALLOWED_UPDATES: &[&str] = &[
    "message",
    "edited_message",
    "callback_query",
    "message_reaction",
];
/// Skipped-update lines logged per answer (the rest are counted).
const MAX_SKIP_LINES: usize = 20;
/// The operator's settings, as the module docs list them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Bot API base URL.
    pub api_base: Option<HttpUrl>,
    /// Case-insensitive regex; a group message matching it addresses the bot.
    pub mention_pattern: Option<String>,
    /// Long-poll timeout, 1–50 seconds.
    pub poll_timeout_s: Option<u32>,
}

/// The adapter: what one started instance knows.
pub struct Telegram {
    api: Api,
    bot: Option<BotIdentity>,
    pattern: Option<Regex>,
    poll_timeout_s: u32,
    commands_registered: bool,
}

impl Adapter for Telegram {
    type Settings = Settings;

    fn describe() -> Description {
        Description {
            platform: "telegram".into(),
            limits: Limits {
                max_text_len: 4096,
                chunk_mode: ChunkMode::Newline,
                max_files: 10,
                max_file_bytes: 50 << 20,
            },
            features: Features::REACT
                | Features::EDIT
                | Features::TYPING
                | Features::DOWNLOAD
                | Features::BUTTONS
                | Features::FILES,
            instructions: vec![
                "Telegram chat ids look like telegram:111 (a direct chat) or telegram:-1001234567890 (a group)."
                    .into(),
                "format markdown means Telegram MarkdownV2: escape _ * [ ] ( ) ~ ` > # + - = | { } . ! with a backslash; html allows <b>, <i>, <code>, <pre>, <a href>."
                    .into(),
                "react only with Telegram's emoji list, e.g. 👍 👎 ❤ 🔥 🎉 👀 🙏 👌 💯 🤔."
                    .into(),
                "The Bot API keeps no history for bots: you see messages only as they arrive. Files up to 20 MB can be fetched with download_attachment."
                    .into(),
            ],
        }
    }

    fn start(settings: Settings) -> Result<Self, AdapterError> {
        let base = settings
            .api_base
            .as_ref()
            .map_or(DEFAULT_API_BASE, HttpUrl::as_str);
        let pattern =
            airlock_guest::settings::mention_pattern(settings.mention_pattern.as_deref())?;
        let poll_timeout_s = match settings.poll_timeout_s {
            None => DEFAULT_POLL_TIMEOUT_S,
            Some(t @ 1..=50) => t,
            Some(t) => {
                return Err(AdapterError::Fatal(format!(
                    "setting `poll_timeout_s` must be a number of seconds from 1 to 50, not {t}"
                )));
            }
        };
        let mut adapter = Telegram {
            api: Api::new(base),
            bot: None,
            pattern,
            poll_timeout_s,
            commands_registered: false,
        };
        // Without an answer the adapter still starts: a dead network at start
        // must not disable it; the identity is fetched again on the next poll.
        if let Err(e) = adapter.learn_identity() {
            if matches!(e, AdapterError::Fatal(_)) {
                return Err(e);
            }
            log::warn(format!(
                "cannot reach Telegram yet, will retry: {}",
                e.text()
            ));
        }
        Ok(adapter)
    }

    fn poll_request(&mut self, cursor: Option<String>) -> Option<HttpRequest> {
        let mut params = json!({
            "timeout": self.poll_timeout_s,
            "allowed_updates": ALLOWED_UPDATES,
        });
        if let Some(offset) = cursor.and_then(|c| c.parse::<i64>().ok()) {
            params["offset"] = json!(offset);
        }
        Some(HttpRequest {
            method: "POST".into(),
            url: self.api.method_url("getUpdates"),
            headers: vec![("content-type".into(), "application/json".into())],
            body: params.to_string().into_bytes(),
            timeout_ms: (self.poll_timeout_s + 15) * 1000,
        })
    }

    fn on_poll_response(&mut self, response: HttpResponse) -> Result<EventBatch, AdapterError> {
        if self.bot.is_none() {
            // A group mention needs the bot's name; a failure here is
            // not the poll's failure.
            if let Err(e) = self.learn_identity() {
                log::warn(format!("getMe failed, will retry: {}", e.text()));
            }
        }
        let ctx = inbound::Context {
            bot: self.bot.as_ref(),
            pattern: self.pattern.as_ref(),
        };
        let decoded =
            inbound::decode_updates(response.status, &response.headers, &response.body, &ctx)
                .map_err(ApiFailure::into_error)?;
        for line in decoded.skipped.iter().take(MAX_SKIP_LINES) {
            log::warn(line);
        }
        if decoded.skipped.len() > MAX_SKIP_LINES {
            log::warn(format!(
                "{} more updates skipped in this batch",
                decoded.skipped.len() - MAX_SKIP_LINES
            ));
        }
        for id in &decoded.callbacks {
            if let Err(f) = self
                .api
                .call::<bool>("answerCallbackQuery", &json!({ "callback_query_id": id }))
            {
                log::info(format!("answerCallbackQuery failed: {}", f.description));
            }
        }
        Ok(EventBatch {
            events: decoded.events,
            cursor: decoded.next_offset.map(|o| o.to_string()),
        })
    }

    fn send(&mut self, message: OutboundMessage) -> Result<Sent, AdapterError> {
        outbound::send(&self.api, message)
    }

    fn react(&mut self, request: ReactRequest) -> Result<(), AdapterError> {
        outbound::react(&self.api, request)
    }

    fn edit(&mut self, request: EditRequest) -> Result<(), AdapterError> {
        outbound::edit(&self.api, request)
    }

    fn typing(&mut self, chat_id: String) -> Result<(), AdapterError> {
        outbound::typing(&self.api, &chat_id)
    }

    fn download_attachment(
        &mut self,
        request: AttachmentRequest,
    ) -> Result<AttachmentData, AdapterError> {
        outbound::download(&self.api, request)
    }
}

airlock_guest::export_adapter!(Telegram);

/// What `getMe` answers (the fields used).
#[derive(serde::Deserialize)]
struct Me {
    id: i64,
    #[serde(default)]
    username: Option<String>,
}

impl Telegram {
    /// `getMe`, then `setMyCommands` once.
    fn learn_identity(&mut self) -> Result<(), AdapterError> {
        let me: Me = self
            .api
            .call("getMe", &json!({}))
            .map_err(ApiFailure::into_error)?;
        self.bot = Some(BotIdentity {
            id: me.id,
            username: me.username.unwrap_or_default(),
        });
        if !self.commands_registered {
            let commands = json!({
                "commands": [
                    {"command": "start", "description": "What this bot is"},
                    {"command": "help", "description": "How to talk to the Claude Code session"},
                    {"command": "status", "description": "Whether the session is connected"},
                ],
                "scope": {"type": "all_private_chats"},
            });
            match self.api.call::<bool>("setMyCommands", &commands) {
                Ok(_) => self.commands_registered = true,
                Err(f) => log::warn(format!("setMyCommands failed: {}", f.description)),
            }
        }
        Ok(())
    }
}
