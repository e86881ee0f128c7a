//! The session's requests as Web API calls: messages (in threads, with
//! buttons and files), edits, reactions, history and downloads.

use airlock_guest::http::Request;
use airlock_guest::types::{
    AdapterError, AttachmentData, AttachmentRequest, EditRequest, HistoryEntry, HistoryRequest,
    OutboundFile, OutboundMessage, ReactRequest, Sender, Sent, TextFormat,
};
use serde_json::{Value, json};

use crate::api::Api;
use crate::inbound::{Threads, ts_ms};

/// Longest text of one message the host hands over: a section block holds
/// 3,000 characters, and buttons and edits go in one.
pub const MAX_TEXT: u32 = 3000;
/// Largest download.
const MAX_DOWNLOAD: usize = 100 << 20;
/// Per-transfer timeout for uploads and downloads.
const TRANSFER_TIMEOUT_MS: u64 = 120_000;

/// Slack's mrkdwn for `text` in `format`. `&`, `<` and `>` are escaped, so
/// text shows as written and `<!channel>`, `<!here>` and `<!everyone>`
/// never ping. In markdown, `**bold**`, `~~struck~~` and `[label](url)`
/// become `*bold*`, `~struck~` and `<url|label>`, and a user mention
/// `<@U0123ABCD>` stays one.
pub fn mrkdwn(text: &str, format: TextFormat) -> String {
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    if format != TextFormat::Markdown {
        return escaped;
    }
    let mut out = restore_user_mentions(&escaped.replace("**", "*").replace("~~", "~"));
    // [label](url) → <url|label>, for http(s) links only.
    while let Some(open) = out.find('[') {
        let Some(close) = out[open..].find("](").map(|i| open + i) else {
            break;
        };
        let Some(end) = out[close..].find(')').map(|i| close + i) else {
            break;
        };
        let (label, url) = (&out[open + 1..close], &out[close + 2..end]);
        if !(url.starts_with("https://") || url.starts_with("http://")) || label.contains('[') {
            break;
        }
        out = format!("{}<{url}|{label}>{}", &out[..open], &out[end + 1..]);
    }
    out
}

/// `&lt;@U0123ABCD&gt;` back into the mention `<@U0123ABCD>`.
fn restore_user_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("&lt;@") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 5..];
        let id_len = after
            .find(|c: char| !c.is_ascii_uppercase() && !c.is_ascii_digit())
            .unwrap_or(after.len());
        let id = &after[..id_len];
        if (id.starts_with('U') || id.starts_with('W'))
            && id.len() >= 3
            && after[id_len..].starts_with("&gt;")
        {
            out.push_str(&format!("<@{id}>"));
            rest = &after[id_len + 4..];
        } else {
            out.push_str("&lt;@");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The blocks of a message: its text in a section, then a row of buttons
/// per row asked for (`value` is what a press hands back).
fn blocks(text: &str, rows: &[Vec<airlock_guest::types::Button>]) -> Value {
    let mut blocks = vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})];
    for (r, row) in rows.iter().enumerate() {
        let elements: Vec<Value> = row
            .iter()
            .enumerate()
            .map(|(c, b)| {
                json!({
                    "type": "button",
                    "action_id": format!("b{r}_{c}"),
                    "text": {"type": "plain_text", "text": b.label, "emoji": true},
                    "value": b.data,
                })
            })
            .collect();
        blocks
            .push(json!({"type": "actions", "block_id": format!("row{r}"), "elements": elements}));
    }
    Value::Array(blocks)
}

/// `chat.postMessage`, then each file through the external upload flow.
pub fn send(
    api: &Api,
    threads: &mut Threads,
    message: OutboundMessage,
) -> Result<Sent, AdapterError> {
    let channel = message.chat_id.as_str();
    let thread = message
        .reply_to
        .as_deref()
        .map(|ts| threads.root_of(channel, ts));
    let mut ids = Vec::new();
    if !message.text.is_empty() || !message.buttons.is_empty() {
        let text = mrkdwn(&message.text, message.format);
        let mut args = json!({"channel": channel, "text": text, "mrkdwn": true});
        if !message.buttons.is_empty() {
            args["blocks"] = blocks(&text, &message.buttons);
        }
        if let Some(ts) = &thread {
            args["thread_ts"] = json!(ts);
            threads.joined(channel, ts);
        }
        let posted = api.call("chat.postMessage", &args)?;
        let ts = posted["ts"].as_str().ok_or_else(|| {
            AdapterError::Platform("chat.postMessage answered without a ts".into())
        })?;
        // Replies to this message are in a thread the bot started.
        threads.joined(channel, thread.as_deref().unwrap_or(ts));
        ids.push(ts.to_owned());
    }
    for file in &message.files {
        ids.push(upload(api, channel, thread.as_deref(), file)?);
    }
    Ok(Sent { message_ids: ids })
}

