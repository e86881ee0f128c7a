//! The `[access]` section of `airlock.toml`: rate limits, and static mode.
//!
//! ```toml
//! [access]
//! static = true                  # this file is the only source of access (default false)
//! sender_per_minute = 30         # messages a minute one allowed sender may send; the rest are dropped
//! stranger_alert_per_minute = 30 # messages a minute from strangers on one adapter before an alert
//!
//! [access.telegram]              # per adapter; read only when static = true
//! owners = ["123456789"]
//! members = ["987654321"]
//! groups = ["-1001234567890"]    # opened with the default rule: allowed senders, when they mention the bot
//! # a group may also be a table: { chat_id = "-100…", any_sender = true, require_mention = false }
//! ```
//!
//! Static mode exists for managed machines: a security team reviews one file,
//! and nothing typed in a terminal or a chat widens it. Because this section
//! then decides who may reach the session, it is parsed strictly and a
//! mistake stops `serve` with the line, the column and the fix; it never falls
//! back to open. Adapter tables are refused unless `static = true`, so that a
//! list nobody reads is never mistaken for the one in force.
//!
//! `static = true` with no adapter table is valid and means that nobody may
//! reach the session on any adapter.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, de::value::MapAccessDeserializer};

use super::valid_name;

/// Messages a minute one allowed sender may send unless `[access]` says otherwise.
pub const DEFAULT_SENDER_PER_MINUTE: u32 = 30;

/// Messages a minute from strangers on one adapter before an alert fires,
/// unless `[access]` says otherwise.
pub const DEFAULT_STRANGER_ALERT_PER_MINUTE: u32 = 30;

/// The largest value a per-minute setting accepts.
const MAX_PER_MINUTE: u32 = 100_000;

/// The `[access]` section.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessConfig {
    /// `static = true`: this file is the only source of access, and every
    /// command that would change access refuses (except `lockdown`).
    pub static_access: bool,
    /// Messages a minute one allowed sender may send (default
    /// [`DEFAULT_SENDER_PER_MINUTE`]); the rest are dropped.
    pub sender_per_minute: Option<u32>,
    /// Messages a minute from strangers on one adapter before an alert
    /// (default [`DEFAULT_STRANGER_ALERT_PER_MINUTE`]).
    pub stranger_alert_per_minute: Option<u32>,
    /// `[access.NAME]` tables, by adapter name. Present only when
    /// `static_access` is true; empty then means nobody may reach the session.
    pub adapters: BTreeMap<String, StaticAdapter>,
}

impl AccessConfig {
    /// Messages a minute one allowed sender may send.
    pub fn sender_per_minute(&self) -> u32 {
        self.sender_per_minute.unwrap_or(DEFAULT_SENDER_PER_MINUTE)
    }

    /// Messages a minute from strangers on one adapter before an alert.
    pub fn stranger_alert_per_minute(&self) -> u32 {
        self.stranger_alert_per_minute
            .unwrap_or(DEFAULT_STRANGER_ALERT_PER_MINUTE)
    }
}

/// One adapter's access in static mode (`[access.NAME]`). Each sender is
/// listed once, as an owner or as a member; each group once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawAdapter")]
pub struct StaticAdapter {
    /// Senders who may talk to the session, answer permission prompts,
    /// receive alerts and use owner-only commands.
    pub owners: Vec<String>,
    /// Senders who may talk to the session.
    pub members: Vec<String>,
    /// Group chats that are open.
    pub groups: Vec<StaticGroup>,
}

/// One open group chat. Written as a bare chat id it gets the default rule
/// (allowed senders, when they mention the bot); as a table it may change it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticGroup {
    /// The platform's chat id.
    pub chat_id: String,
    /// Anyone in the group may reach the session, not only allowed senders.
    pub any_sender: bool,
    /// A message reaches the session only when it mentions the bot.
    pub require_mention: bool,
}

