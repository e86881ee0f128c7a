//! Request signatures on a signed inbound route, checked before the adapter
//! sees the request.
//!
//! [`check`] is pure: the scheme, the key, the headers, the body and the
//! clock in, a verdict out (table-tested below). [`Verifier`] adds what
//! needs memory: the signatures it has let through, so that a captured
//! request sent again is refused while it is remembered (a timestamped
//! scheme's window, twice over for clock skew; a day for a scheme without a
//! timestamp, whose sender's delivery id then still stops it in the
//! adapter's dedupe), and a count of refusals that raises an alert when
//! requests keep failing.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::HeaderMap;
use ring::hmac;
use subtle::ConstantTimeEq;

use crate::alert::{Alert, Alerts, Kind};
use crate::manifest::{Part, SignatureScheme};
use crate::secrets::SecretValue;

/// How long a signature is remembered for a scheme without a timestamp.
const UNSTAMPED_MEMORY: Duration = Duration::from_secs(24 * 3600);
/// Signatures remembered at most; past it the oldest are forgotten.
const REMEMBERED: usize = 16_384;
/// Refusals within [`FAILURE_WINDOW`] that raise an alert.
pub const ALERT_AFTER: u32 = 5;
/// The window refusals are counted in.
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Why a request was refused. Shown to the sender (as the 401's text) and
/// in the log; it names what failed, never the secret or the expected
/// signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The signature header is absent, or given twice.
    MissingSignature,
    /// The header does not hold the prefix and 64 hex digits.
    MalformedSignature,
    /// The signature does not match the request.
    BadSignature,
    /// The timestamp header is absent, given twice, or not unix seconds.
    MissingTimestamp,
    /// The timestamp is outside the scheme's window.
    Stale,
    /// This exact request was let through before.
    Replayed,
}

impl Refusal {
    /// A short phrase for the log and the alert.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::MissingSignature => "no signature header",
            Refusal::MalformedSignature => "a malformed signature",
            Refusal::BadSignature => "a signature that does not match",
            Refusal::MissingTimestamp => "no valid timestamp header",
            Refusal::Stale => "a timestamp outside the allowed window",
            Refusal::Replayed => "a replay of a request already accepted",
        }
    }
}

/// A signature that passed: what [`Verifier::admit`] remembers.
pub type Mac = [u8; 32];

/// Checks one request against `scheme` and `key` at unix time `now`:
/// the signature that matched, or why it does not.
pub fn check(
    scheme: &SignatureScheme,
    key: &hmac::Key,
    headers: &HeaderMap,
    body: &[u8],
    now: u64,
) -> Result<Mac, Refusal> {
    let given = single(headers, &scheme.header).ok_or(Refusal::MissingSignature)?;
    let hex_digits = given
        .strip_prefix(scheme.prefix.as_str())
        .ok_or(Refusal::MalformedSignature)?;
    let mut claimed = [0u8; 32];
    hex::decode_to_slice(hex_digits, &mut claimed).map_err(|_| Refusal::MalformedSignature)?;

    let stamp = match &scheme.timestamp_header {
        None => None,
        Some(name) => {
            let text = single(headers, name).ok_or(Refusal::MissingTimestamp)?;
            let at: u64 = text
                .parse()
                .ok()
                .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
                .ok_or(Refusal::MissingTimestamp)?;
            if now.abs_diff(at) > scheme.max_age.as_secs() {
                return Err(Refusal::Stale);
            }
            Some(text)
        }
    };

    let mut mac = hmac::Context::with_key(key);
    for part in &scheme.signed {
        match part {
            Part::Text(t) => mac.update(t.as_bytes()),
            // `check` found it above whenever the scheme signs one.
            Part::Timestamp => mac.update(stamp.unwrap_or_default().as_bytes()),
            Part::Body => mac.update(body),
        }
    }
    let expected = mac.sign();
    if bool::from(expected.as_ref().ct_eq(&claimed)) {
        Ok(claimed)
    } else {
        Err(Refusal::BadSignature)
    }
}

/// The one value of header `name`, as text; `None` when it is absent, not
/// text, or given more than once.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok().map(str::trim)
}

