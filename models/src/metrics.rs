//! Classifier metrics, the one implementation everything uses (training summaries, plots, the
//! demo): area under the ROC curve with tied scores averaged, ROC curve points, and the test
//! summary of a training run.

use std::collections::BTreeMap;

use crate::train::{per_parameter, Data, Outcome};

/// Area under the ROC curve (ties count half), unweighted.
pub fn auc(scores: &[f32], labels: &[f32]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut npos) = (0f64, 0f64);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if labels[k] == 1.0 {
                rank_sum += avg_rank;
                npos += 1.0;
            }
        }
        i = j + 1;
    }
    let nneg = scores.len() as f64 - npos;
    if npos == 0.0 || nneg == 0.0 {
        return f64::NAN;
    }
    (rank_sum - npos * (npos + 1.0) / 2.0) / (npos * nneg)
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
        conf[*l as usize][(*s > 0.5) as usize] += 1;
    }
    let per_param: BTreeMap<String, f64> = per_parameter(d, out)
        .into_iter()
        .map(|(v, s, l)| (v.to_string(), auc(&s, &l)))
        .collect();
    let acc = (conf[0][0] + conf[1][1]) as f64 / scores.len().max(1) as f64;
    serde_json::json!({
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
    })
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
