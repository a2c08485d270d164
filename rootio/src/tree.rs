//! A TTree as hepml uses it: branches flattened in file order, where each branch's baskets are
//! (on disk or embedded in the TBranch), and how its bytes decode (its [`Interp`]). Branches
//! whose layout hepml does not decode carry the reason instead, so nothing is read wrongly.

use super::error::{Context, Result, RootError};
use super::file::{KeyHeader, RootFile};
use super::object::{Body, Object, Ptr, Value};
use std::collections::HashMap;

/// Element type of a branch's values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Prim {
    /// `bool`
    Bool,
    /// `int8`
    I8,
    /// `uint8`
    U8,
    /// `int16`
    I16,
    /// `uint16`
    U16,
    /// `int32`
    I32,
    /// `uint32`
    U32,
    /// `int64`
    I64,
    /// `uint64`
    U64,
    /// `float32`
    F32,
    /// `float64`
    F64,
    /// Float16_t / Double32_t: stored truncated (`low == high == 0`: 3 bytes of exponent and
    /// mantissa) or as an integer over `[low, high]` in `bits` bits; `double` selects f64 output.
    Packed {
        /// Lower end of the range.
        low: f64,
        /// Upper end of the range.
        high: f64,
        /// Bits per value.
        bits: u32,
        /// Double32_t (f64 output) rather than Float16_t.
        double: bool,
    },
}

impl Prim {
    /// Bytes per value on disk.
    pub fn disk_size(self) -> usize {
        match self {
            Prim::Bool | Prim::I8 | Prim::U8 => 1,
            Prim::I16 | Prim::U16 => 2,
            Prim::I32 | Prim::U32 | Prim::F32 => 4,
            Prim::I64 | Prim::U64 | Prim::F64 => 8,
            // Truncated mantissa: 3 bytes; a range: a 4-byte integer; Double32_t without
            // any bracket: a plain float.
            Prim::Packed {
                low,
                high,
                bits,
                double,
            } => {
                if low == 0.0 && high == 0.0 && !(double && bits == 0) {
                    3
                } else {
                    4
                }
            }
        }
    }
    /// numpy dtype name of the decoded values.
    pub fn name(self) -> &'static str {
        match self {
            Prim::Bool => "bool",
            Prim::I8 => "int8",
            Prim::U8 => "uint8",
            Prim::I16 => "int16",
            Prim::U16 => "uint16",
            Prim::I32 => "int32",
            Prim::U32 => "uint32",
            Prim::I64 => "int64",
            Prim::U64 => "uint64",
            Prim::F32 => "float32",
            Prim::F64 => "float64",
            Prim::Packed { double: false, .. } => "float32",
            Prim::Packed { double: true, .. } => "float64",
        }
    }
    /// Parses a C++ type name as found in `vector<T>` class names.
    pub fn from_cpp(t: &str) -> Option<Prim> {
        Some(match t.trim() {
            "bool" | "Bool_t" => Prim::Bool,
            "char" | "Char_t" | "signed char" => Prim::I8,
            "unsigned char" | "UChar_t" => Prim::U8,
            "short" | "Short_t" => Prim::I16,
            "unsigned short" | "UShort_t" => Prim::U16,
            "int" | "Int_t" => Prim::I32,
            "unsigned int" | "UInt_t" => Prim::U32,
            "long" | "Long_t" | "long long" | "Long64_t" => Prim::I64,
            "unsigned long" | "ULong_t" | "unsigned long long" | "ULong64_t" => Prim::U64,
            "float" | "Float_t" => Prim::F32,
            "double" | "Double_t" => Prim::F64,
            _ => return None,
        })
    }
}

