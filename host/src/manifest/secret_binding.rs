//! [`SecretBinding`]: a manifest's statement of which secret goes to which destination, and
//! where in its requests. Pure policy, parsed and checked once; the value itself is loaded and
//! rendered by `secrets`.

use super::secret_position::SecretPosition;
use crate::net::destination::Destination;

/// Why a secret binding in a manifest breaks the rules.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindingError {
    /// The name does not match `^[A-Z][A-Z0-9_]*$`.
    #[error(
        "invalid secret name {name:?}: names are uppercase letters, digits and '_', \
         starting with a letter, like TELEGRAM_BOT_TOKEN"
    )]
    InvalidName {
        /// The name as given.
        name: String,
    },
    /// A position (header, path prefix or JSON field) that breaks the rules.
    #[error("invalid secret position {position:?}: {why}")]
    InvalidPosition {
        /// The position as given.
        position: String,
        /// What is wrong with it.
        why: String,
    },
}

impl BindingError {
    pub(crate) fn position(position: String, why: String) -> Self {
        BindingError::InvalidPosition { position, why }
    }
}

/// A secret name is `^[A-Z][A-Z0-9_]*$`, so it is a safe environment variable and file name.
pub fn check_name(name: &str) -> Result<(), BindingError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(BindingError::InvalidName {
            name: name.to_owned(),
        })
    }
}

/// A manifest's statement that secret `name` goes to `destination` at `position`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretBinding {
    /// The secret's name, `^[A-Z][A-Z0-9_]*$`; also its environment variable and file name.
    pub name: String,
    /// The one destination the secret is sent to.
    pub destination: Destination,
    /// Where in requests to `destination` it goes.
    pub position: SecretPosition,
}

impl SecretBinding {
    /// Checks the name, the position, and that the position fits the destination's scheme.
    pub fn validate(&self) -> Result<(), BindingError> {
        check_name(&self.name)?;
        self.position.validate()?;
        if !self.position.fits(self.destination.scheme()) {
            return Err(BindingError::position(
                self.position.to_string(),
                format!(
                    "a websocket JSON field needs a ws:// or wss:// destination, not {}",
                    self.destination
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(name: &str, dest: &str, position: &str) -> SecretBinding {
        SecretBinding {
            name: name.into(),
            destination: dest.parse().unwrap(),
            position: position.parse().unwrap(),
        }
    }

    #[test]
    fn bindings_validate() {
        assert!(
            binding("TOKEN", "wss://gateway.discord.gg", "json:d.token")
                .validate()
                .is_ok()
        );
        assert!(
            binding(
                "TOKEN",
                "wss://gateway.discord.gg",
                "Authorization: {secret}"
            )
            .validate()
            .is_ok()
        );
        let err = binding("TOKEN", "https://discord.com", "json:d.token")
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("needs a ws:// or wss://"), "{err}");
        for bad in ["", "token", "1TOKEN", "TOKEN-X", "TÖKEN", "_X"] {
            let err = binding(bad, "https://a.example", "/x{secret}")
                .validate()
                .unwrap_err();
            assert!(matches!(err, BindingError::InvalidName { .. }), "{bad:?}");
        }
        for good in ["T", "TELEGRAM_BOT_TOKEN", "A1_"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
    }
}
