//! Native evaluation of dense networks: ONNX graphs made only of dense layers (`MatMul` /
//! `Gemm` with constant weights), element-wise arithmetic with constants (standardisation:
//! `Add`/`Sub`/`Mul`/`Div`), activations (`Relu`, `LeakyRelu`, `Sigmoid`, `Tanh`, `Elu`, `Selu`,
//! `Softmax`), `Concat` of per-event vectors (a PNN's features + mass), shape no-ops (`Identity`,
//! `Cast`, `Flatten`, `Reshape` of one row) and the label tail skl2onnx appends to classifiers
//! (`ArgMax` -> `ArrayFeatureExtractor` over the class labels).
//!
//! At load the graph becomes a straight program over per-event vectors: weights are packed in
//! column blocks so the inner loops keep their accumulators in registers (AVX+FMA when the CPU
//! has them, detected once; batches of eight rows on AVX-512, where each weight load serves
//! the eight rows 32 columns at a time, with bit-identical results; and whole spans of 64
//! events held feature-major on AVX2 and AVX-512, `wide`, six outputs of all 64 events per
//! inner loop, again bit-identical), and every intermediate
//! value has a fixed place in a per-thread scratch arena, so a call allocates nothing. A
//! batch-1 call of an 80-100-100-1 MLP is bound by streaming its 75 kB of weights from L2
//! (they do not fit L1); behind a ReLU the weight rows of zero inputs are skipped, and it takes
//! about 0.9 us on a 2.45 GHz Zen 3 core (0.72 us on the AVX-512 EPYC of bench_cxx). Graphs with
//! anything else are not recognised ([`recognise`] says why) and [`super::open`] gives them to
//! ONNX Runtime or tract.
//!
//! Results agree with ONNX Runtime within float rounding (sums are accumulated in a different
//! order); the tests hold them to 1e-5.
//!
//! Here: the program's types, the engine and its calls. `build` turns a graph into the program;
//! `kernels` evaluates it; `grad` differentiates it (exact gradients for explanations).
//!
//! Particle-cloud networks (ParticleNet's EdgeConv blocks: k nearest neighbours, gathered edge
//! features, pointwise convolutions, masks) have their own evaluator: `edgeconv` recognises
//! them (every node of the graph accounted for, or refused), `edgeconv_run` evaluates them
//! event by event with the pointwise convolutions of `gemm`, whose SIMD level is chosen at
//! run time like the dense kernels'.
//!
//! 1-D convolutional networks (DeepBoostedJet: ResNet-style blocks of convolutions with batch
//! norm and residual additions, global average pooling, dense head) and recurrent taggers
//! (DeepJet: pointwise convolutions into LSTMs, dense head; DeepDoubleX: pointwise convolutions
//! into GRUs beside a flattened input, dense head) have a third: `cnn` recognises them,
//! `cnn_run` evaluates a group of events together, each convolution one product of `gemm` over
//! the group's unrolled input, each recurrent step one product for the group's events (`lstm`,
//! `gru`; `rnn` holds what they share).

mod build;
mod cnn;
mod cnn_run;
mod denormals;
mod edgeconv;
mod edgeconv_run;
mod events;
mod gemm;
mod grad;
mod graph;
mod gru;
mod kernels;
mod layers;
mod lstm;
mod rnn;
mod wide;

pub use cnn_run::{recognise_graph as recognise_cnn, CnnEngine};
pub use edgeconv_run::{recognise_graph as recognise_edgeconv, EdgeConvEngine};
pub use grad::{Backprop, Grads, Target};

use super::{Engine, EngineError, Model, ModelInfo, Tensor};
use crate::parts;
use build::build;
use kernels::{run_tile, Simd};
#[cfg(target_arch = "x86_64")]
use kernels::{tile_avx512, tile_fma};
use std::cell::RefCell;

/// Rows evaluated together (the arena holds this many rows of every value).
const TILE: usize = 8;

/// Where a per-event value lives in the arena: `TILE` rows of `width` floats from `off * TILE`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Slot {
    off: usize,
    width: usize,
}

impl Slot {
    fn range(&self) -> std::ops::Range<usize> {
        self.off * TILE..(self.off + self.width) * TILE
    }

    fn overlaps(&self, o: &Slot) -> bool {
        self.off < o.off + o.width && o.off < self.off + self.width
    }
}

/// How the caller holds a batch's inputs (in `info().inputs` order, `width` values a row):
/// the tile loop reads them through this.
pub(super) trait Inputs: Sync {
    /// Whether dense layers may read the rows where the caller holds them.
    const ROWS: bool;
    /// Input `k`'s rows `r0..r0 + rows` where they lie (only for [`Inputs::ROWS`]).
    fn rows(&self, k: usize, r0: usize, rows: usize, width: usize) -> &[f32];
    /// Copies input `k`'s rows `r0..r0 + rows` into `out`, row-major (`AVX`: the CPU has AVX).
    fn copy<const AVX: bool>(
        &self,
        k: usize,
        r0: usize,
        rows: usize,
        width: usize,
        out: &mut [f32],
    );
    /// Copies input `k`'s events `r0..r0 + wide::SPAN` into `out` feature-major: value `j` of
    /// event `r0 + e` at `j * SPAN + e`.
    fn copy_span(&self, k: usize, r0: usize, width: usize, out: &mut [f32]);
    /// Asks the CPU to bring input `k`'s rows `r0..r0 + rows` (at most the batch) into its caches.
    fn prefetch(&self, k: usize, r0: usize, rows: usize, width: usize);
}

