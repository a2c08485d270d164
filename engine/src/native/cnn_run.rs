//! The native evaluator of 1-D convolutional and recurrent networks (DeepBoostedJet's,
//! DeepJet's and DeepDoubleX's families, recognised by `cnn`): a batch is split across threads,
//! and each thread runs its events in groups, every op over the whole group at once:
//!
//! - each value is laid out channels-first with the group's events side by side (column
//!   `e * L + p` for event `e`, position `p`), so a convolution is one matrix product: its
//!   input is unrolled into `C * k` rows (row `i * k + t` holds channel `i` shifted by tap
//!   `t`, zero where the padding is; the weights' own order), and the pointwise product of
//!   `gemm` runs over all the group's columns;
//! - values whose lives do not overlap share a buffer, so a group's working set stays in L2;
//! - an LSTM or a GRU runs its recurrence over the group's events at once (one product per
//!   step, the events as columns: a group then holds at least 64 events, to fill the kernel's
//!   panels); a GRU's input projections are one product over all steps first (`gru`);
//! - pooling, the dense head (products over the events) and the softmax close each event.
//!
//! Results agree with ONNX Runtime within float rounding; the tests hold them to 1e-5 of the
//! outputs' scale.

use super::cnn::{recognise, Cell, Op, Program, Val};
use super::events::{batch, in_groups, log_softmax, refusal, softmax, split};
use super::gemm::{conv, Block};
use super::gru::Scratch as GruScratch;
use super::kernels::{relu, Simd};
use super::lstm::{Scratch as LstmScratch, Seqs};
use super::rnn;
use crate::{Engine, EngineError, Model, ModelInfo, Tensor};

/// Columns (events x positions) a group aims at: enough for full panels in the products,
/// few enough that a group's values stay in L2.
const COLS: usize = 512;
/// Events a group holds at least when the network has a recurrent layer.
const RECURRENT_EVENTS: usize = 64;

/// A recognised 1-D CNN, ready to run. `Sync`: the program is read-only.
pub struct CnnEngine {
    pub info: ModelInfo,
    prog: Program,
    /// The buffer of each value.
    slot: Vec<usize>,
    slots: usize,
    /// Events evaluated together.
    group: usize,
    simd: Simd,
    summary: String,
    /// Events of a batch are split across this many threads.
    pub threads: usize,
}

/// Whether a graph is a 1-D CNN this evaluator runs: `Ok(())`, or why not.
pub fn recognise_graph(model: &Model) -> Result<(), String> {
    recognise(model.proto(), model.info()).map(|_| ())
}

impl CnnEngine {
    /// Loads a 1-D CNN; [`EngineError::Unsupported`] (naming the first node that does not
    /// fit) for any other graph.
    pub fn load(model: &Model) -> Result<Self, EngineError> {
        let info = model.info().clone();
        let prog = recognise(model.proto(), &info).map_err(refusal(&info, "1-D CNN/RNN"))?;
        let (slot, slots) = plan(&prog);
        let longest = prog.inputs.iter().map(|v| v.l).max().unwrap_or(1);
        // A recurrent layer's products have only the group's events as columns: enough of
        // them to fill the panels (half the speed at 20 events, on DeepJet).
        let (lstms, grus) = prog.cells();
        let group = if lstms + grus > 0 {
            (COLS / longest).max(RECURRENT_EVENTS)
        } else {
            (COLS / longest).max(1)
        };
        let simd = Simd::detect();
        let summary = format!(
            "1-D CNN/RNN, {} convolutions, {lstms} LSTMs, {grus} GRUs over inputs {}, {}",
            prog.convs(),
            prog.inputs
                .iter()
                .map(|v| format!("{}x{}", v.c, v.l))
                .collect::<Vec<_>>()
                .join(" + "),
            simd.name()
        );
        Ok(CnnEngine {
            info,
            prog,
            slot,
            slots,
            group,
            simd,
            summary,
            threads: crate::parts::cores(),
        })
    }

