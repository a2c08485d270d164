//! One branch being written: its spec, its pending basket, and how baskets are encoded and
//! written.

use super::file::FileWriter;
use super::template::*;
use crate::compress::{compress, Compression};
use crate::error::{Result, RootError};
use crate::file::KeyHeader;
use crate::object::{Object, Ptr, Value};
use crate::rbuf::{WBuf, BYTE_COUNT_MASK};
use crate::read::{Array, Data};
use crate::tree::{Interp, Prim, Shape};
use std::collections::VecDeque;

/// A branch to create.
#[derive(Debug, Clone)]
pub struct BranchSpec {
    /// Branch name.
    pub name: String,
    /// Element type and entry shape.
    pub interp: Interp,
    /// Compression of this branch's baskets; `None`: the file's.
    pub compression: Option<Compression>,
}

impl BranchSpec {
    /// A branch of element type `prim` and entry shape `shape`.
    pub fn new(name: &str, prim: Prim, shape: Shape) -> Self {
        BranchSpec {
            name: name.to_string(),
            interp: Interp { prim, shape },
            compression: None,
        }
    }
    /// A branch of one `prim` value per entry.
    pub fn scalar(name: &str, prim: Prim) -> Self {
        Self::new(name, prim, Shape::Scalar)
    }
    /// The same branch with its own compression (ROOT's `TBranch::SetCompressionSettings`).
    pub fn with_compression(mut self, c: Compression) -> Self {
        self.compression = Some(c);
        self
    }
}

/// Where clusters end: entries at which every branch of the tree starts a new basket.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Clusters {
    /// Not decided yet: the first cluster ends once this many compressed bytes were written
    /// (ROOT's negative `fAutoFlush`).
    Bytes(i64),
    /// Every `size` entries (a positive `fAutoFlush`), counted from entry `from`: the start of
    /// the tree's last cluster range (0 when none was marked).
    Every { size: u64, from: u64 },
    /// At these entries, sorted (a decorated copy keeps the input's clusters).
    At(Vec<u64>),
    /// None (`fAutoFlush = 0`).
    Off,
}

impl Clusters {
    pub(super) fn is_boundary(&self, e: u64) -> bool {
        match self {
            Clusters::Every { size, from } => {
                *size > 0 && e > *from && (e - from).is_multiple_of(*size)
            }
            Clusters::At(v) => v.binary_search(&e).is_ok(),
            Clusters::Bytes(_) | Clusters::Off => false,
        }
    }
    /// The first entry count after `e` that [`Clusters::is_boundary`] holds for (None: none).
    fn next_after(&self, e: u64) -> Option<u64> {
        match self {
            Clusters::Every { size, from } if *size > 0 => {
                Some(from + (e.saturating_sub(*from) / size + 1) * size)
            }
            Clusters::At(v) => v.get(v.partition_point(|&b| b <= e)).copied(),
            _ => None,
        }
    }
}

/// What a branch needs from its tree to write a basket.
pub(super) struct Ctx<'a> {
    pub(super) tree: &'a str,
    /// fSeekPdir of the baskets: the tree's directory.
    pub(super) pdir: u64,
    pub(super) clusters: &'a Clusters,
}

/// A branch being written: its object (from the template), pending basket bytes, and where
/// its baskets went.
pub(super) struct BranchOut {
    pub(super) spec: BranchSpec,
    pub(super) obj: Object,
    pub(super) leaf_tag: u32,
    pub(super) var: bool,
    pub(super) item_size: usize,
    pub(super) compression: Compression,
    pub(super) buf: Vec<u8>,
    pub(super) offs: Vec<u32>,
    pub(super) nev: u64,
    pub(super) entries: u64,
    pub(super) baskets: Vec<(u64, i32, u64)>,
    pub(super) tot: i64,
    pub(super) zip: i64,
    pub(super) max_count: i64,
    pub(super) max_str: usize,
    /// The largest entry-offset table of its baskets (ROOT's fEntryOffsetLen grows with it).
    pub(super) offset_len: usize,
    /// Some variable-size branch counts its entries with this one.
    pub(super) is_counter: bool,
    /// A counter's values not yet checked against the arrays it counts, from entry `cq_start`.
    pub(super) cq: VecDeque<i64>,
    pub(super) cq_start: u64,
    /// A variable array counted by another branch of this writer: that branch's index, the
    /// row counts of entries not yet checked against it, and how many entries were checked.
    pub(super) counter: Option<usize>,
    pub(super) vq: VecDeque<u64>,
    pub(super) verified: u64,
}

