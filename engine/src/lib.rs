//! Inference engines behind one interface, [`Engine`]: named f32 tensors in (row-major,
//! `[batch, ...]`), named f32 tensors out.
//!
//! - [`tract::TractEngine`] (pure Rust, for neural networks when ONNX Runtime is absent): a plan with a
//!   symbolic batch plus plans optimised for the fixed shapes actually seen, cached;
//! - [`trees::TreeEngine`]: ONNX-ML tree ensembles (sklearn/xgboost BDTs) evaluated natively;
//! - [`native::NativeEngine`]: dense networks (MLPs, PNNs: dense layers, activations,
//!   standardisation) evaluated natively, allocation-free, sub-microsecond per event;
//! - [`native::EdgeConvEngine`]: particle-cloud networks (ParticleNet's EdgeConv family)
//!   evaluated natively, event by event;
//! - [`native::CnnEngine`]: 1-D convolutional networks (DeepBoostedJet: residual blocks of
//!   convolutions with batch norm, pooling, dense head) and recurrent taggers (DeepJet:
//!   pointwise convolutions, LSTMs, dense head; DeepDoubleX: the same with GRUs) evaluated
//!   natively, events in groups;
//! - `ort::OrtEngine` (feature `ort`): ONNX Runtime loaded at run time, CPU or CUDA.
//!
//! A [`Model`] is an ONNX file read and decoded once; [`open_with_choice`] picks an engine for it
//! ([`EngineKind::Auto`]: tree ensembles, dense, EdgeConv, 1-D convolutional and recurrent
//! (LSTM, GRU) networks to the native evaluators, every other graph to ONNX Runtime when its
//! library is found, else tract), loads it from that one decode and says which and why
//! ([`Choice`]), for logs and provenance. The models' `metadata_props` (see
//! [`ModelInfo::metadata`]) carry hepml's feature map.

mod fixed_batch;
mod model;
pub mod native;
pub mod onnx_build;
#[cfg(feature = "ort")]
pub mod ort;
mod parts;
pub mod tract;
pub mod trees;

pub use model::{Model, ModelInfo, Port};
pub use parts::cores;
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
    /// Whether [`Engine::run_columns`] reads inputs column by column, where they lie.
    fn reads_columns(&self) -> bool {
        false
    }
    /// [`Engine::run`] with each input given as its columns, in `info().inputs` order:
    /// `inputs[i][j]` holds value `j` of each of the `batch` rows of input `i` (decoded branches,
    /// read in place instead of copied into rows first). Only engines that
    /// [`Engine::reads_columns`] take them.
    fn run_columns(
        &self,
        _inputs: &[Vec<&[f32]>],
        _batch: usize,
    ) -> Result<Vec<Tensor>, EngineError> {
        Err(EngineError::Run {
            path: self.info().path.clone(),
            msg: "this engine takes inputs as rows, not columns".into(),
        })
    }
    /// Engine and model, for logs and provenance (e.g. "native trees (100 trees) on ...").
    fn describe(&self) -> String;
    /// What the model file declares.
    fn info(&self) -> &ModelInfo;
}

/// Which engine [`open`] loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EngineKind {
    /// Tree ensembles and dense networks to the native evaluators, every other graph to ONNX
    /// Runtime when its library is found, else tract (see [`open_with_choice`]).
    #[default]
    Auto,
    Tract,
    Trees,
    /// The native evaluators of dense, EdgeConv, recurrent and 1-D convolutional networks (an error for any other
    /// graph).
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
    /// libonnxruntime for [`EngineKind::Ort`], and whether "auto" may use it.
    pub ort_library: OrtLibrary,
    /// ONNX Runtime sessions kept for concurrent callers (0: one per core).
    pub ort_sessions: usize,
    /// Inference threads (0: one per core): the native evaluators and tract split a large
    /// batch over this many; ONNX Runtime's sessions share them as intra-op threads
    /// (`threads / ort_sessions` each, at least one).
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

/// What [`open_with_choice`] loaded, and why: for the log and the provenance record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The engine loaded (never [`EngineKind::Auto`]).
    pub kind: EngineKind,
    /// Why: "requested", or what made "auto" choose it.
    pub reason: String,
}

impl std::fmt::Display for Choice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.kind.name(), self.reason)
    }
}

impl EngineKind {
    /// The name the command line uses.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Auto => "auto",
            EngineKind::Tract => "tract",
            EngineKind::Trees => "trees",
            EngineKind::Native => "native",
            EngineKind::Ort => "ort",
        }
    }
}

/// Loads `model` on the engine `opts` asks for (see [`open_with_choice`]).
pub fn open(model: &Model, opts: &EngineOptions) -> Result<Opened, EngineError> {
    open_with_choice(model, opts).map(|(e, _)| e)
}

