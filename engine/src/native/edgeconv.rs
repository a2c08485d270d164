//! Recognising a particle-cloud network (ParticleNet's EdgeConv family, as PyTorch exports it)
//! in an ONNX graph, for the native evaluator in `edgeconv_run`.
//!
//! The graph is read backwards from its one output, every node checked by op type, attributes
//! and constants, and at the end every node of the graph must have been accounted for; any
//! other graph is refused with the first node that does not fit, so it goes to ONNX Runtime or
//! tract. The structure recognised:
//!
//! - stems, one per particle collection `s` (particles, secondary vertices): features `f_s
//!   [N, C_s, P_s]`, points `p_s [N, D, P_s]`, mask `m_s [N, 1, P_s]`; `relu(conv(bn(f_s * m_s)))
//!   * m_s` (batch norms before and after the convolution optional, folded into it at load;
//!   older exports take `f_s` unmasked);
//! - the collections concatenated along the points: mask `m`, points `p * m`, features `x * m`
//!   (older exports: `p` and `x` as they are); or one collection and no stem (ParticleNet
//!   itself, as the Run 3 scouting taggers export it): `p * m`, `f * m`, perhaps through a
//!   batch norm and masked again;
//!   `shift = (m == 0) * c` moves masked points far away for the neighbour search;
//! - EdgeConv blocks: the k nearest neighbours of every point by `-|q_i - q_j|^2` (computed as
//!   the export writes it, TopK of k + 1 dropping the first) in `q = points + shift` or `q =
//!   x + shift`; edge features `[x_i, x_j - x_i]` through pointwise 2-D convolutions with
//!   ReLU, averaged over the neighbours, plus a shortcut (a pointwise convolution or `x`
//!   itself), ReLU, times the mask;
//! - a fusion: the blocks' outputs concatenated, a pointwise convolution with ReLU, times the
//!   mask, summed over the points and divided by `max(sum(m), 1)`; or (the first ParticleNet
//!   exports) no fusion, the last block's output times the mask averaged over all the slots;
//!   those exports also leave the stems and the blocks' outputs unmasked and take a batch norm
//!   of the stems' concatenation;
//! - dense layers (`Gemm`, ReLU) and an output made of slices of the last layer, each raw or
//!   through a softmax, concatenated.
//!
//! The index plumbing of the neighbour gather (`Shape`, `Gather`, `Range`, `Reshape`, `Tile`,
//! ...) is checked node by node: the indices must be `topk + n * P` into the features of the
//! same event, so the evaluator can run event by event.

mod knn;

use super::gemm::Packed;
use super::graph::{attrs, label, tensor_f64, Graph, Node, A};
use super::layers::{fold_bn, fold_bn_after, read_bn, read_conv, read_dense, Fc};
use crate::ModelInfo;
use tract_onnx::pb;

/// A particle collection's stem.
#[derive(Debug)]
pub(super) struct Stem {
    /// Input indices (in `ModelInfo::inputs` order).
    pub features: usize,
    pub points: usize,
    pub mask: usize,
    /// The features' channels.
    pub ci: usize,
    /// The convolution with ReLU (batch norm folded in), or none: the features as they are.
    pub conv: Option<Packed>,
    /// Whether the features are masked before the convolution, and its output after it.
    pub premask: bool,
    pub mask_out: bool,
}

impl Stem {
    /// Channels out.
    pub(super) fn width(&self) -> usize {
        self.conv.as_ref().map_or(self.ci, |c| c.co)
    }
}

/// Where an EdgeConv block looks for neighbours.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Knn {
    Points,
    Features,
}

