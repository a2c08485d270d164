//! Random forests: classification trees (Gini or entropy impurity on the signal fraction),
//! each on a bootstrap sample (drawn multiplicities times the event weights) with
//! `max_features` features drawn at every split, averaged. Trees are grown in parallel, one
//! per thread, each from its own seed: the forest does not depend on the thread count.

use super::grow::{Criterion, GrowParams, Grower};
use super::hist::{threads, Binned, Pair};
use super::{check_binary, check_events, Curves, Ensemble, Events, TreeError};
use crate::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impurity {
    Gini,
    Entropy,
}

#[derive(Debug, Clone)]
pub struct ForestParams {
    pub n_trees: usize,
    pub max_depth: usize,
    /// Features drawn at each split.
    pub max_features: usize,
    pub impurity: Impurity,
    pub bootstrap: bool,
    pub max_bins: usize,
    /// 0: all cores.
    pub threads: usize,
    pub seed: u64,
}

/// Pairs are (signal weight, weight).
impl Criterion for Impurity {
    fn allowed(&self, s: Pair) -> bool {
        s[1] > 0.0
    }
    fn score(&self, s: Pair) -> f64 {
        -self.weighted(s)
    }
    fn value(&self, s: Pair) -> f32 {
        if s[1] > 0.0 {
            (s[0] / s[1]) as f32
        } else {
            0.0
        }
    }
    fn pure(&self, s: Pair) -> bool {
        s[0] <= 0.0 || s[0] >= s[1]
    }
}

impl Impurity {
    /// The node's weight times its impurity.
    fn weighted(self, s: Pair) -> f64 {
        let (w1, w) = (s[0].max(0.0), s[1]);
        let w0 = (w - w1).max(0.0);
        if w <= 0.0 {
            return 0.0;
        }
        match self {
            Impurity::Gini => 2.0 * w1 * w0 / w,
            Impurity::Entropy => {
                let h = |a: f64| if a > 0.0 { -a * (a / w).log2() } else { 0.0 };
                h(w1) + h(w0)
            }
        }
    }
}

