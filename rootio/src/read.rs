//! Basket loading and decoding into typed arrays. A [`BranchReader`] keeps one decompressed
//! basket per branch, so reading any entry range sequentially uses memory bounded by the
//! basket size, not the file size. Every basket is checked against what the branch's type
//! implies (byte lengths, entry counts, vector headers): a mismatch is an error, never a guess.

use super::compress::decompress_into;
use super::error::{Context, Result, RootError};
use super::file::{KeyHeader, RootFile};
use super::lists::append_vector_entry;
use super::rbuf::RBuf;
use super::tree::{BasketLoc, BasketSource, Branch, Interp, Prim, Shape, Tree};

/// Decoded values of a branch over an entry range.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// `bool` (`/O`).
    Bool(Vec<bool>),
    /// `int8` (`/B`).
    I8(Vec<i8>),
    /// `uint8` (`/b`), and the bytes of strings.
    U8(Vec<u8>),
    /// `int16` (`/S`).
    I16(Vec<i16>),
    /// `uint16` (`/s`).
    U16(Vec<u16>),
    /// `int32` (`/I`).
    I32(Vec<i32>),
    /// `uint32` (`/i`).
    U32(Vec<u32>),
    /// `int64` (`/L`).
    I64(Vec<i64>),
    /// `uint64` (`/l`).
    U64(Vec<u64>),
    /// `float32` (`/F`, Float16_t).
    F32(Vec<f32>),
    /// `float64` (`/D`, Double32_t).
    F64(Vec<f64>),
}

macro_rules! each_data {
    ($d:expr, $v:ident => $e:expr) => {
        match $d {
            Data::Bool($v) => $e,
            Data::I8($v) => $e,
            Data::U8($v) => $e,
            Data::I16($v) => $e,
            Data::U16($v) => $e,
            Data::I32($v) => $e,
            Data::U32($v) => $e,
            Data::I64($v) => $e,
            Data::U64($v) => $e,
            Data::F32($v) => $e,
            Data::F64($v) => $e,
        }
    };
}

impl Data {
    /// No values, of the type `p` decodes to.
    pub fn empty(p: Prim) -> Data {
        match p {
            Prim::Bool => Data::Bool(Vec::new()),
            Prim::I8 => Data::I8(Vec::new()),
            Prim::U8 => Data::U8(Vec::new()),
            Prim::I16 => Data::I16(Vec::new()),
            Prim::U16 => Data::U16(Vec::new()),
            Prim::I32 => Data::I32(Vec::new()),
            Prim::U32 | Prim::Bits => Data::U32(Vec::new()),
            Prim::I64 => Data::I64(Vec::new()),
            Prim::U64 => Data::U64(Vec::new()),
            Prim::F32 | Prim::Packed { double: false, .. } => Data::F32(Vec::new()),
            Prim::F64 | Prim::Packed { double: true, .. } => Data::F64(Vec::new()),
        }
    }
    /// Number of values.
    pub fn len(&self) -> usize {
        each_data!(self, v => v.len())
    }
    /// Whether there is no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Bytes its values take.
    pub fn bytes(&self) -> usize {
        each_data!(self, v => std::mem::size_of_val(v.as_slice()))
    }
    /// Removes every value, keeping the allocation.
    pub fn clear(&mut self) {
        each_data!(self, v => v.clear())
    }
    /// Value `i` as f64 (for scores and features; bools and integers convert exactly where
    /// f64 can hold them).
    pub fn get_f64(&self, i: usize) -> f64 {
        match self {
            Data::Bool(v) => v[i] as u8 as f64,
            Data::I8(v) => v[i] as f64,
            Data::U8(v) => v[i] as f64,
            Data::I16(v) => v[i] as f64,
            Data::U16(v) => v[i] as f64,
            Data::I32(v) => v[i] as f64,
            Data::U32(v) => v[i] as f64,
            Data::I64(v) => v[i] as f64,
            Data::U64(v) => v[i] as f64,
            Data::F32(v) => v[i] as f64,
            Data::F64(v) => v[i],
        }
    }
}