#[derive(Debug)]
pub(super) struct Block {
    pub k: usize,
    pub knn: Knn,
    /// The first edge convolution split by linearity: rows `0..c1` give `(W_a - W_b) x_i + b`,
    /// rows `c1..2 c1` give `W_b x_j`, so `W [x_i, x_j - x_i] + b` is their sum.
    pub first: Packed,
    pub c1: usize,
    /// The following edge convolutions (each with ReLU).
    pub rest: Vec<Packed>,
    /// The shortcut: a pointwise convolution, or `None` for `x` itself.
    pub shortcut: Option<Packed>,
    pub cout: usize,
    /// Whether the output is masked.
    pub masked: bool,
}

/// One piece of the output: columns `start..end` of the last dense layer, maybe softmaxed.
#[derive(Debug, Clone)]
pub(super) struct Part {
    pub start: usize,
    pub end: usize,
    pub softmax: bool,
}

#[derive(Debug)]
pub(super) struct Program {
    pub stems: Vec<Stem>,
    /// The masked points' coordinate shift (`c` above).
    pub shift: f32,
    pub blocks: Vec<Block>,
    /// Blocks whose outputs the fusion concatenates, in order.
    pub fused: Vec<usize>,
    /// The fusion convolution (with ReLU), if any.
    pub fusion: Option<Packed>,
    /// Pooling by the mean over all slots (`ReduceMean`), else over the real points.
    pub mean_pool: bool,
    /// Whether what is pooled is masked first (always, for the mean over the real points).
    pub pool_mask: bool,
    /// A batch norm of the stems' concatenation (`a x + c` per channel), before its mask.
    pub fts_bn: Option<(Vec<f32>, Vec<f32>)>,
    pub fc: Vec<Fc>,
    pub parts: Vec<Part>,
    pub output: String,
    /// Coordinates per point.
    pub dims: usize,
    /// Whether the concatenated features and points are masked (again). With finite inputs
    /// the numbers are the same either way (masked points' outputs are masked after every
    /// layer, and the shift keeps padded points out of real points' neighbours); padding that
    /// overflows a layer gives the graph's NaN only when the evaluator masks where it does.
    pub mask_x: bool,
    pub mask_points: bool,
}

impl Program {
    pub(super) fn out_width(&self) -> usize {
        self.parts.iter().map(|p| p.end - p.start).sum()
    }
}

/// A shape element in the index plumbing: a dimension of a value, or a constant.
#[derive(Debug, PartialEq)]
enum Dim {
    Of(String, i64),
    Const(f64),
}

struct Reader<'a> {
    g: Graph<'a>,
    /// The concatenated mask, its float cast and the shift, once seen.
    mask: Option<String>,
    cm: Option<String>,
    shift: Option<(String, f32)>,
    /// The points, once a block searching in points is seen: the value of their
    /// concatenation (or the one collection's graph input), the collections' inputs, and
    /// whether it is masked.
    points: Option<(String, Vec<String>, bool)>,
    /// Whether the stems' concatenation is masked; its batch norm.
    mask_x: bool,
    fts_bn: Option<(Vec<f32>, Vec<f32>)>,
}

