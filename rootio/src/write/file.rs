//! Writing ROOT files: the header, the top directory, keys, the streamer-info list and the
//! free-segments record, laid out as ROOT 6.40 does. Output goes to a temporary name beside
//! the destination and is renamed only by [`FileWriter::finish`]; dropping an unfinished
//! writer removes the temporary file, so the destination is never half-written.

use super::kcopy::copy_range;
use crate::compress::{compress, Compression};
use crate::error::{Context, Result, RootError};
use crate::file::{KeyHeader, RootFile};
use crate::rbuf::WBuf;
use crate::recent::Recent;
use crate::streamers::{StreamerInfo, Streamers};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Where the TFile key starts (ROOT `kBEGIN`).
pub(crate) const BEGIN: u64 = 100;
/// Seeks at or past this need 64-bit keys and headers (ROOT `kStartBigFile`).
pub(crate) const BIG: u64 = 2_000_000_000;
/// ROOT version these files are written as (6.40/00).
pub(crate) const ROOT_VERSION: i32 = 64000;
/// Size of a directory record (both layouts; the small one is padded so that it can be
/// rewritten as the big one).
const DIR_RECORD: usize = 60;

/// A directory of the file being written: [`TOP`] or one made by [`FileWriter::mkdir`].
pub type DirId = usize;
/// The file's top directory.
pub const TOP: DirId = 0;

/// A directory being written: its key (in the parent) and the keys it holds.
struct DirOut {
    name: String,
    title: String,
    parent: DirId,
    /// Where its key starts (`fSeekDir`); [`BEGIN`] for the top directory.
    seek: u64,
    /// `fNbytesName`: the key length (for the top directory, also the file's name and title).
    nbytes_name: usize,
    keys: Vec<KeyHeader>,
    uuid: [u8; 16],
}

/// TDatime encoding of the current UTC time.
pub(crate) fn datime_now() -> u32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (yoe + era * 400 + if month <= 2 { 1 } else { 0 }) as u32;
    ((year.saturating_sub(1995)) << 26)
        | (month << 22)
        | (day << 17)
        | (((rem / 3600) as u32) << 12)
        | ((((rem % 3600) / 60) as u32) << 6)
        | (rem % 60) as u32
}

fn uuid() -> [u8; 16] {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let a = xxhash_rust::xxh64::xxh64(&t.to_le_bytes(), std::process::id() as u64);
    let b = xxhash_rust::xxh64::xxh64(&a.to_le_bytes(), t as u64);
    let mut u = [0u8; 16];
    u[..8].copy_from_slice(&a.to_be_bytes());
    u[8..].copy_from_slice(&b.to_be_bytes());
    u
}

/// A ROOT file being written, under a temporary name until [`FileWriter::finish`].
pub struct FileWriter {
    final_path: PathBuf,
    tmp_path: PathBuf,
    file: File,
    end: u64,
    name: String,
    title: String,
    compression: Compression,
    /// The top directory (index [`TOP`]) and every subdirectory, in creation order.
    dirs: Vec<DirOut>,
    /// Shared with the input it copies, until something is added (copied on write).
    pub(crate) streamers: Arc<Streamers>,
    uuid: [u8; 16],
    datime: u32,
    tfile_keylen: usize,
    /// Bytes written at the end of the file but not yet passed to the kernel (see
    /// [`FileWriter::write_at`]).
    pending: Pending,
    /// Whether ranges of an input may still be copied by the kernel (see
    /// [`FileWriter::copy_from`]); false after the first refusal.
    kernel_copy: bool,
    done: bool,
}

/// Adjacent writes gathered into one system call. The page cache takes large writes at a
/// fraction of the cost of small ones (large folios): 100 files of 1.55 MB written in 74 kB
/// pieces took 58 ms here, in 1 MB pieces 38 ms. A decorated copy of many small files writes
/// a basket (key, then payload) at a time.
#[derive(Default)]
struct Pending {
    at: u64,
    data: Vec<u8>,
}

