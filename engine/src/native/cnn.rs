//! Recognising a 1-D convolutional or recurrent network in an ONNX graph, for the evaluator in
//! `cnn_run`: DeepBoostedJet's family (ResNet-style blocks of 1-D convolutions with batch norm
//! and residual additions, global average pooling and a dense head, as MXNet and PyTorch
//! export them), DeepJet's (pointwise convolutions into LSTMs and a dense head, as keras2onnx
//! and PyTorch export them) and DeepDoubleX's (pointwise convolutions into GRUs, a flattened
//! input beside them, a dense head, as keras2onnx exports them).
//!
//! The graph is read backwards from its outputs, every node checked by op type, attributes and
//! constants; at the end every node must have been accounted for, or the graph is refused with
//! the first node that does not fit (it then goes to ONNX Runtime or tract). Each event's
//! values are channels-first sequences `(C, L)`; a vector is a sequence of length 1. What is
//! recognised:
//!
//! - inputs `[N, C, L]` or `[N, C, L, 1]` with fixed `C` and `L`;
//! - `Conv`: 1-D (`kernel_shape [k]`, `pads [p, p]` or `auto_pad VALID`, `strides [s]`) or
//!   2-D over `[N, C, L, 1]` (`[k, 1]`, `[p, 0, p, 0]`, strides `[s, 1]` or `[s, s]`);
//!   dilation 1, one group, bias
//!   optional;
//! - `BatchNormalization` (inference), folded into the convolution or dense layer before it when
//!   nothing else reads that layer's output, else applied per channel; `Relu`, fused into the
//!   op before it when nothing else reads that op's output; `LeakyRelu`;
//! - `Add` of two values of one shape (a residual), or `Add(MatMul(x, W), b)` (a dense layer);
//! - `GlobalAveragePool` and `ReduceMean` over the positions, `Identity`, inference `Dropout`,
//!   `Concat` along the channels;
//! - `Flatten` of a value `[N, C, L]` (channel after channel) or of its `Transpose(., [0, 2,
//!   1])` (position after position, as Keras flattens);
//! - `Gemm` (alpha = beta = 1, `transA` 0) on vectors;
//! - `Softmax` and `LogSoftmax` over the channels and `Sigmoid`, on vectors;
//! - inputs `[N, C]` (vectors) and `[N, L, C]` read through `Transpose(x, [0, 2, 1])`;
//!   `Transpose(u, [0, 2, 1])` of a value `u` `[N, L, C]` that is itself such a transpose, or
//!   `Relu`, `Identity` or inference `Dropout` of one (keras2onnx 1.6 transposes around each
//!   convolution and batch norm and applies the activation between, as in DeepDoubleX 94X
//!   V01); `Reshape(u, [-1 or 0, C * L])` as a flatten;
//! - `LSTM` (see `lstm`) or `GRU` (see `gru`) over a sequence, its final state taken as the
//!   exporters take it (see `Reader::recurrent_state`): its input `Transpose(s, [2, 0, 1])` of
//!   a value `[N, C, L]`, or `Transpose(u, [1, 0, 2])` of `u` `[N, L, C]` (a transposed value
//!   or a graph input, its steps perhaps reversed by `Slice`); zero initial states computed
//!   from shapes;
//! - nodes no output depends on (keras2onnx leaves `Shape`/`Slice` chains) are ignored.

use std::collections::HashMap;

use super::gemm::Packed;
use super::graph::{attr_f, attrs, label, Graph, Node, A};
use super::gru::{read_gru, Gru};
use super::layers::{
    conv_bias, dense_weights, fold_bn_after_into, fold_bn_into, gemm_attrs, read_bn, Bn,
};
use super::lstm::{read_lstm, Lstm};
use crate::ModelInfo;
use tract_onnx::pb;

/// One value of an event: `c` channels of `l` positions, of ONNX rank `rank` with the batch
/// (2: `[N, C]`, 3: `[N, C, L]`, 4: `[N, C, L, 1]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Val {
    pub c: usize,
    pub l: usize,
    pub rank: usize,
}

/// A step of the program; `src`/`dst` index [`Program::vals`].
#[derive(Debug)]
pub(super) enum Op {
    /// Input `input` (`[N, C]`, `[N, C, L]` or `[N, C, L, 1]`; `[N, L, C]` when
    /// `channels_last`).
    Load {
        input: usize,
        dst: usize,
        channels_last: bool,
    },
    /// `dst = a src + c` per channel (a batch norm), then ReLU when `relu`.
    Affine {
        src: usize,
        dst: usize,
        a: Vec<f32>,
        c: Vec<f32>,
        relu: bool,
    },
    /// `max(0, x)`, or with `alpha` nonzero a leaky ReLU (`alpha x` below zero).
    Relu {
        src: usize,
        dst: usize,
        alpha: f32,
    },
    /// The same numbers under another shape (a `Flatten` of a vector).
    Copy {
        src: usize,
        dst: usize,
    },
    /// A sequence as a vector: channel after channel (value `c * L + p`), or position after
    /// position (`p * C + c`) when `steps_first`.
    Flatten {
        src: usize,
        dst: usize,
        steps_first: bool,
    },
    /// A convolution (a dense layer is one of kernel 1 over a vector), then ReLU when `relu`.
    Conv {
        src: usize,
        dst: usize,
        w: Packed,
        k: usize,
        pad: usize,
        stride: usize,
        relu: bool,
    },
    Add {
        a: usize,
        b: usize,
        dst: usize,
        relu: bool,
    },
    /// Mean over the positions.
    Pool {
        src: usize,
        dst: usize,
    },
    /// The sources' channels one after the other.
    Concat {
        srcs: Vec<usize>,
        dst: usize,
    },
    /// Softmax over the channels, or its logarithm (`log`).
    Softmax {
        src: usize,
        dst: usize,
        log: bool,
    },
    Sigmoid {
        src: usize,
        dst: usize,
    },
    /// The final state of a recurrent layer over the positions of `src`.
    Recurrent {
        src: usize,
        dst: usize,
        cell: Cell,
    },
}

