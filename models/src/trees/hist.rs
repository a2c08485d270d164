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
//! over parts of a node's rows (a histogram per part, added up); [`subtract`] gives a
//! sibling's histogram from its parent's.

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
        engine::cores()
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

/// The threads one training works on: a rayon pool of its own when it has more than one
/// (so that `--threads` holds whatever else runs in the process), else none.
pub(super) struct Workers(Option<rayon::ThreadPool>);

impl Workers {
    pub fn new(threads: usize) -> Result<Self, super::TreeError> {
        if threads <= 1 {
            return Ok(Workers(None));
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map(|p| Workers(Some(p)))
            .map_err(|e| super::TreeError::Data(format!("cannot start {threads} threads: {e}")))
    }

    /// Runs `op` with [`each`] inside it on this training's threads.
    pub fn run<R: Send>(&self, op: impl FnOnce() -> R + Send) -> R {
        match &self.0 {
            Some(p) => p.install(op),
            None => op(),
        }
    }
}

/// Runs `work` on each of `items`: on the threads of the caller's rayon pool when `threads >
/// 1`, else in order on this thread.
pub(super) fn each<T: Send>(threads: usize, items: &mut [T], work: impl Fn(&mut T) + Sync + Send) {
    if threads > 1 && items.len() > 1 {
        use rayon::prelude::*;
        items.par_iter_mut().for_each(work);
    } else {
        items.iter_mut().for_each(work);
    }
}

/// The training rows' bins, row-major (a row's bins side by side, as the histogram loop reads
/// them) and again column-major (a feature's bins side by side, as a partition reads them: a
/// node's rows are ascending, so that read is nearly sequential instead of one cache line
/// per row), with each feature's edges.
pub struct Binned {
    n_features: usize,
    n_rows: usize,
    pub(super) edges: Vec<Vec<f32>>,
    bins: Vec<u8>,
    columns: Vec<u8>,
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
        let mut columns = vec![0u8; n * n_features];
        par_blocks(&mut columns, n, threads, |f0, chunk| {
            for (k, col) in chunk.chunks_exact_mut(n).enumerate() {
                let f = f0 + k;
                for (c, row) in col.iter_mut().zip(bins.chunks_exact(n_features)) {
                    *c = row[f];
                }
            }
        });
        Binned {
            n_features,
            n_rows: n,
            edges,
            bins,
            columns,
        }
    }

    /// The bin of row `r`'s feature `f`.
    #[inline]
    pub(super) fn get(&self, r: usize, f: usize) -> u8 {
        self.columns[f * self.n_rows + r]
    }

    /// Feature `f`'s bins, by row.
    pub(super) fn column(&self, f: usize) -> &[u8] {
        &self.columns[f * self.n_rows..(f + 1) * self.n_rows]
    }
}

/// A node's histogram: [`HIST`] slots per feature, feature-major.
pub(super) fn empty_hist(n_features: usize) -> Vec<Pair> {
    vec![[0.0; 2]; n_features * HIST]
}

/// How many rows ahead [`build`] and a partition ask for a row's data.
pub(super) const AHEAD: usize = 16;

/// Asks the CPU to load the cache line of `p` (a hint; nothing happens elsewhere, and `p` is
/// not read: it may point anywhere).
#[inline(always)]
pub(super) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch cannot fault, whatever the address, and changes nothing the program
    // sees.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Cells (rows x features) below which a histogram is built on one thread: spawning and
/// summing the threads' histograms cost more than they save.
const PARALLEL_CELLS: usize = 1 << 18;

/// Parts a large node's rows are cut into by [`build`], whatever the thread count.
const MAX_PARTS: usize = 4;

