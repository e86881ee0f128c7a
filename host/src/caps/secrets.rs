//! Secrets: loaded by the host, injected by the host, never seen by a component.
//!
//! A bot token in a component's memory could leave through any channel the component has, so
//! components never get one. A manifest instead *binds* each secret it needs to one destination
//! and one position in the requests to it, and the host puts the value there after the
//! egress allowlist has passed the request:
//!
//! | Position (string form)          | Example                          | Where the value goes         |
//! |---------------------------------|----------------------------------|------------------------------|
//! | `Header-Name: template`         | `Authorization: Bot {secret}`    | that request header          |
//! | `/path-template`                | `/bot{secret}`                   | prepended to the request path|
//! | `json:field.path`               | `json:d.token`                   | that JSON field of the first websocket frame |
//!
//! Each template holds `{secret}` exactly once. Bodies and queries are never positions: a
//! component could otherwise ask the platform to echo a placeholder back (send it as a chat
//! message) and read the token in the reply. For the same reason everything handed back to a
//! component is passed through a [`Scrubber`] first.
//!
//! Values come from the environment variable of the secret's name, or from the file
//! `secrets/NAME` in the airlock home, read through a [`cap_std::fs::Dir`] handle and refused if
//! anyone but its owner may read it ([`load_secret`]).

use std::borrow::Cow;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use http::{HeaderName, HeaderValue};

use crate::manifest::destination::{Destination, Scheme};

/// The placeholder a template holds exactly once.
pub const PLACEHOLDER: &str = "{secret}";

/// What scrubbed secret values are replaced with.
pub const REDACTED: &[u8] = b"[redacted]";

/// Largest secret file read, in bytes; tokens are far smaller.
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Headers that frame or route a request: the host sets them itself. No secret may be bound to
/// one, and egress drops whatever a component put there (see `caps::egress`).
pub const HOST_SET_HEADERS: [&str; 13] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "host",
    "http2-settings",
    "content-length",
    "te",
    "trailer",
    "expect",
];

/// The bytes of a secret. Printing one shows `[secret]`; the bytes are zeroed on drop.
#[derive(Clone)]
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    /// Wraps secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        SecretValue(bytes.into())
    }

    /// The secret bytes. Callers must not log, store or hand them to a component.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty (never true for a loaded secret).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

impl Drop for SecretValue {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// Where in a request a secret goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretPosition {
    /// A request header, its value rendered from `template` (e.g. `Bot {secret}`).
    Header {
        /// The header; components may not set it themselves.
        name: HeaderName,
        /// The header value, holding [`PLACEHOLDER`] once.
        template: String,
    },
    /// A prefix of the request path, rendered from `template` (e.g. `/bot{secret}`).
    PathPrefix {
        /// Starts with `/` and holds [`PLACEHOLDER`] once.
        template: String,
    },
    /// A JSON string field of the first frame a component sends on a websocket, named by a
    /// dotted path (e.g. `d.token`).
    WsJsonField {
        /// Dot-separated object keys.
        field: String,
    },
}

