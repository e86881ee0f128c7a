//! The `[audit] section of `airlock.toml`: the record.
//!
//! ```toml
//! [audit]
//! enabled = true           # default
//! content = "digest"       # "full" | "digest" | "none": what is kept of message text
//! keep_days = 90           # older whole segments are deleted, an anchor kept
//! checkpoint_every = 1000  # a checkpoint row every N rows (and hourly, and at shutdown)
//!
//! [audit.otlp]             # optional: ship every row to an OpenTelemetry collector
//! endpoint = "http://127.0.0.1:4318"
//! ```

use serde::Deserialize;

/// Days of record kept unless `[audit] keep_days` says otherwise.
pub const DEFAULT_KEEP_DAYS: u32 = 90;
/// Rows between checkpoints unless `[audit] checkpoint_every` says otherwise.
pub const DEFAULT_CHECKPOINT_EVERY: u32 = 1000;

/// What the record keeps of message text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentMode {
    /// The sanitised text.
    Full,
    /// A keyed digest and the length.
    #[default]
    Digest,
    /// Neither.
    None,
}

/// The `[audit]` section.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Keep a record at all.
    pub enabled: bool,
    /// What is kept of message text.
    pub content: ContentMode,
    /// Days kept.
    pub keep_days: u32,
    /// Rows between checkpoints.
    pub checkpoint_every: u32,
    /// Where rows are shipped, if anywhere.
    pub otlp: Option<OtlpConfig>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            content: ContentMode::default(),
            keep_days: DEFAULT_KEEP_DAYS,
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
            otlp: None,
        }
    }
}

/// `[audit.otlp]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    /// The collector's OTLP/HTTP base URL (`/v1/logs` is added).
    #[serde(deserialize_with = "endpoint")]
    pub endpoint: String,
}

/// An `http://` or `https://` URL with a host, and no query: a mistake here
/// stops `serve` rather than leaving rows unshipped without a word.
fn endpoint<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    use serde::de::Error;
    let text = String::deserialize(d)?;
    if text
        .parse::<http::Uri>()
        .is_ok_and(|u| u.authority().is_some_and(|a| a.as_str().contains('@')))
    {
        // Printed in every warning about an outage: no credentials in it.
        return Err(D::Error::custom(
            "the endpoint holds credentials (user:password@); give them in the \
             OTEL_EXPORTER_OTLP_HEADERS environment variable instead, e.g. \
             Authorization=Basic%20…",
        ));
    }
    let ok = text.parse::<http::Uri>().is_ok_and(|u| {
        matches!(u.scheme_str(), Some("http" | "https"))
            && u.host().is_some_and(|h| !h.is_empty())
            && u.query().is_none()
    });
    if ok {
        Ok(text)
    } else {
        Err(D::Error::custom(format!(
            "endpoint {text:?} is not an http:// or https:// URL of a collector, such as \
             \"http://127.0.0.1:4318\""
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AuditConfig, String> {
        #[derive(Deserialize)]
        struct File {
            audit: AuditConfig,
        }
        toml::from_str::<File>(text)
            .map(|f| f.audit)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_mistakes() {
        assert_eq!(parse("[audit]").unwrap(), AuditConfig::default());
        let c = parse("[audit]\ncontent = \"full\"\nkeep_days = 7\n[audit.otlp]\nendpoint = \"http://x:4318\"").unwrap();
        assert_eq!(c.content, ContentMode::Full);
        assert_eq!(c.otlp.unwrap().endpoint, "http://x:4318");
        assert!(
            parse("[audit]\ncontent = \"some\"")
                .unwrap_err()
                .contains("unknown variant")
        );
        assert!(
            parse("[audit]\nkeep = 1")
                .unwrap_err()
                .contains("unknown field")
        );
        for bad in [
            "127.0.0.1:4318",
            "ftp://x",
            "http://",
            "http://x:4318/?a=1",
            "",
        ] {
            let err = parse(&format!("[audit.otlp]\nendpoint = \"{bad}\"")).unwrap_err();
            assert!(
                err.contains("not an http:// or https:// URL"),
                "{bad}: {err}"
            );
        }
        let creds = parse("[audit.otlp]\nendpoint = \"https://u:p@otel.example.org\"").unwrap_err();
        assert!(
            creds.contains("holds credentials") && creds.contains("OTEL_EXPORTER_OTLP_HEADERS"),
            "{creds}"
        );
        let c = parse("[audit.otlp]\nendpoint = \"https://otel.example.org/prefix\"").unwrap();
        assert_eq!(c.otlp.unwrap().endpoint, "https://otel.example.org/prefix");
    }
}
