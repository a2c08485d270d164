//! Weighted CART regression trees (squared error) on binned features (the bins of
//! [`super::hist`]; the explain surrogate's learner). Splits are found from per-node histograms
//! of weight, weight x target and count (f64 sums); NaN rows are tried on both sides and the
//! side is recorded (the heavier child where the node had none).
//!
//! Ties go to the first candidate: lowest feature, lowest threshold, NaN right before NaN
//! left. The fit is deterministic.

use super::hist::{bin, feature_edges, HIST, MAX_BINS, NAN_BIN};
use super::tree::{Node, Split, Tree};
use super::TreeError;

#[derive(Debug, Clone, PartialEq)]
pub struct CartParams {
    /// Splits on the longest root-to-leaf path.
    pub max_depth: usize,
    /// Training rows each child must keep.
    pub min_samples_leaf: usize,
    /// Weight each child must keep (children always keep a positive weight).
    pub min_weight_leaf: f64,
    /// Bin edges (candidate thresholds) per feature, 2 to [`MAX_BINS`].
    pub max_bins: usize,
}

impl Default for CartParams {
    fn default() -> Self {
        CartParams {
            max_depth: 6,
            min_samples_leaf: 1,
            min_weight_leaf: 0.0,
            max_bins: MAX_BINS,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    w: f64,
    wy: f64,
    n: usize,
}

impl Stats {
    fn add(self, o: Stats) -> Stats {
        Stats {
            w: self.w + o.w,
            wy: self.wy + o.wy,
            n: self.n + o.n,
        }
    }
    fn sub(self, o: Stats) -> Stats {
        Stats {
            w: self.w - o.w,
            wy: self.wy - o.wy,
            n: self.n - o.n,
        }
    }
}

struct Best {
    feature: usize,
    bin: u8,
    nan_left: bool,
    gain: f64,
}

struct Fitter<'a> {
    n_features: usize,
    bins: Vec<u8>,
    edges: Vec<Vec<f32>>,
    y: &'a [f32],
    w: Vec<f64>,
    wy: Vec<f64>,
    params: &'a CartParams,
    hist: Vec<Stats>,
}

/// Fits a regression tree to `y` on the rows of `x` (row-major, `n_features` columns; NaN is
/// missing, infinities are values), with optional event weights (finite, >= 0, some > 0).
pub fn fit(
    x: &[f32],
    n_features: usize,
    y: &[f32],
    w: Option<&[f32]>,
    params: &CartParams,
) -> Result<Tree, TreeError> {
    let data = |m: String| Err(TreeError::Data(m));
    if !(2..=MAX_BINS).contains(&params.max_bins) {
        return Err(TreeError::Params(format!(
            "max_bins {} outside 2..={MAX_BINS}",
            params.max_bins
        )));
    }
    if params.min_samples_leaf == 0 {
        return Err(TreeError::Params(
            "min_samples_leaf must be at least 1".into(),
        ));
    }
    if !(params.min_weight_leaf >= 0.0 && params.min_weight_leaf.is_finite()) {
        return Err(TreeError::Params(format!(
            "min_weight_leaf {} is not a finite number >= 0",
            params.min_weight_leaf
        )));
    }
    if n_features == 0 {
        return data("no features".into());
    }
    let n = y.len();
    if n == 0 {
        return data("no rows".into());
    }
    if x.len() != n * n_features {
        return data(format!(
            "{} feature values for {n} rows of {n_features} features",
            x.len()
        ));
    }
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        return data(format!("target of row {i} is {}", y[i]));
    }
    let w: Vec<f64> = match w {
        None => vec![1.0; n],
        Some(w) if w.len() != n => return data(format!("{} weights for {n} rows", w.len())),
        Some(w) => {
            if let Some(i) = w.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
                return data(format!(
                    "weight of row {i} is {}: trees take finite weights >= 0",
                    w[i]
                ));
            }
            w.iter().map(|&v| v as f64).collect()
        }
    };
    if w.iter().sum::<f64>() <= 0.0 {
        return data("all weights are zero".into());
    }

    let edges: Vec<Vec<f32>> = (0..n_features)
        .map(|f| feature_edges(n, params.max_bins, |r| x[r * n_features + f]))
        .collect();
    let bins = x
        .chunks_exact(n_features)
        .flat_map(|row| row.iter().zip(&edges).map(|(&v, e)| bin(e, v)))
        .collect();
    let wy = w.iter().zip(y).map(|(&w, &y)| w * y as f64).collect();
    let mut fitter = Fitter {
        n_features,
        bins,
        edges,
        y,
        w,
        wy,
        params,
        hist: vec![Stats::default(); n_features * HIST],
    };
    Ok(fitter.grow())
}