/// A recurrent layer.
#[derive(Debug)]
pub(super) enum Cell {
    Lstm(Lstm),
    Gru(Gru),
}

impl Cell {
    fn hidden(&self) -> usize {
        match self {
            Cell::Lstm(l) => l.hidden,
            Cell::Gru(g) => g.hidden,
        }
    }

    /// Input channels.
    fn input(&self) -> usize {
        match self {
            Cell::Lstm(l) => l.input,
            Cell::Gru(g) => g.wx.ci,
        }
    }

    fn reverse(&mut self) -> &mut bool {
        match self {
            Cell::Lstm(l) => &mut l.reverse,
            Cell::Gru(g) => &mut g.reverse,
        }
    }
}

impl Op {
    pub(super) fn dst(&self) -> usize {
        match self {
            Op::Load { dst, .. }
            | Op::Affine { dst, .. }
            | Op::Relu { dst, .. }
            | Op::Copy { dst, .. }
            | Op::Flatten { dst, .. }
            | Op::Conv { dst, .. }
            | Op::Add { dst, .. }
            | Op::Pool { dst, .. }
            | Op::Concat { dst, .. }
            | Op::Softmax { dst, .. }
            | Op::Sigmoid { dst, .. }
            | Op::Recurrent { dst, .. } => *dst,
        }
    }

    pub(super) fn srcs(&self) -> Vec<usize> {
        match self {
            Op::Load { .. } => Vec::new(),
            Op::Affine { src, .. }
            | Op::Relu { src, .. }
            | Op::Copy { src, .. }
            | Op::Flatten { src, .. }
            | Op::Conv { src, .. }
            | Op::Pool { src, .. }
            | Op::Softmax { src, .. }
            | Op::Sigmoid { src, .. }
            | Op::Recurrent { src, .. } => vec![*src],
            Op::Add { a, b, .. } => vec![*a, *b],
            Op::Concat { srcs, .. } => srcs.clone(),
        }
    }
}

#[derive(Debug)]
pub(super) struct Program {
    pub vals: Vec<Val>,
    /// In evaluation order.
    pub ops: Vec<Op>,
    /// The graph's outputs (vectors): name and value.
    pub outputs: Vec<(String, usize)>,
    /// Per input (`ModelInfo::inputs` order): channels and positions.
    pub inputs: Vec<Val>,
}

impl Program {
    /// Output values per event, all outputs together.
    pub(super) fn out_width(&self) -> usize {
        self.outputs.iter().map(|(_, v)| self.vals[*v].c).sum()
    }

    pub(super) fn convs(&self) -> usize {
        self.ops
            .iter()
            .filter(|o| matches!(o, Op::Conv { dst, .. } if self.vals[*dst].rank > 2))
            .count()
    }

    /// The LSTMs and the GRUs.
    pub(super) fn cells(&self) -> (usize, usize) {
        let cells = self.ops.iter().filter_map(|o| match o {
            Op::Recurrent { cell, .. } => Some(cell),
            _ => None,
        });
        let lstms = cells.clone().filter(|c| matches!(c, Cell::Lstm(_))).count();
        (lstms, cells.count() - lstms)
    }
}

/// Recognises the graph (see the module header), or says which node does not fit.
pub(super) fn recognise(model: &pb::ModelProto, info: &ModelInfo) -> Result<Program, String> {
    let graph = model.graph.as_ref().ok_or("no graph")?;
    let mut readers: HashMap<&str, usize> = HashMap::new();
    for n in &graph.node {
        for i in n.input.iter().filter(|i| !i.is_empty()) {
            *readers.entry(i.as_str()).or_default() += 1;
        }
    }
    for o in &graph.output {
        *readers.entry(o.name.as_str()).or_default() += 1;
    }
    let mut r = Reader {
        g: Graph::new(graph)?,
        info,
        readers,
        done: HashMap::new(),
        vals: Vec::new(),
        ops: Vec::new(),
        inputs: info
            .inputs
            .iter()
            .map(|_| Val {
                c: 0,
                l: 0,
                rank: 0,
            })
            .collect(),
        depth: 0,
    };
    let names: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    r.g.mark_dead(&names);
    let mut outputs = Vec::new();
    for o in &graph.output {
        let v = r.value(&o.name)?;
        if r.vals[v].rank != 2 {
            return Err(format!(
                "output '{}' is not a vector per event ({:?})",
                o.name, r.vals[v]
            ));
        }
        outputs.push((o.name.clone(), v));
    }
    r.g.finish()?;
    if !r
        .ops
        .iter()
        .any(|o| matches!(o, Op::Conv { k, .. } if *k > 1) || matches!(o, Op::Recurrent { .. }))
    {
        return Err("no convolution over positions and no recurrent layer".into());
    }
    if let Some(i) = r.inputs.iter().position(|v| v.l == 0) {
        return Err(format!("input '{}' is not used", info.inputs[i].name));
    }
    Ok(Program {
        vals: r.vals,
        ops: r.ops,
        outputs,
        inputs: r.inputs,
    })
}

struct Reader<'a> {
    g: Graph<'a>,
    info: &'a ModelInfo,
    /// How many node inputs (and graph outputs) read each value.
    readers: HashMap<&'a str, usize>,
    /// Values already computed: name -> index in `vals`.
    done: HashMap<String, usize>,
    vals: Vec<Val>,
    ops: Vec<Op>,
    inputs: Vec<Val>,
    depth: usize,
}

