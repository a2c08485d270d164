//! The neighbour search and gather of an EdgeConv block, as the export writes them: the
//! distances, TopK, the index arithmetic (`Shape`, `Gather`, `Range`, `Reshape`) that offsets
//! each event's indices by `n * P`, the gather itself, the tiling of the centre point, and the
//! points' concatenation.

use super::{axes_are, axis_is, label, Dim, Graph, Reader, A};
use crate::native::graph::attrs;

impl<'a> Reader<'a> {
    /// `Tile(Expand(Reshape(x, [N, C, P, 1]), ones), [1, 1, 1, k])`: x and k.
    pub(super) fn tile(&mut self, t: &str) -> Result<(String, usize), String> {
        let (tile, [e, reps]) = self.args::<2>(t, "Tile")?;
        let reps = self.g.values(reps)?;
        let [1.0, 1.0, 1.0, k] = reps.as_slice() else {
            return Err(format!("node {}: repeats {reps:?}", label(tile)));
        };
        let k = *k as usize;
        let mut r = e.to_string();
        if self.g.peek(&r)?.op_type == "Expand" {
            let (_, [a, s]) = self.args::<2>(&r, "Expand")?;
            let shape = self.ones(s)?;
            self.g.expect(shape, &[4.0])?;
            r = a.to_string();
        }
        let (rs, [x, shape]) = self.args::<2>(&r, "Reshape")?;
        let want = [
            Dim::Of(x.into(), 0),
            Dim::Of(x.into(), 1),
            Dim::Of(x.into(), 2),
            Dim::Const(1.0),
        ];
        if self.shape_list(shape)? != want {
            return Err(format!("node {}: not [N, C, P, 1] of its input", label(rs)));
        }
        Ok((x.to_string(), k))
    }

