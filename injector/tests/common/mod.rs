//! Helpers shared by the injector integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

pub use testutil::{python, repo as repo_root, shared};

/// Every `.root` file of the shared reference data.
pub fn shared_root_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(shared("root"))
        .expect("shared/data/root")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "root"))
        .collect();
    v.sort();
    assert!(
        v.len() >= 20,
        "expected the 20+ shared ROOT files, found {}",
        v.len()
    );
    v
}

/// Runs a script under scripts/ with the venv python; panics with its stderr on failure.
pub fn run_script(script: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(python())
        .arg(repo_root().join("scripts").join(script))
        .args(args)
        .output()
        .expect("running python");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} {args:?} failed:\n{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Like run_script, but returns (success, stderr) instead of panicking.
pub fn try_script(script: &str, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(python())
        .arg(repo_root().join("scripts").join(script))
        .args(args)
        .output()
        .expect("running python");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
