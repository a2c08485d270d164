//! A generic model of streamed ROOT objects. Classes with a TStreamerInfo in the file are read
//! member by member as the file describes them (so every ROOT version's TTree/TBranch/TLeaf
//! layout is read the same way) and written back the same way; the few classes with custom
//! streamers (TObject, TObjArray, TList, TArray*, TBasket) are handled here by hand.

use super::error::{Context, Result, RootError};
use super::rbuf::{RBuf, WBuf, BYTE_COUNT_MASK, CLASS_MASK, MAP_OFFSET, NEW_CLASS_TAG};
use super::streamers::{kind, read_tobject, write_tobject, Element, Streamers};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Bool(bool),
    I8(i8),
    U8(u8),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    F32(f32),
    F64(f64),
    /// A Float16_t member without range: exponent byte + 16-bit mantissa, kept as stored.
    F16([u8; 3]),
    /// A fixed-length array member.
    Array(Vec<Value>),
    /// A `T* fX; //[fN]` member: absent (flag 0) or the counted elements.
    BasicPtr(Option<Vec<Value>>),
    Str(Vec<u8>),
    CharStar(Vec<u8>),
    Object(Box<Object>),
    Ptr(Ptr),
    /// Bytes of a member we do not model (STL containers, custom streamers), copied verbatim,
    /// byte count included.
    Raw(Vec<u8>),
}

