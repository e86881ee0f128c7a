//! The dependency rules of `ARCHITECTURE.md`, checked against the code.
//!
//! Reads every file under `host/src`, collects which top-level module each
//! one names (`crate::x`, `use crate::{x, y::z}`, and `super::` chains that
//! climb out of their module), and fails on an import a rule forbids or on any
//! cycle between top-level modules. Comments, doc comments and string
//! literals are skipped, so a doc link is not an import.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What a top-level module may never import, and why. Mirrors "Dependencies
/// between modules" in ARCHITECTURE.md; change both together.
const FORBIDDEN: &[(&str, &[&str], &str)] = &[
    (
        "caps",
        &[
            "runtime", "router", "mcp", "access", "sources", "serve", "host", "cli",
        ],
        "capabilities implement host traits on their own contexts; only the runtime's linker composes them",
    ),
    (
        "runtime",
        &["mcp", "router", "sources", "serve", "cli"],
        "the runtime runs components and knows nothing of the session",
    ),
    (
        "access",
        &["runtime", "caps", "router", "mcp"],
        "access is storage and pure decisions",
    ),
    (
        "queue",
        &["router", "mcp", "runtime", "caps", "audit"],
        "the queue is storage; the router hands it audit rows to write",
    ),
    (
        "audit",
        &[
            "runtime", "caps", "router", "mcp", "access", "queue", "relay", "sources", "serve",
            "cli",
        ],
        "the record is storage that everything writes to; it knows none of them",
    ),
    (
        "router",
        &["mcp", "sources", "serve", "cli"],
        "MCP calls the router, never the other way; what flows to the session is in event",
    ),
    (
        "relay",
        &["runtime", "caps", "router", "mcp", "access", "queue"],
        "the relay's decisions and state; the router runs it and MCP carries it",
    ),
    (
        "event",
        &["router", "mcp"],
        "events are what the router hands MCP; neither side is imported",
    ),
];

/// Modules that are pure policy: they import no top-level module but the ones
/// listed.
const PURE: &[(&str, &[&str])] = &[
    ("net", &[]),
    ("manifest", &["net"]),
    ("alert", &["text"]),
    ("hub", &["db", "text", "pid_lock"]),
    ("pid_lock", &[]),
];

#[test]
fn module_imports_follow_architecture_md() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let imports = scan_tree(&src);
    let problems = check(&imports, &top_level_modules(&src));
    assert!(
        problems.is_empty(),
        "{} import rule(s) broken:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn architecture_md_names_every_top_level_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let missing: Vec<String> = top_level_modules(&root.join("host/src"))
        .into_iter()
        .filter(|m| {
            !doc.contains(&format!("host/src/{m}/")) && !doc.contains(&format!("host/src/{m}.rs"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's code map has no entry for host/src/{{{}}}",
        missing.join(",")
    );
}

/// The checker itself: a forbidden import, a pure module that imports, and a
/// cycle are each reported with the file and the rule; comments, strings and
/// doc links are not imports.
#[test]
fn the_checker_finds_what_it_should() {
    let files = [
        (
            "caps/kv.rs",
            "use crate::runtime::state::X;\n// crate::router in a comment\nlet s = \"crate::mcp\";\n/// [x](crate::access)\n",
        ),
        (
            "manifest/spec.rs",
            "use crate::{net::destination, secrets::X};",
        ),
        ("router/mod.rs", "fn f() { crate::mcp::go() }"),
        ("mcp/server.rs", "use crate::router::Router;"),
        ("net/mod.rs", "use self::destination;\nuse super::text;"),
        ("net/ip_policy.rs", "use super::destination::Destination;"),
        (
            "text.rs",
            "mod tests { use super::*; use super::one_line; }",
        ),
    ];
    let imports: Vec<Import> = files
        .iter()
        .flat_map(|(path, text)| scan_source(Path::new(path), text))
        .collect();
    let modules = [
        "caps", "runtime", "router", "mcp", "access", "manifest", "net", "secrets", "text",
    ]
    .map(String::from)
    .into();
    let problems = check(&imports, &modules);
    let all = problems.join("\n");
    assert_eq!(problems.len(), 5, "{all}");
    assert!(
        all.contains("caps/kv.rs:1: caps imports runtime")
            && all.contains("only the runtime's linker"),
        "{all}"
    );
    assert!(
        all.contains("manifest/spec.rs:1: manifest imports secrets"),
        "{all}"
    );
    assert!(all.contains("net/mod.rs:2: net imports text"), "{all}");
    assert!(all.contains("router/mod.rs:1: router imports mcp"), "{all}");
    assert!(
        all.contains("cycle: mcp -> router -> mcp") && all.contains("host/src/router/mod.rs:1"),
        "{all}"
    );
}

/// One reference from a file to a top-level module.
#[derive(Clone, Debug)]
struct Import {
    from: String,
    to: String,
    file: PathBuf,
    line: usize,
}

fn top_level_modules(src: &Path) -> BTreeSet<String> {
    std::fs::read_dir(src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            if p.is_dir() {
                Some(name)
            } else {
                name.strip_suffix(".rs")
                    .filter(|n| !["lib", "main"].contains(n))
                    .map(String::from)
            }
        })
        .collect()
}

fn scan_tree(src: &Path) -> Vec<Import> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(src).unwrap().to_path_buf();
                let text = std::fs::read_to_string(&path).unwrap();
                out.extend(scan_source(&relative, &text));
            }
        }
    }
    out
}

/// The module path of a file under `src`: `caps/websocket/mod.rs` is
/// `[caps, websocket]`, `caps/kv.rs` is `[caps, kv]`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if !["mod", "lib", "main"].contains(&stem) {
        parts.push(stem.to_string());
    }
    parts
}

