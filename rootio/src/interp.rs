//! How a TBranch's bytes decode: its [`Interp`] from its class, leaves and (for members of
//! split objects) the streamer element it stores, following uproot's rules so that both
//! readers agree on what a branch is. A branch this cannot interpret gets the reason instead.

use super::object::Object;
use super::streamers::{kind, Streamers};
use super::tree::{Element, Interp, Leaf, Prim, Shape};

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
    packed_from(
        title.split_once('/').map(|(_, t)| t).unwrap_or(""),
        title,
        double,
    )
}

/// The packed type a range spec (`[0,10,12] comment`, or none) gives; `title` names it in errors.
fn packed_from(ty: &str, title: &str, double: bool) -> std::result::Result<Prim, String> {
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
    // As TStreamerElement::GetRange reads an end: the forms of pi it knows, else a number.
    let num = |s: &str| -> std::result::Result<f64, String> {
        use std::f64::consts::PI;
        if s.contains("pi") {
            let v = if s.contains("2pi") || s.contains("2*pi") || s.contains("twopi") {
                2.0 * PI
            } else if s.contains("pi/2") {
                PI / 2.0
            } else if s.contains("pi/4") {
                PI / 4.0
            } else {
                PI
            };
            return Ok(if s.contains('-') { -v } else { v });
        }
        s.parse::<f64>()
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
    if high <= low {
        // No range (`[0,0,bits]`): ROOT's TStreamerElement::GetRange keeps a truncated mantissa
        // of `bits` below 15 bits; from 15 on, the type's plain form (a float, or 12 bits).
        let bits = match (bits < 15, double) {
            (true, _) => bits,
            (false, true) => 0,
            (false, false) => 12,
        };
        return Ok(Prim::Packed {
            low: 0.0,
            high: 0.0,
            bits,
            double,
        });
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
    let pick = |signed, unsigned| if u { unsigned } else { signed };
    Ok(match l.class.as_str() {
        "TLeafO" => Prim::Bool,
        "TLeafB" => pick(Prim::I8, Prim::U8),
        "TLeafS" => pick(Prim::I16, Prim::U16),
        "TLeafI" => pick(Prim::I32, Prim::U32),
        "TLeafL" | "TLeafG" => pick(Prim::I64, Prim::U64),
        "TLeafF" => Prim::F32,
        "TLeafD" => Prim::F64,
        "TLeafF16" => packed_range(&l.title, false)?,
        "TLeafD32" => packed_range(&l.title, true)?,
        other => return Err(format!("leaf class {other}")),
    })
}

/// The element type of a streamer type code (a TLeafElement's `fType`; fixed arrays, 21-39,
/// as their element), as uproot maps them. Float16_t/Double32_t are left to the caller.
pub(crate) fn ftype_prim(t: i32) -> Option<Prim> {
    let t = if kind::OFFSET_L < t && t < kind::OFFSET_P {
        t - kind::OFFSET_L
    } else {
        t
    };
    Some(match t {
        kind::BOOL => Prim::Bool,
        kind::CHAR => Prim::I8,
        kind::UCHAR => Prim::U8,
        kind::SHORT => Prim::I16,
        kind::USHORT => Prim::U16,
        kind::INT => Prim::I32,
        kind::BITS | kind::UINT | kind::COUNTER => Prim::U32,
        kind::LONG | kind::LONG64 => Prim::I64,
        kind::ULONG | kind::ULONG64 => Prim::U64,
        kind::FLOAT => Prim::F32,
        kind::DOUBLE => Prim::F64,
        _ => return None,
    })
}

/// What a branch is, from its TBranch object, its leaves and its sub-branch count.
pub(crate) struct BranchFacts<'a> {
    pub(crate) obj: &'a Object,
    pub(crate) leaves: &'a [Leaf],
    pub(crate) n_sub: usize,
    /// A top-level branch (directly in the tree).
    pub(crate) top: bool,
    pub(crate) streamers: &'a Streamers,
}

impl BranchFacts<'_> {
    /// `fType` of a TBranchElement (0: top-level or member; 1, 2: split base or object;
    /// 3, 4: TClonesArray or STL collection; 31, 41: members inside them).
    fn element_type(&self) -> i64 {
        self.obj.int("fType").unwrap_or(-999)
    }
    /// Whether its values are its sub-branches' (a split object, base class or STL
    /// collection of objects). A top-level split TClonesArray's branch is not: it holds the
    /// counts, and uproot reads them (a member TClonesArray's it reads as its members).
    pub(crate) fn is_container(&self) -> bool {
        self.n_sub > 0
            && !(self.top && self.obj.class == "TBranchElement" && self.element_type() == 3)
    }
    /// The streamer element a TBranchElement stores (by fClassName, fClassVersion and fID).
    fn element(&self) -> Option<&super::streamers::Element> {
        let class = self.obj.string("fClassName").ok()?;
        let version = self.obj.int("fClassVersion").ok()? as i32;
        let id = usize::try_from(self.obj.int("fID").ok()?).ok()?;
        let info = self
            .streamers
            .get(&class, version)
            .or_else(|| self.streamers.latest(&class))?;
        info.elements.get(id)
    }
}

