//! The import graph of `src/`: top-level modules import only modules of lower layers
//! ([`LAYERS`], the table in CONTRIBUTING.md), so no two of them depend on each other, directly or
//! around a loop; and no two files do.
//!
//! A dependency of file A on file B is any path in A's code (comments and strings left out) that
//! resolves to B: `use` trees, `crate::…`, `super::…` and `self::…` paths, and a child module's
//! name used as a path (`stage2::stage2` in `train/mod.rs`). `mod x;` declarations are not
//! dependencies. A path resolves to the deepest module file it names, so `super::Progress` in
//! `train/stage2.rs` is a dependency on `train/mod.rs`. A name a module file re-exports from a
//! child (`pub use locate::DataLocator` in `data/mod.rs`) resolves to that child, so
//! `super::DataLocator` in `data/pool.rs` is an edge to `data/locate.rs`. `as` renames are read.
//!
//! A module's own file (`train/mod.rs`) contains its direct children: its edges down to them
//! (declaring, re-exporting, calling `stage2::stage2`) are containment, not imports, so
//! children may use their parent's items. Every other edge counts, siblings' included.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

/// A module path (`["train", "stage2"]`; the crate root is `[]`) to its file, relative to `src/`.
type Files = BTreeMap<Vec<String>, String>;

/// Every module file under `src/` but the binary's `main.rs`.
fn module_files(src: &Path) -> Files {
    let mut files = Files::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap().to_string_lossy().replace('\\', "/");
            if relative == "main.rs" {
                continue;
            }
            let mut segments: Vec<String> =
                relative.trim_end_matches(".rs").split('/').map(str::to_owned).collect();
            if matches!(segments.last().map(String::as_str), Some("mod" | "lib")) {
                segments.pop();
            }
            files.insert(segments, relative);
        }
    }
    files
}

/// Whether the `r` at `i` starts a raw string: no identifier character before it, or only a
/// `b` (a raw byte string, `br"…"`).
fn starts_literal(chars: &[char], i: usize) -> bool {
    let ident = |k: usize| chars.get(k).is_some_and(|p| p.is_alphanumeric() || *p == '_');
    match i.checked_sub(1) {
        None => true,
        Some(b) if chars[b] == 'b' => b.checked_sub(1).is_none_or(|k| !ident(k)),
        Some(p) => !ident(p),
    }
}

