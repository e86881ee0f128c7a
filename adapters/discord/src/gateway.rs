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
//! New connections always go to the configured gateway URL (a resume works
//! there too), so the manifest's one websocket destination is enough.

use serde::Deserialize;
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
    /// The bot's user id, from READY.
    pub bot_id: Option<String>,
    /// The bot's username, from READY.
    pub bot_name: Option<String>,
}

impl Gateway {
    /// A new connection is about to open: forget what belonged to the old one.
    pub fn connecting(&mut self) {
        self.awaiting_ack = false;
        self.handshake_sent = false;
        self.live = false;
        self.interval_ms = None;
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
                    excerpt(text)
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
                    self.forget_session();
                    vec![Action::Reconnect {
                        code: 4000,
                        why: "invalid session: identifying again on a new connection".into(),
                    }]
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
                    excerpt(&d.to_string())
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
                self.session_id = Some(session.to_owned());
                self.bot_id = id.map(str::to_owned);
                self.bot_name = user
                    .and_then(|u| u.get("username"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                self.live = true;
                vec![
                    Action::Info(format!(
                        "connected to the Discord gateway as {} ({})",
                        self.bot_name.as_deref().unwrap_or("?"),
                        self.bot_id.as_deref().unwrap_or("?")
                    )),
                    Action::Dispatch(t, frame.d),
                ]
            }
            "RESUMED" => {
                self.live = true;
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
                self.forget_session();
                vec![Action::Reconnect {
                    code: 1000,
                    why: format!(
                        "gateway closed the session ({code}{}); identifying again",
                        reason_text(reason)
                    ),
                }]
            }
            Verdict::Fatal(fix) => vec![Action::Fatal(format!(
                "the Discord gateway refused this bot ({code}{}): {fix}",
                reason_text(reason)
            ))],
        }
    }

    fn forget_session(&mut self) {
        self.session_id = None;
        self.seq = None;
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
        format!(" {}", excerpt(reason))
    }
}

/// At most 200 characters of `text`, on one line.
pub fn excerpt(text: &str) -> String {
    crate::model::one_line(text, 200)
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
