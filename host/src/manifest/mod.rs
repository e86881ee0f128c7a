//! Manifests, operator grants, and the capabilities they yield.
//!
//! A manifest (`NAME.toml` beside `NAME.wasm`) is the component author's
//! *request*. The operator's grant (`[components.NAME]` in `airlock.toml`) can
//! only narrow it, or point a declared destination elsewhere. What a component
//! actually gets is [`Effective`]: manifest ∩ grant, capped by host policy.
//! Both files are parsed once, strictly (`deny_unknown_fields`), into the
//! policy types the runtime enforces.

mod access;
mod audit;
pub mod duration;
mod effective;
mod grant;
mod limits;
mod relay;
mod secret_binding;
mod secret_position;
mod signature;
mod spec;

pub use access::AccessConfig;
pub use audit::{AuditConfig, ContentMode, OtlpConfig};
pub use effective::{Effective, EffectiveError, Linkable, Trust, effective};
pub use grant::{Config, ConfigError};
pub use limits::EffectiveLimits;
pub(crate) use limits::HOST_CAP;
pub use relay::RelayConfig;
pub use secret_binding::{BindingError, SecretBinding, check_name};
pub(crate) use secret_position::is_pchar;
pub use secret_position::{HOST_SET_HEADERS, PLACEHOLDER, SecretPosition};
pub use signature::{InboundHttpSpec, Part, SignatureScheme, SignedRoute};
pub use spec::{Direction, Kind, Manifest, ManifestError, valid_name};
