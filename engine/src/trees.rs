//! Native evaluation of ONNX-ML tree ensembles (`TreeEnsembleClassifier` /
//! `TreeEnsembleRegressor`, as skl2onnx and onnxmltools export sklearn/xgboost/lightgbm BDTs):
//! tract rejects binary classifiers with `base_values` and runs trees ~150x slower.
//!
//! The numbers follow ONNX Runtime's CPU kernels (the reference the tests compare against):
//! node modes `BRANCH_LEQ/LT/GTE/GT/EQ/NEQ` and `LEAF`, missing-value tracks (NaN goes to the
//! true branch where `nodes_missing_value_tracks_true` is set), leaf weights summed in f32 in
//! tree order, `base_values`, `aggregate_function` SUM or AVERAGE, post-transforms NONE,
//! LOGISTIC, SOFTMAX, SOFTMAX_ZERO, PROBIT, and ONNX Runtime's rules for binary classifiers that
//! train one score column (sklearn's GradientBoostingClassifier and RandomForestClassifier):
//! `[1 - p, p]` for all-positive weights, `[-s, s]` or `[σ(-s), σ(s)]` otherwise.
//!
//! After the trees a graph may hold what skl2onnx adds: `Identity`, `Cast` of the label or the
//! scores, and `ZipMap` (its output is returned as the `[N, classes]` probability matrix, columns
//! in class-label order, under the ZipMap output's name). Anything else is an error naming the
//! node or attribute, never a guessed value.
//!
//! One deliberate difference: a two-class classifier with weights for both classes gets label
//! `classlabels[1]` or `classlabels[0]`; ONNX Runtime returns the literal 1 or 0 there, which is
//! the same only for labels {0, 1}.

use super::{Engine, EngineError, Model, ModelInfo, Tensor};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use tract_onnx::pb;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
    Leaf,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Post {
    None,
    Logistic,
    Softmax,
    SoftmaxZero,
    Probit,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    mode: Mode,
    missing_yes: bool,
    feature: u32,
    value: f32,
    yes: u32,
    no: u32,
    /// Range into `weights` (leaves).
    w0: u32,
    w1: u32,
}

/// What a graph output carries.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Out {
    Label,
    Scores,
}

#[derive(Debug, Clone)]
enum Kind {
    Regressor {
        average: bool,
    },
    Classifier {
        labels: Vec<i64>,
        /// Two classes, one class id used: ONNX Runtime's "binary case".
        binary: bool,
        all_positive: bool,
    },
}

pub struct TreeEngine {
    pub info: ModelInfo,
    op: String,
    input: String,
    /// Columns the trees read (the input must have at least as many).
    width: usize,
    nodes: Vec<Node>,
    roots: Vec<u32>,
    /// The same trees laid out level by level, when they are shallow.
    levelled: Option<Levelled>,
    /// The levelled trees packed for a branch-free walk, when the ensemble allows it.
    flat: Option<Flat>,
    /// The one class/target every leaf weight goes to, if so (sklearn's binary GBC): the sum
    /// then stays in a register.
    single_target: Option<u32>,
    weights: Vec<(u32, f32)>,
    base: Vec<f32>,
    post: Post,
    /// Score columns.
    n_out: usize,
    kind: Kind,
    outputs: Vec<(String, Out)>,
    /// Batches of at least 2 x `SPLIT_MIN` rows are split across this many threads.
    pub threads: usize,
}

const SPLIT_MIN: usize = 4096;
/// Trees up to this depth get the level-by-level layout.
const MAX_LEVELS: usize = 8;
/// Trees walked together in the level-by-level layout.
const LANES: usize = 8;

/// Shallow trees laid out complete, in heap order (a leaf above the bottom level is repeated
/// into every bottom slot under it), so that `LANES` trees are walked together level by level:
/// no data-dependent loop exits, and independent chains the CPU overlaps. Leaf weights are
/// still added in tree order, so the sums are the same to the bit.
#[derive(Debug, Clone)]
struct Levelled {
    depth: usize,
    /// Per tree, `2^depth - 1` branch nodes.
    inner: Vec<Node>,
    /// Per tree, `2^depth` ranges into `weights`.
    leaves: Vec<(u32, u32)>,
}

