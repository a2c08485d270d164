//! ONNX `LSTM` for the graph evaluators: reading the node (every attribute and input accounted
//! for; what is not implemented is refused by name) and running the recurrence for a group of
//! events at once.
//!
//! Implemented: one direction (`forward` or `reverse`), `hidden_size`, `clip`, the gate
//! activation `f` = `Sigmoid` or `HardSigmoid` (Keras's `recurrent_activation`; alpha/beta as
//! in `rnn`) with `g` = `h` = `Tanh`, bias present or absent, initial states absent or zeros
//! of a computed shape (PyTorch's `ConstantOfShape`), peepholes absent or zero, layout 0.
//! Refused: `bidirectional`, `input_forget`, any other activation, `sequence_lens`, other
//! initial states, nonzero peepholes.
//!
//! With `x_t` the input and `h`, `c` the states (zero at the start), gates in ONNX's order
//! i, o, f, c: `i = f(x W_i + h R_i + b_i)`, `o = f(..._o)`, `f = f(..._f)`, `c~ = tanh(..._c)`,
//! `c = f c + i c~`, `h = o tanh(c)`, `b = Wb + Rb`; `clip` bounds every pre-activation. Each
//! step is one matrix product `[W | R] [x_t; h]` (`gemm`, the events as columns), then the
//! gates elementwise with the branch-free `exp`/`tanh` of `rnn`.

use super::gemm::{conv, Block, Packed};
use super::graph::{label, Graph, Node, A};
use super::kernels::{madd, Simd};
use super::rnn::{read_common, read_io, sigmoid, tanh, zero_state, Common, Gate, Io};

/// A recognised LSTM layer.
#[derive(Debug)]
pub(super) struct Lstm {
    pub hidden: usize,
    /// Input channels.
    pub input: usize,
    pub reverse: bool,
    /// Bound of the pre-activations (infinite: none).
    pub clip: f32,
    pub f: Gate,
    /// `[W | R]`: `4H x (I + H)` with bias `Wb + Rb`.
    pub wr: Packed,
}

/// Reads the `LSTM` node `n`: the layer and its input `X` (`[T, N, I]`). The caller checks
/// which outputs are used.
pub(super) fn read_lstm(g: &mut Graph, n: &Node) -> Result<(Lstm, String), String> {
    let at = label(n);
    let Common {
        hidden,
        reverse,
        clip,
        f,
    } = read_common(n, 3, &[("input_forget", A::Int(0))])?;
    let Io {
        x,
        hidden: h,
        input: i,
        w,
        r,
        b,
    } = read_io(g, n, 4, hidden, 8)?;
    zero_state(g, n, 6, "initial_c")?;
    if let Some(p) = n.input.get(7).filter(|s| !s.is_empty()) {
        let (pd, pv) = g.weights(p)?;
        if pd != [1, 3 * h as i64] || pv.iter().any(|&v| v != 0.0) {
            return Err(format!("node {at}: peepholes (P) not supported"));
        }
    }
    let (wb, rb) = b.split_at(4 * h);
    let bx: Vec<f32> = wb.iter().zip(rb).map(|(a, b)| a + b).collect();
    let k = i + h;
    let mut wr = vec![0f32; 4 * h * k];
    for (o, row) in wr.chunks_exact_mut(k).enumerate() {
        row[..i].copy_from_slice(&w[o * i..(o + 1) * i]);
        row[i..].copy_from_slice(&r[o * h..(o + 1) * h]);
    }
    Ok((
        Lstm {
            hidden: h,
            input: i,
            reverse,
            clip,
            f,
            wr: Packed::new(4 * h, k, &wr, &bx),
        },
        x,
    ))
}

/// Per-thread buffers of the recurrence.
#[derive(Default)]
pub(super) struct Scratch {
    /// `[x_t; h]`: `I + H` rows of the group's events.
    xh: Vec<f32>,
    gates: Vec<f32>,
    c: Vec<f32>,
}

/// A group's sequences: row `i` (input channel) holds event `e`'s step `t` at `x[i * ld + e *
/// steps + t]`.
pub(super) struct Seqs<'x> {
    pub x: &'x [f32],
    pub ld: usize,
    pub steps: usize,
    pub events: usize,
}

