//! Recognising a recurrent tagger (DeepDoubleX's family, as keras2onnx exports it) in an ONNX
//! graph, for the native evaluator in `recurrent_run`.
//!
//! The graph is read backwards from its one output, every node checked by op type, attributes
//! and constants, and at the end every node of the graph must have been accounted for; any
//! other graph is refused with the first node that does not fit, so it goes to ONNX Runtime or
//! tract. The structure recognised:
//!
//! - branches, one per input `x [N, T, C]` (constant `T` and `C`), each starting with
//!   `Transpose(x, [0, 2, 1])` and an optional batch norm over the channels, then either
//!   - `Flatten(Transpose(., [0, 2, 1]))`: the normalised input, `T * C` values per event; or
//!   - pointwise 1-D convolutions (kernel size 1, each optionally followed by `Relu`; the batch
//!     norm folded into the first, or into the GRU's input projection when there is none),
//!     `Transpose(., [2, 0, 1])` into a `GRU` (see `gru`) whose final state `Y_h` (`[1, N, H]`)
//!     goes through `Transpose(., [1, 0, 2])` and `Reshape(., [-1 or 0, H])`; its sequence
//!     output `Y` must be unused;
//! - the branches concatenated along axis 1;
//! - dense layers (`Gemm` or `Add(MatMul(., W), b)`), each optionally followed by `Relu`;
//! - optionally a `Softmax` over the last axis.

use super::gemm::Packed;
use super::graph::{attrs, label, Graph, Node, A};
use super::gru::{read_gru, Gru};
use super::layers::{fold_bn, read_bn, read_conv, read_dense, Bn};
use crate::ModelInfo;
use tract_onnx::pb;

/// Where a branch reads its input.
#[derive(Debug)]
pub(super) struct Source {
    /// Input index (in `ModelInfo::inputs` order).
    pub input: usize,
    pub steps: usize,
    pub channels: usize,
}

#[derive(Debug)]
pub(super) enum Branch {
    /// The input normalised per channel (`a x + c`), flattened step-major.
    Flat {
        src: Source,
        a: Vec<f32>,
        c: Vec<f32>,
    },
    /// Pointwise convolutions (with ReLU or not), then a GRU's final state.
    Gru {
        src: Source,
        convs: Vec<(Packed, bool)>,
        gru: Gru,
    },
}

impl Branch {
    pub(super) fn width(&self) -> usize {
        match self {
            Branch::Flat { src, .. } => src.steps * src.channels,
            Branch::Gru { gru, .. } => gru.hidden,
        }
    }
}

#[derive(Debug)]
pub(super) struct Program {
    pub branches: Vec<Branch>,
    /// Dense layers (with ReLU or not) as pointwise convolutions over the events.
    pub dense: Vec<(Packed, bool)>,
    pub softmax: bool,
    pub output: String,
}

impl Program {
    pub(super) fn out_width(&self) -> usize {
        self.dense.last().map_or(0, |(l, _)| l.co)
    }
}

/// Recognises the graph (see the module header), or says which node does not fit.
pub(super) fn recognise(model: &pb::ModelProto, info: &ModelInfo) -> Result<Program, String> {
    let graph = model.graph.as_ref().ok_or("no graph")?;
    let [out] = graph.output.as_slice() else {
        return Err(format!("{} outputs (one expected)", graph.output.len()));
    };
    let mut r = Reader {
        g: Graph::new(graph)?,
        info,
    };
    let mut cur = out.name.clone();
    let softmax = r.g.peek(&cur)?.op_type == "Softmax";
    if softmax {
        let n = r.g.node(&cur, "Softmax")?;
        attrs(n, &[("axis", A::Any)])?;
        last_axis(n, &[1, -1])?;
        cur = Graph::input(n, 0)?.to_string();
    }
    let (cat, dense) = read_dense(&mut r.g, &cur, "Concat")?;
    let dense: Vec<(Packed, bool)> = dense
        .into_iter()
        .map(|l| (Packed::new(l.n, l.k, &l.w, &l.b), l.relu))
        .collect();
    let cat = r.g.node(&cat, "Concat")?;
    attrs(cat, &[("axis", A::Any)])?;
    last_axis(cat, &[1, -1])?;
    let branches = cat
        .input
        .iter()
        .map(|v| r.branch(v))
        .collect::<Result<Vec<_>, _>>()?;
    r.g.finish()?;
    let width: usize = branches.iter().map(Branch::width).sum();
    if dense.first().map(|(l, _)| l.ci) != Some(width) {
        return Err(format!(
            "the branches give {width} values, the first dense layer takes {:?}",
            dense.first().map(|(l, _)| l.ci)
        ));
    }
    if dense.windows(2).any(|w| w[0].0.co != w[1].0.ci) {
        return Err("dense widths do not chain".into());
    }
    Ok(Program {
        branches,
        dense,
        softmax,
        output: out.name.clone(),
    })
}

