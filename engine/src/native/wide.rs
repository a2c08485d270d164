//! Spans of 64 events, held feature-major: each value of the program is `width` rows of
//! [`SPAN`] events (event in the register lane), so a dense layer keeps 6 outputs x 64 events
//! in 24 registers on AVX-512 (6 x 16 in 12 on AVX2) and each broadcast weight serves all of
//! them. The row tiles of `kernels` load 8 events per weight and 10 times per 16 multiply-adds
//! (AVX-512), which held an 80-100-100-1 MLP to about half the FMA peak; here it is 10 loads
//! per 24.
//!
//! Every value is computed with the same operations in the same order as the row kernels
//! (bias first, inputs in order; the dot form's eight partial sums and their reduction), so an
//! event's result does not depend on whether it falls in a span or in the row tiles after the
//! last one, nor on the SIMD level.

use super::kernels::activate;
use super::{events, Act, BinOp, Dense, Inputs, NativeEngine, Op, Operand, Output, Slot};
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Events evaluated together (four 512-bit registers).
pub(super) const SPAN: usize = 64;

/// Outputs a dense layer's inner loop computes at once.
const GROUP: usize = 6;

/// What the spans need beyond the program, per op: a dense layer's weights packed in groups of
/// [`GROUP`] outputs (`k` rows of six, zero past `n`), and whether a ReLU that alone reads the
/// layer's output is applied in its registers (the ReLU op is then skipped: a pass that loads
/// and stores each of the layer's values again, about a tenth of an MLP's time, saved).
pub(super) struct Wide {
    packed: Vec<Vec<f32>>,
    /// Per dense op: the ReLU's destination, where the layer writes instead (that ReLU, the
    /// next op, is then skipped).
    relu_into: Vec<Option<Slot>>,
}

impl Wide {
    pub(super) fn new(ops: &[Op], outputs: &[Output]) -> Wide {
        let packed = ops
            .iter()
            .map(|op| match op {
                Op::Dense { layer, .. } if !layer.blocks.is_empty() => pack(layer),
                _ => Vec::new(),
            })
            .collect();
        let mut relu_into = vec![None; ops.len()];
        for (i, pair) in ops.windows(2).enumerate() {
            let (
                Op::Dense { dst: d, layer, .. },
                Op::Act {
                    src,
                    dst,
                    act: Act::Relu,
                },
            ) = (&pair[0], &pair[1])
            else {
                continue;
            };
            let read_elsewhere = outputs.iter().any(|o| o.slot.overlaps(d))
                || ops
                    .iter()
                    .enumerate()
                    .any(|(j, op)| j != i + 1 && op.sources().iter().any(|s| s.overlaps(d)));
            if src == d && !layer.blocks.is_empty() && !read_elsewhere {
                relu_into[i] = Some(*dst);
            }
        }
        Wide { packed, relu_into }
    }
}

fn pack(l: &Dense) -> Vec<f32> {
    let (k, n) = (l.k, l.n);
    let t = l.transposed();
    let groups = n.div_ceil(GROUP);
    let mut p = vec![0f32; groups * k * GROUP];
    for j in 0..n {
        let (g, q) = (j / GROUP, j % GROUP);
        for i in 0..k {
            p[(g * k + i) * GROUP + q] = t[j * k + i];
        }
    }
    p
}

/// A value's rows in a span arena.
#[inline(always)]
fn rows(arena: &[f32], s: Slot) -> &[f32] {
    &arena[s.off * SPAN..(s.off + s.width) * SPAN]
}

/// The arena before `dst` (every source: values are laid out in program order) and dst's rows.
#[inline(always)]
fn split(arena: &mut [f32], dst: Slot) -> (&[f32], &mut [f32]) {
    let (src, rest) = arena.split_at_mut(dst.off * SPAN);
    (src, &mut rest[..dst.width * SPAN])
}

/// Events `r0..r0 + SPAN` through the program into `arena` (`e.arena * SPAN` values), on
/// AVX-512.
///
/// # Safety
/// The CPU has AVX, FMA and AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,fma,avx512f")]
pub(super) unsafe fn span_avx512<I: Inputs + ?Sized>(
    e: &NativeEngine,
    w: &Wide,
    arena: &mut [f32],
    inputs: &I,
    r0: usize,
) {
    // SAFETY: the caller's AVX-512F.
    unsafe { run_span::<true, I>(e, w, arena, inputs, r0) }
}

