//! `hepml explain` end to end on real ntuples (uproot) and real models (a hand-built MLP whose
//! weights numpy differentiates analytically, a model that reads two features only, a two-input
//! PNN, an sklearn MLP and an sklearn gradient-boosted ensemble via skl2onnx, a hepml-trained
//! run): permutation importance equals a numpy/onnxruntime reference with the same
//! permutations, saliency and integrated gradients equal analytic gradients, partial dependence
//! equals onnxruntime's mean scores, the surrogate's ONNX runs in onnxruntime with the same
//! numbers (scripts/check_explain.py); bad input fails with one line and no output folder.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

mod common;
use common::script;

/// The reference ntuples and models, made once per test run.
fn fixture() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        script("check_explain.py", &["make", dir.to_str().unwrap()]);
        dir
    })
}

fn at(name: &str) -> String {
    fixture().join(name).display().to_string()
}

fn hepml(args: &[String]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_hepml"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `hepml explain --model MODEL --data DATA... -o OUT --quiet EXTRA...`, which must succeed;
/// returns explain.json and the printed summary.
fn explain(model: &str, data: &[&str], out: &Path, extra: &[&str]) -> (Value, String) {
    let args = argv(model, data, out, extra);
    let (ok, stdout, stderr) = hepml(&args);
    assert!(ok, "hepml {args:?}: {stderr}");
    let text = std::fs::read_to_string(out.join("explain.json")).unwrap();
    (serde_json::from_str(&text).unwrap(), stdout)
}

fn argv(model: &str, data: &[&str], out: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = vec!["explain".into(), "--model".into(), at(model)];
    for d in data {
        a.extend(["--data".into(), at(d)]);
    }
    a.extend(["-o".into(), out.display().to_string(), "--quiet".into()]);
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

const LABELLED: [&str; 4] = ["--label", "label", "--weight", "weight"];

fn with(base: &[&str], more: &[&'static str]) -> Vec<String> {
    base.iter().chain(more).map(|s| s.to_string()).collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Permutation importance equals numpy + onnxruntime with the same permutations and weighted
/// AUC (within 1e-6); saliency and integrated gradients equal numpy's analytic gradients of
/// the same weights (within 1e-4).
#[test]
fn permutation_and_gradients_match_numpy_references() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().join("mlp");
    let extra = with(
        &LABELLED,
        &[
            "--valid",
            "VALID",
            "--methods",
            "perm,saliency,ig",
            "--repeats",
            "3",
            "--events",
            "2000",
        ],
    );
    let mut extra = extra;
    extra[5] = at("valid.root");
    let (r, summary) = explain("mlp.onnx", &["train.root"], &o, &strs(&extra));
    assert_eq!(r["gradients"], "exact (backpropagation)");
    assert!(
        summary.contains("features ranked by permutation importance"),
        "{summary}"
    );
    let (m, d) = (o.display().to_string(), fixture().display().to_string());
    println!(
        "{}",
        script("check_explain.py", &["perm", &m, &d, &at("mlp.onnx")])
    );
    println!("{}", script("check_explain.py", &["gradients", &m, &d]));
    for f in [
        "permutation.png",
        "saliency.png",
        "integrated_gradients.png",
        "saliency.npy",
    ] {
        assert!(o.join(f).is_file(), "{f} missing");
    }
}

/// On an engine without backpropagation (tract) the gradients are central finite
/// differences: they agree with the exact gradients of the same model (scripts/check_explain.py
/// fd), so a model explained through any engine gets the same attributions.
#[test]
fn finite_differences_agree_with_exact_gradients() {
    let out = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    for engine in ["native", "tract"] {
        let o = out.path().join(engine);
        let extra = [
            "--methods",
            "saliency,ig",
            "--events",
            "1000",
            "--engine",
            engine,
        ];
        explain("mlp.onnx", &["train.root"], &o, &extra);
        runs.push(o.display().to_string());
    }
    println!(
        "{}",
        script("check_explain.py", &["fd", &runs[0], &runs[1]])
    );
}

/// An sklearn MLP trained where f5 is pure noise: f5 ranks last on the held-out sample, the
/// ranking is scikit-learn's `permutation_importance`'s, and integrated gradients (exact, 50
/// steps, ReLU network) add up to f(x) - f(baseline) within 1%.
#[test]
fn trained_model_ranks_noise_last_as_sklearn_does() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().join("trained");
    let valid = at("valid.root");
    let mut extra = with(&LABELLED, &["--methods", "perm,ig", "--events", "3000"]);
    extra.extend(["--valid".into(), valid]);
    let (r, _) = explain("trained.onnx", &["train.root"], &o, &strs(&extra));
    assert_eq!(r["gradients"], "exact (backpropagation)");
    let groups = r["permutation"]["groups"].as_array().unwrap();
    let valid_mean = |g: &Value| g["per_sample"][1]["mean"].as_f64().unwrap();
    let last = groups
        .iter()
        .min_by(|a, b| valid_mean(a).total_cmp(&valid_mean(b)))
        .unwrap();
    assert_eq!(last["group"], "f5", "{groups:?}");
    let m = o.display().to_string();
    let d = fixture().display().to_string();
    println!(
        "{}",
        script(
            "check_explain.py",
            &["sklearn-rank", &m, &d, &at("trained.onnx")]
        )
    );
    println!(
        "{}",
        script("check_explain.py", &["completeness", &m, "0.01"])
    );
}

/// A model that reads f0 and f3 only: every method gives the other features exactly zero.
#[test]
fn known_answer_model_gets_zero_importance_elsewhere() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().join("known");
    let extra = with(
        &LABELLED,
        &["--repeats", "2", "--events", "1500", "--pdp", "f0,f1,f3"],
    );
    let (r, _) = explain("known.onnx", &["valid.root"], &o, &strs(&extra));
    let names: Vec<&str> = r["data"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let used = |n: &str| n == "f0" || n == "f3";
    for g in r["permutation"]["groups"].as_array().unwrap() {
        let n = g["group"].as_str().unwrap();
        let values = g["per_sample"][0]["values"].as_array().unwrap();
        let zero = values.iter().all(|v| v.as_f64() == Some(0.0));
        assert_eq!(zero, !used(n), "permutation {n}: {values:?}");
    }
    for m in ["saliency", "integrated_gradients"] {
        for g in r[m]["global"].as_array().unwrap() {
            let n = g["feature"].as_str().unwrap();
            let v = g["mean_abs"].as_f64().unwrap();
            assert_eq!(v == 0.0, !used(n), "{m} {n}: {v}");
        }
    }
    // Each layer's conductances add up to f(x) - f(baseline) (trapezoid rule, 50 steps).
    for gap in r["conductance"]["result"]["layer_gaps"].as_array().unwrap() {
        assert!(
            gap.as_f64().unwrap() <= 0.02,
            "conductance completeness {gap}"
        );
    }
    for top in r["conductance"]["result"]["top"].as_array().unwrap() {
        for (n, v) in names.iter().zip(top["features"].as_array().unwrap()) {
            if !used(n) {
                assert_eq!(v.as_f64(), Some(0.0), "conductance to {n}");
            }
        }
    }
    for p in r["pdp"]["one"].as_array().unwrap() {
        let mean: Vec<f64> = p["mean"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let flat = mean.iter().all(|v| *v == mean[0]);
        assert_eq!(flat, !used(p["feature"].as_str().unwrap()), "pdp {p}");
    }
    let s = &r["surrogate"];
    for (n, g) in names.iter().zip(s["gain"].as_array().unwrap()) {
        if !used(n) {
            let share = g.as_f64().unwrap() / s["gain_total"].as_f64().unwrap();
            assert!(
                share <= 0.01,
                "surrogate splits on {n}: {share} of the gain"
            );
        }
    }
    assert!(s["r2"].as_f64().unwrap() >= 0.9, "surrogate fidelity {s}");
    let m = o.display().to_string();
    println!(
        "{}",
        script(
            "check_explain.py",
            &["surrogate", &m, &fixture().display().to_string()]
        )
    );
    let rules = std::fs::read_to_string(o.join("surrogate.txt")).unwrap();
    assert!(rules.contains("f0") && rules.contains("f3"), "{rules}");
    for f in [
        "conductance.png",
        "surrogate.png",
        "pdp_f0.png",
        "surrogate.onnx",
    ] {
        assert!(o.join(f).is_file(), "{f} missing");
    }
}

/// A two-input PNN (features + mass, concatenated in the graph): the partial dependence on the
/// mass equals the mean onnxruntime score at each mass, a 2-D one pairs the top feature with
/// the mass; expected gradients run on its background events.
#[test]
fn pnn_partial_dependence_on_mass_matches_onnxruntime() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().join("pnn");
    let (r, _) = explain(
        "pnn.onnx",
        &["valid.root"],
        &o,
        &[
            "--methods",
            "pdp,ig",
            "--pdp",
            "mass,f0",
            "--weight",
            "weight",
            "--events",
            "3000",
            "--label",
            "label",
            "--baseline",
            "background",
        ],
    );
    // Expected gradients (background baselines, random points on the paths) add up to
    // f(x) - E[f(baseline)] in expectation only: per event within the noise of 50 draws (0.25
    // seen); a missing (x - baseline) factor would give about 1.
    let ig = &r["integrated_gradients"];
    assert_eq!(ig["baseline"], "background sample (expected gradients)");
    let gap = ig["completeness"]["relative_gap"].as_f64().unwrap();
    assert!(gap < 0.4, "expected gradients far from completeness: {gap}");
    assert_eq!(
        r["pdp"]["two"][0]["features"][1], "mass",
        "2-D: {}",
        r["pdp"]
    );
    let p = &r["pdp"]["one"][0];
    assert_eq!(p["feature"], "mass");
    assert_eq!(
        p["grid"].as_array().unwrap().len(),
        3,
        "the three masses: {p}"
    );
    let m = o.display().to_string();
    let d = fixture().display().to_string();
    println!(
        "{}",
        script(
            "check_explain.py",
            &["pdp", &m, &d, &at("pnn.onnx"), "mass"]
        )
    );
    assert!(o.join("pdp_mass.png").is_file());
}

/// A random forest of fully grown trees on 400 events memorises flipped labels, through the
/// pure-noise f5 too: important on the training events, not on held-out ones, and the flag
/// says so. Tree ensembles get
/// finite-difference gradients (named) and split counts.
#[test]
fn overfit_tree_ensemble_is_flagged() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().join("overfit");
    let valid = at("valid.root");
    let mut extra = with(
        &LABELLED,
        &["--methods", "perm,saliency", "--events", "500"],
    );
    extra.extend(["--valid".into(), valid]);
    let (r, summary) = explain("overfit.onnx", &["overfit_train.root"], &o, &strs(&extra));
    assert_eq!(r["gradients"], "central finite differences");
    let flagged: Vec<&str> = r["permutation"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["overfit"] == true)
        .map(|g| g["group"].as_str().unwrap())
        .collect();
    assert!(
        flagged.contains(&"f5"),
        "pure noise f5 not flagged: {summary}"
    );
    assert!(
        !flagged.contains(&"f0"),
        "f0 carries the label: {flagged:?}"
    );
    assert!(summary.contains("sign of overfitting"), "{summary}");
    let splits = r["tree_splits"]["splits"].as_array().unwrap();
    assert!(splits.iter().all(|s| s.as_u64().unwrap() > 0), "{splits:?}");
}

/// A hepml training run explained on its own splits (train and valid of fold 0), and a run
/// trained with `evaluation: {explain: true}` holding the same.
#[test]
fn run_directory_is_explained_on_its_own_splits() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let (ok, _, err) = hepml(&[
        "demo".into(),
        "--out".into(),
        demo.display().to_string(),
        "--events".into(),
        "20000".into(),
    ]);
    assert!(ok, "demo: {err}");
    let o = dir.path().join("explained");
    let args: Vec<String> = [
        "explain",
        demo.join("run").to_str().unwrap(),
        "-o",
        o.to_str().unwrap(),
        "--quiet",
        "--methods",
        "perm,ig,pdp",
        "--repeats",
        "2",
        "--events",
        "1000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (ok, summary, err) = hepml(&args);
    assert!(ok, "{err}");
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(o.join("explain.json")).unwrap()).unwrap();
    let samples: Vec<&str> = r["data"]["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(samples, ["train", "valid"]);
    assert_eq!(r["gradients"], "exact (backpropagation)");
    let best = r["permutation"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["per_sample"][1]["mean"].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    assert!(best > 0.01, "no feature matters on valid: {summary}");
    assert!(
        !dir.path().join("explained.model").exists(),
        "scratch left behind"
    );
}

/// Bad input: one line on stderr, exit 1, no output folder.
#[test]
fn bad_input_is_one_line_and_leaves_no_output() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().join("bad");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            argv(
                "mlp.onnx",
                &["valid.root"],
                &o,
                &["--label", "label", "--pdp", "nosuch"],
            ),
            "unknown feature 'nosuch'",
        ),
        (
            argv(
                "overfit.onnx",
                &["valid.root"],
                &o,
                &["--label", "label", "--methods", "ig", "--exact"],
            ),
            "no exact gradients",
        ),
        (
            argv("mlp.onnx", &["valid.root"], &o, &["--methods", "perm"]),
            "no labels",
        ),
        (
            argv(
                "mlp.onnx",
                &["valid.root"],
                &o,
                &["--label", "label * 0", "--methods", "perm"],
            ),
            "one class only",
        ),
        (
            argv(
                "mlp.onnx",
                &["valid.root"],
                &o,
                &["--label", "label", "--output-name", "nosuch"],
            ),
            "no output 'nosuch'",
        ),
        (
            vec!["explain".into(), "-o".into(), o.display().to_string()],
            "give a training run directory",
        ),
    ];
    for (args, want) in cases {
        let (ok, _, err) = hepml(&args);
        assert!(!ok, "{args:?} succeeded");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!o.exists(), "{args:?} left {}", o.display());
        let tmp_left = std::fs::read_dir(out.path()).unwrap().count();
        assert_eq!(tmp_left, 0, "{args:?} left a temporary folder");
    }
}
