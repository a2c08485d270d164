//! The template file: TTree/TBranch/TLeaf objects and streamer infos as ROOT 6.40 wrote them
//! (made by scripts/make_root_template.py), and the helpers that set their fields.

use crate::error::{Result, RootError};
use crate::object::{fresh_tag, Body, Object, Ptr, Value};
use crate::tree::{Prim, Tree};
use crate::RootFile;
use std::sync::OnceLock;

pub(super) const TEMPLATE_BYTES: &[u8] = include_bytes!("template-root-6.40.root");
/// ROOT's default basket size.
pub const BASKET_SIZE: usize = 32000;
/// ROOT's default `fAutoFlush`: the first cluster ends once 30 MB of compressed baskets were
/// written; later clusters have as many entries as the first.
pub const AUTO_FLUSH: i64 = -30_000_000;
/// ROOT's initial entry-offset table length (`TTree::fDefaultEntryOffsetLen`).
pub(super) const ENTRY_OFFSET_LEN: usize = 1000;
/// The TBasket fields after the key header: version, fBufferSize, fNevBufSize, fNevBuf,
/// fLast, flag.
pub(super) const BASKET_FIELDS: usize = 19;

pub(super) struct Template {
    pub(super) tree: Tree,
}

pub(super) fn template() -> Result<&'static Template> {
    static T: OnceLock<std::result::Result<Template, String>> = OnceLock::new();
    T.get_or_init(|| {
        let file = RootFile::from_static("template-root-6.40.root", TEMPLATE_BYTES)
            .map_err(|e| e.to_string())?;
        let tree = file.tree("template").map_err(|e| e.to_string())?;
        Ok(Template { tree })
    })
    .as_ref()
    .map_err(|e| RootError::malformed(format!("built-in ROOT template: {e}")))
}

/// The streamer infos of every class hepml writes (from ROOT 6.40).
pub(crate) fn template_streamers() -> Result<&'static crate::streamers::Streamers> {
    builtin_streamers().ok_or_else(|| RootError::malformed("built-in ROOT template's streamers"))
}

/// The template's streamer infos, read without reading any object (so that reading objects
/// can fall back on them): the layouts of ROOT's own classes (TTree, TBranch, TLeaf*, ...)
/// for files that do not carry them.
pub(crate) fn builtin_streamers() -> Option<&'static crate::streamers::Streamers> {
    static S: OnceLock<Option<std::sync::Arc<crate::streamers::Streamers>>> = OnceLock::new();
    S.get_or_init(|| {
        RootFile::from_static("template-root-6.40.root", TEMPLATE_BYTES)
            .ok()
            .map(|f| f.streamers)
    })
    .as_deref()
}

pub(super) fn leaf_code(p: Prim) -> Result<char> {
    Ok(match p {
        Prim::Bool => 'O',
        Prim::I8 => 'B',
        Prim::U8 => 'b',
        Prim::I16 => 'S',
        Prim::U16 => 's',
        Prim::I32 => 'I',
        Prim::U32 | Prim::Bits => 'i',
        Prim::I64 => 'L',
        Prim::U64 => 'l',
        Prim::F32 => 'F',
        Prim::F64 => 'D',
        Prim::Packed { double: false, .. } => 'f',
        Prim::Packed { double: true, .. } => 'd',
    })
}

pub(super) fn vector_cpp(p: Prim) -> Result<&'static str> {
    Ok(match p {
        Prim::Bool => "bool",
        Prim::I8 => "char",
        Prim::U8 => "unsigned_char",
        Prim::I16 => "short",
        Prim::U16 => "unsigned_short",
        Prim::I32 => "int",
        Prim::U32 | Prim::Bits => "unsigned_int",
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
pub(super) fn retag(o: &mut Object) {
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

pub(super) fn set(o: &mut Object, name: &str, v: Value) -> Result<()> {
    let err = RootError::malformed(format!("{} has no member {name}", o.class));
    let slot = o.get_mut(name).ok_or(err)?;
    *slot = v;
    Ok(())
}
pub(super) fn set_str(o: &mut Object, name: &str, s: &str) -> Result<()> {
    set(o, name, Value::Str(s.as_bytes().to_vec()))
}

/// The single leaf object of a branch object.
pub(super) fn leaf_mut(b: &mut Object) -> Result<(&mut Object, u32)> {
    let items = b
        .array_items_mut("fLeaves")
        .ok_or_else(|| RootError::malformed("branch without fLeaves"))?;
    match items.first_mut() {
        Some(Ptr::New { tag, obj }) => Ok((obj, *tag)),
        _ => Err(RootError::malformed("template branch without its leaf")),
    }
}
