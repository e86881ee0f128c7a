//! [`BoundSecret`]: a manifest's [`SecretBinding`] with its loaded value, rendered into
//! requests.

use http::{HeaderName, HeaderValue};

use super::scrub::{LOWER_HEX, UPPER_HEX, encode_except, forms};
use super::{SecretError, SecretValue};
use crate::manifest::{PLACEHOLDER, SecretBinding, SecretPosition, is_pchar};
use crate::net::destination::Destination;

/// A binding with its loaded value, checked to fit its position.
#[derive(Debug, Clone)]
pub struct BoundSecret {
    binding: SecretBinding,
    value: SecretValue,
}

/// The secrets bound to `destination` whose position covers request path `path`, each with
/// how closely (see [`SecretPosition::path_match`]; an empty path is `/`).
fn covering<'a, 'b>(
    secrets: &'a [BoundSecret],
    destination: &'b Destination,
    path: &'b str,
) -> impl Iterator<Item = (usize, &'a BoundSecret)> + 'b
where
    'a: 'b,
{
    let path = if path.is_empty() { "/" } else { path };
    secrets
        .iter()
        .filter(move |s| &s.binding.destination == destination)
        .filter_map(move |s| s.binding.position.path_match(path).map(|n| (n, s)))
}

/// The header secrets a request to `destination` for `path` carries: for each header, of
/// the bindings that set it, the one whose `under` matches the path most closely (an
/// unscoped one matches every path, least closely); none where no binding covers the path.
/// Manifest validation refuses two bindings of one header with the same scope, so the
/// choice is never a tie.
pub(crate) fn header_secrets(
    secrets: &[BoundSecret],
    destination: &Destination,
    path: &str,
) -> Vec<(HeaderName, HeaderValue)> {
    let mut chosen: Vec<(&HeaderName, usize, &BoundSecret)> = Vec::new();
    for (closeness, secret) in covering(secrets, destination, path) {
        let SecretPosition::Header { name, .. } = &secret.binding.position else {
            continue;
        };
        match chosen.iter_mut().find(|(n, ..)| *n == name) {
            Some(entry) if entry.1 < closeness => *entry = (name, closeness, secret),
            Some(_) => {}
            None => chosen.push((name, closeness, secret)),
        }
    }
    chosen
        .into_iter()
        .filter_map(|(_, _, secret)| secret.header())
        .collect()
}

/// The one path-prefix secret a request to `destination` for `path` carries, the binding
/// whose `under` matches the path most closely, with the length of that `under`.
pub(crate) fn path_prefix_secret<'a>(
    secrets: &'a [BoundSecret],
    destination: &Destination,
    path: &str,
) -> Option<(usize, &'a BoundSecret)> {
    covering(secrets, destination, path)
        .filter(|(_, s)| matches!(s.binding.position, SecretPosition::PathPrefix { .. }))
        .max_by_key(|(n, _)| *n)
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
        let SecretPosition::Header { name, template, .. } = &self.binding.position else {
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
        let SecretPosition::PathPrefix { template, .. } = &self.binding.position else {
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

    /// Every spelling of this secret that [`Scrubber`](super::Scrubber) replaces: those of the raw
    /// value (see [`scrub`](fn@super::scrub)) and the value as injected into requests, which for
    /// a path prefix is encoded differently from all of them (`abc/d+e=` is sent as
    /// `abc%2Fd+e=`), with upper- and lowercase hex.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::test_support::binding;

    #[test]
    fn each_request_gets_the_header_secret_scoped_closest_to_its_path() {
        let bound = |name: &str, dest: &str, position: &str| {
            BoundSecret::new(binding(name, dest, position), SecretValue::new(name)).unwrap()
        };
        let secrets = [
            bound("BOT", "https://slack.com", "Authorization: Bearer {secret}"),
            bound(
                "APP",
                "https://slack.com",
                "/api/apps.connections.open => Authorization: Bearer {secret}",
            ),
            bound("FILES", "https://slack.com", "/files => X-Key: {secret}"),
            bound(
                "OTHER",
                "https://other.example",
                "Authorization: Bearer {secret}",
            ),
        ];
        let slack: Destination = "https://slack.com".parse().unwrap();
        // (path, what the request carries)
        let cases: &[(&str, &[&str])] = &[
            ("/api/chat.postMessage", &["authorization: Bearer BOT"]),
            ("/api/apps.connections.open", &["authorization: Bearer APP"]),
            (
                "/api/apps.connections.open?x=1",
                &["authorization: Bearer APP"],
            ),
            (
                "/api/apps.connections.opener",
                &["authorization: Bearer BOT"],
            ),
            (
                "/files/upload",
                &["authorization: Bearer BOT", "x-key: FILES"],
            ),
            ("/", &["authorization: Bearer BOT"]),
        ];
        for &(path, want) in cases {
            let got: Vec<String> = header_secrets(&secrets, &slack, path)
                .iter()
                .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap()))
                .collect();
            assert_eq!(got, want, "{path}");
        }
        // Scoped only: paths outside the scope carry nothing.
        let only = [bound(
            "APP",
            "https://slack.com",
            "/api/apps.connections.open => Authorization: Bearer {secret}",
        )];
        assert!(header_secrets(&only, &slack, "/api/chat.postMessage").is_empty());
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
}
