//! A model read from disk and decoded once ([`Model`]), and what it declares ([`ModelInfo`]):
//! recognition (`trees::is_tree_model`, `native::recognise`), metadata and every
//! engine's `load` share the one decode.

use crate::{EngineError, Tensor};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use tract_onnx::pb;

/// An ONNX file, read and decoded once: its protobuf and what it declares. Give it to
/// [`crate::open`] (or an engine's `load`); [`Model::info`] is the same information the engine
/// then reports.
#[derive(Debug, Clone)]
pub struct Model {
    proto: pb::ModelProto,
    info: ModelInfo,
}

impl Model {
    /// Reads and decodes `path`: a one-line [`EngineError::Load`] naming the file when it cannot
    /// be read or is not an ONNX model with a graph.
    pub fn read(path: &Path) -> Result<Model, EngineError> {
        use prost::Message;
        let err = |msg: String| EngineError::Load {
            path: path.to_path_buf(),
            msg,
        };
        let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read the model: {e}")))?;
        let proto = pb::ModelProto::decode(bytes.as_slice())
            .map_err(|e| err(format!("not an ONNX model: {e}")))?;
        let hash = format!("{:016x}", xxhash_rust::xxh64::xxh64(&bytes, 0));
        let info = describe(path, &proto, hash)?;
        Ok(Model { proto, info })
    }

    /// The ports, metadata and hash of the file.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The ports, metadata and hash, without the decoded graph.
    pub fn into_info(self) -> ModelInfo {
        self.info
    }

    pub fn path(&self) -> &Path {
        &self.info.path
    }

    /// The decoded protobuf (for the engines' loaders).
    pub(crate) fn proto(&self) -> &pb::ModelProto {
        &self.proto
    }

    /// The graph ([`Model::read`] refuses a model without one).
    pub(crate) fn graph(&self) -> &pb::GraphProto {
        self.proto
            .graph
            .as_ref()
            .expect("Model::read checked the graph")
    }
}

/// What `proto` declares: ports (initializers excluded from the inputs), metadata, producer.
fn describe(path: &Path, proto: &pb::ModelProto, hash: String) -> Result<ModelInfo, EngineError> {
    use pb::type_proto::Value as TV;
    let graph = proto.graph.as_ref().ok_or_else(|| EngineError::Load {
        path: path.to_path_buf(),
        msg: "ONNX model without a graph".into(),
    })?;
    let inits: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let port = |v: &pb::ValueInfoProto| {
        use pb::tensor_shape_proto::dimension::Value as DV;
        let mut shape = Vec::new();
        let mut dim_names = Vec::new();
        let elem = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(TV::TensorType(t)) => {
                for d in t.shape.iter().flat_map(|s| s.dim.iter()) {
                    match &d.value {
                        Some(DV::DimValue(n)) if *n > 0 => {
                            shape.push(Some(*n as usize));
                            dim_names.push(None);
                        }
                        Some(DV::DimParam(p)) if !p.is_empty() => {
                            shape.push(None);
                            dim_names.push(Some(p.clone()));
                        }
                        _ => {
                            shape.push(None);
                            dim_names.push(None);
                        }
                    }
                }
                pb::tensor_proto::DataType::try_from(t.elem_type)
                    .map(|d| format!("{d:?}").to_lowercase())
                    .unwrap_or_else(|_| format!("type {}", t.elem_type))
            }
            // tract's protobuf knows tensor types only: sequences and maps land here.
            _ => "non-tensor".into(),
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
        hash,
    })
}

/// A model input or output as declared in the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    pub name: String,
    /// Dimensions; `None` for a symbolic one (the batch, or a per-object length).
    pub shape: Vec<Option<usize>>,
    /// The ONNX `dim_param` names of symbolic dimensions (shared across inputs, e.g. `n_pf`).
    pub dim_names: Vec<Option<String>>,
    /// ONNX element type in lower case ("float", "int64", ...), or "non-tensor" for sequences
    /// and maps (a ZipMap's output).
    pub elem: String,
}

