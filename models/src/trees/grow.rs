//! Growing one tree on binned rows: the node loop shared by gradient boosting and the
//! random forest, which differ only in the per-row pair they sum and the [`Criterion`] that
//! scores a split.
//!
//! Nodes are split depth first, or best gain first when the leaves are limited (without a
//! leaf limit both orders give the same tree). With every feature available at every node,
//! only the smaller child's histogram is built; the larger one's is its parent's minus it.
//! With features sampled per node (a forest), each child's histogram is built for its own
//! sample. Histogram buffers are pooled: no allocation per node once the pool is warm.
//!
//! NaN rows are tried on both sides of every candidate split and the side is recorded; a node
//! without NaN rows sends NaN to its heavier child. Ties go to the first candidate (lowest
//! feature, lowest threshold, NaN right before NaN left): the growth is deterministic.

use super::hist::{self, add, sub, Binned, Pair, HIST, NAN_BIN};
use super::tree::{Node, Split, Tree};
use crate::rng::Rng;

/// What a split lowers, from the per-row pair sums of a node and its children.
pub(super) trait Criterion {
    /// Whether a child with these sums may exist.
    fn allowed(&self, s: Pair) -> bool;
    /// A node's score, larger for a lower loss or impurity: a split gains
    /// `score(l) + score(r) - score(p)`.
    fn score(&self, s: Pair) -> f64;
    /// A leaf's value.
    fn value(&self, s: Pair) -> f32;
    /// No split can lower this node's loss (a pure node).
    fn pure(&self, _s: Pair) -> bool {
        false
    }
}

pub(super) struct GrowParams {
    pub max_depth: usize,
    pub max_leaves: usize,
    /// Features drawn (from the tree's) at each node; `None`: all of them.
    pub per_node: Option<usize>,
    pub threads: usize,
}

#[derive(Clone, Copy)]
struct Best {
    feature: usize,
    bin: u8,
    nan_left: bool,
    gain: f64,
    left: Pair,
    right: Pair,
}

struct Pending {
    node: usize,
    lo: usize,
    hi: usize,
    depth: usize,
    best: Best,
    /// The node's histogram where its children will be built by subtraction.
    hist: Option<Vec<Pair>>,
}

/// A grown tree and, per node, the bin its split cuts after (to route binned rows).
pub(super) struct Grown {
    pub tree: Tree,
    pub split_bins: Vec<u8>,
}

impl Grown {
    /// The leaf row `r` of `b` reaches.
    pub fn leaf(&self, b: &Binned, r: usize) -> usize {
        let mut i = 0;
        while let Some(s) = &self.tree.nodes[i].split {
            let v = b.get(r, s.feature);
            let left = if v == NAN_BIN {
                s.nan_left
            } else {
                v <= self.split_bins[i]
            };
            i = if left { s.left } else { s.right };
        }
        i
    }
}

/// Reusable buffers of a grower (one per thread).
pub(super) struct Grower {
    pool: Vec<Vec<Pair>>,
    /// The histograms of the second and later threads of [`hist::build`].
    spare: Vec<Vec<Pair>>,
    scratch: Vec<u32>,
    n_features: usize,
}

impl Grower {
    pub fn new(n_features: usize) -> Self {
        Grower {
            pool: Vec::new(),
            spare: Vec::new(),
            scratch: Vec::new(),
            n_features,
        }
    }

    fn take(&mut self) -> Vec<Pair> {
        self.pool
            .pop()
            .unwrap_or_else(|| hist::empty_hist(self.n_features))
    }

