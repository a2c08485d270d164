//! Blosc1 chunks, HDF5 filter 32001: what PyTables (and pandas' `complib='blosc'`,
//! `'blosc:lz4'`, ...) compress HDF5 chunks with.
//!
//! Written from c-blosc 1.21 (`blosc/blosc.c`: `blosc_run_decompression_with_context`,
//! `blosc_d`; `shuffle.c`, `bitshuffle-generic.c`, `blosclz.c`) and its
//! `README_CHUNK_FORMAT.rst`. A chunk is a 16-byte header (version 2, codec format version 1,
//! flags, typesize, then u32 LE nbytes, blocksize, cbytes), then either the data itself
//! (flag 0x2, "memcpyed") or one i32 LE start offset per block (from the chunk's start)
//! followed by the blocks. Each block is a run of streams ("splits"), each an i32 LE
//! compressed size and the codec's bytes, or the raw bytes when that size equals the stream's
//! uncompressed size. The streams fill a block that is then byte- or bit-unshuffled.
//!
//! Every offset and length comes from the chunk and is checked; the output is capped at the
//! header's nbytes, which is itself bounded (see [`MAX_NBYTES`], [`MAX_RATIO`]).

/// The largest chunk accepted: PyTables' chunks are well under this, and a corrupt header
/// must not make us allocate gigabytes.
const MAX_NBYTES: usize = 256 << 20;
/// Twice the most any codec Blosc uses expands one byte: a zstd RLE block (4 bytes) gives at
/// most 128 KiB, deflate about 1032 bytes, LZ4 and BloscLZ about 255.
const MAX_RATIO: usize = 64 << 10;
/// c-blosc's MIN_BUFFERSIZE and MAX_SPLITS: they decide, with the flags, whether a block was
/// split into one stream per byte of the type.
const MIN_BUFFERSIZE: usize = 128;
const MAX_SPLITS: usize = 16;
const FLAG_SHUFFLE: u8 = 0x1;
const FLAG_MEMCPYED: u8 = 0x2;
const FLAG_BITSHUFFLE: u8 = 0x4;
const FLAG_DONT_SPLIT: u8 = 0x10;

#[derive(Clone, Copy)]
enum Codec {
    BloscLz,
    Lz4,
    Zlib,
    Zstd,
}

/// Decompresses a whole Blosc1 chunk into its `nbytes` uncompressed bytes.
pub(crate) fn decompress(src: &[u8]) -> Result<Vec<u8>, String> {
    let h = src
        .get(..16)
        .ok_or_else(|| format!("blosc: {}-byte chunk is shorter than its header", src.len()))?;
    let (version, versionlz, flags, typesize) = (h[0], h[1], h[2], usize::from(h[3]));
    let le32 = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]) as usize;
    let (nbytes, blocksize, cbytes) = (le32(4), le32(8), le32(12));
    // Version 1 was pre-1.0 Blosc, versions 3 and up are Blosc2 (another filter): c-blosc 1.x
    // reads only 2.
    if version != 2 {
        return Err(format!("blosc: format version {version}, not Blosc1's 2"));
    }
    if cbytes > src.len() || cbytes < 16 {
        return Err(format!(
            "blosc: header says {cbytes} compressed bytes, the chunk has {}",
            src.len()
        ));
    }
    // The chunk ends at cbytes: offsets beyond it are as corrupt as offsets beyond the input.
    let src = &src[..cbytes];
    if nbytes == 0 {
        return Ok(Vec::new());
    }
    if nbytes > MAX_NBYTES || nbytes / MAX_RATIO > cbytes {
        return Err(format!(
            "blosc: {nbytes} bytes from a {cbytes}-byte chunk is not believable"
        ));
    }
    if flags & 0x08 != 0 {
        return Err("blosc: reserved flag 0x08 set".into());
    }
    if flags & FLAG_MEMCPYED != 0 {
        return match src.get(16..) {
            Some(data) if data.len() == nbytes => Ok(data.to_vec()),
            _ => Err(format!(
                "blosc: memcpyed chunk of {nbytes} bytes stored in {cbytes}"
            )),
        };
    }
    let codec = match flags >> 5 {
        0 => Codec::BloscLz,
        1 => Codec::Lz4, // lz4 and lz4hc: one block format
        2 => return Err("blosc: the snappy codec is not supported".into()),
        3 => Codec::Zlib,
        4 => Codec::Zstd,
        n => return Err(format!("blosc: unknown codec {n}")),
    };
    // Every codec's format version has been 1 throughout Blosc1; c-blosc refuses others.
    if versionlz != 1 {
        return Err(format!("blosc: codec format version {versionlz}, not 1"));
    }
    if typesize == 0 || blocksize == 0 || blocksize > nbytes {
        return Err(format!(
            "blosc: bad header (typesize {typesize}, block size {blocksize}, {nbytes} bytes)"
        ));
    }
    let nblocks = nbytes.div_ceil(blocksize);
    let bstarts = src
        .get(16..16 + 4 * nblocks)
        .ok_or_else(|| format!("blosc: the {nblocks} block offsets run past the chunk"))?;
    let mut out = vec![0u8; nbytes];
    // Shuffled blocks decode here first.
    let mut tmp = Vec::new();
    let mut state = Inflaters::default();
    for (j, (dst, start)) in out
        .chunks_mut(blocksize)
        .zip(bstarts.chunks_exact(4))
        .enumerate()
    {
        let start = i32::from_le_bytes([start[0], start[1], start[2], start[3]]);
        let start = usize::try_from(start)
            .map_err(|_| format!("blosc: block {j} starts at negative offset {start}"))?;
        let block = Block {
            src,
            typesize,
            flags,
            codec,
            // Only the last block can be shorter (a "leftover"); it is never split.
            leftover: dst.len() < blocksize,
        };
        block
            .decode(start, dst, &mut tmp, &mut state)
            .map_err(|e| format!("blosc: block {j} {e}"))?;
    }
    Ok(out)
}

