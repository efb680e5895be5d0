//! The layering checker: reads Rust sources as text and reports, with file and line, every
//! path that runs up a layer, every import cycle between files, every `std::fs` outside the
//! I/O seam, and every file or function over its size budget.
//!
//! What counts as a path: every `crate::…`, `super::…` and `self::…` path anywhere in the code
//! (`use` lines, expressions, types), and in a folder's `mod.rs` every path through one of its
//! own child modules. Comments, string literals and `#[cfg(test)]` items are left out. A name a
//! module re-exports (`pub use`) is followed to the module that defines it, so a crate-root
//! re-export counts as the module it comes from. A `pub use` line is checked against the layers;
//! it becomes an edge of the file graph only if the file also uses the name in its own code (a
//! folder's `mod.rs` that only lists its children is a table of contents, not a dependency).
//!
//! Not seen: a name brought in by a glob (`use super::*`, allowed only in test modules) and
//! macros that expand to paths.

use std::collections::{BTreeMap, BTreeSet};

/// Largest source file, in lines.
pub const MAX_FILE_LINES: usize = 600;
/// Largest function, in lines, unless a comment above it says why ("Over 70 lines because …").
pub const MAX_FN_LINES: usize = 70;
/// The phrase that excuses a long function.
pub const LONG_FN_REASON: &str = "Over 70 lines because";

/// One source file: its path under `src/` (`"store/mod.rs"`) and its text.
pub struct Source {
    pub path: String,
    pub text: String,
}

/// The floors, lowest first; each holds module paths (`"ratelimit::gcra"`, `"store"`).
pub struct Layers {
    pub floors: Vec<(String, Vec<String>)>,
}

impl Layers {
    /// Reads the first fenced block marked `layers` of a document: one floor per line,
    /// `name: module module …`, lowest first.
    pub fn parse(doc: &str) -> Result<Layers, String> {
        let start = doc.find("```layers").ok_or("no ```layers block")?;
        let body = &doc[start + "```layers".len()..];
        let end = body.find("```").ok_or("unterminated ```layers block")?;
        let mut floors = Vec::new();
        for line in body[..end].lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (name, modules) = line.split_once(':').ok_or(format!("bad floor line {line:?}"))?;
            let modules = modules.split_whitespace().map(str::to_owned).collect();
            floors.push((name.trim().to_owned(), modules));
        }
        Ok(Layers { floors })
    }

    /// The floor of a module (longest listed prefix wins); the crate root is the top floor.
    fn floor_of(&self, module: &[String]) -> Option<(usize, &str)> {
        if module.is_empty() {
            return Some((self.floors.len(), "crate root"));
        }
        let joined = module.join("::");
        let mut best: Option<(usize, usize, &str)> = None;
        for (i, (name, modules)) in self.floors.iter().enumerate() {
            for m in modules {
                let hit = joined == *m || joined.starts_with(&format!("{m}::"));
                if hit && best.is_none_or(|(len, _, _)| m.len() > len) {
                    best = Some((m.len(), i, name));
                }
            }
        }
        best.map(|(_, i, name)| (i, name))
    }
}

/// A path found in a file.
struct Found {
    line: usize,
    segments: Vec<String>,
    /// On a `pub use` line: a re-export, checked against the layers but not a file edge.
    reexport: bool,
}

/// Blanks comments and the contents of string and char literals (keeping line breaks), so
/// the rest of the checker sees code only.
fn strip(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&b, i) {
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            out.push_str(&" ".repeat(j - i + 1));
            i = j + 1;
            while i < b.len() {
                if b[i] == '"' && (1..=hashes).all(|k| b.get(i + k) == Some(&'#')) {
                    out.push_str(&" ".repeat(hashes + 1));
                    i += hashes + 1;
                    break;
                }
                out.push(blank(b[i]));
                i += 1;
            }
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < b.len() {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && (b.get(i + 2) == Some(&'\'') || next == Some('\\')) {
            // A char literal ('x' or '\n', '\''); a lifetime has no closing quote.
            let mut j = i + 1;
            if b[j] == '\\' {
                j += 2;
            } else {
                j += 1;
            }
            while j < b.len() && b[j] != '\'' {
                j += 1;
            }
            out.push_str(&" ".repeat(j + 1 - i));
            i = j + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(b: &[char], i: usize) -> bool {
    i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_')
}

/// Blanks every `#[cfg(test)]` item (test modules and test helpers).
fn strip_test_items(code: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let lines: Vec<&str> = code.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "#[cfg(test)]" {
            let mut depth = 0i64;
            let mut opened = false;
            while i < lines.len() {
                let l = lines[i];
                depth += l.matches('{').count() as i64 - l.matches('}').count() as i64;
                opened |= l.contains('{');
                out.push(String::new());
                i += 1;
                let ended_item = (opened && depth <= 0) || (!opened && l.trim_end().ends_with(';'));
                if ended_item {
                    break;
                }
            }
        } else {
            out.push(lines[i].to_owned());
            i += 1;
        }
    }
    out.join("\n")
}

/// Expands a `use` tree (`a::{b, c::{d, e}}`) into its paths.
fn expand_use(tree: &str) -> Vec<Vec<String>> {
    fn go(prefix: &[String], s: &str, out: &mut Vec<Vec<String>>) {
        let s = s.trim();
        if s.is_empty() {
            return;
        }
        if let Some(open) = s.find('{') {
            let head: Vec<String> = s[..open]
                .split("::")
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect();
            let mut p = prefix.to_vec();
            p.extend(head);
            let inner = &s[open + 1..s.rfind('}').unwrap_or(s.len())];
            let mut depth = 0;
            let mut start = 0;
            for (k, ch) in inner.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        go(&p, &inner[start..k], out);
                        start = k + 1;
                    }
                    _ => {}
                }
            }
            go(&p, &inner[start..], out);
        } else {
            let s = s.split(" as ").next().unwrap_or(s);
            let mut p = prefix.to_vec();
            p.extend(s.split("::").map(str::trim).filter(|x| !x.is_empty()).map(str::to_owned));
            if p.last().is_some_and(|l| l == "self") {
                p.pop();
            }
            out.push(p);
        }
    }
    let mut out = Vec::new();
    go(&[], tree, &mut out);
    out
}

