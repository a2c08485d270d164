//! hepml's own ROOT file I/O: TFile/TDirectory/TKey, TStreamerInfo, TTree/TBranch/TLeaf
//! metadata through a generic streamer-driven object model, basket decoding, and writing.

pub mod chain;
pub mod compress;
pub mod error;
pub mod rbuf;

pub use compress::{Algorithm, Compression};
pub use error::{Result, RootError};
pub mod file;
pub mod json;
pub mod object;
pub mod read;
pub mod streamers;
pub mod tree;
pub mod write;

pub use chain::{Chain, Chunk};
pub use file::RootFile;
pub use read::{Array, BranchReader, Data};
pub use tree::{Branch, Interp, Prim, Shape, Tree};
