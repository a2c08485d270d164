//! The implementation of each `hepml` command; their arguments are in `cli`.

pub mod batch;
pub mod convert;
pub mod demo;
pub mod explain;
pub mod inject;
pub mod inspect;
pub mod scan;
pub mod train;
