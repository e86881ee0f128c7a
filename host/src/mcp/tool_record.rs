//! The audit row of a tool call: the tool, the chat, a digest of the
//! arguments (not the arguments: they hold what the session wrote), the
//! outcome or the error, and the names and sizes of the files it attached.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::audit::{Entry, Kind};

/// Characters of the outcome kept (it names the message ids created).
const OUTCOME: usize = 300;

/// The row for a call of `tool` with `args` that ended in `outcome`.
pub(super) fn tool_call(
    tool: &str,
    args: Option<&serde_json::Map<String, Value>>,
    outcome: &Result<String, String>,
) -> Entry {
    let chat = args
        .and_then(|a| a.get("chat_id"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let digest = hex::encode(Sha256::digest(
        args.map(|a| Value::Object(a.clone()).to_string())
            .unwrap_or_default()
            .as_bytes(),
    ));
    let files: Vec<Value> = args
        .and_then(|a| a.get("files"))
        .and_then(Value::as_array)
        .map(|fs| {
            fs.iter()
                .filter_map(Value::as_str)
                .map(|p| {
                    let path = std::path::Path::new(p);
                    json!({
                        "name": path.file_name().map(|n| n.to_string_lossy().into_owned()),
                        "size": std::fs::symlink_metadata(path).ok().map(|m| m.len()),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let (ok, text) = match outcome {
        Ok(t) => (true, crate::text::one_line(t, OUTCOME)),
        Err(e) => (false, crate::text::one_line(e, OUTCOME)),
    };
    let (adapter, chat_only) = chat.split_once(':').unwrap_or(("", chat));
    let mut entry = Entry::new(
        Kind::Tool,
        format!(
            "{tool}{}: {}",
            if chat.is_empty() {
                String::new()
            } else {
                format!(" to {}", crate::text::one_line(chat, 80))
            },
            if ok { "ok" } else { "error" }
        ),
    )
    .detail(json!({
        "tool": tool,
        "chat_id": chat,
        "args_sha256": digest,
        "ok": ok,
        "outcome": text,
        "files": files,
    }));
    if !adapter.is_empty() {
        entry = entry.adapter(adapter).chat(chat_only);
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_row_keeps_a_digest_and_file_sizes_not_the_text() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("report.pdf");
        std::fs::write(&file, vec![0u8; 1234]).unwrap();
        let args = json!({"chat_id": "telegram:42", "text": "the secret plan", "files": [file.to_str().unwrap()]});
        let e = tool_call("reply", args.as_object(), &Ok("sent (id 9)".into()));
        assert_eq!(e.adapter.as_deref(), Some("telegram"));
        assert_eq!(e.chat.as_deref(), Some("42"));
        assert_eq!(e.summary, "reply to telegram:42: ok");
        assert_eq!(
            e.detail["files"],
            json!([{"name": "report.pdf", "size": 1234}])
        );
        assert_eq!(e.detail["outcome"], "sent (id 9)");
        assert!(!e.detail.to_string().contains("secret plan"));
        assert_eq!(e.text, None);
        let failed = tool_call("react", None, &Err("unknown chat".into()));
        assert_eq!(failed.summary, "react: error");
        assert_eq!(failed.detail["ok"], false);
    }
}
