//! Loading a tree ensemble from its ONNX node(s), in named steps: the tree node and the graph
//! input it reads ([`tree_node`], [`input_port`]), what follows the trees ([`outputs`]), the
//! node's attributes ([`Attrs`]), the nodes ([`build_nodes`]), the leaf weights
//! ([`leaf_weights`]), the roots with a cycle check ([`roots`]), and the classifier/regressor
//! rules ([`kind`]).

use super::layout::{Flat, Levelled};
use super::{Kind, Mode, Model, Node, Out, Post, TreeEngine, TREE_OPS};
use crate::{EngineError, ModelInfo, Port};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use tract_onnx::pb;

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

/// The tree node being loaded, with what every error names.
struct Ctx<'a> {
    path: &'a Path,
    node: &'a pb::NodeProto,
    /// The node's label, for messages.
    what: String,
    classifier: bool,
}

impl Ctx<'_> {
    fn unsupported(&self, msg: String) -> EngineError {
        unsupported(self.path, msg)
    }

    fn ints(&self, name: &str) -> Vec<i64> {
        attr(self.node, name)
            .map(|a| a.ints.clone())
            .unwrap_or_default()
    }

    fn floats(&self, name: &str) -> Vec<f32> {
        attr(self.node, name)
            .map(|a| a.floats.clone())
            .unwrap_or_default()
    }

    fn string(&self, name: &str) -> Option<String> {
        attr(self.node, name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
    }
}

fn unsupported(path: &Path, msg: String) -> EngineError {
    EngineError::Unsupported {
        path: path.to_path_buf(),
        msg,
    }
}

impl TreeEngine {
    pub fn load(model: &Model) -> Result<Self, EngineError> {
        let path = model.path();
        let info = model.info().clone();
        let node = tree_node(path, model.graph())?;
        let cx = Ctx {
            path,
            node,
            what: node_label(node),
            classifier: node.op_type == "TreeEnsembleClassifier",
        };
        let (input, port) = input_port(&cx, &info)?;
        let outputs = outputs(&cx, model.graph(), &info)?;
        let attrs = Attrs::read(&cx)?;
        let declared_width = port.shape[1];
        let (mut nodes, index, width) = build_nodes(&cx, &attrs, declared_width)?;
        let leaves = leaf_weights(&cx, &index, &mut nodes)?;
        let roots = roots(&cx, &attrs.tids, &nodes)?;
        let base = cx.floats("base_values");
        let kind = kind(&cx, &attrs, &leaves, &nodes, &base)?;
        let Leaves { weights, n_out, .. } = leaves;
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
            post: attrs.post,
            n_out,
            kind,
            outputs,
            threads: crate::parts::cores(),
            info,
        })
    }
}

/// The graph's one tree-ensemble node (opset-5 `TreeEnsemble` is refused by name).
fn tree_node<'g>(path: &Path, graph: &'g pb::GraphProto) -> Result<&'g pb::NodeProto, EngineError> {
    if let Some(n) = graph.node.iter().find(|n| n.op_type == "TreeEnsemble") {
        return Err(unsupported(
            path,
            format!(
                "{}: the ai.onnx.ml opset-5 TreeEnsemble operator is not supported natively; \
                 export with ai.onnx.ml opset <= 3 (TreeEnsembleClassifier/Regressor)",
                node_label(n)
            ),
        ));
    }
    let trees: Vec<&pb::NodeProto> = graph
        .node
        .iter()
        .filter(|n| TREE_OPS.contains(&n.op_type.as_str()))
        .collect();
    let [node] = trees.as_slice() else {
        return Err(unsupported(
            path,
            format!(
                "{} tree-ensemble nodes (the native evaluator takes one)",
                trees.len()
            ),
        ));
    };
    Ok(node)
}

