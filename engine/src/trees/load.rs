//! Loading a tree ensemble from its ONNX node(s): attributes checked and read, trees built
//! and laid out, outputs and post-transform resolved.

use super::layout::{Flat, Levelled};
use super::{Kind, Mode, Model, Node, Out, Post, TreeEngine, TREE_OPS};
use crate::EngineError;
use std::collections::{HashMap, HashSet};
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

        // What follows the trees: Identity, Cast, ZipMap, and Sigmoid after a regressor only.
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
                    return Err(unsupported(format!(
                        "{} after the trees is not supported by the native tree evaluator \
                         (supported: Identity, Cast, ZipMap, Sigmoid after a regressor); run it \
                         with --engine ort",
                        node_label(n)
                    )));
                }
                sources.insert(n.output[0].clone(), out);
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
}
