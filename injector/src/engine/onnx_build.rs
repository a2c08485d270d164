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

/// A dense network: `input` [N, n_in] -> Gemm layers (weights row-major [n_in, n_out]) with
/// `hidden` activation between them -> `final_act` ("Sigmoid" or "") -> `output`.
pub struct Dense {
    pub input: String,
    pub output: String,
    pub layers: Vec<(usize, usize, Vec<f32>, Vec<f32>)>,
    pub hidden: String,
    pub final_act: String,
    pub metadata: Vec<(String, String)>,
}

impl Dense {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut nodes = Vec::new();
        let mut inits = Vec::new();
        let mut prev = self.input.clone();
        for (i, (n_in, n_out, w, b)) in self.layers.iter().enumerate() {
            inits.push(tensor(&format!("W{i}"), &[*n_in, *n_out], w.clone()));
            inits.push(tensor(&format!("B{i}"), &[*n_out], b.clone()));
            let out = format!("gemm{i}");
            nodes.push(pb::NodeProto {
                op_type: "Gemm".into(),
                name: format!("dense{i}"),
                input: vec![prev.clone(), format!("W{i}"), format!("B{i}")],
                output: vec![out.clone()],
                ..Default::default()
            });
            prev = out;
            let act = if i + 1 < self.layers.len() {
                &self.hidden
            } else {
                &self.final_act
            };
            if !act.is_empty() {
                let out = format!("act{i}");
                nodes.push(pb::NodeProto {
                    op_type: act.clone(),
                    name: format!("{act}{i}"),
                    input: vec![prev.clone()],
                    output: vec![out.clone()],
                    ..Default::default()
                });
                prev = out;
            }
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