impl Levelled {
    fn build(nodes: &[Node], roots: &[u32]) -> Option<Levelled> {
        fn depth(nodes: &[Node], i: usize, d: usize) -> usize {
            let n = &nodes[i];
            if n.mode == Mode::Leaf || d > MAX_LEVELS {
                d
            } else {
                depth(nodes, n.yes as usize, d + 1).max(depth(nodes, n.no as usize, d + 1))
            }
        }
        let d = roots
            .iter()
            .map(|&r| depth(nodes, r as usize, 0))
            .max()
            .unwrap_or(0);
        if d > MAX_LEVELS {
            return None;
        }
        let (ni, nl) = ((1usize << d) - 1, 1usize << d);
        let mut lv = Levelled {
            depth: d,
            inner: Vec::with_capacity(roots.len() * ni),
            leaves: Vec::with_capacity(roots.len() * nl),
        };
        // A branch that is never taken differently: both sides hold the same leaf.
        let filler = Node {
            mode: Mode::Leq,
            missing_yes: false,
            feature: 0,
            value: 0.0,
            yes: 0,
            no: 0,
            w0: 0,
            w1: 0,
        };
        for &r in roots {
            let (i0, l0) = (lv.inner.len(), lv.leaves.len());
            lv.inner.resize(i0 + ni, filler);
            lv.leaves.resize(l0 + nl, (0, 0));
            let mut stack = vec![(0usize, r as usize, 0usize)];
            while let Some((p, i, level)) = stack.pop() {
                let n = &nodes[i];
                if level == d {
                    lv.leaves[l0 + p - ni] = (n.w0, n.w1);
                } else if n.mode == Mode::Leaf {
                    stack.push((2 * p + 1, i, level + 1));
                    stack.push((2 * p + 2, i, level + 1));
                } else {
                    lv.inner[i0 + p] = *n;
                    stack.push((2 * p + 1, n.yes as usize, level + 1));
                    stack.push((2 * p + 2, n.no as usize, level + 1));
                }
            }
        }
        Some(lv)
    }
}

/// The common binary ensemble (sklearn GBC, xgboost, LightGBM) packed tight: levelled trees,
/// one comparison mode, each leaf one weight for the one target. A branch node is 8 bytes
/// (feature, with the missing-goes-yes flag in the top bit, and threshold), a leaf 4, and a
/// tree is walked with no branch at all, so the CPU overlaps many trees. The weights are added
/// in tree order, as [`TreeEngine::accumulate`] does: the same sum to the bit.
#[derive(Debug, Clone)]
struct Flat {
    depth: usize,
    /// `Lt`, else `Leq`.
    lt: bool,
    /// Some node sends missing values (NaN) to its true branch.
    missing: bool,
    nodes: Vec<(u32, f32)>,
    leaves: Vec<f32>,
}

const MISSING_YES: u32 = 1 << 31;

