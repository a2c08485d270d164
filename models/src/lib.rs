//! hepml models: data preparation, training and ONNX export.
//!
//! - [`config`]: the YAML configuration of `hepml convert` and `hepml train`, parsed strictly
//!   (unknown keys are errors that name the key) and validated before any work starts.
//! - [`h5`]: HDF5 tables in pandas' `fixed` layout, written streaming (pandas `read_hdf`,
//!   h5py) and read (also files pandas wrote, any numeric or bool column; pandas `table` files
//!   too, numeric columns only).
//! - [`convert`]: ROOT chunks -> expressions -> selection -> weights -> HDF5, one table for all
//!   samples with `label`, `weight`, `sample` and the event number.
//! - [`train`]: DNN / parameterised NN on burn's `flex` CPU backend (`wgpu` with the `gpu`
//!   feature): k-fold ensembles routed by event number, weighted and class-balanced BCE,
//!   standardisation fitted on the training split, early stopping, OneCycle, LR finder, seeded.
//! - [`metrics`]: AUC (ties averaged), ROC and the test summary; the one implementation.
//! - [`plots`]: loss/accuracy, ROC, scores, confusion, inputs, correlations, LR finder, PNN ROC
//!   per parameter value, as PNG with an embedded font.
//! - [`export`]: ONNX per fold with standardisation in the graph and hepml metadata.
//! - [`rng`]: the seeded random number generator.
//! - [`trees`]: weighted CART regression trees (binned, exact thresholds), tree ensembles and
//!   their ONNX export (`TreeEnsembleRegressor`).

pub mod config;
pub mod convert;
pub mod explain;
pub mod export;
pub mod h5;
pub mod metrics;
pub mod plots;
pub mod rng;
pub mod scan;
pub mod train;
pub mod trees;
