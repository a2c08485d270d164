//! ROOT's compressed-block framing: each block has a 9-byte header (algorithm tag, method byte,
//! 3-byte little-endian compressed and uncompressed sizes; LZ4 adds an 8-byte XXH64 checksum of
//! the compressed bytes), and buffers over 2^24-1 bytes are split into several blocks.

use super::error::{Result, RootError};
use std::io::{Read, Write};

const BLOCK_MAX: usize = 0xFF_FFFF;
const HEADER: usize = 9;

/// Compression algorithm, numbered as in `ROOT::RCompressionSetting::EAlgorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Stored uncompressed.
    None,
    /// zlib (deflate).
    Zlib,
    /// LZMA (xz).
    Lzma,
    /// LZ4 with an xxhash64 checksum per block.
    Lz4,
    /// Zstandard.
    Zstd,
}

/// A ROOT compression setting: `algorithm * 100 + level` (ROOT's `fCompress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Its level (1-9 as in ROOT; 0 with `None`).
    pub level: u32,
}

impl Compression {
    /// ROOT's compiled-in default: zlib level 1 (setting 101).
    pub const DEFAULT: Compression = Compression {
        algorithm: Algorithm::Zlib,
        level: 1,
    };
    /// No compression.
    pub const NONE: Compression = Compression {
        algorithm: Algorithm::None,
        level: 0,
    };

    /// Decodes a `fCompress` value. Settings below 100 are the historical zlib levels.
    pub fn from_setting(setting: i32) -> Result<Self> {
        if setting < 0 {
            return Err(RootError::malformed(format!(
                "compression setting {setting}"
            )));
        }
        let (algo, level) = (setting / 100, (setting % 100) as u32);
        let algorithm = match (algo, level) {
            (_, 0) => Algorithm::None,
            (0 | 1, _) => Algorithm::Zlib,
            (2, _) => Algorithm::Lzma,
            (3, _) => Algorithm::Zlib, // kOldCompressionAlgo: ROOT writes zlib-framed data
            (4, _) => Algorithm::Lz4,
            (5, _) => Algorithm::Zstd,
            _ => {
                return Err(RootError::unsupported(format!(
                    "compression setting {setting} (algorithm {algo})"
                )))
            }
        };
        Ok(Compression {
            algorithm,
            level: if algorithm == Algorithm::None {
                0
            } else {
                level
            },
        })
    }

    /// As ROOT's setting number: `100 * algorithm + level` (`505` is zstd-5, 0 is none).
    pub fn setting(&self) -> i32 {
        let algo = match self.algorithm {
            Algorithm::None => return 0,
            Algorithm::Zlib => 1,
            Algorithm::Lzma => 2,
            Algorithm::Lz4 => 4,
            Algorithm::Zstd => 5,
        };
        algo * 100 + self.level as i32
    }

    /// Parses `zlib`, `zlib-4`, `lz4`, `zstd-5`, `lzma-9`, `none`, or a number like `505`.
    pub fn parse(s: &str) -> Result<Self> {
        if let Ok(n) = s.parse::<i32>() {
            return Self::from_setting(n);
        }
        let (name, level) = match s.split_once(['-', ':']) {
            Some((n, l)) => (
                n,
                Some(l.parse::<u32>().map_err(|_| {
                    RootError::unsupported(format!("compression level '{l}' in '{s}'"))
                })?),
            ),
            None => (s, None),
        };
        let (algorithm, default) = match name.to_ascii_lowercase().as_str() {
            "none" | "uncompressed" => return Ok(Compression::NONE),
            "zlib" => (Algorithm::Zlib, 1),
            "lzma" => (Algorithm::Lzma, 8),
            "lz4" => (Algorithm::Lz4, 4),
            "zstd" => (Algorithm::Zstd, 5),
            _ => {
                return Err(RootError::unsupported(format!(
                    "compression '{s}' (use none, zlib, lzma, lz4, zstd, optionally with -LEVEL)"
                )))
            }
        };
        let level = level.unwrap_or(default);
        if !(1..=9).contains(&level) {
            return Err(RootError::unsupported(format!(
                "compression level {level} in '{s}' (1..9)"
            )));
        }
        Ok(Compression { algorithm, level })
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.algorithm {
            Algorithm::None => write!(f, "none"),
            Algorithm::Zlib => write!(f, "zlib-{}", self.level),
            Algorithm::Lzma => write!(f, "lzma-{}", self.level),
            Algorithm::Lz4 => write!(f, "lz4-{}", self.level),
            Algorithm::Zstd => write!(f, "zstd-{}", self.level),
        }
    }
}

