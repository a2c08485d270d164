//! Native evaluation of ONNX-ML tree ensembles (`TreeEnsembleClassifier` /
//! `TreeEnsembleRegressor`, as skl2onnx and onnxmltools export sklearn/xgboost/lightgbm BDTs):
//! tract rejects binary classifiers with `base_values` and runs trees ~150x slower.
//!
//! The numbers follow ONNX Runtime's CPU kernels (the reference the tests compare against):
//! node modes `BRANCH_LEQ/LT/GTE/GT/EQ/NEQ` and `LEAF`, missing-value tracks (NaN goes to the
//! true branch where `nodes_missing_value_tracks_true` is set), leaf weights summed in f32 in
//! tree order, `base_values`, `aggregate_function` SUM or AVERAGE, post-transforms NONE,
//! LOGISTIC, SOFTMAX, SOFTMAX_ZERO, PROBIT, and ONNX Runtime's rules for binary classifiers that
//! train one score column (sklearn's GradientBoostingClassifier and RandomForestClassifier):
//! `[1 - p, p]` for all-positive weights, `[-s, s]` or `[σ(-s), σ(s)]` otherwise.
//!
//! After the trees a graph may hold what skl2onnx adds: `Identity`, `Cast` of the label or the
//! scores, and `ZipMap` (its output is returned as the `[N, classes]` probability matrix, columns
//! in class-label order, under the ZipMap output's name); and a `Sigmoid` of a regressor's
//! scores (hepml's logistic tree ensembles: ONNX Runtime ignores a one-target regressor's own
//! LOGISTIC post-transform). Anything else is an error naming the node or attribute, never a
//! guessed value.
//!
//! One deliberate difference: a two-class classifier with weights for both classes gets label
//! `classlabels[1]` or `classlabels[0]`; ONNX Runtime returns the literal 1 or 0 there, which is
//! the same only for labels {0, 1}.

mod eval;
mod layout;
mod load;

pub use eval::logistic;

use super::{Engine, EngineError, Model, ModelInfo, Tensor};
use crate::parts;
use layout::{Flat, Levelled};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
    Leaf,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Post {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
    Probit,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    mode: Mode,
    missing_yes: bool,
    feature: u32,
    value: f32,
    yes: u32,
    no: u32,
    /// Range into `weights` (leaves).
    w0: u32,
    w1: u32,
}

/// What a graph output carries.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Out {
    Label,
    Scores,
    /// The scores through the logistic function (a `Sigmoid` node after a regressor).
    Logistic,
}

#[derive(Debug, Clone)]
enum Kind {
    Regressor {
        average: bool,
    },
    Classifier {
        labels: Vec<i64>,
        /// Two classes, one class id used: ONNX Runtime's "binary case".
        binary: bool,
        all_positive: bool,
    },
}

pub struct TreeEngine {
    pub info: ModelInfo,
    op: String,
    input: String,
    /// Columns the trees read (the input must have at least as many).
    width: usize,
    nodes: Vec<Node>,
    roots: Vec<u32>,
    /// The same trees laid out level by level, when they are shallow.
    levelled: Option<Levelled>,
    /// The levelled trees packed for a branch-free walk, when the ensemble allows it.
    flat: Option<Flat>,
    /// The one class/target every leaf weight goes to, if so (sklearn's binary GBC): the sum
    /// then stays in a register.
    single_target: Option<u32>,
    weights: Vec<(u32, f32)>,
    base: Vec<f32>,
    post: Post,
    /// Score columns.
    n_out: usize,
    kind: Kind,
    outputs: Vec<(String, Out)>,
    /// Batches of at least 2 x `SPLIT_MIN` rows are split across this many threads.
    pub threads: usize,
}

const SPLIT_MIN: usize = 4096;
/// Trees up to this depth get the level-by-level layout.
const MAX_LEVELS: usize = 8;
/// Trees walked together in the level-by-level layout.
const LANES: usize = 8;

const TREE_OPS: [&str; 2] = ["TreeEnsembleClassifier", "TreeEnsembleRegressor"];

/// Whether the model's graph is a tree ensemble (possibly followed by what skl2onnx adds): the
/// models [`super::open`] routes to the native evaluator.
pub fn is_tree_model(model: &Model) -> bool {
    model
        .graph()
        .node
        .iter()
        .any(|n| TREE_OPS.contains(&n.op_type.as_str()) || n.op_type == "TreeEnsemble")
}

impl TreeEngine {
    /// How many split nodes test each input column (the ensemble's split-count importance;
    /// ONNX stores no gains).
    pub fn split_counts(&self) -> Vec<u32> {
        let mut c = vec![0u32; self.width];
        for n in self.nodes.iter().filter(|n| n.mode != Mode::Leaf) {
            if let Some(v) = c.get_mut(n.feature as usize) {
                *v += 1;
            }
        }
        c
    }