/// Nested values the recursive reading follows at most.
const MAX_DEPTH: usize = 2000;

impl<'a> Reader<'a> {
    /// The value named `name`, its ops emitted (once) after those of its sources.
    fn value(&mut self, name: &str) -> Result<usize, String> {
        if let Some(&v) = self.done.get(name) {
            return Ok(v);
        }
        // The graph is read by recursion: a bound keeps a pathological chain from the stack.
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("more than {MAX_DEPTH} nodes deep"));
        }
        let v = self.emit(name, false);
        self.depth -= 1;
        let v = v?;
        self.done.insert(name.to_string(), v);
        Ok(v)
    }

    /// Whether nothing but one node reads `name` (so its op may be fused into that node's).
    fn sole(&self, name: &str) -> bool {
        self.readers.get(name) == Some(&1) && !self.done.contains_key(name)
    }

    fn new_val(&mut self, v: Val) -> usize {
        self.vals.push(v);
        self.vals.len() - 1
    }

    fn push(&mut self, val: Val, op: impl FnOnce(usize) -> Op) -> usize {
        let dst = self.new_val(val);
        self.ops.push(op(dst));
        dst
    }

    /// Emits the ops computing `name`, followed by a ReLU when `relu` (fused where the op
    /// allows it).
    fn emit(&mut self, name: &str, relu: bool) -> Result<usize, String> {
        let Ok(n) = self.g.peek(name) else {
            if relu {
                return Err(format!("value '{name}' cannot take a fused ReLU"));
            }
            return self.load(name);
        };
        let v = match n.op_type.as_str() {
            "Relu" => {
                let n = self.g.node(name, "Relu")?;
                attrs(n, &[])?;
                let x = Graph::input(n, 0)?;
                if !relu && self.sole(x) && self.fusable(x) {
                    return self.emit(x, true);
                }
                let src = self.value(x)?;
                let val = self.vals[src];
                self.push(val, |dst| Op::Relu {
                    src,
                    dst,
                    alpha: 0.0,
                })
            }
            "LeakyRelu" if !relu => {
                let n = self.g.node(name, "LeakyRelu")?;
                attrs(n, &[("alpha", A::Any)])?;
                let alpha = attr_f(n, "alpha").unwrap_or(0.01);
                let src = self.value(Graph::input(n, 0)?)?;
                let val = self.vals[src];
                self.push(val, |dst| Op::Relu { src, dst, alpha })
            }
            "BatchNormalization" => {
                let node = self.g.peek(name)?;
                let (bn, x) = read_bn(&mut self.g, name)?;
                // Into the convolution or dense layer before it, when nothing else reads it.
                if self.sole(&x) && self.g.peek(&x).is_ok_and(|p| p.op_type == "Conv") {
                    return self.conv(&x, Some(&bn), relu);
                }
                if self.sole(&x) && self.g.peek(&x).is_ok_and(|p| p.op_type == "Gemm") {
                    return self.gemm(&x, Some(&bn), relu);
                }
                let Bn { a, c } = bn;
                let src = self.value(&x)?;
                let val = self.vals[src];
                if a.len() != val.c {
                    return Err(format!(
                        "node {}: {} channels, its input has {}",
                        label(node),
                        a.len(),
                        val.c
                    ));
                }
                let a = a.iter().map(|&v| v as f32).collect();
                let c = c.iter().map(|&v| v as f32).collect();
                return Ok(self.push(val, |dst| Op::Affine {
                    src,
                    dst,
                    a,
                    c,
                    relu,
                }));
            }
            "Conv" => return self.conv(name, None, relu),
            "Gemm" => return self.gemm(name, None, relu),
            "Add" => return self.add(name, relu),
            _ if relu => return Err(format!("node {} cannot take a fused ReLU", label(n))),
            "GlobalAveragePool" => {
                let n = self.g.node(name, "GlobalAveragePool")?;
                attrs(n, &[])?;
                let src = self.value(Graph::input(n, 0)?)?;
                let Val { c, rank, .. } = self.vals[src];
                if rank < 3 {
                    return Err(format!("node {}: pools a vector", label(n)));
                }
                self.push(Val { c, l: 1, rank }, |dst| Op::Pool { src, dst })
            }
            "ReduceMean" => {
                let n = self.g.node(name, "ReduceMean")?;
                attrs(n, &[("axes", A::Any), ("keepdims", A::Any)])?;
                let src = self.value(Graph::input(n, 0)?)?;
                let Val { c, rank, .. } = self.vals[src];
                let axes = self
                    .g
                    .axes(n)?
                    .ok_or_else(|| format!("node {}: no axes", label(n)))?;
                let mut axes: Vec<i64> = axes
                    .iter()
                    .map(|&a| if a < 0 { a + rank as i64 } else { a })
                    .collect();
                axes.sort_unstable();
                // The positions: axis 2 (and the trailing 1 of a 4-D value).
                let positions: &[i64] = if rank == 4 { &[2, 3] } else { &[2] };
                if rank < 3 || axes != positions && !(rank == 4 && axes == [2]) {
                    return Err(format!(
                        "node {}: mean over axes {axes:?} not supported",
                        label(n)
                    ));
                }
                let keep = n
                    .attribute
                    .iter()
                    .find(|a| a.name == "keepdims")
                    .is_none_or(|a| a.i == 1);
                let rank = if keep { rank } else { rank - axes.len() };
                if rank != 2 && !keep {
                    return Err(format!("node {}: leaves a rank {rank} value", label(n)));
                }
                self.push(Val { c, l: 1, rank }, |dst| Op::Pool { src, dst })
            }
            "Flatten" | "Identity" | "Dropout" => self.pass(name)?,
            "Transpose" => {
                let n = self.g.node(name, "Transpose")?;
                attrs(n, &[("perm", A::Ints(&[0, 2, 1]))])?;
                if n.attribute.is_empty() {
                    return Err(format!("node {}: no perm", label(n)));
                }
                match self.steps_last(Graph::input(n, 0)?)? {
                    (v, false) => v,
                    (_, true) => {
                        return Err(format!("node {}: transposes reversed steps", label(n)))
                    }
                }
            }
            "Reshape" if !self.reads_recurrent(n) => self.reshape_flat(name)?,
            "Reshape" | "Squeeze" | "Gather" => self.recurrent_state(name)?,
            "Concat" => {
                let n = self.g.node(name, "Concat")?;
                attrs(n, &[("axis", A::Int(1))])?;
                if n.attribute.is_empty() {
                    return Err(format!("node {}: no axis", label(n)));
                }
                let srcs = n
                    .input
                    .iter()
                    .map(|i| self.value(i))
                    .collect::<Result<Vec<_>, _>>()?;
                let Val { l, rank, .. } = self.vals[srcs[0]];
                if srcs
                    .iter()
                    .any(|&s| (self.vals[s].l, self.vals[s].rank) != (l, rank))
                {
                    return Err(format!("node {}: inputs of different shapes", label(n)));
                }
                let c = srcs.iter().map(|&s| self.vals[s].c).sum();
                self.push(Val { c, l, rank }, |dst| Op::Concat { srcs, dst })
            }
            "Softmax" | "LogSoftmax" | "Sigmoid" => {
                let op = n.op_type.clone();
                let n = self.g.node(name, &op)?;
                // On a vector, the default axis of every opset (1, or -1 from opset 13) is
                // the channels.
                if op != "Sigmoid" {
                    attrs(n, &[("axis", A::Any)])?;
                    let axis = n.attribute.first().map_or(1, |a| a.i);
                    if axis != 1 && axis != -1 {
                        return Err(format!("node {}: axis {axis} not supported", label(n)));
                    }
                } else {
                    attrs(n, &[])?;
                }
                let src = self.value(Graph::input(n, 0)?)?;
                let val = self.vals[src];
                if val.rank != 2 {
                    return Err(format!("node {}: not on a vector ({val:?})", label(n)));
                }
                if op != "Sigmoid" {
                    let log = op == "LogSoftmax";
                    self.push(val, |dst| Op::Softmax { src, dst, log })
                } else {
                    self.push(val, |dst| Op::Sigmoid { src, dst })
                }
            }
            _ => {
                return Err(format!(
                    "value '{name}': node {} is not part of a 1-D CNN",
                    label(n)
                ))
            }
        };
        Ok(v)
    }

    /// Ops whose ReLU can be fused in.
    fn fusable(&self, name: &str) -> bool {
        self.g.peek(name).is_ok_and(|n| {
            matches!(
                n.op_type.as_str(),
                "Conv" | "Gemm" | "Add" | "BatchNormalization"
            )
        })
    }

    /// A graph input: `[N, C]`, `[N, C, L]` or `[N, C, L, 1]`.
    fn load(&mut self, name: &str) -> Result<usize, String> {
        self.load_as(name, false)
    }

    /// The graph input `x` (`[N, L, C]`) read channels-first, once however many nodes read it
    /// so (a `Transpose(x, [0, 2, 1])`, an LSTM straight on it).
    fn load_steps_last(&mut self, x: &str) -> Result<usize, String> {
        let key = format!("{x}\u{0}channels last");
        if let Some(&v) = self.done.get(&key) {
            return Ok(v);
        }
        let v = self.load_as(x, true)?;
        self.done.insert(key, v);
        Ok(v)
    }

    /// A graph input, `[N, L, C]` read channels-first when `channels_last` (the values of
    /// `Transpose(x, [0, 2, 1])`).
    fn load_as(&mut self, name: &str, channels_last: bool) -> Result<usize, String> {
        let Some(i) = self.info.inputs.iter().position(|p| p.name == name) else {
            return Err(format!("value '{name}' is not computed by a node"));
        };
        let p = &self.info.inputs[i];
        let float = p.elem == "float";
        let (c, l) = match p.shape[..] {
            [_, Some(l), Some(c)] if float && channels_last => (c, l),
            [_, Some(c)] if float && !channels_last => (c, 1),
            [_, Some(c), Some(l)] | [_, Some(c), Some(l), Some(1)] if float && !channels_last => {
                (c, l)
            }
            _ => {
                let want = if channels_last {
                    "[N, L, C]"
                } else {
                    "[N, C], [N, C, L] or [N, C, L, 1]"
                };
                return Err(format!(
                    "input '{name}' of shape {} ({}): {want} of floats expected",
                    p.shape_string(),
                    p.elem
                ));
            }
        };
        if c == 0 || l == 0 {
            return Err(format!("input '{name}' is empty"));
        }
        let val = Val {
            c,
            l,
            rank: p.shape.len(),
        };
        self.inputs[i] = val;
        let v = self.push(val, |dst| Op::Load {
            input: i,
            dst,
            channels_last,
        });
        Ok(v)
    }

    /// `Flatten`, `Identity` and inference `Dropout`: the input itself, flattened for `Flatten`.
    fn pass(&mut self, name: &str) -> Result<usize, String> {
        let op = self.g.peek(name)?.op_type.clone();
        let x = self.pass_input(name)?;
        if op != "Flatten" {
            return self.value(x);
        }
        let (src, steps_first) = self.flat_source(x)?;
        Ok(self.flatten(src, steps_first))
    }

    /// What a flatten of `x` reads: `s` position after position when `x` is `Transpose(s, [0,
    /// 2, 1])` of a computed sequence `s` (Keras's order; a transposed graph input is itself a
    /// sequence, see `load_steps_last`), else `x` channel after channel.
    fn flat_source(&mut self, x: &str) -> Result<(usize, bool), String> {
        let steps_first = self.g.peek(x).is_ok_and(|t| {
            t.op_type == "Transpose" && t.input.first().is_some_and(|s| self.g.peek(s).is_ok())
        });
        let src = if steps_first {
            let s = self.g.transpose(x, &[0, 2, 1])?;
            self.channels_first(s)?
        } else {
            self.value(x)?
        };
        Ok((src, steps_first))
    }

    /// The input of the `Flatten`, `Identity` or inference `Dropout` computing `name`, its
    /// attributes checked.
    fn pass_input(&mut self, name: &str) -> Result<&'a str, String> {
        let n = self.g.peek(name)?;
        let op = n.op_type.clone();
        let n = self.g.node(name, &op)?;
        match op.as_str() {
            "Flatten" => attrs(n, &[("axis", A::Int(1))])?,
            "Identity" => attrs(n, &[])?,
            _ => {
                attrs(n, &[("ratio", A::Any), ("seed", A::Any)])?;
                // The mask output, if any, must be unused.
                if let Some(mask) = n.output.get(1).filter(|m| !m.is_empty()) {
                    if self.readers.contains_key(mask.as_str()) {
                        return Err(format!("node {}: its mask is used", label(n)));
                    }
                }
                match n.input.get(2).filter(|s| !s.is_empty()) {
                    Some(t) if self.g.values(t)? != [0.0] => {
                        return Err(format!("node {}: training_mode is set", label(n)))
                    }
                    _ => {}
                }
                // The ratio input (opset 12+) only matters in training.
                if let Some(r) = n.input.get(1).filter(|s| !s.is_empty()) {
                    self.g.values(r)?;
                }
            }
        }
        Graph::input(n, 0)
    }

    /// `Reshape(u, [-1 or 0, c * l])` of a value that is no recurrent layer's output: a
    /// flatten, as `Flatten` (see `flat_source`).
    fn reshape_flat(&mut self, name: &str) -> Result<usize, String> {
        let rs = self.g.node(name, "Reshape")?;
        attrs(rs, &[("allowzero", A::Int(0))])?;
        let [u, shape] = Graph::inputs::<2>(rs)?;
        let (src, steps_first) = self.flat_source(u)?;
        let Val { c, l, .. } = self.vals[src];
        match self.g.values(shape)?.as_slice() {
            [d, k] if (*d == -1.0 || *d == 0.0) && *k == (c * l) as f64 => {}
            [0.0, -1.0] => {}
            s => return Err(format!("node {}: shape {s:?} not a flatten", label(rs))),
        }
        Ok(self.flatten(src, steps_first))
    }

    /// Whether the `Reshape` `n` reads a recurrent layer's state (`Y_h`, perhaps transposed).
    fn reads_recurrent(&self, n: &Node) -> bool {
        let is_rnn = |v: &str| {
            self.g
                .peek(v)
                .is_ok_and(|p| p.op_type == "LSTM" || p.op_type == "GRU")
        };
        n.input.first().is_some_and(|y| {
            is_rnn(y)
                || self.g.peek(y).is_ok_and(|t| {
                    t.op_type == "Transpose" && t.input.first().is_some_and(|h| is_rnn(h))
                })
        })
    }

    /// The value `src` as a vector per event: itself (a vector), the same numbers (one
    /// position), or flattened channel after channel or position after position.
    fn flatten(&mut self, src: usize, steps_first: bool) -> usize {
        if self.vals[src].rank == 2 {
            return src;
        }
        let Val { c, l, .. } = self.vals[src];
        let val = Val {
            c: c * l,
            l: 1,
            rank: 2,
        };
        if l == 1 {
            // The same numbers as a vector.
            return self.push(val, |dst| Op::Copy { src, dst });
        }
        self.push(val, |dst| Op::Flatten {
            src,
            dst,
            steps_first,
        })
    }

    /// A constant of one integer (a `Gather` index, a `Squeeze` axis).
    fn int(&mut self, v: &str) -> Result<i64, String> {
        match self.g.values(v)?.as_slice() {
            [i] => Ok(*i as i64),
            other => Err(format!("constant '{v}' is {other:?}, one integer expected")),
        }
    }

    /// The final state of an LSTM or a GRU as a vector per event, taken the ways exporters
    /// take it: from `Y_h` (`[1, N, H]`) by `Reshape(., [-1 or 0, H])` (of it or of
    /// `Transpose(., [1, 0, 2])`), `Squeeze(., [0])` or `Gather(., 0 or -1, axis 0)`; or the
    /// sequence output `Y` (`[T, 1, N, H]`) at the last step the layer computes, by
    /// `Gather(Squeeze(Y, [1]), t, axis 0)` or `Gather(Transpose(Squeeze(Y, [1]), [1, 0, 2]),
    /// t, axis 1)`.
    fn recurrent_state(&mut self, name: &str) -> Result<usize, String> {
        let n = self.g.peek(name)?;
        let at = label(n);
        // What is read of which output (0: Y, 1: Y_h); the step index, for Y.
        let (out, step, shape) = match n.op_type.as_str() {
            "Reshape" => {
                let rs = self.g.node(name, "Reshape")?;
                attrs(rs, &[("allowzero", A::Int(0))])?;
                let [y, shape] = Graph::inputs::<2>(rs)?;
                let y = match self.g.peek(y) {
                    Ok(t) if t.op_type == "Transpose" => self.g.transpose(y, &[1, 0, 2])?,
                    _ => y,
                };
                ((y, 1), None, Some(shape))
            }
            "Squeeze" => {
                let y = self.squeeze(name, 0)?;
                ((y, 1), None, None)
            }
            "Gather" => {
                let g = self.g.node(name, "Gather")?;
                attrs(g, &[("axis", A::Any)])?;
                let axis = g.attribute.first().map_or(0, |a| a.i);
                let [y, idx] = Graph::inputs::<2>(g)?;
                let idx = self.int(idx)?;
                match (axis, self.g.peek(y).map(|p| p.op_type.as_str())) {
                    (0, Ok("LSTM" | "GRU")) if idx == 0 || idx == -1 => ((y, 1), None, None),
                    (0, Ok("Squeeze")) => ((self.squeeze(y, 1)?, 0), Some(idx), None),
                    (1, Ok("Transpose")) => {
                        let sq = self.g.transpose(y, &[1, 0, 2])?;
                        ((self.squeeze(sq, 1)?, 0), Some(idx), None)
                    }
                    _ => return Err(format!("node {at}: not the state of an LSTM or a GRU")),
                }
            }
            _ => return Err(format!("node {at}: not the state of an LSTM or a GRU")),
        };
        let (y, which) = out;
        let kind = match self.g.peek(y)?.op_type.as_str() {
            "GRU" => "GRU",
            "LSTM" => "LSTM",
            _ => return Err(format!("node {at}: not the state of an LSTM or a GRU")),
        };
        let ln = self.g.node(y, kind)?;
        if ln.output.get(which).map(String::as_str) != Some(y) {
            return Err(format!(
                "node {}: output {y} where {} was expected",
                label(ln),
                ["Y", "Y_h"][which]
            ));
        }
        let (mut cell, x) = if kind == "GRU" {
            read_gru(&mut self.g, ln).map(|(g, x)| (Cell::Gru(g), x))?
        } else {
            read_lstm(&mut self.g, ln).map(|(l, x)| (Cell::Lstm(l), x))?
        };
        let h = cell.hidden();
        if let Some(shape) = shape {
            match self.g.values(shape)?.as_slice() {
                [d, w] if (*d == -1.0 || *d == 0.0) && *w == h as f64 => {}
                s => return Err(format!("node {at}: shape {s:?}")),
            }
        }
        let (src, flipped) = self.sequence(&x)?;
        let Val { c, l, .. } = self.vals[src];
        if c != cell.input() {
            return Err(format!(
                "node {}: takes {} channels, its input has {c}",
                label(ln),
                cell.input()
            ));
        }
        if let Some(t) = step {
            // Y's steps are in the order of X: the last one computed is the final state.
            let l = l as i64;
            let at_step = if t < 0 { t + l } else { t };
            let last = if *cell.reverse() { 0 } else { l - 1 };
            if at_step != last {
                return Err(format!("node {at}: step {t} of {l} is not the final state"));
            }
        }
        *cell.reverse() ^= flipped;
        let val = Val {
            c: h,
            l: 1,
            rank: 2,
        };
        Ok(self.push(val, |dst| Op::Recurrent { src, dst, cell }))
    }

    /// `Squeeze(v, [axis])`: its input.
    fn squeeze(&mut self, v: &str, axis: i64) -> Result<&'a str, String> {
        let n = self.g.node(v, "Squeeze")?;
        attrs(n, &[("axes", A::Ints(&[axis]))])?;
        match self.g.axes(n)? {
            Some(a) if a == [axis] => Graph::input(n, 0),
            Some(a) => Err(format!("node {}: axes {a:?}", label(n))),
            None => Err(format!("node {}: no axes", label(n))),
        }
    }

    /// A recurrent layer's input `X` (`[T, N, C]`): the channels-first value it is made of,
    /// and whether its steps run backwards. Recognised: `Transpose(s, [2, 0, 1])` of a value
    /// `[N, C, L]`, and `Transpose(u, [1, 0, 2])` of `u` `[N, L, C]`: `Transpose(s, [0, 2, 1])`,
    /// a graph input, or `Slice` reversing the steps of such a `u`.
    fn sequence(&mut self, x: &str) -> Result<(usize, bool), String> {
        let t = self.g.peek(x)?;
        let perm = t
            .attribute
            .first()
            .map(|a| a.ints.clone())
            .unwrap_or_default();
        if t.op_type == "Transpose" && perm == [2, 0, 1] {
            let s = self.g.transpose(x, &[2, 0, 1])?;
            return Ok((self.channels_first(s)?, false));
        }
        let u = self.g.transpose(x, &[1, 0, 2])?;
        self.steps_last(u)
    }

    /// The channels-first value of the sequence `u` (`[N, L, C]`): `Transpose(s, [0, 2, 1])`,
    /// a graph input, or a `Slice` reversing the steps of such a sequence (then `true`).
    fn steps_last(&mut self, u: &str) -> Result<(usize, bool), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("more than {MAX_DEPTH} nodes deep"));
        }
        let r = self.steps_last_at(u);
        self.depth -= 1;
        r
    }

    fn steps_last_at(&mut self, u: &str) -> Result<(usize, bool), String> {
        let Ok(p) = self.g.peek(u) else {
            return Ok((self.load_steps_last(u)?, false));
        };
        match p.op_type.as_str() {
            "Transpose" => {
                let s = self.g.transpose(u, &[0, 2, 1])?;
                Ok((self.channels_first(s)?, false))
            }
            "Slice" => {
                let sl = self.g.node(u, "Slice")?;
                attrs(sl, &[])?;
                let [data, starts, ends, axes, steps] = Graph::inputs::<5>(sl)?;
                let (v, flipped) = self.steps_last(data)?;
                let l = self.vals[v].l as f64;
                let (starts, ends) = (self.g.values(starts)?, self.g.values(ends)?);
                let (axes, steps) = (self.g.values(axes)?, self.g.values(steps)?);
                let reversed = matches!(starts[..], [s] if s == -1.0 || s == l - 1.0)
                    && matches!(ends[..], [e] if e < -l)
                    && matches!(axes[..], [a] if a == 1.0 || a == -2.0)
                    && steps == [-1.0];
                if !reversed {
                    return Err(format!(
                        "node {}: a slice other than the steps reversed",
                        label(sl)
                    ));
                }
                Ok((v, !flipped))
            }
            // Elementwise, so the same in either layout (keras2onnx transposes around each
            // convolution and batch norm and applies the activation between).
            "Identity" | "Dropout" => {
                let x = self.pass_input(u)?;
                self.steps_last(x)
            }
            "Relu" => {
                let key = format!("{u}\u{0}steps last");
                if let Some(&v) = self.done.get(&key) {
                    return Ok((v, false));
                }
                let n = self.g.node(u, "Relu")?;
                attrs(n, &[])?;
                let (src, flipped) = self.steps_last(Graph::input(n, 0)?)?;
                if flipped {
                    return Err(format!("node {}: of reversed steps", label(n)));
                }
                let val = self.vals[src];
                let v = self.push(val, |dst| Op::Relu {
                    src,
                    dst,
                    alpha: 0.0,
                });
                self.done.insert(key, v);
                Ok((v, false))
            }
            _ => Err(format!(
                "value '{u}': node {} where a sequence [N, L, C] was expected",
                label(p)
            )),
        }
    }

    /// A value of rank 3 (`[N, C, L]`).
    fn channels_first(&mut self, s: &str) -> Result<usize, String> {
        let v = self.value(s)?;
        if self.vals[v].rank != 3 {
            return Err(format!(
                "value '{s}': a sequence [N, C, L] expected, found {:?}",
                self.vals[v]
            ));
        }
        Ok(v)
    }

    /// A convolution (with a batch norm after it folded in, and a fused ReLU).
    fn conv(&mut self, name: &str, bn: Option<&Bn>, relu: bool) -> Result<usize, String> {
        let n = self.g.node(name, "Conv")?;
        let [x, w] = [Graph::input(n, 0)?, Graph::input(n, 1)?];
        let (wd, w) = self.g.weights(w)?;
        match wd.len() {
            3 => {}
            4 if wd[3] != 1 => {
                return Err(format!(
                    "node {}: kernel_shape {:?} not supported (weights {wd:?})",
                    label(n),
                    &wd[2..]
                ))
            }
            4 => {}
            _ => return Err(format!("node {}: weights of dims {wd:?}", label(n))),
        }
        let (co, ci, k) = (wd[0] as usize, wd[1] as usize, wd[2] as usize);
        attrs(
            n,
            &[
                ("auto_pad", A::Any),
                ("dilations", A::Any),
                ("group", A::Int(1)),
                ("kernel_shape", A::Any),
                ("pads", A::Any),
                ("strides", A::Any),
            ],
        )?;
        let get = |name: &str| n.attribute.iter().find(|a| a.name == name);
        let bad = |what: &str, v: &[i64]| format!("node {}: {what} {v:?} not supported", label(n));
        let valid = get("auto_pad").is_some_and(|a| a.s == b"VALID");
        if valid && get("pads").is_some_and(|a| a.ints.iter().any(|&p| p != 0)) {
            return Err(format!("node {}: auto_pad VALID with pads", label(n)));
        }
        if let Some(a) = get("auto_pad").filter(|a| a.s != b"NOTSET" && !valid) {
            return Err(format!(
                "node {}: auto_pad {} not supported",
                label(n),
                String::from_utf8_lossy(&a.s)
            ));
        }
        let ints = |name: &str, default: Vec<i64>| get(name).map_or(default, |a| a.ints.clone());
        let nd = wd.len() - 2;
        let kernel = ints("kernel_shape", wd[2..].to_vec());
        if kernel != wd[2..] {
            return Err(bad("kernel_shape", &kernel));
        }
        let dil = ints("dilations", vec![1; nd]);
        if dil.iter().any(|&d| d != 1) {
            return Err(bad("dilations", &dil));
        }
        // Along the positions only: on `[N, C, L, 1]` the second axis has kernel 1 and no
        // padding, so any stride along it leaves its one column.
        let pads = ints("pads", vec![0; 2 * nd]);
        let pad = match pads[..] {
            [p0, p1] if nd == 1 && p0 == p1 && p0 >= 0 => p0 as usize,
            [p0, 0, p1, 0] if nd == 2 && p0 == p1 && p0 >= 0 => p0 as usize,
            _ => return Err(bad("pads", &pads)),
        };
        let strides = ints("strides", vec![1; nd]);
        let stride = match strides[..] {
            [s] if nd == 1 && s >= 1 => s as usize,
            [s, t] if nd == 2 && s >= 1 && t >= 1 => s as usize,
            _ => return Err(bad("strides", &strides)),
        };
        let b = conv_bias(&mut self.g, n, co)?;
        let src = self.value(x)?;
        let val = self.vals[src];
        if val.c != ci {
            return Err(format!(
                "node {}: {ci} input channels, its input has {}",
                label(n),
                val.c
            ));
        }
        if val.l + 2 * pad < k {
            return Err(format!(
                "node {}: kernel {k} longer than the padded input ({})",
                label(n),
                val.l + 2 * pad
            ));
        }
        let l = (val.l + 2 * pad - k) / stride + 1;
        let (mut w, mut b) = post_bn(n, &w, &b, bn)?;
        // Padding is zero after a batch norm: only a convolution without it takes one in.
        let src = if (k, pad) == (1, 0) {
            self.pre_bn(x, src, &mut w, &mut b)
        } else {
            src
        };
        let w = Packed::new(co, ci * k, &w, &b);
        Ok(self.push(
            Val {
                c: co,
                l,
                rank: val.rank,
            },
            |dst| Op::Conv {
                src,
                dst,
                w,
                k,
                pad,
                stride,
                relu,
            },
        ))
    }

    /// A `Gemm` on a vector: a convolution of kernel 1.
    fn gemm(&mut self, name: &str, bn: Option<&Bn>, relu: bool) -> Result<usize, String> {
        let n = self.g.node(name, "Gemm")?;
        let trans_b = gemm_attrs(n)?;
        let x = Graph::input(n, 0)?;
        let b = n.input.get(2).filter(|s| !s.is_empty()).map(String::as_str);
        if n.input.len() > 3 {
            return Err(format!("node {}: extra inputs", label(n)));
        }
        self.dense(n, x, Graph::input(n, 1)?, b, trans_b, bn, relu)
    }

    /// `Add`: a residual (two values of one shape), or `Add(MatMul(x, W), b)`.
    fn add(&mut self, name: &str, relu: bool) -> Result<usize, String> {
        let n = self.g.node(name, "Add")?;
        attrs(n, &[])?;
        let [a, b] = Graph::inputs::<2>(n)?;
        let matmul = |s: &Self, v: &str| s.g.peek(v).is_ok_and(|p| p.op_type == "MatMul");
        let konst = |s: &Self, v: &str| match s.g.peek(v) {
            Ok(p) => p.op_type == "Constant",
            Err(_) => s.info.inputs.iter().all(|p| p.name != v),
        };
        for (mm, bias) in [(a, b), (b, a)] {
            if matmul(self, mm) && konst(self, bias) && self.sole(mm) {
                let m = self.g.node(mm, "MatMul")?;
                attrs(m, &[])?;
                let [x, w] = Graph::inputs::<2>(m)?;
                return self.dense(m, x, w, Some(bias), false, None, relu);
            }
        }
        let (a, b) = (self.value(a)?, self.value(b)?);
        if self.vals[a] != self.vals[b] {
            return Err(format!(
                "node {}: adds {:?} and {:?}",
                label(n),
                self.vals[a],
                self.vals[b]
            ));
        }
        let val = self.vals[a];
        Ok(self.push(val, |dst| Op::Add { a, b, dst, relu }))
    }

    /// A dense layer `W x + b` on a vector (`W` given `[k, n]`, or `[n, k]` when `trans_b`).
    #[allow(clippy::too_many_arguments)]
    fn dense(
        &mut self,
        n: &Node,
        x: &str,
        w: &str,
        b: Option<&str>,
        trans_b: bool,
        bn: Option<&Bn>,
        relu: bool,
    ) -> Result<usize, String> {
        let (nn, kk, w) = dense_weights(&mut self.g, w, trans_b)
            .map_err(|e| format!("node {}: {e}", label(n)))?;
        let b = match b {
            Some(b) => {
                let (bd, bv) = self.g.weights(b)?;
                if bd != [nn as i64] && bd != [1, nn as i64] {
                    return Err(format!("node {}: bias of dims {bd:?}", label(n)));
                }
                bv
            }
            None => vec![0.0; nn],
        };
        let src = self.value(x)?;
        let val = self.vals[src];
        if val.rank != 2 || val.c != kk {
            return Err(format!(
                "node {}: takes {kk} values, its input is {} x {}",
                label(n),
                val.c,
                val.l
            ));
        }
        let (mut w, mut b) = post_bn(n, &w, &b, bn)?;
        let src = self.pre_bn(x, src, &mut w, &mut b);
        let w = Packed::new(nn, kk, &w, &b);
        Ok(self.push(
            Val {
                c: nn,
                l: 1,
                rank: 2,
            },
            |dst| Op::Conv {
                src,
                dst,
                w,
                k: 1,
                pad: 0,
                stride: 1,
                relu,
            },
        ))
    }
}

