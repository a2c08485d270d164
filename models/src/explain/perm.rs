//! Permutation importance: how much the metric drops when one feature (or a group of features,
//! shuffled together: an object's variables, a jagged collection) is shuffled across events.
//! The metric is the weighted AUC for 0/1 labels, the weighted mean squared error otherwise
//! (importance: its increase). Computed per sample (train and valid side by side), each group
//! with `repeats` permutations whose seeds are recorded, repeats run in parallel.

use super::data::{binary, Dataset};
use super::scorer::Scorer;
use super::ExplainError;
use crate::metrics::{auc_weighted_with, AucBuffers};
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

    pub fn value(self, scores: &[f32], y: &[f32], w: &[f32], buffers: &mut AucBuffers) -> f64 {
        match self {
            Metric::Auc => auc_weighted_with(scores, y, Some(w), buffers),
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

/// `columns` shuffled across events for one seed, all by the same permutation: the one that
/// [`Rng::shuffle`] makes of the event numbers (SplitMix64, Fisher-Yates from the last event),
/// applied to the values where they lie.
pub fn shuffle_columns(columns: &mut [Vec<f32>], seed: u64) {
    let n = columns.first().map_or(0, Vec::len);
    Rng::new(seed).shuffle_by(n, |i, j| {
        for c in columns.iter_mut() {
            c.swap(i, j);
        }
    });
}

/// What one thread of [`importance`] reuses from job to job: the shuffled columns (in the
/// group's order) and the AUC's sorting buffers (fresh buffers of a million events per job cost
/// more in page faults than the work in them).
#[derive(Default)]
struct Buffers {
    moved: Vec<Vec<f32>>,
    auc: AucBuffers,
}

/// Baseline metric per sample, and every group's importance; `tick` once per shuffled scoring
/// (group, repeat and sample), as each ends.
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
        let n = s.rows(f);
        let scores = scorer.score(&s.x, n)?;
        let b = metric.value(&scores, y, &s.w, &mut AucBuffers::default());
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
        let work = |buf: &mut Buffers, &(g, r): &(usize, usize)| {
            let cols = &data.groups[g].cols;
            buf.moved.resize_with(cols.len(), Vec::new);
            for (&c, moved) in cols.iter().zip(buf.moved.iter_mut()) {
                moved.clear();
                moved.extend_from_slice(&columns[c]);
            }
            shuffle_columns(&mut buf.moved, perm_seed(seed, g, r));
            let view: Vec<&[f32]> = (0..f)
                .map(|c| match cols.iter().position(|&m| m == c) {
                    Some(k) => buf.moved[k].as_slice(),
                    None => columns[c].as_slice(),
                })
                .collect();
            let sc = scorer.score_columns(&view, n)?;
            Ok(metric.drop(b, metric.value(&sc, y, &s.w, &mut buf.auc)))
        };
        let results = parallel_with(&jobs, Buffers::default, work, &mut tick)?;
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
    parallel_with(items, || (), |_, item| job(item), || {})
}

/// [`parallel`] with state each thread makes once (`init`) and hands to each of its jobs, and
/// `done` called on the calling thread as each job ends (a progress bar's tick).
pub(super) fn parallel_with<T: Sync, R: Send, S>(
    items: &[T],
    init: impl Fn() -> S + Sync,
    job: impl Fn(&mut S, &T) -> Result<R, ExplainError> + Sync,
    mut done: impl FnMut(),
) -> Result<Vec<R>, ExplainError> {
    let threads = engine::cores().min(items.len()).max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut out: Vec<Option<Result<R, ExplainError>>> = (0..items.len()).map(|_| None).collect();
    let parts: Vec<Vec<(usize, Result<R, ExplainError>)>> = std::thread::scope(|s| {
        let (ended, ends) = std::sync::mpsc::channel::<()>();
        let (init, job, next) = (&init, &job, &next);
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let ended = ended.clone();
                s.spawn(move || {
                    let mut mine = Vec::new();
                    let mut state = init();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        mine.push((i, job(&mut state, item)));
                        // The receiver lives until every worker has ended.
                        let _ = ended.send(());
                    }
                    mine
                })
            })
            .collect();
        // Ends when every worker has dropped its sender: finished, or panicked.
        drop(ended);
        for () in ends {
            done();
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every job's result in the items' order, each thread's state made once and kept, and
    /// `done` called on the calling thread once per job (the progress bar moves as jobs end).
    #[test]
    fn parallel_jobs_report_each_end() {
        let items: Vec<usize> = (0..50).collect();
        let mut ends = 0;
        let out = parallel_with(
            &items,
            || 0usize,
            |seen, &i| {
                *seen += 1;
                Ok((i * i, *seen))
            },
            || ends += 1,
        )
        .unwrap();
        assert_eq!(ends, 50);
        let squares: Vec<usize> = out.iter().map(|r| r.0).collect();
        assert_eq!(squares, items.iter().map(|i| i * i).collect::<Vec<_>>());
        // A thread's state counts its own jobs: one first job per thread that took any (a
        // thread may find the queue empty), and with fewer threads than jobs some thread's
        // count goes past 1 (its state was kept).
        let threads = engine::cores().min(items.len());
        let firsts = out.iter().filter(|r| r.1 == 1).count();
        assert!((1..=threads).contains(&firsts), "{firsts} first jobs");
        if threads < items.len() {
            assert!(out.iter().any(|r| r.1 > 1));
        }
    }

    /// Columns shuffled where they lie equal the columns gathered through the shuffled event
    /// numbers (the permutation the seed stands for, as explain.json records it), each column
    /// of a group by the same permutation.
    #[test]
    fn shuffled_columns_follow_the_seeds_permutation() {
        for n in [0usize, 1, 2, 1000] {
            let a: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let b: Vec<f32> = (0..n).map(|i| -(i as f32) * 0.5).collect();
            let seed = perm_seed(7, 3, 2);
            let mut idx: Vec<usize> = (0..n).collect();
            Rng::new(seed).shuffle(&mut idx);
            let mut cols = vec![a.clone(), b.clone()];
            shuffle_columns(&mut cols, seed);
            assert_eq!(cols[0], idx.iter().map(|&p| a[p]).collect::<Vec<_>>());
            assert_eq!(cols[1], idx.iter().map(|&p| b[p]).collect::<Vec<_>>());
            if n == 1000 {
                assert_ne!(cols[0], a, "a permutation that moves events");
            }
        }
    }
}