impl SecretPosition {
    /// A header position, validated.
    pub fn header(name: &str, template: &str) -> Result<Self, SecretError> {
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
            SecretError::position(
                format!("{name}: {template}"),
                format!("{name:?} is not a header name"),
            )
        })?;
        let position = SecretPosition::Header {
            name,
            template: template.trim().to_owned(),
        };
        position.validate()?;
        Ok(position)
    }

    /// A path-prefix position, validated.
    pub fn path_prefix(template: &str) -> Result<Self, SecretError> {
        let position = SecretPosition::PathPrefix {
            template: template.to_owned(),
        };
        position.validate()?;
        Ok(position)
    }

    /// A websocket JSON-field position, validated.
    pub fn ws_json_field(field: &str) -> Result<Self, SecretError> {
        let position = SecretPosition::WsJsonField {
            field: field.to_owned(),
        };
        position.validate()?;
        Ok(position)
    }

    /// Checks the rules for this position: one [`PLACEHOLDER`] per template, no other braces,
    /// header names the host does not own, paths without query or `..`, dotted JSON keys.
    pub fn validate(&self) -> Result<(), SecretError> {
        let fail = |why: String| SecretError::position(self.to_string(), why);
        match self {
            SecretPosition::Header { name, template } => {
                if HOST_SET_HEADERS.contains(&name.as_str()) {
                    return Err(fail(format!(
                        "the host sets the {name} header itself; bind the secret to another header"
                    )));
                }
                check_template(template).map_err(fail)?;
                let rest = template.replacen(PLACEHOLDER, "", 1);
                if HeaderValue::from_str(&rest).is_err() || !rest.is_ascii() {
                    return Err(fail(
                        "the template has characters a header value cannot hold".into(),
                    ));
                }
            }
            SecretPosition::PathPrefix { template } => {
                if !template.starts_with('/') {
                    return Err(fail(format!(
                        "a path prefix starts with '/', like /bot{PLACEHOLDER}"
                    )));
                }
                check_template(template).map_err(fail)?;
                let rest = template.replacen(PLACEHOLDER, "", 1);
                if let Some(c) = rest.chars().find(|&c| !(c == '/' || is_pchar(c))) {
                    return Err(fail(format!(
                        "{c:?} cannot appear in a path prefix (no query, fragment, spaces or escapes)"
                    )));
                }
                if template.split('/').any(|seg| seg == "." || seg == "..") {
                    return Err(fail("a path prefix cannot hold \".\" or \"..\"".into()));
                }
            }
            SecretPosition::WsJsonField { field } => {
                let ok = !field.is_empty()
                    && field.split('.').all(|key| {
                        !key.is_empty()
                            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    });
                if !ok {
                    return Err(fail(
                        "a JSON field is dot-separated keys of letters, digits and '_', like d.token"
                            .into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether this position can be used with destinations of `scheme`: headers and path
    /// prefixes for every scheme (a websocket handshake is an HTTP request), JSON fields only for
    /// websockets.
    pub fn fits(&self, scheme: Scheme) -> bool {
        match self {
            SecretPosition::Header { .. } | SecretPosition::PathPrefix { .. } => true,
            SecretPosition::WsJsonField { .. } => matches!(scheme, Scheme::Ws | Scheme::Wss),
        }
    }
}

/// `{secret}` exactly once, and no other braces (which would be a mistyped placeholder).
fn check_template(template: &str) -> Result<(), String> {
    match template.matches(PLACEHOLDER).count() {
        0 if template.contains(['{', '}']) => {
            return Err(format!(
                "the template must hold {PLACEHOLDER} once; the placeholder is spelled exactly {PLACEHOLDER}"
            ));
        }
        0 => return Err(format!("the template must hold {PLACEHOLDER} once")),
        1 => {}
        _ => return Err(format!("the template holds {PLACEHOLDER} more than once")),
    }
    let rest = template.replacen(PLACEHOLDER, "", 1);
    if rest.contains(['{', '}']) {
        return Err(format!(
            "the template has a brace outside {PLACEHOLDER}; the placeholder is spelled exactly {PLACEHOLDER}"
        ));
    }
    Ok(())
}

/// RFC 3986 `pchar` minus `%`: unreserved, sub-delims, `:` and `@`.
fn is_pchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@".contains(c)
}

impl fmt::Display for SecretPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretPosition::Header { name, template } => write!(f, "{name}: {template}"),
            SecretPosition::PathPrefix { template } => f.write_str(template),
            SecretPosition::WsJsonField { field } => write!(f, "json:{field}"),
        }
    }
}

/// Parses the string forms in the [module docs](self): `Name: template`, `/template`, or
/// `json:field`.
impl FromStr for SecretPosition {
    type Err = SecretError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with('/') {
            return SecretPosition::path_prefix(s);
        }
        if let Some(field) = s.strip_prefix("json:") {
            return SecretPosition::ws_json_field(field.trim());
        }
        match s.split_once(':') {
            Some((name, template)) => SecretPosition::header(name, template),
            None => Err(SecretError::position(
                s.to_owned(),
                format!(
                    "expected a header (Authorization: Bot {PLACEHOLDER}), a path prefix \
                     (/bot{PLACEHOLDER}) or a websocket JSON field (json:d.token)"
                ),
            )),
        }
    }
}

impl serde::Serialize for SecretPosition {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for SecretPosition {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A manifest's statement that secret `name` goes to `destination` at `position`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretBinding {
    /// The secret's name, `^[A-Z][A-Z0-9_]*$`; also its environment variable and file name.
    pub name: String,
    /// The one destination the secret is sent to.
    pub destination: Destination,
    /// Where in requests to `destination` it goes.
    pub position: SecretPosition,
}

impl SecretBinding {
    /// Checks the name, the position, and that the position fits the destination's scheme.
    pub fn validate(&self) -> Result<(), SecretError> {
        check_name(&self.name)?;
        self.position.validate()?;
        if !self.position.fits(self.destination.scheme()) {
            return Err(SecretError::position(
                self.position.to_string(),
                format!(
                    "a websocket JSON field needs a ws:// or wss:// destination, not {}",
                    self.destination
                ),
            ));
        }
        Ok(())
    }
}

/// A binding with its loaded value, checked to fit its position.
#[derive(Debug, Clone)]
pub struct BoundSecret {
    binding: SecretBinding,
    value: SecretValue,
}

impl BoundSecret {
    /// Pairs a binding with its value; fails if the binding is invalid or the value cannot be
    /// placed there (a header value with a line break, say).
    pub fn new(binding: SecretBinding, value: SecretValue) -> Result<Self, SecretError> {
        binding.validate()?;
        if value.is_empty() {
            return Err(SecretError::Empty {
                name: binding.name.clone(),
                place: "the value given".into(),
            });
        }
        let bound = BoundSecret { binding, value };
        if let SecretPosition::Header { .. } = bound.binding.position
            && bound.header().is_none()
        {
            return Err(SecretError::Unusable {
                name: bound.binding.name.clone(),
                why: "it holds a control character or line break, which a header cannot carry"
                    .into(),
            });
        }
        Ok(bound)
    }

