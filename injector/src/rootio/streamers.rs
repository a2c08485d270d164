//! TStreamerInfo records: the per-class, per-version description of how objects are laid out.
//! hepml reads TTree/TBranch/TLeaf metadata by interpreting these, so every ROOT version's
//! layout (ROOT 5 to 6.40) is read from the file's own description, and written back the same way.

use super::error::{Context, Result, RootError};
use super::rbuf::{RBuf, WBuf, CLASS_MASK, MAP_OFFSET, NEW_CLASS_TAG};
use std::collections::HashMap;

/// `TStreamerElement::fType` values (ROOT `TVirtualStreamerInfo::EReadWrite`).
pub mod kind {
    pub const BASE: i32 = 0;
    pub const CHAR: i32 = 1;
    pub const SHORT: i32 = 2;
    pub const INT: i32 = 3;
    pub const LONG: i32 = 4;
    pub const FLOAT: i32 = 5;
    pub const COUNTER: i32 = 6;
    pub const CHARSTAR: i32 = 7;
    pub const DOUBLE: i32 = 8;
    pub const DOUBLE32: i32 = 9;
    pub const LEGACY_CHAR: i32 = 10;
    pub const UCHAR: i32 = 11;
    pub const USHORT: i32 = 12;
    pub const UINT: i32 = 13;
    pub const ULONG: i32 = 14;
    pub const BITS: i32 = 15;
    pub const LONG64: i32 = 16;
    pub const ULONG64: i32 = 17;
    pub const BOOL: i32 = 18;
    pub const FLOAT16: i32 = 19;
    pub const OFFSET_L: i32 = 20;
    pub const OFFSET_P: i32 = 40;
    pub const OBJECT: i32 = 61;
    pub const ANY: i32 = 62;
    pub const OBJECTP: i32 = 63;
    pub const OBJECT_PP: i32 = 64;
    pub const TSTRING: i32 = 65;
    pub const TOBJECT: i32 = 66;
    pub const TNAMED: i32 = 67;
    pub const ANYP: i32 = 68;
    pub const ANY_PP: i32 = 69;
    pub const STL: i32 = 300;
    pub const STLSTRING: i32 = 365;
    pub const STREAMER: i32 = 500;
    pub const STREAM_LOOP: i32 = 501;
}

/// One member (or base class) of a class layout.
#[derive(Debug, Clone)]
pub struct Element {
    /// The streamer-element class (`TStreamerBase`, `TStreamerBasicType`, ...).
    pub element_class: String,
    pub version: i16,
    pub name: String,
    pub title: String,
    pub etype: i32,
    pub size: i32,
    pub array_length: i32,
    pub array_dim: i32,
    pub max_index: Vec<i32>,
    pub type_name: String,
    /// TStreamerBase: the base class version.
    pub base_version: Option<i32>,
    /// TStreamerBasicPointer / TStreamerLoop: the counter member.
    pub count: Option<(i32, String, String)>,
    /// TStreamerSTL: container and content type.
    pub stl: Option<(i32, i32)>,
    /// TObject part of the element as read (kept for faithful re-serialisation).
    pub tobject: (i16, u32, u32),
}

/// A class layout at one version.
#[derive(Debug, Clone)]
pub struct StreamerInfo {
    pub name: String,
    pub title: String,
    pub checksum: u32,
    pub class_version: i32,
    pub elements: Vec<Element>,
    pub tobject: (i16, u32, u32),
    pub version: i16,
    pub named_version: i16,
    pub array_version: i16,
}

/// The streamer infos of a file, by class name and version.
#[derive(Debug, Clone, Default)]
pub struct Streamers {
    pub infos: Vec<StreamerInfo>,
    by_name: HashMap<String, Vec<usize>>,
    /// Anything else the file's streamer list held (schema-evolution rule lists), kept raw.
    pub extra: Vec<Vec<u8>>,
}

