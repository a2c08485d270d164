//! ONNX `GRU` for the graph evaluators: reading the node (every attribute and input accounted
//! for; what is not implemented is refused by name) and running the recurrence for a batch of
//! events at once.
//!
//! Implemented: one direction (`forward` or `reverse`), `hidden_size`, `linear_before_reset` 0
//! and 1, `clip`, the gate activation `f` = `Sigmoid` or `HardSigmoid` (Keras's
//! `recurrent_activation` default; `activation_alpha`/`activation_beta` consumed in the order
//! of the activations that take them, as ONNX Runtime does) with `g` = `Tanh`, bias `B` present
//! or absent, layout 0. Refused: `bidirectional`, any other activation, `sequence_lens`,
//! an `initial_h` other than zeros of a computed shape, layout 1.
//!
//! With `x_t` the input and `h` the state (zero at the start), gates in ONNX's order z, r, h:
//! `z = f(x W_z + h R_z + b_z)`, `r = f(x W_r + h R_r + b_r)`, `h~ = tanh(x W_h + (r h) R_h +
//! Rb_h + Wb_h)` (linear_before_reset 0) or `tanh(x W_h + Wb_h + r (h R_h + Rb_h))` (1), `h =
//! (1 - z) h~ + z h`; `clip` bounds every pre-activation. The input projections of all steps
//! are one pointwise convolution (the caller's, with [`Gru::wx`]); each step is then one or two
//! matrix products of the recurrent weights with the batch's states (`gemm`, the events as
//! columns) and the gates, elementwise, with branch-free `exp`/`tanh` that vectorise.

use super::gemm::{conv, Block, Packed};
use super::graph::{label, Graph, Node, A};
use super::kernels::{madd, Simd};
use super::rnn::{read_common, read_io, sigmoid, tanh, Common, Gate, Io};

/// A recognised GRU layer.
#[derive(Debug)]
pub(super) struct Gru {
    pub hidden: usize,
    pub reverse: bool,
    pub linear_before_reset: bool,
    /// Bound of the pre-activations (infinite: none).
    pub clip: f32,
    pub f: Gate,
    /// The input projection `3H x I` of the gates z, r, h with bias `Wb` plus `Rb_z`, `Rb_r`
    /// and, unless linear_before_reset, `Rb_h`.
    pub wx: Packed,
    /// The recurrent weights: `R_z; R_r` (`2H x H`, no bias) without linear_before_reset, all
    /// of `R` (`3H x H`, bias `0, 0, Rb_h`) with it.
    pub rec: Packed,
    /// `R_h` (`H x H`) without linear_before_reset.
    pub rh: Option<Packed>,
}

/// Reads the `GRU` node `n`: the layer and its input `X` (`[T, N, I]`). The caller checks that
/// only `Y_h` is used.
pub(super) fn read_gru(g: &mut Graph, n: &Node) -> Result<(Gru, String), String> {
    let at = label(n);
    let Common {
        hidden,
        reverse,
        clip,
        f,
    } = read_common(n, 2, &[("linear_before_reset", A::Any)])?;
    let linear_before_reset = match n.attribute.iter().find(|a| a.name == "linear_before_reset") {
        None => false,
        Some(a) if a.i == 0 || a.i == 1 => a.i == 1,
        Some(a) => return Err(format!("node {at}: linear_before_reset {}", a.i)),
    };
    let Io {
        x,
        hidden: h,
        input: i,
        w,
        r,
        b,
    } = read_io(g, n, 3, hidden, 6)?;
    let (wb, rb) = b.split_at(3 * h);
    let mut bx: Vec<f32> = wb.to_vec();
    for k in 0..2 * h {
        bx[k] += rb[k];
    }
    if !linear_before_reset {
        for k in 2 * h..3 * h {
            bx[k] += rb[k];
        }
    }
    let wx = Packed::new(3 * h, i, &w, &bx);
    let (rec, rh) = if linear_before_reset {
        let mut bias = vec![0f32; 3 * h];
        bias[2 * h..].copy_from_slice(&rb[2 * h..]);
        (Packed::new(3 * h, h, &r, &bias), None)
    } else {
        let rec = Packed::new(2 * h, h, &r[..2 * h * h], &vec![0.0; 2 * h]);
        let rh = Packed::new(h, h, &r[2 * h * h..], &vec![0.0; h]);
        (rec, Some(rh))
    };
    Ok((
        Gru {
            hidden: h,
            reverse,
            linear_before_reset,
            clip,
            f,
            wx,
            rec,
            rh,
        },
        x,
    ))
}

