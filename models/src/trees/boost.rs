//! Histogram gradient boosting (second order, as XGBoost's `hist`): per tree, gradients and
//! hessians of the loss at the current margins, one tree grown on them
//! ([`super::grow`], gain `G_L^2/(H_L+l2) + G_R^2/(H_R+l2) - G^2/(H+l2)`, halved), leaves
//! `-learning_rate G/(H+l2)`; rows and features subsampled per tree; early stopping on the
//! valid events' loss.

use super::grow::{Criterion, GrowParams, Grower};
use super::hist::{each, par_blocks, prefetch, threads, Binned, Pair, Workers, AHEAD};
use super::{check_binary, check_events, Curves, Ensemble, Events, TreeError};
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

impl Criterion for Newton {
    fn allowed(&self, s: Pair) -> bool {
        s[1] >= self.min_child_weight && s[1] > 1e-12
    }
    fn score(&self, s: Pair) -> f64 {
        0.5 * s[0] * s[0] / (s[1] + self.l2)
    }
    fn value(&self, s: Pair) -> f32 {
        (-self.eta * s[0] / (s[1] + self.l2)) as f32
    }
}

/// `ln(1 + e)` for `0 <= e <= 1`, within 1e-15 (absolute), without a call to libm (whose
/// `log` was a tenth of boosting's time, once per event and tree). `1 + e = 2^k (1 + s) /
/// (1 - s)` with `k` 0 or 1 and `|s| <= 0.172`, and `ln((1 + s) / (1 - s)) = 2 (s + s^3/3 +
/// s^5/5 + ...)`, here to `s^19`, the polynomial in `s^2` evaluated in Estrin's scheme (short
/// dependency chains).
#[inline(always)]
fn ln_1p_unit(e: f64) -> f64 {
    let big = e > std::f64::consts::SQRT_2 - 1.0;
    // 1 + e = (1 + s) / (1 - s) for k = 0; (1 + e) / 2 = (1 + s) / (1 - s) for k = 1.
    let s = if big {
        (e - 1.0) / (e + 3.0)
    } else {
        e / (e + 2.0)
    };
    let z = s * s;
    let c = |j: i32| 1.0 / (2 * j + 1) as f64;
    let (z2, z4) = (z * z, z * z * z * z);
    let lo = (c(0) + c(1) * z) + (c(2) + c(3) * z) * z2;
    let hi = (c(4) + c(5) * z) + (c(6) + c(7) * z) * z2;
    let poly = lo + hi * z4 + (c(8) + c(9) * z) * (z4 * z4);
    2.0 * s * poly + if big { std::f64::consts::LN_2 } else { 0.0 }
}

/// Rows [`pass`] takes at a time: for the logistic loss their exponentials first (libm, one
/// row after the other), then the rest in a loop without calls or branches, which vectorises.
const RUN: usize = 256;

/// One run's per-row quantities, weighted: loss, correct classification, gradient and
/// hessian.
struct Run {
    e: [f64; RUN],
    loss: [f64; RUN],
    correct: [f64; RUN],
    g: [f32; RUN],
    h: [f32; RUN],
}

impl Run {
    /// Fills the first `m.len()` rows for margins `m`, targets `y` and weights `w`.
    fn fill(&mut self, loss: Loss, m: &[f64], y: &[f32], w: &[f32]) {
        let n = m.len();
        let (y, w) = (&y[..n], &w[..n]);
        match loss {
            Loss::Logistic => {
                self.e[..n]
                    .iter_mut()
                    .zip(m)
                    .for_each(|(e, &m)| *e = (-m.abs()).exp());
                let e = &self.e[..n];
                let (l, c) = (&mut self.loss[..n], &mut self.correct[..n]);
                let (g, h) = (&mut self.g[..n], &mut self.h[..n]);
                for k in 0..n {
                    let (m, e, y, w) = (m[k], e[k], y[k] as f64, w[k] as f64);
                    // p = 1 / (1 + e^-m), and the loss log(1 + e^-m) + (1 - y) m written
                    // stably on both sides.
                    let p = if m >= 0.0 { 1.0 } else { e } / (1.0 + e);
                    let neg = if m < 0.0 { -m } else { 0.0 };
                    let pq = p * (1.0 - p);
                    l[k] = w * (neg + ln_1p_unit(e) + (1.0 - y) * m);
                    c[k] = if (m > 0.0) == (y == 1.0) { w } else { 0.0 };
                    g[k] = (w * (p - y)) as f32;
                    h[k] = (w * if pq > 1e-16 { pq } else { 1e-16 }) as f32;
                }
            }
            Loss::Squared => {
                for k in 0..n {
                    let (d, w) = (m[k] - y[k] as f64, w[k] as f64);
                    self.loss[k] = w * d * d / 2.0;
                    self.correct[k] = f64::NAN;
                    self.g[k] = (w * d) as f32;
                    self.h[k] = w as f32;
                }
            }
        }
    }
}

