//! Network destinations a component may reach: `scheme://host[:port]`.
//!
//! A destination names one scheme, one host and one port, nothing more. Manifests list them
//! under `outbound_http` and `websocket`, operator grants repeat them, and secrets are bound
//! to exactly one of them. **An empty list denies everything**: there is no wildcard, no
//! "any port", no path prefix.
//!
//! | Form                              | Meaning                                           |
//! |-----------------------------------|---------------------------------------------------|
//! | `https://api.telegram.org`        | HTTPS to that host, port 443                      |
//! | `https://api.telegram.org/`       | the same; a lone trailing `/` is allowed          |
//! | `http://127.0.0.1:8081`           | plain HTTP to that address and port               |
//! | `wss://gateway.discord.gg`        | a websocket over TLS, port 443                    |
//! | `ws://localhost:9000`             | a plain websocket, port 9000                      |
//! | `https://[::1]:8443`              | an IPv6 literal, in brackets                      |
//! | `HTTPS://API.Telegram.org.`       | the same as `https://api.telegram.org`            |
//!
//! Refused, each with an error that shows the expected form:
//!
//! | Form                              | Why                                               |
//! |-----------------------------------|---------------------------------------------------|
//! | `api.telegram.org`                | no scheme                                         |
//! | `ftp://example.com`               | scheme is not http, https, ws or wss              |
//! | `https://*.example.com`           | wildcards are not supported                       |
//! | `https://example.com/bot`         | a path: secrets and paths are not destinations    |
//! | `https://example.com?x=1`         | a query                                           |
//! | `https://user:pw@example.com`     | userinfo: credentials belong in `secrets`         |
//! | `https://`                        | empty host                                        |
//! | `https://example.com:0`           | port 0                                            |
//! | `https://::1`                     | an IPv6 literal without brackets                  |
//!
//! Hosts are compared case-insensitively and without a trailing dot, IPv6 literals in their
//! canonical form. The port is always explicit after parsing (443 for `https`/`wss`, 80 for
//! `http`/`ws`), so `https://example.com` and `https://example.com:443` are the same
//! destination. Matching is exact: `example.com` does not match `api.example.com`.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The form every destination must take, quoted in parse errors.
const EXPECTED: &str = "expected scheme://host[:port], like https://api.telegram.org";

/// The protocol of a [`Destination`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    /// Plain HTTP (default port 80).
    Http,
    /// HTTP over TLS (default port 443).
    Https,
    /// Plain websocket (default port 80).
    Ws,
    /// Websocket over TLS (default port 443).
    Wss,
}

impl Scheme {
    /// The scheme as written in a URL, lowercase.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        }
    }

    /// The port used when a destination or URL does not name one.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http | Scheme::Ws => 80,
            Scheme::Https | Scheme::Wss => 443,
        }
    }

    /// Whether connections with this scheme use TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Scheme::Https | Scheme::Wss)
    }

    /// Parses a scheme case-insensitively; `None` for anything but the four supported ones.
    pub fn parse(s: &str) -> Option<Scheme> {
        [Scheme::Http, Scheme::Https, Scheme::Ws, Scheme::Wss]
            .into_iter()
            .find(|scheme| s.eq_ignore_ascii_case(scheme.as_str()))
    }

    /// The scheme of a request URI, if it is one of ours.
    pub fn from_uri(uri: &http::Uri) -> Option<Scheme> {
        uri.scheme_str().and_then(Scheme::parse)
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One destination a component may reach: a scheme, a host and a port.
///
/// Built by parsing `scheme://host[:port]` (see the [module docs](self)); the host is kept
/// lowercase, without a trailing dot, and IPv6 literals are kept canonical and unbracketed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Destination {
    scheme: Scheme,
    host: String,
    port: u16,
}

