//! Session names: what a chat types after `/session`, so short, lowercase
//! and safe to print anywhere.
//!
//! A session started without `--session` is named after the directory
//! Claude Code started it in (its project). Two sessions of one project get
//! `-2`, `-3`… so that each name keeps meaning one running session.

/// Longest name.
pub const MAX_LEN: usize = 40;
/// The name used when the directory gives nothing usable.
pub const FALLBACK: &str = "session";
/// Suffixes tried before giving up (`name-2` … `name-99`).
pub const MAX_SUFFIX: u32 = 99;

/// Why a name is not one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{0:?} is not a session name: use 1 to 40 characters from a-z, 0-9, `.`, `_` and `-`, \
     starting with a letter or a digit (like `api` or `web-2`)"
)]
pub struct BadName(pub String);

/// Whether `name` is a session name.
pub fn valid(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.len() <= MAX_LEN
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
}

/// `name` checked.
pub fn parse(name: &str) -> Result<String, BadName> {
    if valid(name) {
        Ok(name.to_owned())
    } else {
        Err(BadName(crate::text::one_line(name, 60)))
    }
}

/// The default name for a session started in `dir`: its last component,
/// lowercased, with every other character turned into `-`.
pub fn from_dir(dir: &std::path::Path) -> String {
    let base = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mut name = String::new();
    for c in base.chars() {
        let keep = c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
        let c = if keep { c } else { '-' };
        if name.is_empty() && !(c.is_ascii_lowercase() || c.is_ascii_digit()) {
            continue;
        }
        if name.len() == MAX_LEN - 3 {
            break;
        }
        name.push(c);
    }
    let name = name.trim_end_matches(['-', '.', '_']).to_owned();
    if name.is_empty() {
        FALLBACK.to_owned()
    } else {
        name
    }
}

/// `base`, then `base-2` … `base-99`: the names a default session tries.
pub fn candidates(base: &str) -> impl Iterator<Item = String> + '_ {
    std::iter::once(base.to_owned()).chain((2..=MAX_SUFFIX).map(move |n| format!("{base}-{n}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn names() {
        for (name, ok) in [
            ("api", true),
            ("web-2", true),
            ("a.b_c", true),
            ("9lives", true),
            ("", false),
            ("-x", false),
            ("Api", false),
            ("a b", false),
            ("ä", false),
            (&"x".repeat(40), true),
            (&"x".repeat(41), false),
        ] {
            assert_eq!(valid(name), ok, "{name:?}");
            assert_eq!(parse(name).is_ok(), ok, "{name:?}");
        }
    }

    #[test]
    fn default_names_come_from_the_directory() {
        for (dir, want) in [
            ("/home/me/My Project", "my-project"),
            ("/srv/api", "api"),
            ("/x/.hidden", "hidden"),
            ("/x/--", FALLBACK),
            ("/", FALLBACK),
            ("/x/日本", FALLBACK),
            ("/x/rust_2024.", "rust_2024"),
        ] {
            let got = from_dir(Path::new(dir));
            assert_eq!(got, want, "{dir}");
            assert!(valid(&got), "{got}");
        }
        let long = from_dir(Path::new(&format!("/{}", "a".repeat(90))));
        assert!(valid(&long) && long.len() <= MAX_LEN - 3, "{long}");
        // A suffix still fits.
        assert!(valid(&format!("{long}-{MAX_SUFFIX}")));
        let tried: Vec<String> = candidates("api").take(3).collect();
        assert_eq!(tried, ["api", "api-2", "api-3"]);
        assert_eq!(candidates("api").count(), MAX_SUFFIX as usize);
    }
}
