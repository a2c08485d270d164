//! Binned features and per-node histograms, shared by every tree learner.
//!
//! Each feature's values are put in bins whose upper edges (at most `max_bins`) are values the
//! feature takes: all its distinct values when there are few, else quantiles of up to
//! [`SAMPLE`] rows and the largest value sampled. NaN, and values above the last edge (rows
//! the sample missed), get a bin each. A split "bins `0..=b` left" is then exactly
//! `x <= edge_b` on the raw f32 values, so a fitted tree, and its ONNX export with
//! `BRANCH_LEQ`, reproduce the training partition.
//!
//! [`Binned`] holds the bins row-major (one byte per value); [`build`] sums per-row pairs
//! (gradient and hessian, or signal weight and weight) into a node's histogram, in parallel
//! over ranges of features; [`subtract`] gives a sibling's histogram from its parent's.

/// Rows sampled (evenly strided) for the quantile bin edges.
pub const SAMPLE: usize = 1 << 18;
/// The most bin edges (candidate thresholds) a feature gets: bins are one byte, with one
/// value left for NaN and one for values above the last edge.
pub const MAX_BINS: usize = 254;
pub(super) const NAN_BIN: u8 = u8::MAX;
/// Histogram slots per feature (one per byte value).
pub(super) const HIST: usize = 256;

/// Sums of two per-row quantities in one histogram slot or node.
pub(super) type Pair = [f64; 2];

pub(super) fn add(a: Pair, b: Pair) -> Pair {
    [a[0] + b[0], a[1] + b[1]]
}

pub(super) fn sub(a: Pair, b: Pair) -> Pair {
    [a[0] - b[0], a[1] - b[1]]
}

/// Upper bin edges for one feature's (sampled) values: at most `max_bins`, strictly
/// increasing, each a value of the sample, the last its largest (so that "all values" vs
/// "missing" is a candidate split).
pub(super) fn bin_edges(mut v: Vec<f32>, max_bins: usize) -> Vec<f32> {
    v.sort_unstable_by(f32::total_cmp);
    let mut distinct = v.clone();
    distinct.dedup_by(|a, b| a == b);
    let Some(&top) = distinct.last() else {
        return Vec::new();
    };
    if distinct.len() <= max_bins {
        return distinct;
    }
    let mut q: Vec<f32> = (1..max_bins).map(|k| v[k * v.len() / max_bins]).collect();
    q.push(top);
    q.dedup_by(|a, b| a == b);
    q
}

/// The bin of `x`: how many edges lie below it, so that bin `<= b` is exactly `x <= edges[b]`.
#[inline]
pub(super) fn bin(edges: &[f32], x: f32) -> u8 {
    if x.is_nan() {
        NAN_BIN
    } else {
        edges.partition_point(|&e| e < x) as u8
    }
}

/// The bin edges of feature `f` from up to [`SAMPLE`] of the `n` rows `row(i)` gives.
pub(super) fn feature_edges(n: usize, max_bins: usize, value: impl Fn(usize) -> f32) -> Vec<f32> {
    let stride = n.div_ceil(SAMPLE).max(1);
    let sample = (0..n)
        .step_by(stride)
        .map(value)
        .filter(|v| !v.is_nan())
        .collect();
    bin_edges(sample, max_bins)
}

/// The threads to use (at least 1).
pub(super) fn threads(requested: usize) -> usize {
    if requested == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        requested
    }
}

/// Runs `work(first_block, chunk)` over `data` cut into blocks of `per` items (a feature's
/// histogram, a run of rows), the blocks spread over `threads` threads in contiguous ranges.
pub(super) fn par_blocks<T: Send>(
    data: &mut [T],
    per: usize,
    threads: usize,
    work: impl Fn(usize, &mut [T]) + Sync,
) {
    let blocks = data.len().div_ceil(per.max(1));
    let t = threads.clamp(1, blocks.max(1));
    if t == 1 {
        work(0, data);
        return;
    }
    let block = blocks.div_ceil(t);
    std::thread::scope(|s| {
        for (i, chunk) in data.chunks_mut(block * per).enumerate() {
            let work = &work;
            s.spawn(move || work(i * block, chunk));
        }
    });
}

