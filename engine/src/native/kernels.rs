//! The evaluation kernels: one tile of rows through the program, dense layers by column
//! blocks (one, four or eight rows at a time), activations, and the SIMD level they are
//! compiled for, chosen at run time from what the CPU reports.

use super::{events, rnn, Act, BinOp, Dense, Inputs, NativeEngine, Op, Operand, Slot, TILE};

/// The instruction set the kernels are compiled for, chosen once at load from what the CPU
/// reports. Every level computes each value with the same operations in the same order (the
/// wider ones only put more columns in a register): the results are bit-identical, as long as
/// FMA is in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Simd {
    Portable,
    /// AVX + FMA (256-bit).
    Fma,
    /// AVX-512F + FMA (512-bit).
    Avx512,
}

impl Simd {
    /// The widest level the CPU has, capped by `HEPML_NATIVE_SIMD` (`portable`, `avx+fma`) when
    /// set: for comparing levels on one machine.
    pub(super) fn detect() -> Simd {
        let cap = match std::env::var("HEPML_NATIVE_SIMD").as_deref() {
            Ok("portable") => Simd::Portable,
            Ok("avx+fma") | Ok("fma") => Simd::Fma,
            _ => Simd::Avx512,
        };
        Simd::available().min(cap)
    }

    pub(super) fn available() -> Simd {
        #[cfg(target_arch = "x86_64")]
        {
            let fma = std::is_x86_feature_detected!("avx") && std::is_x86_feature_detected!("fma");
            if fma && std::is_x86_feature_detected!("avx512f") {
                return Simd::Avx512;
            }
            if fma {
                return Simd::Fma;
            }
        }
        Simd::Portable
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Simd::Portable => "portable",
            Simd::Fma => "avx+fma",
            Simd::Avx512 => "avx512+fma",
        }
    }
}

/// `max(0, x)` with a NaN kept as NaN, as ONNX Runtime's Relu keeps it (`f32::max` would
/// return 0 and turn a missing value into a score). One `maxps` on x86.
#[inline(always)]
pub(super) fn relu(x: f32) -> f32 {
    if x < 0.0 {
        0.0
    } else {
        x
    }
}

#[inline(always)]
pub(super) fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// `acc` starts from the bias (as many values as `bias` holds). A full register block is
/// copied with its size known at compile time: inline moves, not a `memcpy` call per block.
#[inline(always)]
fn load<const S: usize>(acc: &mut [f32; S], bias: &[f32]) {
    match <&[f32; S]>::try_from(bias) {
        Ok(b) => *acc = *b,
        Err(_) => acc[..bias.len()].copy_from_slice(bias),
    }
}

/// `dst` gets the first `dst.len()` values of a register block (see [`load`]).
#[inline(always)]
fn put<const S: usize>(dst: &mut [f32], acc: &[f32; S]) {
    match <&mut [f32; S]>::try_from(&mut *dst) {
        Ok(d) => *d = *acc,
        Err(_) => dst.copy_from_slice(&acc[..dst.len()]),
    }
}

/// The widest input the zero-skipping single-row kernel compacts.
const NZ_MAX: usize = 256;

/// Calls `$f::<W, $c...>(args)` for the block width `$w` (a multiple of 8 up to 64).
macro_rules! by_width {
    ($w:expr, $f:ident, [$($c:tt),*], ($($arg:expr),*)) => {
        match $w {
            8 => $f::<8, $($c),*>($($arg),*),
            16 => $f::<16, $($c),*>($($arg),*),
            24 => $f::<24, $($c),*>($($arg),*),
            32 => $f::<32, $($c),*>($($arg),*),
            40 => $f::<40, $($c),*>($($arg),*),
            48 => $f::<48, $($c),*>($($arg),*),
            56 => $f::<56, $($c),*>($($arg),*),
            _ => $f::<64, $($c),*>($($arg),*),
        }
    };
}

