//! hepml models (training, ONNX export) — see issue 4.
//!
//! Done so far:
//! - [`config`]: the YAML configuration of `hepml convert` and `hepml train`, parsed strictly
//!   (unknown keys are errors that name the key) and validated before any work starts.
//! - [`h5`]: streaming columnar HDF5 writer/reader (h5py reads it as `f[key][column][:]`).
//!
//! Not yet: the convert pipeline (ROOT chunks -> expressions -> selection -> HDF5), pandas
//! `fixed`/`table` layouts, training on burn `flex`, the ONNX emitter, k-fold/PNN, plots and the
//! benchmark.

pub mod config;
pub mod h5;
