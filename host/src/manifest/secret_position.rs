//! [`SecretPosition`]: where in a request a secret goes, its templates, and its string form.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use http::{HeaderName, HeaderValue};

use super::secret_binding::BindingError;
use crate::net::destination::Scheme;

/// The placeholder a template holds exactly once.
pub const PLACEHOLDER: &str = "{secret}";

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

/// Where in a request a secret goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretPosition {
    /// A request header, its value rendered from `template` (e.g. `Bot {secret}`).
    ///
    /// With `under`, only requests whose path is at or below that path carry it. Of the
    /// bindings of one destination that set the same header, a request gets the one whose
    /// `under` matches its path most closely (an unscoped one matches every path, least
    /// closely): so two tokens can share a destination and a header, each for its own
    /// requests (Slack's app token for `/api/apps.connections.open`, its bot token for the
    /// rest of `/api`).
    Header {
        /// The header; components may not set it themselves.
        name: HeaderName,
        /// The header value, holding [`PLACEHOLDER`] once.
        template: String,
        /// The request paths it applies to: this path and those below it.
        under: Option<String>,
    },
    /// A prefix of the request path, rendered from `template` (e.g. `/bot{secret}`).
    ///
    /// With `under`, the binding applies only to request paths at or below that path, and the
    /// rendered template replaces it: under `/file`, template `/file/bot{secret}` turns
    /// `/file/photos/1.jpg` into `/file/bot<value>/photos/1.jpg`. Without `under` it applies to
    /// every path no scoped binding of the same destination claims, and is put in front.
    PathPrefix {
        /// Starts with `/` and holds [`PLACEHOLDER`] once.
        template: String,
        /// The request paths it applies to: this path and those below it.
        under: Option<String>,
    },
    /// A JSON string field of the first frame a component sends on a websocket, named by a
    /// dotted path (e.g. `d.token`).
    WsJsonField {
        /// Dot-separated object keys.
        field: String,
    },
}

impl SecretPosition {
    /// A header position for every path, validated.
    pub fn header(name: &str, template: &str) -> Result<Self, BindingError> {
        Self::header_under(name, template, None)
    }

    /// A header position for the paths at or below `under` (all paths for `None`), validated.
    pub fn header_under(
        name: &str,
        template: &str,
        under: Option<&str>,
    ) -> Result<Self, BindingError> {
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
            BindingError::position(
                format!("{name}: {template}"),
                format!("{name:?} is not a header name"),
            )
        })?;
        let position = SecretPosition::Header {
            name,
            template: template.trim().to_owned(),
            under: under.map(str::to_owned),
        };
        position.validate()?;
        Ok(position)
    }

    /// A path-prefix position for every path, validated.
    pub fn path_prefix(template: &str) -> Result<Self, BindingError> {
        Self::path_prefix_under(template, None)
    }

    /// A path-prefix position for the paths at or below `under` (all paths for `None`),
    /// validated.
    pub fn path_prefix_under(template: &str, under: Option<&str>) -> Result<Self, BindingError> {
        let position = SecretPosition::PathPrefix {
            template: template.to_owned(),
            under: under.map(str::to_owned),
        };
        position.validate()?;
        Ok(position)
    }

    /// Whether a header or path-prefix position applies to request path `path`, and how
    /// specific the match is (the length of `under`; 0 for an unscoped one). `None` for a
    /// websocket JSON field and for paths outside `under`.
    pub fn path_match(&self, path: &str) -> Option<usize> {
        let (SecretPosition::PathPrefix { under, .. } | SecretPosition::Header { under, .. }) =
            self
        else {
            return None;
        };
        match under {
            None => Some(0),
            Some(u) => {
                let below = path.strip_prefix(u.as_str())?;
                (below.is_empty() || below.starts_with('/') || below.starts_with('?'))
                    .then_some(u.len())
            }
        }
    }

    /// The paths this position is scoped to, if it is.
    pub fn under(&self) -> Option<&str> {
        match self {
            SecretPosition::Header { under, .. } | SecretPosition::PathPrefix { under, .. } => {
                under.as_deref()
            }
            SecretPosition::WsJsonField { .. } => None,
        }
    }

    /// A websocket JSON-field position, validated.
    pub fn ws_json_field(field: &str) -> Result<Self, BindingError> {
        let position = SecretPosition::WsJsonField {
            field: field.to_owned(),
        };
        position.validate()?;
        Ok(position)
    }

    /// Checks the rules for this position: one [`PLACEHOLDER`] per template, no other braces,
    /// header names the host does not own, paths without query or `..`, dotted JSON keys.
    pub fn validate(&self) -> Result<(), BindingError> {
        let fail = |why: String| BindingError::position(self.to_string(), why);
        if let Some(u) = self.under() {
            let ok = u.starts_with('/')
                && u.len() > 1
                && !u.ends_with('/')
                && u[1..]
                    .split('/')
                    .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
                && u.chars().all(|c| c == '/' || is_pchar(c));
            if !ok {
                return Err(fail(format!(
                    "`under` is a request path like /file: it starts with '/', does not end \
                     with one, and has no empty, \".\" or \"..\" segments (not {u:?})"
                )));
            }
        }
        match self {
            SecretPosition::Header { name, template, .. } => {
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
            SecretPosition::PathPrefix { template, .. } => {
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
pub(crate) fn is_pchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@".contains(c)
}

impl fmt::Display for SecretPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretPosition::Header {
                name,
                template,
                under: None,
            } => write!(f, "{name}: {template}"),
            SecretPosition::Header {
                name,
                template,
                under: Some(under),
            } => write!(f, "{under} => {name}: {template}"),
            SecretPosition::PathPrefix {
                template,
                under: None,
            } => f.write_str(template),
            SecretPosition::PathPrefix {
                template,
                under: Some(under),
            } => write!(f, "{under} => {template}"),
            SecretPosition::WsJsonField { field } => write!(f, "json:{field}"),
        }
    }
}