/// How a branch's entries are shaped.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// One value per entry.
    Scalar,
    /// `x[N]`, `x[N][M]`: a fixed block per entry.
    Fixed(Vec<usize>),
    /// `x[n]` or `x[n][M]` with a counter branch: a variable number of rows of `inner` values.
    Var {
        /// The branch holding each entry's row count.
        counter: String,
        /// The fixed dimensions of a row (empty for one value per row).
        inner: Vec<usize>,
    },
    /// `std::vector<T>` written object-wise: a 10-byte header then the values, per entry.
    Vector,
    /// A string per entry (`/C` leaf, or `std::string` with a 6-byte header when `header`).
    String {
        /// `std::string` (with its 6-byte object header) rather than `char*`.
        header: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
/// How a branch's bytes decode: element type and entry shape.
pub struct Interp {
    /// Element type.
    pub prim: Prim,
    /// Entry shape.
    pub shape: Shape,
}

impl Interp {
    /// The type as `inspect` prints it (numpy names): `float32`, `int32[3]`, `float32[]`,
    /// `float32[][3]`, `vector<float64>`, `string`.
    pub fn type_name(&self) -> String {
        let p = self.prim.name();
        let dims = |d: &[usize]| d.iter().map(|n| format!("[{n}]")).collect::<String>();
        match &self.shape {
            Shape::Scalar => p.to_string(),
            Shape::Fixed(d) => format!("{p}{}", dims(d)),
            Shape::Var { inner, .. } => format!("{p}[]{}", dims(inner)),
            Shape::Vector => format!("vector<{p}>"),
            Shape::String { .. } => "string".to_string(),
        }
    }
    /// Values per fixed-size item (an entry for Scalar/Fixed, a row for Var).
    pub fn item_len(&self) -> usize {
        match &self.shape {
            Shape::Fixed(d) => d.iter().product(),
            Shape::Var { inner, .. } => inner.iter().product(),
            _ => 1,
        }
    }
}

#[derive(Debug, Clone)]
/// A TLeaf of a branch.
pub struct Leaf {
    /// Name.
    pub name: String,
    /// Title (`x[n]/F`).
    pub title: String,
    /// Class (`TLeafF`, `TLeafElement`, ...).
    pub class: String,
    /// Values per entry for fixed-size leaves (`fLen`).
    pub len: i32,
    /// Unsigned integer type.
    pub is_unsigned: bool,
    /// The counter leaf's branch, for variable-length arrays.
    pub counter: Option<String>,
}

/// Where one basket lives and which entries it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct BasketLoc {
    /// First entry of the basket in its branch.
    pub first_entry: u64,
    /// Entries in the basket.
    pub entries: u64,
    /// Where the basket's bytes are.
    pub source: BasketSource,
}

#[derive(Debug, Clone, PartialEq)]
/// Where a basket's bytes are.
pub enum BasketSource {
    /// A key of its own in the file.
    Disk {
        /// File offset of the basket's key.
        seek: u64,
        /// Bytes of key and (compressed) payload.
        nbytes: u32,
    },
    /// A basket kept inside the TBranch record (slot in its `fBaskets` array).
    Embedded(usize),
}

#[derive(Debug, Clone)]
/// A TBranch: its name and type, its baskets, and how its values decode.
pub struct Branch {
    /// Name.
    pub name: String,
    /// Title.
    pub title: String,
    /// Class (`TBranch`, `TBranchElement`).
    pub class: String,
    /// Entries.
    pub entries: u64,
    /// Compression setting (`fCompress`).
    pub compress: i32,
    /// Basket buffer size (`fBasketSize`).
    pub basket_size: i32,
    /// Entry-offset table length (`fEntryOffsetLen`; non-zero for variable-size entries).
    pub entry_offset_len: i32,
    /// Uncompressed bytes of all baskets (`fTotBytes`).
    pub tot_bytes: i64,
    /// Compressed bytes of all baskets (`fZipBytes`).
    pub zip_bytes: i64,
    /// The baskets in entry order (on disk, then embedded).
    pub baskets: Vec<BasketLoc>,
    /// The leaves.
    pub leaves: Vec<Leaf>,
    /// How its values decode, or why hepml does not read this branch.
    pub interp: std::result::Result<Interp, String>,
    /// Indices through the nested `fBranches` arrays from the TTree to this branch.
    pub(crate) path: Vec<usize>,
}

