//! Writing TTrees: new trees ([`TreeWriter`]), decorated copies whose original baskets are
//! copied byte for byte ([`clone_tree`]), and friend trees (a [`TreeWriter`] holding only the
//! new branches). TTree/TBranch/TLeaf objects are copies of the ones ROOT 6.40 wrote in the
//! template file, with their fields set; the TTree is serialised through the streamer-driven
//! object model like any other object.

use super::file::{FileWriter, BIG};
use crate::rootio::compress::compress;
use crate::rootio::error::{Context, Result, RootError};
use crate::rootio::file::KeyHeader;
use crate::rootio::object::{fresh_tag, Body, Object, Ptr, Value, Writer};
use crate::rootio::rbuf::{RBuf, WBuf, BYTE_COUNT_MASK};
use crate::rootio::read::{Array, Data};
use crate::rootio::tree::{BasketSource, Interp, Prim, Shape, Tree};
use crate::rootio::RootFile;
use std::sync::OnceLock;

const TEMPLATE_BYTES: &[u8] = include_bytes!("template-root-6.40.root");
/// ROOT's default basket size.
pub const BASKET_SIZE: usize = 32000;
/// ROOT's default auto-flush: a cluster every 30 MB of compressed data.
const AUTO_FLUSH_BYTES: i64 = 30_000_000;

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
pub fn template_streamers() -> Result<&'static crate::rootio::streamers::Streamers> {
    Ok(&template()?.file.streamers)
}

/// A branch to create.
#[derive(Debug, Clone)]
pub struct BranchSpec {
    pub name: String,
    pub interp: Interp,
}