/// Parses the string forms in the [module docs](super): `Name: template`, `/template`,
/// `/under => /template`, `/under => Name: template`, or `json:field`.
impl FromStr for SecretPosition {
    type Err = BindingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with('/') {
            return match s.split_once(" => ") {
                Some((under, template)) if template.trim().starts_with('/') => {
                    SecretPosition::path_prefix_under(template.trim(), Some(under.trim()))
                }
                Some((under, header)) => match header.split_once(':') {
                    Some((name, template)) => {
                        SecretPosition::header_under(name, template, Some(under.trim()))
                    }
                    None => Err(BindingError::position(
                        s.to_owned(),
                        format!(
                            "after `=>` comes a path prefix (/bot{PLACEHOLDER}) or a header \
                             (Authorization: Bearer {PLACEHOLDER})"
                        ),
                    )),
                },
                None => SecretPosition::path_prefix(s),
            };
        }
        if let Some(field) = s.strip_prefix("json:") {
            return SecretPosition::ws_json_field(field.trim());
        }
        match s.split_once(':') {
            Some((name, template)) => SecretPosition::header(name, template),
            None => Err(BindingError::position(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse() {
        // (input, parsed, Display)
        let cases: &[(&str, SecretPosition, &str)] = &[
            (
                "Authorization: Bot {secret}",
                SecretPosition::Header {
                    name: http::header::AUTHORIZATION,
                    template: "Bot {secret}".into(),
                    under: None,
                },
                "authorization: Bot {secret}",
            ),
            (
                "/api/apps.connections.open => Authorization: Bearer {secret}",
                SecretPosition::Header {
                    name: http::header::AUTHORIZATION,
                    template: "Bearer {secret}".into(),
                    under: Some("/api/apps.connections.open".into()),
                },
                "/api/apps.connections.open => authorization: Bearer {secret}",
            ),
            (
                "X-Api-Key:{secret}",
                SecretPosition::Header {
                    name: HeaderName::from_static("x-api-key"),
                    template: "{secret}".into(),
                    under: None,
                },
                "x-api-key: {secret}",
            ),
            (
                "/bot{secret}",
                SecretPosition::PathPrefix {
                    template: "/bot{secret}".into(),
                    under: None,
                },
                "/bot{secret}",
            ),
            (
                "/v1/{secret}/",
                SecretPosition::PathPrefix {
                    template: "/v1/{secret}/".into(),
                    under: None,
                },
                "/v1/{secret}/",
            ),
            (
                "/file => /file/bot{secret}",
                SecretPosition::PathPrefix {
                    template: "/file/bot{secret}".into(),
                    under: Some("/file".into()),
                },
                "/file => /file/bot{secret}",
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
    fn path_scopes() {
        let any = SecretPosition::path_prefix("/bot{secret}").unwrap();
        let files = SecretPosition::path_prefix_under("/file/bot{secret}", Some("/file")).unwrap();
        let header = SecretPosition::header("X-Key", "{secret}").unwrap();
        let scoped_header =
            SecretPosition::header_under("X-Key", "{secret}", Some("/file")).unwrap();
        let field = SecretPosition::ws_json_field("d.token").unwrap();
        // (path, unscoped, under /file)
        let cases = [
            ("/getMe", Some(0), None),
            ("/file", Some(0), Some(5)),
            ("/file/photos/1.jpg", Some(0), Some(5)),
            ("/file?x", Some(0), Some(5)),
            ("/files/1", Some(0), None),
            ("/", Some(0), None),
        ];
        for (path, unscoped, scoped) in cases {
            assert_eq!(any.path_match(path), unscoped, "{path}");
            assert_eq!(files.path_match(path), scoped, "{path}");
            assert_eq!(header.path_match(path), unscoped, "{path}");
            assert_eq!(scoped_header.path_match(path), scoped, "{path}");
            assert_eq!(field.path_match(path), None, "{path}");
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
            ("/ => /bot{secret}", "`under` is a request path"),
            ("/file/ => /bot{secret}", "`under` is a request path"),
            ("/a/../b => /bot{secret}", "`under` is a request path"),
            ("/a b => /bot{secret}", "`under` is a request path"),
            ("/a/ => Authorization: {secret}", "`under` is a request path"),
            ("/a => Host: {secret}", "sets the host header itself"),
            ("/a => bot{secret}", "after `=>` comes"),
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
}
