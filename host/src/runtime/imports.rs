//! Which imports a component may have, given what it was granted.
//!
//! Capability is what gets linked: an interface that is not granted is simply
//! absent from the component's linker. Rather than let instantiation fail with
//! wasmtime's generic "import not defined", every import is checked here first
//! and a refusal names the import and the manifest entry that would grant it.
//!
//! | import                                   | needs                       |
//! |------------------------------------------|-----------------------------|
//! | `wasi:io/*`, `wasi:clocks/*`, `wasi:random/*`, `wasi:cli/*` (empty env, no stdin, output to the log) | nothing |
//! | `airlock:channel/{types,log}`            | nothing                     |
//! | `airlock:channel/clock`                  | being an adapter            |
//! | `airlock:channel/kv`                     | a `kv_quota` in the grant   |
//! | `airlock:channel/websocket`              | `websocket` destinations    |
//! | `wasi:http/{outgoing-handler,types}`     | `outbound_http` destinations|
//! | `wasi:sockets/*`, `wasi:filesystem/*`    | never granted               |
//! | anything else                            | unknown: refused            |

use crate::manifest::Linkable;

/// The WIT package version this host implements (major.minor).
pub const API_VERSION: (u64, u64) = (0, 1);

/// Why one import is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("imports `{import}`: {reason}")]
pub struct ImportRefusal {
    /// The full import name.
    pub import: String,
    /// Why, and what would grant it.
    pub reason: String,
}

/// Check one import name against what is linkable.
pub fn allows(import: &str, grant: Linkable) -> Result<(), ImportRefusal> {
    let refuse = |reason: &str| {
        Err(ImportRefusal {
            import: import.to_string(),
            reason: reason.to_string(),
        })
    };
    let (path, version) = match import.split_once('@') {
        Some((p, v)) => (p, Some(v)),
        None => (import, None),
    };
    let Some((package, interface)) = path.split_once('/') else {
        return refuse("a bare import is not provided by airlock");
    };
    match package {
        "wasi:io" | "wasi:clocks" | "wasi:random" => Ok(()),
        "wasi:cli" => match interface {
            "environment" | "exit" | "stdin" | "stdout" | "stderr" | "terminal-input"
            | "terminal-output" | "terminal-stdin" | "terminal-stdout" | "terminal-stderr" => {
                Ok(())
            }
            _ => refuse("this wasi:cli interface is not provided by airlock"),
        },
        "wasi:sockets" => refuse(
            "raw sockets are never granted; declare `outbound_http` (for HTTP through wasi:http) or `websocket` destinations in the manifest instead",
        ),
        "wasi:filesystem" => refuse(
            "components get no filesystem; files reach adapters as bytes (outbound-file, attachment-data) and the host writes the inbox",
        ),
        "wasi:http" => match interface {
            "outgoing-handler" | "types" if grant.outbound_http => Ok(()),
            "outgoing-handler" | "types" => refuse(
                "outbound HTTP is not granted; add `outbound_http = [\"https://host\"]` to the manifest and approve the component",
            ),
            _ => refuse("only wasi:http/outgoing-handler is provided by airlock"),
        },
        "airlock:channel" => {
            if let Some(v) = version
                && !api_compatible(v)
            {
                return refuse(&format!(
                    "targets airlock:channel@{v}, but this host implements {}.{}.x; rebuild against airlock-guest {}.{}",
                    API_VERSION.0, API_VERSION.1, API_VERSION.0, API_VERSION.1
                ));
            }
            match interface {
                "types" | "log" => Ok(()),
                "clock" if grant.clock => Ok(()),
                "clock" => refuse("filters get no clock or timers; only adapters do"),
                "kv" if grant.kv => Ok(()),
                "kv" => refuse(
                    "key/value storage is not granted; add `kv_quota_bytes = 1048576` to the manifest",
                ),
                "websocket" if grant.websocket => Ok(()),
                "websocket" => refuse(
                    "websockets are not granted; add `websocket = [\"wss://host\"]` to the manifest and approve the component",
                ),
                _ => refuse(
                    "unknown airlock:channel interface; is the component newer than this host?",
                ),
            }
        }
        _ => refuse("not provided by airlock"),
    }
}