/// A branch's values over entries `[start, start + entries)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// How the branch's values are typed and shaped.
    pub interp: Interp,
    /// First entry.
    pub start: u64,
    /// Number of entries.
    pub entries: u64,
    /// The values of all entries, flattened.
    pub data: Data,
    /// For variable-size entries: `entries + 1` offsets into `data`, in values (bytes for
    /// strings). For nested lists ([`Shape::Nested`]), the last level's: one more than its
    /// items (the innermost vectors or the strings), each item's end in `data`.
    pub offsets: Option<Vec<usize>>,
    /// The offsets levels above `offsets`, outermost first, for nested lists only (empty
    /// otherwise): `outer[0]` holds `entries + 1` offsets into the items of the next level
    /// (`outer[1]`, or `offsets` for the last), each level the same into the next.
    pub outer: Vec<Vec<usize>>,
}

impl Array {
    /// Values to write: `entries` entries of `prim` shaped as `shape`, starting at entry 0
    /// (`offsets`: `entries + 1` value offsets for variable-size entries).
    pub fn of(
        prim: Prim,
        shape: Shape,
        entries: usize,
        data: Data,
        offsets: Option<Vec<usize>>,
    ) -> Self {
        Array {
            interp: Interp { prim, shape },
            start: 0,
            entries: entries as u64,
            data,
            offsets,
            outer: Vec::new(),
        }
    }

    fn new(interp: Interp, start: u64) -> Self {
        let levels = interp.shape.levels();
        Array {
            data: Data::empty(interp.prim),
            offsets: if levels > 0 { Some(vec![0]) } else { None },
            outer: vec![vec![0]; levels.saturating_sub(1)],
            interp,
            start,
            entries: 0,
        }
    }
    /// The range of `data` holding entry `i` (relative to `start`); for nested lists, the
    /// range of its items in the next offsets level.
    pub fn entry_range(&self, i: usize) -> std::ops::Range<usize> {
        match (self.outer.first(), &self.offsets) {
            (Some(o), _) | (None, Some(o)) => o[i]..o[i + 1],
            (None, None) => {
                let n = self.interp.item_len();
                i * n..(i + 1) * n
            }
        }
    }
}

/// An uncompressed basket: the data bytes and, for variable-size entries, per-entry offsets.
#[derive(Debug, Default)]
pub struct RawBasket {
    pub data: Vec<u8>,
    pub offsets: Option<Vec<usize>>,
    pub nev: u64,
}

/// The TBasket fields after the key header.
struct BasketHeader {
    nevbuf: i32,
    last: i32,
}

fn basket_header(b: &mut RBuf, kh: &KeyHeader) -> Result<BasketHeader> {
    b.set_pos(kh.keylen as usize - 19)?;
    let _version = b.i16()?;
    let _bufsize = b.i32()?;
    let _nevbufsize = b.i32()?;
    let nevbuf = b.i32()?;
    let last = b.i32()?;
    let _flag = b.u8()?;
    if nevbuf < 0 || last < kh.keylen as i32 {
        return Err(RootError::malformed(format!(
            "basket header: fNevBuf {nevbuf}, fLast {last}"
        )));
    }
    Ok(BasketHeader { nevbuf, last })
}

/// Splits the tail of a basket buffer into entry offsets (ROOT stores them after the data,
/// each including the key length).
fn entry_offsets(tail: &[u8], nev: usize, keylen: usize, border: usize) -> Result<Vec<usize>> {
    let mut b = RBuf::new(tail, 0);
    let count = b.i32()?;
    let count = usize::try_from(count)
        .map_err(|_| RootError::malformed(format!("offset count {count}")))?;
    if count < nev {
        return Err(RootError::malformed(format!(
            "{count} entry offsets for {nev} entries"
        )));
    }
    let raw = (0..nev).map(|_| b.i32()).collect::<Result<Vec<i32>>>()?;
    checked_offsets(&raw, keylen, border)
}

