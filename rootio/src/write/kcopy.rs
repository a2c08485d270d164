//! Byte ranges copied from one file to another by the kernel (`copy_file_range`), without
//! passing through this process: a decorated copy's original baskets go from the input's page
//! cache to the output's, or are shared outright where the file system can (reflinks, NFS
//! server-side copy).

use std::fs::File;
use std::io;

/// Copies `n` bytes at `src_pos` of `src` to `dst_pos` of `dst` in the kernel. `Ok(false)` when
/// the kernel or the file systems cannot (no such call, across file systems, a special file):
/// the caller copies the range itself, all of it (a copy stopped part-way leaves nothing the
/// caller's copy does not overwrite).
#[cfg(target_os = "linux")]
pub(crate) fn copy_range(
    src: &File,
    mut src_pos: u64,
    dst: &File,
    mut dst_pos: u64,
    mut n: usize,
) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    while n > 0 {
        let (Ok(mut off_in), Ok(mut off_out)) = (
            libc::loff_t::try_from(src_pos),
            libc::loff_t::try_from(dst_pos),
        ) else {
            return Ok(false);
        };
        // SAFETY: both descriptors belong to `File`s borrowed for the whole call, the offsets
        // point at locals that outlive it, and 0 is the only defined flag value. The call reads
        // and writes no memory of this process.
        let r = unsafe {
            libc::copy_file_range(
                src.as_raw_fd(),
                &mut off_in,
                dst.as_raw_fd(),
                &mut off_out,
                n,
                0,
            )
        };
        match r {
            // End of the source before `n` bytes: the caller's own read reports it.
            0 => return Ok(false),
            r if r > 0 => {
                let r = r as usize;
                n -= r;
                src_pos += r as u64;
                dst_pos += r as u64;
            }
            _ => {
                let err = io::Error::last_os_error();
                return match err.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(
                        libc::ENOSYS
                        | libc::EXDEV
                        | libc::EINVAL
                        | libc::EOPNOTSUPP
                        | libc::EPERM
                        | libc::EBADF
                        | libc::ETXTBSY
                        | libc::EOVERFLOW,
                    ) => Ok(false),
                    _ => Err(err),
                };
            }
        }
    }
    Ok(true)
}

/// Elsewhere the caller copies every range itself.
#[cfg(not(target_os = "linux"))]
pub(crate) fn copy_range(
    _src: &File,
    _src_pos: u64,
    _dst: &File,
    _dst_pos: u64,
    _n: usize,
) -> io::Result<bool> {
    Ok(false)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::copy_range;
    use std::fs::{File, OpenOptions};

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    /// The range lands at its offset and nothing else changes; a range that runs past the end
    /// of the source is refused (the caller's own read then reports the truncation).
    #[test]
    fn copies_a_range_between_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let src = bytes(3 << 20);
        std::fs::write(&a, &src).unwrap();
        std::fs::write(&b, vec![0xEEu8; 100]).unwrap();
        let (fa, fb) = (
            File::open(&a).unwrap(),
            OpenOptions::new().write(true).open(&b).unwrap(),
        );
        assert!(copy_range(&fa, 12_345, &fb, 40, 2_000_001).unwrap());
        let out = std::fs::read(&b).unwrap();
        assert_eq!(out.len(), 40 + 2_000_001);
        assert!(out[..40].iter().all(|&x| x == 0xEE));
        assert!(out[40..] == src[12_345..12_345 + 2_000_001]);
        assert!(!copy_range(&fa, (3 << 20) - 10, &fb, 0, 11).unwrap());
    }

    /// A destination the call cannot write at an offset (opened to append) is refused, not an
    /// error, and left as it was: the caller copies the range itself.
    #[test]
    fn refuses_what_the_kernel_cannot_copy() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, bytes(1 << 20)).unwrap();
        std::fs::write(&b, b"kept").unwrap();
        let fa = File::open(&a).unwrap();
        let fb = OpenOptions::new().append(true).open(&b).unwrap();
        assert!(!copy_range(&fa, 0, &fb, 0, 1 << 20).unwrap());
        assert_eq!(std::fs::read(&b).unwrap(), b"kept");
    }
}
