//! Logging to stderr that never prints a loaded secret.
//!
//! Two guards, whatever `AIRLOCK_LOG` asks for:
//!
//! * every line is scrubbed of every secret the host has loaded (the
//!   registry in [`crate::secrets::loaded`]: each spelling its scrubber
//!   knows, base64 and hex included, every piece of 12 bytes or more, and the
//!   bytes injected into requests) before it reaches stderr, so no log line of
//!   airlock, of a library it uses or of a component can hold a token;
//! * the MCP library's payload dumps (every tool argument and every event,
//!   logged at debug) are capped at info: they are the session's and the
//!   chat's words, not diagnostics.

use std::io::Write;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::secrets::loaded;

/// The default filter when `AIRLOCK_LOG` is unset.
/// The permission relay's records (requests, verdicts, refusals, expiries,
/// rules) and the audit trail's checkpoints (`HASH@ID`, a head to keep
/// outside the machine) are at info, so that they are on stderr by default.
pub const DEFAULT_FILTER: &str = "warn,airlock::router::relay=info,airlock::audit=info";
/// Targets whose debug output carries message content, capped at info.
const CONTENT_TARGETS: &[&str] = &["rmcp=info"];

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
        let scrubber = loaded::scrubber();
        let clean = scrubber.scrub(&text);
        let _ = std::io::stderr().lock().write_all(&clean);
    }
}

#[cfg(test)]
mod tests {
    /// `text` as it would be logged.
    fn scrubbed(text: &str) -> String {
        loaded::redact(text).into_owned()
    }

    use super::*;
    use crate::manifest::SecretBinding;
    use crate::secrets::{BoundSecret, SecretValue, register};

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
        register(&secret);
        for line in [
            "x 987654:logging/test+token y",
            "GET /bot987654:logging%2Ftest+token/getMe",
            "json \"987654:logging\\/test+token\"",
            // base64 and hex: a component logging the encoded value
            "b64 OTg3NjU0OmxvZ2dpbmcvdGVzdCt0b2tlbg==",
            "hex 3938373635343a6c6f6767696e672f746573742b746f6b656e",
        ] {
            let out = scrubbed(line);
            for spelled in ["logging", "OTg3NjU0", "3938373635"] {
                assert!(!out.contains(spelled), "{line} -> {out}");
            }
            assert!(out.contains("[redacted]"), "{out}");
        }
    }
}
