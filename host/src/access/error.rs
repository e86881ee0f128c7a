//! Why an access change did not happen.

use crate::db::DbError;

/// Why an access change was refused or failed. The text is for the person
/// at the terminal: what happened and how to go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Static mode: `airlock.toml` is the only source of access.
    #[error(
        "access is static: `[access] static = true` in airlock.toml makes that file the only \
         source of access, so it is not changed here; edit `owners`, `members` and `groups` under \
         [access.ADAPTER] in airlock.toml and restart airlock serve (`airlock access lockdown` \
         and `unlock` still work)"
    )]
    Static,
    /// The adapter has as many live invites as it may.
    #[error(
        "{adapter} already has {max} unexpired invites, the most it may have; wait for one to \
         expire (`airlock access invites` shows when) or withdraw them with \
         `airlock access invite {adapter} --cancel`"
    )]
    TooManyInvites {
        /// The adapter.
        adapter: String,
        /// The limit.
        max: usize,
    },
    /// No invite during lockdown.
    #[error("airlock is locked down, so no invite can be issued; `airlock access unlock` first")]
    Locked,
    /// The system's random source failed.
    #[error("cannot draw random bytes for an invite code ({0}); try again")]
    Random(String),
}

impl From<rusqlite::Error> for AccessError {
    fn from(e: rusqlite::Error) -> Self {
        AccessError::Db(e.into())
    }
}
