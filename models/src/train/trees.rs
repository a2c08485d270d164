//! `model.type: bdt | random_forest`: the same folds, weights and class balance as the
//! networks, a tree ensemble per fold ([`crate::trees`]), its own scores of the test events
//! (what the ONNX export reproduces), and the importance per feature.

use serde::Serialize;

use crate::config::{Criterion, ModelConfig, Objective, TrainConfig};
use crate::trees::{self, BoostParams, Curves, Ensemble, Events, ForestParams, Impurity, Loss};

use super::data::{class_factors, splits, Data};
use super::fit::{split_auc, History, Outcome};
use super::net::{FoldModel, SavedModel};
use super::{data_err, TrainError};

/// Per feature, over all folds: the mean decrease in impurity (each fold's normalised as
/// scikit-learn does, averaged, normalised), and the summed split gain and split count.
#[derive(Debug, Clone, Serialize)]
pub struct TreeImportance {
    pub features: Vec<String>,
    pub mdi: Vec<f64>,
    pub gain: Vec<f64>,
    pub splits: Vec<usize>,
}

impl TreeImportance {
    fn of(names: &[String], folds: &[&Ensemble]) -> Self {
        let f = names.len();
        let mut imp = TreeImportance {
            features: names.to_vec(),
            mdi: vec![0.0; f],
            gain: vec![0.0; f],
            splits: vec![0; f],
        };
        for e in folds {
            for (m, v) in imp.mdi.iter_mut().zip(trees::mdi(&e.trees, f)) {
                *m += v;
            }
            for t in &e.trees {
                let s = t.split_importance();
                imp.gain.iter_mut().zip(&s.gain).for_each(|(a, b)| *a += b);
                imp.splits
                    .iter_mut()
                    .zip(&s.splits)
                    .for_each(|(a, b)| *a += b);
            }
        }
        let total: f64 = imp.mdi.iter().sum();
        if total > 0.0 {
            imp.mdi.iter_mut().for_each(|v| *v /= total);
        }
        imp
    }
}

/// Columns no tree can use: an error for a column that is NaN in every event, a warning
/// (returned) for a constant one.
fn check_columns(d: &Data) -> Result<Vec<String>, TrainError> {
    let f = d.width();
    // Per column: its first value that is not NaN, and whether every value equals it.
    let mut first: Vec<Option<f32>> = vec![None; f];
    let mut constant = vec![true; f];
    for row in d.x.chunks_exact(f) {
        for ((v, c), x) in first.iter_mut().zip(constant.iter_mut()).zip(row) {
            match v {
                _ if x.is_nan() => {}
                None => *v = Some(*x),
                Some(v) => *c &= v == x,
            }
        }
    }
    let mut warnings = Vec::new();
    for ((name, v), c) in d.names.iter().zip(first).zip(constant) {
        match v {
            None => {
                return Err(data_err(format!(
                    "feature `{name}` is NaN in every event: no tree can use it; drop it from features.inputs"
                )))
            }
            Some(v) if c => warnings.push(format!(
                "feature `{name}` has the one value {v} in every event: kept, but no tree can split on it"
            )),
            Some(_) => {}
        }
    }
    Ok(warnings)
}

