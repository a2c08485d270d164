//! Pointwise convolutions as matrix products, for the graph evaluators: `out[o][s] = act(b[o] +
//! sum_i w[o][i] x[i][s])` over a channels-first block (rows of a channel, `s` along the
//! points). Weights are packed in groups of `MR` output channels; each step keeps `MR x NR`
//! sums in registers (NR = 16 on AVX+FMA and the portable path, 32 on AVX-512), so a weight is
//! loaded once per NR columns and a column once per MR channels. The SIMD level is the one
//! [`Simd::detect`] picked at load; every level adds in the same order (FMA levels are
//! bit-identical with one another).

use super::kernels::{madd, Simd};

/// Output channels per register block.
const MR: usize = 4;

/// A pointwise convolution's weights, packed: for each group of MR output channels, `ci` rows of
/// MR weights (channels past `co` zero).
#[derive(Debug, Clone)]
pub(super) struct Packed {
    pub co: usize,
    pub ci: usize,
    w: Vec<f32>,
    b: Vec<f32>,
}

impl Packed {
    /// `w`: `co x ci` row-major; `b`: `co` biases.
    pub(super) fn new(co: usize, ci: usize, w: &[f32], b: &[f32]) -> Packed {
        let groups = co.div_ceil(MR);
        let mut p = vec![0f32; groups * ci * MR];
        for o in 0..co {
            for i in 0..ci {
                p[(o / MR) * ci * MR + i * MR + o % MR] = w[o * ci + i];
            }
        }
        let mut bias = b.to_vec();
        bias.resize(groups * MR, 0.0);
        Packed {
            co,
            ci,
            w: p,
            b: bias,
        }
    }
}

impl Packed {
    /// The `co x ci` weights and `co` biases back.
    pub(super) fn unpacked(&self) -> (Vec<f32>, Vec<f32>) {
        let mut w = vec![0f32; self.co * self.ci];
        for o in 0..self.co {
            for i in 0..self.ci {
                w[o * self.ci + i] = self.w[(o / MR) * self.ci * MR + i * MR + o % MR];
            }
        }
        (w, self.b[..self.co].to_vec())
    }
}

/// `x`: `ci` rows of `ncols` values, row stride `ldx`; `out`: `co` rows, stride `ldo`.
pub(super) struct Block<'x> {
    pub x: &'x [f32],
    pub ldx: usize,
    pub ncols: usize,
}

