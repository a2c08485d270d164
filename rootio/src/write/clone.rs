//! Decorated copies: [`clone_tree`] copies a tree's baskets byte for byte and returns the
//! writer of its new branches; [`copy_other_keys`] copies everything else of the input.

use super::branch::*;
use super::file::{DirId, FileWriter, BIG, TOP};
use super::template::*;
use super::writer::*;
use crate::baskets::disk_slots;
use crate::compress::{block_algorithm, compress, decompress, Compression};
use crate::error::{Context, Result, RootError};
use crate::file::{Directory, KeyHeader};
use crate::object::{Object, Ptr, Value, Writer};
use crate::rbuf::{RBuf, WBuf};
use crate::tree::branch_object_mut;
use crate::tree::Tree;
use crate::RootFile;

/// Starts a decorated copy of `tree`: every original basket is copied into `fw` byte for byte
/// (only its key's position fields change), and the returned writer takes the new branches,
/// which must receive exactly `tree.entries` entries. The tree goes to the same directory
/// as in the input (made in the output if needed); the output gets the input's streamer list
/// plus whatever the new branches need.
pub fn clone_tree(
    input: &RootFile,
    tree: &Tree,
    fw: &mut FileWriter,
    new: &[BranchSpec],
) -> Result<TreeWriter> {
    let dir = match input_dir_path(input, tree.key.seek_pdir)? {
        Some(path) => {
            let mut d = TOP;
            for k in &path {
                d = fw.mkdir(d, &k.name, &k.title)?;
            }
            d
        }
        None => TOP,
    };
    clone_tree_in(input, tree, fw, new, dir)
}

pub(super) fn clone_tree_in(
    input: &RootFile,
    tree: &Tree,
    fw: &mut FileWriter,
    new: &[BranchSpec],
    dir: DirId,
) -> Result<TreeWriter> {
    fw.merge_streamers(&input.streamers);
    let pdir = fw.dir_seek(dir)?;
    let mut obj = tree.object.clone();
    let (mut raw, mut scratch) = (Vec::new(), Vec::new());
    // Every on-disk basket the branches record, whether or not hepml decodes their values
    // (unsupported types, containers, odd bookkeeping): they are copied, not read.
    for br in tree.branches.iter().filter(|b| b.column.is_none()) {
        let slots = tree
            .branch_object(&br.path)
            .map(disk_slots)
            .transpose()
            .context(|| format!("branch '{}'", br.name))?
            .unwrap_or_default();
        let mut seeks: Vec<(usize, u64, i32)> = Vec::new();
        for (i, seek, nbytes) in slots {
            let (pos, n) = copy_basket(fw, input, seek, nbytes, pdir, &mut raw, &mut scratch)
                .context(|| format!("copying basket {i} of branch '{}'", br.name))?;
            seeks.push((i, pos, n));
        }
        let bo = branch_object_mut(&mut obj, &br.path)
            .ok_or_else(|| RootError::malformed(format!("branch '{}' not found", br.name)))?;
        for (i, pos, n) in seeks {
            set_array_elem(bo, "fBasketSeek", i, pos as i64)?;
            set_array_elem(bo, "fBasketBytes", i, i64::from(n))?;
        }
    }
    let mut base_leaf_tags = Vec::new();
    for br in tree.branches.iter().filter(|b| b.column.is_none()) {
        if let Some(bo) = tree.branch_object(&br.path) {
            if let Some(Ptr::New { tag, .. }) = bo.array_items("fLeaves").first() {
                base_leaf_tags.push((br.name.clone(), *tag));
            }
        }
    }
    let mut w = TreeWriter {
        name: tree.name.clone(),
        title: tree.title.clone(),
        branches: Vec::new(),
        base: Some(obj),
        base_leaf_tags,
        expected_entries: Some(tree.entries),
        clusters: Clusters::At(common_basket_starts(tree)),
        ranges: Vec::new(),
        zip_since_cluster: 0,
        dir,
    };
    for s in new {
        w.add_branch(fw, s)?;
    }
    Ok(w)
}

/// The directory keys leading from the top of `input` to the directory whose `fSeekDir` is
/// `seek` (empty for the top directory), or None if no directory is there.
pub(super) fn input_dir_path(input: &RootFile, seek: u64) -> Result<Option<Vec<KeyHeader>>> {
    fn search(
        input: &RootFile,
        d: &Directory,
        seek: u64,
        path: &mut Vec<KeyHeader>,
        depth: usize,
    ) -> Result<bool> {
        if depth > 64 {
            return Err(RootError::malformed(
                "directories nested over 64 deep (a cycle?)",
            ));
        }
        for k in &d.keys {
            if is_dir(k) {
                path.push(k.clone());
                if k.seek_key == seek {
                    return Ok(true);
                }
                let sub = input.subdirectory(k)?;
                if search(input, &sub, seek, path, depth + 1)? {
                    return Ok(true);
                }
                path.pop();
            }
        }
        Ok(false)
    }
    if seek == input.root.seek_dir || seek == input.begin || seek == 0 {
        return Ok(Some(Vec::new()));
    }
    let mut path = Vec::new();
    Ok(search(input, &input.root, seek, &mut path, 0)?.then_some(path))
}

