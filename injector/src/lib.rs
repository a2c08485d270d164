//! ROOT ntuple I/O and the inject pipeline (the inference engines are the `engine` crate).
pub mod expr;
pub mod inject;
