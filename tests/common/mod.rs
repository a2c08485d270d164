//! Helpers shared by the `hepml` binary's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The project venv's python (scripts/setup_env.sh makes it), or `HEPML_PYTHON`.
pub fn python() -> PathBuf {
    std::env::var("HEPML_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join(".venv/bin/python"))
}

/// A path under ../shared/data (the reference files beside the checkout).
pub fn shared(rel: &str) -> String {
    repo()
        .join("../shared/data")
        .join(rel)
        .display()
        .to_string()
}

/// Runs scripts/NAME with the venv python; panics with its stderr on failure.
pub fn script(name: &str, args: &[&str]) -> String {
    let o = Command::new(python())
        .arg(repo().join("scripts").join(name))
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{name} {args:?}:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}