pub(super) fn is_dir(k: &KeyHeader) -> bool {
    k.class == "TDirectory" || k.class == "TDirectoryFile"
}

/// Sets element `i` of a `T* fX; //[fN]` member, keeping its type (ROOT 3-5 trees hold
/// 32-bit seeks): a value that does not fit is an error.
pub(super) fn set_array_elem(o: &mut Object, member: &str, i: usize, x: i64) -> Result<()> {
    match o.get_mut(member) {
        Some(Value::BasicPtr(Some(items))) if i < items.len() => {
            items[i].set_int(x).context(|| format!("{member}[{i}]"))
        }
        _ => Err(RootError::malformed(format!("{member}[{i}] missing"))),
    }
}

/// The bytes of a basket's key read before its payload is copied: enough for the key header
/// and the TBasket fields of any basket ROOT writes (a longer key is read again whole).
const KEY_PREFIX: usize = 256;

/// Copies the on-disk basket of `nbytes` bytes at `seek` of `input` (key + compressed payload).
/// The payload is copied byte for byte, by the kernel where it can (see
/// [`FileWriter::copy_from`]); only fSeekKey/fSeekPdir change. A basket with a 32-bit key that
/// must land beyond 2 GB gets a 64-bit key, which is 8 bytes longer: fLast and, for
/// variable-size entries, the entry offsets (stored inside the payload, counted from the key's
/// start) shift by 8, so that payload is decompressed, shifted and recompressed — its values
/// stay bit-identical. `raw` and `scratch` are buffers, reused from basket to basket.
pub(super) fn copy_basket(
    fw: &mut FileWriter,
    input: &RootFile,
    seek: u64,
    nbytes: u32,
    pdir: u64,
    raw: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> Result<(u64, i32)> {
    let nbytes = nbytes as usize;
    // The whole basket, unless the kernel copies its payload.
    let whole = !fw.kernel_copies(nbytes);
    input.read_at(
        seek,
        if whole {
            nbytes
        } else {
            nbytes.min(KEY_PREFIX)
        },
        raw,
    )?;
    // fKeylen follows fNbytes, fVersion, fObjlen and fDatime.
    let keylen = match raw.get(14..16) {
        Some(&[a, b]) => i16::from_be_bytes([a, b]) as usize,
        _ => 0,
    };
    if keylen > raw.len() && keylen <= nbytes {
        input.read_at(seek, keylen, raw)?;
    }
    let mut kh = KeyHeader::read(&mut RBuf::new(raw, 0))?;
    if keylen > raw.len() || kh.nbytes as usize != nbytes || keylen < BASKET_FIELDS {
        return Err(RootError::malformed(format!(
            "basket key: {} bytes, key length {keylen}, read {nbytes}",
            kh.nbytes
        )));
    }
    // The TBasket fields follow the key header.
    let fields = keylen - BASKET_FIELDS..keylen;
    if kh.version > 1000 || fw.end() + nbytes as u64 + 8 < BIG {
        let pos = fw.alloc(nbytes as u64);
        kh.seek_key = pos;
        kh.seek_pdir = pdir;
        let mut w = WBuf::new(0);
        kh.write(&mut w);
        if w.data.len() + BASKET_FIELDS != keylen {
            return Err(RootError::malformed(format!(
                "basket key header of {} bytes in a key of {keylen}",
                w.data.len()
            )));
        }
        w.bytes(&raw[fields]);
        fw.write_at(pos, &w.data)?;
        if whole {
            fw.write_at(pos + keylen as u64, &raw[keylen..])?;
        } else {
            fw.copy_from(
                pos + keylen as u64,
                input,
                seek + keylen as u64,
                nbytes - keylen,
                scratch,
            )?;
        }
        return Ok((pos, nbytes as i32));
    }
    if !whole {
        input.read_at(seek, nbytes, raw)?;
    }
    let raw = &raw[..];
    // Upgrade to a 64-bit key.
    let mut tb = RBuf::new(&raw[fields], 0);
    let (ver, bufsize, nevbufsize, nevbuf, last, flag) = (
        tb.i16()?,
        tb.i32()?,
        tb.i32()?,
        tb.i32()?,
        tb.i32()?,
        tb.u8()?,
    );
    let new_keylen = keylen + 8;
    let border = usize::try_from(last)
        .ok()
        .and_then(|l| l.checked_sub(keylen))
        .filter(|&b| b <= kh.objlen as usize)
        .ok_or_else(|| {
            RootError::malformed(format!(
                "basket fLast {last} outside its {} bytes after a {keylen}-byte key",
                kh.objlen
            ))
        })?;
    let mut payload = decompress(&raw[keylen..], kh.objlen as usize)?;
    let recompress = payload.len() > border;
    let data = if recompress {
        // Entry offsets follow the data: a count, then offsets that include the key length.
        let mut p = border + 4;
        while p + 4 <= payload.len() {
            let o =
                i32::from_be_bytes([payload[p], payload[p + 1], payload[p + 2], payload[p + 3]]);
            let shifted = if o == 0 { 0 } else { o + 8 };
            payload[p..p + 4].copy_from_slice(&shifted.to_be_bytes());
            p += 4;
        }
        let setting = block_algorithm(&raw[keylen..])
            .map(|a| Compression {
                algorithm: a,
                level: 1,
            })
            .unwrap_or(Compression::NONE);
        compress(&payload, setting)?.unwrap_or_else(|| payload.clone())
    } else {
        raw[keylen..].to_vec()
    };
    let nbytes = new_keylen + data.len();
    let pos = fw.alloc(nbytes as u64);
    kh.version += 1000;
    kh.keylen = new_keylen as i16;
    kh.nbytes = i32::try_from(nbytes).map_err(|_| RootError::unsupported("basket over 2 GB"))?;
    kh.seek_key = pos;
    kh.seek_pdir = pdir;
    let mut w = WBuf::new(0);
    kh.write(&mut w);
    w.i16(ver);
    w.i32(bufsize);
    w.i32(nevbufsize);
    w.i32(nevbuf);
    w.i32(last + 8);
    w.u8(flag);
    if w.data.len() != new_keylen {
        return Err(RootError::malformed("basket key header length"));
    }
    w.bytes(&data);
    fw.write_at(pos, &w.data)?;
    Ok((pos, kh.nbytes))
}

/// Copies the other objects of `input` into `fw`: top-level and directory keys (histograms,
/// ...) byte for byte, other trees as decorated copies without new branches (their baskets
/// byte for byte), directories recreated with the same names and titles. The key at
/// `skip_tree` (a path such as `events` or `dir/events`: the tree that was decorated) is left
/// out, and only the highest cycle of each name is copied. Returns what could not be copied
/// (RNTuples, whose pages are not keys), as `path (reason)`.
pub fn copy_other_keys(
    input: &RootFile,
    skip_tree: &str,
    fw: &mut FileWriter,
) -> Result<Vec<String>> {
    let skip = skip_tree.trim_start_matches('/');
    let skip = skip.rsplit_once(';').map_or(skip, |(p, _)| p);
    // The copied objects' classes (a decorated copy has them already).
    fw.merge_streamers(&input.streamers);
    let mut skipped = Vec::new();
    copy_dir(input, &input.root, "", TOP, skip, fw, &mut skipped, 0)?;
    Ok(skipped)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn copy_dir(
    input: &RootFile,
    d: &Directory,
    prefix: &str,
    dir: DirId,
    skip: &str,
    fw: &mut FileWriter,
    skipped: &mut Vec<String>,
    depth: usize,
) -> Result<()> {
    if depth > 64 {
        return Err(RootError::malformed(
            "directories nested over 64 deep (a cycle?)",
        ));
    }
    let best = d.latest_keys();
    let mut raw = Vec::new();
    for k in best {
        let path = format!("{prefix}{}", k.name);
        if path == skip {
            continue;
        }
        match k.class.as_str() {
            "TDirectory" | "TDirectoryFile" => {
                let sub = input.subdirectory(k)?;
                let sd = fw.mkdir(dir, &k.name, &k.title)?;
                copy_dir(
                    input,
                    &sub,
                    &format!("{path}/"),
                    sd,
                    skip,
                    fw,
                    skipped,
                    depth + 1,
                )?;
            }
            "TTree" | "TNtuple" | "TNtupleD" => {
                let t = input.tree(&path)?;
                clone_tree_in(input, &t, fw, &[], dir)?
                    .finish(fw)
                    .context(|| format!("copying tree '{path}'"))?;
            }
            c if c.contains("RNTuple") => {
                skipped.push(format!("{path} ({c}: its pages are not keys)"));
            }
            _ if k.version <= 1000 && fw.needs_big_key(k.nbytes.max(0) as u64) => {
                // A 32-bit key cannot sit beyond 2 GB, and a 64-bit one is 8 bytes longer,
                // which moves the reference tags inside the object (they count from the key's
                // start): the object is read and streamed again for its new key.
                let obj = input
                    .read_object(k)
                    .context(|| format!("reading '{path}' ({})", k.class))?;
                fw.write_object_in(dir, &k.class, &k.name, &k.title, |keylen| {
                    let mut w = WBuf::new(keylen);
                    Writer::new().write_object(&mut w, &obj)?;
                    Ok(w.data)
                })
                .context(|| format!("copying '{path}' ({})", k.class))?;
            }
            _ => {
                input.read_at(k.seek_key, k.nbytes as usize, &mut raw)?;
                fw.copy_key_in(dir, &raw)
                    .context(|| format!("copying '{path}' ({})", k.class))?;
            }
        }
    }
    Ok(())
}
