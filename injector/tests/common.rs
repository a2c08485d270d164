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