/// The code of a Rust file with comments, string and character literals blanked out.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
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
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && starts_literal(&chars, i)
        {
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
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (0..hashes).all(|k| chars.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            out.push_str("' '");
            i += 3;
        } else if c == '\'' && next == Some('\\') {
            i += 2;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The expanded paths of a `use` tree (`a::{b, c::{d, e}}` gives `a::b`, `a::c::d`, `a::c::e`).
fn expand_use(tree: &str) -> Vec<String> {
    let tree: String = without_renames(tree).chars().filter(|c| !c.is_whitespace()).collect();
    let mut out = Vec::new();
    expand_into("", &tree, &mut out);
    out
}

/// A use tree without its `as name` renames (`crate::data as d` is `crate::data`).
fn without_renames(tree: &str) -> String {
    let mut out = String::new();
    let mut rest = tree;
    while let Some(at) = rest.find(" as ") {
        out.push_str(&rest[..at]);
        let after = rest[at + 4..].trim_start();
        let name_len =
            after.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(after.len());
        rest = &after[name_len..];
    }
    out.push_str(rest);
    out
}

fn expand_into(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let Some(open) = tree.find('{') else {
        out.push(format!("{prefix}{tree}"));
        return;
    };
    let head = format!("{prefix}{}", &tree[..open]);
    let inner = &tree[open + 1..tree.len() - 1];
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand_into(&head, &inner[start..i], out);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < inner.len() {
        expand_into(&head, &inner[start..], out);
    }
}

/// Every path in `code` that names a module of the crate, as written (`super::x::Y`, `crate::z`,
/// `child::f`), with how many inline modules (`mod tests { … }`) enclose it.
fn paths(code: &str, children: &BTreeSet<String>) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut depth = 0usize;
    let mut inline_mods: Vec<usize> = Vec::new();
    let mut i = 0;
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    while i < bytes.len() {
        let c = bytes[i];
        if c == '{' {
            depth += 1;
            i += 1;
            continue;
        }
        if c == '}' {
            depth = depth.saturating_sub(1);
            if inline_mods.last() == Some(&depth) {
                inline_mods.pop();
            }
            i += 1;
            continue;
        }
        if !is_ident(c) || (i > 0 && (is_ident(bytes[i - 1]) || bytes[i - 1] == ':')) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        let word: String = bytes[start..i].iter().collect();
        let rest: String = bytes[i..].iter().take(4000).collect();
        if word == "mod" {
            // `mod name {` opens an inline module; `mod name;` declares a file (no edge).
            let after = rest.trim_start();
            let name_len = after.find(|c: char| !is_ident(c)).unwrap_or(after.len());
            if after[name_len..].trim_start().starts_with('{') {
                inline_mods.push(depth);
            }
            i += name_len;
            continue;
        }
        if word == "use" {
            let end = rest.find(';').unwrap_or(rest.len());
            for path in expand_use(&rest[..end]) {
                found.push((path, inline_mods.len()));
            }
            i += end;
            continue;
        }
        let rooted =
            matches!(word.as_str(), "crate" | "super" | "self") || children.contains(&word);
        if rooted && rest.starts_with("::") {
            let mut path = word.clone();
            let mut j = 0;
            let tail: Vec<char> = rest.chars().collect();
            while tail.get(j) == Some(&':') && tail.get(j + 1) == Some(&':') {
                j += 2;
                let s = j;
                while j < tail.len() && is_ident(tail[j]) {
                    j += 1;
                }
                if s == j {
                    break;
                }
                path.push_str("::");
                path.extend(&tail[s..j]);
            }
            found.push((path, inline_mods.len()));
            i += j;
        }
    }
    found
}

/// Names that module files re-export: (module, name) -> the path re-exported, as written there.
type Reexports = BTreeMap<(Vec<String>, String), String>;

/// The paths of a file's `pub use`, `pub(crate) use` and `pub(super) use` statements.
fn reexported_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for marker in ["pub use ", "pub(crate) use ", "pub(super) use "] {
        let mut rest = code;
        while let Some(at) = rest.find(marker) {
            let tree = &rest[at + marker.len()..];
            let end = tree.find(';').unwrap_or(tree.len());
            out.extend(expand_use(&tree[..end]));
            rest = &tree[end..];
        }
    }
    out
}

/// The file a path in module `here` names, if any: the deepest module file along it, or, where
/// the path goes on with a name that file re-exports, the file the name comes from.
fn resolve(
    here: &[String],
    path: &str,
    inline: usize,
    files: &Files,
    reexports: &Reexports,
) -> Option<String> {
    resolve_at(here, path, inline, files, reexports, 0)
}

fn resolve_at(
    here: &[String],
    path: &str,
    inline: usize,
    files: &Files,
    reexports: &Reexports,
    depth: usize,
) -> Option<String> {
    let mut segments = path.split("::").filter(|s| !s.is_empty() && *s != "*").peekable();
    let mut absolute: Vec<String> = match segments.peek().copied() {
        Some("crate") => {
            segments.next();
            Vec::new()
        }
        Some("super" | "self") => {
            let mut base = here.to_vec();
            let mut inline = inline;
            while let Some(s @ ("super" | "self")) = segments.peek().copied() {
                segments.next();
                if s == "super" {
                    if inline > 0 {
                        inline -= 1;
                    } else {
                        base.pop();
                    }
                }
            }
            base
        }
        Some(first) => {
            // A child module used by name, or an extern crate / local item (no edge).
            let mut child = here.to_vec();
            child.push(first.to_owned());
            if !files.contains_key(&child) {
                return None;
            }
            here.to_vec()
        }
        None => return None,
    };
    let mut deepest = files.get(&absolute).cloned();
    let mut deepest_module = absolute.clone();
    let mut next = None;
    for segment in segments {
        absolute.push(segment.to_owned());
        if let Some(file) = files.get(&absolute) {
            deepest = Some(file.clone());
            deepest_module.clone_from(&absolute);
        } else {
            next = Some(segment);
            break;
        }
    }
    if let Some(name) = next.filter(|_| depth < 8) {
        if let Some(target) = reexports.get(&(deepest_module.clone(), name.to_owned())) {
            let origin = resolve_at(&deepest_module, target, 0, files, reexports, depth + 1);
            if origin.is_some() {
                return origin;
            }
        }
    }
    deepest
}

