//! Writing ROOT files: new trees, decorated copies with byte-for-byte baskets, friend trees.

pub mod file;
pub mod tree;

pub use file::FileWriter;
pub use tree::{clone_tree, copy_other_keys, BranchSpec, TreeWriter};