/// Row-major inputs: `batch x width` values each.
impl Inputs for [&[f32]] {
    const ROWS: bool = true;

    #[inline(always)]
    fn rows(&self, k: usize, r0: usize, rows: usize, width: usize) -> &[f32] {
        &self[k][r0 * width..(r0 + rows) * width]
    }

    #[inline(always)]
    fn copy<const AVX: bool>(
        &self,
        k: usize,
        r0: usize,
        rows: usize,
        width: usize,
        out: &mut [f32],
    ) {
        out.copy_from_slice(self.rows(k, r0, rows, width));
    }

    #[inline(always)]
    fn copy_span(&self, k: usize, r0: usize, width: usize, out: &mut [f32]) {
        let x = self.rows(k, r0, wide::SPAN, width);
        for (e, row) in x.chunks_exact(width).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                out[j * wide::SPAN + e] = v;
            }
        }
    }

    #[inline(always)]
    fn prefetch(&self, k: usize, r0: usize, rows: usize, width: usize) {
        prefetch(self[k].get(r0 * width..(r0 + rows) * width));
    }
}

/// Column-major inputs: per input, one slice per value of the row (`width` of them), each
/// `batch` long (decoded branches, read in place).
impl Inputs for [Vec<&[f32]>] {
    const ROWS: bool = false;

    fn rows(&self, _: usize, _: usize, _: usize, _: usize) -> &[f32] {
        &[]
    }

    #[inline(always)]
    fn copy<const AVX: bool>(
        &self,
        k: usize,
        r0: usize,
        rows: usize,
        width: usize,
        out: &mut [f32],
    ) {
        let cols = &self[k];
        let mut j = 0;
        #[cfg(target_arch = "x86_64")]
        if AVX && rows == TILE {
            // Eight columns of a full tile at a time: an 8 x 8 block turned in registers.
            while j + 8 <= width {
                let block: [&[f32]; 8] = std::array::from_fn(|i| &cols[j + i][r0..r0 + TILE]);
                // SAFETY: `AVX` is set only inside `tile_fma` and `tile_avx512`, which run
                // only where `Simd::detect` found AVX.
                unsafe { transpose8(block, out, j, width) };
                j += 8;
            }
        }
        for (j, c) in cols.iter().enumerate().skip(j) {
            for (r, &x) in c[r0..r0 + rows].iter().enumerate() {
                out[r * width + j] = x;
            }
        }
    }

    #[inline(always)]
    fn copy_span(&self, k: usize, r0: usize, _: usize, out: &mut [f32]) {
        for (c, o) in self[k].iter().zip(out.chunks_exact_mut(wide::SPAN)) {
            o.copy_from_slice(&c[r0..r0 + wide::SPAN]);
        }
    }

    #[inline(always)]
    fn prefetch(&self, k: usize, r0: usize, rows: usize, _: usize) {
        for c in &self[k] {
            prefetch(c.get(r0..r0 + rows));
        }
    }
}

/// Writes the 8 x 8 block `cols` (eight columns of eight rows each) into columns
/// `j..j + 8` of the eight rows of `out` (`width` values a row).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn transpose8(cols: [&[f32]; 8], out: &mut [f32], j: usize, width: usize) {
    use std::arch::x86_64::*;
    // SAFETY: each column slice holds 8 values (cut so by the caller), read unaligned.
    let c: [__m256; 8] = std::array::from_fn(|i| unsafe { _mm256_loadu_ps(cols[i][..8].as_ptr()) });
    // Pairs of columns interleaved, then quadruples, then the 128-bit halves: row r.
    let t = [
        _mm256_unpacklo_ps(c[0], c[1]),
        _mm256_unpackhi_ps(c[0], c[1]),
        _mm256_unpacklo_ps(c[2], c[3]),
        _mm256_unpackhi_ps(c[2], c[3]),
        _mm256_unpacklo_ps(c[4], c[5]),
        _mm256_unpackhi_ps(c[4], c[5]),
        _mm256_unpacklo_ps(c[6], c[7]),
        _mm256_unpackhi_ps(c[6], c[7]),
    ];
    let q = [
        _mm256_shuffle_ps::<0x44>(t[0], t[2]),
        _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
        _mm256_shuffle_ps::<0x44>(t[1], t[3]),
        _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
        _mm256_shuffle_ps::<0x44>(t[4], t[6]),
        _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
        _mm256_shuffle_ps::<0x44>(t[5], t[7]),
        _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
    ];
    for r in 0..4 {
        let lo = _mm256_permute2f128_ps::<0x20>(q[r], q[r + 4]);
        let hi = _mm256_permute2f128_ps::<0x31>(q[r], q[r + 4]);
        let (a, b) = (r * width + j, (r + 4) * width + j);
        // SAFETY: both destinations are 8-value slices of `out` (bounds-checked cuts).
        unsafe {
            _mm256_storeu_ps(out[a..a + 8].as_mut_ptr(), lo);
            _mm256_storeu_ps(out[b..b + 8].as_mut_ptr(), hi);
        }
    }
}