    /// The binding.
    pub fn binding(&self) -> &SecretBinding {
        &self.binding
    }

    /// The value.
    pub fn value(&self) -> &SecretValue {
        &self.value
    }

    /// For a header position, the header and its rendered value (marked sensitive).
    pub fn header(&self) -> Option<(HeaderName, HeaderValue)> {
        let SecretPosition::Header { name, template } = &self.binding.position else {
            return None;
        };
        let mut bytes = self.render(template)?;
        let mut value = HeaderValue::from_bytes(bytes.expose()).ok();
        zeroize::Zeroize::zeroize(&mut bytes.0);
        if let Some(value) = &mut value {
            value.set_sensitive(true);
        }
        Some((name.clone(), value?))
    }

    /// For a path-prefix position, the rendered prefix, with the value percent-encoded where it
    /// is not a path character (so it cannot add segments or start a query).
    pub fn path_prefix(&self) -> Option<SecretValue> {
        let SecretPosition::PathPrefix { template } = &self.binding.position else {
            return None;
        };
        self.render(template)
    }

    /// `template` with its [`PLACEHOLDER`] replaced by the [injected](Self::injected) value.
    fn render(&self, template: &str) -> Option<SecretValue> {
        let (before, after) = template.split_once(PLACEHOLDER)?;
        let value = self.injected(UPPER_HEX);
        let mut out = Vec::with_capacity(before.len() + value.len() + after.len());
        out.extend_from_slice(before.as_bytes());
        out.extend_from_slice(value.expose());
        out.extend_from_slice(after.as_bytes());
        Some(SecretValue(out))
    }

    /// The value exactly as [`header`](Self::header) and [`path_prefix`](Self::path_prefix) put
    /// it into a request: as is in a header, and in a path with every byte that is not a path
    /// character percent-encoded with `hex` digits. (A websocket JSON field is not rendered
    /// here; it holds the value as is.)
    fn injected(&self, hex: &[u8; 16]) -> SecretValue {
        match self.binding.position {
            SecretPosition::PathPrefix { .. } => SecretValue(encode_except(
                self.value.expose(),
                |b| b.is_ascii() && is_pchar(b as char),
                hex,
            )),
            SecretPosition::Header { .. } | SecretPosition::WsJsonField { .. } => {
                self.value.clone()
            }
        }
    }

    /// Every spelling of this secret that [`Scrubber`] replaces: those of the raw value (see
    /// [`scrub`]) and the value as injected into requests, which for a path prefix is encoded
    /// differently from all of them (`abc/d+e=` is sent as `abc%2Fd+e=`), with upper- and
    /// lowercase hex.
    ///
    /// Derived from the same code that renders the value into requests, so that whatever a
    /// server echoes of what it was sent is scrubbed.
    pub fn scrub_forms(&self) -> Vec<SecretValue> {
        let mut out = forms(self.value.expose());
        for hex in [UPPER_HEX, LOWER_HEX] {
            let injected = self.injected(hex);
            if !injected.is_empty() && !out.iter().any(|f| f.0 == injected.0) {
                out.push(injected);
            }
        }
        out
    }
}

/// A secret name is `^[A-Z][A-Z0-9_]*$`, so it is a safe environment variable and file name.
pub fn check_name(name: &str) -> Result<(), SecretError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(SecretError::InvalidName {
            name: name.to_owned(),
        })
    }
}

/// Loads secret `name`: the environment variable `name` if set and non-empty, else the file
/// `secrets/NAME` under `home`. Error messages show the file as `$AIRLOCK_HOME/secrets/NAME`;
/// use [`load_secret_in`] to show the real path.
pub fn load_secret(name: &str, home: &cap_std::fs::Dir) -> Result<SecretValue, SecretError> {
    load_secret_in(name, home, Path::new("$AIRLOCK_HOME"))
}

/// [`load_secret`], with `home_path` (where `home` was opened) used in error messages so that
/// the fix they print can be pasted as is.
///
/// The file must be a regular file of at most 64 KiB that neither group nor others may read
/// (`chmod 600`); one trailing newline is dropped.
pub fn load_secret_in(
    name: &str,
    home: &cap_std::fs::Dir,
    home_path: &Path,
) -> Result<SecretValue, SecretError> {
    load_with_env(name, |var| std::env::var_os(var), home, home_path)
}

