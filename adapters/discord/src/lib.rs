//! `discord`: Discord's gateway and REST API as an airlock adapter.
//!
//! **Inbound.** The adapter opens the gateway websocket through the host at
//! start; the host owns the socket and hands every frame to
//! [`Adapter::on_ws_event`]. The session logic (Hello, Identify, heartbeat
//! and its ACKs, Resume, Reconnect, Invalid Session, close codes) lives in
//! [`gateway`], free of I/O; dispatches are decoded in [`inbound`]: new and
//! edited messages in DMs, channels and threads, button presses (each
//! acknowledged at once) and reactions.
//!
//! **Across restarts.** Each batch carries the session's position (a
//! [`gateway::Cursor`]), which the host stores with the batch's events. The
//! host hands the last one back through `poll-request` right after `start`,
//! before the first Hello, and the adapter resumes that session: Discord
//! replays what was dispatched while no airlock was connected.
//!
//! **Outbound** ([`outbound`]): messages with reply-to, buttons and files,
//! reactions (Unicode or the server's custom emoji), edits, typing, history
//! and attachment downloads, through the REST API ([`rest`]).
//!
//! **Never the token.** REST requests carry no credentials; the host adds
//! `Authorization: Bot <token>` for the API's destination. Identify and
//! Resume go out with an empty `d.token`, which the host fills in on the
//! first frame of each gateway connection. The host scrubs the token from
//! everything that comes back.
//!
//! Settings:
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `api_base` | REST base URL (a local fake, a proxy); needs the matching grant, see the README | `https://discord.com` |
//! | `gateway_url` | gateway URL, likewise | `wss://gateway.discord.gg` |
//! | `mention_pattern` | case-insensitive regex; a server message matching it addresses the bot | none |

pub mod close;
pub mod gateway;
pub mod inbound;
pub mod model;
pub mod outbound;
pub mod rest;

use std::sync::{Mutex, MutexGuard};

use airlock_guest::types::{
    AdapterError, AttachmentData, AttachmentRequest, ChunkMode, Connection, Description,
    EditRequest, EventBatch, Features, HistoryEntry, HistoryRequest, HttpRequest, Limits,
    OutboundMessage, ReactRequest, Sent, Settings, WsEvent,
};
use airlock_guest::{Adapter, clock, log, setting, url_setting, warn_unknown_settings, websocket};
use regex_lite::Regex;
use serde_json::json;

use gateway::{Action, Gateway, HEARTBEAT_TIMER};
use inbound::{ChannelInfo, ChannelSource, Known};
use model::is_snowflake;
use rest::{DEFAULT_API_BASE, Rest};

/// The real gateway; the `gateway_url` setting replaces it.
pub const DEFAULT_GATEWAY_URL: &str = "wss://gateway.discord.gg";
/// The settings this adapter reads.
const KNOWN_SETTINGS: &[&str] = &["api_base", "gateway_url", "mention_pattern", "enabled"];

/// What one instance knows.
struct State {
    rest: Rest,
    gateway_url: String,
    gateway: Gateway,
    known: Known,
    pattern: Option<Regex>,
    /// The current gateway connection.
    conn: Option<Connection>,
    /// The URL the current connection went to.
    conn_url: String,
    /// Why the adapter stopped, when it did.
    failed: Option<String>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fn state() -> MutexGuard<'static, Option<State>> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` on the started state.
fn with_state<T>(f: impl FnOnce(&mut State) -> Result<T, AdapterError>) -> Result<T, AdapterError> {
    let mut guard = state();
    let state = guard
        .as_mut()
        .ok_or_else(|| AdapterError::Fatal("the discord adapter was not started".into()))?;
    f(state)
}

/// The REST client, unless the adapter has stopped.
fn rest() -> Result<Rest, AdapterError> {
    with_state(|s| match &s.failed {
        Some(why) => Err(AdapterError::Fatal(why.clone())),
        None => Ok(s.rest.clone()),
    })
}

/// Looks channels up over REST.
struct RestChannels<'a>(&'a Rest);