/// File -> files it depends on (a module file's edges down to its direct children left out).
fn file_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let files = module_files(src);
    let module_of: BTreeMap<&String, &Vec<String>> = files.iter().map(|(m, f)| (f, m)).collect();
    let code_of = |file: &String| code_only(&std::fs::read_to_string(src.join(file)).unwrap());
    let mut reexports = Reexports::new();
    for (module, file) in &files {
        for path in reexported_paths(&code_of(file)) {
            let name = path.rsplit("::").next().unwrap_or_default().to_owned();
            if name != "self" && name != "*" && !name.is_empty() {
                reexports.insert((module.clone(), name), path);
            }
        }
    }
    let mut graph = BTreeMap::new();
    for (module, file) in &files {
        let code = code_of(file);
        let children: BTreeSet<String> = files
            .keys()
            .filter(|k| k.len() == module.len() + 1 && k.starts_with(module))
            .map(|k| k.last().unwrap().clone())
            .collect();
        let mut deps = BTreeSet::new();
        for (path, inline) in paths(&code, &children) {
            if let Some(target) = resolve(module, &path, inline, &files, &reexports) {
                let to = module_of[&target];
                let child = to.len() == module.len() + 1 && to.starts_with(module);
                if &target != file && !child {
                    deps.insert(target);
                }
            }
        }
        graph.insert(file.clone(), deps);
    }
    graph
}

