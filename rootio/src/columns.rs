//! Columns cut out of one branch's entries: the leaves of a leaf-list branch (`x/F:y/F:n/I`,
//! fixed-size entries, each leaf at its byte offset), and the members of an object branch
//! written whole (unsplit, `splitlevel` 0: one object per entry), read member by member from
//! the class's TStreamerInfo. Each column is named `branch.member`, as uproot names its
//! record fields, and decodes exactly as that leaf's or that member's own branch would: its
//! bytes are cut out of each entry, then decoded by the ordinary readers.
//!
//! An entry of an unsplit object, as ROOT's TBranchElement writes it and uproot's generated
//! models read it: its members in streamer order (ROOT writes no byte count and version of
//! the object itself; an entry with them is read too): a TObject base (version, fUniqueID, fBits, and a process id when
//! referenced); numbers and fixed arrays of them (big-endian); TStrings (length-prefixed);
//! `std::string`s and STL containers, each with its own byte count and version, laid out as
//! the entry of a split branch of that member type. The members must end the entry exactly,
//! and the member decoded must fill its own byte count exactly (checked by its decoder). A class with a member of any other kind (another
//! base class, an object, a pointer, Double32_t/Float16_t) is not read: its branch carries
//! that member as the reason.

use super::error::{Context, Result, RootError};
use super::interp::{ftype_prim, vector_interp};
use super::rbuf::{RBuf, BYTE_COUNT_MASK};
use super::read::RawBasket;
use super::streamers::{kind, read_tobject, Element, StreamerInfo};
use super::tree::{Interp, Shape};
use std::sync::Arc;

/// Which part of each entry a column is.
#[derive(Debug, Clone)]
pub(crate) enum Column {
    /// A leaf of a leaf-list branch: `size` bytes at `offset` of each `stride`-byte entry.
    Leaf { offset: usize, stride: usize },
    /// Member `index` of an unsplit object.
    Member { layout: Arc<Layout>, index: usize },
}

/// How each member of an unsplit object's entry is delimited.
#[derive(Debug, Clone, PartialEq)]
enum Span {
    /// The TObject base class.
    TObject,
    /// A fixed number of bytes (numbers, fixed arrays of them).
    Fixed(usize),
    /// A TString.
    TString,
    /// A byte count and version, then the content (`std::string`, STL containers).
    Counted,
}

/// One member of an unsplit class.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) name: String,
    span: Span,
    /// How its column decodes; None for the TObject base (not a column: uproot's records
    /// leave it out too).
    pub(crate) interp: Option<Interp>,
}

/// The members of one class version, as its TStreamerInfo lists them.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    class: String,
    version: i16,
    pub(crate) members: Vec<Member>,
}

