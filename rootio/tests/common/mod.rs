//! What the rootio integration tests share.

use std::path::Path;

use rootio::{BasketLoc, BasketSource};

/// Flips one byte at `per_basket` evenly spaced places of each of `baskets`' payload (after
/// its key header), one copy of the file at `path` per flip, and reads each copy with
/// `read`. Returns how many copies were read and how many gave an error; a panic fails the
/// caller's test.
pub fn flip_in_baskets(
    path: &Path,
    baskets: &[BasketLoc],
    per_basket: usize,
    read: impl Fn(&Path) -> rootio::Result<()>,
) -> (usize, usize) {
    let orig = std::fs::read(path).unwrap();
    let bad_path = path.with_extension("bad.root");
    let (mut cases, mut errors) = (0, 0);
    for loc in baskets {
        let BasketSource::Disk { seek, nbytes } = loc.source else {
            panic!("ROOT keeps its baskets on disk");
        };
        let (seek, nbytes) = (seek as usize, nbytes as usize);
        let keylen = u16::from_be_bytes([orig[seek + 14], orig[seek + 15]]) as usize;
        for k in 0..per_basket {
            let at = seek + keylen + (nbytes - keylen) * k / per_basket;
            let mut bad = orig.clone();
            bad[at] ^= 0x5a;
            std::fs::write(&bad_path, &bad).unwrap();
            cases += 1;
            errors += usize::from(read(&bad_path).is_err());
        }
    }
    (cases, errors)
}
