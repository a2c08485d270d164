//! Native evaluation of ONNX-ML tree ensembles (`TreeEnsembleClassifier` /
//! `TreeEnsembleRegressor`, as skl2onnx and onnxmltools export sklearn/xgboost/lightgbm BDTs):
//! tract rejects binary classifiers with `base_values` and runs trees ~150x slower. Semantics
//! follow ONNX Runtime: node modes, missing-value tracks, SUM aggregation, base values,
//! post-transforms, and the binary one-score-column case ([1 - p, p]).

use super::{read_info, EngineError, ModelInfo};
use crate::inject::pipeline::{Scorer, Tensor};
use prost::Message;
use std::collections::HashMap;
use std::path::Path;
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

#[derive(Debug, Clone)]
struct Node {
    mode: Mode,
    feature: usize,
    value: f32,
    yes: usize,
    no: usize,
    missing_yes: bool,
    /// Range into `weights` for a leaf.
    leaf: (usize, usize),
}

pub struct TreeEngine {
    pub info: ModelInfo,
    input: String,
    features: usize,
    nodes: Vec<Node>,
    roots: Vec<usize>,
    weights: Vec<(usize, f32)>,
    base: Vec<f32>,
    post: Post,
    /// Columns of the score output.
    n_out: usize,
    /// Classifier: the labels, and whether only one score column is trained (binary case).
    labels: Option<Vec<i64>>,
    binary_single: bool,
    /// Graph output names: (label output, scores output) for classifiers, (-, scores) otherwise.
    label_name: Option<String>,
    score_name: String,
}

/// Whether the model is a tree ensemble hepml evaluates natively.
pub fn is_tree_model(path: &Path) -> bool {
    std::fs::read(path)
        .ok()
        .and_then(|b| pb::ModelProto::decode(b.as_slice()).ok())
        .and_then(|m| m.graph)
        .is_some_and(|g| g.node.iter().any(|n| n.op_type.starts_with("TreeEnsemble")))
}

fn attr<'a>(n: &'a pb::NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