impl Flat {
    fn build(nodes: &[Node], lv: &Levelled, weights: &[(u32, f32)]) -> Option<Flat> {
        let mut modes = nodes.iter().map(|n| n.mode).filter(|m| *m != Mode::Leaf);
        let mode = modes.next().unwrap_or(Mode::Leq);
        if !matches!(mode, Mode::Leq | Mode::Lt) || modes.any(|m| m != mode) {
            return None;
        }
        let leaves = lv
            .leaves
            .iter()
            .map(|&(w0, w1)| (w1 == w0 + 1).then(|| weights[w0 as usize].1))
            .collect::<Option<Vec<f32>>>()?;
        let nodes = lv
            .inner
            .iter()
            .map(|n| {
                (n.feature < MISSING_YES).then_some((
                    n.feature | if n.missing_yes { MISSING_YES } else { 0 },
                    n.value,
                ))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Flat {
            depth: lv.depth,
            lt: mode == Mode::Lt,
            missing: nodes.iter().any(|n| n.0 & MISSING_YES != 0),
            nodes,
            leaves,
        })
    }

    #[inline]
    fn sum(&self, x: &[f32]) -> f32 {
        macro_rules! walk {
            ($lt:literal, $miss:literal) => {
                match self.depth {
                    0 => self.leaves.iter().fold(0.0, |s, w| s + w),
                    1 => self.walk::<1, $lt, $miss>(x),
                    2 => self.walk::<2, $lt, $miss>(x),
                    3 => self.walk::<3, $lt, $miss>(x),
                    4 => self.walk::<4, $lt, $miss>(x),
                    5 => self.walk::<5, $lt, $miss>(x),
                    6 => self.walk::<6, $lt, $miss>(x),
                    7 => self.walk::<7, $lt, $miss>(x),
                    _ => self.walk::<8, $lt, $miss>(x),
                }
            };
        }
        match (self.lt, self.missing) {
            (false, false) => walk!(false, false),
            (false, true) => walk!(false, true),
            (true, false) => walk!(true, false),
            (true, true) => walk!(true, true),
        }
    }

    #[inline(always)]
    fn walk<const D: usize, const LT: bool, const MISS: bool>(&self, x: &[f32]) -> f32 {
        let (ni, nl) = ((1usize << D) - 1, 1usize << D);
        let mut sum = 0f32;
        for (nodes, leaves) in self
            .nodes
            .chunks_exact(ni)
            .zip(self.leaves.chunks_exact(nl))
        {
            let mut p = 0usize;
            for _ in 0..D {
                let (f, t) = nodes[p];
                let v = x[(if MISS { f & !MISSING_YES } else { f }) as usize];
                let mut yes = if LT { v < t } else { v <= t };
                if MISS {
                    // `|` and `&`, not `||`: no branch.
                    yes |= (f & MISSING_YES != 0) & v.is_nan();
                }
                p = 2 * p + 1 + usize::from(!yes);
            }
            sum += leaves[p - ni];
        }
        sum
    }
}

/// Whether a row goes to the node's true branch.
#[inline(always)]
fn goes_yes(n: &Node, x: &[f32]) -> bool {
    let v = x[n.feature as usize];
    if n.mode == Mode::Leq && !n.missing_yes {
        // sklearn's only mode: a predictable branch instead of the jump table.
        return v <= n.value;
    }
    (match n.mode {
        Mode::Leq => v <= n.value,
        Mode::Lt => v < n.value,
        Mode::Gte => v >= n.value,
        Mode::Gt => v > n.value,
        Mode::Eq => v == n.value,
        Mode::Neq => v != n.value,
        Mode::Leaf => false,
    }) || (n.missing_yes && v.is_nan())
}
const TREE_OPS: [&str; 2] = ["TreeEnsembleClassifier", "TreeEnsembleRegressor"];

/// Whether the model's graph is a tree ensemble (possibly followed by what skl2onnx adds): the
/// models [`super::open`] routes to the native evaluator.
pub fn is_tree_model(model: &Model) -> bool {
    model
        .graph()
        .node
        .iter()
        .any(|n| TREE_OPS.contains(&n.op_type.as_str()) || n.op_type == "TreeEnsemble")
}

fn attr<'a>(n: &'a pb::NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

fn node_label(n: &pb::NodeProto) -> String {
    if n.name.is_empty() {
        format!("{} node", n.op_type)
    } else {
        format!("node '{}' ({})", n.name, n.op_type)
    }
}

/// ONNX Runtime's logistic (same rounding).
#[inline]
fn logistic(v: f32) -> f32 {
    let a = 1.0 / (1.0 + (-v.abs()).exp());
    if v < 0.0 {
        1.0 - a
    } else {
        a
    }
}

/// ONNX Runtime's inverse error function (Winitzki's approximation, a = 0.147), with its
/// constants as written there (3.14159, not π) so the results agree to the bit.
#[allow(clippy::approx_constant)]
fn erf_inv(x: f32) -> f32 {
    let sgn = if x < 0.0 { -1.0f32 } else { 1.0 };
    let x = (1.0 - x) * (1.0 + x);
    let log = x.ln();
    let v = 2.0 / (3.14159f32 * 0.147) + 0.5 * log;
    let v2 = 1.0 / 0.147f32 * log;
    let v3 = -v + (v * v - v2).sqrt();
    sgn * v3.sqrt()
}

#[inline]
fn probit(v: f32) -> f32 {
    std::f32::consts::SQRT_2 * erf_inv(2.0 * v - 1.0)
}

fn softmax(v: &mut [f32]) {
    let m = v.iter().copied().fold(-f32::MAX, f32::max);
    let mut sum = 0.0f32;
    for x in v.iter_mut() {
        *x = (*x - m).exp();
        sum += *x;
    }
    for x in v.iter_mut() {
        *x /= sum;
    }
}

/// Softmax skipping (near-)zero scores, as ONNX Runtime's SOFTMAX_ZERO.
fn softmax_zero(v: &mut [f32]) {
    let m = v.iter().copied().fold(-f32::MAX, f32::max);
    let exp_neg_max = (-m).exp();
    let mut sum = 0.0f32;
    for x in v.iter_mut() {
        if *x > 0.0000001 || *x < -0.0000001 {
            *x = (*x - m).exp();
            sum += *x;
        } else {
            *x *= exp_neg_max;
        }
    }
    for x in v.iter_mut() {
        *x /= sum;
    }
}

fn transform(post: Post, v: &mut [f32]) {
    match post {
        Post::None => {}
        Post::Logistic => v.iter_mut().for_each(|x| *x = logistic(*x)),
        Post::Softmax => softmax(v),
        Post::SoftmaxZero => softmax_zero(v),
        Post::Probit => v.iter_mut().for_each(|x| *x = probit(*x)),
    }
}

impl TreeEngine {
    pub fn load(model: &Model) -> Result<Self, EngineError> {
        let path = model.path();
        let unsupported = |msg: String| EngineError::Unsupported {
            path: path.to_path_buf(),
            msg,
        };
        let info = model.info().clone();
        let graph = model.graph();
        if let Some(n) = graph.node.iter().find(|n| n.op_type == "TreeEnsemble") {
            return Err(unsupported(format!(
                "{}: the ai.onnx.ml opset-5 TreeEnsemble operator is not supported natively; \
                 export with ai.onnx.ml opset <= 3 (TreeEnsembleClassifier/Regressor)",
                node_label(n)
            )));
        }
        let trees: Vec<&pb::NodeProto> = graph
            .node
            .iter()
            .filter(|n| TREE_OPS.contains(&n.op_type.as_str()))
            .collect();
        let [node] = trees.as_slice() else {
            return Err(unsupported(format!(
                "{} tree-ensemble nodes (the native evaluator takes one)",
                trees.len()
            )));
        };
        let node: &pb::NodeProto = node;
        let what = node_label(node);
        let classifier = node.op_type == "TreeEnsembleClassifier";

        // The trees read a graph input directly.
        let input = node
            .input
            .first()
            .cloned()
            .ok_or_else(|| unsupported(format!("{what} has no input")))?;
        let port = info
            .inputs
            .iter()
            .find(|p| p.name == input)
            .ok_or_else(|| {
                unsupported(format!(
                    "{what} reads '{input}', which is not a graph input (only nodes after the \
                     trees are supported)"
                ))
            })?;
        if info.inputs.len() != 1 {
            return Err(unsupported(format!(
                "{} graph inputs; the trees take one",
                info.inputs.len()
            )));
        }
        if port.elem != "float" {
            return Err(EngineError::Input {
                path: path.to_path_buf(),
                input: input.clone(),
                msg: format!("element type {} (the native trees take float)", port.elem),
            });
        }
        if port.shape.len() != 2 {
            return Err(EngineError::Input {
                path: path.to_path_buf(),
                input: input.clone(),
                msg: format!(
                    "shape {}; the trees take [N, features]",
                    port.shape_string()
                ),
            });
        }

        // What follows the trees: Identity, Cast and ZipMap only.
        let mut sources: HashMap<String, Out> = HashMap::new();
        if classifier {
            for (k, o) in [Out::Label, Out::Scores].into_iter().enumerate() {
                if let Some(name) = node.output.get(k).filter(|n| !n.is_empty()) {
                    sources.insert(name.clone(), o);
                }
            }
        } else if let Some(name) = node.output.first() {
            sources.insert(name.clone(), Out::Scores);
        }
        let mut pending: Vec<&pb::NodeProto> = graph
            .node
            .iter()
            .filter(|n| !std::ptr::eq(*n, node))
            .collect();
        while !pending.is_empty() {
            let before = pending.len();
            let mut rest = Vec::new();
            for n in pending {
                let src = n.input.first().and_then(|i| sources.get(i)).copied();
                let Some(src) = src else {
                    rest.push(n);
                    continue;
                };
                let ok = match n.op_type.as_str() {
                    "Identity" => true,
                    "ZipMap" => src == Out::Scores && classifier,
                    "Cast" => {
                        use pb::tensor_proto::DataType as D;
                        let to = attr(n, "to").map_or(0, |a| a.i as i32);
                        let float = [D::Float as i32, D::Double as i32].contains(&to);
                        let int = [D::Int64 as i32, D::Int32 as i32].contains(&to);
                        float || (src == Out::Label && int)
                    }
                    _ => false,
                };
                if !ok || n.input.len() != 1 || n.output.len() != 1 {
                    return Err(unsupported(format!(
                        "{} after the trees is not supported by the native tree evaluator \
                         (supported: Identity, Cast, ZipMap); run it with --engine ort",
                        node_label(n)
                    )));
                }
                sources.insert(n.output[0].clone(), src);
            }
            if rest.len() == before {
                return Err(unsupported(format!(
                    "{} does not follow the trees (the native evaluator runs a tree ensemble \
                     and what skl2onnx appends to it only)",
                    node_label(rest[0])
                )));
            }
            pending = rest;
        }
        let mut outputs = Vec::new();
        for o in &info.outputs {
            let src = sources.get(&o.name).copied().ok_or_else(|| {
                unsupported(format!(
                    "graph output '{}' is not computed by the trees",
                    o.name
                ))
            })?;
            outputs.push((o.name.clone(), src));
        }

        // Attributes.
        let ints = |name: &str| attr(node, name).map(|a| a.ints.clone()).unwrap_or_default();
        let floats = |name: &str| {
            attr(node, name)
                .map(|a| a.floats.clone())
                .unwrap_or_default()
        };
        let string =
            |name: &str| attr(node, name).map(|a| String::from_utf8_lossy(&a.s).into_owned());
        for a in &node.attribute {
            if a.name.ends_with("_as_tensor") {
                return Err(unsupported(format!(
                    "{what}: attribute {} (double-precision trees) is not supported natively",
                    a.name
                )));
            }
        }
        if classifier && attr(node, "classlabels_strings").is_some_and(|a| !a.strings.is_empty()) {
            return Err(unsupported(format!(
                "{what}: attribute classlabels_strings (string class labels) is not supported \
                 natively; labels must be integers"
            )));
        }
        let average = match string("aggregate_function").as_deref() {
            None | Some("SUM") => false,
            Some("AVERAGE") if !classifier => true,
            Some(other) => {
                return Err(unsupported(format!(
                    "{what}: aggregate_function {other} is not supported natively (SUM, AVERAGE)"
                )))
            }
        };
        let post = match string("post_transform").as_deref() {
            None | Some("NONE") => Post::None,
            Some("LOGISTIC") => Post::Logistic,
            Some("SOFTMAX") => Post::Softmax,
            Some("SOFTMAX_ZERO") => Post::SoftmaxZero,
            Some("PROBIT") => Post::Probit,
            Some(other) => {
                return Err(unsupported(format!(
                    "{what}: post_transform {other} is not supported"
                )))
            }
        };

        let (tids, nids, feats, vals, modes) = (
            ints("nodes_treeids"),
            ints("nodes_nodeids"),
            ints("nodes_featureids"),
            floats("nodes_values"),
            attr(node, "nodes_modes")
                .map(|a| a.strings.clone())
                .unwrap_or_default(),
        );
        let (yes, no, miss) = (
            ints("nodes_truenodeids"),
            ints("nodes_falsenodeids"),
            ints("nodes_missing_value_tracks_true"),
        );
        let n = tids.len();
        for (name, len) in [
            ("nodes_nodeids", nids.len()),
            ("nodes_featureids", feats.len()),
            ("nodes_values", vals.len()),
            ("nodes_modes", modes.len()),
            ("nodes_truenodeids", yes.len()),
            ("nodes_falsenodeids", no.len()),
        ] {
            if len != n {
                return Err(unsupported(format!(
                    "{what}: attribute {name} has {len} values, nodes_treeids {n}"
                )));
            }
        }
        if !miss.is_empty() && miss.len() != n {
            return Err(unsupported(format!(
                "{what}: attribute nodes_missing_value_tracks_true has {} values for {n} nodes",
                miss.len()
            )));
        }
        if n == 0 || n > u32::MAX as usize / 2 {
            return Err(unsupported(format!("{what}: {n} tree nodes")));
        }
        let mut index: HashMap<(i64, i64), usize> = HashMap::with_capacity(n);
        for i in 0..n {
            if index.insert((tids[i], nids[i]), i).is_some() {
                return Err(unsupported(format!(
                    "{what}: tree {} node {} defined twice",
                    tids[i], nids[i]
                )));
            }
        }
        let declared_width = port.shape[1];
        let mut nodes = Vec::with_capacity(n);
        let mut width = 0usize;
        for i in 0..n {
            let at = || format!("{what}: tree {} node {}", tids[i], nids[i]);
            let mode = match modes[i].as_slice() {
                b"BRANCH_LEQ" => Mode::Leq,
                b"BRANCH_LT" => Mode::Lt,
                b"BRANCH_GTE" => Mode::Gte,
                b"BRANCH_GT" => Mode::Gt,
                b"BRANCH_EQ" => Mode::Eq,
                b"BRANCH_NEQ" => Mode::Neq,
                b"LEAF" => Mode::Leaf,
                m => {
                    return Err(unsupported(format!(
                        "{}: nodes_modes {} is not a node mode",
                        at(),
                        String::from_utf8_lossy(m)
                    )))
                }
            };
            let (mut y, mut f, mut feature) = (0u32, 0u32, 0u32);
            if mode != Mode::Leaf {
                let child = |id: i64| -> Result<u32, EngineError> {
                    index
                        .get(&(tids[i], id))
                        .map(|&c| c as u32)
                        .ok_or_else(|| unsupported(format!("{}: child node {id} missing", at())))
                };
                y = child(yes[i])?;
                f = child(no[i])?;
                let fid = feats[i];
                if fid < 0
                    || declared_width.is_some_and(|w| fid as usize >= w)
                    || fid > u32::MAX as i64
                {
                    return Err(unsupported(format!(
                        "{}: nodes_featureids {fid} outside the input's {} columns",
                        at(),
                        declared_width.map_or("?".into(), |w| w.to_string())
                    )));
                }
                feature = fid as u32;
                width = width.max(fid as usize + 1);
            }
            nodes.push(Node {
                mode,
                missing_yes: miss.get(i).copied().unwrap_or(0) != 0,
                feature,
                value: vals[i],
                yes: y,
                no: f,
                w0: 0,
                w1: 0,
            });
        }

        // Leaf weights.
        let p = if classifier { "class" } else { "target" };
        let (wt, wn, wid, ww) = (
            ints(&format!("{p}_treeids")),
            ints(&format!("{p}_nodeids")),
            ints(&format!("{p}_ids")),
            floats(&format!("{p}_weights")),
        );
        if [wn.len(), wid.len(), ww.len()]
            .iter()
            .any(|&l| l != wt.len())
        {
            return Err(unsupported(format!(
                "{what}: {p}_treeids/nodeids/ids/weights differ in length ({}, {}, {}, {})",
                wt.len(),
                wn.len(),
                wid.len(),
                ww.len()
            )));
        }
        let (n_out, labels) = if classifier {
            let labels = ints("classlabels_int64s");
            if labels.len() < 2 {
                return Err(unsupported(format!(
                    "{what}: {} class labels (classlabels_int64s)",
                    labels.len()
                )));
            }
            let l = labels.len();
            (l, labels)
        } else {
            let t = attr(node, "n_targets").map_or(1, |a| a.i);
            if t < 1 {
                return Err(unsupported(format!("{what}: n_targets {t}")));
            }
            (t as usize, Vec::new())
        };
        let mut per_leaf: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n];
        for k in 0..wt.len() {
            let i = *index.get(&(wt[k], wn[k])).ok_or_else(|| {
                unsupported(format!(
                    "{what}: {p} weight for tree {} node {}, which does not exist",
                    wt[k], wn[k]
                ))
            })?;
            if nodes[i].mode != Mode::Leaf {
                return Err(unsupported(format!(
                    "{what}: {p} weight on tree {} node {}, which is not a LEAF",
                    wt[k], wn[k]
                )));
            }
            if wid[k] < 0 || wid[k] as usize >= n_out {
                return Err(unsupported(format!(
                    "{what}: {p}_ids {} outside the {n_out} {}",
                    wid[k],
                    if classifier { "classes" } else { "targets" }
                )));
            }
            per_leaf[i].push((wid[k] as u32, ww[k]));
        }
        let mut weights = Vec::with_capacity(wt.len());
        for (node, w) in nodes.iter_mut().zip(&per_leaf) {
            node.w0 = weights.len() as u32;
            weights.extend_from_slice(w);
            node.w1 = weights.len() as u32;
        }

