//! The gateway v10 session as a state machine, free of I/O so it can be
//! tested frame by frame.
//!
//! The host owns the socket and the timers; [`Gateway`] only decides. Each
//! input (a frame, the heartbeat timer, a close) yields [`Action`]s that
//! `lib.rs` carries out: send a frame, arm the heartbeat, reconnect, hand a
//! dispatch to the decoder, or stop.
//!
//! - **Hello** arms the heartbeat and answers with Identify, or with Resume
//!   when a session is known. Identify and Resume are the first frame of
//!   their connection, which is where the host puts the token.
//! - **Heartbeat** carries the last sequence number; when the next one is
//!   due and the previous was not acknowledged, the connection is a zombie:
//!   close it and resume on a new one.
//! - **Reconnect** (op 7) and resumable **Invalid Session** (op 9 `true`):
//!   resume on a new connection. Op 9 `false` forgets the session and
//!   identifies again on a new one.
//! - **Close codes** are judged by [`crate::close::judge`].
//!
//! **Across restarts.** Every batch of events goes back to the host with a
//! [`Cursor`] (session id, the sequence number of the dispatch the batch
//! holds, resume URL), which the host stores in the same transaction as the
//! events. A new process gets the last stored one before its first Hello
//! ([`Gateway::learn_cursor`]) and resumes that session, so Discord replays
//! what was dispatched while no airlock was connected. The cursor never runs
//! ahead of stored events: it moves with the batch that holds the dispatch's
//! events (dispatches without events move it too; there is nothing of them
//! to lose). When Discord no longer knows the session (expired, invalidated)
//! the adapter identifies afresh and says once that messages sent meanwhile
//! may be missed.
//!
//! A session id is kept only when a stored cursor can carry it (see
//! [`Cursor`]): READY with any other is served, but its session is not
//! resumed (after a disconnect the adapter identifies afresh, and says so
//! at READY), so a stored cursor always reads back as itself.
//!
//! A resume goes to READY's `resume_gateway_url` when the host lets the
//! adapter reach it, else to the configured gateway URL (a resume works there
//! too), so the manifest's one websocket destination is enough.

use airlock_guest::text::one_line;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::close::{self, Verdict};

/// What the gateway is asked to send: guilds, guild and direct messages and
/// their reactions, and message content (privileged: enable it in the
/// Developer Portal).
pub const INTENTS: u64 = 1 // GUILDS
    | (1 << 9) // GUILD_MESSAGES
    | (1 << 10) // GUILD_MESSAGE_REACTIONS
    | (1 << 12) // DIRECT_MESSAGES
    | (1 << 13) // DIRECT_MESSAGE_REACTIONS
    | (1 << 15); // MESSAGE_CONTENT

/// The heartbeat timer's name.
pub const HEARTBEAT_TIMER: &str = "heartbeat";

/// Largest frame this adapter sends (the gateway closes on more than 4096 bytes).
const MAX_SEND: usize = 4096;
/// Characters of a peer's text quoted in a log line.
const EXCERPT_CHARS: usize = 200;

/// Something to do after an input.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this text frame on the current connection.
    Send(String),
    /// Fire the heartbeat timer after this many milliseconds.
    ArmHeartbeat(u64),
    /// Close the current connection (if any) and open a new one.
    Reconnect {
        /// Close code for the old connection; 4000 keeps the session resumable.
        code: u16,
        /// Why, for the log.
        why: String,
    },
    /// A dispatch for the decoder: event name and payload.
    Dispatch(String, Value),
    /// Log this at info level.
    Info(String),
    /// Log this at warn level.
    Warn(String),
    /// Stop: nothing will work until the operator acts on this text.
    Fatal(String),
}

/// Longest resume URL kept (Discord's are about 40 bytes).
const MAX_RESUME_URL: usize = 512;
/// Longest session id kept (Discord's are 32 hex digits).
const MAX_SESSION_ID: usize = 128;