/// Per-thread buffers of the recurrence.
#[derive(Default)]
pub(super) struct Scratch {
    rec: Vec<f32>,
    z: Vec<f32>,
    r: Vec<f32>,
    hh: Vec<f32>,
}

impl Gru {
    /// Runs the recurrence over `steps` steps for `b` events. `gx`: the input projections
    /// (`3H` rows of `steps * b` columns, step-major: column `t * b + n`); `h`: the final state
    /// (`H` rows of `b`).
    pub(super) fn run(
        &self,
        simd: Simd,
        gx: &[f32],
        steps: usize,
        b: usize,
        h: &mut [f32],
        s: &mut Scratch,
    ) {
        let hn = self.hidden;
        assert!(gx.len() >= 3 * hn * steps * b && h.len() >= hn * b);
        #[cfg(target_arch = "x86_64")]
        match simd {
            // SAFETY: `simd` is at most what the CPU reports (Simd::detect at load).
            Simd::Avx512 => return unsafe { run_avx512(self, simd, gx, steps, b, h, s) },
            Simd::Fma => return unsafe { run_fma(self, simd, gx, steps, b, h, s) },
            Simd::Portable => {}
        }
        run_impl::<false>(self, simd, gx, steps, b, h, s)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,fma")]
unsafe fn run_fma(
    g: &Gru,
    simd: Simd,
    gx: &[f32],
    steps: usize,
    b: usize,
    h: &mut [f32],
    s: &mut Scratch,
) {
    run_impl::<true>(g, simd, gx, steps, b, h, s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,fma,avx512f")]
unsafe fn run_avx512(
    g: &Gru,
    simd: Simd,
    gx: &[f32],
    steps: usize,
    b: usize,
    h: &mut [f32],
    s: &mut Scratch,
) {
    run_impl::<true>(g, simd, gx, steps, b, h, s)
}

#[inline(always)]
fn run_impl<const FMA: bool>(
    g: &Gru,
    simd: Simd,
    gx: &[f32],
    steps: usize,
    b: usize,
    h: &mut [f32],
    s: &mut Scratch,
) {
    match g.f {
        Gate::Sigmoid => recur::<FMA, _>(g, simd, gx, steps, b, h, s, sigmoid::<FMA>),
        Gate::HardSigmoid { alpha, beta } => {
            recur::<FMA, _>(g, simd, gx, steps, b, h, s, move |x| {
                madd::<FMA>(alpha, x, beta).clamp(0.0, 1.0)
            })
        }
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn recur<const FMA: bool, F: Fn(f32) -> f32 + Copy>(
    g: &Gru,
    simd: Simd,
    gx: &[f32],
    steps: usize,
    b: usize,
    h: &mut [f32],
    s: &mut Scratch,
    f: F,
) {
    let hn = g.hidden;
    let ld = steps * b;
    let h = &mut h[..hn * b];
    h.fill(0.0);
    s.rec.resize(g.rec.co * b, 0.0);
    s.z.resize(hn * b, 0.0);
    s.r.resize(hn * b, 0.0);
    s.hh.resize(hn * b, 0.0);
    let c = g.clip;
    for step in 0..steps {
        let t = if g.reverse { steps - 1 - step } else { step };
        let gx_row = |row: usize| &gx[row * ld + t * b..row * ld + (t + 1) * b];
        let hs = Block {
            x: h,
            ldx: b,
            ncols: b,
        };
        conv(simd, &g.rec, hs, &mut s.rec, b, false);
        // z and r; without linear_before_reset r is applied to the state at once.
        for j in 0..hn {
            let (zx, rx) = (gx_row(j), gx_row(hn + j));
            let zr = &s.rec[j * b..(j + 1) * b];
            let rr = &s.rec[(hn + j) * b..(hn + j + 1) * b];
            let zo = &mut s.z[j * b..(j + 1) * b];
            for ((o, x), y) in zo.iter_mut().zip(zx).zip(zr) {
                *o = f((x + y).clamp(-c, c));
            }
            let ro = &mut s.r[j * b..(j + 1) * b];
            let hj = &h[j * b..(j + 1) * b];
            for (((o, x), y), hv) in ro.iter_mut().zip(rx).zip(rr).zip(hj) {
                let r = f((x + y).clamp(-c, c));
                *o = if g.linear_before_reset { r } else { r * hv };
            }
        }
        // The candidate's recurrent term: (r h) R_h, or r (h R_h + Rb_h).
        let hh: &[f32] = match &g.rh {
            Some(rh) => {
                let rs = Block {
                    x: &s.r,
                    ldx: b,
                    ncols: b,
                };
                conv(simd, rh, rs, &mut s.hh, b, false);
                &s.hh
            }
            None => {
                for (o, (r, y)) in
                    s.hh.iter_mut()
                        .zip(s.r.iter().zip(&s.rec[2 * hn * b..3 * hn * b]))
                {
                    *o = r * y;
                }
                &s.hh
            }
        };
        for j in 0..hn {
            let hx = gx_row(2 * hn + j);
            let hr = &hh[j * b..(j + 1) * b];
            let zj = &s.z[j * b..(j + 1) * b];
            let hj = &mut h[j * b..(j + 1) * b];
            for (((hv, x), y), z) in hj.iter_mut().zip(hx).zip(hr).zip(zj) {
                let cand = tanh::<FMA>((x + y).clamp(-c, c));
                *hv = (1.0 - z) * cand + z * *hv;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ONNX equations in double precision for one event: `x` is `steps x i` (step-major),
    /// weights as ONNX stores them (`W`: `3H x I`, `R`: `3H x H`, `B`: `6H`).
    #[allow(clippy::too_many_arguments)]
    fn reference(
        x: &[f32],
        i: usize,
        hn: usize,
        w: &[f32],
        r: &[f32],
        bias: &[f32],
        lbr: bool,
        reverse: bool,
        clip: f64,
        f: Gate,
    ) -> Vec<f64> {
        let steps = x.len() / i;
        let fa = |v: f64| f.exact(v);
        let cl = |v: f64| v.clamp(-clip, clip);
        let dot = |m: &[f32], row: usize, v: &[f64], n: usize| -> f64 {
            (0..n).map(|k| m[row * n + k] as f64 * v[k]).sum()
        };
        let mut h = vec![0f64; hn];
        for s in 0..steps {
            let t = if reverse { steps - 1 - s } else { s };
            let xt: Vec<f64> = x[t * i..(t + 1) * i].iter().map(|&v| v as f64).collect();
            let g = |gate: usize, j: usize, hv: &[f64]| {
                let row = gate * hn + j;
                dot(w, row, &xt, i) + bias[row] as f64 + dot(r, row, hv, hn)
            };
            let z: Vec<f64> = (0..hn)
                .map(|j| fa(cl(g(0, j, &h) + bias[3 * hn + j] as f64)))
                .collect();
            let rg: Vec<f64> = (0..hn)
                .map(|j| fa(cl(g(1, j, &h) + bias[4 * hn + j] as f64)))
                .collect();
            let cand: Vec<f64> = (0..hn)
                .map(|j| {
                    let row = 2 * hn + j;
                    let xw = dot(w, row, &xt, i) + bias[row] as f64;
                    let v = if lbr {
                        xw + rg[j] * (dot(r, row, &h, hn) + bias[3 * hn + row] as f64)
                    } else {
                        let rh: Vec<f64> = (0..hn).map(|k| rg[k] * h[k]).collect();
                        xw + dot(r, row, &rh, hn) + bias[3 * hn + row] as f64
                    };
                    cl(v).tanh()
                })
                .collect();
            for j in 0..hn {
                h[j] = (1.0 - z[j]) * cand[j] + z[j] * h[j];
            }
        }
        h
    }

    /// Every SIMD level against the double-precision equations (both linear_before_reset
    /// modes, both directions, a clip, both gate activations; batches that leave partial
    /// column panels); the FMA levels give the same bits. A level this CPU lacks is reported
    /// ("skipped level ...") and not run.
    #[test]
    fn gru_levels_agree() {
        let have = Simd::available();
        for level in [Simd::Fma, Simd::Avx512].iter().filter(|l| **l > have) {
            println!("skipped level {}: CPU lacks it", level.name());
        }
        let mut next = testutil::uniform_f32(0x5851_F42D_4C95_7F2D);
        let (i, hn, steps) = (7, 13, 9);
        let w: Vec<f32> = (0..3 * hn * i).map(|_| next()).collect();
        let r: Vec<f32> = (0..3 * hn * hn).map(|_| next()).collect();
        let bias: Vec<f32> = (0..6 * hn).map(|_| next()).collect();
        for (lbr, reverse, clip, f) in [
            (
                false,
                true,
                f32::INFINITY,
                Gate::HardSigmoid {
                    alpha: 0.2,
                    beta: 0.5,
                },
            ),
            (true, false, f32::INFINITY, Gate::Sigmoid),
            (false, false, 0.7, Gate::Sigmoid),
            (
                true,
                true,
                1.5,
                Gate::HardSigmoid {
                    alpha: 0.3,
                    beta: 0.4,
                },
            ),
        ] {
            let (wb, rb) = bias.split_at(3 * hn);
            let mut bx = wb.to_vec();
            for k in 0..3 * hn {
                if k < 2 * hn || !lbr {
                    bx[k] += rb[k];
                }
            }
            let (rec, rh) = if lbr {
                let mut b3 = vec![0f32; 3 * hn];
                b3[2 * hn..].copy_from_slice(&rb[2 * hn..]);
                (Packed::new(3 * hn, hn, &r, &b3), None)
            } else {
                let z = vec![0f32; 2 * hn];
                let rec = Packed::new(2 * hn, hn, &r[..2 * hn * hn], &z);
                (rec, Some(Packed::new(hn, hn, &r[2 * hn * hn..], &z[..hn])))
            };
            let g = Gru {
                hidden: hn,
                reverse,
                linear_before_reset: lbr,
                clip,
                f,
                wx: Packed::new(3 * hn, i, &w, &bx),
                rec,
                rh,
            };
            for b in [1, 5, 21] {
                // Events step-major, as the evaluator lays them out: x[t][n][i].
                let x: Vec<f32> = (0..steps * b * i).map(|_| next() * 2.0).collect();
                let want: Vec<Vec<f64>> = (0..b)
                    .map(|n| {
                        let xe: Vec<f32> = (0..steps)
                            .flat_map(|t| x[(t * b + n) * i..(t * b + n + 1) * i].to_vec())
                            .collect();
                        let c = clip as f64;
                        reference(&xe, i, hn, &w, &r, &bias, lbr, reverse, c, f)
                    })
                    .collect();
                // Channels-first input for the projection: row c, column t * b + n.
                let cols = steps * b;
                let mut xcf = vec![0f32; i * cols];
                for col in 0..cols {
                    for c in 0..i {
                        xcf[c * cols + col] = x[col * i + c];
                    }
                }
                let mut fma: Option<Vec<f32>> = None;
                for level in [Simd::Portable, Simd::Fma, Simd::Avx512] {
                    if level > have {
                        continue;
                    }
                    let mut gx = vec![0f32; 3 * hn * cols];
                    let blk = Block {
                        x: &xcf,
                        ldx: cols,
                        ncols: cols,
                    };
                    conv(level, &g.wx, blk, &mut gx, cols, false);
                    let mut h = vec![0f32; hn * b];
                    g.run(level, &gx, steps, b, &mut h, &mut Scratch::default());
                    for n in 0..b {
                        for j in 0..hn {
                            let d = (h[j * b + n] as f64 - want[n][j]).abs();
                            assert!(d < 2e-6, "lbr {lbr} b {b} {}: {d}", level.name());
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
