//! Big-endian cursors over ROOT's serialised buffers (reading and writing), with the pieces of
//! TBufferFile every object needs: version headers with byte counts, TStrings, and the
//! tag scheme of `ReadObjectAny` (new class, class reference, object reference).

use super::error::{Result, RootError};

/// Bit set in a 4-byte byte count (ROOT `kByteCountMask`).
pub(crate) const BYTE_COUNT_MASK: u32 = 0x4000_0000;
/// A tag that introduces a class by name (ROOT `kNewClassTag`).
pub(crate) const NEW_CLASS_TAG: u32 = 0xFFFF_FFFF;
/// Bit set in a tag that refers to an already-seen class (ROOT `kClassMask`).
pub(crate) const CLASS_MASK: u32 = 0x8000_0000;
/// Offset added to buffer positions in reference tags (ROOT `kMapOffset`).
pub(crate) const MAP_OFFSET: u32 = 2;

/// Reader over one object buffer. `origin` is the displacement of byte 0 of `data` in ROOT's
/// buffer numbering (ROOT counts from the start of the TKey, so for a key's payload it is the
/// key length); reference tags are displacements.
#[derive(Clone)]
pub(crate) struct RBuf<'a> {
    data: &'a [u8],
    pos: usize,
    origin: usize,
}

/// A version header: the byte count (when written) lets a reader skip what it does not model.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub(crate) start: usize,
    pub(crate) end: Option<usize>,
    pub(crate) version: i16,
}

macro_rules! getter {
    ($name:ident, $t:ty) => {
        #[inline]
        pub(crate) fn $name(&mut self) -> Result<$t> {
            const N: usize = std::mem::size_of::<$t>();
            let b = self.bytes(N)?;
            let mut a = [0u8; N];
            a.copy_from_slice(b);
            Ok(<$t>::from_be_bytes(a))
        }
    };
}

impl<'a> RBuf<'a> {
    pub(crate) fn new(data: &'a [u8], origin: usize) -> Self {
        RBuf {
            data,
            pos: 0,
            origin,
        }
    }
    pub(crate) fn data(&self) -> &'a [u8] {
        self.data
    }
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }
    pub(crate) fn len(&self) -> usize {
        self.data.len()
    }
    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }
    /// ROOT's buffer displacement of the current position (what reference tags count).
    pub(crate) fn disp(&self) -> usize {
        self.pos + self.origin
    }
    pub(crate) fn set_pos(&mut self, pos: usize) -> Result<()> {
        if pos > self.data.len() {
            return Err(self.truncated(pos - self.pos.min(pos)));
        }
        self.pos = pos;
        Ok(())
    }
    fn truncated(&self, wanted: usize) -> RootError {
        RootError::Truncated {
            what: "object buffer",
            at: self.pos,
            wanted,
            len: self.data.len(),
        }
    }
    #[inline]
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.truncated(n))?;
        if end > self.data.len() {
            return Err(self.truncated(n));
        }
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    pub(crate) fn skip(&mut self, n: usize) -> Result<()> {
        self.bytes(n).map(|_| ())
    }
    getter!(u8, u8);
    getter!(i8, i8);
    getter!(u16, u16);
    getter!(i16, i16);
    getter!(u32, u32);
    getter!(i32, i32);
    getter!(u64, u64);
    getter!(i64, i64);
    getter!(f32, f32);
    getter!(f64, f64);

    /// A TString: one length byte, or 255 followed by a 4-byte length.
    pub(crate) fn tstring(&mut self) -> Result<&'a [u8]> {
        let n = self.u8()?;
        let n = if n == 255 {
            let n = self.i32()?;
            usize::try_from(n).map_err(|_| RootError::malformed(format!("TString length {n}")))?
        } else {
            n as usize
        };
        self.bytes(n)
    }
    pub(crate) fn tstring_lossy(&mut self) -> Result<String> {
        Ok(String::from_utf8_lossy(self.tstring()?).into_owned())
    }
    /// A NUL-terminated string (class names after kNewClassTag).
    pub(crate) fn cstring(&mut self) -> Result<&'a [u8]> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| RootError::malformed("unterminated class name"))?;
        let s = &rest[..n];
        self.pos += n + 1;
        Ok(s)
    }

    /// `TBufferFile::ReadVersion`: an optional byte count, then a 2-byte version (and a
    /// checksum when the version is 0 for classes that write one).
    pub(crate) fn header(&mut self, class: &str) -> Result<Header> {
        let start = self.pos;
        let first = self.u32()?;
        let end = if first & BYTE_COUNT_MASK != 0 {
            let n = (first & !BYTE_COUNT_MASK) as usize;
            let end = self.pos + n;
            if end > self.data.len() {
                return Err(RootError::malformed(format!(
                    "{class}: byte count {n} at offset {start} runs past the {}-byte buffer",
                    self.data.len()
                )));
            }
            Some(end)
        } else {
            self.pos = start;
            None
        };
        let version = self.i16()?;
        Ok(Header {
            start,
            end,
            version,
        })
    }
    /// After reading what we model of an object: jump to its end as given by the byte count,
    /// or fail if we read past it (a layout we misunderstood must not go unnoticed).
    pub(crate) fn finish(&mut self, h: &Header, class: &str) -> Result<()> {
        if let Some(end) = h.end {
            if self.pos > end {
                return Err(RootError::malformed(format!(
                    "{class} v{}: read {} bytes past its byte count",
                    h.version,
                    self.pos - end
                )));
            }
            self.pos = end;
        }
        Ok(())
    }
}

/// Writer mirroring [`RBuf`].
#[derive(Default, Clone)]
pub(crate) struct WBuf {
    pub(crate) data: Vec<u8>,
    pub(crate) origin: usize,
}

macro_rules! putter {
    ($name:ident, $t:ty) => {
        #[inline]
        pub(crate) fn $name(&mut self, v: $t) {
            self.data.extend_from_slice(&v.to_be_bytes());
        }
    };
}

impl WBuf {
    pub(crate) fn new(origin: usize) -> Self {
        WBuf {
            data: Vec::new(),
            origin,
        }
    }
    pub(crate) fn pos(&self) -> usize {
        self.data.len()
    }
    pub(crate) fn disp(&self) -> usize {
        self.data.len() + self.origin
    }
    putter!(u8, u8);
    putter!(i8, i8);
    putter!(u16, u16);
    putter!(i16, i16);
    putter!(u32, u32);
    putter!(i32, i32);
    putter!(u64, u64);
    putter!(i64, i64);
    putter!(f32, f32);
    putter!(f64, f64);
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.data.extend_from_slice(b);
    }
    pub(crate) fn tstring(&mut self, s: &[u8]) {
        if s.len() < 255 {
            self.u8(s.len() as u8);
        } else {
            self.u8(255);
            self.i32(s.len() as i32);
        }
        self.bytes(s);
    }
    /// Starts a versioned object with a byte count; returns the position to patch.
    pub(crate) fn begin(&mut self, version: i16) -> usize {
        let at = self.pos();
        self.u32(0);
        self.i16(version);
        at
    }
    /// Patches the byte count written by [`WBuf::begin`].
    pub(crate) fn end(&mut self, at: usize) {
        let n = (self.pos() - at - 4) as u32;
        self.data[at..at + 4].copy_from_slice(&(n | BYTE_COUNT_MASK).to_be_bytes());
    }
}
