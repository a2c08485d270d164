//! Writing small ONNX models with float inputs, a symbolic batch and hepml metadata: dense
//! layers (Gemm) with an activation ([`Dense`], `hepml demo`'s linear discriminant) and
//! regression tree ensembles ([`TreeEnsemble`], hepml's own trees).

use crate::EngineError;
use pb::attribute_proto::AttributeType;
use prost::Message;
use tract_onnx::pb;

fn value_info(name: &str, dims: &[Option<usize>]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value as DV, Dimension};
    pb::ValueInfoProto {
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: pb::tensor_proto::DataType::Float as i32,
                shape: Some(pb::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            value: Some(match d {
                                Some(n) => DV::DimValue(*n as i64),
                                None => DV::DimParam("N".into()),
                            }),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn tensor(name: &str, dims: &[usize], data: Vec<f32>) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: pb::tensor_proto::DataType::Float as i32,
        float_data: data,
        ..Default::default()
    }
}

/// A dense network: `input` [N, n_in] -> optional standardisation `(x - mean) / std` -> Gemm
/// layers (weights row-major [n_in, n_out]) with the `hidden` activation between them ("Relu",
/// "Tanh", "Elu", "Sigmoid", or "Swish" = x * sigmoid(x) and "Gelu" = x * Phi(x), written with
/// standard operators) -> `final_act` ("Sigmoid" or "") -> `output`.
pub struct Dense {
    pub input: String,
    pub output: String,
    pub layers: Vec<(usize, usize, Vec<f32>, Vec<f32>)>,
    pub hidden: String,
    pub final_act: String,
    pub metadata: Vec<(String, String)>,
    /// Per-input-column mean and standard deviation, applied inside the graph.
    pub standardise: Option<(Vec<f32>, Vec<f32>)>,
}

fn node(op: &str, name: String, input: Vec<String>, output: &str) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.into(),
        name,
        input,
        output: vec![output.into()],
        ..Default::default()
    }
}

impl Dense {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut nodes = Vec::new();
        let mut inits = Vec::new();
        let mut prev = self.input.clone();
        if let Some((mean, std)) = &self.standardise {
            inits.push(tensor("mean", &[mean.len()], mean.clone()));
            inits.push(tensor("std", &[std.len()], std.clone()));
            nodes.push(node(
                "Sub",
                "centre".into(),
                vec![prev, "mean".into()],
                "centred",
            ));
            nodes.push(node(
                "Div",
                "scale".into(),
                vec!["centred".into(), "std".into()],
                "standardised",
            ));
            prev = "standardised".into();
        }
        for (i, (n_in, n_out, w, b)) in self.layers.iter().enumerate() {
            inits.push(tensor(&format!("W{i}"), &[*n_in, *n_out], w.clone()));
            inits.push(tensor(&format!("B{i}"), &[*n_out], b.clone()));
            let out = format!("gemm{i}");
            nodes.push(node(
                "Gemm",
                format!("dense{i}"),
                vec![prev.clone(), format!("W{i}"), format!("B{i}")],
                &out,
            ));
            prev = out;
            let act = if i + 1 < self.layers.len() {
                &self.hidden
            } else {
                &self.final_act
            };
            let out = format!("act{i}");
            match act.as_str() {
                "" => continue,
                "Swish" => {
                    let sig = format!("sig{i}");
                    nodes.push(node(
                        "Sigmoid",
                        format!("sigmoid{i}"),
                        vec![prev.clone()],
                        &sig,
                    ));
                    nodes.push(node(
                        "Mul",
                        format!("swish{i}"),
                        vec![prev.clone(), sig],
                        &out,
                    ));
                }
                "Gelu" => {
                    // 0.5 x (1 + erf(x / sqrt 2))
                    if !inits.iter().any(|t| t.name == "sqrt2") {
                        inits.push(tensor("sqrt2", &[], vec![std::f32::consts::SQRT_2]));
                        inits.push(tensor("one", &[], vec![1.0]));
                        inits.push(tensor("half", &[], vec![0.5]));
                    }
                    let t = |k: &str| format!("gelu{i}_{k}");
                    nodes.push(node(
                        "Div",
                        t("div"),
                        vec![prev.clone(), "sqrt2".into()],
                        &t("a"),
                    ));
                    nodes.push(node("Erf", t("erf"), vec![t("a")], &t("b")));
                    nodes.push(node("Add", t("add"), vec![t("b"), "one".into()], &t("c")));
                    nodes.push(node("Mul", t("mul"), vec![prev.clone(), t("c")], &t("d")));
                    nodes.push(node("Mul", t("half"), vec![t("d"), "half".into()], &out));
                }
                op => nodes.push(node(op, format!("{op}{i}"), vec![prev.clone()], &out)),
            }
            prev = out;
        }
        // Name the last tensor as the output.
        if let Some(last) = nodes.last_mut() {
            last.output = vec![self.output.clone()];
        }
        let n_in = self.layers.first().map_or(0, |l| l.0);
        let n_out = self.layers.last().map_or(0, |l| l.1);
        encode(
            pb::GraphProto {
                name: "hepml".into(),
                node: nodes,
                initializer: inits,
                input: vec![value_info(&self.input, &[None, Some(n_in)])],
                output: vec![value_info(&self.output, &[None, Some(n_out)])],
                ..Default::default()
            },
            &[("", 13)],
            &self.metadata,
        )
    }
}

