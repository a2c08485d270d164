//! convert -> train -> export -> onnxruntime parity -> inject, end to end on generated data with
//! a known answer (scripts/make_train_data.py: the best possible AUC is 0.829), and the bad
//! inputs of `hepml train`.

use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::script;

fn hepml(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hepml"))
        .args(args)
        .output()
        .expect("running hepml")
}

fn ok(args: &[&str]) -> String {
    let o = hepml(args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "hepml {args:?}: {err}");
    err
}

fn p(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

/// Generated ROOT files converted to one HDF5 table (signal label 1, background label 0).
fn converted(dir: &Path) -> String {
    script("make_train_data.py", &[&p(dir, ""), "6000", "3"]);
    let cfg = format!(
        "tree: events\ncolumns: [f0, f1, f2, f3, f4, bad]\nevent_number: event\nsamples:\n  - {{name: sig, files: [\"{}\"], label: 1}}\n  - {{name: bkg, files: [\"{}\"], label: 0}}\n",
        p(dir, "sig.root"),
        p(dir, "bkg.root")
    );
    std::fs::write(dir.join("convert.yaml"), cfg).unwrap();
    ok(&[
        "convert",
        &p(dir, "convert.yaml"),
        "-o",
        &p(dir, "data.h5"),
        "-q",
    ]);
    p(dir, "data.h5")
}

fn train_config(data: &str, extra: &str) -> String {
    format!(
        r#"model: {{type: dnn, width: 32, depth: 2, activation: swish, dropout: 0.0, batch_norm: true}}
data: {{files: ["{data}"]}}
preparation: {{kfold: {{k: 2, branch: event}}}}
features: {{inputs: [f0, f1, f2, f3, f4], weight: weight}}
training: {{optimizer: adam, learning_rate: 0.003, batch_size: 256, epochs: 6, patience: 3, schedule: onecycle, lr_finder: true}}
{extra}"#
    )
}

#[test]
fn convert_train_export_parity_and_inject() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = converted(d);
    std::fs::write(d.join("train.yaml"), train_config(&data, "")).unwrap();
    let log = ok(&[
        "train",
        &p(d, "train.yaml"),
        "-o",
        &p(d, "run"),
        "--seed",
        "5",
        "-q",
    ]);
    assert!(
        log.contains("test AUC") && log.contains("lr finder"),
        "{log}"
    );
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("run/metrics.json")).unwrap())
            .unwrap();
    let auc = m["test"]["auc"].as_f64().unwrap();
    // Best possible 0.829 (two unit Gaussians 0.6 apart in 5 features); 12000 test events.
    assert!(auc > 0.80 && auc < 0.86, "test AUC {auc}");
    assert_eq!(m["test"]["events"], 12000);
    assert_eq!(m["folds"].as_array().unwrap().len(), 2);
    assert!(m["lr_finder"]["suggested"].as_f64().unwrap() > 0.0);

    // Same seed, same model.
    ok(&[
        "train",
        &p(d, "train.yaml"),
        "-o",
        &p(d, "run2"),
        "--seed",
        "5",
        "-q",
    ]);
    let a = std::fs::read(d.join("run/model.json")).unwrap();
    assert_eq!(
        a,
        std::fs::read(d.join("run2/model.json")).unwrap(),
        "--seed is not reproducible"
    );

    ok(&["export", &p(d, "run"), "-o", &p(d, "model.onnx")]);
    let check = script(
        "check_export.py",
        &[
            &p(d, "run"),
            &p(d, "model.fold0.onnx"),
            &p(d, "model.fold1.onnx"),
        ],
    );
    let c: serde_json::Value = serde_json::from_str(check.trim()).unwrap();
    assert!(c["max_diff"].as_f64().unwrap() <= 1e-5, "{check}");
    assert!(
        c["metadata"]["hepml.fold"]
            .as_str()
            .unwrap()
            .contains("event"),
        "{check}"
    );

    // inject routes events to the fold that did not train on them, from the model metadata.
    let out = p(d, "scored.root");
    ok(&[
        "inject",
        &p(d, "sig.root"),
        "--model",
        &p(d, "model.fold0.onnx"),
        "--model",
        &p(d, "model.fold1.onnx"),
        "-o",
        &out,
        "--quiet",
    ]);
    // Fold 0 alone on the same file equals onnxruntime on inputs built by uproot.
    ok(&[
        "inject",
        &p(d, "sig.root"),
        "--model",
        &p(d, "model.fold0.onnx"),
        "-o",
        &p(d, "f0.root"),
        "--quiet",
    ]);
    std::fs::write(
        d.join("spec.json"),
        r#"{"inputs": {"x": ["f0","f1","f2","f3","f4"]}, "outputs": [["score", 0, "score"]]}"#,
    )
    .unwrap();
    let said = script(
        "check_inject.py",
        &[
            "event",
            &p(d, "model.fold0.onnx"),
            &p(d, "sig.root"),
            "events",
            &p(d, "f0.root"),
            "events",
            &p(d, "spec.json"),
        ],
    );
    let v: serde_json::Value = serde_json::from_str(said.trim().lines().last().unwrap()).unwrap();
    assert!(v["max_abs_diff"].as_f64().unwrap() <= 1e-5, "{said}");
    assert_eq!(v["values"], 6000, "{said}");
    // The run has its plots.
    for f in [
        "roc.png",
        "scores.png",
        "confusion.png",
        "loss_fold0.png",
        "accuracy_fold1.png",
        "lr_finder.png",
        "correlation_signal.png",
        "input_0_f0.png",
    ] {
        let meta =
            std::fs::metadata(d.join("run/plots").join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(meta.len() > 5000, "{f} is {} bytes", meta.len());
    }
}

#[test]
fn bad_inputs_are_one_line_errors_and_leave_no_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = converted(d);
    let base = train_config(&data, "");
    let cases: Vec<(String, &str)> = vec![
        (
            base.replace("learning_rate", "lerning_rate"),
            "lerning_rate",
        ),
        (base.replace("inputs: [f0,", "inputs: [f9,"), "f9"),
        (base.replace("inputs: [f0,", "inputs: [bad,"), "NaN"),
        (
            base.replace(
                &format!("files: [\"{data}\"]"),
                &format!("signal: [\"{data}\"], background: []"),
            ),
            "data needs",
        ),
        (
            base.replace(
                &format!("files: [\"{data}\"]"),
                &format!("signal: [\"{data}\"], background: [\"{data}\"]"),
            )
            .replace(
                "kfold: {k: 2, branch: event}",
                "kfold: {k: 2, branch: nope}",
            ),
            "nope",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let cfg = d.join(format!("t{i}.yaml"));
        std::fs::write(&cfg, text).unwrap();
        let run = p(d, &format!("run{i}"));
        let o = hepml(&["train", cfg.to_str().unwrap(), "-o", &run, "-q"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "case {i}: {err}");
        assert!(err.contains(want), "case {i}: expected `{want}` in {err}");
        assert_eq!(err.trim().lines().count(), 1, "case {i}: {err}");
        assert!(!Path::new(&run).exists(), "case {i}: run directory left");
    }
    // A class with no events: the weight column (all 1) taken as the label.
    let cfg = d.join("nolabel.yaml");
    std::fs::write(
        &cfg,
        base.replace("weight: weight}", "weight: weight, label: weight}"),
    )
    .unwrap();
    let o = hepml(&["train", cfg.to_str().unwrap(), "-o", &p(d, "runx"), "-q"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("a class has no events"),
        "{err}"
    );
    assert!(!d.join("runx").exists());
    let left: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("hepml-tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