impl BranchSpec {
    pub fn new(name: &str, prim: Prim, shape: Shape) -> Self {
        BranchSpec {
            name: name.to_string(),
            interp: Interp { prim, shape },
        }
    }
    pub fn scalar(name: &str, prim: Prim) -> Self {
        Self::new(name, prim, Shape::Scalar)
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

/// A branch being written: its object (from the template), pending basket bytes, and where
/// its baskets went.
struct BranchOut {
    spec: BranchSpec,
    obj: Object,
    leaf_tag: u32,
    var: bool,
    item_size: usize,
    buf: Vec<u8>,
    offs: Vec<u32>,
    nev: u64,
    entries: u64,
    baskets: Vec<(u64, i32, u64)>,
    tot: i64,
    zip: i64,
    max_count: i64,
    max_str: usize,
    /// Some variable-size branch counts its entries with this one.
    is_counter: bool,
}

impl BranchOut {
    fn new(
        spec: &BranchSpec,
        tree_name: &str,
        counter_tag: Option<u32>,
        compress_setting: i32,
    ) -> Result<Self> {
        let t = template()?;
        let i = &spec.interp;
        let tname = match &i.shape {
            Shape::Scalar | Shape::Fixed(_) | Shape::Var { .. } => {
                format!("leaf_{}", leaf_code(i.prim)?)
            }
            Shape::Vector => format!("vec_{}", vector_cpp(i.prim)?),
            Shape::String { .. } => "leaf_C".into(),
        };
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
            obj.set_int("fEntryOffsetLen", if var { 1000 } else { 0 })?;
        }
        obj.set_int("fCompress", compress_setting as i64)?;
        obj.set_int("fBasketSize", BASKET_SIZE as i64)?;
        let _ = tree_name;
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
            buf: Vec::new(),
            offs: Vec::new(),
            nev: 0,
            entries: 0,
            baskets: Vec::new(),
            tot: 0,
            zip: 0,
            max_count: 0,
            max_str: 0,
            is_counter: false,
        })
    }

    fn append(&mut self, fw: &mut FileWriter, tree_name: &str, a: &Array) -> Result<()> {
        if a.interp != self.spec.interp {
            return Err(RootError::malformed(format!(
                "branch '{}' is {}, given {}",
                self.spec.name,
                self.spec.interp.type_name(),
                a.interp.type_name()
            )));
        }
        let n = a.entries as usize;
        for e in 0..n {
            let r = a.entry_range(e);
            if self.var {
                self.offs.push(self.buf.len() as u32);
            }
            match &self.spec.interp.shape {
                Shape::Vector => {
                    let len = r.len();
                    let bytes = 10 + len * self.spec.interp.prim.disk_size();
                    self.buf
                        .extend_from_slice(&(((bytes - 4) as u32) | BYTE_COUNT_MASK).to_be_bytes());
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
                Shape::Var { inner, .. } => {
                    let row: usize = inner.iter().product::<usize>().max(1);
                    encode(&a.data, r.start * row..r.end * row, &mut self.buf);
                }
                _ => encode(&a.data, r, &mut self.buf),
            }
            if self.is_counter {
                // Counters need their largest value recorded (ROOT sizes arrays with it).
                self.max_count = self.max_count.max(a.data.get_f64(e) as i64);
            }
            self.nev += 1;
            self.entries += 1;
            if self.buf.len() + 4 * self.offs.len() >= BASKET_SIZE {
                self.flush(fw, tree_name)?;
            }
        }
        Ok(())
    }

    /// Writes the pending entries as one basket.
    fn flush(&mut self, fw: &mut FileWriter, tree_name: &str) -> Result<()> {
        if self.nev == 0 {
            return Ok(());
        }
        let keylen = KeyHeader::len_for(1004, "TBasket", &self.spec.name, tree_name) + 19;
        let border = self.buf.len();
        let mut payload = std::mem::take(&mut self.buf);
        if self.var {
            payload.extend_from_slice(&((self.offs.len() + 1) as i32).to_be_bytes());
            for &o in &self.offs {
                payload.extend_from_slice(&((o as usize + keylen) as i32).to_be_bytes());
            }
            payload.extend_from_slice(&((border + keylen) as i32).to_be_bytes());
        }
        let first = self.entries - self.nev;
        let (seek, nbytes) = write_basket(
            fw,
            &self.spec.name,
            tree_name,
            keylen,
            &payload,
            border,
            self.nev,
            if self.var { 1000 } else { self.item_size },
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
        if let Some(items) = o.array_items_mut("fBaskets") {
            items.clear();
        }
        let (max_count, max_str, shape) =
            (self.max_count, self.max_str, self.spec.interp.shape.clone());
        let (leaf, _) = leaf_mut(o)?;
        match shape {
            Shape::Scalar if leaf.get("fMaximum").is_some() => {
                leaf.set_int("fMaximum", max_count)?
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
    branch: &str,
    tree: &str,
    keylen: usize,
    payload: &[u8],
    border: usize,
    nev: u64,
    nevbufsize: usize,
) -> Result<(u64, i32)> {
    let z = compress(payload, fw.compression())?;
    let data = z.as_deref().unwrap_or(payload);
    let nbytes = keylen + data.len();
    let seek = fw.alloc(nbytes as u64);
    let mut w = WBuf::new(0);
    KeyHeader {
        nbytes: i32::try_from(nbytes).map_err(|_| RootError::unsupported("basket over 2 GB"))?,
        version: 1004,
        objlen: payload.len() as i32,
        datime: fw.datime(),
        keylen: keylen as i16,
        cycle: 1,
        seek_key: seek,
        seek_pdir: super::file::BEGIN,
        class: "TBasket".into(),
        name: branch.into(),
        title: tree.into(),
    }
    .write(&mut w);
    w.i16(3);
    w.i32(BASKET_SIZE.max(border + keylen) as i32);
    w.i32(nevbufsize as i32);
    w.i32(nev as i32);
    w.i32((border + keylen) as i32);
    w.u8(0);
    debug_assert_eq!(w.data.len(), keylen);
    w.bytes(data);
    fw.write_at(seek, &w.data)?;
    Ok((seek, nbytes as i32))
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
    zip_since_cluster: i64,
    cluster_entries: Option<u64>,
}

impl TreeWriter {
    /// A new tree with these branches. Counter branches of variable arrays must come first.
    pub fn new(fw: &mut FileWriter, name: &str, title: &str, specs: &[BranchSpec]) -> Result<Self> {
        fw.streamers.merge(template_streamers()?);
        let mut w = TreeWriter {
            name: name.into(),
            title: title.into(),
            branches: Vec::new(),
            base: None,
            base_leaf_tags: Vec::new(),
            expected_entries: None,
            zip_since_cluster: 0,
            cluster_entries: None,
        };
        for s in specs {
            w.add_branch(fw, s)?;
        }
        Ok(w)
    }

    /// Adds a branch (before any entry is filled).
    pub fn add_branch(&mut self, fw: &FileWriter, spec: &BranchSpec) -> Result<usize> {
        if self.branches.iter().any(|b| b.spec.name == spec.name)
            || self.base_leaf_tags.iter().any(|(n, _)| *n == spec.name)
        {
            return Err(RootError::malformed(format!(
                "branch '{}' exists already",
                spec.name
            )));
        }
        let counter_tag = match &spec.interp.shape {
            Shape::Var { counter, .. } => Some(
                self.branches
                    .iter_mut()
                    .find(|b| &b.spec.name == counter)
                    .map(|b| {
                        b.is_counter = true;
                        b.leaf_tag
                    })
                    .or_else(|| {
                        self.base_leaf_tags
                            .iter()
                            .find(|(n, _)| n == counter)
                            .map(|(_, t)| *t)
                    })
                    .ok_or_else(|| {
                        RootError::NotFound(format!(
                            "counter branch '{counter}' of '{}' (declare it first)",
                            spec.name
                        ))
                    })?,
            ),
            _ => None,
        };
        self.branches.push(BranchOut::new(
            spec,
            &self.name,
            counter_tag,
            fw.compression().setting(),
        )?);
        Ok(self.branches.len() - 1)
    }

    pub fn branch_index(&self, name: &str) -> Option<usize> {
        self.branches.iter().position(|b| b.spec.name == name)
    }

    /// Appends entries to branch `k`.
    pub fn append(&mut self, fw: &mut FileWriter, k: usize, a: &Array) -> Result<()> {
        let name = self.name.clone();
        let b = self
            .branches
            .get_mut(k)
            .ok_or_else(|| RootError::NotFound(format!("branch #{k}")))?;
        let before = b.zip;
        b.append(fw, &name, a)
            .context(|| format!("writing branch '{}'", b.spec.name))?;
        self.zip_since_cluster += b.zip - before;
        // ROOT's auto-flush: once 30 MB went to disk, flush every branch at the same entry so
        // clusters are aligned; later clusters have the same number of entries.
        let entries = self.branches.iter().map(|b| b.entries).min().unwrap_or(0);
        let due = match self.cluster_entries {
            None => self.zip_since_cluster >= AUTO_FLUSH_BYTES,
            Some(c) => entries > 0 && entries % c == 0,
        };
        if due && self.branches.iter().all(|b| b.entries == entries) {
            for b in &mut self.branches {
                b.flush(fw, &name)?;
            }
            self.cluster_entries.get_or_insert(entries);
            self.zip_since_cluster = 0;
        }
        Ok(())
    }

    /// Flushes, checks entry counts, and writes the TTree object. Returns its key.
    pub fn finish(mut self, fw: &mut FileWriter) -> Result<KeyHeader> {
        let name = self.name.clone();
        let entries = match self.expected_entries {
            Some(n) => n,
            None => self.branches.first().map(|b| b.entries).unwrap_or(0),
        };
        for b in &mut self.branches {
            if b.entries != entries {
                return Err(RootError::malformed(format!(
                    "branch '{}' has {} entries, the tree {entries}",
                    b.spec.name, b.entries
                )));
            }
            b.flush(fw, &name)?;
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
        tree.set_int("fSavedBytes", tree.int("fZipBytes")?)?;
        if self.base.is_none() {
            if let Some(c) = self.cluster_entries {
                tree.set_int("fAutoFlush", c as i64)?;
            }
        }
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
        let title = tree.string("fTitle").unwrap_or_default();
        fw.write_object("TTree", &name, &title, |keylen| {
            let mut w = WBuf::new(keylen);
            Writer::new().write_object(&mut w, &tree)?;
            Ok(w.data)
        })
    }
}

/// Starts a decorated copy of `tree`: every original basket is copied into `fw` byte for byte
/// (only its key's position fields change), and the returned writer takes the new branches,
/// which must receive exactly `tree.entries` entries.
pub fn clone_tree(
    input: &RootFile,
    tree: &Tree,
    fw: &mut FileWriter,
    new: &[BranchSpec],
) -> Result<TreeWriter> {
    fw.streamers.merge(&input.streamers);
    fw.streamers.merge(template_streamers()?);
    let mut obj = tree.object.clone();
    let mut raw = Vec::new();
    for br in &tree.branches {
        let mut seeks: Vec<(usize, u64, i32)> = Vec::new();
        for (i, loc) in br.baskets.iter().enumerate() {
            let BasketSource::Disk { seek, nbytes } = loc.source else {
                continue;
            };
            input.read_at(seek, nbytes as usize, &mut raw)?;
            let (pos, n) = copy_basket(fw, &raw)
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
        zip_since_cluster: 0,
        cluster_entries: None,
    };
    for s in new {
        w.add_branch(fw, s)?;
    }
    Ok(w)
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
fn copy_basket(fw: &mut FileWriter, raw: &[u8]) -> Result<(u64, i32)> {
    let mut b = RBuf::new(raw, 0);
    let mut kh = KeyHeader::read(&mut b)?;
    let keylen = kh.keylen as usize;
    if raw.len() < keylen || kh.nbytes as usize != raw.len() {
        return Err(RootError::malformed("basket key size"));
    }
    let tail = &raw[keylen - 19..keylen]; // TBasket fields after the key header
    if kh.version > 1000 || fw.end() + raw.len() as u64 + 8 < BIG {
        let pos = fw.alloc(raw.len() as u64);
        kh.seek_key = pos;
        kh.seek_pdir = super::file::BEGIN;
        let mut w = WBuf::new(0);
        kh.write(&mut w);
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
    let border = last as usize - keylen;
    let mut payload = crate::rootio::compress::decompress(&raw[keylen..], kh.objlen as usize)?;
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
        let setting = crate::rootio::compress::block_algorithm(&raw[keylen..])
            .map(|a| crate::rootio::Compression {
                algorithm: a,
                level: 1,
            })
            .unwrap_or(crate::rootio::Compression::NONE);
        compress(&payload, setting)?.unwrap_or_else(|| payload.clone())
    } else {
        raw[keylen..].to_vec()
    };
    let nbytes = new_keylen + data.len();
    let pos = fw.alloc(nbytes as u64);
    kh.version += 1000;
    kh.keylen = new_keylen as i16;
    kh.nbytes = nbytes as i32;
    kh.seek_key = pos;
    kh.seek_pdir = super::file::BEGIN;
    let mut w = WBuf::new(0);
    kh.write(&mut w);
    w.i16(ver);
    w.i32(bufsize);
    w.i32(nevbufsize);
    w.i32(nevbuf);
    w.i32(last + 8);
    w.u8(flag);
    w.bytes(&data);
    fw.write_at(pos, &w.data)?;
    Ok((pos, nbytes as i32))
}

/// Copies the other top-level objects of `input` (histograms, ...) into `fw`, and clones its
/// other trees unchanged. Directories are not copied; their names are returned.
pub fn copy_other_keys(
    input: &RootFile,
    skip_tree: &str,
    fw: &mut FileWriter,
) -> Result<Vec<String>> {
    let mut skipped = Vec::new();
    let mut raw = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    let mut keys: Vec<&KeyHeader> = input.root.keys.iter().collect();
    keys.sort_by_key(|k| std::cmp::Reverse(k.cycle));
    for k in keys {
        if k.name == skip_tree || seen.contains(&k.name.as_str()) {
            continue;
        }
        seen.push(&k.name);
        match k.class.as_str() {
            "TDirectory" | "TDirectoryFile" => skipped.push(k.name.clone()),
            "TTree" | "TNtuple" | "TNtupleD" => {
                let t = input.tree(&k.name)?;
                clone_tree(input, &t, fw, &[])?.finish(fw)?;
            }
            _ => {
                input.read_at(k.seek_key, k.nbytes as usize, &mut raw)?;
                fw.copy_key(&raw)?;
            }
        }
    }
    Ok(skipped)
}
