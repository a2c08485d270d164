//! Writing TTrees: new trees ([`TreeWriter`]), decorated copies whose original baskets are
//! copied byte for byte ([`clone_tree`]), and friend trees (a [`TreeWriter`] holding only the
//! new branches). TTree/TBranch/TLeaf objects are copies of the ones ROOT 6.40 wrote in the
//! template file, with their fields set; the TTree is serialised through the streamer-driven
//! object model like any other object.

use super::file::{DirId, FileWriter, BIG, TOP};
use crate::compress::{block_algorithm, compress, decompress, Compression};
use crate::error::{Context, Result, RootError};
use crate::file::{Directory, KeyHeader};
use crate::object::{fresh_tag, Body, Object, Ptr, Value, Writer};
use crate::rbuf::{RBuf, WBuf, BYTE_COUNT_MASK};
use crate::read::{Array, Data};
use crate::tree::{BasketSource, Interp, Prim, Shape, Tree};
use crate::RootFile;
use std::collections::VecDeque;
use std::sync::OnceLock;

const TEMPLATE_BYTES: &[u8] = include_bytes!("template-root-6.40.root");
/// ROOT's default basket size.
pub const BASKET_SIZE: usize = 32000;
/// ROOT's default `fAutoFlush`: the first cluster ends once 30 MB of compressed baskets were
/// written; later clusters have as many entries as the first.
pub const AUTO_FLUSH: i64 = -30_000_000;
/// ROOT's initial entry-offset table length (`TTree::fDefaultEntryOffsetLen`).
const ENTRY_OFFSET_LEN: usize = 1000;
/// The TBasket fields after the key header: version, fBufferSize, fNevBufSize, fNevBuf,
/// fLast, flag.
const BASKET_FIELDS: usize = 19;

struct Template {
    file: RootFile,
    tree: Tree,
}

fn template() -> Result<&'static Template> {
    static T: OnceLock<std::result::Result<Template, String>> = OnceLock::new();
    T.get_or_init(|| {
        let file = RootFile::from_static("template-root-6.40.root", TEMPLATE_BYTES)
            .map_err(|e| e.to_string())?;
        let tree = file.tree("template").map_err(|e| e.to_string())?;
        Ok(Template { file, tree })
    })
    .as_ref()
    .map_err(|e| RootError::malformed(format!("built-in ROOT template: {e}")))
}

/// The streamer infos of every class hepml writes (from ROOT 6.40).
pub fn template_streamers() -> Result<&'static crate::streamers::Streamers> {
    Ok(&template()?.file.streamers)
}

/// A branch to create.
#[derive(Debug, Clone)]
pub struct BranchSpec {
    pub name: String,
    pub interp: Interp,
    /// Compression of this branch's baskets; `None`: the file's.
    pub compression: Option<Compression>,
}

impl BranchSpec {
    pub fn new(name: &str, prim: Prim, shape: Shape) -> Self {
        BranchSpec {
            name: name.to_string(),
            interp: Interp { prim, shape },
            compression: None,
        }
    }
    pub fn scalar(name: &str, prim: Prim) -> Self {
        Self::new(name, prim, Shape::Scalar)
    }
    /// The same branch with its own compression (ROOT's `TBranch::SetCompressionSettings`).
    pub fn with_compression(mut self, c: Compression) -> Self {
        self.compression = Some(c);
        self
    }
}

fn leaf_code(p: Prim) -> Result<char> {
    Ok(match p {
        Prim::Bool => 'O',
        Prim::I8 => 'B',
        Prim::U8 => 'b',
        Prim::I16 => 'S',
        Prim::U16 => 's',
        Prim::I32 => 'I',
        Prim::U32 => 'i',
        Prim::I64 => 'L',
        Prim::U64 => 'l',
        Prim::F32 => 'F',
        Prim::F64 => 'D',
        Prim::Packed { .. } => {
            return Err(RootError::unsupported(
                "writing Float16_t/Double32_t branches",
            ))
        }
    })
}

fn vector_cpp(p: Prim) -> Result<&'static str> {
    Ok(match p {
        Prim::Bool => "bool",
        Prim::I8 => "char",
        Prim::U8 => "unsigned_char",
        Prim::I16 => "short",
        Prim::U16 => "unsigned_short",
        Prim::I32 => "int",
        Prim::U32 => "unsigned_int",
        Prim::I64 => "Long64_t",
        Prim::U64 => "ULong64_t",
        Prim::F32 => "float",
        Prim::F64 => "double",
        Prim::Packed { .. } => {
            return Err(RootError::unsupported(
                "std::vector of Float16_t/Double32_t",
            ))
        }
    })
}