/// Entry offsets as stored (each including the key length) -> offsets into the basket's data,
/// with `border` (the data's end) appended: the one check of disk and embedded baskets. An
/// offset outside `0..=border`, or one before its predecessor, is an error: the entries they
/// delimit would overlap or run backwards.
fn checked_offsets(raw: &[i32], keylen: usize, border: usize) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(raw.len() + 1);
    for &x in raw {
        let o = i64::from(x) - keylen as i64;
        if o < 0 || o as usize > border {
            return Err(RootError::malformed(format!(
                "entry offset {o} outside 0..{border}"
            )));
        }
        if out.last().is_some_and(|&l| l > o as usize) {
            return Err(RootError::malformed(format!(
                "entry offset {o} before the previous one"
            )));
        }
        out.push(o as usize);
    }
    out.push(border);
    Ok(out)
}

/// Entry offsets of `nev` length-prefixed strings (TString form) filling `data` exactly.
fn string_offsets(data: &[u8], nev: usize) -> Result<Vec<usize>> {
    let mut b = RBuf::new(data, 0);
    let mut out = Vec::with_capacity(nev.min(data.len()) + 1);
    for _ in 0..nev {
        out.push(b.pos());
        b.tstring()?;
    }
    if b.remaining() != 0 {
        return Err(RootError::malformed(format!(
            "{nev} strings end {} bytes before the basket's data",
            b.remaining()
        )));
    }
    out.push(data.len());
    Ok(out)
}

impl RawBasket {
    /// The bytes of entry `e` of a basket of variable-size entries. Offsets are checked when
    /// the basket is loaded; a basket built otherwise still gets an error here, never a panic.
    pub(crate) fn entry(&self, e: usize) -> Result<&[u8]> {
        let offs = self
            .offsets
            .as_ref()
            .ok_or_else(|| RootError::malformed("variable-size basket without entry offsets"))?;
        offs.get(e..e + 2)
            .and_then(|w| self.data.get(w[0]..w[1]))
            .ok_or_else(|| RootError::malformed(format!("entry {e}: offsets outside the basket")))
    }

