//! The host-wide registry of loaded secrets, and the checks every boundary shares.
//!
//! A component never holds a secret, but if one ever obtained a value (a server reflecting it
//! in an encoding nobody scrubbed, say), it must not be able to carry it anywhere: not to
//! another destination, not into kv, not into an event, a log line or a reply. Every value
//! that leaves the sandbox, and every text that leaves the host, is checked against this one
//! list, with the same [`Scrubber`] (every spelling of every loaded secret and every piece of
//! 12 bytes or more).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU32;
use std::sync::{LazyLock, RwLock};

use super::{BoundSecret, Scrubber, SecretValue};
use crate::bindings::types::OutboundMessage;
use crate::warn_budget::{Admit, admit};

/// The secrets loaded so far, and the scrubber made of them once one is asked for (a token
/// bound at two positions registers twice; it is built once).
static LOADED: LazyLock<RwLock<Loaded>> = LazyLock::new(|| {
    RwLock::new(Loaded {
        bound: Vec::new(),
        held: Vec::new(),
        scrubber: Some(Scrubber::default()),
    })
});

/// What [`LOADED`] holds.
struct Loaded {
    /// Secrets injected into requests, each with its binding.
    bound: Vec<BoundSecret>,
    /// Secrets the host uses itself (a webhook's signing key).
    held: Vec<SecretValue>,
    /// Built from both when first asked for after a change.
    scrubber: Option<Scrubber>,
}

/// From now on `secret` is scrubbed from log lines and refused or redacted wherever a value
/// leaves the sandbox or the host. Registering the same binding and value again is a no-op.
pub fn register(secret: &BoundSecret) {
    let mut guard = LOADED.write().unwrap_or_else(|e| e.into_inner());
    if guard
        .bound
        .iter()
        .any(|s| s.binding() == secret.binding() && s.value().expose() == secret.value().expose())
    {
        return;
    }
    guard.bound.push(secret.clone());
    guard.scrubber = None;
}

/// [`register`] for a secret the host keeps to itself and injects nowhere (a webhook's
/// signing key): scrubbed and refused everywhere all the same.
pub fn register_held(value: &SecretValue) {
    let mut guard = LOADED.write().unwrap_or_else(|e| e.into_inner());
    if guard.held.iter().any(|v| v.expose() == value.expose()) {
        return;
    }
    guard.held.push(value.clone());
    guard.scrubber = None;
}

/// The scrubber for every loaded secret (cheap: clones share the automaton).
pub fn scrubber() -> Scrubber {
    if let Some(built) = &LOADED.read().unwrap_or_else(|e| e.into_inner()).scrubber {
        return built.clone();
    }
    let mut guard = LOADED.write().unwrap_or_else(|e| e.into_inner());
    let Loaded {
        bound,
        held,
        scrubber,
    } = &mut *guard;
    scrubber
        .get_or_insert_with(|| Scrubber::for_sets(bound.iter(), held))
        .clone()
}

/// The scrubber for every loaded secret and `also` (which need not be registered: a policy
/// built by a test, say). Built once per set and shared.
pub fn scrubber_with(also: &[BoundSecret]) -> Scrubber {
    let guard = LOADED.read().unwrap_or_else(|e| e.into_inner());
    let missing: Vec<&BoundSecret> = also
        .iter()
        .filter(|a| {
            !guard
                .bound
                .iter()
                .any(|s| s.binding() == a.binding() && s.value().expose() == a.value().expose())
        })
        .collect();
    if missing.is_empty() {
        drop(guard);
        return scrubber();
    }
    Scrubber::for_sets(guard.bound.iter().chain(missing), &guard.held)
}

/// Whether `bytes` hold any spelling of a loaded secret.
pub fn holds(bytes: &[u8]) -> bool {
    scrubber().finds(bytes)
}

/// `text` with every spelling of a loaded secret replaced by `[redacted]`.
pub fn redact(text: &str) -> Cow<'_, str> {
    scrubber().scrub_str(text)
}

/// `text` with every loaded secret redacted, in place; whether there was one.
#[cfg(test)]
fn redact_in_place(text: &mut String) -> bool {
    match redact(text) {
        Cow::Borrowed(_) => false,
        Cow::Owned(clean) => {
            *text = clean;
            true
        }
    }
}

/// Refusals [`log_refusal`] logs before it only counts them: a component may retry in a loop.
const LOGGED_REFUSALS: u32 = 100;
static REFUSALS: AtomicU32 = AtomicU32::new(0);

/// Logs that `component` tried to pass a loaded secret through `what` and was refused (never
/// the value); past [`LOGGED_REFUSALS`] refusals, process-wide, one last line says so.
pub fn log_refusal(component: &str, what: &str) {
    match admit(&REFUSALS, LOGGED_REFUSALS) {
        Admit::Log => tracing::warn!(
            component,
            "refused: {what} held a secret the host has loaded (components may not pass one on)"
        ),
        Admit::Fold => tracing::warn!(
            "{LOGGED_REFUSALS} attempts to pass on loaded secrets were refused; further ones are not logged"
        ),
        Admit::Quiet => {}
    }
}

