//! Inference engines behind one interface, [`Engine`]: named f32 tensors in (row-major,
//! `[batch, ...]`), named f32 tensors out.
//!
//! - [`tract::TractEngine`] (pure Rust, the default for neural networks): a plan with a
//!   symbolic batch plus plans optimised for the fixed shapes actually seen, cached;
//! - [`trees::TreeEngine`]: ONNX-ML tree ensembles (sklearn/xgboost BDTs) evaluated natively;
//! - [`native::NativeEngine`]: dense networks (MLPs, PNNs: dense layers, activations,
//!   standardisation) evaluated natively, allocation-free, sub-microsecond per event;
//! - `ort::OrtEngine` (feature `ort`): ONNX Runtime loaded at run time, CPU or CUDA.
//!
//! [`open`] picks one ([`EngineKind::Auto`]: tree ensembles and dense networks to the native
//! evaluators, every other graph to tract); [`Engine::describe`] says which, for logs and provenance. Models are ONNX
//! files; their `metadata_props` (see [`ModelInfo::metadata`]) carry hepml's feature map.

pub mod native;
pub mod onnx_build;
#[cfg(feature = "ort")]
pub mod ort;
pub mod tract;
pub mod trees;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// A named f32 tensor, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    pub fn new(name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) -> Self {
        Tensor {
            name: name.into(),
            shape,
            data,
        }
    }
}

/// Every engine error names the model file; input errors name the input.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The file cannot be read or is not an ONNX model the engine can load.
    #[error("{path}: {msg}")]
    Load { path: PathBuf, msg: String },
    /// The graph uses something the engine does not support (named node / attribute).
    #[error("{path}: {msg}")]
    Unsupported { path: PathBuf, msg: String },
    /// The inputs given do not fit the model (missing, unknown, wrong shape or length).
    #[error("{path}: input '{input}': {msg}")]
    Input {
        path: PathBuf,
        input: String,
        msg: String,
    },
    /// Inference itself failed.
    #[error("{path}: {msg}")]
    Run { path: PathBuf, msg: String },
    /// Bad engine options (a device the engine cannot use, a missing library).
    #[error("{0}")]
    Config(String),
}

