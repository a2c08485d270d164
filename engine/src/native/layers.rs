//! Reading the layers the graph evaluators share: pointwise convolutions (1-D or 2-D, kernel
//! size 1: the only size these evaluators run; any other is refused by name) with constant
//! weights, inference-mode batch normalisation (folded into the convolution after it), and
//! chains of dense layers (`Gemm`, or `Add(MatMul(x, W), b)` as Keras exports write it, each
//! optionally followed by `Relu`).

use super::gemm::Packed;
use super::graph::{attr_f, attrs, label, Graph, Node, A};

/// A dense layer `y = act(W x + b)`.
#[derive(Debug)]
pub(super) struct Fc {
    pub k: usize,
    pub n: usize,
    /// `n x k`.
    pub w: Vec<f32>,
    pub b: Vec<f32>,
    pub relu: bool,
}

/// An inference-mode batch normalisation: `y = a x + c` per channel, with `a = scale /
/// sqrt(var + eps)`, `c = B - mean a` (in double precision).
#[derive(Debug, Clone)]
pub(super) struct Bn {
    pub a: Vec<f64>,
    pub c: Vec<f64>,
}

/// The `BatchNormalization` producing `v` (over channel axis 1, inference mode): its affine
/// form and its input.
pub(super) fn read_bn(g: &mut Graph, v: &str) -> Result<(Bn, String), String> {
    let bn = g.node(v, "BatchNormalization")?;
    attrs(
        bn,
        &[
            ("epsilon", A::Any),
            ("momentum", A::Any),
            ("spatial", A::Int(1)),
            ("training_mode", A::Int(0)),
        ],
    )?;
    if bn.output.iter().filter(|o| !o.is_empty()).count() != 1 {
        return Err(format!("node {}: training outputs", label(bn)));
    }
    let [i, sc, b, mean, var] = Graph::inputs::<5>(bn)?;
    let eps = attr_f(bn, "epsilon").unwrap_or(1e-5) as f64;
    let sc = g.values(sc)?;
    let b = g.values(b)?;
    let mean = g.values(mean)?;
    let var = g.values(var)?;
    let n = sc.len();
    if [b.len(), mean.len(), var.len()] != [n; 3] {
        return Err(format!(
            "node {}: parameters of different widths",
            label(bn)
        ));
    }
    let a: Vec<f64> = (0..n).map(|k| sc[k] / (var[k] + eps).sqrt()).collect();
    let c = (0..n).map(|k| b[k] - mean[k] * a[k]).collect();
    Ok((Bn { a, c }, i.to_string()))
}

/// A pointwise convolution (`rank` 3: 1-D, 4: 2-D) with constant weights and optional bias:
/// packed, and its input.
pub(super) fn read_conv(g: &mut Graph, n: &Node, rank: usize) -> Result<(Packed, String), String> {
    let ones = vec![1i64; rank - 2];
    let zeros = vec![0i64; 2 * (rank - 2)];
    attrs(
        n,
        &[
            ("auto_pad", A::Any),
            ("dilations", A::Ints(&ones)),
            ("group", A::Int(1)),
            ("kernel_shape", A::Ints(&ones)),
            ("pads", A::Ints(&zeros)),
            ("strides", A::Ints(&ones)),
        ],
    )?;
    // With kernel size 1, stride 1 and no padding every auto_pad mode is the identity but
    // VALID/NOTSET say so plainly; the SAME modes are refused rather than reasoned about.
    if let Some(a) = n.attribute.iter().find(|a| a.name == "auto_pad") {
        if a.s != b"NOTSET" && a.s != b"VALID" {
            return Err(format!(
                "node {}: auto_pad {} not supported",
                label(n),
                String::from_utf8_lossy(&a.s)
            ));
        }
    }
    let x = Graph::input(n, 0)?.to_string();
    let (wd, w) = g.weights(Graph::input(n, 1)?)?;
    if wd.len() != rank || wd[2..].iter().any(|&d| d != 1) {
        return Err(format!("node {}: weights of dims {wd:?}", label(n)));
    }
    let (co, ci) = (wd[0] as usize, wd[1] as usize);
    let b = conv_bias(g, n, co)?;
    Ok((Packed::new(co, ci, &w, &b), x))
}

/// A `Conv` node's bias (input 2, `[co]`; zeros when absent), with no input after it.
pub(super) fn conv_bias(g: &mut Graph, n: &Node, co: usize) -> Result<Vec<f32>, String> {
    let b = match n.input.get(2).filter(|s| !s.is_empty()) {
        Some(b) => {
            let (bd, b) = g.weights(b)?;
            if bd != [co as i64] {
                return Err(format!("node {}: bias of dims {bd:?}", label(n)));
            }
            b
        }
        None => vec![0.0; co],
    };
    if n.input.len() > 3 {
        return Err(format!("node {}: extra inputs", label(n)));
    }
    Ok(b)
}

/// `conv(bn(x))` as one convolution: `W (a x + c) + b = (W diag(a)) x + (W c + b)`.
pub(super) fn fold_bn(conv: &Packed, bn: &Bn) -> Result<Packed, String> {
    if bn.a.len() != conv.ci {
        return Err("batch norm of another width than its convolution".into());
    }
    let (mut w, mut b) = conv.unpacked();
    fold_bn_into(&mut w, &mut b, bn);
    Ok(Packed::new(conv.co, conv.ci, &w, &b))
}

