//! [`SecretError`]: why a secret could not be bound or loaded.

use std::path::PathBuf;

use crate::manifest::BindingError;

/// Why a secret could not be bound or loaded. Messages never contain a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The name or position a manifest binds the secret to breaks the rules.
    #[error(transparent)]
    Binding(#[from] BindingError),
    /// Neither the environment variable nor the file is there.
    #[error(
        "secret {name} is not set: set the environment variable {name}, \
         or write it to {} and run `chmod 600 {}`",
        path.display(), path.display()
    )]
    Missing {
        /// The secret's name.
        name: String,
        /// Where the file was looked for.
        path: PathBuf,
    },
    /// The source exists but holds nothing.
    #[error("secret {name} is empty in {place}")]
    Empty {
        /// The secret's name.
        name: String,
        /// Where it was read from.
        place: String,
    },
    /// The file may be read by group or others.
    #[error(
        "secret file {} may be read by other users (mode {mode:03o}); \
         refusing to use it. Fix: chmod 600 {}",
        path.display(), path.display()
    )]
    Readable {
        /// The secret's name.
        name: String,
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The path is a directory or something else that is not a file.
    #[error("secret {name}: {} is not a regular file", path.display())]
    NotAFile {
        /// The secret's name.
        name: String,
        /// The path.
        path: PathBuf,
    },
    /// The file is larger than any token.
    #[error("secret {name}: {} is larger than 64 KiB; is it the right file?", path.display())]
    TooLarge {
        /// The secret's name.
        name: String,
        /// The file.
        path: PathBuf,
    },
    /// Reading the file failed.
    #[error("secret {name}: cannot read {}: {source}", path.display())]
    Io {
        /// The secret's name.
        name: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The value cannot be put where the binding says.
    #[error("secret {name} cannot be used at its position: {why}")]
    Unusable {
        /// The secret's name.
        name: String,
        /// Why.
        why: String,
    },
}