/// Redacts every loaded secret from a message the session asked to send, before any filter or
/// adapter (both components) sees it: its text, button labels and data, and file names.
/// Logs a warning (naming the `component` it was for, never the value) when there was one.
pub fn redact_outbound(message: &mut OutboundMessage, component: &str) {
    let scrubber = scrubber();
    if scrubber.is_empty() {
        return;
    }
    let mut found = Vec::new();
    let mut redact = |text: &mut String, what: &'static str| {
        if let Cow::Owned(clean) = scrubber.scrub_str(text) {
            *text = clean;
            if !found.contains(&what) {
                found.push(what);
            }
        }
    };
    redact(&mut message.text, "text");
    for button in message.buttons.iter_mut().flatten() {
        redact(&mut button.label, "a button label");
        redact(&mut button.data, "button data");
    }
    for file in &mut message.files {
        redact(&mut file.name, "a file name");
    }
    if !found.is_empty() {
        tracing::warn!(
            component,
            "outbound message: redacted a secret the host has loaded from its {}",
            found.join(", ")
        );
    }
}

/// Redacts every loaded secret from an inbound event's content and meta values, and logs a
/// warning naming the adapter (the part of `chat_id` before `:`) if there was one.
pub fn redact_event(content: &mut String, meta: &mut BTreeMap<String, String>) {
    let scrubber = scrubber();
    if scrubber.is_empty() {
        return;
    }
    let mut found = false;
    for text in std::iter::once(content).chain(meta.values_mut()) {
        if let Cow::Owned(clean) = scrubber.scrub_str(text) {
            *text = clean;
            found = true;
        }
    }
    if found {
        let adapter = meta
            .get("chat_id")
            .and_then(|c| c.split_once(':'))
            .map_or("-", |(adapter, _)| adapter);
        tracing::warn!(
            component = adapter,
            "inbound event: redacted a secret the host has loaded from its content or meta"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::SecretValue;
    use crate::secrets::test_support::binding;

    #[test]
    fn registered_secrets_are_found_and_redacted_in_every_spelling() {
        let value = "424242:LOADED-registry-test_value";
        let bound = BoundSecret::new(
            binding("REGISTRY_TEST", "https://a.example", "/bot{secret}"),
            SecretValue::new(value),
        )
        .unwrap();
        let base64 = "NDI0MjQyOkxPQURFRC1yZWdpc3RyeS10ZXN0X3ZhbHVl";
        assert!(!holds(value.as_bytes()));
        register(&bound);
        register(&bound);
        // (text, redacted)
        let cases = [
            (format!("a {value} b"), "a [redacted] b"),
            (format!("b64 {base64}"), "b64 [redacted]"),
            (value[7..26].to_string(), "[redacted]"),
            ("nothing".to_string(), "nothing"),
        ];
        for (text, expected) in cases {
            assert_eq!(redact(&text), expected, "{text}");
            assert_eq!(holds(text.as_bytes()), expected != "nothing", "{text}");
        }
        let mut text = format!("x{value}");
        assert!(redact_in_place(&mut text));
        assert_eq!(text, "x[redacted]");
        assert!(!redact_in_place(&mut text));
    }

    #[test]
    fn outbound_messages_and_events_redact_loaded_secrets() {
        use crate::bindings::types::{Button, OutboundFile, TextFormat};
        let value = "737373:KV-and-OUTBOUND-test_value";
        let bound = BoundSecret::new(
            binding("BOUNDARY_TEST", "https://b.example", "X-Key: {secret}"),
            SecretValue::new(value),
        )
        .unwrap();
        register(&bound);
        let hex: String = value.bytes().map(|b| format!("{b:02x}")).collect();

        let mut message = OutboundMessage {
            chat_id: "1".into(),
            text: format!("token {value}"),
            reply_to: None,
            format: TextFormat::Plain,
            buttons: vec![vec![Button {
                label: hex.clone(),
                data: format!("d:{value}"),
            }]],
            files: vec![OutboundFile {
                name: format!("{value}.txt"),
                mime: "text/plain".into(),
                data: b"file bytes are the session's own".to_vec(),
            }],
        };
        redact_outbound(&mut message, "test");
        assert_eq!(message.text, "token [redacted]");
        assert_eq!(message.buttons[0][0].label, "[redacted]");
        assert_eq!(message.buttons[0][0].data, "d:[redacted]");
        assert_eq!(message.files[0].name, "[redacted].txt");

        let mut content = format!("said {value}");
        let mut meta = BTreeMap::from([
            ("chat_id".to_string(), "fakechat:1".to_string()),
            ("user".to_string(), hex.clone()),
        ]);
        redact_event(&mut content, &mut meta);
        assert_eq!(content, "said [redacted]");
        assert_eq!(meta["user"], "[redacted]");
        assert_eq!(meta["chat_id"], "fakechat:1");
    }
}