/// A pointer member or collection slot, as `ReadObjectAny` sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ptr {
    Null,
    /// A reference to an object streamed earlier in the same buffer, by its tag.
    Ref(u32),
    /// An object streamed here; `tag` identifies it for references.
    New {
        tag: u32,
        obj: Box<Object>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Object {
    pub(crate) class: String,
    pub(crate) version: i16,
    pub(crate) body: Body,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Body {
    /// Streamer-described members, base classes included (as objects named after the base).
    Members(Vec<(Arc<str>, Value)>),
    TObject {
        unique_id: u32,
        bits: u32,
    },
    ObjArray {
        tobject: (i16, u32, u32),
        name: Vec<u8>,
        lower: i32,
        items: Vec<Ptr>,
    },
    List {
        tobject: (i16, u32, u32),
        name: Vec<u8>,
        items: Vec<(Ptr, Vec<u8>)>,
    },
    /// TArrayD/F/I/S/C/L/L64 (no version header).
    TArray(Vec<Value>),
    /// An object we keep as bytes: a TBasket embedded in its branch, or a class without a
    /// streamer info that was written with a byte count (header included).
    Raw(Vec<u8>),
}

static NEXT_TAG: AtomicU32 = AtomicU32::new(0x3000_0000);

/// A tag for an object created in memory, distinct from any tag read from a file.
pub(crate) fn fresh_tag() -> u32 {
    NEXT_TAG.fetch_add(1, Ordering::Relaxed)
}

impl Value {
    pub(crate) fn as_i64(&self) -> Option<i64> {
        Some(match *self {
            Value::Bool(b) => b as i64,
            Value::I8(v) => v as i64,
            Value::U8(v) => v as i64,
            Value::I16(v) => v as i64,
            Value::U16(v) => v as i64,
            Value::I32(v) => v as i64,
            Value::U32(v) => v as i64,
            Value::I64(v) => v,
            Value::U64(v) => i64::try_from(v).ok()?,
            // ROOT 3-5 wrote counts (fEntries, fTotBytes) as Stat_t, a double.
            Value::F64(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => v as i64,
            Value::F32(v) if v.fract() == 0.0 && v.abs() < 1.6e7 => v as i64,
            _ => return None,
        })
    }
    /// Stores an integer into a numeric value, keeping its type.
    pub(crate) fn set_int(&mut self, x: i64) -> Result<()> {
        let bad = || RootError::malformed(format!("value {x} does not fit the member's type"));
        *self = match self {
            Value::Bool(_) => Value::Bool(x != 0),
            Value::I8(_) => Value::I8(i8::try_from(x).map_err(|_| bad())?),
            Value::U8(_) => Value::U8(u8::try_from(x).map_err(|_| bad())?),
            Value::I16(_) => Value::I16(i16::try_from(x).map_err(|_| bad())?),
            Value::U16(_) => Value::U16(u16::try_from(x).map_err(|_| bad())?),
            Value::I32(_) => Value::I32(i32::try_from(x).map_err(|_| bad())?),
            Value::U32(_) => Value::U32(u32::try_from(x).map_err(|_| bad())?),
            Value::I64(_) => Value::I64(x),
            Value::U64(_) => Value::U64(u64::try_from(x).map_err(|_| bad())?),
            Value::F32(_) => Value::F32(x as f32),
            Value::F64(_) => Value::F64(x as f64),
            _ => {
                return Err(RootError::malformed(
                    "integer stored into a non-numeric member",
                ))
            }
        };
        Ok(())
    }
    pub(crate) fn as_str(&self) -> Option<String> {
        match self {
            Value::Str(s) | Value::CharStar(s) => Some(String::from_utf8_lossy(s).into_owned()),
            _ => None,
        }
    }
}

impl Object {
    pub(crate) fn members(&self) -> &[(Arc<str>, Value)] {
        match &self.body {
            Body::Members(m) => m,
            _ => &[],
        }
    }
    /// A member by name, searched in this class and then its bases.
    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        let Body::Members(m) = &self.body else {
            return None;
        };
        if let Some((_, v)) = m.iter().find(|(n, _)| &**n == name) {
            return Some(v);
        }
        m.iter().find_map(|(_, v)| match v {
            Value::Object(o) if matches!(o.body, Body::Members(_)) => o.get(name),
            _ => None,
        })
    }
    pub(crate) fn get_mut(&mut self, name: &str) -> Option<&mut Value> {
        let Body::Members(m) = &mut self.body else {
            return None;
        };
        if let Some(i) = m.iter().position(|(n, _)| &**n == name) {
            return Some(&mut m[i].1);
        }
        m.iter_mut().find_map(|(_, v)| match v {
            Value::Object(o) if matches!(o.body, Body::Members(_)) => o.get_mut(name),
            _ => None,
        })
    }
    pub(crate) fn int(&self, name: &str) -> Result<i64> {
        self.get(name)
            .and_then(Value::as_i64)
            .ok_or_else(|| self.missing(name))
    }
    pub(crate) fn string(&self, name: &str) -> Result<String> {
        self.get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| self.missing(name))
    }
    pub(crate) fn set_int(&mut self, name: &str, x: i64) -> Result<()> {
        let e = self.missing(name);
        self.get_mut(name).ok_or(e)?.set_int(x)
    }
    fn missing(&self, name: &str) -> RootError {
        RootError::malformed(format!(
            "{} v{} has no member {name}",
            self.class, self.version
        ))
    }
    /// The items of a TObjArray/TList member (or of this object if it is one).
    pub(crate) fn items(&self) -> Vec<&Ptr> {
        match &self.body {
            Body::ObjArray { items, .. } => items.iter().collect(),
            Body::List { items, .. } => items.iter().map(|(p, _)| p).collect(),
            _ => Vec::new(),
        }
    }
    pub(crate) fn array_items(&self, member: &str) -> Vec<&Ptr> {
        match self.get(member) {
            Some(Value::Object(o)) => o.items(),
            _ => Vec::new(),
        }
    }
    pub(crate) fn array_items_mut(&mut self, member: &str) -> Option<&mut Vec<Ptr>> {
        match self.get_mut(member) {
            Some(Value::Object(o)) => match &mut o.body {
                Body::ObjArray { items, .. } => Some(items),
                _ => None,
            },
            _ => None,
        }
    }
    /// Whether this object's class is, or derives from, `class` (by base-class members).
    pub(crate) fn inherits(&self, class: &str) -> bool {
        if self.class == class {
            return true;
        }
        self.members().iter().any(|(_, v)| match v {
            Value::Object(o) => o.inherits(class),
            _ => false,
        })
    }
}

/// State of one buffer being read: the streamers and the class tags seen so far.
pub(crate) struct Reader<'s> {
    pub(crate) streamers: &'s Streamers,
    classes: HashMap<u32, String>,
}

