//! Request parameters: query string, JSON, urlencoded form and multipart
//! bodies, normalised into one JSON object.

use serde_json::{Map, Value};

/// A file part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedFile {
    /// The form field (`photo`, `document`, or an `attach://` name).
    pub field: String,
    /// The part's `filename`.
    pub file_name: String,
    /// The part's `Content-Type`, if it had one.
    pub content_type: Option<String>,
    /// The file's contents.
    pub bytes: Vec<u8>,
}

impl UploadedFile {
    /// Size in bytes.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }
}

/// Parameters whose values are JSON objects or arrays; sent as JSON text in
/// form and multipart encodings.
const JSON_PARAMS: &[&str] = &[
    "reply_markup",
    "reply_parameters",
    "link_preview_options",
    "entities",
    "caption_entities",
    "reaction",
    "allowed_updates",
    "commands",
    "scope",
    "media",
    "suggested_post_parameters",
];

/// Integer parameters (`chat_id` may also be `@username`, which stays a
/// string).
const INT_PARAMS: &[&str] = &[
    "chat_id",
    "from_chat_id",
    "message_id",
    "message_thread_id",
    "reply_to_message_id",
    "offset",
    "limit",
    "timeout",
    "cache_time",
    "user_id",
    "direct_messages_topic_id",
];

const BOOL_PARAMS: &[&str] = &[
    "is_big",
    "show_alert",
    "disable_notification",
    "protect_content",
    "drop_pending_updates",
    "disable_web_page_preview",
    "allow_sending_without_reply",
    "has_spoiler",
    "disable_content_type_detection",
    "show_caption_above_media",
    "allow_paid_broadcast",
];

type Parsed = (Map<String, Value>, Vec<UploadedFile>);

pub(crate) fn parse(
    query: Option<&str>,
    content_type: &str,
    body: &[u8],
) -> Result<Parsed, String> {
    let mut params = Map::new();
    let mut files = Vec::new();
    if let Some(q) = query {
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            let value = normalise(&k, v.into_owned());
            params.insert(k.into_owned(), value);
        }
    }
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if body.is_empty() {
        return Ok((params, files));
    }
    match mime.as_str() {
        "application/json" => {
            let value: Value = serde_json::from_slice(body)
                .map_err(|_| "Bad Request: can't parse JSON object".to_owned())?;
            let Value::Object(map) = value else {
                return Err("Bad Request: can't parse JSON object".to_owned());
            };
            params.extend(map);
        }
        "application/x-www-form-urlencoded" => {
            for (k, v) in form_urlencoded::parse(body) {
                params.insert(k.to_string(), normalise(&k, v.into_owned()));
            }
        }
        "multipart/form-data" => {
            let boundary = boundary(content_type)
                .ok_or_else(|| "Bad Request: multipart boundary missing".to_owned())?;
            for part in multipart(body, &boundary)? {
                match part.file_name {
                    Some(file_name) => files.push(UploadedFile {
                        field: part.name,
                        file_name,
                        content_type: part.content_type,
                        bytes: part.data,
                    }),
                    None => {
                        let text = String::from_utf8_lossy(&part.data).into_owned();
                        let value = normalise(&part.name, text);
                        params.insert(part.name, value);
                    }
                }
            }
        }
        _ => {}
    }
    Ok((params, files))
}

/// Turns a string-encoded parameter into the JSON type the Bot API schema
/// gives it.
fn normalise(key: &str, text: String) -> Value {
    if JSON_PARAMS.contains(&key) {
        return serde_json::from_str(&text).unwrap_or(Value::String(text));
    }
    if INT_PARAMS.contains(&key) {
        return text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or(Value::String(text));
    }
    if BOOL_PARAMS.contains(&key) {
        return match text.trim() {
            "true" | "True" | "1" => Value::Bool(true),
            "false" | "False" | "0" => Value::Bool(false),
            _ => Value::String(text),
        };
    }
    Value::String(text)
}

fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

struct Part {
    name: String,
    file_name: Option<String>,
    content_type: Option<String>,
    data: Vec<u8>,
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > haystack.len() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

fn multipart(body: &[u8], boundary: &str) -> Result<Vec<Part>, String> {
    let bad = || "Bad Request: can't parse multipart body".to_owned();
    let delimiter = format!("--{boundary}");
    let next_delimiter = format!("\r\n--{boundary}");
    let mut pos = find(body, delimiter.as_bytes(), 0).ok_or_else(bad)? + delimiter.len();
    let mut parts = Vec::new();
    loop {
        // After a delimiter: "--" ends the body, CRLF starts a part.
        if body[pos..].starts_with(b"--") {
            return Ok(parts);
        }
        if !body[pos..].starts_with(b"\r\n") {
            return Err(bad());
        }
        pos += 2;
        let headers_end = find(body, b"\r\n\r\n", pos).ok_or_else(bad)?;
        let headers = String::from_utf8_lossy(&body[pos..headers_end]).into_owned();
        let data_start = headers_end + 4;
        let data_end = find(body, next_delimiter.as_bytes(), data_start).ok_or_else(bad)?;
        let mut name = None;
        let mut file_name = None;
        let mut content_type = None;
        for line in headers.split("\r\n") {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            if key.trim().eq_ignore_ascii_case("content-disposition") {
                name = disposition_param(value, "name");
                file_name = disposition_param(value, "filename");
            } else if key.trim().eq_ignore_ascii_case("content-type") {
                content_type = Some(value.trim().to_owned());
            }
        }
        parts.push(Part {
            name: name.ok_or_else(bad)?,
            file_name,
            content_type,
            data: body[data_start..data_end].to_vec(),
        });
        pos = data_end + next_delimiter.len();
    }
}

fn disposition_param(value: &str, param: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        if !k.trim().eq_ignore_ascii_case(param) {
            return None;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        Some(v.replace("\\\"", "\""))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_text_and_file_parts() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n111\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a b.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n\x00\x01\r\n\x02\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"reply_markup\"\r\n\r\n{\"inline_keyboard\":[]}\r\n--XyZ--\r\n";
        let (params, files) = parse(None, "multipart/form-data; boundary=XyZ", body).unwrap();
        assert_eq!(params["chat_id"], Value::from(111));
        assert_eq!(
            params["reply_markup"],
            serde_json::json!({"inline_keyboard": []})
        );
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].field, "photo");
        assert_eq!(files[0].file_name, "a b.jpg");
        assert_eq!(files[0].content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(files[0].bytes, b"\x00\x01\r\n\x02");
    }

    #[test]
    fn form_values_are_typed() {
        let (params, _) = parse(
            Some("chat_id=%40chan"),
            "application/x-www-form-urlencoded",
            b"text=42&is_big=true&message_id=7",
        )
        .unwrap();
        assert_eq!(params["chat_id"], Value::from("@chan"));
        assert_eq!(params["text"], Value::from("42"));
        assert_eq!(params["is_big"], Value::Bool(true));
        assert_eq!(params["message_id"], Value::from(7));
    }
}
