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
//! **Sending for a bot another process receives for.** When several airlock
//! processes share the bot, one of them holds the gateway; the host starts
//! the others' instances with the role [`Role::Outbound`]. Such an instance
//! asks `/users/@me` like any other, but opens no gateway connection and
//! leaves the stored gateway position alone, so it never competes with the
//! owner's session; everything outbound works, since it is all REST. When
//! the process takes the connection over, the host starts the adapter
//! again as [`Role::Owner`], and that instance connects and resumes as
//! usual.
//!
//! **Never the token.** REST requests carry no credentials; the host adds
//! `Authorization: Bot <token>` for the API's destination. Identify and
//! Resume go out with an empty `d.token`, which the host fills in on the
//! first frame of each gateway connection. The host scrubs the token from
//! everything that comes back.
//!
//! Settings ([`Settings`]; any other key is refused at start):
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `api_base` | REST base URL (a local fake, a proxy); needs the matching grant, see the README | `https://discord.com` |
//! | `gateway_url` | gateway URL, likewise | `wss://gateway.discord.gg` |
//! | `mention_pattern` | case-insensitive regex; a server message matching it addresses the bot | none |

pub mod close;
/// The fuzz target's check (`fuzz/`); native builds only.
#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod inbound;
pub mod model;
pub mod outbound;
pub mod rest;

use airlock_guest::settings::{HttpUrl, WsUrl};
use airlock_guest::types::{
    AdapterError, AttachmentData, AttachmentRequest, ChunkMode, Connection, Description,
    EditRequest, EventBatch, Features, HistoryEntry, HistoryRequest, HttpRequest, Limits,
    OutboundMessage, ReactRequest, Sent, WsEvent,
};
use airlock_guest::{Adapter, Role, clock, log, websocket};
use regex_lite::Regex;
use serde::Deserialize;
use serde_json::json;

use gateway::{Action, Gateway, HEARTBEAT_TIMER};
use inbound::{ChannelInfo, ChannelSource, Known};
use model::is_snowflake;
use rest::{DEFAULT_API_BASE, Rest};

/// The real gateway; the `gateway_url` setting replaces it.
pub const DEFAULT_GATEWAY_URL: &str = "wss://gateway.discord.gg";
/// The operator's settings, as the module docs list them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// REST base URL.
    pub api_base: Option<HttpUrl>,
    /// Gateway URL.
    pub gateway_url: Option<WsUrl>,
    /// Case-insensitive regex; a server message matching it addresses the bot.
    pub mention_pattern: Option<String>,
}

/// The adapter: what one started instance knows.
pub struct Discord {
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
    /// Whether this instance holds the gateway or only sends.
    role: Role,
}

/// What `start` asks of the host, behind a trait so that unit tests can
/// stand in for it (natively the host's imports are stubs that panic).
trait Startup {
    /// Who the bot is: `GET /users/@me`.
    fn whoami(&mut self, rest: &Rest) -> Result<model::User, AdapterError>;
    /// Opens the gateway connection of `adapter`.
    fn open_gateway(&mut self, adapter: &mut Discord) -> Result<(), AdapterError>;
    /// Logs a warning.
    fn warn(&mut self, text: String);
}

/// The real host, through the SDK's imports.
struct Host;

impl Startup for Host {
    fn whoami(&mut self, rest: &Rest) -> Result<model::User, AdapterError> {
        rest.call("GET", "/users/@me", None)
    }

    fn open_gateway(&mut self, adapter: &mut Discord) -> Result<(), AdapterError> {
        adapter.connect()
    }

    fn warn(&mut self, text: String) {
        log::warn(text);
    }
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
                log::warn(format!("cannot look up channel {id}: {}", e.text()));
                None
            }
        }
    }
}

impl Adapter for Discord {
    type Settings = Settings;

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

    fn start(settings: Settings) -> Result<Self, AdapterError> {
        Self::start_with_role(settings, Role::Owner)
    }

    /// The owner connects the gateway; an outbound instance only sends.
    fn start_with_role(settings: Settings, role: Role) -> Result<Self, AdapterError> {
        Discord::start_on(&mut Host, settings, role)
    }

