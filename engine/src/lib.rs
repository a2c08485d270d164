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
//! A [`Model`] is an ONNX file read and decoded once; [`open`] picks an engine for it
//! ([`EngineKind::Auto`]: tree ensembles and dense networks to the native evaluators, every
//! other graph to tract) and loads it from that one decode; [`Engine::describe`] says which, for
//! logs and provenance. The models' `metadata_props` (see [`ModelInfo::metadata`]) carry
//! hepml's feature map.

mod model;
pub mod native;
pub mod onnx_build;
#[cfg(feature = "ort")]
pub mod ort;
pub mod tract;
pub mod trees;

pub use model::{Model, ModelInfo, Port};
use std::path::PathBuf;

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

/// An engine [`open`] loaded, by type: the native evaluators concretely (for their
/// allocation-free `run_into`, which the C++ bridge uses), every other engine behind the trait.
pub enum Opened {
    Native(Box<native::NativeEngine>),
    Trees(Box<trees::TreeEngine>),
    Other(Box<dyn Engine>),
}

impl Opened {
    pub fn engine(&self) -> &dyn Engine {
        match self {
            Opened::Native(e) => e.as_ref(),
            Opened::Trees(e) => e.as_ref(),
            Opened::Other(e) => e.as_ref(),
        }
    }

    pub fn into_engine(self) -> Box<dyn Engine> {
        match self {
            Opened::Native(e) => e,
            Opened::Trees(e) => e,
            Opened::Other(e) => e,
        }
    }
}

/// Loads `model` on the engine `opts` asks for.
pub fn open(model: &Model, opts: &EngineOptions) -> Result<Opened, EngineError> {
    let kind = match opts.kind {
        EngineKind::Auto if trees::is_tree_model(model) => EngineKind::Trees,
        EngineKind::Auto if native::recognise(model).is_ok() => EngineKind::Native,
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
            e
        }};
    }
    Ok(match kind {
        EngineKind::Trees => {
            Opened::Trees(Box::new(with_threads!(trees::TreeEngine::load(model)?)))
        }
        EngineKind::Native => {
            Opened::Native(Box::new(with_threads!(native::NativeEngine::load(model)?)))
        }
        EngineKind::Ort => Opened::Other(open_ort(model, opts)?),
        _ => Opened::Other(Box::new(with_threads!(tract::TractEngine::load(model)?))),
    })
}

#[cfg(feature = "ort")]
fn open_ort(model: &Model, opts: &EngineOptions) -> Result<Box<dyn Engine>, EngineError> {
    let pool = if opts.ort_sessions == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        opts.ort_sessions
    };
    Ok(Box::new(ort::OrtEngine::load(
        model,
        opts.ort_library.as_deref(),
        opts.device == Device::Cuda,
        pool,
    )?))
}

#[cfg(not(feature = "ort"))]
fn open_ort(_: &Model, _: &EngineOptions) -> Result<Box<dyn Engine>, EngineError> {
    Err(EngineError::Config(
        "built without the ONNX Runtime backend (cargo feature `ort`); use the tract engine".into(),
    ))
}