fn le3(b: &[u8]) -> usize {
    b[0] as usize | (b[1] as usize) << 8 | (b[2] as usize) << 16
}

/// The algorithm of the first block of a compressed buffer (for `inspect`).
pub(crate) fn block_algorithm(src: &[u8]) -> Option<Algorithm> {
    match src.get(..2)? {
        b"ZL" => Some(Algorithm::Zlib),
        b"XZ" => Some(Algorithm::Lzma),
        b"L4" => Some(Algorithm::Lz4),
        b"ZS" => Some(Algorithm::Zstd),
        _ => None,
    }
}

thread_local! {
    /// One inflater per thread: its state is allocated once, not once per basket.
    static INFLATER: std::cell::RefCell<libdeflater::Decompressor> =
        std::cell::RefCell::new(libdeflater::Decompressor::new());
}

thread_local! {
    /// One zlib compressor per thread, kept while the level stays the same.
    static DEFLATER: std::cell::RefCell<Option<(i32, libdeflater::Compressor)>> =
        const { std::cell::RefCell::new(None) };
}

/// Decompresses a key or basket payload into `out` (which ends up `objlen` long). When the
/// stored size equals the object length the payload was stored uncompressed and is copied.
pub(crate) fn decompress_into(src: &[u8], objlen: usize, out: &mut Vec<u8>) -> Result<()> {
    if src.len() == objlen {
        out.clear();
        out.extend_from_slice(src);
        return Ok(());
    }
    // Each block decodes into out[at..at + ulen]. A reused buffer keeps its old bytes, and only
    // growth is zero-filled: the blocks must fill the object exactly, so every byte is
    // written before the call returns Ok. A corrupted object length cannot turn into a huge
    // allocation: the buffer grows block by block (a block is at most 16 MiB).
    let mut at = 0;
    let mut pos = 0;
    while pos < src.len() {
        let h = src
            .get(pos..pos + HEADER)
            .ok_or_else(|| RootError::Decompress {
                algo: "ROOT",
                msg: format!("block header truncated at byte {pos} of {}", src.len()),
            })?;
        let (clen, ulen) = (le3(&h[3..6]), le3(&h[6..9]));
        let body_start = pos + HEADER;
        let body = src
            .get(body_start..body_start + clen)
            .ok_or_else(|| RootError::Decompress {
                algo: "ROOT",
                msg: format!(
                    "block of {clen} compressed bytes at {pos} runs past the {}-byte payload",
                    src.len()
                ),
            })?;
        if at + ulen > objlen {
            return Err(RootError::Decompress {
                algo: "ROOT",
                msg: format!("blocks decompress to more than the object length {objlen}"),
            });
        }
        if out.len() < at + ulen {
            out.resize(at + ulen, 0);
        }
        let dst = &mut out[at..at + ulen];
        match &h[..2] {
            b"ZL" => {
                // libdeflate inflates a whole block into a buffer of its known size, about a
                // third faster than a streaming inflater; it fails unless the stream ends
                // exactly there with a good Adler-32.
                let n = INFLATER
                    .with_borrow_mut(|d| d.zlib_decompress(body, dst))
                    .map_err(|e| dec_err("zlib", e))?;
                if n != ulen {
                    return Err(size_err("zlib", n, ulen));
                }
            }
            b"XZ" => {
                liblzma::read::XzDecoder::new(body)
                    .read_exact(dst)
                    .map_err(|e| dec_err("lzma", e))?;
            }
            b"ZS" => {
                let n =
                    zstd::bulk::decompress_to_buffer(body, dst).map_err(|e| dec_err("zstd", e))?;
                if n != ulen {
                    return Err(size_err("zstd", n, ulen));
                }
            }
            b"L4" => {
                if body.len() < 8 {
                    return Err(RootError::Decompress {
                        algo: "lz4",
                        msg: "block shorter than its checksum".into(),
                    });
                }
                let (sum, data) = body.split_at(8);
                let want = u64::from_be_bytes(sum.try_into().expect("8 bytes"));
                let got = xxhash_rust::xxh64::xxh64(data, 0);
                if want != got {
                    return Err(RootError::Decompress {
                        algo: "lz4",
                        msg: format!("checksum mismatch (stored {want:#x}, computed {got:#x})"),
                    });
                }
                let n =
                    lz4_flex::block::decompress_into(data, dst).map_err(|e| dec_err("lz4", e))?;
                if n != ulen {
                    return Err(size_err("lz4", n, ulen));
                }
            }
            b"CS" => {
                return Err(RootError::unsupported(
                    "the pre-2000 'CS' compression algorithm".to_string(),
                ))
            }
            other => {
                return Err(RootError::Decompress {
                    algo: "ROOT",
                    msg: format!(
                        "unknown block algorithm tag {:?}",
                        String::from_utf8_lossy(other)
                    ),
                })
            }
        }
        at += ulen;
        pos = body_start + clen;
    }
    if at != objlen {
        return Err(size_err("payload", at, objlen));
    }
    out.truncate(objlen);
    Ok(())
}

