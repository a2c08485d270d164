//! Pure-Rust ROOT file I/O for flat ntuples: read the TTrees of a ROOT file into typed
//! arrays, and write new trees, decorated copies (new branches beside the original baskets,
//! copied byte for byte) and friend trees.
//!
//! Reading goes [`RootFile::open`] → [`RootFile::tree`] → [`Tree::branch`] →
//! [`BranchReader::read`]; several files read as one with [`Chain`]. Writing goes
//! [`write::FileWriter::create`] → [`write::TreeWriter`] (or [`write::clone_tree`] for a
//! decorated copy) → `finish`: the output is written under a temporary name and renamed when
//! complete.
//!
//! What is read: scalar, fixed-size and variable-size (`x[n]`) leaves of every numeric type
//! (with Float16_t/Double32_t), `std::vector<T>` of numbers, `std::string` and `char*`,
//! vectors of strings, of ATLAS ElementLinks and nested vectors (`std::vector<std::string>`,
//! `std::vector<std::vector<T>>`, one offsets level per list: [`Array::outer`]); the
//! members of split objects (scalars, fixed arrays, and jagged arrays for the members of a
//! TClonesArray or a split `std::vector<Class>`), named as uproot names them
//! ([`Tree::branch`]); leaf lists (`x/F:y/F:n/I`) as one column per leaf (`branch.x`);
//! objects written whole (unsplit) as one column per member (`branch.member`), when their
//! members are numbers, fixed arrays, strings and vectors of these; trees
//! from ROOT 3 to 6.40, recovered trees (baskets kept in the TTree object); baskets
//! compressed with zlib, LZMA, LZ4 or ZSTD, on disk or embedded in the TBranch.
//!
//! Refusal is per branch: a tree whose header parses always opens. A branch hepml does not
//! decode (other objects, odd bookkeeping) carries the reason in
//! [`Branch::interp`] and is refused by [`BranchReader::new`] only; the parent branch of a
//! split object, leaf list or unsplit object is a [`Branch::container`]. A decorated copy copies every
//! branch's baskets, decodable or not. A branch holding more entries than its tree's
//! `fEntries` is read up to the tree's entries, as ROOT does. Every basket is checked against
//! its branch's type: a corrupted file gives an error, never a panic or a guessed value.
//!
//! ```
//! use rootio::{BranchReader, Data, RootFile};
//!
//! let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
//!     .join("../../shared/data/root/uproot-HZZ.root");
//! let file = RootFile::open(&path)?;
//! assert_eq!(file.tree_paths()?, ["events"]);
//! let tree = file.tree("events")?;
//! let mut reader = BranchReader::new(&file, &tree, tree.branch("NJet")?)?;
//! let njet = reader.read(0, tree.entries)?;
//! let Data::I32(n) = &njet.data else { panic!("NJet is an int") };
//! assert_eq!(n.len() as u64, tree.entries);
//! # Ok::<(), rootio::RootError>(())
//! ```
#![deny(missing_docs)]

mod baskets;
mod chain;
mod columns;
mod compress;
mod error;
mod file;
mod interp;
mod json;
mod lists;
mod object;
mod rbuf;
mod read;
mod recent;
mod storage;
mod streamers;
mod tree;
pub mod write;

pub use chain::{Chain, Chunk};
pub use compress::{Algorithm, Compression};
pub use error::{Result, RootError};
pub use file::RootFile;
pub use json::write_array_json;
pub use read::{Array, BranchReader, Data, ReaderBuffers};
pub use storage::BranchCompression;
pub use tree::{BasketLoc, BasketSource, Branch, Element, Interp, Leaf, Prim, Shape, Tree};

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod roundtrip;

/// The README's example runs as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
