//! Logging to stderr that never prints a loaded secret.
//!
//! Two guards, whatever `AIRLOCK_LOG` asks for:
//!
//! * every line is scrubbed of every secret the host has loaded (each
//!   spelling [`Scrubber`] knows, the one injected into requests included)
//!   before it reaches stderr, so no log line of airlock or of a library it
//!   uses can hold a token;
//! * the MCP library's payload dumps (every tool argument and every event,
//!   logged at debug) are capped at info: they are the session's and the
//!   chat's words, not diagnostics.

use std::io::Write;
use std::sync::{LazyLock, RwLock};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::caps::secrets::{BoundSecret, Scrubber};

/// The default filter when `AIRLOCK_LOG` is unset.
pub const DEFAULT_FILTER: &str = "warn";
/// Targets whose debug output carries message content, capped at info.
const CONTENT_TARGETS: &[&str] = &["rmcp=info"];

/// The secrets loaded so far, and the scrubber made of them.
static SECRETS: LazyLock<RwLock<(Vec<BoundSecret>, Scrubber)>> =
    LazyLock::new(|| RwLock::new((Vec::new(), Scrubber::default())));

/// From now on, `secret` is scrubbed from every log line.
pub fn forbid(secret: &BoundSecret) {
    let mut guard = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    let (secrets, scrubber) = &mut *guard;
    secrets.push(secret.clone());
    *scrubber = Scrubber::for_bound(secrets.iter());
}

/// Installs the stderr subscriber with `AIRLOCK_LOG` (any `tracing`
/// filter) or [`DEFAULT_FILTER`].
pub fn init() {
    let mut filter =
        EnvFilter::try_from_env("AIRLOCK_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    for directive in CONTENT_TARGETS {
        if let Ok(d) = directive.parse() {
            filter = filter.add_directive(d);
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(ScrubbedStderr)
        .try_init();
}

/// Makes one [`Line`] per log event.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScrubbedStderr;

impl<'a> MakeWriter<'a> for ScrubbedStderr {
    type Writer = Line;

    fn make_writer(&'a self) -> Self::Writer {
        Line(Vec::new())
    }
}

/// One event's text, scrubbed and written to stderr when dropped.
#[derive(Debug)]
pub struct Line(Vec<u8>);

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let text = std::mem::take(&mut self.0);
        let guard = SECRETS.read().unwrap_or_else(|e| e.into_inner());
        let clean = guard.1.scrub(&text);
        let _ = std::io::stderr().lock().write_all(&clean);
    }
}

/// `text` as it would be logged (for tests).
pub fn scrubbed(text: &str) -> String {
    let guard = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    String::from_utf8_lossy(&guard.1.scrub(text.as_bytes())).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::secrets::{SecretBinding, SecretValue};

    #[test]
    fn forbidden_secrets_never_reach_a_line() {
        let binding = SecretBinding {
            name: "LOGGING_TEST_TOKEN".into(),
            destination: "https://api.telegram.org".parse().unwrap(),
            position: "/bot{secret}".parse().unwrap(),
        };
        let secret =
            BoundSecret::new(binding, SecretValue::new("987654:logging/test+token")).unwrap();
        assert!(scrubbed("x 987654:logging/test+token y").contains("987654"));
        forbid(&secret);
        for line in [
            "x 987654:logging/test+token y",
            "GET /bot987654:logging%2Ftest+token/getMe",
            "json \"987654:logging\\/test+token\"",
        ] {
            let out = scrubbed(line);
            assert!(!out.contains("logging"), "{line} -> {out}");
            assert!(out.contains("[redacted]"), "{out}");
        }
    }
}
