//! The shape of the code, checked on every test run: no module cycle inside
//! the agent daemon, and no non-test source file over 800 lines anywhere in
//! the workspace (docs/architecture.md). `scripts/module-cycles --graph`
//! prints the same import graph for a person to read.
//!
//! The import graph is read from the token stream, not from a compiler:
//! each file is a module (`a.rs` and `a/mod.rs` are `a`, `a/b.rs` is
//! `a::b`; the directory's own `mod.rs` is the root); a module depends on
//! the modules it declares and on every module it names through `super::…`
//! or `crate::daemon::…` (in a `use` or in a path), taken to the deepest
//! module the path names. A module naming itself or one of its ancestors
//! is no edge: a child always sees its parents' items. Inside an inline
//! `mod x { … }` (tests), `super` names the file's own module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The line limit of a non-test source file.
const MAX_LINES: usize = 800;

type Module = Vec<String>;

/// Each import edge (from, to) with the places that make it.
type Edges = BTreeMap<(Module, Module), Vec<String>>;

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path, skip: &dyn Fn(&Path) -> bool, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if skip(&path) {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, skip, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

fn module_of(root: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Module = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The source without comments, strings and char literals; line breaks
/// kept so that token lines stay true.
fn strip(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let newlines = |from: usize, to: usize| "\n".repeat(text[from..to].matches('\n').count());
    let mut i = 0;
    while i < b.len() {
        let rest = &text[i..];
        let after_ident = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if let Some(body) = rest.strip_prefix("/*") {
            let end = body.find("*/").map_or(rest.len(), |j| j + 4);
            out.push_str(&newlines(i, i + end));
            i += end;
        } else if b[i] == b'r' && !after_ident && raw_string_hashes(rest).is_some() {
            let hashes = raw_string_hashes(rest).unwrap();
            let close = format!("\"{}", "#".repeat(hashes));
            let body = 2 + hashes;
            let end = rest[body..]
                .find(&close)
                .map_or(rest.len(), |j| body + j + close.len());
            out.push_str("\"\"");
            out.push_str(&newlines(i, i + end));
            i += end;
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            out.push_str(&newlines(i, j.min(b.len())));
            i = j + 1;
        } else if b[i] == b'\'' {
            match char_literal_len(rest) {
                Some(n) => {
                    out.push_str("' '");
                    i += n;
                }
                None => {
                    // A lifetime.
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// `Some(n)` if `s` opens a raw string `r#…#"` with `n` hashes.
fn raw_string_hashes(s: &str) -> Option<usize> {
    let hashes = s[1..].bytes().take_while(|&c| c == b'#').count();
    (s.as_bytes().get(1 + hashes) == Some(&b'"')).then_some(hashes)
}

/// The length of the char literal `s` opens (`'a'`, `'\n'`, `'\u{1F600}'`),
/// or `None` for a lifetime.
fn char_literal_len(s: &str) -> Option<usize> {
    let mut chars = s.char_indices().skip(1);
    let (_, first) = chars.next()?;
    if first == '\\' {
        let close = s[2..].find('\'')?;
        return Some(close + 3);
    }
    let (at, next) = chars.next()?;
    (next == '\'').then_some(at + 1)
}

/// Identifiers, `::`, and every other non-blank character, with lines.
fn tokens(code: &str) -> Vec<(String, usize)> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            line += 1;
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((code[start..i].to_string(), line));
        } else if code[i..].starts_with("::") {
            out.push(("::".into(), line));
            i += 2;
        } else {
            let ch = code[i..].chars().next().unwrap();
            out.push((ch.to_string(), line));
            i += ch.len_utf8();
        }
    }
    out
}

fn is_ident(t: &str) -> bool {
    t.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
}

/// The paths of the path tree starting at `toks[i]` (`a::b::{c, d::e}`),
/// and the index after it.
fn expand(toks: &[(String, usize)], mut i: usize) -> (Vec<Module>, usize) {
    let mut prefix: Module = Vec::new();
    while i < toks.len() {
        let t = toks[i].0.as_str();
        if t == "{" {
            let mut paths = Vec::new();
            i += 1;
            while i < toks.len() && toks[i].0 != "}" {
                let (sub, next) = expand(toks, i);
                // A token the grammar does not expect: skip it.
                i = next.max(i + 1);
                for s in sub {
                    paths.push([prefix.clone(), s].concat());
                }
                if i < toks.len() && toks[i].0 == "," {
                    i += 1;
                }
            }
            if paths.is_empty() {
                paths.push(prefix);
            }
            return (paths, i + 1);
        }
        if is_ident(t) {
            prefix.push(t.to_string());
            if toks.get(i + 1).is_some_and(|n| n.0 == "::") {
                i += 2;
                continue;
            }
            return (vec![prefix], i + 1);
        }
        return (vec![prefix], i);
    }
    (vec![prefix], i)
}

/// The import graph of the module tree at `root`: each edge with the
/// places that make it.
fn import_graph(root: &Path) -> (BTreeSet<Module>, Edges) {
    let mut files = Vec::new();
    rust_files(root, &|_| false, &mut files);
    let modules: BTreeMap<Module, PathBuf> = files
        .iter()
        .map(|f| (module_of(root, f), f.clone()))
        .collect();
    let known: BTreeSet<Module> = modules.keys().cloned().collect();
    let deepest = |path: &[String]| -> Module {
        (1..=path.len())
            .map(|k| path[..k].to_vec())
            .rfind(|p| known.contains(p))
            .unwrap_or_default()
    };
    let mut edges: Edges = BTreeMap::new();
    let mut add = |from: &Module, to: Module, at: String| {
        if to.len() <= from.len() && from[..to.len()] == to[..] {
            return; // itself or an ancestor
        }
        edges.entry((from.clone(), to)).or_default().push(at);
    };
    for (module, file) in &modules {
        if let Some((_, parent)) = module.split_last() {
            add(&parent.to_vec(), module.clone(), "declared".into());
        }
        let toks = tokens(&strip(&std::fs::read_to_string(file).unwrap()));
        let mut depth = 0usize;
        let mut inline: Vec<usize> = Vec::new();
        let mut i = 0;
        while i < toks.len() {
            let t = toks[i].0.as_str();
            if t == "mod" && toks.get(i + 2).is_some_and(|n| n.0 == "{") {
                inline.push(depth + 1);
            }
            if t == "{" {
                depth += 1;
            } else if t == "}" {
                if inline.last() == Some(&depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            let starts_path = (t == "super" && (i == 0 || toks[i - 1].0 != "::"))
                || (t == "crate"
                    && toks.get(i + 1).is_some_and(|n| n.0 == "::")
                    && toks.get(i + 2).is_some_and(|n| n.0 == "daemon"));
            if !starts_path {
                i += 1;
                continue;
            }
            let (paths, next) = expand(&toks, i);
            for path in paths {
                let absolute: Module = if path[0] == "crate" {
                    path[2..].to_vec()
                } else {
                    // Inline modules sit below the file's module.
                    let mut base: Vec<Option<String>> = module.iter().cloned().map(Some).collect();
                    base.extend(std::iter::repeat_n(None, inline.len()));
                    let mut rest = &path[..];
                    while rest.first().is_some_and(|p| p == "super") {
                        base.pop();
                        rest = &rest[1..];
                    }
                    if base.iter().any(Option::is_none) {
                        continue; // names the file's own items
                    }
                    base.into_iter()
                        .flatten()
                        .chain(rest.iter().cloned())
                        .collect()
                };
                let at = format!("{}:{}", file.display(), toks[i].1);
                add(module, deepest(&absolute), at);
            }
            i = next.max(i + 1);
        }
    }
    (known, edges)
}

/// The strongly connected sets of more than one module (Tarjan).
fn cycles(
    nodes: &BTreeSet<Module>,
    edges: &BTreeMap<(Module, Module), Vec<String>>,
) -> Vec<Vec<Module>> {
    struct Tarjan<'a> {
        graph: BTreeMap<&'a Module, Vec<&'a Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on_stack: BTreeSet<&'a Module>,
        found: Vec<Vec<Module>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a Module) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).cloned().unwrap_or_default() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut set = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    set.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                if set.len() > 1 {
                    set.sort();
                    self.found.push(set);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph: BTreeMap::new(),
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for (a, b) in edges.keys() {
        t.graph.entry(a).or_default().push(b);
    }
    for v in nodes {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    t.found
}

/// Every cycle of the module tree at `root`, each with the references
/// that tie it.
fn cycle_report(root: &Path) -> (usize, Vec<String>) {
    let (modules, edges) = import_graph(root);
    let name = |m: &Module| {
        if m.is_empty() {
            "(root)".into()
        } else {
            m.join("::")
        }
    };
    let report = cycles(&modules, &edges)
        .into_iter()
        .map(|set| {
            let members: BTreeSet<&Module> = set.iter().collect();
            let mut s = format!(
                "cycle among {}",
                set.iter().map(name).collect::<Vec<_>>().join(", ")
            );
            for ((a, b), at) in &edges {
                if members.contains(a) && members.contains(b) {
                    s.push_str(&format!("\n  {} -> {}    {}", name(a), name(b), at[0]));
                }
            }
            s
        })
        .collect();
    (modules.len(), report)
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn the_agent_daemon_has_no_module_cycle() {
    let root = workspace().join("agent/src/daemon");
    let (modules, cycles) = cycle_report(&root);
    assert!(
        modules > 20,
        "only {modules} modules read under {}",
        root.display()
    );
    assert!(cycles.is_empty(), "{}", cycles.join("\n"));
}

/// The checker finds a cycle through `super`, through `crate::daemon` and
/// through a grouped `use`, and none through comments, strings or a test
/// module's `super`.
#[test]
fn the_cycle_check_finds_a_planted_cycle() {
    let dir = std::env::temp_dir().join(format!("cyrcles-arch-{}", std::process::id()));
    let daemon = dir.join("daemon");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(daemon.join("circle")).unwrap();
    let write = |p: &str, s: &str| std::fs::write(daemon.join(p), s).unwrap();
    write("mod.rs", "mod a; mod b; mod circle; mod quiet;\n");
    write("a.rs", "use super::{b::thing, x};\n");
    write("b.rs", "fn f() { crate::daemon::circle::owner::go() }\n");
    write("circle/mod.rs", "mod owner;\n");
    write("circle/owner.rs", "use super::super::a;\n");
    write(
        "quiet.rs",
        "// use super::a;\nconst S: &str = \"super::b\";\nconst R: &str = r#\"super::a\"#;\n\
         fn f<'a>(c: char) -> bool { c == '\\'' }\n#[cfg(test)] mod tests { use super::f; }\n",
    );
    let (_, found) = cycle_report(&daemon);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(found.len(), 1, "{found:?}");
    let first_line = found[0].lines().next().unwrap();
    assert_eq!(first_line, "cycle among a, b, circle::owner");
}

#[test]
fn no_source_file_is_over_the_line_limit() {
    let root = workspace();
    let skip = |p: &Path| {
        let name = p.file_name().unwrap_or_default();
        name == "target" || name == ".git" || name == "tests" || name == "node_modules"
    };
    let mut files = Vec::new();
    rust_files(&root, &skip, &mut files);
    assert!(files.len() > 100, "only {} source files found", files.len());
    let long: Vec<String> = files
        .iter()
        .filter(|f| !f.ends_with("tests.rs"))
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > MAX_LINES).then(|| format!("{n:6} {}", f.strip_prefix(&root).unwrap().display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "non-test .rs files over {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
}