#[derive(Debug, Clone)]
enum Operand {
    Value(Slot),
    /// One value per column (a single constant repeated), repeated for each of a tile's
    /// [`TILE`] rows: a tile's operand is one contiguous run, like a value's.
    Const(Vec<f32>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Act {
    Relu,
    LeakyRelu(f32),
    Sigmoid,
    Tanh,
    Elu(f32),
    Selu(f32, f32),
}

/// A dense layer, weights packed for the kernel.
#[derive(Debug, Clone)]
struct Dense {
    k: usize,
    n: usize,
    /// Column block widths for the axpy kernel, each a multiple of 8 (full blocks, then one
    /// narrower block for the remaining columns, padded to 8); empty: the dot kernel (few
    /// outputs).
    blocks: Vec<usize>,
    /// axpy: per block, `k` rows of its width (padding columns zero); dot: `n` rows of `k`
    /// weights (transposed).
    w: Vec<f32>,
    bias: Vec<f32>,
    /// The input is a ReLU's (about half of it exactly zero) and every weight is finite, so
    /// single rows skip the weights of zero inputs: those terms add exactly nothing.
    skip_zeros: bool,
}

#[derive(Debug, Clone)]
enum Op {
    Copy {
        src: Slot,
        dst: Slot,
        /// Column in dst.
        at: usize,
    },
    Dense {
        src: Slot,
        dst: Slot,
        layer: Dense,
    },
    Bin {
        a: Operand,
        b: Operand,
        dst: Slot,
        op: BinOp,
    },
    Act {
        src: Slot,
        dst: Slot,
        act: Act,
    },
    Softmax {
        src: Slot,
        dst: Slot,
    },
    ArgMax {
        src: Slot,
        dst: Slot,
    },
    Gather {
        src: Slot,
        dst: Slot,
        table: Vec<f32>,
    },
}

impl Op {
    /// The values it reads.
    fn sources(&self) -> Vec<Slot> {
        match self {
            Op::Copy { src, .. }
            | Op::Dense { src, .. }
            | Op::Act { src, .. }
            | Op::Softmax { src, .. }
            | Op::ArgMax { src, .. }
            | Op::Gather { src, .. } => vec![*src],
            Op::Bin { a, b, .. } => [a, b]
                .into_iter()
                .filter_map(|o| match o {
                    Operand::Value(s) => Some(*s),
                    Operand::Const(_) => None,
                })
                .collect(),
        }
    }

    fn dst(&self) -> Slot {
        match self {
            Op::Copy { dst, .. }
            | Op::Dense { dst, .. }
            | Op::Bin { dst, .. }
            | Op::Act { dst, .. }
            | Op::Softmax { dst, .. }
            | Op::ArgMax { dst, .. }
            | Op::Gather { dst, .. } => *dst,
        }
    }
}

struct Output {
    name: String,
    slot: Slot,
    /// Dimensions after the batch.
    row_shape: Vec<usize>,
}

/// A recognised dense network, ready to run. `Sync`: the program is read-only, scratch is
/// per thread.
pub struct NativeEngine {
    pub info: ModelInfo,
    /// Graph inputs in `info.inputs` order.
    inputs: Vec<Slot>,
    ops: Vec<Op>,
    outputs: Vec<Output>,
    /// Arena floats per row.
    arena: usize,
    /// Per input: whether it is copied into the arena. One that only dense layers read whole
    /// (a network fed by raw branches) is read where the caller holds it: the rows of a tile
    /// are laid out alike there.
    staged: Vec<bool>,
    /// Per op: for a dense layer reading an input that is not staged, that input.
    direct: Vec<Option<usize>>,
    simd: Simd,
    /// The spans' packed weights, where the CPU has AVX and FMA (used at those levels).
    wide: Option<wide::Wide>,
    summary: String,
    /// Batches of at least 2 x `SPLIT_MIN` rows are split across this many threads.
    pub threads: usize,
}

const SPLIT_MIN: usize = 4096;

/// Whether a graph is a dense network the native evaluator runs: `Ok(())`, or why not.
pub fn recognise(model: &Model) -> Result<(), String> {
    build(model.proto(), model.info()).map(|_| ())
}

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

impl NativeEngine {
    /// Loads a dense network; [`EngineError::Unsupported`] (saying which node) for any other
    /// graph.
    pub fn load(model: &Model) -> Result<Self, EngineError> {
        let info = model.info().clone();
        let (inputs, ops, outputs, arena) =
            build(model.proto(), &info).map_err(|msg| EngineError::Unsupported {
                path: info.path.clone(),
                msg: format!("not a dense network for the native evaluator: {msg}"),
            })?;
        let layers: Vec<String> = std::iter::once(
            inputs
                .iter()
                .map(|s| s.width.to_string())
                .collect::<Vec<_>>()
                .join("+"),
        )
        .chain(ops.iter().filter_map(|o| match o {
            Op::Dense { layer, .. } => Some(layer.n.to_string()),
            _ => None,
        }))
        .collect();
        let whole = |op: &Op, i: &Slot| matches!(op, Op::Dense { src, .. } if src == i);
        let staged: Vec<bool> = inputs
            .iter()
            .map(|i| {
                outputs.iter().any(|o| o.slot.overlaps(i))
                    || ops
                        .iter()
                        .any(|op| !whole(op, i) && op.sources().iter().any(|s| s.overlaps(i)))
            })
            .collect();
        let direct = ops
            .iter()
            .map(|op| (0..inputs.len()).find(|&k| !staged[k] && whole(op, &inputs[k])))
            .collect();
        let simd = Simd::detect();
        let wide = (Simd::available() >= Simd::Fma).then(|| wide::Wide::new(&ops, &outputs));
        Ok(NativeEngine {
            info,
            inputs,
            ops,
            outputs,
            arena,
            staged,
            direct,
            simd,
            wide,
            threads: crate::parts::cores(),
            summary: format!("dense {}, {}", layers.join("-"), simd.name()),
        })
    }

    fn path(&self) -> std::path::PathBuf {
        self.info.path.clone()
    }

    /// Output names in graph order.
    pub fn output_names(&self) -> impl Iterator<Item = &str> {
        self.outputs.iter().map(|o| o.name.as_str())
    }

    /// Values per event of output `i`.
    pub fn output_width(&self, i: usize) -> usize {
        self.outputs.get(i).map_or(0, |o| o.slot.width)
    }

    /// What is wrong with input `input` (`*`: the inputs as a whole).
    fn input_error(&self, input: &str, msg: String) -> EngineError {
        EngineError::Input {
            path: self.path(),
            input: input.to_string(),
            msg,
        }
    }

    /// Whether `given` inputs are as many as the model takes.
    fn check_count(&self, given: usize) -> Result<(), EngineError> {
        if given == self.inputs.len() {
            return Ok(());
        }
        Err(self.input_error(
            "*",
            format!(
                "{given} inputs given, the model takes {}",
                self.inputs.len()
            ),
        ))
    }

    /// Values per event of each input, in `info().inputs` order.
    pub fn input_widths(&self) -> impl Iterator<Item = usize> + '_ {
        self.inputs.iter().map(|s| s.width)
    }

    /// The allocation-free path: `inputs` in `info().inputs` order, each `batch x width`
    /// row-major; writes output `output` (`batch x output_width(output)`) into `out`.
    pub fn run_into(
        &self,
        inputs: &[&[f32]],
        batch: usize,
        output: usize,
        out: &mut [f32],
    ) -> Result<(), EngineError> {
        let slot = self.output_room(output, batch, out.len())?;
        let bad = |input: &str, msg: String| self.input_error(input, msg);
        self.check_count(inputs.len())?;
        for ((x, s), p) in inputs.iter().zip(&self.inputs).zip(&self.info.inputs) {
            if x.len() != batch * s.width {
                return Err(bad(
                    &p.name,
                    format!(
                        "{} values for {batch} events of {} ({} expected)",
                        x.len(),
                        s.width,
                        batch * s.width
                    ),
                ));
            }
        }
        self.eval(inputs, batch, &mut [(slot, out)]);
        Ok(())
    }

    /// [`NativeEngine::run_into`] with the inputs as columns (per input, one slice per value
    /// of a row, each `batch` long), on the calling thread.
    pub fn run_columns_into(
        &self,
        inputs: &[Vec<&[f32]>],
        batch: usize,
        output: usize,
        out: &mut [f32],
    ) -> Result<(), EngineError> {
        let slot = self.output_room(output, batch, out.len())?;
        self.check_columns(inputs, batch)?;
        self.eval(inputs, batch, &mut [(slot, out)]);
        Ok(())
    }

    /// Output `output`'s place, if `room` values hold it for `batch` events.
    fn output_room(&self, output: usize, batch: usize, room: usize) -> Result<Slot, EngineError> {
        let o = self.outputs.get(output).ok_or_else(|| EngineError::Run {
            path: self.path(),
            msg: format!("no output {output} ({} outputs)", self.outputs.len()),
        })?;
        if room != batch * o.slot.width {
            return Err(EngineError::Run {
                path: self.path(),
                msg: format!(
                    "output '{}': room for {room} values, {batch} events need {}",
                    o.name,
                    batch * o.slot.width
                ),
            });
        }
        Ok(o.slot)
    }

    /// Whether columns `inputs` are one per value of each input's row, each `batch` long.
    fn check_columns(&self, inputs: &[Vec<&[f32]>], batch: usize) -> Result<(), EngineError> {
        let bad = |input: &str, msg: String| self.input_error(input, msg);
        self.check_count(inputs.len())?;
        for ((cols, s), p) in inputs.iter().zip(&self.inputs).zip(&self.info.inputs) {
            if cols.len() != s.width {
                return Err(bad(
                    &p.name,
                    format!("{} columns given, a row has {} values", cols.len(), s.width),
                ));
            }
            if let Some(c) = cols.iter().find(|c| c.len() != batch) {
                return Err(bad(
                    &p.name,
                    format!("a column of {} values for {batch} events", c.len()),
                ));
            }
        }
        Ok(())
    }

    /// Runs checked inputs, copying each requested value out.
    fn eval<I: Inputs + ?Sized>(&self, inputs: &I, batch: usize, outs: &mut [(Slot, &mut [f32])]) {
        denormals::flushed(|| self.eval_flushed(inputs, batch, outs))
    }

    fn eval_flushed<I: Inputs + ?Sized>(
        &self,
        inputs: &I,
        batch: usize,
        outs: &mut [(Slot, &mut [f32])],
    ) {
        let done = self.eval_spans(inputs, batch, outs);
        self.with_arena(self.arena * TILE, |arena| {
            for r0 in (done..batch).step_by(TILE) {
                let rows = TILE.min(batch - r0);
                self.prefetch_next(inputs, r0 + TILE, TILE, batch);
                self.tile(arena, inputs, r0, rows);
                for (s, out) in outs.iter_mut() {
                    let w = s.width;
                    out[r0 * w..(r0 + rows) * w]
                        .copy_from_slice(&arena[s.off * TILE..s.off * TILE + rows * w]);
                }
            }
        });
    }

    /// The whole spans of 64 events at the start of the batch, on AVX2 or AVX-512 (`wide`);
    /// returns how many events they covered.
    fn eval_spans<I: Inputs + ?Sized>(
        &self,
        inputs: &I,
        batch: usize,
        outs: &mut [(Slot, &mut [f32])],
    ) -> usize {
        #[cfg(target_arch = "x86_64")]
        if let (Simd::Avx512 | Simd::Fma, Some(w)) = (self.simd, &self.wide) {
            let spans = batch / wide::SPAN;
            self.with_arena(self.arena * wide::SPAN, |arena| {
                for r0 in (0..spans).map(|i| i * wide::SPAN) {
                    self.prefetch_next(inputs, r0 + wide::SPAN, wide::SPAN, batch);
                    // SAFETY: `simd` is at most what the CPU reports (Simd::detect at load).
                    unsafe {
                        if self.simd == Simd::Avx512 {
                            wide::span_avx512(self, w, arena, inputs, r0)
                        } else {
                            wide::span_fma(self, w, arena, inputs, r0)
                        }
                    };
                    for (s, out) in outs.iter_mut() {
                        wide::put_rows(arena, *s, out, r0);
                    }
                }
            });
            return spans * wide::SPAN;
        }
        0
    }

    /// The inputs of the up to `rows` events from `r0` (the next tile or span), on their way
    /// from memory while the current one runs (a batch streams through once: 25% of a
    /// 64-input layer's time waited on it).
    fn prefetch_next<I: Inputs + ?Sized>(&self, inputs: &I, r0: usize, rows: usize, batch: usize) {
        if r0 < batch {
            for (k, s) in self.inputs.iter().enumerate() {
                inputs.prefetch(k, r0, rows.min(batch - r0), s.width);
            }
        }
    }

    fn with_arena<R>(&self, need: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
        SCRATCH.with(|s| match s.try_borrow_mut() {
            Ok(mut v) => {
                if v.len() < need {
                    v.resize(need, 0.0);
                }
                f(&mut v[..need])
            }
            // Only reachable re-entrantly; stay correct.
            Err(_) => f(&mut vec![0f32; need]),
        })
    }

    fn tile<I: Inputs + ?Sized>(&self, arena: &mut [f32], inputs: &I, r0: usize, rows: usize) {
        #[cfg(target_arch = "x86_64")]
        match self.simd {
            // SAFETY: `simd` is at most what the CPU reports (Simd::detect at load).
            // AVX-512 pays off for full tiles (eight rows share each weight load); a single
            // event stays on the AVX kernels, which skip the zero inputs behind a ReLU.
            Simd::Avx512 if rows == TILE => {
                return unsafe { tile_avx512(self, arena, inputs, r0, rows) }
            }
            Simd::Avx512 | Simd::Fma => return unsafe { tile_fma(self, arena, inputs, r0, rows) },
            Simd::Portable => {}
        }
        run_tile::<false, false, I>(self, arena, inputs, r0, rows);
    }
}

/// Asks the CPU to bring `x` into its caches (x86-64; elsewhere nothing).
#[inline(always)]
fn prefetch(x: Option<&[f32]>) {
    #[cfg(target_arch = "x86_64")]
    for line in x.unwrap_or_default().chunks(16) {
        // SAFETY: SSE is part of x86-64; a prefetch reads nothing and cannot fault.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast(),
            )
        };
    }
}

