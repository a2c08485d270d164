//! Helpers for the engine integration tests (the shared ones come from `testutil`).

pub use testutil::{python, repo as repo_root};

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

/// A raw little-endian float32 file (the cases scripts' format).
#[allow(dead_code)] // not every test binary reads cases files
pub fn raw(path: &std::path::Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// A shape from a cases manifest.
#[allow(dead_code)] // not every test binary reads cases files
pub fn shape(v: &serde_json::Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect()
}