    /// Grows a tree on `rows` (indices into `b` and `stats`; reordered so that each leaf's
    /// rows are contiguous), splitting only on `features`. Returns the tree and, per leaf,
    /// its range of `rows`.
    #[allow(clippy::too_many_arguments)]
    pub fn grow<C: Criterion>(
        &mut self,
        b: &Binned,
        stats: &[[f32; 2]],
        rows: &mut [u32],
        features: &[usize],
        crit: &C,
        p: &GrowParams,
        rng: &mut Rng,
    ) -> (Grown, Vec<(usize, usize, usize)>) {
        let nf = self.n_features;
        let subtraction = p.per_node.is_none();
        let mut tree_active = vec![false; nf];
        for &f in features {
            tree_active[f] = true;
        }
        let mut active = tree_active.clone();
        let total = rows.iter().fold([0.0; 2], |s, &r| {
            let v = stats[r as usize];
            add(s, [v[0] as f64, v[1] as f64])
        });
        let mut nodes = vec![leaf(crit, total, rows.len())];
        let mut split_bins = vec![0u8];
        let mut leaves: Vec<(usize, usize, usize)> = Vec::new();
        let mut pending: Vec<Pending> = Vec::new();
        let mut n_leaves = 1;
        // The root.
        self.consider(
            b,
            stats,
            rows,
            (0, 0, rows.len(), 0, total),
            (&tree_active, &mut active, features),
            crit,
            p,
            rng,
            None,
            &mut pending,
            &mut leaves,
        );
        if self.scratch.len() < rows.len() {
            self.scratch.resize(rows.len(), 0);
        }
        while !pending.is_empty() {
            let pick = if p.max_leaves < usize::MAX {
                let mut k = 0;
                for (i, q) in pending.iter().enumerate() {
                    if q.best.gain > pending[k].best.gain {
                        k = i;
                    }
                }
                k
            } else {
                pending.len() - 1
            };
            let q = pending.swap_remove(pick);
            if n_leaves >= p.max_leaves {
                leaves.push((q.node, q.lo, q.hi));
                if let Some(h) = q.hist {
                    self.pool.push(h);
                }
                continue;
            }
            n_leaves += 1;
            let s = q.best;
            // Stable partition of the node's rows.
            let (lo, hi) = (q.lo, q.hi);
            let l = lo
                + partition(
                    &mut rows[lo..hi],
                    &mut self.scratch[lo..hi],
                    b.column(s.feature),
                    (s.bin, s.nan_left),
                    p.threads,
                );
            let (left, right) = (nodes.len(), nodes.len() + 1);
            nodes.push(leaf(crit, s.left, l - lo));
            nodes.push(leaf(crit, s.right, hi - l));
            split_bins.extend([0, 0]);
            split_bins[q.node] = s.bin;
            nodes[q.node].split = Some(Split {
                feature: s.feature,
                threshold: b.edges[s.feature][s.bin as usize],
                nan_left: s.nan_left,
                left,
                right,
                gain: s.gain,
            });
            let depth = q.depth + 1;
            let kids = [(left, lo, l, s.left), (right, l, hi, s.right)];
            // With the parent's histogram: the smaller child's built, the larger one's by
            // subtraction; else each child builds its own (or stays a leaf).
            let hists: [Option<Vec<Pair>>; 2] = match q.hist {
                Some(mut parent) => {
                    let small = if l - lo <= hi - l { 0 } else { 1 };
                    let (_, slo, shi, _) = kids[small];
                    let mut h = self.take();
                    hist::build(
                        b,
                        &rows[slo..shi],
                        stats,
                        &tree_active,
                        &mut h,
                        p.threads,
                        &mut self.spare,
                    );
                    hist::subtract(&mut parent, &h, &tree_active);
                    if small == 0 {
                        [Some(h), Some(parent)]
                    } else {
                        [Some(parent), Some(h)]
                    }
                }
                None => {
                    debug_assert!(!subtraction || depth >= p.max_depth);
                    [None, None]
                }
            };
            for ((n, klo, khi, ksum), h) in kids.into_iter().zip(hists) {
                self.consider(
                    b,
                    stats,
                    rows,
                    (n, klo, khi, depth, ksum),
                    (&tree_active, &mut active, features),
                    crit,
                    p,
                    rng,
                    h,
                    &mut pending,
                    &mut leaves,
                );
            }
        }
        let tree = Tree {
            n_features: nf,
            nodes,
        };
        (Grown { tree, split_bins }, leaves)
    }

