//! What owners read: a prompt and what it becomes, in each platform's markup.
//!
//! Everything Claude Code sent (tool name, description, preview) and every
//! name a platform reports is foreign text. It goes only into code spans and
//! code blocks, escaped for the markup in use, so that it can forge no
//! formatting, link, mention or button: Telegram gets HTML with `<code>` and
//! `<pre>` (whose contents clients neither format nor link), Discord gets
//! inline code and fenced blocks with backticks replaced, and any other
//! platform plain text. Hidden characters (bidi overrides, zero-width ones)
//! are removed everywhere.

use crate::bindings::types::TextFormat;

/// Characters of the preview a prompt shows; Details shows more.
pub const PROMPT_PREVIEW: usize = 500;
/// Characters of the description a prompt shows.
pub const PROMPT_DESCRIPTION: usize = 300;
/// Room kept for everything around the preview in a Details message.
const DETAILS_FRAME: usize = 300;

/// How text is marked up for one adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Markup {
    /// No markup at all (the page shows text as text).
    Plain,
    /// Telegram's HTML.
    Html,
    /// Discord's markdown.
    DiscordMarkdown,
}

impl Markup {
    /// The markup for the adapter named `adapter`.
    pub fn for_adapter(adapter: &str) -> Self {
        match adapter {
            "telegram" => Markup::Html,
            "discord" => Markup::DiscordMarkdown,
            _ => Markup::Plain,
        }
    }

    /// The format an outbound message in this markup is sent with.
    pub fn format(self) -> TextFormat {
        match self {
            Markup::Plain => TextFormat::Plain,
            Markup::Html => TextFormat::Html,
            Markup::DiscordMarkdown => TextFormat::Markdown,
        }
    }

    /// Foreign text inline, inert.
    pub fn code(self, text: &str) -> String {
        let text = clean(text).replace('\n', " ");
        match self {
            Markup::Plain => text,
            Markup::Html => format!("<code>{}</code>", html(&text)),
            Markup::DiscordMarkdown if text.trim().is_empty() => "(empty)".into(),
            Markup::DiscordMarkdown => format!("`{}`", backticks(&text)),
        }
    }

    /// Foreign text as a block, inert.
    pub fn block(self, text: &str) -> String {
        let text = clean(text);
        match self {
            Markup::Plain => text,
            Markup::Html => format!("<pre>{}</pre>", html(&text)),
            Markup::DiscordMarkdown => format!("```\n{}\n```", backticks(&text)),
        }
    }

    /// airlock's own words, made safe for the markup (they hold no markup).
    pub fn own(self, text: &str) -> String {
        match self {
            Markup::Html => html(text),
            Markup::Plain | Markup::DiscordMarkdown => text.to_owned(),
        }
    }
}

/// Hidden characters removed, newlines and tabs kept.
fn clean(text: &str) -> String {
    text.chars()
        .filter(|c| *c == '\n' || *c == '\t' || !crate::text::hidden(*c))
        .collect()
}

fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Discord code spans end at a backtick; a look-alike keeps the text
/// readable and the span whole.
fn backticks(text: &str) -> String {
    text.replace('`', "ˋ")
}

/// At most `max` characters of `text`, and the count of the rest.
fn excerpt(text: &str, max: usize) -> (&str, usize) {
    match text.char_indices().nth(max) {
        None => (text, 0),
        Some((at, _)) => (&text[..at], text[at..].chars().count()),
    }
}

/// `HH:MM UTC` of a Unix time in seconds.
pub fn clock(unix_secs: i64) -> String {
    let day = unix_secs.rem_euclid(86_400);
    format!("{:02}:{:02} UTC", day / 3600, day % 3600 / 60)
}

/// What a prompt shows of its request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromptView<'a> {
    /// The request id.
    pub request_id: &'a str,
    /// The tool.
    pub tool_name: &'a str,
    /// Claude Code's summary.
    pub description: &'a str,
    /// The preview as kept.
    pub input_preview: &'a str,
    /// Characters cut from the preview before it was kept.
    pub preview_cut: usize,
    /// When the prompt expires (Unix seconds).
    pub expires_at: i64,
    /// The session that asks (a name: `[a-z0-9._-]`).
    pub session: &'a str,
}

