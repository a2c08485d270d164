//! [`TreeWriter`]: a new tree, or new branches appended to a copied tree (a decorated copy
//! or a friend tree).

use super::branch::*;
use super::file::{DirId, FileWriter, TOP};
use super::template::*;
use crate::error::{Context, Result, RootError};
use crate::object::{fresh_tag, Body, Object, Ptr, Value, Writer};
use crate::rbuf::WBuf;
use crate::read::Array;
use crate::tree::{Prim, Shape, Tree};

/// Writes a new tree, or new branches appended to a copied tree.
pub struct TreeWriter {
    pub(super) name: String,
    pub(super) title: String,
    pub(super) branches: Vec<BranchOut>,
    /// For clones: the copied TTree object and the tags of its leaves by branch name.
    pub(super) base: Option<Object>,
    pub(super) base_leaf_tags: Vec<(String, u32)>,
    pub(super) expected_entries: Option<u64>,
    pub(super) clusters: Clusters,
    /// The cluster ranges marked by [`TreeWriter::flush_cluster`]: (last entry, cluster size),
    /// ROOT's `fClusterRangeEnd` and `fClusterSize`.
    pub(super) ranges: Vec<(u64, u64)>,
    pub(super) zip_since_cluster: i64,
    pub(super) dir: DirId,
}

impl TreeWriter {
    /// A new tree with these branches, in the top directory. Counter branches of variable
    /// arrays must come first.
    pub fn new(fw: &mut FileWriter, name: &str, title: &str, specs: &[BranchSpec]) -> Result<Self> {
        if name.is_empty() || name.contains('/') {
            return Err(RootError::unsupported(format!(
                "tree name '{name}' (empty or with '/'; use set_directory)"
            )));
        }
        let mut w = TreeWriter {
            name: name.into(),
            title: title.into(),
            branches: Vec::new(),
            base: None,
            base_leaf_tags: Vec::new(),
            expected_entries: None,
            clusters: Clusters::Bytes(-AUTO_FLUSH),
            ranges: Vec::new(),
            zip_since_cluster: 0,
            dir: TOP,
        };
        for s in specs {
            w.add_branch(fw, s)?;
        }
        Ok(w)
    }

    /// The directory the tree is written to (default: the top directory; a decorated copy:
    /// the input tree's directory, made in the output as in the input).
    pub fn set_directory(&mut self, dir: DirId) {
        self.dir = dir;
    }
    /// The directory the tree is written to.
    pub fn directory(&self) -> DirId {
        self.dir
    }

    /// ROOT's `TTree::SetAutoFlush` for a new tree, before any entry is filled: `n > 0`, a
    /// cluster every `n` entries; `n < 0`, the first cluster ends once `-n` compressed bytes
    /// were written (default [`AUTO_FLUSH`]) and later ones have as many entries; `0`, no
    /// clusters. Every branch starts a new basket where a cluster starts. A decorated copy keeps
    /// the input's clusters instead.
    pub fn set_auto_flush(&mut self, n: i64) -> Result<()> {
        if self.base.is_some() || self.branches.iter().any(|b| b.entries > 0) {
            return Err(RootError::unsupported(
                "auto-flush is set on a new tree before it is filled",
            ));
        }
        self.clusters = match n {
            0 => Clusters::Off,
            n if n > 0 => Clusters::Every {
                size: n as u64,
                from: 0,
            },
            n => Clusters::Bytes(n.saturating_neg()),
        };
        Ok(())
    }

