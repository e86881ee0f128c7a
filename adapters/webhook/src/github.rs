//! GitHub's webhook deliveries, when the `format` setting is `github`.
//!
//! The host checks `X-Hub-Signature-256` before a request gets here (the
//! manifest declares `[inbound_http] signature = "github"`), so this only
//! reads what GitHub sent: the event in `X-GitHub-Event`, the delivery's id
//! in `X-GitHub-Delivery` (the message id, so a redelivery is a duplicate the
//! host drops), and the payload. A `ping` is answered and goes nowhere.
//! Every other event becomes one message in the repository's chat (its
//! `full_name`; the organization's login, or `github`, without one), from
//! the GitHub user who caused it: airlock lets in only the users allowed on
//! the adapter, so an issue opened by a stranger never reaches the session.

use airlock_guest::serde_json::Value;
use airlock_guest::types::{Chat, ChatKind, InboundMessage, Sender};

/// Commits of a push listed, at most.
const COMMITS_LISTED: usize = 10;
/// Characters of an issue's, a pull request's or a comment's body kept.
const BODY_CHARS: usize = 1500;

/// What a delivery is: a message, or a ping that needs only an answer.
#[derive(Debug)]
pub(crate) enum Delivery {
    /// GitHub checking the hook.
    Ping,
    /// Anything else, as a chat message.
    Message(Box<InboundMessage>),
}

/// The delivery in `body` with headers `event` and `id`, or what is wrong
/// with it; `fallback_id` names it when GitHub gave no id.
pub(crate) fn delivery(
    event: Option<&str>,
    id: Option<&str>,
    body: &[u8],
    now_ms: u64,
    fallback_id: impl FnOnce() -> String,
) -> Result<Delivery, String> {
    let event = event
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or("no X-GitHub-Event header; the `github` format takes GitHub's deliveries only")?;
    let payload: Value = airlock_guest::serde_json::from_slice(body).map_err(|e| {
        format!("the payload is not JSON (is the hook's content type application/json?): {e}")
    })?;
    if !payload.is_object() {
        return Err("the payload is not a JSON object".into());
    }
    if event == "ping" {
        return Ok(Delivery::Ping);
    }
    let sender = &payload["sender"];
    let (Some(login), Some(user_id)) = (sender["login"].as_str(), sender["id"].as_u64()) else {
        return Err(format!(
            "the {event} payload names no sender (login and id)"
        ));
    };
    let chat = payload["repository"]["full_name"]
        .as_str()
        .or(payload["organization"]["login"].as_str())
        .unwrap_or("github");
    let message_id = id
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .map_or_else(fallback_id, str::to_string);
    Ok(Delivery::Message(Box::new(InboundMessage {
        chat: Chat {
            id: chat.to_string(),
            kind: ChatKind::Direct,
            title: Some(chat.to_string()),
            parent_id: None,
        },
        sender: Sender {
            id: user_id.to_string(),
            handle: Some(login.to_string()),
            display_name: Some(login.to_string()),
            is_bot: sender["type"].as_str() == Some("Bot"),
        },
        message_id,
        text: summary(event, &payload),
        ts_ms: now_ms,
        reply_to: None,
        mentions_bot: true,
        attachments: Vec::new(),
        edited: false,
    })))
}