        // Roots: nodes no branch points to, in the order their trees appear; no cycles.
        let mut targeted = vec![false; n];
        for node in &nodes {
            if node.mode != Mode::Leaf {
                targeted[node.yes as usize] = true;
                targeted[node.no as usize] = true;
            }
        }
        let mut roots: Vec<u32> = Vec::new();
        let mut seen_trees: HashSet<i64> = HashSet::new();
        for i in 0..n {
            if !targeted[i] {
                if !seen_trees.insert(tids[i]) {
                    return Err(unsupported(format!(
                        "{what}: tree {} has more than one root",
                        tids[i]
                    )));
                }
                roots.push(i as u32);
            }
        }
        let all_trees: HashSet<i64> = tids.iter().copied().collect();
        if all_trees.len() != roots.len() {
            return Err(unsupported(format!(
                "{what}: a tree without a root (its branches form a cycle)"
            )));
        }
        // Every path must end in a leaf within n steps.
        let mut depth_ok = vec![false; n];
        for &r in &roots {
            let mut stack = vec![(r as usize, 0usize)];
            while let Some((i, d)) = stack.pop() {
                if d > n {
                    return Err(unsupported(format!(
                        "{what}: tree {} has a cycle",
                        tids[r as usize]
                    )));
                }
                if depth_ok[i] {
                    continue;
                }
                depth_ok[i] = true;
                if nodes[i].mode != Mode::Leaf {
                    stack.push((nodes[i].yes as usize, d + 1));
                    stack.push((nodes[i].no as usize, d + 1));
                }
            }
        }

