//! [`ChannelEvent`]: what the session receives for one inbound message.

use std::collections::BTreeMap;

use super::sanitize;

/// One `notifications/claude/channel` event, sanitized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelEvent {
    /// The body.
    pub content: String,
    /// Tag attributes; keys are valid identifiers.
    pub meta: BTreeMap<String, String>,
}

impl ChannelEvent {
    /// An event from platform text: meta keys that are not valid identifiers dropped, values
    /// and content [sanitized](super::sanitize), loaded secrets redacted.
    pub fn new(content: &str, meta: BTreeMap<&'static str, String>) -> Self {
        let meta = meta
            .into_iter()
            .filter(|(k, _)| sanitize::valid_key(k))
            .map(|(k, v)| (k.to_string(), sanitize::value(&v)))
            .collect();
        let mut event = Self {
            content: sanitize::content(content),
            meta,
        };
        crate::secrets::loaded::redact_event(&mut event.content, &mut event.meta);
        event
    }
}
