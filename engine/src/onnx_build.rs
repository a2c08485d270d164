//! Writing small ONNX models: dense layers (Gemm) with an activation, float inputs with a
//! symbolic batch, and hepml metadata. Used by `hepml demo` for its linear discriminant.

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
        let model = pb::ModelProto {
            ir_version: 8,
            producer_name: "hepml".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            opset_import: vec![pb::OperatorSetIdProto {
                domain: String::new(),
                version: 13,
            }],
            graph: Some(pb::GraphProto {
                name: "hepml".into(),
                node: nodes,
                initializer: inits,
                input: vec![value_info(&self.input, &[None, Some(n_in)])],
                output: vec![value_info(&self.output, &[None, Some(n_out)])],
                ..Default::default()
            }),
            metadata_props: self
                .metadata
                .iter()
                .map(|(k, v)| pb::StringStringEntryProto {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
            ..Default::default()
        };
        model.encode_to_vec()
    }
}