/// Sums `stats` of `rows` into `out` for the features where `active` is true (the others
/// are left as they are). A large node's rows are cut into contiguous parts (by the number
/// of cells, up to [`MAX_PARTS`]), each summed into a histogram of its own (the first into
/// `out`, the others into `spare`, grown as needed and kept by the caller) and spread over
/// `threads` threads, then added up in order: every row's pair and bins are read by one
/// thread only, the threads write nothing in common, and the sums do not depend on the
/// thread count.
pub(super) fn build(
    b: &Binned,
    rows: &[u32],
    stats: &[[f32; 2]],
    active: &[bool],
    out: &mut [Pair],
    threads: usize,
    spare: &mut Vec<Vec<Pair>>,
) {
    let nf = b.n_features;
    let cols: Vec<usize> = (0..nf).filter(|&f| active[f]).collect();
    let cells = rows.len() * cols.len();
    let per = rows
        .len()
        .div_ceil(cells.div_ceil(PARALLEL_CELLS).clamp(1, MAX_PARTS))
        .max(1);
    let parts = rows.len().div_ceil(per).max(1);
    while spare.len() + 1 < parts {
        spare.push(empty_hist(nf));
    }
    let sum = |rows: &[u32], h: &mut [Pair]| {
        let (hists, _) = h.as_chunks_mut::<HIST>();
        for &f in &cols {
            hists[f].fill([0.0; 2]);
        }
        let all = cols.len() == nf;
        for (i, &r) in rows.iter().enumerate() {
            // A node's rows are spread over the table: without asking for them ahead, each
            // row's pair and bins are a cache miss the loop waits for (most of its time in
            // profiles).
            if let Some(&next) = rows.get(i + AHEAD) {
                let next = next as usize;
                prefetch(&stats[next]);
                prefetch(&b.bins[next * nf]);
                prefetch(&b.bins[(next + 1) * nf - 1]);
            }
            let r = r as usize;
            let s = stats[r];
            let (g, h) = (s[0] as f64, s[1] as f64);
            let row = &b.bins[r * nf..(r + 1) * nf];
            if all {
                for (hf, &v) in hists.iter_mut().zip(row) {
                    let slot = &mut hf[v as usize];
                    slot[0] += g;
                    slot[1] += h;
                }
            } else {
                for &f in &cols {
                    let slot = &mut hists[f][row[f] as usize];
                    slot[0] += g;
                    slot[1] += h;
                }
            }
        }
    };
    if parts == 1 {
        sum(rows, out);
        return;
    }
    let mut jobs: Vec<(&[u32], &mut [Pair])> = rows
        .chunks(per)
        .zip(std::iter::once(&mut *out).chain(spare.iter_mut().map(|h| &mut h[..])))
        .collect();
    each(threads, &mut jobs, |(r, h)| sum(r, h));
    for h in &spare[..parts - 1] {
        for &f in &cols {
            let (o, h) = (
                &mut out[f * HIST..(f + 1) * HIST],
                &h[f * HIST..(f + 1) * HIST],
            );
            for (o, h) in o.iter_mut().zip(h) {
                *o = add(*o, *h);
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// A large node's histogram is the plain per-bin sum, bit for bit the same on any thread
    /// count, and inactive features are left alone.
    #[test]
    fn histograms_sum_rows_the_same_on_any_thread_count() {
        let (n, nf) = (40_000, 12);
        let mut rng = Rng::new(3);
        let x: Vec<f32> = (0..n * nf)
            .map(|i| {
                if i % 97 == 0 {
                    f32::NAN
                } else {
                    rng.normal() as f32
                }
            })
            .collect();
        let all: Vec<usize> = (0..n).collect();
        let b = Binned::new(&x, nf, &all, 64, 2);
        let stats: Vec<[f32; 2]> = (0..n)
            .map(|_| [rng.normal() as f32, rng.uniform() as f32])
            .collect();
        let rows: Vec<u32> = (0..n as u32).filter(|r| r % 3 != 1).collect();
        let mut active = vec![true; nf];
        active[5] = false;
        let mut want = vec![[0f64; 2]; nf * HIST];
        for &r in &rows {
            for f in (0..nf).filter(|&f| active[f]) {
                let s = stats[r as usize];
                let slot = &mut want[f * HIST + b.get(r as usize, f) as usize];
                *slot = add(*slot, [s[0] as f64, s[1] as f64]);
            }
        }
        let mut first = None;
        for threads in [1, 2, 3] {
            let mut h = vec![[7.0; 2]; nf * HIST];
            build(&b, &rows, &stats, &active, &mut h, threads, &mut Vec::new());
            assert!(h[5 * HIST..6 * HIST].iter().all(|p| *p == [7.0; 2]));
            let d = h
                .iter()
                .zip(&want)
                .enumerate()
                .filter(|(i, _)| active[i / HIST])
                .map(|(_, (a, b))| (a[0] - b[0]).abs().max((a[1] - b[1]).abs()))
                .fold(0f64, f64::max);
            assert!(d < 1e-9, "threads {threads}: {d}");
            match &first {
                None => first = Some(h),
                Some(f) => assert!(*f == h, "threads {threads} differ from 1"),
            }
        }
    }
}