/// What a key holds.
enum Payload<'a> {
    /// A payload to store compressed (as the file's compression setting says).
    Compress(&'a [u8]),
    /// A payload stored as it is.
    Raw(&'a [u8]),
    /// A payload of `objlen` bytes, already stored as `data`.
    Stored { objlen: usize, data: &'a [u8] },
}

/// How many adjacent bytes are gathered before they are written.
const PENDING: usize = 1 << 20;

impl std::fmt::Debug for FileWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileWriter({})", self.final_path.display())
    }
}

/// The temporary name hepml writes an output under before renaming it into place (ROOT files,
/// HDF5 tables, models): hidden, beside `path` (same file system), unique per process and call,
/// so two writers of one path never share a temporary.
pub fn tmp_name(path: &Path) -> PathBuf {
    static SERIAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    path.with_file_name(format!(
        "{}{}-{serial}",
        tmp_prefix(path),
        std::process::id()
    ))
}

/// Writes `bytes` to `path` under a [`tmp_name`] and renames it into place, so a reader never
/// sees a partial file; the temporary is removed on failure.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = tmp_name(path);
    let r = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// The start of the file name of every [`tmp_name`] of `path`, to find what a killed writer
/// left.
pub fn tmp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.hepml-tmp-")
}

/// Writes `bytes` at `pos` of `file`, the temporary file at `path`.
fn write_all_at(file: &File, path: &Path, pos: u64, bytes: &[u8]) -> Result<()> {
    file.write_all_at(bytes, pos).map_err(|err| RootError::Io {
        path: path.to_path_buf(),
        err,
    })
}

