//! From an ONNX graph to the native program: each node recognised (or the reason it is not),
//! values placed in the arena, dense layers packed for the kernels.

use super::{Act, BinOp, Dense, Op, Operand, Output, Slot, TILE};
use crate::ModelInfo;
use std::collections::HashMap;
use tract_onnx::pb;

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
    let (dims, v) = super::graph::tensor_f64(t)?;
    Ok((dims, v.into_iter().map(|x| x as f32).collect()))
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

    /// A constant broadcast along one per-event vector of `width`: one value (repeated here) or
    /// one per column; `width` values either way.
    fn broadcast(&self, name: &str, width: usize) -> Result<Vec<f32>, String> {
        match self.get(name)? {
            Val::Const(dims, data) => {
                let lead_ones = dims.len() <= 2 && dims.iter().rev().skip(1).all(|&d| d == 1);
                if data.len() == 1 {
                    Ok(vec![data[0]; width])
                } else if data.len() == width && lead_ones {
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
                        for (b, &v) in bias.iter_mut().zip(&c) {
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
                        Val::Const(..) => {
                            Ok(Operand::Const(self.broadcast(name, width)?.repeat(TILE)))
                        }
                    }
                };
                let (oa, ob) = (operand(an, &a)?, operand(bn, &b)?);
                // A bias straight after a dense layer that nothing else reads: fold it in.
                if let (BinOp::Add | BinOp::Sub, Operand::Value(s), Operand::Const(c)) =
                    (bop, &oa, &ob)
                {
                    if let Some(Op::Dense { dst, layer, .. }) = self.ops.last_mut() {
                        if dst.off == s.off && self.uses.get(an) == Some(&1) {
                            for (b, &v) in layer.bias.iter_mut().zip(c) {
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
    /// The weights as `n` rows of `k` (row j: what output j reads from each input), unpacked
    /// from either layout.
    pub(super) fn transposed(&self) -> Vec<f32> {
        let (k, n) = (self.k, self.n);
        if self.blocks.is_empty() {
            return self.w.clone();
        }
        let mut t = vec![0f32; n * k];
        let (mut j0, mut at) = (0, 0);
        for &bw in &self.blocks {
            for i in 0..k {
                for c in 0..bw.min(n - j0) {
                    t[(j0 + c) * k + i] = self.w[at + i * bw + c];
                }
            }
            (j0, at) = (j0 + bw, at + k * bw);
        }
        t
    }

    pub(super) fn new(k: usize, n: usize, w: &[f32], bias: Vec<f32>, relu_input: bool) -> Dense {
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

pub(super) type Program = (Vec<Slot>, Vec<Op>, Vec<Output>, usize);

pub(super) fn build(model: &pb::ModelProto, info: &ModelInfo) -> Result<Program, String> {
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