impl NativeEngine {
    /// Runs `batch` rows held as `inputs` (checked), split across the threads: `part` gives a
    /// run's rows of the inputs.
    fn run_parts<I: Inputs + ?Sized, P: std::ops::Deref<Target = I> + Send>(
        &self,
        batch: usize,
        part: impl Fn(std::ops::Range<usize>) -> P,
    ) -> Vec<Tensor> {
        let mut data: Vec<Vec<f32>> = self
            .outputs
            .iter()
            .map(|o| vec![0f32; batch * o.slot.width])
            .collect();
        let runs = parts::ranges(batch, self.threads, SPLIT_MIN);
        let mut cuts: Vec<_> = self
            .outputs
            .iter()
            .zip(data.iter_mut())
            .map(|(o, d)| parts::cut(d, o.slot.width, &runs).into_iter())
            .collect();
        let items: Vec<_> = runs
            .iter()
            .map(|r| {
                let want: Vec<(Slot, &mut [f32])> = cuts
                    .iter_mut()
                    .zip(&self.outputs)
                    .map(|(c, o)| (o.slot, c.next().unwrap_or_default()))
                    .collect();
                (part(r.clone()), r.len(), want)
            })
            .collect();
        parts::map_all(items, |(xs, n, mut want)| self.eval(&*xs, n, &mut want));
        self.outputs
            .iter()
            .zip(data)
            .map(|(o, d)| {
                let mut shape = vec![batch];
                shape.extend(&o.row_shape);
                Tensor::new(o.name.clone(), shape, d)
            })
            .collect()
    }
}

