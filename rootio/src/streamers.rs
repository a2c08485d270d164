//! TStreamerInfo records: the per-class, per-version description of how objects are laid out.
//! hepml reads TTree/TBranch/TLeaf metadata by interpreting these, so every ROOT version's
//! layout (ROOT 5 to 6.40) is read from the file's own description, and written back the same way.

use super::error::{Context, Result, RootError};
use super::rbuf::{RBuf, WBuf, CLASS_MASK, MAP_OFFSET, NEW_CLASS_TAG};
use std::collections::HashMap;
use std::sync::Arc;

/// `TStreamerElement::fType` values (ROOT `TVirtualStreamerInfo::EReadWrite`).
pub(crate) mod kind {
    pub(crate) const BASE: i32 = 0;
    pub(crate) const CHAR: i32 = 1;
    pub(crate) const SHORT: i32 = 2;
    pub(crate) const INT: i32 = 3;
    pub(crate) const LONG: i32 = 4;
    pub(crate) const FLOAT: i32 = 5;
    pub(crate) const COUNTER: i32 = 6;
    pub(crate) const CHARSTAR: i32 = 7;
    pub(crate) const DOUBLE: i32 = 8;
    pub(crate) const DOUBLE32: i32 = 9;
    pub(crate) const LEGACY_CHAR: i32 = 10;
    pub(crate) const UCHAR: i32 = 11;
    pub(crate) const USHORT: i32 = 12;
    pub(crate) const UINT: i32 = 13;
    pub(crate) const ULONG: i32 = 14;
    pub(crate) const BITS: i32 = 15;
    pub(crate) const LONG64: i32 = 16;
    pub(crate) const ULONG64: i32 = 17;
    pub(crate) const BOOL: i32 = 18;
    pub(crate) const FLOAT16: i32 = 19;
    pub(crate) const OFFSET_L: i32 = 20;
    pub(crate) const OFFSET_P: i32 = 40;
    pub(crate) const OBJECT: i32 = 61;
    pub(crate) const ANY: i32 = 62;
    pub(crate) const OBJECTP: i32 = 63;
    pub(crate) const OBJECT_PP: i32 = 64;
    pub(crate) const TSTRING: i32 = 65;
    pub(crate) const TOBJECT: i32 = 66;
    pub(crate) const TNAMED: i32 = 67;
    pub(crate) const ANYP: i32 = 68;
    pub(crate) const ANY_PP: i32 = 69;
    pub(crate) const STL: i32 = 300;
    pub(crate) const STLSTRING: i32 = 365;
    pub(crate) const STREAMER: i32 = 500;
    pub(crate) const STREAM_LOOP: i32 = 501;
}

/// One member (or base class) of a class layout.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Element {
    /// The streamer-element class (`TStreamerBase`, `TStreamerBasicType`, ...).
    pub(crate) element_class: String,
    /// Shared by every object read with this layout (their members are named by it).
    pub(crate) name: Arc<str>,
    pub(crate) title: String,
    pub(crate) etype: i32,
    pub(crate) size: i32,
    pub(crate) array_length: i32,
    pub(crate) array_dim: i32,
    pub(crate) max_index: Vec<i32>,
    pub(crate) type_name: String,
    /// TStreamerBase: the base class version.
    pub(crate) base_version: Option<i32>,
    /// TStreamerBasicPointer / TStreamerLoop: the counter member.
    pub(crate) count: Option<(i32, String, String)>,
    /// TStreamerSTL: container and content type.
    pub(crate) stl: Option<(i32, i32)>,
    /// TObject part of the element as read (kept for faithful re-serialisation).
    pub(crate) tobject: (i16, u32, u32),
    /// Header versions from the outermost class down to TStreamerElement, and TNamed's.
    pub(crate) versions: Vec<i16>,
    pub(crate) named_version: i16,
}

/// A class layout at one version.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StreamerInfo {
    pub(crate) name: String,
    pub(crate) title: String,
    pub(crate) checksum: u32,
    pub(crate) class_version: i32,
    pub(crate) elements: Vec<Element>,
    pub(crate) tobject: (i16, u32, u32),
    pub(crate) version: i16,
    pub(crate) named_version: i16,
    pub(crate) array_version: i16,
    pub(crate) array_tobject: (i16, u32, u32),
}

/// The streamer infos of a file, by class name and version.
#[derive(Debug, Clone)]
pub(crate) struct Streamers {
    pub(crate) infos: Vec<StreamerInfo>,
    by_name: HashMap<String, Vec<usize>>,
    /// Anything else the file's streamer list held (schema-evolution rule lists), kept raw
    /// with the number of infos that preceded it (so it is written back at the same offset).
    pub(crate) extra: Vec<(usize, Vec<u8>)>,
    /// The list's own TObject part and version.
    pub(crate) list_header: (i16, (i16, u32, u32)),
}