/// Weighted mean loss and accuracy at `margins`; with `stats`, each row's weighted gradient
/// and hessian written there. Parallel over rows.
fn pass(
    loss: Loss,
    margins: &[f64],
    ev: &Events,
    stats: Option<&mut [[f32; 2]]>,
    threads: usize,
) -> (f64, f64) {
    let n = margins.len();
    let per = n.div_ceil(threads.max(1)).max(1 << 14);
    let work = |lo: usize, out: Option<&mut [[f32; 2]]>| {
        let (mut l, mut c, mut ws) = (0f64, 0f64, 0f64);
        let hi = (lo + per).min(n);
        let mut out = out;
        let mut run = Run {
            e: [0.0; RUN],
            loss: [0.0; RUN],
            correct: [0.0; RUN],
            g: [0.0; RUN],
            h: [0.0; RUN],
        };
        for a in (lo..hi).step_by(RUN) {
            let b = (a + RUN).min(hi);
            run.fill(loss, &margins[a..b], &ev.y[a..b], &ev.w[a..b]);
            for (k, &w) in ev.w[a..b].iter().enumerate() {
                l += run.loss[k];
                c += run.correct[k];
                ws += w as f64;
            }
            if let Some(o) = out.as_deref_mut() {
                for (k, o) in o[a - lo..b - lo].iter_mut().enumerate() {
                    *o = [run.g[k], run.h[k]];
                }
            }
        }
        (l, c, ws)
    };
    type Job<'a> = (usize, Option<&'a mut [[f32; 2]]>, (f64, f64, f64));
    let mut jobs: Vec<Job> = match stats {
        Some(st) => st
            .chunks_mut(per)
            .enumerate()
            .map(|(k, o)| (k * per, Some(o), (0.0, 0.0, 0.0)))
            .collect(),
        None => (0..n.div_ceil(per))
            .map(|k| (k * per, None, (0.0, 0.0, 0.0)))
            .collect(),
    };
    each(threads, &mut jobs, |(lo, out, r)| {
        *r = work(*lo, out.as_deref_mut())
    });
    let parts: Vec<(f64, f64, f64)> = jobs.into_iter().map(|j| j.2).collect();
    let (l, c, w) = parts
        .iter()
        .fold((0.0, 0.0, 0.0), |a, p| (a.0 + p.0, a.1 + p.1, a.2 + p.2));
    (l / w.max(1e-300), c / w.max(1e-300))
}