/// Every path of interest in a stripped file, with its line. `children`: the child modules a
/// `mod.rs` (or `lib.rs`) declares; paths through them count too.
fn find_paths(code: &str, children: &BTreeSet<String>) -> Vec<Found> {
    let mut found = Vec::new();
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let bytes = code.as_bytes();
    let mut covered = vec![false; code.len()];
    // `use` statements, expanded.
    let mut at = 0;
    while let Some(k) = code[at..].find("use ") {
        let start = at + k;
        at = start + 4;
        let before_ok =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        if !before_ok {
            continue;
        }
        let Some(end) = code[start..].find(';').map(|e| start + e) else { break };
        let line_start = code[..start].rfind('\n').map_or(0, |n| n + 1);
        let reexport = code[line_start..start].trim_start().starts_with("pub");
        for segs in expand_use(&code[start + 4..end]) {
            let interesting =
                matches!(segs.first().map(String::as_str), Some("crate" | "super" | "self"))
                    || segs.first().is_some_and(|s| children.contains(s));
            if interesting {
                found.push(Found { line: line_of(start), segments: segs, reexport });
            }
        }
        covered[start..end].iter_mut().for_each(|c| *c = true);
        at = end;
    }
    // Paths anywhere else: `crate::a::b`, `super::x`, `child::y`.
    let mut i = 0;
    while i < code.len() {
        let c = bytes[i];
        if !(c.is_ascii_alphabetic() || c == b'_')
            || (i > 0
                && (bytes[i - 1].is_ascii_alphanumeric()
                    || bytes[i - 1] == b'_'
                    || bytes[i - 1] == b':'))
        {
            i += 1;
            continue;
        }
        let mut j = i;
        let mut segs = Vec::new();
        loop {
            let s = j;
            while j < code.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                j += 1;
            }
            if s == j {
                break;
            }
            segs.push(code[s..j].to_owned());
            if code[j..].starts_with("::") {
                j += 2;
            } else {
                break;
            }
        }
        let first = segs.first().map(String::as_str).unwrap_or("");
        let interesting = matches!(first, "crate" | "super" | "self") || children.contains(first);
        if segs.len() > 1 && interesting && !covered[i] {
            found.push(Found { line: line_of(i), segments: segs, reexport: false });
        }
        i = j.max(i + 1);
    }
    found
}

/// A module path from a file path under `src/`: `store/mod.rs` → `store`, `lib.rs` → root.
fn module_of(path: &str) -> Vec<String> {
    let p = path.trim_end_matches(".rs");
    let mut segs: Vec<String> = p.split('/').map(str::to_owned).collect();
    if matches!(segs.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        segs.pop();
    }
    segs
}

/// One problem, as `file:line: message`.
pub type Report = Vec<String>;