impl Destination {
    /// Builds a destination from parts, applying the same rules as parsing.
    pub fn new(scheme: Scheme, host: &str, port: u16) -> Result<Self, DestinationError> {
        if port == 0 {
            return Err(DestinationError::new(
                &format!("{scheme}://{host}:0"),
                "port 0 cannot be connected to",
            ));
        }
        let host = normalize_host(host)
            .map_err(|why| DestinationError::new(&format!("{scheme}://{host}:{port}"), &why))?;
        Ok(Destination { scheme, host, port })
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host: lowercase, no trailing dot; an IPv6 literal without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, explicit or the scheme's default.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether a request to `uri` goes to this destination.
    ///
    /// The URI must be absolute, with a scheme, a host and no userinfo; its path and query are
    /// not considered.
    pub fn allows(&self, uri: &http::Uri) -> bool {
        let Some((scheme, host, port)) = uri_parts(uri) else {
            return false;
        };
        self.matches(scheme, host, port)
    }

    /// Whether `scheme`, `host` and `port` name this destination.
    ///
    /// `host` may be in any case, may carry a trailing dot, and an IPv6 literal may be
    /// bracketed or not, in any textual form.
    pub fn matches(&self, scheme: Scheme, host: &str, port: u16) -> bool {
        if scheme != self.scheme || port != self.port {
            return false;
        }
        match normalize_host(host) {
            Ok(host) => host == self.host,
            Err(_) => false,
        }
    }
}

/// Splits an absolute request URI into the parts a [`Destination`] compares.
///
/// `None` when the URI has no supported scheme, no host, or carries userinfo.
pub(crate) fn uri_parts(uri: &http::Uri) -> Option<(Scheme, &str, u16)> {
    request_parts(uri).ok()
}

/// Why a request URI names no destination (see [`request_parts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriPartsError {
    /// The URI is relative: it has no scheme.
    NoScheme,
    /// The scheme is not http, https, ws or wss.
    UnsupportedScheme,
    /// There is no host.
    NoHost,
    /// The authority carries userinfo (`user:password@`).
    Userinfo,
}

/// The scheme, host (as written) and port (explicit or the scheme's default) of an absolute
/// request URI, or why it has none (the private `uri_parts` is this without the reason).
pub fn request_parts(uri: &http::Uri) -> Result<(Scheme, &str, u16), UriPartsError> {
    let scheme_str = uri.scheme_str().ok_or(UriPartsError::NoScheme)?;
    let scheme = Scheme::parse(scheme_str).ok_or(UriPartsError::UnsupportedScheme)?;
    let authority = uri.authority().ok_or(UriPartsError::NoHost)?;
    if authority.as_str().contains('@') {
        return Err(UriPartsError::Userinfo);
    }
    let host = authority.host();
    if host.is_empty() {
        return Err(UriPartsError::NoHost);
    }
    let port = match authority.port() {
        Some(port) => port.as_u16(),
        None => scheme.default_port(),
    };
    Ok((scheme, host, port))
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme)?;
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if self.port != self.scheme.default_port() {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

impl FromStr for Destination {
    type Err = DestinationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |why: &str| DestinationError::new(input, why);

        let Some((scheme, rest)) = input.split_once("://") else {
            return Err(fail("the scheme is missing"));
        };
        let scheme = Scheme::parse(scheme).ok_or_else(|| {
            fail(&format!(
                "the scheme {scheme:?} is not supported; use http, https, ws or wss"
            ))
        })?;
        if let Some(c) = rest.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(fail(&format!("it contains the character {c:?}")));
        }
        if rest.contains('@') {
            return Err(fail(
                "userinfo (user:password@) is not allowed; put credentials in `secrets`",
            ));
        }
        if rest.contains('?') || rest.contains('#') {
            return Err(fail("a query or fragment is not allowed"));
        }
        if rest.contains('*') {
            return Err(fail(
                "wildcards are not supported; list each host on its own",
            ));
        }
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains('/') {
            return Err(fail(
                "a path is not allowed; a destination is only scheme, host and port",
            ));
        }

        let (host, port) = split_host_port(authority).map_err(|why| fail(&why))?;
        let port = match port {
            None => scheme.default_port(),
            Some(port) => parse_port(port).map_err(|why| fail(&why))?,
        };
        let host = normalize_host(host).map_err(|why| fail(&why))?;
        Ok(Destination { scheme, host, port })
    }
}

/// Splits `host[:port]` or `[v6]:port`; the host keeps its brackets.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), String> {
    if authority.starts_with('[') {
        let Some(end) = authority.find(']') else {
            return Err("an IPv6 literal is missing its closing bracket".into());
        };
        let (host, after) = authority.split_at(end + 1);
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(format!("unexpected {after:?} after the IPv6 literal")),
            },
        };
    }
    match authority.split_once(':') {
        None => Ok((authority, None)),
        Some((_, port)) if port.contains(':') => {
            Err("an IPv6 literal must be in brackets, like https://[2001:db8::1]:8443".into())
        }
        Some((host, port)) => Ok((host, Some(port))),
    }
}

fn parse_port(port: &str) -> Result<u16, String> {
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the port {port:?} is not a number"));
    }
    match port.parse::<u16>() {
        Ok(0) => Err("port 0 cannot be connected to".into()),
        Ok(port) => Ok(port),
        Err(_) => Err(format!("the port {port} is larger than 65535")),
    }
}