impl FileWriter {
    /// Starts a new file at `path` (written under [`tmp_name`] until finished).
    pub fn create(path: impl AsRef<Path>, compression: Compression) -> Result<Self> {
        let final_path = path.as_ref().to_path_buf();
        let fname = final_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| RootError::NotFound(format!("output path {}", final_path.display())))?;
        let tmp_path = tmp_name(&final_path);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp_path)
            .map_err(|err| RootError::Io {
                path: tmp_path.clone(),
                err,
            })
            .context(|| format!("creating {}", tmp_path.display()))?;
        let title = String::new();
        let tfile_keylen = KeyHeader::len_for(4, "TFile", &fname, &title);
        let name_len = tstr_len(&fname) + tstr_len(&title);
        let end = BEGIN + (tfile_keylen + name_len + DIR_RECORD) as u64;
        let uuid = uuid();
        let top = DirOut {
            name: fname.clone(),
            title: title.clone(),
            parent: TOP,
            seek: BEGIN,
            nbytes_name: tfile_keylen + name_len,
            keys: Vec::new(),
            uuid,
        };
        Ok(FileWriter {
            final_path,
            tmp_path,
            file,
            end,
            name: fname,
            title,
            compression,
            dirs: vec![top],
            streamers: Arc::default(),
            uuid,
            datime: datime_now(),
            tfile_keylen,
            pending: Pending::default(),
            kernel_copy: true,
            done: false,
        })
    }

    /// Leaves a hole so that everything written next lands at or after `offset` (a sparse
    /// region on disk): lets small tests exercise the 64-bit (> 2 GB) layout.
    pub fn skip_to(&mut self, offset: u64) {
        self.end = self.end.max(offset);
    }

    /// The compression of new baskets and keys.
    pub fn compression(&self) -> Compression {
        self.compression
    }
    pub(crate) fn datime(&self) -> u32 {
        self.datime
    }
    /// The destination path (the file is renamed there by [`FileWriter::finish`]).
    pub fn path(&self) -> &Path {
        &self.final_path
    }

    /// Reserves `n` bytes at the end of the file.
    pub(crate) fn alloc(&mut self, n: u64) -> u64 {
        let p = self.end;
        self.end += n;
        p
    }
    pub(crate) fn end(&self) -> u64 {
        self.end
    }

    /// Writes `bytes` at `pos`. Writes that continue the previous one are gathered (up to
    /// [`PENDING`] bytes) and reach the file together, before any write elsewhere and before
    /// [`FileWriter::finish`] completes it.
    pub(crate) fn write_at(&mut self, pos: u64, bytes: &[u8]) -> Result<()> {
        let p = &mut self.pending;
        if !p.data.is_empty()
            && pos == p.at + p.data.len() as u64
            && p.data.len() + bytes.len() <= PENDING
        {
            p.data.extend_from_slice(bytes);
            return Ok(());
        }
        self.flush()?;
        if bytes.len() >= PENDING / 2 {
            return self.write_now(pos, bytes);
        }
        let p = &mut self.pending;
        p.at = pos;
        p.data.extend_from_slice(bytes);
        Ok(())
    }

    /// Whether [`FileWriter::copy_from`] has a range of `n` bytes copied by the kernel: ranges
    /// that would be written on their own anyway (see [`FileWriter::write_at`]), while the
    /// kernel takes them. Smaller ones are gathered: the kernel's copy writes them a page at a
    /// time, which cost more than it saved for 74 kB baskets.
    pub(crate) fn kernel_copies(&self, n: usize) -> bool {
        self.kernel_copy && n >= PENDING / 2
    }

    /// Writes `n` bytes at `src_pos` of `src` at `pos`: by the kernel from file to file where
    /// it can (see [`FileWriter::kernel_copies`]), else through `scratch`. A 150 MB decorated
    /// copy of 740 kB baskets took 0.78 instead of 0.80 CPU-s (inject, medians of 10 runs),
    /// and file systems that share extents (XFS, Btrfs) or copy on the server (NFS) copy
    /// nothing here at all.
    pub(crate) fn copy_from(
        &mut self,
        pos: u64,
        src: &RootFile,
        src_pos: u64,
        n: usize,
        scratch: &mut Vec<u8>,
    ) -> Result<()> {
        if let Some(f) = src.disk().filter(|_| self.kernel_copies(n)) {
            // (A range the input lacks is refused by the read below.)
            if src.holds(src_pos, n) {
                self.flush()?;
                match copy_range(f, src_pos, &self.file, pos, n) {
                    Ok(true) => return Ok(()),
                    Ok(false) => self.kernel_copy = false,
                    Err(err) => {
                        return Err(RootError::Io {
                            path: self.tmp_path.clone(),
                            err,
                        })
                    }
                }
            }
        }
        src.read_at(src_pos, n, scratch)?;
        self.write_at(pos, scratch)
    }

    /// Writes what [`FileWriter::write_at`] gathered.
    fn flush(&mut self) -> Result<()> {
        if self.pending.data.is_empty() {
            return Ok(());
        }
        let r = write_all_at(
            &self.file,
            &self.tmp_path,
            self.pending.at,
            &self.pending.data,
        );
        self.pending.data.clear();
        r
    }

    fn write_now(&self, pos: u64, bytes: &[u8]) -> Result<()> {
        write_all_at(&self.file, &self.tmp_path, pos, bytes)
    }

    /// Whether a key of `nbytes` placed next would reach past 2 GB, where a 32-bit key
    /// (version < 1000) cannot be.
    pub(crate) fn needs_big_key(&self, nbytes: u64) -> bool {
        self.end + nbytes + 8 >= BIG
    }

    /// Key version for a key placed at the current end, given its payload size.
    fn key_version(&self, extra: u64) -> i16 {
        if self.end + extra + 1024 >= BIG {
            1004
        } else {
            4
        }
    }

    fn dir(&self, dir: DirId) -> Result<&DirOut> {
        self.dirs
            .get(dir)
            .ok_or_else(|| RootError::NotFound(format!("output directory #{dir}")))
    }

    /// `fSeekDir` of a directory: what the keys it holds record as `fSeekPdir`.
    pub(crate) fn dir_seek(&self, dir: DirId) -> Result<u64> {
        Ok(self.dir(dir)?.seek)
    }

    /// The subdirectory `name` of `parent`, made if it does not exist yet (then with `title`).
    /// Like ROOT, its key (class `TDirectory`) is written now; its record and keys list are
    /// written by [`FileWriter::finish`].
    pub fn mkdir(&mut self, parent: DirId, name: &str, title: &str) -> Result<DirId> {
        let pseek = self.dir(parent)?.seek;
        if let Some(i) = (1..self.dirs.len())
            .find(|&i| self.dirs[i].parent == parent && self.dirs[i].name == name)
        {
            return Ok(i);
        }
        if name.is_empty() || name.contains('/') {
            return Err(RootError::unsupported(format!(
                "directory name '{name}' (empty or with '/')"
            )));
        }
        if self.dirs[parent].keys.iter().any(|k| k.name == name) {
            return Err(RootError::malformed(format!(
                "'{name}' exists already and is not a directory"
            )));
        }
        let version = self.key_version(DIR_RECORD as u64);
        let keylen = KeyHeader::len_for(version, "TDirectory", name, title);
        let seek = self.alloc((keylen + DIR_RECORD) as u64);
        let kh = KeyHeader {
            nbytes: (keylen + DIR_RECORD) as i32,
            version,
            objlen: DIR_RECORD as i32,
            datime: self.datime,
            keylen: keylen as i16,
            cycle: 1,
            seek_key: seek,
            seek_pdir: pseek,
            class: "TDirectory".into(),
            name: name.into(),
            title: title.into(),
        };
        let mut w = WBuf::new(0);
        kh.write(&mut w);
        w.data.resize(keylen + DIR_RECORD, 0);
        self.write_at(seek, &w.data)?;
        self.dirs[parent].keys.push(kh);
        self.dirs.push(DirOut {
            name: name.into(),
            title: title.into(),
            parent,
            seek,
            nbytes_name: keylen,
            keys: Vec::new(),
            uuid: uuid(),
        });
        Ok(self.dirs.len() - 1)
    }

    /// The directory at `path` (`a/b`; empty: the top), made as needed with empty titles.
    pub fn mkdir_path(&mut self, path: &str) -> Result<DirId> {
        let mut d = TOP;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            d = self.mkdir(d, part, "")?;
        }
        Ok(d)
    }

    /// Writes an object as a key of directory `dir` (cycle: one more than any key of that name
    /// there).
    pub(crate) fn write_object_in(
        &mut self,
        dir: DirId,
        class: &str,
        name: &str,
        title: &str,
        serialize: impl FnOnce(usize) -> Result<Vec<u8>>,
    ) -> Result<KeyHeader> {
        let pdir = self.dir(dir)?.seek;
        let cycle = self.dirs[dir]
            .keys
            .iter()
            .filter(|k| k.name == name)
            .map(|k| k.cycle)
            .max()
            .unwrap_or(0)
            .checked_add(1)
            .ok_or_else(|| RootError::unsupported(format!("too many cycles of '{name}'")))?;
        let version = self.key_version(1 << 30);
        let keylen = KeyHeader::len_for(version, class, name, title);
        let payload = serialize(keylen)?;
        let kh = self.write_key(
            version,
            class,
            name,
            title,
            pdir,
            cycle,
            Payload::Compress(&payload),
        )?;
        self.dirs[dir].keys.push(kh.clone());
        Ok(kh)
    }

    /// Writes a key of `payload` at the end of the file.
    #[allow(clippy::too_many_arguments)]
    fn write_key(
        &mut self,
        version: i16,
        class: &str,
        name: &str,
        title: &str,
        pdir: u64,
        cycle: i16,
        payload: Payload,
    ) -> Result<KeyHeader> {
        let z;
        let (objlen, data) = match payload {
            Payload::Compress(p) => {
                z = compress(p, self.compression)?;
                (p.len(), z.as_deref().unwrap_or(p))
            }
            Payload::Raw(p) => (p.len(), p),
            Payload::Stored { objlen, data } => (objlen, data),
        };
        let keylen = KeyHeader::len_for(version, class, name, title);
        let nbytes = keylen + data.len();
        let seek = self.alloc(nbytes as u64);
        if version <= 1000 && seek + nbytes as u64 >= BIG {
            return Err(RootError::malformed(
                "internal: small key placed beyond 2 GB",
            ));
        }
        let kh = KeyHeader {
            nbytes: i32::try_from(nbytes)
                .map_err(|_| RootError::unsupported(format!("object '{name}' over 2 GB")))?,
            version,
            objlen: i32::try_from(objlen)
                .map_err(|_| RootError::unsupported(format!("object '{name}' over 2 GB")))?,
            datime: self.datime,
            keylen: keylen as i16,
            cycle,
            seek_key: seek,
            seek_pdir: pdir,
            class: class.into(),
            name: name.into(),
            title: title.into(),
        };
        let mut w = WBuf::new(0);
        kh.write(&mut w);
        debug_assert_eq!(w.data.len(), keylen);
        w.bytes(data);
        self.write_at(seek, &w.data)?;
        Ok(kh)
    }

    /// Copies a complete key into directory `dir`: the payload is copied byte for byte; only
    /// fSeekKey/fSeekPdir change. A key of a name already in `dir` gets the next cycle.
    pub(crate) fn copy_key_in(&mut self, dir: DirId, raw: &[u8]) -> Result<KeyHeader> {
        let pdir = self.dir(dir)?.seek;
        let mut b = crate::rbuf::RBuf::new(raw, 0);
        let mut kh = KeyHeader::read(&mut b)?;
        if kh.nbytes as usize != raw.len() || kh.keylen as usize > raw.len() {
            return Err(RootError::malformed(format!(
                "key '{}': {} bytes, given {}",
                kh.name,
                kh.nbytes,
                raw.len()
            )));
        }
        let seek = self.alloc(raw.len() as u64);
        if kh.version <= 1000 && seek + raw.len() as u64 >= BIG {
            return Err(RootError::unsupported(format!(
                "copying '{}' ({}) beyond 2 GB would change its key length",
                kh.name, kh.class
            )));
        }
        if let Some(c) = self.dirs[dir]
            .keys
            .iter()
            .filter(|k| k.name == kh.name)
            .map(|k| k.cycle)
            .max()
        {
            kh.cycle = c.saturating_add(1);
        }
        kh.seek_key = seek;
        kh.seek_pdir = pdir;
        let mut w = WBuf::new(0);
        kh.write(&mut w);
        w.bytes(&raw[kh.keylen as usize..]);
        self.write_at(seek, &w.data)?;
        self.dirs[dir].keys.push(kh.clone());
        Ok(kh)
    }

    /// Writes a `TNamed` (a name and a title, what ROOT's `TNamed` and `TObjString`-like
    /// records are used for: metadata such as provenance) as a key of directory `dir`. Its
    /// streamer info is added to the file's list. Read it back with ROOT's
    /// `TFile::Get(name)->GetTitle()` or with [`RootFile::named_title`](crate::RootFile::named_title).
    pub fn write_named(&mut self, dir: DirId, name: &str, title: &str) -> Result<()> {
        let streamers = super::template::template_streamers()?;
        let mut obj = crate::object::default_object(streamers, "TNamed")?;
        for (field, text) in [("fName", name), ("fTitle", title)] {
            *obj.get_mut(field).ok_or_else(|| {
                RootError::malformed(format!("TNamed streamer without {field}"))
            })? = crate::object::Value::Str(text.as_bytes().to_vec());
        }
        self.add_streamers(streamers, &[(obj.class.as_str(), i32::from(obj.version))]);
        self.write_object_in(dir, "TNamed", name, title, |keylen| {
            let mut w = WBuf::new(keylen);
            crate::object::Writer::new().write_object(&mut w, &obj)?;
            Ok(w.data)
        })?;
        Ok(())
    }

    /// Adds to this file's streamer list, from `source`, the infos of `classes` (name and
    /// version) and of every class they are built from (base classes and members, as ROOT's
    /// `TStreamerInfo::ForceWriteInfo` does), keeping `source`'s order. Classes already listed
    /// (same name and version) are not repeated.
    pub(crate) fn add_streamers(&mut self, source: &Streamers, classes: &[(&str, i32)]) {
        let mut want: Vec<(&str, i32)> = Vec::new();
        let mut todo: Vec<(&str, Option<i32>)> =
            classes.iter().map(|&(c, v)| (c, Some(v))).collect();
        while let Some((class, version)) = todo.pop() {
            let info = match version {
                Some(v) => source.get(class, v),
                None => source.latest(class),
            };
            let Some(info) = info else { continue };
            let key = (info.name.as_str(), info.class_version);
            if want.contains(&key) {
                continue;
            }
            want.push(key);
            for e in &info.elements {
                if e.etype == crate::streamers::kind::BASE {
                    todo.push((&*e.name, e.base_version));
                } else {
                    let t = e.type_name.trim_end_matches('*').trim();
                    todo.push((t.strip_prefix("const ").unwrap_or(t), None));
                }
            }
        }
        let missing: Vec<&StreamerInfo> = source
            .infos
            .iter()
            .filter(|info| {
                want.contains(&(info.name.as_str(), info.class_version))
                    && self.streamers.get(&info.name, info.class_version).is_none()
            })
            .collect();
        self.extend_streamers(&missing);
    }

    /// Adds the classes of `input`'s streamer list that the output's lacks (an empty list
    /// becomes `input`'s, shared).
    pub(crate) fn merge_streamers(&mut self, input: &Arc<Streamers>) {
        if self.streamers.infos.is_empty() && self.streamers.extra.is_empty() {
            // The input's list as it is (schema-rule lists included).
            self.streamers = input.clone();
            return;
        }
        let missing: Vec<&StreamerInfo> = input
            .infos
            .iter()
            .filter(|i| self.streamers.get(&i.name, i.class_version).is_none())
            .collect();
        self.extend_streamers(&missing);
    }

    /// Appends `infos` to the streamer list. The outputs of a run extend the same shared list
    /// by the same classes, so the lists made that way are kept and shared as well: the
    /// outputs then share one list, whose record is made once (see [`streamer_record`]).
    fn extend_streamers(&mut self, infos: &[&StreamerInfo]) {
        /// Lists made: the base list, the infos added to it, and the result.
        static MADE: Recent<(Arc<Streamers>, Vec<StreamerInfo>), Arc<Streamers>> = Recent::new(8);
        if infos.is_empty() {
            return;
        }
        if let Some(s) = MADE.find(|(base, added)| {
            Arc::ptr_eq(base, &self.streamers) && added.iter().eq(infos.iter().copied())
        }) {
            self.streamers = s;
            return;
        }
        let base = self.streamers.clone();
        let mut list = (*base).clone();
        for info in infos {
            list.add((*info).clone());
        }
        self.streamers = Arc::new(list);
        let added = infos.iter().map(|i| (*i).clone()).collect();
        MADE.put((base, added), self.streamers.clone());
    }

    /// Writes the streamer list, keys list, free segments, directory and header, then renames
    /// the file into place.
    pub fn finish(mut self) -> Result<PathBuf> {
        let name = self.name.clone();
        let title = self.title.clone();
        // Streamer infos.
        let v = self.key_version(1 << 24);
        let keylen = KeyHeader::len_for(v, "TList", "StreamerInfo", "Doubly linked list");
        let (objlen, stored) = streamer_record(&self.streamers, keylen, self.compression)?;
        let info = self.write_key(
            v,
            "TList",
            "StreamerInfo",
            "Doubly linked list",
            BEGIN,
            1,
            Payload::Stored {
                objlen,
                data: &stored,
            },
        )?;
        // Subdirectories: each one's keys list (a `TDirectory` key of the directory itself),
        // then its record behind the key written by mkdir.
        for d in 1..self.dirs.len() {
            let (dname, dtitle, seek) = {
                let x = &self.dirs[d];
                (x.name.clone(), x.title.clone(), x.seek)
            };
            let list = keys_list(&self.dirs[d].keys);
            let v = self.key_version(list.len() as u64);
            let keys = self.write_key(
                v,
                "TDirectory",
                &dname,
                &dtitle,
                seek,
                1,
                Payload::Raw(&list),
            )?;
            let x = &self.dirs[d];
            let pseek = self.dirs[x.parent].seek;
            let big = seek.max(pseek).max(keys.seek_key) >= BIG;
            let rec = dir_record(
                self.datime,
                keys.nbytes,
                x.nbytes_name,
                seek,
                pseek,
                keys.seek_key,
                &x.uuid,
                big,
            );
            self.write_at(seek + x.nbytes_name as u64, &rec)?;
        }
        // Keys list of the top directory.
        let list = keys_list(&self.dirs[TOP].keys);
        let v = self.key_version(list.len() as u64);
        let keys = self.write_key(v, "TFile", &name, &title, BEGIN, 1, Payload::Raw(&list))?;
        // Free segments: one record, from the end of the file to "infinity".
        let v = self.key_version(1 << 20);
        let klen = KeyHeader::len_for(v, "TFile", &name, &title);
        let rec = if v > 1000 { 18 } else { 10 };
        let fend = self.end + (klen + rec) as u64;
        let mut fw = WBuf::new(0);
        if v > 1000 {
            let mut inf = BIG;
            while inf <= fend {
                inf *= 2;
            }
            fw.i16(1001);
            fw.i64(fend as i64);
            fw.i64(inf as i64);
        } else {
            fw.i16(1);
            fw.i32(fend as i32);
            fw.i32(BIG as i32);
        }
        let free = self.write_key(v, "TFile", &name, &title, BEGIN, 1, Payload::Raw(&fw.data))?;
        debug_assert_eq!(self.end, fend);
        let big = fend >= BIG;

        // The TFile key, its name and title, and the top directory record, at BEGIN.
        let name_len = tstr_len(&name) + tstr_len(&title);
        let nbytes_name = self.tfile_keylen + name_len;
        let mut w = WBuf::new(0);
        KeyHeader {
            nbytes: (nbytes_name + DIR_RECORD) as i32,
            version: 4,
            objlen: (name_len + DIR_RECORD) as i32,
            datime: self.datime,
            keylen: self.tfile_keylen as i16,
            cycle: 1,
            seek_key: BEGIN,
            seek_pdir: 0,
            class: "TFile".into(),
            name: name.clone(),
            title: title.clone(),
        }
        .write(&mut w);
        w.tstring(name.as_bytes());
        w.tstring(title.as_bytes());
        let dir_big = big || keys.seek_key >= BIG;
        w.bytes(&dir_record(
            self.datime,
            keys.nbytes,
            nbytes_name,
            BEGIN,
            0,
            keys.seek_key,
            &self.uuid,
            dir_big,
        ));
        self.write_at(BEGIN, &w.data)?;

        // The file header.
        let mut h = WBuf::new(0);
        h.bytes(b"root");
        if big {
            h.i32(ROOT_VERSION + 1_000_000);
            h.i32(BEGIN as i32);
            h.i64(fend as i64);
            h.i64(free.seek_key as i64);
            h.i32(free.nbytes);
            h.i32(1);
            h.i32(nbytes_name as i32);
            h.u8(8);
            h.i32(self.compression.setting());
            h.i64(info.seek_key as i64);
            h.i32(info.nbytes);
        } else {
            h.i32(ROOT_VERSION);
            h.i32(BEGIN as i32);
            h.i32(fend as i32);
            h.i32(free.seek_key as i32);
            h.i32(free.nbytes);
            h.i32(1);
            h.i32(nbytes_name as i32);
            h.u8(4);
            h.i32(self.compression.setting());
            h.i32(info.seek_key as i32);
            h.i32(info.nbytes);
        }
        h.u16(1);
        h.bytes(&self.uuid);
        h.data.resize(BEGIN as usize, 0);
        self.write_at(0, &h.data)?;
        self.flush()?;
        // No fsync: like ROOT and uproot, the file is complete when renamed; forcing it to
        // disk cost ~0.5 s per 150 MB here and buys only crash durability.
        self.file.set_len(fend).map_err(|err| RootError::Io {
            path: self.tmp_path.clone(),
            err,
        })?;
        std::fs::rename(&self.tmp_path, &self.final_path)
            .map_err(|err| RootError::Io {
                path: self.final_path.clone(),
                err,
            })
            .context(|| format!("renaming {} into place", self.tmp_path.display()))?;
        self.done = true;
        Ok(self.final_path.clone())
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}