/// Runs every rule over `sources` (paths under `src/`) and returns the problems found.
pub fn check(sources: &[Source], layers: &Layers) -> Report {
    let mut report = Vec::new();
    let modules: BTreeMap<Vec<String>, usize> =
        sources.iter().enumerate().map(|(i, s)| (module_of(&s.path), i)).collect();
    let mut codes = Vec::new();
    let mut paths = Vec::new();
    for s in sources {
        let code = strip_test_items(&strip(&s.text));
        let me = module_of(&s.path);
        let is_folder = s.path.ends_with("mod.rs") || s.path == "lib.rs";
        let children: BTreeSet<String> = if is_folder {
            modules
                .keys()
                .filter(|m| m.len() == me.len() + 1 && m.starts_with(&me))
                .map(|m| m[me.len()].clone())
                .collect()
        } else {
            BTreeSet::new()
        };
        paths.push(find_paths(&code, &children));
        codes.push(code);
    }
    // Re-exports: (module, name) → absolute path.
    let mut reexports: BTreeMap<(Vec<String>, String), Vec<String>> = BTreeMap::new();
    for (i, s) in sources.iter().enumerate() {
        let me = module_of(&s.path);
        for f in paths[i].iter().filter(|f| f.reexport) {
            if let Some(abs) = absolute(&me, &s.path, &f.segments) {
                if let Some(name) = abs.last() {
                    reexports.insert((me.clone(), name.clone()), abs);
                }
            }
        }
    }
    let mut edges: BTreeMap<usize, BTreeMap<usize, usize>> = BTreeMap::new();
    for (i, s) in sources.iter().enumerate() {
        let me = module_of(&s.path);
        let Some((my_floor, my_floor_name)) = layers.floor_of(&me) else {
            report.push(format!(
                "src/{}:1: module `{}` is on no floor of the layer order",
                s.path,
                me.join("::")
            ));
            continue;
        };
        for f in &paths[i] {
            let Some(abs) = absolute(&me, &s.path, &f.segments) else {
                report.push(format!(
                    "src/{}:{}: `{}` climbs above the crate root",
                    s.path,
                    f.line,
                    f.segments.join("::")
                ));
                continue;
            };
            let Some(target) = resolve(&abs, &modules, &reexports) else { continue };
            let target_mod = module_of(&sources[target].path);
            if let Some((floor, floor_name)) = layers.floor_of(&target_mod) {
                if floor > my_floor {
                    report.push(format!(
                        "src/{}:{}: `{}` reaches up from floor `{my_floor_name}` to floor `{floor_name}` (src/{})",
                        s.path, f.line, f.segments.join("::"), sources[target].path
                    ));
                }
            }
            if !f.reexport && target != i {
                edges.entry(i).or_default().entry(target).or_insert(f.line);
            }
        }
    }
    // A name a file re-exports and also uses in its own code ties the file to the name's home.
    for (i, s) in sources.iter().enumerate() {
        let me = module_of(&s.path);
        let code = blank_use_statements(&codes[i]);
        for f in paths[i].iter().filter(|f| f.reexport) {
            let Some(abs) = absolute(&me, &s.path, &f.segments) else { continue };
            let Some(name) = abs.last() else { continue };
            let Some(target) = resolve(&abs, &modules, &reexports) else { continue };
            if target == i {
                continue;
            }
            if let Some(line) = ident_line(&code, name) {
                edges.entry(i).or_default().entry(target).or_insert(line);
            }
        }
    }
    report.extend(cycles(sources, &edges));
    for (i, s) in sources.iter().enumerate() {
        report.extend(other_rules(&s.path, &s.text, &codes[i]));
    }
    report
}

