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
/// when a class has no weight, or when a score is NaN (such a model ranks nothing).
pub fn auc_weighted(scores: &[f32], labels: &[f32], weights: Option<&[f32]>) -> f64 {
    auc_weighted_with(scores, labels, weights, &mut AucBuffers::default())
}

/// The sorting buffers of [`auc_weighted_with`], kept from call to call by a caller that
/// computes many AUCs (permutation importance: one per feature and repeat on each thread;
/// buffers of a million events made afresh each time cost more in page faults than the sort).
#[derive(Debug, Default)]
pub struct AucBuffers {
    ev: Vec<(f32, bool, f32)>,
    spare: Vec<(f32, bool, f32)>,
}

/// [`auc_weighted`] in buffers the caller keeps.
pub fn auc_weighted_with(
    scores: &[f32],
    labels: &[f32],
    weights: Option<&[f32]>,
    buffers: &mut AucBuffers,
) -> f64 {
    // A NaN would also never equal itself and end its tie group below.
    if scores.iter().any(|s| s.is_nan()) {
        return f64::NAN;
    }
    let AucBuffers { ev, spare } = buffers;
    ev.clear();
    ev.extend(
        scores
            .iter()
            .zip(labels)
            .enumerate()
            .map(|(i, (s, l))| (*s, *l == 1.0, weights.map_or(1.0, |w| w[i]))),
    );
    by_score(ev, spare);
    // Walking up the scores: each tie group's signal beats the background below it, and
    // half of the background tied with it.
    let (mut below, mut area, mut wpos) = (0f64, 0f64, 0f64);
    let mut i = 0;
    while i < ev.len() {
        let (mut gpos, mut gneg) = (0f64, 0f64);
        let mut j = i;
        while j < ev.len() && ev[j].0 == ev[i].0 {
            // A select, not a branch: labels in score order are a coin toss to a predictor.
            let w = ev[j].2 as f64;
            let (p, q) = if ev[j].1 { (w, 0.0) } else { (0.0, w) };
            gpos += p;
            gneg += q;
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

/// Events in ascending `f32::total_cmp` order of their scores, ties in their original order: a
/// least-significant-digit radix sort of the scores' order-preserving bit patterns (passes of
/// 11, 11 and 10 bits, a pass skipped where every event shares its digit), `spare` its scratch
/// (any content). About twice as fast as a comparison sort on a million events; permutation
/// importance sorts once per feature and repeat.
fn by_score<T: Copy>(ev: &mut Vec<(f32, T, f32)>, spare: &mut Vec<(f32, T, f32)>) {
    // total_cmp's order as unsigned integers: negatives (sign set) reversed below positives.
    let key = |s: f32| {
        let b = s.to_bits();
        if b >> 31 == 1 {
            !b
        } else {
            b | 1 << 31
        }
    };
    const PASSES: [(u32, u32); 3] = [(0, 11), (11, 11), (22, 10)];
    let digit =
        |s: f32, (shift, bits): (u32, u32)| ((key(s) >> shift) & ((1 << bits) - 1)) as usize;
    // Every pass's counts in one read: a pass moves events, not their digits.
    let mut counts = [[0usize; 1 << 11]; 3];
    for e in ev.iter() {
        for (c, pass) in counts.iter_mut().zip(PASSES) {
            c[digit(e.0, pass)] += 1;
        }
    }
    // Every slot of `spare` is written by a pass before it is read: it only needs the length
    // (nothing is written where the caller's buffer already has it).
    let Some(&fill) = ev.first() else { return };
    spare.resize(ev.len(), fill);
    for (start, pass) in counts.iter_mut().zip(PASSES) {
        if start.contains(&ev.len()) {
            continue;
        }
        let mut sum = 0;
        for c in start.iter_mut() {
            (*c, sum) = (sum, sum + *c);
        }
        for e in ev.iter() {
            let d = digit(e.0, pass);
            spare[start[d]] = *e;
            start[d] += 1;
        }
        std::mem::swap(ev, spare);
    }
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

    /// A model that outputs NaN (trained on a corrupt file, say) has no AUC; the tie groups'
    /// walk looped for ever on a NaN score, which is not equal to itself.
    #[test]
    fn a_nan_score_gives_a_nan_auc() {
        let labels = [1.0, 0.0, 1.0, 0.0];
        for nan in [f32::NAN, -f32::NAN] {
            let a = auc_weighted(&[0.2, nan, 0.9, 0.1], &labels, Some(&[1.0, 2.0, 1.0, 1.0]));
            assert!(a.is_nan(), "{a}");
        }
    }

    /// The radix order is `total_cmp`'s, stable: every sign, zeros of both signs, NaNs of both
    /// signs, infinities, subnormals, many ties, and sizes below and above a digit's range.
    #[test]
    fn radix_order_is_total_cmp_order() {
        let special = [
            0.0,
            -0.0,
            f32::NAN,
            -f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE / 4.0,
            -f32::MIN_POSITIVE / 4.0,
            f32::MAX,
            f32::MIN,
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        for n in [0usize, 1, 7, 3000, 70_000] {
            let ev: Vec<(f32, u32, f32)> = (0..n as u32)
                .map(|i| {
                    let s = match next() % 4 {
                        0 => special[(next() % 10) as usize],
                        1 => (next() % 16) as f32 / 8.0 - 1.0,
                        _ => f32::from_bits(next()),
                    };
                    (s, i, 1.0)
                })
                .collect();
            let mut want = ev.clone();
            want.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut got = ev;
            by_score(&mut got, &mut Vec::new());
            let bits = |v: &[(f32, u32, f32)]| -> Vec<(u32, u32)> {
                v.iter().map(|e| (e.0.to_bits(), e.1)).collect()
            };
            assert_eq!(bits(&got), bits(&want), "n {n}");
        }
    }
}
