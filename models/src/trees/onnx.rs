//! Tree ensembles and their ONNX form (written by `engine::onnx_build::TreeEnsemble`).

use super::{Tree, TreeError};
use engine::onnx_build::{TreeEnsemble, TreeNode};

/// Weighted regression trees: `base + sum_t weight_t * tree_t(x)`, summed in f32 in tree
/// order (as the ONNX evaluators do), then the logistic function where `logistic`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ensemble {
    pub trees: Vec<Tree>,
    /// Per tree, the factor on its leaf values (a learning rate; 1/n for an average).
    pub tree_weights: Vec<f32>,
    pub base: f32,
    pub logistic: bool,
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
        Ok(x.chunks_exact(n).map(|r| self.predict(r)).collect())
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