/// The graph input the trees read directly: the only one, float, `[N, features]`.
fn input_port<'i>(cx: &Ctx, info: &'i ModelInfo) -> Result<(String, &'i Port), EngineError> {
    let what = &cx.what;
    let input = cx
        .node
        .input
        .first()
        .cloned()
        .ok_or_else(|| cx.unsupported(format!("{what} has no input")))?;
    let port = info
        .inputs
        .iter()
        .find(|p| p.name == input)
        .ok_or_else(|| {
            cx.unsupported(format!(
                "{what} reads '{input}', which is not a graph input (only nodes after the \
                 trees are supported)"
            ))
        })?;
    if info.inputs.len() != 1 {
        return Err(cx.unsupported(format!(
            "{} graph inputs; the trees take one",
            info.inputs.len()
        )));
    }
    let bad_input = |msg: String| EngineError::Input {
        path: cx.path.to_path_buf(),
        input: input.clone(),
        msg,
    };
    if port.elem != "float" {
        return Err(bad_input(format!(
            "element type {} (the native trees take float)",
            port.elem
        )));
    }
    if port.shape.len() != 2 {
        return Err(bad_input(format!(
            "shape {}; the trees take [N, features]",
            port.shape_string()
        )));
    }
    Ok((input, port))
}

/// What each graph output carries, following the trees through what may come after them:
/// Identity, Cast, ZipMap, and Sigmoid after a regressor only.
fn outputs(
    cx: &Ctx,
    graph: &pb::GraphProto,
    info: &ModelInfo,
) -> Result<Vec<(String, Out)>, EngineError> {
    let (node, classifier) = (cx.node, cx.classifier);
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
            let mut out = src;
            let ok = match n.op_type.as_str() {
                "Identity" => true,
                "Sigmoid" => {
                    out = Out::Logistic;
                    src == Out::Scores && !classifier
                }
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
                return Err(cx.unsupported(format!(
                    "{} after the trees is not supported by the native tree evaluator \
                     (supported: Identity, Cast, ZipMap, Sigmoid after a regressor); run it \
                     with --engine ort",
                    node_label(n)
                )));
            }
            sources.insert(n.output[0].clone(), out);
        }
        if rest.len() == before {
            return Err(cx.unsupported(format!(
                "{} does not follow the trees (the native evaluator runs a tree ensemble \
                 and what skl2onnx appends to it only)",
                node_label(rest[0])
            )));
        }
        pending = rest;
    }
    info.outputs
        .iter()
        .map(|o| {
            let src = sources.get(&o.name).copied().ok_or_else(|| {
                cx.unsupported(format!(
                    "graph output '{}' is not computed by the trees",
                    o.name
                ))
            })?;
            Ok((o.name.clone(), src))
        })
        .collect()
}

/// The tree node's attributes, checked for what the native evaluator supports and for
/// consistent lengths.
struct Attrs {
    average: bool,
    post: Post,
    tids: Vec<i64>,
    nids: Vec<i64>,
    feats: Vec<i64>,
    vals: Vec<f32>,
    modes: Vec<Vec<u8>>,
    yes: Vec<i64>,
    no: Vec<i64>,
    miss: Vec<i64>,
}

impl Attrs {
    fn read(cx: &Ctx) -> Result<Self, EngineError> {
        let (node, what, classifier) = (cx.node, &cx.what, cx.classifier);
        for a in &node.attribute {
            if a.name.ends_with("_as_tensor") {
                return Err(cx.unsupported(format!(
                    "{what}: attribute {} (double-precision trees) is not supported natively",
                    a.name
                )));
            }
        }
        if classifier && attr(node, "classlabels_strings").is_some_and(|a| !a.strings.is_empty()) {
            return Err(cx.unsupported(format!(
                "{what}: attribute classlabels_strings (string class labels) is not supported \
                 natively; labels must be integers"
            )));
        }
        let average = match cx.string("aggregate_function").as_deref() {
            None | Some("SUM") => false,
            Some("AVERAGE") if !classifier => true,
            Some(other) => {
                return Err(cx.unsupported(format!(
                    "{what}: aggregate_function {other} is not supported natively (SUM, AVERAGE)"
                )))
            }
        };
        let post = match cx.string("post_transform").as_deref() {
            None | Some("NONE") => Post::None,
            Some("LOGISTIC") => Post::Logistic,
            Some("SOFTMAX") => Post::Softmax,
            Some("SOFTMAX_ZERO") => Post::SoftmaxZero,
            Some("PROBIT") => Post::Probit,
            Some(other) => {
                return Err(
                    cx.unsupported(format!("{what}: post_transform {other} is not supported"))
                )
            }
        };
        let a = Attrs {
            average,
            post,
            tids: cx.ints("nodes_treeids"),
            nids: cx.ints("nodes_nodeids"),
            feats: cx.ints("nodes_featureids"),
            vals: cx.floats("nodes_values"),
            modes: attr(node, "nodes_modes")
                .map(|a| a.strings.clone())
                .unwrap_or_default(),
            yes: cx.ints("nodes_truenodeids"),
            no: cx.ints("nodes_falsenodeids"),
            miss: cx.ints("nodes_missing_value_tracks_true"),
        };
        let n = a.tids.len();
        for (name, len) in [
            ("nodes_nodeids", a.nids.len()),
            ("nodes_featureids", a.feats.len()),
            ("nodes_values", a.vals.len()),
            ("nodes_modes", a.modes.len()),
            ("nodes_truenodeids", a.yes.len()),
            ("nodes_falsenodeids", a.no.len()),
        ] {
            if len != n {
                return Err(cx.unsupported(format!(
                    "{what}: attribute {name} has {len} values, nodes_treeids {n}"
                )));
            }
        }
        if !a.miss.is_empty() && a.miss.len() != n {
            return Err(cx.unsupported(format!(
                "{what}: attribute nodes_missing_value_tracks_true has {} values for {n} nodes",
                a.miss.len()
            )));
        }
        if n == 0 || n > u32::MAX as usize / 2 {
            return Err(cx.unsupported(format!("{what}: {n} tree nodes")));
        }
        Ok(a)
    }
}