impl ChannelSource for RestChannels<'_> {
    fn fetch(&mut self, id: &str) -> Option<ChannelInfo> {
        // Ids from the gateway go into a URL path: digits only.
        if !is_snowflake(id) {
            return None;
        }
        match self
            .0
            .call::<model::Channel>("GET", &format!("/channels/{id}"), None)
        {
            Ok(c) => Some(inbound::info_of(&c)),
            Err(e) => {
                log::warn(format!("cannot look up channel {id}: {}", error_text(&e)));
                None
            }
        }
    }
}

/// The adapter.
pub struct Discord;

impl Adapter for Discord {
    fn describe() -> Description {
        Description {
            platform: "discord".into(),
            limits: Limits {
                max_text_len: 2000,
                chunk_mode: ChunkMode::Newline,
                max_files: 10,
                max_file_bytes: 25 << 20,
            },
            features: Features::REACT
                | Features::EDIT
                | Features::TYPING
                | Features::HISTORY
                | Features::DOWNLOAD
                | Features::BUTTONS
                | Features::FILES,
            instructions: vec![
                "Discord chat ids are channel ids: discord:4000000000000000001 (a DM, a server channel or a thread)."
                    .into(),
                "Discord formats markdown itself (format text or markdown; there is no html). Mention a user as <@id>; @everyone, @here and roles never ping."
                    .into(),
                "react with a Unicode emoji like 👍, or a custom emoji of that server as <:name:id>."
                    .into(),
                "Discord keeps history: fetch_messages shows recent messages of a chat, oldest first, including ones sent while this session was away."
                    .into(),
            ],
        }
    }