/// Loads `model` on the engine `opts` asks for, and says which and why.
///
/// [`EngineKind::Auto`] picks the fastest engine that is correct for the graph:
/// - tree ensembles and the networks a native evaluator recognises (dense, EdgeConv, recurrent, 1-D CNN
///   taggers): hepml's native evaluators;
/// - every other graph (and a tree ensemble the native evaluator refuses): ONNX Runtime when
///   its library is found (`ort_library`, `ORT_DYLIB_PATH`, a venv's onnxruntime wheel; see
///   [`OrtLibrary`]), else tract. ONNX Runtime also takes the graphs tract refuses (recurrent
///   layers with attributes tract ignores); without it those are a one-line error naming
///   tract's refusal;
/// - with device cuda: ONNX Runtime (the one engine with a GPU).
///
/// A graph that fixes the batch at one (every input's first dimension 1) takes any batch: the
/// native dense and tree evaluators compute rows each on its own, every other engine is called
/// once per event (see `fixed_batch`); the choice's reason says so.
pub fn open_with_choice(
    model: &Model,
    opts: &EngineOptions,
) -> Result<(Opened, Choice), EngineError> {
    let (opened, choice) = choose_and_load(model, opts)?;
    Ok(fixed_batch::fit(opened, choice, opts.threads))
}

/// [`open_with_choice`] as the graph declares its batch.
fn choose_and_load(model: &Model, opts: &EngineOptions) -> Result<(Opened, Choice), EngineError> {
    let requested = |kind| Choice {
        kind,
        reason: "requested".into(),
    };
    let choice = match opts.kind {
        EngineKind::Auto if opts.device == Device::Cuda => Choice {
            kind: EngineKind::Ort,
            reason: "device cuda: ONNX Runtime's CUDA provider".into(),
        },
        EngineKind::Auto => return open_auto(model, opts),
        k => requested(k),
    };
    if opts.device == Device::Cuda && choice.kind != EngineKind::Ort {
        return Err(EngineError::Config(format!(
            "device cuda needs the ort engine; {} runs on the CPU only",
            match choice.kind {
                EngineKind::Trees => "the native tree evaluator",
                EngineKind::Native => "the native dense evaluator",
                _ => "tract",
            }
        )));
    }
    Ok((load(model, opts, choice.kind)?, choice))
}

/// [`EngineKind::Auto`] on the CPU (see [`open_with_choice`]).
fn open_auto(model: &Model, opts: &EngineOptions) -> Result<(Opened, Choice), EngineError> {
    let chose = |kind, reason: String| Choice { kind, reason };
    let tree_model = trees::is_tree_model(model);
    // Not covered natively: why, for the reason recorded.
    let native_refusal = if tree_model {
        match load(model, opts, EngineKind::Trees) {
            Ok(e) => {
                let c = chose(EngineKind::Trees, "tree ensemble: native evaluator".into());
                return Ok((e, c));
            }
            Err(e @ EngineError::Unsupported { .. }) => e,
            Err(e) => return Err(e),
        }
    } else {
        match load_native(model, opts) {
            Ok((e, what)) => {
                let c = chose(EngineKind::Native, format!("{what}: native evaluator"));
                return Ok((e, c));
            }
            Err(e) => e,
        }
    };
    let lib = match ort_library(opts) {
        Ok(lib) => lib,
        // An explicit library that is not there is the user's error, not a reason to fall back.
        Err(e) if opts.ort_library.is_explicit() => return Err(EngineError::Config(e)),
        Err(why_not) if tree_model => {
            return Err(EngineError::Unsupported {
                path: model.path().to_path_buf(),
                msg: format!("{}; auto: {why_not}", bare(&native_refusal)),
            })
        }
        Err(why_not) => {
            return match load(model, opts, EngineKind::Tract) {
                Ok(e) => Ok((
                    e,
                    chose(
                        EngineKind::Tract,
                        format!("no native evaluator for this graph; {why_not}"),
                    ),
                )),
                Err(refusal) => Err(EngineError::Unsupported {
                    path: model.path().to_path_buf(),
                    msg: format!(
                        "auto: tract refuses this graph ({}) and {why_not}",
                        bare(&refusal)
                    ),
                }),
            };
        }
    };
    let why_ort = if tree_model {
        format!(
            "native tree evaluator refuses it ({})",
            bare(&native_refusal)
        )
    } else {
        "no native evaluator for this graph".into()
    };
    match load(model, opts, EngineKind::Ort) {
        Ok(e) => Ok((
            e,
            chose(
                EngineKind::Ort,
                format!(
                    "{why_ort}; ONNX Runtime found ({}), faster than tract",
                    lib.display()
                ),
            ),
        )),
        // ONNX Runtime found but unusable (a broken library, a graph it rejects): tract, if it
        // takes the graph; else both refusals.
        Err(ort_err) if !tree_model => match load(model, opts, EngineKind::Tract) {
            Ok(e) => Ok((
                e,
                chose(
                    EngineKind::Tract,
                    format!("{why_ort}; ONNX Runtime failed ({})", bare(&ort_err)),
                ),
            )),
            Err(refusal) => Err(EngineError::Unsupported {
                path: model.path().to_path_buf(),
                msg: format!(
                    "auto: tract refuses this graph ({}) and ONNX Runtime failed ({})",
                    bare(&refusal),
                    bare(&ort_err)
                ),
            }),
        },
        Err(ort_err) => Err(ort_err),
    }
}

