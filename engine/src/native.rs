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
//! the eight rows 32 columns at a time, with bit-identical results), and every intermediate
//! value has a fixed place in a per-thread scratch arena, so a call allocates nothing. A
//! batch-1 call of an 80-100-100-1 MLP is bound by streaming its 75 kB of weights from L2
//! (they do not fit L1); behind a ReLU the weight rows of zero inputs are skipped, and it takes
//! about 0.9 us on a 2.45 GHz Zen 3 core (0.72 us on the AVX-512 EPYC of bench_cxx). Graphs with
//! anything else are not recognised ([`recognise`] says why) and [`super::open`] gives them to
//! tract.
//!
//! Results agree with ONNX Runtime within float rounding (sums are accumulated in a different
//! order); the tests hold them to 1e-5.

use super::{Engine, EngineError, Model, ModelInfo, Tensor};
use std::cell::RefCell;
use std::collections::HashMap;
use tract_onnx::pb;

/// Rows evaluated together (the arena holds this many rows of every value).
const TILE: usize = 8;

/// Where a per-event value lives in the arena: `TILE` rows of `width` floats from `off * TILE`.
#[derive(Debug, Clone, Copy)]
struct Slot {
    off: usize,
    width: usize,
}

impl Slot {
    fn range(&self) -> std::ops::Range<usize> {
        self.off * TILE..(self.off + self.width) * TILE
    }
}

#[derive(Debug, Clone)]
enum Operand {
    Value(Slot),
    /// One value for every column, or one per column.
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
    simd: Simd,
    summary: String,
    /// Batches of at least 2 x `SPLIT_MIN` rows are split across this many threads.
    pub threads: usize,
}

const SPLIT_MIN: usize = 4096;

/// Why a graph is not a dense network the native evaluator runs.
fn no(msg: impl Into<String>) -> String {
    msg.into()
}

fn attr<'a>(n: &'a pb::NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

fn attr_i(n: &pb::NodeProto, name: &str, default: i64) -> i64 {
    attr(n, name).map_or(default, |a| a.i)
}

fn attr_f(n: &pb::NodeProto, name: &str, default: f32) -> f32 {
    attr(n, name).map_or(default, |a| a.f)
}

/// The values of a float, double or integer initialiser as f32 (dims, data).
fn const_values(t: &pb::TensorProto) -> Result<(Vec<i64>, Vec<f32>), String> {
    use pb::tensor_proto::DataType as D;
    let n: i64 = t.dims.iter().product();
    let raw = &t.raw_data;
    let data: Vec<f32> = match D::try_from(t.data_type) {
        Ok(D::Float) if !raw.is_empty() => raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Ok(D::Float) => t.float_data.clone(),
        Ok(D::Double) if !raw.is_empty() => raw
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        Ok(D::Double) => t.double_data.iter().map(|&v| v as f32).collect(),
        Ok(D::Int64) if !raw.is_empty() => raw
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        Ok(D::Int64) => t.int64_data.iter().map(|&v| v as f32).collect(),
        Ok(D::Int32) if !raw.is_empty() => raw
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
            .collect(),
        Ok(D::Int32) => t.int32_data.iter().map(|&v| v as f32).collect(),
        _ => return Err(format!("constant '{}' of type {}", t.name, t.data_type)),
    };
    if data.len() as i64 != n.max(1) && !(n == 0 && data.is_empty()) {
        return Err(format!(
            "constant '{}': {} values for dims {:?}",
            t.name,
            data.len(),
            t.dims
        ));
    }
    Ok((t.dims.clone(), data))
}

#[derive(Debug, Clone)]
enum Val {
    /// Per-event vector in the arena, with its dimensions after the batch.
    Dyn(Slot, Vec<usize>),
    Const(Vec<i64>, Vec<f32>),
}

struct Builder {
    vals: HashMap<String, Val>,
    ops: Vec<Op>,
    next: usize,
    /// How many nodes / graph outputs read each value (for fusing a bias into its layer).
    uses: HashMap<String, usize>,
}

impl Builder {
    fn alloc(&mut self, width: usize) -> Slot {
        let s = Slot {
            off: self.next,
            width,
        };
        self.next += width;
        s
    }

    fn get(&self, name: &str) -> Result<&Val, String> {
        self.vals.get(name).ok_or_else(|| {
            no(format!(
                "value '{name}' is not computed by a supported node"
            ))
        })
    }

    fn dynamic(&self, name: &str) -> Result<(Slot, Vec<usize>), String> {
        match self.get(name)? {
            Val::Dyn(s, shape) => Ok((*s, shape.clone())),
            Val::Const(..) => Err(no(format!("constant-only computation on '{name}'"))),
        }
    }