/// `margins[r] += ` the value of the leaf row `r` is in, for the rows of each leaf's range of
/// `rows`, the leaves spread over the threads. A leaf's rows are spread over the table: their
/// margins are asked for ahead.
fn add_leaves(
    margins: &mut [f64],
    rows: &[u32],
    leaves: &[(usize, usize, usize)],
    tree: &super::tree::Tree,
    threads: usize,
) {
    struct Out(*mut f64);
    // SAFETY: `Out` is only written through in `each` below, at indices checked against the
    // slice's length, and no index twice (see there).
    unsafe impl Sync for Out {}
    unsafe impl Send for Out {}
    let (n, out) = (margins.len(), Out(margins.as_mut_ptr()));
    let out = &out;
    let mut jobs: Vec<(usize, usize, f64)> = leaves
        .iter()
        .map(|&(node, lo, hi)| (lo, hi, tree.nodes[node].value as f64))
        .collect();
    each(threads, &mut jobs, |&mut (lo, hi, v)| {
        for i in lo..hi {
            if let Some(&next) = rows.get(i + AHEAD) {
                prefetch(out.0.wrapping_add(next as usize));
            }
            let r = rows[i] as usize;
            assert!(r < n, "row {r} of {n}");
            // SAFETY: `r < n`, in `margins`, borrowed mutably for this whole function. The
            // leaves' ranges are disjoint and `rows` holds each row once (the grower permutes
            // it), so no two jobs touch the same margin and nothing else reads it meanwhile.
            unsafe { *out.0.add(r) += v };
        }
    });
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
        check_binary(train, "the logistic loss takes")?;
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
    let workers = Workers::new(threads)?;
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
        let (tl, ta) = workers.run(|| pass(p.loss, &margins, train, Some(&mut stats), threads));
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
        let (grown, leaves) =
            workers.run(|| grower.grow(&binned, &stats, &mut rows, &cols, &crit, &gp, &mut rng));
        workers.run(|| add_leaves(&mut margins, &rows, &leaves, &grown.tree, threads));
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
    // The training events' scores from their margins: the trees after the best one (kept
    // for the curves) taken off first.
    let dropped = Ensemble {
        trees: ensemble.trees.split_off(curves.best + 1),
        tree_weights: ensemble.tree_weights.split_off(curves.best + 1),
        base: 0.0,
        logistic: false,
    };
    if !dropped.trees.is_empty() {
        let off = dropped.predict_rows(train.x, train.rows, threads)?;
        margins
            .iter_mut()
            .zip(off)
            .for_each(|(m, o)| *m -= o as f64);
    }
    curves.train_scores = margins
        .iter()
        .map(|&m| match p.loss {
            Loss::Logistic => engine::trees::logistic(m as f32),
            Loss::Squared => m as f32,
        })
        .collect();
    Ok((ensemble, curves))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The polynomial logarithm is libm's to 1e-15 over its whole range, ends included.
    #[test]
    fn ln_1p_unit_is_libms() {
        let worst = (0..=100_000)
            .map(|i| i as f64 / 100_000.0)
            .chain([1e-300, 1e-17, 1e-9, std::f64::consts::SQRT_2 - 1.0])
            .map(|e| (ln_1p_unit(e) - e.ln_1p()).abs())
            .fold(0f64, f64::max);
        assert!(worst < 1e-15, "{worst}");
    }

    /// `n` events of 3 features: signal where x0 > 0 (x0 NaN in 30% of the events, which are
    /// all signal), x1 weakly informative, x2 noise.
    fn events(n: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let mut rng = Rng::new(seed);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let a = rng.normal() as f32;
            let label = (a > 0.0 || rng.uniform() < 0.3) as u8 as f32;
            let x0 = if label == 1.0 && a <= 0.0 {
                f32::NAN
            } else {
                a
            };
            x.extend([x0, rng.normal() as f32 + 0.3 * label, rng.normal() as f32]);
            y.push(label);
        }
        (x, y)
    }

    fn params() -> BoostParams {
        BoostParams {
            loss: Loss::Logistic,
            n_trees: 30,
            learning_rate: 0.3,
            max_depth: 3,
            max_leaves: usize::MAX,
            min_child_weight: 1.0,
            l2: 1.0,
            subsample: 1.0,
            colsample: 1.0,
            max_bins: 64,
            patience: None,
            threads: 2,
            seed: 1,
        }
    }

    /// The curves' training scores (from the margins) are the ensemble's own predictions;
    /// `predict_rows` (packed trees, runs of rows) gives `predict`'s bits.
    fn same_scores(e: &Ensemble, ev: &Events, c: &Curves) {
        let own = e.predict_rows(ev.x, ev.rows, 2).unwrap();
        let f = ev.n_features;
        for (o, &r) in own.iter().zip(ev.rows) {
            assert_eq!(o.to_bits(), e.predict(&ev.x[r * f..(r + 1) * f]).to_bits());
        }
        assert_eq!(c.train_scores.len(), own.len());
        let d = own
            .iter()
            .zip(&c.train_scores)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(d < 1e-5, "{d}");
    }

    #[test]
    fn nan_learns_its_side_and_leaves_are_limited() {
        let (x, y) = events(4000, 1);
        let rows: Vec<usize> = (0..y.len()).collect();
        let w = vec![1.0; y.len()];
        let ev = Events {
            x: &x,
            n_features: 3,
            rows: &rows,
            y: &y,
            w: &w,
        };
        let (e, c) = boost(&ev, None, &params(), &mut |_| {}).unwrap();
        assert_eq!(e.trees.len(), 30);
        // The training scores from the margins are the ensemble's own.
        same_scores(&e, &ev, &c);
        assert_eq!(c.train_loss.len(), 30);
        assert!(c.train_loss[29] < c.train_loss[0]);
        // Missing x0 means signal: NaN must go where x0 > 0 goes.
        assert!(e.predict(&[f32::NAN, 0.0, 0.0]) > 0.9);
        assert!(e.predict(&[-1.0, 0.0, 0.0]) < 0.1);
        // A smooth regression target needs every leaf it is allowed.
        let smooth: Vec<f32> = x.chunks(3).map(|r| r[1] + r[2] * r[2]).collect();
        let reg = Events { y: &smooth, ..ev };
        let p = BoostParams {
            loss: Loss::Squared,
            max_depth: 10,
            max_leaves: 5,
            ..params()
        };
        let (e, _) = boost(&reg, None, &p, &mut |_| {}).unwrap();
        let leaves: Vec<usize> = e.trees.iter().map(|t| t.n_leaves()).collect();
        assert!(leaves.iter().all(|&l| l == 5), "{leaves:?}");
        assert!(e.trees.iter().any(|t| t.depth() > 2));
        // One node per step (best gain first) on one thread or two: the same trees.
        let (one, _) = boost(&reg, None, &BoostParams { threads: 1, ..p }, &mut |_| {}).unwrap();
        assert_eq!(
            one.predict_rows(&x, &rows, 1).unwrap(),
            e.predict_rows(&x, &rows, 1).unwrap()
        );
    }

    #[test]
    fn early_stopping_keeps_the_best_tree_and_threads_do_not_matter() {
        let (x, y) = events(3000, 2);
        let w = vec![1.0; y.len()];
        let (train, valid): (Vec<usize>, Vec<usize>) = (0..y.len()).partition(|r| r % 3 != 0);
        let (ty, vy): (Vec<f32>, Vec<f32>) = (
            train.iter().map(|&r| y[r]).collect(),
            valid.iter().map(|&r| y[r]).collect(),
        );
        let t = Events {
            x: &x,
            n_features: 3,
            rows: &train,
            y: &ty,
            w: &w[..train.len()],
        };
        let v = Events {
            x: &x,
            n_features: 3,
            rows: &valid,
            y: &vy,
            w: &w[..valid.len()],
        };
        let p = BoostParams {
            n_trees: 300,
            learning_rate: 1.0,
            max_depth: 6,
            patience: Some(5),
            ..params()
        };
        let (e, c) = boost(&t, Some(&v), &p, &mut |_| {}).unwrap();
        assert!(c.valid_loss.len() < 300, "no early stop");
        assert_eq!(c.valid_loss.len(), c.best + 6);
        assert_eq!(e.trees.len(), c.best + 1);
        // Trees after the best one are taken off the training scores too.
        same_scores(&e, &t, &c);
        let best = c.valid_loss.iter().copied().fold(f64::INFINITY, f64::min);
        assert_eq!(c.valid_loss[c.best], best);
        let one = BoostParams { threads: 1, ..p };
        assert_eq!(boost(&t, Some(&v), &one, &mut |_| {}).unwrap().0, e);
        assert!(boost(&t, None, &one, &mut |_| {})
            .unwrap_err()
            .to_string()
            .contains("needs valid events"));
    }
}