impl Engine for NativeEngine {
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, EngineError> {
        let ordered = self.info.check_inputs(inputs)?;
        let batch = ordered.first().map_or(0, |t| t.shape[0]);
        Ok(self.run_parts(batch, |r| {
            ordered
                .iter()
                .zip(&self.inputs)
                .map(|(x, i)| &x.data[r.start * i.width..r.end * i.width])
                .collect::<Vec<&[f32]>>()
        }))
    }

    fn reads_columns(&self) -> bool {
        true
    }

    fn run_columns(
        &self,
        inputs: &[Vec<&[f32]>],
        batch: usize,
    ) -> Result<Vec<Tensor>, EngineError> {
        self.check_columns(inputs, batch)?;
        Ok(self.run_parts(batch, |r| {
            inputs
                .iter()
                .map(|cols| cols.iter().map(|c| &c[r.clone()]).collect())
                .collect::<Vec<Vec<&[f32]>>>()
        }))
    }

    fn describe(&self) -> String {
        format!(
            "native dense ({}) on {} (xxh64 {})",
            self.summary,
            self.info.path.display(),
            self.info.hash
        )
    }

    fn info(&self) -> &ModelInfo {
        &self.info
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx_build;
    use testutil::max_diff;

    /// A dense network of the given widths with fixed pseudo-random weights, `act` between the
    /// layers and standardisation in front (as `hepml export` writes them, but with a scalar
    /// mean). Also for `grad`'s tests.
    pub(super) fn network(
        dir: &std::path::Path,
        widths: &[usize],
        act: &str,
    ) -> std::path::PathBuf {
        network_with(dir, widths, act, "Sigmoid")
    }

    /// [`network`] with the last layer's activation `last`.
    fn network_with(
        dir: &std::path::Path,
        widths: &[usize],
        act: &str,
        last: &str,
    ) -> std::path::PathBuf {
        let mut next = testutil::uniform_f32(0x9E37_79B9_7F4A_7C15);
        let layers = widths
            .windows(2)
            .map(|w| {
                let wt = (0..w[0] * w[1]).map(|_| next()).collect();
                let b = (0..w[1]).map(|_| next()).collect();
                (w[0], w[1], wt, b)
            })
            .collect();
        let n = widths[0];
        let model = onnx_build::Dense {
            input: "x".into(),
            output: "y".into(),
            layers,
            hidden: act.into(),
            final_act: last.into(),
            metadata: vec![],
            // One mean for every column (a scalar constant, broadcast) and one scale per
            // column: both kinds of constant operand.
            standardise: Some((vec![0.25], (0..n).map(|j| 1.5 + 0.1 * j as f32).collect())),
        };
        let path = dir.join(format!("{act}-{widths:?}-{last}.onnx"));
        std::fs::write(&path, model.to_bytes()).unwrap();
        path
    }

    /// y = w_n (... relu(w_1 x)) with no biases or final activation: one input, one output,
    /// a layer per weight (for checks of tiny values).
    pub(super) fn scalar_chain(dir: &std::path::Path, weights: &[f32]) -> std::path::PathBuf {
        let model = onnx_build::Dense {
            input: "x".into(),
            output: "y".into(),
            layers: weights
                .iter()
                .map(|w| (1, 1, vec![*w], vec![0.0]))
                .collect(),
            hidden: "Relu".into(),
            final_act: String::new(),
            metadata: vec![],
            standardise: None,
        };
        let path = dir.join(format!("chain-{weights:?}.onnx"));
        std::fs::write(&path, model.to_bytes()).unwrap();
        path
    }

    /// An input that only dense layers read is read where the caller holds it, not copied
    /// into the arena; one a standardisation reads is copied. The in-place rows are each
    /// tile's own: y = 2 relu(0.5 x) exactly over 37 rows (four full tiles and a part).
    #[test]
    fn inputs_only_dense_layers_read_are_not_staged() {
        let dir = tempfile::tempdir().unwrap();
        let raw = scalar_chain(dir.path(), &[0.5, 2.0]);
        let raw = NativeEngine::load(&Model::read(&raw).unwrap()).unwrap();
        assert_eq!((raw.staged.clone(), raw.direct[0]), (vec![false], Some(0)));
        let std = network(dir.path(), &[3, 4, 1], "Relu");
        let std = NativeEngine::load(&Model::read(&std).unwrap()).unwrap();
        assert_eq!(std.staged, vec![true]);
        assert!(std.direct.iter().all(Option::is_none));
        let x: Vec<f32> = (0..37).map(|i| i as f32 - 18.0).collect();
        let y = raw
            .run(&[Tensor::new("x", vec![37, 1], x.clone())])
            .unwrap();
        let want: Vec<f32> = x.iter().map(|v| 2.0 * (0.5 * v).max(0.0)).collect();
        assert_eq!(y[0].data, want);
    }

    /// The columns of `x` (row-major, `w` values a row).
    fn columns(x: &[f32], w: usize) -> Vec<Vec<f32>> {
        (0..w)
            .map(|j| x.iter().skip(j).step_by(w).copied().collect())
            .collect()
    }

    /// Inputs given as columns (read in place) give the rows' results to the bit, for a
    /// staged input (standardisation in front) and one the first layer reads directly, in one
    /// tile, in parts and split across threads; columns that do not fit are refused.
    #[test]
    fn columns_give_the_same_values_as_rows() {
        let dir = tempfile::tempdir().unwrap();
        for (path, w) in [
            (network(dir.path(), &[7, 24, 40, 3], "Relu"), 7),
            (network(dir.path(), &[20, 16, 1], "Tanh"), 20),
            (scalar_chain(dir.path(), &[0.5, 2.0]), 1),
        ] {
            let mut e = NativeEngine::load(&Model::read(&path).unwrap()).unwrap();
            e.threads = 2;
            for batch in [1, 9, 2 * SPLIT_MIN + 3] {
                let x: Vec<f32> = (0..batch * w)
                    .map(|i| ((i * 7919) % 1000) as f32 / 150.0 - 3.0)
                    .collect();
                let rows = e.run(&[Tensor::new("x", vec![batch, w], x.clone())]);
                let cols = columns(&x, w);
                let refs: Vec<&[f32]> = cols.iter().map(Vec::as_slice).collect();
                let by_cols = e.run_columns(std::slice::from_ref(&refs), batch).unwrap();
                assert_eq!(by_cols, rows.unwrap(), "{path:?} batch {batch}");
                let short = e.run_columns(&[refs[1..].to_vec()], batch).unwrap_err();
                assert!(short.to_string().contains("columns given"), "{short}");
                let long = e.run_columns(&[refs], batch - 1).unwrap_err();
                assert!(long.to_string().contains("a column of"), "{long}");
            }
        }
    }

    /// The evaluation runs with denormals flushed to zero (see `denormals`), batch 1 on the
    /// calling thread and a split batch on several: 1e-30 x 1e-10 (a denormal) comes out as 0.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn evaluation_flushes_denormals() {
        let dir = tempfile::tempdir().unwrap();
        let path = scalar_chain(dir.path(), &[1e-10]);
        let mut e = NativeEngine::load(&Model::read(&path).unwrap()).unwrap();
        e.threads = 2;
        assert!(
            std::hint::black_box(1e-30f32) * 1e-10 > 0.0,
            "a denormal outside"
        );
        for batch in [1, 4 * SPLIT_MIN] {
            let x = Tensor::new("x", vec![batch, 1], vec![1e-30; batch]);
            let y = e.run(&[x]).unwrap().remove(0).data;
            assert_eq!(y, vec![0f32; batch], "batch {batch}");
        }
    }

