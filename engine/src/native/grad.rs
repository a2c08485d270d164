//! Exact gradients of a dense network by reverse-mode differentiation of the native program:
//! a tile of rows runs forward on the evaluation kernels (every intermediate value stays in
//! the arena), then the gradient of one output column (or one hidden unit) flows back through
//! the ops in reverse: dense layers (the transposed weights, rows of zero gradient skipped, as
//! behind a ReLU), element-wise arithmetic with constants (standardisation), activations,
//! softmax and concatenation. `ArgMax` and label lookups are piecewise constant: no gradient.
//!
//! For explanations (saliency, integrated gradients, conductance): the gradient with respect to
//! the raw inputs, and optionally every hidden unit's value and gradient.

use super::denormals::flushed;
use super::kernels::{dense_tile, Simd};
use super::{Act, BinOp, Dense, NativeEngine, Op, Operand, Slot, SPLIT_MIN, TILE};
use crate::{parts, EngineError};

/// Where the backward pass starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Column `column` of graph output `output` (a score).
    Output { output: usize, column: usize },
    /// Unit `unit` of hidden layer `layer` (see [`Backprop::hidden_widths`]).
    Hidden { layer: usize, unit: usize },
}

/// What one backward pass gives, per event (row-major, `batch` rows).
#[derive(Debug, Clone, Default)]
pub struct Grads {
    /// The target's value.
    pub value: Vec<f32>,
    /// d target / d input, one per graph input (`batch x width`).
    pub inputs: Vec<Vec<f32>>,
    /// When asked for: per hidden layer, its units' values and d target / d unit
    /// (`batch x width` each).
    pub hidden: Vec<(Vec<f32>, Vec<f32>)>,
}

/// A dense network ready for backward passes: the engine and its transposed weights.
pub struct Backprop<'e> {
    e: &'e NativeEngine,
    /// Per op: a dense layer's backward pass as a dense layer of its own (the transposed
    /// weights, from the output's `n` gradients to the input's `k`), packed for the same
    /// kernels as the forward pass.
    back: Vec<Option<Dense>>,
    /// The widest value (rows of scratch for a layer's input gradient).
    widest: usize,
    /// The hidden layers' units: each dense layer's output after its activation, every dense
    /// layer but the last.
    hidden: Vec<Slot>,
}

impl NativeEngine {
    /// Prepares backward passes through this network.
    pub fn backprop(&self) -> Backprop<'_> {
        let back = self
            .ops
            .iter()
            .map(|op| match op {
                // Gradients behind a ReLU are mostly exact zeros: single rows skip them.
                Op::Dense { layer, .. } => Some(Dense::new(
                    layer.n,
                    layer.k,
                    &layer.transposed(),
                    vec![0.0; layer.k],
                    true,
                )),
                _ => None,
            })
            .collect();
        let widest = self
            .ops
            .iter()
            .map(|o| o.dst().width)
            .chain(self.inputs.iter().map(|s| s.width))
            .max()
            .unwrap_or(0);
        let mut hidden = Vec::new();
        for op in &self.ops {
            if let Op::Dense { dst, .. } = op {
                // The unit is what the next layer reads: the activation's output when there
                // is one.
                let after = self.ops.iter().find_map(|o| match o {
                    Op::Act { src, dst: d, .. } if src.off == dst.off => Some(*d),
                    _ => None,
                });
                hidden.push(after.unwrap_or(*dst));
            }
        }
        hidden.pop();
        Backprop {
            e: self,
            back,
            widest,
            hidden,
        }
    }
}