#[derive(Debug, Clone)]
/// A TTree: its entries and branches (every branch, nested ones included, flattened).
pub struct Tree {
    /// Name.
    pub name: String,
    /// Title.
    pub title: String,
    /// Entries.
    pub entries: u64,
    /// Branches, in the tree's order (sub-branches after their parent).
    pub branches: Vec<Branch>,
    pub(crate) object: Object,
    pub(crate) key: KeyHeader,
}

impl Tree {
    /// The branch called `name`.
    pub fn branch(&self, name: &str) -> Result<&Branch> {
        self.branches
            .iter()
            .find(|b| b.name == name)
            .ok_or_else(|| {
                RootError::NotFound(format!("no branch '{name}' in tree '{}'", self.name))
            })
    }

    /// The TBranch object of a branch (by its `path`).
    pub(crate) fn branch_object(&self, path: &[usize]) -> Option<&Object> {
        let mut obj = &self.object;
        for &i in path {
            match obj.array_items("fBranches").get(i) {
                Some(Ptr::New { obj: o, .. }) => obj = o,
                _ => return None,
            }
        }
        Some(obj)
    }

    /// The raw bytes of an embedded basket (a `TBasket` kept inside its TBranch).
    pub(crate) fn embedded_basket(&self, branch: &Branch, slot: usize) -> Result<&[u8]> {
        let obj = self.branch_object(&branch.path).ok_or_else(|| {
            RootError::malformed(format!("branch {} not found in its tree", branch.name))
        })?;
        match obj.array_items("fBaskets").get(slot) {
            Some(Ptr::New { obj, .. }) => match &obj.body {
                Body::Raw(bytes) => Ok(bytes),
                _ => Err(RootError::malformed("embedded basket not kept raw")),
            },
            _ => Err(RootError::malformed(format!(
                "branch {}: no embedded basket in slot {slot}",
                branch.name
            ))),
        }
    }
}

impl RootFile {
    /// Reads a tree by path (`events`, `dir/events`).
    pub fn tree(&self, path: &str) -> Result<Tree> {
        let key = self.find_key(path)?;
        if key.class != "TTree" && key.class != "TNtuple" && key.class != "TNtupleD" {
            return Err(RootError::NotFound(format!(
                "'{path}' in {} is a {}, not a TTree",
                self.path().display(),
                key.class
            )));
        }
        let object = self.read_object(&key)?;
        Tree::from_object(object, key)
            .context(|| format!("{}: tree '{path}'", self.path().display()))
    }

    /// Paths of all trees in the file.
    pub fn tree_paths(&self) -> Result<Vec<String>> {
        Ok(self
            .walk_keys()?
            .into_iter()
            .filter(|(_, k)| matches!(k.class.as_str(), "TTree" | "TNtuple" | "TNtupleD"))
            .map(|(p, _)| p)
            .collect())
    }
}

fn basic_array_i64(v: Option<&Value>) -> Vec<i64> {
    match v {
        Some(Value::BasicPtr(Some(items))) | Some(Value::Array(items)) => {
            items.iter().filter_map(Value::as_i64).collect()
        }
        _ => Vec::new(),
    }
}

/// Collects, for every leaf object in the tree, its tag -> (leaf name, owning branch name).
fn collect_leaves(obj: &Object, branch: Option<&str>, out: &mut HashMap<u32, (String, String)>) {
    let own_name;
    let branch = if obj.inherits("TBranch") {
        own_name = obj.string("fName").unwrap_or_default();
        Some(own_name.as_str())
    } else {
        branch
    };
    fn visit(p: &Ptr, branch: Option<&str>, out: &mut HashMap<u32, (String, String)>) {
        if let Ptr::New { tag, obj: o } = p {
            if o.inherits("TLeaf") {
                if let (Some(b), Ok(n)) = (branch, o.string("fName")) {
                    out.entry(*tag).or_insert((n, b.to_string()));
                }
            }
            collect_leaves(o, branch, out);
        }
    }
    if let Body::Members(m) = &obj.body {
        for (_, v) in m {
            match v {
                Value::Ptr(p) => visit(p, branch, out),
                Value::Object(o) => {
                    for p in o.items() {
                        visit(p, branch, out);
                    }
                    if matches!(o.body, Body::Members(_)) {
                        collect_leaves(o, branch, out);
                    }
                }
                _ => {}
            }
        }
    }
}