impl Default for Streamers {
    fn default() -> Self {
        Streamers {
            infos: Vec::new(),
            by_name: HashMap::new(),
            extra: Vec::new(),
            list_header: (5, (1, 0, 0)),
        }
    }
}

impl Streamers {
    pub(crate) fn add(&mut self, info: StreamerInfo) {
        if self.get(&info.name, info.class_version).is_some() {
            return;
        }
        self.by_name
            .entry(info.name.clone())
            .or_default()
            .push(self.infos.len());
        self.infos.push(info);
    }
    pub(crate) fn get(&self, class: &str, version: i32) -> Option<&StreamerInfo> {
        self.by_name
            .get(class)?
            .iter()
            .map(|&i| &self.infos[i])
            .find(|i| i.class_version == version)
    }
    /// The highest version known for a class.
    pub(crate) fn latest(&self, class: &str) -> Option<&StreamerInfo> {
        self.by_name
            .get(class)?
            .iter()
            .map(|&i| &self.infos[i])
            .max_by_key(|i| i.class_version)
    }

    /// Parses the payload of the file's `StreamerInfo` key (a TList).
    pub(crate) fn parse(payload: &[u8], keylen: usize) -> Result<Self> {
        let mut b = RBuf::new(payload, keylen);
        let h = b.header("TList")?;
        let tobject = read_tobject(&mut b)?;
        let _name = b.tstring()?;
        let n = b.i32()?;
        if n < 0 {
            return Err(RootError::malformed(format!(
                "streamer list with {n} entries"
            )));
        }
        let mut out = Streamers {
            list_header: (h.version, tobject),
            ..Streamers::default()
        };
        let mut classes: HashMap<u32, String> = HashMap::new();
        for i in 0..n {
            let start = b.pos();
            let class = read_any_header(&mut b, &mut classes)
                .context(|| format!("streamer list entry {i}"))?;
            match class.as_deref() {
                Some("TStreamerInfo") => {
                    let info = read_streamer_info(&mut b, &mut classes)
                        .context(|| format!("streamer list entry {i}"))?;
                    // Kept even if a (class, version) repeats, so the list writes back as read.
                    out.by_name
                        .entry(info.name.clone())
                        .or_default()
                        .push(out.infos.len());
                    out.infos.push(info);
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
                    out.extra
                        .push((out.infos.len(), b.data()[start..b.pos()].to_vec()));
                }
                None => {}
            }
            let _opt = b.tstring()?; // the TList option string of each entry
        }
        b.finish(&h, "TList")?;
        Ok(out)
    }
}