/// Where a session can be resumed: what the host stores with each batch, as
/// JSON (`{"session_id":…,"seq":…,"resume_url":…}`).
///
/// A session id is 1 to [`MAX_SESSION_ID`] printable ASCII characters
/// other than space (Discord's are hex digits), both when READY gives one
/// and when a stored cursor is read, so every cursor the gateway hands out
/// reads back as itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// The session's id, from READY.
    pub session_id: String,
    /// The sequence number of the last dispatch handled.
    pub seq: u64,
    /// READY's `resume_gateway_url`, when it gave a usable one.
    #[serde(default)]
    pub resume_url: Option<String>,
}

impl Cursor {
    /// Parses a stored cursor; `None` for text this adapter did not write
    /// (or that was tampered with). An unusable resume URL is dropped.
    pub fn parse(text: &str) -> Option<Cursor> {
        let mut cursor: Cursor = serde_json::from_str(text).ok()?;
        if !session_id_ok(&cursor.session_id) {
            return None;
        }
        cursor.resume_url = cursor.resume_url.as_deref().and_then(resume_url_of);
        Some(cursor)
    }
}

/// Whether `id` is a session id this adapter keeps (see [`Cursor`]).
fn session_id_ok(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_SESSION_ID && id.bytes().all(|b| b.is_ascii_graphic())
}

/// A resume URL as this adapter connects to it: `ws://` or `wss://`, no
/// path, query or odd characters (the adapter appends its own query), no
/// trailing slash.
fn resume_url_of(url: &str) -> Option<String> {
    let url = url.trim_end_matches('/');
    let rest = url
        .strip_prefix("wss://")
        .or_else(|| url.strip_prefix("ws://"))?;
    let ok = !rest.is_empty()
        && url.len() <= MAX_RESUME_URL
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    ok.then(|| url.to_owned())
}

/// A gateway payload as received.
#[derive(Debug, Deserialize)]
struct Frame {
    op: i64,
    #[serde(default)]
    d: Value,
    #[serde(default)]
    s: Option<u64>,
    #[serde(default)]
    t: Option<String>,
}

/// The session's state between frames.
#[derive(Debug, Default)]
pub struct Gateway {
    /// Session id from READY, kept for Resume.
    session_id: Option<String>,
    /// Last dispatch sequence number.
    seq: Option<u64>,
    /// Heartbeat interval from Hello.
    interval_ms: Option<u64>,
    /// A heartbeat was sent and its ACK has not come.
    awaiting_ack: bool,
    /// Identify or Resume went out on the current connection.
    handshake_sent: bool,
    /// READY or RESUMED arrived on the current connection.
    live: bool,
    /// READY's resume URL, or the stored one.
    resume_url: Option<String>,
    /// The host would not let the adapter reach a resume URL: resume on the
    /// configured gateway from now on.
    resume_url_refused: bool,
    /// The session came from a stored cursor and has not resumed yet.
    restored: bool,
    /// The bot's user id, from READY.
    pub bot_id: Option<String>,
    /// The bot's username, from READY.
    pub bot_name: Option<String>,
}

impl Gateway {
    /// A new connection is about to open: forget what belonged to the old one
    /// (and, without a session to resume, its sequence: the next one starts
    /// its own).
    pub fn connecting(&mut self) {
        if self.session_id.is_none() {
            self.seq = None;
        }
        self.awaiting_ack = false;
        self.handshake_sent = false;
        self.live = false;
        self.interval_ms = None;
    }

    /// Where the session stands, for the host to store with the batch of the
    /// dispatch just handled; `None` before READY (or a stored cursor).
    pub fn cursor(&self) -> Option<Cursor> {
        Some(Cursor {
            session_id: self.session_id.clone()?,
            seq: self.seq?,
            resume_url: self.resume_url.clone(),
        })
    }