    /// Finds node `node`'s best split (building its histogram unless `hist` is given) and
    /// queues it, or records it as a leaf.
    #[allow(clippy::too_many_arguments)]
    fn consider<C: Criterion>(
        &mut self,
        b: &Binned,
        stats: &[[f32; 2]],
        rows: &[u32],
        (node, lo, hi, depth, total): (usize, usize, usize, usize, Pair),
        (tree_active, active, features): (&[bool], &mut Vec<bool>, &[usize]),
        crit: &C,
        p: &GrowParams,
        rng: &mut Rng,
        hist: Option<Vec<Pair>>,
        pending: &mut Vec<Pending>,
        leaves: &mut Vec<(usize, usize, usize)>,
    ) {
        let done = |g: &mut Self, h: Option<Vec<Pair>>, leaves: &mut Vec<_>| {
            if let Some(h) = h {
                g.pool.push(h);
            }
            leaves.push((node, lo, hi));
        };
        if depth >= p.max_depth || hi - lo < 2 || crit.pure(total) {
            return done(self, hist, leaves);
        }
        let subtraction = p.per_node.is_none();
        let (h, use_active) = match (hist, p.per_node) {
            (Some(h), _) => (h, tree_active),
            (None, None) => {
                let mut h = self.take();
                hist::build(
                    b,
                    &rows[lo..hi],
                    stats,
                    tree_active,
                    &mut h,
                    p.threads,
                    &mut self.spare,
                );
                (h, tree_active)
            }
            (None, Some(k)) => {
                // k features drawn from the tree's, without replacement.
                let mut pool: Vec<usize> = features.to_vec();
                active.iter_mut().for_each(|a| *a = false);
                for i in 0..k.min(pool.len()) {
                    let j = i + rng.below(pool.len() - i);
                    pool.swap(i, j);
                    active[pool[i]] = true;
                }
                let mut h = self.take();
                hist::build(
                    b,
                    &rows[lo..hi],
                    stats,
                    active,
                    &mut h,
                    p.threads,
                    &mut self.spare,
                );
                (h, &active[..])
            }
        };
        let best = best_split(b, &h, use_active, total, crit);
        match best {
            Some(best) => {
                let keep = subtraction && depth + 1 < p.max_depth;
                let hist = if keep {
                    Some(h)
                } else {
                    self.pool.push(h);
                    None
                };
                pending.push(Pending {
                    node,
                    lo,
                    hi,
                    depth,
                    best,
                    hist,
                });
            }
            None => done(self, Some(h), leaves),
        }
    }
}

/// Rows per thread below which a partition stays on one thread.
const PARALLEL_ROWS: usize = 1 << 15;