/// The layout of an unsplit `class` (its streamer info `info`), or why it is not read: the
/// first member hepml does not decode.
pub(crate) fn layout(class: &str, info: &StreamerInfo) -> std::result::Result<Layout, String> {
    let version = i16::try_from(info.class_version).map_err(|_| {
        format!(
            "unsplit object of class '{class}' version {}",
            info.class_version
        )
    })?;
    let members = info
        .elements
        .iter()
        .map(|el| {
            member(el).map_err(|why| {
                format!(
                    "unsplit object of class '{class}': member {} ({}) {why}",
                    el.name, el.type_name
                )
            })
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if members.iter().all(|m| m.interp.is_none()) {
        return Err(format!("unsplit object of class '{class}' without members"));
    }
    Ok(Layout {
        class: class.to_string(),
        version,
        members,
    })
}

fn member(el: &Element) -> std::result::Result<Member, String> {
    let t = el.etype;
    let stl = el.element_class == "TStreamerSTL" || el.element_class == "TStreamerSTLstring";
    let (span, interp) = match t {
        kind::TOBJECT if el.element_class == "TStreamerBase" && &*el.name == "TObject" => {
            (Span::TObject, None)
        }
        kind::DOUBLE32 | kind::FLOAT16 => return Err("is a packed float: not decoded".into()),
        1..=18 => {
            let prim = ftype_prim(t).ok_or("is not decoded")?;
            let shape = Shape::Scalar;
            (Span::Fixed(prim.disk_size()), Some(Interp { prim, shape }))
        }
        21..=38 if el.array_dim == 1 && el.array_length > 0 && t % 20 != kind::DOUBLE32 => {
            let prim = ftype_prim(t).ok_or("is not decoded")?;
            let n = el.array_length as usize;
            let shape = Shape::Fixed(vec![n]);
            (
                Span::Fixed(prim.disk_size() * n),
                Some(Interp { prim, shape }),
            )
        }
        kind::TSTRING => (
            Span::TString,
            Some(Interp {
                prim: super::tree::Prim::U8,
                shape: Shape::String { header: false },
            }),
        ),
        kind::STL | kind::STLSTRING | kind::STREAMER if stl => {
            let cpp = el.type_name.replace(' ', "");
            let interp = if cpp == "string" || cpp == "std::string" {
                Interp {
                    prim: super::tree::Prim::U8,
                    shape: Shape::String { header: true },
                }
            } else {
                vector_interp(&el.type_name)?.ok_or("is a container not decoded")?
            };
            (Span::Counted, Some(interp))
        }
        _ => return Err(format!("of streamer type {t} is not decoded")),
    };
    Ok(Member {
        name: el.name.to_string(),
        span,
        interp,
    })
}

impl Layout {
    /// The bytes of member `index` in one entry.
    fn member_bytes<'a>(&self, entry: &'a [u8], index: usize) -> Result<&'a [u8]> {
        let class = &self.class;
        let mut r = RBuf::new(entry, 0);
        // ROOT writes a top-level object's members without the object's own byte count and
        // version; one written with them (ending the entry, of this class version) is read too.
        let headed = match (r.u32(), r.i16()) {
            (Ok(first), Ok(version)) => {
                first & BYTE_COUNT_MASK != 0
                    && (first & !BYTE_COUNT_MASK) as usize + 4 == entry.len()
                    && version == self.version
            }
            _ => false,
        };
        if !headed {
            r.set_pos(0)?;
        }
        let mut found = None;
        for (k, m) in self.members.iter().enumerate() {
            let start = r.pos();
            match m.span {
                Span::TObject => {
                    read_tobject(&mut r)?;
                }
                Span::Fixed(n) => r.skip(n)?,
                Span::TString => {
                    r.tstring()?;
                }
                Span::Counted => {
                    let h = r.header(&m.name)?;
                    let end = h.end.ok_or_else(|| {
                        RootError::malformed(format!(
                            "{class} member {} without byte count",
                            m.name
                        ))
                    })?;
                    r.set_pos(end)?;
                }
            }
            if k == index {
                found = Some(start..r.pos());
            }
        }
        if r.remaining() != 0 {
            return Err(RootError::malformed(format!(
                "{class} entry: its members end {} bytes before the entry does",
                r.remaining()
            )));
        }
        let range =
            found.ok_or_else(|| RootError::malformed(format!("{class}: no member {index}")))?;
        Ok(&entry[range])
    }
}

impl Column {
    /// Keeps, of each entry of `basket`, this column's bytes (and, when they vary in size, an
    /// offset per entry); `item` is the size of a fixed-size column's entries.
    pub(crate) fn select(&self, basket: &mut RawBasket, item: usize) -> Result<()> {
        match self {
            Column::Leaf { offset, stride } => select_field(basket, *offset, item, *stride),
            Column::Member { layout, index } => {
                let mut data = Vec::with_capacity(basket.data.len());
                let mut offsets = vec![0];
                for e in 0..basket.nev as usize {
                    let entry = basket.entry(e)?;
                    data.extend_from_slice(
                        layout
                            .member_bytes(entry, *index)
                            .context(|| format!("entry {e}"))?,
                    );
                    offsets.push(data.len());
                }
                let fixed = matches!(layout.members.get(*index), Some(m) if matches!(m.span, Span::Fixed(_)));
                basket.data = data;
                basket.offsets = if fixed { None } else { Some(offsets) };
                Ok(())
            }
        }
    }
}

/// Keeps, of each `stride`-byte entry, the `size` bytes at `offset`: one leaf's values of
/// a leaf-list basket.
fn select_field(basket: &mut RawBasket, offset: usize, size: usize, stride: usize) -> Result<()> {
    if stride == 0
        || offset + size > stride
        || basket.offsets.is_some()
        || basket.data.len() as u64 != basket.nev * stride as u64
    {
        return Err(RootError::malformed(format!(
            "leaf-list basket of {} entries has {} bytes, {} expected",
            basket.nev,
            basket.data.len(),
            basket.nev * stride as u64
        )));
    }
    let mut out = Vec::with_capacity(basket.nev as usize * size);
    for entry in basket.data.chunks_exact(stride) {
        out.extend_from_slice(&entry[offset..offset + size]);
    }
    basket.data = out;
    Ok(())
}