/// Recognises the graph (see the module header), or says which node does not fit.
pub(super) fn recognise(model: &pb::ModelProto, info: &ModelInfo) -> Result<Program, String> {
    let graph = model.graph.as_ref().ok_or("no graph")?;
    let [out] = graph.output.as_slice() else {
        return Err(format!("{} outputs (one expected)", graph.output.len()));
    };
    let mut r = Reader {
        g: Graph::new(graph)?,
        mask: None,
        cm: None,
        shift: None,
        points: None,
        mask_x: true,
        fts_bn: None,
    };
    let (fc_out, parts) = r.tail(&out.name)?;
    let (pooled, fc) = r.dense(&fc_out)?;
    let (blocks, fused, fusion, (mean_pool, pool_mask), stems_x) = r.pool(&pooled)?;
    let (stems, dims) = r.stems(&stems_x, info)?;
    r.g.finish()?;
    let n = fc.last().map_or(0, |l| l.n);
    let parts = parts
        .into_iter()
        .map(|(s, e, softmax)| Part {
            start: s.clamp(0, n as i64) as usize,
            end: e.clamp(0, n as i64) as usize,
            softmax,
        })
        .collect::<Vec<_>>();
    if parts.iter().any(|p| p.end <= p.start) {
        return Err("an empty output slice".into());
    }
    let shift = r.shift.as_ref().map_or(0.0, |s| s.1);
    // Channel counts must chain (the graph's shapes would fail otherwise).
    let mut c = stems.first().map_or(0, Stem::width);
    if stems.iter().any(|s| s.width() != c) {
        return Err("stems of different widths".into());
    }
    for b in &blocks {
        if b.first.ci != c {
            return Err("EdgeConv input width does not chain".into());
        }
        let mut w = b.c1;
        for l in &b.rest {
            if l.ci != w {
                return Err("EdgeConv widths do not chain".into());
            }
            w = l.co;
        }
        match &b.shortcut {
            Some(s) if s.ci == c && s.co == w => {}
            None if c == w => {}
            _ => return Err("EdgeConv shortcut width does not match".into()),
        }
        c = w;
    }
    let cat: usize = fused.iter().map(|&i| blocks[i].cout).sum();
    let pooled_width = fusion.as_ref().map_or(cat, |f| f.co);
    if fusion.as_ref().is_some_and(|f| f.ci != cat) || fc.first().map(|l| l.k) != Some(pooled_width)
    {
        return Err("fusion widths do not chain".into());
    }
    if r.fts_bn
        .as_ref()
        .is_some_and(|(a, _)| a.len() != stems.first().map_or(0, Stem::width))
    {
        return Err("batch norm of the stems of another width".into());
    }
    if fc.windows(2).any(|w| w[0].n != w[1].k) {
        return Err("dense widths do not chain".into());
    }
    Ok(Program {
        stems,
        shift,
        blocks,
        fused,
        fusion,
        mean_pool,
        pool_mask,
        fts_bn: r.fts_bn,
        fc,
        parts,
        output: out.name.clone(),
        dims,
        mask_x: r.mask_x,
        mask_points: r.points.as_ref().is_some_and(|(_, _, masked)| *masked),
    })
}

fn axis_is(n: &Node, name: &str, want: &[i64]) -> Result<(), String> {
    let a = n.attribute.iter().find(|a| a.name == name).map(|a| {
        if a.ints.is_empty() {
            vec![a.i]
        } else {
            a.ints.clone()
        }
    });
    match a {
        Some(v) if want.iter().any(|w| v == [*w]) => Ok(()),
        _ => Err(format!(
            "node {}: {name} {a:?} not supported (expected one of {want:?})",
            label(n)
        )),
    }
}