impl Tree {
    pub(crate) fn from_object(object: Object, key: KeyHeader) -> Result<Tree> {
        let name = object.string("fName")?;
        let title = object.string("fTitle").unwrap_or_default();
        let entries = object.int("fEntries")?;
        let entries = u64::try_from(entries)
            .map_err(|_| RootError::malformed(format!("fEntries = {entries}")))?;
        let mut leaf_tags = HashMap::new();
        collect_leaves(&object, None, &mut leaf_tags);
        let mut branches = Vec::new();
        fn walk(
            obj: &Object,
            path: &mut Vec<usize>,
            tags: &HashMap<u32, (String, String)>,
            out: &mut Vec<Branch>,
        ) -> Result<()> {
            for (i, p) in obj.array_items("fBranches").into_iter().enumerate() {
                let Ptr::New { obj: b, .. } = p else { continue };
                path.push(i);
                let br = branch_from_object(b, path.clone(), tags)
                    .context(|| format!("branch {}", b.string("fName").unwrap_or_default()))?;
                out.push(br);
                walk(b, path, tags, out)?;
                path.pop();
            }
            Ok(())
        }
        walk(&object, &mut Vec::new(), &leaf_tags, &mut branches)?;
        Ok(Tree {
            name,
            title,
            entries,
            branches,
            object,
            key,
        })
    }
}

