//! Writing ROOT files: new trees ([`TreeWriter`]), decorated copies whose original baskets are
//! copied byte for byte ([`clone_tree`]), and friend trees (a [`TreeWriter`] holding only the
//! new branches). TTree/TBranch/TLeaf objects are copies of the ones ROOT 6.40 wrote in the
//! template file, with their fields set; the TTree is serialised through the streamer-driven
//! object model like any other object.

mod branch;
mod clone;
pub mod file;
mod kcopy;
pub(crate) mod template;
mod writer;

#[cfg(test)]
mod shared_streamers;

pub use branch::BranchSpec;
pub use clone::{clone_tree, copy_other_keys};
pub use file::{DirId, FileWriter, TOP};
pub use template::{AUTO_FLUSH, BASKET_SIZE};
pub use writer::TreeWriter;