impl Streamers {
    pub fn from_infos(infos: Vec<StreamerInfo>) -> Self {
        let mut s = Streamers {
            infos: Vec::new(),
            by_name: HashMap::new(),
            extra: Vec::new(),
        };
        for i in infos {
            s.add(i);
        }
        s
    }
    pub fn add(&mut self, info: StreamerInfo) {
        if self.get(&info.name, info.class_version).is_some() {
            return;
        }
        self.by_name
            .entry(info.name.clone())
            .or_default()
            .push(self.infos.len());
        self.infos.push(info);
    }
    pub fn get(&self, class: &str, version: i32) -> Option<&StreamerInfo> {
        self.by_name
            .get(class)?
            .iter()
            .map(|&i| &self.infos[i])
            .find(|i| i.class_version == version)
    }
    /// The highest version known for a class.
    pub fn latest(&self, class: &str) -> Option<&StreamerInfo> {
        self.by_name
            .get(class)?
            .iter()
            .map(|&i| &self.infos[i])
            .max_by_key(|i| i.class_version)
    }

    /// Parses the payload of the file's `StreamerInfo` key (a TList).
    pub fn parse(payload: &[u8], keylen: usize) -> Result<Self> {
        let mut b = RBuf::new(payload, keylen);
        let h = b.header("TList")?;
        let _tobject = read_tobject(&mut b)?;
        let _name = b.tstring()?;
        let n = b.i32()?;
        if n < 0 {
            return Err(RootError::malformed(format!(
                "streamer list with {n} entries"
            )));
        }
        let mut out = Streamers::default();
        let mut classes: HashMap<u32, String> = HashMap::new();
        for i in 0..n {
            let start = b.pos();
            let (class, obj_start) = read_any_header(&mut b, &mut classes)
                .context(|| format!("streamer list entry {i}"))?;
            match class.as_deref() {
                Some("TStreamerInfo") => {
                    let info = read_streamer_info(&mut b, &mut classes)
                        .context(|| format!("streamer list entry {i}"))?;
                    out.add(info);
                }
                Some(_) => {
                    // e.g. the TList of schema-evolution rules: skip by its byte count.
                    let h = b.header("streamer list entry")?;
                    if h.end.is_none() {
                        return Err(RootError::malformed(
                            "streamer list entry without byte count",
                        ));
                    }
                    b.finish(&h, "streamer list entry")?;
                    out.extra.push(b.data()[start..b.pos()].to_vec());
                }
                None => {}
            }
            let _ = obj_start;
            let _opt = b.tstring()?; // the TList option string of each entry
        }
        b.finish(&h, "TList")?;
        Ok(out)
    }
}

/// TObject's own streaming: version, fUniqueID, fBits (+ a process id when referenced).
pub fn read_tobject(b: &mut RBuf) -> Result<(i16, u32, u32)> {
    let v = b.header("TObject")?;
    let id = b.u32()?;
    let bits = b.u32()?;
    if bits & (1 << 4) != 0 {
        // kIsReferenced: a TProcessID number follows
        b.u16()?;
    }
    b.finish(&v, "TObject")?;
    Ok((v.version, id, bits))
}

pub fn write_tobject(w: &mut WBuf, t: (i16, u32, u32)) {
    w.i16(t.0.max(1));
    w.u32(t.1);
    w.u32(t.2 & !(1 << 4));
}

/// The tag part of `ReadObjectAny`, for lists whose members are all new objects:
/// returns the class name (None for a null pointer) and the object's start position.
fn read_any_header(
    b: &mut RBuf,
    classes: &mut HashMap<u32, String>,
) -> Result<(Option<String>, usize)> {
    let start = b.pos();
    let bcnt = b.u32()?;
    let tag = if bcnt & super::rbuf::BYTE_COUNT_MASK == 0 || bcnt == NEW_CLASS_TAG {
        return Err(RootError::unsupported(
            "object written without byte count (ROOT < 3)",
        ));
    } else {
        let at = b.disp();
        let t = b.u32()?;
        (t, at)
    };
    let (tag, tag_at) = tag;
    if tag & CLASS_MASK == 0 {
        if tag == 0 {
            return Ok((None, start));
        }
        return Err(RootError::malformed(
            "object reference inside a streamer list",
        ));
    }
    let class = if tag == NEW_CLASS_TAG {
        let name = String::from_utf8_lossy(b.cstring()?).into_owned();
        classes.insert(tag_at as u32 + MAP_OFFSET, name.clone());
        name
    } else {
        classes
            .get(&(tag & !CLASS_MASK))
            .cloned()
            .ok_or_else(|| RootError::malformed(format!("unknown class tag {:#x}", tag)))?
    };
    Ok((Some(class), start))
}