    /// Not a poller: `None`. The host calls it after `start` with the last
    /// stored cursor, which is where the owner's session resumes from; an
    /// outbound instance has no session and leaves the cursor alone.
    fn poll_request(&mut self, cursor: Option<String>) -> Option<HttpRequest> {
        let cursor = cursor?;
        if self.role == Role::Outbound {
            return None;
        }
        let actions = self.gateway.learn_cursor(&cursor);
        if self.carry_out(actions).is_ok() {
            self.move_to_resume_url();
        }
        None
    }

    fn on_ws_event(
        &mut self,
        conn: Connection,
        event: WsEvent,
    ) -> Result<EventBatch, AdapterError> {
        if self.conn != Some(conn) {
            // A connection this instance already left.
            return Ok(EventBatch::empty());
        }
        let before = self.gateway.cursor();
        let actions = match event {
            WsEvent::Opened => return Ok(EventBatch::empty()),
            WsEvent::Text(text) => self.gateway.on_text(&text, clock::now_ms()),
            WsEvent::Binary(bytes) => vec![Action::Warn(format!(
                "gateway sent a binary frame of {} bytes; compression was not asked for, so it is ignored",
                bytes.len()
            ))],
            WsEvent::Closed((code, reason)) => {
                self.conn = None;
                clock::cancel_timer(HEARTBEAT_TIMER);
                self.gateway.on_closed(code, &reason)
            }
        };
        let mut batch = self.carry_out(actions)?;
        // The position moves with the batch that holds its dispatch's events.
        let after = self.gateway.cursor();
        if after != before {
            batch.cursor = after.and_then(|c| serde_json::to_string(&c).ok());
        }
        Ok(batch)
    }

    fn on_timer(&mut self, name: String) -> Result<EventBatch, AdapterError> {
        if name != HEARTBEAT_TIMER || self.conn.is_none() {
            return Ok(EventBatch::empty());
        }
        let actions = self.gateway.on_heartbeat_timer();
        self.carry_out(actions)
    }

    fn send(&mut self, message: OutboundMessage) -> Result<Sent, AdapterError> {
        outbound::send(self.rest()?, message)
    }

    fn react(&mut self, request: ReactRequest) -> Result<(), AdapterError> {
        outbound::react(self.rest()?, request)
    }

    fn edit(&mut self, request: EditRequest) -> Result<(), AdapterError> {
        outbound::edit(self.rest()?, request)
    }

    fn typing(&mut self, chat_id: String) -> Result<(), AdapterError> {
        outbound::typing(self.rest()?, &chat_id)
    }

    fn fetch_history(
        &mut self,
        request: HistoryRequest,
    ) -> Result<Vec<HistoryEntry>, AdapterError> {
        outbound::history(self.rest()?, request)
    }

    fn download_attachment(
        &mut self,
        request: AttachmentRequest,
    ) -> Result<AttachmentData, AdapterError> {
        let rest = self.rest()?;
        let cached = self.known.attachment_urls.get(&request.attachment_id);
        outbound::download(rest, cached.map(String::as_str), request)
    }
}

airlock_guest::export_adapter!(Discord);

impl Discord {
    /// Builds the instance from `settings`: asks who the bot is and, for
    /// the owner, opens the gateway; an outbound instance opens nothing.
    fn start_on(
        host: &mut impl Startup,
        settings: Settings,
        role: Role,
    ) -> Result<Self, AdapterError> {
        let api_base = settings
            .api_base
            .as_ref()
            .map_or(DEFAULT_API_BASE, HttpUrl::as_str);
        let gateway_url = settings
            .gateway_url
            .as_ref()
            .map_or(DEFAULT_GATEWAY_URL, WsUrl::as_str);
        let pattern =
            airlock_guest::settings::mention_pattern(settings.mention_pattern.as_deref())?;
        let rest = Rest::new(api_base);
        let mut known = Known::default();
        // A refused token stops here, with the fix; a dead network does not:
        // the gateway connection keeps trying, and every send tries afresh.
        match host.whoami(&rest) {
            Ok(me) => known.bot_id = Some(me.id),
            Err(e @ AdapterError::Fatal(_)) => return Err(e),
            Err(e) => host.warn(format!(
                "cannot reach Discord yet, will retry: {}",
                e.text()
            )),
        }
        let mut adapter = Discord {
            rest,
            gateway_url: gateway_url.trim_end_matches('/').to_owned(),
            gateway: Gateway::default(),
            known,
            pattern,
            conn: None,
            conn_url: String::new(),
            failed: None,
            role,
        };
        if role == Role::Owner {
            host.open_gateway(&mut adapter)?;
        }
        Ok(adapter)
    }

