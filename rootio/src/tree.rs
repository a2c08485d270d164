//! A TTree as hepml uses it: branches flattened in file order, where each branch's baskets are
//! (on disk or embedded in the TBranch), and how its bytes decode (its [`Interp`]). Branches
//! whose layout hepml does not decode carry the reason instead, so nothing is read wrongly.

use super::baskets::basket_locs;
use super::columns::{layout, Column, Layout};
use super::error::{Context, Result, RootError};
use super::file::{KeyHeader, RootFile};
use super::interp::{interpret, leaf_list_fields, unsplit_class, BranchFacts};
use super::object::{Body, Object, Ptr, Value};
use super::streamers::Streamers;
use std::collections::HashMap;
use std::sync::Arc;

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
    /// `TObject::fBits` (`uint32`): on disk the word, then a 2-byte process id when the
    /// object is referenced (bit `0x10`, kIsReferenced, set), as ROOT writes it.
    Bits,
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
            // fBits: at least 4 (6 when referenced; see `Prim::Bits`).
            Prim::I32 | Prim::U32 | Prim::Bits | Prim::F32 => 4,
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
    /// ROOT's scale of a Float16_t/Double32_t range (`TStreamerElement::GetRange`): a value
    /// is stored as `UInt_t(0.5 + factor * (x - low))` and read as `n / factor + low`, with
    /// `factor = 2^bits / (high - low)`, or `0xffffffff / (high - low)` for 32 bits.
    pub fn packed_factor(low: f64, high: f64, bits: u32) -> f64 {
        let big = if bits < 32 {
            (1u64 << bits) as f64
        } else {
            f64::from(u32::MAX)
        };
        big / (high - low)
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
            Prim::U32 | Prim::Bits => "uint32",
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
    /// `std::vector`s of strings, of ElementLinks or of `std::vector`s, written object-wise
    /// (the outer vector's 6-byte header, then sizes and items, per entry): `vector<string>`
    /// is `{ vectors: 1, element: Element::String }`, `vector<vector<float>>` is `{ vectors:
    /// 2, element: Element::Number }`. One vector of numbers is [`Shape::Vector`].
    Nested {
        /// `std::vector` levels around the element.
        vectors: usize,
        /// What the innermost items are.
        element: Element,
    },
}

/// What the innermost items of nested lists ([`Shape::Nested`]) are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Element {
    /// Numbers of the branch's [`Prim`].
    Number,
    /// Strings (`std::string`, `TString`), as bytes (`Prim::U8`), one offsets level more.
    String,
    /// ATLAS's `ElementLink<T>`: a record of two uint32, `m_persKey` and `m_persIndex`, as two
    /// `Prim::U32` values per link.
    Link,
}

