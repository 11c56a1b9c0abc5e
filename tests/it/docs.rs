//! The documentation holds together: the README stays an overview (at most 250
//! lines), every relative link in it and in docs/ names a file that exists, and
//! every page of docs/ is reachable from the README.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::common::*;

/// The lines of a Markdown text outside fenced code blocks.
fn prose_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut fenced = false;
    text.lines().filter(move |line| {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

/// The relative link targets of a Markdown text, outside code blocks.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose_lines(text) {
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            let target = &after[..end];
            if !target.starts_with("http") && !target.starts_with('#') && !target.contains(' ') {
                out.push(target.split('#').next().unwrap().to_string());
            }
            rest = &after[end..];
        }
    }
    out
}

fn pages(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            pages(&p, out);
        } else if p.extension().is_some_and(|x| x == "md") {
            out.push(p);
        }
    }
}

#[test]
fn the_readme_is_short_and_every_link_resolves() {
    let root = repo();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines; move detail into docs/"
    );
    let mut all = vec![root.join("README.md")];
    pages(&root.join("docs"), &mut all);
    let mut broken = Vec::new();
    let mut reached = BTreeSet::new();
    for page in &all {
        let text = std::fs::read_to_string(page).unwrap();
        for l in links(&text) {
            let target = page.parent().unwrap().join(&l);
            match target.canonicalize() {
                Ok(t) => {
                    reached.insert(t);
                }
                Err(_) => broken.push(format!("{}: {l}", page.display())),
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    // Every page is linked from some page (the README links the top ones).
    let orphans: Vec<_> = all[1..]
        .iter()
        .filter(|p| !reached.contains(&p.canonicalize().unwrap()))
        .map(|p| p.display().to_string())
        .collect();
    assert!(orphans.is_empty(), "pages nothing links to: {orphans:?}");
}

/// The inline code spans of a Markdown text, outside code blocks.
fn code_spans(text: &str) -> Vec<String> {
    prose_lines(text)
        .flat_map(|line| line.split('`').skip(1).step_by(2).map(str::to_string))
        .collect()
}

/// Folders that only this repository has (a user's project has jobs/, models/ …
/// too, so those are left out).
const REPO_ONLY: [&str; 12] = [
    "src/",
    "tests/",
    "scripts/",
    "python/",
    "py/",
    "bench/",
    "deploy/",
    "airflow/",
    "examples/",
    "fuzz/",
    "docs/",
    ".ci/",
];

#[test]
fn every_repository_file_the_docs_name_exists() {
    let root = repo();
    let mut all = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    pages(&root.join("docs"), &mut all);
    // What the build or a run makes (the .gitignore's rooted entries) need not exist.
    let made: Vec<String> = std::fs::read_to_string(root.join(".gitignore"))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix('/'))
        .map(|l| l.trim_end_matches('/').to_string())
        .collect();
    let mut missing = Vec::new();
    let mut checked = 0;
    for page in &all {
        let text = std::fs::read_to_string(page).unwrap();
        for span in code_spans(&text) {
            let path = span.trim_end_matches('/');
            let plain = path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_./-".contains(c));
            if !plain
                || !REPO_ONLY.iter().any(|d| path.starts_with(d))
                || made.iter().any(|m| path.starts_with(m.as_str()))
            {
                continue;
            }
            checked += 1;
            if !root.join(path).exists() {
                missing.push(format!("{}: `{span}`", page.display()));
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} paths found: is the parser right?"
    );
    assert!(
        missing.is_empty(),
        "the docs name files that do not exist:\n{}",
        missing.join("\n")
    );
}

/// `scorch --help` lists the exit codes from the table the README shows: the same
/// codes, the same words.
#[test]
fn help_and_readme_list_the_same_exit_codes() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = &readme[readme.find("## Exit codes").expect("README has exit codes")..];
    let rows: Vec<(i32, String)> = section
        .lines()
        .skip_while(|l| !l.starts_with("|---"))
        .skip(1)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].parse().unwrap(), cells[2].to_string())
        })
        .collect();
    let codes: Vec<(i32, String)> = scorch::error::ExitCode::ALL
        .iter()
        .map(|c| (c.code(), c.meaning().to_string()))
        .collect();
    assert_eq!(
        rows, codes,
        "README's exit-code table and ExitCode::meaning differ"
    );
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_scorch"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for (code, meaning) in &codes {
        // clap wraps long lines: compare with whitespace collapsed.
        let flat = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat(&help).contains(&format!("{code} {}", flat(meaning))),
            "`scorch --help` lacks exit code {code}: {help}"
        );
    }
}