/// Checks that an array's data and offsets agree with its entry count and the branch's type
/// (so that encoding it cannot go out of bounds).
pub(super) fn check_array(spec: &BranchSpec, a: &Array) -> Result<()> {
    let bad = |msg: String| {
        Err(RootError::malformed(format!(
            "branch '{}': {msg}",
            spec.name
        )))
    };
    if a.interp != spec.interp {
        return bad(format!(
            "is {}, given {}",
            spec.interp.type_name(),
            a.interp.type_name()
        ));
    }
    let want = Data::empty(spec.interp.prim);
    if std::mem::discriminant(&want) != std::mem::discriminant(&a.data) {
        return bad(format!(
            "{} data for a {} branch",
            a.data.len(),
            spec.interp.type_name()
        ));
    }
    let n = usize::try_from(a.entries).map_err(|_| RootError::malformed("entry count"))?;
    let item = spec.interp.item_len().max(1);
    match (&spec.interp.shape, &a.offsets) {
        (Shape::Scalar | Shape::Fixed(_), None) => {
            if n.checked_mul(item) != Some(a.data.len()) {
                return bad(format!(
                    "{} entries of {item} values need {} values, given {}",
                    n,
                    n.saturating_mul(item),
                    a.data.len()
                ));
            }
        }
        (Shape::Var { .. } | Shape::Vector | Shape::String { .. }, Some(o)) => {
            if o.len() != n + 1 || o.windows(2).any(|w| w[0] > w[1]) {
                return bad(format!(
                    "{} offsets (not increasing, or not entries + 1 = {})",
                    o.len(),
                    n + 1
                ));
            }
            let row = match &spec.interp.shape {
                Shape::Var { inner, .. } => inner.iter().product::<usize>().max(1),
                _ => 1,
            };
            if o[n].checked_mul(row).is_none_or(|end| end > a.data.len()) {
                return bad(format!(
                    "offsets reach {} rows of {row}, data has {} values",
                    o[n],
                    a.data.len()
                ));
            }
        }
        (_, Some(_)) => return bad("offsets given for a fixed-size branch".into()),
        (_, None) => return bad("no offsets for a variable-size branch".into()),
    }
    Ok(())
}

