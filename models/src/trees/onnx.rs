//! Tree ensembles and their ONNX form (written by `engine::onnx_build::TreeEnsemble`).

use super::hist::{self, par_blocks};
use super::{Tree, TreeError};
use engine::onnx_build::{TreeEnsemble, TreeNode};

/// Weighted regression trees: `base + sum_t weight_t * tree_t(x)`, summed in f32 in tree
/// order (as the ONNX evaluators do), then the logistic function where `logistic`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Ensemble {
    pub trees: Vec<Tree>,
    /// Per tree, the factor on its leaf values (a learning rate; 1/n for an average).
    pub tree_weights: Vec<f32>,
    pub base: f32,
    pub logistic: bool,
}

/// A tree node packed for evaluation (16 bytes): `feature` is the feature, with [`NAN_LEFT`]
/// set where NaN goes left. A leaf holds its value in `threshold` and is its own left and
/// right child, so that a row stays on it whatever it reads (its `feature` is 0).
#[derive(Clone, Copy)]
struct FlatNode {
    feature: u32,
    threshold: f32,
    left: u32,
    right: u32,
}

const NAN_LEFT: u32 = 1 << 31;

/// A tree packed for evaluation: its nodes, and the number of steps from the root that
/// reach every leaf (the depth).
struct Flat {
    nodes: Vec<FlatNode>,
    depth: usize,
}

fn flatten(t: &Tree) -> Flat {
    let nodes = t
        .nodes()
        .iter()
        .enumerate()
        .map(|(i, n)| match &n.split {
            Some(s) => FlatNode {
                feature: s.feature as u32 | if s.nan_left { NAN_LEFT } else { 0 },
                threshold: s.threshold,
                left: s.left as u32,
                right: s.right as u32,
            },
            None => FlatNode {
                feature: 0,
                threshold: n.value,
                left: i as u32,
                right: i as u32,
            },
        })
        .collect();
    Flat {
        nodes,
        depth: t.depth(),
    }
}

/// Rows evaluated together by [`Flat::add_to`].
const BLOCK: usize = 64;

impl Flat {
    /// Adds `w` times the value of the leaf each row reaches (as [`Tree::predict`]) to `out`,
    /// for the rows `row(k)`, `k < out.len() <= BLOCK`. The rows take their steps together,
    /// level by level: each row's next node depends only on its own, so the loads of the
    /// block's rows overlap instead of each row waiting for its previous node.
    #[inline]
    fn add_to<'a>(&self, w: f32, out: &mut [f32], row: impl Fn(usize) -> &'a [f32]) {
        let mut at = [0u32; BLOCK];
        let at = &mut at[..out.len()];
        for _ in 0..self.depth {
            for (k, a) in at.iter_mut().enumerate() {
                let n = self.nodes[*a as usize];
                let v = row(k)[(n.feature & !NAN_LEFT) as usize];
                // Without branches: which way a row goes is data, and a mispredicted jump
                // per node and row cost more than the walk itself.
                let left = (v <= n.threshold) | (v.is_nan() & (n.feature & NAN_LEFT != 0));
                *a = [n.right, n.left][left as usize];
            }
        }
        for (o, &a) in out.iter_mut().zip(at.iter()) {
            *o += w * self.nodes[a as usize].threshold;
        }
    }
}

impl Ensemble {
    /// One tree as it is.
    pub fn single(tree: Tree) -> Self {
        Ensemble {
            trees: vec![tree],
            tree_weights: vec![1.0],
            base: 0.0,
            logistic: false,
        }
    }

    /// Columns the trees read; an error unless there is at least one tree, one weight per
    /// tree, and all trees take the same columns.
    pub fn n_features(&self) -> Result<usize, TreeError> {
        let bad = |m: String| Err(TreeError::Onnx(format!("tree ensemble: {m}")));
        let Some(first) = self.trees.first() else {
            return bad("no trees".into());
        };
        if self.tree_weights.len() != self.trees.len() {
            return bad(format!(
                "{} tree weights for {} trees",
                self.tree_weights.len(),
                self.trees.len()
            ));
        }
        let n = first.n_features();
        if let Some(i) = self.trees.iter().position(|t| t.n_features() != n) {
            return bad(format!(
                "tree {i} takes {} features, tree 0 {n}",
                self.trees[i].n_features()
            ));
        }
        Ok(n)
    }

    /// The value for one row (at least the trees' `n_features` values).
    pub fn predict(&self, row: &[f32]) -> f32 {
        let mut sum = 0f32;
        for (t, &w) in self.trees.iter().zip(&self.tree_weights) {
            sum += w * t.predict(row);
        }
        sum += self.base;
        if self.logistic {
            engine::trees::logistic(sum)
        } else {
            sum
        }
    }

