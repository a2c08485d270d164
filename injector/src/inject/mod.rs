//! The inject pipeline: read ntuples in chunks, build model inputs, score, write branches.
//!
//! [`Plan`] is the entry point (see its module, `plan`); the modules below it:
//! - `jobs`: one [`pipeline::ModelJob`] per model, checked against ports and branches;
//! - `output`: the branches written (score columns and counters);
//! - `write`: the writer loop of one input (decorated copy or friend tree);
//! - `provenance`: the `hepml_provenance` record of an output file;
//! - [`pipeline`]: the scoring loop; [`inputs`]: input tensors; [`spec`]: feature specs;
//! - `features`: the inputs a model gets, read without scoring ([`Plan::read_features`]).

mod error;
mod features;
pub mod inputs;
mod jobs;
mod output;
pub mod pipeline;
mod plan;
mod provenance;
pub mod spec;
mod write;

pub use error::InjectError;
pub use features::{FeatureInput, Features};
pub use plan::{tree_name, Event, Options, Plan, Written};
