//! Resource limits: what a manifest asks, what the operator allows, what the
//! host caps.

use std::time::Duration;

use serde::Deserialize;

/// Limits as written in a manifest or grant; absent fields take the default.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Linear memory, MiB.
    pub memory_mib: Option<u64>,
    /// CPU per call, ms (time waiting on the host does not count).
    pub cpu_ms: Option<u64>,
    /// Wall-clock per call, ms.
    pub wall_ms: Option<u64>,
}

/// Limits enforced on every call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EffectiveLimits {
    /// Bytes of linear memory.
    pub memory_bytes: u64,
    /// CPU per call.
    pub cpu: Duration,
    /// Wall-clock per call.
    pub wall: Duration,
}

/// Defaults when nobody says otherwise.
pub const DEFAULT: (u64, u64, u64) = (64, 200, 30_000);
/// The most the host ever gives, whatever is asked.
pub const HOST_CAP: (u64, u64, u64) = (512, 5_000, 120_000);

/// The most kv storage a component gets unless the operator grants more
/// (`kv_quota_bytes` under `[components.NAME.grant]` in `airlock.toml`).
pub const KV_QUOTA_CEILING: u64 = 16 << 20;

/// The kv quota of a component whose manifest asks for `asked` bytes: at most
/// the operator's grant when there is one (which may be above
/// [`KV_QUOTA_CEILING`]: the operator raises the ceiling by granting more),
/// else at most the ceiling.
pub fn kv_quota(asked: u64, granted: Option<u64>) -> u64 {
    asked.min(granted.unwrap_or(KV_QUOTA_CEILING))
}

impl EffectiveLimits {
    /// The smallest of manifest, grant and host cap; defaults fill gaps.
    pub fn resolve(manifest: &LimitsSpec, grant: &LimitsSpec) -> Self {
        let pick = |m: Option<u64>, g: Option<u64>, default: u64, cap: u64| {
            let asked = m.unwrap_or(default);
            g.map_or(asked, |g| asked.min(g)).clamp(1, cap)
        };
        Self {
            memory_bytes: pick(manifest.memory_mib, grant.memory_mib, DEFAULT.0, HOST_CAP.0) << 20,
            cpu: Duration::from_millis(pick(manifest.cpu_ms, grant.cpu_ms, DEFAULT.1, HOST_CAP.1)),
            wall: Duration::from_millis(pick(
                manifest.wall_ms,
                grant.wall_ms,
                DEFAULT.2,
                HOST_CAP.2,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_quota_is_capped_by_the_grant_or_else_the_ceiling() {
        const MIB: u64 = 1 << 20;
        let cases: &[(u64, Option<u64>, u64)] = &[
            (4096, None, 4096),
            (u64::MAX, None, KV_QUOTA_CEILING),
            (KV_QUOTA_CEILING + 1, None, KV_QUOTA_CEILING),
            (u64::MAX, Some(64 * MIB), 64 * MIB),
            (32 * MIB, Some(64 * MIB), 32 * MIB),
            (4096, Some(1024), 1024),
            (4096, Some(0), 0),
        ];
        for &(asked, granted, want) in cases {
            assert_eq!(
                kv_quota(asked, granted),
                want,
                "asked {asked}, granted {granted:?}"
            );
        }
    }

    #[test]
    fn smallest_wins_and_caps_hold() {
        let none = LimitsSpec::default();
        let d = EffectiveLimits::resolve(&none, &none);
        assert_eq!(d.memory_bytes, 64 << 20);
        assert_eq!(d.cpu, Duration::from_millis(200));
        let greedy = LimitsSpec {
            memory_mib: Some(1 << 20),
            cpu_ms: Some(u64::MAX),
            wall_ms: Some(0),
        };
        let g = EffectiveLimits::resolve(&greedy, &none);
        assert_eq!(g.memory_bytes, 512 << 20);
        assert_eq!(g.cpu, Duration::from_millis(5_000));
        assert_eq!(g.wall, Duration::from_millis(1));
        let narrowed = EffectiveLimits::resolve(
            &greedy,
            &LimitsSpec {
                memory_mib: Some(16),
                cpu_ms: Some(50),
                wall_ms: None,
            },
        );
        assert_eq!(narrowed.memory_bytes, 16 << 20);
        assert_eq!(narrowed.cpu, Duration::from_millis(50));
    }
}