/// One block of W columns for one row: out = bias + sum_i x[i] w[i, ..] over the inputs `idx`
/// lists (ascending), or over all of them.
#[inline(always)]
fn block_row<const W: usize, const FMA: bool>(
    wb: &[f32],
    x: &[f32],
    idx: Option<&[u32]>,
    bias: &[f32],
    out: &mut [f32],
) {
    let mut acc = [0f32; W];
    load(&mut acc, bias);
    block_sum::<W, FMA>(wb, x, idx, &mut acc);
    put(out, &acc);
}

/// The sums of [`block_row`]. `acc` is copied into a local and back whole: slices of runtime
/// length of the local would keep it out of registers.
#[inline(always)]
fn block_sum<const W: usize, const FMA: bool>(
    wb: &[f32],
    x: &[f32],
    idx: Option<&[u32]>,
    acc: &mut [f32; W],
) {
    // Plain loops, no closure: a closure is not inlined into the `target_feature` caller and
    // would lose FMA (a libm call per multiply-add).
    let mut a = *acc;
    match idx {
        Some(idx) => {
            for &i in idx {
                let i = i as usize;
                let xv = x[i];
                let wr: &[f32; W] = wb[i * W..i * W + W].try_into().unwrap_or(&[0.0; W]);
                for c in 0..W {
                    a[c] = madd::<FMA>(xv, wr[c], a[c]);
                }
            }
        }
        None => {
            for (xv, wr) in x.iter().zip(wb.chunks_exact(W)) {
                let wr: &[f32; W] = wr.try_into().unwrap_or(&[0.0; W]);
                for c in 0..W {
                    a[c] = madd::<FMA>(*xv, wr[c], a[c]);
                }
            }
        }
    }
    *acc = a;
}

/// out[j] = bias[j] + sum_i x[i] w[i, j] for one row, axpy form over the register blocks.
/// Batch-1 calls are bound by streaming the weights from L2, so behind a ReLU the weight rows
/// of inputs that are exactly zero are not read at all (same sums: those terms are +-0).
#[inline(always)]
fn dense_row_blocked<const FMA: bool>(l: &Dense, x: &[f32], out: &mut [f32]) {
    let k = l.k;
    let x = &x[..k];
    if l.skip_zeros && k <= NZ_MAX {
        let mut idx = [0u32; NZ_MAX];
        let mut cnt = 0;
        for (j, v) in x.iter().enumerate() {
            idx[cnt] = j as u32;
            cnt += usize::from(*v != 0.0);
        }
        dense_row_blocks::<FMA>(l, x, Some(&idx[..cnt]), out);
    } else {
        dense_row_blocks::<FMA>(l, x, None, out);
    }
}

#[inline(always)]
fn dense_row_blocks<const FMA: bool>(l: &Dense, x: &[f32], nz: Option<&[u32]>, out: &mut [f32]) {
    let (k, n) = (l.k, l.n);
    let (mut j0, mut at) = (0, 0);
    for &bw in &l.blocks {
        let wb = &l.w[at..at + k * bw];
        let m = bw.min(n - j0);
        by_width!(
            bw,
            block_row,
            [FMA],
            (wb, x, nz, &l.bias[j0..j0 + m], &mut out[j0..j0 + m])
        );
        (j0, at) = (j0 + bw, at + k * bw);
    }
}

