//! The reader's correctness gate: every branch of every file in ../shared/data/root,
//! and of files with varied schemas written in this test by real ROOT 6.40 and by uproot,
//! equals uproot's reading — or is reported unsupported with a reason. The comparison is
//! scripts/check_read.py; this test also proves the gate fails when a value is wrong.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{python, repo};

fn gate(hepml: &Path, files: &[PathBuf]) -> (bool, String) {
    let out = Command::new(python())
        .arg(repo().join("scripts/check_read.py"))
        .arg("--hepml")
        .arg(hepml)
        .args(files)
        .output()
        .expect("python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn shared_files() -> Vec<PathBuf> {
    let dir = testutil::shared("root");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "root"))
        .collect();
    v.sort();
    assert!(v.len() >= 20);
    v
}

#[test]
fn every_shared_file_matches_uproot() {
    let (ok, text) = gate(Path::new(env!("CARGO_BIN_EXE_hepml")), &shared_files());
    assert!(ok, "{text}");
    assert!(text.contains("20 files, 0 problems"), "{text}");
    // A leaf list is read as one column per leaf (each equal to uproot's record field).
    assert!(
        text.contains("uproot-leaflist.root tree: 3/3 readable")
            && text.contains("leaflist (leaf list: its values are its leaves' columns (x, y, z))"),
        "{text}"
    );
    assert!(
        text.contains("nanoAOD_2015_CMS_Open_Data_ttbar.root Events: 947/947"),
        "{text}"
    );
}

#[test]
fn generated_files_from_root_and_uproot_match_uproot() {
    let dir = tempfile::tempdir().unwrap();
    let st = Command::new(python())
        .arg(repo().join("scripts/gen_root_files.py"))
        .arg(dir.path())
        .args(["--seed", "1", "--seed", "2", "--seed", "3", "--seed", "7"])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("manifest.json")).unwrap()).unwrap();
    let entries: Vec<u64> = manifest
        .as_object()
        .unwrap()
        .values()
        .map(|m| m["entries"].as_u64().unwrap())
        .collect();
    for want in [0, 1] {
        assert!(
            entries.contains(&want),
            "no generated file with {want} entries: {manifest}"
        );
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "root"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 8);
    let (ok, text) = gate(Path::new(env!("CARGO_BIN_EXE_hepml")), &files);
    assert!(ok, "{text}");
    assert!(text.contains("8 files, 0 problems"), "{text}");
}

/// A gate that cannot fail is no gate: a hepml that reports one value wrong, or drops an
/// entry, must be caught.
#[test]
fn the_gate_catches_a_wrong_value_and_a_missing_entry() {
    let dir = tempfile::tempdir().unwrap();
    let file = repo().join("../shared/data/root/uproot-Zmumu.root");
    for (name, edit) in [
        (
            "wrong_value",
            "b['px1'][5] = b['px1'][5] + 1e-3 if isinstance(b['px1'][5], float) else b['px1'][5]",
        ),
        ("missing_entry", "b['E1'] = b['E1'][:-1]"),
    ] {
        let wrapper = dir.path().join(name);
        std::fs::write(
            &wrapper,
            format!(
                "#!{py}\nimport json, subprocess, sys\nr = subprocess.run([{real:?}] + sys.argv[1:], capture_output=True, text=True)\n\
                 if r.returncode or '--dump' not in sys.argv:\n    sys.stdout.write(r.stdout); sys.stderr.write(r.stderr); sys.exit(r.returncode)\n\
                 d = json.loads(r.stdout); b = d['branches']\nif 'px1' in b and 'E1' in b and len(b['px1']) > 5:\n    {edit}\nprint(json.dumps(d))\n",
                py = python().display(),
                real = env!("CARGO_BIN_EXE_hepml"),
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (ok, text) = gate(&wrapper, std::slice::from_ref(&file));
        assert!(!ok, "{name}: the gate passed a corrupted reading:\n{text}");
        assert!(text.contains("MISMATCH"), "{name}: {text}");
    }
}

/// A basket over 16 MiB (uproot writes one basket per extend): multi-block decompression, and
/// the values equal uproot's (oxyroot returned wrong values here).
#[test]
fn basket_over_16_mib_matches_uproot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big_basket.root");
    let code = r#"
import sys, numpy as np, uproot
x = np.random.default_rng(3).normal(size=5_000_000).astype(np.float64)
with uproot.recreate(sys.argv[1], compression=uproot.ZLIB(1)) as f:
    f.mktree("t", {"x": np.float64})
    f["t"].extend({"x": x})
b = uproot.open(sys.argv[1])["t"]["x"]
assert b.num_baskets == 1 and b.basket(0).uncompressed_bytes > 16 * 2**20
"#;
    let st = Command::new(python())
        .args(["-c", code])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let (ok, text) = gate(
        Path::new(env!("CARGO_BIN_EXE_hepml")),
        std::slice::from_ref(&path),
    );
    assert!(ok && text.contains("1/1 readable"), "{text}");
}
