//! Regression trees and tree ensembles: a weighted CART learner on binned features
//! ([`cart::fit`]), the fitted [`Tree`] (prediction, readable rules, split importance), and
//! [`Ensemble`]: weighted trees plus a base value, optionally through the logistic function,
//! written as an ONNX-ML `TreeEnsembleRegressor` that the native tree engine and ONNX Runtime
//! evaluate to the same numbers as [`Ensemble::predict`].

pub mod cart;
mod onnx;
mod tree;

pub use cart::{fit, CartParams};
pub use onnx::Ensemble;
pub use tree::{Importance, Node, Split, Tree};

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
