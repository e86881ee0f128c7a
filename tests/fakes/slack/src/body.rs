//! A Web API call's arguments: Slack reads them from the query string, a
//! form body or a JSON body alike. And an upload's bytes: the raw body, or
//! the one file part of a multipart body.

use serde_json::{Map, Value};

/// The arguments of a call: query pairs first, then the body's (which win).
/// `None` when a JSON body does not parse (Slack: `invalid_json`).
pub(crate) fn args(
    query: Option<&str>,
    content_type: &str,
    body: &[u8],
) -> Option<Map<String, Value>> {
    let mut args = Map::new();
    if let Some(q) = query {
        form(q.as_bytes(), &mut args);
    }
    if body.is_empty() {
        return Some(args);
    }
    let mime = mime(content_type);
    if mime == "application/json" {
        let Value::Object(fields) = serde_json::from_slice(body).ok()? else {
            return None;
        };
        args.extend(fields);
    } else if mime == "multipart/form-data" {
        for (name, _, data) in multipart(content_type, body).unwrap_or_default() {
            if let Ok(text) = String::from_utf8(data) {
                args.insert(name, Value::String(text));
            }
        }
    } else {
        form(body, &mut args);
    }
    Some(args)
}

fn form(bytes: &[u8], into: &mut Map<String, Value>) {
    for (k, v) in form_urlencoded::parse(bytes) {
        if !k.is_empty() {
            into.insert(k.into_owned(), Value::String(v.into_owned()));
        }
    }
}

fn mime(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The bytes of an upload: the first part with a file name of a multipart
/// body, else the body itself.
pub(crate) fn upload(content_type: &str, body: &[u8]) -> Vec<u8> {
    if mime(content_type) == "multipart/form-data"
        && let Some(parts) = multipart(content_type, body)
        && let Some((_, _, data)) = parts.into_iter().find(|(_, file, _)| *file)
    {
        return data;
    }
    body.to_vec()
}

/// The parts of a multipart body: name, whether it is a file, contents.
fn multipart(content_type: &str, body: &[u8]) -> Option<Vec<(String, bool, Vec<u8>)>> {
    let boundary = content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
    })?;
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body;
    loop {
        let start = find(rest, delimiter.as_bytes())? + delimiter.len();
        rest = &rest[start..];
        if rest.starts_with(b"--") {
            return Some(parts);
        }
        let head_end = find(rest, b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
        rest = &rest[head_end + 4..];
        let end = find(rest, format!("\r\n{delimiter}").as_bytes())?;
        let data = rest[..end].to_vec();
        rest = &rest[end + 2..];
        let disposition = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))
            .unwrap_or("");
        let value = |key: &str| {
            disposition.split(';').find_map(|p| {
                let (k, v) = p.trim().split_once('=')?;
                (k.trim() == key).then(|| v.trim().trim_matches('"').to_owned())
            })
        };
        parts.push((
            value("name").unwrap_or_default(),
            value("filename").is_some(),
            data,
        ));
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_come_from_query_form_and_json() {
        let a = args(Some("channel=C1&limit=2"), "", b"").unwrap();
        assert_eq!(a["channel"], "C1");
        let a = args(
            None,
            "application/x-www-form-urlencoded",
            b"channel=C1&text=a+b",
        )
        .unwrap();
        assert_eq!(a["text"], "a b");
        let a = args(
            Some("x=1"),
            "application/json; charset=utf-8",
            br#"{"channel":"C1","blocks":[]}"#,
        )
        .unwrap();
        assert_eq!((a["x"].as_str(), a["blocks"].is_array()), (Some("1"), true));
        assert!(args(None, "application/json", b"{nope").is_none());
    }

    #[test]
    fn an_upload_is_the_body_or_its_file_part() {
        assert_eq!(upload("application/octet-stream", b"raw"), b"raw");
        let body = b"--xx\r\nContent-Disposition: form-data; name=\"filename\"\r\n\r\na.txt\r\n--xx\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--xx--\r\n";
        assert_eq!(upload("multipart/form-data; boundary=xx", body), b"hello");
        let a = args(None, "multipart/form-data; boundary=xx", body).unwrap();
        assert_eq!(a["filename"], "a.txt");
    }
}
