//! The native evaluator of recurrent taggers (DeepDoubleX's family, recognised by
//! `recurrent`): a batch is split across threads, and each thread runs its events in groups of
//! up to [`GROUP`] together, with every layer a matrix product over all of them:
//!
//! - a branch's input `[n, T, C]` is laid out channels-first with the group's events as
//!   columns, step-major (column `t * n + e`), so the pointwise convolutions and the GRU's
//!   input projection are each one product over `T * n` columns;
//! - the GRU's recurrence runs step by step for the whole group: each step is a product of the
//!   recurrent weights with the `[H, n]` states (see `gru`), instead of one event at a time;
//! - the branches' outputs are rows of one `[F, n]` block, which the dense layers take as
//!   pointwise convolutions over the events; the softmax closes each event.
//!
//! Batch norm is folded into the convolution (or the projection) after it. Results agree with
//! ONNX Runtime within float rounding; the tests hold them to 1e-5 of the outputs' scale.

use super::events::{batch, in_groups, refusal, softmax, split};
use super::gemm::{conv, Block, Packed};
use super::gru::Scratch as GruScratch;
use super::kernels::Simd;
use super::recurrent::{recognise, Branch, Program};
use crate::{Engine, EngineError, Model, ModelInfo, Tensor};

/// Events evaluated together by one thread (wide enough for full column panels in the
/// recurrence's products, small enough that a group's buffers stay in L2).
const GROUP: usize = 64;

/// A recognised recurrent tagger, ready to run. `Sync`: the program is read-only.
pub struct RecurrentEngine {
    pub info: ModelInfo,
    prog: Program,
    simd: Simd,
    summary: String,
    /// Events of a batch are split across this many threads.
    pub threads: usize,
}

/// Whether a graph is a recurrent tagger this evaluator runs: `Ok(())`, or why not.
pub fn recognise_graph(model: &Model) -> Result<(), String> {
    recognise(model.proto(), model.info()).map(|_| ())
}

impl RecurrentEngine {
    /// Loads a recurrent tagger; [`EngineError::Unsupported`] (naming the first node that does
    /// not fit) for any other graph.
    pub fn load(model: &Model) -> Result<Self, EngineError> {
        let info = model.info().clone();
        let prog = recognise(model.proto(), &info).map_err(refusal(&info, "recurrent"))?;
        let simd = Simd::detect();
        let branches: Vec<String> = prog
            .branches
            .iter()
            .map(|b| match b {
                Branch::Flat { src, .. } => format!("{}x{} flat", src.steps, src.channels),
                Branch::Gru { src, convs, gru } => format!(
                    "{}x{} conv {} GRU {}{}",
                    src.steps,
                    src.channels,
                    convs
                        .iter()
                        .map(|(p, _)| p.co.to_string())
                        .collect::<Vec<_>>()
                        .join("-"),
                    gru.hidden,
                    if gru.reverse { " reverse" } else { "" }
                ),
            })
            .collect();
        let summary = format!(
            "GRU [{}], dense {}, {}",
            branches.join(", "),
            prog.dense
                .iter()
                .map(|(l, _)| l.co.to_string())
                .collect::<Vec<_>>()
                .join("-"),
            simd.name()
        );
        Ok(RecurrentEngine {
            info,
            prog,
            simd,
            summary,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        })
    }

    /// Events `e0..e0 + out.len() / width` into `out`, in groups.
    fn events(&self, xs: &[&Tensor], e0: usize, out: &mut [f32]) {
        let mut s = Scratch::default();
        in_groups(e0, self.prog.out_width(), GROUP, out, |e, o| {
            self.group(&mut s, xs, e, o)
        });
    }

    fn group(&self, s: &mut Scratch, xs: &[&Tensor], e0: usize, out: &mut [f32]) {
        let p = &self.prog;
        let wout = p.out_width();
        let n = out.len() / wout;
        let width: usize = p.branches.iter().map(Branch::width).sum();
        s.feat.resize(width * n, 0.0);
        let mut row = 0;
        for b in &p.branches {
            match b {
                Branch::Flat { src, a, c } => {
                    let (t, ch) = (src.steps, src.channels);
                    let x = &xs[src.input].data[e0 * t * ch..(e0 + n) * t * ch];
                    for (e, xe) in x.chunks_exact(t * ch).enumerate() {
                        for (k, v) in xe.iter().enumerate() {
                            let c0 = k % ch;
                            s.feat[(row + k) * n + e] = a[c0] * v + c[c0];
                        }
                    }
                }
                Branch::Gru { src, convs, gru } => {
                    let (t, ch) = (src.steps, src.channels);
                    let cols = t * n;
                    let x = &xs[src.input].data[e0 * t * ch..(e0 + n) * t * ch];
                    s.a.resize(ch * cols, 0.0);
                    for (e, xe) in x.chunks_exact(t * ch).enumerate() {
                        for (step, xs) in xe.chunks_exact(ch).enumerate() {
                            for (c0, v) in xs.iter().enumerate() {
                                s.a[c0 * cols + step * n + e] = *v;
                            }
                        }
                    }
                    let ls = convs.iter().map(|(l, r)| (l, *r));
                    self.layers(ls.chain([(&gru.wx, false)]), &mut s.a, &mut s.b, cols);
                    let h = &mut s.feat[row * n..(row + gru.hidden) * n];
                    gru.run(self.simd, &s.a, t, n, h, &mut s.gru);
                }
            }
            row += b.width();
        }
        // Dense layers over the events.
        let ls = p.dense.iter().map(|(l, r)| (l, *r));
        self.layers(ls, &mut s.feat, &mut s.a, n);
        for (e, o) in out.chunks_exact_mut(wout).enumerate() {
            for (k, v) in o.iter_mut().enumerate() {
                *v = s.feat[k * n + e];
            }
            if p.softmax {
                softmax(o);
            }
        }
    }

    /// Pointwise convolutions one after the other over `cols` columns, from `a` (where the
    /// result is left) with `b` for the intermediate values.
    fn layers<'p>(
        &self,
        ls: impl Iterator<Item = (&'p Packed, bool)>,
        a: &mut Vec<f32>,
        b: &mut Vec<f32>,
        cols: usize,
    ) {
        for (l, relu) in ls {
            b.resize(l.co * cols, 0.0);
            let blk = Block {
                x: a,
                ldx: cols,
                ncols: cols,
            };
            conv(self.simd, l, blk, b, cols, relu);
            std::mem::swap(a, b);
        }
    }
}

/// Per-thread buffers, grown to the largest group seen.
#[derive(Default)]
struct Scratch {
    feat: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
    gru: GruScratch,
}

impl Engine for RecurrentEngine {
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, EngineError> {
        let xs = self.info.check_inputs(inputs)?;
        let batch = batch(&self.info, &xs)?;
        let w = self.prog.out_width();
        let mut out = vec![0f32; batch * w];
        split(self.threads, w, &mut out, |e0, o| self.events(&xs, e0, o));
        Ok(vec![Tensor::new(
            self.prog.output.clone(),
            vec![batch, w],
            out,
        )])
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