        let base = floats("base_values");
        let used: HashSet<u32> = weights.iter().map(|w| w.0).collect();
        let kind = if classifier {
            let binary = n_out == 2 && used.len() == 1;
            let all_positive = weights.iter().all(|w| w.1 >= 0.0);
            let ok_base = if n_out == 2 {
                base.len() <= 2
            } else {
                base.is_empty() || base.len() == n_out
            };
            if !ok_base {
                return Err(unsupported(format!(
                    "{what}: base_values has {} values for {n_out} classes",
                    base.len()
                )));
            }
            if n_out == 2 && binary && post == Post::Probit {
                return Err(unsupported(format!(
                    "{what}: post_transform PROBIT on a one-score binary classifier (ONNX \
                     Runtime writes a single column there) is not supported natively"
                )));
            }
            if n_out == 2 && !binary && base.len() == 1 {
                let leaf_without_1 = nodes.iter().any(|nd| {
                    nd.mode == Mode::Leaf
                        && !weights[nd.w0 as usize..nd.w1 as usize]
                            .iter()
                            .any(|w| w.0 == 1)
                });
                if leaf_without_1 {
                    return Err(unsupported(format!(
                        "{what}: two classes with weights for both, one base value and leaves \
                         without a class-1 weight: ONNX Runtime leaves the second score unset \
                         there; not supported natively"
                    )));
                }
            }
            Kind::Classifier {
                labels,
                binary,
                all_positive,
            }
        } else {
            if !(base.is_empty() || base.len() == n_out) {
                return Err(unsupported(format!(
                    "{what}: base_values has {} values for {n_out} targets",
                    base.len()
                )));
            }
            Kind::Regressor { average }
        };
        let single_target = match weights.first() {
            Some(&(c, _)) if weights.iter().all(|w| w.0 == c) => Some(c),
            _ => None,
        };
        let levelled = if width > 0 {
            Levelled::build(&nodes, &roots)
        } else {
            None
        };
        Ok(TreeEngine {
            op: node.op_type.clone(),
            input,
            width: declared_width.unwrap_or(width),
            single_target,
            levelled: levelled.clone(),
            flat: levelled
                .as_ref()
                .filter(|_| single_target.is_some())
                .and_then(|lv| Flat::build(&nodes, lv, &weights)),
            nodes,
            roots,
            weights,
            base,
            post,
            n_out,
            kind,
            outputs,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            info,
        })
    }