    /// Ends a cluster at the entries filled so far, as ROOT's `TTree::FlushBaskets()` does
    /// (`TTree::MarkEventCluster`): every branch writes its pending basket and the tree records
    /// a cluster range ending here (`fClusterRangeEnd`, `fClusterSize`: the auto-flush when it is
    /// a number of entries, else the range's entries), from which later clusters are counted.
    /// Every branch must have the same number of entries. As in ROOT, nothing is recorded when
    /// no entry was filled since the last range. A decorated copy keeps the input's clusters
    /// and refuses this.
    pub fn flush_cluster(&mut self, fw: &mut FileWriter) -> Result<()> {
        if matches!(self.clusters, Clusters::At(_)) {
            return Err(RootError::unsupported(
                "ending a cluster in a decorated copy (it keeps the input's clusters)",
            ));
        }
        let entries = self.branches.first().map_or(0, |b| b.entries);
        if let Some(b) = self.branches.iter().find(|b| b.entries != entries) {
            return Err(RootError::malformed(format!(
                "ending a cluster at entry {entries}: branch '{}' has {} entries",
                b.spec.name, b.entries
            )));
        }
        let start = self.ranges.last().map_or(0, |r| r.0 + 1);
        if entries == start {
            return Ok(());
        }
        let ctx = Ctx {
            tree: &self.name,
            pdir: fw.dir_seek(self.dir)?,
            clusters: &self.clusters,
        };
        for b in &mut self.branches {
            b.flush(fw, &ctx)?;
        }
        let size = match self.clusters {
            Clusters::Every { size, .. } => size,
            _ => entries - start,
        };
        self.ranges.push((entries - 1, size));
        if let Clusters::Every { from, .. } = &mut self.clusters {
            *from = entries;
        }
        Ok(())
    }

    /// Adds a branch (before any entry is filled).
    pub fn add_branch(&mut self, fw: &FileWriter, spec: &BranchSpec) -> Result<usize> {
        if self.branches.iter().any(|b| b.entries > 0) {
            return Err(RootError::unsupported(format!(
                "adding branch '{}' after entries were filled",
                spec.name
            )));
        }
        if spec.interp.prim == Prim::Bits {
            // Its on-disk form depends on each object's references: copied, never written.
            return Err(RootError::unsupported(format!(
                "writing TObject::fBits branch '{}' (write it as uint32)",
                spec.name
            )));
        }
        if self.branches.iter().any(|b| b.spec.name == spec.name)
            || self.base_leaf_tags.iter().any(|(n, _)| *n == spec.name)
        {
            return Err(RootError::malformed(format!(
                "branch '{}' exists already",
                spec.name
            )));
        }
        let (counter_tag, counter) = match &spec.interp.shape {
            Shape::Var { counter, .. } => {
                if let Some(k) = self.branches.iter().position(|b| &b.spec.name == counter) {
                    let c = &mut self.branches[k];
                    if c.spec.interp.shape != Shape::Scalar
                        || matches!(
                            c.spec.interp.prim,
                            Prim::F32 | Prim::F64 | Prim::Bool | Prim::Packed { .. }
                        )
                    {
                        return Err(RootError::unsupported(format!(
                            "counter '{counter}' of '{}' must be an integer scalar",
                            spec.name
                        )));
                    }
                    c.is_counter = true;
                    (Some(c.leaf_tag), Some(k))
                } else {
                    let tag = self
                        .base_leaf_tags
                        .iter()
                        .find(|(n, _)| n == counter)
                        .map(|(_, t)| *t)
                        .ok_or_else(|| {
                            RootError::NotFound(format!(
                                "counter branch '{counter}' of '{}' (declare it first)",
                                spec.name
                            ))
                        })?;
                    (Some(tag), None)
                }
            }
            _ => (None, None),
        };
        let compression = spec.compression.unwrap_or(fw.compression());
        self.branches
            .push(BranchOut::new(spec, counter_tag, counter, compression)?);
        Ok(self.branches.len() - 1)
    }

    /// The index of the new branch `name`, as [`TreeWriter::append`] takes it.
    pub fn branch_index(&self, name: &str) -> Option<usize> {
        self.branches.iter().position(|b| b.spec.name == name)
    }

    /// Entries given to branch `k` so far.
    pub fn entries(&self, k: usize) -> Option<u64> {
        self.branches.get(k).map(|b| b.entries)
    }

