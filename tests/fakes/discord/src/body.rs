//! Request bodies: JSON, or `multipart/form-data` with a `payload_json`
//! part and `files[n]` parts (how Discord takes uploads).

use serde_json::{Map, Value};

use crate::UploadedFile;

/// A body Discord would refuse to read.
#[derive(Debug)]
pub(crate) struct Unreadable;

/// The JSON of a body and its file parts. An empty body has no JSON.
pub(crate) fn parse(
    content_type: &str,
    body: &[u8],
) -> Result<(Option<Value>, Vec<UploadedFile>), Unreadable> {
    if body.is_empty() {
        return Ok((None, Vec::new()));
    }
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime == "multipart/form-data" {
        let boundary = param(content_type, "boundary").ok_or(Unreadable)?;
        return multipart(body, &boundary);
    }
    // Discord reads JSON whatever the content type says.
    serde_json::from_slice(body)
        .map(|v| (Some(v), Vec::new()))
        .map_err(|_| Unreadable)
}

/// A `key=value` parameter of a header value (`boundary`, `name`,
/// `filename`), unquoted.
fn param(header: &str, key: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|piece| {
        let (k, v) = piece.trim().split_once('=')?;
        if !k.trim().eq_ignore_ascii_case(key) {
            return None;
        }
        let v = v.trim();
        let v = match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(quoted) => quoted.replace("\\\"", "\""),
            None => v.to_owned(),
        };
        Some(v)
    })
}

fn position(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|at| at + from)
}

fn multipart(
    body: &[u8],
    boundary: &str,
) -> Result<(Option<Value>, Vec<UploadedFile>), Unreadable> {
    let opening = format!("--{boundary}");
    let separator = format!("\r\n--{boundary}");
    let mut at = position(body, opening.as_bytes(), 0).ok_or(Unreadable)? + opening.len();
    let mut payload_json = None;
    let mut fields = Map::new();
    let mut files = Vec::new();
    loop {
        let rest = &body[at..];
        if rest.starts_with(b"--") {
            break;
        }
        if !rest.starts_with(b"\r\n") {
            return Err(Unreadable);
        }
        let head_start = at + 2;
        let head_end = position(body, b"\r\n\r\n", head_start).ok_or(Unreadable)?;
        let data_start = head_end + 4;
        let data_end = position(body, separator.as_bytes(), data_start).ok_or(Unreadable)?;
        let head = String::from_utf8_lossy(&body[head_start..head_end]);
        let mut name = None;
        let mut filename = None;
        let mut content_type = None;
        for line in head.split("\r\n") {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let key = key.trim();
            if key.eq_ignore_ascii_case("content-disposition") {
                name = param(value, "name");
                filename = param(value, "filename");
            } else if key.eq_ignore_ascii_case("content-type") {
                content_type = Some(value.trim().to_owned());
            }
        }
        let name = name.ok_or(Unreadable)?;
        let data = &body[data_start..data_end];
        match filename {
            Some(filename) => files.push(UploadedFile {
                field: name,
                filename,
                content_type,
                bytes: data.to_vec(),
            }),
            None if name == "payload_json" => {
                payload_json = Some(serde_json::from_slice(data).map_err(|_| Unreadable)?);
            }
            None => {
                let text = String::from_utf8_lossy(data).into_owned();
                fields.insert(name, Value::String(text));
            }
        }
        at = data_end + separator.len();
    }
    let json = match payload_json {
        Some(Value::Object(mut map)) => {
            // Form fields beside payload_json fill in what it lacks.
            for (k, v) in fields {
                map.entry(k).or_insert(v);
            }
            Some(Value::Object(map))
        }
        Some(other) => Some(other),
        None if fields.is_empty() => None,
        None => Some(Value::Object(fields)),
    };
    Ok((json, files))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payload_json_and_files() {
        let body = b"--b0undary\r\nContent-Disposition: form-data; name=\"files[0]\"; filename=\"a.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n\x00\r\n\x01\r\n\
--b0undary\r\nContent-Disposition: form-data; name=\"payload_json\"\r\n\r\n{\"content\":\"hi\"}\r\n--b0undary--\r\n";
        let (json, files) = parse("multipart/form-data; boundary=b0undary", body).unwrap();
        assert_eq!(json, Some(json!({"content": "hi"})));
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].field, "files[0]");
        assert_eq!(files[0].filename, "a.bin");
        assert_eq!(
            files[0].content_type.as_deref(),
            Some("application/octet-stream")
        );
        assert_eq!(files[0].bytes, b"\x00\r\n\x01");
    }

    #[test]
    fn plain_fields_without_payload_json() {
        let body = b"--x\r\nContent-Disposition: form-data; name=\"content\"\r\n\r\nhello\r\n--x--";
        let (json, files) = parse("multipart/form-data; boundary=\"x\"", body).unwrap();
        assert_eq!(json, Some(json!({"content": "hello"})));
        assert!(files.is_empty());
    }

    #[test]
    fn json_and_garbage() {
        assert_eq!(
            parse("application/json", b"{\"a\":1}").unwrap().0,
            Some(json!({"a": 1}))
        );
        assert!(parse("application/json", b"{nope").is_err());
        assert!(parse("multipart/form-data", b"--x").is_err());
        assert_eq!(parse("", b"").unwrap().0, None);
    }
}