impl BranchOut {
    pub(super) fn new(
        spec: &BranchSpec,
        counter_tag: Option<u32>,
        counter: Option<usize>,
        compression: Compression,
    ) -> Result<Self> {
        let t = template()?;
        let i = &spec.interp;
        if spec.name.is_empty() || spec.name.contains(['/', '[', ']']) {
            return Err(RootError::unsupported(format!(
                "branch name '{}' (empty, or with '/', '[' or ']')",
                spec.name
            )));
        }
        let tname = match &i.shape {
            Shape::Scalar | Shape::Fixed(_) | Shape::Var { .. } => {
                format!("leaf_{}", leaf_code(i.prim)?)
            }
            Shape::Vector => format!("vec_{}", vector_cpp(i.prim)?),
            Shape::Nested { .. } => {
                return Err(RootError::unsupported(format!(
                    "writing branch '{}' of {}",
                    spec.name,
                    i.type_name()
                )))
            }
            Shape::String { .. } => {
                if i.prim != Prim::U8 {
                    return Err(RootError::unsupported(format!(
                        "string branch '{}' of {} (strings are bytes: Prim::U8)",
                        spec.name,
                        i.prim.name()
                    )));
                }
                "leaf_C".into()
            }
        };
        if let Shape::Fixed(d) | Shape::Var { inner: d, .. } = &i.shape {
            if d.contains(&0) || (matches!(i.shape, Shape::Fixed(_)) && d.is_empty()) {
                return Err(RootError::unsupported(format!(
                    "branch '{}' with dimensions {d:?}",
                    spec.name
                )));
            }
        }
        let tb = t.tree.branch(&tname)?;
        let mut obj = t
            .tree
            .branch_object(&tb.path)
            .cloned()
            .ok_or_else(|| RootError::malformed("template branch"))?;
        retag(&mut obj);
        let dims = |d: &[usize]| d.iter().map(|n| format!("[{n}]")).collect::<String>();
        let (leaf_title, code) = match &i.shape {
            Shape::Scalar => (spec.name.clone(), leaf_code(i.prim)?.to_string()),
            Shape::Fixed(d) => (
                format!("{}{}", spec.name, dims(d)),
                leaf_code(i.prim)?.to_string(),
            ),
            Shape::Var { counter, inner } => (
                format!("{}[{counter}]{}", spec.name, dims(inner)),
                leaf_code(i.prim)?.to_string(),
            ),
            Shape::String { .. } => (spec.name.clone(), "C".into()),
            Shape::Vector | Shape::Nested { .. } => (spec.name.clone(), String::new()),
        };
        // A Float16_t/Double32_t range is part of both titles (`x/d[0,1,20]`), as ROOT
        // keeps the leaf list's text: ROOT and uproot read the range from there.
        let bracket = packed_bracket(&spec.name, i.prim)?;
        let code = format!("{code}{bracket}");
        let leaf_title = if bracket.is_empty() {
            leaf_title
        } else {
            format!("{leaf_title}/{code}")
        };
        let var = matches!(
            i.shape,
            Shape::Var { .. } | Shape::Vector | Shape::String { .. }
        );
        set_str(&mut obj, "fName", &spec.name)?;
        if i.shape == Shape::Vector {
            set_str(&mut obj, "fTitle", &spec.name)?;
        } else {
            let title = if bracket.is_empty() {
                format!("{leaf_title}/{code}")
            } else {
                leaf_title.clone()
            };
            set_str(&mut obj, "fTitle", &title)?;
            obj.set_int(
                "fEntryOffsetLen",
                if var { ENTRY_OFFSET_LEN as i64 } else { 0 },
            )?;
        }
        obj.set_int("fCompress", compression.setting() as i64)?;
        obj.set_int("fBasketSize", BASKET_SIZE as i64)?;
        let item_size = i.prim.disk_size() * i.item_len();
        let (leaf, leaf_tag) = leaf_mut(&mut obj)?;
        set_str(leaf, "fName", &spec.name)?;
        set_str(leaf, "fTitle", &leaf_title)?;
        if i.shape != Shape::Vector {
            leaf.set_int("fLen", i.item_len() as i64)?;
        }
        if let Some(tag) = counter_tag {
            set(leaf, "fLeafCount", Value::Ptr(Ptr::Ref(tag)))?;
        } else if matches!(i.shape, Shape::Var { .. }) {
            return Err(RootError::malformed(format!(
                "branch '{}': counter branch not found",
                spec.name
            )));
        }
        Ok(BranchOut {
            spec: spec.clone(),
            obj,
            leaf_tag,
            var,
            item_size,
            compression,
            buf: Vec::new(),
            offs: Vec::new(),
            nev: 0,
            entries: 0,
            baskets: Vec::new(),
            tot: 0,
            zip: 0,
            max_count: 0,
            max_str: 0,
            offset_len: ENTRY_OFFSET_LEN,
            is_counter: false,
            cq: VecDeque::new(),
            cq_start: 0,
            counter,
            vq: VecDeque::new(),
            verified: 0,
        })
    }

