//! A small blocking HTTP client over `wasi:http/outgoing-handler`.
//!
//! ```no_run
//! use airlock_guest::http::Request;
//!
//! # fn demo() -> Result<(), airlock_guest::http::HttpError> {
//! // No credentials here: the manifest binds the API token to this
//! // destination (`[[secrets]]` with `header = "Authorization"` and
//! // `value = "Bearer {secret}"`), and the host adds the header on the way
//! // out. The component never sees the token.
//! let response = Request::post("https://api.example.com/v1/messages")
//!     .json(&airlock_guest::serde_json::json!({ "text": "hello" }))
//!     .send()?;
//! if response.is_success() {
//!     let reply: airlock_guest::serde_json::Value = response.json()?;
//!     println!("{reply}");
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Every request passes the host's egress policy: a destination the
//! component's grant does not allow fails with [`HttpErrorKind::Denied`].
//! Secrets are the host's: `{secret}` is a template in the component's
//! manifest, which the host fills in for the destination it is bound to,
//! never something a component writes (the host would send it as the
//! literal text). A component that uses this module imports `wasi:http`,
//! which the host links only with an `outbound_http` grant; without one the
//! component does not load. A call blocks the component until the response
//! body has arrived (the host's wall-clock timeout for the call still
//! applies).
//!
//! URLs and methods are parsed with the [`http`](::http) crate's types,
//! re-exported here as [`Uri`] and [`Method`].

use core::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, HeaderError, IncomingBody, Method as WasiMethod, OutgoingBody,
    OutgoingRequest, RequestOptions, Scheme,
};
use wasip2::io::streams::StreamError;

pub use ::http::{Method, Uri};

/// Response bodies larger than this fail with [`HttpErrorKind::TooLarge`]
/// unless [`Request::max_response_bytes`] says otherwise.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// At most this many bytes go into one `wasi:io` blocking write.
const WRITE_CHUNK: usize = 4096;
/// Bytes asked for per blocking read of the response body.
const READ_CHUNK: u64 = 64 * 1024;

/// An HTTP request under construction. Build it with [`Request::get`],
/// [`Request::post`] or [`Request::new`], then call [`Request::send`].
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout_ms: Option<u64>,
    max_response_bytes: usize,
    /// A builder step that failed (such as JSON encoding), reported by `send`.
    error: Option<HttpError>,
}

impl Request {
    /// A request with any method (`"PUT"`, `"DELETE"`, ...) to `url`.
    pub fn new(method: &str, url: &str) -> Self {
        Request {
            method: method.to_string(),
            url: url.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout_ms: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            error: None,
        }
    }

    /// A `GET` request to `url`.
    pub fn get(url: &str) -> Self {
        Self::new("GET", url)
    }

    /// A `POST` request to `url`.
    pub fn post(url: &str) -> Self {
        Self::new("POST", url)
    }