    /// A constant broadcast along one per-event vector of `width`: one value or one per column.
    fn broadcast(&self, name: &str, width: usize) -> Result<Vec<f32>, String> {
        match self.get(name)? {
            Val::Const(dims, data) => {
                let lead_ones = dims.len() <= 2 && dims.iter().rev().skip(1).all(|&d| d == 1);
                if data.len() == 1 || (data.len() == width && lead_ones) {
                    Ok(data.clone())
                } else {
                    Err(no(format!(
                        "constant '{name}' of dims {dims:?} does not broadcast over {width} columns"
                    )))
                }
            }
            Val::Dyn(..) => Err(no(format!("'{name}' is not a constant"))),
        }
    }

    fn node(&mut self, n: &pb::NodeProto) -> Result<(), String> {
        let op = n.op_type.as_str();
        let label = if n.name.is_empty() {
            op.to_string()
        } else {
            format!("{} ({op})", n.name)
        };
        if !n.domain.is_empty() && n.domain != "ai.onnx" {
            return Err(no(format!("node {label} of domain {}", n.domain)));
        }
        let input = |i: usize| -> Result<&str, String> {
            n.input
                .get(i)
                .map(String::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| no(format!("node {label} lacks input {i}")))
        };
        let out = n
            .output
            .first()
            .cloned()
            .ok_or_else(|| no(format!("node {label} has no output")))?;
        if n.output.len() > 1 {
            return Err(no(format!("node {label} has several outputs")));
        }
        let val = match op {
            "Constant" => {
                let t = attr(n, "value")
                    .and_then(|a| a.t.as_ref())
                    .ok_or_else(|| no(format!("node {label}: only tensor constants")))?;
                let (dims, data) = const_values(t)?;
                Val::Const(dims, data)
            }
            "Identity" | "Flatten" => {
                let (s, shape) = self.dynamic(input(0)?)?;
                if op == "Flatten" && attr_i(n, "axis", 1) != 1 {
                    return Err(no(format!("node {label}: Flatten axis other than 1")));
                }
                Val::Dyn(
                    s,
                    if op == "Flatten" {
                        vec![s.width]
                    } else {
                        shape
                    },
                )
            }
            "Cast" => {
                use pb::tensor_proto::DataType as D;
                let to = attr_i(n, "to", 0) as i32;
                let ok = [D::Float, D::Double, D::Int64, D::Int32].map(|d| d as i32);
                if !ok.contains(&to) {
                    return Err(no(format!("node {label}: Cast to type {to}")));
                }
                self.get(input(0)?)?.clone()
            }
            "Reshape" => {
                let (s, _) = self.dynamic(input(0)?)?;
                let shape = match self.get(input(1)?)? {
                    Val::Const(_, d) => d.clone(),
                    _ => return Err(no(format!("node {label}: a computed shape"))),
                };
                let row: Vec<usize> = shape.iter().skip(1).map(|&d| d as usize).collect();
                let keeps_rows = matches!(shape.first(), Some(&d) if d == -1.0 || d == 0.0);
                if shape == [-1.0] && s.width == 1 {
                    Val::Dyn(s, vec![])
                } else if keeps_rows
                    && shape[1..].iter().all(|&d| d >= 1.0)
                    && row.iter().product::<usize>() == s.width
                {
                    Val::Dyn(s, row)
                } else {
                    return Err(no(format!(
                        "node {label}: Reshape to {shape:?} mixes events"
                    )));
                }
            }
            "MatMul" | "Gemm" => {
                let (src, shape) = self.dynamic(input(0)?)?;
                if shape.len() != 1 {
                    return Err(no(format!(
                        "node {label} on a rank-{} input",
                        shape.len() + 1
                    )));
                }
                let (dims, w) = match self.get(input(1)?)? {
                    Val::Const(d, w) if d.len() == 2 => (d.clone(), w.clone()),
                    _ => return Err(no(format!("node {label}: weights not a constant matrix"))),
                };
                let (alpha, beta) = (attr_f(n, "alpha", 1.0), attr_f(n, "beta", 1.0));
                let trans_b = op == "Gemm" && attr_i(n, "transB", 0) != 0;
                if op == "Gemm" && attr_i(n, "transA", 0) != 0 {
                    return Err(no(format!("node {label}: transA")));
                }
                let (k, nn) = if trans_b {
                    (dims[1] as usize, dims[0] as usize)
                } else {
                    (dims[0] as usize, dims[1] as usize)
                };
                if k != src.width {
                    return Err(no(format!(
                        "node {label}: {} inputs into a {k}-row weight matrix",
                        src.width
                    )));
                }
                // Row-major [k, n] with alpha applied.
                let mut wk = vec![0f32; k * nn];
                for i in 0..k {
                    for j in 0..nn {
                        let v = if trans_b { w[j * k + i] } else { w[i * nn + j] };
                        wk[i * nn + j] = if alpha == 1.0 { v } else { alpha * v };
                    }
                }
                let mut bias = vec![0f32; nn];
                if op == "Gemm" {
                    if let Some(c) = n.input.get(2).filter(|s| !s.is_empty()) {
                        let c = self.broadcast(c, nn)?;
                        for (j, b) in bias.iter_mut().enumerate() {
                            let v = if c.len() == 1 { c[0] } else { c[j] };
                            *b = if beta == 1.0 { v } else { beta * v };
                        }
                    }
                }
                let relu_input = self.ops.iter().any(
                    |o| matches!(o, Op::Act { dst, act: Act::Relu, .. } if dst.off == src.off),
                );
                let dst = self.alloc(nn);
                self.ops.push(Op::Dense {
                    src,
                    dst,
                    layer: Dense::new(k, nn, &wk, bias, relu_input),
                });
                Val::Dyn(dst, vec![nn])
            }
            "Add" | "Sub" | "Mul" | "Div" => {
                let bop = match op {
                    "Add" => BinOp::Add,
                    "Sub" => BinOp::Sub,
                    "Mul" => BinOp::Mul,
                    _ => BinOp::Div,
                };
                let (an, bn) = (input(0)?, input(1)?);
                let (a, b) = (self.get(an)?.clone(), self.get(bn)?.clone());
                let (width, shape) = match (&a, &b) {
                    (Val::Dyn(s, sh), Val::Dyn(t, _)) if s.width == t.width => {
                        (s.width, sh.clone())
                    }
                    (Val::Dyn(s, sh), Val::Const(..)) | (Val::Const(..), Val::Dyn(s, sh)) => {
                        (s.width, sh.clone())
                    }
                    _ => return Err(no(format!("node {label}: operands of different shapes"))),
                };
                let operand = |name: &str, v: &Val| -> Result<Operand, String> {
                    match v {
                        Val::Dyn(s, _) => Ok(Operand::Value(*s)),
                        Val::Const(..) => Ok(Operand::Const(self.broadcast(name, width)?)),
                    }
                };
                let (oa, ob) = (operand(an, &a)?, operand(bn, &b)?);
                // A bias straight after a dense layer that nothing else reads: fold it in.
                if let (BinOp::Add | BinOp::Sub, Operand::Value(s), Operand::Const(c)) =
                    (bop, &oa, &ob)
                {
                    if let Some(Op::Dense { dst, layer, .. }) = self.ops.last_mut() {
                        if dst.off == s.off && self.uses.get(an) == Some(&1) {
                            for (j, b) in layer.bias.iter_mut().enumerate() {
                                let v = if c.len() == 1 { c[0] } else { c[j] };
                                if bop == BinOp::Add {
                                    *b += v
                                } else {
                                    *b -= v
                                }
                            }
                            self.vals.insert(out, Val::Dyn(*s, shape));
                            return Ok(());
                        }
                    }
                }
                let dst = self.alloc(width);
                self.ops.push(Op::Bin {
                    a: oa,
                    b: ob,
                    dst,
                    op: bop,
                });
                Val::Dyn(dst, shape)
            }
            "Relu" | "LeakyRelu" | "Sigmoid" | "Tanh" | "Elu" | "Selu" => {
                let act = match op {
                    "Relu" => Act::Relu,
                    "LeakyRelu" => Act::LeakyRelu(attr_f(n, "alpha", 0.01)),
                    "Sigmoid" => Act::Sigmoid,
                    "Tanh" => Act::Tanh,
                    "Elu" => Act::Elu(attr_f(n, "alpha", 1.0)),
                    _ => Act::Selu(
                        attr_f(n, "alpha", 1.673_263_2),
                        attr_f(n, "gamma", 1.050_701),
                    ),
                };
                let (src, shape) = self.dynamic(input(0)?)?;
                let dst = self.alloc(src.width);
                self.ops.push(Op::Act { src, dst, act });
                Val::Dyn(dst, shape)
            }
            "Softmax" => {
                let (src, shape) = self.dynamic(input(0)?)?;
                let axis = attr_i(n, "axis", -1);
                if shape.len() != 1 || !(axis == -1 || axis == 1) {
                    return Err(no(format!("node {label}: Softmax over axis {axis}")));
                }
                let dst = self.alloc(src.width);
                self.ops.push(Op::Softmax { src, dst });
                Val::Dyn(dst, shape)
            }
            "Concat" => {
                let axis = attr_i(n, "axis", 1);
                let parts: Vec<(Slot, Vec<usize>)> = n
                    .input
                    .iter()
                    .map(|i| self.dynamic(i))
                    .collect::<Result<_, _>>()?;
                if !(axis == 1 || axis == -1) || parts.iter().any(|(_, s)| s.len() != 1) {
                    return Err(no(format!("node {label}: Concat other than of vectors")));
                }
                let width = parts.iter().map(|(s, _)| s.width).sum();
                let dst = self.alloc(width);
                let mut at = 0;
                for (src, _) in parts {
                    self.ops.push(Op::Copy { src, dst, at });
                    at += src.width;
                }
                Val::Dyn(dst, vec![width])
            }
            "ArgMax" => {
                let (src, shape) = self.dynamic(input(0)?)?;
                let axis = attr_i(n, "axis", 0);
                if shape.len() != 1 || !(axis == 1 || axis == -1) {
                    return Err(no(format!("node {label}: ArgMax over axis {axis}")));
                }
                if attr_i(n, "select_last_index", 0) != 0 {
                    return Err(no(format!("node {label}: select_last_index")));
                }
                let dst = self.alloc(1);
                self.ops.push(Op::ArgMax { src, dst });
                let keep = attr_i(n, "keepdims", 1) != 0;
                Val::Dyn(dst, if keep { vec![1] } else { vec![] })
            }
            _ => return Err(no(format!("node {label}: operator {op}"))),
        };
        self.vals.insert(out, val);
        Ok(())
    }