/// Lowercases a host, drops one trailing dot, canonicalizes IP literals (bracketed or bare
/// IPv6), and refuses anything that is not a plain DNS name or IP literal.
fn normalize_host(host: &str) -> Result<String, String> {
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or("an IPv6 literal is missing its closing bracket")?;
        return inner
            .parse::<Ipv6Addr>()
            .map(|ip| ip.to_string())
            .map_err(|_| format!("[{inner}] is not an IPv6 address"));
    }
    if host.contains(':') {
        // Bare IPv6, as `matches` may be given; never produced by `from_str`.
        return host
            .parse::<Ipv6Addr>()
            .map(|ip| ip.to_string())
            .map_err(|_| format!("{host:?} is not a host name"));
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if host.len() > 253 {
        return Err("the host is longer than 253 characters".into());
    }
    if let Some(c) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(format!(
            "the host contains {c:?}; use letters, digits, '-', '.' (and punycode for other scripts)"
        ));
    }
    if host.split('.').any(str::is_empty) {
        return Err("the host has an empty label (\"..\" or a leading dot)".into());
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(ip.to_string());
    }
    Ok(host.to_ascii_lowercase())
}

/// A destination string that is not `scheme://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid destination {input:?}: {why}; {EXPECTED}")]
pub struct DestinationError {
    input: String,
    why: String,
}

impl DestinationError {
    fn new(input: &str, why: &str) -> Self {
        DestinationError {
            input: input.to_owned(),
            why: why.to_owned(),
        }
    }
}

impl serde::Serialize for Destination {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Destination {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        // (input, scheme, host, port, canonical Display)
        #[rustfmt::skip]
        let cases: &[(&str, Scheme, &str, u16, &str)] = &[
            ("https://api.telegram.org", Scheme::Https, "api.telegram.org", 443, "https://api.telegram.org"),
            ("https://api.telegram.org/", Scheme::Https, "api.telegram.org", 443, "https://api.telegram.org"),
            ("https://api.telegram.org:443", Scheme::Https, "api.telegram.org", 443, "https://api.telegram.org"),
            ("http://api.telegram.org", Scheme::Http, "api.telegram.org", 80, "http://api.telegram.org"),
            ("http://127.0.0.1:8081", Scheme::Http, "127.0.0.1", 8081, "http://127.0.0.1:8081"),
            ("wss://gateway.discord.gg", Scheme::Wss, "gateway.discord.gg", 443, "wss://gateway.discord.gg"),
            ("ws://localhost:9000", Scheme::Ws, "localhost", 9000, "ws://localhost:9000"),
            ("ws://localhost:80", Scheme::Ws, "localhost", 80, "ws://localhost"),
            ("https://[::1]:8443", Scheme::Https, "::1", 8443, "https://[::1]:8443"),
            ("https://[2001:DB8:0::1]", Scheme::Https, "2001:db8::1", 443, "https://[2001:db8::1]"),
            ("HTTPS://API.Telegram.org.", Scheme::Https, "api.telegram.org", 443, "https://api.telegram.org"),
            ("https://my_host.internal:1", Scheme::Https, "my_host.internal", 1, "https://my_host.internal:1"),
            ("https://example.com:65535", Scheme::Https, "example.com", 65535, "https://example.com:65535"),
        ];
        for &(input, scheme, host, port, display) in cases {
            let d: Destination = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(d.scheme(), scheme, "{input}");
            assert_eq!(d.host(), host, "{input}");
            assert_eq!(d.port(), port, "{input}");
            assert_eq!(d.to_string(), display, "{input}");
            let again: Destination = d.to_string().parse().unwrap();
            assert_eq!(again, d, "{input} round trip");
        }
    }

