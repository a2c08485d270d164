//! hepml models (training, ONNX export) — see issue 4.
//!
//! Done so far:
//! - [`config`]: the YAML configuration of `hepml convert` and `hepml train`, parsed strictly
//!   (unknown keys are errors that name the key) and validated before any work starts.
//! - [`h5`]: HDF5 tables in pandas' `fixed` layout, written streaming (pandas `read_hdf`,
//!   h5py) and read (also files pandas wrote, any numeric or bool column).
//! - [`convert`]: ROOT chunks -> expressions -> selection -> weights -> HDF5, one table for all
//!   samples with `label`, `weight`, `sample` and the event number.
//!
//! Not yet here: pandas `table` layout reading, training on burn `flex`, ONNX export of trained
//! models, k-fold/PNN, plots and the training benchmark.

pub mod config;
pub mod convert;
pub mod h5;