impl Shape {
    /// Levels of offsets an entry's values need: none for fixed-size entries, one for jagged
    /// arrays, vectors and strings, one per list level for nested lists
    /// ([`crate::Array::outer`] holds all but the last).
    pub fn levels(&self) -> usize {
        match self {
            Shape::Scalar | Shape::Fixed(_) => 0,
            Shape::Var { .. } | Shape::Vector | Shape::String { .. } => 1,
            Shape::Nested { vectors, element } => {
                vectors + usize::from(*element == Element::String)
            }
        }
    }
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
    /// `float32[][3]`, `vector<float64>`, `string`, `vector<string>`, `vector<vector<int32>>`,
    /// `vector<vector<ElementLink>>`.
    pub fn type_name(&self) -> String {
        let p = self.prim.name();
        let dims = |d: &[usize]| d.iter().map(|n| format!("[{n}]")).collect::<String>();
        match &self.shape {
            Shape::Scalar => p.to_string(),
            Shape::Fixed(d) => format!("{p}{}", dims(d)),
            Shape::Var { inner, .. } => format!("{p}[]{}", dims(inner)),
            Shape::Vector => format!("vector<{p}>"),
            Shape::String { .. } => "string".to_string(),
            Shape::Nested { vectors, element } => {
                let element = match element {
                    Element::Number => p,
                    Element::String => "string",
                    Element::Link => "ElementLink",
                };
                (0..*vectors).fold(element.to_string(), |t, _| format!("vector<{t}>"))
            }
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
    /// A TLeafElement's streamer type code (`fType`: 5 float, 25 float[N], ...); 0 otherwise.
    pub ftype: i32,
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
    /// Its values are its sub-branches' (a split object, base class or collection of
    /// objects): `interp` says so, and its own baskets (often none) are not checked. Also a
    /// leaf list's or an unsplit object's, whose values are its columns (`branch.x`).
    pub container: bool,
    /// Indices through the nested `fBranches` arrays from the TTree to this branch.
    pub(crate) path: Vec<usize>,
    /// Its ancestors' names and its own, joined by `/`.
    pub(crate) full_name: String,
    /// A column of a leaf-list branch or of an unsplit object (the same TBranch and
    /// baskets): which part of each entry it is.
    pub(crate) column: Option<Column>,
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
    /// The branch called `name`: its own name (`fTracks.fPx`), or, as uproot names the
    /// members of a split object, `parent/member` (`Event/fTracks.fPx`).
    /// A name that several branches share (members of two split objects) is an error that
    /// lists their paths.
    pub fn branch(&self, name: &str) -> Result<&Branch> {
        let mut same = self.branches.iter().filter(|b| b.name == name);
        match (same.next(), same.next()) {
            (Some(b), None) => return Ok(b),
            // Two branches with one full name (a Delphes tree holds two top-level
            // `Particle`s): the first, as ROOT's TTree::GetBranch and uproot give.
            (Some(b), Some(c))
                if b.full_name == c.full_name && same.all(|d| d.full_name == b.full_name) =>
            {
                return Ok(b)
            }
            (Some(_), Some(_)) => {
                let paths: Vec<String> = self
                    .branches
                    .iter()
                    .filter(|b| b.name == name)
                    .map(|b| self.branch_path(b).to_string())
                    .collect();
                return Err(RootError::NotFound(format!(
                    "branch name '{name}' is ambiguous in tree '{}': {}",
                    self.name,
                    paths.join(", ")
                )));
            }
            _ => {}
        }
        self.branch_by_path(name).ok_or_else(|| {
            RootError::NotFound(format!("no branch '{name}' in tree '{}'", self.name))
        })
    }

    /// A branch's full name as uproot gives it: its ancestors' names and its own, joined
    /// by `/` (`Event/fTracks/fTracks.fPx`); a top-level branch's is its name.
    pub fn branch_path<'b>(&self, branch: &'b Branch) -> &'b str {
        &branch.full_name
    }

    /// `a/b/c`: branch `c` below `b` below the top-level branch `a` (levels between them may
    /// be left out). A full name that two branches share gives the first; otherwise every
    /// branch called `a` is tried, so a member of the second of two same-named top-level
    /// branches is found too.
    fn branch_by_path(&self, path: &str) -> Option<&Branch> {
        if let Some(b) = self.branches.iter().find(|b| b.full_name == path) {
            return Some(b);
        }
        let parts: Vec<&str> = path.split('/').collect();
        self.below(None, &parts)
    }

    /// The first branch below `parent` (the tree when `None`) reached by `parts`.
    fn below<'t>(&'t self, parent: Option<&'t Branch>, parts: &[&str]) -> Option<&'t Branch> {
        let Some((first, rest)) = parts.split_first() else {
            return parent;
        };
        self.branches
            .iter()
            .filter(|b| match parent {
                None => b.path.len() == 1,
                Some(p) => b.path.len() > p.path.len() && b.path.starts_with(&p.path),
            })
            .filter(|b| b.name == *first)
            .find_map(|b| self.below(Some(b), rest))
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
        Tree::from_object(object, key, &self.streamers)
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

/// A count member (`fEntries`, `fTotBytes`): a non-negative integer (or, from ROOT 3-5, a
/// whole double).
pub(crate) fn count(obj: &Object, name: &str) -> Result<u64> {
    let n = obj.int(name)?;
    u64::try_from(n).map_err(|_| RootError::malformed(format!("{name} = {n}")))
}

/// Calls `f` on every object streamed (not referenced) inside `obj`, depth first.
fn each_object<'a>(obj: &'a Object, f: &mut impl FnMut(u32, &'a Object)) {
    fn ptr<'a>(p: &'a Ptr, f: &mut impl FnMut(u32, &'a Object)) {
        if let Ptr::New { tag, obj } = p {
            f(*tag, obj);
            each_object(obj, f);
        }
    }
    match &obj.body {
        Body::Members(m) => {
            for (_, v) in m {
                match v {
                    Value::Ptr(p) => ptr(p, f),
                    Value::Object(o) => each_object(o, f),
                    _ => {}
                }
            }
        }
        Body::ObjArray { items, .. } => items.iter().for_each(|p| ptr(p, f)),
        Body::List { items, .. } => items.iter().for_each(|(p, _)| ptr(p, f)),
        _ => {}
    }
}

/// Every TLeaf of a tree by its tag, wherever it was streamed (a split collection's member
/// leaves stream their counter leaf inside their `fLeafCount`, before the collection's branch
/// lists it), and the branch whose `fLeaves` lists each.
pub(crate) struct LeafIndex<'a> {
    objects: HashMap<u32, &'a Object>,
    owner: HashMap<u32, String>,
}

impl<'a> LeafIndex<'a> {
    pub(crate) fn new(tree: &'a Object) -> Self {
        let mut objects = HashMap::new();
        let mut owner = HashMap::new();
        each_object(tree, &mut |tag, o| {
            if o.inherits("TLeaf") {
                objects.entry(tag).or_insert(o);
            } else if o.inherits("TBranch") {
                let name = o.string("fName").unwrap_or_default();
                for p in o.array_items("fLeaves") {
                    if let Ptr::New { tag, .. } | Ptr::Ref(tag) = p {
                        owner.entry(*tag).or_insert_with(|| name.clone());
                    }
                }
            }
        });
        LeafIndex { objects, owner }
    }