impl<'s> Reader<'s> {
    pub(crate) fn new(streamers: &'s Streamers) -> Self {
        Reader {
            streamers,
            classes: HashMap::new(),
        }
    }

    /// `ReadObjectAny`: a pointer with its class tag.
    pub(crate) fn read_ptr(&mut self, b: &mut RBuf) -> Result<Ptr> {
        let beg = b.pos();
        let beg_disp = b.disp() as u32;
        let bcnt = b.u32()?;
        let (tag, end, tag_disp) = if bcnt & BYTE_COUNT_MASK == 0 || bcnt == NEW_CLASS_TAG {
            (bcnt, None, beg_disp)
        } else {
            let tag_disp = b.disp() as u32;
            let end = beg + 4 + (bcnt & !BYTE_COUNT_MASK) as usize;
            if end > b.len() {
                return Err(RootError::malformed(format!(
                    "object byte count {} at offset {beg} runs past the buffer",
                    bcnt & !BYTE_COUNT_MASK
                )));
            }
            (b.u32()?, Some(end), tag_disp)
        };
        if tag & CLASS_MASK == 0 {
            if tag == 0 {
                return Ok(Ptr::Null);
            }
            if let Some(end) = end {
                b.set_pos(end)?;
            }
            return Ok(Ptr::Ref(tag));
        }
        if end.is_none() {
            return Err(RootError::unsupported(
                "object written without byte count (ROOT < 3)",
            ));
        }
        let class = if tag == NEW_CLASS_TAG {
            let name = String::from_utf8_lossy(b.cstring()?).into_owned();
            self.classes.insert(tag_disp + MAP_OFFSET, name.clone());
            name
        } else {
            self.classes
                .get(&(tag & !CLASS_MASK))
                .cloned()
                .ok_or_else(|| RootError::malformed(format!("unknown class tag {tag:#x}")))?
        };
        let obj = self
            .read_object(b, &class, end)
            .context(|| format!("reading a {class}"))?;
        if let Some(end) = end {
            if b.pos() != end {
                return Err(RootError::malformed(format!(
                    "{class}: read {} bytes where the byte count says {}",
                    b.pos() as i64 - beg as i64 - 4,
                    end - beg - 4
                )));
            }
        }
        Ok(Ptr::New {
            tag: beg_disp + MAP_OFFSET,
            obj: Box::new(obj),
        })
    }