    fn path(&self) -> PathBuf {
        self.info.path.clone()
    }

    /// Sums the leaf weights the row reaches, per class/target, in tree order (f32, as ONNX
    /// Runtime); `has` marks the classes some leaf gave a weight.
    #[inline]
    fn accumulate(&self, x: &[f32], acc: &mut [f32], has: &mut [bool]) {
        acc.iter_mut().for_each(|a| *a = 0.0);
        has.iter_mut().for_each(|h| *h = false);
        if let (Some(flat), Some(c)) = (&self.flat, self.single_target) {
            acc[c as usize] = flat.sum(x);
            has[c as usize] = !self.roots.is_empty();
            return;
        }
        // Same additions in the same (tree) order either way: the sums agree to the bit.
        let (mut sum, mut any) = (0f32, false);
        let single = self.single_target;
        let mut add = |w0: u32, w1: u32| {
            if single.is_some() {
                for &(_, w) in &self.weights[w0 as usize..w1 as usize] {
                    sum += w;
                    any = true;
                }
                return;
            }
            for &(c, w) in &self.weights[w0 as usize..w1 as usize] {
                acc[c as usize] += w;
                has[c as usize] = true;
            }
        };
        if let Some(lv) = &self.levelled {
            let (ni, nl) = ((1usize << lv.depth) - 1, 1usize << lv.depth);
            for g in (0..self.roots.len()).step_by(LANES) {
                let lanes = LANES.min(self.roots.len() - g);
                let mut pos = [0usize; LANES];
                for _ in 0..lv.depth {
                    for (l, p) in pos[..lanes].iter_mut().enumerate() {
                        let n = &lv.inner[(g + l) * ni + *p];
                        *p = 2 * *p + 1 + usize::from(!goes_yes(n, x));
                    }
                }
                for (l, p) in pos[..lanes].iter().enumerate() {
                    let (w0, w1) = lv.leaves[(g + l) * nl + p - ni];
                    add(w0, w1);
                }
            }
        } else {
            for &root in &self.roots {
                let mut n = &self.nodes[root as usize];
                while n.mode != Mode::Leaf {
                    n = &self.nodes[if goes_yes(n, x) { n.yes } else { n.no } as usize];
                }
                add(n.w0, n.w1);
            }
        }
        if let Some(c) = single {
            acc[c as usize] = sum;
            has[c as usize] = any;
        }
    }