    /// The cursor the host stored last, handed over before the first Hello:
    /// the handshake will be a Resume of that session. Ignored once a
    /// session is known or a handshake went out (a later call is not news).
    pub fn learn_cursor(&mut self, text: &str) -> Vec<Action> {
        if self.session_id.is_some() || self.handshake_sent {
            return Vec::new();
        }
        let Some(cursor) = Cursor::parse(text) else {
            return vec![Action::Warn(format!(
                "the stored gateway position is not one this adapter wrote ({}); identifying \
                 afresh, so messages sent while airlock was away may be missed (fetch_messages \
                 shows a chat's recent history)",
                one_line(text, EXCERPT_CHARS)
            ))];
        };
        self.session_id = Some(cursor.session_id);
        self.seq = Some(cursor.seq);
        self.resume_url = cursor.resume_url;
        self.restored = true;
        vec![Action::Info(format!(
            "resuming the Discord gateway session this airlock left at sequence {}",
            cursor.seq
        ))]
    }

    /// The URL the next connection goes to: the resume URL when a session is
    /// known and the host allows it, else `configured`.
    pub fn connect_url<'a>(&'a self, configured: &'a str) -> &'a str {
        match (&self.session_id, &self.resume_url) {
            (Some(_), Some(url)) if !self.resume_url_refused => url,
            _ => configured,
        }
    }

    /// The host refused the resume URL: use the configured gateway.
    pub fn refuse_resume_url(&mut self) {
        self.resume_url_refused = true;
    }

    /// Whether READY or RESUMED arrived on the current connection.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// A text frame from the gateway.
    pub fn on_text(&mut self, text: &str, now_ms: u64) -> Vec<Action> {
        let frame: Frame = match serde_json::from_str(text) {
            Ok(f) => f,
            Err(e) => {
                return vec![Action::Warn(format!(
                    "gateway frame skipped: not a gateway payload ({e}): {}",
                    one_line(text, EXCERPT_CHARS)
                ))];
            }
        };
        match frame.op {
            0 => self.on_dispatch(frame),
            1 => vec![self.heartbeat()],
            7 => vec![Action::Reconnect {
                code: 4000,
                why: "the gateway asked to reconnect (op 7)".into(),
            }],
            9 => {
                if frame.d.as_bool() == Some(true) {
                    vec![Action::Reconnect {
                        code: 4000,
                        why: "invalid session (resumable): resuming on a new connection".into(),
                    }]
                } else {
                    let mut out: Vec<Action> = self.forget_session().into_iter().collect();
                    out.push(Action::Reconnect {
                        code: 4000,
                        why: "invalid session: identifying again on a new connection".into(),
                    });
                    out
                }
            }
            10 => self.on_hello(&frame.d, now_ms),
            11 => {
                self.awaiting_ack = false;
                Vec::new()
            }
            op => vec![Action::Warn(format!(
                "gateway opcode {op} is not one this adapter knows; ignored"
            ))],
        }
    }

    fn on_hello(&mut self, d: &Value, now_ms: u64) -> Vec<Action> {
        let Some(interval) = d
            .get("heartbeat_interval")
            .and_then(Value::as_u64)
            .filter(|i| (100..=600_000).contains(i))
        else {
            return vec![Action::Reconnect {
                code: 4000,
                why: format!(
                    "Hello without a usable heartbeat_interval: {}",
                    one_line(&d.to_string(), EXCERPT_CHARS)
                ),
            }];
        };
        self.interval_ms = Some(interval);
        self.awaiting_ack = false;
        let mut out = Vec::new();
        // The first beat comes after a random part of the interval, so many
        // clients that reconnect together do not beat together.
        out.push(Action::ArmHeartbeat(interval * (now_ms % 1000) / 1000 + 1));
        if !self.handshake_sent {
            self.handshake_sent = true;
            out.push(Action::Send(self.handshake()));
        }
        out
    }

    /// Identify, or Resume when a session is known. The token field is left
    /// empty: the host fills it in on the way out.
    fn handshake(&self) -> String {
        match (&self.session_id, self.seq) {
            (Some(id), Some(seq)) => json!({
                "op": 6,
                "d": {"token": "", "session_id": id, "seq": seq},
            }),
            _ => json!({
                "op": 2,
                "d": {
                    "token": "",
                    "intents": INTENTS,
                    "properties": {"os": "wasi", "browser": "airlock", "device": "airlock"},
                },
            }),
        }
        .to_string()
    }