/// `[access.NAME]` as written, before the checks across its lists.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdapter {
    #[serde(default, deserialize_with = "ids")]
    owners: Vec<Id>,
    #[serde(default, deserialize_with = "ids")]
    members: Vec<Id>,
    #[serde(default, deserialize_with = "groups")]
    groups: Vec<StaticGroup>,
}

fn ids<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Id>, D::Error> {
    d.deserialize_seq(List(
        PhantomData,
        "a list of ids in quotes, such as [\"123456789\"]",
    ))
}

fn groups<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<StaticGroup>, D::Error> {
    d.deserialize_seq(List(
        PhantomData,
        "a list of groups, such as groups = [\"-1001234567890\"], or one \
         [[access.NAME.groups]] table per group",
    ))
}

/// A list whose error, when it is not one, says what it should be.
struct List<T>(PhantomData<T>, &'static str);

impl<'de, T: Deserialize<'de>> Visitor<'de> for List<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.1)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(x) = seq.next_element()? {
            out.push(x);
        }
        Ok(out)
    }
}

impl TryFrom<RawAdapter> for StaticAdapter {
    type Error = String;

    fn try_from(raw: RawAdapter) -> Result<Self, String> {
        let owners: Vec<String> = raw.owners.into_iter().map(|i| i.0).collect();
        let members: Vec<String> = raw.members.into_iter().map(|i| i.0).collect();
        let mut seen = BTreeSet::new();
        for (list, ids) in [("owners", &owners), ("members", &members)] {
            for id in ids {
                if !seen.insert(id.as_str()) {
                    return Err(if list == "members" && owners.contains(id) {
                        format!(
                            "sender {id:?} is both an owner and a member: list it once, in owners \
                             or in members (an owner may do everything a member may)"
                        )
                    } else {
                        format!("sender {id:?} is listed twice in {list}: list it once")
                    });
                }
            }
        }
        let mut chats = BTreeSet::new();
        for g in &raw.groups {
            if !chats.insert(g.chat_id.as_str()) {
                return Err(format!(
                    "group {:?} is listed twice in groups: list it once, as a string for the \
                     default rule or as a table to change it",
                    g.chat_id
                ));
            }
        }
        Ok(Self {
            owners,
            members,
            groups: raw.groups,
        })
    }
}

/// A sender or chat id: a non-empty string without whitespace or control
/// characters. Checked on its own so that an error points at the bad entry.
struct Id(String);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(IdVisitor)
    }
}

struct IdVisitor;

impl Visitor<'_> for IdVisitor {
    type Value = Id;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an id as a string, such as \"123456789\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Id, E> {
        check_id(v).map_err(E::custom)?;
        Ok(Id(v.to_owned()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Id, E> {
        Err(E::custom(quote_number(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Id, E> {
        Err(E::custom(quote_number(v)))
    }
}

fn quote_number(v: impl fmt::Display) -> String {
    format!("ids are strings: write \"{v}\", in quotes")
}

fn check_id(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Err("an id is empty: write the sender's or chat's id, or remove the entry".into());
    }
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "id {v:?} contains whitespace or a control character: write the id alone, \
             such as \"123456789\""
        ));
    }
    Ok(())
}

/// A group as a table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupTable {
    chat_id: Option<Id>,
    #[serde(default)]
    any_sender: bool,
    #[serde(default = "yes")]
    require_mention: bool,
}

fn yes() -> bool {
    true
}

impl<'de> Deserialize<'de> for StaticGroup {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(GroupVisitor)
    }
}

/// A group is a string or a table; the table goes through [`GroupTable`] so
/// that its errors (an unknown field, a bad id) are its own, not "did not
/// match any variant".
struct GroupVisitor;

