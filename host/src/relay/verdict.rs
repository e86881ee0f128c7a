//! Verdicts: the notification that carries one back to Claude Code, the
//! text an owner may type (`yes abcde`), and the data on a prompt's buttons.
//!
//! Button data starts with [`RESERVED`], which the session's own buttons may
//! not use, and names the prompt by a random token, not by the request id:
//! the model cannot make a button that answers a prompt, and a token never
//! collides between sessions the way five-letter ids can.

use serde::Serialize;

/// The method a verdict is sent with.
pub const METHOD: &str = "notifications/claude/channel/permission";

/// The prefix of button data that only airlock's own prompts carry.
pub const RESERVED: &str = "airlock:";

/// What Claude Code is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Behavior {
    /// Run the tool.
    Allow,
    /// Do not.
    Deny,
}

impl Behavior {
    /// `allow` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Behavior::Allow => "allow",
            Behavior::Deny => "deny",
        }
    }
}

/// The JSON-RPC line (without its newline) that tells Claude Code.
pub fn notification(request_id: &str, behavior: Behavior) -> String {
    #[derive(Serialize)]
    struct Params<'a> {
        request_id: &'a str,
        behavior: Behavior,
    }
    #[derive(Serialize)]
    struct Line<'a> {
        jsonrpc: &'static str,
        method: &'static str,
        params: Params<'a>,
    }
    serde_json::to_string(&Line {
        jsonrpc: "2.0",
        method: METHOD,
        params: Params {
            request_id,
            behavior,
        },
    })
    .unwrap_or_default()
}

/// A verdict typed as text: `yes abcde`, `n abcde`, any case, spaces
/// around. The id comes back lowercased.
pub fn parse_text(text: &str) -> Option<(Behavior, String)> {
    let mut words = text.split_whitespace();
    let (word, id) = (words.next()?, words.next()?);
    if words.next().is_some() {
        return None;
    }
    let behavior = match word.to_ascii_lowercase().as_str() {
        "y" | "yes" => Behavior::Allow,
        "n" | "no" => Behavior::Deny,
        _ => return None,
    };
    let id = id.to_ascii_lowercase();
    super::request::valid_id(&id).then_some((behavior, id))
}

/// What a prompt's button does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Allow this call.
    Allow,
    /// Deny it.
    Deny,
    /// Allow it, and make a rule for the tool.
    AllowForRule,
    /// Show the whole preview.
    Details,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
            Action::AllowForRule => "rule",
            Action::Details => "more",
        }
    }
}

/// The data of `action`'s button on the prompt with `token`.
pub fn button_data(action: Action, token: &str) -> String {
    format!("{RESERVED}perm:{}:{token}", action.verb())
}

/// What a pressed button's data asks, if it is one of a prompt's.
pub fn parse_button(data: &str) -> Option<(Action, &str)> {
    let rest = data.strip_prefix(RESERVED)?.strip_prefix("perm:")?;
    let (verb, token) = rest.split_once(':')?;
    let action = [
        Action::Allow,
        Action::Deny,
        Action::AllowForRule,
        Action::Details,
    ]
    .into_iter()
    .find(|a| a.verb() == verb)?;
    valid_token(token).then_some((action, token))
}

/// Characters a prompt token is made of.
const TOKEN_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
/// Length of a prompt token (60 bits).
const TOKEN_LEN: usize = 12;

/// A fresh random prompt token.
pub fn new_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; TOKEN_LEN];
    getrandom::fill(&mut bytes)?;
    Ok(bytes
        .iter()
        .map(|b| TOKEN_ALPHABET[usize::from(*b) % TOKEN_ALPHABET.len()] as char)
        .collect())
}

fn valid_token(token: &str) -> bool {
    token.len() == TOKEN_LEN && token.bytes().all(|b| TOKEN_ALPHABET.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notification_is_exactly_the_contract() {
        assert_eq!(
            notification("abcde", Behavior::Allow),
            r#"{"jsonrpc":"2.0","method":"notifications/claude/channel/permission","params":{"request_id":"abcde","behavior":"allow"}}"#
        );
        assert!(notification("qrstu", Behavior::Deny).contains(r#""behavior":"deny""#));
    }

    #[test]
    fn text_verdicts() {
        let allow = |id: &str| Some((Behavior::Allow, id.to_string()));
        let deny = |id: &str| Some((Behavior::Deny, id.to_string()));
        for (text, want) in [
            ("yes abcde", allow("abcde")),
            ("  Y   ABCDE  ", allow("abcde")),
            ("YES abcde\n", allow("abcde")),
            ("no abcde", deny("abcde")),
            ("N qrstu", deny("qrstu")),
            ("yes abcdl", None),
            ("yes abcd", None),
            ("yes abcdef", None),
            ("yes abcde please", None),
            ("yeah abcde", None),
            ("abcde", None),
            ("yes", None),
            ("", None),
            ("no thanks", None),
        ] {
            assert_eq!(parse_text(text), want, "{text:?}");
        }
    }

    #[test]
    fn buttons_round_trip_and_nothing_else_parses() {
        let token = new_token().unwrap();
        assert!(valid_token(&token));
        for action in [
            Action::Allow,
            Action::Deny,
            Action::AllowForRule,
            Action::Details,
        ] {
            let data = button_data(action, &token);
            assert!(data.len() <= 64, "fits Telegram's callback_data: {data}");
            assert_eq!(parse_button(&data), Some((action, token.as_str())));
        }
        for bad in [
            "perm:allow:abcdefghijkm",
            "airlock:perm:allow:short",
            "airlock:perm:approve:abcdefghijkm",
            "airlock:perm:allow:ABCDEFGHIJKM",
            "airlock:perm:allow:abcdefghijkl",
            "vote:yes",
        ] {
            assert_eq!(parse_button(bad), None, "{bad}");
        }
    }
}
