//! A permission request as Claude Code sends it
//! (`notifications/claude/channel/permission_request`), checked.
//!
//! Every field is untrusted text: the tool name and the preview come from
//! whatever the model decided to call, and the model reads chat messages.
//! Parsing checks the shape and the id, and bounds what is kept; rendering
//! (`render.rs`) makes it inert for each platform.

use serde_json::Value;

/// The method Claude Code sends a request with.
pub const METHOD: &str = "notifications/claude/channel/permission_request";

/// Longest tool name kept; a longer one is refused (no real tool has one).
pub const MAX_TOOL_NAME: usize = 200;
/// Characters of the description kept.
pub const MAX_DESCRIPTION: usize = 2_000;
/// Characters of the preview kept (Claude Code sends at most 3,500 code
/// points per field; this bounds a client that does not).
pub const MAX_PREVIEW: usize = 16_000;

/// A checked request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermissionRequest {
    /// Five letters `a`–`z` without `l`.
    pub request_id: String,
    /// The tool Claude Code asks about (`Bash`, `Write`, `mcp__x__y`).
    pub tool_name: String,
    /// Claude Code's summary of the call.
    pub description: String,
    /// The call's arguments, as Claude Code previews them, at most
    /// [`MAX_PREVIEW`] characters.
    pub input_preview: String,
    /// Characters of the preview beyond what was kept.
    pub preview_cut: usize,
}

/// Why a request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Malformed {
    /// No params object.
    #[error("the request has no params object")]
    NoParams,
    /// A field is missing or not a string.
    #[error("field {0} is missing or not a string")]
    Field(&'static str),
    /// The id breaks the rule.
    #[error("request_id {0:?} is not five letters a-z without l")]
    BadId(String),
    /// The tool name is empty or too long.
    #[error("tool_name is empty or longer than {MAX_TOOL_NAME} characters")]
    BadToolName,
}

/// Whether `id` is five lowercase letters `a`–`z` without `l`.
pub fn valid_id(id: &str) -> bool {
    id.len() == 5 && id.bytes().all(|b| b.is_ascii_lowercase() && b != b'l')
}

impl PermissionRequest {
    /// Check `params` of a request notification.
    pub fn parse(params: Option<&Value>) -> Result<Self, Malformed> {
        let params = params
            .and_then(Value::as_object)
            .ok_or(Malformed::NoParams)?;
        let field = |name: &'static str| {
            params
                .get(name)
                .and_then(Value::as_str)
                .ok_or(Malformed::Field(name))
        };
        let request_id = field("request_id")?;
        if !valid_id(request_id) {
            return Err(Malformed::BadId(crate::text::one_line(request_id, 40)));
        }
        let tool_name = field("tool_name")?;
        let description = field("description")?;
        let input_preview = field("input_preview")?;
        let tool_chars = tool_name.chars().count();
        if tool_name.trim().is_empty() || tool_chars > MAX_TOOL_NAME {
            return Err(Malformed::BadToolName);
        }
        let (input_preview, preview_cut) = keep(input_preview, MAX_PREVIEW);
        Ok(Self {
            request_id: request_id.to_owned(),
            tool_name: tool_name.to_owned(),
            description: keep(description, MAX_DESCRIPTION).0,
            input_preview,
            preview_cut,
        })
    }
}

/// At most `max` characters of `text`, and how many were left out.
fn keep(text: &str, max: usize) -> (String, usize) {
    match text.char_indices().nth(max) {
        None => (text.to_owned(), 0),
        Some((at, _)) => (text[..at].to_owned(), text[at..].chars().count()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(id: &str) -> Value {
        json!({"request_id": id, "tool_name": "Bash", "description": "List files", "input_preview": "{\"command\":\"ls\"}"})
    }

    #[test]
    fn ids() {
        for (id, ok) in [
            ("abcde", true),
            ("zzzzz", true),
            ("abcdl", false),
            ("ABCDE", false),
            ("abcd", false),
            ("abcdef", false),
            ("abcd1", false),
            ("abcdé", false),
            ("", false),
        ] {
            assert_eq!(valid_id(id), ok, "{id:?}");
            assert_eq!(
                PermissionRequest::parse(Some(&request(id))).is_ok(),
                ok,
                "{id:?}"
            );
        }
    }

    #[test]
    fn shapes() {
        let good = PermissionRequest::parse(Some(&request("abcde"))).unwrap();
        assert_eq!(good.tool_name, "Bash");
        assert_eq!(good.preview_cut, 0);
        assert_eq!(PermissionRequest::parse(None), Err(Malformed::NoParams));
        assert_eq!(
            PermissionRequest::parse(Some(&json!([1]))),
            Err(Malformed::NoParams)
        );
        for missing in ["request_id", "tool_name", "description", "input_preview"] {
            let mut r = request("abcde");
            r.as_object_mut().unwrap().remove(missing);
            assert_eq!(
                PermissionRequest::parse(Some(&r)),
                Err(Malformed::Field(missing))
            );
            r[missing] = json!(5);
            assert_eq!(
                PermissionRequest::parse(Some(&r)),
                Err(Malformed::Field(missing))
            );
        }
        let mut r = request("abcde");
        r["tool_name"] = json!(" ");
        assert_eq!(
            PermissionRequest::parse(Some(&r)),
            Err(Malformed::BadToolName)
        );
        r["tool_name"] = json!("x".repeat(MAX_TOOL_NAME + 1));
        assert_eq!(
            PermissionRequest::parse(Some(&r)),
            Err(Malformed::BadToolName)
        );
    }

    #[test]
    fn a_huge_preview_is_kept_bounded_and_counted() {
        let mut r = request("abcde");
        r["input_preview"] = json!("é".repeat(1 << 20));
        r["description"] = json!("d".repeat(10_000));
        let p = PermissionRequest::parse(Some(&r)).unwrap();
        assert_eq!(p.input_preview.chars().count(), MAX_PREVIEW);
        assert_eq!(p.preview_cut, (1 << 20) - MAX_PREVIEW);
        assert_eq!(p.description.len(), MAX_DESCRIPTION);
    }
}