    /// skl2onnx's label lookup: `ArrayFeatureExtractor(classes, argmax)`.
    fn gather(&mut self, n: &pb::NodeProto) -> Result<(), String> {
        let (Some(table), Some(idx), Some(out)) =
            (n.input.first(), n.input.get(1), n.output.first())
        else {
            return Err(no("ArrayFeatureExtractor without its inputs"));
        };
        let table = match self.get(table)? {
            Val::Const(d, t) if d.len() <= 1 => t.clone(),
            _ => return Err(no("ArrayFeatureExtractor over a computed table")),
        };
        let (src, shape) = self.dynamic(idx)?;
        if src.width != 1 {
            return Err(no("ArrayFeatureExtractor with several indices"));
        }
        let dst = self.alloc(1);
        self.ops.push(Op::Gather { src, dst, table });
        self.vals.insert(out.clone(), Val::Dyn(dst, shape));
        Ok(())
    }
}

impl Dense {
    fn new(k: usize, n: usize, w: &[f32], bias: Vec<f32>, relu_input: bool) -> Dense {
        let skip_zeros = relu_input && w.iter().all(|v| v.is_finite());
        if n < 8 {
            let mut t = vec![0f32; n * k];
            for i in 0..k {
                for j in 0..n {
                    t[j * k + i] = w[i * n + j];
                }
            }
            return Dense {
                k,
                n,
                blocks: Vec::new(),
                w: t,
                bias,
                skip_zeros,
            };
        }
        let full = match n {
            48.. => 64,
            24.. => 32,
            12.. => 16,
            _ => 8,
        };
        let mut blocks = vec![full; n / full];
        if !n.is_multiple_of(full) {
            blocks.push((n % full).div_ceil(8) * 8);
        }
        let mut p = vec![0f32; blocks.iter().sum::<usize>() * k];
        let (mut j0, mut at) = (0, 0);
        for &bw in &blocks {
            for i in 0..k {
                for c in 0..bw.min(n - j0) {
                    p[at + i * bw + c] = w[i * n + j0 + c];
                }
            }
            (j0, at) = (j0 + bw, at + k * bw);
        }
        Dense {
            k,
            n,
            blocks,
            w: p,
            bias,
            skip_zeros,
        }
    }
}

