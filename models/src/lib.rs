//! hepml models (training, ONNX export) — see issue 4.
//!
//! So far: the YAML configuration of `hepml convert` and `hepml train` ([`config`]), parsed
//! strictly (unknown keys are errors that name the key) and validated before any work starts.

pub mod config;
pub mod h5;