/// Four rows at once (batches), 16 columns at a time (8 for a block's last odd 8): each weight
/// load serves four rows, so a wide layer's weights stream from cache a quarter as often. Same
/// operation order per value as [`dense_row_blocked`]: bit-identical results.
#[inline(always)]
fn dense_rows4<const FMA: bool>(l: &Dense, x: [&[f32]; 4], out: [&mut [f32]; 4]) {
    let (k, n) = (l.k, l.n);
    let x = x.map(|r| &r[..k]);
    let [o0, o1, o2, o3] = out;
    let (mut j0, mut at) = (0, 0);
    for &bw in &l.blocks {
        let wb = &l.w[at..at + k * bw];
        let mut s0 = 0;
        while s0 < bw && j0 + s0 < n {
            let m = (n - j0 - s0).min(16);
            let (a, b) = (j0 + s0, j0 + s0 + m.min(bw - s0));
            let o = [&mut o0[a..b], &mut o1[a..b], &mut o2[a..b], &mut o3[a..b]];
            if bw - s0 >= 16 {
                by_width!(bw, sub_rows4, [16, FMA], (wb, s0, x, &l.bias[a..b], o));
            } else {
                by_width!(bw, sub_rows4, [8, FMA], (wb, s0, x, &l.bias[a..b], o));
            }
            s0 += 16;
        }
        (j0, at) = (j0 + bw, at + k * bw);
    }
}

/// Columns `s0..s0 + S` of a block of width W, for four rows.
#[inline(always)]
fn sub_rows4<const W: usize, const S: usize, const FMA: bool>(
    wb: &[f32],
    s0: usize,
    x: [&[f32]; 4],
    bias: &[f32],
    out: [&mut [f32]; 4],
) {
    // Four separate accumulators (not a 2-D array): LLVM keeps each in registers.
    let (mut a0, mut a1, mut a2, mut a3) = ([0f32; S], [0f32; S], [0f32; S], [0f32; S]);
    for a in [&mut a0, &mut a1, &mut a2, &mut a3] {
        load(a, bias);
    }
    for (kk, wr) in wb.chunks_exact(W).enumerate() {
        let w: &[f32; S] = wr[s0..s0 + S].try_into().unwrap_or(&[0.0; S]);
        let (x0, x1, x2, x3) = (x[0][kk], x[1][kk], x[2][kk], x[3][kk]);
        for c in 0..S {
            a0[c] = madd::<FMA>(x0, w[c], a0[c]);
        }
        for c in 0..S {
            a1[c] = madd::<FMA>(x1, w[c], a1[c]);
        }
        for c in 0..S {
            a2[c] = madd::<FMA>(x2, w[c], a2[c]);
        }
        for c in 0..S {
            a3[c] = madd::<FMA>(x3, w[c], a3[c]);
        }
    }
    let [o0, o1, o2, o3] = out;
    put(o0, &a0);
    put(o1, &a1);
    put(o2, &a2);
    put(o3, &a3);
}

/// Eight rows at once (a whole tile, AVX-512 only): each weight load serves eight rows, 32
/// columns (two 512-bit registers per row) at a time, 16 for a block's last ones. Same
/// operation order per value as [`dense_row_blocked`]: bit-identical results.
///
/// Written with intrinsics: the same loop in plain Rust (eight row slices, arrays of sums) kept
/// a bounds check per row and step and spilled the row pointers, as many instructions as the
/// multiply-adds themselves.
///
/// # Safety
/// The CPU has AVX-512F.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn dense_rows8(l: &Dense, x: [&[f32]; 8], out: [&mut [f32]; 8]) {
    let (k, n) = (l.k, l.n);
    let x = x.map(|r| &r[..k]);
    let mut out = out.map(|r| &mut r[..n]);
    let bias = &l.bias[..n];
    let (mut j0, mut at) = (0, 0);
    for &bw in &l.blocks {
        let wb = &l.w[at..at + k * bw];
        let mut s0 = 0;
        while s0 < bw && j0 + s0 < n {
            let cols = (bw - s0).min(n - j0 - s0).min(32);
            let c = j0 + s0;
            let o = out.each_mut().map(|r| r[c..c + cols].as_mut_ptr());
            // SAFETY: the caller's AVX-512F; every pointer covers what `rows8_avx512` reads or
            // writes: `cols` values of `bias` and of each `out` row from `c` (sliced above), `k`
            // values of each `x` row, `k` rows of `bw` weights from `s0` (`s0 + cols <= bw`).
            unsafe {
                let (w, x, b) = (
                    wb[s0..].as_ptr(),
                    x.map(<[f32]>::as_ptr),
                    bias[c..].as_ptr(),
                );
                if cols > 16 {
                    rows8_avx512::<2>(w, bw, k, x, b, o, cols)
                } else {
                    rows8_avx512::<1>(w, bw, k, x, b, o, cols)
                }
            }
            s0 += 32;
        }
        (j0, at) = (j0 + bw, at + k * bw);
    }
}