    #[test]
    fn refused_forms() {
        // (input, a piece of the reason)
        let cases: &[(&str, &str)] = &[
            ("api.telegram.org", "scheme is missing"),
            ("", "scheme is missing"),
            ("ftp://example.com", "not supported"),
            ("https://*.example.com", "wildcards"),
            ("https://*", "wildcards"),
            ("https://example.com/bot", "a path"),
            ("https://example.com//", "a path"),
            ("https://example.com?x=1", "query"),
            ("https://example.com/?x=1", "query"),
            ("https://example.com#top", "fragment"),
            ("https://user:pw@example.com", "userinfo"),
            ("https://user@example.com", "userinfo"),
            ("https://", "empty"),
            ("https:///", "empty"),
            ("https://:443", "empty"),
            ("https://.", "empty"),
            ("https://example.com:0", "port 0"),
            ("https://example.com:", "not a number"),
            ("https://example.com:http", "not a number"),
            ("https://example.com:+1", "not a number"),
            ("https://example.com:70000", "larger than 65535"),
            ("https://::1", "in brackets"),
            ("https://[::1", "closing bracket"),
            ("https://[::g]", "not an IPv6 address"),
            ("https://[::1]x", "after the IPv6 literal"),
            ("https://exa mple.com", "character"),
            ("https://example.com\n", "character"),
            ("https://ex%61mple.com", "contains '%'"),
            ("https://a..b", "empty label"),
            ("https://.example.com", "empty label"),
        ];
        for &(input, why) in cases {
            let err = input
                .parse::<Destination>()
                .expect_err(&format!("{input:?} should be refused"))
                .to_string();
            assert!(err.contains(why), "{input:?}: {err}");
            assert!(
                err.contains("expected scheme://host[:port], like https://api.telegram.org"),
                "{input:?}: {err}"
            );
        }
    }

    #[test]
    fn allows_uris() {
        // (destination, uri, allowed)
        #[rustfmt::skip]
        let cases: &[(&str, &str, bool)] = &[
            ("https://api.telegram.org", "https://api.telegram.org/bot/getMe", true),
            ("https://api.telegram.org", "https://api.telegram.org:443/x?y=1", true),
            ("https://api.telegram.org", "https://API.TELEGRAM.ORG./x", true),
            ("https://api.telegram.org", "http://api.telegram.org/x", false),
            ("https://api.telegram.org", "https://api.telegram.org:8443/x", false),
            ("https://api.telegram.org", "https://telegram.org/x", false),
            ("https://api.telegram.org", "https://evil.api.telegram.org/x", false),
            ("https://api.telegram.org", "https://api.telegram.org.evil.com/x", false),
            ("https://api.telegram.org", "https://user@api.telegram.org/x", false),
            ("https://api.telegram.org", "/relative", false),
            ("http://127.0.0.1:8081", "http://127.0.0.1:8081/", true),
            ("http://127.0.0.1:8081", "http://127.0.0.1:8082/", false),
            ("https://[::1]:8443", "https://[0:0::1]:8443/", true),
            ("https://[::1]:8443", "https://[::2]:8443/", false),
            ("wss://gateway.discord.gg", "wss://gateway.discord.gg/?v=10", true),
            ("wss://gateway.discord.gg", "https://gateway.discord.gg/", false),
        ];
        for &(dest, uri, expected) in cases {
            let d: Destination = dest.parse().unwrap();
            let u: http::Uri = uri.parse().unwrap();
            assert_eq!(d.allows(&u), expected, "{dest} allows {uri}");
        }
    }

    #[test]
    fn matches_parts() {
        let d: Destination = "https://[::1]:8443".parse().unwrap();
        assert!(d.matches(Scheme::Https, "::1", 8443));
        assert!(d.matches(Scheme::Https, "[::1]", 8443));
        assert!(!d.matches(Scheme::Https, "::1", 443));
        assert!(!d.matches(Scheme::Wss, "::1", 8443));
        let d: Destination = "http://localhost:1".parse().unwrap();
        assert!(d.matches(Scheme::Http, "LocalHost.", 1));
        assert!(!d.matches(Scheme::Http, "localhost..", 1));
        assert!(!d.matches(Scheme::Http, "local host", 1));
    }

    #[test]
    fn new_applies_the_same_rules() {
        let d = Destination::new(Scheme::Https, "Example.COM.", 443).unwrap();
        assert_eq!(d, "https://example.com".parse().unwrap());
        assert!(Destination::new(Scheme::Https, "", 443).is_err());
        assert!(Destination::new(Scheme::Https, "example.com", 0).is_err());
        assert!(Destination::new(Scheme::Https, "a/b", 443).is_err());
    }

    #[test]
    fn serde_uses_the_string_form() {
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        struct M {
            outbound_http: Vec<Destination>,
        }
        let m: M = toml::from_str(
            r#"outbound_http = ["https://api.telegram.org", "http://127.0.0.1:8081/"]"#,
        )
        .unwrap();
        assert_eq!(m.outbound_http[1].port(), 8081);
        let text = toml::to_string(&m).unwrap();
        assert_eq!(
            text,
            "outbound_http = [\"https://api.telegram.org\", \"http://127.0.0.1:8081\"]\n"
        );
        let err = toml::from_str::<M>(r#"outbound_http = ["https://*.example.com"]"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected scheme://host[:port]"), "{err}");
    }
}