/// An absolute module path (from the crate root) for a path written in module `me`.
fn absolute(me: &[String], file: &str, segs: &[String]) -> Option<Vec<String>> {
    let is_folder = file.ends_with("mod.rs") || file == "lib.rs";
    let mut base: Vec<String> = me.to_vec();
    let mut rest = segs;
    match segs.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &segs[1..];
        }
        Some("self") => rest = &segs[1..],
        Some("super") => {
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        _ => {
            if !is_folder {
                return None;
            }
        }
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The file a path lands in: the longest module prefix, following re-exports of the name after
/// it.
fn resolve(
    abs: &[String],
    modules: &BTreeMap<Vec<String>, usize>,
    reexports: &BTreeMap<(Vec<String>, String), Vec<String>>,
) -> Option<usize> {
    let mut path = abs.to_vec();
    for _ in 0..16 {
        let n = (0..=path.len()).rev().find(|&n| modules.contains_key(&path[..n]))?;
        let module = path[..n].to_vec();
        match path.get(n).and_then(|name| reexports.get(&(module.clone(), name.clone()))) {
            Some(target) if *target != path[..=n] => {
                let mut next = target.clone();
                next.extend(path[n + 1..].iter().cloned());
                path = next;
            }
            _ => return modules.get(&module).copied(),
        }
    }
    None
}

/// Import cycles between files, each reported once with the files around it.
fn cycles(sources: &[Source], edges: &BTreeMap<usize, BTreeMap<usize, usize>>) -> Report {
    let mut report = Vec::new();
    let mut state = vec![0u8; sources.len()]; // 0 new, 1 on stack, 2 done
    let mut stack: Vec<usize> = Vec::new();
    fn visit(
        n: usize,
        edges: &BTreeMap<usize, BTreeMap<usize, usize>>,
        state: &mut [u8],
        stack: &mut Vec<usize>,
        sources: &[Source],
        report: &mut Report,
    ) {
        state[n] = 1;
        stack.push(n);
        for (&m, &line) in edges.get(&n).into_iter().flatten() {
            if state[m] == 1 {
                let from = stack.iter().position(|&x| x == m).unwrap_or(0);
                let ring: Vec<String> =
                    stack[from..].iter().map(|&x| format!("src/{}", sources[x].path)).collect();
                report.push(format!(
                    "src/{}:{line}: import cycle between files: {} -> src/{}",
                    sources[n].path,
                    ring.join(" -> "),
                    sources[m].path
                ));
            } else if state[m] == 0 {
                visit(m, edges, state, stack, sources, report);
            }
        }
        stack.pop();
        state[n] = 2;
    }
    for n in 0..sources.len() {
        if state[n] == 0 {
            visit(n, edges, &mut state, &mut stack, sources, &mut report);
        }
    }
    report
}

/// `std::fs` outside `io/`, files over [`MAX_FILE_LINES`], functions over [`MAX_FN_LINES`].
fn other_rules(path: &str, text: &str, code: &str) -> Report {
    let mut report = Vec::new();
    if !path.starts_with("io/") {
        for (n, l) in code.lines().enumerate() {
            if l.contains("std::fs") || l.contains("fs::File") || l.contains("fs::OpenOptions") {
                report.push(format!("src/{path}:{}: std::fs outside src/io/", n + 1));
            }
        }
    }
    let lines = text.lines().count();
    if lines > MAX_FILE_LINES {
        report.push(format!("src/{path}:1: {lines} lines, over {MAX_FILE_LINES}"));
    }
    let code_lines: Vec<&str> = code.lines().collect();
    let text_lines: Vec<&str> = text.lines().collect();
    for (n, l) in code_lines.iter().enumerate() {
        if !starts_fn(l) {
            continue;
        }
        // Find the body's braces; a declaration without a body (`;` first) is skipped.
        let mut depth = 0i64;
        let mut opened = false;
        let mut end = None;
        'scan: for (k, body_line) in code_lines.iter().enumerate().skip(n) {
            for ch in body_line.chars() {
                match ch {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => {
                        depth -= 1;
                        if opened && depth == 0 {
                            end = Some(k);
                            break 'scan;
                        }
                    }
                    ';' if !opened => break 'scan,
                    _ => {}
                }
            }
        }
        let Some(end) = end else { continue };
        let len = end - n + 1;
        if len > MAX_FN_LINES {
            let above = text_lines[..n].iter().rev().take_while(|l| {
                let t = l.trim_start();
                t.starts_with("//") || t.starts_with("#[")
            });
            let excused = above.into_iter().any(|l| l.contains(LONG_FN_REASON));
            if !excused {
                report.push(format!(
                    "src/{path}:{}: function of {len} lines, over {MAX_FN_LINES} without a comment \"{LONG_FN_REASON} …\"",
                    n + 1
                ));
            }
        }
    }
    report
}

/// Whether a line starts a function item (`pub(crate) const unsafe fn name`).
fn starts_fn(line: &str) -> bool {
    let mut t = line.trim_start();
    if let Some(rest) = t.strip_prefix("pub") {
        t = rest.trim_start();
        if t.starts_with('(') {
            t = t.split_once(')').map_or("", |(_, r)| r).trim_start();
        }
    }
    for q in ["const ", "async ", "unsafe ", "extern "] {
        if let Some(rest) = t.strip_prefix(q) {
            t = rest.trim_start();
        }
    }
    t.starts_with("fn ")
}

/// `code` with every `use …;` statement blanked (line breaks kept).
fn blank_use_statements(code: &str) -> String {
    let mut out = code.to_owned();
    let bytes = code.as_bytes();
    let mut at = 0;
    while let Some(k) = code[at..].find("use ") {
        let start = at + k;
        at = start + 4;
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            continue;
        }
        let Some(end) = code[start..].find(';').map(|e| start + e) else { break };
        let blank: String =
            code[start..=end].chars().map(|c| if c == '\n' { c } else { ' ' }).collect();
        out.replace_range(start..=end, &blank);
        at = end;
    }
    out
}

/// The line of the first use of identifier `name` in `code`, if any.
fn ident_line(code: &str, name: &str) -> Option<usize> {
    let bytes = code.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut at = 0;
    while let Some(k) = code[at..].find(name) {
        let start = at + k;
        let end = start + name.len();
        at = end;
        let before = start > 0 && is_ident(bytes[start - 1]);
        let after = end < bytes.len() && is_ident(bytes[end]);
        if !before && !after {
            return Some(code[..start].matches('\n').count() + 1);
        }
    }
    None
}