/// Whether a graph is a dense network the native evaluator runs: `Ok(())`, or why not.
pub fn recognise(model: &Model) -> Result<(), String> {
    build(model.proto(), model.info()).map(|_| ())
}

type Program = (Vec<Slot>, Vec<Op>, Vec<Output>, usize);

fn build(model: &pb::ModelProto, info: &ModelInfo) -> Result<Program, String> {
    let graph = model.graph.as_ref().ok_or_else(|| no("no graph"))?;
    let mut b = Builder {
        vals: HashMap::new(),
        ops: Vec::new(),
        next: 0,
        uses: HashMap::new(),
    };
    for n in &graph.node {
        for i in &n.input {
            *b.uses.entry(i.clone()).or_default() += 1;
        }
    }
    for o in &graph.output {
        *b.uses.entry(o.name.clone()).or_default() += 1;
    }
    for t in &graph.initializer {
        let (dims, data) = const_values(t)?;
        b.vals.insert(t.name.clone(), Val::Const(dims, data));
    }
    let mut inputs = Vec::new();
    for p in &info.inputs {
        let width = match p.shape.as_slice() {
            [_, Some(w)] if p.elem == "float" => *w,
            _ => {
                return Err(no(format!(
                    "input '{}' is {} {} (the native path takes float [N, k])",
                    p.name,
                    p.elem,
                    p.shape_string()
                )))
            }
        };
        let s = b.alloc(width);
        inputs.push(s);
        b.vals.insert(p.name.clone(), Val::Dyn(s, vec![width]));
    }
    if graph.node.is_empty() {
        return Err(no("an empty graph"));
    }
    for n in &graph.node {
        if n.op_type == "ArrayFeatureExtractor" && n.domain == "ai.onnx.ml" {
            b.gather(n)?;
        } else {
            b.node(n)?;
        }
    }
    if !b.ops.iter().any(|o| matches!(o, Op::Dense { .. })) {
        return Err(no("no dense layer"));
    }
    let mut outputs = Vec::new();
    for o in &graph.output {
        let (slot, row_shape) = b.dynamic(&o.name)?;
        outputs.push(Output {
            name: o.name.clone(),
            slot,
            row_shape,
        });
    }
    Ok((inputs, b.ops, outputs, b.next))
}