/// A few lines saying what happened, with the link to it.
fn summary(event: &str, p: &Value) -> String {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let action = text(&p["action"]);
    let mut lines = Vec::new();
    let body = |v: &Value, lines: &mut Vec<String>| {
        let b = text(v);
        if !b.trim().is_empty() {
            lines.push(cut(b.trim(), BODY_CHARS));
        }
    };
    let url = match event {
        "issues" | "pull_request" => {
            let key = if event == "issues" {
                "issue"
            } else {
                "pull_request"
            };
            let item = &p[key];
            let noun = if event == "issues" {
                "issue"
            } else {
                "pull request"
            };
            lines.push(format!(
                "{action} {noun} #{}: {}",
                item["number"],
                text(&item["title"])
            ));
            if action == "opened" {
                body(&item["body"], &mut lines);
            }
            text(&item["html_url"])
        }
        "issue_comment" => {
            lines.push(format!(
                "{action} a comment on #{}: {}",
                p["issue"]["number"],
                text(&p["issue"]["title"])
            ));
            body(&p["comment"]["body"], &mut lines);
            text(&p["comment"]["html_url"])
        }
        "push" => {
            let branch = text(&p["ref"]);
            let branch = branch
                .strip_prefix("refs/heads/")
                .or(branch.strip_prefix("refs/tags/"))
                .unwrap_or(&branch)
                .to_string();
            let commits = p["commits"].as_array().map_or(&[][..], Vec::as_slice);
            lines.push(if p["deleted"] == true {
                format!("deleted {branch}")
            } else {
                format!("pushed {} commit(s) to {branch}", commits.len())
            });
            for c in commits.iter().take(COMMITS_LISTED) {
                let id = text(&c["id"]);
                let first = text(&c["message"])
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                lines.push(format!("- {} {first}", id.get(..7).unwrap_or(&id)));
            }
            if commits.len() > COMMITS_LISTED {
                lines.push(format!("… and {} more", commits.len() - COMMITS_LISTED));
            }
            text(&p["compare"])
        }
        _ => {
            lines.push(if action.is_empty() {
                event.to_string()
            } else {
                format!("{event}: {action}")
            });
            String::new()
        }
    };
    if !url.is_empty() {
        lines.push(url);
    }
    lines.join("\n")
}

/// `s` cut to `max` characters, with an ellipsis when cut.
fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/github/{name}.json", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn message(event: &str, name: &str) -> InboundMessage {
        match delivery(Some(event), Some("d-1"), &payload(name), 7, || "x".into()).unwrap() {
            Delivery::Message(m) => *m,
            Delivery::Ping => panic!("{name} is no ping"),
        }
    }

    #[test]
    fn githubs_own_payloads_become_messages_from_their_sender() {
        assert!(matches!(
            delivery(Some("ping"), Some("d-0"), &payload("ping"), 7, || "x"
                .into()),
            Ok(Delivery::Ping)
        ));
        let issue = message("issues", "issues-opened");
        assert_eq!(issue.chat.id, "Codertocat/Hello-World");
        assert_eq!(issue.sender.id, "21031067");
        assert_eq!(issue.sender.handle.as_deref(), Some("Codertocat"));
        assert_eq!(issue.message_id, "d-1");
        assert_eq!(issue.ts_ms, 7);
        assert_eq!(
            issue.text,
            "opened issue #1: Spelling error in the README file\n\
             It looks like you accidently spelled 'commit' with two 't's.\n\
             https://github.com/Codertocat/Hello-World/issues/1"
        );
        let comment = message("issue_comment", "issue_comment-created");
        assert!(
            comment
                .text
                .starts_with("created a comment on #1: Spelling error in the README file\n"),
            "{}",
            comment.text
        );
        assert!(
            comment.text.ends_with("#issuecomment-492700400"),
            "{}",
            comment.text
        );
        let push = message("push", "push-new-branch");
        assert_eq!(
            push.text,
            "pushed 1 commit(s) to master\n- 6113728 Initial commit\n\
             https://github.com/Codertocat/Hello-World/commit/6113728f27ae82c7b1a177c8d03f9e96e0adf246"
        );
        let deleted = message("push", "push-deleted-tag");
        assert!(
            deleted.text.starts_with("deleted simple-tag\n"),
            "{}",
            deleted.text
        );
    }

    #[test]
    fn what_is_not_a_github_delivery_says_why() {
        let ok = payload("issues-opened");
        for (event, body, says) in [
            (None, &ok[..], "no X-GitHub-Event"),
            (Some(" "), &ok[..], "no X-GitHub-Event"),
            (Some("issues"), b"chat=1", "not JSON"),
            (Some("issues"), b"[1]", "not a JSON object"),
            (Some("issues"), br#"{"action":"opened"}"#, "names no sender"),
        ] {
            let err = delivery(event, None, body, 7, || "x".into()).unwrap_err();
            assert!(err.contains(says), "{err}");
        }
        // No delivery id: the fallback names it.
        let Delivery::Message(m) = delivery(
            Some("star"),
            None,
            br#"{"action":"created","sender":{"login":"a","id":1}}"#,
            7,
            || "fallback".into(),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            (m.message_id.as_str(), m.text.as_str(), m.chat.id.as_str()),
            ("fallback", "star: created", "github")
        );
        assert_eq!(cut("ééé", 2), "éé…");
    }
}