    /// The REST client, unless the adapter has stopped.
    fn rest(&self) -> Result<&Rest, AdapterError> {
        match &self.failed {
            Some(why) => Err(AdapterError::Fatal(why.clone())),
            None => Ok(&self.rest),
        }
    }

    /// Opens a connection to `base`, or `None` when the host does not grant it
    /// and it is not the configured gateway (a resume URL): then the configured
    /// gateway is the one to use.
    fn open(&mut self, base: &str) -> Option<Result<Connection, websocket::WsError>> {
        match websocket::connect(&format!("{base}/?v=10&encoding=json")) {
            Err(websocket::WsError::Denied(why)) if base != self.gateway_url => {
                log::info(format!(
                    "Discord's resume URL {base} is not granted to this adapter ({why}); resuming on \
                     the configured gateway {} instead",
                    self.gateway_url
                ));
                self.gateway.refuse_resume_url();
                None
            }
            other => Some(other),
        }
    }

    /// A session learned after `start` opened its connection resumes on its
    /// resume URL when that is elsewhere and granted; otherwise the connection
    /// already open is kept.
    fn move_to_resume_url(&mut self) {
        let target = self.gateway.connect_url(&self.gateway_url).to_owned();
        if target == self.conn_url || self.conn.is_none() {
            return;
        }
        match self.open(&target) {
            Some(Ok(conn)) => {
                if let Some(old) = self.conn.replace(conn) {
                    let _ = websocket::close(old, 4000, "resuming elsewhere");
                }
                self.conn_url = target;
                self.gateway.connecting();
            }
            None => {}
            Some(Err(e)) => log::warn(format!(
                "cannot open the resume URL {target} ({e:?}); resuming on the configured gateway"
            )),
        }
    }

    /// Opens a gateway connection; its frames arrive through `on_ws_event`.
    fn connect(&mut self) -> Result<(), AdapterError> {
        self.gateway.connecting();
        let mut base = self.gateway.connect_url(&self.gateway_url).to_owned();
        let opened = match self.open(&base) {
            Some(r) => r,
            None => {
                base = self.gateway_url.clone();
                websocket::connect(&format!("{base}/?v=10&encoding=json"))
            }
        };
        match opened {
            Ok(conn) => {
                self.conn = Some(conn);
                self.conn_url = base;
                Ok(())
            }
            Err(websocket::WsError::Denied(why)) => Err(self.stop(format!(
                "the gateway {} may not be reached: {why}",
                self.gateway_url
            ))),
            Err(e) => Err(AdapterError::Platform(format!(
                "cannot open the gateway connection: {e:?}"
            ))),
        }
    }

    /// Records why the adapter stopped; every later call reports it.
    fn stop(&mut self, why: String) -> AdapterError {
        self.failed = Some(why.clone());
        clock::cancel_timer(HEARTBEAT_TIMER);
        if let Some(conn) = self.conn.take() {
            let _ = websocket::close(conn, 1000, "stopping");
        }
        AdapterError::Fatal(why)
    }

