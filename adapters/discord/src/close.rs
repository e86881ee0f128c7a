//! What a gateway close code means for the session.

/// What to do after the gateway closed the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Open a new connection and resume the session.
    Resume,
    /// The session is gone: open a new connection and identify.
    Identify,
    /// Retrying cannot help; the text says what the operator must do.
    Fatal(&'static str),
}

/// The verdict for close `code` (sent by the gateway, or 1006 and the like
/// from the host when the network failed).
pub fn judge(code: u16) -> Verdict {
    match code {
        4004 => Verdict::Fatal(
            "the bot token is wrong or was reset. In the Discord Developer Portal open your \
             application, Bot, Reset Token, and store the new token as DISCORD_BOT_TOKEN (in the \
             environment or $AIRLOCK_HOME/secrets/DISCORD_BOT_TOKEN), then restart airlock",
        ),
        4014 => Verdict::Fatal(
            "the bot may not use the Message Content Intent. In the Discord Developer Portal \
             open your application, Bot, Privileged Gateway Intents, turn on Message Content \
             Intent, save, then restart airlock",
        ),
        4013 => Verdict::Fatal(
            "the gateway rejected the intents this adapter asks for; this is a bug in the \
             adapter, please report it",
        ),
        4010 | 4011 => Verdict::Fatal(
            "the bot is in too many servers for one gateway connection (sharding is required), \
             which this adapter does not do",
        ),
        4012 => {
            Verdict::Fatal("the gateway does not accept API version 10 any more; update airlock")
        }
        // Invalid sequence, session timed out: the session cannot be resumed.
        4007 | 4009 => Verdict::Identify,
        // Unknown error, unknown opcode, decode error, not authenticated,
        // already authenticated, rate limited, network failures, restarts.
        _ => Verdict::Resume,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let rows: &[(u16, &str)] = &[
            (1000, "resume"),
            (1001, "resume"),
            (1005, "resume"),
            (1006, "resume"),
            (4000, "resume"),
            (4001, "resume"),
            (4002, "resume"),
            (4003, "resume"),
            (4005, "resume"),
            (4008, "resume"),
            (4007, "identify"),
            (4009, "identify"),
            (4004, "fatal"),
            (4010, "fatal"),
            (4011, "fatal"),
            (4012, "fatal"),
            (4013, "fatal"),
            (4014, "fatal"),
        ];
        for &(code, want) in rows {
            let got = match judge(code) {
                Verdict::Resume => "resume",
                Verdict::Identify => "identify",
                Verdict::Fatal(_) => "fatal",
            };
            assert_eq!(got, want, "close {code}");
        }
    }
}