    /// Every SIMD level, forced one at a time, against the portable (scalar) kernels, which are
    /// themselves held to tract: full tiles of eight rows (AVX-512's 32-column steps, full and
    /// masked), the four-row and single-row remainders, batch 1, the dot form with and without a
    /// remainder of inputs, the spans of 64 events on AVX2 and AVX-512 (to the bit as the row
    /// tiles: every batch's first row equals batch 1's) with a softmax across outputs. A level this CPU lacks cannot
    /// run here: the test says so on stdout ("skipped level ...") and checks the others; the
    /// level the run-time dispatch picks is always checked.
    #[test]
    fn simd_levels_agree() {
        let dir = tempfile::tempdir().unwrap();
        let have = Simd::available();
        let levels = [Simd::Fma, Simd::Avx512];
        for level in levels.iter().filter(|l| **l > have) {
            println!("skipped level {}: CPU lacks it", level.name());
        }
        let mut checked = vec![Simd::Portable];
        // The first row's outputs at each level, from batch 1 (single-row kernels): every
        // batch starts with the same row, and the tiles' kernels sum it in the same order.
        let mut first_row: Vec<(Simd, Vec<f32>)> = Vec::new();
        for (widths, act, last) in [
            (&[80, 100, 100, 1][..], "Relu", "Sigmoid"),
            (&[7, 24, 40, 3][..], "Tanh", "Sigmoid"),
            (&[5, 200, 1][..], "Relu", "Sigmoid"),
            // A dot-form layer (few outputs) over inputs that are not a multiple of 8.
            (&[13, 3][..], "Tanh", "Sigmoid"),
            // x * sigmoid(x): an elementwise product of two values.
            (&[9, 16, 2][..], "Swish", "Sigmoid"),
            // Classes: a softmax across each event's outputs (down the rows of a span).
            (&[6, 20, 13, 5][..], "Relu", "Softmax"),
        ] {
            let model = Model::read(&network_with(dir.path(), widths, act, last)).unwrap();
            let mut e = NativeEngine::load(&model).unwrap();
            let dispatched = e.simd;
            assert_eq!(dispatched, Simd::detect(), "load keeps the detected level");
            let tract = crate::tract::TractEngine::load(&model).unwrap();
            // 150: two spans of 64 events on AVX-512, then row tiles for the other 22.
            for batch in [1, 5, 37, 150] {
                let x: Vec<f32> = (0..batch * widths[0])
                    .map(|i| ((i * 7919) % 1000) as f32 / 150.0 - 3.0)
                    .collect();
                let input = [Tensor::new("x", vec![batch, widths[0]], x)];
                let mut run = |level: Simd| {
                    e.simd = level;
                    let rows = e.run(&input).unwrap().remove(0).data;
                    // The same rows given as columns: the same values, to the bit.
                    let w = widths[0];
                    let cols = columns(&input[0].data, w);
                    let refs: Vec<&[f32]> = cols.iter().map(Vec::as_slice).collect();
                    let by_cols = e.run_columns(&[refs], batch).unwrap().remove(0);
                    assert_eq!(
                        by_cols.data, rows,
                        "{widths:?} batch {batch}: columns vs rows"
                    );
                    rows
                };
                let at = format!("{widths:?} batch {batch}");
                let portable = run(Simd::Portable);
                let outw = portable.len() / batch;
                let mut same_first_row = |level: Simd, got: &[f32]| {
                    if batch == 1 {
                        first_row.retain(|(l, _)| *l != level);
                        first_row.push((level, got.to_vec()));
                    } else if let Some((_, row)) = first_row.iter().find(|(l, _)| *l == level) {
                        assert_eq!(
                            &got[..outw],
                            &row[..],
                            "{at}: {} row 0 vs batch 1",
                            level.name()
                        );
                    }
                };
                same_first_row(Simd::Portable, &portable);
                let reference = tract.run(&input).unwrap().remove(0).data;
                let d = max_diff(&portable, &reference);
                assert!(d <= 1e-5, "{at}: portable vs tract {d}");
                assert_eq!(run(dispatched).len(), portable.len());
                let mut fma = None;
                for &level in levels.iter().filter(|l| **l <= have) {
                    let got = run(level);
                    same_first_row(level, &got);
                    let d = max_diff(&got, &portable);
                    assert!(d <= 1e-5, "{at}: {} vs portable {d}", level.name());
                    // The FMA levels compute the same operations in the same order.
                    match &fma {
                        None => fma = Some(got),
                        Some(f) => assert_eq!(&got, f, "{at}: {} vs avx+fma", level.name()),
                    }
                    if !checked.contains(&level) {
                        checked.push(level);
                    }
                }
            }
        }
        let names: Vec<&str> = checked.iter().map(|l| l.name()).collect();
        println!(
            "checked levels: {} (dispatch picks {})",
            names.join(", "),
            Simd::detect().name()
        );
    }