fn branch_from_object(
    b: &Object,
    path: Vec<usize>,
    tags: &HashMap<u32, (String, String)>,
) -> Result<Branch> {
    let name = b.string("fName")?;
    let entries = b.int("fEntries")?;
    let entries = u64::try_from(entries)
        .map_err(|_| RootError::malformed(format!("fEntries = {entries}")))?;
    let write_basket = b.int("fWriteBasket")?;
    let write_basket = usize::try_from(write_basket)
        .map_err(|_| RootError::malformed(format!("fWriteBasket = {write_basket}")))?;
    let bytes = basic_array_i64(b.get("fBasketBytes"));
    let entry = basic_array_i64(b.get("fBasketEntry"));
    let seek = basic_array_i64(b.get("fBasketSeek"));
    if write_basket > bytes.len() || write_basket > seek.len() || write_basket > entry.len() {
        return Err(RootError::malformed(format!(
            "fWriteBasket {write_basket} but {} basket sizes, {} seeks, {} entry starts",
            bytes.len(),
            seek.len(),
            entry.len()
        )));
    }
    let mut baskets = Vec::new();
    let mut next = 0u64;
    for i in 0..write_basket {
        let first = entry[i];
        let end = if i + 1 < write_basket {
            entry[i + 1]
        } else {
            // After the last on-disk basket: where the in-memory basket starts, if recorded.
            match entry.get(i + 1) {
                Some(&e) if e >= first && e <= entries as i64 && e > 0 => e,
                _ => entries as i64,
            }
        };
        if first < 0 || end < first || seek[i] <= 0 || bytes[i] <= 0 || first as u64 != next {
            return Err(RootError::malformed(format!(
                "basket {i}: entries {first}..{end}, seek {}, {} bytes (expected to start at entry {next})",
                seek[i], bytes[i]
            )));
        }
        baskets.push(BasketLoc {
            first_entry: first as u64,
            entries: (end - first) as u64,
            source: BasketSource::Disk {
                seek: seek[i] as u64,
                nbytes: bytes[i] as u32,
            },
        });
        next = end as u64;
    }
    // Baskets kept in the TBranch record (ROOT writes the last, partly filled one there when
    // the file is closed without a final flush; NanoAOD does this).
    for (slot, p) in b.array_items("fBaskets").into_iter().enumerate() {
        let Ptr::New { obj, .. } = p else { continue };
        let Body::Raw(raw) = &obj.body else { continue };
        let nev = embedded_nevbuf(raw)?;
        if nev == 0 {
            continue;
        }
        baskets.push(BasketLoc {
            first_entry: next,
            entries: nev,
            source: BasketSource::Embedded(slot),
        });
        next += nev;
    }
    if next != entries {
        return Err(RootError::malformed(format!(
            "baskets hold {next} entries but the branch has {entries}"
        )));
    }
    let mut leaves = Vec::new();
    for p in b.array_items("fLeaves") {
        let l = match p {
            Ptr::New { obj, .. } => obj,
            Ptr::Ref(_) => return Err(RootError::unsupported("leaf shared with another branch")),
            Ptr::Null => continue,
        };
        let counter = match l.get("fLeafCount") {
            Some(Value::Ptr(Ptr::New { tag, .. })) | Some(Value::Ptr(Ptr::Ref(tag))) => Some(
                tags.get(tag)
                    .map(|(_, br)| br.clone())
                    .ok_or_else(|| RootError::malformed("leaf counter not found"))?,
            ),
            _ => None,
        };
        leaves.push(Leaf {
            name: l.string("fName")?,
            title: l.string("fTitle").unwrap_or_default(),
            class: l.class.clone(),
            len: l.int("fLen").unwrap_or(1) as i32,
            is_unsigned: l.int("fIsUnsigned").unwrap_or(0) != 0,
            counter,
        });
    }
    let n_subbranches = b.array_items("fBranches").len();
    let interp = interpret(b, &leaves, n_subbranches);
    Ok(Branch {
        title: b.string("fTitle").unwrap_or_default(),
        class: b.class.clone(),
        entries,
        compress: b.int("fCompress").unwrap_or(-1) as i32,
        basket_size: b.int("fBasketSize").unwrap_or(0) as i32,
        entry_offset_len: b.int("fEntryOffsetLen").unwrap_or(0) as i32,
        tot_bytes: b.int("fTotBytes").unwrap_or(0),
        zip_bytes: b.int("fZipBytes").unwrap_or(0),
        baskets,
        leaves,
        interp,
        path,
        name,
    })
}

/// fNevBuf of an embedded TBasket (its key header, then version, buffer size, fNevBufSize,
/// fNevBuf).
pub(crate) fn embedded_nevbuf(raw: &[u8]) -> Result<u64> {
    let mut b = super::rbuf::RBuf::new(raw, 0);
    let kh = KeyHeader::read(&mut b).context(|| "embedded basket".to_string())?;
    b.set_pos(kh.keylen as usize - 19)?;
    let _version = b.i16()?;
    let _bufsize = b.i32()?;
    let _nevbufsize = b.i32()?;
    let nev = b.i32()?;
    u64::try_from(nev).map_err(|_| RootError::malformed(format!("embedded basket fNevBuf {nev}")))
}

/// Dimensions from a leaf title: `x[3][4]/F` -> counter None, dims [3, 4]; `x[n][3]` ->
/// counter Some("n"), dims [3].
fn title_dims(title: &str) -> std::result::Result<(Option<String>, Vec<usize>), String> {
    let name_part = title.split('/').next().unwrap_or("");
    let mut dims = Vec::new();
    let mut counter = None;
    let mut rest = name_part;
    while let Some(open) = rest.find('[') {
        let close = rest[open..]
            .find(']')
            .ok_or_else(|| format!("unbalanced brackets in leaf title '{title}'"))?
            + open;
        let inside = rest[open + 1..close].trim();
        match inside.parse::<usize>() {
            Ok(n) => dims.push(n),
            Err(_) if dims.is_empty() && counter.is_none() => counter = Some(inside.to_string()),
            Err(_) => {
                return Err(format!(
                    "variable dimension '{inside}' after the first in '{title}'"
                ))
            }
        }
        rest = &rest[close + 1..];
    }
    Ok((counter, dims))
}