/// Strongly connected components with more than one node (Tarjan), each sorted.
fn loops(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            if !s.index.contains_key(w.as_str()) {
                visit(s, w);
                let low = s.low[w.as_str()].min(s.low[v]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w.as_str()) {
                let low = s.index[w.as_str()].min(s.low[v]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    state.out
}

/// The top-level module of a file (`train/stage2.rs` -> `train`, `config.rs` -> `config`).
fn top_level(file: &str) -> String {
    file.split('/').next().unwrap().trim_end_matches(".rs").to_owned()
}

/// The edges inside each loop, as "a -> b" lines, for the failure message.
fn describe(graph: &BTreeMap<String, BTreeSet<String>>, loops: &[Vec<String>]) -> String {
    let mut text = String::new();
    for (k, component) in loops.iter().enumerate() {
        let _ = writeln!(text, "loop {}: {}", k + 1, component.join(", "));
        for a in component {
            for b in &graph[a] {
                if component.contains(b) {
                    let _ = writeln!(text, "  {a} -> {b}");
                }
            }
        }
    }
    text
}

fn src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The layers of CONTRIBUTING.md's table, bottom first. A top-level module imports only modules
/// of lower layers: never one of its own layer, so the first layer's modules import nothing of
/// the crate.
const LAYERS: &[&[&str]] = &[
    &["vocab", "reference", "seed", "device", "files"],
    &["data", "model", "loss", "sampler"],
    &["config"],
    &["matrix"],
    &["train"],
    &["store"],
    &["runner", "report"],
    &["bench", "bound"],
    &["cli"],
];

/// Top-level module -> the top-level modules it imports (`lib.rs` left out).
fn module_graph_of(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, deps) in file_graph(src) {
        let from = top_level(&file);
        let entry = graph.entry(from.clone()).or_default();
        entry.extend(deps.iter().map(|d| top_level(d)).filter(|to| *to != from && to != "lib"));
    }
    graph.remove("lib");
    graph
}

#[test]
fn no_two_files_import_each_other() {
    let graph = file_graph(&src());
    let found = loops(&graph);
    assert!(found.is_empty(), "files that import each other:\n{}", describe(&graph, &found));
}

#[test]
fn no_two_top_level_modules_import_each_other() {
    let graph = module_graph_of(&src());
    let found = loops(&graph);
    assert!(found.is_empty(), "modules that import each other:\n{}", describe(&graph, &found));
}

#[test]
fn imports_go_down_the_layers() {
    let layer = |m: &str| LAYERS.iter().position(|l| l.contains(&m));
    let mut wrong = Vec::new();
    for (from, to) in module_graph_of(&src()) {
        let Some(a) = layer(&from) else {
            wrong.push(format!("`{from}` is in no layer: add it to LAYERS and CONTRIBUTING.md"));
            continue;
        };
        for to in to {
            match layer(&to) {
                Some(b) if b < a => {}
                Some(b) => wrong.push(format!("{from} (layer {a}) imports {to} (layer {b})")),
                None => wrong.push(format!("`{to}` is in no layer: add it to LAYERS")),
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers:\n{}", wrong.join("\n"));
}

#[test]
fn the_checker_sees_use_trees_super_paths_and_child_modules() {
    assert_eq!(
        expand_use("crate::a::{b, c::{d, e}}"),
        ["crate::a::b", "crate::a::c::d", "crate::a::c::e"]
    );
    let mut files = Files::new();
    for (module, file) in [
        (vec![], "lib.rs"),
        (vec!["train"], "train/mod.rs"),
        (vec!["train", "bilevel"], "train/bilevel.rs"),
        (vec!["train", "select"], "train/select.rs"),
        (vec!["store"], "store/mod.rs"),
    ] {
        files.insert(module.into_iter().map(str::to_owned).collect(), file.to_owned());
    }
    let mut reexports = Reexports::new();
    reexports.insert((vec!["train".to_owned()], "Best".to_owned()), "select::Best".to_owned());
    let r = |here: &[&str], path: &str, inline: usize| {
        let here: Vec<String> = here.iter().map(|s| (*s).to_owned()).collect();
        resolve(&here, path, inline, &files, &reexports)
    };
    let here = ["train", "bilevel"];
    assert_eq!(r(&here, "super::Progress", 0).as_deref(), Some("train/mod.rs"));
    assert_eq!(r(&here, "super::Progress", 1).as_deref(), Some("train/bilevel.rs"));
    assert_eq!(r(&here, "crate::store::Metrics", 0).as_deref(), Some("store/mod.rs"));
    assert_eq!(r(&here, "tch::Tensor", 0), None);
    assert_eq!(r(&["train"], "bilevel::train", 0).as_deref(), Some("train/bilevel.rs"));
    // A re-exported name resolves to the child it comes from.
    assert_eq!(r(&here, "super::Best", 0).as_deref(), Some("train/select.rs"));
    assert_eq!(r(&["store"], "crate::train::Best", 0).as_deref(), Some("train/select.rs"));
    assert_eq!(expand_use("crate::data as d"), ["crate::data"]);
    assert_eq!(expand_use("super::{a as b, c}"), ["super::a", "super::c"]);
    assert_eq!(
        reexported_paths("pub use select::{Best, Splits};"),
        ["select::Best", "select::Splits"]
    );
    assert_eq!(code_only("let b = br#\"crate::x\"#; crate::y"), "let b = b\"\"; crate::y");
    let code = code_only("// crate::store::X\nlet s = \"crate::store\"; use super::{a, b};");
    let children = BTreeSet::new();
    let found: Vec<String> = paths(&code, &children).into_iter().map(|(p, _)| p).collect();
    assert_eq!(found, ["super::a", "super::b"]);
    let mut graph = BTreeMap::new();
    graph.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    graph.insert("b".to_owned(), BTreeSet::from(["a".to_owned()]));
    graph.insert("c".to_owned(), BTreeSet::from(["a".to_owned()]));
    assert_eq!(loops(&graph), [vec!["a".to_owned(), "b".to_owned()]]);
}

#[test]
#[ignore = "prints the graph: cargo test -- --ignored --nocapture module_graph"]
#[expect(clippy::print_stdout, reason = "printing the graph is this test's purpose")]
fn module_graph() {
    for (from, to) in module_graph_of(&src()) {
        println!("{from} -> {}", to.into_iter().collect::<Vec<_>>().join(", "));
    }
}