/// Grows the forest on `train` (0/1 targets); with `valid` events, records the log loss of
/// the average so far after each tree. `progress(trees_done)` as trees finish.
pub fn forest(
    train: &Events,
    valid: Option<&Events>,
    p: &ForestParams,
    progress: &mut dyn FnMut(usize),
) -> Result<(Ensemble, Curves), TreeError> {
    check_events(train)?;
    check_binary(train, "a forest's trees take")?;
    let threads = threads(p.threads);
    let nf = train.n_features;
    let n = train.rows.len();
    let binned = Binned::new(train.x, nf, train.rows, p.max_bins, threads);
    let gp = GrowParams {
        max_depth: p.max_depth,
        max_leaves: usize::MAX,
        per_node: Some(p.max_features.clamp(1, nf)),
        threads: 1,
    };
    let features: Vec<usize> = (0..nf).collect();
    let grow_one = |t: usize, grower: &mut Grower| {
        let mut rng = Rng::new(p.seed ^ (t as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut count = vec![0u32; n];
        if p.bootstrap {
            for _ in 0..n {
                count[rng.below(n)] += 1;
            }
        } else {
            count.fill(1);
        }
        let stats: Vec<[f32; 2]> = count
            .iter()
            .zip(train.w.iter().zip(train.y))
            .map(|(&c, (&w, &y))| {
                let cw = c as f32 * w;
                [cw * y, cw]
            })
            .collect();
        let mut rows: Vec<u32> = (0..n as u32).filter(|&r| count[r as usize] > 0).collect();
        grower
            .grow(
                &binned,
                &stats,
                &mut rows,
                &features,
                &p.impurity,
                &gp,
                &mut rng,
            )
            .0
            .tree
    };
    let mut trees = Vec::with_capacity(p.n_trees);
    let mut growers: Vec<Grower> = (0..threads).map(|_| Grower::new(nf)).collect();
    let mut curves = Curves::default();
    let vn = valid.map_or(0, |v| v.rows.len());
    let mut vsum = vec![0f64; vn];
    while trees.len() < p.n_trees {
        let first = trees.len();
        let batch = threads.min(p.n_trees - first);
        let grown: Vec<_> = if batch == 1 {
            vec![grow_one(first, &mut growers[0])]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = growers
                    .iter_mut()
                    .take(batch)
                    .enumerate()
                    .map(|(k, g)| {
                        let grow_one = &grow_one;
                        s.spawn(move || grow_one(first + k, g))
                    })
                    .collect();
                handles.into_iter().map(|h| h.join()).collect::<Vec<_>>()
            })
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(|_| TreeError::Data("a forest thread panicked".into()))?
        };
        for t in grown {
            if let Some(v) = valid {
                let f = v.n_features;
                for (k, &r) in v.rows.iter().enumerate() {
                    vsum[k] += t.predict(&v.x[r * f..(r + 1) * f]) as f64;
                }
                let m = (trees.len() + 1) as f64;
                let (mut l, mut c, mut ws) = (0f64, 0f64, 0f64);
                for (k, s) in vsum.iter().enumerate() {
                    let (prob, y, w) = (
                        (s / m).clamp(1e-7, 1.0 - 1e-7),
                        v.y[k] as f64,
                        v.w[k] as f64,
                    );
                    l -= w * (y * prob.ln() + (1.0 - y) * (1.0 - prob).ln());
                    c += w * (((prob > 0.5) == (y == 1.0)) as u8 as f64);
                    ws += w;
                }
                curves.valid_loss.push(l / ws.max(1e-300));
                curves.valid_accuracy.push(c / ws.max(1e-300));
            }
            trees.push(t);
            progress(trees.len() - 1);
        }
    }
    curves.best = trees.len() - 1;
    let k = trees.len();
    Ok((
        Ensemble {
            trees,
            tree_weights: vec![1.0 / k as f32; k],
            base: 0.0,
            logistic: false,
        },
        curves,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trees::mdi;

    #[test]
    fn forest_is_the_same_on_any_thread_count_and_ranks_features() {
        // y = 1 where 2 x0 + x1 > 0: x0 matters most, x1 less, x2 not at all.
        let mut rng = Rng::new(3);
        let n = 3000;
        let x: Vec<f32> = (0..3 * n).map(|_| rng.normal() as f32).collect();
        let y: Vec<f32> = x
            .chunks(3)
            .map(|r| (2.0 * r[0] + r[1] > 0.0) as u8 as f32)
            .collect();
        let rows: Vec<usize> = (0..n).collect();
        let w = vec![1.0; n];
        let ev = Events {
            x: &x,
            n_features: 3,
            rows: &rows,
            y: &y,
            w: &w,
        };
        let p = |threads| ForestParams {
            n_trees: 12,
            max_depth: 6,
            max_features: 2,
            impurity: Impurity::Entropy,
            bootstrap: true,
            max_bins: 254,
            threads,
            seed: 9,
        };
        let (a, _) = forest(&ev, None, &p(1), &mut |_| {}).unwrap();
        let (b, _) = forest(&ev, None, &p(3), &mut |_| {}).unwrap();
        assert_eq!(a, b);
        assert!(a.tree_weights.iter().all(|&w| w == 1.0 / 12.0));
        let m = mdi(&a.trees, 3);
        assert!((m.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(m[0] > m[1] && m[1] > m[2], "{m:?}");
        // Leaves hold signal fractions: the scores are probabilities.
        let s = a.predict_batch(&x).unwrap();
        assert!(s.iter().all(|&v| (0.0..=1.0).contains(&v)));
        let bad = Events {
            y: &[2.0; 3000],
            ..ev
        };
        assert!(forest(&bad, None, &p(1), &mut |_| {}).is_err());
    }
}