/// The `[low, high(, bits)]` range of a Float16_t/Double32_t leaf, from the type part of its
/// title (`x/f[0,10,12]`) or anywhere after the name's dimensions.
fn packed_range(title: &str, double: bool) -> std::result::Result<Prim, String> {
    let ty = title.split_once('/').map(|(_, t)| t).unwrap_or("");
    let Some(open) = ty.find('[') else {
        return Ok(if double {
            Prim::Packed {
                low: 0.0,
                high: 0.0,
                bits: 0,
                double,
            }
        } else {
            Prim::Packed {
                low: 0.0,
                high: 0.0,
                bits: 12,
                double,
            }
        });
    };
    let close = ty[open..]
        .find(']')
        .ok_or_else(|| format!("unbalanced range in '{title}'"))?
        + open;
    let parts: Vec<&str> = ty[open + 1..close].split(',').map(str::trim).collect();
    let num = |s: &str| -> std::result::Result<f64, String> {
        let s2 = s.replace("pi", &std::f64::consts::PI.to_string());
        s2.parse::<f64>()
            .map_err(|_| format!("range value '{s}' in '{title}' (expressions are not supported)"))
    };
    let (low, high) = match parts.as_slice() {
        [l, h] | [l, h, _] => (num(l)?, num(h)?),
        _ => return Err(format!("range '{}' in '{title}'", &ty[open..=close])),
    };
    let bits = match parts.get(2) {
        Some(b) => b
            .parse::<u32>()
            .map_err(|_| format!("bits '{b}' in '{title}'"))?,
        None => 32,
    };
    let bits = if (2..=32).contains(&bits) { bits } else { 32 };
    if low == 0.0 && high == 0.0 {
        return Ok(Prim::Packed {
            low,
            high,
            bits,
            double,
        });
    }
    if high <= low {
        return Err(format!("empty range in '{title}'"));
    }
    Ok(Prim::Packed {
        low,
        high,
        bits,
        double,
    })
}

fn leaf_prim(l: &Leaf) -> std::result::Result<Prim, String> {
    let u = l.is_unsigned;
    Ok(match l.class.as_str() {
        "TLeafO" => Prim::Bool,
        "TLeafB" => {
            if u {
                Prim::U8
            } else {
                Prim::I8
            }
        }
        "TLeafS" => {
            if u {
                Prim::U16
            } else {
                Prim::I16
            }
        }
        "TLeafI" => {
            if u {
                Prim::U32
            } else {
                Prim::I32
            }
        }
        "TLeafL" | "TLeafG" => {
            if u {
                Prim::U64
            } else {
                Prim::I64
            }
        }
        "TLeafF" => Prim::F32,
        "TLeafD" => Prim::F64,
        "TLeafF16" => packed_range(&l.title, false)?,
        "TLeafD32" => packed_range(&l.title, true)?,
        other => return Err(format!("leaf class {other}")),
    })
}