/// [`span_avx512`] on AVX2.
///
/// # Safety
/// The CPU has AVX and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,fma")]
pub(super) unsafe fn span_fma<I: Inputs + ?Sized>(
    e: &NativeEngine,
    w: &Wide,
    arena: &mut [f32],
    inputs: &I,
    r0: usize,
) {
    // SAFETY: the caller's AVX and FMA.
    unsafe { run_span::<false, I>(e, w, arena, inputs, r0) }
}

/// # Safety
/// The CPU has AVX and FMA, and AVX-512F if `W512`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn run_span<const W512: bool, I: Inputs + ?Sized>(
    e: &NativeEngine,
    w: &Wide,
    arena: &mut [f32],
    inputs: &I,
    r0: usize,
) {
    for (k, s) in e.inputs.iter().enumerate() {
        inputs.copy_span(
            k,
            r0,
            s.width,
            &mut arena[s.off * SPAN..(s.off + s.width) * SPAN],
        );
    }
    let mut row = Vec::new();
    for (i, op) in e.ops.iter().enumerate() {
        // A ReLU the dense layer before it applied.
        if i > 0 && w.relu_into[i - 1].is_some() {
            continue;
        }
        let dst = w.relu_into[i].unwrap_or(op.dst());
        let (src, out) = split(arena, dst);
        match op {
            Op::Copy { src: s, at, .. } => {
                out[at * SPAN..(at + s.width) * SPAN].copy_from_slice(rows(src, *s));
            }
            Op::Dense { src: s, layer, .. } => {
                let x = rows(src, *s);
                let (p, relu) = (&w.packed[i], w.relu_into[i].is_some());
                // SAFETY: the caller's SIMD level; `x` holds `k` rows of a span, `out` `n`;
                // `p` is this layer's packing (`Wide::new`).
                unsafe {
                    match (layer.blocks.is_empty(), W512) {
                        (true, true) => dense_dot(layer, x, out),
                        (true, false) => dense_dot_fma(layer, x, out),
                        (false, true) => dense_axpy(layer, p, x, out, relu),
                        (false, false) => dense_axpy_fma(layer, p, x, out, relu),
                    }
                }
            }
            Op::Bin { a, b, op, .. } => bin(*op, a, b, src, out),
            Op::Act { src: s, act, .. } => activate::<true>(*act, rows(src, *s), out),
            // Across an event's values: each event's gathered into `row`, then the row
            // tiles' function.
            Op::Softmax { src: s, .. } => {
                let x = rows(src, *s);
                for ev in 0..SPAN {
                    gather(x, ev, &mut row);
                    events::softmax(&mut row);
                    for (j, v) in row.iter().enumerate() {
                        out[j * SPAN + ev] = *v;
                    }
                }
            }
            Op::ArgMax { src: s, .. } => {
                let x = rows(src, *s);
                for (ev, o) in out.iter_mut().enumerate() {
                    gather(x, ev, &mut row);
                    *o = events::argmax(&row) as f32;
                }
            }
            Op::Gather { src: s, table, .. } => {
                for (o, &i) in out.iter_mut().zip(rows(src, *s)) {
                    *o = table.get(i as usize).copied().unwrap_or(f32::NAN);
                }
            }
        }
    }
}

/// Event `ev`'s values of `x` (a value's rows in a span) into `row`.
#[inline(always)]
fn gather(x: &[f32], ev: usize, row: &mut Vec<f32>) {
    row.clear();
    row.extend(x.iter().skip(ev).step_by(SPAN));
}

