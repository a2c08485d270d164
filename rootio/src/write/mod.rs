//! Writing ROOT files: new trees, decorated copies with byte-for-byte baskets, friend trees.

pub mod file;
pub mod tree;

pub use file::{DirId, FileWriter, TOP};
pub use tree::{clone_tree, copy_other_keys, BranchSpec, TreeWriter, AUTO_FLUSH, BASKET_SIZE};