/// The training rows' bins, row-major (a row's bins side by side, as the histogram loop reads
/// them), with each feature's edges.
pub struct Binned {
    n_features: usize,
    pub(super) edges: Vec<Vec<f32>>,
    bins: Vec<u8>,
}

/// Rows binned per block of work.
const ROW_BLOCK: usize = 1 << 14;

impl Binned {
    /// Bins rows `rows` of `x` (row-major, `n_features` columns), edges from those rows.
    pub fn new(
        x: &[f32],
        n_features: usize,
        rows: &[usize],
        max_bins: usize,
        threads: usize,
    ) -> Self {
        let n = rows.len();
        let mut edges = vec![Vec::new(); n_features];
        par_blocks(&mut edges, 1, threads, |f0, chunk| {
            for (k, e) in chunk.iter_mut().enumerate() {
                let f = f0 + k;
                *e = feature_edges(n, max_bins, |i| x[rows[i] * n_features + f]);
            }
        });
        let mut bins = vec![0u8; n * n_features];
        par_blocks(&mut bins, ROW_BLOCK * n_features, threads, |b0, chunk| {
            for (k, out) in chunk.chunks_exact_mut(n_features).enumerate() {
                let r = rows[b0 * ROW_BLOCK + k];
                let row = &x[r * n_features..(r + 1) * n_features];
                for ((o, &v), e) in out.iter_mut().zip(row).zip(&edges) {
                    *o = bin(e, v);
                }
            }
        });
        Binned {
            n_features,
            edges,
            bins,
        }
    }

    /// The bin of row `r`'s feature `f`.
    #[inline]
    pub(super) fn get(&self, r: usize, f: usize) -> u8 {
        self.bins[r * self.n_features + f]
    }
}

/// A node's histogram: [`HIST`] slots per feature, feature-major.
pub(super) fn empty_hist(n_features: usize) -> Vec<Pair> {
    vec![[0.0; 2]; n_features * HIST]
}

/// Cells (rows x features) below which a histogram is built on one thread: spawning costs
/// more than it saves.
const PARALLEL_CELLS: usize = 1 << 16;

/// Sums `stats` of `rows` into `out` for the features where `active` is true (the others
/// are left as they are). Each thread takes a range of features and walks the rows once,
/// reading each row's pair once and its bins side by side.
pub(super) fn build(
    b: &Binned,
    rows: &[u32],
    stats: &[[f32; 2]],
    active: &[bool],
    out: &mut [Pair],
    threads: usize,
) {
    let nf = b.n_features;
    let n_active = active.iter().filter(|&&a| a).count();
    let threads = if rows.len() * n_active < PARALLEL_CELLS {
        1
    } else {
        threads
    };
    par_blocks(out, HIST, threads, |f0, chunk| {
        let f1 = f0 + chunk.len() / HIST;
        // The active features of this range, as offsets into a row and into `chunk`.
        let cols: Vec<usize> = (f0..f1).filter(|&f| active[f]).collect();
        for &f in &cols {
            chunk[(f - f0) * HIST..(f - f0 + 1) * HIST].fill([0.0; 2]);
        }
        if cols.is_empty() {
            return;
        }
        let all = cols.len() == f1 - f0;
        for &r in rows {
            let r = r as usize;
            let s = stats[r];
            let (g, h) = (s[0] as f64, s[1] as f64);
            let row = &b.bins[r * nf + f0..r * nf + f1];
            if all {
                for (k, &v) in row.iter().enumerate() {
                    let slot = &mut chunk[k * HIST + v as usize];
                    slot[0] += g;
                    slot[1] += h;
                }
            } else {
                for &f in &cols {
                    let k = f - f0;
                    let slot = &mut chunk[k * HIST + row[k] as usize];
                    slot[0] += g;
                    slot[1] += h;
                }
            }
        }
    });
}

/// `parent -= child` for the active features: the histogram of the child's sibling.
pub(super) fn subtract(parent: &mut [Pair], child: &[Pair], active: &[bool]) {
    for (f, (p, c)) in parent
        .chunks_exact_mut(HIST)
        .zip(child.chunks_exact(HIST))
        .enumerate()
    {
        if active[f] {
            for (p, c) in p.iter_mut().zip(c) {
                *p = sub(*p, *c);
            }
        }
    }
}
