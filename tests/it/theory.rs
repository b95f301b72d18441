//! `balms theory`: the committed `paper/theory/` is exactly what the checks produce.

use std::path::Path;

use crate::util::{root, run, stderr};

#[test]
fn committed_theory_outputs_are_reproduced_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(&["theory", "--out", dir.path().to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let committed = root().join("paper/theory");
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["label-shift.md", "margins.md", "over-balance.md", "summary.md", "toy.md", "toy.svg"]
    );
    for name in names {
        let fresh = std::fs::read_to_string(dir.path().join(&name)).unwrap();
        let kept = std::fs::read_to_string(committed.join(&name)).unwrap_or_default();
        assert!(
            fresh == kept,
            "paper/theory/{name} differs from what `balms theory` writes now; if the change is \
             intended, run `just theory` and commit\n--- now ---\n{}",
            if Path::new(&name).extension().is_some_and(|e| e.eq_ignore_ascii_case("md")) {
                &fresh
            } else {
                "(svg)"
            }
        );
    }
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(summary.contains("| Theorem 1 at IF 100 |"), "{summary}");
}

#[test]
fn theory_needs_two_seeds_and_names_its_checks() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let one = run(&["theory", "--seeds", "1", "--out", out]);
    assert!(!one.status.success());
    assert!(stderr(&one).contains("at least two seeds"), "{}", stderr(&one));
    let unknown = run(&["theory", "--only", "bounds", "--out", out]);
    assert!(stderr(&unknown).contains("possible values: label-shift, margins, over-balance, toy"));
    // A partial run writes its check and leaves the summary alone.
    let partial = run(&["theory", "--only", "over-balance", "--out", out]);
    assert!(partial.status.success(), "{}", stderr(&partial));
    assert!(
        dir.path().join("over-balance.md").is_file() && !dir.path().join("summary.md").exists()
    );
}