/// The zlib and zstd decoders' state, made on first use and kept for the chunk's streams.
#[derive(Default)]
struct Inflaters {
    zlib: Option<libdeflater::Decompressor>,
    zstd: Option<zstd::bulk::Decompressor<'static>>,
}

struct Block<'a> {
    src: &'a [u8],
    typesize: usize,
    flags: u8,
    codec: Codec,
    leftover: bool,
}

impl Block<'_> {
    /// Decodes the block whose streams start at `pos` into `dst` (its uncompressed size).
    fn decode(
        &self,
        mut pos: usize,
        dst: &mut [u8],
        tmp: &mut Vec<u8>,
        state: &mut Inflaters,
    ) -> Result<(), String> {
        let (size, ts) = (dst.len(), self.typesize);
        // As blosc_d: shuffling a 1-byte type is a no-op and is skipped, and a block smaller
        // than one element is not bitshuffled.
        let shuffle = self.flags & FLAG_SHUFFLE != 0 && ts > 1;
        let bitshuffle = self.flags & FLAG_BITSHUFFLE != 0 && size >= ts;
        // Writers before the "don't split" flag (0x10) split whenever these conditions held,
        // and newer writers set the flag whenever they fail, so both agree with this test.
        let nsplits = if self.flags & FLAG_DONT_SPLIT == 0
            && ts <= MAX_SPLITS
            && size / ts >= MIN_BUFFERSIZE
            && !self.leftover
        {
            ts
        } else {
            1
        };
        // The writer only splits blocks that are whole elements, so this is corruption (c-blosc
        // would leave the remainder unwritten).
        if !size.is_multiple_of(nsplits) {
            return Err(format!("of {size} bytes does not split into {nsplits}"));
        }
        let filtered = if shuffle || bitshuffle {
            tmp.resize(size, 0);
            &mut tmp[..]
        } else {
            &mut dst[..]
        };
        for (k, stream_out) in filtered.chunks_exact_mut(size / nsplits).enumerate() {
            let len = self
                .src
                .get(pos..pos + 4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| format!("stream {k}: its size at byte {pos} is past the chunk"))?;
            pos += 4;
            let stream = usize::try_from(len)
                .ok()
                .and_then(|len| self.src.get(pos..pos + len))
                .ok_or_else(|| format!("stream {k}: {len} bytes at {pos} run past the chunk"))?;
            pos += stream.len();
            // A stream the codec could not shrink is stored as is.
            let n = if stream.len() == stream_out.len() {
                stream_out.copy_from_slice(stream);
                stream.len()
            } else {
                self.inflate(stream, stream_out, state)
                    .map_err(|e| format!("stream {k}: {e}"))?
            };
            if n != stream_out.len() {
                return Err(format!(
                    "stream {k}: {n} bytes decoded, {} expected",
                    stream_out.len()
                ));
            }
        }
        if shuffle {
            unshuffle(ts, tmp, dst);
        } else if bitshuffle {
            bitunshuffle(ts, tmp, dst);
        }
        Ok(())
    }

    /// Decodes one stream into `out`, returning how many bytes it filled.
    fn inflate(
        &self,
        stream: &[u8],
        out: &mut [u8],
        state: &mut Inflaters,
    ) -> Result<usize, String> {
        match self.codec {
            Codec::BloscLz => blosclz(stream, out).ok_or_else(|| "corrupt blosclz data".into()),
            Codec::Lz4 => {
                lz4_flex::block::decompress_into(stream, out).map_err(|e| format!("lz4: {e}"))
            }
            Codec::Zlib => state
                .zlib
                .get_or_insert_with(libdeflater::Decompressor::new)
                .zlib_decompress(stream, out)
                .map_err(|e| match e {
                    libdeflater::DecompressionError::BadData => "corrupt zlib data".into(),
                    libdeflater::DecompressionError::InsufficientSpace => {
                        format!("zlib data decodes to more than {} bytes", out.len())
                    }
                }),
            Codec::Zstd => {
                let d = match &mut state.zstd {
                    Some(d) => d,
                    none => none
                        .insert(zstd::bulk::Decompressor::new().map_err(|e| format!("zstd: {e}"))?),
                };
                d.decompress_to_buffer(stream, out)
                    .map_err(|e| format!("zstd: {e}"))
            }
        }
    }
}