    pub(super) fn append(&mut self, fw: &mut FileWriter, ctx: &Ctx, a: &Array) -> Result<()> {
        check_array(&self.spec, a)?;
        let n = a.entries as usize;
        let fixed = matches!(self.spec.interp.shape, Shape::Scalar | Shape::Fixed(_));
        if fixed && !self.var && !self.is_counter && a.offsets.is_none() && a.outer.is_empty() {
            return self.append_fixed(fw, ctx, a, n);
        }
        let row = match &self.spec.interp.shape {
            Shape::Var { inner, .. } => inner.iter().product::<usize>().max(1),
            _ => 1,
        };
        for e in 0..n {
            let r = a.entry_range(e);
            if self.var {
                self.offs.push(self.buf.len() as u32);
            }
            match &self.spec.interp.shape {
                Shape::Vector => {
                    let len = r.len();
                    let bytes = 10 + len * self.spec.interp.prim.disk_size();
                    let count = u32::try_from(bytes - 4)
                        .ok()
                        .filter(|&c| c < BYTE_COUNT_MASK)
                        .ok_or_else(|| {
                            RootError::unsupported(format!(
                                "branch '{}': a vector of {len} values in one entry",
                                self.spec.name
                            ))
                        })?;
                    self.buf
                        .extend_from_slice(&(count | BYTE_COUNT_MASK).to_be_bytes());
                    self.buf.extend_from_slice(&10u16.to_be_bytes());
                    self.buf.extend_from_slice(&(len as u32).to_be_bytes());
                    encode(self.spec.interp.prim, &a.data, r, &mut self.buf);
                }
                Shape::String { .. } => {
                    let Data::U8(v) = &a.data else {
                        return Err(RootError::malformed("string data must be bytes"));
                    };
                    let s = &v[r];
                    self.max_str = self.max_str.max(s.len());
                    let mut w = WBuf::new(0);
                    w.tstring(s);
                    self.buf.extend_from_slice(&w.data);
                }
                Shape::Var { .. } => {
                    encode(
                        self.spec.interp.prim,
                        &a.data,
                        r.start * row..r.end * row,
                        &mut self.buf,
                    );
                    if self.counter.is_some() {
                        self.vq.push_back(r.len() as u64);
                    }
                }
                _ => encode(self.spec.interp.prim, &a.data, r, &mut self.buf),
            }
            if self.is_counter {
                // Counters need their largest value recorded (ROOT sizes arrays with it), and
                // their values are checked against the arrays they count.
                let v = a.data.get_f64(e) as i64;
                self.max_count = self.max_count.max(v);
                self.cq.push_back(v);
            }
            if self.buf.len() > u32::MAX as usize / 2 {
                return Err(RootError::unsupported(format!(
                    "branch '{}': one basket over 2 GB",
                    self.spec.name
                )));
            }
            self.nev += 1;
            self.entries += 1;
            if self.basket_due(ctx) {
                self.flush(fw, ctx)?;
            }
        }
        Ok(())
    }

    /// Whether the pending entries make a basket now: it is full (its values and entry
    /// offsets), or the tree's next cluster starts here.
    fn basket_due(&self, ctx: &Ctx) -> bool {
        self.buf.len() + 4 * self.offs.len() >= BASKET_SIZE
            || ctx.clusters.is_boundary(self.entries)
    }

    /// [`BranchOut::append`] for entries of one size: the runs of entries between two basket
    /// flushes (a full basket, a cluster boundary: [`BranchOut::basket_due`], with no entry
    /// offsets here) are encoded at once; the baskets are the same as entry by entry.
    fn append_fixed(&mut self, fw: &mut FileWriter, ctx: &Ctx, a: &Array, n: usize) -> Result<()> {
        let item = self.item_size.max(1);
        let values = self.spec.interp.item_len();
        let mut e = 0;
        while e < n {
            let room = BASKET_SIZE
                .saturating_sub(self.buf.len())
                .div_ceil(item)
                .max(1);
            let bound = ctx
                .clusters
                .next_after(self.entries)
                .map_or(usize::MAX, |b| {
                    usize::try_from(b - self.entries).unwrap_or(usize::MAX)
                });
            let k = room.min(bound).min(n - e);
            encode(
                self.spec.interp.prim,
                &a.data,
                e * values..(e + k) * values,
                &mut self.buf,
            );
            self.nev += k as u64;
            self.entries += k as u64;
            e += k;
            if self.basket_due(ctx) {
                self.flush(fw, ctx)?;
            }
        }
        Ok(())
    }

    /// Writes the pending entries as one basket.
    pub(super) fn flush(&mut self, fw: &mut FileWriter, ctx: &Ctx) -> Result<()> {
        if self.nev == 0 {
            return Ok(());
        }
        // ROOT 6.40 gives every basket a 64-bit key, whatever its position.
        let keylen = KeyHeader::len_for(1004, "TBasket", &self.spec.name, ctx.tree) + BASKET_FIELDS;
        let border = self.buf.len();
        let mut payload = std::mem::take(&mut self.buf);
        let mut nevbufsize = self.item_size;
        if self.var {
            // The entry offsets (counted from the key's start), then a last slot ROOT leaves 0;
            // the table's size doubles from 1000 until it holds them all, as ROOT's does.
            nevbufsize = ENTRY_OFFSET_LEN;
            while nevbufsize <= self.offs.len() {
                nevbufsize *= 2;
            }
            self.offset_len = self.offset_len.max(nevbufsize);
            payload.extend_from_slice(&((self.offs.len() + 1) as i32).to_be_bytes());
            for &o in &self.offs {
                payload.extend_from_slice(&((o as usize + keylen) as i32).to_be_bytes());
            }
            payload.extend_from_slice(&0i32.to_be_bytes());
        }
        let first = self.entries - self.nev;
        let (seek, nbytes) = write_basket(
            fw,
            ctx,
            &self.spec.name,
            keylen,
            &payload,
            border,
            self.nev,
            nevbufsize,
            self.compression,
        )?;
        self.baskets.push((seek, nbytes, first));
        self.tot += (payload.len() + keylen) as i64;
        self.zip += nbytes as i64;
        payload.clear();
        self.buf = payload;
        self.offs.clear();
        self.nev = 0;
        Ok(())
    }

