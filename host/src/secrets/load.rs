//! Loading secrets: [`check_name`], [`load_secret`] and [`load_secret_in`], from the
//! environment or from an owner-only file under the airlock home.

use std::io::Read;
use std::path::Path;

use super::{SecretError, SecretValue};
use crate::manifest::check_name;

/// Largest secret file read, in bytes; tokens are far smaller.
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Loads secret `name`: the environment variable `name` if set and non-empty, else the file
/// `secrets/NAME` under `home`. Error messages show the file as `$AIRLOCK_HOME/secrets/NAME`;
/// use [`load_secret_in`] to show the real path.
pub fn load_secret(name: &str, home: &cap_std::fs::Dir) -> Result<SecretValue, SecretError> {
    load_secret_in(name, home, Path::new("$AIRLOCK_HOME"))
}

/// [`load_secret`], with `home_path` (where `home` was opened) used in error messages so that
/// the fix they print can be pasted as is.
///
/// The file must be a regular file of at most 64 KiB that neither group nor others may read
/// (`chmod 600`); one trailing newline is dropped.
pub fn load_secret_in(
    name: &str,
    home: &cap_std::fs::Dir,
    home_path: &Path,
) -> Result<SecretValue, SecretError> {
    load_with_env(name, |var| std::env::var_os(var), home, home_path)
}

/// [`load_secret_in`] with the environment lookup passed in, so tests need not mutate the
/// process environment.
fn load_with_env(
    name: &str,
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
    home: &cap_std::fs::Dir,
    home_path: &Path,
) -> Result<SecretValue, SecretError> {
    check_name(name)?;
    if let Some(value) = env(name).filter(|v| !v.is_empty()) {
        return Ok(SecretValue::new(os_bytes(value)));
    }

    let relative = Path::new(crate::home::SECRETS_DIR).join(name);
    let path = home_path.join(&relative);
    let io = |source: std::io::Error| SecretError::Io {
        name: name.to_owned(),
        path: path.clone(),
        source,
    };
    let file = match home.open(&relative) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SecretError::Missing {
                name: name.to_owned(),
                path,
            });
        }
        Err(e) => return Err(io(e)),
    };
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(SecretError::NotAFile {
            name: name.to_owned(),
            path,
        });
    }
    #[cfg(unix)]
    {
        use cap_std::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretError::Readable {
                name: name.to_owned(),
                path,
                mode,
            });
        }
    }
    if meta.len() > MAX_SECRET_FILE {
        return Err(SecretError::TooLarge {
            name: name.to_owned(),
            path,
        });
    }
    // Sized up front so the buffer holding the secret is never reallocated (and copied).
    let mut value = SecretValue(Vec::with_capacity(MAX_SECRET_FILE as usize + 1));
    file.take(MAX_SECRET_FILE)
        .read_to_end(&mut value.0)
        .map_err(io)?;
    if value.0.ends_with(b"\n") {
        value.0.pop();
        if value.0.ends_with(b"\r") {
            value.0.pop();
        }
    }
    if value.is_empty() {
        return Err(SecretError::Empty {
            name: name.to_owned(),
            place: path.display().to_string(),
        });
    }
    Ok(value)
}

#[cfg(unix)]
fn os_bytes(value: std::ffi::OsString) -> Vec<u8> {
    std::os::unix::ffi::OsStringExt::into_vec(value)
}

