//! [`SecretValue`]: the bytes of a secret, never printed and zeroed on drop.

use std::fmt;

/// The bytes of a secret. Printing one shows `[secret]`; the bytes are zeroed on drop.
#[derive(Clone)]
pub struct SecretValue(pub(super) Vec<u8>);

impl SecretValue {
    /// Wraps secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        SecretValue(bytes.into())
    }

    /// The secret bytes. Callers must not log, store or hand them to a component.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty (never true for a loaded secret).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

impl Drop for SecretValue {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::BoundSecret;
    use crate::secrets::test_support::binding;

    #[test]
    fn value_never_prints() {
        let v = SecretValue::new("123:abc");
        assert_eq!(format!("{v}"), "[secret]");
        assert_eq!(format!("{v:?}"), "[secret]");
        let bound = BoundSecret::new(
            binding("TOKEN", "https://api.telegram.org", "/bot{secret}"),
            v,
        )
        .unwrap();
        assert!(!format!("{bound:?}").contains("123:abc"));
        let (_, header) = BoundSecret::new(
            binding(
                "TOKEN",
                "https://discord.com",
                "Authorization: Bot {secret}",
            ),
            SecretValue::new("123:abc"),
        )
        .unwrap()
        .header()
        .unwrap();
        assert!(header.is_sensitive());
        assert!(!format!("{header:?}").contains("123:abc"));
    }
}