    /// An object of a known class at the current position (its own header included).
    pub(crate) fn read_object(
        &mut self,
        b: &mut RBuf,
        class: &str,
        end: Option<usize>,
    ) -> Result<Object> {
        match class {
            "TObject" => {
                let (version, unique_id, bits) = read_tobject(b)?;
                return Ok(Object {
                    class: class.into(),
                    version,
                    body: Body::TObject { unique_id, bits },
                });
            }
            "TBasket" => {
                let end = end.ok_or_else(|| RootError::malformed("TBasket outside a pointer"))?;
                let start = b.pos();
                b.set_pos(end)?;
                return Ok(Object {
                    class: class.into(),
                    version: 0,
                    body: Body::Raw(b.data()[start..end].to_vec()),
                });
            }
            "TArrayD" | "TArrayF" | "TArrayI" | "TArrayS" | "TArrayC" | "TArrayL" | "TArrayL64" => {
                let n = b.i32()?;
                let n = usize::try_from(n)
                    .map_err(|_| RootError::malformed(format!("{class} size {n}")))?;
                let et = tarray_kind(class);
                let items = (0..n)
                    .map(|_| read_basic(b, et))
                    .collect::<Result<Vec<_>>>()?;
                return Ok(Object {
                    class: class.into(),
                    version: 0,
                    body: Body::TArray(items),
                });
            }
            _ => {}
        }
        let h = b.header(class)?;
        let body = match class {
            "TObjArray" => {
                let tobject = read_tobject(b)?;
                let name = b.tstring()?.to_vec();
                let n = b.i32()?;
                let lower = b.i32()?;
                let mut items = Vec::with_capacity(n.clamp(0, 4096) as usize);
                for i in 0..n.max(0) {
                    items.push(self.read_ptr(b).context(|| format!("TObjArray slot {i}"))?);
                }
                Body::ObjArray {
                    tobject,
                    name,
                    lower,
                    items,
                }
            }
            "TList" | "THashList" => {
                let tobject = read_tobject(b)?;
                let name = b.tstring()?.to_vec();
                let n = b.i32()?;
                let mut items = Vec::new();
                for i in 0..n.max(0) {
                    let p = self.read_ptr(b).context(|| format!("TList entry {i}"))?;
                    let opt = if h.version > 4 {
                        b.tstring()?.to_vec()
                    } else {
                        Vec::new()
                    };
                    items.push((p, opt));
                }
                Body::List {
                    tobject,
                    name,
                    items,
                }
            }
            _ => match self.streamers.get(class, h.version as i32).or_else(|| {
                // A file without the layout of one of ROOT's own classes (some writers
                // leave TLeaf* out): ROOT 6.40's, at the same class version.
                crate::write::template::builtin_streamers()?.get(class, h.version as i32)
            }) {
                Some(info) => {
                    let mut members: Vec<(Arc<str>, Value)> =
                        Vec::with_capacity(info.elements.len());
                    for el in &info.elements {
                        let v = self
                            .read_element(b, el, &members)
                            .context(|| format!("{class} v{} member {}", h.version, el.name))?;
                        members.push((el.name.clone(), v));
                    }
                    Body::Members(members)
                }
                None => {
                    let end = h.end.ok_or_else(|| {
                        RootError::unsupported(format!(
                            "{class} v{}: no streamer info and no byte count",
                            h.version
                        ))
                    })?;
                    let raw = b.data()[h.start..end].to_vec();
                    b.set_pos(end)?;
                    return Ok(Object {
                        class: class.into(),
                        version: h.version,
                        body: Body::Raw(raw),
                    });
                }
            },
        };
        b.finish(&h, class)?;
        Ok(Object {
            class: class.into(),
            version: h.version,
            body,
        })
    }