    fn carry_out(&mut self, actions: Vec<Action>) -> Result<EventBatch, AdapterError> {
        let mut batch = EventBatch::empty();
        for action in actions {
            match action {
                Action::Send(frame) => {
                    let Some(conn) = self.conn else { continue };
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
                    if let Some(conn) = self.conn.take() {
                        let _ = websocket::close(conn, code, "reconnecting");
                    }
                    self.connect()?;
                }
                Action::Dispatch(t, d) => {
                    let decoded = inbound::decode(
                        &t,
                        d,
                        &mut self.known,
                        self.pattern.as_ref(),
                        &mut RestChannels(&self.rest),
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
                        if let Err(e) =
                            self.rest
                                .call_empty("POST", &path, Some(&json!({"type": 6})))
                        {
                            // The interaction's token is a credential too; keep it out of the log.
                            let text = e.text().replace(&token, "…");
                            log::warn(format!("cannot acknowledge button press {id}: {text}"));
                        }
                    }
                    batch.events.extend(decoded.events);
                }
                Action::Info(text) => log::info(text),
                Action::Warn(text) => log::warn(text),
                Action::Fatal(why) => return Err(self.stop(why)),
            }
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOT: &str = "1000000000000000001";

    /// Stands in for the host at start: answers `/users/@me` with `me` and
    /// records what the adapter asked for.
    struct FakeHost {
        me: Result<model::User, AdapterError>,
        whoami: usize,
        gateways: usize,
        warnings: Vec<String>,
    }

    impl FakeHost {
        fn answering(me: Result<model::User, AdapterError>) -> Self {
            FakeHost {
                me,
                whoami: 0,
                gateways: 0,
                warnings: Vec::new(),
            }
        }
    }

    impl Startup for FakeHost {
        fn whoami(&mut self, _: &Rest) -> Result<model::User, AdapterError> {
            self.whoami += 1;
            self.me.clone()
        }

        fn open_gateway(&mut self, adapter: &mut Discord) -> Result<(), AdapterError> {
            self.gateways += 1;
            adapter.conn = Some(7);
            Ok(())
        }

        fn warn(&mut self, text: String) {
            self.warnings.push(text);
        }
    }

    fn bot() -> model::User {
        model::User {
            id: BOT.into(),
            username: "airlock".into(),
            global_name: None,
            bot: true,
        }
    }

    fn settings() -> Settings {
        Settings {
            api_base: Some("http://127.0.0.1:9".parse().unwrap()),
            gateway_url: Some("ws://127.0.0.1:9/".parse().unwrap()),
            mention_pattern: None,
        }
    }

    #[test]
    fn an_outbound_instance_asks_who_the_bot_is_and_opens_no_gateway() {
        let mut host = FakeHost::answering(Ok(bot()));
        let mut adapter = Discord::start_on(&mut host, settings(), Role::Outbound).unwrap();
        assert_eq!((host.whoami, host.gateways), (1, 0));
        assert_eq!(adapter.known.bot_id.as_deref(), Some(BOT));
        assert!(adapter.conn.is_none());
        assert_eq!(
            adapter.rest().unwrap().url("/x"),
            "http://127.0.0.1:9/api/v10/x"
        );

        // The stored gateway position is the owner's: left alone, so no
        // resume is prepared and nothing is logged.
        let cursor = r#"{"session_id":"s","seq":42,"resume_url":"wss://elsewhere"}"#;
        assert!(adapter.poll_request(Some(cursor.into())).is_none());
        assert_eq!(adapter.gateway.connect_url("ws://g"), "ws://g");

        // Gateway callbacks meant for some other instance change nothing.
        assert!(
            adapter
                .on_timer(HEARTBEAT_TIMER.into())
                .unwrap()
                .events
                .is_empty()
        );
        assert!(
            adapter
                .on_ws_event(7, WsEvent::Text("{}".into()))
                .unwrap()
                .events
                .is_empty()
        );
        assert!(adapter.conn.is_none());
    }

    #[test]
    fn the_owner_opens_the_gateway() {
        let mut host = FakeHost::answering(Ok(bot()));
        let adapter = Discord::start_on(&mut host, settings(), Role::Owner).unwrap();
        assert_eq!((host.whoami, host.gateways), (1, 1));
        assert_eq!(adapter.conn, Some(7));
        assert_eq!(adapter.gateway_url, "ws://127.0.0.1:9");
    }

    #[test]
    fn a_refused_token_stops_either_role_and_a_dead_network_does_not() {
        for role in [Role::Owner, Role::Outbound] {
            let mut host =
                FakeHost::answering(Err(AdapterError::Fatal("401: reset the token".into())));
            let refused = Discord::start_on(&mut host, settings(), role);
            assert!(
                matches!(&refused, Err(AdapterError::Fatal(m)) if m.contains("401")),
                "{role:?}"
            );
            assert_eq!(host.gateways, 0, "{role:?}");

            let mut host = FakeHost::answering(Err(AdapterError::Platform("no route".into())));
            let adapter = Discord::start_on(&mut host, settings(), role).unwrap();
            assert!(adapter.known.bot_id.is_none());
            assert_eq!(host.warnings.len(), 1, "{role:?}");
            assert_eq!(host.gateways, usize::from(role == Role::Owner), "{role:?}");
        }
    }
}