/// One signed route's checks: the scheme, the key, what it let through, and
/// how often it refused.
pub struct Verifier {
    scheme: SignatureScheme,
    key: hmac::Key,
    memory: Duration,
    seen: Mutex<Seen>,
    failures: Mutex<Failures>,
    adapter: String,
    alerts: Alerts,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("header", &self.scheme.header)
            .field("adapter", &self.adapter)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Checks requests to `adapter`'s route by `scheme` under `secret`;
    /// repeated refusals are raised through `alerts`.
    pub fn new(
        scheme: SignatureScheme,
        secret: &SecretValue,
        adapter: &str,
        alerts: Alerts,
    ) -> Self {
        let memory = match scheme.timestamp_header {
            Some(_) => scheme.max_age * 2,
            None => UNSTAMPED_MEMORY,
        };
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.expose()),
            scheme,
            memory,
            seen: Mutex::default(),
            failures: Mutex::default(),
            adapter: adapter.to_string(),
            alerts,
        }
    }

    /// The header the signature comes in (withheld from the adapter: the
    /// host has answered for it).
    pub fn header(&self) -> &str {
        &self.scheme.header
    }

    /// Checks a request and, when it passes, remembers its signature so that
    /// the same request is refused as a replay.
    pub fn admit(&self, headers: &HeaderMap, body: &[u8]) -> Result<Mac, Refusal> {
        let mac = check(
            &self.scheme,
            &self.key,
            headers,
            body,
            crate::caps::clock::now_ms() / 1000,
        )?;
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.insert(mac, Instant::now(), self.memory) {
            Ok(mac)
        } else {
            Err(Refusal::Replayed)
        }
    }

    /// Forgets a signature let through whose request the adapter did not
    /// take (it failed, or answered other than 2xx), so the sender's retry
    /// of the same request is not taken for a replay.
    pub fn forget(&self, mac: &Mac) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(mac);
    }

    /// Counts a refusal: the first of a window is logged, and reaching
    /// [`ALERT_AFTER`] in one window raises an alert. Returns the total.
    pub fn refused(&self, why: Refusal, from: std::net::IpAddr) -> u64 {
        let (total, in_window, first) = self
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .count(Instant::now());
        if first {
            tracing::warn!(
                component = %self.adapter,
                %from,
                "refused an inbound request with {} (401); a sender that keeps failing raises an alert",
                why.as_str()
            );
        } else {
            tracing::debug!(component = %self.adapter, %from, "refused an inbound request with {}", why.as_str());
        }
        if in_window == ALERT_AFTER {
            self.alerts.raise(Alert {
                kind: Kind::BadSignature,
                adapter: Some(self.adapter.clone()),
                text: format!(
                    "{ALERT_AFTER} requests to the {} webhook failed their signature check within \
                     a minute (the latest: {}, from {from}; {total} in all): someone may be probing \
                     it, or the sender's secret differs from the one airlock holds",
                    self.adapter,
                    why.as_str()
                ),
            });
        }
        total
    }
}

/// The signatures let through, oldest first.
#[derive(Default)]
struct Seen {
    at: HashMap<Mac, Instant>,
    order: VecDeque<(Instant, Mac)>,
}

impl Seen {
    /// Adds `mac` seen `now`, forgetting what is older than `memory` (and the
    /// oldest past [`REMEMBERED`]); false if it was there already.
    fn insert(&mut self, mac: Mac, now: Instant, memory: Duration) -> bool {
        while let Some(&(when, old)) = self.order.front() {
            if now.duration_since(when) < memory && self.order.len() < REMEMBERED {
                break;
            }
            self.order.pop_front();
            // Only if it was not forgotten and seen again since.
            if self.at.get(&old) == Some(&when) {
                self.at.remove(&old);
            }
        }
        if self.at.contains_key(&mac) {
            return false;
        }
        self.at.insert(mac, now);
        self.order.push_back((now, mac));
        true
    }

    fn remove(&mut self, mac: &Mac) {
        self.at.remove(mac);
    }
}

/// Refusals: in all, and in the current window.
#[derive(Default)]
struct Failures {
    total: u64,
    window: Option<(Instant, u32)>,
}