/// An error's text without the model path it starts with (the caller names the model once),
/// on one line.
fn bare(e: &EngineError) -> String {
    let s = match e {
        EngineError::Load { msg, .. }
        | EngineError::Unsupported { msg, .. }
        | EngineError::Run { msg, .. } => msg.clone(),
        e => e.to_string(),
    };
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Where ONNX Runtime's library comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum OrtLibrary {
    /// `ORT_DYLIB_PATH`, else a venv's onnxruntime wheel (see `ort::find_library`).
    #[default]
    Search,
    /// This file.
    Path(PathBuf),
    /// Never ONNX Runtime: "auto" picks among the native evaluators and tract only.
    Off,
}

impl OrtLibrary {
    fn is_explicit(&self) -> bool {
        matches!(self, OrtLibrary::Path(_))
    }
}

/// The ONNX Runtime library "auto" would load, or why there is none (a phrase).
fn ort_library(opts: &EngineOptions) -> Result<PathBuf, String> {
    if opts.ort_library == OrtLibrary::Off {
        return Err("ONNX Runtime is switched off".into());
    }
    find_ort(opts)
}

#[cfg(feature = "ort")]
fn find_ort(opts: &EngineOptions) -> Result<PathBuf, String> {
    let explicit = match &opts.ort_library {
        OrtLibrary::Path(p) => Some(p.as_path()),
        _ => None,
    };
    ort::find_library(explicit)
}

#[cfg(not(feature = "ort"))]
fn find_ort(_: &EngineOptions) -> Result<PathBuf, String> {
    Err("this build has no ONNX Runtime backend (cargo feature `ort`)".into())
}

/// The CPU engines split large batches over `opts.threads` (0: one per core, their default).
macro_rules! with_threads {
    ($opts:expr, $load:expr) => {{
        let mut e = $load;
        if $opts.threads > 0 {
            e.threads = $opts.threads;
        }
        e
    }};
}

/// The native evaluators of networks, tried in turn: the engine that took `model` and what
/// kind of network it is, or every evaluator's reason for refusing it.
fn load_native(model: &Model, opts: &EngineOptions) -> Result<(Opened, &'static str), EngineError> {
    let mut why = Vec::new();
    macro_rules! attempt {
        ($load:expr, $wrap:expr, $what:expr) => {
            match $load {
                Ok(e) => return Ok(($wrap(Box::new(with_threads!(opts, e))), $what)),
                Err(EngineError::Unsupported { msg, .. }) => why.push(msg),
                Err(e) => return Err(e),
            }
        };
    }
    attempt!(
        native::NativeEngine::load(model),
        Opened::Native,
        "dense network"
    );
    let other = |e: Box<dyn Engine>| Opened::Other(e);
    attempt!(
        native::EdgeConvEngine::load(model),
        other,
        "particle-cloud (EdgeConv) network"
    );
    attempt!(
        native::CnnEngine::load(model),
        other,
        "1-D convolutional/recurrent network"
    );
    Err(EngineError::Unsupported {
        path: model.path().to_path_buf(),
        msg: why.join("; "),
    })
}

/// Loads `model` on `kind` (not Auto) with the options' threads.
fn load(model: &Model, opts: &EngineOptions, kind: EngineKind) -> Result<Opened, EngineError> {
    Ok(match kind {
        EngineKind::Trees => Opened::Trees(Box::new(with_threads!(
            opts,
            trees::TreeEngine::load(model)?
        ))),
        EngineKind::Native => load_native(model, opts)?.0,
        EngineKind::Ort => Opened::Other(open_ort(model, opts)?),
        EngineKind::Tract | EngineKind::Auto => Opened::Other(Box::new(with_threads!(
            opts,
            tract::TractEngine::load(model)?
        ))),
    })
}

#[cfg(feature = "ort")]
fn open_ort(model: &Model, opts: &EngineOptions) -> Result<Box<dyn Engine>, EngineError> {
    let cores = parts::cores();
    let pool = if opts.ort_sessions == 0 {
        cores
    } else {
        opts.ort_sessions
    };
    // `threads` in all: each session's intra-op pool gets its share.
    let total = if opts.threads == 0 {
        cores
    } else {
        opts.threads
    };
    let lib = match &opts.ort_library {
        OrtLibrary::Search => None,
        OrtLibrary::Path(p) => Some(p.as_path()),
        OrtLibrary::Off => {
            return Err(EngineError::Config(
                "the ort engine was asked for, but ONNX Runtime is switched off".into(),
            ))
        }
    };
    Ok(Box::new(ort::OrtEngine::load(
        model,
        lib,
        opts.device == Device::Cuda,
        pool,
        (total / pool).max(1),
    )?))
}

#[cfg(not(feature = "ort"))]
fn open_ort(_: &Model, _: &EngineOptions) -> Result<Box<dyn Engine>, EngineError> {
    Err(EngineError::Config(
        "built without the ONNX Runtime backend (cargo feature `ort`); use the tract engine".into(),
    ))
}
