//! Manifest ∩ grant: the capabilities a component actually gets.
//!
//! Every rule narrows. A destination is reachable only if the manifest lists
//! it and the grant (when it names destinations) lists it too; a rebind swaps
//! a declared destination for another and carries its secrets along; a secret
//! survives only if its destination survives and the grant (when it names
//! secrets) names it. Whatever the manifest asked and did not get is recorded
//! in `refused`, so `airlock inspect` can say why.

use std::net::{IpAddr, Ipv4Addr};

use super::grant::Grant;
use super::limits::{EffectiveLimits, kv_quota};
use super::secret_binding::SecretBinding;
use super::signature::SignedRoute;
use super::spec::{Kind, Manifest, SecretSpec};
use crate::net::destination::{Destination, Scheme};

/// What a component may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effective {
    /// Adapter or filter.
    pub kind: Kind,
    /// wasi:http destinations.
    pub outbound_http: Vec<Destination>,
    /// Websocket destinations.
    pub websocket: Vec<Destination>,
    /// Destinations allowed to resolve to restricted addresses.
    pub local: Vec<Destination>,
    /// Inbound route on the host's listener.
    pub inbound_http: bool,
    /// With `inbound_http`: how its requests are signed, when the manifest
    /// says so and the operator grants its secret. `None`: the route is
    /// reached with the per-run access token, on loopback only.
    pub inbound_signature: Option<SignedRoute>,
    /// The address the inbound route listens on: loopback unless the
    /// operator granted another for a signed route.
    pub inbound_bind: IpAddr,
    /// kv quota; `None`: kv not linked.
    pub kv_quota_bytes: Option<u64>,
    /// Secrets to inject, bound to their (possibly rebound) destinations.
    pub secrets: Vec<SecretBinding>,
    /// Limits per call.
    pub limits: EffectiveLimits,
    /// What was asked and not granted, one line each.
    pub refused: Vec<String>,
}

impl Effective {
    /// The interfaces the linker may provide.
    pub fn linkable(&self) -> Linkable {
        Linkable {
            outbound_http: !self.outbound_http.is_empty(),
            websocket: !self.websocket.is_empty(),
            kv: self.kv_quota_bytes.is_some(),
            clock: self.kind == Kind::Adapter,
        }
    }
}

/// Where a component came from, which decides what it gets by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Bundled with airlock: granted what its manifest asks.
    Bundled,
    /// A drop-in: as its manifest asks, except secrets, which it gets only
    /// when the operator names them in `grant.secrets` (a manifest can name
    /// any environment variable, and bind it to its author's own server).
    ThirdParty,
}

/// A grant that cannot apply to this manifest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EffectiveError {
    /// `rebind` names a destination the manifest does not declare.
    #[error(
        "grant for {component}: rebind of {from}, which the manifest does not declare; rebind only listed destinations"
    )]
    RebindUndeclared {
        /// Component.
        component: String,
        /// The key.
        from: Destination,
    },
    /// A rebind changes the kind of destination, or drops TLS for a
    /// destination that is not a granted local one.
    #[error("grant for {component}: rebind of {from} to {to}: {reason}")]
    Rebind {
        /// Component.
        component: String,
        /// The key.
        from: Destination,
        /// The replacement.
        to: Destination,
        /// Why it is refused.
        reason: &'static str,
    },
    /// `bind` names an address beyond loopback for a route whose requests
    /// are not signed.
    #[error(
        "grant for {component}: bind = \"{addr}\" would open its inbound route beyond this \
         machine, but its requests are not signed (its manifest declares no [inbound_http] \
         signature), so anyone who reaches the port could post into the session; remove `bind` \
         (loopback), or use an adapter whose manifest declares a signature"
    )]
    UnsignedBind {
        /// Component.
        component: String,
        /// The address asked for.
        addr: IpAddr,
    },
    /// A secret's template was refused by the secret rules.
    #[error("manifest of {component}: {reason}")]
    Secret {
        /// Component.
        component: String,
        /// Why.
        reason: String,
    },
}