fn api_compatible(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u64>());
    matches!((parts.next(), parts.next()), (Some(Ok(major)), Some(Ok(minor))) if (major, minor) == API_VERSION)
}

/// Check every import; all refusals are returned, not just the first.
pub fn check<'a>(
    imports: impl IntoIterator<Item = &'a str>,
    grant: Linkable,
) -> Result<(), Vec<ImportRefusal>> {
    let refused: Vec<_> = imports
        .into_iter()
        .filter_map(|i| allows(i, grant).err())
        .collect();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Linkable = Linkable {
        outbound_http: false,
        websocket: false,
        kv: false,
        clock: true,
    };
    const ALL: Linkable = Linkable {
        outbound_http: true,
        websocket: true,
        kv: true,
        clock: true,
    };

    #[test]
    fn table() {
        let rows: &[(&str, Linkable, bool)] = &[
            ("wasi:io/streams@0.2.6", NONE, true),
            ("wasi:io/poll@0.2.12", NONE, true),
            ("wasi:clocks/monotonic-clock@0.2.6", NONE, true),
            ("wasi:random/insecure-seed@0.2.6", NONE, true),
            ("wasi:cli/environment@0.2.6", NONE, true),
            ("wasi:cli/terminal-stderr@0.2.6", NONE, true),
            ("wasi:cli/run@0.2.6", ALL, false),
            ("airlock:channel/log@0.1.0", NONE, true),
            ("airlock:channel/types@0.1.3", NONE, true),
            ("airlock:channel/clock@0.1.0", NONE, true),
            (
                "airlock:channel/clock@0.1.0",
                Linkable {
                    clock: false,
                    ..NONE
                },
                false,
            ),
            ("airlock:channel/kv@0.1.0", NONE, false),
            (
                "airlock:channel/kv@0.1.0",
                Linkable { kv: true, ..NONE },
                true,
            ),
            ("airlock:channel/websocket@0.1.0", NONE, false),
            (
                "airlock:channel/websocket@0.1.0",
                Linkable {
                    websocket: true,
                    ..NONE
                },
                true,
            ),
            ("airlock:channel/log@0.2.0", ALL, false),
            ("airlock:channel/log@1.1.0", ALL, false),
            ("airlock:channel/secrets@0.1.0", ALL, false),
            ("wasi:http/outgoing-handler@0.2.6", NONE, false),
            ("wasi:http/types@0.2.6", NONE, false),
            (
                "wasi:http/outgoing-handler@0.2.6",
                Linkable {
                    outbound_http: true,
                    ..NONE
                },
                true,
            ),
            (
                "wasi:http/types@0.2.0",
                Linkable {
                    outbound_http: true,
                    ..NONE
                },
                true,
            ),
            ("wasi:http/incoming-handler@0.2.6", ALL, false),
            ("wasi:sockets/tcp@0.2.6", ALL, false),
            ("wasi:sockets/ip-name-lookup@0.2.6", ALL, false),
            ("wasi:filesystem/preopens@0.2.6", ALL, false),
            ("wasi:filesystem/types@0.2.6", ALL, false),
            ("acme:evil/backdoor@1.0.0", ALL, false),
            ("bare", ALL, false),
        ];
        for (import, grant, ok) in rows {
            assert_eq!(
                allows(import, *grant).is_ok(),
                *ok,
                "{import} with {grant:?}"
            );
        }
    }

    #[test]
    fn refusals_say_what_would_grant() {
        let e = allows("wasi:http/outgoing-handler@0.2.6", NONE).unwrap_err();
        assert!(e.to_string().contains("outbound_http"), "{e}");
        let e = allows("wasi:sockets/tcp@0.2.6", ALL).unwrap_err();
        assert!(e.to_string().contains("never granted"), "{e}");
        let e = allows("airlock:channel/kv@0.1.0", NONE).unwrap_err();
        assert!(e.to_string().contains("kv_quota_bytes"), "{e}");
    }

    #[test]
    fn check_lists_every_refusal() {
        let refused = check(
            [
                "wasi:sockets/tcp@0.2.6",
                "wasi:io/poll@0.2.6",
                "wasi:filesystem/preopens@0.2.6",
            ],
            ALL,
        )
        .unwrap_err();
        assert_eq!(refused.len(), 2);
    }
}