    /// Loads the basket at `loc`: `scratch` holds its compressed bytes, `spare` (a basket no
    /// longer needed, or a default one) lends its buffers, so that reading a branch basket by
    /// basket allocates nothing once they have grown.
    pub fn load(
        file: &RootFile,
        tree: &Tree,
        branch: &Branch,
        loc: &BasketLoc,
        scratch: &mut Vec<u8>,
        spare: RawBasket,
    ) -> Result<RawBasket> {
        let var = branch.entry_offset_len > 0
            || branch.interp.as_ref().is_ok_and(|i| i.shape.levels() > 0);
        let mut out = spare;
        out.offsets = None;
        out.nev = 0;
        match loc.source {
            BasketSource::Disk { seek, nbytes } => {
                // `out.data` keeps its old length: decompress_into overwrites it all and only
                // zero-fills where the buffer grows.
                file.read_at(seek, nbytes as usize, scratch)?;
                let mut b = RBuf::new(scratch, 0);
                let kh = KeyHeader::read(&mut b)?;
                if kh.nbytes as u32 != nbytes {
                    return Err(RootError::malformed(format!(
                        "basket at {seek}: key says {} bytes, branch says {nbytes}",
                        kh.nbytes
                    )));
                }
                let h = basket_header(&mut b, &kh)?;
                let keylen = kh.keylen as usize;
                decompress_into(&scratch[keylen..], kh.objlen as usize, &mut out.data)?;
                let border = h.last as usize - keylen;
                if border > out.data.len() {
                    return Err(RootError::malformed(format!(
                        "basket fLast {} beyond its {} bytes",
                        h.last,
                        out.data.len() + keylen
                    )));
                }
                out.nev = h.nevbuf as u64;
                if var && out.data.len() > border {
                    out.offsets = Some(entry_offsets(
                        &out.data[border..],
                        h.nevbuf as usize,
                        keylen,
                        border,
                    )?);
                } else if var && h.nevbuf > 0 {
                    // Strings need no table: each is prefixed by its length (some writers
                    // leave the table out).
                    // An `x[n]` basket gets them from its counter branch (BranchReader).
                    match &branch.interp {
                        Ok(Interp {
                            shape: Shape::String { header: false },
                            ..
                        }) => {
                            out.offsets =
                                Some(string_offsets(&out.data[..border], h.nevbuf as usize)?);
                        }
                        Ok(Interp {
                            shape: Shape::Var { .. },
                            ..
                        }) => {}
                        _ => {
                            return Err(RootError::malformed(
                                "variable-size basket without entry offsets",
                            ))
                        }
                    }
                }
                out.data.truncate(border);
            }
            BasketSource::Embedded(slot) => {
                out.data.clear();
                let raw = tree.embedded_basket(branch, slot)?;
                let mut b = RBuf::new(raw, 0);
                let kh = KeyHeader::read(&mut b)?;
                let h = basket_header(&mut b, &kh)?;
                let keylen = kh.keylen as usize;
                let border = h.last as usize - keylen;
                let nev = h.nevbuf as usize;
                b.set_pos(keylen)?;
                // With entry offsets, they come first (count, then values); then a copy of the
                // key header; then the data.
                let mut r = RBuf::new(raw, 0);
                r.set_pos(keylen)?;
                let fixed_size_guess = {
                    let mut t = RBuf::new(raw, 0);
                    t.set_pos(kh.keylen as usize - 13)?;
                    t.i32()? as i64
                };
                if fixed_size_guess * nev as i64 + keylen as i64 != h.last as i64 {
                    let count = r.i32()?;
                    if count < 0 || (count as usize) != nev {
                        return Err(RootError::malformed(format!(
                            "embedded basket: {count} offsets for {nev} entries"
                        )));
                    }
                    let raw = (0..nev).map(|_| r.i32()).collect::<Result<Vec<i32>>>()?;
                    out.offsets = Some(checked_offsets(&raw, keylen, border)?);
                } else if var && nev > 0 {
                    return Err(RootError::malformed(
                        "embedded variable-size basket without entry offsets",
                    ));
                }
                r.skip(keylen)?; // the buffer's copy of the key header
                out.data.extend_from_slice(r.bytes(border)?);
                // fLast must end the buffer: a smaller one would drop the last entry's tail
                // silently (a shorter row of a jagged entry is still well-formed).
                if r.remaining() != 0 {
                    return Err(RootError::malformed(format!(
                        "embedded basket: {} bytes after fLast {}",
                        r.remaining(),
                        h.last
                    )));
                }
                out.nev = nev as u64;
            }
        }
        if out.nev != loc.entries {
            return Err(RootError::malformed(format!(
                "basket holds {} entries, the branch expects {}",
                out.nev, loc.entries
            )));
        }
        Ok(out)
    }
}

macro_rules! decode_be {
    ($src:expr, $t:ty, $out:expr) => {{
        const N: usize = std::mem::size_of::<$t>();
        $out.extend(
            $src.chunks_exact(N)
                .map(|c| <$t>::from_be_bytes(c.try_into().expect("chunk size"))),
        );
    }};
}

pub(crate) fn decode_values(src: &[u8], prim: Prim, out: &mut Data) -> Result<()> {
    if prim == Prim::Bits {
        return decode_bits(src, out);
    }
    let size = prim.disk_size();
    if !src.len().is_multiple_of(size) {
        return Err(RootError::malformed(format!(
            "{} bytes is not a whole number of {}-byte values",
            src.len(),
            size
        )));
    }
    match (prim, out) {
        (Prim::Bool, Data::Bool(v)) => v.extend(src.iter().map(|&b| b != 0)),
        (Prim::I8, Data::I8(v)) => v.extend(src.iter().map(|&b| b as i8)),
        (Prim::U8, Data::U8(v)) => v.extend_from_slice(src),
        (Prim::I16, Data::I16(v)) => decode_be!(src, i16, v),
        (Prim::U16, Data::U16(v)) => decode_be!(src, u16, v),
        (Prim::I32, Data::I32(v)) => decode_be!(src, i32, v),
        (Prim::U32, Data::U32(v)) => decode_be!(src, u32, v),
        (Prim::I64, Data::I64(v)) => decode_be!(src, i64, v),
        (Prim::U64, Data::U64(v)) => decode_be!(src, u64, v),
        (Prim::F32, Data::F32(v)) => decode_be!(src, f32, v),
        (Prim::F64, Data::F64(v)) => decode_be!(src, f64, v),
        (
            Prim::Packed {
                low,
                high,
                bits,
                double,
            },
            out,
        ) => {
            let vals = unpack(src, low, high, bits, double);
            match out {
                Data::F32(v) if !double => v.extend(vals.iter().map(|&x| x as f32)),
                Data::F64(v) if double => v.extend(vals),
                _ => return Err(RootError::malformed("packed float output type")),
            }
        }
        _ => {
            return Err(RootError::malformed(
                "decoded type does not match the array",
            ))
        }
    }
    Ok(())
}