    fn read_element(
        &mut self,
        b: &mut RBuf,
        el: &Element,
        members: &[(Arc<str>, Value)],
    ) -> Result<Value> {
        let t = el.etype;
        Ok(match t {
            kind::BASE => {
                let class = if &*el.name == "TObject" {
                    "TObject"
                } else {
                    &*el.name
                };
                Value::Object(Box::new(self.read_object(b, class, None)?))
            }
            kind::TOBJECT => Value::Object(Box::new(self.read_object(b, "TObject", None)?)),
            kind::TNAMED => Value::Object(Box::new(self.read_object(b, "TNamed", None)?)),
            kind::TSTRING => Value::Str(b.tstring()?.to_vec()),
            kind::CHARSTAR => {
                let n = b.i32()?;
                let n = usize::try_from(n)
                    .map_err(|_| RootError::malformed(format!("char* length {n}")))?;
                Value::CharStar(b.bytes(n)?.to_vec())
            }
            1..=19 => {
                check_range(el)?;
                read_basic(b, t)?
            }
            21..=39 => {
                check_range(el)?;
                let n = el.array_length.max(0) as usize;
                Value::Array(
                    (0..n)
                        .map(|_| read_basic(b, t - kind::OFFSET_L))
                        .collect::<Result<_>>()?,
                )
            }
            41..=59 => {
                check_range(el)?;
                let flag = b.u8()?;
                if flag == 0 {
                    Value::BasicPtr(None)
                } else {
                    let count_name = el.count.as_ref().map(|c| c.1.as_str()).unwrap_or("");
                    let n = members
                        .iter()
                        .find(|(n, _)| &**n == count_name)
                        .and_then(|(_, v)| v.as_i64())
                        .ok_or_else(|| {
                            RootError::malformed(format!(
                                "counter {count_name} not read before {}",
                                el.name
                            ))
                        })?;
                    let n = usize::try_from(n)
                        .map_err(|_| RootError::malformed(format!("counter {count_name} = {n}")))?;
                    Value::BasicPtr(Some(
                        (0..n)
                            .map(|_| read_basic(b, t - kind::OFFSET_P))
                            .collect::<Result<_>>()?,
                    ))
                }
            }
            // `T* fX; //->` pointers (kObjectp, kAnyp) are never null: ROOT streams the object
            // in place, like a member object, not through a pointer tag.
            kind::OBJECT | kind::ANY | kind::OBJECTP | kind::ANYP => {
                let class = el.type_name.trim_end_matches('*');
                Value::Object(Box::new(self.read_object(b, class, None)?))
            }
            kind::OBJECT_PP | kind::ANY_PP => Value::Ptr(self.read_ptr(b)?),
            kind::STL | kind::STLSTRING | kind::STREAMER | kind::STREAM_LOOP => {
                let h = b.header(&el.type_name)?;
                let end = h.end.ok_or_else(|| {
                    RootError::unsupported(format!(
                        "member {} ({}) without byte count",
                        el.name, el.type_name
                    ))
                })?;
                b.set_pos(end)?;
                Value::Raw(b.data()[h.start..end].to_vec())
            }
            _ => {
                return Err(RootError::unsupported(format!(
                    "member {} of streamer type {t} ({})",
                    el.name, el.type_name
                )))
            }
        })
    }
}

fn check_range(el: &Element) -> Result<()> {
    let base = el.etype % 20;
    if (base == kind::DOUBLE32 || base == kind::FLOAT16) && el.title.trim_start().starts_with('[') {
        return Err(RootError::unsupported(format!(
            "Double32_t/Float16_t member {} with a range in a metadata class",
            el.name
        )));
    }
    Ok(())
}

fn tarray_kind(class: &str) -> i32 {
    match class {
        "TArrayD" => kind::DOUBLE,
        "TArrayF" => kind::FLOAT,
        "TArrayI" => kind::INT,
        "TArrayS" => kind::SHORT,
        "TArrayC" => kind::CHAR,
        _ => kind::LONG64,
    }
}

fn read_basic(b: &mut RBuf, t: i32) -> Result<Value> {
    Ok(match t {
        kind::CHAR => Value::I8(b.i8()?),
        kind::SHORT => Value::I16(b.i16()?),
        kind::INT | kind::COUNTER => Value::I32(b.i32()?),
        kind::LONG | kind::LONG64 => Value::I64(b.i64()?),
        kind::FLOAT | kind::DOUBLE32 => Value::F32(b.f32()?),
        kind::DOUBLE => Value::F64(b.f64()?),
        kind::LEGACY_CHAR | kind::UCHAR => Value::U8(b.u8()?),
        kind::USHORT => Value::U16(b.u16()?),
        kind::UINT | kind::BITS => Value::U32(b.u32()?),
        kind::ULONG | kind::ULONG64 => Value::U64(b.u64()?),
        kind::BOOL => Value::Bool(b.u8()? != 0),
        kind::FLOAT16 => {
            let x = b.bytes(3)?;
            Value::F16([x[0], x[1], x[2]])
        }
        _ => return Err(RootError::unsupported(format!("basic streamer type {t}"))),
    })
}