    /// The leaf objects a branch lists (streamed there or earlier).
    fn leaves_of(&self, b: &'a Object) -> Result<Vec<&'a Object>> {
        let mut out = Vec::new();
        for p in b.array_items("fLeaves") {
            match p {
                Ptr::New { obj, .. } => out.push(&**obj),
                Ptr::Ref(tag) => out.push(*self.objects.get(tag).ok_or_else(|| {
                    RootError::malformed(format!("leaf reference {tag:#x} to no leaf"))
                })?),
                Ptr::Null => {}
            }
        }
        Ok(out)
    }

    /// The branch holding a leaf's counter, if it has one.
    fn counter_of(&self, leaf: &Object) -> Result<Option<String>> {
        match leaf.get("fLeafCount") {
            Some(Value::Ptr(Ptr::New { tag, .. } | Ptr::Ref(tag))) => self
                .owner
                .get(tag)
                .cloned()
                .map(Some)
                .ok_or_else(|| RootError::malformed("leaf counter not found")),
            _ => Ok(None),
        }
    }
}

impl Tree {
    pub(crate) fn from_object(
        object: Object,
        key: KeyHeader,
        streamers: &Streamers,
    ) -> Result<Tree> {
        let name = object.string("fName")?;
        let title = object.string("fTitle").unwrap_or_default();
        let entries = count(&object, "fEntries")?;
        let leaves = LeafIndex::new(&object);
        let mut branches = Vec::new();
        fn walk(
            obj: &Object,
            path: &mut Vec<usize>,
            leaves: &LeafIndex,
            streamers: &Streamers,
            out: &mut Vec<Branch>,
        ) {
            if path.len() > 64 {
                return;
            }
            let parent = out
                .last()
                .filter(|_| !path.is_empty())
                .map(|b| b.full_name.clone());
            for (i, p) in obj.array_items("fBranches").into_iter().enumerate() {
                let Ptr::New { obj: b, .. } = p else { continue };
                path.push(i);
                let (mut br, unsplit) = branch_from_object(b, path.clone(), leaves, streamers);
                if let Some(parent) = &parent {
                    br.full_name = format!("{parent}/{}", br.name);
                }
                let columns = match unsplit {
                    Some(layout) => member_columns(&br, layout),
                    None => leaf_columns(&br),
                };
                out.push(br);
                out.extend(columns);
                walk(b, path, leaves, streamers, out);
                path.pop();
            }
        }
        walk(&object, &mut Vec::new(), &leaves, streamers, &mut branches);
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

/// A Branch for every TBranch object: what cannot be decoded (its baskets' bookkeeping, its
/// leaves, its type) becomes the reason in `interp`, so one odd branch never hides the others.
/// An unsplit object whose members hepml decodes comes with its class layout: the branch is
/// the container of its members' columns.
fn branch_from_object(
    b: &Object,
    path: Vec<usize>,
    index: &LeafIndex,
    streamers: &Streamers,
) -> (Branch, Option<Arc<Layout>>) {
    let name = b
        .string("fName")
        .unwrap_or_else(|_| format!("(unnamed branch {path:?})"));
    let entries = count(b, "fEntries");
    let leaves = leaves_of(b, index);
    let n_sub = b.array_items("fBranches").len();
    let facts = leaves.as_ref().ok().map(|leaves| BranchFacts {
        obj: b,
        leaves,
        n_sub,
        top: path.len() == 1,
        streamers,
    });
    let split = facts.as_ref().is_some_and(|f| f.is_container());
    // A split object's own baskets are not its values (it often has none): not checked.
    let baskets = match &entries {
        Ok(n) => basket_locs(b, *n, split),
        Err(e) => Err(RootError::malformed(e.to_string())),
    };
    let leaf_list = b.class == "TBranch"
        && baskets.is_ok()
        && leaves
            .as_ref()
            .is_ok_and(|l| l.len() > 1 && leaf_list_fields(l).is_ok());
    let mut container = split || leaf_list;
    let mut interp = match (&entries, &leaves, &baskets, &facts) {
        (Err(e), ..) | (_, Err(e), ..) => Err(e.to_string()),
        (_, _, Err(e), _) if !container => Err(e.to_string()),
        (.., Some(f)) => interpret(f),
        _ => Err("unreadable branch".into()),
    };
    // An object written whole, whose class the file describes: its members' columns.
    let mut unsplit = None;
    if let (Err(_), Some(f), Ok(_)) = (&interp, &facts, &baskets) {
        let info = unsplit_class(f).and_then(|(class, v)| Some((streamers.get(&class, v)?, class)));
        if let Some((info, class)) = info {
            interp = match layout(&class, info) {
                Ok(l) => {
                    container = true;
                    let names: Vec<&str> = l
                        .members
                        .iter()
                        .filter(|m| m.interp.is_some())
                        .map(|m| m.name.as_str())
                        .collect();
                    let why = format!(
                        "unsplit {class}: its values are its members' columns ({})",
                        names.join(", ")
                    );
                    unsplit = Some(Arc::new(l));
                    Err(why)
                }
                Err(why) => Err(why),
            };
        }
    }
    let br = Branch {
        title: b.string("fTitle").unwrap_or_default(),
        class: b.class.clone(),
        entries: entries.unwrap_or(0),
        compress: b.int("fCompress").unwrap_or(-1) as i32,
        basket_size: b.int("fBasketSize").unwrap_or(0) as i32,
        entry_offset_len: b.int("fEntryOffsetLen").unwrap_or(0) as i32,
        tot_bytes: count(b, "fTotBytes").map_or(0, |n| n as i64),
        zip_bytes: count(b, "fZipBytes").map_or(0, |n| n as i64),
        baskets: baskets.unwrap_or_default(),
        leaves: leaves.unwrap_or_default(),
        interp,
        container,
        path,
        full_name: name.clone(),
        column: None,
        name,
    };
    (br, unsplit)
}

/// The columns of a leaf-list branch (`x/F:y/F:n/I`), one per leaf, named `branch.leaf`;
/// the branch itself becomes their container.
fn leaf_columns(br: &Branch) -> Vec<Branch> {
    if br.class != "TBranch" || !br.container {
        return Vec::new();
    }
    let Ok(fields) = leaf_list_fields(&br.leaves) else {
        return Vec::new();
    };
    fields
        .into_iter()
        .zip(&br.leaves)
        .map(|(f, leaf)| Branch {
            name: format!("{}.{}", br.name, leaf.name),
            full_name: format!("{}.{}", br.full_name, leaf.name),
            title: leaf.title.clone(),
            leaves: vec![leaf.clone()],
            interp: Ok(f.interp.clone()),
            container: false,
            column: Some(Column::Leaf {
                offset: f.offset,
                stride: f.stride,
            }),
            ..br.clone()
        })
        .collect()
}

/// The columns of an unsplit object branch, one per member (its TObject base aside), named
/// `branch.member`.
fn member_columns(br: &Branch, layout: Arc<Layout>) -> Vec<Branch> {
    layout
        .members
        .iter()
        .enumerate()
        .filter_map(|(index, m)| {
            Some(Branch {
                name: format!("{}.{}", br.name, m.name),
                full_name: format!("{}.{}", br.full_name, m.name),
                interp: Ok(m.interp.clone()?),
                container: false,
                column: Some(Column::Member {
                    layout: layout.clone(),
                    index,
                }),
                ..br.clone()
            })
        })
        .collect()
}

fn leaves_of(b: &Object, index: &LeafIndex) -> Result<Vec<Leaf>> {
    index
        .leaves_of(b)?
        .into_iter()
        .map(|l| {
            Ok(Leaf {
                name: l.string("fName")?,
                title: l.string("fTitle").unwrap_or_default(),
                class: l.class.clone(),
                len: l.int("fLen").unwrap_or(1) as i32,
                is_unsigned: l.int("fIsUnsigned").unwrap_or(0) != 0,
                counter: index.counter_of(l)?,
                ftype: l.int("fType").unwrap_or(0) as i32,
            })
        })
        .collect()
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