impl Reader<'_> {
    /// A batch norm applied on its own just before (the last op, an `Affine` without ReLU,
    /// computing `src` = the value `x`) that only this pointwise layer reads: taken off and
    /// folded into the layer's weights `w` (`co x ci`) and biases, `W (a x + c) + b = (W a) x +
    /// (W c + b)` (in double precision). The layer's source: the batch norm's, or `src`.
    fn pre_bn(&mut self, x: &str, src: usize, w: &mut [f32], b: &mut [f32]) -> usize {
        let Some(Op::Affine {
            src: inner,
            dst,
            a,
            c,
            relu: false,
        }) = self.ops.last()
        else {
            return src;
        };
        if *dst != src || self.readers.get(x) != Some(&1) || a.is_empty() {
            return src;
        }
        let bn = Bn {
            a: a.iter().map(|&v| v as f64).collect(),
            c: c.iter().map(|&v| v as f64).collect(),
        };
        fold_bn_into(w, b, &bn);
        let inner = *inner;
        self.ops.pop();
        inner
    }
}

/// Weights (a row per bias) and biases with the batch norm after them folded in (see
/// `fold_bn_after_into`).
fn post_bn(
    n: &Node,
    w: &[f32],
    b: &[f32],
    bn: Option<&Bn>,
) -> Result<(Vec<f32>, Vec<f32>), String> {
    let (mut w, mut b) = (w.to_vec(), b.to_vec());
    if let Some(bn) = bn {
        fold_bn_after_into(&mut w, &mut b, bn).map_err(|e| format!("node {}: {e}", label(n)))?;
    }
    Ok((w, b))
}