/// `out[r][j] = bias[j] + sum_kk x[r][kk] w[kk * ldw + j]` for the eight rows `r` and the first
/// `cols` (at most `16 V`) columns `j`, adding in `kk` order.
///
/// # Safety
/// AVX-512F; `bias` and each `out` row hold `cols` values, each `x` row `k`, `w` `k` rows of
/// `ldw` with `cols` values each.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn rows8_avx512<const V: usize>(
    w: *const f32,
    ldw: usize,
    k: usize,
    x: [*const f32; 8],
    bias: *const f32,
    out: [*mut f32; 8],
    cols: usize,
) {
    use std::arch::x86_64::*;
    let lanes = |n: usize| if n >= 16 { 0xffff } else { (1u16 << n) - 1 };
    let mask = [lanes(cols), lanes(cols.saturating_sub(16))];
    let mut b = [_mm512_setzero_ps(); V];
    for v in 0..V {
        b[v] = _mm512_maskz_loadu_ps(mask[v], bias.add(16 * v));
    }
    let mut acc = [b; 8];
    // Opaque to the optimiser: it would otherwise rebuild the eight row addresses from the
    // first one and the row stride, with two integer operations per row and step, and those
    // take ports from the multiply-adds.
    let x = std::hint::black_box(x);
    for kk in 0..k {
        let wr = w.add(kk * ldw);
        let mut wv = [_mm512_setzero_ps(); V];
        for v in 0..V {
            wv[v] = _mm512_maskz_loadu_ps(mask[v], wr.add(16 * v));
        }
        for (a, xr) in acc.iter_mut().zip(x) {
            let xv = _mm512_set1_ps(*xr.add(kk));
            for v in 0..V {
                a[v] = _mm512_fmadd_ps(xv, wv[v], a[v]);
            }
        }
    }
    for (a, o) in acc.iter().zip(out) {
        for v in 0..V {
            _mm512_mask_storeu_ps(o.add(16 * v), mask[v], a[v]);
        }
    }
}

/// Dot form for layers with few outputs: 8 partial sums per output.
#[inline(always)]
fn dense_row_dot<const FMA: bool>(l: &Dense, x: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if FMA {
        // SAFETY: the FMA kernels are instantiated only inside `tile_fma`, `tile_avx512`,
        // `back_fma` and `back_avx512`, which run only where `Simd::detect` found AVX and FMA.
        return unsafe { dense_rows_dot_fma::<1>(l, [x], [out]) };
    }
    let k = l.k;
    for (j, wr) in l.w.chunks_exact(k).enumerate() {
        let mut acc = [0f32; 8];
        let (xc, wc) = (x[..k].chunks_exact(8), wr.chunks_exact(8));
        let (xr, wrr) = (xc.remainder(), wc.remainder());
        for (xs, ws) in xc.zip(wc) {
            for c in 0..8 {
                acc[c] = madd::<FMA>(xs[c], ws[c], acc[c]);
            }
        }
        let mut s =
            ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        for (a, b) in xr.iter().zip(wrr) {
            s = madd::<FMA>(*a, *b, s);
        }
        out[j] = s + l.bias[j];
    }
}

