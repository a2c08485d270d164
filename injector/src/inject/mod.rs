//! The inject pipeline: read ntuples in chunks, build model inputs, score, write branches.

pub mod inputs;
pub mod pipeline;
pub mod spec;
