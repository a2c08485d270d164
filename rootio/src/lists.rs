//! Entries of `std::vector` branches written object-wise: vectors of numbers
//! ([`Shape::Vector`]) and vectors of strings, of ElementLinks or of vectors
//! ([`Shape::Nested`]), decoded into one offsets level per list ([`Array::outer`], then
//! [`Array::offsets`]).
//!
//! The layout of an entry, as ROOT's TBufferFile writes it and uproot's `AsVector` reads it:
//! the outer vector's byte count and version (6 bytes), its size (u32), then its items. A
//! nested vector is its size then its items, with no header of its own; a string is a TString
//! (a 1-byte length, or 255 then a 4-byte length, then the bytes); numbers are big-endian. An
//! ATLAS `ElementLink<T>` is an object: its byte count and version (version 0: a foreign
//! class, a 4-byte checksum follows), then its base `ElementLinkBase` the same way, holding
//! `m_persKey` and `m_persIndex` (uint32); both byte counts must end where those end.
//! The byte count must end the entry exactly: a layout misread is an error, never a guess.

use super::error::{Result, RootError};
use super::rbuf::RBuf;
use super::read::{decode_values, Array, Data};
use super::tree::{Element, Interp, Prim, Shape};

/// Version bit of a collection streamed member-wise (TBufferFile's kStreamedMemberWise).
const MEMBERWISE: i16 = 0x4000;

/// Decodes one entry of a `std::vector` branch and appends it to `out`, recording each
/// list's end in its offsets level.
pub(crate) fn append_vector_entry(bytes: &[u8], interp: &Interp, out: &mut Array) -> Result<()> {
    let element = match interp.shape {
        Shape::Nested { element, .. } => element,
        _ => Element::Number,
    };
    let levels = interp.shape.levels();
    if levels == 0 || out.outer.len() + 1 != levels {
        return Err(RootError::malformed(format!(
            "{} entry into an array of {} offsets levels",
            interp.type_name(),
            out.outer.len() + usize::from(out.offsets.is_some())
        )));
    }
    let mut r = RBuf::new(bytes, 0);
    let h = r.header("std::vector")?;
    if h.end != Some(bytes.len()) {
        return Err(RootError::malformed(format!(
            "std::vector entry of {} bytes whose byte count ends it at {:?}",
            bytes.len(),
            h.end
        )));
    }
    if h.version & MEMBERWISE != 0 {
        return Err(RootError::unsupported(
            "std::vector entry streamed member-wise",
        ));
    }
    let item = Item {
        levels,
        element,
        prim: interp.prim,
    };
    item.read(&mut r, 0, out)?;
    if r.remaining() != 0 {
        return Err(RootError::malformed(format!(
            "std::vector entry of {} bytes ends {} bytes after its items",
            bytes.len(),
            r.remaining()
        )));
    }
    Ok(())
}

/// What the items of a nested list are.
struct Item {
    /// Offsets levels (lists, and strings).
    levels: usize,
    /// What the innermost items are.
    element: Element,
    /// The element type of numbers.
    prim: Prim,
}

impl Item {
    /// Reads one item of offsets level `level` (0: the entry itself) and records its end.
    fn read(&self, r: &mut RBuf, level: usize, out: &mut Array) -> Result<()> {
        let last = level + 1 == self.levels;
        let end = if last && self.element == Element::String {
            let s = r.tstring()?;
            match &mut out.data {
                Data::U8(v) => v.extend_from_slice(s),
                _ => return Err(RootError::malformed("string output type")),
            }
            out.data.len()
        } else {
            let n = r.u32()? as usize;
            if last && self.element == Element::Link {
                let Data::U32(v) = &mut out.data else {
                    return Err(RootError::malformed("ElementLink output type"));
                };
                for _ in 0..n {
                    let (key, index) = element_link(r)?;
                    v.extend([key, index]);
                }
                v.len()
            } else if last {
                let len = n
                    .checked_mul(self.prim.disk_size())
                    .filter(|&len| len <= r.remaining())
                    .ok_or_else(|| {
                        RootError::malformed(format!(
                            "std::vector of {n} values in {} bytes",
                            r.remaining()
                        ))
                    })?;
                decode_values(r.bytes(len)?, self.prim, &mut out.data)?;
                out.data.len()
            } else {
                // Every item takes at least one byte: a corrupted size fails when the bytes
                // run out, without allocating for it.
                for _ in 0..n {
                    self.read(r, level + 1, out)?;
                }
                level_mut(out, level + 1, self.levels)?.len() - 1
            }
        };
        level_mut(out, level, self.levels)?.push(end);
        Ok(())
    }
}

/// One ElementLink: (m_persKey, m_persIndex).
fn element_link(r: &mut RBuf) -> Result<(u32, u32)> {
    let end = object_header(r, "ElementLink")?;
    let base_end = object_header(r, "ElementLinkBase")?;
    let (key, index) = (r.u32()?, r.u32()?);
    if r.pos() != base_end || r.pos() != end {
        return Err(RootError::malformed(format!(
            "ElementLink ends at {}, its byte counts say {base_end} and {end}",
            r.pos()
        )));
    }
    Ok((key, index))
}

/// An object's byte count and version, and the checksum of a foreign class (version 0): where
/// the object ends.
fn object_header(r: &mut RBuf, class: &str) -> Result<usize> {
    let h = r.header(class)?;
    let end = h
        .end
        .ok_or_else(|| RootError::malformed(format!("{class} without a byte count")))?;
    if h.version <= 0 {
        r.u32()?;
    }
    Ok(end)
}

/// Offsets level `k` of `out`: `outer[k]`, or `offsets` for the last.
fn level_mut(out: &mut Array, k: usize, levels: usize) -> Result<&mut Vec<usize>> {
    let level = if k + 1 == levels {
        out.offsets.as_mut()
    } else {
        out.outer.get_mut(k)
    };
    level.ok_or_else(|| RootError::malformed(format!("array without offsets level {k}")))
}
