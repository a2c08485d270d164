//! Helpers shared by the `hepml` binary's integration tests.
#![allow(dead_code)]

use std::process::Command;

pub use testutil::{python, repo};

/// A path under ../shared/data as a string, for argv and configs (see [`testutil::shared`]).
pub fn shared(rel: &str) -> String {
    testutil::shared(rel).display().to_string()
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
