//! The README's first command, `hepml demo`, runs the real chain end to end (convert -> train
//! -> export -> inject): its held-out AUC comes close to the best possible one, its decorated
//! ntuple reads in ROOT 6.40 and keeps the generated branches byte for byte, and its scores are
//! onnxruntime's, each event from the fold model that did not train on it.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn demo_runs_end_to_end() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let py = testutil::python();
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
    let auc = v["auc_held_out"].as_f64().unwrap();
    let best = v["auc_best_possible"].as_f64().unwrap();
    // 30k events: the statistical spread of an AUC is ~0.003.
    assert!(best > 0.75 && best < 0.95, "{v}");
    assert!(auc > best - 0.02 && auc < best + 0.01, "{v}");
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
    std::fs::write(
        dir.path().join("spec.json"),
        r#"{"inputs": {"x": ["f0","f1","f2","f3","f4","nJet"]},
            "outputs": [["score", 0, "demo_score"]], "fold_branch": "event"}"#,
    )
    .unwrap();
    let models = format!("{},{}", p("model.fold0.onnx"), p("model.fold1.onnx"));
    run(
        "check_inject.py",
        &[
            "event",
            &models,
            &p("demo.root"),
            "events",
            &p("demo_scored.root"),
            "events",
            &p("spec.json"),
        ],
    );
}