    /// Sets the branch object's bookkeeping after the last flush.
    pub(super) fn finalise(&mut self) -> Result<()> {
        let n = self.baskets.len();
        let max = (n + 1).max(10);
        let mut bytes = vec![Value::I32(0); max];
        let mut entry = vec![Value::I64(0); max];
        let mut seek = vec![Value::I64(0); max];
        for (i, &(s, b, f)) in self.baskets.iter().enumerate() {
            bytes[i] = Value::I32(b);
            entry[i] = Value::I64(f as i64);
            seek[i] = Value::I64(s as i64);
        }
        entry[n] = Value::I64(self.entries as i64);
        let o = &mut self.obj;
        o.set_int("fMaxBaskets", max as i64)?;
        set(o, "fBasketBytes", Value::BasicPtr(Some(bytes)))?;
        set(o, "fBasketEntry", Value::BasicPtr(Some(entry)))?;
        set(o, "fBasketSeek", Value::BasicPtr(Some(seek)))?;
        o.set_int("fWriteBasket", n as i64)?;
        o.set_int("fEntryNumber", self.entries as i64)?;
        o.set_int("fEntries", self.entries as i64)?;
        o.set_int("fTotBytes", self.tot)?;
        o.set_int("fZipBytes", self.zip)?;
        if self.var {
            o.set_int("fEntryOffsetLen", self.offset_len as i64)?;
        }
        if let Some(items) = o.array_items_mut("fBaskets") {
            items.clear();
        }
        let (max_count, max_str, shape) =
            (self.max_count, self.max_str, self.spec.interp.shape.clone());
        let is_counter = self.is_counter;
        let (leaf, _) = leaf_mut(o)?;
        match shape {
            Shape::Scalar if is_counter => {
                // A leaf-count leaf: ROOT marks it as a range and records its maximum.
                leaf.set_int("fMaximum", max_count)?;
                leaf.set_int("fIsRange", 1)?;
            }
            Shape::String { .. } => {
                leaf.set_int("fLen", max_str as i64 + 1)?;
                leaf.set_int("fMaximum", max_str as i64 + 1)?;
            }
            _ => {}
        }
        Ok(())
    }
}

pub(super) fn encode(p: Prim, d: &Data, r: std::ops::Range<usize>, out: &mut Vec<u8>) {
    if let Prim::Packed {
        low,
        high,
        bits,
        double,
    } = p
    {
        match d {
            Data::F32(v) => v[r]
                .iter()
                .for_each(|&x| encode_packed(f64::from(x), low, high, bits, double, out)),
            Data::F64(v) => v[r]
                .iter()
                .for_each(|&x| encode_packed(x, low, high, bits, double, out)),
            // (check_array admits only the float data of the branch's type)
            _ => {}
        }
        return;
    }
    macro_rules! be {
        ($v:expr) => {
            for x in &$v[r] {
                out.extend_from_slice(&x.to_be_bytes());
            }
        };
    }
    match d {
        Data::Bool(v) => out.extend(v[r].iter().map(|&b| b as u8)),
        Data::I8(v) => be!(v),
        Data::U8(v) => out.extend_from_slice(&v[r]),
        Data::I16(v) => be!(v),
        Data::U16(v) => be!(v),
        Data::I32(v) => be!(v),
        Data::U32(v) => be!(v),
        Data::I64(v) => be!(v),
        Data::U64(v) => be!(v),
        Data::F32(v) => be!(v),
        Data::F64(v) => be!(v),
    }
}

