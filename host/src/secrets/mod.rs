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
//! Every loaded secret is also [registered](register) host-wide (`loaded`): log lines are
//! scrubbed of them, and no value leaving the sandbox (requests, websocket frames, kv, events)
//! and no text leaving the host (replies, tool errors) may hold one.
//!
//! Values come from the environment variable of the secret's name, or from the file
//! `secrets/NAME` in the airlock home, read through a [`cap_std::fs::Dir`] handle and refused if
//! anyone but its owner may read it ([`load_secret`]).

mod binding;
mod error;
mod load;
pub(crate) mod loaded;
mod scrub;
mod value;

pub use binding::BoundSecret;
pub(crate) use binding::{header_secrets, path_prefix_secret};
pub use error::SecretError;
pub use load::{load_secret, load_secret_in};
pub use loaded::{register, register_held};
pub use scrub::{Scrubber, WINDOW, scrub};
pub use value::SecretValue;

/// What scrubbed secret values are replaced with.
pub const REDACTED: &[u8] = b"[redacted]";

/// Helpers shared by the unit tests of the submodules.
#[cfg(test)]
mod test_support {
    use crate::manifest::SecretBinding;

    pub(super) fn binding(name: &str, dest: &str, position: &str) -> SecretBinding {
        SecretBinding {
            name: name.into(),
            destination: dest.parse().unwrap(),
            position: position.parse().unwrap(),
        }
    }
}