/// Compute manifest ∩ grant.
pub fn effective(
    manifest: &Manifest,
    grant: &Grant,
    trust: Trust,
) -> Result<Effective, EffectiveError> {
    let mut refused = Vec::new();
    for (from, to) in &grant.rebind {
        if !manifest.outbound_http.contains(from) && !manifest.websocket.contains(from) {
            return Err(EffectiveError::RebindUndeclared {
                component: manifest.name.clone(),
                from: from.clone(),
            });
        }
        let ws = |d: &Destination| matches!(d.scheme(), Scheme::Ws | Scheme::Wss);
        let reason = if ws(from) != ws(to) {
            Some(
                "a websocket destination can only be rebound to another websocket destination, and HTTP to HTTP",
            )
        } else if from.scheme().is_tls() && !to.scheme().is_tls() && !grant.local.contains(to) {
            Some(
                "it drops TLS; that is allowed only for a destination also listed in `local` (a local fake)",
            )
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(EffectiveError::Rebind {
                component: manifest.name.clone(),
                from: from.clone(),
                to: to.clone(),
                reason,
            });
        }
    }
    let narrow = |asked: &[Destination],
                  allowed: &Option<Vec<Destination>>,
                  what: &str,
                  refused: &mut Vec<String>| {
        asked
            .iter()
            .filter(|d| match allowed {
                Some(list) if !list.contains(d) => {
                    refused.push(format!("{what} {d}: not in the operator's grant"));
                    false
                }
                _ => true,
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    let http_kept = narrow(
        &manifest.outbound_http,
        &grant.outbound_http,
        "outbound_http",
        &mut refused,
    );
    let ws_kept = narrow(
        &manifest.websocket,
        &grant.websocket,
        "websocket",
        &mut refused,
    );
    let rebound = |d: &Destination| grant.rebind.get(d).cloned().unwrap_or_else(|| d.clone());

    let wanted = manifest.inbound_http.wanted();
    let mut inbound_http = wanted && grant.inbound_http.unwrap_or(true);
    if wanted && !inbound_http {
        refused.push("inbound_http: not granted by the operator".into());
    }
    let mut inbound_signature = None;
    if let Some(route) = manifest.inbound_http.signed().filter(|_| inbound_http) {
        match secret_refusal(&route.secret, grant, trust, &manifest.name) {
            // A signed route that cannot check signatures is no route.
            Some(why) => {
                refused.push(format!("inbound_http: its signature {why}"));
                inbound_http = false;
            }
            None => inbound_signature = Some(route.clone()),
        }
    }
    let inbound_bind = match grant.bind {
        Some(addr) if !addr.is_loopback() && inbound_http && inbound_signature.is_none() => {
            return Err(EffectiveError::UnsignedBind {
                component: manifest.name.clone(),
                addr,
            });
        }
        Some(addr) => addr,
        None => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    let kv_quota_bytes = manifest.kv_quota_bytes.map(|asked| {
        let got = kv_quota(asked, grant.kv_quota_bytes);
        if got < asked && grant.kv_quota_bytes.is_none() {
            refused.push(format!(
                "kv_quota_bytes: asked {asked}, granted {got} (the host's ceiling); to allow more, set kv_quota_bytes under [components.{}.grant] in airlock.toml",
                manifest.name
            ));
        }
        got
    });

    let mut secrets = Vec::new();
    for spec in &manifest.secrets {
        let kept = if spec.ws_json_field.is_some() {
            &ws_kept
        } else {
            &http_kept
        };
        if !kept.contains(&spec.destination) {
            refused.push(format!(
                "secret {}: its destination {} is not granted",
                spec.name, spec.destination
            ));
            continue;
        }
        if let Some(why) = secret_refusal(&spec.name, grant, trust, &manifest.name) {
            refused.push(why);
            continue;
        }
        secrets.push(binding(spec, rebound(&spec.destination)).map_err(|reason| {
            EffectiveError::Secret {
                component: manifest.name.clone(),
                reason,
            }
        })?);
    }

    Ok(Effective {
        kind: manifest.kind,
        outbound_http: http_kept.iter().map(rebound).collect(),
        websocket: ws_kept.iter().map(rebound).collect(),
        local: grant.local.clone(),
        inbound_http,
        inbound_signature,
        inbound_bind,
        kv_quota_bytes,
        secrets,
        limits: EffectiveLimits::resolve(&manifest.limits, &grant.limits),
        refused,
    })
}

/// Why secret `name` is not granted, if it is not: the operator's list
/// leaves it out, or names none for a third-party component (a manifest can
/// name any environment variable, and bind it to its author's own server).
fn secret_refusal(name: &str, grant: &Grant, trust: Trust, component: &str) -> Option<String> {
    match (&grant.secrets, trust) {
        (Some(names), _) if !names.iter().any(|n| n == name) => {
            Some(format!("secret {name}: not in the operator's grant"))
        }
        (None, Trust::ThirdParty) => Some(format!(
            "secret {name}: a third-party component gets a secret only when the operator names \
             it: add secrets = [\"{name}\"] under [components.{component}.grant]"
        )),
        _ => None,
    }
}

fn binding(spec: &SecretSpec, destination: Destination) -> Result<SecretBinding, String> {
    Ok(SecretBinding {
        name: spec.name.clone(),
        destination,
        position: spec.position()?,
    })
}

/// What the effective grant lets the linker provide.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Linkable {
    /// `wasi:http` outgoing requests.
    pub outbound_http: bool,
    /// `airlock:channel/websocket`.
    pub websocket: bool,
    /// `airlock:channel/kv`.
    pub kv: bool,
    /// `airlock:channel/clock` (adapters only: filters have no timers).
    pub clock: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::limits::KV_QUOTA_CEILING;

    fn manifest() -> Manifest {
        r#"
name = "t"
kind = "adapter"
api = "0.1"
outbound_http = ["https://api.telegram.org", "https://files.example"]
inbound_http = true
kv_quota_bytes = 4096
[[secrets]]
name = "TOKEN"
destination = "https://api.telegram.org"
path_prefix = "/bot{secret}"
"#
        .parse()
        .unwrap()
    }

    fn grant(toml_text: &str) -> Grant {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn no_grant_section_gives_what_was_asked() {
        let e = effective(&manifest(), &Grant::default(), Trust::Bundled).unwrap();
        assert_eq!(e.outbound_http.len(), 2);
        assert!(e.inbound_http);
        assert_eq!(e.kv_quota_bytes, Some(4096));
        assert_eq!(e.secrets.len(), 1);
        assert!(e.refused.is_empty());
        assert!(e.local.is_empty());
    }

    #[test]
    fn grant_only_narrows() {
        let e = effective(
            &manifest(),
            &grant(
                r#"
outbound_http = ["https://files.example", "https://not-declared.example"]
inbound_http = false
kv_quota_bytes = 100000
"#,
            ),
            Trust::Bundled,
        )
        .unwrap();
        assert_eq!(
            e.outbound_http,
            vec!["https://files.example".parse().unwrap()]
        );
        assert!(!e.inbound_http);
        assert_eq!(e.kv_quota_bytes, Some(4096));
        assert!(e.secrets.is_empty(), "secret dropped with its destination");
        assert_eq!(e.refused.len(), 3, "{:?}", e.refused);
    }

    #[test]
    fn a_signed_route_needs_its_secret_and_only_it_may_bind_beyond_loopback() {
        let signed: Manifest = "name = \"hook\"\nkind = \"adapter\"\napi = \"0.1\"\n\
             [inbound_http]\nsignature = \"github\"\nsecret = \"HOOK\"\n"
            .parse()
            .unwrap();
        let local: Manifest =
            "name = \"hook\"\nkind = \"adapter\"\napi = \"0.1\"\ninbound_http = true\n"
                .parse()
                .unwrap();
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        // Served, signed, bound to; or what the error says.
        type Want = Result<(bool, bool, IpAddr), &'static str>;
        let cases: [(&Manifest, &str, Trust, Want); 7] = [
            (&signed, "", Trust::Bundled, Ok((true, true, loopback))),
            (&signed, "", Trust::ThirdParty, Ok((false, false, loopback))),
            (
                &signed,
                "secrets = [\"HOOK\"]",
                Trust::ThirdParty,
                Ok((true, true, loopback)),
            ),
            (
                &signed,
                "secrets = [\"HOOK\"]\nbind = \"0.0.0.0\"",
                Trust::ThirdParty,
                Ok((true, true, any)),
            ),
            // Its secret refused: no route at all, so nothing listens anywhere.
            (
                &signed,
                "secrets = []\nbind = \"0.0.0.0\"",
                Trust::Bundled,
                Ok((false, false, any)),
            ),
            (
                &local,
                "bind = \"0.0.0.0\"",
                Trust::Bundled,
                Err("would open its inbound route"),
            ),
            (
                &local,
                "bind = \"::1\"",
                Trust::Bundled,
                Ok((true, false, "::1".parse().unwrap())),
            ),
        ];
        for (manifest, text, trust, want) in cases {
            let got = effective(manifest, &grant(text), trust)
                .map(|e| {
                    (
                        e.inbound_http,
                        e.inbound_signature.is_some(),
                        e.inbound_bind,
                    )
                })
                .map_err(|e| e.to_string());
            match (&got, want) {
                (Ok(g), Ok(w)) => assert_eq!(*g, w, "{text}"),
                (Err(g), Err(w)) => assert!(g.contains(w), "{text}: {g}"),
                _ => panic!("{text} ({trust:?}): got {got:?}, wanted {want:?}"),
            }
        }
        let e = effective(&signed, &Grant::default(), Trust::ThirdParty).unwrap();
        assert!(
            e.refused
                .iter()
                .any(|r| r.starts_with("inbound_http: its signature secret HOOK")),
            "{:?}",
            e.refused
        );
    }

    #[test]
    fn kv_quota_above_the_ceiling_is_clamped_unless_the_operator_grants_it() {
        let mut greedy = manifest();
        greedy.kv_quota_bytes = Some(u64::MAX);
        let e = effective(&greedy, &Grant::default(), Trust::ThirdParty).unwrap();
        assert_eq!(e.kv_quota_bytes, Some(KV_QUOTA_CEILING));
        let why = e.refused.iter().find(|r| r.starts_with("kv_quota_bytes"));
        assert!(
            why.is_some_and(|r| r.contains("[components.t.grant]")),
            "{:?}",
            e.refused
        );

        let e = effective(
            &greedy,
            &grant("kv_quota_bytes = 67108864"),
            Trust::ThirdParty,
        )
        .unwrap();
        assert_eq!(e.kv_quota_bytes, Some(64 << 20));
        assert!(e.refused.iter().all(|r| !r.starts_with("kv_quota_bytes")));
    }

    #[test]
    fn secrets_can_be_withheld_by_name() {
        let e = effective(&manifest(), &grant("secrets = []"), Trust::Bundled).unwrap();
        assert!(e.secrets.is_empty());
        assert!(e.refused[0].contains("TOKEN"));
    }

    #[test]
    fn rebind_moves_destination_and_secret() {
        let e = effective(
            &manifest(),
            &grant(
                r#"
local = ["http://127.0.0.1:8081"]
[rebind]
"https://api.telegram.org" = "http://127.0.0.1:8081"
"#,
            ),
            Trust::Bundled,
        )
        .unwrap();
        let fake: Destination = "http://127.0.0.1:8081".parse().unwrap();
        assert!(e.outbound_http.contains(&fake));
        assert!(
            !e.outbound_http
                .contains(&"https://api.telegram.org".parse().unwrap())
        );
        assert_eq!(e.secrets[0].destination, fake);
        assert_eq!(e.local, vec![fake]);
    }

    #[test]
    fn rebind_of_undeclared_destination_is_an_error() {
        let err = effective(
            &manifest(),
            &grant("[rebind]\n\"https://evil.example\" = \"http://127.0.0.1:1\""),
            Trust::Bundled,
        )
        .unwrap_err();
        assert!(err.to_string().contains("does not declare"), "{err}");
    }
}

#[cfg(test)]
mod trust_and_rebind_tests {
    use super::*;

    fn manifest() -> Manifest {
        r#"
name = "t"
kind = "adapter"
api = "0.1"
outbound_http = ["https://api.telegram.org"]
[[secrets]]
name = "ANTHROPIC_API_KEY"
destination = "https://api.telegram.org"
header = "X-Key"
value = "{secret}"
"#
        .parse()
        .unwrap()
    }

    #[test]
    fn third_party_secrets_need_the_operator_to_name_them() {
        let e = effective(&manifest(), &Grant::default(), Trust::ThirdParty).unwrap();
        assert!(e.secrets.is_empty());
        assert!(
            e.refused[0].contains("secrets = [\"ANTHROPIC_API_KEY\"]"),
            "{:?}",
            e.refused
        );
        let named: Grant = toml::from_str("secrets = [\"ANTHROPIC_API_KEY\"]").unwrap();
        assert_eq!(
            effective(&manifest(), &named, Trust::ThirdParty)
                .unwrap()
                .secrets
                .len(),
            1
        );
        assert_eq!(
            effective(&manifest(), &Grant::default(), Trust::Bundled)
                .unwrap()
                .secrets
                .len(),
            1
        );
    }

    #[test]
    fn rebinds_keep_the_kind_and_tls_unless_local() {
        let rows = [
            (
                "\"https://api.telegram.org\" = \"wss://gw.example\"",
                "",
                false,
            ),
            (
                "\"https://api.telegram.org\" = \"http://127.0.0.1:8081\"",
                "",
                false,
            ),
            (
                "\"https://api.telegram.org\" = \"http://127.0.0.1:8081\"",
                "local = [\"http://127.0.0.1:8081\"]",
                true,
            ),
            (
                "\"https://api.telegram.org\" = \"https://proxy.example\"",
                "",
                true,
            ),
        ];
        for (rebind, local, ok) in rows {
            let g: Grant = toml::from_str(&format!("{local}\n[rebind]\n{rebind}")).unwrap();
            assert_eq!(
                effective(&manifest(), &g, Trust::Bundled).is_ok(),
                ok,
                "{rebind} {local}"
            );
        }
    }
}