/// Undoes Blosc's byte shuffle: byte j of element i was stored at `j * n + i` (n elements).
/// Trailing bytes that do not make a whole element were stored as they are.
pub(super) fn unshuffle(ts: usize, src: &[u8], dst: &mut [u8]) {
    let n = dst.len() / ts;
    for (i, elem) in dst.chunks_exact_mut(ts).enumerate() {
        for (j, b) in elem.iter_mut().enumerate() {
            *b = src[j * n + i];
        }
    }
    let (whole, len) = (n * ts, dst.len());
    dst[whole..].copy_from_slice(&src[whole..len]);
}

/// Undoes Blosc's bitshuffle. Of n elements, bit b of byte j of element i was stored as bit
/// `i % 8` of byte `(8 * j + b) * n / 8 + i / 8`: a row of n bits per bit of the type. c-blosc
/// only bitshuffles blocks of a multiple of 8 elements (others are stored as they are) and
/// keeps bytes past the last whole element as they are.
fn bitunshuffle(ts: usize, src: &[u8], dst: &mut [u8]) {
    let n = dst.len() / ts;
    if !n.is_multiple_of(8) {
        dst.copy_from_slice(&src[..dst.len()]);
        return;
    }
    let row = n / 8;
    for j in 0..ts {
        for k in 0..row {
            // The bytes of 8 bit rows at column k: byte b holds bit b of byte j of elements
            // 8k..8k+8. An 8x8 bit transpose turns them into those 8 bytes.
            let mut x = 0u64;
            for b in 0..8 {
                x |= u64::from(src[(8 * j + b) * row + k]) << (8 * b);
            }
            for (m, byte) in transpose8x8(x).to_le_bytes().into_iter().enumerate() {
                dst[(8 * k + m) * ts + j] = byte;
            }
        }
    }
    let (whole, len) = (n * ts, dst.len());
    dst[whole..].copy_from_slice(&src[whole..len]);
}

/// Transposes the 8x8 bit matrix whose row r is byte r of `x` (bitshuffle's TRANS_BIT_8X8).
fn transpose8x8(mut x: u64) -> u64 {
    let t = (x ^ (x >> 7)) & 0x00AA_00AA_00AA_00AA;
    x ^= t ^ (t << 7);
    let t = (x ^ (x >> 14)) & 0x0000_CCCC_0000_CCCC;
    x ^= t ^ (t << 14);
    let t = (x ^ (x >> 28)) & 0x0000_0000_F0F0_F0F0;
    x ^ t ^ (t << 28)
}