/// The streamer list's key payload for a key of `keylen` bytes, as stored with `compression`:
/// (payload length, stored bytes). The outputs of one run share their list (see
/// `FileWriter::merge_streamers`), so the last record made is kept and reused for the same list.
fn streamer_record(
    streamers: &Arc<Streamers>,
    keylen: usize,
    compression: Compression,
) -> Result<(usize, Arc<Vec<u8>>)> {
    type Record = (Arc<Streamers>, usize, Compression, usize, Arc<Vec<u8>>);
    static LAST: Mutex<Option<Record>> = Mutex::new(None);
    if let Some((s, k, c, n, stored)) = &*LAST.lock().unwrap_or_else(|e| e.into_inner()) {
        // The list kept here is shared, so a writer that changes its list changes a copy:
        // the same pointer is the same list.
        if Arc::ptr_eq(s, streamers) && *k == keylen && *c == compression {
            return Ok((*n, stored.clone()));
        }
    }
    let payload = streamers.to_payload(keylen);
    let stored = Arc::new(compress(&payload, compression)?.unwrap_or(payload.clone()));
    *LAST.lock().unwrap_or_else(|e| e.into_inner()) = Some((
        streamers.clone(),
        keylen,
        compression,
        payload.len(),
        stored.clone(),
    ));
    Ok((payload.len(), stored))
}

