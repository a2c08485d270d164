//! Several files' trees read as one (a TChain), and a chunked event iterator over selected
//! branches. Each branch keeps one decompressed basket, so memory is bounded by
//! (branches x basket size + chunk arrays), independent of file size.

use super::error::{Context, Result, RootError};
use super::read::{Array, BranchReader, ReaderBuffers};
use super::tree::{Interp, Tree};
use super::RootFile;
use std::path::{Path, PathBuf};

/// One file's tree within a chain.
pub struct Member {
    /// The opened file.
    pub file: RootFile,
    /// The chain's tree in that file.
    pub tree: Tree,
    /// Global index of this member's first entry.
    pub first_entry: u64,
}

/// The same tree in several files, read as one sequence of entries (files in the order given).
pub struct Chain {
    /// The files, in order.
    pub members: Vec<Member>,
    /// The tree's path in every file.
    pub tree_name: String,
}

impl Chain {
    /// Opens `tree` in every file, in order.
    pub fn open<P: AsRef<Path>>(paths: &[P], tree: &str) -> Result<Chain> {
        let files = paths
            .iter()
            .map(RootFile::open)
            .collect::<Result<Vec<_>>>()?;
        Chain::from_files(files, tree)
    }

    /// The chain of files already open (a caller that opened one to find the tree's name need
    /// not open it again).
    pub fn from_files(files: Vec<RootFile>, tree: &str) -> Result<Chain> {
        if files.is_empty() {
            return Err(RootError::NotFound("no input files".into()));
        }
        let mut members = Vec::new();
        let mut first = 0;
        for file in files {
            let t = file.tree(tree)?;
            let n = t.entries;
            members.push(Member {
                file,
                tree: t,
                first_entry: first,
            });
            first += n;
        }
        Ok(Chain {
            members,
            tree_name: tree.to_string(),
        })
    }

    /// Entries of all files together.
    pub fn entries(&self) -> u64 {
        self.members.iter().map(|m| m.tree.entries).sum()
    }

    /// The files' paths, in order.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.members
            .iter()
            .map(|m| m.file.path().to_path_buf())
            .collect()
    }

    /// The interpretation of a branch, checked to be the same in every file.
    pub fn interp(&self, branch: &str) -> Result<Interp> {
        let mut found: Option<Interp> = None;
        for m in &self.members {
            let b = m
                .tree
                .branch(branch)
                .context(|| m.file.path().display().to_string())?;
            let i = b.interp.clone().map_err(|why| {
                RootError::unsupported(format!(
                    "{}: branch '{branch}': {why}",
                    m.file.path().display()
                ))
            })?;
            match &found {
                Some(f) if *f != i => {
                    return Err(RootError::malformed(format!(
                        "{}: branch '{branch}' is {} here but {} in the first file",
                        m.file.path().display(),
                        i.type_name(),
                        f.type_name()
                    )))
                }
                Some(_) => {}
                None => found = Some(i),
            }
        }
        found.ok_or_else(|| RootError::NotFound(format!("branch '{branch}'")))
    }

    /// Iterates over `[start, stop)` of the whole chain in chunks of at most `chunk` entries
    /// that never straddle two files.
    pub fn chunks(&self, branches: &[String], chunk: u64) -> Result<Chunks<'_>> {
        for b in branches {
            self.interp(b)?;
        }
        Ok(Chunks {
            chain: self,
            branches: branches.to_vec(),
            chunk: chunk.max(1),
            member: 0,
            next: 0,
            readers: Vec::new(),
            buffers: Vec::new(),
            threads: 1,
        })
    }
}

/// One chunk of events: the arrays of the requested branches, in request order.
pub struct Chunk {
    /// Index of the file in the chain.
    pub member: usize,
    /// Entry range within that file's tree.
    pub start: u64,
    /// End (exclusive) of the entry range within that file's tree.
    pub stop: u64,
    /// Global index of `start` in the chain.
    pub global_start: u64,
    /// One array per requested branch, in request order.
    pub arrays: Vec<Array>,
}

/// Iterator over the chunks of a [`Chain`] (from [`Chain::chunks`]); call [`Chunks::next_into`].
pub struct Chunks<'c> {
    chain: &'c Chain,
    branches: Vec<String>,
    chunk: u64,
    member: usize,
    next: u64,
    readers: Vec<BranchReader<'c>>,
    /// Buffers for the next readers (from the previous file, or another iterator).
    buffers: Vec<ReaderBuffers>,
    threads: usize,
}