/// Gives every object inside `o` a fresh tag, and remaps references among them.
fn retag(o: &mut Object) {
    fn collect(o: &mut Object, map: &mut std::collections::HashMap<u32, u32>) {
        let visit = |p: &mut Ptr, map: &mut std::collections::HashMap<u32, u32>| {
            if let Ptr::New { tag, obj } = p {
                let t = fresh_tag();
                map.insert(*tag, t);
                *tag = t;
                collect(obj, map);
            }
        };
        match &mut o.body {
            Body::Members(m) => {
                for (_, v) in m.iter_mut() {
                    match v {
                        Value::Ptr(p) => visit(p, map),
                        Value::Object(inner) => collect(inner, map),
                        _ => {}
                    }
                }
            }
            Body::ObjArray { items, .. } => items.iter_mut().for_each(|p| visit(p, map)),
            Body::List { items, .. } => items.iter_mut().for_each(|(p, _)| visit(p, map)),
            _ => {}
        }
    }
    fn remap(o: &mut Object, map: &std::collections::HashMap<u32, u32>) {
        let fix = |p: &mut Ptr| {
            if let Ptr::Ref(t) = p {
                if let Some(n) = map.get(t) {
                    *t = *n;
                }
            }
        };
        match &mut o.body {
            Body::Members(m) => {
                for (_, v) in m.iter_mut() {
                    match v {
                        Value::Ptr(p) => {
                            fix(p);
                            if let Ptr::New { obj, .. } = p {
                                remap(obj, map);
                            }
                        }
                        Value::Object(inner) => remap(inner, map),
                        _ => {}
                    }
                }
            }
            Body::ObjArray { items, .. } => items.iter_mut().for_each(|p| {
                fix(p);
                if let Ptr::New { obj, .. } = p {
                    remap(obj, map);
                }
            }),
            Body::List { items, .. } => items.iter_mut().for_each(|(p, _)| {
                fix(p);
                if let Ptr::New { obj, .. } = p {
                    remap(obj, map);
                }
            }),
            _ => {}
        }
    }
    let mut map = std::collections::HashMap::new();
    collect(o, &mut map);
    remap(o, &map);
}

fn set(o: &mut Object, name: &str, v: Value) -> Result<()> {
    let err = RootError::malformed(format!("{} has no member {name}", o.class));
    let slot = o.get_mut(name).ok_or(err)?;
    *slot = v;
    Ok(())
}
fn set_str(o: &mut Object, name: &str, s: &str) -> Result<()> {
    set(o, name, Value::Str(s.as_bytes().to_vec()))
}

/// The single leaf object of a branch object.
fn leaf_mut(b: &mut Object) -> Result<(&mut Object, u32)> {
    let items = b
        .array_items_mut("fLeaves")
        .ok_or_else(|| RootError::malformed("branch without fLeaves"))?;
    match items.first_mut() {
        Some(Ptr::New { tag, obj }) => Ok((obj, *tag)),
        _ => Err(RootError::malformed("template branch without its leaf")),
    }
}

/// Where clusters end: entries at which every branch of the tree starts a new basket.
#[derive(Debug, Clone, PartialEq)]
enum Clusters {
    /// Not decided yet: the first cluster ends once this many compressed bytes were written
    /// (ROOT's negative `fAutoFlush`).
    Bytes(i64),
    /// Every this many entries (a positive `fAutoFlush`).
    Every(u64),
    /// At these entries, sorted (a decorated copy keeps the input's clusters).
    At(Vec<u64>),
    /// None (`fAutoFlush = 0`).
    Off,
}

impl Clusters {
    fn is_boundary(&self, e: u64) -> bool {
        match self {
            Clusters::Every(c) => *c > 0 && e.is_multiple_of(*c),
            Clusters::At(v) => v.binary_search(&e).is_ok(),
            Clusters::Bytes(_) | Clusters::Off => false,
        }
    }
}

/// What a branch needs from its tree to write a basket.
struct Ctx<'a> {
    tree: &'a str,
    /// fSeekPdir of the baskets: the tree's directory.
    pdir: u64,
    clusters: &'a Clusters,
}

/// A branch being written: its object (from the template), pending basket bytes, and where
/// its baskets went.
struct BranchOut {
    spec: BranchSpec,
    obj: Object,
    leaf_tag: u32,
    var: bool,
    item_size: usize,
    compression: Compression,
    buf: Vec<u8>,
    offs: Vec<u32>,
    nev: u64,
    entries: u64,
    baskets: Vec<(u64, i32, u64)>,
    tot: i64,
    zip: i64,
    max_count: i64,
    max_str: usize,
    /// The largest entry-offset table of its baskets (ROOT's fEntryOffsetLen grows with it).
    offset_len: usize,
    /// Some variable-size branch counts its entries with this one.
    is_counter: bool,
    /// A counter's values not yet checked against the arrays it counts, from entry `cq_start`.
    cq: VecDeque<i64>,
    cq_start: u64,
    /// A variable array counted by another branch of this writer: that branch's index, the
    /// row counts of entries not yet checked against it, and how many entries were checked.
    counter: Option<usize>,
    vq: VecDeque<u64>,
    verified: u64,
}