fn interpret(b: &Object, leaves: &[Leaf], n_sub: usize) -> std::result::Result<Interp, String> {
    if b.class == "TBranchElement" {
        return interpret_element(b, leaves, n_sub);
    }
    if b.class != "TBranch" {
        return Err(format!("branch class {} is not supported", b.class));
    }
    let leaf = match leaves {
        [] => return Err("branch without leaves".into()),
        [l] => l,
        more => {
            return Err(format!(
                "leaf-list branch with {} leaves ({}) is not supported yet",
                more.len(),
                more.iter()
                    .map(|l| l.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
    };
    if leaf.class == "TLeafC" {
        return Ok(Interp {
            prim: Prim::U8,
            shape: Shape::String { header: false },
        });
    }
    let prim = leaf_prim(leaf)?;
    let (title_counter, dims) = title_dims(&leaf.title)?;
    let shape = match (&leaf.counter, title_counter) {
        (Some(counter), _) => Shape::Var {
            counter: counter.clone(),
            inner: dims,
        },
        (None, Some(c)) => {
            return Err(format!(
                "leaf title names a counter '{c}' but the leaf has none"
            ))
        }
        (None, _) if dims.is_empty() => Shape::Scalar,
        (None, _) => Shape::Fixed(dims),
    };
    let interp = Interp { prim, shape };
    let per_item = interp.item_len();
    let expect_len = match &interp.shape {
        Shape::Scalar => 1,
        _ => per_item,
    };
    if leaf.len as usize != expect_len && !(leaf.len == 0 && expect_len == 1) {
        return Err(format!(
            "leaf {} has fLen {} but its title '{}' gives {expect_len} values",
            leaf.name, leaf.len, leaf.title
        ));
    }
    Ok(interp)
}

fn interpret_element(
    b: &Object,
    leaves: &[Leaf],
    n_sub: usize,
) -> std::result::Result<Interp, String> {
    let class_name = b.string("fClassName").unwrap_or_default();
    let btype = b.int("fType").unwrap_or(-999);
    let streamer_type = b.int("fStreamerType").unwrap_or(-999);
    if n_sub > 0 {
        return Err(format!(
            "split object branch of class {class_name} (read its sub-branches instead)"
        ));
    }
    if leaves.len() != 1 {
        return Err(format!("TBranchElement with {} leaves", leaves.len()));
    }
    let cls = class_name.replace(' ', "");
    if btype == 0 && (streamer_type == -1 || streamer_type == 500 || streamer_type == 300) {
        if let Some(inner) = cls
            .strip_prefix("vector<")
            .and_then(|s| s.strip_suffix('>'))
        {
            let inner = class_name
                .trim()
                .strip_prefix("vector<")
                .and_then(|s| s.strip_suffix('>'))
                .unwrap_or(inner);
            return match Prim::from_cpp(inner) {
                Some(prim) => Ok(Interp {
                    prim,
                    shape: Shape::Vector,
                }),
                None => Err(format!("std::vector of {inner} is not supported")),
            };
        }
    }
    // A top-level std::string: each entry is the string as a TString, no object header.
    if (btype == 0 || btype == -1)
        && (streamer_type == -1 || streamer_type == 365)
        && (cls == "string" || cls == "std::string")
    {
        return Ok(Interp {
            prim: Prim::U8,
            shape: Shape::String { header: false },
        });
    }
    Err(format!(
        "object branch of class '{class_name}' (fType {btype}, streamer type {streamer_type}) is not supported"
    ))
}

/// The TBranch object at `path` (indices through the nested `fBranches` arrays) of a TTree
/// object, mutably.
pub(crate) fn branch_object_mut<'a>(
    tree: &'a mut Object,
    path: &[usize],
) -> Option<&'a mut Object> {
    let mut obj = tree;
    for &i in path {
        match obj.array_items_mut("fBranches")?.get_mut(i) {
            Some(Ptr::New { obj: o, .. }) => obj = o,
            _ => return None,
        }
    }
    Some(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn dims_from_titles() {
        assert_eq!(title_dims("x[3][4]/F").unwrap(), (None, vec![3, 4]));
        assert_eq!(
            title_dims("Jet_Px[NJet]").unwrap(),
            (Some("NJet".into()), vec![])
        );
        assert_eq!(
            title_dims("x[n][3]/D").unwrap(),
            (Some("n".into()), vec![3])
        );
        assert!(title_dims("x[3][n]").is_err());
        assert_eq!(
            packed_range("x/f[0,10,12]", false).unwrap(),
            Prim::Packed {
                low: 0.0,
                high: 10.0,
                bits: 12,
                double: false
            }
        );
        assert_eq!(
            packed_range("x/d", true).unwrap(),
            Prim::Packed {
                low: 0.0,
                high: 0.0,
                bits: 0,
                double: true
            }
        );
    }
}