/// Uploads `file` and shares it in `channel`: `files.getUploadURLExternal`,
/// the bytes to the URL it gives, `files.completeUploadExternal`. The
/// file's id.
fn upload(
    api: &Api,
    channel: &str,
    thread: Option<&str>,
    file: &OutboundFile,
) -> Result<String, AdapterError> {
    let length = file.data.len().to_string();
    let slot = api.call_form(
        "files.getUploadURLExternal",
        &[("filename", &file.name), ("length", &length)],
    )?;
    let (Some(url), Some(id)) = (slot["upload_url"].as_str(), slot["file_id"].as_str()) else {
        return Err(AdapterError::Platform(
            "files.getUploadURLExternal answered without upload_url and file_id".into(),
        ));
    };
    let stored = Request::post(url)
        .header("content-type", &file.mime)
        .body(file.data.clone())
        .timeout_ms(TRANSFER_TIMEOUT_MS)
        .send()?;
    if !stored.is_success() {
        return Err(AdapterError::Platform(format!(
            "uploading {} to Slack failed: HTTP {}",
            file.name, stored.status
        )));
    }
    let files = json!([{"id": id, "title": file.name}]).to_string();
    let mut args = vec![("files", files.as_str()), ("channel_id", channel)];
    if let Some(ts) = thread {
        args.push(("thread_ts", ts));
    }
    api.call_form("files.completeUploadExternal", &args)?;
    Ok(id.to_owned())
}

/// `chat.update`: the text replaced, in a section block that takes the
/// buttons' place, so an answered prompt cannot be pressed again.
pub fn edit(api: &Api, request: EditRequest) -> Result<(), AdapterError> {
    let text = mrkdwn(&request.text, request.format);
    let args = json!({
        "channel": request.chat_id,
        "ts": request.message_id,
        "text": text,
        "blocks": blocks(&text, &[]),
    });
    api.call("chat.update", &args).map(drop)
}

/// Slack's names of the emoji a session most often reacts with.
const EMOJI: &[(&str, &str)] = &[
    ("👍", "+1"),
    ("👎", "-1"),
    ("✅", "white_check_mark"),
    ("❌", "x"),
    ("👀", "eyes"),
    ("🎉", "tada"),
    ("❤️", "heart"),
    ("❤", "heart"),
    ("🙏", "pray"),
    ("🔥", "fire"),
    ("🚀", "rocket"),
    ("😂", "joy"),
    ("😄", "smile"),
    ("🤔", "thinking_face"),
    ("⚠️", "warning"),
    ("⚠", "warning"),
    ("👌", "ok_hand"),
    ("💯", "100"),
    ("⏳", "hourglass_flowing_sand"),
    ("✔️", "heavy_check_mark"),
];

/// The reaction name for `emoji`: `:name:` or `name` as given, or a
/// common Unicode emoji by its Slack name.
pub fn reaction_name(emoji: &str) -> Result<String, AdapterError> {
    let e = emoji.trim();
    if let Some((_, name)) = EMOJI.iter().find(|(u, _)| *u == e) {
        return Ok((*name).to_owned());
    }
    let name = e.trim_matches(':');
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_+-'".contains(c));
    if ok {
        Ok(name.to_owned())
    } else {
        Err(AdapterError::InvalidInput(format!(
            "Slack reacts with emoji names like :thumbsup: or :white_check_mark: (or 👍 ✅ ❌ 👀 🎉); {emoji:?} is not one"
        )))
    }
}

/// `reactions.add`.
pub fn react(api: &Api, request: ReactRequest) -> Result<(), AdapterError> {
    let name = reaction_name(&request.emoji)?;
    let args = json!({"channel": request.chat_id, "timestamp": request.message_id, "name": name});
    api.call("reactions.add", &args).map(drop)
}