/// Reorders `rows` stably so that those going left (`column[row] <= bin`, or NaN where
/// `nan_left`) come first; returns how many do. `scratch` is as long as `rows`. Each thread
/// takes a contiguous block and writes its left rows forward from the block's start and its
/// right rows backward from its end, without a branch per row (the side is data: half the
/// rows would mispredict); the blocks are then gathered in order.
fn partition(
    rows: &mut [u32],
    scratch: &mut [u32],
    column: &[u8],
    (bin, nan_left): (u8, bool),
    threads: usize,
) -> usize {
    let n = rows.len();
    let t = threads.clamp(1, n.div_ceil(PARALLEL_ROWS).max(1));
    let per = n.div_ceil(t).max(1);
    let split = |src: &[u32], dst: &mut [u32]| -> usize {
        let (mut l, mut r) = (0, dst.len());
        for (i, &row) in src.iter().enumerate() {
            if let Some(&next) = src.get(i + hist::AHEAD) {
                hist::prefetch(&column[next as usize]);
            }
            // Both free slots get the row; only one of them is kept. When l == r - 1 they
            // are the same slot. Bins <= `bin` are never NaN's.
            let v = column[row as usize];
            let left = (v <= bin) | ((v == NAN_BIN) & nan_left);
            dst[l] = row;
            dst[r - 1] = row;
            l += left as usize;
            r -= !left as usize;
        }
        l
    };
    let lefts: Vec<usize> = if t == 1 {
        vec![split(rows, scratch)]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = rows
                .chunks(per)
                .zip(scratch.chunks_mut(per))
                .map(|(src, dst)| {
                    let split = &split;
                    s.spawn(move || split(src, dst))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    };
    let n_left: usize = lefts.iter().sum();
    let (mut at_l, mut at_r) = (0, n_left);
    for (block, &l) in scratch.chunks(per).zip(&lefts) {
        rows[at_l..at_l + l].copy_from_slice(&block[..l]);
        at_l += l;
        // The right rows were written backward.
        for (o, &v) in rows[at_r..at_r + block.len() - l]
            .iter_mut()
            .zip(block[l..].iter().rev())
        {
            *o = v;
        }
        at_r += block.len() - l;
    }
    n_left
}

fn leaf<C: Criterion>(crit: &C, s: Pair, count: usize) -> Node {
    Node {
        split: None,
        value: crit.value(s),
        count,
        weight: s[1],
    }
}

/// The best split of a node from its histogram, `None` where no split gains.
fn best_split<C: Criterion>(
    b: &Binned,
    h: &[Pair],
    active: &[bool],
    total: Pair,
    crit: &C,
) -> Option<Best> {
    // Candidates are compared by their children's score; the parent's is the bar to beat
    // (gain > 0), and the gain is worked out for the winner only.
    let parent = crit.score(total);
    let mut best: Option<Best> = None;
    let mut bar = parent;
    for (f, hf) in h.chunks_exact(HIST).enumerate() {
        if !active[f] {
            continue;
        }
        let nan = hf[NAN_BIN as usize];
        let has_nan = nan[1] > 0.0;
        let values = sub(total, nan);
        let mut left = [0.0; 2];
        for (bin, slot) in hf[..b.edges[f].len()].iter().enumerate() {
            if bin > 0 && slot[1] == 0.0 && slot[0] == 0.0 {
                // An empty bin: the same partition as the previous candidate.
                continue;
            }
            left = add(left, *slot);
            let right = sub(values, left);
            for nan_left in [false, true] {
                if nan_left && !has_nan {
                    continue;
                }
                let (l, r) = if nan_left {
                    (add(left, nan), right)
                } else {
                    (left, add(right, nan))
                };
                if !crit.allowed(l) || !crit.allowed(r) {
                    continue;
                }
                let children = crit.score(l) + crit.score(r);
                if children > bar {
                    bar = children;
                    // Without NaN rows here, NaN follows the heavier child.
                    let nan_left = if has_nan { nan_left } else { l[1] >= r[1] };
                    best = Some(Best {
                        feature: f,
                        bin: bin as u8,
                        nan_left,
                        gain: children - parent,
                        left: l,
                        right: r,
                    });
                }
            }
        }
    }
    best.filter(|b| b.gain > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every thread count gives the stable order a plain filter gives, NaN on its side.
    #[test]
    fn partition_is_stable_on_any_thread_count() {
        let mut rng = Rng::new(7);
        let n = 3 * PARALLEL_ROWS + 17;
        let column: Vec<u8> = (0..2 * n)
            .map(|_| match rng.below(10) {
                0 => NAN_BIN,
                k => (k * 20) as u8,
            })
            .collect();
        let rows: Vec<u32> = (0..2 * n as u32)
            .filter(|r| r % 2 == 0 || r % 7 == 0)
            .collect();
        for nan_left in [false, true] {
            let left = |r: &u32| {
                let v = column[*r as usize];
                if v == NAN_BIN {
                    nan_left
                } else {
                    v <= 100
                }
            };
            let want: Vec<u32> = rows
                .iter()
                .filter(|r| left(r))
                .chain(rows.iter().filter(|r| !left(r)))
                .copied()
                .collect();
            for threads in [1, 2, 3, 8] {
                let mut got = rows.clone();
                let mut scratch = vec![0; rows.len()];
                let l = partition(&mut got, &mut scratch, &column, (100, nan_left), threads);
                assert_eq!(l, rows.iter().filter(|r| left(r)).count());
                assert!(got == want, "threads {threads}, nan_left {nan_left}");
            }
        }
    }
}