    /// Appends entries to branch `k`: a chunk of a column, or a single entry when filling
    /// event by event. Branches may be filled in any order and chunking; each must end with
    /// the same number of entries.
    pub fn append(&mut self, fw: &mut FileWriter, k: usize, a: &Array) -> Result<()> {
        let pdir = fw.dir_seek(self.dir)?;
        let b = self
            .branches
            .get_mut(k)
            .ok_or_else(|| RootError::NotFound(format!("branch #{k}")))?;
        if let Some(n) = self.expected_entries {
            if b.entries + a.entries > n {
                return Err(RootError::malformed(format!(
                    "branch '{}' given {} entries, the tree has {n}",
                    b.spec.name,
                    b.entries + a.entries
                )));
            }
        }
        let before = b.zip;
        let ctx = Ctx {
            tree: &self.name,
            pdir,
            clusters: &self.clusters,
        };
        b.append(fw, &ctx, a)
            .context(|| format!("writing branch '{}'", b.spec.name))?;
        self.zip_since_cluster += b.zip - before;
        let counter = if b.is_counter { Some(k) } else { b.counter };
        if let Some(c) = counter {
            self.check_counts(c)?;
        }
        // ROOT's auto-flush by size: once enough went to disk, flush every branch at the
        // same entry; later clusters have the same number of entries.
        if let Clusters::Bytes(limit) = self.clusters {
            if self.zip_since_cluster >= limit {
                let entries = self.branches.iter().map(|b| b.entries).min().unwrap_or(0);
                if entries > 0 && self.branches.iter().all(|b| b.entries == entries) {
                    let ctx = Ctx {
                        tree: &self.name,
                        pdir,
                        clusters: &self.clusters,
                    };
                    for b in &mut self.branches {
                        b.flush(fw, &ctx)?;
                    }
                    // As ROOT, the auto-flush becomes the tree's entry count, and clusters
                    // of that size follow the last marked range.
                    self.clusters = Clusters::Every {
                        size: entries,
                        from: self.ranges.last().map_or(0, |r| r.0 + 1),
                    };
                    self.zip_since_cluster = 0;
                }
            }
        }
        Ok(())
    }

    /// Checks the row counts of the arrays counted by branch `c` against its values, as far as
    /// both were filled, and forgets what was checked.
    fn check_counts(&mut self, c: usize) -> Result<()> {
        let deps: Vec<usize> = (0..self.branches.len())
            .filter(|&d| self.branches[d].counter == Some(c))
            .collect();
        let (cstart, centries) = (self.branches[c].cq_start, self.branches[c].entries);
        for &d in &deps {
            let upto = self.branches[d].entries.min(centries);
            while self.branches[d].verified < upto {
                let e = self.branches[d].verified;
                let want = self.branches[c].cq.get((e - cstart) as usize).copied();
                let got = self.branches[d].vq.pop_front();
                if want.is_none() || got.map(|g| g as i64) != want {
                    return Err(RootError::malformed(format!(
                        "entry {e}: branch '{}' has {} rows, its counter '{}' says {}",
                        self.branches[d].spec.name,
                        got.map_or("?".into(), |g| g.to_string()),
                        self.branches[c].spec.name,
                        want.map_or("?".into(), |w| w.to_string()),
                    )));
                }
                self.branches[d].verified += 1;
            }
        }
        let done = deps
            .iter()
            .map(|&d| self.branches[d].verified)
            .min()
            .unwrap_or(centries);
        let cb = &mut self.branches[c];
        while cb.cq_start < done && cb.cq.pop_front().is_some() {
            cb.cq_start += 1;
        }
        Ok(())
    }

