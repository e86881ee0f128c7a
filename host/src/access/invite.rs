//! Invite codes: what `airlock access invite` prints and a person sends to
//! the bot to be paired.
//!
//! A code is 8 symbols from a 31-symbol alphabet without the look-alikes
//! 0/O and 1/I/L (about 39.6 bits), printed `ABCD-EFGH`. It is typed back
//! by a person, so any case, spaces and dashes are accepted. Only a salted
//! SHA-256 of a code is stored, and a candidate is compared with every
//! unexpired invite in constant time, so neither the database nor the
//! timing of an answer gives a code away.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The symbols of a code.
pub const ALPHABET: &[u8; 31] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
/// Symbols in a code.
pub const LEN: usize = 8;
/// Bytes of salt per invite.
pub const SALT_LEN: usize = 16;

/// A fresh code, as stored before display (8 symbols, no dash).
pub fn generate() -> Result<String, getrandom::Error> {
    let mut code = String::with_capacity(LEN);
    let mut buf = [0u8; 32];
    while code.len() < LEN {
        getrandom::fill(&mut buf)?;
        // Rejection sampling: 248 = 8 × 31, so every symbol is equally likely.
        for b in buf {
            if b < 248 && code.len() < LEN {
                code.push(ALPHABET[usize::from(b % 31)] as char);
            }
        }
    }
    Ok(code)
}

/// A fresh salt.
pub fn salt() -> Result<[u8; SALT_LEN], getrandom::Error> {
    let mut s = [0u8; SALT_LEN];
    getrandom::fill(&mut s)?;
    Ok(s)
}

/// `ABCDEFGH` as people read it: `ABCD-EFGH`.
pub fn display(code: &str) -> String {
    let (a, b) = code.split_at(code.len().min(4));
    format!("{a}-{b}")
}

/// What a message would be as a code: its letters and digits uppercased,
/// spaces and dashes dropped. `None` when it cannot be one (other
/// characters, or not 8 of them). Look-alikes outside the alphabet are
/// kept, so that a mistyped code still counts as a guess.
pub fn normalize(text: &str) -> Option<String> {
    if text.len() > 64 {
        return None;
    }
    let mut out = String::with_capacity(LEN);
    for c in text.chars() {
        match c {
            c if c.is_ascii_alphanumeric() => out.push(c.to_ascii_uppercase()),
            ' ' | '\t' | '\n' | '\r' | '-' | '\u{2010}'..='\u{2015}' | '\u{2212}' => {}
            _ => return None,
        }
    }
    (out.len() == LEN).then_some(out)
}

/// The stored hash of `code` under `salt`.
pub fn hash(salt: &[u8], code: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"airlock invite v1\0");
    h.update(salt);
    h.update(code.as_bytes());
    h.finalize().into()
}

/// Which of `stored` (salt, hash) `candidate` matches. Every entry is
/// hashed and compared, whatever matched before, in constant time.
pub fn find<'a, I>(candidate: &str, stored: I) -> Option<usize>
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
{
    let mut found = None;
    for (i, (salt, want)) in stored.into_iter().enumerate() {
        let got = hash(salt, candidate);
        if bool::from(got.as_slice().ct_eq(want)) && found.is_none() {
            found = Some(i);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alphabet_has_no_look_alikes() {
        assert_eq!(ALPHABET.len(), 31);
        for c in b"0O1IL" {
            assert!(!ALPHABET.contains(c), "{}", *c as char);
        }
        let mut sorted = ALPHABET.to_vec();
        sorted.dedup();
        assert_eq!(sorted.len(), 31, "no symbol twice");
    }

    #[test]
    fn codes_are_from_the_alphabet_and_spread_over_it() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..400 {
            let code = generate().unwrap();
            assert_eq!(code.len(), LEN);
            assert!(code.bytes().all(|b| ALPHABET.contains(&b)), "{code}");
            assert_eq!(normalize(&display(&code)).as_deref(), Some(code.as_str()));
            seen.extend(code.bytes());
        }
        assert_eq!(seen.len(), 31, "3200 symbols reach every one of 31");
    }

    #[test]
    fn normalization_table() {
        let cases = [
            ("ABCD-EFGH", Some("ABCDEFGH")),
            ("abcd-efgh", Some("ABCDEFGH")),
            ("abcdefgh", Some("ABCDEFGH")),
            (" ab cd ef gh ", Some("ABCDEFGH")),
            ("ABCD – EFGH", Some("ABCDEFGH")),
            ("ABCD‐EFGH", Some("ABCDEFGH")),
            ("ABCD-EFG", None),
            ("ABCD-EFGHJ", None),
            ("ABCD-EFG0", Some("ABCDEFG0")),
            ("ABCD_EFGH", None),
            ("ABCD.EFGH", None),
            ("hello there", None),
            ("ÀBCD-EFGH", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(normalize(text).as_deref(), want, "{text:?}");
        }
        assert_eq!(normalize(&"-".repeat(100)), None);
        assert_eq!(display("ABCDEFGH"), "ABCD-EFGH");
    }

    #[test]
    fn normalization_never_panics_and_only_ever_yields_code_shapes() {
        // Random text over a mix meant to hit the edges: code symbols,
        // look-alikes, separators, multi-byte and control characters.
        let pool: Vec<char> = "ABCabc0O1Il29 -\u{2010}\u{2212}\t\n_.éß\u{202e}\u{0}😀"
            .chars()
            .collect();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let text: String = (0..len)
                .map(|_| pool[(next() % pool.len() as u64) as usize])
                .collect();
            if let Some(code) = normalize(&text) {
                assert_eq!(code.len(), LEN, "{text:?}");
                assert!(
                    code.bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
                    "{text:?} -> {code:?}"
                );
                assert_eq!(normalize(&code), Some(code.clone()), "idempotent");
            }
        }
    }

    #[test]
    fn hashes_are_salted_and_every_entry_is_compared() {
        let s1 = [1u8; SALT_LEN];
        let s2 = [2u8; SALT_LEN];
        assert_ne!(hash(&s1, "ABCDEFGH"), hash(&s2, "ABCDEFGH"));
        let h1 = hash(&s1, "AAAAAAAA");
        let h2 = hash(&s2, "BBBBBBBB");
        let stored = || [(&s1[..], &h1[..]), (&s2[..], &h2[..])];
        assert_eq!(find("BBBBBBBB", stored()), Some(1));
        assert_eq!(find("AAAAAAAA", stored()), Some(0));
        assert_eq!(find("CCCCCCCC", stored()), None);
        assert_eq!(find("AAAAAAAA", []), None);
    }
}
