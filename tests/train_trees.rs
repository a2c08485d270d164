//! Tree ensembles in `hepml train` on generated events with a nonlinear signal and clearly
//! separated feature importances (scripts/make_tree_data.py): a BDT against XGBoost and a
//! random forest against scikit-learn on the same k folds (AUC, MDI ranking), the export
//! against onnxruntime and the native tree engine through `hepml inject` (k-fold routing
//! included), and the bad inputs.

use std::path::Path;

mod common;
use common::{convert, dump, ok, p, script, train_fails};

const FEATURES: [&str; 6] = ["a0", "a1", "a2", "a3", "a4", "m5"];

/// 20000 generated events converted to DIR/data.h5 (with the constant `flat` and the all-NaN
/// `gone` columns); returns its path.
fn data(dir: &Path) -> String {
    script("make_tree_data.py", &[&p(dir, ""), "20000", "7"]);
    let cfg = format!(
        "tree: events\ncolumns: [a0, a1, a2, a3, a4, m5, flat, gone]\nevent_number: event\nsamples:\n  - {{name: sig, files: [\"{}\"], label: 1}}\n  - {{name: bkg, files: [\"{}\"], label: 0}}\n",
        p(dir, "sig.root"),
        p(dir, "bkg.root")
    );
    convert(dir, &cfg)
}

/// A config on `data` with k = 2 folds by event, no valid split, unit weights, no class
/// balancing (as the references train), `model` as given.
fn config(data: &str, model: &str, inputs: &str) -> String {
    format!(
        r#"model: {model}
data: {{files: ["{data}"]}}
preparation: {{train_fraction: 0.8, valid_fraction: 0.0, test_fraction: 0.2, kfold: {{k: 2, branch: event}}, balance_classes: false}}
features: {{inputs: [{inputs}]}}
"#
    )
}

fn train(dir: &Path, name: &str, text: &str) -> String {
    let cfg = dir.join(format!("{name}.yaml"));
    std::fs::write(&cfg, text).unwrap();
    ok(&[
        "train",
        cfg.to_str().unwrap(),
        "-o",
        &p(dir, name),
        "--seed",
        "3",
        "-q",
    ])
}

fn metrics(dir: &Path, run: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(run).join("metrics.json")).unwrap())
        .unwrap()
}

/// A float32 .npy file's values.
fn npy(path: &Path) -> Vec<f32> {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = u16::from_le_bytes([b[8], b[9]]) as usize;
    b[10 + header..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The reference (check_tree_models.py) on the same folds.
fn reference(dir: &Path, run: &str, kind: &str, params: serde_json::Value) -> serde_json::Value {
    let out = script(
        "check_tree_models.py",
        &[&p(dir, ""), &p(dir, run), kind, &params.to_string()],
    );
    serde_json::from_str(out.trim().lines().last().unwrap()).unwrap()
}

/// Features ordered by decreasing importance.
fn ranking(names: &[&str], values: &[f64]) -> Vec<String> {
    let mut order: Vec<(String, f64)> = names
        .iter()
        .map(|n| n.to_string())
        .zip(values.iter().copied())
        .collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1));
    order.into_iter().map(|(n, _)| n).collect()
}