/// A batch norm over a layer's inputs folded into its weights `w` (rows of `bn.a.len()`, one
/// per bias in `b`) in double precision: `W (a x + c) + b = (W diag(a)) x + (W c + b)`.
pub(super) fn fold_bn_into(w: &mut [f32], b: &mut [f32], bn: &Bn) {
    let ci = bn.a.len();
    for (row, bias) in w.chunks_exact_mut(ci.max(1)).zip(b.iter_mut()) {
        let mut shift = *bias as f64;
        for ((wv, a), c) in row.iter_mut().zip(&bn.a).zip(&bn.c) {
            shift += *wv as f64 * c;
            *wv = (*wv as f64 * a) as f32;
        }
        *bias = shift as f32;
    }
}

/// `bn(conv(x))` as one convolution: `a (W x + b) + c = (diag(a) W) x + (a b + c)`.
pub(super) fn fold_bn_after(conv: &Packed, bn: &Bn) -> Result<Packed, String> {
    let (mut w, mut b) = conv.unpacked();
    fold_bn_after_into(&mut w, &mut b, bn)?;
    Ok(Packed::new(conv.co, conv.ci, &w, &b))
}

/// A batch norm after a layer folded into its weights `w` (one row per bias in `b`) and
/// biases, in double precision: `a (W x + b) + c = (diag(a) W) x + (a b + c)`.
pub(super) fn fold_bn_after_into(w: &mut [f32], b: &mut [f32], bn: &Bn) -> Result<(), String> {
    if bn.a.len() != b.len() {
        return Err(format!(
            "{} outputs, the batch norm after them {}",
            b.len(),
            bn.a.len()
        ));
    }
    let per = w.len() / b.len().max(1);
    for (o, (row, bias)) in w.chunks_exact_mut(per.max(1)).zip(b.iter_mut()).enumerate() {
        for v in row {
            *v = (*v as f64 * bn.a[o]) as f32;
        }
        *bias = (*bias as f64 * bn.a[o] + bn.c[o]) as f32;
    }
    Ok(())
}

/// Checks a `Gemm` node's attributes (alpha = beta = 1, `transA` 0): whether it has `transB`.
pub(super) fn gemm_attrs(n: &Node) -> Result<bool, String> {
    attrs(
        n,
        &[
            ("alpha", A::Any),
            ("beta", A::Any),
            ("transA", A::Int(0)),
            ("transB", A::Any),
        ],
    )?;
    if attr_f(n, "alpha").unwrap_or(1.0) != 1.0 || attr_f(n, "beta").unwrap_or(1.0) != 1.0 {
        return Err(format!("node {}: alpha/beta other than 1", label(n)));
    }
    Ok(n.attribute.iter().any(|a| a.name == "transB" && a.i == 1))
}

/// A dense layer's constant weights `w` (`[k, n]`, or `[n, k]` when `trans_b`) as `n`, `k` and
/// the `n x k` matrix.
pub(super) fn dense_weights(
    g: &mut Graph,
    w: &str,
    trans_b: bool,
) -> Result<(usize, usize, Vec<f32>), String> {
    let (wd, wv) = g.weights(w)?;
    let [d0, d1] = wd[..] else {
        return Err(format!("weights of dims {wd:?}"));
    };
    let (n, k) = if trans_b { (d0, d1) } else { (d1, d0) };
    let (n, k) = (n as usize, k as usize);
    let w = if trans_b {
        wv
    } else {
        (0..n * k).map(|i| wv[(i % k) * n + i / k]).collect()
    };
    Ok((n, k, w))
}

/// Dense layers back from `y` to a value produced by a node of one of the `stop` types: that
/// value and the layers in order.
pub(super) fn read_dense(
    g: &mut Graph,
    y: &str,
    stop: &[&str],
) -> Result<(String, Vec<Fc>), String> {
    let mut layers = Vec::new();
    let mut cur = y.to_string();
    let mut relu = false;
    loop {
        let n = g.peek(&cur)?;
        let (x, w, b, trans_b) = match n.op_type.as_str() {
            "Relu" if !relu => {
                let n = g.node(&cur, "Relu")?;
                attrs(n, &[])?;
                relu = true;
                cur = Graph::input(n, 0)?.to_string();
                continue;
            }
            "Gemm" => {
                let n = g.node(&cur, "Gemm")?;
                let trans_b = gemm_attrs(n)?;
                let [x, w, b] = Graph::inputs::<3>(n)?;
                (x, w, b, trans_b)
            }
            "Add" => {
                let add = g.node(&cur, "Add")?;
                attrs(add, &[])?;
                let [a0, a1] = Graph::inputs::<2>(add)?;
                let is_mm = g.peek(a0).is_ok_and(|n| n.op_type == "MatMul");
                let (mm, b) = if is_mm { (a0, a1) } else { (a1, a0) };
                let mm = g.node(mm, "MatMul")?;
                attrs(mm, &[])?;
                let [x, w] = Graph::inputs::<2>(mm)?;
                (x, w, b, false)
            }
            op if stop.contains(&op) && !relu && !layers.is_empty() => break,
            _ => {
                return Err(format!(
                    "value '{cur}': node {} where a dense layer was expected",
                    label(n)
                ))
            }
        };
        let (nn, kk, w) =
            dense_weights(g, w, trans_b).map_err(|e| format!("value '{cur}': {e}"))?;
        let (bd, bv) = g.weights(b)?;
        if bd != [nn as i64] && bd != [1, nn as i64] {
            return Err(format!("value '{cur}': bias of dims {bd:?}"));
        }
        layers.push(Fc {
            k: kk,
            n: nn,
            w,
            b: bv,
            relu,
        });
        relu = false;
        cur = x.to_string();
    }
    layers.reverse();
    Ok((cur, layers))
}