impl<'de> Visitor<'de> for GroupVisitor {
    type Value = StaticGroup;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(
            "a group chat id as a string, or a table such as \
             { chat_id = \"-1001234567890\", any_sender = false, require_mention = true }",
        )
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<StaticGroup, E> {
        check_id(v).map_err(E::custom)?;
        Ok(StaticGroup {
            chat_id: v.to_owned(),
            any_sender: false,
            require_mention: true,
        })
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<StaticGroup, E> {
        Err(E::custom(quote_number(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<StaticGroup, E> {
        Err(E::custom(quote_number(v)))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<StaticGroup, A::Error> {
        let t = GroupTable::deserialize(MapAccessDeserializer::new(map))?;
        let Some(Id(chat_id)) = t.chat_id else {
            return Err(de::Error::custom(
                "a group table has no chat_id: add one, such as { chat_id = \"-1001234567890\" }",
            ));
        };
        Ok(StaticGroup {
            chat_id,
            any_sender: t.any_sender,
            require_mention: t.require_mention,
        })
    }
}

/// The keys of `[access]` that are settings; every other key is an adapter.
const SETTINGS: &str = "static, sender_per_minute, stranger_alert_per_minute";

impl<'de> Deserialize<'de> for AccessConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(AccessVisitor)
    }
}

/// `[access]` mixes settings with one table per adapter, which no derive
/// expresses; each value is read by a seed so that its error points at it.
struct AccessVisitor;

impl<'de> Visitor<'de> for AccessVisitor {
    type Value = AccessConfig;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "the [access] table ({SETTINGS}, and one table per adapter)"
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AccessConfig, A::Error> {
        let mut c = AccessConfig::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "static" => c.static_access = map.next_value_seed(Static)?,
                "sender_per_minute" => {
                    c.sender_per_minute = Some(map.next_value_seed(PerMinute {
                        key: "sender_per_minute",
                        default: DEFAULT_SENDER_PER_MINUTE,
                    })?)
                }
                "stranger_alert_per_minute" => {
                    c.stranger_alert_per_minute = Some(map.next_value_seed(PerMinute {
                        key: "stranger_alert_per_minute",
                        default: DEFAULT_STRANGER_ALERT_PER_MINUTE,
                    })?)
                }
                name if valid_name(name) => {
                    let adapter = map.next_value_seed(AdapterSeed(name))?;
                    c.adapters.insert(key, adapter);
                }
                // Read the value only to fail there: the error then points at this key's line.
                name => map.next_value_seed(UnknownKey(name))?,
            }
        }
        if !c.static_access
            && let Some(name) = c.adapters.keys().next()
        {
            return Err(de::Error::custom(format!(
                "[access.{name}] is read only in static mode, and [access] does not say \
                 `static = true`: set `static = true` to make this file the only source of \
                 access, or remove the section and use `airlock access` commands"
            )));
        }
        Ok(c)
    }
}

/// The value of `static`: a boolean.
struct Static;

impl<'de> DeserializeSeed<'de> for Static {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_bool(self)
    }
}

impl Visitor<'_> for Static {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`static = true` or `static = false`, without quotes")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        Ok(v)
    }
}

/// A value under a key of `[access]` that is neither a setting nor an
/// adapter name: always an error.
struct UnknownKey<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for UnknownKey<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, _: D) -> Result<(), D::Error> {
        Err(de::Error::custom(format!(
            "unknown key `{}` in [access]: the settings are {SETTINGS}, and an adapter's \
             table is named after it, such as [access.telegram]",
            self.0
        )))
    }
}

/// The value under an adapter's key: it must be a table.
struct AdapterSeed<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for AdapterSeed<'_> {
    type Value = StaticAdapter;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<StaticAdapter, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for AdapterSeed<'_> {
    type Value = StaticAdapter;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "a table [access.{}] with owners, members and groups (the other keys of \
             [access] are {SETTINGS})",
            self.0
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<StaticAdapter, A::Error> {
        StaticAdapter::deserialize(MapAccessDeserializer::new(map))
    }
}