impl Port {
    /// Whether a tensor of `shape` fits: the declared rank, and the declared size wherever
    /// the graph fixes one.
    pub fn fits(&self, shape: &[usize]) -> bool {
        shape.len() == self.shape.len()
            && shape
                .iter()
                .zip(&self.shape)
                .all(|(a, b)| b.is_none_or(|b| b == *a))
    }

    /// The shape as the user reads it: `[N, 5]`, `[N, 23, n_pf]`, `[?, 3]`.
    pub fn shape_string(&self) -> String {
        let dims: Vec<String> = self
            .shape
            .iter()
            .enumerate()
            .map(
                |(k, d)| match (d, self.dim_names.get(k).cloned().flatten()) {
                    (Some(n), _) => n.to_string(),
                    (None, Some(name)) => name,
                    (None, None) => "?".into(),
                },
            )
            .collect();
        format!("[{}]", dims.join(", "))
    }
}

/// What an ONNX file declares: ports and metadata.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub inputs: Vec<Port>,
    pub outputs: Vec<Port>,
    /// The model's `metadata_props` (hepml's exporter stores the feature -> branch map here).
    pub metadata: BTreeMap<String, String>,
    pub producer: String,
    /// xxh64 of the file bytes (hex), for provenance.
    pub hash: String,
}

impl ModelInfo {
    fn input_err(&self, input: &str, msg: String) -> EngineError {
        EngineError::Input {
            path: self.path.clone(),
            input: input.to_string(),
            msg,
        }
    }

    /// Checks a batch against the declared inputs and returns it in graph order: every input
    /// exactly once, no unknown names, the declared rank and fixed dimensions, data length equal
    /// to the shape's product, and one size per named symbolic dimension (the batch `N`, or
    /// `n_pf` shared by ParticleNet's inputs) across all inputs.
    pub fn check_inputs<'a>(&self, inputs: &'a [Tensor]) -> Result<Vec<&'a Tensor>, EngineError> {
        for (i, t) in inputs.iter().enumerate() {
            if !self.inputs.iter().any(|p| p.name == t.name) {
                let names: Vec<&str> = self.inputs.iter().map(|p| p.name.as_str()).collect();
                return Err(self.input_err(
                    &t.name,
                    format!(
                        "the model has no such input (its inputs: {})",
                        names.join(", ")
                    ),
                ));
            }
            if inputs[..i].iter().any(|o| o.name == t.name) {
                return Err(self.input_err(&t.name, "given twice".into()));
            }
        }
        let mut sizes: HashMap<String, (usize, &str)> = HashMap::new();
        let mut ordered = Vec::with_capacity(self.inputs.len());
        for port in &self.inputs {
            let t = inputs.iter().find(|t| t.name == port.name).ok_or_else(|| {
                self.input_err(
                    &port.name,
                    format!(
                        "missing ({} inputs given, the model takes {}: {})",
                        inputs.len(),
                        self.inputs.len(),
                        self.inputs
                            .iter()
                            .map(|p| format!("{} {}", p.name, p.shape_string()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
            if !port.fits(&t.shape) {
                return Err(self.input_err(
                    &port.name,
                    format!(
                        "shape {:?}, the model expects {}",
                        t.shape,
                        port.shape_string()
                    ),
                ));
            }
            let n: usize = t.shape.iter().product();
            if t.data.len() != n {
                return Err(self.input_err(
                    &port.name,
                    format!(
                        "{} values for shape {:?} ({n} expected)",
                        t.data.len(),
                        t.shape
                    ),
                ));
            }
            for (k, d) in t.shape.iter().enumerate() {
                if port.shape[k].is_some() {
                    continue;
                }
                let name = match port.dim_names.get(k).cloned().flatten() {
                    Some(name) => name,
                    // An anonymous first dimension is the batch.
                    None if k == 0 => "N".to_string(),
                    None => continue,
                };
                match sizes.get(&name) {
                    Some((size, other)) if size != d => {
                        return Err(self.input_err(
                            &port.name,
                            format!("dimension {name} is {d} here but {size} in input '{other}'"),
                        ))
                    }
                    Some(_) => {}
                    None => {
                        sizes.insert(name, (*d, port.name.as_str()));
                    }
                }
            }
            ordered.push(t);
        }
        Ok(ordered)
    }
}
