//! What the record keeps of message text (`[audit] content`).
//!
//! `digest` keeps an HMAC-SHA-256 of the text under a key that lives only in
//! this database, and the text's length: two rows with the same text have
//! the same digest, but a digest in an export or a log shipper cannot be
//! reversed by hashing guesses without the key.

use sha2::{Digest, Sha256};

use crate::manifest::ContentMode;

/// What is stored for one text.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Kept {
    /// The text itself (`full`).
    pub content: Option<String>,
    /// Its keyed digest (`digest`).
    pub digest: Option<String>,
    /// Its length in characters (`full`, `digest`).
    pub len: Option<i64>,
}

/// What `mode` keeps of `text` (already scrubbed of secrets), with `key`.
pub fn keep(mode: ContentMode, key: &[u8], text: Option<&str>) -> Kept {
    let Some(text) = text else {
        return Kept::default();
    };
    let len = Some(text.chars().count() as i64);
    match mode {
        ContentMode::Full => Kept {
            content: Some(text.to_owned()),
            digest: None,
            len,
        },
        ContentMode::Digest => Kept {
            content: None,
            digest: Some(hmac_sha256(key, text.as_bytes())),
            len,
        },
        ContentMode::None => Kept::default(),
    }
}

/// HMAC-SHA-256 (RFC 2104), hex.
fn hmac_sha256(key: &[u8], message: &[u8]) -> String {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| -> Vec<u8> { k.iter().map(|b| b ^ byte).collect() };
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    hex::encode(
        Sha256::new()
            .chain_update(pad(0x5c))
            .chain_update(inner)
            .finalize(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 of RFC 4231.
        assert_eq!(
            hmac_sha256(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        assert_eq!(
            hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn modes() {
        let full = keep(ContentMode::Full, b"k", Some("héllo"));
        assert_eq!(
            (full.content.as_deref(), full.digest, full.len),
            (Some("héllo"), None, Some(5))
        );
        let a = keep(ContentMode::Digest, b"k", Some("héllo"));
        let b = keep(ContentMode::Digest, b"k", Some("héllo"));
        let other_key = keep(ContentMode::Digest, b"j", Some("héllo"));
        assert_eq!(a, b, "same text, same digest");
        assert_ne!(a.digest, other_key.digest);
        assert_eq!((a.content, a.len), (None, Some(5)));
        assert_eq!(keep(ContentMode::None, b"k", Some("x")), Kept::default());
        assert_eq!(keep(ContentMode::Full, b"k", None), Kept::default());
    }
}
