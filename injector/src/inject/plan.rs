//! The inject API: [`Options`] say what to score and where to write, [`Plan::new`] checks them,
//! [`Plan::run`] scores every input and writes its output, reporting progress through a
//! callback.
//!
//! ```no_run
//! use injector::inject::{Options, Plan};
//! let mut o = Options::new(vec!["ntuple.root".into()], vec!["model.onnx".into()], "out.root".into());
//! o.friend = true;
//! let written = Plan::new(o)?.run(&mut |_event| {})?;
//! println!("{} events", written[0].entries);
//! # Ok::<(), injector::inject::InjectError>(())
//! ```

use super::error::{config, InjectError};
use super::inputs::NonFinite;
use super::jobs::{build_jobs, parse_params, Param};
use super::pipeline::Stages;
use super::write;
use engine::{Device, EngineKind, OrtLibrary};
use rootio::{Compression, RootFile};
use std::path::{Path, PathBuf};

/// What to score, with which models, and where to write.
#[derive(Debug, Clone)]
pub struct Options {
    /// Input ROOT files (paths; expand globs before).
    pub inputs: Vec<PathBuf>,
    /// ONNX models; with `fold_branch`, the members of a k-fold ensemble in fold order.
    pub models: Vec<PathBuf>,
    /// Feature spec (YAML, or a CMS preprocess.json) per model, or one for all; empty: each
    /// model's own metadata (written by `hepml export`) says which branches feed it.
    pub features: Vec<PathBuf>,
    /// Tree to read (None: the file's only tree).
    pub tree: Option<String>,
    /// Output file (one input) or folder (several inputs, or an existing folder).
    pub output: PathBuf,
    /// Write a friend tree holding only the new branches instead of a decorated copy.
    pub friend: bool,
    pub engine: EngineKind,
    pub device: Device,
    /// libonnxruntime for [`EngineKind::Ort`] and "auto", or ONNX Runtime switched off.
    pub ort_library: OrtLibrary,
    /// The models are the members of a k-fold ensemble routed by this branch: member i scores
    /// events whose value % k == i.
    pub fold_branch: Option<String>,
    /// A parameterised model's parameter set to constants, `NAME=V1,V2,...`: each value writes
    /// its own branches, suffixed `_NAME<V>`.
    pub params: Vec<String>,
    /// Object length for a preprocess.json spec without max_length.
    pub length: Option<usize>,
    /// NaN/inf in inputs, for every model; `None`: as each model's feature spec or metadata
    /// says (`nan: pass`, `hepml.nan`), else an error.
    pub nan: Option<NonFinite>,
    /// Decoding and inference threads (None: all cores).
    pub threads: Option<usize>,
    /// Events per chunk.
    pub chunk: u64,
    /// Compression of new baskets.
    pub compression: Compression,
}

impl Options {
    /// Defaults for everything else: decorated copy, automatic engine on the CPU, features from
    /// the models' metadata, NaN an error, all cores, 10 000 events per chunk, ROOT's default
    /// compression (zlib level 1).
    pub fn new(inputs: Vec<PathBuf>, models: Vec<PathBuf>, output: PathBuf) -> Options {
        Options {
            inputs,
            models,
            features: Vec::new(),
            tree: None,
            output,
            friend: false,
            engine: EngineKind::Auto,
            device: Device::Cpu,
            ort_library: OrtLibrary::Search,
            fold_branch: None,
            params: Vec::new(),
            length: None,
            nan: None,
            threads: None,
            chunk: 10_000,
            compression: Compression::DEFAULT,
        }
    }
}