    /// Flushes, checks entry counts, and writes the TTree object (and the streamer infos of
    /// the classes it uses).
    pub fn finish(mut self, fw: &mut FileWriter) -> Result<()> {
        let name = self.name.clone();
        let entries = match self.expected_entries {
            Some(n) => n,
            None => self.branches.first().map(|b| b.entries).unwrap_or(0),
        };
        let pdir = fw.dir_seek(self.dir)?;
        let ctx = Ctx {
            tree: &name,
            pdir,
            clusters: &self.clusters,
        };
        for b in &mut self.branches {
            if b.entries != entries {
                return Err(RootError::malformed(format!(
                    "branch '{}' has {} entries, the tree {entries}",
                    b.spec.name, b.entries
                )));
            }
            b.flush(fw, &ctx)?;
        }
        for c in 0..self.branches.len() {
            if self.branches[c].is_counter {
                self.check_counts(c)?;
            }
        }
        for b in &mut self.branches {
            b.finalise()?;
        }
        let mut tree = match self.base.take() {
            Some(t) => t,
            None => {
                let mut t = template()?.tree.object.clone();
                retag(&mut t);
                if let Some(items) = t.array_items_mut("fBranches") {
                    items.clear();
                }
                if let Some(items) = t.array_items_mut("fLeaves") {
                    items.clear();
                }
                set_str(&mut t, "fName", &self.name)?;
                set_str(&mut t, "fTitle", &self.title)?;
                t.set_int("fEntries", entries as i64)?;
                t.set_int("fTotBytes", 0)?;
                let n = i32::try_from(self.ranges.len())
                    .map_err(|_| RootError::unsupported("over 2^31 cluster ranges"))?;
                t.set_int("fNClusterRange", i64::from(n))?;
                for (member, pick) in [("fClusterRangeEnd", 0usize), ("fClusterSize", 1usize)] {
                    let v = self
                        .ranges
                        .iter()
                        .map(|&r| Value::I64([r.0, r.1][pick] as i64))
                        .collect();
                    set(&mut t, member, Value::BasicPtr((n > 0).then_some(v)))?;
                }
                t.set_int("fZipBytes", 0)?;
                t.set_int(
                    "fAutoFlush",
                    match self.clusters {
                        Clusters::Bytes(n) => n.saturating_neg(),
                        Clusters::Every { size, .. } => size as i64,
                        Clusters::Off | Clusters::At(_) => 0,
                    },
                )?;
                t
            }
        };
        let (tot, zip): (i64, i64) = self
            .branches
            .iter()
            .map(|b| (b.tot, b.zip))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        tree.set_int("fTotBytes", tree.int("fTotBytes")? + tot)?;
        tree.set_int("fZipBytes", tree.int("fZipBytes")? + zip)?;
        let mut leaf_refs = Vec::new();
        let mut new_branches = Vec::new();
        for b in self.branches {
            leaf_refs.push(Ptr::Ref(b.leaf_tag));
            new_branches.push(Ptr::New {
                tag: fresh_tag(),
                obj: Box::new(b.obj),
            });
        }
        tree.array_items_mut("fBranches")
            .ok_or_else(|| RootError::malformed("TTree without fBranches"))?
            .extend(new_branches);
        tree.array_items_mut("fLeaves")
            .ok_or_else(|| RootError::malformed("TTree without fLeaves"))?
            .extend(leaf_refs);
        // Streamer infos: ROOT's for every class of the objects written (a decorated copy has
        // the input's list already; classes of the new branches it lacks are added).
        let mut classes = Vec::new();
        object_classes(&tree, &mut classes);
        fw.add_streamers(template_streamers()?, &classes);
        let title = tree.string("fTitle").unwrap_or_default();
        fw.write_object_in(self.dir, "TTree", &name, &title, |keylen| {
            let mut w = WBuf::new(keylen);
            Writer::new().write_object(&mut w, &tree)?;
            Ok(w.data)
        })?;
        Ok(())
    }
}

/// Every (class, version) of the objects inside `o`, `o` included.
pub(super) fn object_classes<'o>(o: &'o Object, out: &mut Vec<(&'o str, i32)>) {
    let key = (o.class.as_str(), o.version as i32);
    if !out.contains(&key) {
        out.push(key);
    }
    let ptr = |p: &'o Ptr, out: &mut Vec<(&'o str, i32)>| {
        if let Ptr::New { obj, .. } = p {
            object_classes(obj, out);
        }
    };
    match &o.body {
        Body::Members(m) => {
            for (_, v) in m {
                match v {
                    Value::Object(inner) => object_classes(inner, out),
                    Value::Ptr(p) => ptr(p, out),
                    _ => {}
                }
            }
        }
        Body::ObjArray { items, .. } => items.iter().for_each(|p| ptr(p, out)),
        Body::List { items, .. } => items.iter().for_each(|(p, _)| ptr(p, out)),
        _ => {}
    }
}

/// The entries at which every branch of `tree` starts a basket (besides 0 and the end): the
/// input's clusters, which the new branches of a decorated copy follow.
pub(super) fn common_basket_starts(tree: &Tree) -> Vec<u64> {
    let mut common: Option<Vec<u64>> = None;
    for b in &tree.branches {
        if b.baskets.is_empty() {
            continue;
        }
        let mut starts: Vec<u64> = b
            .baskets
            .iter()
            .map(|l| l.first_entry)
            .filter(|&e| e > 0 && e < tree.entries)
            .collect();
        starts.sort_unstable();
        common = Some(match common {
            None => starts,
            Some(c) => c
                .into_iter()
                .filter(|e| starts.binary_search(e).is_ok())
                .collect(),
        });
    }
    let mut v = common.unwrap_or_default();
    v.sort_unstable();
    v.dedup();
    v
}