/// Node positions by (tree id, node id).
type NodeIndex = HashMap<(i64, i64), usize>;

/// The nodes in attribute order, with children as indices, and the index of each
/// (tree id, node id); also the input columns the splits read.
fn build_nodes(
    cx: &Ctx,
    a: &Attrs,
    declared_width: Option<usize>,
) -> Result<(Vec<Node>, NodeIndex, usize), EngineError> {
    let what = &cx.what;
    let (tids, nids) = (&a.tids, &a.nids);
    let n = tids.len();
    let mut index: NodeIndex = HashMap::with_capacity(n);
    for i in 0..n {
        if index.insert((tids[i], nids[i]), i).is_some() {
            return Err(cx.unsupported(format!(
                "{what}: tree {} node {} defined twice",
                tids[i], nids[i]
            )));
        }
    }
    let mut nodes = Vec::with_capacity(n);
    let mut width = 0usize;
    for i in 0..n {
        let at = || format!("{what}: tree {} node {}", tids[i], nids[i]);
        let mode = match a.modes[i].as_slice() {
            b"BRANCH_LEQ" => Mode::Leq,
            b"BRANCH_LT" => Mode::Lt,
            b"BRANCH_GTE" => Mode::Gte,
            b"BRANCH_GT" => Mode::Gt,
            b"BRANCH_EQ" => Mode::Eq,
            b"BRANCH_NEQ" => Mode::Neq,
            b"LEAF" => Mode::Leaf,
            m => {
                return Err(cx.unsupported(format!(
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
                    .ok_or_else(|| cx.unsupported(format!("{}: child node {id} missing", at())))
            };
            y = child(a.yes[i])?;
            f = child(a.no[i])?;
            let fid = a.feats[i];
            if fid < 0 || declared_width.is_some_and(|w| fid as usize >= w) || fid > u32::MAX as i64
            {
                return Err(cx.unsupported(format!(
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
            missing_yes: a.miss.get(i).copied().unwrap_or(0) != 0,
            feature,
            value: a.vals[i],
            yes: y,
            no: f,
            w0: 0,
            w1: 0,
        });
    }
    Ok((nodes, index, width))
}

/// The leaf weights (class or target id, weight), leaf by leaf, and the score columns.
struct Leaves {
    weights: Vec<(u32, f32)>,
    /// Score columns: classes or targets.
    n_out: usize,
    /// The class labels (classifiers).
    labels: Vec<i64>,
}

/// Reads the `class_*` / `target_*` attributes, checks each weight lands on a leaf and a
/// valid class or target, and points each node's `w0..w1` at its weights.
fn leaf_weights(cx: &Ctx, index: &NodeIndex, nodes: &mut [Node]) -> Result<Leaves, EngineError> {
    let (what, classifier) = (&cx.what, cx.classifier);
    let p = if classifier { "class" } else { "target" };
    let (wt, wn, wid, ww) = (
        cx.ints(&format!("{p}_treeids")),
        cx.ints(&format!("{p}_nodeids")),
        cx.ints(&format!("{p}_ids")),
        cx.floats(&format!("{p}_weights")),
    );
    if [wn.len(), wid.len(), ww.len()]
        .iter()
        .any(|&l| l != wt.len())
    {
        return Err(cx.unsupported(format!(
            "{what}: {p}_treeids/nodeids/ids/weights differ in length ({}, {}, {}, {})",
            wt.len(),
            wn.len(),
            wid.len(),
            ww.len()
        )));
    }
    let (n_out, labels) = if classifier {
        let labels = cx.ints("classlabels_int64s");
        if labels.len() < 2 {
            return Err(cx.unsupported(format!(
                "{what}: {} class labels (classlabels_int64s)",
                labels.len()
            )));
        }
        (labels.len(), labels)
    } else {
        let t = attr(cx.node, "n_targets").map_or(1, |a| a.i);
        if t < 1 {
            return Err(cx.unsupported(format!("{what}: n_targets {t}")));
        }
        (t as usize, Vec::new())
    };
    let mut per_leaf: Vec<Vec<(u32, f32)>> = vec![Vec::new(); nodes.len()];
    for k in 0..wt.len() {
        let i = *index.get(&(wt[k], wn[k])).ok_or_else(|| {
            cx.unsupported(format!(
                "{what}: {p} weight for tree {} node {}, which does not exist",
                wt[k], wn[k]
            ))
        })?;
        if nodes[i].mode != Mode::Leaf {
            return Err(cx.unsupported(format!(
                "{what}: {p} weight on tree {} node {}, which is not a LEAF",
                wt[k], wn[k]
            )));
        }
        if wid[k] < 0 || wid[k] as usize >= n_out {
            return Err(cx.unsupported(format!(
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
    Ok(Leaves {
        weights,
        n_out,
        labels,
    })
}

/// Roots: nodes no branch points to, in the order their trees appear, one per tree; every
/// path from a root ends in a leaf (no cycles).
fn roots(cx: &Ctx, tids: &[i64], nodes: &[Node]) -> Result<Vec<u32>, EngineError> {
    let what = &cx.what;
    let n = nodes.len();
    let mut targeted = vec![false; n];
    for node in nodes {
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
                return Err(
                    cx.unsupported(format!("{what}: tree {} has more than one root", tids[i]))
                );
            }
            roots.push(i as u32);
        }
    }
    let all_trees: HashSet<i64> = tids.iter().copied().collect();
    if all_trees.len() != roots.len() {
        return Err(cx.unsupported(format!(
            "{what}: a tree without a root (its branches form a cycle)"
        )));
    }
    // Every path must end in a leaf within n steps.
    let mut depth_ok = vec![false; n];
    for &r in &roots {
        let mut stack = vec![(r as usize, 0usize)];
        while let Some((i, d)) = stack.pop() {
            if d > n {
                return Err(
                    cx.unsupported(format!("{what}: tree {} has a cycle", tids[r as usize]))
                );
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
    Ok(roots)
}

/// Classifier or regressor, with ONNX Runtime's rules for base values and binary
/// classifiers; the combinations it treats specially and hepml does not are refused.
fn kind(
    cx: &Ctx,
    a: &Attrs,
    leaves: &Leaves,
    nodes: &[Node],
    base: &[f32],
) -> Result<Kind, EngineError> {
    let (what, n_out, weights) = (&cx.what, leaves.n_out, &leaves.weights);
    if !cx.classifier {
        if !(base.is_empty() || base.len() == n_out) {
            return Err(cx.unsupported(format!(
                "{what}: base_values has {} values for {n_out} targets",
                base.len()
            )));
        }
        return Ok(Kind::Regressor { average: a.average });
    }
    let used: HashSet<u32> = weights.iter().map(|w| w.0).collect();
    let binary = n_out == 2 && used.len() == 1;
    let all_positive = weights.iter().all(|w| w.1 >= 0.0);
    let ok_base = if n_out == 2 {
        base.len() <= 2
    } else {
        base.is_empty() || base.len() == n_out
    };
    if !ok_base {
        return Err(cx.unsupported(format!(
            "{what}: base_values has {} values for {n_out} classes",
            base.len()
        )));
    }
    if n_out == 2 && binary && a.post == Post::Probit {
        return Err(cx.unsupported(format!(
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
            return Err(cx.unsupported(format!(
                "{what}: two classes with weights for both, one base value and leaves \
                 without a class-1 weight: ONNX Runtime leaves the second score unset \
                 there; not supported natively"
            )));
        }
    }
    Ok(Kind::Classifier {
        labels: leaves.labels.clone(),
        binary,
        all_positive,
    })
}