fn write_basic(w: &mut WBuf, v: &Value) -> Result<()> {
    match *v {
        Value::Bool(x) => w.u8(x as u8),
        Value::I8(x) => w.i8(x),
        Value::U8(x) => w.u8(x),
        Value::I16(x) => w.i16(x),
        Value::U16(x) => w.u16(x),
        Value::I32(x) => w.i32(x),
        Value::U32(x) => w.u32(x),
        Value::I64(x) => w.i64(x),
        Value::U64(x) => w.u64(x),
        Value::F32(x) => w.f32(x),
        Value::F64(x) => w.f64(x),
        Value::F16(b) => w.bytes(&b),
        _ => return Err(RootError::malformed("non-basic value in a basic member")),
    }
    Ok(())
}

/// State of one buffer being written: class tags and the old-to-new object tag map.
#[derive(Default)]
pub(crate) struct Writer {
    classes: HashMap<String, u32>,
    remap: HashMap<u32, u32>,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn write_ptr(&mut self, w: &mut WBuf, p: &Ptr) -> Result<()> {
        match p {
            Ptr::Null => w.u32(0),
            Ptr::Ref(old) => {
                let new = self.remap.get(old).ok_or_else(|| {
                    RootError::malformed(format!(
                        "reference to an object not written before (tag {old:#x})"
                    ))
                })?;
                w.u32(*new);
            }
            Ptr::New { tag, obj } => {
                let beg = w.pos();
                let beg_disp = w.disp() as u32;
                w.u32(0);
                match self.classes.get(&obj.class) {
                    Some(&t) => w.u32(t | CLASS_MASK),
                    None => {
                        self.classes
                            .insert(obj.class.clone(), w.disp() as u32 + MAP_OFFSET);
                        w.u32(NEW_CLASS_TAG);
                        w.bytes(obj.class.as_bytes());
                        w.u8(0);
                    }
                }
                self.remap.insert(*tag, beg_disp + MAP_OFFSET);
                self.write_object(w, obj)?;
                let n = (w.pos() - beg - 4) as u32;
                w.data[beg..beg + 4].copy_from_slice(&(n | BYTE_COUNT_MASK).to_be_bytes());
            }
        }
        Ok(())
    }

    pub(crate) fn write_object(&mut self, w: &mut WBuf, o: &Object) -> Result<()> {
        match &o.body {
            Body::TObject { unique_id, bits } => write_tobject(w, (o.version, *unique_id, *bits)),
            Body::Raw(bytes) => w.bytes(bytes),
            Body::TArray(items) => {
                w.i32(items.len() as i32);
                for v in items {
                    write_basic(w, v)?;
                }
            }
            Body::ObjArray {
                tobject,
                name,
                lower,
                items,
            } => {
                let at = w.begin(o.version);
                write_tobject(w, *tobject);
                w.tstring(name);
                w.i32(items.len() as i32);
                w.i32(*lower);
                for p in items {
                    self.write_ptr(w, p)?;
                }
                w.end(at);
            }
            Body::List {
                tobject,
                name,
                items,
            } => {
                let at = w.begin(o.version);
                write_tobject(w, *tobject);
                w.tstring(name);
                w.i32(items.len() as i32);
                for (p, opt) in items {
                    self.write_ptr(w, p)?;
                    if o.version > 4 {
                        w.tstring(opt);
                    }
                }
                w.end(at);
            }
            Body::Members(members) => {
                let at = w.begin(o.version);
                for (name, v) in members {
                    self.write_value(w, v)
                        .context(|| format!("{} member {name}", o.class))?;
                }
                w.end(at);
            }
        }
        Ok(())
    }

    fn write_value(&mut self, w: &mut WBuf, v: &Value) -> Result<()> {
        match v {
            Value::Array(items) => {
                for x in items {
                    write_basic(w, x)?;
                }
            }
            Value::BasicPtr(None) => w.u8(0),
            Value::BasicPtr(Some(items)) => {
                w.u8(1);
                for x in items {
                    write_basic(w, x)?;
                }
            }
            Value::Str(s) => w.tstring(s),
            Value::CharStar(s) => {
                w.i32(s.len() as i32);
                w.bytes(s);
            }
            Value::Object(o) => self.write_object(w, o)?,
            Value::Ptr(p) => self.write_ptr(w, p)?,
            Value::Raw(bytes) => w.bytes(bytes),
            basic => write_basic(w, basic)?,
        }
        Ok(())
    }
}

