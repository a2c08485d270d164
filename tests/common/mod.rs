//! Helpers shared by the `hepml` binary's integration tests.
#![allow(dead_code, unused_imports)]

pub use testutil::{python, repo, script};

use std::path::Path;
use std::process::{Command, Output};

/// A path under ../shared/data as a string, for argv and configs (see [`testutil::shared`]).
pub fn shared(rel: &str) -> String {
    testutil::shared(rel).display().to_string()
}

/// `hepml ARGS` (the binary under test).
pub fn hepml(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hepml"))
        .args(args)
        .output()
        .expect("running hepml")
}

/// `hepml ARGS`, which must succeed; returns its log (stderr).
pub fn ok(args: &[&str]) -> String {
    let o = hepml(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "hepml {args:?}: {err}");
    err
}

/// `dir/name` as a string.
pub fn p(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

/// Branches of a ROOT file as f64 columns (`hepml inspect --dump`).
pub fn dump(file: &str, branches: &[&str]) -> Vec<Vec<f64>> {
    let mut args = vec!["inspect", file, "--dump"];
    args.extend(branches);
    let o = hepml(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    branches
        .iter()
        .map(|b| {
            v["branches"][*b]
                .as_array()
                .unwrap_or_else(|| panic!("{file}: no {b}"))
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect()
}

/// `hepml train` of each config text (written to `dir/t<i>.yaml`) must fail with exit 1 and a
/// one-line error containing its expected text, and leave no run directory.
pub fn train_fails(dir: &Path, cases: &[(String, &str)]) {
    for (i, (text, want)) in cases.iter().enumerate() {
        let cfg = dir.join(format!("t{i}.yaml"));
        std::fs::write(&cfg, text).unwrap();
        let run = p(dir, &format!("run{i}"));
        let o = hepml(&["train", cfg.to_str().unwrap(), "-o", &run, "-q"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "case {i}: {err}");
        assert!(err.contains(want), "case {i}: expected `{want}` in {err}");
        assert_eq!(err.trim().lines().count(), 1, "case {i}: {err}");
        assert_eq!(err.matches(want).count(), 1, "case {i}: said twice: {err}");
        assert!(!Path::new(&run).exists(), "case {i}: run directory left");
    }
}

/// `hepml convert` of the config `text` into DIR/data.h5; returns that path.
pub fn convert(dir: &Path, text: &str) -> String {
    std::fs::write(dir.join("convert.yaml"), text).unwrap();
    ok(&[
        "convert",
        &p(dir, "convert.yaml"),
        "-o",
        &p(dir, "data.h5"),
        "-q",
    ]);
    p(dir, "data.h5")
}