/// A per-minute setting: a whole number from 1 to [`MAX_PER_MINUTE`].
struct PerMinute {
    key: &'static str,
    default: u32,
}

impl PerMinute {
    fn range(&self) -> String {
        format!("from 1 to {MAX_PER_MINUTE} (default {})", self.default)
    }
}

impl<'de> DeserializeSeed<'de> for PerMinute {
    type Value = u32;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u32, D::Error> {
        d.deserialize_i64(self)
    }
}

impl Visitor<'_> for PerMinute {
    type Value = u32;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} as a whole number {}", self.key, self.range())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u32, E> {
        match u32::try_from(v) {
            Ok(n) if (1..=MAX_PER_MINUTE).contains(&n) => Ok(n),
            _ => Err(E::custom(format!(
                "{} = {v} is out of range: set it {}",
                self.key,
                self.range()
            ))),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u32, E> {
        self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::manifest::Config;

    fn parse(text: &str) -> Result<AccessConfig, String> {
        Config::parse(text, Path::new("airlock.toml"))
            .map(|c| c.access)
            .map_err(|e| e.to_string())
    }

    fn group(chat_id: &str, any_sender: bool, require_mention: bool) -> StaticGroup {
        StaticGroup {
            chat_id: chat_id.into(),
            any_sender,
            require_mention,
        }
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn absent_section_gives_the_defaults() {
        for text in ["", "[access]\n", "[delivery]\nmax_waiting = 5\n"] {
            let a = parse(text).unwrap();
            assert_eq!(a, AccessConfig::default(), "{text:?}");
            assert!(!a.static_access);
            assert_eq!(a.sender_per_minute(), DEFAULT_SENDER_PER_MINUTE);
            assert_eq!(a.sender_per_minute(), 30);
            assert_eq!(
                a.stranger_alert_per_minute(),
                DEFAULT_STRANGER_ALERT_PER_MINUTE
            );
            assert_eq!(a.stranger_alert_per_minute(), 30);
        }
    }

    #[test]
    fn accepted_forms() {
        let full = StaticAdapter {
            owners: ids(&["123456789"]),
            members: ids(&["987654321"]),
            groups: vec![group("-1001234567890", false, true)],
        };
        let cases: Vec<(&str, AccessConfig)> = vec![
            (
                "[access]\nstatic = false\nsender_per_minute = 1\nstranger_alert_per_minute = 100000",
                AccessConfig {
                    sender_per_minute: Some(1),
                    stranger_alert_per_minute: Some(100_000),
                    ..Default::default()
                },
            ),
            // Static with no adapter: nobody may reach the session.
            (
                "[access]\nstatic = true",
                AccessConfig {
                    static_access: true,
                    ..Default::default()
                },
            ),
            (
                r#"
[access]
static = true
sender_per_minute = 30
stranger_alert_per_minute = 30

[access.telegram]
owners = ["123456789"]
members = ["987654321"]
groups = ["-1001234567890"]
"#,
                AccessConfig {
                    static_access: true,
                    sender_per_minute: Some(30),
                    stranger_alert_per_minute: Some(30),
                    adapters: [("telegram".to_string(), full.clone())].into(),
                },
            ),
            // The sub-table before the table that makes it valid; an empty adapter.
            (
                "[access.telegram]\nowners = [\"123456789\"]\nmembers = [\"987654321\"]\n\
                 groups = [\"-1001234567890\"]\n[access.discord]\n[access]\nstatic = true",
                AccessConfig {
                    static_access: true,
                    adapters: [
                        ("telegram".to_string(), full.clone()),
                        ("discord".to_string(), StaticAdapter::default()),
                    ]
                    .into(),
                    ..Default::default()
                },
            ),
            // Groups as strings, inline tables and an array of tables.
            (
                r#"
[access]
static = true
[access.discord]
groups = [
  "1",
  { chat_id = "2" },
  { chat_id = "3", any_sender = true, require_mention = false },
]
[access.telegram]
owners = ["1", "2"]
[[access.telegram.groups]]
chat_id = "-100"
require_mention = false
"#,
                AccessConfig {
                    static_access: true,
                    adapters: [
                        (
                            "discord".to_string(),
                            StaticAdapter {
                                groups: vec![
                                    group("1", false, true),
                                    group("2", false, true),
                                    group("3", true, false),
                                ],
                                ..Default::default()
                            },
                        ),
                        (
                            "telegram".to_string(),
                            StaticAdapter {
                                owners: ids(&["1", "2"]),
                                groups: vec![group("-100", false, false)],
                                ..Default::default()
                            },
                        ),
                    ]
                    .into(),
                    ..Default::default()
                },
            ),
            // Dotted keys are the same tables.
            (
                "access.static = true\naccess.fakechat.members = [\"a\"]",
                AccessConfig {
                    static_access: true,
                    adapters: [(
                        "fakechat".to_string(),
                        StaticAdapter {
                            members: ids(&["a"]),
                            ..Default::default()
                        },
                    )]
                    .into(),
                    ..Default::default()
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn refusals_name_the_problem_the_fix_and_the_place() {
        let st = "[access]\nstatic = true\n";
        let tg = "[access]\nstatic = true\n[access.telegram]\n";
        let cases: Vec<(String, &[&str])> = vec![
            // Keys of [access].
            (
                "[access]\nsender_per_minit = 5".into(),
                &[
                    "unknown key `sender_per_minit`",
                    "static, sender_per_minute",
                    "[access.telegram]",
                ],
            ),
            (
                "[access]\nstatc = true".into(),
                &[
                    "a table [access.statc]",
                    "the other keys of [access] are static",
                ],
            ),
            (
                "[access]\nSlack = {}".into(),
                &["unknown key `Slack`", "[access.telegram]"],
            ),
            (
                "[access]\ntelegram = true".into(),
                &[
                    "invalid type: boolean",
                    "a table [access.telegram]",
                    "owners, members",
                ],
            ),
            (
                "[access]\nstatic = true\ntelegram = [\"1\"]".into(),
                &["invalid type: sequence", "a table [access.telegram]"],
            ),
            (
                "[access]\nstatic = \"yes\"".into(),
                &[
                    "invalid type: string",
                    "`static = true` or `static = false`",
                ],
            ),
            // Adapter tables outside static mode.
            (
                "[access.telegram]\nowners = [\"1\"]".into(),
                &[
                    "[access.telegram] is read only in static mode",
                    "set `static = true`",
                    "airlock access",
                ],
            ),
            (
                "[access]\nstatic = false\n[access.discord]".into(),
                &[
                    "[access.discord]",
                    "set `static = true`",
                    "remove the section",
                ],
            ),
            // Rates.
            (
                "[access]\nsender_per_minute = 0".into(),
                &["sender_per_minute = 0 is out of range", "from 1 to 100000"],
            ),
            (
                "[access]\nstranger_alert_per_minute = 0".into(),
                &[
                    "stranger_alert_per_minute = 0 is out of range",
                    "from 1 to 100000",
                ],
            ),
            (
                "[access]\nsender_per_minute = 100001".into(),
                &["sender_per_minute = 100001", "from 1 to 100000"],
            ),
            (
                "[access]\nsender_per_minute = -1".into(),
                &["sender_per_minute = -1", "from 1 to 100000"],
            ),
            (
                "[access]\nsender_per_minute = \"30\"".into(),
                &["invalid type: string", "whole number from 1 to 100000"],
            ),
            // An adapter's lists.
            (
                format!("{tg}owner = [\"1\"]"),
                &["unknown field `owner`", "`owners`, `members`, `groups`"],
            ),
            (
                format!("{tg}owners = [\"1\"]\nmembers = [\"2\", \"1\"]"),
                &["sender \"1\" is both an owner and a member", "list it once"],
            ),
            (
                format!("{tg}owners = [\"1\", \"1\"]"),
                &["sender \"1\" is listed twice in owners", "list it once"],
            ),
            (
                format!("{tg}members = [\"2\", \"3\", \"2\"]"),
                &["sender \"2\" is listed twice in members", "list it once"],
            ),
            (
                format!("{tg}owners = [\"\"]"),
                &["an id is empty", "remove the entry"],
            ),
            (
                format!("{tg}members = [\"12 34\"]"),
                &["id \"12 34\" contains whitespace", "write the id alone"],
            ),
            (
                format!("{tg}members = [\"12\\u0007\"]"),
                &["control character", "write the id alone"],
            ),
            (
                format!("{tg}members = [true]"),
                &[
                    "invalid type: boolean",
                    "an id as a string, such as \"123456789\"",
                ],
            ),
            (
                "[access]\nstatic = 1".into(),
                &[
                    "invalid type: integer",
                    "`static = true` or `static = false`",
                ],
            ),
            (
                format!("{tg}owners = [123456789]"),
                &["ids are strings", "write \"123456789\", in quotes"],
            ),
            (
                format!("{tg}owners = \"1\""),
                &[
                    "invalid type: string",
                    "a list of ids in quotes, such as [\"123456789\"]",
                ],
            ),
            // Groups.
            (
                format!("{tg}groups = [\"-100\", {{ chat_id = \"-100\", any_sender = true }}]"),
                &["group \"-100\" is listed twice", "list it once"],
            ),
            (
                format!("{tg}groups = [-1001234567890]"),
                &["ids are strings", "write \"-1001234567890\", in quotes"],
            ),
            (
                format!("{tg}groups = [\"\"]"),
                &["an id is empty", "remove the entry"],
            ),
            (
                format!("{tg}groups = [\" -100\"]"),
                &["contains whitespace", "write the id alone"],
            ),
            (
                format!("{tg}groups = [{{ chat_id = \"-100\", anyone = true }}]"),
                &["unknown field `anyone`", "`any_sender`"],
            ),
            (
                format!("{tg}groups = [{{ chat_id = \"\" }}]"),
                &["an id is empty", "remove the entry"],
            ),
            (
                format!("{tg}groups = [{{ any_sender = true }}]"),
                &["has no chat_id", "add one, such as { chat_id ="],
            ),
            (
                format!("{tg}groups = [true]"),
                &[
                    "invalid type: boolean",
                    "a group chat id as a string, or a table",
                ],
            ),
            (
                format!("{st}[access.telegram.groups]"),
                &[
                    "invalid type: map",
                    "a list of groups",
                    "[[access.NAME.groups]]",
                ],
            ),
        ];
        for (text, wants) in &cases {
            let err = parse(text).expect_err(text);
            assert!(err.contains("airlock.toml"), "{text}\n{err}");
            assert!(
                err.contains("line") && err.contains("column"),
                "{text}\n{err}"
            );
            for want in *wants {
                assert!(err.contains(want), "{text}\nwanted {want:?} in\n{err}");
            }
        }
    }

    /// An error points at the entry at fault, not only at the section.
    #[test]
    fn errors_point_at_the_line_at_fault() {
        let cases = [
            ("[access]\nstatic = true\n\nbogus_key = 1", 4),
            ("[access]\nstatic = true\nsender_per_minute = 0", 3),
            (
                "[access]\nstatic = true\n[access.telegram]\nowners = [\n\"1\",\n\"\"]",
                6,
            ),
            (
                "[access]\nstatic = true\n[access.telegram]\ngroups = [\n{ chat_id = \"1\" },\n{ chat_id = \"2\", x = 1 }]",
                6,
            ),
        ];
        for (text, line) in cases {
            let err = parse(text).expect_err(text);
            assert!(err.contains(&format!("line {line}")), "{text}\n{err}");
        }
    }
}