    fn start(settings: Settings) -> Result<(), AdapterError> {
        warn_unknown_settings(&settings, KNOWN_SETTINGS, "discord");
        let fatal = AdapterError::Fatal;
        let http = ["https://", "http://"];
        let api_base = url_setting(
            &settings,
            "api_base",
            DEFAULT_API_BASE,
            &http,
            "an http:// or https://",
        )
        .map_err(fatal)?;
        let gateway_url = url_setting(
            &settings,
            "gateway_url",
            DEFAULT_GATEWAY_URL,
            &["wss://", "ws://"],
            "a wss:// or ws://",
        )
        .map_err(fatal)?;
        let pattern = setting(&settings, "mention_pattern")
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                regex_lite::RegexBuilder::new(p)
                    .case_insensitive(true)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| {
                        AdapterError::Fatal(format!(
                            "setting `mention_pattern` is not a valid regular expression: {e}"
                        ))
                    })
            })
            .transpose()?;
        let rest = Rest::new(api_base);
        let mut known = Known::default();
        // A refused token stops here, with the fix; a dead network does not:
        // the gateway connection keeps trying.
        match rest.call::<model::User>("GET", "/users/@me", None) {
            Ok(me) => known.bot_id = Some(me.id),
            Err(e @ AdapterError::Fatal(_)) => return Err(e),
            Err(e) => log::warn(format!(
                "cannot reach Discord yet, will retry: {}",
                error_text(&e)
            )),
        }
        let mut state = State {
            rest,
            gateway_url: gateway_url.trim_end_matches('/').to_owned(),
            gateway: Gateway::default(),
            known,
            pattern,
            conn: None,
            conn_url: String::new(),
            failed: None,
        };
        connect(&mut state)?;
        *self::state() = Some(state);
        Ok(())
    }

    /// Not a poller: `None`. The host calls it after `start` with the last
    /// stored cursor, which is where the session resumes from.
    fn poll_request(cursor: Option<String>) -> Option<HttpRequest> {
        let cursor = cursor?;
        let _ = with_state(|state| {
            let actions = state.gateway.learn_cursor(&cursor);
            carry_out(state, actions)?;
            move_to_resume_url(state);
            Ok(())
        });
        None
    }

    fn on_ws_event(conn: Connection, event: WsEvent) -> Result<EventBatch, AdapterError> {
        with_state(|state| {
            if state.conn != Some(conn) {
                // A connection this instance already left.
                return Ok(empty());
            }
            let before = state.gateway.cursor();
            let actions = match event {
                WsEvent::Opened => return Ok(empty()),
                WsEvent::Text(text) => state.gateway.on_text(&text, clock::now_ms()),
                WsEvent::Binary(bytes) => vec![Action::Warn(format!(
                    "gateway sent a binary frame of {} bytes; compression was not asked for, so it is ignored",
                    bytes.len()
                ))],
                WsEvent::Closed((code, reason)) => {
                    state.conn = None;
                    clock::cancel_timer(HEARTBEAT_TIMER);
                    state.gateway.on_closed(code, &reason)
                }
            };
            let mut batch = carry_out(state, actions)?;
            // The position moves with the batch that holds its dispatch's events.
            let after = state.gateway.cursor();
            if after != before {
                batch.cursor = after.and_then(|c| serde_json::to_string(&c).ok());
            }
            Ok(batch)
        })
    }

    fn on_timer(name: String) -> Result<EventBatch, AdapterError> {
        with_state(|state| {
            if name != HEARTBEAT_TIMER || state.conn.is_none() {
                return Ok(empty());
            }
            let actions = state.gateway.on_heartbeat_timer();
            carry_out(state, actions)
        })
    }

    fn send(message: OutboundMessage) -> Result<Sent, AdapterError> {
        outbound::send(&rest()?, message)
    }

    fn react(request: ReactRequest) -> Result<(), AdapterError> {
        outbound::react(&rest()?, request)
    }

    fn edit(request: EditRequest) -> Result<(), AdapterError> {
        outbound::edit(&rest()?, request)
    }

    fn typing(chat_id: String) -> Result<(), AdapterError> {
        outbound::typing(&rest()?, &chat_id)
    }

    fn fetch_history(request: HistoryRequest) -> Result<Vec<HistoryEntry>, AdapterError> {
        outbound::history(&rest()?, request)
    }

    fn download_attachment(request: AttachmentRequest) -> Result<AttachmentData, AdapterError> {
        let rest = rest()?;
        let cached =
            with_state(|s| Ok(s.known.attachment_urls.get(&request.attachment_id).cloned()))?;
        outbound::download(&rest, cached.as_deref(), request)
    }
}

airlock_guest::export_adapter!(Discord);

fn empty() -> EventBatch {
    EventBatch {
        events: Vec::new(),
        cursor: None,
    }
}

/// Opens a connection to `base`, or `None` when the host does not grant it
/// and it is not the configured gateway (a resume URL): then the configured
/// gateway is the one to use.
fn open(state: &mut State, base: &str) -> Option<Result<Connection, websocket::WsError>> {
    match websocket::connect(&format!("{base}/?v=10&encoding=json")) {
        Err(websocket::WsError::Denied(why)) if base != state.gateway_url => {
            log::info(format!(
                "Discord's resume URL {base} is not granted to this adapter ({why}); resuming on \
                 the configured gateway {} instead",
                state.gateway_url
            ));
            state.gateway.refuse_resume_url();
            None
        }
        other => Some(other),
    }
}

/// A session learned after `start` opened its connection resumes on its
/// resume URL when that is elsewhere and granted; otherwise the connection
/// already open is kept.
fn move_to_resume_url(state: &mut State) {
    let target = state.gateway.connect_url(&state.gateway_url).to_owned();
    if target == state.conn_url || state.conn.is_none() {
        return;
    }
    match open(state, &target) {
        Some(Ok(conn)) => {
            if let Some(old) = state.conn.replace(conn) {
                let _ = websocket::close(old, 4000, "resuming elsewhere");
            }
            state.conn_url = target;
            state.gateway.connecting();
        }
        None => {}
        Some(Err(e)) => log::warn(format!(
            "cannot open the resume URL {target} ({e:?}); resuming on the configured gateway"
        )),
    }
}