/// [`load_secret_in`] with the environment lookup passed in, so tests need not mutate the
/// process environment.
fn load_with_env(
    name: &str,
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
    home: &cap_std::fs::Dir,
    home_path: &Path,
) -> Result<SecretValue, SecretError> {
    check_name(name)?;
    if let Some(value) = env(name).filter(|v| !v.is_empty()) {
        return Ok(SecretValue::new(os_bytes(value)));
    }

    let relative = Path::new(crate::home::SECRETS_DIR).join(name);
    let path = home_path.join(&relative);
    let io = |source: std::io::Error| SecretError::Io {
        name: name.to_owned(),
        path: path.clone(),
        source,
    };
    let file = match home.open(&relative) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SecretError::Missing {
                name: name.to_owned(),
                path,
            });
        }
        Err(e) => return Err(io(e)),
    };
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(SecretError::NotAFile {
            name: name.to_owned(),
            path,
        });
    }
    #[cfg(unix)]
    {
        use cap_std::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretError::Readable {
                name: name.to_owned(),
                path,
                mode,
            });
        }
    }
    if meta.len() > MAX_SECRET_FILE {
        return Err(SecretError::TooLarge {
            name: name.to_owned(),
            path,
        });
    }
    // Sized up front so the buffer holding the secret is never reallocated (and copied).
    let mut value = SecretValue(Vec::with_capacity(MAX_SECRET_FILE as usize + 1));
    file.take(MAX_SECRET_FILE)
        .read_to_end(&mut value.0)
        .map_err(io)?;
    if value.0.ends_with(b"\n") {
        value.0.pop();
        if value.0.ends_with(b"\r") {
            value.0.pop();
        }
    }
    if value.is_empty() {
        return Err(SecretError::Empty {
            name: name.to_owned(),
            place: path.display().to_string(),
        });
    }
    Ok(value)
}

#[cfg(unix)]
fn os_bytes(value: std::ffi::OsString) -> Vec<u8> {
    std::os::unix::ffi::OsStringExt::into_vec(value)
}

#[cfg(not(unix))]
fn os_bytes(value: std::ffi::OsString) -> Vec<u8> {
    value.to_string_lossy().into_owned().into_bytes()
}

/// Replaces every occurrence of each secret in `bytes` with `[redacted]`: the raw value, its
/// percent-encoded forms (upper- and lowercase hex), and its JSON form with `/` escaped.
///
/// Borrows `bytes` unchanged when no secret occurs in it. For secrets that were injected into
/// requests, use a [`Scrubber`] made [`for_bound`](Scrubber::for_bound) them, which also knows
/// how each was rendered.
pub fn scrub<'a>(bytes: &'a [u8], secrets: &[&SecretValue]) -> Cow<'a, [u8]> {
    Scrubber::for_values(secrets).scrub(bytes)
}

/// Every spelling of a set of secrets, ready to scrub any number of byte strings.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    /// Longest first, so that a form is never cut short by a shorter one inside it.
    forms: Vec<SecretValue>,
}

impl Scrubber {
    /// Scrubs the forms of raw values that [`scrub`] knows.
    pub fn for_values(secrets: &[&SecretValue]) -> Self {
        Scrubber::from_forms(secrets.iter().flat_map(|s| forms(s.expose())))
    }

    /// Scrubs every [`BoundSecret::scrub_forms`] of `secrets`: the raw forms and the exact
    /// bytes each was injected as.
    pub fn for_bound<'a>(secrets: impl IntoIterator<Item = &'a BoundSecret>) -> Self {
        Scrubber::from_forms(secrets.into_iter().flat_map(BoundSecret::scrub_forms))
    }

    fn from_forms(all: impl Iterator<Item = SecretValue>) -> Self {
        let mut forms: Vec<SecretValue> = Vec::new();
        for form in all {
            if !form.is_empty() && !forms.iter().any(|f| f.0 == form.0) {
                forms.push(form);
            }
        }
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        Scrubber { forms }
    }

    /// `bytes` with every form replaced by `[redacted]`; borrowed when there was none.
    pub fn scrub<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        let mut out = Cow::Borrowed(bytes);
        for form in &self.forms {
            if let Some(replaced) = replace_all(&out, form.expose(), REDACTED) {
                out = Cow::Owned(replaced);
            }
        }
        out
    }
}

/// The spellings of a raw secret that a server might echo: as is, percent-encoded (upper- and
/// lowercase hex), and as a JSON string with `/` escaped.
fn forms(secret: &[u8]) -> Vec<SecretValue> {
    if secret.is_empty() {
        return Vec::new();
    }
    let mut forms = vec![SecretValue::new(secret)];
    let mut push = |form: Vec<u8>| {
        if !forms.iter().any(|f| f.0 == form) {
            forms.push(SecretValue(form));
        }
    };
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
    push(encode_except(secret, unreserved, UPPER_HEX));
    push(encode_except(secret, unreserved, LOWER_HEX));
    if secret.contains(&b'/') {
        let mut json = Vec::with_capacity(secret.len() + 4);
        for &b in secret {
            if b == b'/' {
                json.push(b'\\');
            }
            json.push(b);
        }
        push(json);
    }
    forms
}