    /// One row: scores into `out` (n_out columns), the label (classifiers) returned.
    fn eval_row(&self, x: &[f32], acc: &mut [f32], has: &mut [bool], out: &mut [f32]) -> f32 {
        self.accumulate(x, acc, has);
        match &self.kind {
            Kind::Regressor { average } => {
                let n_trees = self.roots.len() as f32;
                for (k, o) in out.iter_mut().enumerate() {
                    let mut s = acc[k];
                    if *average {
                        s /= n_trees;
                    }
                    if let Some(b) = self.base.get(k) {
                        s += b;
                    }
                    *o = s;
                }
                if self.n_out == 1 {
                    // ONNX Runtime's one-target path applies PROBIT only.
                    if self.post == Post::Probit {
                        out[0] = probit(out[0]);
                    }
                } else {
                    transform(self.post, out);
                }
                f32::NAN
            }
            Kind::Classifier { labels, .. } if self.n_out > 2 => {
                for (k, b) in self.base.iter().enumerate() {
                    acc[k] += b;
                    has[k] = true;
                }
                let mut best: Option<usize> = None;
                for k in 0..self.n_out {
                    if has[k] && best.is_none_or(|b| acc[k] > acc[b]) {
                        best = Some(k);
                    }
                }
                for k in 0..self.n_out {
                    out[k] = if has[k] { acc[k] } else { 0.0 };
                }
                transform(self.post, out);
                best.map_or(f32::NAN, |b| labels[b] as f32)
            }
            Kind::Classifier {
                labels,
                binary,
                all_positive,
            } => self.binary_row(acc, has, out, labels, *binary, *all_positive),
        }
    }

    /// ONNX Runtime's two-class rules (TreeAggregatorClassifier::FinalizeScores).
    fn binary_row(
        &self,
        acc: &mut [f32],
        has: &mut [bool],
        out: &mut [f32],
        labels: &[i64],
        binary: bool,
        all_positive: bool,
    ) -> f32 {
        let (mut s0, mut s1) = (acc[0], acc[1]);
        match self.base.as_slice() {
            [b0, b1] => {
                if has[1] {
                    s1 = b1 + s0;
                    s0 = -s1;
                } else {
                    s1 += b1;
                    s0 += b0;
                }
            }
            [b0] => s0 += b0,
            _ => {}
        }
        let two = has[1];
        let pos = if two {
            s1
        } else if has[0] {
            s0
        } else {
            0.0
        };
        let (positive, half) = if binary && all_positive {
            (pos > 0.5, true)
        } else {
            (pos > 0.0, false)
        };
        let label = labels[usize::from(positive)] as f32;
        if two {
            out[0] = if has[0] { s0 } else { 0.0 };
            out[1] = s1;
            transform(self.post, out);
        } else if self.post == Post::Logistic {
            out[0] = logistic(-s0);
            out[1] = logistic(s0);
        } else if half {
            out[0] = 1.0 - s0;
            out[1] = s0;
        } else {
            out[0] = -s0;
            out[1] = s0;
        }
        label
    }

