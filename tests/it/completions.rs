//! `scorch completions SHELL` and `scorch man`: generated from the flag
//! definitions, so they cannot drift from the CLI.

use std::process::Command;

use crate::common::*;

fn scorch(args: &[&str]) -> std::process::Output {
    Command::new(bin()).args(args).output().unwrap()
}

/// Completes `words` (the last one being typed) with the bash script scorch prints.
fn complete_in_bash(words: &[&str]) -> Vec<String> {
    let script = stdout(&scorch(&["completions", "bash"]));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scorch.bash");
    std::fs::write(&file, script).unwrap();
    let cword = words.len() - 1;
    let prev = if cword > 0 { words[cword - 1] } else { "" };
    let program = format!(
        "source {}; COMP_WORDS=({}); COMP_CWORD={cword}; _scorch scorch {} {}; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display(),
        words.join(" "),
        words[cword],
        prev
    );
    let o = Command::new("bash")
        .args(["-c", &program])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o).lines().map(str::to_string).collect()
}

#[test]
fn bash_completes_commands_and_flags_from_the_cli_definition() {
    assert_eq!(complete_in_bash(&["scorch", "ru"]), ["run", "runs"]);
    assert_eq!(complete_in_bash(&["scorch", "run", "--dr"]), ["--dry-run"]);
    let all = complete_in_bash(&["scorch", "run", "--"]);
    for flag in [
        "--date",
        "--wait-lock",
        "--shard",
        "--project-dir",
        "--log-format",
    ] {
        assert!(all.iter().any(|f| f == flag), "{flag} not offered: {all:?}");
    }
    // Every shell clap knows gets a script that names the binary.
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = scorch(&["completions", shell]);
        assert_exit(&o, 0, &[]);
        assert!(stdout(&o).contains("scorch"), "{shell}");
    }
    assert_exit(&scorch(&["completions", "tcsh"]), 2, &["tcsh"]);
}

#[test]
fn man_writes_a_page_for_scorch_and_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man");
    let o = scorch(&["man", "--out", out.to_str().unwrap()]);
    assert_exit(&o, 0, &[]);
    // The commands, as `scorch --help` lists them.
    let help = stdout(&scorch(&["--help"]));
    let commands: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A command starts its line; its wrapped description is indented further.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 15, "{commands:?}");
    let mut expected: Vec<String> = commands.iter().map(|c| format!("scorch-{c}.1")).collect();
    expected.push("scorch.1".into());
    expected.sort();
    let mut pages: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    pages.sort();
    assert_eq!(pages, expected);
    let run = std::fs::read_to_string(out.join("scorch-run.1")).unwrap();
    assert!(run.contains(".TH scorch-run 1"), "{run}");
    assert!(run.contains("dry\\-run"), "the page lacks --dry-run");
}