/// Trains a tree ensemble per fold; `threads` 0 uses all cores; `progress(fold, tree)` after
/// each tree. The outcome's warnings name constant features.
pub fn train_trees(
    cfg: &TrainConfig,
    d: &Data,
    seed: u64,
    config_hash: &str,
    threads: usize,
    mut progress: impl FnMut(usize, usize),
) -> Result<Outcome, TrainError> {
    let warnings = check_columns(d)?;
    let folds = splits(cfg, d, seed);
    let patience = matches!(&cfg.model, ModelConfig::Bdt(b) if b.patience.is_some());
    for (i, s) in folds.iter().enumerate() {
        if s.train.is_empty() || s.test.is_empty() || (patience && s.valid.is_empty()) {
            return Err(data_err(format!(
                "fold {i}: {} train, {} valid, {} test events: too few events for the split{}",
                s.train.len(),
                s.valid.len(),
                s.test.len(),
                if patience {
                    " (model.patience needs valid events)"
                } else {
                    ""
                }
            )));
        }
    }
    let classifier = cfg.model.is_classifier();
    let f = d.width();
    let mut saved = Vec::new();
    let mut histories = Vec::new();
    let mut tests = Vec::new();
    let mut ensembles = Vec::new();
    let mut seen = 0usize;
    let t0 = std::time::Instant::now();
    for (fi, s) in folds.iter().enumerate() {
        let cls = class_factors(d, &s.train, cfg.preparation.balance_classes && classifier);
        let events = |rows: &[usize]| -> (Vec<f32>, Vec<f32>) {
            let y: Vec<f32> = rows.iter().map(|&r| d.y[r]).collect();
            let w = rows
                .iter()
                .map(|&r| {
                    let c = if classifier {
                        cls[d.y[r] as usize]
                    } else {
                        1.0
                    };
                    d.w[r] * c
                })
                .collect();
            (y, w)
        };
        let (ty, tw) = events(&s.train);
        let (vy, vw) = events(&s.valid);
        let train = Events {
            x: &d.x,
            n_features: f,
            rows: &s.train,
            y: &ty,
            w: &tw,
        };
        let valid = Events {
            x: &d.x,
            n_features: f,
            rows: &s.valid,
            y: &vy,
            w: &vw,
        };
        let fold_seed = seed ^ (fi as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
        let mut tick = |t: usize| progress(fi, t);
        let (ens, curves, lr) = match &cfg.model {
            ModelConfig::Bdt(b) => {
                let p = BoostParams {
                    loss: match b.objective {
                        Objective::Binary => Loss::Logistic,
                        Objective::Regression => Loss::Squared,
                    },
                    n_trees: b.n_trees,
                    learning_rate: b.learning_rate,
                    max_depth: match (b.max_depth, b.max_leaves) {
                        (Some(d), _) => d,
                        (None, Some(_)) => trees::MAX_DEPTH,
                        (None, None) => 6,
                    },
                    max_leaves: b.max_leaves.unwrap_or(usize::MAX),
                    min_child_weight: b.min_child_weight,
                    l2: b.l2,
                    subsample: b.subsample,
                    colsample: b.colsample,
                    max_bins: b.max_bins,
                    patience: b.patience,
                    threads,
                    seed: fold_seed,
                };
                let (e, c) = trees::boost(&train, Some(&valid), &p, &mut tick)
                    .map_err(|e| data_err(format!("fold {fi}: {e}")))?;
                (e, c, b.learning_rate)
            }
            ModelConfig::RandomForest(r) => {
                let p = ForestParams {
                    n_trees: r.n_trees,
                    max_depth: r.max_depth.unwrap_or(trees::MAX_DEPTH),
                    max_features: r.max_features.count(f),
                    impurity: match r.criterion {
                        Criterion::Gini => Impurity::Gini,
                        Criterion::Entropy => Impurity::Entropy,
                    },
                    bootstrap: r.bootstrap,
                    max_bins: r.max_bins,
                    threads,
                    seed: fold_seed,
                };
                let (e, c) = trees::forest(&train, Some(&valid), &p, &mut tick)
                    .map_err(|e| data_err(format!("fold {fi}: {e}")))?;
                (e, c, f64::NAN)
            }
            ModelConfig::Dnn(_) | ModelConfig::Pnn(_) => {
                return Err(data_err(
                    "this trainer fits tree ensembles (model.type bdt or random_forest)",
                ))
            }
        };
        seen += s.train.len() * ens.trees.len();
        let predict = |rows: &[usize]| -> Result<Vec<f32>, TrainError> {
            ens.predict_rows(&d.x, rows, threads)
                .map_err(|e| data_err(format!("fold {fi}: {e}")))
        };
        tests.push((s.test.clone(), predict(&s.test)?));
        let mut h = history(&curves, lr);
        let train_scores = if curves.train_scores.len() == s.train.len() {
            curves.train_scores.clone()
        } else {
            predict(&s.train)?
        };
        h.train_auc = split_auc(d, &s.train, &train_scores);
        h.valid_auc = split_auc(d, &s.valid, &predict(&s.valid)?);
        histories.push(h);
        ensembles.push(ens);
    }
    let importance = TreeImportance::of(&d.names, &ensembles.iter().collect::<Vec<_>>());
    saved.extend(ensembles.into_iter().map(FoldModel::Trees));
    let model = SavedModel::new(cfg, d, config_hash, String::new(), saved);
    Ok(Outcome {
        model,
        histories,
        test: tests,
        background_at: Vec::new(),
        lr_finder: None,
        events_per_second: seen as f64 / t0.elapsed().as_secs_f64().max(1e-9),
        importance: Some(importance),
        warnings,
    })
}

/// The curves as the per-epoch history the networks write (one entry per tree).
fn history(c: &Curves, lr: f64) -> History {
    History {
        train_loss: c.train_loss.clone(),
        valid_loss: c.valid_loss.clone(),
        train_accuracy: c.train_accuracy.clone(),
        valid_accuracy: c.valid_accuracy.clone(),
        learning_rate: if lr.is_finite() {
            vec![lr; c.train_loss.len().max(c.valid_loss.len())]
        } else {
            Vec::new()
        },
        best_epoch: c.best,
        train_auc: f64::NAN,
        valid_auc: f64::NAN,
    }
}
