//! The layer table of ARCHITECTURE.md holds: every top-level module of `src/` is
//! in it, and every `crate::` path in a module's code (comments and string
//! literals left out) names a module of a lower layer. `cargo test --test
//! it architecture:: -- --nocapture` prints the module graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// `module → layer` from the table in ARCHITECTURE.md: rows `| <layer> | `<module>` | …`.
fn layer_table(doc: &str) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[0].is_empty() {
            continue;
        }
        let (Ok(layer), Some(name)) = (
            cells[1].parse::<u32>(),
            cells[2].strip_prefix('`').and_then(|c| c.strip_suffix('`')),
        ) else {
            continue;
        };
        assert!(
            out.insert(name.to_string(), layer).is_none(),
            "ARCHITECTURE.md lists `{name}` twice"
        );
    }
    out
}

/// The source with comments, string literals and character literals blanked.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &src[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').map_or(b.len(), |n| i + n);
            i = end;
        } else if rest.starts_with("/*") {
            let mut depth = 0;
            while i < b.len() {
                if src[i..].starts_with("/*") {
                    depth += 1;
                    i += 2;
                } else if src[i..].starts_with("*/") {
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
        } else if let Some(hashes) = raw_string_start(rest) {
            // r"…", r#"…"#, br"…"
            let open = rest.find('"').unwrap();
            let close = format!("\"{}", "#".repeat(hashes));
            let end = rest[open + 1..]
                .find(&close)
                .map_or(b.len(), |n| i + open + 1 + n + close.len());
            i = end;
            out.push_str("\"\"");
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' {
            // A char literal ('x', '\n', '\'', '\u{…}') or a lifetime ('a).
            if let Some(len) = char_literal_len(rest) {
                i += len;
                out.push_str("' '");
            } else {
                out.push('\'');
                i += 1;
            }
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The number of `#` of a raw string starting here, when one does.
fn raw_string_start(s: &str) -> Option<usize> {
    let t = s.strip_prefix('b').unwrap_or(s).strip_prefix('r')?;
    let hashes = t.len() - t.trim_start_matches('#').len();
    t[hashes..].starts_with('"').then_some(hashes)
}

fn char_literal_len(s: &str) -> Option<usize> {
    let body = &s[1..];
    if let Some(esc) = body.strip_prefix('\\') {
        let end = esc.find('\'')?;
        return Some(1 + 1 + end + 1);
    }
    let c = body.chars().next()?;
    body[c.len_utf8()..]
        .starts_with('\'')
        .then(|| 1 + c.len_utf8() + 1)
}

/// Top-level modules named by `crate::` paths in `code`: `crate::a::…` and every
/// path of a group, `crate::{a, b::{c, d}}` (a and b).
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in code.match_indices("crate::") {
        if at > 0 {
            let prev = code[..at].chars().next_back().unwrap();
            if prev.is_ascii_alphanumeric() || prev == '_' {
                continue; // e.g. `my_crate::`
            }
        }
        let rest = code[at + "crate::".len()..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            // Names at depth 0 of the group, each at the start of an item.
            let mut depth = 0;
            let mut start_of_item = true;
            let mut j = 0;
            let g = group.as_bytes();
            while j < g.len() {
                match g[j] {
                    b'{' => depth += 1,
                    b'}' if depth == 0 => break,
                    b'}' => depth -= 1,
                    b',' if depth == 0 => start_of_item = true,
                    c if c.is_ascii_whitespace() => {}
                    _ if depth == 0 && start_of_item => {
                        let name = ident(&group[j..]);
                        if !name.is_empty() {
                            j += name.len() - 1;
                            out.insert(name);
                        }
                        start_of_item = false;
                    }
                    _ => {}
                }
                j += 1;
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `module → modules it imports` for the top-level modules of `src`.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.strip_suffix(".rs").unwrap_or(&first).to_string();
        if module == "lib" || module == "main" {
            continue; // the crate root declares the modules; main calls the CLI
        }
        let code = code_only(&std::fs::read_to_string(&f).unwrap());
        let deps = graph.entry(module.clone()).or_default();
        deps.extend(crate_paths(&code).into_iter().filter(|d| *d != module));
    }
    graph
}

/// Imports that break the table: `(module, layer, import, its layer or None)`.
fn violations(
    graph: &BTreeMap<String, BTreeSet<String>>,
    table: &BTreeMap<String, u32>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (m, deps) in graph {
        let Some(&lm) = table.get(m) else {
            out.push(format!(
                "module `{m}` is not in ARCHITECTURE.md's layer table"
            ));
            continue;
        };
        for d in deps {
            match table.get(d) {
                Some(&ld) if ld < lm => {}
                Some(&ld) => out.push(format!(
                    "`{m}` (layer {lm}) imports `{d}` (layer {ld}); a module imports only from lower layers"
                )),
                None => out.push(format!(
                    "`{m}` imports `crate::{d}`, which is not in ARCHITECTURE.md's layer table"
                )),
            }
        }
    }
    for t in table.keys() {
        if !graph.contains_key(t) {
            out.push(format!(
                "ARCHITECTURE.md lists `{t}`, which is not a module of src/"
            ));
        }
    }
    out
}

#[test]
fn every_import_runs_down_the_layer_table() {
    let doc = std::fs::read_to_string(Path::new(ROOT).join("ARCHITECTURE.md")).unwrap();
    let table = layer_table(&doc);
    assert!(table.len() >= 10, "no layer table found in ARCHITECTURE.md");
    let graph = module_graph(&Path::new(ROOT).join("src"));
    println!("module graph of src/ (layer: module -> what it imports):");
    let mut rows: Vec<_> = graph.iter().collect();
    rows.sort_by_key(|(m, _)| (table.get(*m).copied().unwrap_or(u32::MAX), m.to_string()));
    for (m, deps) in rows {
        let layer = table.get(m).map_or("?".into(), |l| l.to_string());
        let deps: Vec<_> = deps.iter().map(String::as_str).collect();
        println!("  {layer:>2}: {m:<10} -> {}", deps.join(", "));
    }
    let bad = violations(&graph, &table);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    // The configuration layer is pure: it reads no runtime module.
    let spec = &graph["spec"];
    assert!(spec.iter().all(|d| d == "error"), "spec imports {spec:?}");
}

#[test]
fn the_checker_sees_through_comments_strings_and_groups() {
    let src = r##"
        // use crate::run; in a comment
        /* crate::shadow /* nested */ crate::cli */
        use crate::{spec::{job, limits}, error::Result, storage};
        let s = "crate::observe";
        let r = r#"crate::registry"#;
        let c = '"'; let q = '\''; fn f<'a>(x: &'a str) {}
        let t = crate::stats::moments(&v);
        let u = my_crate::run::x;
    "##;
    let found = crate_paths(&code_only(src));
    let want: BTreeSet<String> = ["spec", "error", "storage", "stats"]
        .map(String::from)
        .into();
    assert_eq!(found, want);

    // An upward import, an unknown module and a stale row are each reported.
    let table: BTreeMap<String, u32> = [("spec", 1), ("run", 7), ("gone", 3)]
        .map(|(m, l)| (m.to_string(), l))
        .into();
    let graph: BTreeMap<String, BTreeSet<String>> =
        [("spec", vec!["run"]), ("run", vec!["spec", "new"])]
            .into_iter()
            .map(|(m, d)| (m.to_string(), d.into_iter().map(String::from).collect()))
            .collect();
    let bad = violations(&graph, &table);
    assert_eq!(bad.len(), 3, "{bad:#?}");
    assert!(bad[0].contains("`run` imports `crate::new`"), "{bad:#?}");
    assert!(
        bad[1].contains("`spec` (layer 1) imports `run` (layer 7)"),
        "{bad:#?}"
    );
    assert!(bad[2].contains("lists `gone`"), "{bad:#?}");
}