impl TreeEngine {
    pub fn load(path: &Path) -> Result<Self, EngineError> {
        let err = |msg: String| EngineError::Load {
            path: path.to_path_buf(),
            msg,
        };
        let info = read_info(path)?;
        let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let model = pb::ModelProto::decode(bytes.as_slice()).map_err(|e| err(e.to_string()))?;
        let graph = model.graph.ok_or_else(|| err("no graph".into()))?;
        let tree_nodes: Vec<&pb::NodeProto> = graph
            .node
            .iter()
            .filter(|n| n.op_type.starts_with("TreeEnsemble"))
            .collect();
        let [node] = tree_nodes.as_slice() else {
            return Err(err(format!(
                "{} tree-ensemble nodes (one supported)",
                tree_nodes.len()
            )));
        };
        // Other nodes may only rename outputs.
        let mut alias: HashMap<String, String> = HashMap::new();
        for n in &graph.node {
            if n.op_type.starts_with("TreeEnsemble") {
                continue;
            }
            if n.op_type != "Identity" || n.input.len() != 1 || n.output.len() != 1 {
                return Err(err(format!(
                    "node {} ({}) after the trees is not supported natively",
                    n.name, n.op_type
                )));
            }
            alias.insert(n.output[0].clone(), n.input[0].clone());
        }
        let resolve = |mut name: String| {
            while let Some(a) = alias.get(&name) {
                name = a.clone();
            }
            name
        };
        let ints = |name: &str| attr(node, name).map(|a| a.ints.clone()).unwrap_or_default();
        let floats = |name: &str| {
            attr(node, name)
                .map(|a| a.floats.clone())
                .unwrap_or_default()
        };
        let strings = |name: &str| {
            attr(node, name)
                .map(|a| {
                    a.strings
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };
        for unsupported in [
            "nodes_values_as_tensor",
            "base_values_as_tensor",
            "class_weights_as_tensor",
            "target_weights_as_tensor",
        ] {
            if attr(node, unsupported).is_some() {
                return Err(err(format!(
                    "attribute {unsupported} (double-precision trees) is not supported natively"
                )));
            }
        }
        if let Some(a) = attr(node, "aggregate_function") {
            if a.s != b"SUM" {
                return Err(err(format!(
                    "aggregate_function {} (only SUM)",
                    String::from_utf8_lossy(&a.s)
                )));
            }
        }
        let classifier = node.op_type == "TreeEnsembleClassifier";
        let (tids, nids, feats, vals, modes) = (
            ints("nodes_treeids"),
            ints("nodes_nodeids"),
            ints("nodes_featureids"),
            floats("nodes_values"),
            strings("nodes_modes"),
        );
        let (yes, no, miss) = (
            ints("nodes_truenodeids"),
            ints("nodes_falsenodeids"),
            ints("nodes_missing_value_tracks_true"),
        );
        let n = tids.len();
        if [
            nids.len(),
            feats.len(),
            vals.len(),
            modes.len(),
            yes.len(),
            no.len(),
        ]
        .iter()
        .any(|&l| l != n)
        {
            return Err(err("inconsistent node attribute lengths".into()));
        }
        let mut index: HashMap<(i64, i64), usize> = HashMap::new();
        for i in 0..n {
            index.insert((tids[i], nids[i]), i);
        }
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let mode = match modes[i].as_str() {
                "BRANCH_LEQ" => Mode::Leq,
                "BRANCH_LT" => Mode::Lt,
                "BRANCH_GTE" => Mode::Gte,
                "BRANCH_GT" => Mode::Gt,
                "BRANCH_EQ" => Mode::Eq,
                "BRANCH_NEQ" => Mode::Neq,
                "LEAF" => Mode::Leaf,
                m => return Err(err(format!("node mode {m}"))),
            };
            let child = |id: i64| -> Result<usize, EngineError> {
                if mode == Mode::Leaf {
                    return Ok(0);
                }
                index.get(&(tids[i], id)).copied().ok_or_else(|| {
                    err(format!(
                        "tree {} node {}: child {id} missing",
                        tids[i], nids[i]
                    ))
                })
            };
            nodes.push(Node {
                mode,
                feature: feats[i].max(0) as usize,
                value: vals[i],
                yes: child(yes[i])?,
                no: child(no[i])?,
                missing_yes: miss.get(i).copied().unwrap_or(0) != 0,
                leaf: (0, 0),
            });
        }
        let p = if classifier { "class" } else { "target" };
        let (wt, wn, wid, ww) = (
            ints(&format!("{p}_treeids")),
            ints(&format!("{p}_nodeids")),
            ints(&format!("{p}_ids")),
            floats(&format!("{p}_weights")),
        );
        let mut per_leaf: HashMap<usize, Vec<(usize, f32)>> = HashMap::new();
        for k in 0..wt.len() {
            let i = *index
                .get(&(wt[k], wn[k]))
                .ok_or_else(|| err(format!("weight for unknown node {}/{}", wt[k], wn[k])))?;
            per_leaf
                .entry(i)
                .or_default()
                .push((wid[k].max(0) as usize, ww[k]));
        }
        let mut weights = Vec::new();
        for (i, node) in nodes.iter_mut().enumerate() {
            if let Some(w) = per_leaf.get(&i) {
                node.leaf = (weights.len(), weights.len() + w.len());
                weights.extend_from_slice(w);
            }
        }
        let mut roots: Vec<(i64, usize)> = Vec::new();
        let targets: std::collections::HashSet<usize> = nodes
            .iter()
            .filter(|n| n.mode != Mode::Leaf)
            .flat_map(|n| [n.yes, n.no])
            .collect();
        for (i, &tree) in tids.iter().enumerate() {
            if !targets.contains(&i) && !roots.iter().any(|r| r.0 == tree) {
                roots.push((tree, i));
            }
        }
        roots.sort();
        let post = match attr(node, "post_transform")
            .map(|a| a.s.as_slice())
            .unwrap_or(b"NONE")
        {
            b"NONE" => Post::None,
            b"LOGISTIC" => Post::Logistic,
            b"SOFTMAX" => Post::Softmax,
            b"SOFTMAX_ZERO" => Post::SoftmaxZero,
            b"PROBIT" => Post::Probit,
            other => {
                return Err(err(format!(
                    "post_transform {}",
                    String::from_utf8_lossy(other)
                )))
            }
        };
        let (labels, n_out, binary_single) = if classifier {
            let labels = ints("classlabels_int64s");
            if labels.is_empty() {
                return Err(err("string class labels are not supported natively".into()));
            }
            let used: std::collections::HashSet<usize> = weights.iter().map(|w| w.0).collect();
            let single = labels.len() == 2 && used.len() <= 1;
            (Some(labels.clone()), labels.len(), single)
        } else {
            let nt = attr(node, "n_targets").map(|a| a.i).unwrap_or(1).max(1) as usize;
            (None, nt, false)
        };
        let graph_outs: Vec<String> = info.outputs.iter().map(|o| o.name.clone()).collect();
        let find = |k: usize| -> Option<String> {
            graph_outs
                .iter()
                .find(|g| resolve((*g).clone()) == node.output.get(k).cloned().unwrap_or_default())
                .cloned()
        };
        let (label_name, score_name) = if classifier {
            (
                find(0),
                find(1).ok_or_else(|| err("the class scores are not a graph output".into()))?,
            )
        } else {
            (
                None,
                find(0).ok_or_else(|| err("the tree output is not a graph output".into()))?,
            )
        };
        let input = info
            .inputs
            .first()
            .map(|i| i.name.clone())
            .ok_or_else(|| err("no input".into()))?;
        let features = info.inputs[0]
            .shape
            .get(1)
            .copied()
            .flatten()
            .unwrap_or_else(|| nodes.iter().map(|n| n.feature + 1).max().unwrap_or(0));
        Ok(TreeEngine {
            info,
            input,
            features,
            nodes,
            roots: roots.into_iter().map(|r| r.1).collect(),
            weights,
            base: floats("base_values"),
            post,
            n_out,
            labels,
            binary_single,
            label_name,
            score_name,
        })
    }

    fn eval_row(&self, x: &[f32], out: &mut [f32]) {
        // Summed in f64, base values added in f32, as ONNX Runtime does.
        let mut acc64 = vec![0f64; if self.binary_single { 1 } else { self.n_out }];
        for &root in &self.roots {
            let mut i = root;
            loop {
                let n = &self.nodes[i];
                if n.mode == Mode::Leaf {
                    for &(c, w) in &self.weights[n.leaf.0..n.leaf.1] {
                        if let Some(a) = acc64.get_mut(c) {
                            *a += w as f64;
                        }
                    }
                    break;
                }
                let v = x[n.feature];
                let go = if v.is_nan() && n.missing_yes {
                    true
                } else {
                    match n.mode {
                        Mode::Leq => v <= n.value,
                        Mode::Lt => v < n.value,
                        Mode::Gte => v >= n.value,
                        Mode::Gt => v > n.value,
                        Mode::Eq => v == n.value,
                        Mode::Neq => v != n.value,
                        Mode::Leaf => unreachable!("handled above"),
                    }
                };
                i = if go { n.yes } else { n.no };
            }
        }
        let mut acc: Vec<f32> = acc64.iter().map(|&a| a as f32).collect();
        for (a, b) in acc.iter_mut().zip(&self.base) {
            *a += b;
        }
        if self.binary_single {
            let s = acc[0];
            match self.post {
                Post::Logistic => {
                    let p = 1.0 / (1.0 + (-s).exp());
                    out[0] = 1.0 - p;
                    out[1] = p;
                }
                _ => {
                    out[0] = -s;
                    out[1] = s;
                }
            }
            return;
        }
        match self.post {
            Post::None => out.copy_from_slice(&acc),
            Post::Logistic => out
                .iter_mut()
                .zip(&acc)
                .for_each(|(o, a)| *o = 1.0 / (1.0 + (-a).exp())),
            Post::Softmax | Post::SoftmaxZero => {
                let m = acc.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f32> = acc
                    .iter()
                    .map(|a| {
                        if self.post == Post::SoftmaxZero && *a == 0.0 {
                            0.0
                        } else {
                            (a - m).exp()
                        }
                    })
                    .collect();
                let s: f32 = e.iter().sum();
                out.iter_mut().zip(&e).for_each(|(o, v)| *o = v / s);
            }
            Post::Probit => out
                .iter_mut()
                .zip(&acc)
                .for_each(|(o, a)| *o = std::f32::consts::SQRT_2 * erfinv(2.0 * a - 1.0)),
        }
    }
}

/// Inverse error function (Giles' approximation, as ONNX Runtime uses for PROBIT).
fn erfinv(x: f32) -> f32 {
    let w = -((1.0 - x) * (1.0 + x)).ln();
    if w < 5.0 {
        let w = w - 2.5;
        let mut p = 2.810_226_4e-8f32;
        for c in [
            3.432_739_4e-7,
            -3.523_387_6e-6,
            -4.391_506_5e-6,
            2.185_808_8e-4,
            -1.253_725e-3,
            -4.177_681_6e-3,
            2.466_407_4e-1,
            1.501_409_4,
        ] {
            p = c + p * w;
        }
        p * x
    } else {
        let w = w.sqrt() - 3.0;
        let mut p = -2.002_142_6e-4f32;
        for c in [
            1.009_505_6e-4,
            1.349_343_2e-3,
            -3.673_428_4e-3,
            5.739_507_7e-3,
            -7.622_461e-3,
            9.438_870_5e-3,
            1.001_674_3,
            2.832_976_8,
        ] {
            p = c + p * w;
        }
        p * x
    }
}

impl Scorer for TreeEngine {
    fn score(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, String> {
        let x = inputs
            .iter()
            .find(|t| t.name == self.input)
            .ok_or_else(|| format!("no data for model input '{}'", self.input))?;
        if x.shape.len() != 2 || x.shape[1] != self.features {
            return Err(format!(
                "input '{}' has shape {:?}, the trees take [N, {}]",
                self.input, x.shape, self.features
            ));
        }
        let rows = x.shape[0];
        let mut scores = vec![0f32; rows * self.n_out];
        for r in 0..rows {
            self.eval_row(
                &x.data[r * self.features..(r + 1) * self.features],
                &mut scores[r * self.n_out..(r + 1) * self.n_out],
            );
        }
        let mut out = Vec::new();
        if let (Some(labels), Some(name)) = (&self.labels, &self.label_name) {
            let data = scores
                .chunks(self.n_out)
                .map(|s| {
                    let k = s
                        .iter()
                        .enumerate()
                        .fold(0, |b, (i, v)| if *v > s[b] { i } else { b });
                    labels[k] as f32
                })
                .collect();
            out.push(Tensor {
                name: name.clone(),
                shape: vec![rows],
                data,
            });
        }
        out.push(Tensor {
            name: self.score_name.clone(),
            shape: vec![rows, self.n_out],
            data: scores,
        });
        Ok(out)
    }

    fn describe(&self) -> String {
        format!(
            "native trees ({} trees) on {} (xxh64 {})",
            self.roots.len(),
            self.info.path.display(),
            self.info.hash
        )
    }
}