impl PromptView<'_> {
    fn heading(&self, m: Markup) -> String {
        let (description, cut) = excerpt(self.description, PROMPT_DESCRIPTION);
        let mut out = format!(
            "{} {}",
            m.own("Claude Code asks to use"),
            m.code(self.tool_name)
        );
        if !description.trim().is_empty() {
            out.push('\n');
            out.push_str(&m.code(description));
            if cut > 0 {
                out.push_str(&m.own(" …"));
            }
        }
        out
    }
}

/// The prompt as first sent. `rule` says whether an "Allow 30 min" button
/// is offered (the text then says what it does).
pub fn prompt(m: Markup, view: &PromptView<'_>, rule: Option<&str>) -> String {
    let (preview, cut) = excerpt(view.input_preview, PROMPT_PREVIEW);
    let cut = cut + view.preview_cut;
    let mut out = format!("🔐 {}\n", view.heading(m));
    if !preview.trim().is_empty() {
        out.push_str(&m.block(preview));
        out.push('\n');
    }
    if cut > 0 {
        out.push_str(&m.own(&format!("[… {cut} more characters: press Details]\n")));
    }
    let id = view.request_id;
    out.push_str(&m.own(&format!(
        "Request {id}: answer with the buttons, or type \"yes {id}\" or \"no {id}\", by {}.",
        clock(view.expires_at)
    )));
    if let Some(rule) = rule {
        out.push_str(&format!(
            "{} {} {}",
            m.own(" \"Allow 30 min\" also allows every"),
            m.code(rule),
            m.own("call for 30 minutes.")
        ));
    }
    out.push('\n');
    if !view.session.is_empty() {
        out.push_str(&m.own("From session "));
        out.push_str(&m.code(view.session));
        out.push_str(&m.own(".\n"));
    }
    out.push_str(&m.own("The terminal asks the same question and may already have answered it."));
    out
}

/// The whole preview, within `max_chars` (the platform's message limit).
pub fn details(m: Markup, view: &PromptView<'_>, max_chars: usize) -> String {
    let room = max_chars.saturating_sub(DETAILS_FRAME).max(100);
    let (preview, cut) = excerpt(view.input_preview, room);
    let cut = cut + view.preview_cut;
    let mut out = format!(
        "{} {} ({})\n{}",
        m.own("Details of request"),
        m.code(view.request_id),
        m.code(view.tool_name),
        m.block(if preview.is_empty() { " " } else { preview })
    );
    if cut > 0 {
        out.push('\n');
        out.push_str(&m.own(&format!(
            "[… {cut} more characters not shown here; the terminal shows the call]"
        )));
    }
    out
}

/// How a prompt ended, for the edit of its copies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending<'a> {
    /// An owner answered.
    Answered {
        /// Allowed (or denied).
        allowed: bool,
        /// Who answered (a platform name, foreign text).
        by: &'a str,
        /// On which adapter.
        platform: &'a str,
        /// When (Unix seconds).
        at: i64,
        /// A rule was made, lasting until then.
        rule_until: Option<i64>,
    },
    /// Nobody answered in time.
    Expired,
    /// The airlock that relayed it stopped.
    Restarted,
    /// Lockdown closed it.
    LockedDown,
}

/// The text a copy is edited to.
pub fn ended(m: Markup, view: &PromptView<'_>, ending: &Ending<'_>) -> String {
    let line = match ending {
        Ending::Answered {
            allowed,
            by,
            platform,
            at,
            rule_until,
        } => {
            let verb = if *allowed {
                "✅ Allowed"
            } else {
                "❌ Denied"
            };
            let mut line = format!(
                "{} {} {} {} {}",
                m.own(&format!("{verb} by")),
                m.code(by),
                m.own("on"),
                m.code(platform),
                m.own(&format!("at {}.", clock(*at)))
            );
            if let Some(until) = rule_until {
                line.push_str(&m.own(&format!(
                    " Later calls of this tool are allowed until {}.",
                    clock(*until)
                )));
            }
            line
        }
        Ending::Expired => m.own("⌛ Expired: answer in the terminal."),
        Ending::Restarted => m.own("⌛ airlock restarted: answer in the terminal."),
        Ending::LockedDown => m.own("🔒 airlock is locked down: answer in the terminal."),
    };
    format!(
        "{line}\n{}\n{}",
        view.heading(m),
        m.own(&format!(
            "Request {}. The terminal may already have answered it.",
            view.request_id
        ))
    )
}