    /// Values for the rows of `x` (row-major, `n_features` columns).
    pub fn predict_batch(&self, x: &[f32]) -> Result<Vec<f32>, TreeError> {
        let n = self.n_features()?;
        if !x.len().is_multiple_of(n) {
            return Err(TreeError::Data(format!(
                "{} values are not rows of {n} features",
                x.len()
            )));
        }
        let rows: Vec<usize> = (0..x.len() / n).collect();
        self.predict_rows(x, &rows, 1)
    }

    /// Values for rows `rows` of `x` (row-major, `n_features` columns), spread over
    /// `threads` threads (0: all cores) in contiguous runs of rows.
    pub fn predict_rows(
        &self,
        x: &[f32],
        rows: &[usize],
        threads: usize,
    ) -> Result<Vec<f32>, TreeError> {
        let n = self.n_features()?;
        if let Some(r) = rows.iter().find(|&&r| (r + 1) * n > x.len()) {
            return Err(TreeError::Data(format!(
                "row {r} of a table of {} rows",
                x.len() / n
            )));
        }
        let flat: Vec<Flat> = self.trees.iter().map(flatten).collect();
        let mut out = vec![0f32; rows.len()];
        // Rows in blocks of BLOCK, tree by tree: a tree's nodes stay in cache for the block.
        // Each row's sum takes the trees in order, as `predict` does: the same bits.
        const RUN: usize = 1 << 12;
        par_blocks(&mut out, RUN, hist::threads(threads), |b0, chunk| {
            for (c, block) in chunk.chunks_mut(BLOCK).enumerate() {
                let first = b0 * RUN + c * BLOCK;
                block.fill(0.0);
                let row = |k: usize| {
                    let r = rows[first + k];
                    &x[r * n..(r + 1) * n]
                };
                for (t, &w) in flat.iter().zip(&self.tree_weights) {
                    t.add_to(w, block, row);
                }
                for o in block.iter_mut() {
                    *o += self.base;
                    if self.logistic {
                        *o = engine::trees::logistic(*o);
                    }
                }
            }
        });
        Ok(out)
    }

    /// The ONNX model: `input` [N, n_features] float -> `output` [N, 1] float, with
    /// `metadata` as its `metadata_props`.
    pub fn to_onnx(
        &self,
        input: &str,
        output: &str,
        metadata: &[(String, String)],
    ) -> Result<Vec<u8>, TreeError> {
        let n_features = self.n_features()?;
        let trees = self
            .trees
            .iter()
            .zip(&self.tree_weights)
            .map(|(t, &w)| {
                t.nodes()
                    .iter()
                    .map(|n| match &n.split {
                        Some(s) => TreeNode::Branch {
                            feature: s.feature,
                            threshold: s.threshold,
                            nan_yes: s.nan_left,
                            yes: s.left,
                            no: s.right,
                        },
                        None => TreeNode::Leaf(w * n.value),
                    })
                    .collect()
            })
            .collect();
        Ok(TreeEnsemble {
            input: input.into(),
            output: output.into(),
            n_features,
            trees,
            base: self.base,
            logistic: self.logistic,
            metadata: metadata.to_vec(),
        }
        .to_bytes()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trees::{fit, CartParams};

    fn tree(n_features: usize) -> Tree {
        let x: Vec<f32> = (0..8 * n_features).map(|i| i as f32).collect();
        let y: Vec<f32> = (0..8).map(|i| (i % 3) as f32).collect();
        fit(&x, n_features, &y, None, &CartParams::default()).unwrap()
    }

    #[test]
    fn ensembles_that_cannot_be_written_are_refused() {
        let err = |e: &Ensemble| e.to_onnx("x", "y", &[]).unwrap_err().to_string();
        let mut e = Ensemble::single(tree(2));
        e.trees.clear();
        assert_eq!(err(&e), "tree ensemble: no trees");
        let mut e = Ensemble::single(tree(2));
        e.tree_weights.push(0.5);
        assert_eq!(err(&e), "tree ensemble: 2 tree weights for 1 trees");
        let mut e = Ensemble::single(tree(2));
        e.trees.push(tree(3));
        e.tree_weights.push(1.0);
        assert_eq!(err(&e), "tree ensemble: tree 1 takes 3 features, tree 0 2");
        assert!(Ensemble::single(tree(2)).predict_batch(&[1.0; 3]).is_err());
    }

    #[test]
    fn predict_sums_weighted_trees_in_order_then_base_then_logistic() {
        let (a, b) = (tree(2), tree(2));
        let row = [3.0, 4.0];
        let mut e = Ensemble {
            trees: vec![a.clone(), b.clone()],
            tree_weights: vec![0.5, 0.25],
            base: -1.0,
            logistic: false,
        };
        let margin = 0.5 * a.predict(&row) + 0.25 * b.predict(&row) + -1.0;
        assert_eq!(e.predict(&row), margin);
        e.logistic = true;
        // The engine's (ONNX Runtime's) rounding of the logistic function.
        assert_eq!(e.predict(&row), engine::trees::logistic(margin));
        assert!((e.predict(&row) - 1.0 / (1.0 + (-margin).exp())).abs() < 1e-6);
    }
}
