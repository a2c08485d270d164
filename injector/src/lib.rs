//! ROOT ntuple I/O, inference engines and the inject pipeline.
pub mod engine;
pub mod expr;
pub mod inject;