    /// The neighbours' features `[N, C, P, k]` gathered by the top-k indices: x, k and the
    /// points `q` the distances are taken in. Two layouts of the gather, the same numbers:
    /// columns of `[C, N * P]` reshaped to `[C, N, P, k]` and transposed by `[1, 0, 2, 3]`
    /// (weaver's `get_graph_feature_v2`), or rows of `[N * P, C]` reshaped to `[N, P, k, C]`
    /// and transposed by `[0, 3, 1, 2]` (`get_graph_feature_v1`).
    pub(super) fn neighbours(&mut self, nb: &str) -> Result<(String, usize, String), String> {
        let tr = self.node(nb, "Transpose")?;
        attrs(tr, &[("perm", A::Any)])?;
        let rows = match tr.attribute.first().map(|a| a.ints.as_slice()) {
            Some([1, 0, 2, 3]) => false,
            Some([0, 3, 1, 2]) => true,
            p => return Err(format!("node {}: perm {p:?} not supported", label(tr))),
        };
        let (rs, [gat, shape]) = self.args::<2>(Graph::input(tr, 0)?, "Reshape")?;
        let gather = self.node(gat, "Gather")?;
        attrs(gather, &[("axis", A::Int(if rows { 0 } else { 1 }))])?;
        if !rows && gather.attribute.is_empty() {
            return Err(format!("node {}: gathers rows", label(gather)));
        }
        let [data, idx] = Graph::inputs::<2>(gather)?;
        // data = Reshape(Transpose(x, [1, 0, 2]), [C, -1]) or (rows) Reshape(Transpose(x, [0,
        // 2, 1]), [-1, C]).
        let (rd, [xt, dshape]) = self.args::<2>(data, "Reshape")?;
        let xt = self.node(xt, "Transpose")?;
        let tperm: &[i64] = if rows { &[0, 2, 1] } else { &[1, 0, 2] };
        attrs(xt, &[("perm", A::Ints(tperm))])?;
        if xt.attribute.is_empty() {
            return Err(format!("node {}: no perm", label(xt)));
        }
        let x = Graph::input(xt, 0)?.to_string();
        let (c, all) = (Dim::Of(x.clone(), 1), Dim::Const(-1.0));
        let want = if rows { [all, c] } else { [c, all] };
        if self.shape_list(dshape)? != want {
            return Err(format!("node {}: not [C, N * P] or [N * P, C]", label(rd)));
        }
        // idx = Reshape(Add(Slice(TopK(D, k + 1)[1], 1..), Range(N) * P), [-1]), perhaps
        // through a Cast to int64 (of what is int64 already: checked below).
        let idx = if self.g.peek(idx)?.op_type == "Cast" {
            let c = self.node(idx, "Cast")?;
            attrs(c, &[("to", A::Int(7))])?;
            Graph::input(c, 0)?
        } else {
            idx
        };
        let (_, [sum, flat]) = self.args::<2>(idx, "Reshape")?;
        self.g.expect(flat, &[-1.0])?;
        let (_, [sl, off]) = self.args::<2>(sum, "Add")?;
        let (sl, [top, st, en, ax, sp]) = self.args::<5>(sl, "Slice")?;
        self.g.expect(st, &[1.0])?;
        let ax = self.g.values(ax)?;
        if ax != [2.0] && ax != [-1.0] {
            return Err(format!("node {}: axes {ax:?}", label(sl)));
        }
        self.g.expect(sp, &[1.0])?;
        if !matches!(self.g.values(en)?.as_slice(), [e] if *e >= 1e9) {
            return Err(format!("node {}: not to the end", label(sl)));
        }
        let topk = self.node(top, "TopK")?;
        attrs(
            topk,
            &[
                ("axis", A::Any),
                ("largest", A::Int(1)),
                ("sorted", A::Int(1)),
            ],
        )?;
        axis_is(topk, "axis", &[-1, 2])?;
        if topk.output.get(1).map(String::as_str) != Some(top) {
            return Err(format!(
                "node {}: values where indices were expected",
                label(topk)
            ));
        }
        let [dist, kk] = Graph::inputs::<2>(topk)?;
        let k = match self.g.values(kk)?.as_slice() {
            [k] if *k >= 2.0 => *k as usize - 1,
            v => return Err(format!("node {}: k = {v:?}", label(topk))),
        };
        let (mul, [rr, p]) = self.args::<2>(off, "Mul")?;
        if self.dim(p)? != Dim::Of(x.clone(), 2) {
            return Err(format!("node {}: offsets not by P", label(mul)));
        }
        let (_, [range, rshape]) = self.args::<2>(rr, "Reshape")?;
        self.g.expect(rshape, &[-1.0, 1.0, 1.0])?;
        let (range, [r0, rn, r1]) = self.args::<3>(range, "Range")?;
        self.g.expect(r0, &[0.0])?;
        self.g.expect(r1, &[1.0])?;
        let cast = self.node(rn, "Cast")?;
        attrs(cast, &[("to", A::Int(7))])?;
        if self.dim(Graph::input(cast, 0)?)? != Dim::Of(x.clone(), 0) {
            return Err(format!("node {}: range not over N", label(range)));
        }
        let [n, c, p] = [0, 1, 2].map(|i| Dim::Of(x.clone(), i));
        let k_ = Dim::Const(k as f64);
        let want = if rows { [n, p, k_, c] } else { [c, n, p, k_] };
        if self.shape_list(shape)? != want {
            return Err(format!(
                "node {}: not [C, N, P, k] or [N, P, k, C]",
                label(rs)
            ));
        }
        let q = self.distances(dist)?;
        Ok((x, k, q))
    }

