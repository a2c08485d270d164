//! Helpers for the engine integration tests.

use std::path::PathBuf;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The project venv's python (scripts/setup_env.sh makes it; scripts/test.sh runs that first).
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("HEPML_PYTHON") {
        return PathBuf::from(p);
    }
    let p = repo_root().join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} missing: run `bash scripts/setup_env.sh` (scripts/test.sh does)",
        p.display()
    );
    p
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