/// Float16_t / Double32_t encoding, as ROOT's `TBufferFile::WriteFloat16`/`WriteDouble32`:
/// with a range, `UInt_t(0.5 + factor (x - low))` with x clamped to it ([`Prim::packed_factor`]);
/// without one, the truncated-mantissa form (exponent byte, then the mantissa rounded to
/// `bits` bits with the sign above it); a Double32_t without any bracket is a float.
fn encode_packed(x: f64, low: f64, high: f64, bits: u32, double: bool, out: &mut Vec<u8>) {
    if low == 0.0 && high == 0.0 {
        if double && bits == 0 {
            out.extend_from_slice(&(x as f32).to_be_bytes());
            return;
        }
        let f = x as f32;
        let i = f.to_bits();
        let exp = ((i << 1) >> 24) as u8;
        let mut man = (((1u32 << (bits + 1)) - 1) & (i >> (23 - bits - 1))) as u16;
        man = man.wrapping_add(1) >> 1;
        if man & (1 << bits) != 0 {
            man = (1 << bits) - 1;
        }
        if f < 0.0 {
            man |= 1 << (bits + 1);
        }
        out.push(exp);
        out.extend_from_slice(&man.to_be_bytes());
        return;
    }
    let factor = Prim::packed_factor(low, high, bits);
    let x = x.clamp(low, high);
    let a = (0.5 + factor * (x - low)).min(u32::MAX as f64) as u32;
    out.extend_from_slice(&a.to_be_bytes());
}

/// The bracket of a Float16_t/Double32_t type as ROOT writes it in a leaf title (`[low,high,bits]`,
/// `[0,0,bits]` for a truncated mantissa), empty for the plain forms (Float16_t of 12 bits,
/// Double32_t stored as a float); other primitives: empty. Refuses what ROOT cannot store.
pub(super) fn packed_bracket(name: &str, p: Prim) -> Result<String> {
    let Prim::Packed {
        low,
        high,
        bits,
        double,
    } = p
    else {
        return Ok(String::new());
    };
    let bad = |what: &str| {
        Err(RootError::unsupported(format!(
            "branch '{name}': {} with {what}",
            if double { "Double32_t" } else { "Float16_t" }
        )))
    };
    if low == 0.0 && high == 0.0 {
        if (double && bits == 0) || (!double && bits == 12) {
            return Ok(String::new());
        }
        if !(2..=14).contains(&bits) {
            return bad(&format!("a truncated mantissa of {bits} bits (2 to 14)"));
        }
        return Ok(format!("[0,0,{bits}]"));
    }
    if !(low.is_finite() && high.is_finite() && low < high && (2..=32).contains(&bits)) {
        return bad(&format!("range [{low},{high}] in {bits} bits"));
    }
    Ok(format!("[{low},{high},{bits}]"))
}

/// Writes one basket with a 64-bit key; returns (seek, nbytes).
#[allow(clippy::too_many_arguments)]
pub(super) fn write_basket(
    fw: &mut FileWriter,
    ctx: &Ctx,
    branch: &str,
    keylen: usize,
    payload: &[u8],
    border: usize,
    nev: u64,
    nevbufsize: usize,
    compression: Compression,
) -> Result<(u64, i32)> {
    let z = compress(payload, compression)?;
    let data = z.as_deref().unwrap_or(payload);
    let nbytes = keylen + data.len();
    let too_big = || RootError::unsupported(format!("branch '{branch}': a basket over 2 GB"));
    let nbytes_i = i32::try_from(nbytes).map_err(|_| too_big())?;
    let objlen = i32::try_from(payload.len()).map_err(|_| too_big())?;
    let last = i32::try_from(border + keylen).map_err(|_| too_big())?;
    let seek = fw.alloc(nbytes as u64);
    let mut w = WBuf::new(0);
    KeyHeader {
        nbytes: nbytes_i,
        version: 1004,
        objlen,
        datime: fw.datime(),
        keylen: keylen as i16,
        cycle: 1,
        seek_key: seek,
        seek_pdir: ctx.pdir,
        class: "TBasket".into(),
        name: branch.into(),
        title: ctx.tree.into(),
    }
    .write(&mut w);
    w.i16(3);
    w.i32(BASKET_SIZE.max(border + keylen) as i32);
    w.i32(nevbufsize as i32);
    w.i32(nev as i32);
    w.i32(last);
    w.u8(0);
    debug_assert_eq!(w.data.len(), keylen);
    w.bytes(data);
    fw.write_at(seek, &w.data)?;
    Ok((seek, nbytes_i))
}