/// `a op b` down a span's rows; a constant operand holds one value per row (`kernels::bin`'s
/// tile form repeats them; its first `width` values are the row's).
#[inline(always)]
fn bin(op: BinOp, a: &Operand, b: &Operand, src: &[f32], out: &mut [f32]) {
    #[inline(always)]
    fn each(a: &Operand, b: &Operand, src: &[f32], out: &mut [f32], f: impl Fn(f32, f32) -> f32) {
        for (j, o) in out.chunks_exact_mut(SPAN).enumerate() {
            match (a, b) {
                (Operand::Value(s), Operand::Value(t)) => {
                    let (x, y) = (&rows(src, *s)[j * SPAN..], &rows(src, *t)[j * SPAN..]);
                    for ((o, x), y) in o.iter_mut().zip(x).zip(y) {
                        *o = f(*x, *y);
                    }
                }
                (Operand::Value(s), Operand::Const(c)) => {
                    let (x, y) = (&rows(src, *s)[j * SPAN..], c[j]);
                    for (o, x) in o.iter_mut().zip(x) {
                        *o = f(*x, y);
                    }
                }
                (Operand::Const(c), Operand::Value(t)) => {
                    let (x, y) = (c[j], &rows(src, *t)[j * SPAN..]);
                    for (o, y) in o.iter_mut().zip(y) {
                        *o = f(x, *y);
                    }
                }
                (Operand::Const(c), Operand::Const(d)) => o.fill(f(c[j], d[j])),
            }
        }
    }
    match op {
        BinOp::Add => each(a, b, src, out, |x, y| x + y),
        BinOp::Sub => each(a, b, src, out, |x, y| x - y),
        BinOp::Mul => each(a, b, src, out, |x, y| x * y),
        BinOp::Div => each(a, b, src, out, |x, y| x / y),
    }
}

