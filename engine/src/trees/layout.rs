//! How the trees are laid out for evaluation: shallow trees complete and level by level
//! (`Levelled`), every tree flattened with its leaf weights (`Flat`).

use super::{Mode, Node, MAX_LEVELS};

/// Shallow trees laid out complete, in heap order (a leaf above the bottom level is repeated
/// into every bottom slot under it), so that `LANES` trees are walked together level by level:
/// no data-dependent loop exits, and independent chains the CPU overlaps. Leaf weights are
/// still added in tree order, so the sums are the same to the bit.
#[derive(Debug, Clone)]
pub(super) struct Levelled {
    pub(super) depth: usize,
    /// Per tree, `2^depth - 1` branch nodes.
    pub(super) inner: Vec<Node>,
    /// Per tree, `2^depth` ranges into `weights`.
    pub(super) leaves: Vec<(u32, u32)>,
}

impl Levelled {
    pub(super) fn build(nodes: &[Node], roots: &[u32]) -> Option<Levelled> {
        fn depth(nodes: &[Node], i: usize, d: usize) -> usize {
            let n = &nodes[i];
            if n.mode == Mode::Leaf || d > MAX_LEVELS {
                d
            } else {
                depth(nodes, n.yes as usize, d + 1).max(depth(nodes, n.no as usize, d + 1))
            }
        }
        let d = roots
            .iter()
            .map(|&r| depth(nodes, r as usize, 0))
            .max()
            .unwrap_or(0);
        if d > MAX_LEVELS {
            return None;
        }
        let (ni, nl) = ((1usize << d) - 1, 1usize << d);
        let mut lv = Levelled {
            depth: d,
            inner: Vec::with_capacity(roots.len() * ni),
            leaves: Vec::with_capacity(roots.len() * nl),
        };
        // A branch that is never taken differently: both sides hold the same leaf.
        let filler = Node {
            mode: Mode::Leq,
            missing_yes: false,
            feature: 0,
            value: 0.0,
            yes: 0,
            no: 0,
            w0: 0,
            w1: 0,
        };
        for &r in roots {
            let (i0, l0) = (lv.inner.len(), lv.leaves.len());
            lv.inner.resize(i0 + ni, filler);
            lv.leaves.resize(l0 + nl, (0, 0));
            let mut stack = vec![(0usize, r as usize, 0usize)];
            while let Some((p, i, level)) = stack.pop() {
                let n = &nodes[i];
                if level == d {
                    lv.leaves[l0 + p - ni] = (n.w0, n.w1);
                } else if n.mode == Mode::Leaf {
                    stack.push((2 * p + 1, i, level + 1));
                    stack.push((2 * p + 2, i, level + 1));
                } else {
                    lv.inner[i0 + p] = *n;
                    stack.push((2 * p + 1, n.yes as usize, level + 1));
                    stack.push((2 * p + 2, n.no as usize, level + 1));
                }
            }
        }
        Some(lv)
    }
}

/// The common binary ensemble (sklearn GBC, xgboost, LightGBM) packed tight: levelled trees,
/// one comparison mode, each leaf one weight for the one target. A branch node is 8 bytes
/// (feature, with the missing-goes-yes flag in the top bit, and threshold), a leaf 4, and a
/// tree is walked with no branch at all, so the CPU overlaps many trees. The weights are added
/// in tree order, as [`TreeEngine::accumulate`] does: the same sum to the bit.
#[derive(Debug, Clone)]
pub(super) struct Flat {
    pub(super) depth: usize,
    /// `Lt`, else `Leq`.
    pub(super) lt: bool,
    /// Some node sends missing values (NaN) to its true branch.
    pub(super) missing: bool,
    pub(super) nodes: Vec<(u32, f32)>,
    pub(super) leaves: Vec<f32>,
}

const MISSING_YES: u32 = 1 << 31;

impl Flat {
    pub(super) fn build(nodes: &[Node], lv: &Levelled, weights: &[(u32, f32)]) -> Option<Flat> {
        let mut modes = nodes.iter().map(|n| n.mode).filter(|m| *m != Mode::Leaf);
        let mode = modes.next().unwrap_or(Mode::Leq);
        if !matches!(mode, Mode::Leq | Mode::Lt) || modes.any(|m| m != mode) {
            return None;
        }
        let leaves = lv
            .leaves
            .iter()
            .map(|&(w0, w1)| (w1 == w0 + 1).then(|| weights[w0 as usize].1))
            .collect::<Option<Vec<f32>>>()?;
        let nodes = lv
            .inner
            .iter()
            .map(|n| {
                (n.feature < MISSING_YES).then_some((
                    n.feature | if n.missing_yes { MISSING_YES } else { 0 },
                    n.value,
                ))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Flat {
            depth: lv.depth,
            lt: mode == Mode::Lt,
            missing: nodes.iter().any(|n| n.0 & MISSING_YES != 0),
            nodes,
            leaves,
        })
    }

    #[inline]
    pub(super) fn sum(&self, x: &[f32]) -> f32 {
        macro_rules! walk {
            ($lt:literal, $miss:literal) => {
                match self.depth {
                    0 => self.leaves.iter().fold(0.0, |s, w| s + w),
                    1 => self.walk::<1, $lt, $miss>(x),
                    2 => self.walk::<2, $lt, $miss>(x),
                    3 => self.walk::<3, $lt, $miss>(x),
                    4 => self.walk::<4, $lt, $miss>(x),
                    5 => self.walk::<5, $lt, $miss>(x),
                    6 => self.walk::<6, $lt, $miss>(x),
                    7 => self.walk::<7, $lt, $miss>(x),
                    _ => self.walk::<8, $lt, $miss>(x),
                }
            };
        }
        match (self.lt, self.missing) {
            (false, false) => walk!(false, false),
            (false, true) => walk!(false, true),
            (true, false) => walk!(true, false),
            (true, true) => walk!(true, true),
        }
    }

    #[inline(always)]
    pub(super) fn walk<const D: usize, const LT: bool, const MISS: bool>(&self, x: &[f32]) -> f32 {
        let (ni, nl) = ((1usize << D) - 1, 1usize << D);
        let mut sum = 0f32;
        for (nodes, leaves) in self
            .nodes
            .chunks_exact(ni)
            .zip(self.leaves.chunks_exact(nl))
        {
            let mut p = 0usize;
            for _ in 0..D {
                let (f, t) = nodes[p];
                let v = x[(if MISS { f & !MISSING_YES } else { f }) as usize];
                let mut yes = if LT { v < t } else { v <= t };
                if MISS {
                    // `|` and `&`, not `||`: no branch.
                    yes |= (f & MISSING_YES != 0) & v.is_nan();
                }
                p = 2 * p + 1 + usize::from(!yes);
            }
            sum += leaves[p - ni];
        }
        sum
    }
}

/// Whether a row goes to the node's true branch.
#[inline(always)]
pub(super) fn goes_yes(n: &Node, x: &[f32]) -> bool {
    let v = x[n.feature as usize];
    if n.mode == Mode::Leq && !n.missing_yes {
        // sklearn's only mode: a predictable branch instead of the jump table.
        return v <= n.value;
    }
    (match n.mode {
        Mode::Leq => v <= n.value,
        Mode::Lt => v < n.value,
        Mode::Gte => v >= n.value,
        Mode::Gt => v > n.value,
        Mode::Eq => v == n.value,
        Mode::Neq => v != n.value,
        Mode::Leaf => false,
    }) || (n.missing_yes && v.is_nan())
}
