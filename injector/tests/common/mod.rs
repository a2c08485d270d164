//! Helpers shared by the injector integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// `<repo>/../shared/data/<rel>`: the reference files live beside the checkout.
pub fn shared(rel: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(rel);
    assert!(
        p.exists(),
        "reference data missing: {} (the checkout must sit beside shared/)",
        p.display()
    );
    p
}

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