    /// Values per event of output `i` (graph order): 1 for the label, the score columns for
    /// the scores; `None` past the end.
    pub fn output_width(&self, i: usize) -> Option<usize> {
        self.outputs.get(i).map(|(_, o)| match o {
            Out::Label => 1,
            Out::Scores => self.n_out,
        })
    }

    /// The allocation-free path for per-event calls: `x` holds `batch` rows of the input
    /// (`x.len() / batch` columns, at least the ones the trees read); output `output` goes to
    /// `out` (`batch * output_width(output)` values). Same numbers as [`Engine::run`].
    pub fn run_into(
        &self,
        x: &[f32],
        batch: usize,
        output: usize,
        out: &mut [f32],
    ) -> Result<(), EngineError> {
        const STACK: usize = 16;
        let bad = |msg: String| EngineError::Input {
            path: self.path(),
            input: self.input.clone(),
            msg,
        };
        let width = self
            .output_width(output)
            .ok_or_else(|| bad(format!("no output {output}")))?;
        let cols = x.len().checked_div(batch).unwrap_or(self.width);
        if cols < self.width || cols * batch != x.len() {
            return Err(bad(format!(
                "{} values for {batch} events: the trees read {} columns",
                x.len(),
                self.width
            )));
        }
        if out.len() != batch * width {
            return Err(bad(format!(
                "room for {} output values, {} needed",
                out.len(),
                batch * width
            )));
        }
        let label_out = matches!(self.outputs[output].1, Out::Label);
        if self.n_out > STACK {
            let mut scores = vec![0f32; batch * self.n_out];
            let mut labels = vec![0f32; batch];
            self.eval_rows(x, cols, &mut scores, &mut labels);
            out.copy_from_slice(if label_out { &labels } else { &scores });
            return Ok(());
        }
        let (mut acc, mut has, mut scores) = ([0f32; STACK], [false; STACK], [0f32; STACK]);
        let n = self.n_out;
        for (r, row) in x.chunks_exact(cols).enumerate() {
            let label = self.eval_row(row, &mut acc[..n], &mut has[..n], &mut scores[..n]);
            if label_out {
                out[r] = label;
            } else {
                out[r * n..(r + 1) * n].copy_from_slice(&scores[..n]);
            }
        }
        Ok(())
    }

    fn eval_rows(&self, x: &[f32], cols: usize, scores: &mut [f32], labels: &mut [f32]) {
        let mut acc = vec![0f32; self.n_out];
        let mut has = vec![false; self.n_out];
        for (r, (out, label)) in scores
            .chunks_mut(self.n_out)
            .zip(labels.iter_mut())
            .enumerate()
        {
            *label = self.eval_row(&x[r * cols..(r + 1) * cols], &mut acc, &mut has, out);
        }
    }
}

impl Engine for TreeEngine {
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, EngineError> {
        let ordered = self.info.check_inputs(inputs)?;
        let x = ordered[0];
        let (rows, cols) = (x.shape[0], x.shape[1]);
        if cols < self.width {
            return Err(EngineError::Input {
                path: self.path(),
                input: self.input.clone(),
                msg: format!("shape {:?}, the trees read {} columns", x.shape, self.width),
            });
        }
        let mut scores = vec![0f32; rows * self.n_out];
        let mut labels = vec![0f32; rows];
        let parts = self.threads.min(rows / SPLIT_MIN).max(1);
        if parts == 1 {
            self.eval_rows(&x.data, cols, &mut scores, &mut labels);
        } else {
            let per = rows.div_ceil(parts);
            std::thread::scope(|s| {
                for ((xs, sc), lb) in x
                    .data
                    .chunks(per * cols)
                    .zip(scores.chunks_mut(per * self.n_out))
                    .zip(labels.chunks_mut(per))
                {
                    s.spawn(move || self.eval_rows(xs, cols, sc, lb));
                }
            });
        }
        Ok(self
            .outputs
            .iter()
            .map(|(name, o)| match o {
                Out::Label => Tensor::new(name.clone(), vec![rows], labels.clone()),
                Out::Scores => Tensor::new(name.clone(), vec![rows, self.n_out], scores.clone()),
            })
            .collect())
    }

    fn describe(&self) -> String {
        format!(
            "native trees ({}, {} trees, {} {}{}) on {} (xxh64 {})",
            self.op,
            self.roots.len(),
            self.n_out,
            if matches!(self.kind, Kind::Classifier { .. }) {
                "classes"
            } else {
                "targets"
            },
            match &self.flat {
                Some(f) => format!(", packed depth {}", f.depth),
                None => String::new(),
            },
            self.info.path.display(),
            self.info.hash
        )
    }

    fn info(&self) -> &ModelInfo {
        &self.info
    }
}