    /// Events `e0..e0 + out.len() / width` into `out`, in groups.
    fn events(&self, xs: &[&Tensor], e0: usize, out: &mut [f32]) {
        let mut s = Scratch::default();
        in_groups(e0, self.prog.out_width(), self.group, out, |e, o| {
            self.run_group(&mut s, xs, e, o)
        });
    }

    /// `n = out.len() / width` events from `e0`.
    fn run_group(&self, s: &mut Scratch, xs: &[&Tensor], e0: usize, out: &mut [f32]) {
        let p = &self.prog;
        let n = out.len() / p.out_width();
        let Scratch {
            bufs,
            col,
            tmp,
            lstm,
            gru,
        } = s;
        bufs.resize_with(self.slots, Vec::new);
        for op in &p.ops {
            let dst = op.dst();
            let dv = p.vals[dst];
            let cols = n * dv.l;
            let mut d = std::mem::take(&mut bufs[self.slot[dst]]);
            d.resize(dv.c * cols, 0.0);
            let buf = |v: &usize| bufs[self.slot[*v]].as_slice();
            match op {
                Op::Load {
                    input,
                    channels_last,
                    ..
                } => {
                    let (c, l) = (dv.c, dv.l);
                    let x = &xs[*input].data[e0 * c * l..(e0 + n) * c * l];
                    for (e, xe) in x.chunks_exact(c * l).enumerate() {
                        if *channels_last {
                            for (t, row) in xe.chunks_exact(c).enumerate() {
                                for (ch, v) in row.iter().enumerate() {
                                    d[ch * cols + e * l + t] = *v;
                                }
                            }
                        } else {
                            for (ch, row) in xe.chunks_exact(l).enumerate() {
                                d[ch * cols + e * l..ch * cols + (e + 1) * l].copy_from_slice(row);
                            }
                        }
                    }
                }
                Op::Affine {
                    src, a, c, relu, ..
                } => {
                    let x = buf(src);
                    for (ch, (o, x)) in d
                        .chunks_exact_mut(cols)
                        .zip(x.chunks_exact(cols))
                        .enumerate()
                    {
                        let (a, c) = (a[ch], c[ch]);
                        for (o, v) in o.iter_mut().zip(x) {
                            let y = a * v + c;
                            *o = if *relu { self::relu(y) } else { y };
                        }
                    }
                }
                Op::Relu { src, alpha, .. } => {
                    let x = buf(src);
                    if *alpha == 0.0 {
                        d.iter_mut().zip(x).for_each(|(o, &v)| *o = relu(v));
                    } else {
                        let a = *alpha;
                        d.iter_mut()
                            .zip(x)
                            .for_each(|(o, &v)| *o = if v < 0.0 { a * v } else { v });
                    }
                }
                Op::Copy { src, .. } => d.copy_from_slice(buf(src)),
                Op::Flatten {
                    src, steps_first, ..
                } => {
                    let Val { c, l, .. } = p.vals[*src];
                    let x = buf(src);
                    // Channel `ch` at position `t` of event `e` is `x[ch * n * l + e * l + t]`;
                    // it goes to row `ch * l + t`, or `t * c + ch`.
                    for (ch, xr) in x.chunks_exact(n * l).enumerate() {
                        for (e, xe) in xr.chunks_exact(l).enumerate() {
                            for (t, v) in xe.iter().enumerate() {
                                let row = if *steps_first { t * c + ch } else { ch * l + t };
                                d[row * n + e] = *v;
                            }
                        }
                    }
                }
                Op::Add { a, b, relu, .. } => {
                    for ((o, x), y) in d.iter_mut().zip(buf(a)).zip(buf(b)) {
                        let v = x + y;
                        *o = if *relu { self::relu(v) } else { v };
                    }
                }
                Op::Conv {
                    src,
                    w,
                    k,
                    pad,
                    stride,
                    relu,
                    ..
                } => {
                    // A pointwise convolution reads its input as it is; any other, unrolled.
                    let x = if (*k, *pad, *stride) == (1, 0, 1) {
                        buf(src)
                    } else {
                        unroll(buf(src), p.vals[*src], n, dv.l, (*k, *pad, *stride), col);
                        col.as_slice()
                    };
                    let blk = Block {
                        x,
                        ldx: cols,
                        ncols: cols,
                    };
                    conv(self.simd, w, blk, &mut d, cols, *relu);
                }
                Op::Pool { src, .. } => {
                    let l = p.vals[*src].l;
                    for (o, x) in d.chunks_exact_mut(n).zip(buf(src).chunks_exact(n * l)) {
                        for (o, xe) in o.iter_mut().zip(x.chunks_exact(l)) {
                            *o = xe.iter().sum::<f32>() / l as f32;
                        }
                    }
                }
                Op::Concat { srcs, .. } => {
                    let mut at = 0;
                    for v in srcs {
                        let x = buf(v);
                        d[at..at + x.len()].copy_from_slice(x);
                        at += x.len();
                    }
                }
                Op::Softmax { src, log, .. } => {
                    let x = buf(src);
                    tmp.resize(dv.c, 0.0);
                    for e in 0..n {
                        for (ch, t) in tmp.iter_mut().enumerate() {
                            *t = x[ch * n + e];
                        }
                        if *log {
                            log_softmax(tmp);
                        } else {
                            softmax(tmp);
                        }
                        for (ch, t) in tmp.iter().enumerate() {
                            d[ch * n + e] = *t;
                        }
                    }
                }
                Op::Sigmoid { src, .. } => {
                    for (o, v) in d.iter_mut().zip(buf(src)) {
                        *o = rnn::sigmoid::<false>(*v);
                    }
                }
                Op::Recurrent {
                    src,
                    cell: Cell::Lstm(m),
                    ..
                } => {
                    let l = p.vals[*src].l;
                    let seqs = Seqs {
                        x: buf(src),
                        ld: n * l,
                        steps: l,
                        events: n,
                    };
                    m.run(self.simd, &seqs, &mut d, lstm);
                }
                Op::Recurrent {
                    src,
                    cell: Cell::Gru(g),
                    ..
                } => {
                    // The input step-major (column `t * n + e`), then its projections.
                    let Val { c, l, .. } = p.vals[*src];
                    let x = buf(src);
                    col.resize(c * n * l, 0.0);
                    for (xr, cr) in x.chunks_exact(n * l).zip(col.chunks_exact_mut(n * l)) {
                        for (e, xe) in xr.chunks_exact(l).enumerate() {
                            for (t, v) in xe.iter().enumerate() {
                                cr[t * n + e] = *v;
                            }
                        }
                    }
                    tmp.resize(g.wx.co * n * l, 0.0);
                    let blk = Block {
                        x: col,
                        ldx: n * l,
                        ncols: n * l,
                    };
                    conv(self.simd, &g.wx, blk, tmp, n * l, false);
                    g.run(self.simd, tmp, l, n, &mut d, gru);
                }
            }
            bufs[self.slot[dst]] = d;
        }
        // The outputs, each event's side by side.
        let w = p.out_width();
        let mut at = 0;
        for (_, v) in &p.outputs {
            let (c, x) = (p.vals[*v].c, &bufs[self.slot[*v]]);
            for (e, o) in out.chunks_exact_mut(w).enumerate() {
                for (ch, o) in o[at..at + c].iter_mut().enumerate() {
                    *o = x[ch * n + e];
                }
            }
            at += c;
        }
    }
}