/// `TObject::fBits` words (see [`Prim::Bits`]): each is followed by the 2-byte process id
/// when kIsReferenced is set, as ROOT's `TStreamerInfo` reads `kBits`; the ids are skipped.
fn decode_bits(src: &[u8], out: &mut Data) -> Result<()> {
    const IS_REFERENCED: u32 = 0x10;
    let Data::U32(v) = out else {
        return Err(RootError::malformed("fBits output type"));
    };
    let mut at = 0;
    while at < src.len() {
        let word = src
            .get(at..at + 4)
            .ok_or_else(|| RootError::malformed(format!("fBits: {} bytes left", src.len() - at)))?;
        let bits = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        at += 4;
        if bits & IS_REFERENCED != 0 {
            if src.len() - at < 2 {
                return Err(RootError::malformed(
                    "fBits of a referenced object without its process id",
                ));
            }
            at += 2;
        }
        v.push(bits);
    }
    Ok(())
}

/// Float16_t / Double32_t decoding, as ROOT's `ReadWithNbits` / `ReadWithFactor` (uproot
/// differs with a range: it scales by `2^bits` for 32 bits too, and computes a Float16_t in
/// float).
fn unpack(src: &[u8], low: f64, high: f64, bits: u32, double: bool) -> Vec<f64> {
    if low == 0.0 && high == 0.0 {
        if double && bits == 0 {
            // Double32_t without range: a float on disk.
            return src
                .chunks_exact(4)
                .map(|c| f32::from_be_bytes(c.try_into().expect("4")) as f64)
                .collect();
        }
        // Truncated mantissa: exponent byte, then mantissa u16 with the sign above it.
        return src
            .chunks_exact(3)
            .map(|c| {
                let exp = c[0] as u32;
                let man = u16::from_be_bytes([c[1], c[2]]) as u32;
                let bits_v = (exp << 23) | ((man & ((1 << (bits + 1)) - 1)) << (23 - bits));
                let sign = if man & (1 << (bits + 1)) != 0 {
                    -1.0f32
                } else {
                    1.0
                };
                (f32::from_bits(bits_v) * sign) as f64
            })
            .collect();
    }
    let raw = src
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes(c.try_into().expect("4")));
    // ROOT's `TBufferFile::ReadWithFactor`, in double for both types (a Float16_t's value is
    // then rounded to float once).
    let factor = Prim::packed_factor(low, high, bits);
    if double {
        raw.map(|r| f64::from(r) / factor + low).collect()
    } else {
        raw.map(|r| f64::from((f64::from(r) / factor + low) as f32))
            .collect()
    }
}