impl Backprop<'_> {
    /// Units per hidden layer, input side first.
    pub fn hidden_widths(&self) -> Vec<usize> {
        self.hidden.iter().map(|s| s.width).collect()
    }

    /// The engine these passes run on.
    pub fn engine(&self) -> &NativeEngine {
        self.e
    }

    /// Runs `batch` events (`inputs` in `info().inputs` order, each `batch x width`) forward
    /// and back from `target`; split across the engine's threads for large batches, each part
    /// with denormals flushed to zero as in inference (a saturated sigmoid's derivative is one).
    pub fn run(
        &self,
        inputs: &[&[f32]],
        batch: usize,
        target: Target,
        with_hidden: bool,
    ) -> Result<Grads, EngineError> {
        let seed = self.seed(target)?;
        let e = self.e;
        e.check_count(inputs.len())?;
        for ((x, s), p) in inputs.iter().zip(&e.inputs).zip(&e.info.inputs) {
            if x.len() != batch * s.width {
                return Err(EngineError::Input {
                    path: e.info.path.clone(),
                    input: p.name.clone(),
                    msg: format!("{} values for {batch} events of {}", x.len(), s.width),
                });
            }
        }
        let runs = parts::ranges(batch, e.threads, SPLIT_MIN);
        let mut pieces = parts::map(runs, |r| {
            let xs: Vec<&[f32]> = inputs
                .iter()
                .zip(&e.inputs)
                .map(|(x, s)| &x[r.start * s.width..r.end * s.width])
                .collect();
            flushed(|| self.part(&xs, r.len(), seed, with_hidden))
        })
        .map_err(|_| EngineError::Run {
            path: e.info.path.clone(),
            msg: "a gradient thread failed".into(),
        })?;
        if pieces.len() == 1 {
            return Ok(pieces.remove(0));
        }
        let mut all = Grads::default();
        for p in pieces {
            all.value.extend(p.value);
            all.inputs.resize_with(p.inputs.len(), Vec::new);
            for (a, b) in all.inputs.iter_mut().zip(p.inputs) {
                a.extend(b);
            }
            all.hidden.resize_with(p.hidden.len(), Default::default);
            for (a, b) in all.hidden.iter_mut().zip(p.hidden) {
                a.0.extend(b.0);
                a.1.extend(b.1);
            }
        }
        Ok(all)
    }

    /// The slot and column the gradient starts from.
    fn seed(&self, target: Target) -> Result<(Slot, usize), EngineError> {
        let bad = |msg: String| EngineError::Run {
            path: self.e.info.path.clone(),
            msg,
        };
        match target {
            Target::Output { output, column } => {
                let o = self
                    .e
                    .outputs
                    .get(output)
                    .ok_or_else(|| bad(format!("no output {output}")))?;
                if column >= o.slot.width {
                    return Err(bad(format!(
                        "output '{}' has {} columns, not {}",
                        o.name,
                        o.slot.width,
                        column + 1
                    )));
                }
                Ok((o.slot, column))
            }
            Target::Hidden { layer, unit } => {
                let s = self
                    .hidden
                    .get(layer)
                    .ok_or_else(|| bad(format!("no hidden layer {layer}")))?;
                if unit >= s.width {
                    return Err(bad(format!("hidden layer {layer} has {} units", s.width)));
                }
                Ok((*s, unit))
            }
        }
    }

    /// One thread's rows, tile by tile.
    fn part(
        &self,
        inputs: &[&[f32]],
        batch: usize,
        (slot, column): (Slot, usize),
        with_hidden: bool,
    ) -> Grads {
        let e = self.e;
        let mut out = Grads {
            value: Vec::with_capacity(batch),
            inputs: e
                .inputs
                .iter()
                .map(|s| Vec::with_capacity(batch * s.width))
                .collect(),
            hidden: if with_hidden {
                self.hidden
                    .iter()
                    .map(|s| {
                        (
                            Vec::with_capacity(batch * s.width),
                            Vec::with_capacity(batch * s.width),
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            },
        };
        let mut arena = vec![0f32; e.arena * TILE];
        let mut g = vec![0f32; e.arena * TILE];
        let mut scratch = vec![0f32; self.widest * TILE];
        for r0 in (0..batch).step_by(TILE) {
            let rows = TILE.min(batch - r0);
            e.tile(&mut arena, inputs, r0, rows);
            g.fill(0.0);
            for r in 0..rows {
                let i = slot.off * TILE + r * slot.width + column;
                out.value.push(arena[i]);
                g[i] = 1.0;
            }
            self.back(&arena, &mut g, &mut scratch, rows);
            let take = |v: &mut Vec<f32>, from: &[f32], s: &Slot| {
                v.extend_from_slice(&from[s.off * TILE..s.off * TILE + rows * s.width])
            };
            for (v, s) in out.inputs.iter_mut().zip(&e.inputs) {
                take(v, &g, s);
            }
            for ((v, d), s) in out.hidden.iter_mut().zip(&self.hidden) {
                take(v, &arena, s);
                take(d, &g, s);
            }
        }
        out
    }

    fn back(&self, arena: &[f32], g: &mut [f32], scratch: &mut [f32], rows: usize) {
        #[cfg(target_arch = "x86_64")]
        match self.e.simd {
            // SAFETY: `simd` is at most what the CPU reports (Simd::detect at load).
            Simd::Avx512 => return unsafe { back_avx512(self, arena, g, scratch, rows) },
            // SAFETY: as above: AVX and FMA are present.
            Simd::Fma => return unsafe { back_fma(self, arena, g, scratch, rows) },
            Simd::Portable => {}
        }
        back_tile::<false, false>(self, arena, g, scratch, rows)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,fma")]
unsafe fn back_fma(b: &Backprop, arena: &[f32], g: &mut [f32], scratch: &mut [f32], rows: usize) {
    back_tile::<true, false>(b, arena, g, scratch, rows)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,fma,avx512f")]
unsafe fn back_avx512(
    b: &Backprop,
    arena: &[f32],
    g: &mut [f32],
    scratch: &mut [f32],
    rows: usize,
) {
    back_tile::<true, true>(b, arena, g, scratch, rows)
}

/// d activation / d input from the input `x` and the output `y`.
#[inline]
fn slope(act: Act, x: f32, y: f32) -> f32 {
    match act {
        Act::Relu => f32::from(u8::from(x > 0.0)),
        Act::LeakyRelu(a) => {
            if x >= 0.0 {
                1.0
            } else {
                a
            }
        }
        Act::Sigmoid => y * (1.0 - y),
        Act::Tanh => 1.0 - y * y,
        Act::Elu(a) => {
            if x >= 0.0 {
                1.0
            } else {
                y + a
            }
        }
        Act::Selu(a, s) => {
            if x > 0.0 {
                s
            } else {
                y + s * a
            }
        }
    }
}

/// The ops in reverse: each adds its output's gradient into its inputs' (values are laid out
/// in program order, so every source lies before the op's own value).
#[inline(always)]
fn back_tile<const FMA: bool, const WIDE: bool>(
    b: &Backprop,
    arena: &[f32],
    g: &mut [f32],
    scratch: &mut [f32],
    rows: usize,
) {
    let at = |s: &Slot, r: usize| s.off * TILE + r * s.width;
    for (op, back) in b.e.ops.iter().zip(&b.back).rev() {
        let dst = op.dst();
        let (gs, rest) = g.split_at_mut(dst.off * TILE);
        let gd = &rest[..dst.width * TILE];
        match op {
            Op::Copy { src, at: col, .. } => {
                for r in 0..rows {
                    let d = &gd[r * dst.width + col..r * dst.width + col + src.width];
                    for (o, v) in gs[at(src, r)..at(src, r) + src.width].iter_mut().zip(d) {
                        *o += v;
                    }
                }
            }
            Op::Dense { src, .. } => {
                if let Some(back) = back {
                    let d = &mut scratch[..rows * src.width];
                    dense_tile::<FMA, WIDE>(back, &gd[..rows * dst.width], d, rows);
                    for (o, v) in gs[src.range()][..rows * src.width].iter_mut().zip(d.iter()) {
                        *o += v;
                    }
                }
            }
            Op::Bin { a, b: bb, op, .. } => {
                let w = dst.width;
                let val = |v: &Operand, r: usize, j: usize| match v {
                    Operand::Value(s) => arena[at(s, r) + j],
                    Operand::Const(c) => c[j],
                };
                for r in 0..rows {
                    for j in 0..w {
                        let d = gd[r * w + j];
                        let (x, y) = (val(a, r, j), val(bb, r, j));
                        let (da, db) = match op {
                            BinOp::Add => (d, d),
                            BinOp::Sub => (d, -d),
                            BinOp::Mul => (d * y, d * x),
                            BinOp::Div => (d / y, -d * x / (y * y)),
                        };
                        // A one-column value broadcast over the row collects every column's.
                        if let Operand::Value(s) = a {
                            gs[at(s, r) + j.min(s.width - 1)] += da;
                        }
                        if let Operand::Value(s) = bb {
                            gs[at(s, r) + j.min(s.width - 1)] += db;
                        }
                    }
                }
            }
            Op::Act { src, act, .. } => {
                let n = rows * src.width;
                let x = &arena[src.range()][..n];
                let y = &arena[dst.range()][..n];
                let o = &mut gs[src.range()][..n];
                if *act == Act::Relu {
                    // Branch-free, so it vectorises.
                    for ((o, d), x) in o.iter_mut().zip(&gd[..n]).zip(x) {
                        *o += if *x > 0.0 { *d } else { 0.0 };
                    }
                } else {
                    for i in 0..n {
                        o[i] += gd[i] * slope(*act, x[i], y[i]);
                    }
                }
            }
            Op::Softmax { src, .. } => {
                for r in 0..rows {
                    let y = &arena[at(&dst, r)..at(&dst, r) + dst.width];
                    let d = &gd[r * dst.width..(r + 1) * dst.width];
                    let dot: f32 = y.iter().zip(d).map(|(a, b)| a * b).sum();
                    for ((o, y), d) in gs[at(src, r)..at(src, r) + src.width]
                        .iter_mut()
                        .zip(y)
                        .zip(d)
                    {
                        *o += y * (d - dot);
                    }
                }
            }
            // Piecewise constant: the gradient is zero.
            Op::ArgMax { .. } | Op::Gather { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Model;

    fn mlp(dir: &std::path::Path, widths: &[usize], act: &str) -> Model {
        Model::read(&super::super::tests::network(dir, widths, act)).unwrap()
    }

    /// The exact gradient equals central differences of the forward pass (in f64 steps of a
    /// smooth network), at every SIMD level this CPU has; hidden units' gradients chain to the
    /// inputs' (d y / d x = sum over units of d y / d h * d h / d x).
    #[test]
    fn gradients_match_finite_differences_at_every_level() {
        let dir = tempfile::tempdir().unwrap();
        for act in ["Tanh", "Elu", "Sigmoid"] {
            let model = mlp(dir.path(), &[6, 20, 12, 1], act);
            let mut e = NativeEngine::load(&model).unwrap();
            let batch = 21;
            let x: Vec<f32> = (0..batch * 6)
                .map(|i| ((i * 7919) % 1000) as f32 / 200.0 - 2.5)
                .collect();
            let mut levels = vec![Simd::Portable];
            for l in [Simd::Fma, Simd::Avx512] {
                if Simd::available() >= l {
                    levels.push(l);
                } else {
                    println!("skipped level {}: CPU lacks it", l.name());
                }
            }
            let mut first: Option<Vec<f32>> = None;
            for level in levels {
                e.simd = level;
                let bp = e.backprop();
                let target = Target::Output {
                    output: 0,
                    column: 0,
                };
                let g = bp.run(&[&x], batch, target, true).unwrap();
                let score = |x: &[f32]| -> f64 {
                    let mut out = [0f32];
                    e.run_into(&[x], 1, 0, &mut out).unwrap();
                    out[0] as f64
                };
                for r in 0..batch {
                    let row = &x[r * 6..(r + 1) * 6];
                    for i in 0..6 {
                        let h = 1e-2f32;
                        let (mut up, mut dn) = (row.to_vec(), row.to_vec());
                        up[i] += h;
                        dn[i] -= h;
                        let fd = (score(&up) - score(&dn)) / (2.0 * h as f64);
                        let got = g.inputs[0][r * 6 + i] as f64;
                        assert!(
                            (got - fd).abs() <= 2e-3 * fd.abs().max(0.05),
                            "{act} {level:?} row {r} x{i}: exact {got} fd {fd}"
                        );
                    }
                }
                // Through the hidden units: the last hidden layer's gradients times each
                // unit's own input gradient add up to the input gradient.
                let widths = bp.hidden_widths();
                assert_eq!(widths, vec![20, 12]);
                let (_, dh) = &g.hidden[1];
                let mut chained = vec![0f32; batch * 6];
                for u in 0..12 {
                    let gu = bp
                        .run(&[&x], batch, Target::Hidden { layer: 1, unit: u }, false)
                        .unwrap();
                    for r in 0..batch {
                        for i in 0..6 {
                            chained[r * 6 + i] += dh[r * 12 + u] * gu.inputs[0][r * 6 + i];
                        }
                    }
                }
                let d = testutil::max_diff(&chained, &g.inputs[0]);
                assert!(d <= 1e-5, "{act} {level:?}: chain rule off by {d}");
                match &first {
                    None => first = Some(g.inputs[0].clone()),
                    Some(f) => {
                        let d = testutil::max_diff(f, &g.inputs[0]);
                        assert!(d <= 1e-5, "{act}: {level:?} vs portable {d}");
                    }
                }
            }
        }
    }

    /// Backward passes flush denormals as the forward ones do: through two layers of weight
    /// 1e-20 the input gradient is 1e-40, a denormal, and comes out as 0 at batch 1 and in a
    /// split batch; the value itself (1e-40 x ... with x = 1e20) stays normal.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn backward_passes_flush_denormals() {
        let dir = tempfile::tempdir().unwrap();
        let path = super::super::tests::scalar_chain(dir.path(), &[1e-20, 1e-20]);
        let mut e = NativeEngine::load(&Model::read(&path).unwrap()).unwrap();
        e.threads = 2;
        let bp = e.backprop();
        assert!(
            std::hint::black_box(1e-20f32) * 1e-20 > 0.0,
            "a denormal outside"
        );
        let t = Target::Output {
            output: 0,
            column: 0,
        };
        for batch in [1, 4 * SPLIT_MIN] {
            let x = vec![1e20f32; batch];
            let g = bp.run(&[&x], batch, t, false).unwrap();
            assert_eq!(g.value, vec![1e-20f32; batch], "batch {batch}");
            assert_eq!(g.inputs[0], vec![0f32; batch], "batch {batch}");
        }
    }

    #[test]
    fn targets_out_of_range_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let model = mlp(dir.path(), &[3, 4, 1], "Relu");
        let e = NativeEngine::load(&model).unwrap();
        let bp = e.backprop();
        let x = [0.5f32; 3];
        for t in [
            Target::Output {
                output: 0,
                column: 1,
            },
            Target::Output {
                output: 1,
                column: 0,
            },
            Target::Hidden { layer: 1, unit: 0 },
        ] {
            assert!(bp.run(&[&x], 1, t, false).is_err(), "{t:?}");
        }
        assert!(bp
            .run(&[&x[..2]], 1, Target::Hidden { layer: 0, unit: 0 }, false)
            .is_err());
    }
}
