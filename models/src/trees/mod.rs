//! Decision trees and tree ensembles on binned features ([`hist`]):
//! - [`cart::fit`]: a weighted CART regression tree (explain's surrogate);
//! - [`boost::boost`]: histogram gradient boosting (logistic or squared loss);
//! - [`forest::forest`]: a random forest of Gini/entropy classification trees;
//! - the fitted [`Tree`] (prediction, readable rules, split importance, [`mdi`]), and
//!   [`Ensemble`]: weighted trees plus a base value, optionally through the logistic function,
//!   written as an ONNX-ML `TreeEnsembleRegressor` that the native tree engine and ONNX
//!   Runtime evaluate to the same numbers as [`Ensemble::predict`].

pub mod boost;
pub mod cart;
pub mod forest;
mod grow;
mod hist;
mod onnx;
mod tree;

pub use boost::{boost, BoostParams, Loss};
pub use cart::{fit, CartParams};
pub use forest::{forest, ForestParams, Impurity};
pub use hist::MAX_BINS;
pub use onnx::Ensemble;
pub use tree::{mdi, Importance, Node, Split, Tree};

/// The deepest tree a learner grows (a forest "grown until pure" stops here too).
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// Training data that cannot be fitted (lengths, non-finite targets or weights).
    #[error("{0}")]
    Data(String),
    /// Learner parameters out of range.
    #[error("{0}")]
    Params(String),
    /// An ensemble that cannot be written.
    #[error("{0}")]
    Onnx(String),
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
}

/// Training events for an ensemble: rows `rows` of `x` (row-major, `n_features` columns; NaN
/// is missing) with, per entry of `rows`, a target and a weight.
pub struct Events<'a> {
    pub x: &'a [f32],
    pub n_features: usize,
    pub rows: &'a [usize],
    pub y: &'a [f32],
    pub w: &'a [f32],
}

/// Per tree: the training and valid events' weighted loss and accuracy after it (the
/// forest records valid only), and the tree kept last.
#[derive(Debug, Clone, Default)]
pub struct Curves {
    pub train_loss: Vec<f64>,
    pub valid_loss: Vec<f64>,
    pub train_accuracy: Vec<f64>,
    pub valid_accuracy: Vec<f64>,
    pub best: usize,
    /// The kept ensemble's scores of the training events (in `Events::rows` order), where the
    /// learner has them at no cost (boosting's margins); empty otherwise.
    pub train_scores: Vec<f32>,
}

fn check_events(e: &Events) -> Result<(), TreeError> {
    let bad = |m: String| Err(TreeError::Data(m));
    let n = e.rows.len();
    if e.n_features == 0 {
        return bad("no features".into());
    }
    if n == 0 {
        return bad("no training events".into());
    }
    if e.y.len() != n || e.w.len() != n {
        return bad(format!(
            "{} targets and {} weights for {n} events",
            e.y.len(),
            e.w.len()
        ));
    }
    let rows = e.x.len() / e.n_features;
    if let Some(r) = e.rows.iter().find(|&&r| r >= rows) {
        return bad(format!("row {r} of a table of {rows}"));
    }
    if let Some(i) = e.y.iter().position(|v| !v.is_finite()) {
        return bad(format!("target of event {i} is {}", e.y[i]));
    }
    if let Some(i) = e.w.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
        return bad(format!(
            "weight of event {i} is {}: trees take finite weights >= 0",
            e.w[i]
        ));
    }
    if e.w.iter().map(|&w| w as f64).sum::<f64>() <= 0.0 {
        return bad("all weights are zero".into());
    }
    Ok(())
}

/// Refuses targets other than 0 and 1; `who` says what needs them ("the logistic loss takes").
fn check_binary(e: &Events, who: &str) -> Result<(), TreeError> {
    match e.y.iter().find(|&&y| y != 0.0 && y != 1.0) {
        Some(y) => Err(TreeError::Data(format!("target {y}: {who} 0/1 targets"))),
        None => Ok(()),
    }
}