/// The one reminder.
pub fn nudge(m: Markup, view: &PromptView<'_>) -> String {
    format!(
        "{} {} {}",
        m.own("⏳ Claude Code is still waiting for permission to use"),
        m.code(view.tool_name),
        m.own(&format!(
            "(request {}). Answer the prompt above or in the terminal; it closes here at {}.",
            view.request_id,
            clock(view.expires_at)
        ))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(preview: &'a str, description: &'a str) -> PromptView<'a> {
        PromptView {
            request_id: "abcde",
            tool_name: "Bash",
            session: "",
            description,
            input_preview: preview,
            preview_cut: 0,
            expires_at: 13 * 3600 + 5 * 60,
        }
    }

    const HOSTILE: &str = "**bold** _it_ [click](https://evil.example) <b>x</b> <a href=\"https://evil.example\">y</a> \
                           @everyone <@123456> ```fence``` `tick` &amp; \u{202E}gnp.exe \u{200B}";

    #[test]
    fn foreign_text_is_inert_in_every_markup() {
        let v = view(HOSTILE, HOSTILE);
        let html_text = prompt(Markup::Html, &v, None);
        // Only the tags airlock writes; everything foreign is escaped.
        let tags: Vec<&str> = html_text
            .match_indices('<')
            .map(|(i, _)| {
                let end = html_text[i..].find('>').unwrap();
                &html_text[i..i + end + 1]
            })
            .collect();
        for tag in &tags {
            assert!(
                ["<code>", "</code>", "<pre>", "</pre>"].contains(tag),
                "a foreign tag survived: {tag} in {html_text}"
            );
        }
        assert!(html_text.contains("&lt;b&gt;x&lt;/b&gt;"));
        assert!(html_text.contains("&amp;amp;"));
        let discord = prompt(Markup::DiscordMarkdown, &v, None);
        // Foreign text sits in spans and blocks whose backticks are airlock's.
        let foreign_ticks = discord.matches('`').count();
        assert_eq!(foreign_ticks, 2 + 2 + 6, "{discord}");
        assert!(discord.contains("<@123456>") && discord.contains("```\n**bold**"));
        for text in [html_text, discord, prompt(Markup::Plain, &v, None)] {
            assert!(
                !text.contains('\u{202E}') && !text.contains('\u{200B}'),
                "{text}"
            );
        }
    }

    #[test]
    fn a_prompt_names_its_session() {
        let v = PromptView {
            session: "api-2",
            ..view("ls", "List files")
        };
        let text = prompt(Markup::Html, &v, None);
        assert!(
            text.contains("From session <code>api-2</code>.\nThe terminal asks"),
            "{text}"
        );
        assert!(!prompt(Markup::Plain, &view("ls", "x"), None).contains("From session"));
    }

    #[test]
    fn a_long_preview_is_cut_with_a_marker_and_details_shows_more() {
        let long = "x".repeat(5_000);
        let mut v = view(&long, "Run shell command");
        v.preview_cut = 100;
        let p = prompt(Markup::Plain, &v, None);
        assert!(p.contains(&"x".repeat(PROMPT_PREVIEW)));
        assert!(!p.contains(&"x".repeat(PROMPT_PREVIEW + 1)));
        assert!(p.contains(&format!("[… {} more characters: press Details]", 4_600)));
        let d = details(Markup::DiscordMarkdown, &v, 2_000);
        assert!(d.chars().count() <= 2_000, "{}", d.chars().count());
        assert!(d.contains(&"x".repeat(1_700)));
        assert!(d.contains("more characters not shown here"));
        let whole = details(Markup::Html, &view("short", ""), 4_096);
        assert!(whole.contains("<pre>short</pre>") && !whole.contains("not shown"));
    }

    #[test]
    fn prompt_endings_and_reminders_say_what_happened() {
        let v = view("{\"command\":\"ls\"}", "List files");
        let p = prompt(Markup::Plain, &v, Some("Bash"));
        assert!(
            p.starts_with("🔐 Claude Code asks to use Bash\nList files\n{\"command\":\"ls\"}\n")
        );
        assert!(p.contains("type \"yes abcde\" or \"no abcde\", by 13:05 UTC"));
        assert!(p.contains("\"Allow 30 min\" also allows every Bash call"));
        assert!(p.contains("may already have answered"));
        let answered = ended(
            Markup::Plain,
            &v,
            &Ending::Answered {
                allowed: true,
                by: "alice",
                platform: "telegram",
                at: 13 * 3600 + 2 * 60,
                rule_until: None,
            },
        );
        assert!(
            answered.starts_with("✅ Allowed by alice on telegram at 13:02 UTC."),
            "{answered}"
        );
        assert!(answered.contains("may already have answered"));
        let denied = ended(
            Markup::Html,
            &v,
            &Ending::Answered {
                allowed: false,
                by: "<script>",
                platform: "discord",
                at: 0,
                rule_until: Some(1800),
            },
        );
        assert!(
            denied.starts_with(
                "❌ Denied by <code>&lt;script&gt;</code> on <code>discord</code> at 00:00 UTC."
            ),
            "{denied}"
        );
        assert!(denied.contains("allowed until 00:30 UTC"));
        assert!(
            ended(Markup::Plain, &v, &Ending::Expired)
                .starts_with("⌛ Expired: answer in the terminal.")
        );
        assert!(
            nudge(Markup::Plain, &v)
                .contains("still waiting for permission to use Bash (request abcde)")
        );
    }

    /// Strings from the characters that make markup, in random mixes.
    fn hostile_strings(n: usize) -> Vec<String> {
        const PIECES: &[&str] = &[
            "<",
            ">",
            "&",
            "`",
            "```",
            "*",
            "_",
            "~",
            "|",
            "[",
            "]",
            "(",
            ")",
            "@",
            "#",
            "\n",
            "<@1>",
            "@everyone",
            "<a href=\"x\">",
            "</pre>",
            "</code>",
            "&lt;",
            "\\",
            "a",
            " ",
            "https://evil.example",
            "\u{202E}",
            "\u{200B}",
            "é",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        (0..n)
            .map(|_| {
                let len = (next() % 24) as usize;
                (0..len)
                    .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                    .collect()
            })
            .collect()
    }

    #[test]
    fn no_mix_of_markup_characters_escapes_its_span() {
        for text in hostile_strings(3_000) {
            let v = view(&text, &text);
            let html_text = prompt(Markup::Html, &v, Some("x"));
            let mut rest = html_text.as_str();
            while let Some(i) = rest.find('<') {
                let tag = &rest[i..i + rest[i..].find('>').expect("a closed tag")];
                assert!(
                    ["<code", "</code", "<pre", "</pre"].contains(&tag),
                    "{text:?} made {tag:?} in {html_text}"
                );
                rest = &rest[i + 1..];
            }
            // Discord: outside airlock's code spans and blocks, only airlock's words.
            let discord = prompt(Markup::DiscordMarkdown, &v, Some("x"));
            let mut outside = String::new();
            for (i, block) in discord.split("```").enumerate() {
                if i % 2 == 0 {
                    for (j, span) in block.split('`').enumerate() {
                        if j % 2 == 0 {
                            outside.push_str(span);
                        }
                    }
                }
            }
            for c in ['*', '_', '~', '|', '[', '@', '<', '#'] {
                assert!(
                    !outside.contains(c),
                    "{text:?}: {c} outside code in {discord}"
                );
            }
            let fences = discord.matches("```").count();
            assert!(fences == 0 || fences == 2, "{discord}");
            for out in [html_text, discord, prompt(Markup::Plain, &v, None)] {
                assert!(!out.contains('\u{202E}') && !out.contains('\u{200B}'));
            }
        }
    }

    #[test]
    fn clock_table() {
        assert_eq!(clock(0), "00:00 UTC");
        assert_eq!(clock(86_399), "23:59 UTC");
        assert_eq!(clock(1_764_766_800), "13:00 UTC");
    }
}