    /// `D = (-|q_j|^2 - (q_i . q_j) * -2) - |q_i|^2`: q.
    pub(super) fn distances(&mut self, d: &str) -> Result<String, String> {
        let (_, [s0, tsq]) = self.args::<2>(d, "Sub")?;
        let tsq = self.node(tsq, "Transpose")?;
        attrs(tsq, &[("perm", A::Ints(&[0, 2, 1]))])?;
        let sq = Graph::input(tsq, 0)?;
        let (_, [neg, m2]) = self.args::<2>(s0, "Sub")?;
        let neg = self.node(neg, "Neg")?;
        attrs(neg, &[])?;
        if Graph::input(neg, 0)? != sq {
            return Err(format!("node {}: not |q|^2", label(neg)));
        }
        let (_, [mm, c]) = self.args::<2>(m2, "Mul")?;
        self.g.expect(c, &[-2.0])?;
        let (mm, [qt, q]) = self.args::<2>(mm, "MatMul")?;
        let qt = self.node(qt, "Transpose")?;
        attrs(qt, &[("perm", A::Ints(&[0, 2, 1]))])?;
        if Graph::input(qt, 0)? != q {
            return Err(format!("node {}: not q^T q", label(mm)));
        }
        let rs = self.node(sq, "ReduceSum")?;
        attrs(rs, &[("axes", A::Any), ("keepdims", A::Int(1))])?;
        axes_are(&mut self.g, rs, &[1])?;
        let (pow, [q2, two]) = self.args::<2>(Graph::input(rs, 0)?, "Pow")?;
        self.g.expect(two, &[2.0])?;
        if q2 != q {
            return Err(format!("node {}: |.|^2 of another value", label(pow)));
        }
        Ok(q.to_string())
    }

    /// `Mul(p, mask)` or `p`, `p` the points: `Concat(points, axis 2)` or one collection's
    /// graph input.
    pub(super) fn points(&mut self, v: &str) -> Result<(), String> {
        let masked = self.g.peek(v).is_ok_and(|n| n.op_type == "Mul");
        let c = if masked {
            let (_, [c, m]) = self.args::<2>(v, "Mul")?;
            self.mask(m)?;
            c
        } else {
            v
        };
        if let Some((p, _, m)) = &self.points {
            return if p == c && *m == masked {
                Ok(())
            } else {
                Err(format!("'{c}': a second points value"))
            };
        }
        let inputs = if self.g.peek(c).is_ok() {
            self.collections(c)?
        } else {
            vec![c.to_string()]
        };
        self.points = Some((c.to_string(), inputs, masked));
        Ok(())
    }

    /// `Gather(Shape(v), i)`, possibly behind `Unsqueeze(axes 0)`; or an unsqueezed scalar
    /// constant.
    fn dim(&mut self, v: &str) -> Result<Dim, String> {
        let n = self.g.peek(v)?;
        if n.op_type == "Unsqueeze" {
            let u = self.node(v, "Unsqueeze")?;
            attrs(u, &[("axes", A::Any)])?;
            axes_are(&mut self.g, u, &[0])?;
            let x = Graph::input(u, 0)?;
            // A scalar constant (opset 11 exports unsqueeze k itself).
            if self.g.is_const(x) {
                return match self.g.values(x)?.as_slice() {
                    [v] => Ok(Dim::Const(*v)),
                    v => Err(format!("node {}: unsqueezes {v:?}", label(u))),
                };
            }
            return self.dim(x);
        }
        let g = self.node(v, "Gather")?;
        attrs(g, &[("axis", A::Int(0))])?;
        let [s, i] = Graph::inputs::<2>(g)?;
        let (idims, i) = self.g.konst(i)?;
        let ([i], true) = (i.as_slice(), idims.is_empty()) else {
            return Err(format!("node {}: not a scalar index", label(g)));
        };
        let s = self.node(s, "Shape")?;
        attrs(s, &[])?;
        Ok(Dim::Of(Graph::input(s, 0)?.to_string(), *i as i64))
    }

    /// `Concat(axis 0)` of dimensions and constants.
    fn shape_list(&mut self, v: &str) -> Result<Vec<Dim>, String> {
        let cat = self.node(v, "Concat")?;
        attrs(cat, &[("axis", A::Int(0))])?;
        let mut out = Vec::new();
        for i in &cat.input {
            if self.g.is_const(i) {
                out.extend(self.g.values(i)?.into_iter().map(Dim::Const));
            } else {
                out.push(self.dim(i)?);
            }
        }
        Ok(out)
    }
}
