//! Growing one tree on binned rows: the node loop shared by gradient boosting and the
//! random forest, which differ only in the per-row pair they sum and the [`Criterion`] that
//! scores a split.
//!
//! Nodes are split in steps: up to [`BATCH`] queued nodes at a time, the latest first, or the
//! one of best gain when the leaves are limited (without a leaf limit every order gives the
//! same tree). A step's partitions, histograms and split searches are spread over the
//! threads, nodes and large nodes' rows alike. With every feature available at every node,
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
pub(super) trait Criterion: Sync {
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
    /// Per job of a step, the histograms of [`hist::build`]'s second and later parts.
    spares: Vec<Vec<Vec<Pair>>>,
    scratch: Vec<u32>,
    n_features: usize,
}

/// Nodes split together in one step when the leaves are not limited: their partitions,
/// histograms and split searches are spread over the threads together, where one node at a
/// time leaves a thread idle whenever a node is too small to share. The most recently queued
/// first (depth first), so that at most `BATCH` histograms per level are kept.
const BATCH: usize = 16;

/// A node whose best split is searched: its rows `lo..hi` at `depth`, the sums of its rows,
/// the features it may split on, its histogram (built or to be built) and the result.
struct Open {
    node: usize,
    lo: usize,
    hi: usize,
    depth: usize,
    total: Pair,
    active: Vec<bool>,
    hist: Vec<Pair>,
    /// Whether `hist` is still to be built (else it came from the parent).
    build: bool,
    spare: Vec<Vec<Pair>>,
    best: Option<Best>,
}

/// A node to open: its id, rows `lo..hi`, depth and the sums of its rows.
type Kid = (usize, usize, usize, usize, Pair);

/// Siblings whose histograms come from their parent's: the smaller one (index into the
/// kids), a buffer for its histogram, the parent's, and [`hist::build`]'s spare parts.
type Siblings = (usize, Vec<Pair>, Vec<Pair>, Vec<Vec<Pair>>);

/// A node being split, after its partition: its left rows end at `left`.
struct Cut {
    q: Pending,
    left: usize,
}

