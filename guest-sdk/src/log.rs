//! Structured logging into the host's log, tagged with the component.
//!
//! The host bounds the length and rate of log lines. Prefer these over
//! `println!`: the host may discard a guest's stdout and stderr.

pub use crate::adapter_bindings::airlock::channel::log::Level;

/// Writes one line at `level`.
pub fn log(level: Level, message: impl AsRef<str>) {
    crate::adapter_bindings::airlock::channel::log::log(level, message.as_ref());
}

/// Writes one line at trace level.
pub fn trace(message: impl AsRef<str>) {
    log(Level::Trace, message);
}

/// Writes one line at debug level.
pub fn debug(message: impl AsRef<str>) {
    log(Level::Debug, message);
}

/// Writes one line at info level.
pub fn info(message: impl AsRef<str>) {
    log(Level::Info, message);
}

/// Writes one line at warn level.
pub fn warn(message: impl AsRef<str>) {
    log(Level::Warn, message);
}

/// Writes one line at error level.
pub fn error(message: impl AsRef<str>) {
    log(Level::Error, message);
}
