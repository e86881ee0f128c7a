//! `multipart/form-data` bodies, for platform APIs that take file uploads
//! (Telegram's `sendDocument`, Discord's `files[n]`).
//!
//! ```
//! use airlock_guest::multipart::Form;
//!
//! let form = Form::new()
//!     .text("chat_id", "111")
//!     .file("document", "notes.txt", "text/plain", b"hello".to_vec());
//! let (content_type, body) = form.finish();
//! assert!(content_type.starts_with("multipart/form-data; boundary="));
//! assert!(body.windows(5).any(|w| w == b"hello"));
//! ```
//!
//! The boundary is chosen so that it occurs in no part; names and file names
//! are quoted with `"`, `\r` and `\n` percent-encoded as browsers do, so a
//! part cannot forge another part's headers.

/// One part of a form.
#[derive(Debug, Clone)]
struct Part {
    name: String,
    file: Option<(String, String)>,
    data: Vec<u8>,
}

/// A form under construction.
#[derive(Debug, Clone, Default)]
pub struct Form {
    parts: Vec<Part>,
}

impl Form {
    /// An empty form.
    pub fn new() -> Self {
        Form::default()
    }

    /// Adds a text field.
    pub fn text(mut self, name: &str, value: impl Into<String>) -> Self {
        self.parts.push(Part {
            name: name.to_string(),
            file: None,
            data: value.into().into_bytes(),
        });
        self
    }

    /// Adds a file field with its file name and content type.
    pub fn file(mut self, name: &str, file_name: &str, mime: &str, data: Vec<u8>) -> Self {
        self.parts.push(Part {
            name: name.to_string(),
            file: Some((file_name.to_string(), mime.to_string())),
            data,
        });
        self
    }

    /// The `content-type` header value and the encoded body.
    pub fn finish(self) -> (String, Vec<u8>) {
        let boundary = self.boundary();
        let size: usize = self.parts.iter().map(|p| p.data.len() + 200).sum();
        let mut body = Vec::with_capacity(size + boundary.len() + 8);
        for part in &self.parts {
            body.extend_from_slice(b"--");
            body.extend_from_slice(boundary.as_bytes());
            body.extend_from_slice(b"\r\nContent-Disposition: form-data; name=\"");
            body.extend_from_slice(quote(&part.name).as_bytes());
            body.push(b'"');
            if let Some((file_name, mime)) = &part.file {
                body.extend_from_slice(b"; filename=\"");
                body.extend_from_slice(quote(file_name).as_bytes());
                body.extend_from_slice(b"\"\r\nContent-Type: ");
                let mime = if mime.chars().any(|c| c.is_control()) || mime.is_empty() {
                    "application/octet-stream"
                } else {
                    mime
                };
                body.extend_from_slice(mime.as_bytes());
            }
            body.extend_from_slice(b"\r\n\r\n");
            body.extend_from_slice(&part.data);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"--");
        body.extend_from_slice(boundary.as_bytes());
        body.extend_from_slice(b"--\r\n");
        (format!("multipart/form-data; boundary={boundary}"), body)
    }

    /// A boundary that occurs in no part (a counter is mixed in until one fits).
    fn boundary(&self) -> String {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for part in &self.parts {
            seed = seed.rotate_left(7) ^ part.data.len() as u64;
        }
        let mut attempt: u64 = 0;
        loop {
            let candidate = format!("airlock-{:016x}-{attempt}", seed ^ attempt.wrapping_mul(31));
            let needle = candidate.as_bytes();
            let clashes = self.parts.iter().any(|p| {
                p.data.windows(needle.len()).any(|w| w == needle)
                    || p.name.contains(&candidate)
                    || p.file.as_ref().is_some_and(|(n, _)| n.contains(&candidate))
            });
            if !clashes {
                return candidate;
            }
            attempt += 1;
        }
    }
}

/// A name for a quoted header parameter: `"`, CR and LF percent-encoded.
fn quote(name: &str) -> String {
    name.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_text_and_file_parts() {
        let (ct, body) = Form::new()
            .text("chat_id", "111")
            .file("photo", "a.png", "image/png", vec![1, 2, 3])
            .finish();
        let boundary = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        assert!(text.contains("name=\"chat_id\"\r\n\r\n111\r\n"));
        assert!(
            text.contains("name=\"photo\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n")
        );
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
    }

    #[test]
    fn boundary_never_occurs_in_a_part() {
        let first = Form::new().text("x", "y").finish().0;
        let boundary = first
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap()
            .to_string();
        // A part that holds the boundary the same form would have chosen.
        let (ct, _) = Form::new().text("x", boundary.clone()).finish();
        assert!(!ct.ends_with(&boundary), "{ct}");
    }

    #[test]
    fn names_cannot_forge_headers() {
        let (_, body) = Form::new()
            .file(
                "f",
                "evil\"\r\nContent-Type: text/html",
                "x/y\r\nA: b",
                vec![],
            )
            .finish();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("filename=\"evil%22%0D%0AContent-Type: text/html\""));
        assert!(text.contains("Content-Type: application/octet-stream"));
    }
}