/// The class and version of a top-level object branch written whole (unsplit: a
/// TBranchElement of fType 0 and fStreamerType -1 without sub-branches), whose members
/// [`crate::columns`] reads as columns when the file describes its class.
pub(crate) fn unsplit_class(f: &BranchFacts) -> Option<(String, i32)> {
    let unsplit = f.top
        && f.n_sub == 0
        && f.obj.class == "TBranchElement"
        && f.element_type() == 0
        && f.obj.int("fStreamerType").ok()? == -1;
    let class = f
        .obj
        .string("fClassName")
        .ok()
        .filter(|c| unsplit && !c.is_empty())?;
    let version = i32::try_from(f.obj.int("fClassVersion").ok()?).ok()?;
    Some((class, version))
}

pub(crate) fn interpret(f: &BranchFacts) -> std::result::Result<Interp, String> {
    if f.is_container() {
        let class = f.obj.string("fClassName").unwrap_or_default();
        return Err(format!(
            "container of {} sub-branches{}: read them instead",
            f.n_sub,
            if class.is_empty() {
                String::new()
            } else {
                format!(" (split {class})")
            }
        ));
    }
    match f.obj.class.as_str() {
        "TBranchElement" => interpret_element(f),
        "TBranch" => interpret_plain(f.leaves),
        other => Err(format!("branch class {other} is not supported")),
    }
}