/// The model around `graph`: hepml as producer, the operator sets `(domain, version)` and the
/// metadata as `metadata_props`.
fn encode(graph: pb::GraphProto, opsets: &[(&str, i64)], metadata: &[(String, String)]) -> Vec<u8> {
    pb::ModelProto {
        ir_version: 8,
        producer_name: "hepml".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        opset_import: opsets
            .iter()
            .map(|&(domain, version)| pb::OperatorSetIdProto {
                domain: domain.into(),
                version,
            })
            .collect(),
        graph: Some(graph),
        metadata_props: metadata
            .iter()
            .map(|(k, v)| pb::StringStringEntryProto {
                key: k.clone(),
                value: v.clone(),
            })
            .collect(),
        ..Default::default()
    }
    .encode_to_vec()
}

/// One node of a tree of a [`TreeEnsemble`]. A tree is a `Vec` of nodes numbered by their
/// index, the root first.
#[derive(Debug, Clone, PartialEq)]
pub enum TreeNode {
    /// Rows with `x[feature] <= threshold` go to node `yes`, the others to node `no`; NaN goes
    /// to `yes` where `nan_yes`, else to `no`.
    Branch {
        feature: usize,
        threshold: f32,
        nan_yes: bool,
        yes: usize,
        no: usize,
    },
    /// The value the tree adds.
    Leaf(f32),
}

/// A regression tree ensemble as one ONNX-ML `TreeEnsembleRegressor` (ai.onnx.ml opset 3,
/// `BRANCH_LEQ` nodes, aggregate SUM): `input` [N, n_features] -> the leaf values the row
/// reaches summed in tree order, plus `base` -> with `logistic`, an ONNX `Sigmoid` node ->
/// `output` [N, 1].
///
/// The logistic function is a node of its own because ONNX Runtime ignores a one-target
/// regressor's `post_transform` LOGISTIC (it applies PROBIT only there).
#[derive(Debug, Clone)]
pub struct TreeEnsemble {
    pub input: String,
    pub output: String,
    pub n_features: usize,
    pub trees: Vec<Vec<TreeNode>>,
    pub base: f32,
    pub logistic: bool,
    pub metadata: Vec<(String, String)>,
}

fn attr(name: &str, kind: AttributeType) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: kind as i32,
        ..Default::default()
    }
}

fn ints(name: &str, v: Vec<i64>) -> pb::AttributeProto {
    pb::AttributeProto {
        ints: v,
        ..attr(name, AttributeType::Ints)
    }
}

fn floats(name: &str, v: Vec<f32>) -> pb::AttributeProto {
    pb::AttributeProto {
        floats: v,
        ..attr(name, AttributeType::Floats)
    }
}

fn strings(name: &str, v: Vec<&str>) -> pb::AttributeProto {
    pb::AttributeProto {
        strings: v.into_iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..attr(name, AttributeType::Strings)
    }
}

fn string(name: &str, v: &str) -> pb::AttributeProto {
    pb::AttributeProto {
        s: v.as_bytes().to_vec(),
        ..attr(name, AttributeType::String)
    }
}