/// Builds an object of `class` at the version `streamers` knows best, every member zero,
/// empty or null, bases built the same way. Used to create new branches and trees.
pub(crate) fn default_object(streamers: &Streamers, class: &str) -> Result<Object> {
    match class {
        "TObject" => {
            return Ok(Object {
                class: class.into(),
                version: 1,
                body: Body::TObject {
                    unique_id: 0,
                    bits: 0x0300_0000,
                },
            })
        }
        "TObjArray" => {
            return Ok(Object {
                class: class.into(),
                version: 3,
                body: Body::ObjArray {
                    tobject: (1, 0, 0x0300_0000),
                    name: Vec::new(),
                    lower: 0,
                    items: Vec::new(),
                },
            })
        }
        "TList" => {
            return Ok(Object {
                class: class.into(),
                version: 5,
                body: Body::List {
                    tobject: (1, 0, 0x0300_0000),
                    name: Vec::new(),
                    items: Vec::new(),
                },
            })
        }
        c if c.starts_with("TArray") => {
            return Ok(Object {
                class: class.into(),
                version: 0,
                body: Body::TArray(Vec::new()),
            })
        }
        _ => {}
    }
    let info = streamers
        .latest(class)
        .ok_or_else(|| RootError::unsupported(format!("no streamer info for {class}")))?;
    let mut members = Vec::with_capacity(info.elements.len());
    for el in &info.elements {
        let v = match el.etype {
            kind::BASE => Value::Object(Box::new(default_object(streamers, &el.name)?)),
            kind::TOBJECT => Value::Object(Box::new(default_object(streamers, "TObject")?)),
            kind::TNAMED => Value::Object(Box::new(default_object(streamers, "TNamed")?)),
            kind::TSTRING => Value::Str(Vec::new()),
            kind::CHARSTAR => Value::CharStar(Vec::new()),
            1..=19 => zero_basic(el.etype)?,
            21..=39 => Value::Array(
                (0..el.array_length.max(0))
                    .map(|_| zero_basic(el.etype - kind::OFFSET_L))
                    .collect::<Result<_>>()?,
            ),
            41..=59 => Value::BasicPtr(None),
            kind::OBJECT | kind::ANY | kind::OBJECTP | kind::ANYP => Value::Object(Box::new(
                default_object(streamers, el.type_name.trim_end_matches('*'))?,
            )),
            kind::OBJECT_PP | kind::ANY_PP => Value::Ptr(Ptr::Null),
            _ => {
                return Err(RootError::unsupported(format!(
                    "default value of {class} member {} (type {})",
                    el.name, el.etype
                )))
            }
        };
        members.push((el.name.clone(), v));
    }
    Ok(Object {
        class: class.into(),
        version: info.class_version as i16,
        body: Body::Members(members),
    })
}

fn zero_basic(t: i32) -> Result<Value> {
    Ok(match t {
        kind::CHAR => Value::I8(0),
        kind::SHORT => Value::I16(0),
        kind::INT | kind::COUNTER => Value::I32(0),
        kind::LONG | kind::LONG64 => Value::I64(0),
        kind::FLOAT | kind::DOUBLE32 => Value::F32(0.0),
        kind::DOUBLE => Value::F64(0.0),
        kind::LEGACY_CHAR | kind::UCHAR => Value::U8(0),
        kind::USHORT => Value::U16(0),
        kind::UINT | kind::BITS => Value::U32(0),
        kind::ULONG | kind::ULONG64 => Value::U64(0),
        kind::BOOL => Value::Bool(false),
        kind::FLOAT16 => Value::F16([0; 3]),
        _ => return Err(RootError::unsupported(format!("basic streamer type {t}"))),
    })
}