/// [`dense_row_dot`] for `R` rows at once (1, or 8 for a whole tile), with one 256-bit
/// register of partial sums per row and the same reduction order (LLVM split the plain form's
/// eight sums into shuffled 128-bit halves). Eight rows run eight independent chains of
/// multiply-adds: one row's chain waits on each multiply-add before the next.
///
/// # Safety
/// The CPU has AVX and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,fma")]
unsafe fn dense_rows_dot_fma<const R: usize>(l: &Dense, x: [&[f32]; R], out: [&mut [f32]; R]) {
    use std::arch::x86_64::*;
    let k = l.k;
    let k8 = k / 8 * 8;
    // Plain loops, not closures: a closure does not take this function's target features,
    // and LLVM then left `array::map` as calls.
    for r in &x {
        assert!(
            r.len() >= k,
            "dot-form row of {} values for {k} inputs",
            r.len()
        );
    }
    for r in &out {
        assert!(
            r.len() >= l.n,
            "dot-form output row of {} values for {}",
            r.len(),
            l.n
        );
    }
    for (j, (wr, b)) in l.w.chunks_exact(k).zip(&l.bias).take(l.n).enumerate() {
        let mut acc = [_mm256_setzero_ps(); R];
        for c in (0..k8).step_by(8) {
            // SAFETY: `c + 8 <= k8 <= k`, the length of `wr` and at most that of every row of
            // `x` (checked above).
            unsafe {
                let wv = _mm256_loadu_ps(wr.as_ptr().add(c));
                for r in 0..R {
                    acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(x[r].as_ptr().add(c)), wv, acc[r]);
                }
            }
        }
        for r in 0..R {
            out[r][j] = dot_tail(acc[r], &x[r][k8..k], &wr[k8..]) + b;
        }
    }
}

/// The dot form's sum: the eight partial sums as `((a0 + a4) + (a1 + a5)) + ((a2 + a6) +
/// (a3 + a7))` (the plain form's order), then the inputs past the last multiple of 8.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,fma")]
fn dot_tail(acc: std::arch::x86_64::__m256, x: &[f32], w: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
    let h = _mm_hadd_ps(h, h);
    let mut s = _mm_cvtss_f32(_mm_hadd_ps(h, h));
    for (a, w) in x.iter().zip(w) {
        s = a.mul_add(*w, s);
    }
    s
}

#[inline(always)]
fn dense_row<const FMA: bool>(l: &Dense, x: &[f32], out: &mut [f32]) {
    if l.blocks.is_empty() {
        dense_row_dot::<FMA>(l, x, out)
    } else {
        dense_row_blocked::<FMA>(l, x, out)
    }
}

/// An activation over a tile's values. Sigmoid, tanh and the exponentials go through `rnn`'s
/// branch-free forms (within ~4e-7 of libm), so that the values vectorise instead of calling
/// libm one at a time; the same operations at every position keep a row's result independent
/// of the tile it lands in.
#[inline(always)]
pub(super) fn activate<const FMA: bool>(act: Act, x: &[f32], out: &mut [f32]) {
    #[inline(always)]
    fn each(x: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32) {
        for (o, v) in out.iter_mut().zip(x) {
            *o = f(*v);
        }
    }
    match act {
        Act::Relu => each(x, out, relu),
        Act::LeakyRelu(a) => each(x, out, |v| if v >= 0.0 { v } else { a * v }),
        Act::Sigmoid => each(x, out, rnn::sigmoid::<FMA>),
        Act::Tanh => each(x, out, rnn::tanh::<FMA>),
        Act::Elu(a) => each(x, out, |v| {
            if v >= 0.0 {
                v
            } else {
                a * (rnn::exp::<FMA>(v) - 1.0)
            }
        }),
        Act::Selu(a, g) => each(x, out, |v| {
            if v > 0.0 {
                g * v
            } else {
                g * (a * rnn::exp::<FMA>(v) - a)
            }
        }),
    }
}

