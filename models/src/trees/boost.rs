//! Histogram gradient boosting (second order, as XGBoost's `hist`): per tree, gradients and
//! hessians of the loss at the current margins, one tree grown on them
//! ([`super::grow`], gain `G_L^2/(H_L+l2) + G_R^2/(H_R+l2) - G^2/(H+l2)`, halved), leaves
//! `-learning_rate G/(H+l2)`; rows and features subsampled per tree; early stopping on the
//! valid events' loss.

use super::grow::{Criterion, GrowParams, Grower};
use super::hist::{par_blocks, threads, Binned, Pair};
use super::{check_events, Curves, Ensemble, Events, TreeError};
use crate::rng::Rng;

/// What the ensemble minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Binary log loss on 0/1 targets; the ensemble's output goes through the logistic function.
    Logistic,
    /// Squared error; the output is the sum of the trees.
    Squared,
}

#[derive(Debug, Clone)]
pub struct BoostParams {
    pub loss: Loss,
    pub n_trees: usize,
    pub learning_rate: f64,
    pub max_depth: usize,
    /// `usize::MAX`: as many as the depth allows.
    pub max_leaves: usize,
    pub min_child_weight: f64,
    pub l2: f64,
    pub subsample: f64,
    pub colsample: f64,
    pub max_bins: usize,
    /// Trees without a lower valid loss before stopping (needs valid events).
    pub patience: Option<usize>,
    /// 0: all cores.
    pub threads: usize,
    pub seed: u64,
}

struct Newton {
    l2: f64,
    min_child_weight: f64,
    eta: f64,
}

impl Newton {
    fn score(&self, s: Pair) -> f64 {
        s[0] * s[0] / (s[1] + self.l2)
    }
}

impl Criterion for Newton {
    fn allowed(&self, s: Pair) -> bool {
        s[1] >= self.min_child_weight && s[1] > 1e-12
    }
    fn gain(&self, p: Pair, l: Pair, r: Pair) -> f64 {
        0.5 * (self.score(l) + self.score(r) - self.score(p))
    }
    fn value(&self, s: Pair) -> f32 {
        (-self.eta * s[0] / (s[1] + self.l2)) as f32
    }
}

/// Per-row loss, gradient and hessian at margin `m` for target `y`.
#[inline]
fn grad(loss: Loss, m: f64, y: f32) -> (f64, f64, f64) {
    let y = y as f64;
    match loss {
        Loss::Logistic => {
            let p = 1.0 / (1.0 + (-m).exp());
            // log(1 + e^m) - y m, stable on both sides.
            let l = m.max(0.0) + (-m.abs()).exp().ln_1p() - y * m;
            (l, p - y, (p * (1.0 - p)).max(1e-16))
        }
        Loss::Squared => ((m - y) * (m - y) / 2.0, m - y, 1.0),
    }
}

/// Whether margin `m` classifies target `y` right (logistic loss only).
fn correct(loss: Loss, m: f64, y: f32) -> f64 {
    match loss {
        Loss::Logistic => ((m > 0.0) == (y == 1.0)) as u8 as f64,
        Loss::Squared => f64::NAN,
    }
}

/// Weighted mean loss and accuracy at `margins`; with `stats`, each row's weighted gradient
/// and hessian written there. Parallel over rows.
fn pass(
    loss: Loss,
    margins: &[f64],
    ev: &Events,
    mut stats: Option<&mut [[f32; 2]]>,
    threads: usize,
) -> (f64, f64) {
    let n = margins.len();
    let per = n.div_ceil(threads.max(1)).max(1 << 14);
    let work = |lo: usize, out: Option<&mut [[f32; 2]]>| {
        let (mut l, mut c, mut ws) = (0f64, 0f64, 0f64);
        let hi = (lo + per).min(n);
        let mut out = out;
        for i in lo..hi {
            let (li, g, h) = grad(loss, margins[i], ev.y[i]);
            let w = ev.w[i] as f64;
            l += w * li;
            c += w * correct(loss, margins[i], ev.y[i]);
            ws += w;
            if let Some(o) = out.as_deref_mut() {
                o[i - lo] = [(w * g) as f32, (w * h) as f32];
            }
        }
        (l, c, ws)
    };
    let parts: Vec<(f64, f64, f64)> = if n <= per {
        vec![work(0, stats.as_deref_mut())]
    } else {
        std::thread::scope(|s| {
            let work = &work;
            let handles: Vec<_> = match stats {
                Some(st) => st
                    .chunks_mut(per)
                    .enumerate()
                    .map(|(k, o)| s.spawn(move || work(k * per, Some(o))))
                    .collect(),
                None => (0..n.div_ceil(per))
                    .map(|k| s.spawn(move || work(k * per, None)))
                    .collect(),
            };
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or((f64::NAN, f64::NAN, 1.0)))
                .collect()
        })
    };
    let (l, c, w) = parts
        .iter()
        .fold((0.0, 0.0, 0.0), |a, p| (a.0 + p.0, a.1 + p.1, a.2 + p.2));
    (l / w.max(1e-300), c / w.max(1e-300))
}

