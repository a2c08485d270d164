//! hepml's regression trees end to end: fitted on a smooth function, written as ONNX, and
//! evaluated by the native tree engine and onnxruntime (scripts/check_trees.py) to the same
//! numbers as `Tree::predict`; the CART fit against sklearn's DecisionTreeRegressor. (tract,
//! built without ONNX-ML, does not run tree ensembles.)

use engine::{EngineOptions, Model, Opened, Tensor};
use models::rng::Rng;
use models::train::write_npy;
use models::trees::{fit, CartParams, Ensemble, Tree};
use std::path::Path;

const F: usize = 5;
const NAMES: [&str; F] = ["pt", "eta", "m_jj", "dr", "iso"];

/// Mostly two-dimensional (pt, eta), with small terms in the other three. Feature 4 is
/// missing (NaN) in about 2% of the rows; missing it counts as 0.4.
fn smooth(r: &[f32]) -> f32 {
    let iso = if r[4].is_nan() { 0.4 } else { r[4] * r[4] };
    2.0 * (2.0 * r[0]).sin() + r[1] * r[1] + 0.3 * r[2] + 0.2 * r[3] * r[2] + 0.3 * iso
}

fn sample(rng: &mut Rng, n: usize) -> (Vec<f32>, Vec<f32>) {
    let mut x = Vec::with_capacity(n * F);
    for _ in 0..n {
        for f in 0..F {
            let v = (rng.uniform() * 3.0 - 1.5) as f32;
            x.push(if f == 4 && rng.uniform() < 0.02 {
                f32::NAN
            } else {
                v
            });
        }
    }
    let y = x.chunks(F).map(smooth).collect();
    (x, y)
}

fn r2(pred: &[f32], y: &[f32]) -> f64 {
    let mean = y.iter().map(|&v| v as f64).sum::<f64>() / y.len() as f64;
    let ss_tot: f64 = y.iter().map(|&v| (v as f64 - mean).powi(2)).sum();
    let ss_res: f64 = pred
        .iter()
        .zip(y)
        .map(|(&p, &v)| (p as f64 - v as f64).powi(2))
        .sum();
    1.0 - ss_res / ss_tot
}

/// Runs the ONNX file on the engine `open` picks, which must be the native trees, and returns
/// the [N, 1] output.
fn run(path: &Path, x: &[f32]) -> Vec<f32> {
    let model = Model::read(path).unwrap();
    let opened = engine::open(&model, &EngineOptions::default()).unwrap();
    assert!(matches!(opened, Opened::Trees(_)), "not the native trees");
    let out = opened
        .engine()
        .run(&[Tensor::new("x", vec![x.len() / F, F], x.to_vec())])
        .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].name, "score");
    assert_eq!(out[0].shape, vec![x.len() / F, 1]);
    out[0].data.clone()
}

/// Writes the ensemble as ONNX, checks the native tree engine gives `Ensemble::predict_batch`
/// to the bit and onnxruntime within `ort_tol`; returns that onnxruntime report.
fn export_and_compare(ens: &Ensemble, x: &[f32], dir: &Path, ort_tol: f32) -> serde_json::Value {
    let meta = vec![("hepml.features".to_string(), NAMES.join(","))];
    let bytes = ens.to_onnx("x", "score", &meta).unwrap();
    let path = dir.join("trees.onnx");
    std::fs::write(&path, bytes).unwrap();
    let want = ens.predict_batch(x).unwrap();
    let native = run(&path, x);
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&native),
        bits(&want),
        "native trees differ from predict"
    );
    let info = Model::read(&path).unwrap().into_info();
    assert_eq!(info.metadata.get("hepml.features"), Some(&NAMES.join(",")));

    let (xp, wp) = (dir.join("x.npy"), dir.join("want.npy"));
    write_npy(&xp, &[x.len() / F, F], x).unwrap();
    write_npy(&wp, &[want.len()], &want).unwrap();
    let out = testutil::script(
        "check_trees.py",
        &[
            "onnx",
            path.to_str().unwrap(),
            xp.to_str().unwrap(),
            wp.to_str().unwrap(),
            &ort_tol.to_string(),
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["rows"], x.len() / F);
    assert_eq!(report["metadata"]["hepml.features"], NAMES.join(","));
    assert_eq!(report["opsets"]["ai.onnx.ml"], 3);
    report
}