fn interpret_plain(leaves: &[Leaf]) -> std::result::Result<Interp, String> {
    let leaf = match leaves {
        [] => return Err("branch without leaves".into()),
        [l] => l,
        more => {
            return Err(match leaf_list_fields(more) {
                Ok(_) => format!(
                    "leaf list: its values are its leaves' columns ({})",
                    more.iter()
                        .map(|l| l.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Err(why) => why,
            })
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

/// One column of a leaf-list branch (`x/F:y/F:n/I`): each entry holds every leaf's values
/// one after the other, `stride` bytes in all, this leaf's at `offset`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LeafField {
    pub(crate) interp: Interp,
    pub(crate) offset: usize,
    pub(crate) stride: usize,
}

/// The columns of a leaf-list branch, in leaf order, or why it is not read: a leaf of
/// variable size (a counter, a string) makes entries of different lengths.
pub(crate) fn leaf_list_fields(leaves: &[Leaf]) -> std::result::Result<Vec<LeafField>, String> {
    let mut fields = Vec::with_capacity(leaves.len());
    let mut offset = 0;
    for l in leaves {
        let what = |why: &str| format!("leaf list with {why} leaf {} ('{}')", l.name, l.title);
        if l.class == "TLeafC" {
            return Err(what("the string"));
        }
        let prim = leaf_prim(l)?;
        let (counter, dims) = title_dims(&l.title)?;
        if counter.is_some() || l.counter.is_some() {
            return Err(what("the variable-size"));
        }
        let interp = Interp {
            prim,
            shape: if dims.is_empty() {
                Shape::Scalar
            } else {
                Shape::Fixed(dims)
            },
        };
        let size = prim.disk_size() * interp.item_len();
        fields.push(LeafField {
            interp,
            offset,
            stride: 0,
        });
        offset += size;
    }
    for f in &mut fields {
        f.stride = offset;
    }
    Ok(fields)
}

/// Fixed dimensions of a TLeafElement, as uproot reads them: every numeric `[N]` of its title,
/// else `fLen` when above 1.
fn element_dims(leaf: &Leaf) -> Vec<usize> {
    let name = leaf.title.split('/').next().unwrap_or("");
    let mut dims: Vec<usize> = name
        .split('[')
        .skip(1)
        .filter_map(|s| s.split(']').next()?.trim().parse().ok())
        .collect();
    if dims.is_empty() && leaf.len > 1 {
        dims.push(leaf.len as usize);
    }
    dims
}

fn interpret_element(f: &BranchFacts) -> std::result::Result<Interp, String> {
    let class_name = f.obj.string("fClassName").unwrap_or_default();
    let btype = f.element_type();
    let streamer_type = f.obj.int("fStreamerType").unwrap_or(-999);
    let leaf = match f.leaves {
        [l] => l,
        more => return Err(format!("TBranchElement with {} leaves", more.len())),
    };
    // The counts of a split TClonesArray (its members are jagged by them).
    if btype == 3 {
        return Ok(Interp {
            prim: Prim::I32,
            shape: Shape::Scalar,
        });
    }
    // A member (or top-level branch) of a basic type, a fixed array of one, or (inside a
    // TClonesArray or STL collection) a jagged array of one.
    if leaf.class == "TLeafElement" {
        let lt = leaf.ftype;
        let base = if kind::OFFSET_L < lt && lt < kind::OFFSET_P {
            lt - kind::OFFSET_L
        } else {
            lt
        };
        let prim = match base {
            kind::FLOAT16 | kind::DOUBLE32 => {
                let double = base == kind::DOUBLE32;
                let el = f.element().ok_or_else(|| {
                    format!(
                        "{} member without its streamer element",
                        if double { "Double32_t" } else { "Float16_t" }
                    )
                })?;
                Some(packed_from(&el.title, &el.title, double)?)
            }
            // TObject's fBits in a split object or collection: 6 bytes when referenced.
            kind::BITS if lt == kind::BITS => Some(Prim::Bits),
            _ => ftype_prim(lt),
        };
        if let Some(prim) = prim {
            let dims = element_dims(leaf);
            let shape = match &leaf.counter {
                Some(c) => Shape::Var {
                    counter: c.clone(),
                    inner: dims,
                },
                None if dims.is_empty() => Shape::Scalar,
                None => Shape::Fixed(dims),
            };
            return Ok(Interp { prim, shape });
        }
    }
    // The C++ type of the values: the branch's class at the top, the member's type below.
    let cpp = if f.top {
        class_name.clone()
    } else {
        f.element().map(|e| e.type_name.clone()).unwrap_or_default()
    };
    let cls = cpp.replace(' ', "");
    let stl = streamer_type == -1 || streamer_type == 500 || streamer_type == 300;
    if btype == 0 && stl {
        if let Some(interp) = vector_interp(&cpp)? {
            return Ok(interp);
        }
    }
    let string = cls == "string" || cls == "std::string";
    // A top-level std::string: each entry is the string as a TString, no object header; a
    // std::string member has its object header; a TString member is a TString.
    // (A std::string member may also be marked kSTL, 300.)
    let string_type =
        streamer_type == -1 || streamer_type == 365 || (!f.top && streamer_type == 300);
    if (btype == 0 || btype == -1) && string_type && string {
        return Ok(Interp {
            prim: Prim::U8,
            shape: Shape::String { header: !f.top },
        });
    }
    if btype == 0 && !f.top && streamer_type == i64::from(kind::TSTRING) {
        return Ok(Interp {
            prim: Prim::U8,
            shape: Shape::String { header: false },
        });
    }
    Err(format!(
        "object branch of class '{}' (fType {btype}, streamer type {streamer_type}) is not supported",
        if cpp.is_empty() { &class_name } else { &cpp }
    ))
}

/// The element type of a `std::vector` type name (`vector<float>`, `std::vector<T,Alloc>`),
/// None when `t` is not one. ROOT::VecOps::RVec<T> is stored as a std::vector<T>; an allocator
/// argument (`vector<float,ROOT::Detail::VecOps::RAdoptAllocator<float> >`) does not change it.
fn vector_element(t: &str) -> Option<&str> {
    let inner = [
        "vector<",
        "std::vector<",
        "ROOT::VecOps::RVec<",
        "ROOT::RVec<",
    ]
    .iter()
    .find_map(|p| t.trim().strip_prefix(p))?
    .strip_suffix('>')?;
    // The first template argument ends at the first comma outside brackets.
    let mut depth = 0i32;
    let first = inner
        .char_indices()
        .find_map(|(i, c)| {
            match c {
                '<' => depth += 1,
                '>' => depth -= 1,
                ',' if depth == 0 => return Some(&inner[..i]),
                _ => {}
            }
            None
        })
        .unwrap_or(inner);
    Some(first.trim())
}

/// How a `std::vector` type decodes (vectors of numbers, of strings, of ElementLinks, of
/// vectors of these),
/// None when `cpp` is not a vector, or why hepml does not decode its elements. (The element
/// type keeps its spaces: `unsigned int`.)
pub(crate) fn vector_interp(cpp: &str) -> std::result::Result<Option<Interp>, String> {
    let mut element = cpp.trim();
    let mut vectors = 0;
    while let Some(inner) = vector_element(element) {
        vectors += 1;
        element = inner;
    }
    if vectors == 0 {
        return Ok(None);
    }
    let (prim, element) = match element {
        "string" | "std::string" | "TString" => (Prim::U8, Element::String),
        _ if element.starts_with("ElementLink<") => (Prim::U32, Element::Link),
        _ => match Prim::from_cpp(element) {
            Some(prim) => (prim, Element::Number),
            None => return Err(format!("std::vector of {element} is not supported")),
        },
    };
    let shape = if vectors == 1 && element == Element::Number {
        Shape::Vector
    } else {
        Shape::Nested { vectors, element }
    };
    Ok(Some(Interp { prim, shape }))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn vector_types() {
        let interp = |t: &str| vector_interp(t).unwrap().map(|i| (i.prim, i.shape));
        assert_eq!(interp("float"), None);
        assert_eq!(
            interp("vector<unsigned int>"),
            Some((Prim::U32, Shape::Vector))
        );
        assert_eq!(
            interp("ROOT::VecOps::RVec<float,ROOT::Detail::VecOps::RAdoptAllocator<float> >"),
            Some((Prim::F32, Shape::Vector))
        );
        assert_eq!(
            interp("vector<vector<float,allocator<float> > >"),
            Some((
                Prim::F32,
                Shape::Nested {
                    vectors: 2,
                    element: Element::Number
                }
            ))
        );
        assert_eq!(
            interp("std::vector<std::string>"),
            Some((
                Prim::U8,
                Shape::Nested {
                    vectors: 1,
                    element: Element::String
                }
            ))
        );
        assert_eq!(
            interp("vector<vector<string> >"),
            Some((
                Prim::U8,
                Shape::Nested {
                    vectors: 2,
                    element: Element::String
                }
            ))
        );
        assert_eq!(
            interp("std::vector<std::vector<ElementLink<DataVector<xAOD::IParticle>>>>"),
            Some((
                Prim::U32,
                Shape::Nested {
                    vectors: 2,
                    element: Element::Link
                }
            ))
        );
        assert_eq!(
            vector_interp("vector<vector<pair<int,float> > >").unwrap_err(),
            "std::vector of pair<int,float> is not supported"
        );
    }

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