    /// Adds a header (names are case-insensitive; a repeated name adds
    /// another value).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the request body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the body to `value` as JSON, and `content-type:
    /// application/json` unless a content type was set already.
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => self.body = body,
            Err(e) => {
                self.error = Some(HttpError::new(
                    HttpErrorKind::InvalidRequest,
                    format!("cannot encode the JSON body: {e}"),
                ))
            }
        }
        if !self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        {
            self.headers
                .push(("content-type".to_string(), "application/json".to_string()));
        }
        self
    }

    /// Asks for connect, first-byte and between-bytes timeouts of `ms`
    /// milliseconds each. The host may clamp or ignore them.
    pub fn timeout_ms(mut self, ms: u64) -> Self {
        self.timeout_ms = Some(ms);
        self
    }

    /// Fails the request when the response body exceeds `bytes`
    /// (default [`DEFAULT_MAX_RESPONSE_BYTES`]).
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Sends the request and waits for the whole response.
    ///
    /// A response with any status (including 4xx and 5xx) is `Ok`; check
    /// [`Response::status`] or [`Response::is_success`].
    pub fn send(self) -> Result<Response, HttpError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let (scheme, authority, path_with_query) = split_url(&self.url)?;
        let method = wasi_method(&self.method)?;

        let headers = Fields::new();
        for (name, value) in &self.headers {
            headers
                .append(name, value.as_bytes())
                .map_err(|e| header_error(name, e))?;
        }
        let request = OutgoingRequest::new(headers);
        request
            .set_method(&method)
            .map_err(|()| invalid(format!("invalid method `{}`", self.method)))?;
        request
            .set_scheme(Some(&scheme))
            .map_err(|()| invalid(format!("invalid scheme in `{}`", self.url)))?;
        request
            .set_authority(Some(&authority))
            .map_err(|()| invalid(format!("invalid host in `{}`", self.url)))?;
        request
            .set_path_with_query(Some(&path_with_query))
            .map_err(|()| invalid(format!("invalid path or query in `{}`", self.url)))?;

        let options = self.timeout_ms.map(|ms| {
            let options = RequestOptions::new();
            let ns = ms.saturating_mul(1_000_000);
            // A host that does not support a timeout refuses it; the
            // request then goes out with the host's defaults.
            let _ = options.set_connect_timeout(Some(ns));
            let _ = options.set_first_byte_timeout(Some(ns));
            let _ = options.set_between_bytes_timeout(Some(ns));
            options
        });

        let body = request
            .body()
            .map_err(|()| other("the request body was already taken"))?;
        let future = outgoing_handler::handle(request, options).map_err(HttpError::from)?;
        write_body(&body, &self.body)?;
        OutgoingBody::finish(body, None).map_err(HttpError::from)?;

        let response = loop {
            match future.get() {
                Some(Ok(Ok(response))) => break response,
                Some(Ok(Err(code))) => return Err(code.into()),
                Some(Err(())) => return Err(other("the response was already taken")),
                None => future.subscribe().block(),
            }
        };

        let status = response.status();
        let headers = {
            let fields = response.headers();
            let entries = fields.entries();
            drop(fields);
            entries
                .into_iter()
                .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
                .collect()
        };
        let incoming = response
            .consume()
            .map_err(|()| other("the response body was already taken"))?;
        let body = read_body(&incoming, self.max_response_bytes)?;
        drop(IncomingBody::finish(incoming));
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// Writes `bytes` to an outgoing body in chunks the stream accepts.
fn write_body(body: &OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
    if bytes.is_empty() {
        return Ok(());
    }
    let stream = body
        .write()
        .map_err(|()| other("the request body stream was already taken"))?;
    for chunk in bytes.chunks(WRITE_CHUNK) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(|e| stream_error(e, "writing the request body"))?;
    }
    Ok(())
}

/// Reads a whole incoming body, failing past `max` bytes.
fn read_body(body: &IncomingBody, max: usize) -> Result<Vec<u8>, HttpError> {
    let stream = body
        .stream()
        .map_err(|()| other("the response body stream was already taken"))?;
    let mut out = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => {
                if out.len() + chunk.len() > max {
                    return Err(HttpError::new(
                        HttpErrorKind::TooLarge,
                        format!("the response body exceeds {max} bytes"),
                    ));
                }
                out.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => return Ok(out),
            Err(e) => return Err(stream_error(e, "reading the response body")),
        }
    }
}

/// A complete HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lowercase, as the host gives them) and values, in order;
    /// values that are not UTF-8 are converted lossily.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text; invalid UTF-8 is replaced with U+FFFD.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body decoded from JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            HttpError::new(
                HttpErrorKind::Decode,
                format!(
                    "the response body (HTTP {}) is not the expected JSON: {e}",
                    self.status
                ),
            )
        })
    }

    /// At most `max` bytes of the body as text, for error messages; the
    /// cut falls on a character boundary and is marked with `…`.
    pub fn body_excerpt(&self, max: usize) -> String {
        let text = self.text();
        if text.len() <= max {
            return text;
        }
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &text[..end])
    }
}

/// What kind of failure an [`HttpError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpErrorKind {
    /// The host's egress policy refused the destination.
    Denied,
    /// The request is malformed: URL, method, header, or body encoding.
    InvalidRequest,
    /// DNS, connecting or TLS failed.
    Connect,
    /// Something timed out.
    Timeout,
    /// The peer broke the HTTP protocol or the response was incomplete.
    Protocol,
    /// The response body exceeds the limit.
    TooLarge,
    /// The response body is not the JSON that was asked for.
    Decode,
    /// Anything else, including host-internal errors.
    Other,
}