/// What [`Plan::run`] reports while it works.
#[derive(Debug)]
pub enum Event<'a> {
    /// Something the user should know (a fold scoring every event, an object not copied).
    Note(String),
    /// The models are decoded and their engines built, once for all `inputs` of the run:
    /// `jobs` model jobs in `seconds`.
    Loaded {
        jobs: usize,
        inputs: usize,
        seconds: f64,
    },
    /// Scoring of `input` begins: `entries` events.
    Start { input: &'a Path, entries: u64 },
    /// This many more events of the current input are written.
    Advance(u64),
    /// An input is done.
    Done(&'a Written),
}

/// One output file written.
#[derive(Debug, Clone)]
pub struct Written {
    pub input: PathBuf,
    pub output: PathBuf,
    pub entries: u64,
    /// Each model's engine, file and hash.
    pub models: Vec<String>,
    /// Each model's engine choice and its reason (same order).
    pub engines: Vec<engine::Choice>,
    /// Each new branch with its type name.
    pub branches: Vec<(String, String)>,
    pub seconds: f64,
    /// Where the time went, stage by stage.
    pub stages: Stages,
}

/// Checked [`Options`], ready to run.
#[derive(Debug)]
pub struct Plan {
    pub(crate) options: Options,
    pub(crate) params: Vec<Param>,
    /// The output is a folder (one file per input).
    several: bool,
    /// Decoding threads.
    pub(crate) threads: usize,
}

impl Plan {
    /// Checks the options that need no file read: models and inputs given, one feature spec
    /// for all models or one each, well-formed `params`, a non-zero chunk.
    pub fn new(options: Options) -> Result<Plan, InjectError> {
        let o = &options;
        if o.inputs.is_empty() || o.models.is_empty() {
            return Err(config("give at least one input and one model"));
        }
        if !o.features.is_empty() && o.features.len() != 1 && o.features.len() != o.models.len() {
            return Err(config(format!(
                "give one --features for all models or one per model ({} models, {} specs)",
                o.models.len(),
                o.features.len()
            )));
        }
        if o.chunk == 0 {
            return Err(config("the chunk size must be at least 1 event"));
        }
        let params = parse_params(&o.params)?;
        let several = o.inputs.len() > 1 || o.output.is_dir();
        let threads = o.threads.unwrap_or_else(engine::cores);
        Ok(Plan {
            options,
            params,
            several,
            threads,
        })
    }

    /// Decodes the models and builds their engines once, then scores every input in turn and
    /// writes its output (under a temporary name, renamed when complete); stops at the first
    /// error.
    pub fn run(&self, progress: &mut dyn FnMut(Event)) -> Result<Vec<Written>, InjectError> {
        let o = &self.options;
        let t0 = std::time::Instant::now();
        let mut notes = Vec::new();
        let jobs = build_jobs(o, &self.params, &mut notes)?;
        progress(Event::Loaded {
            jobs: jobs.jobs.len(),
            inputs: o.inputs.len(),
            seconds: t0.elapsed().as_secs_f64(),
        });
        for n in notes {
            progress(Event::Note(n));
        }
        if self.several {
            std::fs::create_dir_all(&o.output).map_err(|err| InjectError::Io {
                what: format!("creating {}", o.output.display()),
                err,
            })?;
        }
        let out = |input: &Path| -> Result<PathBuf, InjectError> {
            let out = if self.several {
                o.output.join(
                    input
                        .file_name()
                        .ok_or_else(|| config("input without a file name"))?,
                )
            } else {
                o.output.clone()
            };
            if out.exists() && std::fs::canonicalize(&out).ok() == std::fs::canonicalize(input).ok()
            {
                return Err(config(format!(
                    "{}: output would overwrite the input",
                    out.display()
                )));
            }
            Ok(out)
        };
        write::all(self, &jobs, &out, progress)
    }
}

/// The tree `want` names, or the file's only tree (an error naming them when there are several).
pub fn tree_name(file: &RootFile, want: Option<&str>) -> Result<String, InjectError> {
    if let Some(t) = want {
        return Ok(t.to_string());
    }
    match file.tree_paths()?.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(config(format!(
            "{}: no TTree in the file",
            file.path().display()
        ))),
        many => Err(config(format!(
            "{}: several trees ({}); choose one with --tree",
            file.path().display(),
            many.join(", ")
        ))),
    }
}