/// A convolution's input unrolled for `n` events: row `i * k + t`, column `e * lo + q` holds
/// channel `i` of event `e` at position `q * stride + t - pad` (zero outside the sequence).
fn unroll(
    x: &[f32],
    sv: Val,
    n: usize,
    lo: usize,
    (k, pad, stride): (usize, usize, usize),
    col: &mut Vec<f32>,
) {
    let (ci, li) = (sv.c, sv.l);
    let cols = n * lo;
    col.resize(ci * k * cols, 0.0);
    for i in 0..ci {
        let xr = &x[i * n * li..(i + 1) * n * li];
        for t in 0..k {
            let row = &mut col[(i * k + t) * cols..(i * k + t + 1) * cols];
            // Output positions q whose input q * stride + t - pad lies in 0..li.
            let q0 = pad.saturating_sub(t).div_ceil(stride).min(lo);
            let q1 = if li + pad > t {
                ((li + pad - t - 1) / stride + 1).min(lo)
            } else {
                0
            };
            for (xe, oe) in xr.chunks_exact(li).zip(row.chunks_exact_mut(lo)) {
                let q1 = q1.max(q0);
                oe[..q0].fill(0.0);
                oe[q1..].fill(0.0);
                if stride == 1 {
                    let p0 = q0 + t - pad;
                    oe[q0..q1].copy_from_slice(&xe[p0..p0 + (q1 - q0)]);
                } else {
                    for (q, o) in oe[q0..q1].iter_mut().enumerate() {
                        *o = xe[(q0 + q) * stride + t - pad];
                    }
                }
            }
        }
    }
}

