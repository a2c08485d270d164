//! Helpers shared by every hepml test crate: the venv python, the shared reference data and
//! the largest difference between two score arrays.
//!
//! A missing prerequisite panics with a message saying how to get it: tests never skip
//! silently.

use std::path::{Path, PathBuf};

/// The workspace root (this crate sits directly under it).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testutil sits in the workspace root")
        .to_path_buf()
}

/// The python that runs scripts/: `HEPML_PYTHON`, else the project venv's `.venv/bin/python`.
/// Panics, saying how to make it, when that file does not exist.
pub fn python() -> PathBuf {
    let (p, from) = match std::env::var_os("HEPML_PYTHON") {
        Some(p) => (PathBuf::from(p), "HEPML_PYTHON"),
        None => (repo().join(".venv/bin/python"), "the default venv"),
    };
    assert!(
        p.exists(),
        "python {} ({from}) missing: run `bash scripts/setup_env.sh` to make .venv, \
         or set HEPML_PYTHON to a python with uproot, onnxruntime and h5py",
        p.display()
    );
    p
}

/// `../shared/data/REL` beside the checkout (REL may be a glob pattern). Panics, saying where
/// the data must sit, when `../shared/data` does not exist.
pub fn shared(rel: &str) -> PathBuf {
    let data = repo().join("../shared/data");
    assert!(
        data.is_dir(),
        "reference data missing: {} does not exist: put the project's reference data \
         (shared/data: the ROOT files and models the tests compare against) in ../shared \
         beside the checkout",
        data.display()
    );
    data.join(rel)
}

/// Every `.root` file of the shared reference data (`../shared/data/root/*.root`), sorted.
/// Panics when there are fewer than the 20 files the tests were written against.
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

/// Runs scripts/NAME with the venv python and returns its stdout; panics with its output on
/// failure.
pub fn script(name: &str, args: &[&str]) -> String {
    let (ok, stdout, stderr) = run(name, args);
    assert!(ok, "{name} {args:?} failed:\n{stdout}{stderr}");
    stdout
}

/// Like [`script`], but returns (success, stderr) instead of panicking.
pub fn try_script(name: &str, args: &[&str]) -> (bool, String) {
    let (ok, _, stderr) = run(name, args);
    (ok, stderr)
}

fn run(name: &str, args: &[&str]) -> (bool, String, String) {
    let o = std::process::Command::new(python())
        .arg(repo().join("scripts").join(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {} failed: {e}", python().display()));
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The largest absolute difference between `a` and `b` (equal lengths). Two NaNs at one place
/// agree; a NaN against a number is an infinite difference.
pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "value counts differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| match (x.is_nan(), y.is_nan()) {
            (true, true) => 0.0,
            (false, false) => (x - y).abs(),
            _ => f32::INFINITY,
        })
        .fold(0.0, f32::max)
}

/// A reproducible stream of test values in [-0.5, 0.5) (xorshift64 from `seed`, the top 24
/// bits as the fraction).
pub fn uniform_f32(mut seed: u64) -> impl FnMut() -> f32 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

/// Whether this machine has an NVIDIA GPU: `/dev/nvidia0` exists and `nvidia-smi -L` lists a
/// GPU.
pub fn nvidia_gpu() -> bool {
    Path::new("/dev/nvidia0").exists()
        && std::process::Command::new("nvidia-smi")
            .arg("-L")
            .output()
            .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("GPU"))
}

/// Whether the onnxruntime library `lib` was built with the CUDA execution provider: its
/// provider library `libonnxruntime_providers_cuda.so` sits beside it (the onnxruntime-gpu
/// wheel's layout; the CPU wheel has none).
pub fn ort_has_cuda(lib: &Path) -> bool {
    lib.parent()
        .is_some_and(|d| d.join("libonnxruntime_providers_cuda.so").exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_diff_is_the_largest_gap_and_nan_only_matches_nan() {
        assert_eq!(max_diff(&[1.0, 2.0], &[1.5, 2.0]), 0.5);
        assert_eq!(max_diff(&[f32::NAN], &[f32::NAN]), 0.0);
        assert_eq!(max_diff(&[f32::NAN], &[0.0]), f32::INFINITY);
    }

    #[test]
    fn shared_data_is_beside_the_checkout() {
        assert!(shared("root").is_dir());
    }
}