/// Something that turns named input tensors into named output tensors (an ONNX model on some
/// engine). Shared by threads: `run` takes `&self`.
pub trait Engine: Send + Sync {
    /// Runs a batch. Inputs are matched by name (any order; each model input exactly once);
    /// outputs come in the graph's output order.
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, EngineError>;
    /// Engine and model, for logs and provenance (e.g. "native trees (100 trees) on ...").
    fn describe(&self) -> String;
    /// What the model file declares.
    fn info(&self) -> &ModelInfo;
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
            let fits = t.shape.len() == port.shape.len()
                && t.shape
                    .iter()
                    .zip(&port.shape)
                    .all(|(a, b)| b.is_none_or(|b| b == *a));
            if !fits {
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

/// Which engine [`open`] loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EngineKind {
    /// Tree ensembles and dense networks to the native evaluators, every other graph to tract.
    #[default]
    Auto,
    Tract,
    Trees,
    /// The native dense-network evaluator (an error for any other graph).
    Native,
    /// ONNX Runtime (needs the `ort` feature).
    Ort,
}

impl std::str::FromStr for EngineKind {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self, EngineError> {
        match s {
            "auto" => Ok(EngineKind::Auto),
            "tract" => Ok(EngineKind::Tract),
            "trees" => Ok(EngineKind::Trees),
            "native" => Ok(EngineKind::Native),
            "ort" => Ok(EngineKind::Ort),
            _ => Err(EngineError::Config(format!(
                "unknown engine '{s}' (auto, tract, trees, native, ort)"
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    #[default]
    Cpu,
    /// ONNX Runtime's CUDA execution provider; an error where it cannot be registered.
    Cuda,
}

impl std::str::FromStr for Device {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self, EngineError> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda),
            _ => Err(EngineError::Config(format!(
                "unknown device '{s}' (cpu, cuda)"
            ))),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    pub kind: EngineKind,
    pub device: Device,
    /// libonnxruntime for [`EngineKind::Ort`] (default: `ORT_DYLIB_PATH`, else the project
    /// venv's pip onnxruntime).
    pub ort_library: Option<PathBuf>,
    /// ONNX Runtime sessions kept for concurrent callers (0: one per core).
    pub ort_sessions: usize,
    /// tract and native trees: threads a large batch is split over (0: one per core).
    pub threads: usize,
}

/// Loads `path` on the engine `opts` asks for.
pub fn open(path: &Path, opts: &EngineOptions) -> Result<Box<dyn Engine>, EngineError> {
    let kind = match opts.kind {
        EngineKind::Auto if trees::is_tree_model(path)? => EngineKind::Trees,
        EngineKind::Auto if native::recognise(path)?.is_ok() => EngineKind::Native,
        EngineKind::Auto => EngineKind::Tract,
        k => k,
    };
    if opts.device == Device::Cuda && kind != EngineKind::Ort {
        return Err(EngineError::Config(format!(
            "device cuda needs the ort engine; {} runs on the CPU only",
            if kind == EngineKind::Trees {
                "the native tree evaluator"
            } else if kind == EngineKind::Native {
                "the native dense evaluator"
            } else {
                "tract"
            }
        )));
    }
    // The CPU engines split large batches over `threads` (0: one per core, their default).
    macro_rules! with_threads {
        ($load:expr) => {{
            let mut e = $load;
            if opts.threads > 0 {
                e.threads = opts.threads;
            }
            Ok(Box::new(e))
        }};
    }
    match kind {
        EngineKind::Trees => with_threads!(trees::TreeEngine::load(path)?),
        EngineKind::Native => with_threads!(native::NativeEngine::load(path)?),
        EngineKind::Ort => open_ort(path, opts),
        _ => with_threads!(tract::TractEngine::load(path)?),
    }
}

#[cfg(feature = "ort")]
fn open_ort(path: &Path, opts: &EngineOptions) -> Result<Box<dyn Engine>, EngineError> {
    let pool = if opts.ort_sessions == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        opts.ort_sessions
    };
    Ok(Box::new(ort::OrtEngine::load(
        path,
        opts.ort_library.as_deref(),
        opts.device == Device::Cuda,
        pool,
    )?))
}

#[cfg(not(feature = "ort"))]
fn open_ort(_: &Path, _: &EngineOptions) -> Result<Box<dyn Engine>, EngineError> {
    Err(EngineError::Config(
        "built without the ONNX Runtime backend (cargo feature `ort`); use the tract engine".into(),
    ))
}

/// Reads and decodes an ONNX file.
pub(crate) fn read_proto(path: &Path) -> Result<tract_onnx::pb::ModelProto, EngineError> {
    use prost::Message;
    let bytes = std::fs::read(path).map_err(|e| EngineError::Load {
        path: path.to_path_buf(),
        msg: format!("cannot read the model: {e}"),
    })?;
    tract_onnx::pb::ModelProto::decode(bytes.as_slice()).map_err(|e| EngineError::Load {
        path: path.to_path_buf(),
        msg: format!("not an ONNX model: {e}"),
    })
}

/// The ports, metadata and hash of an ONNX file (no engine involved).
pub fn read_info(path: &Path) -> Result<ModelInfo, EngineError> {
    use prost::Message;
    use tract_onnx::pb::type_proto::Value as TV;
    let err = |msg: String| EngineError::Load {
        path: path.to_path_buf(),
        msg,
    };
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read the model: {e}")))?;
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
                tract_onnx::pb::tensor_proto::DataType::try_from(t.elem_type)
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
        hash: format!("{:016x}", xxhash_rust::xxh64::xxh64(&bytes, 0)),
    })
}
