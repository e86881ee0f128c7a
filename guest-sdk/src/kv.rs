//! The component's own key/value namespace in the host's database, bounded by
//! the quota its grant sets (a component that calls none of these needs no
//! quota).
//!
//! Values are bytes; the `*_string` and `*_json` helpers encode and decode.
//! A stored value that does not decode is reported as
//! [`KvError::Store`] with a message naming the key.

use crate::adapter_bindings::airlock::channel::kv;
pub use kv::KvError;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The bytes stored under `key`, or `None`.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
    kv::get(key)
}

/// Stores `value` under `key`, replacing any earlier value.
pub fn set(key: &str, value: &[u8]) -> Result<(), KvError> {
    kv::set(key, value)
}

/// Removes `key`; succeeds if it was absent.
pub fn delete(key: &str) -> Result<(), KvError> {
    kv::delete(key)
}

/// The keys starting with `prefix`, sorted.
pub fn list_keys(prefix: &str) -> Result<Vec<String>, KvError> {
    kv::list_keys(prefix)
}

/// The UTF-8 string stored under `key`, or `None`.
pub fn get_string(key: &str) -> Result<Option<String>, KvError> {
    match kv::get(key)? {
        None => Ok(None),
        Some(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| KvError::Store(format!("the value of `{key}` is not valid UTF-8"))),
    }
}

/// Stores a string under `key`.
pub fn set_string(key: &str, value: &str) -> Result<(), KvError> {
    kv::set(key, value.as_bytes())
}

/// The JSON value stored under `key`, decoded as `T`, or `None`.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, KvError> {
    match kv::get(key)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| KvError::Store(format!("the value of `{key}` does not decode: {e}"))),
    }
}

/// Stores `value` under `key` as JSON.
pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), KvError> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| KvError::Store(format!("cannot encode the value of `{key}`: {e}")))?;
    kv::set(key, &bytes)
}