const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";
const LOWER_HEX: &[u8; 16] = b"0123456789abcdef";

/// Percent-encodes, with `hex` digits, every byte for which `keep` is false.
fn encode_except(bytes: &[u8], keep: impl Fn(u8) -> bool, hex: &[u8; 16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if keep(b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', hex[usize::from(b >> 4)], hex[usize::from(b & 15)]]);
        }
    }
    out
}

/// `haystack` with every non-overlapping `needle` replaced, or `None` if there is none.
fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Option<Vec<u8>> {
    let find = |from: usize| {
        haystack
            .get(from..)?
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|i| i + from)
    };
    let mut at = find(0)?;
    let mut out = Vec::with_capacity(haystack.len());
    let mut from = 0;
    loop {
        out.extend_from_slice(&haystack[from..at]);
        out.extend_from_slice(with);
        from = at + needle.len();
        match find(from) {
            Some(next) => at = next,
            None => break,
        }
    }
    out.extend_from_slice(&haystack[from..]);
    Some(out)
}

/// Why a secret could not be bound or loaded. Messages never contain a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The name does not match `^[A-Z][A-Z0-9_]*$`.
    #[error(
        "invalid secret name {name:?}: names are uppercase letters, digits and '_', \
         starting with a letter, like TELEGRAM_BOT_TOKEN"
    )]
    InvalidName {
        /// The name as given.
        name: String,
    },
    /// A position (header, path prefix or JSON field) that breaks the rules.
    #[error("invalid secret position {position:?}: {why}")]
    InvalidPosition {
        /// The position as given.
        position: String,
        /// What is wrong with it.
        why: String,
    },
    /// Neither the environment variable nor the file is there.
    #[error(
        "secret {name} is not set: set the environment variable {name}, \
         or write it to {} and run `chmod 600 {}`",
        path.display(), path.display()
    )]
    Missing {
        /// The secret's name.
        name: String,
        /// Where the file was looked for.
        path: PathBuf,
    },
    /// The source exists but holds nothing.
    #[error("secret {name} is empty in {place}")]
    Empty {
        /// The secret's name.
        name: String,
        /// Where it was read from.
        place: String,
    },
    /// The file may be read by group or others.
    #[error(
        "secret file {} may be read by other users (mode {mode:03o}); \
         refusing to use it. Fix: chmod 600 {}",
        path.display(), path.display()
    )]
    Readable {
        /// The secret's name.
        name: String,
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The path is a directory or something else that is not a file.
    #[error("secret {name}: {} is not a regular file", path.display())]
    NotAFile {
        /// The secret's name.
        name: String,
        /// The path.
        path: PathBuf,
    },
    /// The file is larger than any token.
    #[error("secret {name}: {} is larger than 64 KiB; is it the right file?", path.display())]
    TooLarge {
        /// The secret's name.
        name: String,
        /// The file.
        path: PathBuf,
    },
    /// Reading the file failed.
    #[error("secret {name}: cannot read {}: {source}", path.display())]
    Io {
        /// The secret's name.
        name: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The value cannot be put where the binding says.
    #[error("secret {name} cannot be used at its position: {why}")]
    Unusable {
        /// The secret's name.
        name: String,
        /// Why.
        why: String,
    },
}

impl SecretError {
    fn position(position: String, why: String) -> Self {
        SecretError::InvalidPosition { position, why }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(name: &str, dest: &str, position: &str) -> SecretBinding {
        SecretBinding {
            name: name.into(),
            destination: dest.parse().unwrap(),
            position: position.parse().unwrap(),
        }
    }

    #[test]
    fn value_never_prints() {
        let v = SecretValue::new("123:abc");
        assert_eq!(format!("{v}"), "[secret]");
        assert_eq!(format!("{v:?}"), "[secret]");
        let bound = BoundSecret::new(
            binding("TOKEN", "https://api.telegram.org", "/bot{secret}"),
            v,
        )
        .unwrap();
        assert!(!format!("{bound:?}").contains("123:abc"));
        let (_, header) = BoundSecret::new(
            binding(
                "TOKEN",
                "https://discord.com",
                "Authorization: Bot {secret}",
            ),
            SecretValue::new("123:abc"),
        )
        .unwrap()
        .header()
        .unwrap();
        assert!(header.is_sensitive());
        assert!(!format!("{header:?}").contains("123:abc"));
    }

    #[test]
    fn positions_parse() {
        // (input, parsed, Display)
        let cases: &[(&str, SecretPosition, &str)] = &[
            (
                "Authorization: Bot {secret}",
                SecretPosition::Header {
                    name: http::header::AUTHORIZATION,
                    template: "Bot {secret}".into(),
                },
                "authorization: Bot {secret}",
            ),
            (
                "X-Api-Key:{secret}",
                SecretPosition::Header {
                    name: HeaderName::from_static("x-api-key"),
                    template: "{secret}".into(),
                },
                "x-api-key: {secret}",
            ),
            (
                "/bot{secret}",
                SecretPosition::PathPrefix {
                    template: "/bot{secret}".into(),
                },
                "/bot{secret}",
            ),
            (
                "/v1/{secret}/",
                SecretPosition::PathPrefix {
                    template: "/v1/{secret}/".into(),
                },
                "/v1/{secret}/",
            ),
            (
                "json:d.token",
                SecretPosition::WsJsonField {
                    field: "d.token".into(),
                },
                "json:d.token",
            ),
        ];
        for (input, expected, display) in cases {
            let p: SecretPosition = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(&p, expected, "{input}");
            assert_eq!(p.to_string(), *display, "{input}");
            assert_eq!(p.to_string().parse::<SecretPosition>().unwrap(), p);
        }
    }

    #[test]
    fn positions_refused() {
        // (input, a piece of the reason)
        #[rustfmt::skip]
        let cases: &[(&str, &str)] = &[
            ("Authorization: Bot", "must hold {secret} once"),
            ("Authorization: {secret} {secret}", "more than once"),
            ("Authorization: Bot {SECRET}", "spelled exactly {secret}"),
            ("Authorization: Bot {token}{secret}", "brace outside"),
            ("Host: {secret}", "sets the host header itself"),
            ("Content-Length: {secret}", "sets the content-length header itself"),
            ("Proxy-Authorization: {secret}", "itself"),
            ("Bad Header: {secret}", "not a header name"),
            ("X-Key: {secret}\u{7f}", "cannot hold"),
            ("bot{secret}", "expected a header"),
            ("/bot", "must hold {secret} once"),
            ("/bot{secret}?x=1", "'?' cannot appear"),
            ("/bot{secret}#x", "'#' cannot appear"),
            ("/b ot{secret}", "' ' cannot appear"),
            ("/b%20{secret}", "'%' cannot appear"),
            ("/../{secret}", "\"..\""),
            ("json:", "dot-separated"),
            ("json:d..token", "dot-separated"),
            ("json:d.to-ken", "dot-separated"),
        ];
        for &(input, why) in cases {
            let err = input
                .parse::<SecretPosition>()
                .expect_err(&format!("{input:?} should be refused"))
                .to_string();
            assert!(err.contains(why), "{input:?}: {err}");
        }
    }

    #[test]
    fn bindings_validate() {
        assert!(
            binding("TOKEN", "wss://gateway.discord.gg", "json:d.token")
                .validate()
                .is_ok()
        );
        assert!(
            binding(
                "TOKEN",
                "wss://gateway.discord.gg",
                "Authorization: {secret}"
            )
            .validate()
            .is_ok()
        );
        let err = binding("TOKEN", "https://discord.com", "json:d.token")
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("needs a ws:// or wss://"), "{err}");
        for bad in ["", "token", "1TOKEN", "TOKEN-X", "TÖKEN", "_X"] {
            let err = binding(bad, "https://a.example", "/x{secret}")
                .validate()
                .unwrap_err();
            assert!(matches!(err, SecretError::InvalidName { .. }), "{bad:?}");
        }
        for good in ["T", "TELEGRAM_BOT_TOKEN", "A1_"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn rendering() {
        let bound = BoundSecret::new(
            binding("T", "https://a.example", "Authorization: Bot {secret}"),
            SecretValue::new("123:abc"),
        )
        .unwrap();
        let (name, value) = bound.header().unwrap();
        assert_eq!(name, http::header::AUTHORIZATION);
        assert_eq!(value.as_bytes(), b"Bot 123:abc");
        assert!(bound.path_prefix().is_none());

        let bound = BoundSecret::new(
            binding("T", "https://a.example", "/bot{secret}"),
            SecretValue::new("12/3:a?b c%"),
        )
        .unwrap();
        assert_eq!(
            bound.path_prefix().unwrap().expose(),
            b"/bot12%2F3:a%3Fb%20c%25"
        );
        assert!(bound.header().is_none());

        let err = BoundSecret::new(
            binding("T", "https://a.example", "Authorization: Bot {secret}"),
            SecretValue::new("abc\r\nX-Evil: 1"),
        )
        .unwrap_err();
        assert!(matches!(err, SecretError::Unusable { .. }), "{err}");
        let err = BoundSecret::new(
            binding("T", "https://a.example", "/bot{secret}"),
            SecretValue::new(""),
        )
        .unwrap_err();
        assert!(matches!(err, SecretError::Empty { .. }), "{err}");
    }

    #[test]
    fn scrub_replaces_every_form() {
        let a = SecretValue::new("123:abc/def");
        let b = SecretValue::new("zzz");
        // (input, output)
        #[rustfmt::skip]
        let cases: &[(&[u8], &[u8])] = &[
            (b"nothing here", b"nothing here"),
            (b"123:abc/def", b"[redacted]"),
            (b"x123:abc/defy123:abc/def", b"x[redacted]y[redacted]"),
            (b"token=123%3Aabc%2Fdef&x", b"token=[redacted]&x"),
            (b"token=123%3aabc%2fdef", b"token=[redacted]"),
            (br#"{"t":"123:abc\/def"}"#, br#"{"t":"[redacted]"}"#),
            (b"zzz and 123:abc/def", b"[redacted] and [redacted]"),
            (b"123:abc/de", b"123:abc/de"),
            (b"", b""),
        ];
        for &(input, expected) in cases {
            let out = scrub(input, &[&a, &b]);
            assert_eq!(&*out, expected, "{:?}", String::from_utf8_lossy(input));
        }
        assert!(matches!(scrub(b"clean", &[&a]), Cow::Borrowed(_)));
        assert!(matches!(
            scrub(b"anything", &[&SecretValue::new("")]),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn bound_scrubbing_covers_the_bytes_injected() {
        let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        // (position, secret, the secret as the request carries it, its rendering scrubbed)
        #[rustfmt::skip]
        let cases = [
            ("/bot{secret}", "abc/def+ghi=", "abc%2Fdef+ghi=", "/bot[redacted]"),
            ("/bot{secret}", "p@ss w0rd", "p@ss%20w0rd", "/bot[redacted]"),
            ("/v1/{secret}/", "tok:en/x", "tok:en%2Fx", "/v1/[redacted]/"),
            ("/k/{secret}", "\u{fc}%?#x", "%C3%BC%25%3F%23x", "/k/[redacted]"),
            ("Authorization: Bot {secret}", "p@ss w0rd", "p@ss w0rd", "Bot [redacted]"),
            ("X-Key: {secret}", "abc/def+ghi=", "abc/def+ghi=", "[redacted]"),
        ];
        for (position, value, sent, scrubbed) in cases {
            let bound = BoundSecret::new(
                binding("T", "https://a.example", position),
                SecretValue::new(value),
            )
            .unwrap();
            // Exactly what injection put into the request.
            let rendered = match bound.path_prefix() {
                Some(prefix) => prefix.expose().to_vec(),
                None => bound.header().unwrap().1.as_bytes().to_vec(),
            };
            assert!(contains(&rendered, sent.as_bytes()), "{value}");
            let scrubber = Scrubber::for_bound([&bound]);

            let echoed = [b"echo ".as_slice(), &rendered, b" done"].concat();
            let out = scrubber.scrub(&echoed);
            assert_eq!(
                String::from_utf8_lossy(&out),
                format!("echo {scrubbed} done"),
                "{value}"
            );
            // The same rendering with lowercase escapes, and the forms of the raw value.
            let mut lower = sent.as_bytes().to_vec();
            for i in 0..lower.len() {
                if i >= 1 && lower[i - 1] == b'%' || i >= 2 && lower[i - 2] == b'%' {
                    lower[i] = lower[i].to_ascii_lowercase();
                }
            }
            let lower = String::from_utf8(lower).unwrap();
            for form in [lower.as_str(), value, &value.replace('/', "\\/")] {
                let out = scrubber.scrub(form.as_bytes());
                assert_eq!(&*out, REDACTED, "{value}: {form}");
            }
            for fully in [UPPER_HEX, LOWER_HEX] {
                let encoded = encode_except(value.as_bytes(), |b| b.is_ascii_alphanumeric(), fully);
                assert!(!contains(&scrubber.scrub(&encoded), value.as_bytes()));
            }
        }
        // What scrubbing removes is derived from what injection writes: every scrub form of a
        // path-prefix secret that is not a form of the raw value is the injected one.
        let bound = BoundSecret::new(
            binding("T", "https://a.example", "/bot{secret}"),
            SecretValue::new("a/b+c"),
        )
        .unwrap();
        let raw: Vec<Vec<u8>> = forms(b"a/b+c")
            .iter()
            .map(|f| f.expose().to_vec())
            .collect();
        let extra: Vec<Vec<u8>> = bound
            .scrub_forms()
            .iter()
            .map(|f| f.expose().to_vec())
            .filter(|f| !raw.contains(f))
            .collect();
        assert_eq!(extra, [b"a%2Fb+c".to_vec(), b"a%2fb+c".to_vec()]);
        assert!(matches!(scrubber_borrows(&bound), Cow::Borrowed(_)));
    }

    fn scrubber_borrows(bound: &BoundSecret) -> Cow<'static, [u8]> {
        Scrubber::for_bound([bound]).scrub(b"nothing secret here")
    }

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempHome(PathBuf, cap_std::fs::Dir);

    impl TempHome {
        fn new(tag: &str) -> Self {
            static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join(format!("airlock-secrets-{tag}-{}-{n}", std::process::id(),));
            std::fs::create_dir_all(path.join("secrets")).unwrap();
            let dir =
                cap_std::fs::Dir::open_ambient_dir(&path, cap_std::ambient_authority()).unwrap();
            TempHome(path, dir)
        }

        fn write(&self, name: &str, contents: &[u8], mode: u32) -> PathBuf {
            let file = self.0.join("secrets").join(name);
            std::fs::write(&file, contents).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            }
            let _ = mode;
            file
        }
    }

    impl Drop for TempHome {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    // The names below are chosen so that no test environment sets them.

    #[test]
    fn loads_from_file_and_trims_one_newline() {
        let home = TempHome::new("file");
        home.write("AIRLOCK_TEST_FILE_SECRET", b"123:abc\n", 0o600);
        let v = load_secret("AIRLOCK_TEST_FILE_SECRET", &home.1).unwrap();
        assert_eq!(v.expose(), b"123:abc");
        home.write("AIRLOCK_TEST_CRLF_SECRET", b"123:abc\r\n", 0o400);
        let v = load_secret("AIRLOCK_TEST_CRLF_SECRET", &home.1).unwrap();
        assert_eq!(v.expose(), b"123:abc");
        home.write("AIRLOCK_TEST_EMPTY_SECRET", b"\n", 0o600);
        let err = load_secret("AIRLOCK_TEST_EMPTY_SECRET", &home.1).unwrap_err();
        assert!(matches!(err, SecretError::Empty { .. }), "{err}");
    }

    #[test]
    fn environment_wins_over_file() {
        let home = TempHome::new("env");
        home.write("TEST_SECRET", b"from-file", 0o600);
        let env =
            |value: &'static str| move |var: &str| (var == "TEST_SECRET").then(|| value.into());
        let v = load_with_env("TEST_SECRET", env("from-env"), &home.1, &home.0).unwrap();
        assert_eq!(v.expose(), b"from-env");
        // An empty variable counts as unset.
        let v = load_with_env("TEST_SECRET", env(""), &home.1, &home.0).unwrap();
        assert_eq!(v.expose(), b"from-file");
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_file_others_can_read() {
        let home = TempHome::new("mode");
        for mode in [0o640, 0o604, 0o644, 0o660, 0o606] {
            home.write("AIRLOCK_TEST_OPEN_SECRET", b"x", mode);
            let err = load_secret_in("AIRLOCK_TEST_OPEN_SECRET", &home.1, &home.0).unwrap_err();
            let expected_fix = format!(
                "chmod 600 {}",
                home.0.join("secrets/AIRLOCK_TEST_OPEN_SECRET").display()
            );
            assert!(
                matches!(err, SecretError::Readable { .. }),
                "{mode:o}: {err}"
            );
            assert!(err.to_string().contains(&expected_fix), "{err}");
        }
    }

    #[test]
    fn missing_names_both_places() {
        let home = TempHome::new("missing");
        let err = load_secret("AIRLOCK_TEST_MISSING_SECRET", &home.1).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, SecretError::Missing { .. }));
        assert!(
            msg.contains("environment variable AIRLOCK_TEST_MISSING_SECRET"),
            "{msg}"
        );
        assert!(
            msg.contains("$AIRLOCK_HOME/secrets/AIRLOCK_TEST_MISSING_SECRET"),
            "{msg}"
        );
    }

    #[test]
    fn refuses_bad_names_and_non_files() {
        let home = TempHome::new("names");
        for bad in ["../X", "secrets", "lower", "A/B", ""] {
            let err = load_secret(bad, &home.1).unwrap_err();
            assert!(
                matches!(err, SecretError::InvalidName { .. }),
                "{bad:?}: {err}"
            );
        }
        std::fs::create_dir(home.0.join("secrets/AIRLOCK_TEST_DIR_SECRET")).unwrap();
        let err = load_secret("AIRLOCK_TEST_DIR_SECRET", &home.1).unwrap_err();
        assert!(
            matches!(err, SecretError::NotAFile { .. } | SecretError::Io { .. }),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_cannot_escape_home() {
        let home = TempHome::new("escape");
        let outside = TempHome::new("outside");
        let target = outside.write("OUTSIDE", b"stolen", 0o600);
        std::os::unix::fs::symlink(&target, home.0.join("secrets/AIRLOCK_TEST_LINK_SECRET"))
            .unwrap();
        let err = load_secret("AIRLOCK_TEST_LINK_SECRET", &home.1).unwrap_err();
        assert!(matches!(err, SecretError::Io { .. }), "{err}");
    }
}
