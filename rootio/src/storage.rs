//! How baskets are stored: the compression algorithm of an on-disk basket (from the header of
//! its first compressed block) and a branch's compression as `hepml inspect` reports it.

use crate::compress::{block_algorithm, Algorithm, Compression};
use crate::error::{Result, RootError};
use crate::file::{KeyHeader, RootFile};
use crate::rbuf::RBuf;
use crate::tree::{BasketLoc, BasketSource, Branch};

/// How many on-disk baskets [`RootFile::branch_compression`] looks at for a compressed one.
const LOOK_AT: usize = 4;

/// A branch's compression: its setting and what its baskets actually hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BranchCompression {
    /// The branch's setting (`fCompress`); `None` when it is not a valid setting.
    pub setting: Option<Compression>,
    /// The algorithm of the first compressed basket among the first few on disk, with the
    /// setting's level; `None` when none of them is compressed (ROOT stores a basket raw when
    /// compression does not shrink it).
    pub stored: Option<Compression>,
    /// Every basket is embedded in the TBranch record (never compressed on its own).
    pub all_embedded: bool,
}

impl std::fmt::Display for BranchCompression {
    /// `zstd-5`, `zlib-1 (stored uncompressed)`, `lz4-4 (embedded, uncompressed)` or `none`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.stored, self.setting) {
            (Some(s), _) => write!(f, "{s}"),
            (None, Some(s)) if self.all_embedded => write!(f, "{s} (embedded, uncompressed)"),
            (None, Some(s)) if s.algorithm != Algorithm::None => {
                write!(f, "{s} (stored uncompressed)")
            }
            _ => write!(f, "none"),
        }
    }
}

impl RootFile {
    /// The algorithm that compressed a basket, from the header of its first block; `None` for
    /// a basket stored uncompressed or embedded in its TBranch.
    pub fn basket_algorithm(&self, loc: &BasketLoc) -> Result<Option<Algorithm>> {
        let BasketSource::Disk { seek, nbytes } = loc.source else {
            return Ok(None);
        };
        let mut raw = Vec::new();
        self.read_at(seek, nbytes as usize, &mut raw)?;
        let kh = KeyHeader::read(&mut RBuf::new(&raw, 0))?;
        let body = raw.get(kh.keylen as usize..).ok_or_else(|| {
            RootError::malformed(format!("basket at {seek}: key longer than the basket"))
        })?;
        if body.len() == kh.objlen as usize {
            return Ok(None);
        }
        block_algorithm(body).map(Some).ok_or_else(|| {
            RootError::malformed(format!(
                "basket at {seek}: compressed block of unknown algorithm"
            ))
        })
    }

    /// The compression of a branch as stored (looking at its first few on-disk baskets).
    pub fn branch_compression(&self, branch: &Branch) -> Result<BranchCompression> {
        let setting = Compression::from_setting(branch.compress.max(0)).ok();
        let mut stored = None;
        let disk = branch
            .baskets
            .iter()
            .filter(|l| matches!(l.source, BasketSource::Disk { .. }));
        for loc in disk.take(LOOK_AT) {
            if let Some(algorithm) = self.basket_algorithm(loc)? {
                let level = setting.map_or(0, |s| s.level);
                stored = Some(Compression { algorithm, level });
                break;
            }
        }
        Ok(BranchCompression {
            setting,
            stored,
            all_embedded: branch
                .baskets
                .iter()
                .all(|l| matches!(l.source, BasketSource::Embedded(_))),
        })
    }
}