/// Opens a gateway connection; its frames arrive through `on_ws_event`.
fn connect(state: &mut State) -> Result<(), AdapterError> {
    state.gateway.connecting();
    let mut base = state.gateway.connect_url(&state.gateway_url).to_owned();
    let opened = match open(state, &base) {
        Some(r) => r,
        None => {
            base = state.gateway_url.clone();
            websocket::connect(&format!("{base}/?v=10&encoding=json"))
        }
    };
    match opened {
        Ok(conn) => {
            state.conn = Some(conn);
            state.conn_url = base;
            Ok(())
        }
        Err(websocket::WsError::Denied(why)) => Err(stop(
            state,
            format!(
                "the gateway {} may not be reached: {why}",
                state.gateway_url
            ),
        )),
        Err(e) => Err(AdapterError::Platform(format!(
            "cannot open the gateway connection: {e:?}"
        ))),
    }
}

/// Records why the adapter stopped; every later call reports it.
fn stop(state: &mut State, why: String) -> AdapterError {
    state.failed = Some(why.clone());
    clock::cancel_timer(HEARTBEAT_TIMER);
    if let Some(conn) = state.conn.take() {
        let _ = websocket::close(conn, 1000, "stopping");
    }
    AdapterError::Fatal(why)
}

fn carry_out(state: &mut State, actions: Vec<Action>) -> Result<EventBatch, AdapterError> {
    let mut batch = empty();
    for action in actions {
        match action {
            Action::Send(frame) => {
                let Some(conn) = state.conn else { continue };
                if !Gateway::fits(&frame) {
                    log::warn("a gateway frame over 4096 bytes was not sent");
                    continue;
                }
                if let Err(e) = websocket::send_text(conn, &frame) {
                    log::warn(format!("cannot send on the gateway connection: {e:?}"));
                }
            }
            Action::ArmHeartbeat(ms) => clock::set_timer(HEARTBEAT_TIMER, ms),
            Action::Reconnect { code, why } => {
                log::warn(&why);
                clock::cancel_timer(HEARTBEAT_TIMER);
                if let Some(conn) = state.conn.take() {
                    let _ = websocket::close(conn, code, "reconnecting");
                }
                connect(state)?;
            }
            Action::Dispatch(t, d) => {
                let decoded = inbound::decode(
                    &t,
                    d,
                    &mut state.known,
                    state.pattern.as_ref(),
                    &mut RestChannels(&state.rest),
                );
                if let Some(why) = decoded.skipped {
                    log::warn(why);
                }
                for (id, token) in decoded.acks {
                    let token_ok = !token.is_empty()
                        && token.len() <= 512
                        && token
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
                    if !is_snowflake(&id) || !token_ok {
                        log::warn(
                            "a button press with a malformed id or token was not acknowledged",
                        );
                        continue;
                    }
                    // A deferred update: acknowledged, the message unchanged.
                    let path = format!("/interactions/{id}/{token}/callback");
                    if let Err(e) = state
                        .rest
                        .call_empty("POST", &path, Some(&json!({"type": 6})))
                    {
                        // The interaction's token is a credential too; keep it out of the log.
                        let text = error_text(&e).replace(&token, "…");
                        log::warn(format!("cannot acknowledge button press {id}: {text}"));
                    }
                }
                batch.events.extend(decoded.events);
            }
            Action::Info(text) => log::info(text),
            Action::Warn(text) => log::warn(text),
            Action::Fatal(why) => return Err(stop(state, why)),
        }
    }
    Ok(batch)
}

fn error_text(e: &AdapterError) -> String {
    match e {
        AdapterError::Unsupported(m)
        | AdapterError::InvalidInput(m)
        | AdapterError::Platform(m)
        | AdapterError::Fatal(m) => m.clone(),
        AdapterError::RateLimited(ms) => format!("rate limited for {ms} ms"),
    }
}