impl Failures {
    /// Counts one at `now`: the total, the count in its window, and whether
    /// it opened the window.
    fn count(&mut self, now: Instant) -> (u64, u32, bool) {
        self.total += 1;
        match &mut self.window {
            Some((start, n)) if now.duration_since(*start) < FAILURE_WINDOW => {
                *n += 1;
                (self.total, *n, false)
            }
            _ => {
                self.window = Some((now, 1));
                (self.total, 1, true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    const SECRET: &[u8] = b"It's a Secret to Everybody";
    const NOW: u64 = 1_700_000_000;

    fn sign(parts: &[&[u8]]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET);
        let mut ctx = hmac::Context::with_key(&key);
        for p in parts {
            ctx.update(p);
        }
        hex::encode(ctx.sign().as_ref())
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn run(scheme: &SignatureScheme, h: &HeaderMap, body: &[u8]) -> Result<Mac, Refusal> {
        check(
            scheme,
            &hmac::Key::new(hmac::HMAC_SHA256, SECRET),
            h,
            body,
            NOW,
        )
    }

    #[test]
    fn github_style_signatures() {
        // GitHub's documented example: this secret, this body, this signature.
        let documented = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let gh = SignatureScheme::github();
        let body = b"Hello, World!";
        let good = format!("sha256={}", sign(&[body]));
        assert_eq!(good, documented);
        for (h, body, want) in [
            (
                headers(&[("x-hub-signature-256", documented)]),
                &body[..],
                Ok(()),
            ),
            (
                headers(&[(
                    "X-Hub-Signature-256",
                    &good.to_uppercase().replace("SHA256=", "sha256="),
                )]),
                body,
                Ok(()),
            ),
            (
                headers(&[("x-hub-signature-256", documented)]),
                b"Hello, World?",
                Err(Refusal::BadSignature),
            ),
            (headers(&[]), body, Err(Refusal::MissingSignature)),
            (
                headers(&[("x-hub-signature", "sha1=00")]),
                body,
                Err(Refusal::MissingSignature),
            ),
            (
                headers(&[
                    ("x-hub-signature-256", documented),
                    ("x-hub-signature-256", documented),
                ]),
                body,
                Err(Refusal::MissingSignature),
            ),
            (
                headers(&[("x-hub-signature-256", &documented[7..])]),
                body,
                Err(Refusal::MalformedSignature),
            ),
            (
                headers(&[("x-hub-signature-256", &documented[..70])]),
                body,
                Err(Refusal::MalformedSignature),
            ),
            (
                headers(&[("x-hub-signature-256", &format!("{documented}00"))]),
                body,
                Err(Refusal::MalformedSignature),
            ),
            (
                headers(&[("x-hub-signature-256", "sha256=zz")]),
                body,
                Err(Refusal::MalformedSignature),
            ),
        ] {
            assert_eq!(run(&gh, &h, body).map(|_| ()), want, "{h:?}");
        }
    }

    #[test]
    fn slacks_documented_example_passes() {
        let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&\
                    channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&\
                    user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=\
                    https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F\
                    96rGlfmibIGlgcZRskXaIFfN&trigger_id=\
                    398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let h = headers(&[
            ("x-slack-request-timestamp", "1531420618"),
            (
                "x-slack-signature",
                "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
            ),
        ]);
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"8f742231b10e8888abcd99yyyzzz85a5");
        let slack = SignatureScheme::slack();
        assert!(check(&slack, &key, &h, body.as_bytes(), 1_531_420_618 + 60).is_ok());
        assert_eq!(
            check(&slack, &key, &h, body.as_bytes(), 1_531_420_618 + 301),
            Err(Refusal::Stale)
        );
    }

    #[test]
    fn slack_style_signatures_and_their_window() {
        let slack = SignatureScheme::slack();
        let body = b"token=x&team_id=T1&command=%2Fweather";
        let at = |t: u64| {
            let ts = t.to_string();
            let sig = format!("v0={}", sign(&[b"v0:", ts.as_bytes(), b":", body]));
            headers(&[
                ("x-slack-signature", &sig),
                ("x-slack-request-timestamp", &ts),
            ])
        };
        for (h, want) in [
            (at(NOW), Ok(())),
            (at(NOW - 300), Ok(())),
            (at(NOW + 300), Ok(())),
            (at(NOW - 301), Err(Refusal::Stale)),
            (at(NOW + 301), Err(Refusal::Stale)),
            (
                headers(&[("x-slack-signature", "v0=00")]),
                Err(Refusal::MalformedSignature),
            ),
        ] {
            assert_eq!(run(&slack, &h, body).map(|_| ()), want, "{h:?}");
        }
        // The timestamp is signed: moving it breaks the signature.
        let mut moved = at(NOW - 10);
        moved.insert(
            "x-slack-request-timestamp",
            HeaderValue::from_static("1700000001"),
        );
        assert_eq!(run(&slack, &moved, body), Err(Refusal::BadSignature));
        let sig = format!("v0={}", sign(&[b"v0:", b"", b":", body]));
        for ts in [None, Some("soon"), Some("+1700000000"), Some("-5")] {
            let mut h = headers(&[("x-slack-signature", &sig)]);
            if let Some(ts) = ts {
                h.insert("x-slack-request-timestamp", HeaderValue::from_static(ts));
            }
            assert_eq!(
                run(&slack, &h, body),
                Err(Refusal::MissingTimestamp),
                "{ts:?}"
            );
        }
    }

    #[test]
    fn a_request_passes_once_until_forgotten() {
        let (alerts, _rx) = Alerts::channel();
        let v = Verifier::new(
            SignatureScheme::github(),
            &SecretValue::new(SECRET),
            "hook",
            alerts,
        );
        let h = headers(&[("x-hub-signature-256", &format!("sha256={}", sign(&[b"{}"])))]);
        let mac = v.admit(&h, b"{}").unwrap();
        assert_eq!(v.admit(&h, b"{}"), Err(Refusal::Replayed));
        v.forget(&mac);
        assert_eq!(v.admit(&h, b"{}"), Ok(mac));
    }

    #[test]
    fn memory_forgets_by_age_and_by_count() {
        let mut seen = Seen::default();
        let t0 = Instant::now();
        let memory = Duration::from_secs(10);
        assert!(seen.insert([1; 32], t0, memory));
        assert!(!seen.insert([1; 32], t0 + Duration::from_secs(9), memory));
        assert!(
            seen.insert([1; 32], t0 + Duration::from_secs(10), memory),
            "aged out"
        );
        // Forgotten, then seen again: the old queue entry does not drop the new one.
        seen.remove(&[1; 32]);
        assert!(seen.insert([1; 32], t0 + Duration::from_secs(11), memory));
        assert!(!seen.insert([1; 32], t0 + Duration::from_secs(12), memory));
        for i in 0..REMEMBERED + 10 {
            let mut mac = [2; 32];
            mac[..8].copy_from_slice(&(i as u64).to_le_bytes());
            seen.insert(mac, t0 + Duration::from_secs(12), memory);
        }
        assert!(seen.order.len() <= REMEMBERED && seen.at.len() <= REMEMBERED);
    }

    #[test]
    fn refusals_raise_one_alert_a_window() {
        let (alerts, mut rx) = Alerts::channel();
        let v = Verifier::new(
            SignatureScheme::github(),
            &SecretValue::new(SECRET),
            "hook",
            alerts,
        );
        let from = std::net::IpAddr::from([203, 0, 113, 9]);
        for n in 1..=ALERT_AFTER * 2 {
            assert_eq!(v.refused(Refusal::BadSignature, from), u64::from(n));
        }
        let alert = rx.try_recv().expect("an alert");
        assert_eq!(alert.kind, Kind::BadSignature);
        assert_eq!(alert.adapter.as_deref(), Some("hook"));
        assert!(alert.text.contains("203.0.113.9"), "{}", alert.text);
        assert!(rx.try_recv().is_err(), "one alert per window");
        let mut f = Failures::default();
        let t0 = Instant::now();
        assert_eq!(f.count(t0), (1, 1, true));
        assert_eq!(f.count(t0 + Duration::from_secs(59)), (2, 2, false));
        assert_eq!(f.count(t0 + FAILURE_WINDOW), (3, 1, true));
    }
}