/// Appends entries `[a, b)` of a loaded basket (relative to the basket) to `out`.
fn append_entries(
    basket: &RawBasket,
    interp: &Interp,
    a: usize,
    b: usize,
    out: &mut Array,
) -> Result<()> {
    let prim = interp.prim;
    match &interp.shape {
        // One fBits word per entry, 4 or 6 bytes: entry by entry when the basket has offsets.
        Shape::Scalar if prim == Prim::Bits => {
            let before = out.data.len();
            match &basket.offsets {
                Some(_) => {
                    for e in a..b {
                        decode_bits(basket.entry(e)?, &mut out.data)?;
                    }
                }
                None if basket.data.len() == basket.nev as usize * 4 => {
                    decode_bits(&basket.data[a * 4..b * 4], &mut out.data)?
                }
                None => {
                    return Err(RootError::malformed(format!(
                        "fBits basket of {} entries has {} bytes and no entry offsets",
                        basket.nev,
                        basket.data.len()
                    )))
                }
            }
            if out.data.len() - before != b - a {
                return Err(RootError::malformed(format!(
                    "{} entries hold {} fBits words",
                    b - a,
                    out.data.len() - before
                )));
            }
        }
        Shape::Scalar | Shape::Fixed(_) => {
            let item = prim.disk_size() * interp.item_len();
            if basket.data.len() != basket.nev as usize * item {
                return Err(RootError::malformed(format!(
                    "basket of {} entries has {} bytes, {} expected for {}",
                    basket.nev,
                    basket.data.len(),
                    basket.nev as usize * item,
                    interp.type_name()
                )));
            }
            decode_values(&basket.data[a * item..b * item], prim, &mut out.data)?;
        }
        Shape::Var { .. } | Shape::Vector | Shape::String { .. } | Shape::Nested { .. } => {
            for e in a..b {
                let bytes = basket.entry(e)?;
                match &interp.shape {
                    Shape::Var { .. } => {
                        let row = prim.disk_size() * interp.item_len();
                        if prim != Prim::Bits && !bytes.len().is_multiple_of(row) {
                            return Err(RootError::malformed(format!(
                                "entry of {} bytes is not a whole number of {row}-byte rows",
                                bytes.len()
                            )));
                        }
                        decode_values(bytes, prim, &mut out.data)?;
                    }
                    Shape::Vector | Shape::Nested { .. } => {
                        // Records its own offsets, one level per list.
                        append_vector_entry(bytes, interp, out)?;
                        continue;
                    }
                    Shape::String { header } => {
                        let mut r = RBuf::new(bytes, 0);
                        if *header {
                            let h = r.header("std::string")?;
                            if h.end != Some(bytes.len()) {
                                return Err(RootError::malformed("std::string entry byte count"));
                            }
                        }
                        let s = r.tstring()?;
                        // A char* leaf may keep a trailing NUL or padding; ROOT ends at the length.
                        if !*header && r.remaining() > 1 {
                            return Err(RootError::malformed(format!(
                                "string entry of {} bytes holds a {}-byte string",
                                bytes.len(),
                                s.len()
                            )));
                        }
                        match &mut out.data {
                            Data::U8(v) => v.extend_from_slice(s),
                            _ => return Err(RootError::malformed("string output type")),
                        }
                    }
                    _ => unreachable!("matched above"),
                }
                let end = out.data.len() / interp.item_len().max(1);
                out.offsets
                    .as_mut()
                    .ok_or_else(|| RootError::malformed("variable-size array without offsets"))?
                    .push(end);
            }
        }
    }
    out.entries += (b - a) as u64;
    Ok(())
}

/// Reads one branch, keeping its current basket decompressed.
pub struct BranchReader<'a> {
    file: &'a RootFile,
    tree: &'a Tree,
    branch: &'a Branch,
    interp: Interp,
    current: Option<(usize, RawBasket)>,
    /// Buffers for the first basket (from an earlier reader, see [`BranchReader::with_buffers`]).
    spare: RawBasket,
    scratch: Vec<u8>,
}

/// A branch reader's buffers (its basket and its read scratch), handed on to the next reader so
/// that a run over many files does not allocate and fault them in again for each file.
#[derive(Debug, Default)]
pub struct ReaderBuffers {
    basket: RawBasket,
    scratch: Vec<u8>,
}

impl<'a> BranchReader<'a> {
    /// A reader of `branch` (of `tree` in `file`); an error when hepml does not interpret its type.
    pub fn new(file: &'a RootFile, tree: &'a Tree, branch: &'a Branch) -> Result<Self> {
        let interp = branch
            .interp
            .clone()
            .map_err(|why| RootError::unsupported(format!("branch '{}': {why}", branch.name)))?;
        Ok(BranchReader {
            file,
            tree,
            branch,
            interp,
            current: None,
            spare: RawBasket::default(),
            scratch: Vec::new(),
        })
    }

    /// This reader, reading into the buffers of an earlier one.
    pub fn with_buffers(mut self, b: ReaderBuffers) -> Self {
        self.spare = b.basket;
        self.scratch = b.scratch;
        self
    }