#[test]
fn bdt_matches_xgboost_exports_exactly_and_injects_per_fold() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = data(d);
    let inputs = FEATURES.join(", ");
    let log = train(
        d,
        "bdt",
        &config(
            &data,
            "{type: bdt, n_trees: 100, max_depth: 4, learning_rate: 0.1, max_bins: 254}",
            &inputs,
        ),
    );
    assert!(log.contains("test AUC"), "{log}");
    let m = metrics(d, "bdt");
    let imp = &m["importance"];
    let mdi: Vec<f64> = imp["mdi"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!((mdi.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{imp}");
    assert_eq!(ranking(&FEATURES, &mdi)[0], "a0", "{imp}");
    assert!(imp["splits"][0].as_u64().unwrap() > 0, "{imp}");
    assert_eq!(m["folds"][0]["train_loss"].as_array().unwrap().len(), 100);
    for f in ["importance.png", "roc.png", "loss_fold0.png"] {
        let len = std::fs::metadata(d.join("bdt/plots").join(f))
            .unwrap()
            .len();
        assert!(len > 5000, "{f} is {len} bytes");
    }

    // XGBoost (hist, 256 bins) on the same folds and settings.
    let r = reference(
        d,
        "bdt",
        "bdt",
        serde_json::json!({"features": FEATURES, "k": 2, "n_trees": 100, "max_depth": 4,
                           "eta": 0.1, "max_bins": 256}),
    );
    let (ours, theirs) = (
        r["auc_hepml"].as_f64().unwrap(),
        r["auc_ref"].as_f64().unwrap(),
    );
    let auc = m["test"]["auc"].as_f64().unwrap();
    assert!((auc - ours).abs() < 1e-9, "metrics {auc} vs sklearn {ours}");
    assert!(
        (ours - theirs).abs() <= 0.002,
        "hepml {ours} vs xgboost {theirs}"
    );

    // The export: onnxruntime gives the trainer's own test scores.
    ok(&["export", &p(d, "bdt"), "-o", &p(d, "bdt.onnx")]);
    let (f0, f1) = (p(d, "bdt.fold0.onnx"), p(d, "bdt.fold1.onnx"));
    let check = script("check_export.py", &[&p(d, "bdt"), &f0, &f1]);
    let c: serde_json::Value = serde_json::from_str(check.trim()).unwrap();
    assert!(c["max_diff"].as_f64().unwrap() <= 1e-6, "{check}");
    assert!(c["metadata"]["hepml.fold"]
        .as_str()
        .unwrap()
        .contains("event"));
    assert!(c["metadata"]["hepml.mdi"]
        .as_str()
        .unwrap()
        .contains("\"a0\""));
    assert_eq!(c["metadata"]["hepml.nan"], "pass", "{check}");

    // --threads bounds the pool; the model does not depend on it.
    let cfg = p(d, "bdt.yaml");
    ok(&[
        "train",
        &cfg,
        "-o",
        &p(d, "bdt1"),
        "--seed",
        "3",
        "-q",
        "--threads",
        "1",
    ]);
    for f in 0..2 {
        let name = format!("test_fold{f}_score.npy");
        assert!(
            npy(&d.join("bdt1").join(&name)) == npy(&d.join("bdt").join(&name)),
            "fold {f}: --threads 1 and all cores trained different models"
        );
    }

    // The native tree engine through inject: fold 0 on the signal file scores its even
    // events (fold 0's test events, first in the converted table) as the trainer did.
    let sig = p(d, "sig.root");
    let one = p(d, "fold0.root");
    // Trees take NaN (m5 is missing in 20% of the events): the export says so, and inject
    // passes it on by default.
    let inject = |models: &[&str], out: &str| {
        let mut args = vec!["inject", sig.as_str(), "-o", out, "--quiet"];
        for m in models {
            args.extend(["--model", m]);
        }
        ok(&args)
    };
    inject(&[&f0], &one);
    // Asked to, inject still stops on NaN (an error line naming the branch, after the note
    // that one fold scores every event).
    let o = common::hepml(&[
        "inject",
        &sig,
        "--model",
        &f0,
        "--nan",
        "error",
        "-o",
        &p(d, "no.root"),
        "--quiet",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    let last = err.trim().lines().last().unwrap_or("");
    assert!(
        o.status.code() == Some(1)
            && last.contains("error")
            && last.contains("NaN in column 5 ('m5')"),
        "{err}"
    );
    let s = dump(&one, &["score", "event"]);
    let want = npy(&d.join("bdt/test_fold0_score.npy"));
    let even: Vec<f32> = s[1]
        .iter()
        .zip(&s[0])
        .filter(|(e, _)| (**e as i64) % 2 == 0)
        .map(|(_, v)| *v as f32)
        .collect();
    assert!(even.len() > 4000, "{} even signal events", even.len());
    let diff = testutil::max_diff(&even, &want[..even.len()]);
    assert!(diff <= 1e-6, "native engine vs trainer: {diff}");
    // Both folds: each event gets the score of the fold that did not train on it.
    let both = p(d, "both.root");
    inject(&[&f0, &f1], &both);
    let other = p(d, "fold1.root");
    inject(&[&f1], &other);
    let (e, s1) = (dump(&both, &["score", "event"]), dump(&other, &["score"]));
    for i in 0..e[1].len() {
        let want = if (e[1][i] as i64) % 2 == 0 {
            s[0][i]
        } else {
            s1[0][i]
        };
        assert_eq!(e[0][i], want, "event {}", e[1][i]);
    }
}

#[test]
fn random_forest_matches_sklearn_auc_and_mdi_ranking() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = data(d);
    let inputs = FEATURES.join(", ");
    train(
        d,
        "rf",
        &config(
            &data,
            "{type: random_forest, n_trees: 60, max_depth: 8, criterion: gini}",
            &inputs,
        ),
    );
    let m = metrics(d, "rf");
    let mdi: Vec<f64> = m["importance"]["mdi"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let r = reference(
        d,
        "rf",
        "rf",
        serde_json::json!({"features": FEATURES, "k": 2, "n_trees": 60, "max_depth": 8,
                           "criterion": "gini"}),
    );
    let (ours, theirs) = (
        r["auc_hepml"].as_f64().unwrap(),
        r["auc_ref"].as_f64().unwrap(),
    );
    assert!(
        (ours - theirs).abs() <= 0.003,
        "hepml {ours} vs sklearn {theirs}"
    );
    let theirs: Vec<f64> = FEATURES
        .iter()
        .map(|f| r["mdi_ref"][*f].as_f64().unwrap())
        .collect();
    assert_eq!(
        ranking(&FEATURES, &mdi),
        ranking(&FEATURES, &theirs),
        "MDI hepml {mdi:?} vs sklearn {theirs:?}"
    );
    // Explained after training (a valid split this time): permutation importance with the
    // training's MDI beside it.
    let text = config(
        &data,
        "{type: random_forest, n_trees: 20, max_depth: 6}",
        &inputs,
    )
    .replace("valid_fraction: 0.0", "valid_fraction: 0.2")
    .replace("train_fraction: 0.8", "train_fraction: 0.6");
    train(d, "rfx", &format!("{text}evaluation: {{explain: true}}\n"));
    let ex: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("rfx/explain/explain.json")).unwrap())
            .unwrap();
    assert_eq!(
        ex["permutation"]["groups"].as_array().unwrap().len(),
        6,
        "{ex}"
    );
    assert_eq!(
        ex["mdi"]["features"].as_array().unwrap().len(),
        6,
        "{}",
        ex["mdi"]
    );
    assert!(d.join("rfx/explain/mdi.png").exists());
    // The export reproduces the forest's scores.
    ok(&["export", &p(d, "rf"), "-o", &p(d, "rf.onnx")]);
    let check = script(
        "check_export.py",
        &[&p(d, "rf"), &p(d, "rf.fold0.onnx"), &p(d, "rf.fold1.onnx")],
    );
    let c: serde_json::Value = serde_json::from_str(check.trim()).unwrap();
    assert!(c["max_diff"].as_f64().unwrap() <= 1e-6, "{check}");
}

#[test]
fn bad_tree_inputs_are_one_line_errors_and_leave_no_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = data(d);
    let inputs = FEATURES.join(", ");
    let bdt = |extra: &str| config(&data, &format!("{{type: bdt, n_trees: 5{extra}}}"), &inputs);
    let cases: Vec<(String, &str)> = vec![
        (bdt(", max_depth: 0"), "model.max_depth 0"),
        (bdt(", max_depth: 100"), "model.max_depth 100"),
        (bdt(", learning_rate: 0"), "model.learning_rate 0"),
        (bdt(", learning_rate: 1.5"), "model.learning_rate 1.5"),
        (bdt(", widht: 3"), "unknown field `widht`"),
        (bdt(", patience: 3"), "needs valid events"),
        (
            config(&data, "{type: random_forest, max_depth: 0}", &inputs),
            "model.max_depth 0",
        ),
        (
            config(&data, "{type: bdt}", &format!("{inputs}, gone")),
            "`gone` is NaN in every event",
        ),
        (
            config(&data, "{type: bdt}", &inputs).replace("inputs: [", "label: flat, inputs: ["),
            "a class has no events",
        ),
        (
            format!(
                "{}training: {{epochs: 3}}\n",
                config(&data, "{type: bdt}", &inputs)
            ),
            "the `training` block is for dnn and pnn",
        ),
    ];
    train_fails(d, &cases);
    // --threads: at least one, and only for trees (networks train on burn's pool).
    let cfg = p(d, "threads.yaml");
    for (model, threads, want) in [
        (
            "{type: bdt, n_trees: 5}",
            "0",
            "--threads must be at least 1",
        ),
        ("{type: dnn}", "2", "--threads sizes tree training"),
    ] {
        std::fs::write(&cfg, config(&data, model, &inputs)).unwrap();
        let run = p(d, "threads");
        let o = common::hepml(&["train", &cfg, "-o", &run, "-q", "--threads", threads]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains(want) && err.trim().lines().count() == 1,
            "{err}"
        );
        assert!(!Path::new(&run).exists());
    }
    // A constant feature is kept, with a warning; the regression objective reports RMSE.
    let log = train(
        d,
        "flat",
        &config(
            &data,
            "{type: bdt, n_trees: 5, objective: regression}",
            &format!("{inputs}, flat"),
        ),
    );
    assert!(
        log.contains("warning: feature `flat` has the one value 1 in every event"),
        "{log}"
    );
    assert!(log.contains("test RMSE"), "{log}");
    let m = metrics(d, "flat");
    assert_eq!(m["importance"]["splits"][6], 0, "{}", m["importance"]);
}
