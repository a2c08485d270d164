//! The README's first command, `hepml demo`, runs end to end: its decorated ntuple reads in
//! ROOT 6.40, keeps the generated branches byte for byte, and its ONNX model matches
//! onnxruntime.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn demo_runs_end_to_end() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let py = std::env::var("HEPML_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo.join(".venv/bin/python"));
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hepml"))
        .args(["demo", "--events", "30000", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["events"], 30000);
    let auc = v["auc_test_odd"].as_f64().unwrap();
    assert!(auc > 0.7 && auc < 1.0, "{v}");
    let p = |n: &str| dir.path().join(n).display().to_string();
    let run = |script: &str, args: &[&str]| {
        let o = Command::new(&py)
            .arg(repo.join("scripts").join(script))
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run(
        "root_check.py",
        &[
            "same-baskets",
            &p("demo.root"),
            &p("demo_scored.root"),
            "events",
        ],
    );
    std::fs::write(dir.path().join("spec.json"), r#"{"inputs": {"features": ["f0","f1","f2","f3","f4"]}, "outputs": [["score", 0, "demo_score"]]}"#).unwrap();
    run(
        "check_inject.py",
        &[
            "event",
            &p("fisher.onnx"),
            &p("demo.root"),
            "events",
            &p("demo_scored.root"),
            "events",
            &p("spec.json"),
        ],
    );
}