/// The instruction set the kernels are compiled for, chosen once at load from what the CPU
/// reports. Every level computes each value with the same operations in the same order (the
/// wider ones only put more columns in a register): the results are bit-identical, as long as
/// FMA is in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Simd {
    Portable,
    /// AVX + FMA (256-bit).
    Fma,
    /// AVX-512F + FMA (512-bit).
    Avx512,
}

impl Simd {
    /// The widest level the CPU has, capped by `HEPML_NATIVE_SIMD` (`portable`, `avx+fma`) when
    /// set: for comparing levels on one machine.
    fn detect() -> Simd {
        let cap = match std::env::var("HEPML_NATIVE_SIMD").as_deref() {
            Ok("portable") => Simd::Portable,
            Ok("avx+fma") | Ok("fma") => Simd::Fma,
            _ => Simd::Avx512,
        };
        Simd::available().min(cap)
    }

    fn available() -> Simd {
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

    fn name(self) -> &'static str {
        match self {
            Simd::Portable => "portable",
            Simd::Fma => "avx+fma",
            Simd::Avx512 => "avx512+fma",
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
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
    acc[..bias.len()].copy_from_slice(bias);
    block_sum::<W, FMA>(wb, x, idx, &mut acc);
    out.copy_from_slice(&acc[..out.len()]);
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
    let m = bias.len();
    // Four separate accumulators (not a 2-D array): LLVM keeps each in registers.
    let (mut a0, mut a1, mut a2, mut a3) = ([0f32; S], [0f32; S], [0f32; S], [0f32; S]);
    for a in [&mut a0, &mut a1, &mut a2, &mut a3] {
        a[..m].copy_from_slice(bias);
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
    o0.copy_from_slice(&a0[..m]);
    o1.copy_from_slice(&a1[..m]);
    o2.copy_from_slice(&a2[..m]);
    o3.copy_from_slice(&a3[..m]);
}

/// Eight rows at once (a whole tile, for AVX-512): as [`dense_rows4`], with each weight load
/// serving eight rows, 32 columns (two 512-bit registers per row) at a time, then 16 and 8 for
/// a block's rest.
#[inline(always)]
fn dense_rows8<const FMA: bool>(l: &Dense, x: [&[f32]; 8], out: [&mut [f32]; 8]) {
    let (k, n) = (l.k, l.n);
    let x = x.map(|r| &r[..k]);
    let mut out = out;
    let (mut j0, mut at) = (0, 0);
    for &bw in &l.blocks {
        let wb = &l.w[at..at + k * bw];
        let mut s0 = 0;
        while s0 < bw && j0 + s0 < n {
            let step = if bw - s0 >= 32 {
                32
            } else if bw - s0 >= 16 {
                16
            } else {
                8
            };
            let m = (n - j0 - s0).min(step);
            let (a, b) = (j0 + s0, j0 + s0 + m.min(bw - s0));
            let o = &mut out;
            match step {
                32 => by_width!(bw, sub_rows8, [32, FMA], (wb, s0, x, &l.bias[a..b], o, a)),
                16 => by_width!(bw, sub_rows8, [16, FMA], (wb, s0, x, &l.bias[a..b], o, a)),
                _ => by_width!(bw, sub_rows8, [8, FMA], (wb, s0, x, &l.bias[a..b], o, a)),
            }
            s0 += step;
        }
        (j0, at) = (j0 + bw, at + k * bw);
    }
}

/// Columns `s0..s0 + S` of a block of width W, for eight rows, into `out[r][a..]`.
#[inline(always)]
fn sub_rows8<const W: usize, const S: usize, const FMA: bool>(
    wb: &[f32],
    s0: usize,
    x: [&[f32]; 8],
    bias: &[f32],
    out: &mut [&mut [f32]; 8],
    a: usize,
) {
    let m = bias.len();
    // Eight named accumulators: LLVM keeps each in a register (an array of arrays spills).
    let mut b = [0f32; S];
    b[..m].copy_from_slice(bias);
    let (mut a0, mut a1, mut a2, mut a3, mut a4, mut a5, mut a6, mut a7) = (b, b, b, b, b, b, b, b);
    for (kk, wr) in wb.chunks_exact(W).enumerate() {
        let w: &[f32; S] = wr[s0..s0 + S].try_into().unwrap_or(&[0.0; S]);
        macro_rules! acc {
            ($($acc:ident $r:literal),*) => {$(
                let xv = x[$r][kk];
                for c in 0..S {
                    $acc[c] = madd::<FMA>(xv, w[c], $acc[c]);
                }
            )*};
        }
        acc!(a0 0, a1 1, a2 2, a3 3, a4 4, a5 5, a6 6, a7 7);
    }
    for (o, v) in out.iter_mut().zip([a0, a1, a2, a3, a4, a5, a6, a7]) {
        o[a..a + m].copy_from_slice(&v[..m]);
    }
}

/// Dot form for layers with few outputs: 8 partial sums per output.
#[inline(always)]
fn dense_row_dot<const FMA: bool>(l: &Dense, x: &[f32], out: &mut [f32]) {
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

#[inline(always)]
fn dense_row<const FMA: bool>(l: &Dense, x: &[f32], out: &mut [f32]) {
    if l.blocks.is_empty() {
        dense_row_dot::<FMA>(l, x, out)
    } else {
        dense_row_blocked::<FMA>(l, x, out)
    }
}

/// ONNX Runtime's logistic form (stable for large |v|).
#[inline]
fn sigmoid(v: f32) -> f32 {
    if v >= 0.0 {
        1.0 / (1.0 + (-v).exp())
    } else {
        let e = v.exp();
        e / (1.0 + e)
    }
}

#[inline]
fn activate(act: Act, v: f32) -> f32 {
    match act {
        Act::Relu => v.max(0.0),
        Act::LeakyRelu(a) => {
            if v >= 0.0 {
                v
            } else {
                a * v
            }
        }
        Act::Sigmoid => sigmoid(v),
        Act::Tanh => v.tanh(),
        Act::Elu(a) => {
            if v >= 0.0 {
                v
            } else {
                a * (v.exp() - 1.0)
            }
        }
        Act::Selu(a, g) => {
            if v > 0.0 {
                g * v
            } else {
                g * (a * v.exp() - a)
            }
        }
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
        let simd = Simd::detect();
        Ok(NativeEngine {
            info,
            inputs,
            ops,
            outputs,
            arena,
            simd,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
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
        let o = self.outputs.get(output).ok_or_else(|| EngineError::Run {
            path: self.path(),
            msg: format!("no output {output} ({} outputs)", self.outputs.len()),
        })?;
        let bad = |input: &str, msg: String| EngineError::Input {
            path: self.path(),
            input: input.to_string(),
            msg,
        };
        if inputs.len() != self.inputs.len() {
            return Err(bad(
                "*",
                format!(
                    "{} inputs given, the model takes {}",
                    inputs.len(),
                    self.inputs.len()
                ),
            ));
        }
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
        if out.len() != batch * o.slot.width {
            return Err(EngineError::Run {
                path: self.path(),
                msg: format!(
                    "output '{}': room for {} values, {batch} events need {}",
                    o.name,
                    out.len(),
                    batch * o.slot.width
                ),
            });
        }
        self.eval(inputs, batch, &mut [(o.slot, out)]);
        Ok(())
    }

    /// Runs checked inputs, copying each requested value out.
    fn eval(&self, inputs: &[&[f32]], batch: usize, outs: &mut [(Slot, &mut [f32])]) {
        self.with_arena(|arena| {
            for r0 in (0..batch).step_by(TILE) {
                let rows = TILE.min(batch - r0);
                self.tile(arena, inputs, r0, rows);
                for (s, out) in outs.iter_mut() {
                    let w = s.width;
                    out[r0 * w..(r0 + rows) * w]
                        .copy_from_slice(&arena[s.off * TILE..s.off * TILE + rows * w]);
                }
            }
        });
    }

    fn with_arena<R>(&self, f: impl FnOnce(&mut [f32]) -> R) -> R {
        let need = self.arena * TILE;
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

    fn tile(&self, arena: &mut [f32], inputs: &[&[f32]], r0: usize, rows: usize) {
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
        run_tile::<false, false>(self, arena, inputs, r0, rows);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,fma")]
unsafe fn tile_fma(e: &NativeEngine, arena: &mut [f32], inputs: &[&[f32]], r0: usize, rows: usize) {
    run_tile::<true, false>(e, arena, inputs, r0, rows)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,fma,avx512f")]
unsafe fn tile_avx512(
    e: &NativeEngine,
    arena: &mut [f32],
    inputs: &[&[f32]],
    r0: usize,
    rows: usize,
) {
    run_tile::<true, true>(e, arena, inputs, r0, rows)
}

#[inline(always)]
fn run_tile<const FMA: bool, const WIDE: bool>(
    e: &NativeEngine,
    arena: &mut [f32],
    inputs: &[&[f32]],
    r0: usize,
    rows: usize,
) {
    for (x, s) in inputs.iter().zip(&e.inputs) {
        let w = s.width;
        arena[s.off * TILE..s.off * TILE + rows * w].copy_from_slice(&x[r0 * w..(r0 + rows) * w]);
    }
    for op in &e.ops {
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
                let mut outs = out[..rows * dst.width].chunks_exact_mut(dst.width);
                let mut r = 0;
                if WIDE && rows == TILE && !layer.blocks.is_empty() {
                    let o: [&mut [f32]; 8] =
                        std::array::from_fn(|_| outs.next().unwrap_or_default());
                    dense_rows8::<FMA>(layer, std::array::from_fn(|i| row(src, *s, i)), o);
                    r = TILE;
                }
                while r + 4 <= rows && !layer.blocks.is_empty() {
                    let (Some(o0), Some(o1), Some(o2), Some(o3)) =
                        (outs.next(), outs.next(), outs.next(), outs.next())
                    else {
                        break;
                    };
                    let x = [0, 1, 2, 3].map(|i| row(src, *s, r + i));
                    let o = [o0, o1, o2, o3];
                    dense_rows4::<FMA>(layer, x, o);
                    r += 4;
                }
                for o in outs {
                    dense_row::<FMA>(layer, row(src, *s, r), o);
                    r += 1;
                }
            }
            Op::Bin { a, b, op, .. } => {
                let w = dst.width;
                for r in 0..rows {
                    let o = &mut out[r * w..(r + 1) * w];
                    let get = |v: &Operand, j: usize| match v {
                        Operand::Value(s) => src[s.off * TILE + r * s.width + j],
                        Operand::Const(c) if c.len() == 1 => c[0],
                        Operand::Const(c) => c[j],
                    };
                    for (j, o) in o.iter_mut().enumerate() {
                        let (x, y) = (get(a, j), get(b, j));
                        *o = match op {
                            BinOp::Add => x + y,
                            BinOp::Sub => x - y,
                            BinOp::Mul => x * y,
                            BinOp::Div => x / y,
                        };
                    }
                }
            }
            Op::Act { src: s, act, .. } => {
                let n = rows * s.width;
                let x = &src[s.range()][..n];
                if *act == Act::Relu {
                    for (o, v) in out[..n].iter_mut().zip(x) {
                        *o = v.max(0.0);
                    }
                } else {
                    for (o, v) in out[..n].iter_mut().zip(x) {
                        *o = activate(*act, *v);
                    }
                }
            }
            Op::Softmax { src: s, .. } => {
                for r in 0..rows {
                    let x = row(src, *s, r);
                    let o = &mut out[r * s.width..(r + 1) * s.width];
                    let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut sum = 0f32;
                    for (o, v) in o.iter_mut().zip(x) {
                        *o = (v - m).exp();
                        sum += *o;
                    }
                    o.iter_mut().for_each(|v| *v /= sum);
                }
            }
            Op::ArgMax { src: s, .. } => {
                for (r, o) in out[..rows].iter_mut().enumerate() {
                    let x = row(src, *s, r);
                    let mut best = 0;
                    for (j, v) in x.iter().enumerate() {
                        if *v > x[best] {
                            best = j;
                        }
                    }
                    *o = best as f32;
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

impl Engine for NativeEngine {
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, EngineError> {
        let ordered = self.info.check_inputs(inputs)?;
        let batch = ordered.first().map_or(0, |t| t.shape[0]);
        let xs: Vec<&[f32]> = ordered.iter().map(|t| t.data.as_slice()).collect();
        let mut data: Vec<Vec<f32>> = self
            .outputs
            .iter()
            .map(|o| vec![0f32; batch * o.slot.width])
            .collect();
        let parts = self.threads.min(batch / SPLIT_MIN).max(1);
        // At least one row per part (an empty batch then runs nothing).
        let per = batch.div_ceil(parts).max(1);
        let mut chunks: Vec<_> = self
            .outputs
            .iter()
            .zip(data.iter_mut())
            .map(|(o, d)| d.chunks_mut((per * o.slot.width).max(1)))
            .collect();
        // Rows are independent: any split gives the same values.
        std::thread::scope(|s| {
            for r0 in (0..batch).step_by(per) {
                let n = per.min(batch - r0);
                let xs: Vec<&[f32]> = xs
                    .iter()
                    .zip(&self.inputs)
                    .map(|(x, i)| &x[r0 * i.width..(r0 + n) * i.width])
                    .collect();
                let mut want: Vec<(Slot, &mut [f32])> = chunks
                    .iter_mut()
                    .zip(&self.outputs)
                    .map(|(c, o)| (o.slot, c.next().unwrap_or_default()))
                    .collect();
                if parts == 1 {
                    self.eval(&xs, n, &mut want);
                } else {
                    s.spawn(move || self.eval(&xs, n, &mut want));
                }
            }
        });
        Ok(self
            .outputs
            .iter()
            .zip(data)
            .map(|(o, d)| {
                let mut shape = vec![batch];
                shape.extend(&o.row_shape);
                Tensor::new(o.name.clone(), shape, d)
            })
            .collect())
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
    /// layers and standardisation in front (as `hepml export` writes them).
    fn network(dir: &std::path::Path, widths: &[usize], act: &str) -> std::path::PathBuf {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
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
            final_act: "Sigmoid".into(),
            metadata: vec![],
            standardise: Some((vec![0.25; n], vec![1.5; n])),
        };
        let path = dir.join(format!("{act}-{widths:?}.onnx"));
        std::fs::write(&path, model.to_bytes()).unwrap();
        path
    }

    /// Every SIMD level, forced one at a time, against the portable (scalar) kernels, which are
    /// themselves held to tract: full tiles of eight rows (AVX-512's 32-, 16- and 8-column
    /// steps), the four-row and single-row remainders, batch 1. A level this CPU lacks cannot
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
        for (widths, act) in [
            (&[80, 100, 100, 1][..], "Relu"),
            (&[7, 24, 40, 3][..], "Tanh"),
            (&[5, 200, 1][..], "Relu"),
        ] {
            let model = Model::read(&network(dir.path(), widths, act)).unwrap();
            let mut e = NativeEngine::load(&model).unwrap();
            let dispatched = e.simd;
            assert_eq!(dispatched, Simd::detect(), "load keeps the detected level");
            let tract = crate::tract::TractEngine::load(&model).unwrap();
            for batch in [1, 5, 37] {
                let x: Vec<f32> = (0..batch * widths[0])
                    .map(|i| ((i * 7919) % 1000) as f32 / 150.0 - 3.0)
                    .collect();
                let input = [Tensor::new("x", vec![batch, widths[0]], x)];
                let mut run = |level: Simd| {
                    e.simd = level;
                    e.run(&input).unwrap().remove(0).data
                };
                let at = format!("{widths:?} batch {batch}");
                let portable = run(Simd::Portable);
                let reference = tract.run(&input).unwrap().remove(0).data;
                let d = max_diff(&portable, &reference);
                assert!(d <= 1e-5, "{at}: portable vs tract {d}");
                assert_eq!(run(dispatched).len(), portable.len());
                let mut fma = None;
                for &level in levels.iter().filter(|l| **l <= have) {
                    let got = run(level);
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
}
