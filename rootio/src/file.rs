//! TFile: the header, directories and their keys, the streamer-info list, and reading a key's
//! object. Files are read with positioned reads (no mmap, no whole-file buffering), so memory
//! stays bounded whatever the file size; 32- and 64-bit seeks (files over 2 GB) are handled.

use super::compress::decompress_into;
use super::error::{Context, Result, RootError};
use super::object::{Object, Reader};
use super::rbuf::RBuf;
use super::recent::Recent;
use super::streamers::Streamers;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The fixed-size header of a TKey (also the start of every on-disk basket).
#[derive(Debug, Clone)]
pub(crate) struct KeyHeader {
    pub(crate) nbytes: i32,
    pub(crate) version: i16,
    pub(crate) objlen: i32,
    pub(crate) datime: u32,
    pub(crate) keylen: i16,
    pub(crate) cycle: i16,
    pub(crate) seek_key: u64,
    pub(crate) seek_pdir: u64,
    pub(crate) class: String,
    pub(crate) name: String,
    pub(crate) title: String,
}

impl KeyHeader {
    /// Bytes of the header for a key of this version and these strings.
    pub(crate) fn len_for(version: i16, class: &str, name: &str, title: &str) -> usize {
        let ts = |s: &str| s.len() + if s.len() < 255 { 1 } else { 5 };
        (if version > 1000 { 34 } else { 26 }) + ts(class) + ts(name) + ts(title)
    }

    /// Serialises the header (seeks as 64-bit when the version is above 1000).
    pub(crate) fn write(&self, w: &mut super::rbuf::WBuf) {
        w.i32(self.nbytes);
        w.i16(self.version);
        w.i32(self.objlen);
        w.u32(self.datime);
        w.i16(self.keylen);
        w.i16(self.cycle);
        if self.version > 1000 {
            w.i64(self.seek_key as i64);
            w.i64(self.seek_pdir as i64);
        } else {
            w.i32(self.seek_key as i32);
            w.i32(self.seek_pdir as i32);
        }
        w.tstring(self.class.as_bytes());
        w.tstring(self.name.as_bytes());
        w.tstring(self.title.as_bytes());
    }

    pub(crate) fn read(b: &mut RBuf) -> Result<Self> {
        let nbytes = b.i32()?;
        let version = b.i16()?;
        let objlen = b.i32()?;
        let datime = b.u32()?;
        let keylen = b.i16()?;
        let cycle = b.i16()?;
        let (seek_key, seek_pdir) = if version > 1000 {
            (b.i64()? as u64, b.i64()? as u64)
        } else {
            (b.i32()? as u32 as u64, b.i32()? as u32 as u64)
        };
        let class = b.tstring_lossy()?;
        let name = b.tstring_lossy()?;
        let title = b.tstring_lossy()?;
        // (fNbytes is 0 in the copy of a basket's key kept inside a TBranch; callers that
        // read a key from disk check it against what they read.)
        if nbytes < 0 || objlen < 0 || keylen < 19 {
            return Err(RootError::malformed(format!(
                "key '{name}': nbytes {nbytes}, objlen {objlen}, keylen {keylen}"
            )));
        }
        Ok(KeyHeader {
            nbytes,
            version,
            objlen,
            datime,
            keylen,
            cycle,
            seek_key,
            seek_pdir,
            class,
            name,
            title,
        })
    }
}

/// A directory's keys.
#[derive(Debug, Clone)]
pub(crate) struct Directory {
    pub(crate) seek_dir: u64,
    pub(crate) keys: Vec<KeyHeader>,
}

impl Directory {
    /// The highest cycle of each key name, in key order.
    pub(crate) fn latest_keys(&self) -> Vec<&KeyHeader> {
        let mut best: Vec<&KeyHeader> = Vec::new();
        for k in &self.keys {
            match best.iter_mut().find(|b| b.name == k.name) {
                Some(b) if b.cycle < k.cycle => *b = k,
                Some(_) => {}
                None => best.push(k),
            }
        }
        best
    }
}

/// Where a file's bytes come from: a file on disk (positioned reads) or memory.
enum Source {
    Disk(File),
    Memory(&'static [u8]),
}

/// An open ROOT file (read-only).
pub struct RootFile {
    path: PathBuf,
    file: Source,
    /// File size in bytes.
    pub len: u64,
    /// The ROOT version that wrote the file (`62004` is 6.20/04).
    pub version: i32,
    pub(crate) begin: u64,
    pub(crate) end: u64,
    pub(crate) seek_free: u64,
    pub(crate) nbytes_free: i32,
    pub(crate) nbytes_name: i32,
    pub(crate) units: u8,
    /// The file's compression setting (see [`Compression::from_setting`](crate::Compression::from_setting)).
    pub compress: i32,
    pub(crate) seek_info: u64,
    pub(crate) nbytes_info: i32,
    pub(crate) uuid: [u8; 18],
    /// Shared with the files of the same streamer list (see [`RootFile::read_streamers`]).
    pub(crate) streamers: Arc<Streamers>,
    pub(crate) root: Directory,
    /// What of the file could not be decoded and was skipped, with the reason (a streamer
    /// list of an unknown form); the trees are read without it.
    pub skipped: Vec<String>,
}

impl std::fmt::Debug for RootFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RootFile({})", self.path.display())
    }
}