/// BloscLZ, a FastLZ-derived LZ77: a control byte below 32 starts a run of ctrl + 1 literals;
/// otherwise its top 3 bits are the match length - 2 (7: more length bytes follow, each added,
/// until one below 255) and its low 5 bits and the next byte the distance - 1; when those are
/// all ones (31 and 255), a 16-bit big-endian distance - 8192 follows instead. The first
/// control byte's top bits are a marker, not a length. Returns the bytes written, or None when
/// the stream is corrupt or does not fit `out`.
///
/// The stream format has not changed from BloscLZ 1 to 2.5 (c-blosc 1.21). One difference: a
/// match as the very last token is copied here, as BloscLZ before 2.0 did; 2.x drops it (and
/// then fails the size check), but its compressors end every stream with literals.
fn blosclz(src: &[u8], out: &mut [u8]) -> Option<usize> {
    const MAX_DISTANCE: usize = 8191;
    let mut ctrl = usize::from(*src.first()? & 31);
    let (mut ip, mut op) = (1, 0);
    loop {
        if ctrl >= 32 {
            let mut len = (ctrl >> 5) - 1;
            if len == 6 {
                loop {
                    let code = *src.get(ip)?;
                    ip += 1;
                    len += usize::from(code);
                    if code != 255 {
                        break;
                    }
                }
            }
            let code = usize::from(*src.get(ip)?);
            ip += 1;
            len += 3;
            let ofs = (ctrl & 31) << 8;
            let mut dist = ofs + code + 1;
            if code == 255 && ofs == 31 << 8 {
                let far = src.get(ip..ip + 2)?;
                ip += 2;
                dist = (usize::from(far[0]) << 8 | usize::from(far[1])) + MAX_DISTANCE + 1;
            }
            if dist > op || len > out.len() - op {
                return None;
            }
            // An overlapping copy repeats the last `dist` bytes: copy in doubling pieces, each
            // read from bytes already written.
            let from = op - dist;
            let end = op + len;
            while op < end {
                let n = (op - from).min(end - op);
                out.copy_within(from..from + n, op);
                op += n;
            }
        } else {
            let n = ctrl + 1;
            let lit = src.get(ip..ip + n)?;
            out.get_mut(op..op + n)?.copy_from_slice(lit);
            ip += n;
            op += n;
        }
        match src.get(ip) {
            Some(&c) => ctrl = usize::from(c),
            None => return Some(op),
        }
        ip += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Case {
        name: String,
        source: String,
        codec: String,
        shuffle: String,
        typesize: u64,
        nbytes: usize,
        chunk: Vec<u8>,
        expect: Vec<u8>,
    }

    /// Runs make_blosc_cases.py (with `args`) into a temporary directory and reads its cases.
    fn cases(args: &[&str]) -> Vec<Case> {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_str().expect("utf-8 temp path");
        let mut a = vec![root];
        a.extend_from_slice(args);
        testutil::script("make_blosc_cases.py", &a);
        let manifest = std::fs::read(dir.path().join("manifest.json")).expect("manifest");
        let manifest: Vec<serde_json::Value> = serde_json::from_slice(&manifest).expect("json");
        let read = |name: &str, ext: &str| {
            std::fs::read(dir.path().join(format!("{name}.{ext}"))).expect("case file")
        };
        let s = |v: &serde_json::Value, k: &str| v[k].as_str().expect(k).to_string();
        manifest
            .iter()
            .map(|v| {
                let name = s(v, "name");
                let case = Case {
                    chunk: read(&name, "chunk"),
                    expect: read(&name, "expect"),
                    source: s(v, "source"),
                    codec: s(v, "codec"),
                    shuffle: s(v, "shuffle"),
                    typesize: v["typesize"].as_u64().expect("typesize"),
                    nbytes: v["nbytes"].as_u64().expect("nbytes") as usize,
                    name,
                };
                assert_eq!(
                    case.expect.len() as u64,
                    v["compare"].as_u64().expect("compare")
                );
                case
            })
            .collect()
    }

    fn header(chunk: &[u8]) -> (u8, usize, usize) {
        let le = |i: usize| u32::from_le_bytes(chunk[i..i + 4].try_into().unwrap()) as usize;
        (chunk[2], le(4), le(8))
    }

    #[test]
    fn decodes_what_pytables_and_c_blosc_wrote() {
        let cases = cases(&[]);
        for c in &cases {
            let got = decompress(&c.chunk).unwrap_or_else(|e| panic!("{}: {e}", c.name));
            assert_eq!(got.len(), c.nbytes, "{}: length", c.name);
            // The last chunk of a dataset is stored full-size: only its rows are compared.
            let got = &got[..c.expect.len()];
            if let Some(i) = (0..got.len()).find(|&i| got[i] != c.expect[i]) {
                panic!("{}: first difference at byte {i} of {}", c.name, got.len());
            }
        }
        // What the cases cover: every codec, shuffle and typesize through PyTables' filter...
        for codec in ["blosclz", "lz4", "lz4hc", "zlib", "zstd"] {
            for shuffle in ["none", "shuffle", "bitshuffle"] {
                for ts in [1, 2, 4, 8, 15] {
                    let n = cases
                        .iter()
                        .filter(|c| c.source == "hdf5" && c.codec == codec)
                        .filter(|c| c.shuffle == shuffle && c.typesize == ts)
                        .count();
                    assert!(n >= 4, "{codec} {shuffle} typesize {ts}: {n} chunks");
                }
            }
        }
        // ...and the header's paths: memcpyed, split and unsplit blocks, a leftover block, a
        // chunk under 128 bytes.
        let flags = |f: u8| {
            cases
                .iter()
                .filter(|c| header(&c.chunk).0 & 0x12 == f)
                .count()
        };
        assert!(flags(0x02) >= 5 && flags(0) >= 100 && flags(0x10) >= 50);
        assert!(cases.iter().any(|c| c.nbytes > 0 && c.nbytes < 128));
        let several = cases.iter().filter(|c| {
            let (_, n, bs) = header(&c.chunk);
            bs > 0 && n / bs >= 2 && n % bs != 0
        });
        assert!(several.count() >= 300);
        println!("{} cases decoded", cases.len());
    }

    /// xorshift64: reproducible edits.
    fn rng(mut s: u64) -> impl FnMut() -> u64 {
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        }
    }

    /// Decoding must fail or succeed without panicking, and a success is the header's size.
    fn check(chunk: &[u8]) {
        if let Ok(v) = decompress(chunk) {
            assert_eq!(v.len(), header(chunk).1);
        }
    }

    #[test]
    fn corrupt_and_truncated_chunks_fail_cleanly() {
        let cases = cases(&["--small"]);
        let c = cases
            .iter()
            .find(|c| c.name == "small-blosclz-shuffle")
            .expect("case");
        for n in 0..c.chunk.len() {
            assert!(decompress(&c.chunk[..n]).is_err(), "prefix of {n} bytes");
            // The same prefix with a header that agrees: the block walk meets the end.
            if n >= 16 {
                let mut p = c.chunk[..n].to_vec();
                p[12..16].copy_from_slice(&(n as u32).to_le_bytes());
                check(&p);
            }
        }
        let mut next = rng(0x5eed);
        for c in &cases {
            for _ in 0..3000 {
                let mut b = c.chunk.clone();
                for _ in 0..1 + next() % 4 {
                    if b.is_empty() {
                        break;
                    }
                    // Half the edits in the header and block offsets, half in the streams.
                    let at = if next().is_multiple_of(2) {
                        next() % 64
                    } else {
                        next()
                    };
                    let at = at as usize % b.len();
                    b[at] = next() as u8;
                }
                check(&b);
            }
        }
    }

    fn chunk(flags: u8, typesize: u8, nbytes: u32, blocksize: u32, body: &[u8]) -> Vec<u8> {
        let mut c = vec![2, 1, flags, typesize];
        c.extend(nbytes.to_le_bytes());
        c.extend(blocksize.to_le_bytes());
        c.extend((16 + body.len() as u32).to_le_bytes());
        c.extend(body);
        c
    }

    #[test]
    fn headers_are_checked() {
        let ok = chunk(0x02, 1, 3, 3, b"abc");
        assert_eq!(decompress(&ok).unwrap(), b"abc");
        let err = |c: &[u8]| decompress(c).unwrap_err();
        assert!(err(&ok[..15]).contains("shorter than its header"));
        assert!(err(&ok[..18]).contains("compressed bytes"));
        let mut v3 = ok.clone();
        v3[0] = 3;
        assert!(err(&v3).contains("version 3"));
        assert!(err(&chunk(0x02, 1, 4, 4, b"abc")).contains("memcpyed"));
        assert!(err(&chunk(0x0a, 1, 3, 3, b"abc")).contains("reserved"));
        assert!(err(&chunk(2 << 5, 1, 3, 3, b"abcdefgh")).contains("snappy"));
        assert!(err(&chunk(0, 1, 300 << 20, 1 << 20, &[0; 8])).contains("believable"));
        assert!(err(&chunk(0, 1, 4 << 20, 4 << 20, &[0; 8])).contains("believable"));
        assert!(err(&chunk(0, 1, 16, 32, &[0; 8])).contains("block size"));
        // Two blocks of 8 and 2 bytes, offsets 24 and 36, each one raw stream.
        let mut body = vec![24, 0, 0, 0, 36, 0, 0, 0];
        body.extend([8, 0, 0, 0]);
        body.extend(b"01234567");
        body.extend([2, 0, 0, 0]);
        body.extend(b"89");
        assert_eq!(
            decompress(&chunk(0, 1, 10, 8, &body)).unwrap(),
            b"0123456789"
        );
        body[4] = 200;
        assert!(err(&chunk(0, 1, 10, 8, &body)).contains("block 1 stream 0"));
        body[4] = 0xff;
        body[7] = 0xff;
        assert!(err(&chunk(0, 1, 10, 8, &body)).contains("negative"));
    }

    #[test]
    fn blosclz_literals_runs_and_far_matches() {
        let mut out = [0u8; 9];
        // "abc" (first control byte with BloscLZ's marker bit), a match of 5 at distance 3,
        // "z".
        let n = blosclz(&[0x22, b'a', b'b', b'c', 0x60, 2, 0, b'z'], &mut out);
        assert_eq!((n, &out), (Some(9), b"abcabcabz"));
        assert_eq!(blosclz(&[0x22, b'a', b'b', b'c', 0x60, 3], &mut out), None);
        // A run: 1 literal, then a long match at distance 1 (length 2 + 7 + 255 + 10).
        let mut out = vec![0u8; 275];
        let n = blosclz(&[0x20, 7, 0xe0, 255, 10, 0], &mut out);
        assert_eq!(n, Some(275));
        assert!(out.iter().all(|&b| b == 7));
        // A far match: 8200 literals, then 3 bytes from 8200 back (16-bit distance 8).
        let mut src = Vec::new();
        let data: Vec<u8> = (0..8200u32).map(|i| (i * 7 % 251) as u8).collect();
        for piece in data.chunks(32) {
            src.push(piece.len() as u8 - 1);
            src.extend(piece);
        }
        src[0] |= 0x20;
        src.extend([0x3f, 255, 0, 8]);
        let mut out = vec![0u8; 8203];
        assert_eq!(blosclz(&src, &mut out), Some(8203));
        assert_eq!(&out[8200..], &data[..3]);
    }

    #[test]
    fn unshuffles_invert_the_shuffles() {
        let mut next = rng(7);
        for ts in [1usize, 2, 3, 4, 8, 15, 16, 17] {
            for n in [0usize, 8, 13, 64] {
                for tail in [0usize, 1] {
                    let len = n * ts + if ts > 1 { tail } else { 0 };
                    let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                    // Byte shuffle: byte j of element i at j * n + i.
                    let mut s = data.clone();
                    for i in 0..n {
                        for j in 0..ts {
                            s[j * n + i] = data[i * ts + j];
                        }
                    }
                    let mut back = vec![0; len];
                    unshuffle(ts, &s, &mut back);
                    assert_eq!(back, data, "unshuffle ts {ts} n {n}");
                    // Bitshuffle, bit by bit, of blocks of a multiple of 8 elements.
                    let mut s = data.clone();
                    if n % 8 == 0 {
                        s[..n * ts].fill(0);
                        for i in 0..n {
                            for j in 0..ts {
                                for b in 0..8 {
                                    let bit = data[i * ts + j] >> b & 1;
                                    s[(8 * j + b) * n / 8 + i / 8] |= bit << (i % 8);
                                }
                            }
                        }
                    }
                    bitunshuffle(ts, &s, &mut back);
                    assert_eq!(back, data, "bitunshuffle ts {ts} n {n}");
                }
            }
        }
    }
}