/// `conversations.history`, oldest first.
pub fn history(api: &Api, request: HistoryRequest) -> Result<Vec<HistoryEntry>, AdapterError> {
    let limit = request.limit.clamp(1, 999).to_string();
    let mut args = vec![
        ("channel", request.chat_id.as_str()),
        ("limit", limit.as_str()),
    ];
    if let Some(before) = &request.before {
        args.push(("latest", before));
        args.push(("inclusive", "false"));
    }
    let page = api.call_form("conversations.history", &args)?;
    let mut entries: Vec<HistoryEntry> = page["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let ts = m["ts"].as_str()?;
            let bot = m["bot_id"].as_str();
            let id = m["user"].as_str().or(bot)?;
            Some(HistoryEntry {
                message_id: ts.to_owned(),
                sender: Sender {
                    id: id.to_owned(),
                    handle: m["username"].as_str().map(str::to_owned),
                    display_name: None,
                    is_bot: bot.is_some(),
                },
                text: m["text"].as_str().unwrap_or("").to_owned(),
                ts_ms: ts_ms(ts),
                attachment_count: m["files"].as_array().map_or(0, |f| f.len() as u32),
            })
        })
        .collect();
    entries.reverse();
    Ok(entries)
}

/// A file's bytes: `files.info` for its private download URL, then the
/// URL itself (the host adds the bot token there too).
pub fn download(api: &Api, request: AttachmentRequest) -> Result<AttachmentData, AdapterError> {
    let info = api.call_form("files.info", &[("file", &request.attachment_id)])?;
    let file = &info["file"];
    let url = file["url_private_download"]
        .as_str()
        .or(file["url_private"].as_str())
        .ok_or_else(|| {
            AdapterError::InvalidInput(format!(
                "file {} has no private download URL (an external file?)",
                request.attachment_id
            ))
        })?;
    let response = Request::get(url)
        .timeout_ms(TRANSFER_TIMEOUT_MS)
        .max_response_bytes(MAX_DOWNLOAD)
        .send()?;
    let mime = response.header("content-type").unwrap_or("").to_owned();
    // Without the token Slack answers with its sign-in page, not the file.
    if !response.is_success() || mime.starts_with("text/html") && file["mimetype"] != "text/html" {
        return Err(AdapterError::Platform(format!(
            "downloading file {} gave HTTP {} ({}), not the file: check that the bot token is \
             granted for the files host, and the files:read scope",
            request.attachment_id,
            response.status,
            if mime.is_empty() {
                "no content type"
            } else {
                &mime
            }
        )));
    }
    Ok(AttachmentData {
        name: file["name"].as_str().unwrap_or("file").to_owned(),
        mime: file["mimetype"].as_str().map(str::to_owned),
        data: response.body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_becomes_mrkdwn() {
        let cases = [
            ("a < b & c", TextFormat::Plain, "a &lt; b &amp; c"),
            (
                "**bold** and ~~gone~~",
                TextFormat::Markdown,
                "*bold* and ~gone~",
            ),
            (
                "see [the docs](https://x.example/a?b=1)",
                TextFormat::Markdown,
                "see <https://x.example/a?b=1|the docs>",
            ),
            (
                "[not a link](javascript:x)",
                TextFormat::Markdown,
                "[not a link](javascript:x)",
            ),
            ("**bold**", TextFormat::Plain, "**bold**"),
            (
                "hi <@U0ALICE01> and <!channel>",
                TextFormat::Markdown,
                "hi <@U0ALICE01> and &lt;!channel&gt;",
            ),
            (
                "hi <@U0ALICE01>",
                TextFormat::Plain,
                "hi &lt;@U0ALICE01&gt;",
            ),
            (
                "<@lower> <@U1",
                TextFormat::Markdown,
                "&lt;@lower&gt; &lt;@U1",
            ),
        ];
        for (text, format, want) in cases {
            assert_eq!(mrkdwn(text, format), want, "{text}");
        }
    }

    #[test]
    fn reactions_are_named() {
        for (emoji, want) in [
            ("👍", Some("+1")),
            (":eyes:", Some("eyes")),
            ("white_check_mark", Some("white_check_mark")),
            ("no way", None),
            ("", None),
        ] {
            assert_eq!(reaction_name(emoji).ok().as_deref(), want, "{emoji}");
        }
    }
}