#[cfg(not(unix))]
fn os_bytes(value: std::ffi::OsString) -> Vec<u8> {
    value.to_string_lossy().into_owned().into_bytes()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::manifest::BindingError;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempHome(PathBuf, cap_std::fs::Dir);

    impl TempHome {
        fn new(tag: &str) -> Self {
            static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = std::env::temp_dir()
                .join(format!("airlock-secrets-{tag}-{}-{n}", std::process::id(),));
            std::fs::create_dir_all(path.join("secrets")).unwrap();
            let dir =
                cap_std::fs::Dir::open_ambient_dir(&path, cap_std::ambient_authority()).unwrap();
            TempHome(path, dir)
        }

        fn write(&self, name: &str, contents: &[u8], mode: u32) -> PathBuf {
            let file = self.0.join("secrets").join(name);
            std::fs::write(&file, contents).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
            }
            let _ = mode;
            file
        }
    }

    impl Drop for TempHome {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    // The names below are chosen so that no test environment sets them.

    #[test]
    fn loads_from_file_and_trims_one_newline() {
        let home = TempHome::new("file");
        home.write("AIRLOCK_TEST_FILE_SECRET", b"123:abc\n", 0o600);
        let v = load_secret("AIRLOCK_TEST_FILE_SECRET", &home.1).unwrap();
        assert_eq!(v.expose(), b"123:abc");
        home.write("AIRLOCK_TEST_CRLF_SECRET", b"123:abc\r\n", 0o400);
        let v = load_secret("AIRLOCK_TEST_CRLF_SECRET", &home.1).unwrap();
        assert_eq!(v.expose(), b"123:abc");
        home.write("AIRLOCK_TEST_EMPTY_SECRET", b"\n", 0o600);
        let err = load_secret("AIRLOCK_TEST_EMPTY_SECRET", &home.1).unwrap_err();
        assert!(matches!(err, SecretError::Empty { .. }), "{err}");
    }

    #[test]
    fn environment_wins_over_file() {
        let home = TempHome::new("env");
        home.write("TEST_SECRET", b"from-file", 0o600);
        let env =
            |value: &'static str| move |var: &str| (var == "TEST_SECRET").then(|| value.into());
        let v = load_with_env("TEST_SECRET", env("from-env"), &home.1, &home.0).unwrap();
        assert_eq!(v.expose(), b"from-env");
        // An empty variable counts as unset.
        let v = load_with_env("TEST_SECRET", env(""), &home.1, &home.0).unwrap();
        assert_eq!(v.expose(), b"from-file");
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_file_others_can_read() {
        let home = TempHome::new("mode");
        for mode in [0o640, 0o604, 0o644, 0o660, 0o606] {
            home.write("AIRLOCK_TEST_OPEN_SECRET", b"x", mode);
            let err = load_secret_in("AIRLOCK_TEST_OPEN_SECRET", &home.1, &home.0).unwrap_err();
            let expected_fix = format!(
                "chmod 600 {}",
                home.0.join("secrets/AIRLOCK_TEST_OPEN_SECRET").display()
            );
            assert!(
                matches!(err, SecretError::Readable { .. }),
                "{mode:o}: {err}"
            );
            assert!(err.to_string().contains(&expected_fix), "{err}");
        }
    }

    #[test]
    fn missing_names_both_places() {
        let home = TempHome::new("missing");
        let err = load_secret("AIRLOCK_TEST_MISSING_SECRET", &home.1).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, SecretError::Missing { .. }));
        assert!(
            msg.contains("environment variable AIRLOCK_TEST_MISSING_SECRET"),
            "{msg}"
        );
        assert!(
            msg.contains("$AIRLOCK_HOME/secrets/AIRLOCK_TEST_MISSING_SECRET"),
            "{msg}"
        );
    }

    #[test]
    fn refuses_bad_names_and_non_files() {
        let home = TempHome::new("names");
        for bad in ["../X", "secrets", "lower", "A/B", ""] {
            let err = load_secret(bad, &home.1).unwrap_err();
            assert!(
                matches!(err, SecretError::Binding(BindingError::InvalidName { .. })),
                "{bad:?}: {err}"
            );
        }
        std::fs::create_dir(home.0.join("secrets/AIRLOCK_TEST_DIR_SECRET")).unwrap();
        let err = load_secret("AIRLOCK_TEST_DIR_SECRET", &home.1).unwrap_err();
        assert!(
            matches!(err, SecretError::NotAFile { .. } | SecretError::Io { .. }),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_cannot_escape_home() {
        let home = TempHome::new("escape");
        let outside = TempHome::new("outside");
        let target = outside.write("OUTSIDE", b"stolen", 0o600);
        std::os::unix::fs::symlink(&target, home.0.join("secrets/AIRLOCK_TEST_LINK_SECRET"))
            .unwrap();
        let err = load_secret("AIRLOCK_TEST_LINK_SECRET", &home.1).unwrap_err();
        assert!(matches!(err, SecretError::Io { .. }), "{err}");
    }
}