impl Grower {
    pub fn new(n_features: usize) -> Self {
        Grower {
            pool: Vec::new(),
            spares: Vec::new(),
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
    /// its range of `rows`. Work within a step goes to the threads of the caller's rayon pool
    /// when `p.threads > 1`; the tree does not depend on the thread count.
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
        let mut tree_active = vec![false; nf];
        for &f in features {
            tree_active[f] = true;
        }
        let total = rows.iter().fold([0.0; 2], |s, &r| {
            let v = stats[r as usize];
            add(s, [v[0] as f64, v[1] as f64])
        });
        let mut nodes = vec![leaf(crit, total, rows.len())];
        let mut split_bins = vec![0u8];
        let mut leaves: Vec<(usize, usize, usize)> = Vec::new();
        let mut pending: Vec<Pending> = Vec::new();
        let mut n_leaves = 1;
        if self.scratch.len() < rows.len() {
            self.scratch.resize(rows.len(), 0);
        }
        let limited = p.max_leaves < usize::MAX;
        let mut kids: Vec<Kid> = vec![(0, 0, rows.len(), 0, total)];
        let mut parents: Vec<Option<Vec<Pair>>> = vec![None];
        loop {
            // The children of the last step (the root at first): histograms, then splits.
            let opened = self.open(
                b,
                stats,
                rows,
                (&kids, &mut parents),
                (&tree_active, features),
                crit,
                p,
                rng,
                &mut leaves,
            );
            for o in opened {
                let keep = p.per_node.is_none() && o.depth + 1 < p.max_depth;
                match o.best {
                    Some(best) => pending.push(Pending {
                        node: o.node,
                        lo: o.lo,
                        hi: o.hi,
                        depth: o.depth,
                        best,
                        hist: if keep {
                            Some(o.hist)
                        } else {
                            self.pool.push(o.hist);
                            None
                        },
                    }),
                    None => {
                        self.pool.push(o.hist);
                        leaves.push((o.node, o.lo, o.hi));
                    }
                }
            }
            if pending.is_empty() {
                break;
            }
            // The nodes split in this step.
            let mut step = if limited {
                let mut k = 0;
                for (i, q) in pending.iter().enumerate() {
                    if q.best.gain > pending[k].best.gain {
                        k = i;
                    }
                }
                vec![pending.swap_remove(k)]
            } else {
                pending.split_off(pending.len().saturating_sub(BATCH))
            };
            if n_leaves + step.len() > p.max_leaves {
                for q in step.drain(p.max_leaves.saturating_sub(n_leaves)..) {
                    leaves.push((q.node, q.lo, q.hi));
                    self.pool.extend(q.hist);
                }
            }
            if step.is_empty() {
                // No leaf left to add: what is queued stays a leaf.
                for q in pending.drain(..) {
                    leaves.push((q.node, q.lo, q.hi));
                    self.pool.extend(q.hist);
                }
                break;
            }
            n_leaves += step.len();
            step.sort_by_key(|q| q.lo);
            let cuts = self.partition_all(b, rows, step, p.threads);
            kids.clear();
            parents.clear();
            for c in cuts {
                let (q, l) = (c.q, c.left);
                let s = q.best;
                let (left, right) = (nodes.len(), nodes.len() + 1);
                nodes.push(leaf(crit, s.left, l - q.lo));
                nodes.push(leaf(crit, s.right, q.hi - l));
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
                kids.push((left, q.lo, l, q.depth + 1, s.left));
                kids.push((right, l, q.hi, q.depth + 1, s.right));
                parents.push(q.hist);
            }
        }
        let tree = Tree {
            n_features: nf,
            nodes,
        };
        (Grown { tree, split_bins }, leaves)
    }

    /// Partitions the rows of each node of `step` (sorted by `lo`; their ranges are
    /// disjoint), the nodes spread over the threads.
    fn partition_all(
        &mut self,
        b: &Binned,
        rows: &mut [u32],
        step: Vec<Pending>,
        threads: usize,
    ) -> Vec<Cut> {
        let ranges: Vec<(usize, usize)> = step.iter().map(|q| (q.lo, q.hi)).collect();
        let mut jobs: Vec<_> = carve(rows, &ranges)
            .into_iter()
            .zip(carve(&mut self.scratch, &ranges))
            .zip(&step)
            .map(|((r, s), q)| (r, s, q.best, 0))
            .collect();
        hist::each(threads, &mut jobs, |(r, s, best, l)| {
            *l = partition(
                r,
                s,
                b.column(best.feature),
                (best.bin, best.nan_left),
                threads,
            )
        });
        let lefts: Vec<usize> = jobs.iter().map(|j| j.3).collect();
        step.into_iter()
            .zip(lefts)
            .map(|(q, l)| Cut { left: q.lo + l, q })
            .collect()
    }

    /// Searches the best split of each of `kids` (node, lo, hi, depth, sums; in pairs of
    /// siblings after a split, with their parent's histogram in `parents`, or the root
    /// alone), recording as leaves those that cannot split. With a parent's histogram, the
    /// smaller sibling's is built and the larger's is the parent's minus it; else each builds
    /// its own on its features (drawn per node when `p.per_node`). Builds and searches are
    /// spread over the threads.
    #[allow(clippy::too_many_arguments)]
    fn open<C: Criterion>(
        &mut self,
        b: &Binned,
        stats: &[[f32; 2]],
        rows: &[u32],
        (kids, parents): (&[Kid], &mut [Option<Vec<Pair>>]),
        (tree_active, features): (&[bool], &[usize]),
        crit: &C,
        p: &GrowParams,
        rng: &mut Rng,
        leaves: &mut Vec<(usize, usize, usize)>,
    ) -> Vec<Open> {
        let searched = |&(_, lo, hi, depth, total): &Kid| {
            depth < p.max_depth && hi - lo >= 2 && !crit.pure(total)
        };
        // Siblings from a parent's histogram: the smaller one's built, the other's subtracted.
        let mut pairs: Vec<Siblings> = Vec::new();
        for (k, parent) in parents.iter_mut().enumerate() {
            let Some(parent) = parent.take() else {
                continue;
            };
            let (l, r) = (&kids[2 * k], &kids[2 * k + 1]);
            if !searched(l) && !searched(r) {
                self.pool.push(parent);
                continue;
            }
            let small = if l.2 - l.1 <= r.2 - r.1 {
                2 * k
            } else {
                2 * k + 1
            };
            let h = self.take();
            let spare = self.spares.pop().unwrap_or_default();
            pairs.push((small, h, parent, spare));
        }
        hist::each(p.threads, &mut pairs, |(small, h, parent, spare)| {
            let (_, lo, hi, _, _) = kids[*small];
            hist::build(b, &rows[lo..hi], stats, tree_active, h, p.threads, spare);
            hist::subtract(parent, h, tree_active);
        });
        let mut built: Vec<Option<Vec<Pair>>> = vec![None; kids.len()];
        for (small, h, parent, spare) in pairs {
            self.spares.push(spare);
            built[small] = Some(h);
            built[small ^ 1] = Some(parent);
        }
        let mut open = Vec::new();
        for (kid, hist) in kids.iter().zip(built) {
            let &(node, lo, hi, depth, total) = kid;
            if !searched(kid) {
                self.pool.extend(hist);
                leaves.push((node, lo, hi));
                continue;
            }
            let active = match (&hist, p.per_node) {
                (None, Some(k)) => {
                    // k features drawn from the tree's, without replacement.
                    let mut pool: Vec<usize> = features.to_vec();
                    let mut active = vec![false; tree_active.len()];
                    for i in 0..k.min(pool.len()) {
                        let j = i + rng.below(pool.len() - i);
                        pool.swap(i, j);
                        active[pool[i]] = true;
                    }
                    active
                }
                _ => tree_active.to_vec(),
            };
            let (hist, build, spare) = match hist {
                Some(h) => (h, false, Vec::new()),
                None => (self.take(), true, self.spares.pop().unwrap_or_default()),
            };
            open.push(Open {
                node,
                lo,
                hi,
                depth,
                total,
                active,
                hist,
                build,
                spare,
                best: None,
            });
        }
        hist::each(p.threads, &mut open, |o| {
            if o.build {
                let rows = &rows[o.lo..o.hi];
                hist::build(
                    b,
                    rows,
                    stats,
                    &o.active,
                    &mut o.hist,
                    p.threads,
                    &mut o.spare,
                );
            }
            o.best = best_split(b, &o.hist, &o.active, o.total, crit);
        });
        for o in &mut open {
            if o.build {
                self.spares.push(std::mem::take(&mut o.spare));
            }
        }
        open
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
    let mut blocks: Vec<_> = rows
        .chunks(per)
        .zip(scratch.chunks_mut(per))
        .map(|(src, dst)| (src, dst, 0))
        .collect();
    hist::each(t, &mut blocks, |(src, dst, l)| *l = split(src, dst));
    let lefts: Vec<usize> = blocks.iter().map(|b| b.2).collect();
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

/// Cuts `rows` into the disjoint `ranges` (ascending).
fn carve<'a>(mut rows: &'a mut [u32], ranges: &[(usize, usize)]) -> Vec<&'a mut [u32]> {
    let mut at = 0;
    let mut out = Vec::with_capacity(ranges.len());
    for &(lo, hi) in ranges {
        let rest = std::mem::take(&mut rows);
        let (mine, rest) = rest[lo - at..].split_at_mut(hi - lo);
        out.push(mine);
        rows = rest;
        at = hi;
    }
    out
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