fn scan_source(relative: &Path, text: &str) -> Vec<Import> {
    let module = module_path(relative);
    let Some(from) = module.first().cloned() else {
        return Vec::new(); // lib.rs and main.rs declare modules; they import nothing.
    };
    let code = strip_comments_and_strings(text);
    let mut out = Vec::new();
    let mut add = |to: &str, at: usize| {
        if to != from && !to.is_empty() && !["self", "super", "crate"].contains(&to) {
            out.push(Import {
                from: from.clone(),
                to: to.to_string(),
                file: relative.to_path_buf(),
                line: code[..at].matches('\n').count() + 1,
            });
        }
    };
    for (at, _) in code.match_indices("crate::") {
        if at > 0 && is_ident(code[..at].chars().next_back().unwrap_or(' ')) {
            continue; // `mycrate::`, not `crate::`
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            for name in group_heads(group) {
                add(&name, at);
            }
        } else {
            add(&leading_ident(rest), at);
        }
    }
    // `super::super::x` from a file at depth 2 names the top-level `x`.
    let mut search = 0;
    while let Some(found) = code[search..].find("super::") {
        let at = search + found;
        let mut rest = &code[at..];
        let mut climbs = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            climbs += 1;
            rest = r;
        }
        search = at + climbs * "super::".len();
        if (at == 0 || !is_ident(code[..at].chars().next_back().unwrap_or(' ')))
            && climbs >= module.len()
        {
            add(&leading_ident(rest), at);
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn leading_ident(s: &str) -> String {
    s.chars().take_while(|c| is_ident(*c)).collect()
}

/// The first path segment of each item of a `{…}` group (the text after `{`).
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut at_item_start = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => at_item_start = true,
            c if at_item_start && depth == 0 && is_ident(c) => {
                heads.push(leading_ident(&group[i..]));
                at_item_start = false;
            }
            _ => {}
        }
    }
    heads
}

/// `text` with comments and the contents of string and char literals blanked
/// (newlines kept, so line numbers stay right).
fn strip_comments_and_strings(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && matches!(next, Some('"') | Some('#')) && !prev_is_ident(&chars, i) {
            // A raw string: r"…", r#"…"#, …
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                match chars.get(j) {
                    None => break,
                    Some('"') if (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) => {
                        j += 1 + hashes;
                        break;
                    }
                    Some(&ch) => out.push(blank(ch)),
                }
                j += 1;
            }
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if let Some(&ch) = chars.get(i) {
                    out.push(blank(ch));
                }
                i += 1;
            }
            i += 1;
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            i += 3; // 'x'
        } else if c == '\'' && next == Some('\\') {
            // '\n', '\u{…}'
            i += 2;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn prev_is_ident(chars: &[char], i: usize) -> bool {
    i > 0 && is_ident(chars[i - 1])
}

/// Every broken rule, one line each: the file and line, the import, the rule.
/// Names that are not among `modules` (an item a `super::` reached from a
/// file's inline test module, say) are not top-level imports.
fn check(imports: &[Import], modules: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut first: BTreeMap<(String, String), &Import> = BTreeMap::new();
    for import in imports.iter().filter(|i| modules.contains(&i.to)) {
        let at = format!(
            "{}:{}: {} imports {}",
            Path::new("host/src").join(&import.file).display(),
            import.line,
            import.from,
            import.to
        );
        for (module, forbidden, why) in FORBIDDEN {
            if import.from == *module && forbidden.contains(&import.to.as_str()) {
                problems.push(format!(
                    "{at}: {module} never imports {}: {why}",
                    forbidden.join(", ")
                ));
            }
        }
        for (module, allowed) in PURE {
            if import.from == *module && !allowed.contains(&import.to.as_str()) {
                problems.push(format!(
                    "{at}: {module} is pure policy and imports no top-level module{}",
                    if allowed.is_empty() {
                        String::new()
                    } else {
                        format!(" but {}", allowed.join(", "))
                    }
                ));
            }
        }
        if import.to == "cli" {
            problems.push(format!("{at}: nothing imports cli"));
        }
        first
            .entry((import.from.clone(), import.to.clone()))
            .or_insert(import);
    }
    problems.extend(cycles(&first));
    problems
}

/// One line per cycle between top-level modules, with where each edge is.
fn cycles(edges: &BTreeMap<(String, String), &Import>) -> Vec<String> {
    let mut graph: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        graph.entry(from).or_default().push(to);
    }
    let mut reported = BTreeSet::new();
    let mut out = Vec::new();
    for &start in graph.keys() {
        // Shortest path from each successor back to `start`.
        let mut queue = std::collections::VecDeque::from([vec![start]]);
        let mut seen = BTreeSet::from([start]);
        while let Some(path) = queue.pop_front() {
            let last = *path.last().unwrap();
            for &next in graph.get(last).into_iter().flatten() {
                if next == start {
                    let mut members: Vec<&str> = path.clone();
                    members.sort();
                    if reported.insert(members) {
                        let mut names = path.clone();
                        names.push(start);
                        let wheres: Vec<String> = names
                            .windows(2)
                            .map(|w| {
                                let i = edges[&(w[0].to_string(), w[1].to_string())];
                                format!(
                                    "{}:{}",
                                    Path::new("host/src").join(&i.file).display(),
                                    i.line
                                )
                            })
                            .collect();
                        out.push(format!(
                            "cycle: {} (at {}): top-level modules form no cycle",
                            names.join(" -> "),
                            wheres.join(", ")
                        ));
                    }
                } else if seen.insert(next) {
                    let mut longer = path.clone();
                    longer.push(next);
                    queue.push_back(longer);
                }
            }
        }
    }
    out
}