/// Checks that an array's data and offsets agree with its entry count and the branch's type
/// (so that encoding it cannot go out of bounds).
fn check_array(spec: &BranchSpec, a: &Array) -> Result<()> {
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
    fn new(
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
            Shape::Vector => (spec.name.clone(), String::new()),
        };
        let var = matches!(
            i.shape,
            Shape::Var { .. } | Shape::Vector | Shape::String { .. }
        );
        set_str(&mut obj, "fName", &spec.name)?;
        if i.shape == Shape::Vector {
            set_str(&mut obj, "fTitle", &spec.name)?;
        } else {
            set_str(&mut obj, "fTitle", &format!("{leaf_title}/{code}"))?;
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

    fn append(&mut self, fw: &mut FileWriter, ctx: &Ctx, a: &Array) -> Result<()> {
        check_array(&self.spec, a)?;
        let n = a.entries as usize;
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
                    encode(&a.data, r, &mut self.buf);
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
                    encode(&a.data, r.start * row..r.end * row, &mut self.buf);
                    if self.counter.is_some() {
                        self.vq.push_back(r.len() as u64);
                    }
                }
                _ => encode(&a.data, r, &mut self.buf),
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
            if self.buf.len() + 4 * self.offs.len() >= BASKET_SIZE
                || ctx.clusters.is_boundary(self.entries)
            {
                self.flush(fw, ctx)?;
            }
        }
        Ok(())
    }

    /// Writes the pending entries as one basket.
    fn flush(&mut self, fw: &mut FileWriter, ctx: &Ctx) -> Result<()> {
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
    fn finalise(&mut self) -> Result<()> {
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

fn encode(d: &Data, r: std::ops::Range<usize>, out: &mut Vec<u8>) {
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

/// Writes one basket with a 64-bit key; returns (seek, nbytes).
#[allow(clippy::too_many_arguments)]
fn write_basket(
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

/// Writes a new tree, or new branches appended to a copied tree.
pub struct TreeWriter {
    name: String,
    title: String,
    branches: Vec<BranchOut>,
    /// For clones: the copied TTree object and the tags of its leaves by branch name.
    base: Option<Object>,
    base_leaf_tags: Vec<(String, u32)>,
    expected_entries: Option<u64>,
    clusters: Clusters,
    zip_since_cluster: i64,
    dir: DirId,
}

impl TreeWriter {
    /// A new tree with these branches, in the top directory. Counter branches of variable
    /// arrays must come first.
    pub fn new(fw: &mut FileWriter, name: &str, title: &str, specs: &[BranchSpec]) -> Result<Self> {
        if name.is_empty() || name.contains('/') {
            return Err(RootError::unsupported(format!(
                "tree name '{name}' (empty or with '/'; use set_directory)"
            )));
        }
        let mut w = TreeWriter {
            name: name.into(),
            title: title.into(),
            branches: Vec::new(),
            base: None,
            base_leaf_tags: Vec::new(),
            expected_entries: None,
            clusters: Clusters::Bytes(-AUTO_FLUSH),
            zip_since_cluster: 0,
            dir: TOP,
        };
        for s in specs {
            w.add_branch(fw, s)?;
        }
        Ok(w)
    }

    /// The directory the tree is written to (default: the top directory; a decorated copy:
    /// the input tree's directory, made in the output as in the input).
    pub fn set_directory(&mut self, dir: DirId) {
        self.dir = dir;
    }
    pub fn directory(&self) -> DirId {
        self.dir
    }

    /// ROOT's `TTree::SetAutoFlush` for a new tree, before any entry is filled: `n > 0`, a
    /// cluster every `n` entries; `n < 0`, the first cluster ends once `-n` compressed bytes
    /// were written (default [`AUTO_FLUSH`]) and later ones have as many entries; `0`, no
    /// clusters. Every branch starts a new basket where a cluster starts. A decorated copy keeps
    /// the input's clusters instead.
    pub fn set_auto_flush(&mut self, n: i64) -> Result<()> {
        if self.base.is_some() || self.branches.iter().any(|b| b.entries > 0) {
            return Err(RootError::unsupported(
                "auto-flush is set on a new tree before it is filled",
            ));
        }
        self.clusters = match n {
            0 => Clusters::Off,
            n if n > 0 => Clusters::Every(n as u64),
            n => Clusters::Bytes(n.saturating_neg()),
        };
        Ok(())
    }

    /// Adds a branch (before any entry is filled).
    pub fn add_branch(&mut self, fw: &FileWriter, spec: &BranchSpec) -> Result<usize> {
        if self.branches.iter().any(|b| b.entries > 0) {
            return Err(RootError::unsupported(format!(
                "adding branch '{}' after entries were filled",
                spec.name
            )));
        }
        if self.branches.iter().any(|b| b.spec.name == spec.name)
            || self.base_leaf_tags.iter().any(|(n, _)| *n == spec.name)
        {
            return Err(RootError::malformed(format!(
                "branch '{}' exists already",
                spec.name
            )));
        }
        let (counter_tag, counter) = match &spec.interp.shape {
            Shape::Var { counter, .. } => {
                if let Some(k) = self.branches.iter().position(|b| &b.spec.name == counter) {
                    let c = &mut self.branches[k];
                    if c.spec.interp.shape != Shape::Scalar
                        || matches!(
                            c.spec.interp.prim,
                            Prim::F32 | Prim::F64 | Prim::Bool | Prim::Packed { .. }
                        )
                    {
                        return Err(RootError::unsupported(format!(
                            "counter '{counter}' of '{}' must be an integer scalar",
                            spec.name
                        )));
                    }
                    c.is_counter = true;
                    (Some(c.leaf_tag), Some(k))
                } else {
                    let tag = self
                        .base_leaf_tags
                        .iter()
                        .find(|(n, _)| n == counter)
                        .map(|(_, t)| *t)
                        .ok_or_else(|| {
                            RootError::NotFound(format!(
                                "counter branch '{counter}' of '{}' (declare it first)",
                                spec.name
                            ))
                        })?;
                    (Some(tag), None)
                }
            }
            _ => (None, None),
        };
        let compression = spec.compression.unwrap_or(fw.compression());
        self.branches
            .push(BranchOut::new(spec, counter_tag, counter, compression)?);
        Ok(self.branches.len() - 1)
    }

    pub fn branch_index(&self, name: &str) -> Option<usize> {
        self.branches.iter().position(|b| b.spec.name == name)
    }

    /// Entries given to branch `k` so far.
    pub fn entries(&self, k: usize) -> Option<u64> {
        self.branches.get(k).map(|b| b.entries)
    }

    /// Appends entries to branch `k`: a chunk of a column, or a single entry when filling
    /// event by event. Branches may be filled in any order and chunking; each must end with
    /// the same number of entries.
    pub fn append(&mut self, fw: &mut FileWriter, k: usize, a: &Array) -> Result<()> {
        let pdir = fw.dir_seek(self.dir)?;
        let b = self
            .branches
            .get_mut(k)
            .ok_or_else(|| RootError::NotFound(format!("branch #{k}")))?;
        if let Some(n) = self.expected_entries {
            if b.entries + a.entries > n {
                return Err(RootError::malformed(format!(
                    "branch '{}' given {} entries, the tree has {n}",
                    b.spec.name,
                    b.entries + a.entries
                )));
            }
        }
        let before = b.zip;
        let ctx = Ctx {
            tree: &self.name,
            pdir,
            clusters: &self.clusters,
        };
        b.append(fw, &ctx, a)
            .context(|| format!("writing branch '{}'", b.spec.name))?;
        self.zip_since_cluster += b.zip - before;
        let counter = if b.is_counter { Some(k) } else { b.counter };
        if let Some(c) = counter {
            self.check_counts(c)?;
        }
        // ROOT's auto-flush by size: once enough went to disk, flush every branch at the
        // same entry; later clusters have the same number of entries.
        if let Clusters::Bytes(limit) = self.clusters {
            if self.zip_since_cluster >= limit {
                let entries = self.branches.iter().map(|b| b.entries).min().unwrap_or(0);
                if entries > 0 && self.branches.iter().all(|b| b.entries == entries) {
                    let ctx = Ctx {
                        tree: &self.name,
                        pdir,
                        clusters: &self.clusters,
                    };
                    for b in &mut self.branches {
                        b.flush(fw, &ctx)?;
                    }
                    self.clusters = Clusters::Every(entries);
                    self.zip_since_cluster = 0;
                }
            }
        }
        Ok(())
    }

    /// Checks the row counts of the arrays counted by branch `c` against its values, as far as
    /// both were filled, and forgets what was checked.
    fn check_counts(&mut self, c: usize) -> Result<()> {
        let deps: Vec<usize> = (0..self.branches.len())
            .filter(|&d| self.branches[d].counter == Some(c))
            .collect();
        let (cstart, centries) = (self.branches[c].cq_start, self.branches[c].entries);
        for &d in &deps {
            let upto = self.branches[d].entries.min(centries);
            while self.branches[d].verified < upto {
                let e = self.branches[d].verified;
                let want = self.branches[c].cq.get((e - cstart) as usize).copied();
                let got = self.branches[d].vq.pop_front();
                if want.is_none() || got.map(|g| g as i64) != want {
                    return Err(RootError::malformed(format!(
                        "entry {e}: branch '{}' has {} rows, its counter '{}' says {}",
                        self.branches[d].spec.name,
                        got.map_or("?".into(), |g| g.to_string()),
                        self.branches[c].spec.name,
                        want.map_or("?".into(), |w| w.to_string()),
                    )));
                }
                self.branches[d].verified += 1;
            }
        }
        let done = deps
            .iter()
            .map(|&d| self.branches[d].verified)
            .min()
            .unwrap_or(centries);
        let cb = &mut self.branches[c];
        while cb.cq_start < done && cb.cq.pop_front().is_some() {
            cb.cq_start += 1;
        }
        Ok(())
    }

    /// Flushes, checks entry counts, and writes the TTree object (and the streamer infos of
    /// the classes it uses). Returns its key.
    pub fn finish(mut self, fw: &mut FileWriter) -> Result<KeyHeader> {
        let name = self.name.clone();
        let entries = match self.expected_entries {
            Some(n) => n,
            None => self.branches.first().map(|b| b.entries).unwrap_or(0),
        };
        let pdir = fw.dir_seek(self.dir)?;
        let ctx = Ctx {
            tree: &name,
            pdir,
            clusters: &self.clusters,
        };
        for b in &mut self.branches {
            if b.entries != entries {
                return Err(RootError::malformed(format!(
                    "branch '{}' has {} entries, the tree {entries}",
                    b.spec.name, b.entries
                )));
            }
            b.flush(fw, &ctx)?;
        }
        for c in 0..self.branches.len() {
            if self.branches[c].is_counter {
                self.check_counts(c)?;
            }
        }
        for b in &mut self.branches {
            b.finalise()?;
        }
        let mut tree = match self.base.take() {
            Some(t) => t,
            None => {
                let mut t = template()?.tree.object.clone();
                retag(&mut t);
                if let Some(items) = t.array_items_mut("fBranches") {
                    items.clear();
                }
                if let Some(items) = t.array_items_mut("fLeaves") {
                    items.clear();
                }
                set_str(&mut t, "fName", &self.name)?;
                set_str(&mut t, "fTitle", &self.title)?;
                t.set_int("fEntries", entries as i64)?;
                t.set_int("fTotBytes", 0)?;
                t.set_int("fZipBytes", 0)?;
                t.set_int(
                    "fAutoFlush",
                    match self.clusters {
                        Clusters::Bytes(n) => n.saturating_neg(),
                        Clusters::Every(c) => c as i64,
                        Clusters::Off | Clusters::At(_) => 0,
                    },
                )?;
                t
            }
        };
        let (tot, zip): (i64, i64) = self
            .branches
            .iter()
            .map(|b| (b.tot, b.zip))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        tree.set_int("fTotBytes", tree.int("fTotBytes")? + tot)?;
        tree.set_int("fZipBytes", tree.int("fZipBytes")? + zip)?;
        let mut leaf_refs = Vec::new();
        let mut new_branches = Vec::new();
        for b in self.branches {
            leaf_refs.push(Ptr::Ref(b.leaf_tag));
            new_branches.push(Ptr::New {
                tag: fresh_tag(),
                obj: Box::new(b.obj),
            });
        }
        tree.array_items_mut("fBranches")
            .ok_or_else(|| RootError::malformed("TTree without fBranches"))?
            .extend(new_branches);
        tree.array_items_mut("fLeaves")
            .ok_or_else(|| RootError::malformed("TTree without fLeaves"))?
            .extend(leaf_refs);
        // Streamer infos: ROOT's for every class of the objects written (a decorated copy has
        // the input's list already; classes of the new branches it lacks are added).
        let mut classes = Vec::new();
        object_classes(&tree, &mut classes);
        fw.add_streamers(template_streamers()?, &classes);
        let title = tree.string("fTitle").unwrap_or_default();
        fw.write_object_in(self.dir, "TTree", &name, &title, |keylen| {
            let mut w = WBuf::new(keylen);
            Writer::new().write_object(&mut w, &tree)?;
            Ok(w.data)
        })
    }
}

/// Every (class, version) of the objects inside `o`, `o` included.
fn object_classes(o: &Object, out: &mut Vec<(String, i32)>) {
    let key = (o.class.clone(), o.version as i32);
    if !out.contains(&key) {
        out.push(key);
    }
    let ptr = |p: &Ptr, out: &mut Vec<(String, i32)>| {
        if let Ptr::New { obj, .. } = p {
            object_classes(obj, out);
        }
    };
    match &o.body {
        Body::Members(m) => {
            for (_, v) in m {
                match v {
                    Value::Object(inner) => object_classes(inner, out),
                    Value::Ptr(p) => ptr(p, out),
                    _ => {}
                }
            }
        }
        Body::ObjArray { items, .. } => items.iter().for_each(|p| ptr(p, out)),
        Body::List { items, .. } => items.iter().for_each(|(p, _)| ptr(p, out)),
        _ => {}
    }
}

/// The entries at which every branch of `tree` starts a basket (besides 0 and the end): the
/// input's clusters, which the new branches of a decorated copy follow.
fn common_basket_starts(tree: &Tree) -> Vec<u64> {
    let mut common: Option<Vec<u64>> = None;
    for b in &tree.branches {
        if b.baskets.is_empty() {
            continue;
        }
        let mut starts: Vec<u64> = b
            .baskets
            .iter()
            .map(|l| l.first_entry)
            .filter(|&e| e > 0 && e < tree.entries)
            .collect();
        starts.sort_unstable();
        common = Some(match common {
            None => starts,
            Some(c) => c
                .into_iter()
                .filter(|e| starts.binary_search(e).is_ok())
                .collect(),
        });
    }
    let mut v = common.unwrap_or_default();
    v.sort_unstable();
    v.dedup();
    v
}

/// Starts a decorated copy of `tree`: every original basket is copied into `fw` byte for byte
/// (only its key's position fields change), and the returned writer takes the new branches,
/// which must receive exactly `tree.entries` entries. The tree goes to the same directory
/// as in the input (made in the output if needed); the output gets the input's streamer list
/// plus whatever the new branches need.
pub fn clone_tree(
    input: &RootFile,
    tree: &Tree,
    fw: &mut FileWriter,
    new: &[BranchSpec],
) -> Result<TreeWriter> {
    let dir = match input_dir_path(input, tree.key.seek_pdir)? {
        Some(path) => {
            let mut d = TOP;
            for k in &path {
                d = fw.mkdir(d, &k.name, &k.title)?;
            }
            d
        }
        None => TOP,
    };
    clone_tree_in(input, tree, fw, new, dir)
}

fn clone_tree_in(
    input: &RootFile,
    tree: &Tree,
    fw: &mut FileWriter,
    new: &[BranchSpec],
    dir: DirId,
) -> Result<TreeWriter> {
    if fw.streamers.infos.is_empty() && fw.streamers.extra.is_empty() {
        // The input's list as it is (schema-rule lists included).
        fw.streamers = input.streamers.clone();
    } else {
        fw.streamers.merge(&input.streamers);
    }
    let pdir = fw.dir_seek(dir)?;
    let mut obj = tree.object.clone();
    let mut raw = Vec::new();
    for br in &tree.branches {
        let mut seeks: Vec<(usize, u64, i32)> = Vec::new();
        for (i, loc) in br.baskets.iter().enumerate() {
            let BasketSource::Disk { seek, nbytes } = loc.source else {
                continue;
            };
            input.read_at(seek, nbytes as usize, &mut raw)?;
            let (pos, n) = copy_basket(fw, &raw, pdir)
                .context(|| format!("copying basket {i} of branch '{}'", br.name))?;
            seeks.push((i, pos, n));
        }
        let bo = branch_object_mut(&mut obj, &br.path)
            .ok_or_else(|| RootError::malformed(format!("branch '{}' not found", br.name)))?;
        for (i, pos, n) in seeks {
            set_array_elem(bo, "fBasketSeek", i, Value::I64(pos as i64))?;
            set_array_elem(bo, "fBasketBytes", i, Value::I32(n))?;
        }
    }
    let mut base_leaf_tags = Vec::new();
    for br in &tree.branches {
        if let Some(bo) = tree.branch_object(&br.path) {
            if let Some(Ptr::New { tag, .. }) = bo.array_items("fLeaves").first() {
                base_leaf_tags.push((br.name.clone(), *tag));
            }
        }
    }
    let mut w = TreeWriter {
        name: tree.name.clone(),
        title: tree.title.clone(),
        branches: Vec::new(),
        base: Some(obj),
        base_leaf_tags,
        expected_entries: Some(tree.entries),
        clusters: Clusters::At(common_basket_starts(tree)),
        zip_since_cluster: 0,
        dir,
    };
    for s in new {
        w.add_branch(fw, s)?;
    }
    Ok(w)
}

/// The directory keys leading from the top of `input` to the directory whose `fSeekDir` is
/// `seek` (empty for the top directory), or None if no directory is there.
fn input_dir_path(input: &RootFile, seek: u64) -> Result<Option<Vec<KeyHeader>>> {
    fn search(
        input: &RootFile,
        d: &Directory,
        seek: u64,
        path: &mut Vec<KeyHeader>,
        depth: usize,
    ) -> Result<bool> {
        if depth > 64 {
            return Err(RootError::malformed(
                "directories nested over 64 deep (a cycle?)",
            ));
        }
        for k in &d.keys {
            if is_dir(k) {
                path.push(k.clone());
                if k.seek_key == seek {
                    return Ok(true);
                }
                let sub = input.subdirectory(k)?;
                if search(input, &sub, seek, path, depth + 1)? {
                    return Ok(true);
                }
                path.pop();
            }
        }
        Ok(false)
    }
    if seek == input.root.seek_dir || seek == input.begin || seek == 0 {
        return Ok(Some(Vec::new()));
    }
    let mut path = Vec::new();
    Ok(search(input, &input.root, seek, &mut path, 0)?.then_some(path))
}

fn is_dir(k: &KeyHeader) -> bool {
    k.class == "TDirectory" || k.class == "TDirectoryFile"
}

fn branch_object_mut<'a>(tree: &'a mut Object, path: &[usize]) -> Option<&'a mut Object> {
    let mut obj = tree;
    for &i in path {
        match obj.array_items_mut("fBranches")?.get_mut(i) {
            Some(Ptr::New { obj: o, .. }) => obj = o,
            _ => return None,
        }
    }
    Some(obj)
}

fn set_array_elem(o: &mut Object, member: &str, i: usize, v: Value) -> Result<()> {
    match o.get_mut(member) {
        Some(Value::BasicPtr(Some(items))) if i < items.len() => {
            items[i] = v;
            Ok(())
        }
        _ => Err(RootError::malformed(format!("{member}[{i}] missing"))),
    }
}

/// Copies one on-disk basket (key + compressed payload). The payload is copied byte for byte;
/// only fSeekKey/fSeekPdir change. A basket with a 32-bit key that must land beyond 2 GB gets a
/// 64-bit key, which is 8 bytes longer: fLast and, for variable-size entries, the entry offsets
/// (stored inside the payload, counted from the key's start) shift by 8, so that payload is
/// decompressed, shifted and recompressed — its values stay bit-identical.
fn copy_basket(fw: &mut FileWriter, raw: &[u8], pdir: u64) -> Result<(u64, i32)> {
    let mut b = RBuf::new(raw, 0);
    let mut kh = KeyHeader::read(&mut b)?;
    let keylen = kh.keylen as usize;
    if raw.len() < keylen || kh.nbytes as usize != raw.len() || keylen < BASKET_FIELDS {
        return Err(RootError::malformed(format!(
            "basket key: {} bytes, key length {keylen}, read {}",
            kh.nbytes,
            raw.len()
        )));
    }
    let tail = &raw[keylen - BASKET_FIELDS..keylen]; // TBasket fields after the key header
    if kh.version > 1000 || fw.end() + raw.len() as u64 + 8 < BIG {
        let pos = fw.alloc(raw.len() as u64);
        kh.seek_key = pos;
        kh.seek_pdir = pdir;
        let mut w = WBuf::new(0);
        kh.write(&mut w);
        if w.data.len() + BASKET_FIELDS != keylen {
            return Err(RootError::malformed(format!(
                "basket key header of {} bytes in a key of {keylen}",
                w.data.len()
            )));
        }
        w.bytes(tail);
        w.bytes(&raw[keylen..]);
        fw.write_at(pos, &w.data)?;
        return Ok((pos, raw.len() as i32));
    }
    // Upgrade to a 64-bit key.
    let mut tb = RBuf::new(tail, 0);
    let (ver, bufsize, nevbufsize, nevbuf, last, flag) = (
        tb.i16()?,
        tb.i32()?,
        tb.i32()?,
        tb.i32()?,
        tb.i32()?,
        tb.u8()?,
    );
    let new_keylen = keylen + 8;
    let border = usize::try_from(last)
        .ok()
        .and_then(|l| l.checked_sub(keylen))
        .filter(|&b| b <= kh.objlen as usize)
        .ok_or_else(|| {
            RootError::malformed(format!(
                "basket fLast {last} outside its {} bytes after a {keylen}-byte key",
                kh.objlen
            ))
        })?;
    let mut payload = decompress(&raw[keylen..], kh.objlen as usize)?;
    let recompress = payload.len() > border;
    let data = if recompress {
        // Entry offsets follow the data: a count, then offsets that include the key length.
        let mut p = border + 4;
        while p + 4 <= payload.len() {
            let o =
                i32::from_be_bytes([payload[p], payload[p + 1], payload[p + 2], payload[p + 3]]);
            let shifted = if o == 0 { 0 } else { o + 8 };
            payload[p..p + 4].copy_from_slice(&shifted.to_be_bytes());
            p += 4;
        }
        let setting = block_algorithm(&raw[keylen..])
            .map(|a| Compression {
                algorithm: a,
                level: 1,
            })
            .unwrap_or(Compression::NONE);
        compress(&payload, setting)?.unwrap_or_else(|| payload.clone())
    } else {
        raw[keylen..].to_vec()
    };
    let nbytes = new_keylen + data.len();
    let pos = fw.alloc(nbytes as u64);
    kh.version += 1000;
    kh.keylen = new_keylen as i16;
    kh.nbytes = i32::try_from(nbytes).map_err(|_| RootError::unsupported("basket over 2 GB"))?;
    kh.seek_key = pos;
    kh.seek_pdir = pdir;
    let mut w = WBuf::new(0);
    kh.write(&mut w);
    w.i16(ver);
    w.i32(bufsize);
    w.i32(nevbufsize);
    w.i32(nevbuf);
    w.i32(last + 8);
    w.u8(flag);
    if w.data.len() != new_keylen {
        return Err(RootError::malformed("basket key header length"));
    }
    w.bytes(&data);
    fw.write_at(pos, &w.data)?;
    Ok((pos, kh.nbytes))
}

/// Copies the other objects of `input` into `fw`: top-level and directory keys (histograms,
/// ...) byte for byte, other trees as decorated copies without new branches (their baskets
/// byte for byte), directories recreated with the same names and titles. The key at
/// `skip_tree` (a path such as `events` or `dir/events`: the tree that was decorated) is left
/// out, and only the highest cycle of each name is copied. Returns what could not be copied
/// (RNTuples, whose pages are not keys), as `path (reason)`.
pub fn copy_other_keys(
    input: &RootFile,
    skip_tree: &str,
    fw: &mut FileWriter,
) -> Result<Vec<String>> {
    let skip = skip_tree.trim_start_matches('/');
    let skip = skip.rsplit_once(';').map_or(skip, |(p, _)| p);
    // The copied objects' classes (a decorated copy has them already).
    fw.streamers.merge(&input.streamers);
    let mut skipped = Vec::new();
    copy_dir(input, &input.root, "", TOP, skip, fw, &mut skipped, 0)?;
    Ok(skipped)
}

#[allow(clippy::too_many_arguments)]
fn copy_dir(
    input: &RootFile,
    d: &Directory,
    prefix: &str,
    dir: DirId,
    skip: &str,
    fw: &mut FileWriter,
    skipped: &mut Vec<String>,
    depth: usize,
) -> Result<()> {
    if depth > 64 {
        return Err(RootError::malformed(
            "directories nested over 64 deep (a cycle?)",
        ));
    }
    let best = d.latest_keys();
    let mut raw = Vec::new();
    for k in best {
        let path = format!("{prefix}{}", k.name);
        if path == skip {
            continue;
        }
        match k.class.as_str() {
            "TDirectory" | "TDirectoryFile" => {
                let sub = input.subdirectory(k)?;
                let sd = fw.mkdir(dir, &k.name, &k.title)?;
                copy_dir(
                    input,
                    &sub,
                    &format!("{path}/"),
                    sd,
                    skip,
                    fw,
                    skipped,
                    depth + 1,
                )?;
            }
            "TTree" | "TNtuple" | "TNtupleD" => {
                let t = input.tree(&path)?;
                clone_tree_in(input, &t, fw, &[], dir)?
                    .finish(fw)
                    .context(|| format!("copying tree '{path}'"))?;
            }
            c if c.contains("RNTuple") => {
                skipped.push(format!("{path} ({c}: its pages are not keys)"));
            }
            _ if k.version <= 1000 && fw.needs_big_key(k.nbytes.max(0) as u64) => {
                // A 32-bit key cannot sit beyond 2 GB, and a 64-bit one is 8 bytes longer,
                // which moves the reference tags inside the object (they count from the key's
                // start): the object is read and streamed again for its new key.
                let obj = input
                    .read_object(k)
                    .context(|| format!("reading '{path}' ({})", k.class))?;
                fw.write_object_in(dir, &k.class, &k.name, &k.title, |keylen| {
                    let mut w = WBuf::new(keylen);
                    Writer::new().write_object(&mut w, &obj)?;
                    Ok(w.data)
                })
                .context(|| format!("copying '{path}' ({})", k.class))?;
            }
            _ => {
                input.read_at(k.seek_key, k.nbytes as usize, &mut raw)?;
                fw.copy_key_in(dir, &raw)
                    .context(|| format!("copying '{path}' ({})", k.class))?;
            }
        }
    }
    Ok(())
}
