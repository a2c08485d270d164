//! Classifier metrics, the one implementation everything uses (training summaries, plots, the
//! demo): area under the ROC curve with tied scores averaged, ROC curve points, and the test
//! summary of a training run.

use std::collections::BTreeMap;

use crate::train::{per_parameter, Data, Outcome};

/// Area under the ROC curve (ties count half), unweighted.
pub fn auc(scores: &[f32], labels: &[f32]) -> f64 {
    auc_weighted(scores, labels, None)
}

/// Area under the ROC curve with event weights (`None`: all 1): the weighted probability that
/// a signal event (label 1) scores above a background one, tied scores counting half. NaN
/// when a class has no weight.
pub fn auc_weighted(scores: &[f32], labels: &[f32], weights: Option<&[f32]>) -> f64 {
    let mut ev: Vec<(f32, bool, f32)> = scores
        .iter()
        .zip(labels)
        .enumerate()
        .map(|(i, (s, l))| (*s, *l == 1.0, weights.map_or(1.0, |w| w[i])))
        .collect();
    ev.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    // Walking up the scores: each tie group's signal beats the background below it, and
    // half of the background tied with it.
    let (mut below, mut area, mut wpos) = (0f64, 0f64, 0f64);
    let mut i = 0;
    while i < ev.len() {
        let (mut gpos, mut gneg) = (0f64, 0f64);
        let mut j = i;
        while j < ev.len() && ev[j].0 == ev[i].0 {
            if ev[j].1 {
                gpos += ev[j].2 as f64;
            } else {
                gneg += ev[j].2 as f64;
            }
            j += 1;
        }
        area += gpos * (below + 0.5 * gneg);
        below += gneg;
        wpos += gpos;
        i = j;
    }
    if wpos == 0.0 || below == 0.0 {
        return f64::NAN;
    }
    area / (wpos * below)
}

/// ROC curve points (false and true positive rates) at `n` score thresholds.
pub fn roc(scores: &[f32], labels: &[f32], n: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut fpr, mut tpr) = (Vec::new(), Vec::new());
    let npos = labels.iter().filter(|&&l| l == 1.0).count().max(1) as f64;
    let nneg = (labels.len() as f64 - npos).max(1.0);
    for k in 0..=n {
        let cut = 1.0 - k as f32 / n as f32;
        let (mut tp, mut fp) = (0f64, 0f64);
        for (s, l) in scores.iter().zip(labels) {
            if *s >= cut {
                if *l == 1.0 {
                    tp += 1.0;
                } else {
                    fp += 1.0;
                }
            }
        }
        fpr.push(fp / nneg);
        tpr.push(tp / npos);
    }
    (fpr, tpr)
}

/// Test-split metrics over all folds (each event scored by the fold that did not train on it).
pub fn summary(d: &Data, out: &Outcome) -> serde_json::Value {
    let mut scores = Vec::new();
    let mut labels = Vec::new();
    for (rows, s) in &out.test {
        scores.extend(s);
        labels.extend(rows.iter().map(|&r| d.y[r]));
    }
    let (fpr, tpr) = roc(&scores, &labels, 100);
    let mut conf = [[0u64; 2]; 2];
    for (s, l) in scores.iter().zip(&labels) {
        conf[(*l == 1.0) as usize][(*s > 0.5) as usize] += 1;
    }
    let per_param: BTreeMap<String, f64> = per_parameter(d, out)
        .into_iter()
        .map(|(v, s, l)| (v.to_string(), auc(&s, &l)))
        .collect();
    let acc = (conf[0][0] + conf[1][1]) as f64 / scores.len().max(1) as f64;
    let binary = labels.iter().all(|&l| l == 0.0 || l == 1.0);
    let rmse = (scores
        .iter()
        .zip(&labels)
        .map(|(s, l)| ((s - l) as f64).powi(2))
        .sum::<f64>()
        / scores.len().max(1) as f64)
        .sqrt();
    // Mean over folds of each fold's kept model on its own training and validation events.
    let mean = |f: fn(&crate::train::History) -> f64| {
        out.histories.iter().map(f).sum::<f64>() / out.histories.len().max(1) as f64
    };
    let mut v = serde_json::json!({
        "train": {"auc": mean(|h| h.train_auc)},
        "valid": {"auc": mean(|h| h.valid_auc)},
        "test": {
            "auc": auc(&scores, &labels),
            "accuracy": acc,
            "confusion": {"rows": "true class (0 background, 1 signal)", "columns": "predicted (score > 0.5)", "matrix": conf},
            "events": scores.len(),
            "roc": {"fpr": fpr, "tpr": tpr},
            "auc_per_parameter": per_param,
        },
        "folds": out.histories,
        "lr_finder": out.lr_finder.as_ref().map(|(l, s, sug)| serde_json::json!({"lr": l, "loss": s, "suggested": sug})),
        "events_per_second": out.events_per_second,
    });
    v["test"]["rmse"] = rmse.into();
    if !binary {
        // A regression: classifier figures mean nothing.
        for k in ["auc", "accuracy", "confusion", "roc"] {
            v["test"][k] = serde_json::Value::Null;
        }
        v["train"]["auc"] = serde_json::Value::Null;
        v["valid"]["auc"] = serde_json::Value::Null;
    }
    if let Some(imp) = &out.importance {
        v["importance"] = serde_json::json!({
            "what": "mdi: mean decrease in impurity per feature (per tree normalised, averaged, normalised, as scikit-learn); gain: summed split gain; splits: split count; all folds",
            "features": imp.features, "mdi": imp.mdi, "gain": imp.gain, "splits": imp.splits,
        });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tied_scores_count_half() {
        // One score for every event: no separation, AUC 0.5 whatever the order of the events
        // (ranking tied events by position, as the demo did, gave 0.25 here).
        assert_eq!(auc(&[0.5, 0.5, 0.5, 0.5], &[1.0, 0.0, 1.0, 0.0]), 0.5);
        assert_eq!(auc(&[0.1, 0.2, 0.9, 0.8], &[0.0, 0.0, 1.0, 1.0]), 1.0);
        assert!(auc(&[0.1, 0.2], &[1.0, 1.0]).is_nan());
    }
}
