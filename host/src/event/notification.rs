//! The JSON-RPC line of one channel event, as written to the session.
//!
//! Built once, when the event is stored, so delivery is a copy: the queue
//! holds exactly the bytes the session will read.

use super::ChannelEvent;

/// The notification carrying an inbound message.
pub const NOTIFICATION_METHOD: &str = "notifications/claude/channel";

/// The whole JSON-RPC notification, without the trailing newline.
pub fn line(event: &ChannelEvent) -> String {
    #[derive(serde::Serialize)]
    struct Params<'a> {
        content: &'a str,
        meta: &'a std::collections::BTreeMap<String, String>,
    }
    #[derive(serde::Serialize)]
    struct Notification<'a> {
        jsonrpc: &'static str,
        method: &'static str,
        params: Params<'a>,
    }
    let n = Notification {
        jsonrpc: "2.0",
        method: NOTIFICATION_METHOD,
        params: Params {
            content: &event.content,
            meta: &event.meta,
        },
    };
    serde_json::to_string(&n).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn one_line_of_json_rpc() {
        let event = ChannelEvent {
            content: "two\nlines </channel>".into(),
            meta: BTreeMap::from([("chat_id".to_string(), "telegram:1".to_string())]),
        };
        let line = line(&event);
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["jsonrpc"], "2.0");
        assert_eq!(v["method"], NOTIFICATION_METHOD);
        assert_eq!(v["params"]["content"], "two\nlines </channel>");
        assert_eq!(v["params"]["meta"]["chat_id"], "telegram:1");
        assert!(v.get("id").is_none(), "a notification has no id");
    }
}
