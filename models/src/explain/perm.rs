//! Permutation importance: how much the metric drops when one feature (or a group of features,
//! shuffled together: an object's variables, a jagged collection) is shuffled across events.
//! The metric is the weighted AUC for 0/1 labels, the weighted mean squared error otherwise
//! (importance: its increase). Computed per sample (train and valid side by side), each group
//! with `repeats` permutations whose seeds are recorded, repeats run in parallel.

use super::data::{binary, Dataset};
use super::scorer::Scorer;
use super::ExplainError;
use crate::metrics::auc_weighted;
use crate::rng::Rng;

/// The metric permutation importance measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Weighted ROC AUC (labels 0/1): importance is the drop.
    Auc,
    /// Weighted mean squared error to the label: importance is the rise.
    Mse,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Auc => "auc",
            Metric::Mse => "mse",
        }
    }

    /// The metric for 0/1 labels (with both classes), else MSE.
    pub fn for_labels(y: &[f32]) -> Metric {
        if binary(y) {
            Metric::Auc
        } else {
            Metric::Mse
        }
    }

    pub fn value(self, scores: &[f32], y: &[f32], w: &[f32]) -> f64 {
        match self {
            Metric::Auc => auc_weighted(scores, y, Some(w)),
            Metric::Mse => {
                let (mut s, mut t) = (0f64, 0f64);
                for ((p, y), w) in scores.iter().zip(y).zip(w) {
                    s += *w as f64 * (*p as f64 - *y as f64).powi(2);
                    t += *w as f64;
                }
                s / t
            }
        }
    }

    /// Importance from the metric before and after shuffling.
    fn drop(self, base: f64, shuffled: f64) -> f64 {
        match self {
            Metric::Auc => base - shuffled,
            Metric::Mse => shuffled - base,
        }
    }
}

/// One group's importance on one sample.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Importance {
    pub mean: f64,
    pub std: f64,
    pub values: Vec<f64>,
}

/// One group's importances, one per sample in the dataset's order.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GroupImportance {
    pub group: String,
    pub columns: Vec<String>,
    pub per_sample: Vec<Importance>,
    /// Important on the training sample, not on the validation one (see [`overfit`]).
    pub overfit: bool,
}

/// The seed of repeat `r` of group `g`: recorded in the output, so a permutation can be
/// reproduced (SplitMix64, Fisher-Yates from the last element, as `models::rng`).
pub fn perm_seed(seed: u64, g: usize, r: usize) -> u64 {
    seed ^ ((g as u64) << 32 | r as u64)
}

/// The permutation of `n` events for one seed.
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    Rng::new(seed).shuffle(&mut idx);
    idx
}

/// Baseline metric per sample, and every group's importance.
pub fn importance(
    scorer: &Scorer,
    data: &Dataset,
    metric: Metric,
    repeats: usize,
    seed: u64,
    mut tick: impl FnMut(),
) -> Result<(Vec<f64>, Vec<GroupImportance>), ExplainError> {
    let f = data.names.len();
    let mut base = Vec::new();
    let mut table: Vec<Vec<Importance>> = vec![Vec::new(); data.groups.len()];
    for s in &data.samples {
        let y = s.y.as_deref().ok_or_else(|| {
            ExplainError::Config(format!(
                "permutation importance needs labels ({} has none)",
                s.name
            ))
        })?;
        let scores = scorer.score(&s.x, s.rows(f))?;
        let b = metric.value(&scores, y, &s.w);
        base.push(b);
        let jobs: Vec<(usize, usize)> = (0..data.groups.len())
            .flat_map(|g| (0..repeats).map(move |r| (g, r)))
            .collect();
        // The events as columns, once: each job swaps in its permuted copies of the group's
        // columns, and the scorer reads them where they lie.
        let mut columns: Vec<Vec<f32>> = vec![Vec::with_capacity(s.rows(f)); f];
        for row in s.x.chunks_exact(f) {
            for (c, &v) in columns.iter_mut().zip(row) {
                c.push(v);
            }
        }
        let results = parallel(&jobs, |&(g, r)| {
            let cols = &data.groups[g].cols;
            let perm = permutation(s.rows(f), perm_seed(seed, g, r));
            let moved: Vec<(usize, Vec<f32>)> = cols
                .iter()
                .map(|&c| (c, perm.iter().map(|&p| columns[c][p]).collect()))
                .collect();
            let view: Vec<&[f32]> = (0..f)
                .map(|c| match moved.iter().find(|(m, _)| *m == c) {
                    Some((_, v)) => v.as_slice(),
                    None => columns[c].as_slice(),
                })
                .collect();
            let sc = scorer.score_columns(&view, s.rows(f))?;
            Ok(metric.drop(b, metric.value(&sc, y, &s.w)))
        })?;
        for (g, row) in table.iter_mut().enumerate() {
            let values: Vec<f64> = results[g * repeats..(g + 1) * repeats].to_vec();
            let mean = values.iter().sum::<f64>() / repeats as f64;
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
                / (repeats.max(2) - 1) as f64;
            row.push(Importance {
                mean,
                std: var.sqrt(),
                values,
            });
            tick();
        }
    }
    let train = data.samples.iter().position(|s| s.name == "train");
    let held = data
        .samples
        .iter()
        .position(|s| s.name == "valid" || s.name == "test");
    let groups = data
        .groups
        .iter()
        .zip(table)
        .map(|(g, per_sample)| {
            let overfit = match (train, held) {
                (Some(t), Some(v)) => overfit(&per_sample[t], &per_sample[v]),
                _ => false,
            };
            GroupImportance {
                group: g.name.clone(),
                columns: g.cols.iter().map(|&c| data.names[c].clone()).collect(),
                per_sample,
                overfit,
            }
        })
        .collect();
    Ok((base, groups))
}

/// A feature the model leans on in training but not on held-out data: its training importance
/// is clear (above 0.002 and two standard deviations), and the held-out one is under half of
/// it, by more than two standard deviations of the difference.
pub fn overfit(train: &Importance, held: &Importance) -> bool {
    let gap = train.mean - held.mean;
    let sd = (train.std.powi(2) + held.std.powi(2)).sqrt();
    train.mean > 0.002
        && train.mean > 2.0 * train.std
        && held.mean < 0.5 * train.mean
        && gap > 2.0 * sd
}

/// `job` over `items` on every core, results in order.
pub(super) fn parallel<T: Sync, R: Send>(
    items: &[T],
    job: impl Fn(&T) -> Result<R, ExplainError> + Sync,
) -> Result<Vec<R>, ExplainError> {
    let threads = engine::cores().min(items.len()).max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut out: Vec<Option<Result<R, ExplainError>>> = (0..items.len()).map(|_| None).collect();
    let parts: Vec<Vec<(usize, Result<R, ExplainError>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        mine.push((i, job(item)));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    for (i, r) in parts.into_iter().flatten() {
        out[i] = Some(r);
    }
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(ExplainError::Config("a worker thread failed".into()))))
        .collect()
}
