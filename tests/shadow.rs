//! Shadow-comparison statistics against scipy on the same rows.

mod common;
use common::*;

#[test]
fn comparison_statistics_equal_scipy() {
    let example = bin().parent().unwrap().join("examples/shadow_metrics");
    assert!(
        example.is_file(),
        "{} is built by `cargo test` (examples are compiled with the tests)",
        example.display()
    );
    let dir = tempfile::tempdir().unwrap();
    python_check(
        "shadow_metrics_check.py",
        &[example.to_str().unwrap(), dir.path().to_str().unwrap()],
    );
}