/// A buffer for each value: a value's buffer is free again after its last reader, and the
/// graph's outputs keep theirs. The buffer of each value, and how many there are.
fn plan(p: &Program) -> (Vec<usize>, usize) {
    let mut last = vec![0usize; p.vals.len()];
    for (i, op) in p.ops.iter().enumerate() {
        for s in op.srcs() {
            last[s] = i;
        }
    }
    for (_, v) in &p.outputs {
        last[*v] = usize::MAX;
    }
    let mut slot = vec![0usize; p.vals.len()];
    let (mut free, mut slots) = (Vec::new(), 0);
    for (i, op) in p.ops.iter().enumerate() {
        // The destination never shares a buffer with a source of the same op.
        slot[op.dst()] = free.pop().unwrap_or_else(|| {
            slots += 1;
            slots - 1
        });
        let mut srcs = op.srcs();
        srcs.sort_unstable();
        srcs.dedup();
        for s in srcs {
            if last[s] == i {
                free.push(slot[s]);
            }
        }
    }
    (slot, slots)
}

/// Per-thread buffers, grown to the largest group seen.
#[derive(Default)]
struct Scratch {
    bufs: Vec<Vec<f32>>,
    /// A convolution's unrolled input; a GRU's input, step-major.
    col: Vec<f32>,
    /// A softmax's event; a GRU's input projections.
    tmp: Vec<f32>,
    lstm: LstmScratch,
    gru: GruScratch,
}

impl Engine for CnnEngine {
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, EngineError> {
        let xs = self.info.check_inputs(inputs)?;
        let batch = batch(&self.info, &xs)?;
        let w = self.prog.out_width();
        let mut out = vec![0f32; batch * w];
        split(self.threads, w, &mut out, |e0, o| self.events(&xs, e0, o));
        let mut at = 0;
        let mut tensors = Vec::new();
        for (name, v) in &self.prog.outputs {
            let c = self.prog.vals[*v].c;
            let data = out
                .chunks_exact(w)
                .flat_map(|o| o[at..at + c].iter().copied())
                .collect();
            tensors.push(Tensor::new(name.clone(), vec![batch, c], data));
            at += c;
        }
        Ok(tensors)
    }

    fn describe(&self) -> String {
        format!(
            "native ({}) on {} (xxh64 {})",
            self.summary,
            self.info.path.display(),
            self.info.hash
        )
    }

    fn info(&self) -> &ModelInfo {
        &self.info
    }
}