/// `out = act(W x + b)` for one block (see the module header); `relu` applies max(0, .).
pub(super) fn conv(simd: Simd, p: &Packed, x: Block, out: &mut [f32], ldo: usize, relu: bool) {
    assert!(x.ncols <= x.ldx && x.x.len() >= (p.ci.max(1) - 1) * x.ldx + x.ncols);
    assert!(x.ncols <= ldo && out.len() >= (p.co.max(1) - 1) * ldo + x.ncols);
    #[cfg(target_arch = "x86_64")]
    match simd {
        // SAFETY: `simd` is at most what the CPU reports (Simd::detect at load).
        Simd::Avx512 => return unsafe { conv_avx512(p, x, out, ldo, relu) },
        Simd::Fma => return unsafe { conv_fma(p, x, out, ldo, relu) },
        Simd::Portable => {}
    }
    let _ = simd;
    conv_impl::<false, 16>(p, x, out, ldo, relu)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,fma")]
unsafe fn conv_fma(p: &Packed, x: Block, out: &mut [f32], ldo: usize, relu: bool) {
    conv_impl::<true, 16>(p, x, out, ldo, relu)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,fma,avx512f")]
unsafe fn conv_avx512(p: &Packed, x: Block, out: &mut [f32], ldo: usize, relu: bool) {
    conv_impl::<true, 32>(p, x, out, ldo, relu)
}

#[inline(always)]
fn conv_impl<const FMA: bool, const NR: usize>(
    p: &Packed,
    x: Block,
    out: &mut [f32],
    ldo: usize,
    relu: bool,
) {
    let (ci, co) = (p.ci, p.co);
    // The last partial column panel, zero-padded to NR.
    let mut panel = Vec::new();
    let mut s0 = 0;
    while s0 < x.ncols {
        let m = NR.min(x.ncols - s0);
        let (src, ld, at) = if m == NR {
            (x.x, x.ldx, s0)
        } else {
            panel.resize(ci * NR, 0.0);
            for i in 0..ci {
                panel[i * NR..i * NR + m].copy_from_slice(&x.x[i * x.ldx + s0..i * x.ldx + s0 + m]);
            }
            (&panel[..], NR, 0)
        };
        let mut put = |o0: usize, acc: &[[f32; NR]]| {
            for (o, a) in (o0..co).zip(acc) {
                let dst = &mut out[o * ldo + s0..o * ldo + s0 + m];
                if relu {
                    for (d, v) in dst.iter_mut().zip(a) {
                        *d = super::kernels::relu(*v);
                    }
                } else {
                    dst.copy_from_slice(&a[..m]);
                }
            }
        };
        let (groups, mut g) = (co.div_ceil(MR), 0);
        while g < groups {
            let wp = &p.w[g * ci * MR..];
            let bias = &p.b[g * MR..];
            #[cfg(target_arch = "x86_64")]
            if NR == 32 && g + 1 < groups {
                // SAFETY: NR is 32 only in `conv_avx512`, which runs only where `Simd::detect`
                // found AVX-512F.
                put(g * MR, &unsafe {
                    micro8_avx512::<NR>(wp, src, ld, at, ci, bias)
                });
                g += 2;
                continue;
            }
            put(
                g * MR,
                &micro::<FMA, NR>(&wp[..ci * MR], src, ld, at, ci, bias),
            );
            g += 1;
        }
        s0 += NR;
    }
}

/// [`micro`] for two groups of channels at once on AVX-512 (NR = 32): sixteen registers of sums,
/// each column load serving eight channels, and no bounds checks in the loop (the plain form
/// kept four per step). Same operations in the same order: the same bits.
///
/// # Safety
/// The CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn micro8_avx512<const NR: usize>(
    wp: &[f32],
    x: &[f32],
    ld: usize,
    at: usize,
    ci: usize,
    bias: &[f32],
) -> [[f32; NR]; 2 * MR] {
    use std::arch::x86_64::*;
    assert!(NR == 32 && wp.len() >= 2 * ci * MR && bias.len() >= 2 * MR);
    assert!(ci == 0 || x.len() >= (ci - 1) * ld + at + NR);
    let mut acc = [[_mm512_setzero_ps(); 2]; 2 * MR];
    for (a, b) in acc.iter_mut().zip(bias) {
        *a = [_mm512_set1_ps(*b); 2];
    }
    // Group g's weights for input i start at g * ci * MR + i * MR (the packed layout).
    let (w0, w1, xp) = (wp.as_ptr(), wp.as_ptr().wrapping_add(ci * MR), x.as_ptr());
    for i in 0..ci {
        // SAFETY: i < ci, so every read is inside `wp` and `x` (asserted above).
        unsafe {
            let xr = xp.add(i * ld + at);
            let xv = [_mm512_loadu_ps(xr), _mm512_loadu_ps(xr.add(16))];
            for (r, a) in acc.iter_mut().enumerate() {
                let w = if r < MR {
                    w0.add(i * MR + r)
                } else {
                    w1.add(i * MR + r - MR)
                };
                let wv = _mm512_set1_ps(*w);
                a[0] = _mm512_fmadd_ps(wv, xv[0], a[0]);
                a[1] = _mm512_fmadd_ps(wv, xv[1], a[1]);
            }
        }
    }
    let mut out = [[0f32; NR]; 2 * MR];
    for (o, a) in out.iter_mut().zip(&acc) {
        // SAFETY: each row holds NR = 32 values.
        unsafe {
            _mm512_storeu_ps(o.as_mut_ptr(), a[0]);
            _mm512_storeu_ps(o.as_mut_ptr().add(16), a[1]);
        }
    }
    out
}

/// MR channels x NR columns from `x[i * ld + at ..]`.
#[inline(always)]
fn micro<const FMA: bool, const NR: usize>(
    wp: &[f32],
    x: &[f32],
    ld: usize,
    at: usize,
    ci: usize,
    bias: &[f32],
) -> [[f32; NR]; MR] {
    // Four named accumulators: LLVM keeps each in registers (an array of arrays spills).
    let (mut a0, mut a1, mut a2, mut a3) =
        ([bias[0]; NR], [bias[1]; NR], [bias[2]; NR], [bias[3]; NR]);
    for (i, w) in wp.chunks_exact(MR).take(ci).enumerate() {
        let xr: &[f32; NR] = x[i * ld + at..i * ld + at + NR]
            .try_into()
            .unwrap_or(&[0.0; NR]);
        let (w0, w1, w2, w3) = (w[0], w[1], w[2], w[3]);
        for c in 0..NR {
            a0[c] = madd::<FMA>(w0, xr[c], a0[c]);
        }
        for c in 0..NR {
            a1[c] = madd::<FMA>(w1, xr[c], a1[c]);
        }
        for c in 0..NR {
            a2[c] = madd::<FMA>(w2, xr[c], a2[c]);
        }
        for c in 0..NR {
            a3[c] = madd::<FMA>(w3, xr[c], a3[c]);
        }
    }
    [a0, a1, a2, a3]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every SIMD level against a double-precision reference, over widths that leave partial
    /// channel groups and column panels and strides wider than the block; the FMA levels give
    /// the same bits. A level this CPU lacks is reported ("skipped level ...") and not run.
    #[test]
    fn conv_levels_agree() {
        let have = Simd::available();
        for level in [Simd::Fma, Simd::Avx512].iter().filter(|l| **l > have) {
            println!("skipped level {}: CPU lacks it", level.name());
        }
        let mut next = testutil::uniform_f32(0x2545_F491_4F6C_DD1D);
        for (co, ci) in [(1, 3), (5, 23), (48, 11), (64, 96), (130, 128)] {
            let w: Vec<f32> = (0..co * ci).map(|_| next()).collect();
            let b: Vec<f32> = (0..co).map(|_| next()).collect();
            let p = Packed::new(co, ci, &w, &b);
            assert_eq!(p.unpacked(), (w.clone(), b.clone()));
            for (ncols, ldx) in [(1, 1), (7, 9), (16, 16), (33, 40), (128, 128)] {
                let x: Vec<f32> = (0..ci * ldx).map(|_| next() * 4.0).collect();
                let ldo = ncols + 3;
                for relu in [false, true] {
                    let mut want = vec![0f32; co * ldo];
                    for o in 0..co {
                        for s in 0..ncols {
                            let v = (0..ci).fold(b[o] as f64, |a, i| {
                                a + w[o * ci + i] as f64 * x[i * ldx + s] as f64
                            }) as f32;
                            want[o * ldo + s] = if relu {
                                super::super::kernels::relu(v)
                            } else {
                                v
                            };
                        }
                    }
                    let mut fma: Option<Vec<f32>> = None;
                    for level in [Simd::Portable, Simd::Fma, Simd::Avx512] {
                        if level > have {
                            continue;
                        }
                        let mut out = vec![0f32; co * ldo];
                        let blk = Block { x: &x, ldx, ncols };
                        conv(level, &p, blk, &mut out, ldo, relu);
                        let d = testutil::max_diff(&out, &want);
                        assert!(d <= 2e-5, "{co}x{ci} {ncols} cols {}: {d}", level.name());
                        if level != Simd::Portable {
                            match &fma {
                                None => fma = Some(out),
                                Some(f) => assert_eq!(&out, f, "{}", level.name()),
                            }
                        }
                    }
                }
            }
        }
    }
}