impl Fitter<'_> {
    fn stats(&self, rows: &[u32]) -> Stats {
        rows.iter().fold(Stats::default(), |s, &r| {
            s.add(Stats {
                w: self.w[r as usize],
                wy: self.wy[r as usize],
                n: 1,
            })
        })
    }

    fn grow(&mut self) -> Tree {
        let n = self.y.len();
        let mut rows: Vec<u32> = (0..n as u32).collect();
        let mut scratch = vec![0u32; n];
        let mut nodes: Vec<Node> = Vec::new();
        // (node index, row range, depth)
        let mut stack = vec![(0usize, 0usize, n, 0usize)];
        let root = self.stats(&rows);
        nodes.push(leaf(root));
        while let Some((id, lo, hi, depth)) = stack.pop() {
            let total = self.stats(&rows[lo..hi]);
            let Some(best) = self.best_split(&rows[lo..hi], total, depth) else {
                continue;
            };
            // Stable partition of the node's rows.
            let f = best.feature;
            let goes_left = |r: u32| {
                let b = self.bins[r as usize * self.n_features + f];
                if b == NAN_BIN {
                    best.nan_left
                } else {
                    b <= best.bin
                }
            };
            let (mut l, mut r) = (lo, hi);
            for &row in &rows[lo..hi] {
                if goes_left(row) {
                    scratch[l] = row;
                    l += 1;
                } else {
                    r -= 1;
                    scratch[r] = row;
                }
            }
            rows[lo..l].copy_from_slice(&scratch[lo..l]);
            // The right rows went in back to front.
            for (k, i) in (l..hi).enumerate() {
                rows[i] = scratch[hi - 1 - k];
            }
            let (left, right) = (nodes.len(), nodes.len() + 1);
            nodes.push(leaf(self.stats(&rows[lo..l])));
            nodes.push(leaf(self.stats(&rows[l..hi])));
            nodes[id].split = Some(Split {
                feature: f,
                threshold: self.edges[f][best.bin as usize],
                nan_left: best.nan_left,
                left,
                right,
                gain: best.gain,
            });
            stack.push((right, l, hi, depth + 1));
            stack.push((left, lo, l, depth + 1));
        }
        Tree {
            n_features: self.n_features,
            nodes,
        }
    }

    /// The best split of a node's rows, `None` where it must stay a leaf or no split gains.
    fn best_split(&mut self, rows: &[u32], total: Stats, depth: usize) -> Option<Best> {
        let p = self.params;
        if depth >= p.max_depth
            || total.n < 2 * p.min_samples_leaf
            || total.w < 2.0 * p.min_weight_leaf
        {
            return None;
        }
        let y0 = self.y[rows[0] as usize];
        if rows.iter().all(|&r| self.y[r as usize] == y0) {
            return None;
        }
        let nf = self.n_features;
        self.hist.iter_mut().for_each(|h| *h = Stats::default());
        for &r in rows {
            let r = r as usize;
            let (w, wy) = (self.w[r], self.wy[r]);
            for (f, &b) in self.bins[r * nf..(r + 1) * nf].iter().enumerate() {
                let h = &mut self.hist[f * HIST + b as usize];
                h.w += w;
                h.wy += wy;
                h.n += 1;
            }
        }
        let ok = |s: Stats| s.n >= p.min_samples_leaf && s.w > 0.0 && s.w >= p.min_weight_leaf;
        let mut best: Option<Best> = None;
        for f in 0..nf {
            let hist = &self.hist[f * HIST..(f + 1) * HIST];
            let nan = hist[NAN_BIN as usize];
            let values = total.sub(nan);
            let mut left = Stats::default();
            for (b, h) in hist[..self.edges[f].len()].iter().enumerate() {
                left = left.add(*h);
                let right = values.sub(left);
                for nan_left in [false, true] {
                    if nan_left && nan.n == 0 {
                        continue;
                    }
                    let (l, r) = if nan_left {
                        (left.add(nan), right)
                    } else {
                        (left, right.add(nan))
                    };
                    if !ok(l) || !ok(r) {
                        continue;
                    }
                    let d = l.wy / l.w - r.wy / r.w;
                    let gain = l.w * r.w / total.w * d * d;
                    if gain > best.as_ref().map_or(0.0, |b| b.gain) {
                        // Without NaN rows here, NaN follows the heavier child.
                        let nan_left = if nan.n == 0 { l.w >= r.w } else { nan_left };
                        best = Some(Best {
                            feature: f,
                            bin: b as u8,
                            nan_left,
                            gain,
                        });
                    }
                }
            }
        }
        best
    }
}