/// The attributes of a `TreeEnsembleRegressor` node, collected node by node.
#[derive(Default)]
struct TreeAttrs {
    tree: Vec<i64>,
    node: Vec<i64>,
    feature: Vec<i64>,
    value: Vec<f32>,
    mode: Vec<&'static str>,
    yes: Vec<i64>,
    no: Vec<i64>,
    nan_yes: Vec<i64>,
    leaf_tree: Vec<i64>,
    leaf_node: Vec<i64>,
    leaf_value: Vec<f32>,
}

impl TreeEnsemble {
    /// The ONNX model; an error names the tree and node that does not fit (a child index past
    /// the tree's end, a feature past `n_features`), or an empty ensemble.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EngineError> {
        let bad = |msg: String| EngineError::Config(format!("tree ensemble: {msg}"));
        if self.trees.iter().all(|t| t.is_empty()) {
            return Err(bad("no tree nodes".into()));
        }
        let mut a = TreeAttrs::default();
        for (t, tree) in self.trees.iter().enumerate() {
            if tree.is_empty() {
                return Err(bad(format!("tree {t} has no nodes")));
            }
            for (i, node) in tree.iter().enumerate() {
                a.tree.push(t as i64);
                a.node.push(i as i64);
                match *node {
                    TreeNode::Branch {
                        feature,
                        threshold,
                        nan_yes,
                        yes,
                        no,
                    } => {
                        if feature >= self.n_features {
                            return Err(bad(format!(
                                "tree {t} node {i} reads feature {feature} of {}",
                                self.n_features
                            )));
                        }
                        if yes >= tree.len() || no >= tree.len() || yes == i || no == i {
                            return Err(bad(format!(
                                "tree {t} node {i} branches to nodes {yes}/{no} of {}",
                                tree.len()
                            )));
                        }
                        a.feature.push(feature as i64);
                        a.value.push(threshold);
                        a.mode.push("BRANCH_LEQ");
                        a.yes.push(yes as i64);
                        a.no.push(no as i64);
                        a.nan_yes.push(i64::from(nan_yes));
                    }
                    TreeNode::Leaf(v) => {
                        a.feature.push(0);
                        a.value.push(0.0);
                        a.mode.push("LEAF");
                        a.yes.push(0);
                        a.no.push(0);
                        a.nan_yes.push(0);
                        a.leaf_tree.push(t as i64);
                        a.leaf_node.push(i as i64);
                        a.leaf_value.push(v);
                    }
                }
            }
        }
        let n_leaves = a.leaf_value.len();
        let scores = if self.logistic {
            "margin".to_string()
        } else {
            self.output.clone()
        };
        let mut nodes = vec![pb::NodeProto {
            op_type: "TreeEnsembleRegressor".into(),
            domain: "ai.onnx.ml".into(),
            name: "trees".into(),
            input: vec![self.input.clone()],
            output: vec![scores.clone()],
            attribute: vec![
                string("aggregate_function", "SUM"),
                floats("base_values", vec![self.base]),
                pb::AttributeProto {
                    i: 1,
                    ..attr("n_targets", AttributeType::Int)
                },
                ints("nodes_falsenodeids", a.no),
                ints("nodes_featureids", a.feature),
                ints("nodes_missing_value_tracks_true", a.nan_yes),
                strings("nodes_modes", a.mode),
                ints("nodes_nodeids", a.node),
                ints("nodes_treeids", a.tree),
                ints("nodes_truenodeids", a.yes),
                floats("nodes_values", a.value),
                string("post_transform", "NONE"),
                ints("target_ids", vec![0; n_leaves]),
                ints("target_nodeids", a.leaf_node),
                ints("target_treeids", a.leaf_tree),
                floats("target_weights", a.leaf_value),
            ],
            ..Default::default()
        }];
        if self.logistic {
            nodes.push(node(
                "Sigmoid",
                "logistic".into(),
                vec![scores],
                &self.output,
            ));
        }
        Ok(encode(
            pb::GraphProto {
                name: "hepml".into(),
                node: nodes,
                input: vec![value_info(&self.input, &[None, Some(self.n_features)])],
                output: vec![value_info(&self.output, &[None, Some(1)])],
                ..Default::default()
            },
            &[("", 13), ("ai.onnx.ml", 3)],
            &self.metadata,
        ))
    }
}