    /// Values per event of output `i` (graph order): 1 for the label, the score columns for
    /// the scores; `None` past the end.
    pub fn output_width(&self, i: usize) -> Option<usize> {
        self.outputs.get(i).map(|(_, o)| match o {
            Out::Label => 1,
            Out::Scores | Out::Logistic => self.n_out,
        })
    }

    /// The allocation-free path for per-event calls: `x` holds `batch` rows of the input
    /// (`x.len() / batch` columns, at least the ones the trees read); output `output` goes to
    /// `out` (`batch * output_width(output)` values). Same numbers as [`Engine::run`].
    pub fn run_into(
        &self,
        x: &[f32],
        batch: usize,
        output: usize,
        out: &mut [f32],
    ) -> Result<(), EngineError> {
        const STACK: usize = 16;
        let bad = |msg: String| EngineError::Input {
            path: self.path(),
            input: self.input.clone(),
            msg,
        };
        let width = self
            .output_width(output)
            .ok_or_else(|| bad(format!("no output {output}")))?;
        let cols = x.len().checked_div(batch).unwrap_or(self.width);
        if cols < self.width || cols * batch != x.len() {
            return Err(bad(format!(
                "{} values for {batch} events: the trees read {} columns",
                x.len(),
                self.width
            )));
        }
        if out.len() != batch * width {
            return Err(bad(format!(
                "room for {} output values, {} needed",
                out.len(),
                batch * width
            )));
        }
        let kind = self.outputs[output].1;
        let label_out = kind == Out::Label;
        if self.n_out > STACK {
            let mut scores = vec![0f32; batch * self.n_out];
            let mut labels = vec![0f32; batch];
            self.eval_rows(x, cols, &mut scores, &mut labels);
            out.copy_from_slice(if label_out { &labels } else { &scores });
        } else {
            let (mut acc, mut has, mut scores) = ([0f32; STACK], [false; STACK], [0f32; STACK]);
            let n = self.n_out;
            for (r, row) in x.chunks_exact(cols).enumerate() {
                let label = self.eval_row(row, &mut acc[..n], &mut has[..n], &mut scores[..n]);
                if label_out {
                    out[r] = label;
                } else {
                    out[r * n..(r + 1) * n].copy_from_slice(&scores[..n]);
                }
            }
        }
        if kind == Out::Logistic {
            out.iter_mut().for_each(|v| *v = eval::logistic(*v));
        }
        Ok(())
    }
}

impl Engine for TreeEngine {
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, EngineError> {
        let ordered = self.info.check_inputs(inputs)?;
        let x = ordered[0];
        let (rows, cols) = (x.shape[0], x.shape[1]);
        if cols < self.width {
            return Err(EngineError::Input {
                path: self.path(),
                input: self.input.clone(),
                msg: format!("shape {:?}, the trees read {} columns", x.shape, self.width),
            });
        }
        let mut scores = vec![0f32; rows * self.n_out];
        let mut labels = vec![0f32; rows];
        let runs = parts::ranges(rows, self.threads, SPLIT_MIN);
        let items: Vec<_> = runs
            .iter()
            .zip(parts::cut(&mut scores, self.n_out, &runs))
            .zip(parts::cut(&mut labels, 1, &runs))
            .map(|((r, sc), lb)| (&x.data[r.start * cols..r.end * cols], sc, lb))
            .collect();
        parts::map_all(items, |(xs, sc, lb)| self.eval_rows(xs, cols, sc, lb));
        Ok(self
            .outputs
            .iter()
            .map(|(name, o)| match o {
                Out::Label => Tensor::new(name.clone(), vec![rows], labels.clone()),
                Out::Scores => Tensor::new(name.clone(), vec![rows, self.n_out], scores.clone()),
                Out::Logistic => Tensor::new(
                    name.clone(),
                    vec![rows, self.n_out],
                    scores.iter().map(|&s| eval::logistic(s)).collect(),
                ),
            })
            .collect())
    }

    fn describe(&self) -> String {
        format!(
            "native trees ({}, {} trees, {} {}{}) on {} (xxh64 {})",
            self.op,
            self.roots.len(),
            self.n_out,
            if matches!(self.kind, Kind::Classifier { .. }) {
                "classes"
            } else {
                "targets"
            },
            match &self.flat {
                Some(f) => format!(", packed depth {}", f.depth),
                None => String::new(),
            },
            self.info.path.display(),
            self.info.hash
        )
    }

    fn info(&self) -> &ModelInfo {
        &self.info
    }
}