/// `a op b` over a tile, each operand a value's rows or a constant's (repeated for every row of
/// a tile): one contiguous loop, the operation chosen outside it, so that it vectorises.
#[inline(always)]
fn bin(op: BinOp, a: &Operand, b: &Operand, src: &[f32], out: &mut [f32]) {
    #[inline(always)]
    fn each(a: &Operand, b: &Operand, src: &[f32], out: &mut [f32], f: impl Fn(f32, f32) -> f32) {
        let n = out.len();
        let get = |v| match v {
            &Operand::Value(s) => &src[s.off * TILE..s.off * TILE + n],
            Operand::Const(c) => &c[..n],
        };
        for ((o, x), y) in out.iter_mut().zip(get(a)).zip(get(b)) {
            *o = f(*x, *y);
        }
    }
    match op {
        BinOp::Add => each(a, b, src, out, |x, y| x + y),
        BinOp::Sub => each(a, b, src, out, |x, y| x - y),
        BinOp::Mul => each(a, b, src, out, |x, y| x * y),
        BinOp::Div => each(a, b, src, out, |x, y| x / y),
    }
}

/// Splits the arena into the part before `dst` (every source lives there: values are laid out
/// in program order) and dst's rows.
#[inline(always)]
fn split(arena: &mut [f32], dst: Slot) -> (&[f32], &mut [f32]) {
    let (src, rest) = arena.split_at_mut(dst.off * TILE);
    (src, &mut rest[..dst.width * TILE])
}

