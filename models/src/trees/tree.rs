//! A fitted regression tree: evaluation (`x <= threshold`, NaN to the recorded side), the
//! readable rules, and the split importance.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

/// An inner node's test: rows with `x[feature] <= threshold` go to `left`, the others to
/// `right`; NaN goes to `left` where `nan_left`, else to `right`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Split {
    pub feature: usize,
    /// A value the feature took in the training data (a bin edge).
    pub threshold: f32,
    pub nan_left: bool,
    pub left: usize,
    pub right: usize,
    /// What the split lowered, by the learner's criterion: the weighted squared error
    /// (`W_L W_R / W (mean_L - mean_R)^2`) for CART, the second-order loss for boosting, the
    /// weighted Gini or entropy impurity for a forest.
    pub gain: f64,
}

/// A node with the training rows that reached it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// `None` for a leaf.
    pub split: Option<Split>,
    /// The weighted mean target of the node's training rows (the prediction at a leaf).
    pub value: f32,
    /// Training rows (events) in the node.
    pub count: usize,
    /// Their total weight.
    pub weight: f64,
}

/// A regression tree; node 0 is the root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub(super) n_features: usize,
    pub(super) nodes: Vec<Node>,
}

/// Per feature: the summed [`Split::gain`] of its splits and how many splits use it.
#[derive(Debug, Clone, PartialEq)]
pub struct Importance {
    pub gain: Vec<f64>,
    pub splits: Vec<usize>,
}

/// Mean decrease in impurity per feature as scikit-learn reports it: each tree's split gains
/// per feature normalised to sum 1 (trees without a split count zero), averaged over the
/// trees, normalised again.
pub fn mdi<'a>(trees: impl IntoIterator<Item = &'a Tree>, n_features: usize) -> Vec<f64> {
    let mut sum = vec![0f64; n_features];
    for t in trees {
        let g = t.split_importance().gain;
        let total: f64 = g.iter().sum();
        if total > 0.0 {
            for (s, v) in sum.iter_mut().zip(&g) {
                *s += v / total;
            }
        }
    }
    let total: f64 = sum.iter().sum();
    if total > 0.0 {
        sum.iter_mut().for_each(|v| *v /= total);
    }
    sum
}

impl Tree {
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    pub fn n_leaves(&self) -> usize {
        self.nodes.iter().filter(|n| n.split.is_none()).count()
    }

    /// Splits on the longest path from the root to a leaf (0 for a single leaf).
    pub fn depth(&self) -> usize {
        let mut depth = 0;
        let mut stack = vec![(0usize, 0usize)];
        while let Some((i, d)) = stack.pop() {
            depth = depth.max(d);
            if let Some(s) = &self.nodes[i].split {
                stack.push((s.left, d + 1));
                stack.push((s.right, d + 1));
            }
        }
        depth
    }

    /// The index of the leaf `row` (at least `n_features` values) reaches.
    pub fn leaf(&self, row: &[f32]) -> usize {
        let mut i = 0;
        while let Some(s) = &self.nodes[i].split {
            let v = row[s.feature];
            let left = if v.is_nan() {
                s.nan_left
            } else {
                v <= s.threshold
            };
            i = if left { s.left } else { s.right };
        }
        i
    }

    pub fn predict(&self, row: &[f32]) -> f32 {
        self.nodes[self.leaf(row)].value
    }

    /// Predictions for the rows of `x` (row-major, `n_features` columns).
    pub fn predict_batch(&self, x: &[f32]) -> Vec<f32> {
        assert!(
            x.len().is_multiple_of(self.n_features),
            "x must hold rows of {} features",
            self.n_features
        );
        x.chunks_exact(self.n_features)
            .map(|r| self.predict(r))
            .collect()
    }

    /// The tree as indented if/else text, e.g.
    ///
    /// ```text
    /// if m_jj <= 412.5:
    ///     -> 0.25 (1200 events, weight 310.2)
    /// else:
    ///     ...
    /// ```
    ///
    /// "or missing" marks the splits that send NaN to the `if` side (elsewhere NaN takes the
    /// `else` side). Thresholds and leaf values print exactly (shortest round-trip form).
    /// Features without a name in `feature_names` are written `x[i]`.
    pub fn rules(&self, feature_names: &[&str]) -> String {
        let mut out = String::new();
        self.write_rules(0, 0, feature_names, &mut out);
        out
    }

    fn write_rules(&self, i: usize, depth: usize, names: &[&str], out: &mut String) {
        let pad = "    ".repeat(depth);
        let n = &self.nodes[i];
        match &n.split {
            None => {
                // Writing to a String cannot fail.
                let _ = writeln!(
                    out,
                    "{pad}-> {} ({} events, weight {})",
                    n.value,
                    n.count,
                    short(n.weight)
                );
            }
            Some(s) => {
                let name = names
                    .get(s.feature)
                    .map_or_else(|| format!("x[{}]", s.feature), |n| n.to_string());
                let missing = if s.nan_left { " or missing" } else { "" };
                let _ = writeln!(out, "{pad}if {name} <= {}{missing}:", s.threshold);
                self.write_rules(s.left, depth + 1, names, out);
                let _ = writeln!(out, "{pad}else:");
                self.write_rules(s.right, depth + 1, names, out);
            }
        }
    }

    pub fn split_importance(&self) -> Importance {
        let mut imp = Importance {
            gain: vec![0.0; self.n_features],
            splits: vec![0; self.n_features],
        };
        for s in self.nodes.iter().filter_map(|n| n.split.as_ref()) {
            imp.gain[s.feature] += s.gain;
            imp.splits[s.feature] += 1;
        }
        imp
    }
}

/// Six significant digits, without trailing zeros.
fn short(x: f64) -> String {
    let s = format!(
        "{:.*}",
        (5 - x.abs().log10().floor().clamp(-10.0, 5.0) as i32) as usize,
        x
    );
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}