/// Boosts trees on `train`; with `valid` events, records their loss per tree and stops
/// early when `patience` says so (keeping the trees up to the best). `progress(tree)` after
/// each tree.
pub fn boost(
    train: &Events,
    valid: Option<&Events>,
    p: &BoostParams,
    progress: &mut dyn FnMut(usize),
) -> Result<(Ensemble, Curves), TreeError> {
    check_events(train)?;
    let valid = valid.filter(|v| !v.rows.is_empty());
    if let Some(v) = valid {
        check_events(v)?;
    }
    if p.patience.is_some() && valid.is_none() {
        return Err(TreeError::Params(
            "early stopping (patience) needs valid events".into(),
        ));
    }
    if p.loss == Loss::Logistic {
        if let Some(y) = train.y.iter().find(|&&y| y != 0.0 && y != 1.0) {
            return Err(TreeError::Data(format!(
                "target {y}: the logistic loss takes 0/1 targets"
            )));
        }
    }
    let threads = threads(p.threads);
    let nf = train.n_features;
    let n = train.rows.len();
    let binned = Binned::new(train.x, nf, train.rows, p.max_bins, threads);
    let (wsum, wy) = train
        .w
        .iter()
        .zip(train.y)
        .fold((0f64, 0f64), |(a, b), (&w, &y)| {
            (a + w as f64, b + w as f64 * y as f64)
        });
    let mean = wy / wsum;
    let base = match p.loss {
        Loss::Logistic => {
            let m = mean.clamp(1e-6, 1.0 - 1e-6);
            (m / (1.0 - m)).ln()
        }
        Loss::Squared => mean,
    } as f32;
    let crit = Newton {
        l2: p.l2,
        min_child_weight: p.min_child_weight,
        eta: p.learning_rate,
    };
    let gp = GrowParams {
        max_depth: p.max_depth,
        max_leaves: p.max_leaves,
        per_node: None,
        threads,
    };
    let mut rng = Rng::new(p.seed ^ 0xB005_7ED7);
    let mut grower = Grower::new(nf);
    let mut margins = vec![base as f64; n];
    let mut vmargins = vec![base as f64; valid.map_or(0, |v| v.rows.len())];
    let mut stats = vec![[0f32; 2]; n];
    let mut in_sample = vec![true; n];
    let mut rows: Vec<u32> = Vec::with_capacity(n);
    let mut features: Vec<usize> = (0..nf).collect();
    let n_cols = ((p.colsample * nf as f64).round() as usize).clamp(1, nf);
    let mut ensemble = Ensemble {
        trees: Vec::new(),
        tree_weights: Vec::new(),
        base,
        logistic: p.loss == Loss::Logistic,
    };
    let mut curves = Curves::default();
    let mut best_valid = f64::INFINITY;
    for t in 0..p.n_trees {
        let (tl, ta) = pass(p.loss, &margins, train, Some(&mut stats), threads);
        if t > 0 {
            curves.train_loss.push(tl);
            curves.train_accuracy.push(ta);
        }
        rows.clear();
        if p.subsample < 1.0 {
            for (i, s) in in_sample.iter_mut().enumerate() {
                *s = rng.uniform() < p.subsample;
                if *s {
                    rows.push(i as u32);
                }
            }
        } else {
            rows.extend(0..n as u32);
        }
        if n_cols < nf {
            for i in 0..n_cols {
                let j = i + rng.below(nf - i);
                features.swap(i, j);
            }
        }
        let mut cols = features[..n_cols].to_vec();
        cols.sort_unstable();
        let (grown, leaves) = grower.grow(&binned, &stats, &mut rows, &cols, &crit, &gp, &mut rng);
        // In-sample rows by their leaf ranges, the others routed through the tree.
        for &(node, lo, hi) in &leaves {
            let v = grown.tree.nodes[node].value as f64;
            for &r in &rows[lo..hi] {
                margins[r as usize] += v;
            }
        }
        if p.subsample < 1.0 {
            for (r, _) in in_sample.iter().enumerate().filter(|(_, s)| !**s) {
                margins[r] += grown.tree.nodes[grown.leaf(&binned, r)].value as f64;
            }
        }
        if let Some(v) = valid {
            let mut ev = vec![0f64; vmargins.len()];
            const RUN: usize = 1 << 14;
            par_blocks(&mut ev, RUN, threads, |b0, chunk| {
                let f = v.n_features;
                for (k, e) in chunk.iter_mut().enumerate() {
                    let r = v.rows[b0 * RUN + k];
                    *e = grown.tree.predict(&v.x[r * f..(r + 1) * f]) as f64;
                }
            });
            vmargins.iter_mut().zip(&ev).for_each(|(m, e)| *m += e);
            let (vl, va) = pass(p.loss, &vmargins, v, None, threads);
            curves.valid_loss.push(vl);
            curves.valid_accuracy.push(va);
            if vl < best_valid {
                best_valid = vl;
                curves.best = t;
            }
        } else {
            curves.best = t;
        }
        ensemble.trees.push(grown.tree);
        ensemble.tree_weights.push(1.0);
        progress(t);
        if p.patience.is_some_and(|k| t - curves.best >= k) {
            break;
        }
    }
    let (tl, ta) = pass(p.loss, &margins, train, None, threads);
    curves.train_loss.push(tl);
    curves.train_accuracy.push(ta);
    ensemble.trees.truncate(curves.best + 1);
    ensemble.tree_weights.truncate(curves.best + 1);
    Ok((ensemble, curves))
}