impl RootFile {
    /// Opens a ROOT file and reads its header, top directory and streamer infos.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let io = |err| RootError::Io {
            path: path.to_path_buf(),
            err,
        };
        let open = || -> Result<(File, u64)> {
            let file = File::open(path).map_err(io)?;
            let len = file.metadata().map_err(io)?.len();
            Ok((file, len))
        };
        let (file, len) = open().context(|| path.display().to_string())?;
        Self::open_source(path, Source::Disk(file), len).context(|| path.display().to_string())
    }

    /// Opens a ROOT file held in memory (e.g. a template compiled into the binary).
    pub(crate) fn from_static(name: &str, bytes: &'static [u8]) -> Result<Self> {
        Self::open_source(Path::new(name), Source::Memory(bytes), bytes.len() as u64)
            .context(|| name.to_string())
    }

    fn open_source(path: &Path, file: Source, len: u64) -> Result<Self> {
        let mut head = Vec::new();
        let mut f = RootFile {
            path: path.to_path_buf(),
            file,
            len,
            version: 0,
            begin: 0,
            end: 0,
            seek_free: 0,
            nbytes_free: 0,
            nbytes_name: 0,
            units: 0,
            compress: 0,
            seek_info: 0,
            nbytes_info: 0,
            uuid: [0; 18],
            streamers: Arc::default(),
            root: Directory {
                seek_dir: 0,
                keys: Vec::new(),
            },
            skipped: Vec::new(),
        };
        f.read_at(0, 100.min(len as usize), &mut head)?;
        if head.len() < 4 || &head[..4] != b"root" {
            return Err(RootError::NotRoot);
        }
        let mut b = RBuf::new(&head, 0);
        b.skip(4)?;
        let version = b.i32()?;
        let begin = b.i32()? as u32 as u64;
        let big = version >= 1_000_000;
        let seek = |b: &mut RBuf| -> Result<u64> {
            Ok(if big {
                b.i64()? as u64
            } else {
                b.i32()? as u32 as u64
            })
        };
        let end = seek(&mut b)?;
        let seek_free = seek(&mut b)?;
        let nbytes_free = b.i32()?;
        let _nfree = b.i32()?;
        let nbytes_name = b.i32()?;
        let units = b.u8()?;
        let compress = b.i32()?;
        let seek_info = seek(&mut b)?;
        let nbytes_info = b.i32()?;
        let mut uuid = [0u8; 18];
        if let Ok(u) = b.bytes(18) {
            uuid.copy_from_slice(u);
        }
        if begin < 64 || begin >= len || nbytes_name < 0 {
            return Err(RootError::malformed(format!(
                "file header (fBEGIN {begin}, length {len})"
            )));
        }
        if end > len {
            return Err(RootError::malformed(format!(
                "file header says the file ends at {end} but it has {len} bytes (truncated?)"
            )));
        }
        f.version = version % 1_000_000;
        f.begin = begin;
        f.end = end;
        f.seek_free = seek_free;
        f.nbytes_free = nbytes_free;
        f.nbytes_name = nbytes_name;
        f.units = units;
        f.compress = compress;
        f.seek_info = seek_info;
        f.nbytes_info = nbytes_info;
        f.uuid = uuid;
        // The top directory record follows the TFile key and the file's name and title.
        f.root = f
            .read_directory(begin + nbytes_name as u64)
            .context(|| "top directory".to_string())?;
        if seek_info > 0 && nbytes_info > 0 {
            // A streamer list hepml cannot decode does not block the file: ROOT's own classes
            // fall back on built-in layouts, and what needs the file's says so when read.
            match f.read_streamers(seek_info, nbytes_info as usize) {
                Ok(s) => f.streamers = s,
                Err(e) => f.skipped.push(format!("the streamer info list ({e})")),
            }
        }
        Ok(f)
    }

    /// The path the file was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads `n` bytes at `pos`, failing clearly if they are not in the file.
    pub(crate) fn read_at(&self, pos: u64, n: usize, out: &mut Vec<u8>) -> Result<()> {
        if !self.holds(pos, n) {
            return Err(RootError::Truncated {
                what: "file",
                at: pos as usize,
                wanted: n,
                len: self.len as usize,
            });
        }
        out.resize(n, 0);
        match &self.file {
            Source::Disk(f) => f.read_exact_at(out, pos).map_err(|err| RootError::Io {
                path: self.path.clone(),
                err,
            }),
            Source::Memory(b) => {
                out.copy_from_slice(&b[pos as usize..pos as usize + n]);
                Ok(())
            }
        }
    }

    /// Whether the file has `n` bytes at `pos`.
    pub(crate) fn holds(&self, pos: u64, n: usize) -> bool {
        pos.checked_add(n as u64).is_some_and(|e| e <= self.len)
    }

    /// The open file on disk, for copies the kernel makes itself (`None` for a file read from
    /// memory).
    pub(crate) fn disk(&self) -> Option<&File> {
        match &self.file {
            Source::Disk(f) => Some(f),
            Source::Memory(_) => None,
        }
    }

    fn read_directory(&self, pos: u64) -> Result<Directory> {
        let mut buf = Vec::new();
        let n = 42.min((self.len - pos.min(self.len)) as usize);
        self.read_at(pos, n, &mut buf)?;
        let mut b = RBuf::new(&buf, 0);
        let version = b.i16()?;
        let _ctime = b.u32()?;
        let _mtime = b.u32()?;
        let nbytes_keys = b.i32()?;
        let _nbytes_name = b.i32()?;
        let big = version > 1000;
        let seek = |b: &mut RBuf| -> Result<u64> {
            Ok(if big {
                b.i64()? as u64
            } else {
                b.i32()? as u32 as u64
            })
        };
        let seek_dir = seek(&mut b)?;
        let _seek_parent = seek(&mut b)?;
        let seek_keys = seek(&mut b)?;
        let mut keys = Vec::new();
        if seek_keys > 0 {
            // The keys list: a key header, then the number of keys and each key's header.
            let mut head = Vec::new();
            self.read_at(seek_keys, 4, &mut head)?;
            // Some writers record only the list's key header in its key's fNbytes; the
            // directory's fNbytesKeys covers the keys too.
            let nbytes = i32::from_be_bytes([head[0], head[1], head[2], head[3]]).max(nbytes_keys);
            if nbytes <= 0 {
                return Err(RootError::malformed(format!("keys list of {nbytes} bytes")));
            }
            self.read_at(seek_keys, nbytes as usize, &mut head)?;
            let mut b = RBuf::new(&head, 0);
            let kh = KeyHeader::read(&mut b)?;
            b.set_pos(kh.keylen as usize)?;
            let nkeys = b.i32()?;
            for i in 0..nkeys.max(0) {
                keys.push(KeyHeader::read(&mut b).context(|| format!("key {i} of the directory"))?);
            }
        }
        Ok(Directory { seek_dir, keys })
    }

    /// Reads a key at `seek` (whose total size is `nbytes`, or unknown = 0) and returns its
    /// header and uncompressed payload.
    pub(crate) fn read_key_payload(
        &self,
        seek: u64,
        nbytes: usize,
    ) -> Result<(KeyHeader, Vec<u8>)> {
        let (kh, raw) = self.read_key(seek, nbytes)?;
        let mut out = Vec::new();
        decompress_into(
            &raw[kh.keylen as usize..kh.nbytes as usize],
            kh.objlen as usize,
            &mut out,
        )
        .context(|| format!("key '{}' ({})", kh.name, kh.class))?;
        Ok((kh, out))
    }

    /// The key at `seek` (`nbytes` long, or as long as its header says when 0): its header
    /// and its bytes, header included.
    fn read_key(&self, seek: u64, nbytes: usize) -> Result<(KeyHeader, Vec<u8>)> {
        let mut raw = Vec::new();
        let n = if nbytes > 0 {
            nbytes
        } else {
            self.read_at(seek, 4, &mut raw)?;
            i32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]).max(0) as usize
        };
        self.read_at(seek, n, &mut raw)?;
        let mut b = RBuf::new(&raw, 0);
        let kh = KeyHeader::read(&mut b).context(|| format!("key at {seek}"))?;
        if kh.nbytes as usize > raw.len() || (kh.keylen as i32) > kh.nbytes || kh.keylen < 0 {
            return Err(RootError::malformed(format!(
                "key '{}' at {seek}: {} bytes, have {}",
                kh.name,
                kh.nbytes,
                raw.len()
            )));
        }
        Ok((kh, raw))
    }

    /// The streamer list behind the key at `seek`. The files of one dataset carry the same
    /// list, byte for byte: a list whose stored bytes (and key length, from which its
    /// references count) match one read before is that one, shared, and not decoded again.
    fn read_streamers(&self, seek: u64, nbytes: usize) -> Result<Arc<Streamers>> {
        /// A list as stored (key length, payload length, stored bytes), and as decoded.
        static SEEN: Recent<(i16, i32, Vec<u8>), Arc<Streamers>> = Recent::new(4);
        let (kh, raw) = self.read_key(seek, nbytes)?;
        let stored = &raw[kh.keylen as usize..kh.nbytes as usize];
        if let Some(s) =
            SEEN.find(|(k, n, b)| *k == kh.keylen && *n == kh.objlen && b.as_slice() == stored)
        {
            return Ok(s);
        }
        let mut payload = Vec::new();
        decompress_into(stored, kh.objlen as usize, &mut payload)
            .context(|| format!("key '{}' ({})", kh.name, kh.class))?;
        let s = Arc::new(Streamers::parse(&payload, kh.keylen as usize)?);
        SEEN.put((kh.keylen, kh.objlen, stored.to_vec()), s.clone());
        Ok(s)
    }

    /// Reads and deserialises the object behind a key.
    pub(crate) fn read_object(&self, key: &KeyHeader) -> Result<Object> {
        let (kh, payload) = self.read_key_payload(key.seek_key, key.nbytes as usize)?;
        let mut b = RBuf::new(&payload, kh.keylen as usize);
        let mut r = Reader::new(&self.streamers);
        r.read_object(&mut b, &kh.class, Some(payload.len()))
            .context(|| format!("{} '{}'", kh.class, kh.name))
    }

    /// The title of the `TNamed` at `path` (`name` or `dir/name`), as written by
    /// [`FileWriter::write_named`](crate::write::FileWriter::write_named).
    pub fn named_title(&self, path: &str) -> Result<String> {
        let key = self.find_key(path)?;
        if key.class != "TNamed" {
            return Err(RootError::NotFound(format!(
                "'{path}' in {} is a {}, not a TNamed",
                self.path().display(),
                key.class
            )));
        }
        self.read_object(&key)?.string("fTitle")
    }

    /// The classes the file's streamer-info list describes, in the list's order: (name, class
    /// version, checksum).
    pub fn streamer_classes(&self) -> Vec<(String, i32, u32)> {
        self.streamers
            .infos
            .iter()
            .map(|i| (i.name.clone(), i.class_version, i.checksum))
            .collect()
    }

    /// The directory behind a `TDirectory(File)` key.
    pub(crate) fn subdirectory(&self, key: &KeyHeader) -> Result<Directory> {
        self.read_directory(key.seek_key + key.keylen as u64)
            .context(|| format!("directory '{}'", key.name))
    }

    /// Every key of a class (by `TTree`-like prefix match) in the file, recursively, with its
    /// path (`dir/name`), highest cycle only.
    pub(crate) fn walk_keys(&self) -> Result<Vec<(String, KeyHeader)>> {
        let mut out = Vec::new();
        self.walk_dir(&self.root, "", &mut out, 0)?;
        Ok(out)
    }

    fn walk_dir(
        &self,
        d: &Directory,
        prefix: &str,
        out: &mut Vec<(String, KeyHeader)>,
        depth: usize,
    ) -> Result<()> {
        if depth > 64 {
            return Err(RootError::malformed(
                "directories nested over 64 deep (a cycle?)",
            ));
        }
        let best = d.latest_keys();
        for k in best {
            let path = format!("{prefix}{}", k.name);
            if k.class == "TDirectory" || k.class == "TDirectoryFile" {
                let sub = self.subdirectory(k)?;
                self.walk_dir(&sub, &format!("{path}/"), out, depth + 1)?;
            } else {
                out.push((path, k.clone()));
            }
        }
        Ok(())
    }

    /// The key of an object by path (`name`, `dir/name`, optionally `;cycle`).
    pub(crate) fn find_key(&self, path: &str) -> Result<KeyHeader> {
        let (path, cycle) = match path.rsplit_once(';') {
            Some((p, c)) => (p, c.parse::<i16>().ok()),
            None => (path, None),
        };
        let mut dir = self.root.clone();
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let key = dir
                .keys
                .iter()
                .filter(|k| k.name == *part && (!last || cycle.is_none_or(|c| c == k.cycle)))
                .max_by_key(|k| k.cycle)
                .cloned()
                .ok_or_else(|| {
                    RootError::NotFound(format!("no object '{path}' in {}", self.path.display()))
                })?;
            if last {
                return Ok(key);
            }
            dir = self.subdirectory(&key)?;
        }
        Err(RootError::NotFound(format!(
            "no object '{path}' in {}",
            self.path.display()
        )))
    }
}