#[inline(always)]
fn row(arena: &[f32], s: Slot, r: usize) -> &[f32] {
    &arena[s.off * TILE + r * s.width..s.off * TILE + (r + 1) * s.width]
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,fma")]
pub(super) unsafe fn tile_fma<I: Inputs + ?Sized>(
    e: &NativeEngine,
    arena: &mut [f32],
    inputs: &I,
    r0: usize,
    rows: usize,
) {
    run_tile::<true, false, I>(e, arena, inputs, r0, rows)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,fma,avx512f")]
pub(super) unsafe fn tile_avx512<I: Inputs + ?Sized>(
    e: &NativeEngine,
    arena: &mut [f32],
    inputs: &I,
    r0: usize,
    rows: usize,
) {
    run_tile::<true, true, I>(e, arena, inputs, r0, rows)
}

/// A dense layer over `rows` rows: `x` holds them (`layer.k` values each), `out` gets
/// `layer.n` values each. Eight rows share each weight load on AVX-512 (`WIDE`), four
/// elsewhere, single rows last.
#[inline(always)]
pub(super) fn dense_tile<const FMA: bool, const WIDE: bool>(
    layer: &Dense,
    x: &[f32],
    out: &mut [f32],
    rows: usize,
) {
    let (k, n) = (layer.k, layer.n);
    let row = |r: usize| &x[r * k..(r + 1) * k];
    let mut outs = out[..rows * n].chunks_exact_mut(n);
    let mut r = 0;
    #[cfg(target_arch = "x86_64")]
    if WIDE && rows == TILE && !layer.blocks.is_empty() {
        let o: [&mut [f32]; 8] = std::array::from_fn(|_| outs.next().unwrap_or_default());
        // SAFETY: `WIDE` is set only inside `tile_avx512` and `back_avx512` (grad.rs), which
        // run only where `Simd::detect` found AVX-512F.
        unsafe { dense_rows8(layer, std::array::from_fn(row), o) };
        r = TILE;
    }
    #[cfg(target_arch = "x86_64")]
    if FMA && rows == TILE && layer.blocks.is_empty() {
        let o: [&mut [f32]; 8] = std::array::from_fn(|_| outs.next().unwrap_or_default());
        // SAFETY: `FMA` is set only inside `tile_fma`, `tile_avx512`, `back_fma` and
        // `back_avx512`, which run only where `Simd::detect` found AVX and FMA.
        unsafe { dense_rows_dot_fma::<8>(layer, std::array::from_fn(row), o) };
        r = TILE;
    }
    while r + 4 <= rows && !layer.blocks.is_empty() {
        let (Some(o0), Some(o1), Some(o2), Some(o3)) =
            (outs.next(), outs.next(), outs.next(), outs.next())
        else {
            break;
        };
        dense_rows4::<FMA>(layer, [0, 1, 2, 3].map(|i| row(r + i)), [o0, o1, o2, o3]);
        r += 4;
    }
    for o in outs {
        dense_row::<FMA>(layer, row(r), o);
        r += 1;
    }
}

#[inline(always)]
pub(super) fn run_tile<const FMA: bool, const WIDE: bool, I: Inputs + ?Sized>(
    e: &NativeEngine,
    arena: &mut [f32],
    inputs: &I,
    r0: usize,
    rows: usize,
) {
    // Inputs held as columns are always staged: the layers read rows.
    for (k, (s, &st)) in e.inputs.iter().zip(&e.staged).enumerate() {
        if st || !I::ROWS {
            let w = s.width;
            inputs.copy::<FMA>(
                k,
                r0,
                rows,
                w,
                &mut arena[s.off * TILE..s.off * TILE + rows * w],
            );
        }
    }
    for (op, direct) in e.ops.iter().zip(&e.direct) {
        let dst = op.dst();
        let (src, out) = split(arena, dst);
        match op {
            Op::Copy { src: s, at, .. } => {
                for r in 0..rows {
                    out[r * dst.width + at..r * dst.width + at + s.width]
                        .copy_from_slice(row(src, *s, r));
                }
            }
            Op::Dense { src: s, layer, .. } => {
                let x = match direct {
                    Some(k) if I::ROWS => inputs.rows(*k, r0, rows, s.width),
                    _ => &src[s.off * TILE..s.off * TILE + rows * s.width],
                };
                dense_tile::<FMA, WIDE>(layer, x, &mut out[..rows * dst.width], rows);
            }
            Op::Bin { a, b, op, .. } => bin(*op, a, b, src, &mut out[..rows * dst.width]),
            Op::Act { src: s, act, .. } => {
                let n = rows * s.width;
                activate::<FMA>(*act, &src[s.range()][..n], &mut out[..n]);
            }
            Op::Softmax { src: s, .. } => {
                for r in 0..rows {
                    let x = row(src, *s, r);
                    let o = &mut out[r * s.width..(r + 1) * s.width];
                    o.copy_from_slice(x);
                    events::softmax(o);
                }
            }
            Op::ArgMax { src: s, .. } => {
                for (r, o) in out[..rows].iter_mut().enumerate() {
                    *o = events::argmax(row(src, *s, r)) as f32;
                }
            }
            Op::Gather { src: s, table, .. } => {
                for (r, o) in out[..rows].iter_mut().enumerate() {
                    let i = row(src, *s, r)[0] as usize;
                    *o = table.get(i).copied().unwrap_or(f32::NAN);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NaN and infinities through each activation come out as ONNX Runtime 1.32 gives them
    /// (its CPU provider's outputs for [NaN, -inf, inf, -1], noted here): a NaN stays NaN (a
    /// ReLU must not turn a missing value into 0), at both arithmetic levels.
    #[test]
    fn activations_treat_nan_and_infinities_as_onnx_runtime_does() {
        let x = [f32::NAN, f32::NEG_INFINITY, f32::INFINITY, -1.0];
        let (nan, inf) = (f32::NAN, f32::INFINITY);
        let cases = [
            (Act::Relu, [nan, 0.0, inf, 0.0]),
            (Act::LeakyRelu(0.01), [nan, -inf, inf, -0.01]),
            (Act::Elu(1.0), [nan, -1.0, inf, -0.632_120_56]),
            (Act::Sigmoid, [nan, 0.0, 1.0, 0.268_941_43]),
            (Act::Tanh, [nan, -1.0, 1.0, -0.761_594_2]),
        ];
        for (act, want) in cases {
            for fma in [false, true] {
                let mut out = [0f32; 4];
                if fma {
                    activate::<true>(act, &x, &mut out);
                } else {
                    activate::<false>(act, &x, &mut out);
                }
                let d = testutil::max_diff(&out, &want);
                assert!(d <= 1e-6, "{act:?} fma {fma}: {out:?} vs {want:?}");
            }
        }
    }
}