#[test]
fn tree_fits_a_smooth_function_and_every_evaluator_agrees() {
    let mut rng = Rng::new(7);
    let (x, y) = sample(&mut rng, 100_000);
    let (xt, yt) = sample(&mut rng, 20_000);
    let params = CartParams {
        max_depth: 8,
        min_samples_leaf: 20,
        ..Default::default()
    };
    let tree = fit(&x, F, &y, None, &params).unwrap();
    assert_eq!(tree.depth(), 8);
    let (fit_r2, test_r2) = (
        r2(&tree.predict_batch(&x), &y),
        r2(&tree.predict_batch(&xt), &yt),
    );
    assert!(test_r2 >= 0.9, "R^2 {test_r2} (training {fit_r2})");
    // NaN rows of the test set, evaluated: they must reach leaves (the routing is recorded).
    assert!(xt.chunks(F).any(|r| r[4].is_nan()));
    let rules = tree.rules(&NAMES);
    assert_eq!(
        rules
            .lines()
            .filter(|l| l.trim_start().starts_with("->"))
            .count(),
        tree.n_leaves()
    );
    assert!(rules.contains("iso <= "), "{rules}");
    let imp = tree.split_importance();
    assert_eq!(imp.splits.iter().sum::<usize>(), tree.n_leaves() - 1);
    assert!(imp.gain.iter().all(|&g| g > 0.0), "{imp:?}");

    let dir = tempfile::tempdir().unwrap();
    let single = Ensemble::single(tree.clone());
    assert_eq!(single.predict_batch(&xt).unwrap(), tree.predict_batch(&xt));
    let report = export_and_compare(&single, &xt, dir.path(), 0.0);
    assert_eq!(
        report["nodes"],
        serde_json::json!(["TreeEnsembleRegressor"])
    );
    println!(
        "R^2 {fit_r2:.4} (training), {test_r2:.4} (held out); {} leaves",
        tree.n_leaves()
    );
}

/// A small boosted ensemble (residual fits with a learning rate, a base value), with and
/// without the logistic function.
#[test]
fn weighted_ensemble_with_base_and_logistic_agrees() {
    let mut rng = Rng::new(11);
    let (x, y) = sample(&mut rng, 30_000);
    let (xt, _) = sample(&mut rng, 5_000);
    let base = y.iter().sum::<f32>() / y.len() as f32;
    let params = CartParams {
        max_depth: 4,
        ..Default::default()
    };
    let mut ens = Ensemble {
        trees: Vec::<Tree>::new(),
        tree_weights: Vec::new(),
        base,
        logistic: false,
    };
    let w: Vec<f32> = (0..y.len()).map(|_| 0.5 + rng.uniform() as f32).collect();
    for _ in 0..5 {
        let pred = ens
            .predict_batch(&x)
            .unwrap_or_else(|_| vec![base; y.len()]);
        let resid: Vec<f32> = y.iter().zip(&pred).map(|(a, b)| a - b).collect();
        ens.trees
            .push(fit(&x, F, &resid, Some(&w), &params).unwrap());
        ens.tree_weights.push(0.3);
    }
    let dir = tempfile::tempdir().unwrap();
    let report = export_and_compare(&ens, &xt, dir.path(), 0.0);
    assert_eq!(
        report["nodes"],
        serde_json::json!(["TreeEnsembleRegressor"])
    );
    ens.logistic = true;
    let report = export_and_compare(&ens, &xt, dir.path(), 1e-6);
    assert_eq!(
        report["nodes"],
        serde_json::json!(["TreeEnsembleRegressor", "Sigmoid"])
    );
    let p = ens.predict_batch(&xt).unwrap();
    assert!(p.iter().all(|&v| v > 0.0 && v < 1.0));
}

/// On features with few distinct values binning is exact, so the fit must be sklearn's:
/// the same leaf values for every row and the same (normalised) feature importances.
#[test]
fn cart_matches_sklearn_decision_tree() {
    let mut rng = Rng::new(5);
    let n = 20_000;
    let x: Vec<f32> = (0..n * F)
        .map(|i| (rng.below(6 + i % F * 3) as f32) * 0.5 - 1.0)
        .collect();
    let y: Vec<f32> = x
        .chunks(F)
        .map(|r| smooth(r) + 0.3 * rng.normal() as f32)
        .collect();
    let w: Vec<f32> = (0..n).map(|_| 0.5 + 1.5 * rng.uniform() as f32).collect();
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    for (depth, min_leaf) in [(3, 1), (6, 5), (9, 30)] {
        let params = CartParams {
            max_depth: depth,
            min_samples_leaf: min_leaf,
            ..Default::default()
        };
        let tree = fit(&x, F, &y, Some(&w), &params).unwrap();
        let gain: Vec<f32> = tree
            .split_importance()
            .gain
            .iter()
            .map(|&g| g as f32)
            .collect();
        write_npy(&p("x.npy"), &[n, F], &x).unwrap();
        write_npy(&p("y.npy"), &[n], &y).unwrap();
        write_npy(&p("w.npy"), &[n], &w).unwrap();
        write_npy(&p("pred.npy"), &[n], &tree.predict_batch(&x)).unwrap();
        write_npy(&p("gain.npy"), &[F], &gain).unwrap();
        let s = |name: &str| p(name).to_str().unwrap().to_string();
        let out = testutil::script(
            "check_trees.py",
            &[
                "sklearn",
                &s("x.npy"),
                &s("y.npy"),
                &s("w.npy"),
                &depth.to_string(),
                &min_leaf.to_string(),
                &s("pred.npy"),
                &s("gain.npy"),
            ],
        );
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report["leaves"], tree.n_leaves(), "depth {depth}: {report}");
    }
}