/// The payload of a directory's keys-list key: the number of keys, then each key's header.
fn keys_list(keys: &[KeyHeader]) -> Vec<u8> {
    let mut w = WBuf::new(0);
    w.i32(keys.len() as i32);
    for k in keys {
        k.write(&mut w);
    }
    w.data
}

/// A TDirectory record (`TDirectoryFile::FillBuffer`): version 5, or 1005 with 64-bit seeks;
/// the small form is padded to the big one's size.
#[allow(clippy::too_many_arguments)]
fn dir_record(
    datime: u32,
    nbytes_keys: i32,
    nbytes_name: usize,
    seek_dir: u64,
    seek_parent: u64,
    seek_keys: u64,
    uuid: &[u8; 16],
    big: bool,
) -> Vec<u8> {
    let mut w = WBuf::new(0);
    w.i16(if big { 1005 } else { 5 });
    w.u32(datime);
    w.u32(datime);
    w.i32(nbytes_keys);
    w.i32(nbytes_name as i32);
    for s in [seek_dir, seek_parent, seek_keys] {
        if big {
            w.i64(s as i64);
        } else {
            w.i32(s as i32);
        }
    }
    w.u16(1);
    w.bytes(uuid);
    w.data.resize(DIR_RECORD, 0);
    w.data
}

pub(crate) fn tstr_len(s: &str) -> usize {
    s.len() + if s.len() < 255 { 1 } else { 5 }
}