fn leaf(s: Stats) -> Node {
    Node {
        split: None,
        value: (s.wy / s.w) as f32,
        count: s.n,
        weight: s.w,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn params(max_depth: usize) -> CartParams {
        CartParams {
            max_depth,
            ..Default::default()
        }
    }

    #[test]
    fn step_in_one_feature_is_recovered_exactly() {
        // y = 1 where x0 > 0.3, else -2; x0 on a grid of 201 values (one bin each), x1 noise.
        let mut rng = Rng::new(1);
        let n = 2000;
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let (a, b) = (rng.below(201) as f32 / 200.0, rng.uniform() as f32);
            x.extend([a, b]);
            y.push(if a > 0.3 { 1.0 } else { -2.0 });
        }
        let t = fit(&x, 2, &y, None, &params(4)).unwrap();
        // Pure children stop the growth: one split.
        assert_eq!(t.nodes().len(), 3, "{}", t.rules(&["a", "b"]));
        let s = t.node(0).split.as_ref().unwrap();
        assert_eq!(s.feature, 0);
        // The threshold is the largest x0 <= 0.3 in the data: a real value.
        let below = x
            .chunks(2)
            .map(|r| r[0])
            .filter(|&a| a <= 0.3)
            .fold(f32::MIN, f32::max);
        assert_eq!(s.threshold, below);
        assert_eq!(t.predict_batch(&x), y);
        assert_eq!(t.node(s.left).value, -2.0);
        assert_eq!(t.node(s.right).value, 1.0);
        assert_eq!(t.node(s.left).count + t.node(s.right).count, n);
    }

    #[test]
    fn many_distinct_values_still_partition_exactly() {
        // 100k distinct values, 255 bins: each leaf's value is the weighted mean of exactly
        // the rows `x <= threshold` sends to it.
        let mut rng = Rng::new(2);
        let n = 100_000;
        let x: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
        let y: Vec<f32> = x
            .iter()
            .map(|v| (v * 2.0).sin() + rng.normal() as f32 * 0.1)
            .collect();
        let t = fit(&x, 1, &y, None, &params(6)).unwrap();
        let mut sum = vec![(0f64, 0usize); t.nodes().len()];
        for (r, &v) in x.iter().enumerate() {
            let l = t.leaf(&[v]);
            sum[l].0 += y[r] as f64;
            sum[l].1 += 1;
        }
        for (i, node) in t.nodes().iter().enumerate() {
            if node.split.is_none() {
                assert_eq!(sum[i].1, node.count);
                assert_eq!((sum[i].0 / sum[i].1 as f64) as f32, node.value);
            }
        }
    }

    #[test]
    fn weights_move_the_split() {
        // x = 0,1,2,3 with y = 0,0,1,3: unweighted the best cut is x <= 2 (gain 5.33 vs 4 for
        // x <= 1); a light row at x = 3 makes x <= 1 the better cut (0.99 vs 0.69).
        let x = [0.0, 1.0, 2.0, 3.0];
        let y = [0.0, 0.0, 1.0, 3.0];
        let t = fit(&x, 1, &y, None, &params(1)).unwrap();
        assert_eq!(t.node(0).split.as_ref().unwrap().threshold, 2.0);
        let t = fit(&x, 1, &y, Some(&[1.0, 1.0, 1.0, 0.1]), &params(1)).unwrap();
        assert_eq!(t.node(0).split.as_ref().unwrap().threshold, 1.0);
        let root = t.node(0);
        assert!((root.weight - 3.1).abs() < 1e-6);
        // Zero-weight rows count as events but not in the means.
        let t = fit(&x, 1, &y, Some(&[1.0, 0.0, 1.0, 1.0]), &params(0)).unwrap();
        assert_eq!(t.node(0).count, 4);
        assert_eq!(t.node(0).value, (4.0f64 / 3.0) as f32);
    }

    #[test]
    fn depth_and_min_leaf_are_respected() {
        let mut rng = Rng::new(3);
        let n = 5000;
        let x: Vec<f32> = (0..n * 3).map(|_| rng.uniform() as f32).collect();
        let y: Vec<f32> = x
            .chunks(3)
            .map(|r| r[0] * 3.0 + r[1] * r[2] + 5.0 * r[2].powi(2))
            .collect();
        for depth in [0, 1, 3, 7] {
            for min_leaf in [1, 50, 600] {
                let p = CartParams {
                    max_depth: depth,
                    min_samples_leaf: min_leaf,
                    ..Default::default()
                };
                let t = fit(&x, 3, &y, None, &p).unwrap();
                assert!(t.depth() <= depth);
                assert!(t.n_leaves() <= 1 << depth);
                for node in t.nodes() {
                    assert!(node.count >= min_leaf, "{} < {min_leaf}", node.count);
                }
            }
        }
        let t = fit(&x, 3, &y, None, &params(7)).unwrap();
        assert_eq!(t.depth(), 7);
        // min_weight_leaf: every node keeps the weight asked for.
        let p = CartParams {
            max_depth: 7,
            min_weight_leaf: 400.0,
            ..Default::default()
        };
        let t = fit(&x, 3, &y, None, &p).unwrap();
        assert!(t.nodes().iter().all(|n| n.weight >= 400.0));
        assert!(t.n_leaves() > 4);
    }

    #[test]
    fn nan_goes_to_the_side_it_fits_and_is_recorded() {
        // NaN rows carry y = 5 like the rows with x > 0: they must go right.
        let mut x = vec![];
        let mut y = vec![];
        for i in 0..100 {
            let v = i as f32 - 50.0;
            x.push(v);
            y.push(if v > 0.0 { 5.0 } else { 0.0 });
        }
        for _ in 0..10 {
            x.push(f32::NAN);
            y.push(5.0);
        }
        let t = fit(&x, 1, &y, None, &params(3)).unwrap();
        let s = t.node(0).split.as_ref().unwrap();
        assert!(!s.nan_left);
        assert_eq!(t.predict(&[f32::NAN]), 5.0);
        assert_eq!(t.predict_batch(&x), y);
        assert_eq!(t.node(s.right).count, 59);
        // Mirror: NaN with the low side goes left.
        let y2: Vec<f32> = y
            .iter()
            .enumerate()
            .map(|(i, &v)| if i >= 100 { 0.0 } else { v })
            .collect();
        let t = fit(&x, 1, &y2, None, &params(3)).unwrap();
        let s = t.node(0).split.as_ref().unwrap();
        assert!(s.nan_left);
        assert_eq!(t.predict(&[f32::NAN]), 0.0);
        assert!(
            t.rules(&["v"]).starts_with("if v <= 0 or missing:\n"),
            "{}",
            t.rules(&["v"])
        );
        // NaN only in one class of its own: values vs missing is a split.
        let x3 = [1.0, 1.0, f32::NAN, f32::NAN];
        let t = fit(&x3, 1, &[0.0, 0.0, 1.0, 1.0], None, &params(2)).unwrap();
        assert_eq!(t.predict_batch(&x3), [0.0, 0.0, 1.0, 1.0]);
        // A node without NaN rows sends NaN to its heavier child.
        let t = fit(&[0.0, 1.0, 2.0], 1, &[0.0, 1.0, 1.0], None, &params(1)).unwrap();
        assert_eq!(t.predict(&[f32::NAN]), 1.0);
    }

    #[test]
    fn rules_and_importance() {
        // (pt, m_jj) rows; m_jj separates y best, pt the rest. No NaN in training: NaN
        // follows the heavier child, the left one on equal weights.
        let x = [0.0, 10.0, 1.0, 20.0, 2.0, 10.0, 3.0, 20.0];
        let y = [0.0, 4.0, 1.0, 5.0];
        let t = fit(&x, 2, &y, Some(&[1.0, 1.0, 1.0, 1.5]), &params(2)).unwrap();
        let want = "\
if m_jj <= 10:
    if pt <= 0 or missing:
        -> 0 (1 events, weight 1)
    else:
        -> 1 (1 events, weight 1)
else:
    if pt <= 1:
        -> 4 (1 events, weight 1)
    else:
        -> 5 (1 events, weight 1.5)
";
        assert_eq!(t.rules(&["pt", "m_jj"]), want);
        let imp = t.split_importance();
        assert_eq!(imp.splits, vec![2, 1]);
        // Root: means 0.5 vs 11.5/2.5 = 4.6 -> 2 * 2.5 / 4.5 * 4.1^2; children 1*1/2*1 and
        // 1*1.5/2.5*1.
        assert!((imp.gain[1] - 2.0 * 2.5 / 4.5 * 4.1 * 4.1).abs() < 1e-12);
        assert!((imp.gain[0] - (0.5 + 0.6)).abs() < 1e-12);
        assert_eq!(t.rules(&[]).lines().next(), Some("if x[1] <= 10:"));
    }

    #[test]
    fn bad_input_is_refused() {
        let e = |r: Result<Tree, TreeError>| r.unwrap_err().to_string();
        assert!(e(fit(&[1.0], 1, &[f32::NAN], None, &params(1))).contains("target of row 0"));
        assert!(e(fit(&[1.0, 2.0], 1, &[1.0], None, &params(1))).contains("2 feature values"));
        assert!(e(fit(&[1.0], 1, &[1.0], Some(&[-1.0]), &params(1))).contains(">= 0"));
        assert!(e(fit(&[1.0], 1, &[1.0], Some(&[0.0]), &params(1))).contains("all weights"));
        let p = CartParams {
            max_bins: 300,
            ..Default::default()
        };
        assert!(e(fit(&[1.0], 1, &[1.0], None, &p)).contains("max_bins 300"));
    }
}