impl<'c> Chunks<'c> {
    /// Decompresses and decodes the branches of a chunk on up to `n` threads (branches are
    /// independent; each keeps its own basket).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    /// Reads into the buffers of an earlier iterator (see [`Chunks::into_buffers`]): a run over
    /// many inputs, one iterator each, allocates them once.
    pub fn with_buffers(mut self, buffers: Vec<ReaderBuffers>) -> Self {
        self.buffers = buffers;
        self
    }

    /// The readers' buffers, for the iterator over the next input.
    pub fn into_buffers(mut self) -> Vec<ReaderBuffers> {
        self.recycle_readers();
        self.buffers
    }

    fn recycle_readers(&mut self) {
        self.buffers
            .extend(self.readers.drain(..).map(BranchReader::into_buffers));
    }

    /// Reads the next chunk into `out` (reusing its arrays); returns false at the end.
    pub fn next_into(&mut self, out: &mut Chunk) -> Result<bool> {
        loop {
            let Some(m) = self.chain.members.get(self.member) else {
                return Ok(false);
            };
            if self.next >= m.tree.entries {
                self.member += 1;
                self.next = 0;
                self.recycle_readers();
                continue;
            }
            if self.readers.is_empty() {
                for b in &self.branches {
                    let br = m.tree.branch(b)?;
                    let b = self.buffers.pop().unwrap_or_default();
                    self.readers
                        .push(BranchReader::new(&m.file, &m.tree, br)?.with_buffers(b));
                }
            }
            let start = self.next;
            let stop = (start + self.chunk).min(m.tree.entries);
            out.arrays.truncate(self.readers.len());
            while out.arrays.len() < self.readers.len() {
                let k = out.arrays.len();
                out.arrays.push(self.readers[k].read(start, start)?);
            }
            let threads = self.threads.min(self.readers.len()).max(1);
            if threads == 1 {
                for (r, a) in self.readers.iter_mut().zip(out.arrays.iter_mut()) {
                    r.read_into(start, stop, a)
                        .context(|| m.file.path().display().to_string())?;
                }
            } else {
                // Branches are taken one at a time by whichever thread is free, the calling one
                // among them, so a thread the system pauses (the other stages of `inject` share
                // the cores) does not hold the chunk up: 100 files of 20k events were 9% faster
                // than with branches dealt to the threads in turn. After an error the others
                // take no more.
                let work =
                    std::sync::Mutex::new(self.readers.iter_mut().zip(out.arrays.iter_mut()));
                let failed = std::sync::atomic::AtomicBool::new(false);
                let next = || {
                    if failed.load(std::sync::atomic::Ordering::Relaxed) {
                        return None;
                    }
                    // Taking the next pair cannot panic, so the lock is never poisoned.
                    work.lock().unwrap_or_else(|p| p.into_inner()).next()
                };
                let drain = || -> Result<()> {
                    while let Some((r, a)) = next() {
                        r.read_into(start, stop, a).inspect_err(|_| {
                            failed.store(true, std::sync::atomic::Ordering::Relaxed)
                        })?;
                    }
                    Ok(())
                };
                std::thread::scope(|s| {
                    let handles: Vec<_> = (1..threads).map(|_| s.spawn(drain)).collect();
                    let mine = drain();
                    for h in handles {
                        h.join()
                            .map_err(|_| RootError::malformed("a reader thread panicked"))?
                            .context(|| m.file.path().display().to_string())?;
                    }
                    mine.context(|| m.file.path().display().to_string())
                })?;
            }
            out.member = self.member;
            out.start = start;
            out.stop = stop;
            out.global_start = m.first_entry + start;
            self.next = stop;
            return Ok(true);
        }
    }
}

impl Chunk {
    /// An empty chunk, to be filled by [`Chunks::next_into`].
    pub fn new() -> Self {
        Chunk {
            member: 0,
            start: 0,
            stop: 0,
            global_start: 0,
            arrays: Vec::new(),
        }
    }
    /// Entries in the chunk.
    pub fn len(&self) -> usize {
        (self.stop - self.start) as usize
    }
    /// Whether the chunk holds no entry.
    pub fn is_empty(&self) -> bool {
        self.stop == self.start
    }
    /// Bytes its values and offsets take.
    pub fn bytes(&self) -> usize {
        self.arrays
            .iter()
            .map(|a| {
                let offsets = a
                    .offsets
                    .iter()
                    .chain(&a.outer)
                    .map(|o| o.len())
                    .sum::<usize>();
                a.data.bytes() + offsets * std::mem::size_of::<usize>()
            })
            .sum()
    }
}

impl Default for Chunk {
    fn default() -> Self {
        Self::new()
    }
}