impl<'a> Reader<'a> {
    fn node(&mut self, v: &str, op: &str) -> Result<&'a Node, String> {
        self.g.node(v, op)
    }

    /// The node producing `v`, an `op` without attributes (but a `Reshape`'s `allowzero` 0,
    /// which is what it means without one), and its `C` inputs.
    fn args<const C: usize>(
        &mut self,
        v: &str,
        op: &str,
    ) -> Result<(&'a Node, [&'a str; C]), String> {
        let n = self.node(v, op)?;
        if op == "Reshape" {
            attrs(n, &[("allowzero", A::Int(0))])?;
        } else {
            attrs(n, &[])?;
        }
        Ok((n, Graph::inputs::<C>(n)?))
    }

    /// The output: `Concat(axis 1)` of parts, or one part; a part is `[Softmax](Slice(y))` or
    /// `[Softmax](y)`. Returns `y` and the parts (start, end, softmax).
    #[allow(clippy::type_complexity)]
    fn tail(&mut self, out: &str) -> Result<(String, Vec<(i64, i64, bool)>), String> {
        let pieces: Vec<String> = match self.g.peek(out)?.op_type.as_str() {
            "Concat" => {
                let n = self.node(out, "Concat")?;
                attrs(n, &[("axis", A::Any)])?;
                axis_is(n, "axis", &[1, -1])?;
                n.input.clone()
            }
            _ => vec![out.to_string()],
        };
        let mut y: Option<String> = None;
        let mut parts = Vec::new();
        for p in pieces {
            let mut v = p;
            let softmax = self.g.peek(&v)?.op_type == "Softmax";
            if softmax {
                let n = self.node(&v, "Softmax")?;
                attrs(n, &[("axis", A::Any)])?;
                axis_is(n, "axis", &[1, -1])?;
                v = Graph::input(n, 0)?.to_string();
            }
            let (src, s, e) = if self.g.peek(&v)?.op_type == "Slice" {
                let (n, [x, st, en, ax, sp]) = self.args::<5>(&v, "Slice")?;
                let ax = self.g.values(ax)?;
                if ax != [1.0] && ax != [-1.0] {
                    return Err(format!("node {}: slice axes {ax:?}", label(n)));
                }
                self.g.expect(sp, &[1.0])?;
                let (st, en) = (self.g.values(st)?, self.g.values(en)?);
                let ([s], [e]) = (st.as_slice(), en.as_slice()) else {
                    return Err(format!("node {}: slice bounds", label(n)));
                };
                if *s < 0.0 || *e < 0.0 {
                    return Err(format!("node {}: negative slice bounds", label(n)));
                }
                (x.to_string(), *s as i64, e.min(1e15) as i64)
            } else {
                (v, 0, i64::MAX)
            };
            match &y {
                None => y = Some(src),
                Some(prev) if *prev == src => {}
                Some(_) => return Err("output pieces from different values".into()),
            }
            parts.push((s, e, softmax));
        }
        Ok((y.ok_or("no output")?, parts))
    }

    /// Dense layers back to the pooled vector (a `Div`).
    fn dense(&mut self, y: &str) -> Result<(String, Vec<Fc>), String> {
        read_dense(&mut self.g, y, &["Div", "ReduceMean"])
    }

    /// `Div(ReduceSum(Mul(f, cm)), Max(ReduceSum(cm), 1))` or `ReduceMean([Mul](f, mask))`
    /// over the points, `f` being `Relu(Conv(Concat(blocks)))` (the fusion) or the last block's
    /// output: the blocks, those fused, the fusion, whether the mean is over all slots and
    /// whether the pooled values are masked, and the stems' features.
    #[allow(clippy::type_complexity)]
    fn pool(
        &mut self,
        v: &str,
    ) -> Result<(Vec<Block>, Vec<usize>, Option<Packed>, (bool, bool), String), String> {
        let mean_pool = self.g.peek(v)?.op_type == "ReduceMean";
        let mut pool_mask = true;
        let f = if mean_pool {
            let rm = self.node(v, "ReduceMean")?;
            reduce_last(&mut self.g, rm, 0)?;
            let x = Graph::input(rm, 0)?;
            if self.g.peek(x)?.op_type == "Mul" {
                let (_, [f, m]) = self.args::<2>(x, "Mul")?;
                self.either_mask(m)?;
                f
            } else {
                pool_mask = false;
                x
            }
        } else {
            let (_, [sum, cnt]) = self.args::<2>(v, "Div")?;
            let rs = self.node(sum, "ReduceSum")?;
            reduce_last(&mut self.g, rs, 0)?;
            let (_, [f, cm]) = self.args::<2>(Graph::input(rs, 0)?, "Mul")?;
            self.cm(cm)?;
            let (_, [c, one]) = self.args::<2>(cnt, "Max")?;
            let rc = self.node(c, "ReduceSum")?;
            reduce_last(&mut self.g, rc, 0)?;
            self.cm(Graph::input(rc, 0)?)?;
            let shp = self.ones(one)?;
            let shp = self.node(shp, "Shape")?;
            attrs(shp, &[])?;
            if Graph::input(shp, 0)? != c {
                return Err(format!("node {}: shape of another value", label(shp)));
            }
            f
        };
        // The fusion is `Relu` of a convolution; anything else a block's output.
        if self.g.peek(f)?.op_type != "Relu" || is_block_output(&self.g, f) {
            let (blocks, _, x) = self.blocks(f)?;
            let last = blocks.len() - 1;
            return Ok((blocks, vec![last], None, (mean_pool, pool_mask), x));
        }
        let relu = self.node(f, "Relu")?;
        let (fusion, cat, _) = self.conv(Graph::input(relu, 0)?, 3)?;
        let cat = self.node(&cat, "Concat")?;
        attrs(cat, &[("axis", A::Int(1))])?;
        let last = cat.input.last().ok_or("an empty Concat")?;
        let (blocks, outs, x) = self.blocks(last)?;
        let fused = cat
            .input
            .iter()
            .map(|i| {
                outs.iter()
                    .position(|o| o == i)
                    .ok_or_else(|| format!("fusion input '{i}' is not an EdgeConv block"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((blocks, fused, Some(fusion), (mean_pool, pool_mask), x))
    }

    /// The concatenated mask `m`, or its float cast.
    fn either_mask(&mut self, m: &str) -> Result<(), String> {
        if self.g.peek(m).is_ok_and(|n| n.op_type == "Cast") {
            self.cm(m)
        } else {
            self.mask(m)
        }
    }

    /// `ConstantOfShape(shape, value 1)`: shape.
    fn ones(&mut self, v: &str) -> Result<&'a str, String> {
        let cos = self.node(v, "ConstantOfShape")?;
        attrs(cos, &[("value", A::Any)])?;
        let val = cos.attribute.first().and_then(|a| a.t.as_ref());
        if val.map(tensor_f64).map(|r| r.map(|(_, v)| v)) != Some(Ok(vec![1.0])) {
            return Err(format!("node {}: not ones", label(cos)));
        }
        Graph::input(cos, 0)
    }

    /// The inputs of `v` = `Concat(., axis 2)`: the collections concatenated along the points.
    fn collections(&mut self, v: &str) -> Result<Vec<String>, String> {
        let cat = self.node(v, "Concat")?;
        attrs(cat, &[("axis", A::Any)])?;
        axis_is(cat, "axis", &[2, -1])?;
        Ok(cat.input.clone())
    }

    /// The float cast of the concatenated mask: `Cast(mask, to float)`, the same value each time.
    fn cm(&mut self, v: &str) -> Result<(), String> {
        if let Some(c) = &self.cm {
            return if c == v {
                Ok(())
            } else {
                Err(format!("'{v}' where the mask '{c}' was expected"))
            };
        }
        let n = self.node(v, "Cast")?;
        attrs(n, &[("to", A::Int(1))])?;
        self.mask(Graph::input(n, 0)?)?;
        self.cm = Some(v.to_string());
        Ok(())
    }

    fn mask(&mut self, v: &str) -> Result<(), String> {
        match &self.mask {
            Some(m) if m == v => Ok(()),
            Some(m) => Err(format!("'{v}' where the mask '{m}' was expected")),
            None => {
                self.mask = Some(v.to_string());
                Ok(())
            }
        }
    }

    /// `Mul(Cast(Equal(mask, 0), float), c)`.
    fn shift(&mut self, v: &str) -> Result<(), String> {
        if let Some((s, _)) = &self.shift {
            return if s == v {
                Ok(())
            } else {
                Err(format!("'{v}' where the shift '{s}' was expected"))
            };
        }
        let (mul, [cast, c]) = self.args::<2>(v, "Mul")?;
        let c = match self.g.values(c)?.as_slice() {
            [c] => *c as f32,
            _ => return Err(format!("node {}: not a scalar", label(mul))),
        };
        let cast = self.node(cast, "Cast")?;
        attrs(cast, &[("to", A::Int(1))])?;
        let (_, [m, z]) = self.args::<2>(Graph::input(cast, 0)?, "Equal")?;
        self.g.expect(z, &[0.0])?;
        self.mask(m)?;
        self.shift = Some((v.to_string(), c));
        Ok(())
    }

    /// The pointwise convolution (see [`read_conv`]) computing `v`, with a batch norm after it
    /// folded in (exports that leave them apart): packed, its input, and the `Conv` node.
    fn conv(&mut self, v: &str, rank: usize) -> Result<(Packed, String, &'a Node), String> {
        let (bn, at) = if self.g.peek(v)?.op_type == "BatchNormalization" {
            let (bn, x) = read_bn(&mut self.g, v)?;
            (Some(bn), x)
        } else {
            (None, v.to_string())
        };
        let n = self.node(&at, "Conv")?;
        let (p, x) = read_conv(&mut self.g, n, rank)?;
        let p = match bn {
            None => p,
            Some(bn) => fold_bn_after(&p, &bn).map_err(|e| format!("node {}: {e}", label(n)))?,
        };
        Ok((p, x, n))
    }

    /// The chain of EdgeConv blocks ending in `out`: the blocks in order, their output values,
    /// and the stems' concatenated features (the first block's input).
    #[allow(clippy::type_complexity)]
    fn blocks(&mut self, out: &str) -> Result<(Vec<Block>, Vec<String>, String), String> {
        let mut blocks = Vec::new();
        let mut outs = Vec::new();
        let mut cur = out.to_string();
        // A block's output, perhaps times the mask; anything else is the stems' features, the
        // chain's start.
        loop {
            let (v, masked) = match self.g.peek(&cur)?.op_type.as_str() {
                "Mul" => {
                    let n = self.g.peek(&cur)?;
                    let [v, m] = Graph::inputs::<2>(n)?;
                    if !is_block_output(&self.g, v) {
                        break;
                    }
                    self.args::<2>(&cur, "Mul")?;
                    self.either_mask(m)?;
                    (v.to_string(), true)
                }
                _ if is_block_output(&self.g, &cur) => (cur.clone(), false),
                _ => break,
            };
            let (mut b, x) = self.block(&v)?;
            b.masked = masked;
            blocks.push(b);
            outs.push(cur.clone());
            cur = x;
        }
        if blocks.is_empty() {
            return Err("no EdgeConv block".into());
        }
        blocks.reverse();
        outs.reverse();
        Ok((blocks, outs, cur))
    }

    /// `Relu(Add(shortcut, ReduceMean(edge convs)))` (before the mask): the block and its input.
    fn block(&mut self, v: &str) -> Result<(Block, String), String> {
        let relu = self.node(v, "Relu")?;
        let (_, [sc, mean]) = self.args::<2>(Graph::input(relu, 0)?, "Add")?;
        let rm = self.node(mean, "ReduceMean")?;
        attrs(rm, &[("axes", A::Any), ("keepdims", A::Int(0))])?;
        axes_are(&mut self.g, rm, &[-1, 3])?;
        let mut h = Graph::input(rm, 0)?.to_string();
        let mut convs = Vec::new();
        loop {
            let relu = self.node(&h, "Relu")?;
            let (p, x, conv) = self.conv(Graph::input(relu, 0)?, 4)?;
            convs.push((p, conv));
            h = x;
            if self.g.peek(&h)?.op_type == "Concat" {
                break;
            }
        }
        convs.reverse();
        let cat = self.node(&h, "Concat")?;
        attrs(cat, &[("axis", A::Int(1))])?;
        let [t, d] = Graph::inputs::<2>(cat)?;
        let (x, k) = self.tile(t)?;
        let (sub, [nb, t2]) = self.args::<2>(d, "Sub")?;
        if t2 != t {
            return Err(format!("node {}: not x_j - x_i", label(sub)));
        }
        let (x2, k2, q) = self.neighbours(nb)?;
        if x2 != x || k2 != k {
            return Err(format!("node {}: neighbours of another value", label(sub)));
        }
        // q = Add(source, shift).
        let (_, [src, shift]) = self.args::<2>(&q, "Add")?;
        self.shift(shift)?;
        let knn = if src == x {
            Knn::Features
        } else {
            self.points(src)?;
            Knn::Points
        };
        let shortcut = if sc == x {
            None
        } else {
            let (p, xs, n) = self.conv(sc, 3)?;
            if xs != x {
                return Err(format!("node {}: shortcut of another value", label(n)));
            }
            Some(p)
        };
        let mut it = convs.into_iter();
        let (first, fnode) = it.next().ok_or("no edge convolution")?;
        let rest: Vec<Packed> = it.map(|(p, _)| p).collect();
        let (c1, c) = (first.co, first.ci / 2);
        if first.ci != 2 * c {
            return Err(format!("node {}: odd edge feature width", label(fnode)));
        }
        let cout = rest.last().map_or(c1, |p| p.co);
        Ok((
            Block {
                k,
                knn,
                first: split_first(&first, c),
                c1,
                rest,
                shortcut,
                cout,
                masked: true,
            },
            x,
        ))
    }

    /// The stems behind the first block's input: `[Mul](., mask)` of `[BatchNormalization]` of
    /// `Concat(stems, axis 2)`, or of one collection's features (no stem, see the module
    /// header).
    fn stems(&mut self, x: &str, info: &ModelInfo) -> Result<(Vec<Stem>, usize), String> {
        let mut cat = if self.g.peek(x).is_ok_and(|n| n.op_type == "Mul") {
            let (_, [cat, m]) = self.args::<2>(x, "Mul")?;
            self.either_mask(m)?;
            cat.to_string()
        } else {
            self.mask_x = false;
            x.to_string()
        };
        if self
            .g
            .peek(&cat)
            .is_ok_and(|n| n.op_type == "BatchNormalization")
        {
            let (bn, c) = read_bn(&mut self.g, &cat)?;
            let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect();
            self.fts_bn = Some((f32s(&bn.a), f32s(&bn.c)));
            cat = c;
        }
        let mask = self.mask.clone().ok_or("no mask")?;
        // The collections: the features', masks' and points' concatenations, or one of each.
        let (feats, masks) = if self.g.peek(&cat).is_ok_and(|n| n.op_type == "Concat") {
            (self.collections(&cat)?, self.collections(&mask)?)
        } else {
            (vec![cat], vec![mask])
        };
        // Found through a block that searches in points.
        let pts = self
            .points
            .as_ref()
            .map(|(_, p, _)| p.clone())
            .ok_or("no block searches neighbours in the points")?;
        if masks.len() != feats.len() || pts.len() != feats.len() {
            return Err("masks, points and features of different collections".into());
        }
        let index = |name: &str| -> Result<usize, String> {
            info.inputs
                .iter()
                .position(|p| p.name == name && p.elem == "float" && p.shape.len() == 3)
                .ok_or_else(|| format!("'{name}' is not a float [N, C, P] graph input"))
        };
        let mut stems = Vec::new();
        let mut dims = None;
        let is_relu = |g: &Graph, v: &str| g.peek(v).is_ok_and(|n| n.op_type == "Relu");
        for ((s, m), p) in feats.iter().zip(&masks).zip(&pts) {
            // `[Mul](Relu(conv([bn](v))), m)`, or (no stem) `v`; `v` = `[Mul](f, m)`.
            let mask_out = self.g.peek(s).is_ok_and(|n| {
                n.op_type == "Mul" && n.input.first().is_some_and(|i| is_relu(&self.g, i))
            });
            let (conv, v) = if mask_out || is_relu(&self.g, s) {
                let r = if mask_out {
                    let (out, [r, m2]) = self.args::<2>(s, "Mul")?;
                    if m2 != m {
                        return Err(format!("node {}: masked by another mask", label(out)));
                    }
                    r
                } else {
                    s.as_str()
                };
                let relu = self.node(r, "Relu")?;
                let (conv, v, _) = self.conv(Graph::input(relu, 0)?, 3)?;
                if self
                    .g
                    .peek(&v)
                    .is_ok_and(|n| n.op_type == "BatchNormalization")
                {
                    let (bn, i) = read_bn(&mut self.g, &v)?;
                    (Some(fold_bn(&conv, &bn)?), i)
                } else {
                    (Some(conv), v)
                }
            } else {
                (None, s.clone())
            };
            let premask = self.g.peek(&v).is_ok();
            let f = if premask {
                let (fm, [f, m3]) = self.args::<2>(&v, "Mul")?;
                if m3 != m {
                    return Err(format!("node {}: masked by another mask", label(fm)));
                }
                f
            } else {
                v.as_str()
            };
            let points = index(p)?;
            let d = info.inputs[points].shape[1].ok_or("points of unknown dimension")?;
            if *dims.get_or_insert(d) != d {
                return Err("points of different dimensions".into());
            }
            let mask = index(m)?;
            if info.inputs[mask].shape[1] != Some(1) {
                return Err(format!("mask '{m}' is not [N, 1, P]"));
            }
            let features = index(f)?;
            let ci = info.inputs[features].shape[1].ok_or("features of unknown channels")?;
            if let Some(c) = conv.as_ref().filter(|c| c.ci != ci) {
                return Err(format!("features '{f}' do not have {} channels", c.ci));
            }
            stems.push(Stem {
                features,
                points,
                mask,
                ci,
                conv,
                premask,
                mask_out,
            });
        }
        Ok((stems, dims.ok_or("no stem")?))
    }
}

/// Whether `v` is an EdgeConv block's output (before any mask): `Relu(Add(..))`.
fn is_block_output(g: &Graph, v: &str) -> bool {
    g.peek(v).is_ok_and(|n| {
        n.op_type == "Relu"
            && n.input
                .first()
                .is_some_and(|i| g.peek(i).is_ok_and(|a| a.op_type == "Add"))
    })
}

/// A reduction (`ReduceSum`, `ReduceMean`) over the last axis (axes -1 or 2 for [N, C, P]).
fn reduce_last(g: &mut Graph, n: &Node, keepdims: i64) -> Result<(), String> {
    attrs(n, &[("axes", A::Any), ("keepdims", A::Int(keepdims))])?;
    axes_are(g, n, &[-1, 2])
}

/// A reduction's or an (un)squeeze's axes (attribute or input) are one of `want` alone.
fn axes_are(g: &mut Graph, n: &Node, want: &[i64]) -> Result<(), String> {
    match g.axes(n)? {
        Some(a) if want.iter().any(|w| a == [*w]) => Ok(()),
        a => Err(format!(
            "node {}: axes {a:?} not supported (expected one of {want:?})",
            label(n)
        )),
    }
}

/// The first edge convolution `W = [W_a | W_b]` (over `[x_i, x_j - x_i]`, `c` channels each)
/// as `[(W_a - W_b); W_b]` over `x`, bias on the first half.
fn split_first(p: &Packed, c: usize) -> Packed {
    let (w, b) = p.unpacked();
    let co = p.co;
    let mut w2 = vec![0f32; 2 * co * c];
    let mut b2 = vec![0f32; 2 * co];
    for o in 0..co {
        for i in 0..c {
            let (wa, wb) = (w[o * 2 * c + i], w[o * 2 * c + c + i]);
            w2[o * c + i] = wa - wb;
            w2[(co + o) * c + i] = wb;
        }
        b2[o] = b[o];
    }
    Packed::new(2 * co, c, &w2, &b2)
}