    /// Its buffers, for a reader of another file.
    pub fn into_buffers(self) -> ReaderBuffers {
        ReaderBuffers {
            basket: self.current.map_or(self.spare, |(_, b)| b),
            scratch: self.scratch,
        }
    }
    /// The branch read.
    pub fn branch(&self) -> &Branch {
        self.branch
    }
    /// How its values are typed and shaped.
    pub fn interp(&self) -> &Interp {
        &self.interp
    }

    /// Entry offsets of an `x[n]` basket written without its table (uproot does this): from
    /// the counter branch's values over the basket's entries, which must fill its `len` bytes.
    fn offsets_from_counter(
        &self,
        counter: &str,
        loc: &BasketLoc,
        len: usize,
    ) -> Result<Vec<usize>> {
        let cb = self.tree.branch(counter)?;
        if std::ptr::eq(cb, self.branch)
            || !matches!(
                cb.interp,
                Ok(Interp {
                    shape: Shape::Scalar,
                    ..
                })
            )
        {
            return Err(RootError::malformed(format!(
                "variable-size basket without entry offsets, and counter '{counter}' is not a scalar branch"
            )));
        }
        let counts = BranchReader::new(self.file, self.tree, cb)?
            .read(loc.first_entry, loc.first_entry + loc.entries)?;
        let row = self.interp.prim.disk_size() * self.interp.item_len();
        let mut offsets = Vec::with_capacity(counts.entries as usize + 1);
        let mut at = 0usize;
        offsets.push(0);
        for k in 0..counts.data.len() {
            let n = counts.data.get_f64(k);
            if !(0.0..=len as f64).contains(&n) || n.fract() != 0.0 {
                return Err(RootError::malformed(format!(
                    "counter '{counter}' value {n}"
                )));
            }
            at = at
                .checked_add(n as usize * row)
                .filter(|&x| x <= len)
                .ok_or_else(|| {
                    RootError::malformed(format!(
                        "counts of '{counter}' run past the basket's {len} bytes"
                    ))
                })?;
            offsets.push(at);
        }
        if at != len {
            return Err(RootError::malformed(format!(
                "counts of '{counter}' cover {at} of the basket's {len} bytes"
            )));
        }
        Ok(offsets)
    }

    /// Reads entries `[start, stop)`.
    pub fn read(&mut self, start: u64, stop: u64) -> Result<Array> {
        let mut out = Array::new(self.interp.clone(), start);
        self.read_into(start, stop, &mut out)?;
        Ok(out)
    }