/// Why an HTTP request failed, with a readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// The kind of failure.
    pub kind: HttpErrorKind,
    /// What happened, for people.
    pub message: String,
}

impl HttpError {
    /// An error of `kind` with `message`.
    pub fn new(kind: HttpErrorKind, message: impl Into<String>) -> Self {
        HttpError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HttpError {}

/// An HTTP failure becomes [`AdapterError::Platform`](crate::types::AdapterError::Platform)
/// with the error's message, so adapters can use `?` on [`Request::send`].
impl From<HttpError> for crate::types::AdapterError {
    fn from(e: HttpError) -> Self {
        crate::types::AdapterError::Platform(e.message)
    }
}

impl From<ErrorCode> for HttpError {
    fn from(code: ErrorCode) -> Self {
        use HttpErrorKind as K;
        let (kind, message) = match code {
            ErrorCode::HttpRequestDenied => {
                (K::Denied, "denied by the host's egress policy".to_string())
            }
            ErrorCode::DestinationIpProhibited => (
                K::Denied,
                "denied by the host's egress policy (the destination address is prohibited)"
                    .to_string(),
            ),
            ErrorCode::DnsTimeout => (K::Timeout, "DNS lookup timed out".to_string()),
            ErrorCode::DnsError(p) => (
                K::Connect,
                match (p.rcode, p.info_code) {
                    (Some(rcode), _) => format!("DNS lookup failed: {rcode}"),
                    (None, Some(info)) => format!("DNS lookup failed (info code {info})"),
                    (None, None) => "DNS lookup failed".to_string(),
                },
            ),
            ErrorCode::DestinationNotFound => (K::Connect, "destination not found".to_string()),
            ErrorCode::DestinationUnavailable => {
                (K::Connect, "destination unavailable".to_string())
            }
            ErrorCode::DestinationIpUnroutable => {
                (K::Connect, "destination address unroutable".to_string())
            }
            ErrorCode::ConnectionRefused => (K::Connect, "connection refused".to_string()),
            ErrorCode::ConnectionTerminated => (K::Connect, "connection terminated".to_string()),
            ErrorCode::ConnectionTimeout => (K::Timeout, "connection timed out".to_string()),
            ErrorCode::ConnectionReadTimeout => (
                K::Timeout,
                "timed out reading from the connection".to_string(),
            ),
            ErrorCode::ConnectionWriteTimeout => (
                K::Timeout,
                "timed out writing to the connection".to_string(),
            ),
            ErrorCode::ConnectionLimitReached => {
                (K::Connect, "connection limit reached".to_string())
            }
            ErrorCode::TlsProtocolError => (K::Connect, "TLS protocol error".to_string()),
            ErrorCode::TlsCertificateError => (K::Connect, "TLS certificate error".to_string()),
            ErrorCode::TlsAlertReceived(p) => (
                K::Connect,
                format!("TLS alert received{}", detail(p.alert_message.as_deref())),
            ),
            ErrorCode::HttpRequestLengthRequired => {
                (K::InvalidRequest, "content-length required".to_string())
            }
            ErrorCode::HttpRequestBodySize(_) => {
                (K::InvalidRequest, "request body too large".to_string())
            }
            ErrorCode::HttpRequestMethodInvalid => {
                (K::InvalidRequest, "invalid request method".to_string())
            }
            ErrorCode::HttpRequestUriInvalid => {
                (K::InvalidRequest, "invalid request URI".to_string())
            }
            ErrorCode::HttpRequestUriTooLong => {
                (K::InvalidRequest, "request URI too long".to_string())
            }
            ErrorCode::HttpRequestHeaderSectionSize(_) | ErrorCode::HttpRequestHeaderSize(_) => {
                (K::InvalidRequest, "request headers too large".to_string())
            }
            ErrorCode::HttpRequestTrailerSectionSize(_) | ErrorCode::HttpRequestTrailerSize(_) => {
                (K::InvalidRequest, "request trailers too large".to_string())
            }
            ErrorCode::HttpResponseIncomplete => (K::Protocol, "incomplete response".to_string()),
            ErrorCode::HttpResponseHeaderSectionSize(_) | ErrorCode::HttpResponseHeaderSize(_) => {
                (K::Protocol, "response headers too large".to_string())
            }
            ErrorCode::HttpResponseBodySize(_) => {
                (K::TooLarge, "response body too large".to_string())
            }
            ErrorCode::HttpResponseTrailerSectionSize(_)
            | ErrorCode::HttpResponseTrailerSize(_) => {
                (K::Protocol, "response trailers too large".to_string())
            }
            ErrorCode::HttpResponseTransferCoding(c) => (
                K::Protocol,
                format!(
                    "unsupported response transfer coding{}",
                    detail(c.as_deref())
                ),
            ),
            ErrorCode::HttpResponseContentCoding(c) => (
                K::Protocol,
                format!(
                    "unsupported response content coding{}",
                    detail(c.as_deref())
                ),
            ),
            ErrorCode::HttpResponseTimeout => (K::Timeout, "response timed out".to_string()),
            ErrorCode::HttpUpgradeFailed => (K::Protocol, "HTTP upgrade failed".to_string()),
            ErrorCode::HttpProtocolError => (K::Protocol, "HTTP protocol error".to_string()),
            ErrorCode::LoopDetected => (K::Protocol, "request loop detected".to_string()),
            ErrorCode::ConfigurationError => (
                K::Other,
                "the host's HTTP client is misconfigured".to_string(),
            ),
            ErrorCode::InternalError(m) => (
                K::Other,
                format!(
                    "internal error in the host's HTTP client{}",
                    detail(m.as_deref())
                ),
            ),
        };
        HttpError::new(kind, message)
    }
}

/// `": {text}"`, or nothing when there is no text.
fn detail(text: Option<&str>) -> String {
    match text {
        Some(t) if !t.is_empty() => format!(": {t}"),
        _ => String::new(),
    }
}

fn invalid(message: String) -> HttpError {
    HttpError::new(HttpErrorKind::InvalidRequest, message)
}

fn other(message: &str) -> HttpError {
    HttpError::new(HttpErrorKind::Other, message)
}

fn header_error(name: &str, e: HeaderError) -> HttpError {
    let why = match e {
        HeaderError::InvalidSyntax => "has invalid syntax",
        HeaderError::Forbidden => "is forbidden by the host",
        HeaderError::Immutable => "cannot be changed",
    };
    invalid(format!("header `{name}` {why}"))
}

fn stream_error(e: StreamError, doing: &str) -> HttpError {
    match e {
        StreamError::Closed => other(&format!("the stream closed while {doing}")),
        StreamError::LastOperationFailed(io) => match wasip2::http::types::http_error_code(&io) {
            Some(code) => {
                let mut error = HttpError::from(code);
                error.message = format!("{} while {doing}", error.message);
                error
            }
            None => other(&format!("{doing} failed: {}", io.to_debug_string())),
        },
    }
}

/// `name` as a `wasi:http` method: the standard ones in any case (`post`
/// is `POST`), others as written, if [`Method`] takes it as a token.
fn wasi_method(name: &str) -> Result<WasiMethod, HttpError> {
    let parsed = Method::from_bytes(name.to_ascii_uppercase().as_bytes())
        .map_err(|_| invalid(format!("invalid method `{name}`")))?;
    Ok(match parsed {
        Method::GET => WasiMethod::Get,
        Method::HEAD => WasiMethod::Head,
        Method::POST => WasiMethod::Post,
        Method::PUT => WasiMethod::Put,
        Method::DELETE => WasiMethod::Delete,
        Method::CONNECT => WasiMethod::Connect,
        Method::OPTIONS => WasiMethod::Options,
        Method::TRACE => WasiMethod::Trace,
        Method::PATCH => WasiMethod::Patch,
        _ => WasiMethod::Other(name.to_string()),
    })
}

/// Splits an absolute `http`/`https` URL, parsed as a [`Uri`], into scheme,
/// authority and path-with-query (the fragment is dropped).
fn split_url(url: &str) -> Result<(Scheme, String, String), HttpError> {
    let bad = |why: &str| invalid(format!("invalid URL `{url}`: {why}"));
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it contains whitespace or control characters"));
    }
    if !url.contains("://") {
        return Err(bad("expected http:// or https://"));
    }
    let uri: Uri = url.parse().map_err(|e| bad(&format!("{e}")))?;
    let scheme = match uri.scheme() {
        Some(s) if *s == ::http::uri::Scheme::HTTPS => Scheme::Https,
        Some(s) if *s == ::http::uri::Scheme::HTTP => Scheme::Http,
        _ => return Err(bad("only http and https are supported")),
    };
    let authority = match uri.authority() {
        Some(a) if a.as_str().contains('@') => {
            return Err(bad(
                "credentials in URLs are not supported; send them in a header",
            ));
        }
        Some(a) if !a.host().is_empty() => a.as_str().to_string(),
        _ => return Err(bad("no host")),
    };
    let path = match uri.query() {
        Some(query) => format!("{}?{query}", uri.path()),
        None => uri.path().to_string(),
    };
    Ok((scheme, authority, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str) -> (String, String, String) {
        let (scheme, authority, path) = split_url(url).unwrap();
        let scheme = match scheme {
            Scheme::Http => "http".to_string(),
            Scheme::Https => "https".to_string(),
            Scheme::Other(s) => s,
        };
        (scheme, authority, path)
    }

    #[test]
    fn splits_urls() {
        assert_eq!(
            parts("https://example.com"),
            ("https".into(), "example.com".into(), "/".into())
        );
        assert_eq!(
            parts("http://127.0.0.1:8080/a/b?x=1#frag"),
            ("http".into(), "127.0.0.1:8080".into(), "/a/b?x=1".into())
        );
        assert_eq!(
            parts("HTTPS://example.com?q=2"),
            ("https".into(), "example.com".into(), "/?q=2".into())
        );
    }

    #[test]
    fn rejects_bad_urls() {
        for url in [
            "example.com/x",
            "ftp://example.com/",
            "https:///path",
            "https://user:pw@example.com/",
            "https://exa mple.com/",
            "https://exa\u{7f}mple.com/",
        ] {
            let e = split_url(url).unwrap_err();
            assert_eq!(e.kind, HttpErrorKind::InvalidRequest, "{url}");
        }
    }

    #[test]
    fn keeps_what_the_old_splitter_kept() {
        assert_eq!(
            parts("https://example.com/a?"),
            ("https".into(), "example.com".into(), "/a?".into())
        );
        // Placeholders a hostile guest sends raw reach the host as written.
        assert_eq!(
            parts("http://127.0.0.1:9/leak?q=1&leak={secret}").2,
            "/leak?q=1&leak={secret}"
        );
        assert_eq!(
            parts("http://127.0.0.1:9/x?leak=${TELEGRAM_BOT_TOKEN}").2,
            "/x?leak=${TELEGRAM_BOT_TOKEN}"
        );
    }

    #[test]
    fn methods_are_tokens() {
        assert!(matches!(wasi_method("post"), Ok(WasiMethod::Post)));
        assert!(matches!(wasi_method("PATCH"), Ok(WasiMethod::Patch)));
        assert!(matches!(wasi_method("Purge"), Ok(WasiMethod::Other(m)) if m == "Purge"));
        assert!(wasi_method("bad method").is_err());
        assert!(wasi_method("").is_err());
    }

    #[test]
    fn denied_reads_well() {
        let e = HttpError::from(ErrorCode::HttpRequestDenied);
        assert_eq!(e.kind, HttpErrorKind::Denied);
        assert_eq!(e.to_string(), "denied by the host's egress policy");
    }

    #[test]
    fn excerpt_cuts_on_char_boundary() {
        let r = Response {
            status: 500,
            headers: vec![],
            body: "héllo wörld".as_bytes().to_vec(),
        };
        assert_eq!(r.body_excerpt(2), "h…");
        assert_eq!(r.body_excerpt(100), "héllo wörld");
    }
}
