//! Inference engines behind one interface ([`crate::inject::pipeline::Scorer`]): tract (pure
//! Rust, the default). Models are ONNX files; their `metadata_props` carry hepml's feature map.

pub mod onnx_build;
#[cfg(feature = "ort")]
pub mod ort;
pub mod tract;
pub mod trees;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{path}: {msg}")]
    Load { path: PathBuf, msg: String },
    #[error("{path}: input '{input}': {msg}")]
    Input {
        path: PathBuf,
        input: String,
        msg: String,
    },
    #[error("{path}: {msg}")]
    Run { path: PathBuf, msg: String },
}

/// A model input or output as declared in the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    pub name: String,
    /// Dimensions; `None` for a symbolic one (the batch, or a per-object length).
    pub shape: Vec<Option<usize>>,
    /// The ONNX `dim_param` names of symbolic dimensions (shared across inputs, e.g. `n_pf`).
    pub dim_names: Vec<Option<String>>,
    pub elem: String,
}

/// What an ONNX file declares: ports and metadata.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub inputs: Vec<Port>,
    pub outputs: Vec<Port>,
    pub metadata: BTreeMap<String, String>,
    pub producer: String,
    /// xxh64 of the file bytes (hex), for provenance.
    pub hash: String,
}

pub fn read_info(path: &Path) -> Result<ModelInfo, EngineError> {
    use prost::Message;
    use tract_onnx::pb::type_proto::Value as TV;
    let err = |msg: String| EngineError::Load {
        path: path.to_path_buf(),
        msg,
    };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let proto = tract_onnx::pb::ModelProto::decode(bytes.as_slice())
        .map_err(|e| err(format!("not an ONNX model: {e}")))?;
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| err("ONNX model without a graph".into()))?;
    let inits: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let port = |v: &tract_onnx::pb::ValueInfoProto| {
        use tract_onnx::pb::tensor_shape_proto::dimension::Value as DV;
        let dim_names: Vec<Option<String>> = match v.r#type.as_ref().and_then(|t| t.value.as_ref())
        {
            Some(TV::TensorType(t)) => t
                .shape
                .as_ref()
                .map(|s| {
                    s.dim
                        .iter()
                        .map(|d| match &d.value {
                            Some(DV::DimParam(p)) if !p.is_empty() => Some(p.clone()),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let (shape, elem) = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(TV::TensorType(t)) => (
                t.shape
                    .as_ref()
                    .map(|s| {
                        s.dim
                            .iter()
                            .map(|d| match d.value {
                                Some(
                                    tract_onnx::pb::tensor_shape_proto::dimension::Value::DimValue(
                                        n,
                                    ),
                                ) if n > 0 => Some(n as usize),
                                _ => None,
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                tract_onnx::pb::tensor_proto::DataType::try_from(t.elem_type)
                    .map(|d| format!("{d:?}").to_lowercase())
                    .unwrap_or_else(|_| format!("type {}", t.elem_type)),
            ),
            _ => (Vec::new(), "non-tensor".to_string()),
        };
        Port {
            name: v.name.clone(),
            shape,
            dim_names,
            elem,
        }
    };
    Ok(ModelInfo {
        path: path.to_path_buf(),
        inputs: graph
            .input
            .iter()
            .filter(|i| !inits.contains(i.name.as_str()))
            .map(port)
            .collect(),
        outputs: graph.output.iter().map(port).collect(),
        metadata: proto
            .metadata_props
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect(),
        producer: format!("{} {}", proto.producer_name, proto.producer_version)
            .trim()
            .to_string(),
        hash: format!("{:016x}", xxhash_rust::xxh64::xxh64(&bytes, 0)),
    })
}
