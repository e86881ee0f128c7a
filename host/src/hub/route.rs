//! Where an inbound event goes: the one rule, pure, shared by delivery and
//! by the tools' check of which chats a session may reach.

/// The decision for one chat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// To this session (live, or away: then its events wait for it).
    To(String),
    /// Unbound while several sessions are live: held until the chat picks one.
    Hold,
}

/// The route of a chat bound to `bound` (or to none), with `live` the
/// sessions running now.
///
/// A bound chat goes to its session whether or not it runs (its events
/// wait); an unbound chat goes to the only live session, and is held when
/// there are several (or none: nobody could take it).
pub fn decide(bound: Option<&str>, live: &[String]) -> Route {
    match (bound, live) {
        (Some(session), _) => Route::To(session.to_owned()),
        (None, [only]) => Route::To(only.clone()),
        (None, _) => Route::Hold,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let to = |x: &str| Route::To(x.into());
        let cases = [
            (Some("api"), s(&["api", "web"]), to("api")),
            (Some("api"), s(&["web"]), to("api")),
            (Some("api"), s(&[]), to("api")),
            (None, s(&["web"]), to("web")),
            (None, s(&["api", "web"]), Route::Hold),
            (None, s(&[]), Route::Hold),
        ];
        for (bound, live, want) in cases {
            assert_eq!(decide(bound, &live), want, "{bound:?} {live:?}");
        }
    }
}