pub(crate) fn decompress(src: &[u8], objlen: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    decompress_into(src, objlen, &mut out)?;
    Ok(out)
}

fn dec_err(algo: &'static str, e: impl std::fmt::Display) -> RootError {
    RootError::Decompress {
        algo,
        msg: e.to_string(),
    }
}
fn size_err(algo: &'static str, got: usize, want: usize) -> RootError {
    RootError::Decompress {
        algo,
        msg: format!("decompressed to {got} bytes, header says {want}"),
    }
}

/// Compresses `src` into ROOT blocks. Returns `None` when compression is off or would not
/// shrink the data — ROOT then stores the bytes as they are (stored size == object length).
pub(crate) fn compress(src: &[u8], c: Compression) -> Result<Option<Vec<u8>>> {
    if c.algorithm == Algorithm::None || c.level == 0 || src.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(src.len() / 2 + 64);
    for block in src.chunks(BLOCK_MAX) {
        let hdr_at = out.len();
        let (tag, method): (&[u8; 2], u8) = match c.algorithm {
            Algorithm::Zlib => (b"ZL", 8),
            Algorithm::Lzma => (b"XZ", 0),
            Algorithm::Lz4 => (b"L4", 1),
            Algorithm::Zstd => (b"ZS", 1),
            Algorithm::None => unreachable!("handled above"),
        };
        out.extend_from_slice(tag);
        out.push(method);
        out.extend_from_slice(&[0; 6]);
        let body_at = out.len();
        match c.algorithm {
            Algorithm::Zlib => {
                // libdeflate compresses a whole block at once, at ROOT's levels 1-9, about
                // twice as fast as a streaming zlib at the same size (and at level 1 with
                // dynamic Huffman codes, as zlib's level 1 that ROOT uses: a level-1 "quick"
                // deflate with static codes leaves big-endian floats larger than they were).
                let n = DEFLATER.with_borrow_mut(|d| {
                    let level = c.level.clamp(1, 9) as i32;
                    if d.as_ref().map(|(l, _)| *l) != Some(level) {
                        let lvl = libdeflater::CompressionLvl::new(level)
                            .map_err(|e| dec_err("zlib", format!("{e:?}")))?;
                        *d = Some((level, libdeflater::Compressor::new(lvl)));
                    }
                    let (_, d) = d.as_mut().expect("set above");
                    out.resize(body_at + d.zlib_compress_bound(block.len()), 0);
                    d.zlib_compress(block, &mut out[body_at..])
                        .map_err(|e| dec_err("zlib", e))
                })?;
                out.truncate(body_at + n);
            }
            Algorithm::Lzma => {
                let mut e = liblzma::write::XzEncoder::new(&mut out, c.level.min(9));
                e.write_all(block).map_err(|e| dec_err("lzma", e))?;
                e.finish().map_err(|e| dec_err("lzma", e))?;
            }
            Algorithm::Zstd => {
                let z =
                    zstd::bulk::compress(block, c.level as i32).map_err(|e| dec_err("zstd", e))?;
                out.extend_from_slice(&z);
            }
            Algorithm::Lz4 => {
                let z = lz4_flex::block::compress(block);
                out.extend_from_slice(&xxhash_rust::xxh64::xxh64(&z, 0).to_be_bytes());
                out.extend_from_slice(&z);
            }
            Algorithm::None => unreachable!("handled above"),
        }
        let clen = out.len() - body_at;
        if clen >= block.len() || clen > BLOCK_MAX {
            return Ok(None);
        }
        out[hdr_at + 3..hdr_at + 6].copy_from_slice(&(clen as u32).to_le_bytes()[..3]);
        out[hdr_at + 6..hdr_at + 9].copy_from_slice(&(block.len() as u32).to_le_bytes()[..3]);
    }
    if out.len() >= src.len() {
        return Ok(None);
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_algorithm_and_multi_block() {
        let mut src = Vec::new();
        for i in 0..(BLOCK_MAX + 5000) as u32 {
            src.push((i % 251) as u8 ^ (i / 7000) as u8);
        }
        for s in ["zlib-1", "zlib-9", "lzma-1", "lz4", "zstd-5"] {
            let c = Compression::parse(s).unwrap();
            let z = compress(&src, c).unwrap().expect("compressible");
            assert!(z.len() < src.len());
            assert_eq!(decompress(&z, src.len()).unwrap(), src, "{s}");
            // A reused buffer, longer or shorter and full of old bytes, ends up exactly `src`.
            for old in [src.len() + 100, 10] {
                let mut buf = vec![0xAB; old];
                decompress_into(&z, src.len(), &mut buf).unwrap();
                assert!(buf == src, "{s} reused {old}");
            }
        }
    }

    #[test]
    fn corrupted_blocks_are_errors() {
        let src: Vec<u8> = (0..10_000u32).map(|i| (i % 13) as u8).collect();
        for s in ["zlib", "lzma", "lz4", "zstd"] {
            let z = compress(&src, Compression::parse(s).unwrap())
                .unwrap()
                .unwrap();
            for cut in [3, 9, z.len() / 2] {
                assert!(decompress(&z[..cut], src.len()).is_err(), "{s} cut {cut}");
            }
            let mut bad = z.clone();
            let mid = bad.len() / 2;
            bad[mid] ^= 0x55;
            // A flipped byte must never yield the original length of silently wrong data for
            // lz4 (checksum); for others, either an error or different bytes.
            if let Ok(d) = decompress(&bad, src.len()) {
                assert_ne!(s, "lz4");
                assert_ne!(d, src, "{s}");
            }
        }
    }

    #[test]
    fn settings() {
        assert_eq!(
            Compression::from_setting(101).unwrap(),
            Compression::DEFAULT
        );
        assert_eq!(Compression::from_setting(1).unwrap().to_string(), "zlib-1");
        assert_eq!(
            Compression::from_setting(505).unwrap().to_string(),
            "zstd-5"
        );
        assert_eq!(Compression::parse("lz4-4").unwrap().setting(), 404);
        assert!(Compression::parse("gzip").is_err());
    }
}