    /// Reads entries `[start, stop)` into `out`, reusing its allocations.
    pub fn read_into(&mut self, start: u64, stop: u64, out: &mut Array) -> Result<()> {
        let name = &self.branch.name;
        if stop > self.branch.entries || start > stop {
            return Err(RootError::NotFound(format!(
                "entries {start}..{stop} of branch '{name}' with {} entries",
                self.branch.entries
            )));
        }
        out.start = start;
        out.entries = 0;
        out.data.clear();
        for o in out.offsets.iter_mut().chain(out.outer.iter_mut()) {
            o.clear();
            o.push(0);
        }
        let mut i = self
            .branch
            .baskets
            .partition_point(|b| b.first_entry + b.entries <= start);
        let mut e = start;
        while e < stop {
            let loc = self.branch.baskets.get(i).ok_or_else(|| {
                RootError::malformed(format!("branch '{name}': no basket for entry {e}"))
            })?;
            if self.current.as_ref().is_none_or(|(ci, _)| *ci != i) {
                // The previous basket's buffers hold the next one.
                let spare = match self.current.take() {
                    Some((_, b)) => b,
                    None => std::mem::take(&mut self.spare),
                };
                let mut raw = RawBasket::load(
                    self.file,
                    self.tree,
                    self.branch,
                    loc,
                    &mut self.scratch,
                    spare,
                )
                .context(|| format!("branch '{name}', basket {i}"))?;
                if raw.offsets.is_none() {
                    if let Shape::Var { counter, .. } = &self.interp.shape {
                        raw.offsets = Some(
                            self.offsets_from_counter(counter, loc, raw.data.len())
                                .context(|| format!("branch '{name}', basket {i}"))?,
                        );
                    }
                }
                if let Some(column) = &self.branch.column {
                    let item = self.interp.prim.disk_size() * self.interp.item_len();
                    column
                        .select(&mut raw, item)
                        .context(|| format!("branch '{name}', basket {i}"))?;
                }
                self.current = Some((i, raw));
            }
            let (_, raw) = self.current.as_ref().expect("loaded above");
            let a = (e - loc.first_entry) as usize;
            let b = (stop.min(loc.first_entry + loc.entries) - loc.first_entry) as usize;
            append_entries(raw, &self.interp, a, b, out)
                .context(|| format!("branch '{name}', basket {i}"))?;
            e = loc.first_entry + b as u64;
            i += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYLEN: usize = 70;

    fn stored(offsets: &[usize]) -> Vec<i32> {
        offsets.iter().map(|&o| (o + KEYLEN) as i32).collect()
    }

    #[test]
    fn offsets_that_run_backwards_or_outside_are_errors() {
        assert_eq!(
            checked_offsets(&stored(&[0, 4, 4, 12]), KEYLEN, 16).unwrap(),
            vec![0, 4, 4, 12, 16]
        );
        for bad in [&[0, 12, 4][..], &[8, 0], &[0, 20], &[16, 16, 8]] {
            let err = checked_offsets(&stored(bad), KEYLEN, 16).unwrap_err();
            assert!(err.to_string().contains("entry offset"), "{bad:?}: {err}");
        }
        assert!(checked_offsets(&[(KEYLEN as i32) - 1], KEYLEN, 16).is_err());
        assert!(checked_offsets(&[i32::MIN], KEYLEN, 16).is_err());
    }

    /// A basket whose offsets were not checked (built by hand) gets an error from the decoder,
    /// not a slice panic.
    #[test]
    fn decoding_backwards_offsets_is_an_error_not_a_panic() {
        let interp = Interp {
            prim: Prim::F32,
            shape: Shape::Var {
                counter: "n".into(),
                inner: vec![],
            },
        };
        for offsets in [vec![0, 8, 4, 12], vec![0, 4, 40, 12], vec![0, 4]] {
            let basket = RawBasket {
                data: vec![0; 12],
                offsets: Some(offsets.clone()),
                nev: 3,
            };
            let mut out = Array::new(interp.clone(), 0);
            let r = append_entries(&basket, &interp, 0, 3, &mut out);
            assert!(r.is_err(), "{offsets:?}");
        }
    }

    /// fBits words: a referenced object's (0x10) is followed by its 2-byte process id, which is
    /// skipped; a scalar basket of 4- and 6-byte entries reads one word per entry.
    #[test]
    fn fbits_skip_the_process_id_of_referenced_objects() {
        let bytes = [0, 0, 0, 0x18, 0, 1, 2, 0, 0, 8, 0, 0, 0, 0x10, 0, 3];
        let mut out = Data::U32(Vec::new());
        decode_bits(&bytes, &mut out).unwrap();
        assert_eq!(out, Data::U32(vec![0x18, 0x0200_0008, 0x10]));
        // The id cut off, or half a word: errors.
        for cut in [&bytes[..4], &bytes[..15], &bytes[..8]] {
            assert!(decode_bits(cut, &mut Data::U32(Vec::new())).is_err());
        }
        let interp = Interp {
            prim: Prim::Bits,
            shape: Shape::Scalar,
        };
        let basket = RawBasket {
            data: bytes.to_vec(),
            offsets: Some(vec![0, 6, 10, 16]),
            nev: 3,
        };
        let mut out = Array::new(interp.clone(), 0);
        append_entries(&basket, &interp, 1, 3, &mut out).unwrap();
        assert_eq!(out.data, Data::U32(vec![0x0200_0008, 0x10]));
        // An entry of two words is not one fBits.
        let basket = RawBasket {
            data: bytes.to_vec(),
            offsets: Some(vec![0, 10, 16]),
            nev: 2,
        };
        let mut out = Array::new(interp.clone(), 0);
        assert!(append_entries(&basket, &interp, 0, 2, &mut out).is_err());
    }
}