impl Lstm {
    /// Runs the recurrence over the sequences `x`; `h`: the final state (`H` rows of
    /// `x.events` columns).
    pub(super) fn run(&self, simd: Simd, x: &Seqs, h: &mut [f32], s: &mut Scratch) {
        let b = x.events;
        assert!(h.len() >= self.hidden * b);
        assert!(self.input == 0 || x.x.len() >= (self.input - 1) * x.ld + b * x.steps);
        #[cfg(target_arch = "x86_64")]
        match simd {
            // SAFETY: `simd` is at most what the CPU reports (Simd::detect at load).
            Simd::Avx512 => return unsafe { run_avx512(self, simd, x, h, s) },
            Simd::Fma => return unsafe { run_fma(self, simd, x, h, s) },
            Simd::Portable => {}
        }
        run_impl::<false>(self, simd, x, h, s)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,fma")]
unsafe fn run_fma(l: &Lstm, simd: Simd, x: &Seqs, h: &mut [f32], s: &mut Scratch) {
    run_impl::<true>(l, simd, x, h, s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,fma,avx512f")]
unsafe fn run_avx512(l: &Lstm, simd: Simd, x: &Seqs, h: &mut [f32], s: &mut Scratch) {
    run_impl::<true>(l, simd, x, h, s)
}

#[inline(always)]
fn run_impl<const FMA: bool>(l: &Lstm, simd: Simd, x: &Seqs, h: &mut [f32], s: &mut Scratch) {
    // One instance per gate activation, so the loops over the events carry no branch.
    match l.f {
        Gate::Sigmoid => recur::<FMA, _>(l, simd, x, h, s, sigmoid::<FMA>),
        Gate::HardSigmoid { alpha, beta } => recur::<FMA, _>(l, simd, x, h, s, move |v| {
            madd::<FMA>(alpha, v, beta).clamp(0.0, 1.0)
        }),
    }
}

#[inline(always)]
fn recur<const FMA: bool, F: Fn(f32) -> f32 + Copy>(
    l: &Lstm,
    simd: Simd,
    x: &Seqs,
    h: &mut [f32],
    s: &mut Scratch,
    f: F,
) {
    let (hn, ni, b, steps) = (l.hidden, l.input, x.events, x.steps);
    s.xh.clear();
    s.xh.resize((ni + hn) * b, 0.0);
    s.gates.resize(4 * hn * b, 0.0);
    s.c.clear();
    s.c.resize(hn * b, 0.0);
    let cl = l.clip;
    for step in 0..steps {
        let t = if l.reverse { steps - 1 - step } else { step };
        for (i, row) in s.xh[..ni * b].chunks_exact_mut(b).enumerate() {
            let xi = &x.x[i * x.ld..];
            for (e, v) in row.iter_mut().enumerate() {
                *v = xi[e * steps + t];
            }
        }
        let blk = Block {
            x: &s.xh,
            ldx: b,
            ncols: b,
        };
        conv(simd, &l.wr, blk, &mut s.gates, b, false);
        let hs = &mut s.xh[ni * b..];
        for j in 0..hn {
            let row = |g: usize| &s.gates[(g * hn + j) * b..(g * hn + j + 1) * b];
            let (gi, go, gf, gc) = (row(0), row(1), row(2), row(3));
            let cj = &mut s.c[j * b..(j + 1) * b];
            let hj = &mut hs[j * b..(j + 1) * b];
            for e in 0..b {
                let i = f(gi[e].clamp(-cl, cl));
                let o = f(go[e].clamp(-cl, cl));
                let fg = f(gf[e].clamp(-cl, cl));
                let cand = tanh::<FMA>(gc[e].clamp(-cl, cl));
                let c = madd::<FMA>(fg, cj[e], i * cand);
                cj[e] = c;
                hj[e] = o * tanh::<FMA>(c);
            }
        }
    }
    h[..hn * b].copy_from_slice(&s.xh[ni * b..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ONNX equations in double precision for one event: `x` is `steps x i` (step-major),
    /// weights as ONNX stores them (`W`: `4H x I`, `R`: `4H x H`, `B`: `8H`).
    #[allow(clippy::too_many_arguments)]
    fn reference(
        x: &[f32],
        i: usize,
        hn: usize,
        w: &[f32],
        r: &[f32],
        bias: &[f32],
        reverse: bool,
        clip: f64,
        f: Gate,
    ) -> Vec<f64> {
        let steps = x.len() / i;
        let fa = |v: f64| f.exact(v);
        let dot = |m: &[f32], row: usize, v: &[f64], n: usize| -> f64 {
            (0..n).map(|k| m[row * n + k] as f64 * v[k]).sum()
        };
        let (mut h, mut c) = (vec![0f64; hn], vec![0f64; hn]);
        for s in 0..steps {
            let t = if reverse { steps - 1 - s } else { s };
            let xt: Vec<f64> = x[t * i..(t + 1) * i].iter().map(|&v| v as f64).collect();
            let pre = |gate: usize, j: usize| {
                let row = gate * hn + j;
                let v = dot(w, row, &xt, i)
                    + dot(r, row, &h, hn)
                    + bias[row] as f64
                    + bias[4 * hn + row] as f64;
                v.clamp(-clip, clip)
            };
            let mut hn_new = vec![0f64; hn];
            for j in 0..hn {
                let (ig, og, fg) = (fa(pre(0, j)), fa(pre(1, j)), fa(pre(2, j)));
                let cand = pre(3, j).tanh();
                c[j] = fg * c[j] + ig * cand;
                hn_new[j] = og * c[j].tanh();
            }
            h = hn_new;
        }
        h
    }

    /// Every SIMD level against the double-precision equations (both directions, a clip,
    /// both gate activations; groups that leave partial column panels); the FMA levels give
    /// the same bits. A level this CPU lacks is reported ("skipped level ...") and not run.
    #[test]
    fn lstm_levels_agree() {
        let have = Simd::available();
        for level in [Simd::Fma, Simd::Avx512].iter().filter(|l| **l > have) {
            println!("skipped level {}: CPU lacks it", level.name());
        }
        let mut next = testutil::uniform_f32(0x2545_F491_4F6C_DD1D);
        let (ni, hn, steps) = (5, 11, 7);
        let w: Vec<f32> = (0..4 * hn * ni).map(|_| next()).collect();
        let r: Vec<f32> = (0..4 * hn * hn).map(|_| next()).collect();
        let bias: Vec<f32> = (0..8 * hn).map(|_| next()).collect();
        let hard = Gate::HardSigmoid {
            alpha: 0.2,
            beta: 0.5,
        };
        for (reverse, clip, f) in [
            (true, f32::INFINITY, hard),
            (false, f32::INFINITY, Gate::Sigmoid),
            (false, 0.6, hard),
            (true, 1.5, Gate::Sigmoid),
        ] {
            let k = ni + hn;
            let mut wr = vec![0f32; 4 * hn * k];
            for o in 0..4 * hn {
                wr[o * k..o * k + ni].copy_from_slice(&w[o * ni..(o + 1) * ni]);
                wr[o * k + ni..(o + 1) * k].copy_from_slice(&r[o * hn..(o + 1) * hn]);
            }
            let bx: Vec<f32> = (0..4 * hn).map(|o| bias[o] + bias[4 * hn + o]).collect();
            let l = Lstm {
                hidden: hn,
                input: ni,
                reverse,
                clip,
                f,
                wr: Packed::new(4 * hn, k, &wr, &bx),
            };
            for b in [1, 6, 37] {
                // The evaluator's layout: row i, column e * steps + t.
                let ld = b * steps;
                let x: Vec<f32> = (0..ni * ld).map(|_| next() * 2.0).collect();
                let want: Vec<Vec<f64>> = (0..b)
                    .map(|e| {
                        let xe: Vec<f32> = (0..steps)
                            .flat_map(|t| (0..ni).map(move |i| (i, t)))
                            .map(|(i, t)| x[i * ld + e * steps + t])
                            .collect();
                        reference(&xe, ni, hn, &w, &r, &bias, reverse, clip as f64, f)
                    })
                    .collect();
                let seqs = Seqs {
                    x: &x,
                    ld,
                    steps,
                    events: b,
                };
                let mut fma: Option<Vec<f32>> = None;
                for level in [Simd::Portable, Simd::Fma, Simd::Avx512] {
                    if level > have {
                        continue;
                    }
                    let mut h = vec![0f32; hn * b];
                    l.run(level, &seqs, &mut h, &mut Scratch::default());
                    for e in 0..b {
                        for j in 0..hn {
                            let d = (h[j * b + e] as f64 - want[e][j]).abs();
                            assert!(d < 2e-6, "rev {reverse} b {b} {}: {d}", level.name());
                        }
                    }
                    if level != Simd::Portable {
                        match &fma {
                            None => fma = Some(h),
                            Some(f) => assert_eq!(&h, f, "{}", level.name()),
                        }
                    }
                }
            }
        }
    }
}