    fn on_dispatch(&mut self, frame: Frame) -> Vec<Action> {
        if let Some(s) = frame.s {
            self.seq = Some(self.seq.map_or(s, |old| old.max(s)));
        }
        let Some(t) = frame.t else {
            return vec![Action::Warn(
                "gateway dispatch without an event name; skipped".into(),
            )];
        };
        match t.as_str() {
            "READY" => {
                let session = frame.d.get("session_id").and_then(Value::as_str);
                let user = frame.d.get("user");
                let id = user.and_then(|u| u.get("id")).and_then(Value::as_str);
                let Some(session) = session else {
                    return vec![Action::Warn("READY without session_id; skipped".into())];
                };
                let mut out = Vec::new();
                self.restored = false;
                if session_id_ok(session) {
                    self.session_id = Some(session.to_owned());
                    if let Some(url) = frame
                        .d
                        .get("resume_gateway_url")
                        .and_then(Value::as_str)
                        .and_then(resume_url_of)
                    {
                        self.resume_url = Some(url);
                    }
                } else {
                    // Served, but not resumed: a stored cursor could not
                    // carry this id back after a restart.
                    self.session_id = None;
                    self.resume_url = None;
                    out.push(Action::Warn(format!(
                        "READY gave a session_id this adapter cannot store ({}; Discord's are hex \
                         digits): this connection works, but after a disconnect or restart the \
                         adapter identifies afresh, so messages sent meanwhile may be missed \
                         (fetch_messages shows a chat's recent history)",
                        one_line(session, EXCERPT_CHARS)
                    )));
                }
                self.bot_id = id.map(str::to_owned);
                self.bot_name = user
                    .and_then(|u| u.get("username"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                self.live = true;
                out.push(Action::Info(format!(
                    "connected to the Discord gateway as {} ({})",
                    self.bot_name.as_deref().unwrap_or("?"),
                    self.bot_id.as_deref().unwrap_or("?")
                )));
                out.push(Action::Dispatch(t, frame.d));
                out
            }
            "RESUMED" => {
                self.live = true;
                self.restored = false;
                vec![Action::Info(format!(
                    "resumed the Discord gateway session at sequence {}",
                    self.seq.unwrap_or(0)
                ))]
            }
            _ => vec![Action::Dispatch(t, frame.d)],
        }
    }

    /// The heartbeat timer fired.
    pub fn on_heartbeat_timer(&mut self) -> Vec<Action> {
        let Some(interval) = self.interval_ms else {
            return Vec::new();
        };
        if self.awaiting_ack {
            return vec![Action::Reconnect {
                code: 4000,
                why: "no heartbeat ACK since the last heartbeat: the connection is dead; resuming \
                      on a new one"
                    .into(),
            }];
        }
        self.awaiting_ack = true;
        vec![self.heartbeat(), Action::ArmHeartbeat(interval)]
    }

    fn heartbeat(&self) -> Action {
        Action::Send(json!({"op": 1, "d": self.seq}).to_string())
    }

    /// The current connection closed with `code`.
    pub fn on_closed(&mut self, code: u16, reason: &str) -> Vec<Action> {
        match close::judge(code) {
            Verdict::Resume => vec![Action::Reconnect {
                code: 1000,
                why: format!(
                    "gateway connection closed ({code}{}); resuming",
                    reason_text(reason)
                ),
            }],
            Verdict::Identify => {
                let mut out: Vec<Action> = self.forget_session().into_iter().collect();
                out.push(Action::Reconnect {
                    code: 1000,
                    why: format!(
                        "gateway closed the session ({code}{}); identifying again",
                        reason_text(reason)
                    ),
                });
                out
            }
            Verdict::Fatal(fix) => vec![Action::Fatal(format!(
                "the Discord gateway refused this bot ({code}{}): {fix}",
                reason_text(reason)
            ))],
        }
    }

    /// Drops the session; when it was the one a previous process left, says
    /// (once) what that costs.
    fn forget_session(&mut self) -> Option<Action> {
        self.session_id = None;
        self.seq = None;
        self.resume_url = None;
        std::mem::take(&mut self.restored).then(|| {
            Action::Warn(
                "Discord would not resume the session the previous airlock left (it expired or \
                 was invalidated): identifying afresh. Messages sent while airlock was away may \
                 be missed; fetch_messages shows a chat's recent history, including them"
                    .into(),
            )
        })
    }

    /// Whether a frame may be sent (the gateway's cap).
    pub fn fits(frame: &str) -> bool {
        frame.len() <= MAX_SEND
    }
}

fn reason_text(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(" {}", one_line(reason, EXCERPT_CHARS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(gw: &mut Gateway) -> Vec<Action> {
        gw.on_text(r#"{"op":10,"d":{"heartbeat_interval":1000}}"#, 500)
    }

    fn ready(gw: &mut Gateway) {
        let out = gw.on_text(
            r#"{"op":0,"s":1,"t":"READY","d":{"v":10,"session_id":"abc","user":{"id":"42","username":"bot"}}}"#,
            0,
        );
        assert!(matches!(out.last(), Some(Action::Dispatch(t, _)) if t == "READY"));
    }

    fn sent(actions: &[Action]) -> Vec<Value> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(s) => Some(serde_json::from_str(s).unwrap()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn hello_arms_the_heartbeat_and_identifies_with_an_empty_token() {
        let mut gw = Gateway::default();
        let out = hello(&mut gw);
        assert_eq!(out[0], Action::ArmHeartbeat(501));
        let identify = &sent(&out)[0];
        assert_eq!(identify["op"], 2);
        assert_eq!(identify["d"]["token"], "");
        assert_eq!(identify["d"]["intents"], 46593);
        // A second Hello on the same connection does not identify twice.
        assert!(sent(&hello(&mut gw)).is_empty());
    }

    #[test]
    fn after_ready_a_new_connection_resumes_from_the_last_sequence() {
        let mut gw = Gateway::default();
        hello(&mut gw);
        ready(&mut gw);
        assert!(gw.is_live());
        gw.on_text(r#"{"op":0,"s":7,"t":"MESSAGE_CREATE","d":{}}"#, 0);
        gw.connecting();
        assert!(!gw.is_live());
        let resume = &sent(&hello(&mut gw))[0];
        assert_eq!(resume["op"], 6);
        assert_eq!(resume["d"]["session_id"], "abc");
        assert_eq!(resume["d"]["seq"], 7);
        assert_eq!(resume["d"]["token"], "");
    }

    #[test]
    fn heartbeats_carry_the_sequence_and_a_missing_ack_reconnects() {
        let mut gw = Gateway::default();
        hello(&mut gw);
        ready(&mut gw);
        let beat = gw.on_heartbeat_timer();
        assert_eq!(sent(&beat)[0], json!({"op": 1, "d": 1}));
        assert_eq!(beat[1], Action::ArmHeartbeat(1000));
        gw.on_text(r#"{"op":11}"#, 0);
        assert_eq!(sent(&gw.on_heartbeat_timer()).len(), 1);
        // No ACK this time: a zombie.
        let out = gw.on_heartbeat_timer();
        assert!(
            matches!(&out[0], Action::Reconnect { code: 4000, .. }),
            "{out:?}"
        );
    }

    #[test]
    fn the_server_may_ask_for_a_heartbeat() {
        let mut gw = Gateway::default();
        assert_eq!(
            sent(&gw.on_text(r#"{"op":1,"d":null}"#, 0))[0],
            json!({"op":1,"d":null})
        );
    }

    #[test]
    fn reconnect_and_invalid_session() {
        let mut gw = Gateway::default();
        hello(&mut gw);
        ready(&mut gw);
        assert!(matches!(
            gw.on_text(r#"{"op":7,"d":null}"#, 0)[0],
            Action::Reconnect { .. }
        ));
        // Resumable: the session is kept.
        gw.on_text(r#"{"op":9,"d":true}"#, 0);
        gw.connecting();
        assert_eq!(sent(&hello(&mut gw))[0]["op"], 6);
        // Not resumable: identify afresh.
        gw.on_text(r#"{"op":9,"d":false}"#, 0);
        gw.connecting();
        assert_eq!(sent(&hello(&mut gw))[0]["op"], 2);
    }

    #[test]
    fn close_codes_resume_identify_or_stop() {
        let mut gw = Gateway::default();
        hello(&mut gw);
        ready(&mut gw);
        assert!(matches!(
            gw.on_closed(1006, "")[0],
            Action::Reconnect { .. }
        ));
        gw.connecting();
        assert_eq!(sent(&hello(&mut gw))[0]["op"], 6);
        assert!(matches!(
            gw.on_closed(4009, "Session timed out")[0],
            Action::Reconnect { .. }
        ));
        gw.connecting();
        assert_eq!(sent(&hello(&mut gw))[0]["op"], 2);
        match &gw.on_closed(4004, "Authentication failed.")[0] {
            Action::Fatal(text) => assert!(text.contains("Reset Token"), "{text}"),
            other => panic!("{other:?}"),
        }
        match &gw.on_closed(4014, "")[0] {
            Action::Fatal(text) => assert!(text.contains("Message Content Intent"), "{text}"),
            other => panic!("{other:?}"),
        }
    }

    const STORED: &str =
        r#"{"session_id":"abc","seq":41,"resume_url":"wss://gateway-us-east1-b.discord.gg"}"#;

    fn warned(actions: &[Action]) -> Vec<&str> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Warn(w) => Some(w.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_cursor_follows_each_dispatch_and_round_trips() {
        let mut gw = Gateway::default();
        assert_eq!(gw.cursor(), None, "nothing to store before READY");
        hello(&mut gw);
        gw.on_text(
            r#"{"op":0,"s":1,"t":"READY","d":{"session_id":"abc","resume_gateway_url":"wss://r.discord.gg/","user":{"id":"42"}}}"#,
            0,
        );
        let ready = gw.cursor().unwrap();
        assert_eq!(
            (
                ready.session_id.as_str(),
                ready.seq,
                ready.resume_url.as_deref()
            ),
            ("abc", 1, Some("wss://r.discord.gg"))
        );
        gw.on_text(r#"{"op":0,"s":2,"t":"MESSAGE_CREATE","d":{}}"#, 0);
        let text = serde_json::to_string(&gw.cursor().unwrap()).unwrap();
        assert_eq!(
            text,
            r#"{"session_id":"abc","seq":2,"resume_url":"wss://r.discord.gg"}"#
        );
        assert_eq!(Cursor::parse(&text), gw.cursor());
        // A heartbeat ACK is no dispatch: the position stays.
        gw.on_text(r#"{"op":11}"#, 0);
        assert_eq!(gw.cursor().unwrap().seq, 2);
    }

    #[test]
    fn stored_cursors_are_checked() {
        // (stored text, accepted session, kept resume URL)
        let rows: &[(&str, Option<&str>, Option<&str>)] = &[
            (
                STORED,
                Some("abc"),
                Some("wss://gateway-us-east1-b.discord.gg"),
            ),
            (r#"{"session_id":"abc","seq":3}"#, Some("abc"), None),
            (
                r#"{"session_id":"abc","seq":3,"resume_url":null}"#,
                Some("abc"),
                None,
            ),
            (
                r#"{"session_id":"abc","seq":3,"resume_url":"https://x"}"#,
                Some("abc"),
                None,
            ),
            (
                r#"{"session_id":"abc","seq":3,"resume_url":"wss://x/p?q"}"#,
                Some("abc"),
                None,
            ),
            (
                r#"{"session_id":"abc","seq":3,"resume_url":"ws://127.0.0.1:9/"}"#,
                Some("abc"),
                Some("ws://127.0.0.1:9"),
            ),
            (r#"{"session_id":"","seq":3}"#, None, None),
            (r#"{"session_id":"a b","seq":3}"#, None, None),
            (r#"{"session_id":"abc","seq":-1}"#, None, None),
            (r#"{"session_id":"abc"}"#, None, None),
            ("17", None, None),
            ("", None, None),
        ];
        for (text, session, url) in rows {
            let parsed = Cursor::parse(text);
            assert_eq!(
                parsed.as_ref().map(|c| c.session_id.as_str()),
                *session,
                "{text}"
            );
            assert_eq!(parsed.and_then(|c| c.resume_url).as_deref(), *url, "{text}");
        }
        let long = format!(r#"{{"session_id":"{}","seq":1}}"#, "a".repeat(129));
        assert_eq!(Cursor::parse(&long), None);
    }

    #[test]
    fn a_stored_cursor_turns_the_first_handshake_into_a_resume() {
        let mut gw = Gateway::default();
        let out = gw.learn_cursor(STORED);
        assert!(matches!(out.as_slice(), [Action::Info(_)]), "{out:?}");
        let resume = &sent(&hello(&mut gw))[0];
        assert_eq!(resume["op"], 6);
        assert_eq!(resume["d"]["session_id"], "abc");
        assert_eq!(resume["d"]["seq"], 41);
        assert_eq!(resume["d"]["token"], "");
        // Replayed dispatches move the position on; RESUMED makes it live.
        gw.on_text(r#"{"op":0,"s":42,"t":"MESSAGE_CREATE","d":{}}"#, 0);
        assert_eq!(gw.cursor().unwrap().seq, 42);
        gw.on_text(r#"{"op":0,"s":43,"t":"RESUMED","d":{}}"#, 0);
        assert!(gw.is_live());
        // Resumed: a later invalidation is an ordinary one, not a warning about the restart.
        let out = gw.on_text(r#"{"op":9,"d":false}"#, 0);
        assert!(warned(&out).is_empty(), "{out:?}");
    }

    #[test]
    fn a_cursor_is_learned_only_before_the_first_handshake() {
        // (before learning, expected handshake op)
        let rows: &[(&str, i64)] = &[("nothing", 6), ("hello", 2), ("ready", 6)];
        for (before, op) in rows {
            let mut gw = Gateway::default();
            match *before {
                "hello" => {
                    hello(&mut gw);
                }
                "ready" => {
                    hello(&mut gw);
                    ready(&mut gw);
                }
                _ => {}
            }
            gw.learn_cursor(STORED);
            gw.connecting();
            let handshake = &sent(&hello(&mut gw))[0];
            assert_eq!(handshake["op"], *op, "{before}");
            if *before == "ready" {
                // The live session is kept, not the stored one.
                assert_eq!(handshake["d"]["seq"], 1);
            }
        }
        // Junk is said, and the adapter identifies.
        let mut gw = Gateway::default();
        assert_eq!(warned(&gw.learn_cursor("{junk")).len(), 1);
        assert_eq!(sent(&hello(&mut gw))[0]["op"], 2);
    }

    #[test]
    fn a_session_discord_no_longer_has_identifies_afresh_and_warns_once() {
        // (how Discord refuses the stored session)
        let refusals: &[&str] = &["op 9 false", "4007", "4009"];
        for how in refusals {
            let mut gw = Gateway::default();
            gw.learn_cursor(STORED);
            assert_eq!(sent(&hello(&mut gw))[0]["op"], 6);
            let out = match *how {
                "op 9 false" => gw.on_text(r#"{"op":9,"d":false}"#, 0),
                code => gw.on_closed(code.parse().unwrap(), ""),
            };
            let warnings = warned(&out);
            assert_eq!(warnings.len(), 1, "{how}: {out:?}");
            assert!(warnings[0].contains("fetch_messages"), "{how}");
            assert!(
                matches!(out.last(), Some(Action::Reconnect { .. })),
                "{how}"
            );
            assert_eq!(gw.cursor(), None, "{how}");
            gw.connecting();
            assert_eq!(sent(&hello(&mut gw))[0]["op"], 2, "{how}");
            // Once: the next refusal is an ordinary one.
            assert!(
                warned(&gw.on_text(r#"{"op":9,"d":false}"#, 0)).is_empty(),
                "{how}"
            );
        }
    }

    #[test]
    fn resumes_go_to_the_resume_url_unless_the_host_refused_it() {
        let configured = "wss://gateway.discord.gg";
        let mut gw = Gateway::default();
        assert_eq!(gw.connect_url(configured), configured, "no session");
        gw.learn_cursor(STORED);
        assert_eq!(
            gw.connect_url(configured),
            "wss://gateway-us-east1-b.discord.gg"
        );
        gw.refuse_resume_url();
        assert_eq!(gw.connect_url(configured), configured);
        // A session without a resume URL resumes on the configured gateway.
        let mut gw = Gateway::default();
        gw.learn_cursor(r#"{"session_id":"abc","seq":1}"#);
        assert_eq!(gw.connect_url(configured), configured);
    }

    #[test]
    fn a_session_id_a_cursor_cannot_carry_is_not_kept() {
        for bad in [
            "a b".to_string(),
            "caf\u{e9}".into(),
            "tab\t".into(),
            "a".repeat(129),
        ] {
            let mut gw = Gateway::default();
            hello(&mut gw);
            let ready = json!({"op": 0, "s": 1, "t": "READY", "d": {
                "session_id": bad, "resume_gateway_url": "wss://r.discord.gg",
                "user": {"id": "42", "username": "bot"}}});
            let out = gw.on_text(&ready.to_string(), 0);
            assert_eq!(warned(&out).len(), 1, "{bad:?}: {out:?}");
            assert!(warned(&out)[0].contains("identifies afresh"), "{bad:?}");
            // Served all the same: READY reaches the decoder.
            assert!(matches!(out.last(), Some(Action::Dispatch(t, _)) if t == "READY"));
            assert!(gw.is_live() && gw.bot_id.as_deref() == Some("42"));
            gw.on_text(r#"{"op":0,"s":2,"t":"MESSAGE_CREATE","d":{}}"#, 0);
            assert_eq!(gw.cursor(), None, "{bad:?}: nothing to store");
            // The heartbeat still carries this connection's sequence.
            assert_eq!(sent(&gw.on_heartbeat_timer())[0], json!({"op": 1, "d": 2}));
            // After a disconnect: identify afresh, on the configured gateway.
            gw.on_closed(1006, "");
            gw.connecting();
            assert_eq!(
                gw.connect_url("wss://gateway.discord.gg"),
                "wss://gateway.discord.gg"
            );
            assert_eq!(sent(&hello(&mut gw))[0]["op"], 2, "{bad:?}");
            assert_eq!(
                sent(&gw.on_heartbeat_timer())[0],
                json!({"op": 1, "d": null})
            );
        }
        // Any id that is kept is stored and read back as itself.
        for good in [
            "abc",
            "0123456789abcdef0123456789abcdef",
            "a:b.c+d/e=",
            &"a".repeat(128),
        ] {
            let mut gw = Gateway::default();
            hello(&mut gw);
            let ready = json!({"op": 0, "s": 1, "t": "READY", "d": {
                "session_id": good, "user": {"id": "42"}}});
            assert!(
                warned(&gw.on_text(&ready.to_string(), 0)).is_empty(),
                "{good}"
            );
            let cursor = gw.cursor().expect("a session to store");
            assert_eq!(cursor.session_id, good);
            let stored = serde_json::to_string(&cursor).unwrap();
            assert_eq!(Cursor::parse(&stored), Some(cursor), "{stored}");
        }
    }

    #[test]
    fn junk_is_logged_not_obeyed() {
        let mut gw = Gateway::default();
        for junk in [
            "",
            "{",
            "[]",
            r#"{"op":"x"}"#,
            r#"{"op":99}"#,
            r#"{"op":0,"s":3}"#,
        ] {
            let out = gw.on_text(junk, 0);
            assert!(
                matches!(out.as_slice(), [Action::Warn(_)]),
                "{junk}: {out:?}"
            );
        }
        let out = gw.on_text(r#"{"op":10,"d":{"heartbeat_interval":0}}"#, 0);
        assert!(matches!(out[0], Action::Reconnect { .. }), "{out:?}");
        assert!(!Gateway::fits(&"x".repeat(4097)));
    }
}