/// The dense kernels of one SIMD level, from one source: `$axpy` and `$dot` for the register
/// type `$v` of `$lanes` floats (the `$p` intrinsics), `$pass` registers of events per output
/// in the axpy form (`GROUP * $pass` accumulators), `$dotpass` in the dot form (`8 * $dotpass`).
macro_rules! dense_kernels {
    ($feat:literal, $v:ty, $lanes:literal, $pass:literal, $dotpass:literal, $axpy:ident, $dot:ident,
     $load:ident, $store:ident, $set1:ident, $zero:ident, $fma:ident, $add:ident, $max:ident) => {
        /// `out[j] = bias[j] + sum_i w[i, j] x[i]` for a span, six outputs at a time, adding in
        /// `i` order (the row kernels' order); then `kernels::relu` if `relu` (`max(0, x)`
        /// keeping a NaN and a -0: `maxps` returns its second operand when either is NaN or
        /// both are zero).
        ///
        /// # Safety
        /// The level's instructions; `x` holds `l.k` rows of [`SPAN`], `out` `l.n`, `packed`
        /// is [`pack`]'s.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feat)]
        unsafe fn $axpy(l: &Dense, packed: &[f32], x: &[f32], out: &mut [f32], relu: bool) {
            let (k, n) = (l.k, l.n);
            assert!(
                x.len() >= k * SPAN
                    && out.len() >= n * SPAN
                    && packed.len() >= n.div_ceil(GROUP) * k * GROUP
            );
            let xp = x.as_ptr();
            for g in 0..n.div_ceil(GROUP) {
                let m = (n - g * GROUP).min(GROUP);
                let w = packed[g * k * GROUP..].as_ptr();
                for e0 in (0..SPAN).step_by($pass * $lanes) {
                    let mut acc: [[$v; $pass]; GROUP] = [[$zero(); $pass]; GROUP];
                    for (q, a) in acc.iter_mut().enumerate().take(m) {
                        *a = [$set1(l.bias[g * GROUP + q]); $pass];
                    }
                    for i in 0..k {
                        // SAFETY: `i < k`: the pass's events of row `i` of `x` and row `i` of
                        // the group's weights (GROUP values) are inside the slices (asserted
                        // above).
                        unsafe {
                            let xr = xp.add(i * SPAN + e0);
                            let xv: [$v; $pass] =
                                std::array::from_fn(|v| $load(xr.add($lanes * v)));
                            let wr = w.add(i * GROUP);
                            for (q, a) in acc.iter_mut().enumerate() {
                                let wv = $set1(*wr.add(q));
                                for (av, xv) in a.iter_mut().zip(xv) {
                                    *av = $fma(xv, wv, *av);
                                }
                            }
                        }
                    }
                    for (q, a) in acc.iter_mut().enumerate().take(m) {
                        if relu {
                            for v in a.iter_mut() {
                                *v = $max($zero(), *v);
                            }
                        }
                        let at = (g * GROUP + q) * SPAN + e0;
                        let o = &mut out[at..at + $pass * $lanes];
                        for (o, v) in o.chunks_exact_mut($lanes).zip(a.iter()) {
                            // SAFETY: `o` holds `$lanes` values.
                            unsafe { $store(o.as_mut_ptr(), *v) };
                        }
                    }
                }
            }
        }

        /// The dot form (few outputs) for a span: per output, eight partial sums over the
        /// inputs (input `i` into sum `i % 8`) up to the last multiple of 8, reduced as `((s0 +
        /// s4) + (s1 + s5)) + ((s2 + s6) + (s3 + s7))`, then the remaining inputs, then the
        /// bias: the row kernel's operations (`kernels::dense_rows_dot_fma`) for each event.
        ///
        /// # Safety
        /// The level's instructions; `x` holds `l.k` rows of [`SPAN`], `out` `l.n`.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $feat)]
        unsafe fn $dot(l: &Dense, x: &[f32], out: &mut [f32]) {
            let (k, n) = (l.k, l.n);
            let k8 = k / 8 * 8;
            assert!(x.len() >= k * SPAN && out.len() >= n * SPAN && l.w.len() >= n * k);
            let xp = x.as_ptr();
            for j in 0..n {
                let wr = &l.w[j * k..(j + 1) * k];
                for e0 in (0..SPAN).step_by($dotpass * $lanes) {
                    let mut p: [[$v; $dotpass]; 8] = [[$zero(); $dotpass]; 8];
                    for c in (0..k8).step_by(8) {
                        for (lane, s) in p.iter_mut().enumerate() {
                            let wv = $set1(wr[c + lane]);
                            for (v, sv) in s.iter_mut().enumerate() {
                                // SAFETY: `c + lane < k`: inside `x` (asserted above).
                                let xv =
                                    unsafe { $load(xp.add((c + lane) * SPAN + e0 + $lanes * v)) };
                                *sv = $fma(xv, wv, *sv);
                            }
                        }
                    }
                    for v in 0..$dotpass {
                        let pair = |a: usize, b: usize| $add(p[a][v], p[b][v]);
                        let mut s =
                            $add($add(pair(0, 4), pair(1, 5)), $add(pair(2, 6), pair(3, 7)));
                        let e = e0 + $lanes * v;
                        for (i, &wi) in wr.iter().enumerate().skip(k8) {
                            // SAFETY: `i < k`: inside `x`.
                            let xv = unsafe { $load(xp.add(i * SPAN + e)) };
                            s = $fma(xv, $set1(wi), s);
                        }
                        s = $add(s, $set1(l.bias[j]));
                        let o = &mut out[j * SPAN + e..j * SPAN + e + $lanes];
                        // SAFETY: `o` holds `$lanes` values.
                        unsafe { $store(o.as_mut_ptr(), s) };
                    }
                }
            }
        }
    };
}

dense_kernels!(
    "avx,fma,avx512f",
    __m512,
    16,
    4,
    2,
    dense_axpy,
    dense_dot,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_set1_ps,
    _mm512_setzero_ps,
    _mm512_fmadd_ps,
    _mm512_add_ps,
    _mm512_max_ps
);
dense_kernels!(
    "avx,fma",
    __m256,
    8,
    2,
    1,
    dense_axpy_fma,
    dense_dot_fma,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_set1_ps,
    _mm256_setzero_ps,
    _mm256_fmadd_ps,
    _mm256_add_ps,
    _mm256_max_ps
);

/// Output `s` of a span (rows of events) into `out`, row-major from event `r0` (`s.width`
/// values an event).
pub(super) fn put_rows(arena: &[f32], s: Slot, out: &mut [f32], r0: usize) {
    let w = s.width;
    let x = rows(arena, s);
    let out = &mut out[r0 * w..(r0 + SPAN) * w];
    if w == 1 {
        out.copy_from_slice(x);
        return;
    }
    for (j, r) in x.chunks_exact(SPAN).enumerate() {
        for (ev, &v) in r.iter().enumerate() {
            out[ev * w + j] = v;
        }
    }
}