/// TObject's own streaming: version, fUniqueID, fBits (+ a process id when referenced).
pub(crate) fn read_tobject(b: &mut RBuf) -> Result<(i16, u32, u32)> {
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

pub(crate) fn write_tobject(w: &mut WBuf, t: (i16, u32, u32)) {
    w.i16(t.0.max(1));
    w.u32(t.1);
    w.u32(t.2 & !(1 << 4));
}

/// The tag part of `ReadObjectAny`, for lists whose members are all new objects:
/// returns the class name (None for a null pointer) and the object's start position.
fn read_any_header(b: &mut RBuf, classes: &mut HashMap<u32, String>) -> Result<Option<String>> {
    let bcnt = b.u32()?;
    if bcnt & super::rbuf::BYTE_COUNT_MASK == 0 || bcnt == NEW_CLASS_TAG {
        return Err(RootError::unsupported(
            "object written without byte count (ROOT < 3)",
        ));
    }
    let tag_at = b.disp();
    let tag = b.u32()?;
    if tag & CLASS_MASK == 0 {
        if tag == 0 {
            return Ok(None);
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
    Ok(Some(class))
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
    let cls = read_any_header(b, classes)?;
    let mut elements = Vec::new();
    let mut array_version = 3;
    let mut array_tobject = (1, 0, 0);
    if cls.is_some() {
        let ah = b.header("TObjArray")?;
        array_version = ah.version;
        array_tobject = read_tobject(b)?;
        b.tstring()?;
        let n = b.i32()?;
        let _low = b.i32()?;
        for _ in 0..n.max(0) {
            let ecls = read_any_header(b, classes)?;
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
        array_tobject,
    })
}

fn read_element(b: &mut RBuf, element_class: &str) -> Result<Element> {
    if element_class == "TStreamerSTLstring" {
        let h = b.header(element_class)?;
        let mut e = read_element(b, "TStreamerSTL")?;
        e.element_class = element_class.to_string();
        e.versions.insert(0, h.version);
        b.finish(&h, element_class)?;
        return Ok(e);
    }
    let outer = b.header(element_class)?;
    let inner = if element_class == "TStreamerElement" {
        outer
    } else {
        b.header("TStreamerElement")?
    };
    let (named_version, tobject, name, title) = read_tnamed(b)?;
    // (ROOT files say 11 for Bool_t; kept as read so it is written back the same.)
    let etype = b.i32()?;
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
    if element_class != "TStreamerElement" {
        b.finish(&inner, "TStreamerElement")?;
    }
    let mut e = Element {
        element_class: element_class.to_string(),
        name: name.into(),
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
        versions: if element_class == "TStreamerElement" {
            vec![inner.version]
        } else {
            vec![outer.version, inner.version]
        },
        named_version,
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

/// Writes a class tag (new class by name, or a reference to one already written).
fn write_class_tag(w: &mut WBuf, tags: &mut HashMap<String, u32>, class: &str) {
    match tags.get(class) {
        Some(&t) => w.u32(t | CLASS_MASK),
        None => {
            tags.insert(class.to_string(), w.disp() as u32 + MAP_OFFSET);
            w.u32(NEW_CLASS_TAG);
            w.bytes(class.as_bytes());
            w.u8(0);
        }
    }
}

/// Starts a pointer-to-new-object (byte count + class tag); returns the byte count position.
fn begin_ptr(w: &mut WBuf, tags: &mut HashMap<String, u32>, class: &str) -> usize {
    let at = w.pos();
    w.u32(0);
    write_class_tag(w, tags, class);
    at
}

fn end_ptr(w: &mut WBuf, at: usize) {
    let n = (w.pos() - at - 4) as u32;
    w.data[at..at + 4].copy_from_slice(&(n | super::rbuf::BYTE_COUNT_MASK).to_be_bytes());
}

fn write_named(w: &mut WBuf, version: i16, tobject: (i16, u32, u32), name: &str, title: &str) {
    let at = w.begin(version);
    write_tobject(w, tobject);
    w.tstring(name.as_bytes());
    w.tstring(title.as_bytes());
    w.end(at);
}

fn write_element(w: &mut WBuf, e: &Element) {
    let mut open = Vec::new();
    for &v in &e.versions {
        open.push(w.begin(v));
    }
    write_named(w, e.named_version, e.tobject, &e.name, &e.title);
    w.i32(e.etype);
    w.i32(e.size);
    w.i32(e.array_length);
    w.i32(e.array_dim);
    if e.versions.last() == Some(&1) {
        w.i32(e.max_index.len() as i32);
    }
    for &m in &e.max_index {
        w.i32(m);
    }
    w.tstring(e.type_name.as_bytes());
    // Close TStreamerElement, then write each subclass's own members as its header closes.
    if let Some(at) = open.pop() {
        w.end(at);
    }
    if let Some(b) = e.base_version {
        w.i32(b);
    }
    if let Some((v, n, c)) = &e.count {
        w.i32(*v);
        w.tstring(n.as_bytes());
        w.tstring(c.as_bytes());
    }
    if let Some((st, ct)) = e.stl {
        w.i32(st);
        w.i32(ct);
    }
    while let Some(at) = open.pop() {
        w.end(at);
    }
}

fn write_info(w: &mut WBuf, tags: &mut HashMap<String, u32>, info: &StreamerInfo) {
    let at = w.begin(info.version);
    write_named(w, info.named_version, info.tobject, &info.name, &info.title);
    w.u32(info.checksum);
    w.i32(info.class_version);
    let arr = begin_ptr(w, tags, "TObjArray");
    let body = w.begin(info.array_version);
    write_tobject(w, info.array_tobject);
    w.tstring(b"");
    w.i32(info.elements.len() as i32);
    w.i32(0);
    for e in &info.elements {
        let p = begin_ptr(w, tags, &e.element_class);
        write_element(w, e);
        end_ptr(w, p);
    }
    w.end(body);
    end_ptr(w, arr);
    w.end(at);
}

impl Streamers {
    /// Serialises the list as the payload of a `StreamerInfo` key whose key length is
    /// `keylen` (reference tags count from the key's start).
    pub(crate) fn to_payload(&self, keylen: usize) -> Vec<u8> {
        let mut w = WBuf::new(keylen);
        let mut tags = HashMap::new();
        let at = w.begin(self.list_header.0);
        write_tobject(&mut w, self.list_header.1);
        w.tstring(b"");
        w.i32((self.infos.len() + self.extra.len()) as i32);
        let mut extra = self.extra.iter().peekable();
        for (i, info) in self.infos.iter().enumerate() {
            while let Some((_, raw)) = extra.next_if(|(k, _)| *k == i) {
                w.bytes(raw);
                w.tstring(b"");
            }
            let p = begin_ptr(&mut w, &mut tags, "TStreamerInfo");
            write_info(&mut w, &mut tags, info);
            end_ptr(&mut w, p);
            w.tstring(b"");
        }
        for (_, raw) in extra {
            w.bytes(raw);
            w.tstring(b"");
        }
        w.end(at);
        w.data
    }
}