    /// A NaN or an infinity in one event's inputs comes out of a span (AVX2 and AVX-512, the
    /// ReLU done in the dense layer's registers) as it comes out of that event alone, and leaves the
    /// other events of its span untouched.
    #[test]
    fn spans_keep_nan_and_infinities_as_single_events_do() {
        let dir = tempfile::tempdir().unwrap();
        let model = Model::read(&network_with(
            dir.path(),
            &[4, 16, 16, 2],
            "Relu",
            "Softmax",
        ))
        .unwrap();
        let mut e = NativeEngine::load(&model).unwrap();
        let batch = 128;
        for level in [Simd::Fma, Simd::Avx512] {
            if level > Simd::available() {
                println!("skipped level {}: CPU lacks it", level.name());
                continue;
            }
            e.simd = level;
            let mut x: Vec<f32> = (0..batch * 4)
                .map(|i| (i % 17) as f32 / 5.0 - 1.5)
                .collect();
            let mut clean = vec![0f32; batch * 2];
            e.run_into(&[&x], batch, 0, &mut clean).unwrap();
            x[3 * 4 + 1] = f32::NAN;
            x[70 * 4] = f32::INFINITY;
            x[71 * 4 + 2] = f32::NEG_INFINITY;
            let mut all = vec![0f32; batch * 2];
            e.run_into(&[&x], batch, 0, &mut all).unwrap();
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>();
            for r in 0..batch {
                let mut one = [0f32; 2];
                e.run_into(&[&x[r * 4..(r + 1) * 4]], 1, 0, &mut one)
                    .unwrap();
                let at = format!("{} event {r}", level.name());
                assert_eq!(bits(&all[r * 2..r * 2 + 2]), bits(&one), "{at}");
            }
            assert!(all[6].is_nan() && all[7].is_nan(), "a NaN input stays NaN");
            for r in (0..batch).filter(|r| ![3, 70, 71].contains(r)) {
                assert_eq!(all[r * 2..r * 2 + 2], clean[r * 2..r * 2 + 2], "event {r}");
            }
        }
    }
}