/// An `axis` attribute (absent: ONNX's default 1) that must be one of `want`.
fn last_axis(n: &Node, want: &[i64]) -> Result<(), String> {
    let a = n
        .attribute
        .iter()
        .find(|a| a.name == "axis")
        .map_or(1, |a| a.i);
    if want.contains(&a) {
        Ok(())
    } else {
        Err(format!("node {}: axis {a} not supported", label(n)))
    }
}

struct Reader<'a> {
    g: Graph<'a>,
    info: &'a ModelInfo,
}

impl<'a> Reader<'a> {
    /// One input of the concatenation.
    fn branch(&mut self, v: &str) -> Result<Branch, String> {
        let n = self.g.peek(v)?;
        match n.op_type.as_str() {
            "Flatten" => {
                let f = self.g.node(v, "Flatten")?;
                attrs(f, &[("axis", A::Int(1))])?;
                let x = self.g.transpose(Graph::input(f, 0)?, &[0, 2, 1])?;
                let (src, bn) = self.source(x)?;
                let (a, c) = match bn {
                    Some(bn) => (
                        bn.a.iter().map(|&v| v as f32).collect(),
                        bn.c.iter().map(|&v| v as f32).collect(),
                    ),
                    None => (vec![1.0; src.channels], vec![0.0; src.channels]),
                };
                Ok(Branch::Flat { src, a, c })
            }
            "Reshape" => self.gru_branch(v),
            _ => Err(format!(
                "value '{v}': node {} where a branch (Flatten, or Reshape of a GRU state) was \
                 expected",
                label(n)
            )),
        }
    }

    /// `Reshape(Transpose(GRU(...)[Y_h], [1, 0, 2]), [-1, H])` and what feeds the GRU.
    fn gru_branch(&mut self, v: &str) -> Result<Branch, String> {
        let rs = self.g.node(v, "Reshape")?;
        attrs(rs, &[("allowzero", A::Int(0))])?;
        let [y, shape] = Graph::inputs::<2>(rs)?;
        let yh = self.g.transpose(y, &[1, 0, 2])?;
        let gn = self.g.node(yh, "GRU")?;
        if gn.output.get(1).map(String::as_str) != Some(yh) {
            return Err(format!(
                "node {}: its sequence output where the final state was expected",
                label(gn)
            ));
        }
        let (mut gru, x) = read_gru(&mut self.g, gn)?;
        let want = gru.hidden as f64;
        match self.g.values(shape)?.as_slice() {
            [d, h] if (*d == -1.0 || *d == 0.0) && *h == want => {}
            s => return Err(format!("node {}: shape {s:?}", label(rs))),
        }
        let mut s = self.g.transpose(&x, &[2, 0, 1])?.to_string();
        let mut convs = Vec::new();
        loop {
            let (relu, conv) = match self.g.peek(&s)?.op_type.as_str() {
                "Relu" => {
                    let r = self.g.node(&s, "Relu")?;
                    attrs(r, &[])?;
                    (true, Graph::input(r, 0)?.to_string())
                }
                "Conv" => (false, s.clone()),
                _ => break,
            };
            let n = self.g.node(&conv, "Conv")?;
            let (p, x) = read_conv(&mut self.g, n, 3)?;
            convs.push((p, relu));
            s = x;
        }
        convs.reverse();
        let (src, bn) = self.source(&s)?;
        if let Some(bn) = bn {
            match convs.first_mut() {
                Some((first, _)) => *first = fold_bn(first, &bn)?,
                None => gru.wx = fold_bn(&gru.wx, &bn)?,
            }
        }
        let mut width = src.channels;
        for p in convs.iter().map(|(p, _)| p).chain([&gru.wx]) {
            if p.ci != width {
                return Err(format!(
                    "branch of '{}': a layer takes {} channels, {width} come",
                    self.info.inputs[src.input].name, p.ci
                ));
            }
            width = p.co;
        }
        Ok(Branch::Gru { src, convs, gru })
    }

    /// `[BatchNormalization](Transpose(x, [0, 2, 1]))` of a graph input `x` `[N, T, C]`.
    fn source(&mut self, v: &str) -> Result<(Source, Option<Bn>), String> {
        let (bn, t) = if self.g.peek(v)?.op_type == "BatchNormalization" {
            let (bn, t) = read_bn(&mut self.g, v)?;
            (Some(bn), t)
        } else {
            (None, v.to_string())
        };
        let x = self.g.transpose(&t, &[0, 2, 1])?;
        if self.g.peek(x).is_ok() {
            return Err(format!("'{x}' is computed, not a graph input"));
        }
        let input = self
            .info
            .inputs
            .iter()
            .position(|p| p.name == x && p.elem == "float")
            .ok_or_else(|| format!("'{x}' is not a float graph input"))?;
        let (steps, channels) = match self.info.inputs[input].shape[..] {
            [_, Some(t), Some(c)] if t > 0 && c > 0 => (t, c),
            ref s => return Err(format!("input '{x}' of shape {s:?} (not [N, T, C] fixed)")),
        };
        if bn.as_ref().is_some_and(|b| b.a.len() != channels) {
            return Err(format!("batch norm of '{x}' of another width"));
        }
        Ok((
            Source {
                input,
                steps,
                channels,
            },
            bn,
        ))
    }
}