/// (version, TObject part, name, title)
type Named = (i16, (i16, u32, u32), String, String);

fn read_tnamed(b: &mut RBuf) -> Result<Named> {
    let h = b.header("TNamed")?;
    let t = read_tobject(b)?;
    let name = b.tstring_lossy()?;
    let title = b.tstring_lossy()?;
    b.finish(&h, "TNamed")?;
    Ok((h.version, t, name, title))
}

fn read_streamer_info(b: &mut RBuf, classes: &mut HashMap<u32, String>) -> Result<StreamerInfo> {
    let h = b.header("TStreamerInfo")?;
    let (named_version, tobject, name, title) = read_tnamed(b)?;
    let checksum = b.u32()?;
    let class_version = b.i32()?;
    // fElements: a TObjArray pointer
    let (cls, _) = read_any_header(b, classes)?;
    let mut elements = Vec::new();
    let mut array_version = 3;
    if cls.is_some() {
        let ah = b.header("TObjArray")?;
        array_version = ah.version;
        read_tobject(b)?;
        b.tstring()?;
        let n = b.i32()?;
        let _low = b.i32()?;
        for _ in 0..n.max(0) {
            let (ecls, _) = read_any_header(b, classes)?;
            let Some(ecls) = ecls else { continue };
            elements.push(
                read_element(b, &ecls).context(|| format!("streamer of {name}, element {ecls}"))?,
            );
        }
        b.finish(&ah, "TObjArray")?;
    }
    b.finish(&h, "TStreamerInfo")?;
    Ok(StreamerInfo {
        name,
        title,
        checksum,
        class_version,
        elements,
        tobject,
        version: h.version,
        named_version,
        array_version,
    })
}

fn read_element(b: &mut RBuf, element_class: &str) -> Result<Element> {
    if element_class == "TStreamerSTLstring" {
        let h = b.header(element_class)?;
        let mut e = read_element(b, "TStreamerSTL")?;
        e.element_class = element_class.to_string();
        b.finish(&h, element_class)?;
        return Ok(e);
    }
    let outer = b.header(element_class)?;
    let inner = if element_class == "TStreamerElement" {
        outer
    } else {
        b.header("TStreamerElement")?
    };
    let (_, tobject, name, title) = read_tnamed(b)?;
    let mut etype = b.i32()?;
    let size = b.i32()?;
    let array_length = b.i32()?;
    let array_dim = b.i32()?;
    let max_index = if inner.version == 1 {
        let n = b.i32()?;
        (0..n.max(0)).map(|_| b.i32()).collect::<Result<Vec<_>>>()?
    } else {
        (0..5).map(|_| b.i32()).collect::<Result<Vec<_>>>()?
    };
    let type_name = b.tstring_lossy()?;
    if etype == kind::UCHAR && (type_name == "Bool_t" || type_name == "bool") {
        etype = kind::BOOL;
    }
    if element_class != "TStreamerElement" {
        b.finish(&inner, "TStreamerElement")?;
    }
    let mut e = Element {
        element_class: element_class.to_string(),
        version: inner.version,
        name,
        title,
        etype,
        size,
        array_length,
        array_dim,
        max_index,
        type_name,
        base_version: None,
        count: None,
        stl: None,
        tobject,
    };
    match element_class {
        "TStreamerBase" if outer.version >= 2 => {
            e.base_version = Some(b.i32()?);
        }
        "TStreamerBasicPointer" | "TStreamerLoop" => {
            let v = b.i32()?;
            let n = b.tstring_lossy()?;
            let c = b.tstring_lossy()?;
            e.count = Some((v, n, c));
        }
        "TStreamerSTL" => {
            let (st, ct) = (b.i32()?, b.i32()?);
            e.stl = Some((st, ct));
        }
        _ => {}
    }
    b.finish(&outer, element_class)?;
    Ok(e)
}
