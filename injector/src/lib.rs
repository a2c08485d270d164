//! ROOT ntuple I/O, inference engines and the inject pipeline.
pub mod rootio;
